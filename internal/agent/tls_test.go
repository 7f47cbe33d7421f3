package agent

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/internal/engine"
	"github.com/kura-db/kura/internal/enginetest"
)

// tlsCluster issues a CA and the server certificate for cluster name in namespace prod, as
// the operator does, into a temporary directory.
func tlsCluster(t testing.TB, name string) *enginetest.TLSFiles {
	t.Helper()
	c := &kurav1alpha1.MySQLCluster{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "prod"}}
	f, err := enginetest.WriteTLSFiles(c, filepath.Join(t.TempDir(), "tls"))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// serveAgent serves h on a loopback port as `kura agent` does: HTTPS with cfg, plain HTTP
// when cfg is nil. It returns host:port.
func serveAgent(t testing.TB, h http.Handler, cfg *tls.Config) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, TLSConfig: cfg}
	go func() {
		if cfg != nil {
			_ = srv.ServeTLS(ln, "", "")
		} else {
			_ = srv.Serve(ln)
		}
	}()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

// tlsAgentClient is a client of the agent at addr verifying its certificate with caPEM for
// serverName, as the operator and the peers do (they dial an IP or a name and check the
// instance's DNS name).
func tlsAgentClient(t testing.TB, addr, token string, caPEM []byte, serverName string) *Client {
	t.Helper()
	cfg, err := engine.ClientTLS(caPEM, serverName)
	if err != nil {
		t.Fatal(err)
	}
	c := &Client{BaseURL: "http://" + addr, Token: token}
	c.UseTLS(cfg)
	return c
}

// reachable answers the agent's state with a running server.
type reachable struct{ engine.Instance }

func (reachable) Status(context.Context) engine.Status {
	return engine.Status{Reachable: true, ReadOnly: true, ServerID: 1001}
}

const shop1 = "shop-1.shop-instances.prod.svc.cluster.local"

// The agent serves HTTPS with the instance's certificate: a client verifying it against the
// cluster's CA for the instance's DNS name gets the state; a client trusting another
// cluster's CA, or expecting another name, does not connect; without the token the answer is
// 401 and no data; a plain-HTTP client gets 400 and nothing else.
func TestAgentOverTLS(t *testing.T) {
	files := tlsCluster(t, "shop")
	cfg, err := ServerTLS(files.CertFile, files.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	addr := serveAgent(t, (&Server{Instance: reachable{}, Token: "cluster-token", PodName: "shop-1"}).Handler(), cfg)
	ctx := context.Background()

	c := tlsAgentClient(t, addr, "cluster-token", files.CAPEM, shop1)
	if !strings.HasPrefix(c.BaseURL, "https://") {
		t.Fatalf("UseTLS kept %s", c.BaseURL)
	}
	st, err := c.State(ctx)
	if err != nil || st.Pod != "shop-1" || st.ServerID != 1001 {
		t.Fatalf("verified client: state %+v, %v", st, err)
	}
	if err := c.Healthz(ctx); err != nil {
		t.Errorf("healthz over TLS: %v", err)
	}

	var unknown x509.UnknownAuthorityError
	other := tlsCluster(t, "other")
	if _, err := tlsAgentClient(t, addr, "cluster-token", other.CAPEM, shop1).State(ctx); !errors.As(err, &unknown) {
		t.Errorf("a client trusting another cluster's CA: %v, want an unknown-authority error", err)
	}
	var hostErr x509.HostnameError
	if _, err := tlsAgentClient(t, addr, "cluster-token", files.CAPEM, "shop-1.elsewhere.example").State(ctx); !errors.As(err, &hostErr) {
		t.Errorf("a client expecting a name the certificate lacks: %v, want a host name error", err)
	}

	for _, token := range []string{"", "other-cluster-token"} {
		resp, err := tlsAgentClient(t, addr, token, files.CAPEM, shop1).do(ctx, http.MethodGet, "/v1/state")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || strings.Contains(string(body), "shop-1") {
			t.Errorf("token %q over TLS: %d %q, want 401 and no data", token, resp.StatusCode, body)
		}
	}

	var se *StatusError
	if _, err := (&Client{BaseURL: "http://" + addr, Token: "cluster-token"}).State(ctx); !errors.As(err, &se) || se.Code != http.StatusBadRequest {
		t.Errorf("plain HTTP to the HTTPS agent: %v, want 400", err)
	}
}

// A client that expects HTTPS talks to an agent of an earlier version (plain HTTP) only with
// PlainFallback, which the peers set while a cluster rolls onto this version; the operator's
// and backup Jobs' clients refuse it.
func TestPlainFallbackOnlyWhenAsked(t *testing.T) {
	files := tlsCluster(t, "shop")
	addr := serveAgent(t, (&Server{Instance: reachable{}, Token: "cluster-token", PodName: "shop-1"}).Handler(), nil)
	ctx := context.Background()
	strict := tlsAgentClient(t, addr, "cluster-token", files.CAPEM, shop1)
	if _, err := strict.State(ctx); !errors.Is(err, http.ErrSchemeMismatch) {
		t.Errorf("a strict client reached a plain-HTTP agent: %v", err)
	}
	peer := tlsAgentClient(t, addr, "cluster-token", files.CAPEM, shop1)
	peer.PlainFallback = true
	if st, err := peer.State(ctx); err != nil || st.Pod != "shop-1" {
		t.Errorf("a peer with PlainFallback: %+v, %v", st, err)
	}
	if err := peer.Healthz(ctx); err != nil {
		t.Errorf("a peer with PlainFallback, healthz: %v", err)
	}
	// An Env with the cluster's CA makes such peers; without it, plain clients.
	e := Env{Cluster: "shop", Namespace: "prod", InstancesService: "shop-instances", PodName: "shop-0", CA: files.CAPEM, AgentToken: "t"}
	for _, p := range PeersOf(e, 8080) {
		if !strings.HasPrefix(p.Client.BaseURL, "https://"+p.Host+":") || !p.Client.PlainFallback {
			t.Errorf("peer %s with the CA: %s fallback %v", p.Name, p.Client.BaseURL, p.Client.PlainFallback)
		}
	}
	e.CA = nil
	if p := PeersOf(e, 8080)[0]; !strings.HasPrefix(p.Client.BaseURL, "http://") {
		t.Errorf("peer without the CA: %s", p.Client.BaseURL)
	}
}

// A renewed certificate is served at the next handshake, by the same running agent; files
// that do not hold a valid pair (a Secret volume being replaced) leave the last good
// certificate in service.
func TestAgentServesRenewedCertificate(t *testing.T) {
	files := tlsCluster(t, "shop")
	cfg, err := ServerTLS(files.CertFile, files.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	addr := serveAgent(t, (&Server{Instance: reachable{}, Token: "cluster-token", PodName: "shop-1"}).Handler(), cfg)
	served := func() *x509.Certificate {
		t.Helper()
		ccfg, err := engine.ClientTLS(files.CAPEM, shop1)
		if err != nil {
			t.Fatal(err)
		}
		conn, err := tls.Dial("tcp", addr, ccfg)
		if err != nil {
			t.Fatalf("handshake: %v", err)
		}
		defer func() { _ = conn.Close() }()
		return conn.ConnectionState().PeerCertificates[0]
	}
	before := served()
	if err := files.Renew(time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	after := served()
	if after.SerialNumber.Cmp(before.SerialNumber) == 0 || !after.NotBefore.After(before.NotBefore) {
		t.Fatalf("the agent still serves certificate %s after the renewal", before.SerialNumber)
	}
	if err := writeFile(files.CertFile, "not a certificate"); err != nil {
		t.Fatal(err)
	}
	if got := served(); got.SerialNumber.Cmp(after.SerialNumber) != 0 {
		t.Errorf("a broken file replaced the served certificate: %s", got.SerialNumber)
	}
	if _, err := ServerTLS(files.CertFile, files.KeyFile); err == nil {
		t.Error("ServerTLS accepted files without a valid pair")
	}
}

// writeFile replaces path's contents, as the kubelet replaces a Secret volume's files.
func writeFile(path, content string) error {
	if err := os.WriteFile(path+".new", []byte(content), 0o400); err != nil {
		return err
	}
	return os.Rename(path+".new", path)
}

// An agent started on files without a valid pair (a user's broken certificate) runs and
// fails its handshakes, then serves the certificate once the files are fixed: no crash loop.
func TestAgentStartsOnABrokenCertificate(t *testing.T) {
	files := tlsCluster(t, "shop")
	good, err := os.ReadFile(files.CertFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeFile(files.CertFile, "not a certificate"); err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	cfg := servingTLS(files.CertFile, files.KeyFile, &log)
	if cfg == nil || !strings.Contains(log.String(), "handshakes fail") {
		t.Fatalf("config %v, log %q", cfg, log.String())
	}
	addr := serveAgent(t, (&Server{Instance: reachable{}, Token: "cluster-token", PodName: "shop-1"}).Handler(), cfg)
	c := tlsAgentClient(t, addr, "cluster-token", files.CAPEM, shop1)
	if _, err := c.State(context.Background()); err == nil {
		t.Fatal("a handshake succeeded without a valid certificate")
	}
	if err := writeFile(files.CertFile, string(good)); err != nil {
		t.Fatal(err)
	}
	if st, err := c.State(context.Background()); err != nil || st.Pod != "shop-1" {
		t.Errorf("after the files were fixed: %+v, %v", st, err)
	}
	if servingTLS(filepath.Join(t.TempDir(), "none.crt"), files.KeyFile, &log) != nil {
		t.Error("an agent without the certificate mounted (TLS off) must serve plain HTTP")
	}
}
