// Package containerinit sets a container up and then stays with it as its monitor. Started by
// the node agent in a fresh mount and UTS namespace, it joins the Pod's network namespace,
// builds the container's root (a copy-on-write overlay of the host's / on a private tmpfs, with
// the volumes bind-mounted at their container paths) and switches into it; then it starts the
// command as the container's user, forwards signals to it, and when it ends writes its exit
// status to a file outside the container and exits with the same code. Because the monitor,
// not the agent, is the command's parent, a restarted agent can adopt a running container and
// still learn how it ended. Nothing it mounts is visible outside the container.
package containerinit

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Mount is a bind mount into the container.
type Mount struct {
	Source   string `json:"source"`
	Target   string `json:"target"`
	ReadOnly bool   `json:"readOnly,omitempty"`
}

// Spec is everything the init step needs; the agent writes it as JSON.
type Spec struct {
	// NetNS is the path of the Pod's network namespace; empty for hostNetwork Pods.
	NetNS string `json:"netns,omitempty"`
	// Hostname is set in the container's UTS namespace.
	Hostname string `json:"hostname"`
	// Scratch is a host directory on which a private tmpfs holds the overlay's upper layer.
	Scratch string `json:"scratch"`
	// Mounts are applied in order after the root is built.
	Mounts []Mount `json:"mounts,omitempty"`
	// Files are written into the container root (e.g. /etc/resolv.conf, /etc/hosts).
	Files map[string]string `json:"files,omitempty"`
	// ReadOnlyRoot remounts the root read-only after the mounts (readOnlyRootFilesystem).
	ReadOnlyRoot bool `json:"readOnlyRoot,omitempty"`
	// UID, GID and Groups are the credentials the command runs with.
	UID    uint32   `json:"uid"`
	GID    uint32   `json:"gid"`
	Groups []uint32 `json:"groups,omitempty"`
	// WorkingDir is created if missing.
	WorkingDir string `json:"workingDir,omitempty"`
	// Argv is the command and its arguments; Argv[0] is looked up in Env's PATH.
	Argv []string `json:"argv"`
	Env  []string `json:"env"`
	// ExitFile is the host path the monitor writes the command's ExitStatus to.
	ExitFile string `json:"exitFile"`
}

// ExitStatus is how a container's command ended, as its monitor recorded it.
type ExitStatus struct {
	ExitCode   int32     `json:"exitCode"`
	Signal     int32     `json:"signal,omitempty"`
	FinishedAt time.Time `json:"finishedAt"`
}

// ReadExitStatus reads the status a monitor wrote; false when there is none (the monitor was
// killed, or the command still runs).
func ReadExitStatus(path string) (ExitStatus, bool) {
	var st ExitStatus
	data, err := os.ReadFile(path)
	if err != nil || json.Unmarshal(data, &st) != nil {
		return st, false
	}
	return st, true
}

// Load reads a Spec file.
func Load(path string) (*Spec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("failed to read container spec: %w", err)
	}
	var s Spec
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("failed to parse container spec: %w", err)
	}
	return &s, nil
}

// forwarded are the signals the monitor passes on to the command.
var forwarded = []os.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT,
	syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGWINCH, syscall.SIGALRM}

// Run sets up the container, starts its command and monitors it. Setup failures are returned
// before the command starts; started reports the command running (the caller closes its
// status pipe there). Once the command ran, Run returns its exit code. The caller's mount and
// UTS namespaces must already be private to this process.
func Run(s *Spec, started func()) (int, error) {
	// Every step, and the fork of the command, happens on this thread: it alone joined the
	// Pod's network namespace.
	runtime.LockOSThread()
	return run(s, started)
}

func run(s *Spec, started func()) (int, error) {
	exitFile, err := os.OpenFile(s.ExitFile, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return 0, fmt.Errorf("failed to create exit status file: %w", err)
	}
	defer exitFile.Close()
	cmd, err := setup(s)
	if err != nil {
		return 0, err
	}
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, forwarded...)
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("failed to start %s: %w", cmd.Path, err)
	}
	started()
	done := make(chan struct{})
	go func() {
		for {
			select {
			case sig := <-sigs:
				_ = cmd.Process.Signal(sig)
			case <-done:
				return
			}
		}
	}()
	waitErr := cmd.Wait()
	close(done)
	st := ExitStatus{FinishedAt: time.Now()}
	var exit *exec.ExitError
	switch {
	case errors.As(waitErr, &exit):
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			st.Signal = int32(ws.Signal())
			st.ExitCode = 128 + st.Signal
		} else {
			st.ExitCode = int32(exit.ExitCode())
		}
	case waitErr != nil:
		st.ExitCode = 128
	}
	data, _ := json.Marshal(st)
	_, _ = exitFile.Write(data)
	return int(st.ExitCode), nil
}

// setup builds the container around this process and returns its command, ready to start.
func setup(s *Spec) (*exec.Cmd, error) {
	if s.NetNS != "" {
		fd, err := unix.Open(s.NetNS, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, fmt.Errorf("failed to open network namespace %s: %w", s.NetNS, err)
		}
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			return nil, fmt.Errorf("failed to join network namespace %s: %w", s.NetNS, err)
		}
		_ = unix.Close(fd)
	}
	if err := unix.Sethostname([]byte(s.Hostname)); err != nil {
		return nil, fmt.Errorf("failed to set hostname: %w", err)
	}
	root, err := buildRoot(s)
	if err != nil {
		return nil, err
	}
	if err := pivot(root); err != nil {
		return nil, err
	}
	// Paths inside the container resolve from here on against its own root, so a symlink such
	// as /var/run -> /run can never lead a mount point onto the host's filesystem.
	for path, content := range s.Files {
		_ = os.Remove(path)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, fmt.Errorf("failed to create dir of %s: %w", path, err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			return nil, fmt.Errorf("failed to write %s: %w", path, err)
		}
	}
	for _, m := range s.Mounts {
		m.Source = filepath.Join(oldRoot, m.Source)
		if err := bind(m); err != nil {
			return nil, err
		}
	}
	if err := unix.Unmount(oldRoot, unix.MNT_DETACH); err != nil {
		return nil, fmt.Errorf("failed to detach old root: %w", err)
	}
	_ = os.Remove(oldRoot)
	if s.ReadOnlyRoot {
		if err := unix.Mount("", "/", "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY, ""); err != nil {
			return nil, fmt.Errorf("failed to make root read-only: %w", err)
		}
	}
	wd := s.WorkingDir
	if wd == "" {
		wd = "/"
	}
	if err := os.MkdirAll(wd, 0o755); err != nil && !s.ReadOnlyRoot {
		return nil, fmt.Errorf("failed to create working dir: %w", err)
	}
	if err := os.Chdir(wd); err != nil {
		return nil, fmt.Errorf("failed to enter working dir %s: %w", wd, err)
	}
	path, err := lookup(s.Argv[0], s.Env)
	if err != nil {
		return nil, err
	}
	cmd := &exec.Cmd{Path: path, Args: s.Argv, Env: s.Env, Dir: wd, Stdout: os.Stdout, Stderr: os.Stderr}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: s.UID, Gid: s.GID, Groups: s.Groups}}
	return cmd, nil
}

// buildRoot mounts the overlay root and everything inside it, and returns its path.
func buildRoot(s *Spec) (string, error) {
	if err := unix.Mount("tmpfs", s.Scratch, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0755"); err != nil {
		return "", fmt.Errorf("failed to mount scratch tmpfs: %w", err)
	}
	upper, work, root := filepath.Join(s.Scratch, "upper"), filepath.Join(s.Scratch, "work"), filepath.Join(s.Scratch, "root")
	for _, d := range []string{upper, work, root} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return "", fmt.Errorf("failed to create %s: %w", d, err)
		}
	}
	opts := fmt.Sprintf("lowerdir=/,upperdir=%s,workdir=%s", upper, work)
	if err := unix.Mount("overlay", root, "overlay", 0, opts); err != nil {
		return "", fmt.Errorf("failed to mount overlay root: %w", err)
	}
	// The overlay shows only the root filesystem; bring the kernel filesystems in.
	for _, d := range []string{"/dev", "/proc", "/sys"} {
		if err := unix.Mount(d, filepath.Join(root, d), "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return "", fmt.Errorf("failed to bind %s: %w", d, err)
		}
	}
	return root, nil
}

func bind(m Mount) error {
	target := m.Target
	st, err := os.Stat(m.Source)
	if err != nil {
		return fmt.Errorf("failed to stat volume source %s: %w", m.Source, err)
	}
	if st.IsDir() {
		if err := os.MkdirAll(target, 0o755); err != nil {
			return fmt.Errorf("failed to create mount point %s: %w", m.Target, err)
		}
	} else {
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return fmt.Errorf("failed to create mount point dir %s: %w", m.Target, err)
		}
		if _, err := os.Lstat(target); err != nil {
			if err := os.WriteFile(target, nil, 0o644); err != nil {
				return fmt.Errorf("failed to create mount point %s: %w", m.Target, err)
			}
		}
	}
	if err := unix.Mount(m.Source, target, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("failed to bind %s at %s: %w", m.Source, m.Target, err)
	}
	if m.ReadOnly {
		if err := unix.Mount("", target, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY, ""); err != nil {
			return fmt.Errorf("failed to make %s read-only: %w", m.Target, err)
		}
	}
	return nil
}

// oldRoot is where the host's root stays reachable between pivot_root and the volume mounts.
const oldRoot = "/.kura-oldroot"

func pivot(root string) error {
	old := filepath.Join(root, oldRoot)
	if err := os.Mkdir(old, 0o700); err != nil {
		return fmt.Errorf("failed to create old root dir: %w", err)
	}
	if err := unix.PivotRoot(root, old); err != nil {
		return fmt.Errorf("failed to pivot root: %w", err)
	}
	if err := os.Chdir("/"); err != nil {
		return fmt.Errorf("failed to enter new root: %w", err)
	}
	return nil
}

// lookup finds name in the container's PATH.
func lookup(name string, env []string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	path := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	for _, e := range env {
		if strings.HasPrefix(e, "PATH=") {
			path = strings.TrimPrefix(e, "PATH=")
		}
	}
	for _, dir := range filepath.SplitList(path) {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("executable %q not found in PATH %s", name, path)
}
