package engine_test

import (
	"context"
	"crypto/x509"
	"database/sql"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/internal/builder"
	"github.com/kura-db/kura/internal/contract"
	"github.com/kura-db/kura/internal/engine"
	"github.com/kura-db/kura/internal/enginetest"
)

func tlsCluster(require bool) *kurav1alpha1.MySQLCluster {
	return &kurav1alpha1.MySQLCluster{
		ObjectMeta: metav1.ObjectMeta{Name: "tls", Namespace: "test"},
		Spec:       kurav1alpha1.MySQLClusterSpec{Engine: kurav1alpha1.EngineMariaDB, TLS: kurav1alpha1.TLSSpec{RequireSecureTransport: require}},
	}
}

// openDB opens a pool for an endpoint (TLS included) and pings it.
func openDB(t *testing.T, ep engine.Endpoint) (*sql.DB, error) {
	t.Helper()
	conn, err := engine.Connector(ep, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(conn)
	t.Cleanup(func() { _ = db.Close() })
	return db, db.Ping()
}

func sessionCipher(t *testing.T, db *sql.DB) string {
	t.Helper()
	var name, cipher string
	if err := db.QueryRow("SHOW SESSION STATUS LIKE 'Ssl_cipher'").Scan(&name, &cipher); err != nil {
		t.Fatal(err)
	}
	return cipher
}

// TestEngineServesTLS: a server with the certificate the operator issues serves TLS that a
// client trusting the cluster's CA verifies; a client trusting another CA is refused.
func TestEngineServesTLS(t *testing.T) {
	c := enginetest.Start(t, 1, enginetest.Options{Cluster: tlsCluster(false)})
	inst := c.Instances[0]
	ep := inst.Operator()
	ep.TLS = c.TLS.ClientConfig()
	db, err := openDB(t, ep)
	if err != nil {
		t.Fatalf("TLS connection verified against the cluster's CA failed: %v", err)
	}
	if cipher := sessionCipher(t, db); cipher == "" {
		t.Error("the TLS connection reports no cipher")
	}
	// The engine's pool speaks TLS too.
	e, err := engine.Connect(context.Background(), kurav1alpha1.EngineMariaDB, ep, engine.Options{})
	if err != nil {
		t.Fatalf("engine.Connect with TLS: %v", err)
	}
	_ = e.Close()

	// Another cluster's CA does not verify this server.
	other, err := builder.CASecret(tlsCluster(false), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	untrusting := c.TLS.ClientConfig()
	untrusting.RootCAs = newPool(t, other.Data[contract.TLSCAKey])
	bad := inst.Operator()
	bad.TLS = untrusting
	if _, err := openDB(t, bad); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("a client trusting another CA connected (or failed for another reason): %v", err)
	}
	// A name the certificate does not cover is refused as well.
	wrongName := c.TLS.ClientConfig()
	wrongName.ServerName = "shop-0.other-instances.test.svc"
	bad.TLS = wrongName
	if _, err := openDB(t, bad); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("a name outside the certificate verified: %v", err)
	}
	// Without requireSecureTransport, clear text is still accepted.
	plain, err := openDB(t, clearText(inst))
	if err != nil {
		t.Fatalf("clear-text connection refused without requireSecureTransport: %v", err)
	}
	if cipher := sessionCipher(t, plain); cipher != "" {
		t.Errorf("clear-text connection reports cipher %q", cipher)
	}
}

// TestEngineRequireSecureTransport: with requireSecureTransport a clear-text client is refused
// and a TLS client is served.
func TestEngineRequireSecureTransport(t *testing.T) {
	c := enginetest.Start(t, 1, enginetest.Options{Cluster: tlsCluster(true)})
	inst := c.Instances[0]
	// MariaDB 10.11 answers a clear-text login under require_secure_transport with "Access
	// denied" (1045), MySQL and later MariaDB with "insecure transport" (3159); the same
	// credentials succeed over TLS below.
	_, err := openDB(t, clearText(inst))
	if err == nil || (!strings.Contains(err.Error(), "insecure transport") && !strings.Contains(err.Error(), "Error 1045")) {
		t.Fatalf("clear-text connection not refused: %v", err)
	}
	ep := inst.Operator()
	ep.TLS = c.TLS.ClientConfig()
	db, err := openDB(t, ep)
	if err != nil {
		t.Fatalf("TLS connection refused: %v", err)
	}
	if cipher := sessionCipher(t, db); cipher == "" {
		t.Error("no cipher on the TLS connection")
	}
}

// TestEngineReplicationOverTLS: a replica configured with the CA replicates over TLS from a
// source that refuses clear text, verifying the source's certificate; the replication
// connection's cipher is read on the source; a replica given another CA cannot connect.
func TestEngineReplicationOverTLS(t *testing.T) {
	ctx := context.Background()
	c := enginetest.Start(t, 3, enginetest.Options{Cluster: tlsCluster(true),
		ExtraConfig: []string{"performance_schema = ON"}})
	p, r, stranger := c.Instances[0], c.Instances[1], c.Instances[2]
	open := func(i *enginetest.Instance, ca string) engine.Instance {
		ep := i.Operator()
		ep.TLS = c.TLS.ClientConfig()
		e, err := engine.Open(kurav1alpha1.EngineMariaDB, ep, engine.Options{ReplicationCA: ca})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = e.Close() })
		return e
	}
	pe, re := open(p, ""), open(r, c.TLS.CAFile)
	promote(t, ctx, pe, 1)
	replicate(t, ctx, re, p)
	st := re.Status(ctx)
	if st.Replica == nil || !st.Replica.TLS {
		t.Fatalf("replica status does not show verified TLS: %+v", st.Replica)
	}
	pep := p.Operator()
	pep.TLS = c.TLS.ClientConfig()
	pdb, err := openDB(t, pep)
	if err != nil {
		t.Fatal(err)
	}
	mustExec(t, pdb, "CREATE DATABASE tlsrepl", "CREATE TABLE tlsrepl.t (id INT PRIMARY KEY)", "INSERT INTO tlsrepl.t VALUES (1)")
	executed, err := pe.ExecutedGTID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := re.WaitForGTID(ctx, executed, 30*time.Second); err != nil {
		t.Fatalf("the replica did not apply the source's writes over TLS: %v (replica: %+v)", err, re.Status(ctx).Replica)
	}
	// The source's view of the replication connection (the binlog dump thread).
	var cipher string
	err = pdb.QueryRow(`SELECT s.VARIABLE_VALUE FROM performance_schema.status_by_thread s
		JOIN performance_schema.threads th ON th.THREAD_ID = s.THREAD_ID
		WHERE th.PROCESSLIST_COMMAND = 'Binlog Dump' AND s.VARIABLE_NAME = 'Ssl_cipher'`).Scan(&cipher)
	if err != nil || cipher == "" {
		t.Fatalf("no cipher for the replication connection on the source: %q, %v", cipher, err)
	}
	t.Logf("replication connection cipher: %s", cipher)

	// A replica that trusts another CA fails the handshake and never replicates.
	otherCA, err := builder.CASecret(tlsCluster(true), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	bogus := c.TLS.Dir + "/other-ca.crt"
	writeFile(t, bogus, otherCA.Data[contract.TLSCAKey])
	se := open(stranger, bogus)
	if err := se.ConfigureReplica(ctx, p.ReplicationSource()); err != nil {
		t.Fatal(err)
	}
	if err := se.StartReplication(ctx, engine.BothThreads); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "the replica with another CA reports a TLS error", func() (bool, string) {
		rs := se.Status(ctx).Replica
		if rs == nil {
			return false, "no replica status"
		}
		return rs.LastIOErrno != 0 && strings.Contains(strings.ToLower(rs.LastIOError), "ssl"), fmt.Sprintf("%d %s", rs.LastIOErrno, rs.LastIOError)
	})
}

// clearText is the operator's endpoint without TLS.
func clearText(i *enginetest.Instance) engine.Endpoint {
	ep := i.Operator()
	ep.TLS = nil
	return ep
}

func newPool(t *testing.T, pem []byte) *x509.CertPool {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatal("not a PEM certificate")
	}
	return pool
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o400); err != nil {
		t.Fatal(err)
	}
}
