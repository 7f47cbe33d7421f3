package agent

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kura-db/kura/internal/engine"
)

// A volume that lost its data (perhaps the primary's) is never initialised empty while a peer
// that answered cannot yet say what it holds: the peer's server may be recovering the cluster's
// data. kura init keeps asking, and fails (to be retried) rather than initialise.
func TestInitWaitsForPeersThatCannotSayWhatTheyHold(t *testing.T) {
	setEnv(t, "shop-0")
	e, err := EnvFromOS()
	if err != nil {
		t.Fatal(err)
	}
	peer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		_ = json.NewEncoder(w).Encode(State{Pod: "shop-1", Initialized: true, Error: "mysqld is recovering"})
	}))
	defer peer.Close()
	host, port, _ := net.SplitHostPort(strings.TrimPrefix(peer.URL, "http://"))
	p, _ := strconv.Atoi(port)
	dir := t.TempDir()
	paths := InitPaths{DataDir: filepath.Join(dir, "data"), InstanceFile: filepath.Join(dir, "instance", "instance.cnf")}
	opts := InitOptions{Peers: []Peer{{Name: "shop-1", Host: host, Client: NewClient(host, p, "g")}},
		DiscoveryWait: 100 * time.Millisecond, CloneAttempts: 1}
	out, err := Init(context.Background(), e, paths, opts)
	if err == nil || !strings.Contains(err.Error(), "shop-1") || out == Initialised {
		t.Fatalf("init: %v %v, want a refusal naming shop-1", out, err)
	}
	if engine.Initialized(paths.DataDir) {
		t.Fatal("the data directory was initialised while a peer could not say what it holds")
	}
}
