package agent

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kura-db/kura/internal/contract"
	"github.com/kura-db/kura/internal/engine"
)

// setEnv gives the test the environment and the credential files of an instance Pod's
// kura-init container (the files in a temporary directory named by KURA_CREDENTIALS_DIR).
func setEnv(t *testing.T, pod string) {
	for k, v := range map[string]string{
		"POD_NAME": pod, "POD_NAMESPACE": "prod", "CLUSTER_NAME": "shop", "KURA_INSTANCES_SERVICE": "shop-instances",
		"ENGINE": "mariadb", "KURA_DATABASE": "shop",
	} {
		t.Setenv(k, v)
	}
	dir := t.TempDir()
	for k, v := range map[string]string{
		contract.KeyOperatorPassword: "o", contract.KeyAdminPassword: "a", contract.KeyAppPassword: "p",
		contract.KeyReplicationPassword: "r", contract.KeyAgentPassword: "g", contract.KeyRootPassword: "x", contract.KeyAgentToken: "t",
	} {
		if err := os.WriteFile(filepath.Join(dir, k), []byte(v), 0o400); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv(EnvCredentialsDir, dir)
}

func TestEnvFromOS(t *testing.T) {
	setEnv(t, "shop-2")
	e, err := EnvFromOS()
	if err != nil {
		t.Fatal(err)
	}
	if e.Ordinal != 2 || e.Host() != "shop-2.shop-instances.prod.svc.cluster.local" {
		t.Errorf("env %+v host %s", e, e.Host())
	}
	if e.AgentPassword != "g" || e.OperatorPassword != "o" || e.AppPassword != "p" {
		t.Errorf("passwords not read from the credential files: %+v", e)
	}
	setEnv(t, "other-2")
	if _, err := EnvFromOS(); err == nil || !strings.Contains(err.Error(), "POD_NAME") {
		t.Errorf("a foreign pod name must be refused: %v", err)
	}
	setEnv(t, "shop-0")
	dir := os.Getenv(EnvCredentialsDir)
	if err := os.Remove(filepath.Join(dir, contract.KeyAgentPassword)); err != nil {
		t.Fatal(err)
	}
	if _, err := EnvFromOS(); err == nil || !strings.Contains(err.Error(), contract.KeyAgentPassword) {
		t.Errorf("a missing password file must be named: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, contract.KeyAgentPassword), nil, 0o400); err != nil {
		t.Fatal(err)
	}
	if _, err := EnvFromOS(); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Errorf("an empty password file must be refused: %v", err)
	}
	// The agent reads only the passwords it uses: the others may be absent.
	for _, k := range []string{contract.KeyAppPassword, contract.KeyAdminPassword, contract.KeyRootPassword, contract.KeyReplicationPassword} {
		_ = os.Remove(filepath.Join(dir, k))
	}
	if err := os.WriteFile(filepath.Join(dir, contract.KeyAgentPassword), []byte("g"), 0o400); err != nil {
		t.Fatal(err)
	}
	a, err := LoadEnv(dir, contract.AgentCredentialKeys)
	if err != nil || a.AgentPassword != "g" || a.AppPassword != "" {
		t.Errorf("agent env %+v: %v", a, err)
	}
}

// A rotated agent password file takes effect on the next request, without a restart; a file
// that disappears keeps the last good value.
func TestAgentTokenFollowsTheFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, contract.KeyAgentPassword)
	if err := os.WriteFile(path, []byte("first"), 0o400); err != nil {
		t.Fatal(err)
	}
	tok := &credentialFile{dir: dir, key: contract.KeyAgentPassword}
	srv := httptest.NewServer((&Server{TokenFunc: tok.Get}).Handler())
	defer srv.Close()
	status := func(token string) int {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/reclone", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := status("first"); got == http.StatusUnauthorized {
		t.Fatalf("the current password was refused")
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("second"), 0o400); err != nil {
		t.Fatal(err)
	}
	if got := status("first"); got != http.StatusUnauthorized {
		t.Errorf("the old password was accepted after rotation: %d", got)
	}
	if got := status("second"); got == http.StatusUnauthorized {
		t.Errorf("the rotated password was refused")
	}
	_ = os.Remove(path)
	if got := status("second"); got == http.StatusUnauthorized {
		t.Errorf("a vanished file must keep the last good password")
	}
}

// Init against the real installer: the per-instance config names the instance, the data
// directory is initialised once and kept on restart.
func TestInitInitialisesOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("engine tier: needs mariadb-install-db")
	}
	if _, err := engine.FindProgram("mariadb-install-db"); err != nil {
		t.Fatal("mariadb-install-db not found: run make deps")
	}
	setEnv(t, "shop-1")
	e, err := EnvFromOS()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	paths := InitPaths{DataDir: filepath.Join(dir, "data"), InstanceFile: filepath.Join(dir, "instance", "instance.cnf")}
	// No peer answers: after the (short) wait the instance is initialised empty.
	opts := InitOptions{Peers: []Peer{}, DiscoveryWait: time.Millisecond}
	out, err := Init(context.Background(), e, paths, opts)
	if err != nil || out != Initialised {
		t.Fatalf("first init: %v %v", out, err)
	}
	cnf, err := os.ReadFile(paths.InstanceFile)
	if err != nil || !strings.Contains(string(cnf), "server_id = 1001") || !strings.Contains(string(cnf), "report_host = shop-1.shop-instances.prod.svc.cluster.local") {
		t.Errorf("instance.cnf: %s %v", cnf, err)
	}
	if !engine.Initialized(paths.DataDir) {
		t.Error("data directory not marked initialised")
	}
	out, err = Init(context.Background(), e, paths, opts)
	if err != nil || out != Kept {
		t.Fatalf("second init must keep the data: %v %v", out, err)
	}
}

type pingFails struct{ engine.Instance }

func (pingFails) Ping(context.Context) error { return os.ErrDeadlineExceeded }

func TestReadyzFollowsMySQLD(t *testing.T) {
	srv := httptest.NewServer((&Server{Instance: pingFails{}}).Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("readyz with mysqld down: %d", resp.StatusCode)
	}
	resp, err = http.Get(srv.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("healthz: %d", resp.StatusCode)
	}
}

// The agent takes the cluster's agent token, never a database password, and a token of another
// cluster gets 401 and no byte of data; a client holding the agent password as well falls back
// to it once, for an agent of an earlier version, which took the password as its token.
func TestAgentTakesTheTokenNotAPassword(t *testing.T) {
	dir := t.TempDir()
	for k, v := range map[string]string{contract.KeyAgentPassword: "db-password", contract.KeyAgentToken: "cluster-token"} {
		if err := os.WriteFile(filepath.Join(dir, k), []byte(v), 0o400); err != nil {
			t.Fatal(err)
		}
	}
	tok := &credentialFile{dir: dir, key: contract.KeyAgentToken}
	srv := httptest.NewServer((&Server{TokenFunc: tok.Get}).Handler())
	defer srv.Close()
	for _, tc := range []struct {
		token string
		want  int
	}{{"cluster-token", http.StatusInternalServerError}, {"db-password", http.StatusUnauthorized}, {"other-cluster-token", http.StatusUnauthorized}, {"", http.StatusUnauthorized}} {
		resp, err := (&Client{BaseURL: srv.URL, Token: tc.token}).do(context.Background(), http.MethodPost, "/v1/reclone")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		// A caller let in reaches the handler (which, with no data directory here, fails: 500).
		if resp.StatusCode != tc.want || (tc.want == http.StatusUnauthorized && strings.TrimSpace(string(body)) != "unauthorized") {
			t.Errorf("token %q: %d %q, want %d", tc.token, resp.StatusCode, body, tc.want)
		}
	}
	legacy := &credentialFile{dir: dir, key: contract.KeyAgentPassword}
	old := httptest.NewServer((&Server{TokenFunc: legacy.Get}).Handler())
	defer old.Close()
	c := &Client{BaseURL: old.URL, Token: "cluster-token", Legacy: "db-password"}
	resp, err := c.do(context.Background(), http.MethodPost, "/v1/reclone")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusInternalServerError {
		t.Errorf("the client did not fall back to the agent password for an agent of an earlier version")
	}
}
