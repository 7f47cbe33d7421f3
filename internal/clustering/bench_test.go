package clustering

import (
	"context"
	"database/sql"
	"os"
	"sort"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kura-db/kura/internal/engine"
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

// BenchmarkFailoverSilentPrimary measures, with the default settings, a primary that stops
// answering without closing its connections (SIGSTOP: its clients and its replicas' receivers
// wait on silent sockets). "frozen": its agent answers and kills it in the failover's first
// stage; "partitioned": its agent cannot be reached either, as when the Pod is cut off from
// the network. Reported: the time from the stop to the new primary's promotion being
// recorded, and to the first write it acknowledged (the writer gives up on a write after
// 250 ms, so a write stuck on the old primary costs little).
func BenchmarkFailoverSilentPrimary(b *testing.B) {
	for _, kind := range []string{"frozen", "partitioned"} {
		b.Run(kind, func(b *testing.B) {
			var promoted, acked []time.Duration
			for i := 0; i < trials(); i++ {
				func() {
					r := bootstrapped(b)
					if kind == "frozen" {
						r.withAgents()
					}
					var recordedAt atomic.Int64
					r.mu.Lock()
					r.onRecord = func(TopologyChange) { recordedAt.CompareAndSwap(0, time.Now().UnixNano()) }
					r.mu.Unlock()
					w := startWriterWithin(r, 250*time.Millisecond)
					defer w.halt()
					r.until("writes flowing", 10*time.Second, func() bool { return w.next.Load() > 20 })
					p := r.recorded().Primary
					stopped := time.Now()
					r.servers[p].Pause()
					defer func() {
						if kind == "partitioned" {
							r.servers[p].Resume()
						}
					}()
					// A write in flight as the primary stopped may still have been answered:
					// count from the promotion.
					r.until("a write acknowledged by the new primary", 60*time.Second, func() bool {
						at := recordedAt.Load()
						return at != 0 && w.okAfter(time.Unix(0, at))
					})
					at := time.Unix(0, recordedAt.Load())
					promoted = append(promoted, at.Sub(stopped))
					acked = append(acked, w.firstAckAfter(at).Sub(stopped))
				}()
			}
			report(b, "promoted", promoted)
			report(b, "first-ack", acked)
		})
	}
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

// BenchmarkDynamicConfig measures, on three real servers with the default interval (1s), the
// time from a change of a dynamic option (max_connections) to every instance holding it, and
// what reading the variables adds to one observation of the cluster (Observe with and without
// options in the spec).
func BenchmarkDynamicConfig(b *testing.B) {
	r := bootstrapped(b)
	dbs := map[int]*sql.DB{}
	for o := range r.servers {
		dbs[o] = r.db(o, engine.OperatorUser, adminPassword, 2*time.Second)
	}
	var applied []time.Duration
	for i := 0; i < trials(); i++ {
		value := strconv.Itoa(600 + i)
		r.mu.Lock()
		r.spec.Config = []Setting{{Name: "max_connections", Value: value, Dynamic: true}, {Name: "long_query_time", Value: "2", Dynamic: true}}
		r.mu.Unlock()
		at := time.Now()
		r.loop.Poke()
		r.until("max_connections on every instance", 30*time.Second, func() bool {
			for o := range dbs {
				var v string
				if err := dbs[o].QueryRow("SELECT @@GLOBAL.max_connections").Scan(&v); err != nil || v != value {
					return false
				}
			}
			return true
		})
		applied = append(applied, time.Since(at))
	}
	report(b, "dynamic-applied", applied)

	observe := func(cfg []Setting) []time.Duration {
		snap, err := r.Snapshot(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		snap.Spec.Config = cfg
		var d []time.Duration
		for i := 0; i < 50; i++ {
			start := time.Now()
			for _, in := range Observe(context.Background(), snap, time.Second) {
				if in.SQL == nil || (len(cfg) > 0 && in.Variables == nil) {
					b.Fatalf("%s: %s %s", in.Name, in.Error, in.VariablesError)
				}
			}
			d = append(d, time.Since(start))
		}
		return d
	}
	report(b, "observe-without-options", observe(nil))
	report(b, "observe-with-2-options", observe(r.report().Observation.Spec.Config))
}
