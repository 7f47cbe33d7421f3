package localcluster_test

import (
	"context"
	"fmt"
	"os"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kura-db/kura/test/localcluster"
)

// BenchmarkPodStart starts the local cluster (reported as control-plane-s and nodes-ready-s),
// then measures, per iteration, a Pod from creation to Ready: scheduling, network namespace,
// volumes (the service-account token), container start and status report. Finally it restarts
// the node agent with those b.N Pods running (agent-restart-s: SIGTERM to the new agent serving,
// every Pod adopted).
//
//	go test ./test/localcluster/ -run '^$' -bench PodStart -benchtime 20x
func BenchmarkPodStart(b *testing.B) {
	if testing.Short() {
		b.Skip("starts a real control plane; skipped under -short")
	}
	if os.Geteuid() != 0 {
		b.Fatal("the local cluster needs root: run as root")
	}
	cfg := newConfig(b)
	ctx := context.Background()
	timings, err := cfg.Up(ctx)
	defer func() {
		if err := cfg.Down(localcluster.DownOptions{}); err != nil {
			b.Errorf("teardown: %v", err)
		}
	}()
	if err != nil {
		b.Fatalf("failed to start the local cluster: %v", err)
	}
	cs, err := cfg.Client()
	if err != nil {
		b.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		if _, err := cs.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{}); err == nil {
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("default service account never appeared")
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		name := fmt.Sprintf("bench-%d", i)
		if _, err := cs.CoreV1().Pods("default").Create(ctx, shPod("default", name, "sleep 100000"), metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
		for {
			p, err := cs.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
			if err == nil && podReady(p) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	b.StopTimer()
	restart := time.Now()
	if err := cfg.RestartAgent(ctx, syscall.SIGTERM); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(time.Since(restart).Seconds(), "agent-restart-s")
	pods, err := cs.CoreV1().Pods("default").List(ctx, metav1.ListOptions{})
	if err != nil {
		b.Fatal(err)
	}
	for _, p := range pods.Items {
		if !podReady(&p) {
			b.Errorf("pod %s not Ready after the agent restart", p.Name)
		}
	}
	b.ReportMetric(timings.ControlPlane.Seconds(), "control-plane-s")
	b.ReportMetric(timings.Nodes.Seconds(), "nodes-ready-s")
}
