package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kura-db/kura/internal/contract"
)

func trials(def int) int {
	if n, err := strconv.Atoi(os.Getenv("KURA_BENCH_TRIALS")); err == nil && n > 0 {
		return n
	}
	return def
}

func report(b *testing.B, what string, ds []time.Duration) {
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	p50, max := ds[len(ds)/2], ds[len(ds)-1]
	b.ReportMetric(p50.Seconds(), "p50-s")
	b.ReportMetric(max.Seconds(), "max-s")
	b.Logf("%s over %d trials: p50 %s, max %s, all %v", what, len(ds), p50.Round(time.Millisecond), max.Round(time.Millisecond), ds)
}

// BenchmarkApplyToAvailable: from creating a 3-instance MySQLCluster to its Available
// condition, as `kubectl apply` then `kubectl wait` see it. Run with -benchtime=1x; the trials
// are internal (KURA_BENCH_TRIALS, default 3).
func BenchmarkApplyToAvailable(b *testing.B) {
	for i := 0; i < b.N; i++ {
		var ds []time.Duration
		for trial := 0; trial < trials(3); trial++ {
			ns := newNamespace(b, "bench-apply")
			start := time.Now()
			if err := k8s.Create(context.Background(), newCluster(ns, "shop", 3)); err != nil {
				b.Fatal(err)
			}
			out, err := exec.Command(kubectl, "--kubeconfig", lc.Kubeconfig(), "wait", "-n", ns, "--for=condition=Available", "mysqlcluster/shop", "--timeout=5m").CombinedOutput()
			if err != nil {
				b.Fatalf("kubectl wait: %v\n%s", err, out)
			}
			ds = append(ds, time.Since(start))
			deleteNamespace(b, ns)
		}
		report(b, "apply → Available (3 instances)", ds)
	}
}

// BenchmarkFailoverThroughTheStack: SIGKILL of the primary's mariadbd → the first write
// acknowledged through the primary Service. Each trial waits for the cluster to heal first.
func BenchmarkFailoverThroughTheStack(b *testing.B) {
	for i := 0; i < b.N; i++ {
		ns := newNamespace(b, "bench-failover")
		if err := k8s.Create(context.Background(), newCluster(ns, "shop", 3)); err != nil {
			b.Fatal(err)
		}
		waitFor(b, "healthy", 5*time.Minute, healthy(b, ns, "shop", 3))
		setupApp(b, ns, "shop")
		var ds []time.Duration
		next := int64(1)
		for trial := 0; trial < trials(5); trial++ {
			w := startWriter(serviceIP(b, ns, "shop-primary"), next)
			waitFor(b, "writes", time.Minute, func() error {
				if w.count() < 10 {
					return fmt.Errorf("%d", w.count())
				}
				return nil
			})
			primary := get(b, ns, "shop").Status.CurrentPrimary
			at := time.Now()
			killContainer(b, ns, primary, contract.ContainerMySQLD)
			waitFor(b, "a write on the new primary", 2*time.Minute, func() error {
				if c := get(b, ns, "shop"); c.Status.CurrentPrimary == primary || !w.ackedSince(at) {
					return fmt.Errorf("not yet")
				}
				return nil
			})
			ds = append(ds, time.Since(at))
			acked := w.halt()
			next += int64(len(acked)) + 1000000
			waitFor(b, "healed", 5*time.Minute, healthy(b, ns, "shop", 3))
		}
		report(b, "failover through the stack", ds)
		deleteNamespace(b, ns)
	}
}

func deleteNamespace(t testing.TB, ns string) {
	t.Helper()
	if err := k8s.Delete(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
}
