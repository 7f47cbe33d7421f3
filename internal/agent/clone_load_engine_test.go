package agent

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/internal/engine"
	"github.com/kura-db/kura/internal/enginetest"
)

// fill grows app.big to about mb MB of poorly compressible rows.
func fill(t testing.TB, inst *enginetest.Instance, mb int) {
	t.Helper()
	// Each statement writes about 30 MB: on a loaded machine that takes longer than the
	// default read timeout.
	db, err := sql.Open("mysql", engine.DSN(inst.Operator(), engine.Options{ReadTimeout: 5 * time.Minute, WriteTimeout: time.Minute}))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = db.Close() }()
	enginetest.Exec(t, db, "CREATE DATABASE IF NOT EXISTS app", "CREATE TABLE app.big (id BIGINT AUTO_INCREMENT PRIMARY KEY, pad VARCHAR(255))")
	rows := mb * 1024 * 1024 / 300
	for done := 0; done < rows; done += 100000 {
		enginetest.Exec(t, db, fmt.Sprintf("INSERT INTO app.big (pad) SELECT CONCAT(MD5(seq), MD5(seq+1), MD5(seq+2), MD5(seq+3), MD5(seq+4), MD5(seq+5), MD5(seq+6)) FROM app.seq_%d_to_%d", done+1, done+100000))
	}
}

// agentHTTPServer serves the agent API as `kura agent` does (same server settings), on a
// loopback port.
func agentHTTPServer(t testing.TB, api *Server) *Client {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: api.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return &Client{BaseURL: "http://" + ln.Addr().String(), Token: enginetest.AgentPassword}
}

// Two receivers clone one donor of more than 100 MB at the same time while it takes writes,
// through the agent's real HTTP server and client: both clones complete (a donor serves
// several clones; none is refused, none is cut).
func TestTwoClonesFromOneDonorUnderWrites(t *testing.T) {
	requireBackupTools(t)
	c := enginetest.Start(t, 1, enginetest.Options{})
	donor := c.Instances[0]
	fill(t, donor, 110)
	enginetest.Exec(t, donor.DB(), "CREATE TABLE app.w (id INT PRIMARY KEY)")
	api := donorServer(t, donor, "shop-0", enginetest.Log{T: t})
	client := agentHTTPServer(t, api)
	w := startWriter(donor.DB())
	defer func() {
		close(w.stop)
		w.Stop(t)
	}()
	root := t.TempDir()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	results := make([]CloneResult, 2)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = CloneInto(context.Background(), client, "shop-0", filepath.Join(root, fmt.Sprint(i)), cloneOpts(donor, enginetest.Log{T: t}))
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	for i, r := range results {
		t.Logf("clone %d: %d MB in %s, state %s", i, r.Bytes>>20, r.Duration.Round(time.Millisecond), r.State)
		if r.Bytes < 100<<20 {
			t.Errorf("clone %d copied only %d bytes", i, r.Bytes)
		}
	}
}

// logBuffer collects init's log lines.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// A clone cut in the middle is retried inside `kura init`, with back-off, instead of failing
// the init container (which Kubernetes answers with Init:CrashLoopBackOff): the second attempt
// starts over from an emptied directory and succeeds.
func TestInitRetriesAFailedClone(t *testing.T) {
	requireBackupTools(t)
	c := enginetest.Start(t, 2, enginetest.Options{})
	donor, recv := c.Instances[0], c.Instances[1]
	seedData(t, donor.DB(), 5000)
	srv, _ := donorAgent(t, donor, "shop-0", enginetest.Log{T: t})
	var calls atomic.Int32
	cut := cutAfter(t, srv.URL, 256<<10)
	whole := &Client{BaseURL: srv.URL, Token: enginetest.AgentPassword}
	flaky := httpFunc(t, func(w http.ResponseWriter, r *http.Request) {
		target := whole
		if r.URL.Path == "/v1/clone" && calls.Add(1) == 1 {
			target = cut
		}
		proxy(w, r, target.BaseURL)
	})
	recv.Stop()
	e := Env{PodName: "shop-1", Namespace: "test", Cluster: "shop", InstancesService: "shop-instances",
		Engine: kurav1alpha1.EngineMariaDB, Ordinal: 1, OperatorPassword: enginetest.OperatorPassword,
		ReplicationPassword: enginetest.ReplicationPassword, AgentPassword: enginetest.AgentPassword, RootPassword: enginetest.RootPassword}
	dir := filepath.Join(t.TempDir(), "data")
	log := &logBuffer{}
	out, err := Init(context.Background(), e, InitPaths{DataDir: dir, InstanceFile: filepath.Join(t.TempDir(), "instance.cnf")},
		InitOptions{Peers: []Peer{{Name: "shop-0", Client: flaky}}, DefaultsFile: filepath.Join(recv.Dir, "my.cnf"),
			Log: log, RetryBackoff: 100 * time.Millisecond})
	t.Log(log.String())
	if err != nil || out != Cloned {
		t.Fatalf("init: %v %v", out, err)
	}
	if n := calls.Load(); n != 2 {
		t.Fatalf("%d clone requests, want 2 (one cut, one whole)", n)
	}
	if !strings.Contains(log.String(), "clone attempt 1 of 8 failed") || !strings.Contains(log.String(), "truncated") {
		t.Fatalf("the failed attempt must be logged with its cause")
	}
	if !engine.Initialized(dir) {
		t.Fatal("not initialised after the retry")
	}
}

// httpFunc serves h and returns a client for it.
func httpFunc(t testing.TB, h http.HandlerFunc) *Client {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &Client{BaseURL: srv.URL, Token: enginetest.AgentPassword}
}

// proxy forwards r to base and copies the answer back.
func proxy(w http.ResponseWriter, r *http.Request, base string) {
	req, _ := http.NewRequestWithContext(r.Context(), r.Method, base+r.URL.RequestURI(), nil)
	req.Header = r.Header.Clone()
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer func() { _ = resp.Body.Close() }()
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}
