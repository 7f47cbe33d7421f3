package engine_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/internal/engine"
	"github.com/kura-db/kura/internal/enginetest"
	"github.com/kura-db/kura/internal/gtid"
)

// TestMariaDBInstance exercises the single-instance methods against one real mariadbd.
func TestMariaDBInstance(t *testing.T) {
	c := enginetest.Start(t, 1, enginetest.Options{})
	ctx := context.Background()
	srv := c.Instances[0]
	inst := srv.Open(engine.Options{})
	admin := srv.DB()
	mustExec(t, admin,
		"SET SESSION sql_log_bin = 0",
		"CREATE DATABASE app",
		"CREATE TABLE app.t (id INT PRIMARY KEY)",
		"CREATE USER 'tester'@'%' IDENTIFIED BY 'tester-pw'",
		"GRANT SELECT, INSERT ON app.* TO 'tester'@'%'",
	)
	appDB := func() *sql.DB {
		db, err := sql.Open("mysql", engine.DSN(srv.Endpoint("tester", "tester-pw"), engine.Options{}))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = db.Close() })
		return db
	}

	t.Run("read-only", func(t *testing.T) {
		app := appDB()
		if _, err := app.Exec("INSERT INTO app.t VALUES (1)"); !isErrno(err, 1290) {
			t.Fatalf("write on a fresh (read-only) instance: %v, want error 1290", err)
		}
		if err := inst.SetReadOnly(ctx, false); err != nil {
			t.Fatal(err)
		}
		if st := inst.Status(ctx); !st.Writable() || st.ReadOnly {
			t.Fatalf("after SetReadOnly(false): %+v", st)
		}
		if _, err := app.Exec("INSERT INTO app.t VALUES (1)"); err != nil {
			t.Fatal(err)
		}
		if err := inst.SetReadOnly(ctx, true); err != nil {
			t.Fatal(err)
		}
		if err := inst.SetReadOnly(ctx, true); err != nil { // idempotent
			t.Fatal(err)
		}
		if _, err := app.Exec("INSERT INTO app.t VALUES (2)"); !isErrno(err, 1290) {
			t.Fatalf("write after SetReadOnly(true): %v, want error 1290", err)
		}
		if st := inst.Status(ctx); st.Writable() || !st.ReadOnly {
			t.Fatalf("after SetReadOnly(true): %+v", st)
		}
	})

	t.Run("kill client connections", func(t *testing.T) {
		app := appDB()
		app.SetMaxIdleConns(3)
		conns := make([]*sql.Conn, 3)
		for k := range conns {
			conn, err := app.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if err := conn.PingContext(ctx); err != nil {
				t.Fatal(err)
			}
			conns[k] = conn
			defer func() { _ = conn.Close() }()
		}
		// A connection of the operator's own account is killed too: connections are chosen
		// by id, so a user sharing an account with the operator cannot write through a fence.
		own, err := admin.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = own.Close() }()
		if err := own.PingContext(ctx); err != nil {
			t.Fatal(err)
		}
		killed, err := inst.KillClientConnections(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if killed < 4 {
			t.Fatalf("killed %d connections, want at least the 4 just opened", killed)
		}
		var one int
		if err := own.QueryRowContext(ctx, "SELECT 1").Scan(&one); err == nil {
			t.Fatal("a connection of the operator's account survived")
		}
		// KILL CONNECTION returns before the killed thread has left the processlist: poll.
		var left int
		for deadline := time.Now().Add(5 * time.Second); ; {
			err := admin.QueryRow("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = 'tester'").Scan(&left)
			if err == nil && left == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d app connections left (%v)", left, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
		for _, conn := range conns {
			if err := conn.QueryRowContext(ctx, "SELECT 1").Scan(&one); err == nil {
				t.Fatal("an app connection survived")
			}
		}
		if err := inst.Ping(ctx); err != nil {
			t.Fatalf("the pool must reconnect after its other connections were killed: %v", err)
		}
	})

	t.Run("accounts", func(t *testing.T) {
		if err := inst.CheckAccounts(ctx, enginetest.Accounts()); err != nil {
			t.Fatalf("accounts of a new data directory: %v", err)
		}
		before, _ := inst.ExecutedGTID(ctx)
		if err := inst.EnsureAccounts(ctx, enginetest.Accounts()); err != nil {
			t.Fatal(err)
		}
		if after, _ := inst.ExecutedGTID(ctx); !after.Equal(before) {
			t.Fatalf("EnsureAccounts wrote %s although nothing needed repair", after.Subtract(before))
		}
		mustExec(t, admin, "SET SESSION sql_log_bin = 0", "ALTER USER 'kura-agent'@'%' IDENTIFIED BY 'changed'",
			"REVOKE RELOAD ON *.* FROM 'kura-agent'@'%'", "DROP USER 'kura-repl'@'%'")
		err := inst.CheckAccounts(ctx, enginetest.Accounts())
		var ae *engine.AccountsError
		if !errors.As(err, &ae) || len(ae.Problems) != 3 {
			t.Fatalf("CheckAccounts = %v, want three problems", err)
		}
		for _, want := range []string{"'kura-repl'@'%' is missing", "'kura-agent'@'%' has another password", "'kura-agent'@'%' lacks RELOAD"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%v does not report %q", err, want)
			}
		}
		if err := inst.EnsureAccounts(ctx, enginetest.Accounts()); err != nil {
			t.Fatal(err)
		}
		if err := inst.CheckAccounts(ctx, enginetest.Accounts()); err != nil {
			t.Fatalf("after EnsureAccounts: %v", err)
		}
		repl, err := engine.Connect(ctx, kurav1alpha1.EngineMariaDB, srv.Endpoint(engine.ReplicationUser, enginetest.ReplicationPassword), engine.Options{})
		if err != nil {
			t.Fatalf("the repaired replication account cannot log in: %v", err)
		}
		_ = repl.Close()
	})

	t.Run("set global and flush binary logs", func(t *testing.T) {
		if err := inst.SetGlobal(ctx, "max_connections", "123"); err != nil {
			t.Fatal(err)
		}
		if err := inst.SetGlobal(ctx, "max_allowed_packet", "32M"); err != nil {
			t.Fatal(err)
		}
		if err := inst.SetGlobal(ctx, "slow_query_log", "ON"); err != nil {
			t.Fatal(err)
		}
		var conns, packet, slow int64
		if err := admin.QueryRow("SELECT @@GLOBAL.max_connections, @@GLOBAL.max_allowed_packet, @@GLOBAL.slow_query_log").Scan(&conns, &packet, &slow); err != nil {
			t.Fatal(err)
		}
		if conns != 123 || packet != 32<<20 || slow != 1 {
			t.Fatalf("globals = %d %d %d", conns, packet, slow)
		}
		if err := inst.SetGlobal(ctx, "max_connections; DROP DATABASE app", "1"); err == nil {
			t.Fatal("an invalid variable name was accepted")
		}
		if err := inst.SetGlobal(ctx, "no_such_variable", "1"); err == nil {
			t.Fatal("an unknown variable was accepted")
		}
		files := func() int {
			rows, err := admin.Query("SHOW BINARY LOGS")
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = rows.Close() }()
			n := 0
			for rows.Next() {
				n++
			}
			return n
		}
		n := files()
		if err := inst.FlushBinaryLogs(ctx); err != nil {
			t.Fatal(err)
		}
		if got := files(); got != n+1 {
			t.Fatalf("binary logs: %d before, %d after a flush", n, got)
		}
	})

	t.Run("reset GTID state", func(t *testing.T) {
		state := gtid.MustParse(gtid.MariaDB, "0-1000-10,0-1001-42")
		if err := inst.ResetGTIDState(ctx, state); err != nil {
			t.Fatal(err)
		}
		st := inst.Status(ctx)
		if !st.ExecutedGTID.Equal(state) || st.ReplicaPosition.String() != "0-1001-42" || st.BinlogPosition.String() != "0-1001-42" {
			t.Fatalf("after ResetGTIDState: executed %s replica %s binlog %s", st.ExecutedGTID, st.ReplicaPosition, st.BinlogPosition)
		}
		// The newest transaction of the domain came from the lower server_id (a later primary):
		// the binary log must start from it, or a replica asking for 0-1000-528 is refused with
		// error 1236.
		state = gtid.MustParse(gtid.MariaDB, "0-1001-527,0-1000-528")
		if err := inst.ResetGTIDState(ctx, state); err != nil {
			t.Fatal(err)
		}
		st = inst.Status(ctx)
		if !st.ExecutedGTID.Equal(state) || st.ReplicaPosition.String() != "0-1000-528" || st.BinlogPosition.String() != "0-1000-528" {
			t.Fatalf("after ResetGTIDState: executed %s replica %s binlog %s", st.ExecutedGTID, st.ReplicaPosition, st.BinlogPosition)
		}
		if err := inst.ResetGTIDState(ctx, gtid.MustParse(gtid.MySQL, "3e11fa47-71ca-11e1-9e33-c80aa9429562:1")); err == nil {
			t.Fatal("a MySQL set was accepted by MariaDB")
		}
	})

	t.Run("wrong password", func(t *testing.T) {
		_, err := engine.Connect(ctx, kurav1alpha1.EngineMariaDB, srv.Endpoint(engine.OperatorUser, "wrong"), engine.Options{})
		if err == nil || !engine.IsAccessDenied(err) || !strings.Contains(err.Error(), "Access denied") ||
			!strings.Contains(err.Error(), engine.OperatorUser) {
			t.Fatalf("Connect with a wrong password: %v", err)
		}
		bad, _ := engine.Open(kurav1alpha1.EngineMariaDB, srv.Endpoint(engine.OperatorUser, "wrong"), engine.Options{})
		defer func() { _ = bad.Close() }()
		st := bad.Status(ctx)
		if !st.Reachable || !strings.Contains(st.Error, "Access denied") {
			t.Fatalf("Status with a wrong password must say the server refused: %+v", st)
		}
	})

	t.Run("nothing listening", func(t *testing.T) {
		down, _ := engine.Open(kurav1alpha1.EngineMariaDB, engine.Endpoint{Host: "127.0.0.1", Port: 1, User: "x", Password: "y"}, engine.Options{})
		defer func() { _ = down.Close() }()
		if st := down.Status(ctx); st.Reachable || st.Error == "" {
			t.Fatalf("Status of a closed port: %+v", st)
		}
	})

	// Last: a stopped process keeps its port open (the kernel completes the TCP handshake)
	// but answers nothing. Status must give up within its bound, on a new connection and on
	// a pooled one, and never hang.
	t.Run("paused server", func(t *testing.T) {
		opts := engine.Options{ConnectTimeout: 500 * time.Millisecond, ReadTimeout: time.Second, WriteTimeout: time.Second}
		pooled := srv.Open(opts)
		if st := pooled.Status(ctx); !st.Reachable {
			t.Fatalf("before pausing: %+v", st)
		}
		fresh := srv.Open(opts)
		srv.Pause()
		defer srv.Resume()
		for name, in := range map[string]engine.Instance{"pooled": pooled, "fresh": fresh} {
			start := time.Now()
			st := in.Status(ctx)
			took := time.Since(start)
			if st.Reachable || st.Error == "" {
				t.Fatalf("%s connection to a paused server: %+v", name, st)
			}
			if took > opts.ConnectTimeout+opts.ReadTimeout+2*time.Second {
				t.Fatalf("%s connection: Status took %s", name, took)
			}
		}
		short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		if st := srv.Open(engine.Options{}).Status(short); st.Reachable {
			t.Fatalf("Status with a short context: %+v", st)
		}
		if took := time.Since(start); took > 2*time.Second {
			t.Fatalf("Status ignored its context: %s", took)
		}
	})
}

func isErrno(err error, n uint16) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && me.Number == n
}

// TestInitDataDir: initialisation creates the accounts with binary logging off, marks the
// directory, and is a no-op on an initialised one; an interrupted one is completed.
func TestInitDataDir(t *testing.T) {
	if testing.Short() {
		t.Skip("engine tier: needs mariadb-install-db and mariadbd; not run with -short")
	}
	if _, _, err := enginetest.Binaries(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "data")
	done, err := engine.InitDataDir(ctx, kurav1alpha1.EngineMariaDB, dir, enginetest.Accounts(), engine.InitOptions{})
	if err != nil || !done {
		t.Fatalf("first InitDataDir: %v, %v", done, err)
	}
	if !engine.Initialized(dir) {
		t.Fatal("no marker")
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "*-bin.*")); len(m) > 0 {
		t.Fatalf("initialisation wrote binary logs: %v", m)
	}
	if done, err := engine.InitDataDir(ctx, kurav1alpha1.EngineMariaDB, dir, enginetest.Accounts(), engine.InitOptions{}); err != nil || done {
		t.Fatalf("second InitDataDir: %v, %v", done, err)
	}
	if err := os.Remove(filepath.Join(dir, engine.InitMarker)); err != nil {
		t.Fatal(err)
	}
	if done, err := engine.InitDataDir(ctx, kurav1alpha1.EngineMariaDB, dir, enginetest.Accounts(), engine.InitOptions{}); err != nil || !done {
		t.Fatalf("InitDataDir after an interrupted run: %v, %v", done, err)
	}
	bad := []engine.Account{{User: "x", Host: "%", Password: "", Role: engine.RoleOperator}}
	if _, err := engine.InitDataDir(ctx, kurav1alpha1.EngineMariaDB, filepath.Join(t.TempDir(), "d"), bad, engine.InitOptions{}); err == nil {
		t.Fatal("an account without a password was accepted")
	}
}
