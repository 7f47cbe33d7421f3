package engine_test

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kura-db/kura/internal/engine"
	"github.com/kura-db/kura/internal/enginetest"
)

func openAs(t *testing.T, srv *enginetest.Instance, user, password string) *sql.DB {
	t.Helper()
	db, err := sql.Open("mysql", engine.DSN(srv.Endpoint(user, password), engine.Options{ConnectTimeout: time.Second, ReadTimeout: 30 * time.Second}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// TestMariaDBFenceCompletesBehindWaitingCommits pins rule 3a: on a primary cut off from its
// only replica, commits wait for an acknowledgement that never comes; SET GLOBAL read_only
// alone would wait behind them forever. Fence kills them first (their clients get an error,
// never a success), turns read-only on with a bounded lock wait and retries while writers keep
// reconnecting, and returns with the instance refusing writes from every user account.
func TestMariaDBFenceCompletesBehindWaitingCommits(t *testing.T) {
	ctx := context.Background()
	p, _, pe, re := primaryAndReplica(t, ctx, 1)
	app := openAs(t, p, engine.AppUser, enginetest.AppPassword)
	admin := openAs(t, p, engine.AdminUser, enginetest.AdminPassword)
	mustExec(t, app, "CREATE TABLE "+enginetest.Database+".t (id BIGINT PRIMARY KEY)")
	acknowledged := pe.Status(ctx).ExecutedGTID
	if err := re.StopReplication(ctx, engine.IOThread); err != nil {
		t.Fatal(err)
	}

	// Writers with both user accounts, reconnecting after every error, as applications do.
	var next, acked atomic.Int64
	var mu sync.Mutex
	var ackedAfterFence, ackedIDs []int64
	var ackedAt []time.Duration
	t0 := time.Now()
	var fenced atomic.Bool
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, db := range []*sql.DB{app, admin, app, admin, app, admin, app, admin} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				id := next.Add(1)
				if _, err := db.Exec(fmt.Sprintf("INSERT INTO %s.t VALUES (?)", enginetest.Database), id); err == nil {
					acked.Add(1)
					mu.Lock()
					ackedIDs, ackedAt = append(ackedIDs, id), append(ackedAt, time.Since(t0))
					mu.Unlock()
					if fenced.Load() {
						mu.Lock()
						ackedAfterFence = append(ackedAfterFence, id)
						mu.Unlock()
					}
				}
			}
		}()
	}
	eventually(t, 10*time.Second, "commits waiting for an acknowledgement", func() (bool, string) {
		st := pe.Status(ctx)
		return !st.ExecutedGTID.Equal(acknowledged), fmt.Sprintf("%+v", st.SemiSync)
	})

	fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	start := time.Now()
	killed, err := pe.Fence(fctx)
	took := time.Since(start)
	if err != nil {
		t.Fatalf("fence did not complete in %s: %v", took, err)
	}
	fenced.Store(true)
	t.Logf("fenced in %s, %d connections killed", took, killed)
	if killed == 0 {
		t.Error("the fence killed no connection, but commits were waiting")
	}
	// Writes keep being attempted for a while after the fence: none may succeed.
	time.Sleep(500 * time.Millisecond)
	close(stop)
	wg.Wait()
	if n := acked.Load(); n != 0 {
		t.Errorf("%d writes were acknowledged without a replica's acknowledgement: ids %v at %v (fence began at %s)", n, ackedIDs, ackedAt, start.Sub(t0))
	}
	if len(ackedAfterFence) > 0 {
		t.Errorf("writes acknowledged after the fence: %v", ackedAfterFence)
	}
	if st := pe.Status(ctx); !st.ReadOnly {
		t.Errorf("read_only is off after the fence: %+v", st)
	}
	for name, db := range map[string]*sql.DB{"app": app, "admin": admin} {
		if _, err := db.Exec(fmt.Sprintf("INSERT INTO %s.t VALUES (-1)", enginetest.Database)); !isErrno(err, 1290) {
			t.Errorf("write as %s on the fenced instance: %v, want error 1290 (read-only)", name, err)
		}
	}
}

// TestMariaDBUserAccounts pins rule 3 for the accounts users get: read_only stops the admin
// and the app account (neither holds READ ONLY ADMIN or SUPER); admin cannot switch binary
// logging off for its session; app owns its database only. The operator's account can still
// act on a read-only instance.
func TestMariaDBUserAccounts(t *testing.T) {
	c := enginetest.Start(t, 1, enginetest.Options{})
	ctx := context.Background()
	srv := c.Instances[0]
	inst := srv.Open(engine.Options{})
	if err := inst.CheckAccounts(ctx, enginetest.Accounts()); err != nil {
		t.Fatalf("accounts of a new data directory: %v", err)
	}
	if err := inst.SetReadOnly(ctx, false); err != nil {
		t.Fatal(err)
	}
	app := openAs(t, srv, engine.AppUser, enginetest.AppPassword)
	admin := openAs(t, srv, engine.AdminUser, enginetest.AdminPassword)
	db := enginetest.Database
	mustExec(t, app, "CREATE TABLE "+db+".t (id INT PRIMARY KEY)", "INSERT INTO "+db+".t VALUES (1)")
	mustExec(t, admin, "CREATE DATABASE other", "CREATE TABLE other.t (id INT PRIMARY KEY)", "INSERT INTO other.t VALUES (1)",
		"CREATE USER 'reporting'@'%' IDENTIFIED BY 'x'", "GRANT SELECT ON "+db+".* TO 'reporting'@'%'")
	if _, err := app.Exec("CREATE TABLE other.u (id INT)"); err == nil {
		t.Error("the app account created a table outside its database")
	}
	for _, q := range []string{"SET SESSION sql_log_bin = 0", "SET GLOBAL read_only = OFF", "RESET MASTER",
		"GRANT READ_ONLY ADMIN ON *.* TO 'reporting'@'%'", "SHUTDOWN"} {
		if _, err := admin.Exec(q); err == nil {
			t.Errorf("the admin account may run %q", q)
		}
	}

	if err := inst.SetReadOnly(ctx, true); err != nil {
		t.Fatal(err)
	}
	for name, q := range map[string]struct {
		db *sql.DB
		q  string
	}{
		"app":   {app, "INSERT INTO " + db + ".t VALUES (2)"},
		"admin": {admin, "INSERT INTO other.t VALUES (2)"},
	} {
		if _, err := q.db.Exec(q.q); !isErrno(err, 1290) {
			t.Errorf("write as %s on a read-only instance: %v, want error 1290", name, err)
		}
	}
	if _, err := srv.DB().Exec("INSERT INTO other.t VALUES (3)"); err != nil {
		t.Errorf("the operator's account cannot write on a read-only instance: %v", err)
	}
}
