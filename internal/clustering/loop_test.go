package clustering

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
)

// passUntil runs passes until cond holds, failing after max passes.
func passUntil(t *testing.T, l *Loop, max int, what string, cond func(Report) bool) Report {
	t.Helper()
	var r Report
	for i := 0; i < max; i++ {
		var err error
		r, err = l.Pass(context.Background())
		if err != nil {
			t.Fatalf("pass: %v", err)
		}
		if cond(r) {
			return r
		}
	}
	t.Fatalf("after %d passes, not %s: state %s/%s: %s (steps %v)", max, what, r.Plan.State, r.Plan.Reason, r.Plan.Message, r.Result.Steps)
	return r
}

func healthy(r Report) bool { return r.Plan.State == StateHealthy && len(r.Plan.Steps) == 0 }

func newFakeLoop(t *testing.T, c *fakeCluster) *Loop {
	return NewLoop(c, c, Options{Log: testr.New(t), ObserveTimeout: 200 * time.Millisecond, StepTimeout: 200 * time.Millisecond})
}

func TestLoopBootstrapsThenStaysQuiet(t *testing.T) {
	c := newFakeCluster(3)
	l := newFakeLoop(t, c)
	passUntil(t, l, 5, "healthy", healthy)
	if c.recorded.Primary != 0 || c.recorded.Term != 1 {
		t.Fatalf("recorded %+v, want primary 0 term 1", c.recorded)
	}
	if c.labels[0] != LabelPrimary || c.labels[1] != LabelReplica || c.labels[2] != LabelReplica {
		t.Errorf("labels %v", c.labels)
	}
	if n := c.nodes[0]; n.ro || !n.semiSrc || n.wait != 1 {
		t.Errorf("primary: read-only %t semi-sync %t wait %d", n.ro, n.semiSrc, n.wait)
	}
	if err := c.write(0); err != nil {
		t.Fatal(err)
	}
	r := passUntil(t, l, 1, "healthy after a write", healthy)
	if got := r.Observation.Instances[2].SQL.Executed.String(); got != "0-1000-1" {
		t.Errorf("replica 2 executed %q", got)
	}
}

func TestLoopFailsOverAndFencesTheReturningPrimary(t *testing.T) {
	c := newFakeCluster(3)
	l := newFakeLoop(t, c)
	passUntil(t, l, 5, "healthy", healthy)
	_ = c.write(0)
	c.mu.Lock()
	c.nodes[0].up = false
	c.mu.Unlock()
	passUntil(t, l, 6, "failed over", func(Report) bool { return c.recorded.Primary != 0 })
	if c.recorded.Primary != 1 || c.recorded.Term != 2 {
		t.Fatalf("recorded %+v, want primary 1 term 2", c.recorded)
	}
	if err := c.write(1); err != nil {
		t.Fatalf("new primary refuses writes: %v", err)
	}
	// The old primary comes back writable (as after a freeze): fenced, then rejoins.
	c.mu.Lock()
	c.nodes[0].up, c.nodes[0].ro = true, false
	c.mu.Unlock()
	passUntil(t, l, 6, "healthy with the old primary as a replica", healthy)
	if n := c.nodes[0]; !n.ro || n.source != 1 {
		t.Errorf("old primary: read-only %t source %d", n.ro, n.source)
	}
	if c.labels[0] != LabelReplica || c.labels[1] != LabelPrimary {
		t.Errorf("labels %v", c.labels)
	}
}

// TestActCrashMidPlanConverges fails a step in the middle of a switchover, before and after the
// new term is recorded; the next passes converge either way.
func TestActCrashMidPlanConverges(t *testing.T) {
	for _, failing := range []string{"ResetReplication@1", "RecordTopologyChange", "SetReadOnly(false)@1"} {
		t.Run(failing, func(t *testing.T) {
			c := newFakeCluster(3)
			l := newFakeLoop(t, c)
			passUntil(t, l, 5, "healthy", healthy)
			c.mu.Lock()
			c.failOnce[failing] = errors.New("injected failure")
			c.spec.Switchover = &SwitchoverRequest{ID: "a", Target: 1}
			c.mu.Unlock()
			r, _ := l.Pass(context.Background())
			if r.Result.Err == nil {
				t.Fatalf("the injected failure did not stop the plan: %v", r.Result.Steps)
			}
			if !c.recordedBy(1) {
				// Not recorded: the old primary must accept writes again at once.
				if c.nodes[0].ro {
					t.Fatalf("switchover failed before the record and left the old primary read-only")
				}
				passUntil(t, l, 6, "healthy again under the old primary", healthy)
				c.mu.Lock()
				c.spec.Switchover = &SwitchoverRequest{ID: "b", Target: 1}
				c.mu.Unlock()
			}
			passUntil(t, l, 6, "healthy", healthy)
			if c.recorded.Primary != 1 || c.nodes[1].ro || !c.nodes[0].ro {
				t.Fatalf("recorded %+v; node1 ro %t node0 ro %t", c.recorded, c.nodes[1].ro, c.nodes[0].ro)
			}
		})
	}
}

func (c *fakeCluster) recordedBy(o int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.recorded.Primary == o
}

// TestObserveFrozenInstanceIsBounded: a frozen server costs a pass its timeout, not a hang.
func TestObserveFrozenInstanceIsBounded(t *testing.T) {
	c := newFakeCluster(3)
	l := newFakeLoop(t, c)
	passUntil(t, l, 5, "healthy", healthy)
	c.mu.Lock()
	c.nodes[2].frozen = true
	c.mu.Unlock()
	done := make(chan Report, 1)
	go func() { r, _ := l.Pass(context.Background()); done <- r }()
	select {
	case r := <-done:
		st, _ := r.Plan.InstanceStatus(2)
		if st.Reachable || r.Plan.State != StateDegraded {
			t.Errorf("frozen instance: reachable %t, state %s", st.Reachable, r.Plan.State)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a pass with a frozen instance did not end")
	}
}

// An instance whose last probe failed is asked with the shorter bound: a frozen primary must
// not cost every pass of its failover the full observe timeout.
func TestObserveAFailingInstanceWithTheShorterBound(t *testing.T) {
	c := newFakeCluster(3)
	l := NewLoop(c, c, Options{Log: testr.New(t), ObserveTimeout: time.Second, StepTimeout: 200 * time.Millisecond})
	passUntil(t, l, 5, "healthy", healthy)
	c.mu.Lock()
	c.nodes[2].frozen = true
	c.mu.Unlock()
	bound := func() time.Duration {
		if _, err := l.Pass(context.Background()); err != nil {
			t.Fatal(err)
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.bounds["Facts@2"]
	}
	if b := bound(); b <= FailingObserveTimeout {
		t.Fatalf("first probe of a frozen instance had %s, want the full observe timeout", b)
	}
	if b := bound(); b > FailingObserveTimeout {
		t.Fatalf("second probe of a frozen instance had %s, want at most %s", b, FailingObserveTimeout)
	}
}

func TestLoopRunStopsAndPokes(t *testing.T) {
	c := newFakeCluster(1)
	l := NewLoop(c, c, Options{Interval: time.Hour, Log: testr.New(t)})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for l.Last().Plan.State != StateHealthy {
		if time.Now().After(deadline) {
			t.Fatalf("the loop did not reach Healthy through pokes: %+v", l.Last().Plan)
		}
		l.Poke()
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run returned %v", err)
	}
}

// staleSource serves the snapshot of an earlier pass while stale is set, as an informer cache
// that has not caught up with a status write.
type staleSource struct {
	*fakeCluster
	stale *Snapshot
}

func (s *staleSource) Snapshot(ctx context.Context) (Snapshot, error) {
	if s.stale != nil {
		return *s.stale, nil
	}
	return s.fakeCluster.Snapshot(ctx)
}

// TestLoopNeverActsOnASnapshotOlderThanATermItSaw pins the term as a fencing token: right after
// a failover, a snapshot still naming the old primary and term would make the new primary look
// like "writable and not the primary" and fence it. The loop skips such a pass instead.
func TestLoopNeverActsOnASnapshotOlderThanATermItSaw(t *testing.T) {
	c := newFakeCluster(3)
	src := &staleSource{fakeCluster: c}
	l := NewLoop(src, c, Options{Log: testr.New(t), ObserveTimeout: 200 * time.Millisecond, StepTimeout: 200 * time.Millisecond})
	passUntil(t, l, 5, "healthy", healthy)
	before, err := c.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	c.nodes[0].up = false
	c.mu.Unlock()
	passUntil(t, l, 6, "failed over", func(Report) bool { return c.recorded.Primary == 1 })
	c.mu.Lock()
	c.nodes[0].up = true
	c.calls = nil
	c.mu.Unlock()
	src.stale = &before // primary 0, term 1: the cache has not seen term 2 yet
	if _, err := l.Pass(context.Background()); !errors.Is(err, ErrStaleSnapshot) {
		t.Fatalf("pass on a stale snapshot: %v, want ErrStaleSnapshot", err)
	}
	c.mu.Lock()
	calls, ro := c.calls, c.nodes[1].ro
	c.mu.Unlock()
	if ro {
		t.Fatal("the new primary was fenced on a stale snapshot")
	}
	for _, call := range calls {
		if !strings.HasPrefix(call, "Facts") && !strings.HasPrefix(call, "Executed") {
			t.Errorf("acted on a stale snapshot: %s", call)
		}
	}
	src.stale = nil
	passUntil(t, l, 6, "healthy again", healthy)
}

// TestUnreachableCountsFromTheLastAnswer: the time an instance has been unreachable (what the
// failover grace period is compared with) starts at the last pass whose probe it answered,
// with at most one pass interval of credit before the first unanswered probe.
func TestUnreachableCountsFromTheLastAnswer(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	up := func() []Instance { return []Instance{{Name: "a", SQL: &SQLFacts{}}} }
	down := func() []Instance { return []Instance{{Name: "a", Error: "no answer"}} }
	cases := []struct {
		name string
		// answered is when the last answered pass started (nil: never, since the loop began).
		answered *time.Duration
		fails    []time.Duration
		want     time.Duration
	}{
		{"a pass one interval and a bit after the answer", ptr(0 * time.Second), []time.Duration{1200 * time.Millisecond}, time.Second},
		{"a poked pass soon after the answer", ptr(0 * time.Second), []time.Duration{400 * time.Millisecond}, 400 * time.Millisecond},
		{"a pass long after the answer gets one interval of credit", ptr(0 * time.Second), []time.Duration{10 * time.Second}, time.Second},
		{"later failures count from the same start", ptr(0 * time.Second), []time.Duration{1200 * time.Millisecond, 2300 * time.Millisecond, 3100 * time.Millisecond}, 2900 * time.Millisecond},
		{"never answered: from the first failure", nil, []time.Duration{time.Second, 2500 * time.Millisecond}, 1500 * time.Millisecond},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := probes{interval: time.Second}
			if tc.answered != nil {
				p.track(up(), at(*tc.answered))
			}
			var got time.Duration
			for _, f := range tc.fails {
				ins := down()
				p.track(ins, at(f))
				got = ins[0].UnreachableFor
			}
			if got != tc.want {
				t.Fatalf("unreachable for %s, want %s", got, tc.want)
			}
			ins := up()
			p.track(ins, at(20*time.Second))
			if ins[0].UnreachableFor != 0 || p.failing()["a"] {
				t.Fatalf("an answer did not reset the count: %s, failing %v", ins[0].UnreachableFor, p.failing())
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }
