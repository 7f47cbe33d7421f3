package localcluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Only one local cluster runs on a machine (one bridge, fixed addresses and ports). Up takes
// LockFile for as long as it starts one, and a holder (a test process) keeps it until Down, so
// a second test run waits for the first instead of failing on its bridge. A cluster whose
// holder is gone (a test run killed before its teardown) is abandoned: a holder's Up takes it
// down first. A cluster nobody holds that was not started by a holder (make demo, local-up) is
// someone's: Up refuses and names the command that takes it down.

// LockFile is the machine-wide lock of the local cluster.
const LockFile = "/run/kura-local.lock"

// heldMarker marks, in a state dir, a cluster started by a holder.
func (c *Config) heldMarker() string { return c.Path("run", "held") }

// lockMachine takes LockFile, waiting while another process holds it, and returns it open.
func lockMachine(ctx context.Context) (*os.File, error) {
	f, err := os.OpenFile(LockFile, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("failed to open %s: %w", LockFile, err)
	}
	said := false
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			_ = f.Truncate(0)
			_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
			return f, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("failed to lock %s: %w", LockFile, err)
		}
		if !said {
			holder, _ := os.ReadFile(LockFile)
			fmt.Fprintf(os.Stderr, "localcluster: waiting for the local cluster of process %s to be taken down (%s)\n", strings.TrimSpace(string(holder)), LockFile)
			said = true
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("another local cluster still runs on this machine (process %s holds %s): %w", strings.TrimSpace(readHolder()), LockFile, ctx.Err())
		case <-time.After(time.Second):
		}
	}
}

func readHolder() string {
	b, _ := os.ReadFile(LockFile)
	return string(b)
}

// unlockMachine releases the lock Up took, if this Config holds it.
func (c *Config) unlockMachine() {
	if c.lock != nil {
		_ = c.lock.Close()
		c.lock = nil
	}
}

// RunningStateDir returns the state dir of the local cluster whose etcd runs on this machine,
// or "" when none runs.
func RunningStateDir() string {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(cmdline), "\x00")
		ours := false
		dataDir := ""
		for _, a := range args {
			switch {
			case a == "--name=kura-local":
				ours = true
			case strings.HasPrefix(a, "--data-dir="):
				dataDir = strings.TrimPrefix(a, "--data-dir=")
			}
		}
		if ours && dataDir != "" {
			return filepath.Dir(dataDir)
		}
	}
	return ""
}

// clearMachine makes room for this Config's cluster: nothing to do when no other cluster runs;
// an abandoned one (started by a holder that is gone, as the lock this process now holds
// shows) is taken down; any other is refused.
func (c *Config) clearMachine() error {
	other := RunningStateDir()
	if other == c.StateDir {
		return fmt.Errorf("a local cluster already runs from %s (run hack/local-down.sh)", c.StateDir)
	}
	if other == "" && !linkExists(BridgeName) {
		return nil
	}
	prev := &Config{StateDir: other}
	if other != "" {
		if _, err := os.Stat(prev.heldMarker()); err != nil || !c.Hold {
			return fmt.Errorf("a local cluster started from %s runs on this machine: take it down with KURA_LOCAL_STATE_DIR=%s hack/local-down.sh", other, other)
		}
	} else if !c.Hold {
		return fmt.Errorf("bridge %s exists but no local cluster runs: remove what is left with hack/local-down.sh", BridgeName)
	}
	fmt.Fprintf(os.Stderr, "localcluster: taking down the abandoned local cluster of %s\n", orNone(other))
	// Keep the abandoned run's state dir (its logs may explain why it was abandoned); with
	// no state dir known, what is left is the network and the Pods' processes.
	if other == "" {
		prev.StateDir = c.StateDir
		if err := KillNetNSProcesses(ListPodNetNS()); err != nil {
			return err
		}
		return prev.teardownNetwork()
	}
	return prev.down(DownOptions{KeepState: true})
}

func orNone(dir string) string {
	if dir == "" {
		return "(no state dir: only its network is left)"
	}
	return dir
}
