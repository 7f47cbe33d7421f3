package clustering

import (
	"os"
	"sort"
	"strconv"
	"testing"
	"time"
)

// Benchmarks of the engine tier; see docs/benchmarks.md ("Clustering"). Each runs its trials once
// whatever b.N (a trial takes seconds) and reports p50 and max. KURA_BENCH_TRIALS overrides
// the number of trials (10).

func trials() int {
	if n, err := strconv.Atoi(os.Getenv("KURA_BENCH_TRIALS")); err == nil && n > 0 {
		return n
	}
	return 10
}

func report(b *testing.B, name string, d []time.Duration) {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	p50, mx := d[len(d)/2], d[len(d)-1]
	if len(d)%2 == 0 {
		p50 = (d[len(d)/2-1] + d[len(d)/2]) / 2
	}
	b.ReportMetric(float64(p50.Milliseconds()), name+"-p50-ms")
	b.ReportMetric(float64(mx.Milliseconds()), name+"-max-ms")
	b.Logf("%s over %d trials: p50 %s, max %s, all %v", name, len(d), p50, mx, d)
}

// BenchmarkFailover measures, with the default settings (interval 1s, failover grace 3s), the
// time from SIGKILL of the primary to the first write acknowledged by the new primary, under a
// continuous single-connection writer. Each trial uses a fresh cluster of three.
func BenchmarkFailover(b *testing.B) {
	var times []time.Duration
	for i := 0; i < trials(); i++ {
		func() {
			r := bootstrapped(b)
			w := startWriter(r)
			defer w.halt()
			r.until("writes flowing", 10*time.Second, func() bool { return w.next.Load() > 20 })
			p := r.recorded().Primary
			killed := time.Now()
			r.kill(p)
			r.until("a write acknowledged by the new primary", 60*time.Second, func() bool { return w.okAfter(killed) })
			times = append(times, w.firstAckAfter(killed).Sub(killed))
		}()
	}
	report(b, "failover", times)
}

// BenchmarkSwitchover measures the write unavailability of a requested switchover (the
// longest gap between two acknowledged writes of a continuous writer around it).
func BenchmarkSwitchover(b *testing.B) {
	r := bootstrapped(b)
	w := startWriter(r)
	defer w.halt()
	r.until("writes flowing", 10*time.Second, func() bool { return w.next.Load() > 20 })
	var gaps []time.Duration
	for i := 0; i < trials(); i++ {
		r.until("healthy", 60*time.Second, r.healthy)
		target := (r.recorded().Primary + 1) % len(r.servers)
		w.resetGap()
		r.mu.Lock()
		r.spec.Switchover = &SwitchoverRequest{ID: "bench-" + strconv.Itoa(i), Target: target}
		r.mu.Unlock()
		r.loop.Poke()
		r.until("switched over", 60*time.Second, func() bool { return r.recorded().Primary == target })
		at := time.Now()
		r.until("a write on the new primary", 60*time.Second, func() bool { return w.okAfter(at.Add(200 * time.Millisecond)) })
		gaps = append(gaps, w.gap())
	}
	report(b, "switchover-write-gap", gaps)
}
