package clustering

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/go-sql-driver/mysql"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/internal/engine"
	"github.com/kura-db/kura/internal/gtid"
	"github.com/kura-db/kura/internal/mycnf"
)

// The engine tier: real mariadbd processes on loopback, driven by the same Loop, Observe,
// Decide and Act the operator runs. Pod facts are synthesised: a process that runs is a Pod
// that exists.

const (
	adminPassword = "admin-secret"
	replPassword  = "repl-secret"
	appUser       = "app"
	appPassword   = "app-secret"
)

type server struct {
	ord     int
	dir     string
	port    int
	cnf     string
	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{}
	stopped bool
}

// rig is a cluster of real servers plus an in-memory Source and Sink.
type rig struct {
	t       testing.TB
	servers []*server
	mu      sync.Mutex
	spec    Spec
	rec     Recorded
	labels  map[int]string
	events  []EmitEvent
	last    Report
	sqls    map[int]*EngineSQL
	loop    *Loop
}

func needServers(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("engine tier: needs mariadbd (skipped under -short)")
	}
	p, err := engine.FindProgram("mariadbd")
	if err != nil {
		t.Fatalf("mariadbd is missing: run make deps (%v)", err)
	}
	return p
}

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port
}

// newRig initialises and starts n servers and a loop over them (not yet running).
func newRig(t testing.TB, n int) *rig {
	bin := needServers(t)
	c := &kurav1alpha1.MySQLCluster{ObjectMeta: metav1.ObjectMeta{Name: "it", Namespace: "test"}}
	c.Spec.Engine = kurav1alpha1.EngineMariaDB
	c.Spec.Replicas = int32(n)
	text, err := mycnf.Render(c)
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{t: t, labels: map[int]string{}, sqls: map[int]*EngineSQL{}, rec: Recorded{Primary: NoPrimary},
		spec: Spec{Replicas: n, SemiSync: true, MaxLag: 30 * time.Second, FailoverGrace: 3 * time.Second,
			ApplyTimeout: 60 * time.Second, ErrantPolicy: ErrantManual, AutoFailover: true}}
	base := t.TempDir()
	accounts := engine.StandardAccounts(adminPassword, replPassword, "agent-secret", "root-secret")
	for i := 0; i < n; i++ {
		s := &server{ord: i, dir: filepath.Join(base, fmt.Sprint(i)), port: freePort(t)}
		if err := os.MkdirAll(s.dir, 0o755); err != nil {
			t.Fatal(err)
		}
		inst := fmt.Sprintf("[mysqld]\nport = %d\nsocket = %s/mysqld.sock\ndatadir = %s/data\npid_file = %s/mysqld.pid\nbind_address = 127.0.0.1\nserver_id = %d\nreport_host = 127.0.0.1\nreport_port = %d\ninnodb_buffer_pool_size = 32M\ninnodb_log_file_size = 16M\nperformance_schema = OFF\n",
			s.port, s.dir, s.dir, s.dir, 1000+i, s.port)
		s.cnf = filepath.Join(s.dir, "my.cnf")
		if err := os.WriteFile(s.cnf, []byte(strings.Replace(text, mycnf.IncludeLine(), inst, 1)), 0o644); err != nil {
			t.Fatal(err)
		}
		r.servers = append(r.servers, s)
	}
	// The first data directory is initialised once, then copied: faster, and mariadb-install-db
	// run several times at once on two busy cores has been seen to crash.
	// A private TMPDIR: the servers' temporary files must not meet other processes' in /tmp.
	tmp := filepath.Join(base, "tmp")
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TMPDIR", tmp)
	if _, err := engine.InitDataDir(context.Background(), kurav1alpha1.EngineMariaDB, filepath.Join(r.servers[0].dir, "data"), accounts,
		engine.InitOptions{Server: bin}); err != nil {
		t.Fatalf("failed to initialise instance 0: %v", err)
	}
	for _, s := range r.servers[1:] {
		if out, err := exec.Command("cp", "-a", filepath.Join(r.servers[0].dir, "data"), filepath.Join(s.dir, "data")).CombinedOutput(); err != nil {
			t.Fatalf("failed to copy the data directory: %v\n%s", err, out)
		}
	}
	for _, s := range r.servers {
		r.start(s)
	}
	t.Cleanup(func() {
		for _, s := range r.servers {
			r.kill(s.ord)
		}
		for _, e := range r.sqls {
			_ = e.Instance.Close()
		}
	})
	for _, s := range r.servers {
		r.waitUp(s.ord)
	}
	r.loop = NewLoop(r, r, Options{Log: testr.NewWithInterface(r.t, testr.Options{Verbosity: 0})})
	return r
}

func (r *rig) start(s *server) {
	bin, _ := engine.FindProgram("mariadbd")
	args := []string{"--defaults-file=" + s.cnf}
	if os.Geteuid() == 0 {
		args = append(args, "--user=root")
	}
	cmd := exec.Command(bin, args...)
	log, err := os.OpenFile(filepath.Join(s.dir, "error.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		r.t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		r.t.Fatalf("failed to start mariadbd %d: %v", s.ord, err)
	}
	s.mu.Lock()
	s.cmd, s.exited, s.stopped = cmd, make(chan struct{}), false
	ch := s.exited
	s.mu.Unlock()
	go func() { _ = cmd.Wait(); log.Close(); close(ch) }()
}

// kill sends SIGKILL and waits for the process to end.
func (r *rig) kill(o int) {
	s := r.servers[o]
	s.mu.Lock()
	cmd, ch := s.cmd, s.exited
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGCONT)
	_ = cmd.Process.Kill()
	<-ch
}

func (r *rig) signal(o int, sig syscall.Signal) {
	s := r.servers[o]
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.cmd.Process.Signal(sig); err != nil {
		r.t.Fatalf("failed to signal instance %d: %v", o, err)
	}
}

func (r *rig) restart(o int) {
	r.kill(o)
	r.start(r.servers[o])
	r.waitUp(o)
}

// db opens a client connection pool to an instance as the given account.
func (r *rig) db(o int, user, password string, timeout time.Duration) *sql.DB {
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr, cfg.DBName = user, password, "tcp", fmt.Sprintf("127.0.0.1:%d", r.servers[o].port), ""
	cfg.Timeout, cfg.ReadTimeout, cfg.WriteTimeout = timeout, timeout, timeout
	c, err := mysql.NewConnector(cfg)
	if err != nil {
		r.t.Fatal(err)
	}
	db := sql.OpenDB(c)
	r.t.Cleanup(func() { db.Close() })
	return db
}

func (r *rig) waitUp(o int) {
	db := r.db(o, engine.AdminUser, adminPassword, time.Second)
	deadline := time.Now().Add(60 * time.Second)
	for {
		if err := db.Ping(); err == nil {
			return
		} else if time.Now().After(deadline) {
			out, _ := os.ReadFile(filepath.Join(r.servers[o].dir, "error.log"))
			r.t.Fatalf("instance %d did not start: %v\n%s", o, err, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Source.
func (r *rig) Snapshot(context.Context) (Snapshot, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	snap := Snapshot{Cluster: "it", Spec: r.spec, Recorded: r.rec, Engine: Traits(kurav1alpha1.EngineMariaDB)}
	if r.spec.Switchover != nil {
		sw := *r.spec.Switchover
		snap.Spec.Switchover = &sw
	}
	for _, s := range r.servers {
		snap.Targets = append(snap.Targets, Target{Ordinal: s.ord, Name: fmt.Sprintf("it-%d", s.ord), Host: "127.0.0.1", Port: s.port,
			Pod: PodFacts{Exists: true, Phase: "Running", Ready: true, RoleLabel: r.labels[s.ord]}})
	}
	snap.Connect = r.connect
	return snap, nil
}

func (r *rig) connect(t Target) (SQL, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e, ok := r.sqls[t.Ordinal]; ok {
		return e, nil
	}
	inst, err := engine.Open(kurav1alpha1.EngineMariaDB, engine.Endpoint{Host: t.Host, Port: t.Port, User: engine.AdminUser, Password: adminPassword},
		engine.Options{ConnectTimeout: 500 * time.Millisecond, ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second})
	if err != nil {
		return nil, err
	}
	e := &EngineSQL{Instance: inst, ReplicationUser: engine.ReplicationUser, ReplicationPassword: replPassword,
		KeepUsers: []string{engine.AdminUser, engine.AgentUser}}
	r.sqls[t.Ordinal] = e
	return e, nil
}

// Sink.
func (r *rig) RecordTopologyChange(_ context.Context, c TopologyChange) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c.Term > r.rec.Term || r.rec.Primary == NoPrimary {
		r.rec.Primary, r.rec.Term = c.To, c.Term
	}
	return nil
}
func (r *rig) RecordSwitchover(_ context.Context, s RecordSwitchover) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rec.SwitchoverHandled = s.ID
	return nil
}
func (r *rig) SetRoleLabel(_ context.Context, t Target, role string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.labels[t.Ordinal] = role
	return nil
}
func (r *rig) RestartInstance(_ context.Context, t Target, _ string) error {
	go r.restart(t.Ordinal)
	return nil
}
func (r *rig) RecloneInstance(context.Context, Target, Target, string) error {
	return fmt.Errorf("failed to reclone: not supported on the engine tier")
}
func (r *rig) Event(_ context.Context, e EmitEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}
func (r *rig) Publish(_ context.Context, rep Report) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.last = rep
	// Status memory: errant sets are what the operator keeps in status.instances.
	r.rec.Errant = nil
	for _, st := range rep.Plan.Instances {
		if !st.Errant.IsEmpty() {
			if r.rec.Errant == nil {
				r.rec.Errant = map[int]gtid.Set{}
			}
			r.rec.Errant[st.Ordinal] = st.Errant
		}
	}
	return nil
}

func (r *rig) recorded() Recorded {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.rec
}

func (r *rig) report() Report {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last
}

// run starts the loop in the background until the test ends.
func (r *rig) run() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = r.loop.Run(ctx); close(done) }()
	r.t.Cleanup(func() { cancel(); <-done })
}

// until polls cond until it holds or the deadline passes.
func (r *rig) until(what string, d time.Duration, cond func() bool) {
	r.t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			rep := r.report()
			r.t.Fatalf("not %s within %s: state %s/%s: %s", what, d, rep.Plan.State, rep.Plan.Reason, rep.Plan.Message)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (r *rig) healthy() bool {
	rep := r.report()
	return rep.Plan.State == StateHealthy && len(rep.Plan.Steps) == 0
}

// setupApp creates an application account (no SUPER, no READ ONLY ADMIN: read_only stops it)
// and a table, on the primary.
func (r *rig) setupApp() {
	p := r.recorded().Primary
	db := r.db(p, engine.AdminUser, adminPassword, 5*time.Second)
	for _, q := range []string{
		"CREATE DATABASE IF NOT EXISTS app",
		"CREATE TABLE IF NOT EXISTS app.t (id BIGINT PRIMARY KEY, at TIMESTAMP(6) DEFAULT CURRENT_TIMESTAMP(6))",
		fmt.Sprintf("CREATE USER IF NOT EXISTS '%s'@'%%' IDENTIFIED BY '%s'", appUser, appPassword),
		fmt.Sprintf("GRANT SELECT, INSERT ON app.* TO '%s'@'%%'", appUser),
	} {
		if _, err := db.Exec(q); err != nil {
			r.t.Fatalf("%s: %v", q, err)
		}
	}
}
