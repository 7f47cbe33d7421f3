// Package enginetest starts real mariadbd processes on loopback for the engine tier: each
// instance gets a free port, a temporary data directory initialised by engine.InitDataDir and
// the my.cnf that mycnf.Render produces for a cluster, with the include line replaced by the
// instance's own settings. Instances can be killed, paused, stopped and restarted on the same
// data directory and port. Everything is removed when the test ends.
//
// Running as root (as CI does): mariadbd refuses to run as root unless told to, so the
// servers get --user=root; the data directories stay owned by root under the test's
// temporary directory. As any other user, no --user is passed.
package enginetest

import (
	"bytes"
	"context"
	"crypto/tls"
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

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/internal/builder"
	"github.com/kura-db/kura/internal/contract"
	"github.com/kura-db/kura/internal/engine"
	"github.com/kura-db/kura/internal/mycnf"
)

// Passwords of the accounts every instance has.
const (
	OperatorPassword    = "operator-pw"
	ReplicationPassword = "repl-pw"
	AgentPassword       = "agent-pw"
	RootPassword        = "root-pw"
	AdminPassword       = "admin-pw"
	AppPassword         = "app-pw"
	// Database is the application account's database.
	Database = "appdb"
)

// Credentials are the passwords of the accounts every data directory gets.
func Credentials() engine.Credentials {
	return engine.Credentials{Operator: OperatorPassword, Replication: ReplicationPassword, Agent: AgentPassword,
		Root: RootPassword, Admin: AdminPassword, App: AppPassword, Database: Database}
}

// Accounts are the accounts created in every data directory.
func Accounts() []engine.Account { return engine.StandardAccounts(Credentials()) }

// Instances are sized for a shared 2-core test machine: a small redo log (less to write and
// copy) and buffer pool. Nothing else of the rendered configuration is changed.
const redoLogSize = "16M"

var sizing = []string{
	"innodb_log_file_size = " + redoLogSize,
	"innodb_buffer_pool_size = 64M",
}

// Options tune Start.
type Options struct {
	// Cluster is rendered by mycnf.Render; nil means a default MariaDB cluster.
	Cluster *kurav1alpha1.MySQLCluster
	// ExtraConfig lines are appended to every instance's [mysqld] group.
	ExtraConfig []string
	// ReadyTimeout bounds the wait for each instance to accept connections (default 60s).
	ReadyTimeout time.Duration
}

// Cluster is a set of running instances.
type Cluster struct {
	Instances []*Instance
	// TLS holds the certificate files every instance serves, issued as the operator issues
	// them (builder.CASecret, builder.ServerTLSSecret) for the rendered cluster; nil when its
	// spec.tls.enabled is false.
	TLS *TLSFiles
}

// TLSFiles are a cluster's CA and server certificate on disk.
type TLSFiles struct {
	Dir                       string
	CertFile, KeyFile, CAFile string
	// CAPEM is the CA certificate clients verify the servers with.
	CAPEM []byte

	cluster *kurav1alpha1.MySQLCluster
	ca      *corev1.Secret
}

// Renew issues a new server certificate from the same CA as of now and writes it over the
// files, as a renewal reaches a Pod's mounted Secret.
func (f *TLSFiles) Renew(now time.Time) error {
	srv, err := builder.ServerTLSSecret(f.cluster, f.ca, now)
	if err != nil {
		return err
	}
	return f.write(srv)
}

func (f *TLSFiles) write(srv *corev1.Secret) error {
	for path, key := range map[string]string{f.CertFile: contract.TLSCertKey, f.KeyFile: contract.TLSKeyKey, f.CAFile: contract.TLSCAKey} {
		tmp := path + ".new"
		if err := os.WriteFile(tmp, srv.Data[key], 0o400); err != nil {
			return fmt.Errorf("failed to write %s: %w", path, err)
		}
		if err := os.Rename(tmp, path); err != nil {
			return fmt.Errorf("failed to replace %s: %w", path, err)
		}
	}
	return nil
}

// ClientConfig is a client TLS configuration that trusts the cluster's CA. The instances are
// reached at 127.0.0.1, which the certificate names.
func (f *TLSFiles) ClientConfig() *tls.Config {
	cfg, err := engine.ClientTLS(f.CAPEM, "")
	if err != nil {
		panic(err) // the CA was issued by the test itself
	}
	return cfg
}

// Instance is one mariadbd process.
type Instance struct {
	Index    int
	Host     string
	Port     int
	ServerID uint32
	// Dir holds my.cnf, the data directory (Dir/data), the socket and the error log.
	Dir     string
	DataDir string

	t       testing.TB
	tls     *TLSFiles
	server  string
	args    []string
	timeout time.Duration

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when the current process has exited
}

// Binaries returns the paths of mariadbd and mariadb-install-db, or an error saying how to
// install them.
func Binaries() (server, installer string, err error) {
	if server, err = engine.FindProgram("mariadbd"); err != nil {
		return "", "", err
	}
	if installer, err = engine.FindProgram("mariadb-install-db"); err != nil {
		return "", "", err
	}
	return server, installer, nil
}

// Start starts n instances and waits until each accepts connections. The engine tier is not
// run under -short (the unit tier); a missing server binary fails the test.
func Start(t testing.TB, n int, opts Options) *Cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("engine tier: needs real mariadbd processes; not run with -short")
	}
	server, installer, err := Binaries()
	if err != nil {
		t.Fatal(err)
	}
	if opts.ReadyTimeout <= 0 {
		opts.ReadyTimeout = 60 * time.Second
	}
	cnf, err := renderConfig(opts.Cluster)
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	c := &Cluster{}
	if builder.TLSEnabled(clusterOrDefault(opts.Cluster)) {
		if c.TLS, err = WriteTLSFiles(clusterOrDefault(opts.Cluster), filepath.Join(root, "tls")); err != nil {
			t.Fatal(err)
		}
		// The rendered my.cnf names the files' paths inside a Pod; the same settings point
		// at the test's copies.
		opts.ExtraConfig = append([]string{"ssl_cert = " + c.TLS.CertFile, "ssl_key = " + c.TLS.KeyFile, "ssl_ca = " + c.TLS.CAFile},
			opts.ExtraConfig...)
	}
	// One data directory is initialised; the others are copies of it, made before any server
	// has started, so every instance starts from the same empty state with no GTIDs.
	template := filepath.Join(root, "template")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	initOpts := engine.InitOptions{Installer: installer, Server: server, ServerArgs: []string{"--innodb-log-file-size=" + redoLogSize}}
	if _, err := engine.InitDataDir(ctx, kurav1alpha1.EngineMariaDB, template, Accounts(), initOpts); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		inst, err := prepare(t, root, i, template, cnf, opts, server)
		if err != nil {
			t.Fatal(err)
		}
		inst.tls = c.TLS
		c.Instances = append(c.Instances, inst)
	}
	for _, inst := range c.Instances {
		if err := inst.launch(); err != nil {
			t.Fatal(err)
		}
	}
	for _, inst := range c.Instances {
		if err := inst.WaitReady(); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

func clusterOrDefault(c *kurav1alpha1.MySQLCluster) *kurav1alpha1.MySQLCluster {
	if c == nil {
		c = &kurav1alpha1.MySQLCluster{
			ObjectMeta: metav1.ObjectMeta{Name: "enginetest", Namespace: "test"},
			Spec:       kurav1alpha1.MySQLClusterSpec{Engine: kurav1alpha1.EngineMariaDB},
		}
	}
	return c
}

// WriteTLSFiles issues a CA and a server certificate for c and writes them to dir, readable
// by the owner only as in a Pod.
func WriteTLSFiles(c *kurav1alpha1.MySQLCluster, dir string) (*TLSFiles, error) {
	ca, err := builder.CASecret(c, time.Now())
	if err != nil {
		return nil, err
	}
	srv, err := builder.ServerTLSSecret(c, ca, time.Now())
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("failed to create %s: %w", dir, err)
	}
	f := &TLSFiles{Dir: dir, CertFile: filepath.Join(dir, contract.TLSCertKey), KeyFile: filepath.Join(dir, contract.TLSKeyKey),
		CAFile: filepath.Join(dir, contract.TLSCAKey), CAPEM: srv.Data[contract.TLSCAKey], cluster: c, ca: ca}
	return f, f.write(srv)
}

func renderConfig(c *kurav1alpha1.MySQLCluster) (string, error) {
	c = clusterOrDefault(c)
	text, err := mycnf.Render(c)
	if err != nil {
		return "", fmt.Errorf("failed to render my.cnf: %w", err)
	}
	if !strings.Contains(text, mycnf.IncludeLine()) {
		return "", fmt.Errorf("failed to render my.cnf: no %q line to replace", mycnf.IncludeLine())
	}
	return text, nil
}

func prepare(t testing.TB, root string, i int, template, cnf string, opts Options, server string) (*Instance, error) {
	dir := filepath.Join(root, fmt.Sprintf("i%d", i))
	inst := &Instance{Index: i, Host: "127.0.0.1", ServerID: uint32(mycnf.ServerIDBase + i), Dir: dir,
		DataDir: filepath.Join(dir, "data"), t: t, server: server, timeout: opts.ReadyTimeout}
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o750); err != nil {
		return nil, fmt.Errorf("failed to create %s: %w", dir, err)
	}
	if out, err := exec.Command("cp", "-a", template, inst.DataDir).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("failed to copy the data directory: %w: %s", err, out)
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	inst.Port = port
	lines := []string{
		"# per-instance settings (enginetest)",
		"datadir = " + inst.DataDir,
		"socket = " + filepath.Join(dir, "mysqld.sock"),
		"pid_file = " + filepath.Join(dir, "mysqld.pid"),
		"log_error = " + filepath.Join(dir, "error.log"),
		"tmpdir = " + filepath.Join(dir, "tmp"),
		fmt.Sprintf("port = %d", port),
		"bind_address = 127.0.0.1",
		fmt.Sprintf("server_id = %d", inst.ServerID),
		"report_host = 127.0.0.1",
		fmt.Sprintf("report_port = %d", port),
	}
	lines = append(lines, sizing...)
	lines = append(lines, opts.ExtraConfig...)
	text := strings.Replace(cnf, mycnf.IncludeLine(), strings.Join(lines, "\n"), 1)
	path := filepath.Join(dir, "my.cnf")
	if err := os.WriteFile(path, []byte(text), 0o640); err != nil {
		return nil, fmt.Errorf("failed to write %s: %w", path, err)
	}
	inst.args = []string{"--defaults-file=" + path}
	if os.Geteuid() == 0 {
		inst.args = append(inst.args, "--user=root")
	}
	t.Cleanup(inst.destroy)
	return inst, nil
}

// freePort asks the kernel for an unused loopback port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("failed to find a free port: %w", err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (i *Instance) launch() error {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.cmd != nil && !i.exited() {
		return fmt.Errorf("instance %d is already running", i.Index)
	}
	out, err := os.OpenFile(filepath.Join(i.Dir, "stdout.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("failed to open the output log: %w", err)
	}
	cmd := exec.Command(i.server, i.args...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = out.Close()
		return fmt.Errorf("failed to start mariadbd for instance %d: %w", i.Index, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		_ = out.Close()
		close(done)
	}()
	i.cmd, i.done = cmd, done
	return nil
}

func (i *Instance) exited() bool {
	select {
	case <-i.done:
		return true
	default:
		return false
	}
}

// WaitReady polls until the instance accepts the admin account, failing early if the
// process exits.
func (i *Instance) WaitReady() error {
	conn, err := engine.Connector(i.Endpoint(engine.OperatorUser, OperatorPassword), engine.Options{ConnectTimeout: time.Second, ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second})
	if err != nil {
		return fmt.Errorf("failed to open a connection pool: %w", err)
	}
	db := sql.OpenDB(conn)
	defer func() { _ = db.Close() }()
	deadline := time.Now().Add(i.timeout)
	i.mu.Lock()
	done := i.done
	i.mu.Unlock()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err = db.PingContext(ctx)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("mariadbd of instance %d exited during startup: %s", i.Index, i.ErrorLog())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("instance %d did not accept connections within %s (last error: %v): %s", i.Index, i.timeout, err, i.ErrorLog())
		}
	}
}

// ErrorLog returns the tail of the instance's error log.
func (i *Instance) ErrorLog() string {
	b, _ := os.ReadFile(filepath.Join(i.Dir, "error.log"))
	s := string(b)
	if len(s) > 3000 {
		s = s[len(s)-3000:]
	}
	return s
}

// Endpoint returns the instance's address with the given credentials, with TLS verified
// against the cluster's CA when the instances serve TLS.
func (i *Instance) Endpoint(user, password string) engine.Endpoint {
	ep := engine.Endpoint{Host: i.Host, Port: i.Port, User: user, Password: password}
	if i.tls != nil {
		ep.TLS = i.tls.ClientConfig()
	}
	return ep
}

// Pid is the process id of the running server, 0 when it is not running.
func (i *Instance) Pid() int {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.cmd == nil || i.cmd.Process == nil {
		return 0
	}
	return i.cmd.Process.Pid
}

// Operator returns the endpoint of the operator's account.
func (i *Instance) Operator() engine.Endpoint {
	return i.Endpoint(engine.OperatorUser, OperatorPassword)
}

// ReplicationSource returns the Source replicas use to replicate from this instance.
func (i *Instance) ReplicationSource() engine.Source {
	return engine.Source{Host: i.Host, Port: i.Port, User: engine.ReplicationUser, Password: ReplicationPassword}
}

// Open returns an engine.Instance for the operator's account, closed when the test ends.
func (i *Instance) Open(opts engine.Options) engine.Instance {
	inst, err := engine.Open(kurav1alpha1.EngineMariaDB, i.Operator(), opts)
	if err != nil {
		i.t.Fatal(err)
	}
	i.t.Cleanup(func() { _ = inst.Close() })
	return inst
}

// DB returns a plain connection pool for the admin account, closed when the test ends.
func (i *Instance) DB() *sql.DB {
	conn, err := engine.Connector(i.Operator(), engine.Options{})
	if err != nil {
		i.t.Fatal(err)
	}
	db := sql.OpenDB(conn)
	if err != nil {
		i.t.Fatal(err)
	}
	i.t.Cleanup(func() { _ = db.Close() })
	return db
}

func (i *Instance) signal(sig syscall.Signal) error {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.cmd == nil || i.exited() {
		return fmt.Errorf("instance %d is not running", i.Index)
	}
	if err := syscall.Kill(i.cmd.Process.Pid, sig); err != nil {
		return fmt.Errorf("failed to send %v to instance %d: %w", sig, i.Index, err)
	}
	return nil
}

func (i *Instance) waitExit(timeout time.Duration) error {
	i.mu.Lock()
	done := i.done
	i.mu.Unlock()
	select {
	case <-done:
		return nil
	case <-time.After(timeout):
		return fmt.Errorf("instance %d did not exit within %s", i.Index, timeout)
	}
}

// Kill sends SIGKILL and waits for the process to exit: a crash.
func (i *Instance) Kill() {
	i.t.Helper()
	_ = i.signal(syscall.SIGCONT)
	if err := i.signal(syscall.SIGKILL); err != nil {
		i.t.Fatal(err)
	}
	if err := i.waitExit(30 * time.Second); err != nil {
		i.t.Fatal(err)
	}
}

// Pause sends SIGSTOP and waits until every thread of the server has stopped (the signal is
// delivered asynchronously; on a loaded machine a thread could still answer a query a moment
// later): the server keeps its port open but answers nothing.
func (i *Instance) Pause() {
	i.t.Helper()
	if err := i.signal(syscall.SIGSTOP); err != nil {
		i.t.Fatal(err)
	}
	i.mu.Lock()
	pid := i.cmd.Process.Pid
	i.mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for !allStopped(pid) {
		if time.Now().After(deadline) {
			i.t.Fatalf("instance %d did not stop within 10s of SIGSTOP", i.Index)
		}
		time.Sleep(time.Millisecond)
	}
}

// allStopped reports whether every thread of pid is stopped (state T), or the process is gone.
func allStopped(pid int) bool {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return true
	}
	for _, task := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/stat", pid, task.Name()))
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(b, ')')
		if i >= 0 && i+2 < len(b) && b[i+2] != 'T' && b[i+2] != 't' {
			return false
		}
	}
	return true
}

// Resume sends SIGCONT.
func (i *Instance) Resume() {
	i.t.Helper()
	if err := i.signal(syscall.SIGCONT); err != nil {
		i.t.Fatal(err)
	}
}

// Stop shuts the server down cleanly (SIGTERM) and waits for it to exit.
func (i *Instance) Stop() {
	i.t.Helper()
	_ = i.signal(syscall.SIGCONT)
	if err := i.signal(syscall.SIGTERM); err != nil {
		i.t.Fatal(err)
	}
	if err := i.waitExit(60 * time.Second); err != nil {
		i.t.Fatal(err)
	}
}

// Restart starts a stopped or killed instance again on the same data directory and port and
// waits until it accepts connections.
func (i *Instance) Restart() {
	i.t.Helper()
	if err := i.launch(); err != nil {
		i.t.Fatal(err)
	}
	if err := i.WaitReady(); err != nil {
		i.t.Fatal(err)
	}
}

// Running reports whether the process is alive.
func (i *Instance) Running() bool {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.cmd != nil && !i.exited()
}

// Close kills every instance now instead of when the test ends.
func (c *Cluster) Close() {
	for _, inst := range c.Instances {
		inst.destroy()
	}
}

func (i *Instance) destroy() {
	i.mu.Lock()
	cmd, done := i.cmd, i.done
	i.mu.Unlock()
	if cmd == nil {
		return
	}
	select {
	case <-done:
		return
	default:
	}
	_ = syscall.Kill(cmd.Process.Pid, syscall.SIGCONT)
	_ = syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		i.t.Errorf("instance %d did not exit after SIGKILL", i.Index)
	}
}

// Exec runs statements on db, failing the test at the first error.
func Exec(t testing.TB, db *sql.DB, stmts ...string) {
	t.Helper()
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// Insert runs query (one placeholder, the id) for each id in [from, to) on one connection of
// a MariaDB server and returns the GTID each commit was given (@@last_gtid), in order. each,
// when not nil, runs after every commit with its id and GTID.
func Insert(t testing.TB, db *sql.DB, query string, from, to int, each func(id int, gtid string)) []string {
	t.Helper()
	ctx := context.Background()
	c, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	var out []string
	for k := from; k < to; k++ {
		if _, err := c.ExecContext(ctx, query, k); err != nil {
			t.Fatalf("insert %d: %v", k, err)
		}
		var g string
		if err := c.QueryRowContext(ctx, "SELECT @@last_gtid").Scan(&g); err != nil {
			t.Fatal(err)
		}
		out = append(out, g)
		if each != nil {
			each(k, g)
		}
	}
	return out
}

// Log is an io.Writer into the test's log, a line per write (tools' and agents' output).
type Log struct{ T testing.TB }

func (w Log) Write(p []byte) (int, error) {
	w.T.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
