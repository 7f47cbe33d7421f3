package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/internal/builder"
	"github.com/kura-db/kura/internal/contract"
	"github.com/kura-db/kura/test/e2eutil"
)

// TestTLS: a cluster comes up healthy with TLS by default, with nothing configured; clients
// verify the servers with the CA of ConfigMap <cluster>-ca; replication runs over TLS (the
// source reports the replication connection's cipher); with requireSecureTransport the
// instances roll and a clear-text client is refused while TLS clients and replication go on.
// A new server certificate is reloaded in place under writes, without a restart or a loss.
func TestTLS(t *testing.T) {
	needCluster(t)
	ns := newNamespace(t, "tls")
	c := newCluster(ns, "shop", 2)
	// performance_schema shows the cipher of each connection, the replication one included.
	c.Spec.MySQLD.Config["performance_schema"] = "ON"
	if err := k8s.Create(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	awaitCluster(t, ns, "shop", "a healthy cluster with TLS by default", 5*time.Minute, healthy(t, ns, "shop", 2))
	if tlsSpec := get(t, ns, "shop").Spec.TLS; tlsSpec.Enabled == nil || !*tlsSpec.Enabled || tlsSpec.RequireSecureTransport {
		t.Fatalf("spec.tls defaults: %+v", tlsSpec)
	}
	cm := &corev1.ConfigMap{}
	if err := k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: "shop-ca"}, cm); err != nil {
		t.Fatal(err)
	}
	caPEM := []byte(cm.Data[contract.TLSCAKey])
	admin := adminPassword(t, ns, "shop")
	primaryName := "shop-primary." + ns + ".svc"
	tlsDB := func(ip, name string) *sql.DB {
		db, err := e2eutil.OpenTLSDB(ip, name, adminUser, admin, caPEM, e2eutil.DefaultTimeouts)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = db.Close() })
		return db
	}
	primary := tlsDB(serviceIP(t, ns, "shop-primary"), primaryName)
	checkTLS(t, primary, "the primary Service")

	// A client that trusts another CA refuses the server's certificate.
	otherCA, err := builder.CASecret(newCluster(ns, "other", 1), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	untrusting, err := e2eutil.OpenTLSDB(serviceIP(t, ns, "shop-primary"), primaryName, adminUser, admin, otherCA.Data[contract.TLSCAKey], e2eutil.DefaultTimeouts)
	if err != nil {
		t.Fatal(err)
	}
	if perr := untrusting.Ping(); perr == nil || !strings.Contains(perr.Error(), "certificate") {
		t.Errorf("a client trusting another CA connected (or failed otherwise): %v", perr)
	}
	_ = untrusting.Close()

	replicaCipher(t, ns, primary, caPEM)

	// A new server certificate (forced here by deleting its Secret; renewal near expiry takes
	// the same path) is reloaded by every server in place under writes: no Pod restarts, every
	// instance and its agent present the new certificate, nothing is lost; the CA stays, so clients keep
	// trusting the servers.
	setupApp(t, ns, "shop")
	w := startWriter(serviceIP(t, ns, "shop-primary"), 1)
	w.waitFlowing(t)
	pods := podUIDs(t, ns)
	old := &corev1.Secret{}
	if err := k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: "shop-tls"}, old); err != nil {
		t.Fatal(err)
	}
	oldCert, err := builder.ParseCertificate(old.Data[contract.TLSCertKey])
	if err != nil {
		t.Fatal(err)
	}
	if err := k8s.Delete(context.Background(), old); err != nil {
		t.Fatal(err)
	}
	awaitCluster(t, ns, "shop", "every instance presenting a new certificate", 3*time.Minute, func() error {
		for name := range pods {
			serial, err := e2eutil.ServedCertificate(podIP(t, ns, name), name+".shop-instances."+ns+".svc", adminUser, admin, caPEM)
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			if serial.Cmp(oldCert.SerialNumber) == 0 {
				return fmt.Errorf("%s still presents the old certificate", name)
			}
			// Its agent serves the new certificate too, verified for the same name.
			agentCert, err := e2eutil.ServedAgentCertificate(podIP(t, ns, name), name+".shop-instances."+ns+".svc", caPEM)
			if err != nil {
				return fmt.Errorf("the agent of %s: %w", name, err)
			}
			if agentCert.Cmp(serial) != 0 {
				return fmt.Errorf("the agent of %s presents certificate %s, its server %s", name, agentCert, serial)
			}
		}
		return healthy(t, ns, "shop", 2)()
	})
	w.waitAckedSince(t, time.Now(), "after the certificate was reloaded", 2*time.Minute)
	acked := w.halt()
	if lost := missingOnPrimary(t, ns, "shop", acked); len(lost) > 0 {
		t.Fatalf("%d of %d acknowledged writes lost during the certificate's rotation: %v", len(lost), len(acked), lost)
	}
	if now := podUIDs(t, ns); !maps.Equal(now, pods) {
		t.Errorf("Pods replaced by a certificate renewal: %v, then %v", pods, now)
	}
	t.Logf("certificate rotation: reloaded in place, %d acknowledged writes, none lost", len(acked))
	cm2 := &corev1.ConfigMap{}
	if err := k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: "shop-ca"}, cm2); err != nil {
		t.Fatal(err)
	}
	if cm2.Data[contract.TLSCAKey] != string(caPEM) {
		t.Fatal("the CA changed with the server certificate")
	}
	primary = tlsDB(serviceIP(t, ns, "shop-primary"), primaryName)
	checkTLS(t, primary, "the primary Service after the rotation")
	replicaCipher(t, ns, primary, caPEM)

	// Clear text is accepted until requireSecureTransport is set.
	plain := openDB(serviceIP(t, ns, "shop-primary"), adminUser, admin)
	defer func() { _ = plain.Close() }()
	if err := plain.Ping(); err != nil {
		t.Fatalf("clear-text client refused without requireSecureTransport: %v", err)
	}
	rollTLS(t, ns, "the instances rolled with require_secure_transport and healthy", func(c *kurav1alpha1.MySQLCluster) { c.Spec.TLS.RequireSecureTransport = true })
	waitFor(t, "a clear-text client refused", time.Minute, func() error {
		db := openDB(serviceIP(t, ns, "shop-primary"), adminUser, admin)
		defer func() { _ = db.Close() }()
		// MariaDB 10.11 answers "Access denied" (1045), later versions "insecure transport".
		err := db.Ping()
		if err == nil {
			return fmt.Errorf("clear-text connection accepted")
		}
		if !strings.Contains(err.Error(), "1045") && !strings.Contains(err.Error(), "insecure transport") {
			return fmt.Errorf("clear-text connection failed for another reason: %w", err)
		}
		return nil
	})
	primary = tlsDB(serviceIP(t, ns, "shop-primary"), primaryName)
	checkTLS(t, primary, "the primary Service under requireSecureTransport")
	replicaCipher(t, ns, primary, caPEM)

	// Turning TLS off is a rolling change in the safe order that loses nothing: clear text
	// allowed again first, then TLS off under a clear-text writer.
	rollTLS(t, ns, "the instances rolled without require_secure_transport", func(c *kurav1alpha1.MySQLCluster) { c.Spec.TLS.RequireSecureTransport = false })
	w = startWriter(serviceIP(t, ns, "shop-primary"), 1_000_000)
	w.waitFlowing(t)
	off := false
	rollTLS(t, ns, "the instances rolled with TLS off", func(c *kurav1alpha1.MySQLCluster) { c.Spec.TLS.Enabled = &off })
	w.waitAckedSince(t, time.Now(), "after TLS was turned off", 2*time.Minute)
	acked = w.halt()
	if lost := missingOnPrimary(t, ns, "shop", acked); len(lost) > 0 {
		t.Fatalf("%d of %d acknowledged writes lost while TLS was turned off: %v", len(lost), len(acked), lost)
	}
	var haveSSL string
	waitFor(t, "the primary without TLS", time.Minute, func() error {
		db := openDB(serviceIP(t, ns, "shop-primary"), adminUser, admin)
		defer func() { _ = db.Close() }()
		if err := db.QueryRow("SELECT @@have_ssl").Scan(&haveSSL); err != nil {
			return err
		}
		if haveSSL == "YES" {
			return fmt.Errorf("have_ssl %s", haveSSL)
		}
		return nil
	})
	t.Logf("TLS turned off under writes: have_ssl %s, %d acknowledged writes, none lost", haveSSL, len(acked))
}

// rollTLS changes spec.tls and waits until every instance runs the new configuration and the
// cluster is healthy again.
func rollTLS(t *testing.T, ns, what string, change func(*kurav1alpha1.MySQLCluster)) {
	t.Helper()
	before := get(t, ns, "shop").Status.ConfigHash
	update(t, ns, "shop", change)
	awaitCluster(t, ns, "shop", what, 10*time.Minute, func() error {
		c := get(t, ns, "shop")
		if c.Status.ConfigHash == before {
			return fmt.Errorf("config hash unchanged")
		}
		var pods corev1.PodList
		if err := k8s.List(context.Background(), &pods, client.InNamespace(ns), client.MatchingLabels{contract.LabelCluster: "shop"}); err != nil {
			return err
		}
		for _, p := range pods.Items {
			if h := p.Annotations[contract.AnnotationConfigHash]; h != c.Status.ConfigHash {
				return fmt.Errorf("%s still runs config %s", p.Name, h)
			}
		}
		return healthy(t, ns, "shop", 2)()
	})
}

// podUIDs maps the cluster's Pods to their UIDs.
func podUIDs(t *testing.T, ns string) map[string]types.UID {
	t.Helper()
	var pods corev1.PodList
	if err := k8s.List(context.Background(), &pods, client.InNamespace(ns), client.MatchingLabels{contract.LabelCluster: "shop"}); err != nil {
		t.Fatal(err)
	}
	out := map[string]types.UID{}
	for _, p := range pods.Items {
		out[p.Name] = p.UID
	}
	return out
}

func checkTLS(t *testing.T, db *sql.DB, what string) {
	t.Helper()
	var name, cipher string
	waitFor(t, "a TLS session with "+what, time.Minute, func() error {
		return db.QueryRow("SHOW SESSION STATUS LIKE 'Ssl_cipher'").Scan(&name, &cipher)
	})
	if cipher == "" {
		t.Fatalf("%s: no cipher on a TLS connection", what)
	}
}

// replicaCipher waits until the primary's binlog dump thread (the replica's connection)
// reports a cipher, and the replica reports verified TLS to its source.
func replicaCipher(t *testing.T, ns string, primary *sql.DB, caPEM []byte) {
	t.Helper()
	waitFor(t, "the replication connection over TLS", 2*time.Minute, func() error {
		var cipher string
		err := primary.QueryRow(`SELECT s.VARIABLE_VALUE FROM performance_schema.status_by_thread s
			JOIN performance_schema.threads th ON th.THREAD_ID = s.THREAD_ID
			WHERE th.PROCESSLIST_COMMAND = 'Binlog Dump' AND s.VARIABLE_NAME = 'Ssl_cipher'`).Scan(&cipher)
		if err != nil {
			return fmt.Errorf("no replication connection: %w", err)
		}
		if cipher == "" {
			return fmt.Errorf("the replication connection has no cipher")
		}
		t.Logf("replication connection cipher: %s", cipher)
		return nil
	})
	c := get(t, ns, "shop")
	for _, in := range c.Status.Instances {
		if in.Role != kurav1alpha1.RoleReplica {
			continue
		}
		db, err := e2eutil.OpenTLSDB(podIP(t, ns, in.Name), in.Name+".shop-instances."+ns+".svc", adminUser, adminPassword(t, ns, "shop"), caPEM, e2eutil.DefaultTimeouts)
		if err != nil {
			t.Fatal(err)
		}
		got := firstRow(t, db, "SHOW SLAVE STATUS")
		_ = db.Close()
		if got["Master_SSL_Allowed"] != "Yes" || got["Master_SSL_Verify_Server_Cert"] != "Yes" || got["Master_SSL_CA_File"] != contract.TLSCAFile {
			t.Errorf("%s replicates without verified TLS: allowed %q verify %q ca %q", in.Name, got["Master_SSL_Allowed"], got["Master_SSL_Verify_Server_Cert"], got["Master_SSL_CA_File"])
		}
	}
}

// firstRow returns the first row of a query by column name.
func firstRow(t *testing.T, db *sql.DB, query string) map[string]string {
	t.Helper()
	rows, err := db.Query(query)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	defer func() { _ = rows.Close() }()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	if !rows.Next() {
		t.Fatalf("%s: no row", query)
	}
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for i, c := range cols {
		out[c] = vals[i].String
	}
	return out
}
