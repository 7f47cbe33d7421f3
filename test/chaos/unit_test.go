package chaos

import (
	"errors"
	"fmt"
	"math/rand"
	"net"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// The pure parts of the suite, run with -short too.

func TestLongestGapSpansTheFault(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(ms int) ack { return ack{At: t0.Add(time.Duration(ms) * time.Millisecond)} }
	acked := []ack{at(0), at(10), at(5000), at(5010), at(9000), at(20000)}
	// The fault at 6 s, converged at 8.9 s: the gap 5.01 s → 9 s spans both; 10 ms → 5 s ended
	// before the fault, 9 s → 20 s began after convergence.
	gap, from := longestGap(acked, t0.Add(6*time.Second), t0.Add(8900*time.Millisecond))
	if gap != 3990*time.Millisecond || !from.Equal(t0.Add(5010*time.Millisecond)) {
		t.Errorf("gap %s from %s", gap, from)
	}
	gap, _ = longestGap(acked, t0.Add(100*time.Millisecond), t0.Add(4*time.Second))
	if gap != 4990*time.Millisecond {
		t.Errorf("gap around the fault %s, want 4.99s", gap)
	}
}

func TestProbeCountsOverlappingWritableWindows(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	win := func(pod string, from, to int) sample {
		return sample{Pod: pod, Sent: t0.Add(time.Duration(from) * time.Millisecond), Got: t0.Add(time.Duration(to) * time.Millisecond)}
	}
	p := &probe{stop: make(chan struct{}), answers: map[string]int{"a": 3, "b": 2}, failures: map[string]int{},
		writable: map[string][]sample{
			"a": {win("a", 0, 2), win("a", 50, 52), win("a", 100, 102)},
			// b's first window touches a's second; its second is after everything of a's.
			"b": {win("b", 51, 53), win("b", 200, 201)},
		}}
	r := p.halt()
	if r.Dual != 2 || len(r.Evidence) != 1 || r.Samples != 5 {
		t.Fatalf("dual %d, evidence %v, samples %d", r.Dual, r.Evidence, r.Samples)
	}
	// Windows one after the other (a fence, then a promotion) are not dual.
	p = &probe{stop: make(chan struct{}), answers: map[string]int{}, failures: map[string]int{},
		writable: map[string][]sample{"a": {win("a", 0, 2)}, "b": {win("b", 3, 4)}}}
	if r := p.halt(); r.Dual != 0 {
		t.Errorf("sequential windows counted as dual: %+v", r)
	}
}

func TestNotCommitted(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{&net.OpError{Op: "dial", Err: errors.New("connection refused")}, true},
		{fmt.Errorf("wrapped: %w", &mysql.MySQLError{Number: 1290, Message: "read-only"}), true},
		{&mysql.MySQLError{Number: 1045}, true},
		{&net.OpError{Op: "read", Err: errors.New("i/o timeout")}, false},
		{mysql.ErrInvalidConn, false},
		{&mysql.MySQLError{Number: 1927, Message: "Connection was killed"}, false},
	} {
		if got := notCommitted(c.err); got != c.want {
			t.Errorf("notCommitted(%v) = %t, want %t", c.err, got, c.want)
		}
	}
}

func TestPlanGoesThroughEveryKind(t *testing.T) {
	s := settings{rounds: 2*len(faults) + 1}
	plan := s.plan(rand.New(rand.NewSource(1)))
	count := map[string]int{}
	for _, f := range plan {
		count[f.kind]++
	}
	if len(plan) != s.rounds {
		t.Fatalf("%d rounds planned, want %d", len(plan), s.rounds)
	}
	for _, f := range faults {
		if count[f.kind] < 2 {
			t.Errorf("%s planned %d times", f.kind, count[f.kind])
		}
	}
	if sample := (settings{}).plan(nil); len(sample) != len(faults) {
		t.Errorf("the sample plans %d rounds, want one per kind (%d)", len(sample), len(faults))
	}
}
