package supervise

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// runAsChild runs Run in a child process of the test binary so the test can send it SIGTERM.
func TestMain(m *testing.M) {
	if os.Getenv("SUPERVISE_CHILD") != "" {
		child()
		return
	}
	os.Exit(m.Run())
}

// child supervises `sleep 30`; the probe allows stopping once the file named by
// SUPERVISE_READONLY exists (standing in for read_only=ON).
func child() {
	flag := os.Getenv("SUPERVISE_READONLY")
	probe := func(context.Context) (bool, string, error) {
		if os.Getenv("SUPERVISE_PROBE_FAILS") != "" {
			return false, "", errors.New("no answer")
		}
		_, err := os.Stat(flag)
		return err == nil, "read-only", nil
	}
	started := func() { _ = os.WriteFile(flag+".started", nil, 0o644) }
	code, err := Run(context.Background(), []string{"sleep", "30"}, probe, Options{HoldFor: 3 * time.Second, Every: 20 * time.Millisecond, Started: started})
	if err != nil {
		os.Exit(99)
	}
	os.Exit(code)
}

func startChild(t *testing.T, env ...string) (*exec.Cmd, string) {
	t.Helper()
	flag := t.TempDir() + "/readonly"
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), append([]string{"SUPERVISE_CHILD=1", "SUPERVISE_READONLY=" + flag}, env...)...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(flag + ".started"); err == nil {
			return cmd, flag
		}
		if time.Now().After(deadline) {
			t.Fatal("the supervisor did not start")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func waitExit(t *testing.T, cmd *exec.Cmd) (time.Duration, int) {
	t.Helper()
	start := time.Now()
	_ = cmd.Wait()
	return time.Since(start), cmd.ProcessState.ExitCode()
}

func TestSIGTERMHeldUntilReadOnly(t *testing.T) {
	cmd, flag := startChild(t)
	var released atomic.Bool
	go func() {
		time.Sleep(700 * time.Millisecond)
		released.Store(true)
		_ = os.WriteFile(flag, nil, 0o644)
	}()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	took, code := waitExit(t, cmd)
	if !released.Load() {
		t.Fatalf("mysqld stopped after %s, before the instance became read-only", took)
	}
	if code != 128+int(syscall.SIGTERM) {
		t.Errorf("exit code %d, want the server's (killed by SIGTERM)", code)
	}
}

func TestSIGTERMForwardedAfterDeadline(t *testing.T) {
	cmd, _ := startChild(t)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	took, _ := waitExit(t, cmd)
	if took < 2500*time.Millisecond || took > 10*time.Second {
		t.Errorf("a primary never made read-only must stop at the deadline (3s), took %s", took)
	}
}

func TestSIGTERMForwardedAtOnceWhenTheInstanceCannotBeAsked(t *testing.T) {
	cmd, _ := startChild(t, "SUPERVISE_PROBE_FAILS=1")
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if took, _ := waitExit(t, cmd); took > 2*time.Second {
		t.Errorf("took %s", took)
	}
}
