package agent

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"

	"github.com/kura-db/kura/test/localcluster/containerinit"
)

// process is one run of a container: its monitor (a process group leader, see containerinit)
// and the command the monitor runs. The agent either started it (cmd is set and the agent is
// its parent) or adopted it after a restart (cmd is nil; its end is watched through a pidfd).
type process struct {
	cmd       *exec.Cmd
	pid       int
	startTick uint64 // the monitor's start time in clock ticks since boot: its identity
	exitFile  string
	started   time.Time
	done      chan struct{}
	exitCode  int32
	signal    int32
	message   string
	finished  time.Time
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
	spec.ExitFile = w.dir("containers", cs.spec.Name+".exit")
	_ = os.Remove(spec.ExitFile)
	if target := cs.spec.TerminationMessagePath; target != "" {
		// Like the kubelet: an empty file the command may write, bind-mounted at
		// terminationMessagePath and read when the container ends. Containers share the
		// host's /dev, so the default path's mount point is one empty file created there
		// once; the mount itself stays in the container's mount namespace.
		term := w.terminationFile(cs)
		if err := os.WriteFile(term, nil, 0o666); err != nil {
			return nil, "CreateContainerError", fmt.Errorf("failed to create the termination message file: %w", err)
		}
		_ = os.Chmod(term, 0o666)
		spec.Mounts = append(spec.Mounts, containerinit.Mount{Source: term, Target: target})
	}
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
	p := &process{cmd: cmd, pid: cmd.Process.Pid, started: time.Now(), done: make(chan struct{}), exitFile: spec.ExitFile}
	p.startTick, _ = processStartTick(p.pid)
	_ = os.WriteFile(w.a.cfg.PodProcessGroupFile(string(w.uid), cs.spec.Name), []byte(strconv.Itoa(p.pid)), 0o644)
	msg, _ := io.ReadAll(errR)
	go p.wait()
	if len(msg) > 0 {
		<-p.done
		return nil, "RunContainerError", errors.New(string(msg))
	}
	return p, "", nil
}

// terminationFile is the host file behind a container's terminationMessagePath.
func (w *podWorker) terminationFile(cs *ctrState) string {
	return w.dir("containers", cs.spec.Name+".termination-log")
}

// maxTerminationMessage is the kubelet's limit for one container's message.
const maxTerminationMessage = 4096

// terminationMessage is what the command wrote to its terminationMessagePath, or with
// FallbackToLogsOnError and a failed command and nothing written, the tail of its log.
func (w *podWorker) terminationMessage(cs *ctrState, p *process) string {
	read := func(path string, tail bool) string {
		f, err := os.Open(path)
		if err != nil {
			return ""
		}
		defer f.Close()
		if fi, err := f.Stat(); err == nil && tail && fi.Size() > maxTerminationMessage {
			_, _ = f.Seek(fi.Size()-maxTerminationMessage, io.SeekStart)
		}
		b, _ := io.ReadAll(io.LimitReader(f, maxTerminationMessage))
		return string(b)
	}
	if cs.spec.TerminationMessagePath == "" {
		return ""
	}
	msg := read(w.terminationFile(cs), false)
	if msg == "" && p.exitCode != 0 && cs.spec.TerminationMessagePolicy == corev1.TerminationMessageFallbackToLogsOnError {
		msg = read(w.a.cfg.PodLogPath(w.namespace, w.name, cs.spec.Name), true)
	}
	return msg
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
	p.ended()
}

// ended completes a run once the monitor is gone: the monitor's record of the command's end
// is more precise than the monitor's own exit (it tells a signal from an exit code).
func (p *process) ended() {
	p.useRecordedStatus()
	// Like a container runtime, stop whatever the command left running. The group still
	// exists while any member does, so its id cannot have been reused.
	_ = syscall.Kill(-p.pid, syscall.SIGKILL)
	close(p.done)
}

// endedEarlier completes a run that was over before the agent could watch it: its pid may
// belong to another process by now, so nothing is signalled.
func (p *process) endedEarlier() {
	p.useRecordedStatus()
	close(p.done)
}

// useRecordedStatus takes the command's end from the monitor's record, when there is one.
func (p *process) useRecordedStatus() {
	if st, ok := containerinit.ReadExitStatus(p.exitFile); ok {
		p.exitCode, p.signal, p.finished = st.ExitCode, st.Signal, st.FinishedAt
		p.message = ""
	}
}

// assumeKilled is the end of a run whose monitor left no record: it is taken as a SIGKILL
// (the way a monitor ends without writing one), unless useRecordedStatus finds a record.
func (p *process) assumeKilled(message string) {
	p.finished = time.Now()
	p.exitCode, p.signal = 128+int32(syscall.SIGKILL), int32(syscall.SIGKILL)
	p.message = message
}

// adoptProcess takes over a run an earlier agent started: if its monitor still runs (the same
// process: pid and start time match), the returned process ends when the monitor does;
// otherwise it has ended already, with the status the monitor recorded (or, if the monitor was
// killed before it could, as a SIGKILL).
func adoptProcess(pid int, startTick uint64, started time.Time, exitFile string) *process {
	p := &process{pid: pid, startTick: startTick, exitFile: exitFile, started: started, done: make(chan struct{})}
	if tick, err := processStartTick(pid); err == nil && tick == startTick {
		if fd, err := unix.PidfdOpen(pid, 0); err == nil {
			go func() {
				defer func() { _ = unix.Close(fd) }()
				fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
				for {
					if _, err := unix.Poll(fds, -1); err == nil || !errors.Is(err, unix.EINTR) {
						break
					}
				}
				// Signal nothing before the monitor is certainly gone (a poll error is not an end).
				for {
					if tick, err := processStartTick(pid); err != nil || tick != startTick {
						break
					}
					time.Sleep(100 * time.Millisecond)
				}
				p.assumeKilled("the container's monitor ended without recording the exit status")
				p.ended()
			}()
			return p
		}
	}
	p.assumeKilled("the container ended while the node agent was down, without a recorded exit status")
	p.endedEarlier()
	return p
}

// processStartTick reads a process's start time (clock ticks since boot) from /proc; together
// with the pid it names one process for good, even after the pid is reused.
func processStartTick(pid int) (uint64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	// After the command name: state is field 3, starttime field 22.
	fields := strings.Fields(string(data[i+1:]))
	if len(fields) < 20 {
		return 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	if fields[0] == "Z" {
		return 0, fmt.Errorf("process %d has exited", pid)
	}
	return strconv.ParseUint(fields[19], 10, 64)
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

// kill SIGKILLs the run's process group unless it has ended (then its pid may be reused) and
// waits for the end.
func (p *process) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = syscall.Kill(-p.pid, syscall.SIGKILL)
	<-p.done
}

// RunContainerInit is the container-init subcommand: it runs in the new namespaces, sets up
// the container and monitors its command (see containerinit), reporting setup failures on fd 3.
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
	code, err := containerinit.Run(spec, func() {
		_ = report.Close()
		report = nil
	})
	if err != nil {
		fail(err)
	}
	os.Exit(code)
}
