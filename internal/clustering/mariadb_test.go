package clustering

import (
	"context"
	"database/sql"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kura-db/kura/internal/engine"
)

// writer inserts unique ids into the recorded primary as the application account, one at a
// time, recording every acknowledged commit.
type writer struct {
	r       *rig
	next    atomic.Int64
	mu      sync.Mutex
	acked   []int64
	lastOK  time.Time
	maxGap  time.Duration
	ackAt   []time.Time
	stop    chan struct{}
	done    chan struct{}
	dbs     map[int]*sql.DB
	started time.Time
	// timeout bounds one write (2 s when zero).
	timeout time.Duration
}

func startWriter(r *rig) *writer { return startWriterWithin(r, 0) }

// startWriterWithin starts a writer whose writes each give up after timeout (2 s when zero).
func startWriterWithin(r *rig, timeout time.Duration) *writer {
	w := &writer{r: r, stop: make(chan struct{}), done: make(chan struct{}), dbs: map[int]*sql.DB{}, timeout: timeout}
	for _, s := range r.servers {
		w.dbs[s.Index] = r.db(s.Index, appUser, appPassword, 2*time.Second)
		w.dbs[s.Index].SetMaxOpenConns(1)
	}
	w.started, w.lastOK = time.Now(), time.Now()
	go w.run()
	return w
}

func (w *writer) run() {
	defer close(w.done)
	for {
		select {
		case <-w.stop:
			return
		default:
		}
		p := w.r.recorded().Primary
		id := w.next.Add(1)
		timeout := w.timeout
		if timeout == 0 {
			timeout = 2 * time.Second
		}
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		_, err := w.dbs[p].ExecContext(ctx, "INSERT INTO app.t (id) VALUES (?)", id)
		cancel()
		now := time.Now()
		w.mu.Lock()
		if err == nil {
			w.acked = append(w.acked, id)
			w.ackAt = append(w.ackAt, now)
			if gap := now.Sub(w.lastOK); gap > w.maxGap {
				w.maxGap = gap
			}
			w.lastOK = now
		}
		w.mu.Unlock()
		if err != nil {
			time.Sleep(5 * time.Millisecond)
		}
	}
}

func (w *writer) halt() (acked []int64, maxGap time.Duration) {
	close(w.stop)
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]int64(nil), w.acked...), w.maxGap
}

// okSince counts acknowledged writes after t.
func (w *writer) okAfter(t time.Time) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.lastOK.After(t)
}

// sampleWritable checks, until stopped, that at most one reachable instance has read_only=OFF.
func sampleWritable(r *rig) (stop func() (samples int, violation string)) {
	dbs := map[int]*sql.DB{}
	for _, s := range r.servers {
		dbs[s.Index] = r.db(s.Index, engine.OperatorUser, adminPassword, 300*time.Millisecond)
	}
	quit, done := make(chan struct{}), make(chan struct{})
	var n int
	var bad string
	go func() {
		defer close(done)
		for {
			select {
			case <-quit:
				return
			case <-time.After(20 * time.Millisecond):
			}
			var writable []int
			var mu sync.Mutex
			var wg sync.WaitGroup
			for o, db := range dbs {
				wg.Add(1)
				go func(o int, db *sql.DB) {
					defer wg.Done()
					ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
					defer cancel()
					var ro int
					if err := db.QueryRowContext(ctx, "SELECT @@read_only").Scan(&ro); err == nil && ro == 0 {
						mu.Lock()
						writable = append(writable, o)
						mu.Unlock()
					}
				}(o, db)
			}
			wg.Wait()
			n++
			if len(writable) > 1 && bad == "" {
				bad = fmt.Sprintf("instances %v had read_only=OFF at once (sample %d)", writable, n)
			}
		}
	}()
	return func() (int, string) { close(quit); <-done; return n, bad }
}

// missing returns the acknowledged ids absent from an instance.
func missing(t testing.TB, r *rig, o int, acked []int64) []int64 {
	t.Helper()
	db := r.db(o, engine.OperatorUser, adminPassword, 10*time.Second)
	have := map[int64]bool{}
	rows, err := db.Query("SELECT id FROM app.t")
	if err != nil {
		t.Fatalf("failed to read rows from instance %d: %v", o, err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		have[id] = true
	}
	var out []int64
	for _, id := range acked {
		if !have[id] {
			out = append(out, id)
		}
	}
	return out
}

func bootstrapped(t testing.TB) *rig {
	r := newRig(t, 3)
	r.run()
	r.until("healthy after bootstrap", 30*time.Second, r.healthy)
	r.setupApp()
	return r
}

func TestEngineBootstrapSemiSyncAfterSync(t *testing.T) {
	r := bootstrapped(t)
	if p := r.recorded(); p.Primary != 0 || p.Term != 1 {
		t.Fatalf("recorded %+v, want primary 0 term 1", p)
	}
	db := r.db(0, engine.OperatorUser, adminPassword, 5*time.Second)
	vars := map[string]string{}
	for _, q := range []string{"SHOW GLOBAL VARIABLES LIKE 'rpl_semi_sync_master_%'", "SHOW GLOBAL STATUS LIKE 'rpl_semi_sync_master_%'", "SHOW GLOBAL VARIABLES LIKE 'read_only'"} {
		rows, err := db.Query(q)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var k, v string
			_ = rows.Scan(&k, &v)
			vars[k] = v
		}
		rows.Close()
	}
	r.until("both replicas acknowledging", 10*time.Second, func() bool {
		var k, v string
		_ = db.QueryRow("SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_master_clients'").Scan(&k, &v)
		return v == "2"
	})
	for k, want := range map[string]string{"rpl_semi_sync_master_enabled": "ON", "rpl_semi_sync_master_wait_point": "AFTER_SYNC",
		"Rpl_semi_sync_master_status": "ON", "read_only": "OFF", "rpl_semi_sync_master_timeout": "4294967295"} {
		if vars[k] != want {
			t.Errorf("primary %s = %q, want %q", k, vars[k], want)
		}
	}
	for _, o := range []int{1, 2} {
		f, err := r.sqls[o].Facts(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if !f.ReadOnly || f.Replica == nil || !f.Replica.IORunning || !f.Replica.SQLRunning || !f.SemiSync.ReplicaEnabled || f.Replica.SourcePort != r.servers[0].Port {
			t.Errorf("replica %d: %+v %+v", o, f, f.Replica)
		}
	}
	// A write on the primary reaches both replicas.
	if _, err := r.db(0, appUser, appPassword, 5*time.Second).Exec("INSERT INTO app.t (id) VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	if got := missing(t, r, 2, []int64{1}); len(got) > 0 {
		r.until("the write on replica 2", 10*time.Second, func() bool { return len(missing(t, r, 2, []int64{1})) == 0 })
	}
}

func TestEngineFailoverAfterSIGKILLLosesNoAcknowledgedWrite(t *testing.T) {
	r := bootstrapped(t)
	w := startWriter(r)
	stopSampling := sampleWritable(r)
	r.until("writes flowing", 10*time.Second, func() bool { return w.next.Load() > 50 })
	killedAt := time.Now()
	r.kill(0)
	r.until("a new primary", 30*time.Second, func() bool { return r.recorded().Primary != 0 })
	r.until("a write acknowledged by the new primary", 30*time.Second, func() bool { return w.okAfter(killedAt) })
	acked, gap := w.halt()
	samples, violation := stopSampling()
	p := r.recorded().Primary
	t.Logf("failover: new primary %d, term %d, %d writes acknowledged, longest write gap %s, %d read_only samples",
		p, r.recorded().Term, len(acked), gap, samples)
	if violation != "" {
		t.Errorf("two writable instances: %s", violation)
	}
	if lost := missing(t, r, p, acked); len(lost) > 0 {
		t.Fatalf("%d acknowledged writes missing on the new primary: %v", len(lost), lost)
	}
	// The killed primary comes back and rejoins (or is reported errant, never merged).
	r.servers[0].Restart()
	r.until("the old primary rejoined or reported", 60*time.Second, func() bool {
		st, ok := r.report().Plan.InstanceStatus(0)
		return ok && (st.Role == RoleErrant || (st.Role == RoleReplica && st.Healthy))
	})
}

func TestEngineFrozenPrimaryIsFencedAndCannotCommit(t *testing.T) {
	r := bootstrapped(t)
	w := startWriter(r)
	r.until("writes flowing", 10*time.Second, func() bool { return w.next.Load() > 50 })
	old := r.db(0, appUser, appPassword, 3*time.Second)
	old.SetMaxOpenConns(1)
	if err := old.Ping(); err != nil { // hold a connection open across the freeze
		t.Fatal(err)
	}
	frozenAt := time.Now()
	r.servers[0].Pause()
	r.until("a new primary", 30*time.Second, func() bool { return r.recorded().Primary != 0 })
	r.until("a write acknowledged by the new primary", 30*time.Second, func() bool { return w.okAfter(frozenAt) })
	acked, _ := w.halt()
	r.servers[0].Resume()
	// The old primary must not commit anything now: the write hangs (no replica acknowledges)
	// until it is fenced, or fails; it never succeeds.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	_, err := old.ExecContext(ctx, "INSERT INTO app.t (id) VALUES (-1)")
	cancel()
	if err == nil {
		t.Fatal("a write on the old primary succeeded after failover")
	}
	t.Logf("write on the old primary after SIGCONT: %v", err)
	r.until("the old primary rejoined or reported errant", 60*time.Second, func() bool {
		st, ok := r.report().Plan.InstanceStatus(0)
		return ok && (st.Role == RoleErrant || (st.Role == RoleReplica && st.Healthy))
	})
	st, _ := r.report().Plan.InstanceStatus(0)
	t.Logf("old primary after SIGCONT: role %s, reason %q, errant %q", st.Role, st.Reason, st.Errant)
	// A frozen server wakes up with read_only=OFF until the next pass fences it; what matters
	// is that it commits nothing meanwhile (checked above and below).
	p := r.recorded().Primary
	if lost := missing(t, r, p, acked); len(lost) > 0 {
		t.Fatalf("%d acknowledged writes missing on the new primary: %v", len(lost), lost)
	}
	if got := missing(t, r, p, []int64{-1}); len(got) == 0 {
		t.Fatal("the write attempted on the fenced old primary reached the new primary")
	}
}

// TestEngineFrozenPrimaryIsStoppedBeforePromotion: with an agent beside each server (as in
// the Pods), a failover from a frozen primary has the agent kill it in the first stage, so
// it is dead before the new primary is recorded and can never answer as writable again
// (rule 3c). Its restart then rejoins or is reported errant, and no acknowledged write is lost.
func TestEngineFrozenPrimaryIsStoppedBeforePromotion(t *testing.T) {
	r := newRig(t, 3)
	r.withAgents()
	var ranAtPromotion atomic.Int32
	ranAtPromotion.Store(-1)
	r.onRecord = func(c TopologyChange) {
		if c.Kind == KindFailover && c.From == 0 {
			if r.servers[0].Running() {
				ranAtPromotion.Store(1)
			} else {
				ranAtPromotion.Store(0)
			}
		}
	}
	r.run()
	r.until("healthy after bootstrap", 30*time.Second, r.healthy)
	r.setupApp()
	w := startWriter(r)
	r.until("writes flowing", 10*time.Second, func() bool { return w.next.Load() > 50 })
	frozenAt := time.Now()
	r.servers[0].Pause()
	r.until("a new primary", 30*time.Second, func() bool { return r.recorded().Primary != 0 })
	switch ranAtPromotion.Load() {
	case 1:
		t.Fatal("the frozen old primary still ran when the new primary was recorded")
	case -1:
		t.Fatal("no failover from instance 0 was recorded")
	}
	r.until("a write acknowledged by the new primary", 30*time.Second, func() bool { return w.okAfter(frozenAt) })
	acked, _ := w.halt()
	t.Logf("failover from a frozen primary: new primary %d after %s", r.recorded().Primary, time.Since(frozenAt).Round(time.Millisecond))
	if r.servers[0].Running() {
		t.Fatal("the frozen old primary runs again")
	}
	// Its container restarts it (by hand on this rig).
	r.servers[0].Restart()
	r.until("the old primary rejoined or reported errant", 60*time.Second, func() bool {
		st, ok := r.report().Plan.InstanceStatus(0)
		return ok && (st.Role == RoleErrant || (st.Role == RoleReplica && st.Healthy))
	})
	st, _ := r.report().Plan.InstanceStatus(0)
	t.Logf("old primary after its restart: role %s, reason %q, errant %q", st.Role, st.Reason, st.Errant)
	if lost := missing(t, r, r.recorded().Primary, acked); len(lost) > 0 {
		t.Fatalf("%d acknowledged writes missing on the new primary: %v", len(lost), lost)
	}
}

func TestEngineSwitchoverUnderWrites(t *testing.T) {
	r := bootstrapped(t)
	w := startWriter(r)
	r.until("writes flowing", 10*time.Second, func() bool { return w.next.Load() > 50 })
	r.mu.Lock()
	r.spec.Switchover = &SwitchoverRequest{ID: "planned", Target: 2}
	r.mu.Unlock()
	r.loop.Poke()
	r.until("switched over", 30*time.Second, func() bool { return r.recorded().Primary == 2 })
	at := time.Now()
	r.until("a write acknowledged by the new primary", 30*time.Second, func() bool { return w.okAfter(at) })
	acked, gap := w.halt()
	t.Logf("switchover: longest gap between acknowledged writes %s (%d writes)", gap, len(acked))
	if lost := missing(t, r, 2, acked); len(lost) > 0 {
		t.Fatalf("%d acknowledged writes missing after switchover: %v", len(lost), lost)
	}
	r.until("healthy with 0 as a replica", 30*time.Second, r.healthy)
	if r.recorded().SwitchoverHandled != "planned" {
		t.Errorf("switchover not recorded as handled")
	}
}

func TestEngineErrantReplicaIsReported(t *testing.T) {
	r := bootstrapped(t)
	// The admin account bypasses read_only: a transaction written on a replica directly.
	db := r.db(1, engine.OperatorUser, adminPassword, 5*time.Second)
	if _, err := db.Exec("INSERT INTO app.t (id) VALUES (1000001)"); err != nil {
		t.Fatal(err)
	}
	r.until("replica 1 reported errant", 20*time.Second, func() bool {
		st, ok := r.report().Plan.InstanceStatus(1)
		return ok && st.Role == RoleErrant
	})
	st, _ := r.report().Plan.InstanceStatus(1)
	// The replica wrote with its own server_id (1001) in the primary's domain.
	if !strings.HasPrefix(st.Errant.String(), "0-1001-") || st.Label != LabelNone {
		t.Errorf("errant replica: GTIDs %q label %q reason %q", st.Errant, st.Label, st.Reason)
	}
	r.until("replica 1 out of the read set", 10*time.Second, func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.labels[1] == LabelNone
	})
}

func TestEngineStoppedReplicaCatchesUp(t *testing.T) {
	r := bootstrapped(t)
	// The setup's account statements change Aria tables (mysql.global_priv), which a server
	// killed right after applying them can lose while its InnoDB replication position keeps
	// them; the replica then stops on the next GRANT (error 1133). That is a MariaDB limit of
	// non-transactional system tables under SIGKILL (docs/clustering.md, "Known limits"), not
	// what this test is about: kill the replica once it has applied the setup.
	p0, p2 := r.servers[0].Open(engine.Options{}), r.servers[2].Open(engine.Options{})
	r.until("replica 2 applied the setup", 20*time.Second, func() bool {
		a, err0 := p0.ExecutedGTID(context.Background())
		b, err2 := p2.ExecutedGTID(context.Background())
		return err0 == nil && err2 == nil && b.Contains(a)
	})
	_, _ = r.db(2, engine.OperatorUser, adminPassword, 5*time.Second).Exec("FLUSH NO_WRITE_TO_BINLOG TABLES")
	r.kill(2)
	app := r.db(0, appUser, appPassword, 5*time.Second)
	for i := 1; i <= 20; i++ {
		if _, err := app.Exec("INSERT INTO app.t (id) VALUES (?)", i); err != nil {
			t.Fatal(err)
		}
	}
	r.until("replica 2 out of the read set", 20*time.Second, func() bool {
		st, ok := r.report().Plan.InstanceStatus(2)
		return ok && !st.Reachable && st.Label == LabelNone
	})
	r.servers[2].Restart()
	r.until("healthy again", 30*time.Second, r.healthy)
	var ids []int64
	for i := int64(1); i <= 20; i++ {
		ids = append(ids, i)
	}
	if lost := missing(t, r, 2, ids); len(lost) > 0 {
		t.Fatalf("replica 2 lacks %v after catching up", lost)
	}
}

// firstAckAfter returns the first acknowledged write after t.
func (w *writer) firstAckAfter(t time.Time) time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, a := range w.ackAt {
		if a.After(t) {
			return a
		}
	}
	return time.Time{}
}

// resetGap starts measuring the longest gap between acknowledged writes afresh.
func (w *writer) resetGap() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.maxGap, w.lastOK = 0, time.Now()
}

func (w *writer) gap() time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.maxGap
}

// Acknowledged writes that the replicas received but had not applied (their appliers were
// stopped) survive a failover: fencing keeps the relay log and applies it by position rather
// than letting a GTID-mode restart of replication discard it.
func TestEngineFailoverKeepsReceivedButUnappliedWrites(t *testing.T) {
	r := bootstrapped(t)
	// Hold the loop's hand: paused, it observes without repairing the stopped appliers.
	r.mu.Lock()
	r.spec.Paused = true
	r.mu.Unlock()
	for _, o := range []int{1, 2} {
		if _, err := r.db(o, engine.OperatorUser, adminPassword, 5*time.Second).Exec("STOP SLAVE SQL_THREAD"); err != nil {
			t.Fatal(err)
		}
	}
	app := r.db(0, appUser, appPassword, 5*time.Second)
	var acked []int64
	for id := int64(1000); id < 1020; id++ {
		if _, err := app.Exec("INSERT INTO app.t (id) VALUES (?)", id); err != nil {
			t.Fatalf("write %d: %v", id, err)
		}
		acked = append(acked, id)
	}
	// The writes are only in the replicas' relay logs.
	if got := missing(t, r, 1, acked); len(got) != len(acked) {
		t.Fatalf("replica 1 applied %d writes with its applier stopped", len(acked)-len(got))
	}
	r.kill(0)
	r.mu.Lock()
	r.spec.Paused = false
	r.mu.Unlock()
	r.until("a new primary", 30*time.Second, func() bool { return r.recorded().Primary != 0 })
	p := r.recorded().Primary
	r.until("the relay log applied on the new primary", 30*time.Second, func() bool { return len(missing(t, r, p, acked)) == 0 })
}

// TestEngineRestartedPrimaryBehindReplicasIsReplaced: the primary comes back without
// transactions its replicas hold (here its data directory is rolled back; crash recovery with
// init_rpl_role=SLAVE does the same to a transaction a replica received but the primary never
// committed). It must not be made writable, which would write new transactions under GTIDs
// the replicas already hold: the replica holding them is promoted and the old primary rejoins
// it with nothing lost. The failover grace periods are set far out so that only this rule can
// move the primary.
func TestEngineRestartedPrimaryBehindReplicasIsReplaced(t *testing.T) {
	r := bootstrapped(t)
	r.mu.Lock()
	r.spec.FailoverGrace, r.spec.DownGrace = 10*time.Minute, 10*time.Minute
	r.mu.Unlock()
	insert := func(from, to int64) []int64 {
		app := r.db(0, appUser, appPassword, 5*time.Second)
		var ids []int64
		for id := from; id <= to; id++ {
			if _, err := app.Exec("INSERT INTO app.t (id) VALUES (?)", id); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		}
		return ids
	}
	ids := insert(1, 5)
	old := r.servers[0]
	old.Stop()
	aside := filepath.Join(t.TempDir(), "data")
	if out, err := exec.Command("cp", "-a", old.DataDir, aside).CombinedOutput(); err != nil {
		t.Fatalf("copy the data directory: %v\n%s", err, out)
	}
	old.Restart()
	admin := r.db(0, engine.OperatorUser, adminPassword, 5*time.Second)
	r.until("the primary writable again", 30*time.Second, func() bool {
		var ro int
		return admin.QueryRow("SELECT @@read_only").Scan(&ro) == nil && ro == 0
	})
	// Writable comes first; healthy (replicas connected, semi-sync waiting for them) after.
	r.until("healthy with the primary back", 30*time.Second, r.healthy)
	ids = append(ids, insert(6, 10)...)
	old.Kill()
	if out, err := exec.Command("sh", "-c", `rm -rf "$1" && cp -a "$2" "$1"`, "sh", old.DataDir, aside).CombinedOutput(); err != nil {
		t.Fatalf("roll the data directory back: %v\n%s", err, out)
	}
	old.Restart()
	r.until("a new primary", 60*time.Second, func() bool { return r.recorded().Primary != 0 })
	r.until("healthy again", 60*time.Second, r.healthy)
	for o := range r.servers {
		if lost := missing(t, r, o, ids); len(lost) > 0 {
			t.Errorf("instance %d lacks %v", o, lost)
		}
	}
	for _, st := range r.report().Plan.Instances {
		if st.Ordinal == 0 && (st.Role != RoleReplica || !st.Healthy) {
			t.Errorf("old primary: %+v, want a healthy replica", st)
		}
	}
}
