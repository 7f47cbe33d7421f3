package agent

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kura-db/kura/internal/engine"
)

func setEnv(t *testing.T, pod string) {
	for k, v := range map[string]string{
		"POD_NAME": pod, "POD_NAMESPACE": "prod", "CLUSTER_NAME": "shop", "KURA_INSTANCES_SERVICE": "shop-instances",
		"ENGINE": "mariadb", "KURA_OPERATOR_PASSWORD": "o", "KURA_ADMIN_PASSWORD": "a", "KURA_APP_PASSWORD": "p", "KURA_DATABASE": "shop", "KURA_REPL_PASSWORD": "r", "KURA_AGENT_PASSWORD": "g", "KURA_ROOT_PASSWORD": "x",
	} {
		t.Setenv(k, v)
	}
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
	setEnv(t, "other-2")
	if _, err := EnvFromOS(); err == nil || !strings.Contains(err.Error(), "POD_NAME") {
		t.Errorf("a foreign pod name must be refused: %v", err)
	}
	setEnv(t, "shop-0")
	t.Setenv("KURA_AGENT_PASSWORD", "")
	if _, err := EnvFromOS(); err == nil || !strings.Contains(err.Error(), "KURA_AGENT_PASSWORD") {
		t.Errorf("a missing password must be named: %v", err)
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
