package supervise_test

import (
	"context"
	"crypto/tls"
	"database/sql"
	"math/big"
	"sync"
	"testing"
	"time"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/internal/engine"
	"github.com/kura-db/kura/internal/enginetest"
	"github.com/kura-db/kura/internal/supervise"
)

// A renewed server certificate written over the mounted files is served by the running server
// after WatchFiles sees the change and ReloadTLS runs FLUSH SSL: no restart, nothing written to
// the binary log, and a new client verifying the CA gets the new certificate while an open
// session goes on.
func TestRenewedCertificateIsReloadedInPlace(t *testing.T) {
	c := enginetest.Start(t, 1, enginetest.Options{})
	in := c.Instances[0]
	if c.TLS == nil {
		t.Fatal("the engine tier's servers serve TLS by default")
	}
	// served opens a new verified session and returns the serial number of the certificate
	// the server presented.
	served := func() *big.Int {
		t.Helper()
		var mu sync.Mutex
		var serial *big.Int
		ep := in.Operator()
		ep.TLS = ep.TLS.Clone()
		ep.TLS.VerifyConnection = func(cs tls.ConnectionState) error {
			mu.Lock()
			defer mu.Unlock()
			serial = cs.PeerCertificates[0].SerialNumber
			return nil
		}
		conn, err := engine.Connector(ep, engine.Options{})
		if err != nil {
			t.Fatal(err)
		}
		db := sql.OpenDB(conn)
		defer func() { _ = db.Close() }()
		if err := db.Ping(); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		return serial
	}
	before := served()
	open := in.DB()
	if err := open.Ping(); err != nil {
		t.Fatal(err)
	}
	executed := func() string {
		t.Helper()
		var s string
		if err := open.QueryRow("SELECT @@global.gtid_binlog_state").Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	enginetest.Exec(t, open, "CREATE DATABASE reload")
	gtids := executed()
	pid := in.Pid()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reloads := make(chan string, 8)
	watch := supervise.WatchFiles([]string{c.TLS.CertFile, c.TLS.KeyFile, c.TLS.CAFile})
	go watch.Run(ctx, 50*time.Millisecond,
		func(ctx context.Context) error {
			return supervise.ReloadTLS(ctx, kurav1alpha1.EngineMariaDB, in.Port, engine.OperatorUser, enginetest.OperatorPassword)
		},
		func(format string, _ ...any) { reloads <- format })
	if err := c.TLS.Renew(time.Now()); err != nil {
		t.Fatal(err)
	}
	select {
	case msg := <-reloads:
		t.Log(msg)
	case <-time.After(30 * time.Second):
		t.Fatal("the renewed files were not reloaded")
	}
	after := served()
	if after.Cmp(before) == 0 {
		t.Fatalf("the server still presents certificate %s after the reload", before)
	}
	if err := open.Ping(); err != nil {
		t.Errorf("the session opened before the reload broke: %v", err)
	}
	// The reload is not a transaction: on a replica one would be errant.
	if now := executed(); now != gtids {
		t.Errorf("the reload wrote to the binary log: %q, then %q", gtids, now)
	}
	if in.Pid() != pid {
		t.Errorf("the server restarted (pid %d, then %d)", pid, in.Pid())
	}
}
