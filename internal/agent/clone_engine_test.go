package agent

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/internal/engine"
	"github.com/kura-db/kura/internal/enginetest"
	"github.com/kura-db/kura/internal/gtid"
)

func requireBackupTools(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("engine tier: needs mariadbd and mariadb-backup; not run with -short")
	}
	for _, p := range []string{"mariadb-backup", "mbstream"} {
		if _, err := engine.FindProgram(p); err != nil {
			t.Fatalf("%s not found: run make deps", p)
		}
	}
}

// donorServer is the agent API of an instance, as its agent container runs it.
func donorServer(t testing.TB, inst *enginetest.Instance, name string, log io.Writer) *Server {
	t.Helper()
	ep := inst.Endpoint(engine.AgentUser, enginetest.AgentPassword)
	ei, err := engine.Open(kurav1alpha1.EngineMariaDB, ep, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ei.Close() })
	return &Server{Instance: ei, Token: enginetest.AgentPassword, PodName: name, DataDir: inst.DataDir, Log: log,
		Backup: engine.BackupOptions{DefaultsFile: filepath.Join(inst.Dir, "my.cnf"), Endpoint: ep}}
}

// donorAgent serves the real agent API for an instance, as its agent container would.
func donorAgent(t testing.TB, inst *enginetest.Instance, name string, log io.Writer) (*httptest.Server, *Client) {
	t.Helper()
	srv := httptest.NewServer(donorServer(t, inst, name, log).Handler())
	t.Cleanup(srv.Close)
	return srv, &Client{BaseURL: srv.URL, Token: enginetest.AgentPassword}
}

// donorAgentTLS serves the agent API of an instance over HTTPS with the cluster's server
// certificate, as its agent container does with TLS on, and returns a client verifying it
// against the cluster's CA for the instance's DNS name.
func donorAgentTLS(t testing.TB, c *enginetest.Cluster, inst *enginetest.Instance, name string, log io.Writer) *Client {
	t.Helper()
	cfg, err := ServerTLS(c.TLS.CertFile, c.TLS.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	addr := serveAgent(t, donorServer(t, inst, name, log).Handler(), cfg)
	return tlsAgentClient(t, addr, enginetest.AgentPassword, c.TLS.CAPEM, "enginetest-0.enginetest-instances.test.svc.cluster.local")
}

func cloneOpts(inst *enginetest.Instance, log io.Writer) CloneOptions {
	return CloneOptions{Engine: kurav1alpha1.EngineMariaDB, DefaultsFile: filepath.Join(inst.Dir, "my.cnf"),
		OperatorPassword: enginetest.OperatorPassword, Log: log}
}

// seedData creates the application data: a table with rows, and a stream written under another
// server_id (as a former primary leaves behind), which gtid_slave_pos alone would lose.
func seedData(t testing.TB, db *sql.DB, rows int) {
	t.Helper()
	enginetest.Exec(t, db, "CREATE DATABASE app",
		"CREATE TABLE app.t (id INT PRIMARY KEY, pad VARCHAR(200))",
		"CREATE TABLE app.w (id INT PRIMARY KEY)",
		"CREATE TABLE app.old (id INT PRIMARY KEY)")
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	for _, s := range []string{"SET SESSION server_id = 1005", "INSERT INTO app.old VALUES (1)", "INSERT INTO app.old VALUES (2)", "SET SESSION server_id = 1000"} {
		if _, err := conn.ExecContext(context.Background(), s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	for i := 0; i < rows; i += 500 {
		var vals []string
		for j := i; j < i+500 && j < rows; j++ {
			vals = append(vals, fmt.Sprintf("(%d, REPEAT('x', 200))", j))
		}
		enginetest.Exec(t, db, "INSERT INTO app.t VALUES "+strings.Join(vals, ","))
	}
}

// writer inserts app.w rows 1, 2, ... one transaction each until stopped.
type writer struct {
	last atomic.Int64
	stop chan struct{}
	wg   sync.WaitGroup
	err  atomic.Value
}

func startWriter(db *sql.DB) *writer {
	w := &writer{stop: make(chan struct{})}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		for k := int64(1); ; k++ {
			select {
			case <-w.stop:
				return
			default:
			}
			if _, err := db.Exec("INSERT INTO app.w VALUES (?)", k); err != nil {
				w.err.Store(err)
				return
			}
			w.last.Store(k)
			time.Sleep(2 * time.Millisecond)
		}
	}()
	return w
}

func (w *writer) Stop(t testing.TB) int64 {
	w.wg.Wait()
	if err, _ := w.err.Load().(error); err != nil {
		t.Fatalf("writer: %v", err)
	}
	return w.last.Load()
}

func executed(t testing.TB, inst engine.Instance) gtid.Set {
	t.Helper()
	s, err := inst.ExecutedGTID(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func checksum(t testing.TB, db *sql.DB, table string) string {
	t.Helper()
	var name string
	var sum sql.NullInt64
	if err := db.QueryRow("CHECKSUM TABLE "+table).Scan(&name, &sum); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprint(sum.Int64)
}

// A receiver clones a donor that keeps writing, through the real HTTP stream; it starts
// with the donor's full GTID state at the copy point (older streams included), its data
// matches that state exactly, and it then replicates from the donor with GTID
// auto-positioning and catches up with everything written during and after the copy.
func TestCloneThroughAgent(t *testing.T) {
	requireBackupTools(t)
	c := enginetest.Start(t, 2, enginetest.Options{})
	donor, recv := c.Instances[0], c.Instances[1]
	ddb := donor.DB()
	seedData(t, ddb, 20000)
	dinst := donor.Open(engine.Options{})
	base := executed(t, dinst)
	old := gtid.MustParse(gtid.MariaDB, "0-1005-2")
	if !base.Contains(old) || base.Position().Contains(old) {
		t.Fatalf("test setup: donor state %q must hold the older stream 0-1005-2 beyond its position", base)
	}
	_, client := donorAgent(t, donor, "shop-0", enginetest.Log{T: t})

	recv.Stop()
	if err := os.RemoveAll(recv.DataDir); err != nil {
		t.Fatal(err)
	}
	w := startWriter(ddb)
	res, err := CloneInto(context.Background(), client, "shop-0", recv.DataDir, cloneOpts(recv, enginetest.Log{T: t}))
	if err != nil {
		close(w.stop)
		w.Stop(t)
		t.Fatal(err)
	}
	t.Logf("cloned %d bytes in %s; state %s", res.Bytes, res.Duration, res.State)
	if !engine.Initialized(recv.DataDir) {
		t.Fatal("the clone is not marked initialised")
	}
	if _, err := os.Stat(filepath.Join(recv.DataDir, CloningMarker)); !os.IsNotExist(err) {
		t.Fatalf("the cloning marker is still there: %v", err)
	}
	recv.Restart()
	rinst := recv.Open(engine.Options{})
	rdb := recv.DB()
	got := executed(t, rinst)
	if !got.Equal(res.State) {
		t.Fatalf("receiver executed set %q, clone state %q", got, res.State)
	}
	if !got.Contains(base) {
		t.Fatalf("receiver executed set %q lacks %q of the donor's state before the copy (the older stream must survive)", got, base.Subtract(got))
	}
	// Every transaction of stream 0-1000 after base is one writer row: the copy's rows and
	// its GTID state must describe the same moment.
	var rows, maxID int64
	if err := rdb.QueryRow("SELECT COUNT(*), COALESCE(MAX(id), 0) FROM app.w").Scan(&rows, &maxID); err != nil {
		t.Fatal(err)
	}
	seqOf := func(s gtid.Set) uint64 {
		for _, g := range s.MariaDBGTIDs() {
			if g.Domain == 0 && g.Server == 1000 {
				return g.Seq
			}
		}
		return 0
	}
	if rows != maxID || uint64(rows) != seqOf(got)-seqOf(base) {
		t.Fatalf("copy inconsistent with its GTID state: %d rows (max id %d), state %q, before the copy %q", rows, maxID, got, base)
	}
	t.Logf("the copy holds %d rows written during the clone", rows)

	if err := rinst.ConfigureReplica(context.Background(), donor.ReplicationSource()); err != nil {
		t.Fatal(err)
	}
	if err := rinst.StartReplication(context.Background(), engine.BothThreads); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for w.last.Load() < maxID+200 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	close(w.stop)
	last := w.Stop(t)
	final := executed(t, dinst)
	if err := rinst.WaitForGTID(context.Background(), final, 60*time.Second); err != nil {
		t.Fatalf("replica did not catch up: %v; status %+v", err, rinst.Status(context.Background()).Replica)
	}
	if st := rinst.Status(context.Background()); !st.Replica.Replicating() || st.Replica.LastIOError != "" || st.Replica.LastSQLError != "" {
		t.Fatalf("replication: %+v", st.Replica)
	}
	if got := executed(t, rinst); !got.Equal(final) {
		t.Fatalf("replica executed %q, donor %q", got, final)
	}
	for _, table := range []string{"app.t", "app.w", "app.old"} {
		if a, b := checksum(t, ddb, table), checksum(t, rdb, table); a != b {
			t.Errorf("CHECKSUM TABLE %s: donor %s, replica %s", table, a, b)
		}
	}
	t.Logf("writer wrote %d rows; replica caught up at %s", last, final)
}

// A clone through an agent serving HTTPS, verified against the cluster's CA, between two
// real servers: the receiver holds the donor's rows and GTID state.
func TestCloneThroughAgentOverTLS(t *testing.T) {
	requireBackupTools(t)
	c := enginetest.Start(t, 2, enginetest.Options{})
	donor, recv := c.Instances[0], c.Instances[1]
	ddb := donor.DB()
	seedData(t, ddb, 5000)
	client := donorAgentTLS(t, c, donor, "shop-0", enginetest.Log{T: t})
	recv.Stop()
	if err := os.RemoveAll(recv.DataDir); err != nil {
		t.Fatal(err)
	}
	res, err := CloneInto(context.Background(), client, "shop-0", recv.DataDir, cloneOpts(recv, enginetest.Log{T: t}))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("cloned %d bytes over TLS in %s; state %s", res.Bytes, res.Duration, res.State)
	recv.Restart()
	rinst := recv.Open(engine.Options{})
	if got, want := executed(t, rinst), executed(t, donor.Open(engine.Options{})); !got.Equal(want) || !got.Equal(res.State) {
		t.Fatalf("receiver executed %q, donor %q, clone state %q", got, want, res.State)
	}
	for _, table := range []string{"app.t", "app.old"} {
		if a, b := checksum(t, ddb, table), checksum(t, recv.DB(), table); a != b {
			t.Errorf("CHECKSUM TABLE %s: donor %s, clone %s", table, a, b)
		}
	}
	// A receiver that does not trust the cluster's CA gets nothing.
	other := tlsCluster(t, "other")
	untrusting := tlsAgentClient(t, strings.TrimPrefix(client.BaseURL, "https://"), enginetest.AgentPassword, other.CAPEM,
		"enginetest-0.enginetest-instances.test.svc.cluster.local")
	if _, err := CloneInto(context.Background(), untrusting, "shop-0", filepath.Join(t.TempDir(), "data"), cloneOpts(recv, enginetest.Log{T: t})); err == nil {
		t.Fatal("a receiver that does not trust the CA cloned the donor")
	}
}

// cutAfter proxies the donor's clone stream but ends it after n bytes.
func cutAfter(t testing.TB, donorURL string, n int64) *Client {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, _ := http.NewRequestWithContext(r.Context(), r.Method, donorURL+r.URL.RequestURI(), nil)
		req.Header = r.Header.Clone()
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer func() { _ = resp.Body.Close() }()
		w.WriteHeader(resp.StatusCode)
		_, _ = io.CopyN(w, resp.Body, n)
	}))
	t.Cleanup(srv.Close)
	return &Client{BaseURL: srv.URL, Token: enginetest.AgentPassword}
}

// A stream cut in the middle is refused with a clear error, and the directory is left
// marked as a partial copy, never as initialised.
func TestCloneTruncatedStream(t *testing.T) {
	requireBackupTools(t)
	c := enginetest.Start(t, 1, enginetest.Options{})
	donor := c.Instances[0]
	seedData(t, donor.DB(), 5000)
	srv, _ := donorAgent(t, donor, "shop-0", enginetest.Log{T: t})
	dir := filepath.Join(t.TempDir(), "data")
	_, err := CloneInto(context.Background(), cutAfter(t, srv.URL, 256<<10), "shop-0", dir, cloneOpts(donor, enginetest.Log{T: t}))
	if err == nil || !strings.Contains(err.Error(), "truncated") {
		t.Fatalf("a cut stream must fail as truncated: %v", err)
	}
	t.Logf("error: %v", err)
	if engine.Initialized(dir) {
		t.Fatal("a partial copy was marked initialised")
	}
	if _, err := os.Stat(filepath.Join(dir, CloningMarker)); err != nil {
		t.Fatalf("a partial copy must carry the cloning marker: %v", err)
	}
}

// A re-clone request on an errant replica: the next init keeps its data aside and clones
// the donor afresh; the errant transaction is gone and the instance replicates again.
func TestRecloneKeepsDataAside(t *testing.T) {
	requireBackupTools(t)
	c := enginetest.Start(t, 2, enginetest.Options{})
	donor, recv := c.Instances[0], c.Instances[1]
	ddb := donor.DB()
	seedData(t, ddb, 2000)
	_, donorClient := donorAgent(t, donor, "shop-0", enginetest.Log{T: t})
	rinst := recv.Open(engine.Options{})
	if err := rinst.ConfigureReplica(context.Background(), donor.ReplicationSource()); err != nil {
		t.Fatal(err)
	}
	if err := rinst.StartReplication(context.Background(), engine.BothThreads); err != nil {
		t.Fatal(err)
	}
	dinst := donor.Open(engine.Options{})
	if err := rinst.WaitForGTID(context.Background(), executed(t, dinst), 30*time.Second); err != nil {
		t.Fatal(err)
	}
	// The errant write: a table only the replica has.
	enginetest.Exec(t, recv.DB(), "CREATE TABLE app.errant (id INT PRIMARY KEY)", "INSERT INTO app.errant VALUES (1)")
	errant := executed(t, rinst).Subtract(executed(t, dinst))
	if errant.IsEmpty() {
		t.Fatal("test setup: the replica must be errant")
	}
	_, recvClient := donorAgent(t, recv, "shop-1", enginetest.Log{T: t})
	if err := recvClient.RequestReclone(context.Background(), "shop-0", "errant"); err != nil {
		t.Fatal(err)
	}
	// A previous aside copy is replaced by the new one.
	if err := os.MkdirAll(filepath.Join(recv.DataDir, AsideDir, "20000101T000000Z"), 0o750); err != nil {
		t.Fatal(err)
	}
	recv.Stop()

	e := Env{PodName: "shop-1", Namespace: "test", Cluster: "shop", InstancesService: "shop-instances",
		Engine: kurav1alpha1.EngineMariaDB, Ordinal: 1, OperatorPassword: enginetest.OperatorPassword,
		ReplicationPassword: enginetest.ReplicationPassword, AgentPassword: enginetest.AgentPassword, RootPassword: enginetest.RootPassword}
	unreachable := &Client{BaseURL: "http://127.0.0.1:1", Token: "x"}
	peers := []Peer{{Name: "shop-0", Client: donorClient}, {Name: "shop-2", Client: unreachable}}
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	out, err := Init(context.Background(), e, InitPaths{DataDir: recv.DataDir, InstanceFile: filepath.Join(t.TempDir(), "instance.cnf")},
		InitOptions{Peers: peers, DefaultsFile: filepath.Join(recv.Dir, "my.cnf"), Log: enginetest.Log{T: t}, Now: func() time.Time { return now }})
	if err != nil || out != Cloned {
		t.Fatalf("init after a re-clone request: %v %v", out, err)
	}
	aside := filepath.Join(recv.DataDir, AsideDir)
	entries, err := os.ReadDir(aside)
	if err != nil || len(entries) != 1 || entries[0].Name() != "20300102T030405Z" {
		t.Fatalf("aside copies: %v %v", entries, err)
	}
	if _, err := os.Stat(filepath.Join(aside, entries[0].Name(), "app", "errant.ibd")); err != nil {
		t.Fatalf("the errant data must be kept aside: %v", err)
	}
	for _, m := range []string{RecloneMarker, CloningMarker} {
		if _, err := os.Stat(filepath.Join(recv.DataDir, m)); !os.IsNotExist(err) {
			t.Errorf("%s left behind: %v", m, err)
		}
	}
	recv.Restart()
	rinst = recv.Open(engine.Options{})
	got := executed(t, rinst)
	if !executed(t, dinst).Contains(got) || !got.Subtract(executed(t, dinst)).IsEmpty() {
		t.Fatalf("the re-cloned replica is still errant: %q vs donor %q", got, executed(t, dinst))
	}
	var dbs []string
	rows, err := recv.DB().Query("SHOW DATABASES")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var n string
		_ = rows.Scan(&n)
		dbs = append(dbs, n)
	}
	_ = rows.Close()
	t.Logf("databases after re-clone: %v", dbs)
	var n int
	if err := recv.DB().QueryRow("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'app' AND TABLE_NAME = 'errant'").Scan(&n); err != nil || n != 0 {
		t.Fatalf("the errant table survived the re-clone: %d %v", n, err)
	}
	enginetest.Exec(t, ddb, "INSERT INTO app.w VALUES (1)")
	if err := rinst.ConfigureReplica(context.Background(), donor.ReplicationSource()); err != nil {
		t.Fatal(err)
	}
	if err := rinst.StartReplication(context.Background(), engine.BothThreads); err != nil {
		t.Fatal(err)
	}
	if err := rinst.WaitForGTID(context.Background(), executed(t, dinst), 30*time.Second); err != nil {
		t.Fatal(err)
	}
}

// A donor that keeps an earlier copy aside (after its own re-clone) clones like any other:
// the aside directory, which mariadb-backup would take for a database, is left out of the
// copy (mbstream refused its name and stopped, so every clone from such a donor was cut).
func TestCloneFromADonorWithDataAside(t *testing.T) {
	requireBackupTools(t)
	c := enginetest.Start(t, 2, enginetest.Options{})
	donor, recv := c.Instances[0], c.Instances[1]
	seedData(t, donor.DB(), 2000)
	aside := filepath.Join(donor.DataDir, AsideDir, "20260101T000000Z", "app")
	if err := os.MkdirAll(aside, 0o750); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"db.opt", "w.frm", "w.ibd"} {
		if err := os.WriteFile(filepath.Join(aside, f), []byte("old"), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(donor.DataDir, AsideDir, "db.opt"), []byte("old"), 0o640); err != nil {
		t.Fatal(err)
	}
	// The server itself lists the aside directory among its databases.
	enginetest.Exec(t, donor.DB(), "SHOW DATABASES")
	_, client := donorAgent(t, donor, "shop-0", enginetest.Log{T: t})
	recv.Stop()
	if err := os.RemoveAll(recv.DataDir); err != nil {
		t.Fatal(err)
	}
	res, err := CloneInto(context.Background(), client, "shop-0", recv.DataDir, cloneOpts(recv, enginetest.Log{T: t}))
	if err != nil {
		t.Fatalf("clone from a donor with data aside: %v", err)
	}
	if _, err := os.Stat(filepath.Join(recv.DataDir, AsideDir)); !os.IsNotExist(err) {
		t.Fatalf("the donor's aside copy came along: %v", err)
	}
	recv.Restart()
	var n int
	if err := recv.DB().QueryRow("SELECT COUNT(*) FROM app.t").Scan(&n); err != nil || n != 2000 {
		t.Fatalf("the clone's rows: %d, %v", n, err)
	}
	t.Logf("cloned %d bytes from a donor with data aside", res.Bytes)
}
