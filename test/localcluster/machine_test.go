package localcluster_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/kura-db/kura/test/localcluster"
)

// TestOneClusterPerMachine: only one local cluster fits on a machine. One nobody holds (make
// demo) is refused by name, and the refused run's teardown leaves it running; one abandoned by
// a test process that died before its teardown is taken down by the next test's Up.
func TestOneClusterPerMachine(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real control planes; skipped under -short")
	}
	if os.Geteuid() != 0 {
		t.Fatal("the local cluster needs root: run as root")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	up := func(t *testing.T, cfg *localcluster.Config) {
		t.Helper()
		if _, err := cfg.Up(ctx); err != nil {
			_ = cfg.Down(localcluster.DownOptions{})
			t.Fatalf("failed to start the local cluster: %v", err)
		}
		t.Cleanup(func() { _ = cfg.Down(localcluster.DownOptions{}) })
	}

	t.Run("a cluster nobody holds is refused and left running", func(t *testing.T) {
		demo := newConfig(t)
		demo.Hold = false
		up(t, demo)
		second := newConfig(t)
		_, err := second.Up(ctx)
		if err == nil || !strings.Contains(err.Error(), demo.StateDir) || !strings.Contains(err.Error(), "hack/local-down.sh") {
			t.Fatalf("a second Up with %s running returned %v; want a refusal naming that state dir and hack/local-down.sh", demo.StateDir, err)
		}
		if err := second.Down(localcluster.DownOptions{}); err != nil {
			t.Fatalf("the refused run's teardown: %v", err)
		}
		if got := localcluster.RunningStateDir(); got != demo.StateDir {
			t.Fatalf("after the refused run's teardown the running cluster is %q; want %s still running", got, demo.StateDir)
		}
		if err := localcluster.IP("link", "show", "dev", localcluster.BridgeName); err != nil {
			t.Fatalf("the refused run's teardown removed the running cluster's bridge: %v", err)
		}
	})

	t.Run("an abandoned cluster is taken down by the next holder", func(t *testing.T) {
		abandoned := newConfig(t)
		up(t, abandoned)
		abandoned.Abandon()
		next := newConfig(t)
		up(t, next)
		if got := localcluster.RunningStateDir(); got != next.StateDir {
			t.Fatalf("the running cluster is %q; want the new one, %s", got, next.StateDir)
		}
		cs, err := next.Client()
		if err != nil {
			t.Fatal(err)
		}
		if err := next.WaitNodesReady(ctx, time.Minute); err != nil {
			t.Fatalf("the new cluster's Nodes: %v", err)
		}
		if _, err := cs.Discovery().ServerVersion(); err != nil {
			t.Fatalf("the new cluster's API server: %v", err)
		}
	})
}
