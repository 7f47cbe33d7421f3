package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
)

// PrivateServerOptions describe a server started only for the process that starts it: no
// network listener, a socket in a private directory, replication not started. `kura init`
// uses one to set the GTID state of a cloned data directory before the real server serves
// anyone.
type PrivateServerOptions struct {
	Engine kurav1alpha1.Engine
	// DefaultsFile is the server's own option file; the private options override it.
	DefaultsFile string
	DataDir      string
	// Dir holds the socket, pid file, error log and temporary files; it must be private and
	// short enough for a socket path (about 100 bytes).
	Dir string
	// User and Password are the account used to talk to the server (the admin account).
	User, Password string
	// Program is the server binary; empty means FindProgram (mariadbd or mysqld).
	Program string
	// OSUser is --user; empty means "root" when running as root, nothing otherwise.
	OSUser string
	// ReadyTimeout bounds the start (default 5 minutes: crash recovery of a large copy).
	ReadyTimeout time.Duration
	// ExtraArgs are appended to the command line.
	ExtraArgs []string
}

// PrivateServer is a running private server.
type PrivateServer struct {
	opts PrivateServerOptions
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// Socket is where the private server listens.
func (o PrivateServerOptions) Socket() string { return filepath.Join(o.Dir, "mysqld.sock") }

// ErrorLog is the private server's error log.
func (o PrivateServerOptions) ErrorLog() string { return filepath.Join(o.Dir, "error.log") }

// Endpoint is the account's endpoint over the private socket.
func (o PrivateServerOptions) Endpoint() Endpoint {
	return Endpoint{Socket: o.Socket(), User: o.User, Password: o.Password}
}

// Socket is where the server listens.
func (p *PrivateServer) Socket() string { return p.opts.Socket() }

// StartPrivateServer starts the server and waits until it accepts the account.
func StartPrivateServer(ctx context.Context, opts PrivateServerOptions) (*PrivateServer, error) {
	if opts.DefaultsFile == "" || opts.DataDir == "" || opts.Dir == "" {
		return nil, errors.New("failed to start private server: defaults file, data directory and directory are required")
	}
	// No TLS: the private server listens on its socket only, and the certificate files the
	// option file names exist only where the Pod mounts them (MariaDB refuses to start when
	// they are missing).
	name, skipStart, noTLS := "mariadbd", "--skip-slave-start", "--skip-ssl"
	if opts.Engine == kurav1alpha1.EngineMySQL {
		name, skipStart, noTLS = "mysqld", "--skip-replica-start", "--tls-version="
	}
	prog, err := programOr(opts.Program, name)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(opts.Dir, "tmp"), 0o700); err != nil {
		return nil, fmt.Errorf("failed to create %s: %w", opts.Dir, err)
	}
	args := []string{"--defaults-file=" + opts.DefaultsFile, "--datadir=" + opts.DataDir,
		"--skip-networking", "--socket=" + opts.Socket(), "--pid-file=" + filepath.Join(opts.Dir, "mysqld.pid"),
		"--log-error=" + opts.ErrorLog(), "--tmpdir=" + filepath.Join(opts.Dir, "tmp"), skipStart, noTLS}
	user := opts.OSUser
	if user == "" && os.Geteuid() == 0 {
		user = "root"
	}
	if user != "" {
		args = append(args, "--user="+user)
	}
	args = append(args, opts.ExtraArgs...)
	cmd := exec.Command(prog, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("failed to start private server: %w", err)
	}
	p := &PrivateServer{opts: opts, cmd: cmd, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	if err := p.waitReady(ctx); err != nil {
		p.kill()
		return nil, err
	}
	return p, nil
}

func (p *PrivateServer) waitReady(ctx context.Context) error {
	timeout := p.opts.ReadyTimeout
	if timeout <= 0 {
		timeout = 5 * time.Minute
	}
	deadline := time.Now().Add(timeout)
	inst, err := Open(p.opts.Engine, p.opts.Endpoint(), Options{ConnectTimeout: time.Second, ReadTimeout: 5 * time.Second})
	if err != nil {
		return err
	}
	defer func() { _ = inst.Close() }()
	for {
		err := inst.Ping(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("failed to start private server: it exited (%v): %s", p.err, p.LogTail())
		case <-ctx.Done():
			return fmt.Errorf("failed to start private server: %w", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("failed to start private server: not ready within %s (%v): %s", timeout, err, p.LogTail())
		}
	}
}

// Open returns an Instance over the private socket; the caller closes it.
func (p *PrivateServer) Open() (Instance, error) {
	return Open(p.opts.Engine, p.opts.Endpoint(), Options{})
}

// LogTail returns the end of the error log.
func (p *PrivateServer) LogTail() string {
	b, _ := os.ReadFile(p.opts.ErrorLog())
	return tail(string(b), 3000)
}

// Wait waits until the server exits by itself (MySQL stops after CLONE INSTANCE when no
// supervisor restarts it).
func (p *PrivateServer) Wait(ctx context.Context) error {
	select {
	case <-p.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("failed to wait for the private server to exit: %w", ctx.Err())
	}
}

// Shutdown stops the server cleanly (SIGTERM: a normal shutdown that flushes InnoDB) and
// waits for it to exit.
func (p *PrivateServer) Shutdown(ctx context.Context) error {
	select {
	case <-p.done:
		return nil
	default:
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("failed to stop private server: %w", err)
	}
	select {
	case <-p.done:
		if p.err != nil {
			var exit *exec.ExitError
			if errors.As(p.err, &exit) {
				return fmt.Errorf("failed to stop private server: %w: %s", p.err, p.LogTail())
			}
		}
		return nil
	case <-ctx.Done():
		p.kill()
		return fmt.Errorf("failed to stop private server: %w", ctx.Err())
	}
}

func (p *PrivateServer) kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}
