package agent

import (
	"context"
	"database/sql"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/kura-db/kura/internal/engine"
	"github.com/kura-db/kura/internal/enginetest"
)

// TestFenceOrStopAFrozenPrimary runs POST /v1/fence against a real mariadbd: a server that
// answers is fenced; a frozen server that last answered as a writable semi-sync primary is
// killed (it can never answer as writable again); a frozen server that last answered as
// read-only, or a process that never answered the agent, is left alone.
func TestFenceOrStopAFrozenPrimary(t *testing.T) {
	c := enginetest.Start(t, 1, enginetest.Options{})
	srv := c.Instances[0]
	ctx := context.Background()
	opts := engine.Options{ConnectTimeout: 300 * time.Millisecond, ReadTimeout: time.Second, WriteTimeout: time.Second}
	op := srv.Open(opts)
	if err := op.ConfigureSemiSync(ctx, engine.SemiSyncConfig{Role: engine.RolePrimary, WaitCount: 1}); err != nil {
		t.Fatal(err)
	}
	observer, err := sql.Open("mysql", engine.DSN(srv.Endpoint(engine.AgentUser, enginetest.AgentPassword), opts))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = observer.Close() }()
	f := &SelfFence{Observer: observer, Fencer: srv.Open(opts), OperatorUser: engine.OperatorUser,
		Grace: time.Hour, PidFile: filepath.Join(srv.Dir, "mysqld.pid")}
	api := httptest.NewServer((&Server{Token: "t0ken", Guard: f}).Handler())
	defer api.Close()
	cl := &Client{BaseURL: api.URL, Token: "t0ken"}

	check := func() {
		t.Helper()
		if _, err := f.Check(ctx); err != nil {
			t.Fatal(err)
		}
	}
	setReadOnly := func(on bool) {
		t.Helper()
		if err := op.SetReadOnly(ctx, on); err != nil {
			t.Fatal(err)
		}
	}

	// Read-only when last seen: a frozen replica is never killed.
	setReadOnly(true)
	check()
	srv.Pause()
	if res, err := cl.FenceOrStop(ctx); err == nil {
		t.Fatalf("a frozen server that last answered as read-only: %+v, want it left alone", res)
	} else {
		t.Logf("frozen, last seen read-only: %v", err)
	}
	if !srv.Running() {
		t.Fatal("a frozen server that last answered as read-only was killed")
	}
	srv.Resume()

	// Answering: fenced, not stopped.
	setReadOnly(false)
	check()
	res, err := cl.FenceOrStop(ctx)
	if err != nil || res.Outcome != FenceOutcomeFenced {
		t.Fatalf("an answering primary: %+v, %v; want %s", res, err, FenceOutcomeFenced)
	}
	var ro int
	if err := observer.QueryRow("SELECT @@read_only").Scan(&ro); err != nil || ro != 1 {
		t.Fatalf("after the fence read_only = %d (%v), want 1", ro, err)
	}

	// A writable primary, then frozen: killed.
	setReadOnly(false)
	check()
	srv.Pause()
	start := time.Now()
	res, err = cl.FenceOrStop(ctx)
	if err != nil || res.Outcome != FenceOutcomeStopped {
		t.Fatalf("a frozen writable primary: %+v, %v; want %s", res, err, FenceOutcomeStopped)
	}
	t.Logf("frozen writable primary stopped in %s: %s", time.Since(start).Round(time.Millisecond), res.Message)
	deadline := time.Now().Add(5 * time.Second)
	for srv.Running() {
		if time.Now().After(deadline) {
			t.Fatal("the frozen primary still runs after it was reported stopped")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if res, err := cl.FenceOrStop(ctx); err != nil || res.Outcome != FenceOutcomeNotRunning {
		t.Fatalf("no server: %+v, %v; want %s", res, err, FenceOutcomeNotRunning)
	}

	// Started again and frozen before the agent saw it answer: left alone (it may be
	// recovering; the killed process's answers do not speak for it).
	srv.Restart()
	srv.Pause()
	if res, err := cl.FenceOrStop(ctx); err == nil {
		t.Fatalf("a restarted server the agent never saw answer: %+v, want it left alone", res)
	}
	if !srv.Running() {
		t.Fatal("a restarted server the agent never saw answer was killed")
	}
	srv.Resume()
}
