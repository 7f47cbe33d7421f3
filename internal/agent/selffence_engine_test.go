package agent

import (
	"context"
	"database/sql"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kura-db/kura/internal/engine"
	"github.com/kura-db/kura/internal/enginetest"
)

// TestSelfFenceOfACutOffPrimary runs SelfFence against a real mariadbd: a writable semi-sync
// primary stays writable while the operator runs statements on it or another instance's agent
// answers, and is made read-only within the grace period plus a second once both have been
// silent for the grace period. A primary without semi-sync (a single-instance cluster) is never
// fenced.
func TestSelfFenceOfACutOffPrimary(t *testing.T) {
	c := enginetest.Start(t, 1, enginetest.Options{})
	srv := c.Instances[0]
	ctx := context.Background()
	op := srv.Open(engine.Options{})
	if err := op.ConfigureSemiSync(ctx, engine.SemiSyncConfig{Role: engine.RolePrimary, WaitCount: 1}); err != nil {
		t.Fatal(err)
	}
	if err := op.SetReadOnly(ctx, false); err != nil {
		t.Fatal(err)
	}
	observer, err := sql.Open("mysql", engine.DSN(srv.Endpoint(engine.AgentUser, enginetest.AgentPassword), engine.Options{}))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = observer.Close() }()

	// The operator: one connection that runs a statement while contact is on.
	operator, err := sql.Open("mysql", engine.DSN(srv.Operator(), engine.Options{}))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = operator.Close() }()
	operator.SetMaxOpenConns(1)
	var operatorOn, peerOn atomic.Bool
	operatorOn.Store(true)
	peerOn.Store(true)
	every(t, 200*time.Millisecond, func() {
		if operatorOn.Load() {
			_ = operator.Ping()
			_, _ = operator.Exec("SELECT 1")
		}
	})
	peer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if !peerOn.Load() {
			// Hang as a partitioned peer does; the client's timeout ends the request.
			time.Sleep(2 * time.Second)
		}
		_, _ = w.Write([]byte("ok\n"))
	}))
	defer peer.Close()

	const grace = 1500 * time.Millisecond
	f := &SelfFence{Observer: observer, Fencer: srv.Open(engine.Options{}), OperatorUser: engine.OperatorUser,
		Peers: []*Client{{BaseURL: peer.URL}, {BaseURL: "http://127.0.0.1:1"}}, Grace: grace, Interval: 100 * time.Millisecond}
	check := func() bool {
		t.Helper()
		fenced, err := f.Check(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return fenced
	}
	readOnly := func() bool {
		var ro int
		if err := observer.QueryRow("SELECT @@read_only").Scan(&ro); err != nil {
			t.Fatal(err)
		}
		return ro != 0
	}
	checkFor := func(d time.Duration) (fencedAfter time.Duration, fenced bool) {
		start := time.Now()
		for time.Since(start) < d {
			if check() {
				return time.Since(start), true
			}
			time.Sleep(100 * time.Millisecond)
		}
		return 0, false
	}

	// Operator contact and a reachable peer: never.
	if _, fenced := checkFor(2 * grace); fenced || readOnly() {
		t.Fatal("fenced while the operator and a peer were in contact")
	}
	// The operator is silent, a peer answers: still writable (the operator may be restarting).
	operatorOn.Store(false)
	if _, fenced := checkFor(2 * grace); fenced || readOnly() {
		t.Fatal("fenced while another instance's agent answered")
	}
	// Both silent: fenced within the grace period plus a second.
	peerOn.Store(false)
	after, fenced := checkFor(grace + 3*time.Second)
	if !fenced || !readOnly() {
		t.Fatal("a primary cut off from the operator and every peer stayed writable")
	}
	if after > grace+time.Second {
		t.Errorf("fenced %s after the last contact, want at most grace %s + 1s", after, grace)
	}
	t.Logf("fenced %s after the peer went silent (grace %s)", after, grace)

	// Without semi-sync (a single-instance cluster) nothing happens.
	if err := op.ConfigureSemiSync(ctx, engine.SemiSyncConfig{Role: engine.RolePrimary, WaitCount: 0}); err != nil {
		t.Fatal(err)
	}
	if err := op.SetReadOnly(ctx, false); err != nil {
		t.Fatal(err)
	}
	f.lastOperator, f.lastPeer = time.Time{}, time.Time{}
	if _, fenced := checkFor(2 * grace); fenced || readOnly() {
		t.Fatal("a primary without semi-sync replicas fenced itself")
	}
}

// TestSelfFenceNeverWhileAReplicaAcknowledges: a primary whose semi-sync replica keeps
// acknowledging its commits is not cut off, even when the operator is silent and no peer's
// agent answers (a loaded machine, slow name resolution): it never fences itself then, and
// does once the acknowledgements stop for the grace period.
func TestSelfFenceNeverWhileAReplicaAcknowledges(t *testing.T) {
	c := enginetest.Start(t, 2, enginetest.Options{})
	src, rep := c.Instances[0], c.Instances[1]
	ctx := context.Background()
	op, rop := src.Open(engine.Options{}), rep.Open(engine.Options{})
	if err := op.ConfigureSemiSync(ctx, engine.SemiSyncConfig{Role: engine.RolePrimary, WaitCount: 1}); err != nil {
		t.Fatal(err)
	}
	if err := rop.ConfigureSemiSync(ctx, engine.SemiSyncConfig{Role: engine.RoleReplica}); err != nil {
		t.Fatal(err)
	}
	if err := rop.ConfigureReplica(ctx, src.ReplicationSource()); err != nil {
		t.Fatal(err)
	}
	if err := rop.StartReplication(ctx, engine.BothThreads); err != nil {
		t.Fatal(err)
	}
	if err := op.SetReadOnly(ctx, false); err != nil {
		t.Fatal(err)
	}
	enginetest.Exec(t, src.DB(), "CREATE DATABASE IF NOT EXISTS app", "CREATE TABLE app.acks (id INT AUTO_INCREMENT PRIMARY KEY)",
		"CREATE USER 'writer'@'%' IDENTIFIED BY 'w-pw'", "GRANT INSERT ON app.* TO 'writer'@'%'")
	// Not the operator's account: its statements would count as operator contact.
	db, err := sql.Open("mysql", engine.DSN(src.Endpoint("writer", "w-pw"), engine.Options{}))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = db.Close() }()
	observer, err := sql.Open("mysql", engine.DSN(src.Endpoint(engine.AgentUser, enginetest.AgentPassword), engine.Options{}))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = observer.Close() }()
	var writing atomic.Bool
	writing.Store(true)
	every(t, 100*time.Millisecond, func() {
		if writing.Load() {
			_, _ = db.Exec("INSERT INTO app.acks () VALUES ()")
		}
	})
	const grace = 1500 * time.Millisecond
	f := &SelfFence{Observer: observer, Fencer: src.Open(engine.Options{}), OperatorUser: engine.OperatorUser,
		Peers: []*Client{{BaseURL: "http://127.0.0.1:1"}}, Grace: grace, Interval: 100 * time.Millisecond}
	checkFor := func(d time.Duration) bool {
		t.Helper()
		for start := time.Now(); time.Since(start) < d; time.Sleep(100 * time.Millisecond) {
			fenced, err := f.Check(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if fenced {
				return true
			}
		}
		return false
	}
	if checkFor(3 * grace) {
		t.Fatal("a primary whose replica acknowledged its writes fenced itself")
	}
	writing.Store(false)
	if !checkFor(grace + 3*time.Second) {
		t.Fatal("a primary without operator, peers or acknowledgements stayed writable")
	}
}

// every runs f every d in the background until the test ends.
func every(t *testing.T, d time.Duration, f func()) {
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case <-time.After(d):
			}
			f()
		}
	}()
	t.Cleanup(func() { close(stop); <-done })
}
