package clustering

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestRecloneBackoff(t *testing.T) {
	for _, c := range []struct {
		count int
		want  time.Duration
	}{
		{0, 0}, // the first re-clone starts at once
		{1, 30 * time.Second},
		{2, time.Minute},
		{3, 2 * time.Minute},
		{4, 4 * time.Minute},
		{5, 8 * time.Minute},
		{6, 10 * time.Minute},
		{7, 10 * time.Minute},
		{1000, 10 * time.Minute},
	} {
		if got := recloneBackoff(c.count); got != c.want {
			t.Errorf("recloneBackoff(%d) = %s, want %s", c.count, got, c.want)
		}
	}
}

func TestRecloneDue(t *testing.T) {
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	for _, c := range []struct {
		name   string
		r      Reclone
		forget bool
		next   time.Time
	}{
		{"no re-clone yet", Reclone{}, true, time.Time{}},
		{"under way", Reclone{Count: 1, Last: ago(time.Minute)}, false, time.Time{}},
		{"finished once", Reclone{Count: 1, Finished: ago(10 * time.Second)}, false, now.Add(20 * time.Second)},
		{"finished three times", Reclone{Count: 3, Finished: ago(time.Minute)}, false, now.Add(time.Minute)},
		{"healthy for less than the reset", Reclone{Count: 4, Finished: ago(time.Hour), HealthySince: ago(9 * time.Minute)}, false, ago(time.Hour - 4*time.Minute)},
		{"healthy for the reset", Reclone{Count: 4, Finished: ago(time.Hour), HealthySince: ago(10 * time.Minute)}, true, time.Time{}},
	} {
		forget, next := recloneDue(c.r, now)
		if forget != c.forget || !next.Equal(c.next) {
			t.Errorf("%s: forget %t next %s, want %t %s", c.name, forget, next, c.forget, c.next)
		}
	}
}

// TestRecloneBackoffAcrossPasses runs Decide pass after pass on a replica whose fault a
// re-clone never cures, carrying the plan's records into the next observation as status does:
// the re-clones start 30 s, 1 min, 2 min ... after the previous one finished, never in between;
// once the replica has been healthy for ten minutes the next fault is re-cloned at once.
func TestRecloneBackoffAcrossPasses(t *testing.T) {
	var rec map[int]Reclone
	var starts []time.Duration
	t0 := now
	uid := 0
	cloning := false
	pass := func(at time.Duration, healthy bool) Plan {
		f := cluster(3).primary(0)
		if !healthy {
			f.ioError(2, 1236, gtidGone)
		}
		f.o.Now, f.o.Recorded.Reclones = t0.Add(at), rec
		f.in(2).Pod.UID = "pod-" + string(rune('a'+uid))
		if cloning {
			f.cloning(2)
		}
		p := Decide(f.obs())
		rec = p.Reclones
		return p
	}
	// Every 5 s for 20 minutes: a re-clone replaces the Pod, the clone takes 10 s, and the
	// replica comes back with the same fault.
	var clonedAt time.Duration = -1
	for at := time.Duration(0); at < 20*time.Minute; at += 5 * time.Second {
		if cloning && at-clonedAt >= 10*time.Second {
			cloning = false
		}
		p := pass(at, false)
		if strings.Contains(actionSteps(p), "reclone(2") {
			if cloning {
				t.Fatalf("re-cloned at %s while the clone of %s runs", at, clonedAt)
			}
			starts = append(starts, at)
			uid++
			cloning, clonedAt = true, at
		}
	}
	// Each clone is back 10 s after it started; the next waits 30 s, 1, 2, 4, 8 min after that.
	want := []time.Duration{0, 40 * time.Second, 110 * time.Second, 240 * time.Second, 490 * time.Second, 980 * time.Second}
	if len(starts) != len(want) {
		t.Fatalf("re-clones at %v, want %v", starts, want)
	}
	for i := range want {
		if starts[i] != want[i] {
			t.Fatalf("re-clones at %v, want %v", starts, want)
		}
	}
	if rec[2].Count != len(want) {
		t.Errorf("record counts %d re-clones, want %d", rec[2].Count, len(want))
	}
	// Healthy for ten minutes: forgotten, and the next fault is re-cloned at once.
	cloning = false
	at := 21 * time.Minute
	for ; at <= 31*time.Minute; at += 30 * time.Second {
		pass(at, true)
	}
	if r, ok := rec[2]; ok {
		t.Fatalf("record kept after ten healthy minutes: %+v", r)
	}
	if p := pass(at, false); !strings.Contains(actionSteps(p), "reclone(2") || p.Reclones[2].Count != 1 {
		t.Fatalf("after the reset: steps %s, record %+v", actionSteps(p), p.Reclones[2])
	}
}

// Act hands the sink the record of a starting re-clone with the re-clone itself, so the sink
// can persist it before the instance goes.
func TestActHandsTheRecloneRecordToTheSink(t *testing.T) {
	c := newFakeCluster(3)
	f := cluster(3).primary(0).recloned(2, 2, 70*s, -1).ioError(2, 1236, gtidGone)
	p := Decide(f.obs())
	a := &Actor{Targets: map[int]Target{0: {Ordinal: 0, Name: "db-0"}, 1: {Ordinal: 1, Name: "db-1"}, 2: {Ordinal: 2, Name: "db-2"}},
		Connect: func(Target) (SQL, error) { return nil, errors.New("no SQL in this test") }, Sink: c}
	var steps []Step
	for _, st := range p.Steps {
		if _, ok := st.(RecloneInstance); ok {
			steps = append(steps, st)
		}
	}
	if len(steps) != 1 {
		t.Fatalf("steps %v", p.Steps)
	}
	if res := a.Act(context.Background(), Plan{Steps: steps}); res.Err != nil {
		t.Fatal(res.Err)
	}
	if got := c.recorded.Reclones[2]; !reflect.DeepEqual(got, p.Reclones[2]) || got.Count != 3 {
		t.Errorf("the sink got %+v, the plan holds %+v", got, p.Reclones[2])
	}
}
