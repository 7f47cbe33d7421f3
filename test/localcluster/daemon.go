package localcluster

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// startDaemon starts a long-running process in its own session, with its output appended to
// logs/<name>.log and its pid written to run/<name>.pid. It survives the caller's exit.
func (c *Config) startDaemon(name string, argv []string, env []string) error {
	for _, d := range []string{c.LogDir(), c.Path("run")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("failed to create %s: %w", d, err)
		}
	}
	logf, err := os.OpenFile(filepath.Join(c.LogDir(), name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("failed to open log of %s: %w", name, err)
	}
	defer logf.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("failed to start %s: %w", name, err)
	}
	pid := cmd.Process.Pid
	// Reap it if it exits while this process lives (tests); otherwise init adopts it.
	go func() { _ = cmd.Wait() }()
	if err := os.WriteFile(c.PidFile(name), []byte(strconv.Itoa(pid)+"\n"), 0o644); err != nil {
		return fmt.Errorf("failed to write pidfile of %s: %w", name, err)
	}
	return nil
}

// daemonPid returns the pid of a daemon from its pidfile if that process still runs the same
// program, else 0.
func (c *Config) daemonPid(name string) int {
	data, err := os.ReadFile(c.PidFile(name))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return 0
	}
	if !processAlive(pid) {
		return 0
	}
	return pid
}

func processAlive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// A zombie has exited already.
	if i := bytes.LastIndexByte(stat, ')'); i > 0 && i+2 < len(stat) && stat[i+2] == 'Z' {
		return false
	}
	return true
}

// stopDaemon sends SIGTERM, waits up to grace, then SIGKILLs the daemon's process group.
func (c *Config) stopDaemon(name string, grace time.Duration) error {
	pid := c.daemonPid(name)
	if pid == 0 {
		_ = os.Remove(c.PidFile(name))
		return nil
	}
	if err := killGroup(pid, grace); err != nil {
		return fmt.Errorf("failed to stop %s: %w", name, err)
	}
	_ = os.Remove(c.PidFile(name))
	return nil
}

// killGroup terminates the process group led by pid: SIGTERM, then SIGKILL after grace.
func killGroup(pid int, grace time.Duration) error {
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	_ = syscall.Kill(pid, syscall.SIGTERM)
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		if !processAlive(pid) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	if processAlive(pid) {
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			return err
		}
	}
	deadline = time.Now().Add(5 * time.Second)
	for processAlive(pid) {
		if time.Now().After(deadline) {
			return fmt.Errorf("process %d did not exit after SIGKILL", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}
