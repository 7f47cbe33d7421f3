package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"

	"github.com/kura-db/kura/test/localcluster/containerinit"
)

// process is one run of a container's main process (a process group leader).
type process struct {
	cmd      *exec.Cmd
	pid      int
	started  time.Time
	done     chan struct{}
	exitCode int32
	signal   int32
	message  string
	finished time.Time
}

// startContainer builds the container's spec, starts it and waits until its command was
// exec'd. On failure it returns a waiting reason (ErrImagePull, CreateContainerConfigError,
// CreateContainerError, RunContainerError) and the error.
func (w *podWorker) startContainer(cs *ctrState) (*process, string, error) {
	pod := w.latest()
	spec, reason, err := w.containerSpec(pod, cs.spec)
	if err != nil {
		return nil, reason, err
	}
	specPath := w.dir("containers", cs.spec.Name+".json")
	scratch := w.dir("containers", cs.spec.Name+".root")
	if err := os.MkdirAll(scratch, 0o700); err != nil {
		return nil, "CreateContainerError", fmt.Errorf("failed to create scratch dir: %w", err)
	}
	spec.Scratch = scratch
	data, err := json.Marshal(spec)
	if err != nil {
		return nil, "CreateContainerError", fmt.Errorf("failed to encode container spec: %w", err)
	}
	if err := os.WriteFile(specPath, data, 0o600); err != nil {
		return nil, "CreateContainerError", fmt.Errorf("failed to write container spec: %w", err)
	}
	logPath := w.a.cfg.PodLogPath(w.namespace, w.name, cs.spec.Name)
	if err := os.MkdirAll(w.a.cfg.Path("logs", "pods"), 0o755); err != nil {
		return nil, "CreateContainerError", fmt.Errorf("failed to create log dir: %w", err)
	}
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, "CreateContainerError", fmt.Errorf("failed to open container log: %w", err)
	}
	defer logf.Close()
	// The init step reports a failure before exec on this pipe; a successful exec closes it.
	errR, errW, err := os.Pipe()
	if err != nil {
		return nil, "CreateContainerError", fmt.Errorf("failed to create pipe: %w", err)
	}
	defer errR.Close()
	cmd := exec.Command(w.a.cfg.Self, "container-init", specPath)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.ExtraFiles = []*os.File{errW}
	cmd.Env = []string{}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid:      true,
		Unshareflags: syscall.CLONE_NEWNS | syscall.CLONE_NEWUTS,
	}
	if err := cmd.Start(); err != nil {
		errW.Close()
		return nil, "RunContainerError", fmt.Errorf("failed to start container: %w", err)
	}
	errW.Close()
	p := &process{cmd: cmd, pid: cmd.Process.Pid, started: time.Now(), done: make(chan struct{})}
	_ = os.WriteFile(w.a.cfg.PodProcessGroupFile(string(w.uid), cs.spec.Name), []byte(strconv.Itoa(p.pid)), 0o644)
	msg, _ := io.ReadAll(errR)
	go p.wait()
	if len(msg) > 0 {
		<-p.done
		return nil, "RunContainerError", errors.New(string(msg))
	}
	return p, "", nil
}

func (p *process) wait() {
	err := p.cmd.Wait()
	p.finished = time.Now()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			p.signal = int32(ws.Signal())
			p.exitCode = 128 + int32(ws.Signal())
		} else {
			p.exitCode = int32(exit.ExitCode())
		}
	} else if err != nil {
		p.exitCode = 128
		p.message = err.Error()
	}
	// Like a container runtime, stop whatever the main process left running.
	_ = syscall.Kill(-p.pid, syscall.SIGKILL)
	close(p.done)
}

// terminate sends SIGTERM to the container's main process, as a container runtime does (the
// process decides how to stop its children), then SIGKILL to the whole process group after
// grace, and waits for exit. When the main process exits, wait kills what it left running.
func (p *process) terminate(grace time.Duration) {
	_ = syscall.Kill(p.pid, syscall.SIGTERM)
	if grace < 0 {
		grace = 0
	}
	select {
	case <-p.done:
		return
	case <-time.After(grace):
	}
	_ = syscall.Kill(-p.pid, syscall.SIGKILL)
	<-p.done
}

// RunContainerInit is the container-init subcommand: it runs in the new namespaces, sets up
// the container and execs its command, reporting failures on fd 3.
func RunContainerInit(specPath string) {
	report := os.NewFile(3, "init-status")
	syscall.CloseOnExec(3)
	fail := func(err error) {
		msg := err.Error()
		if report != nil {
			_, _ = report.WriteString(msg)
		}
		fmt.Fprintf(os.Stderr, "kura-local: %s\n", msg)
		os.Exit(128)
	}
	spec, err := containerinit.Load(specPath)
	if err != nil {
		fail(err)
	}
	fail(containerinit.Run(spec))
}
