package localcluster_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/kura-db/kura/test/localcluster"
)

// TestLocalCluster starts the whole local cluster (real etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler and the node agent), proves what Pods get from it,
// then tears it down and proves nothing is left behind.
func TestLocalCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real control plane and Pods as processes; skipped under -short")
	}
	if os.Geteuid() != 0 {
		t.Fatal("the local cluster needs root (network namespaces, a bridge, nftables, mounts): run as root")
	}
	cfg := newConfig(t)
	before := takeSnapshot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	timings, err := cfg.Up(ctx)
	tornDown := false
	defer func() {
		if !tornDown {
			if err := cfg.Down(localcluster.DownOptions{}); err != nil {
				t.Errorf("teardown: %v", err)
			}
		}
	}()
	if err != nil {
		logs, _ := os.ReadFile(cfg.Path("logs", "agent.log"))
		t.Fatalf("failed to start the local cluster: %v\nagent log:\n%s", err, logs)
	}
	t.Logf("control plane ready in %s; %d Nodes Ready in %s", timings.ControlPlane, cfg.Nodes, timings.Nodes)
	cs, err := cfg.Client()
	if err != nil {
		t.Fatal(err)
	}
	e := &env{cfg: cfg, cs: cs, pids: map[int]bool{}}

	t.Run("StatefulSetSpreadAndNetworking", e.testStatefulSet)
	t.Run("EnvAndSecurityContext", e.testEnv)
	t.Run("Volumes", e.testVolumes)
	t.Run("Probes", e.testProbes)
	t.Run("CrashLoopBackOff", e.testCrashLoop)
	t.Run("GracefulTermination", e.testTermination)
	t.Run("Job", e.testJob)
	t.Run("Images", e.testImages)
	t.Run("MariaDB", e.testMariaDB)
	t.Run("AgentRestart", e.testAgentRestart)

	t.Run("TeardownLeavesNothing", func(t *testing.T) {
		tornDown = true
		if err := cfg.Down(localcluster.DownOptions{}); err != nil {
			t.Fatalf("teardown: %v", err)
		}
		after := takeSnapshot(t)
		before.compare(t, after)
		for pid := range e.pids {
			if alive(pid) {
				t.Errorf("container process %d still exists after teardown", pid)
			}
		}
		if _, err := os.Stat(cfg.StateDir); err == nil {
			t.Errorf("state dir %s still exists after teardown", cfg.StateDir)
		}
	})
}
