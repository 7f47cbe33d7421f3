package enginetest

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kura-db/kura/internal/engine"
)

func TestClusterLifecycle(t *testing.T) {
	c := Start(t, 2, Options{})
	ctx := context.Background()
	seen := map[uint32]bool{}
	for _, inst := range c.Instances {
		st := inst.Open(engine.Options{}).Status(ctx)
		if !st.Reachable || st.Error != "" {
			t.Fatalf("instance %d: %+v", inst.Index, st)
		}
		if st.ServerID != inst.ServerID || seen[st.ServerID] {
			t.Fatalf("instance %d reports server_id %d", inst.Index, st.ServerID)
		}
		seen[st.ServerID] = true
		// The rendered config is in force: read-only, binary log on, nothing executed.
		if !st.ReadOnly || !st.LogBin || !st.ExecutedGTID.IsEmpty() || st.Replica != nil {
			t.Fatalf("instance %d does not start as configured: %+v", inst.Index, st)
		}
		if !engine.Initialized(inst.DataDir) {
			t.Fatalf("instance %d: data directory lacks the init marker", inst.Index)
		}
	}

	i0 := c.Instances[0]
	db := i0.DB()
	if _, err := db.Exec("CREATE DATABASE lifecycle"); err != nil {
		t.Fatal(err)
	}
	i0.Kill()
	if i0.Running() {
		t.Fatal("killed instance still running")
	}
	i0.Restart()
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'lifecycle'").Scan(&n); err != nil || n != 1 {
		t.Fatalf("data lost across kill and restart: n=%d err=%v", n, err)
	}
	i0.Stop()
	i0.Restart()

	// A paused server keeps its port but answers nothing: Status gives up within its bound.
	i1 := c.Instances[1]
	inst := i1.Open(engine.Options{ConnectTimeout: 500 * time.Millisecond, ReadTimeout: time.Second, WriteTimeout: time.Second})
	i1.Pause()
	start := time.Now()
	st := inst.Status(ctx)
	if st.Reachable || time.Since(start) > 5*time.Second {
		t.Fatalf("paused instance: reachable=%v after %s (%s)", st.Reachable, time.Since(start), st.Error)
	}
	i1.Resume()
	if err := i1.WaitReady(); err != nil {
		t.Fatal(err)
	}
}

func TestRenderedConfigIsUsed(t *testing.T) {
	c := Start(t, 1, Options{ExtraConfig: []string{"max_connections = 77"}})
	var v int
	if err := c.Instances[0].DB().QueryRow("SELECT @@max_connections").Scan(&v); err != nil || v != 77 {
		t.Fatalf("max_connections = %d, %v", v, err)
	}
	b, err := os.ReadFile(filepath.Join(c.Instances[0].Dir, "my.cnf"))
	if err != nil {
		t.Fatal(err)
	}
	if len(b) == 0 {
		t.Fatal("empty my.cnf")
	}
}

// BenchmarkStart3 measures starting three initialised instances until each accepts
// connections: go test -run XXX -bench Start3 -benchtime 3x ./internal/enginetest/
func BenchmarkStart3(b *testing.B) {
	for b.Loop() {
		Start(b, 3, Options{}).Close()
	}
}
