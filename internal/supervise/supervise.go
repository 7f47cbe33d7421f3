// Package supervise runs mysqld inside an instance Pod (`kura mysqld -- mariadbd ...`) and
// turns the Pod's SIGTERM into a planned switchover: while the instance is the writable primary
// and has replicas, the signal is held back until the operator has made it read-only (it
// switches over when it sees the Pod terminating), or until a deadline. Then mysqld gets the
// signal and shuts down cleanly. A replica, or a primary without replicas, stops at once.
package supervise

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"
)

// Probe reports whether the local instance may stop now: it is read-only, or it is a primary
// with no replica to hand over to. An error counts as "may stop" (an instance that cannot be
// asked cannot be switched over either).
type Probe func(ctx context.Context) (mayStop bool, why string, err error)

// Options tune Run.
type Options struct {
	// HoldFor is the longest the SIGTERM is held back (the Pod's grace period minus the time
	// mysqld needs to shut down).
	HoldFor time.Duration
	// Every is the probe interval.
	Every time.Duration
	// Log receives one line per decision.
	Log func(format string, args ...any)
	// Started, when set, is called once the server runs and signals are being handled.
	Started func()
}

// Run starts argv, forwards signals to it, holds SIGTERM back as described above and returns
// mysqld's exit code.
func Run(ctx context.Context, argv []string, probe Probe, o Options) (int, error) {
	if len(argv) == 0 {
		return 2, fmt.Errorf("no server command given")
	}
	if o.Every <= 0 {
		o.Every = 200 * time.Millisecond
	}
	if o.Log == nil {
		o.Log = func(string, ...any) {}
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT)
	defer signal.Stop(sigs)
	if err := cmd.Start(); err != nil {
		return 1, fmt.Errorf("failed to start %s: %w", argv[0], err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	if o.Started != nil {
		o.Started()
	}
	for {
		select {
		case err := <-exited:
			return exitCode(cmd, err), nil
		case s := <-sigs:
			if s == syscall.SIGTERM || s == syscall.SIGINT {
				holdUntilMayStop(ctx, probe, o, exited)
			}
			_ = cmd.Process.Signal(s)
		}
	}
}

// holdUntilMayStop waits until the probe allows stopping, the deadline passes or mysqld exits
// on its own (then the exit is handed back through exited).
func holdUntilMayStop(ctx context.Context, probe Probe, o Options, exited chan error) {
	deadline := time.Now().Add(o.HoldFor)
	for {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		may, why, err := probe(pctx)
		cancel()
		switch {
		case err != nil:
			o.Log("stopping mysqld: cannot ask it whether it is the primary (%v)", err)
			return
		case may:
			o.Log("stopping mysqld: %s", why)
			return
		case time.Now().After(deadline):
			o.Log("stopping mysqld: still the writable primary after %s (%s); no switchover happened", o.HoldFor, why)
			return
		}
		select {
		case err := <-exited:
			exited <- err
			return
		case <-time.After(o.Every):
		}
	}
}

func exitCode(cmd *exec.Cmd, err error) int {
	if err == nil {
		return 0
	}
	if cmd.ProcessState != nil {
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return cmd.ProcessState.ExitCode()
	}
	return 1
}
