package clustering

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// slowReceiver is an instance whose receiver takes a while to stop, as a MariaDB replica
// connected to a frozen primary does (about 2 s).
type slowReceiver struct {
	SQL
	delay   time.Duration
	running *atomic.Int32
	most    *atomic.Int32
}

func (s slowReceiver) StopReceiver(ctx context.Context) error {
	n := s.running.Add(1)
	for {
		m := s.most.Load()
		if n <= m || s.most.CompareAndSwap(m, n) {
			break
		}
	}
	defer s.running.Add(-1)
	select {
	case <-time.After(s.delay):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// The receivers of a failover's first stage are stopped at once, not one after the other: each
// can take seconds when the primary is frozen, and they add up to the failover time.
func TestActFencesReceiversAtOnce(t *testing.T) {
	var running, most atomic.Int32
	targets := map[int]Target{}
	for i := 1; i <= 4; i++ {
		targets[i] = Target{Ordinal: i, Name: "db-" + string(rune('0'+i))}
	}
	a := &Actor{Targets: targets, Connect: func(Target) (SQL, error) {
		return slowReceiver{delay: 300 * time.Millisecond, running: &running, most: &most}, nil
	}}
	start := time.Now()
	res := a.Act(context.Background(), Plan{Steps: []Step{FenceIOThreads{Instance: 1}, FenceIOThreads{Instance: 2}, FenceIOThreads{Instance: 3}, FenceIOThreads{Instance: 4}}})
	took := time.Since(start)
	if res.Err != nil || len(res.Steps) != 4 {
		t.Fatalf("result %+v", res)
	}
	if most.Load() != 4 || took > time.Second {
		t.Errorf("fences ran %d at a time and took %s; want all 4 at once, about 300ms", most.Load(), took)
	}
}
