package engine_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kura-db/kura/internal/engine"
	"github.com/kura-db/kura/internal/enginetest"
	"github.com/kura-db/kura/internal/gtid"
)

// eventually polls cond until it holds or the timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, detail := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached within %s: %s", what, timeout, detail)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func mustExec(t *testing.T, db *sql.DB, queries ...string) {
	t.Helper()
	for _, q := range queries {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// replicate makes inst a semi-sync replica of src and starts it.
func replicate(t *testing.T, ctx context.Context, inst engine.Instance, src *enginetest.Instance) {
	t.Helper()
	if err := inst.ConfigureSemiSync(ctx, engine.SemiSyncConfig{Role: engine.RoleReplica}); err != nil {
		t.Fatal(err)
	}
	if err := inst.ConfigureReplica(ctx, src.ReplicationSource()); err != nil {
		t.Fatal(err)
	}
	if err := inst.StartReplication(ctx, engine.BothThreads); err != nil {
		t.Fatal(err)
	}
}

// primaryAndReplica starts two instances: a primary waiting for waitCount acknowledgements
// and its semi-sync replica.
func primaryAndReplica(t *testing.T, ctx context.Context, waitCount int) (p, r *enginetest.Instance, pe, re engine.Instance) {
	t.Helper()
	c := enginetest.Start(t, 2, enginetest.Options{})
	p, r = c.Instances[0], c.Instances[1]
	pe, re = p.Open(engine.Options{}), r.Open(engine.Options{})
	promote(t, ctx, pe, waitCount)
	replicate(t, ctx, re, p)
	return p, r, pe, re
}

func promote(t *testing.T, ctx context.Context, inst engine.Instance, waitCount int) {
	t.Helper()
	if err := inst.StopReplicaAndReset(ctx); err != nil {
		t.Fatal(err)
	}
	if err := inst.ConfigureSemiSync(ctx, engine.SemiSyncConfig{Role: engine.RolePrimary, WaitCount: waitCount}); err != nil {
		t.Fatal(err)
	}
	if err := inst.SetReadOnly(ctx, false); err != nil {
		t.Fatal(err)
	}
}

// TestMariaDBReplication bootstraps a primary and two semi-sync replicas, then exercises every
// replication method: thread control, waits, received-but-unapplied transactions, an apply
// error, errant transactions and a switchover in which the old primary rejoins.
func TestMariaDBReplication(t *testing.T) {
	c := enginetest.Start(t, 3, enginetest.Options{})
	ctx := context.Background()
	p, r1, r2 := c.Instances[0], c.Instances[1], c.Instances[2]
	pe, r1e, r2e := p.Open(engine.Options{}), r1.Open(engine.Options{}), r2.Open(engine.Options{ReadTimeout: 2 * time.Second})

	for _, inst := range []engine.Instance{pe, r1e, r2e} {
		st := inst.Status(ctx)
		if !st.Reachable || st.Error != "" || !st.ReadOnly || st.Writable() || st.Replica != nil || !st.ExecutedGTID.IsEmpty() {
			t.Fatalf("fresh instance %s: %+v", inst.Endpoint().Address(), st)
		}
	}

	// Bootstrap: instance 0 is the primary; loss-less semi-sync waits for one replica.
	promote(t, ctx, pe, 1)
	replicate(t, ctx, r1e, p)
	replicate(t, ctx, r2e, p)
	if err := r1e.ConfigureReplica(ctx, p.ReplicationSource()); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "both replicas connected with semi-sync", func() (bool, string) {
		st := pe.Status(ctx)
		s1, s2 := r1e.Status(ctx), r2e.Status(ctx)
		ok := st.SemiSync.SourceActive && st.SemiSync.SourceClients == 2 && s1.Replica.Replicating() && s2.Replica.Replicating() &&
			s1.SemiSync.ReplicaActive && s2.SemiSync.ReplicaActive
		return ok, fmt.Sprintf("primary %+v r1 %+v r2 %+v", st.SemiSync, s1.Replica, s2.Replica)
	})
	st := pe.Status(ctx)
	if !st.Writable() || st.SemiSync.WaitPoint != "AFTER_SYNC" || st.SemiSync.Timeout < 49*24*time.Hour || !st.SemiSync.SourceEnabled {
		t.Fatalf("primary: %+v", st)
	}
	s1 := r1e.Status(ctx)
	if s1.Replica.SourceHost != p.Host || s1.Replica.SourcePort != p.Port || s1.Replica.UsingGTID != "Slave_Pos" ||
		s1.Replica.SourceUser != engine.ReplicationUser || s1.Replica.LastIOErrno != 0 {
		t.Fatalf("replica 1: %+v", s1.Replica)
	}

	// A write is acknowledged by a replica before the commit returns.
	db := p.DB()
	mustExec(t, db, "CREATE DATABASE shop", "CREATE TABLE shop.t (id INT PRIMARY KEY, v TEXT)", "INSERT INTO shop.t VALUES (1, 'a')")
	st = pe.Status(ctx)
	if st.SemiSync.AckedTransactions < 3 || st.SemiSync.UnackedTransactions != 0 || !st.SemiSync.SourceActive {
		t.Fatalf("writes not acknowledged: %+v", st.SemiSync)
	}
	if got := st.ExecutedGTID.String(); got != "0-1000-3" {
		t.Fatalf("primary executed %q, want 0-1000-3", got)
	}
	for _, r := range []engine.Instance{r1e, r2e} {
		if err := r.WaitForGTID(ctx, st.ExecutedGTID, 30*time.Second); err != nil {
			t.Fatal(err)
		}
		if got := r.Status(ctx); !got.ExecutedGTID.Equal(st.ExecutedGTID) || got.Writable() {
			t.Fatalf("replica %s: executed %s writable %v", r.Endpoint().Address(), got.ExecutedGTID, got.Writable())
		}
	}

	// I/O thread stopped on replica 2: it falls behind and a bounded wait times out (split
	// into calls shorter than its 2s read timeout), then catches up once restarted.
	if err := r2e.StopReplication(ctx, engine.IOThread); err != nil {
		t.Fatal(err)
	}
	if s := r2e.Status(ctx); s.Replica.IOThread != engine.ThreadStopped || s.Replica.SQLThread != engine.ThreadRunning {
		t.Fatalf("replica 2 threads: %+v", s.Replica)
	}
	mustExec(t, db, "INSERT INTO shop.t VALUES (2, 'b')")
	target := pe.Status(ctx).ExecutedGTID
	start := time.Now()
	err := r2e.WaitForGTID(ctx, target, 3*time.Second)
	if !errors.Is(err, engine.ErrWaitTimeout) || time.Since(start) < 3*time.Second {
		t.Fatalf("wait on a stopped replica: %v after %s", err, time.Since(start))
	}
	if !strings.Contains(err.Error(), "0-1000-4") {
		t.Fatalf("timeout error does not say what is missing: %v", err)
	}
	if err := r2e.StartReplication(ctx, engine.IOThread); err != nil {
		t.Fatal(err)
	}
	if err := r2e.WaitForGTID(ctx, target, 30*time.Second); err != nil {
		t.Fatal(err)
	}

	// SQL thread stopped on replica 1: the transaction is received (retrieved) but not
	// executed — what failover compares.
	if err := r1e.StopReplication(ctx, engine.SQLThread); err != nil {
		t.Fatal(err)
	}
	mustExec(t, db, "INSERT INTO shop.t VALUES (3, 'c')")
	target = pe.Status(ctx).ExecutedGTID
	eventually(t, 30*time.Second, "replica 1 receives without applying", func() (bool, string) {
		s := r1e.Status(ctx)
		return s.RetrievedGTID.Contains(target) && !s.ExecutedGTID.Contains(target) && s.Replica.SQLThread == engine.ThreadStopped,
			fmt.Sprintf("retrieved %s executed %s", s.RetrievedGTID, s.ExecutedGTID)
	})
	if s := r1e.Status(ctx); s.Replica.SecondsBehindSource != nil || s.Replica.RelayLogSpace <= 0 {
		t.Fatalf("replica 1 with SQL stopped: lag %v relay space %d", s.Replica.SecondsBehindSource, s.Replica.RelayLogSpace)
	}
	if err := r1e.StartReplication(ctx, engine.SQLThread); err != nil {
		t.Fatal(err)
	}
	if err := r1e.WaitForGTID(ctx, target, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if s := r1e.Status(ctx); s.Replica.SecondsBehindSource == nil {
		t.Fatal("a running replica must report its lag")
	}

	// A conflicting local row (not binlogged) breaks replica 2's SQL thread: the error is in
	// Status; removing the row and restarting the thread repairs it.
	r2db := r2.DB()
	mustExec(t, r2db, "SET SESSION sql_log_bin = 0", "INSERT INTO shop.t VALUES (100, 'local')")
	mustExec(t, db, "INSERT INTO shop.t VALUES (100, 'primary')")
	eventually(t, 30*time.Second, "replica 2 reports the duplicate key", func() (bool, string) {
		s := r2e.Status(ctx)
		return s.Replica.SQLThread == engine.ThreadStopped && s.Replica.LastSQLErrno == 1062 &&
			strings.Contains(s.Replica.LastSQLError, "Duplicate entry"), fmt.Sprintf("%+v", s.Replica)
	})
	if s := r2e.Status(ctx); !s.Reachable || s.Error != "" || s.Replica.IOThread != engine.ThreadRunning {
		t.Fatalf("broken replica status: %+v", s)
	}
	conn, err := r2db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"SET SESSION sql_log_bin = 0", "DELETE FROM shop.t WHERE id = 100"} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	_ = conn.Close()
	if err := r2e.StartReplication(ctx, engine.SQLThread); err != nil {
		t.Fatal(err)
	}
	target = pe.Status(ctx).ExecutedGTID
	if err := r2e.WaitForGTID(ctx, target, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if s := r2e.Status(ctx); s.Replica.LastSQLErrno != 0 || !s.Replica.Replicating() {
		t.Fatalf("repaired replica: %+v", s.Replica)
	}

	// Switchover to replica 1: fence, wait, promote, repoint; the old primary rejoins with
	// its own last transaction as position (gtid_current_pos copied into gtid_slave_pos).
	if _, err := pe.Fence(ctx); err != nil {
		t.Fatal(err)
	}
	final := pe.Status(ctx).ExecutedGTID
	if err := r1e.WaitForGTID(ctx, final, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	promote(t, ctx, r1e, 1)
	replicate(t, ctx, r2e, r1)
	if err := pe.ConfigureSemiSync(ctx, engine.SemiSyncConfig{Role: engine.RoleReplica}); err != nil {
		t.Fatal(err)
	}
	if err := pe.ConfigureReplica(ctx, r1.ReplicationSource()); err != nil {
		t.Fatal(err)
	}
	if pos := pe.Status(ctx).ReplicaPosition; !pos.Equal(final.Position()) {
		t.Fatalf("old primary resumes at %q, want its own last transaction %q", pos, final.Position())
	}
	if err := pe.StartReplication(ctx, engine.BothThreads); err != nil {
		t.Fatal(err)
	}
	mustExec(t, r1.DB(), "INSERT INTO shop.t VALUES (4, 'after switchover')")
	newTarget := r1e.Status(ctx).ExecutedGTID
	want := final.Union(gtid.MustParse(gtid.MariaDB, fmt.Sprintf("0-%d-%d", r1.ServerID, gtidSeq(final)+1)))
	if !newTarget.Equal(want) {
		t.Fatalf("new primary executed %s, want %s", newTarget, want)
	}
	for _, r := range []engine.Instance{pe, r2e} {
		if err := r.WaitForGTID(ctx, newTarget, 30*time.Second); err != nil {
			t.Fatalf("%s: %v (%+v)", r.Endpoint().Address(), err, r.Status(ctx).Replica)
		}
	}
	old := pe.Status(ctx)
	if old.Writable() || old.Replica.LastIOErrno != 0 || !old.Replica.Replicating() || old.Replica.SourcePort != r1.Port {
		t.Fatalf("old primary after rejoining: %+v", old.Replica)
	}
	if !old.ExecutedGTID.Equal(newTarget) {
		t.Fatalf("old primary %s, new primary %s", old.ExecutedGTID, newTarget)
	}

	// An errant transaction: a write on a replica with binary logging on. Subtract names it.
	mustExec(t, r2.DB(), "INSERT INTO shop.t VALUES (200, 'errant')")
	errant := r2e.Status(ctx).ExecutedGTID.Subtract(r1e.Status(ctx).ExecutedGTID)
	if errant.String() != fmt.Sprintf("0-%d-%d", r2.ServerID, gtidSeq(newTarget)+1) {
		t.Fatalf("errant set = %q (replica %s, primary %s)", errant, r2e.Status(ctx).ExecutedGTID, newTarget)
	}
	if r1e.Status(ctx).ExecutedGTID.Contains(r2e.Status(ctx).ExecutedGTID) {
		t.Fatal("the primary must not contain an errant replica's set")
	}
}

func gtidSeq(s gtid.Set) uint64 {
	var max uint64
	for _, g := range s.MariaDBGTIDs() {
		if g.Seq > max {
			max = g.Seq
		}
	}
	return max
}

// TestMariaDBReplicaPositionBehindBinlog: a replica killed after it applied and logged a DDL
// statement but before mysql.gtid_slave_pos recorded it restarts with gtid_slave_pos behind
// its binary log. ConfigureReplica must move the position up to what the instance executed,
// or replication would apply the statement again and stop with error 1950. The crash window is
// reproduced by setting the stale position by hand.
func TestMariaDBReplicaPositionBehindBinlog(t *testing.T) {
	ctx := context.Background()
	p, r, pe, re := primaryAndReplica(t, ctx, 0)
	db := p.DB()
	mustExec(t, db, "CREATE DATABASE before_crash")
	stale := pe.Status(ctx).ExecutedGTID
	mustExec(t, db, "CREATE DATABASE lost_record")
	if err := re.WaitForGTID(ctx, pe.Status(ctx).ExecutedGTID, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := re.StopReplication(ctx, engine.BothThreads); err != nil {
		t.Fatal(err)
	}
	mustExec(t, r.DB(), fmt.Sprintf("SET GLOBAL gtid_slave_pos = '%s'", stale))
	mustExec(t, db, "CREATE DATABASE after_restart")
	want := pe.Status(ctx).ExecutedGTID

	if err := re.ConfigureReplica(ctx, p.ReplicationSource()); err != nil {
		t.Fatal(err)
	}
	if err := re.StartReplication(ctx, engine.BothThreads); err != nil {
		t.Fatal(err)
	}
	if err := re.WaitForGTID(ctx, want, 30*time.Second); err != nil {
		t.Fatalf("replica did not catch up: %v; replica %+v", err, re.Status(ctx).Replica)
	}
	st := re.Status(ctx)
	if st.Replica == nil || !st.Replica.Replicating() || st.Replica.LastSQLErrno != 0 {
		t.Fatalf("replica after restart: %+v", st.Replica)
	}
	if !st.ReplicaPosition.Equal(want.Position()) {
		t.Errorf("replica position %s, want %s", st.ReplicaPosition, want.Position())
	}
}

// TestMariaDBKilledPrimaryDropsUnacknowledgedTransaction: with the rendered configuration
// (init_rpl_role=SLAVE, semi-sync replica side on), a primary killed while a commit waits for
// an acknowledgement restarts without that transaction: crash recovery rolls it back and cuts
// it from the binary log, so the old primary is not errant. The client never saw the commit.
func TestMariaDBKilledPrimaryDropsUnacknowledgedTransaction(t *testing.T) {
	ctx := context.Background()
	p, _, pe, re := primaryAndReplica(t, ctx, 1)
	db := p.DB()
	mustExec(t, db, "CREATE DATABASE d", "CREATE TABLE d.t (id INT PRIMARY KEY)", "INSERT INTO d.t VALUES (1)")
	acked := pe.Status(ctx).ExecutedGTID
	if err := re.StopReplication(ctx, engine.IOThread); err != nil {
		t.Fatal(err)
	}
	committed := make(chan error, 1)
	go func() {
		_, err := db.Exec("INSERT INTO d.t VALUES (2)")
		committed <- err
	}()
	eventually(t, 10*time.Second, "the commit waiting for an acknowledgement", func() (bool, string) {
		st := pe.Status(ctx)
		return st.SemiSync.UnackedTransactions > 0 || !st.ExecutedGTID.Equal(acked), fmt.Sprintf("%+v", st.SemiSync)
	})
	select {
	case err := <-committed:
		t.Fatalf("the commit returned without an acknowledgement: %v", err)
	default:
	}
	p.Kill()
	p.Restart()
	st := pe.Status(ctx)
	if !st.ExecutedGTID.Equal(acked) {
		t.Errorf("restarted primary executed %s, want %s (the unacknowledged transaction cut)", st.ExecutedGTID, acked)
	}
	var n int
	if err := p.DB().QueryRow("SELECT COUNT(*) FROM d.t").Scan(&n); err != nil || n != 1 {
		t.Errorf("rows after restart = %d (%v), want 1", n, err)
	}
}
