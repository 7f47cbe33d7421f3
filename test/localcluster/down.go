package localcluster

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// DownOptions tune Down.
type DownOptions struct {
	// KeepState leaves the state dir (logs, etcd data) on disk.
	KeepState bool
}

// Down stops everything Up started: the node agent (which leaves its Pods running, as a
// kubelet does when it stops), the Pods' processes (SIGTERM, then SIGKILL after podGrace), the
// control plane, and removes the network namespaces, veths, bridge, nftables
// table and, unless told otherwise, the state dir. It is safe to run when nothing runs. When
// another state dir's cluster runs on the machine, its network is left alone. Down releases
// the machine lock a holder took in Up.
func (c *Config) Down(opts DownOptions) error {
	defer c.unlockMachine()
	return c.down(opts)
}

func (c *Config) down(opts DownOptions) error {
	var first error
	keep := func(err error) {
		if err != nil && first == nil {
			first = err
		}
	}
	keep(c.stopDaemon("agent", 40*time.Second))
	keep(c.stopPodProcesses(podGrace))
	for _, d := range []string{"kube-scheduler", "kube-controller-manager", "kube-apiserver", "etcd"} {
		keep(c.stopDaemon(d, 15*time.Second))
	}
	if other := RunningStateDir(); other == "" || other == c.StateDir {
		keep(c.teardownNetwork())
	}
	if !opts.KeepState {
		keep(c.removeStateDir())
	}
	return first
}

// PodProcessGroupFile is where the agent records the process group of a running container.
func (c *Config) PodProcessGroupFile(podUID, container string) string {
	return c.Path("pods", podUID, "pgid."+container)
}

// podGrace is how long Down gives Pod processes between SIGTERM and SIGKILL.
const podGrace = 10 * time.Second

// stopPodProcesses stops what runs in Pods: each container's monitor (recorded by the agent)
// gets SIGTERM, which it passes to the command; after grace every container process group, and
// any process whose network namespace is a Pod's, gets SIGKILL.
func (c *Config) stopPodProcesses(grace time.Duration) error {
	dirs, _ := filepath.Glob(c.Path("pods", "*"))
	var leaders []int
	for _, d := range dirs {
		leaders = append(leaders, recordedGroups(d)...)
	}
	for _, pid := range leaders {
		_ = syscall.Kill(pid, syscall.SIGTERM)
	}
	deadline := time.Now().Add(grace)
	for _, pid := range leaders {
		for processAlive(pid) && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
	}
	for _, d := range dirs {
		KillRecordedGroups(d)
	}
	return KillNetNSProcesses(ListPodNetNS())
}

// recordedGroups returns the container process groups the agent recorded in a Pod's directory
// whose leader still is a container monitor (a recorded pid may have been reused since).
func recordedGroups(podDir string) []int {
	files, _ := filepath.Glob(filepath.Join(podDir, "pgid.*"))
	var pgids []int
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if pgid, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil && pgid > 1 && isMonitor(pgid) {
			pgids = append(pgids, pgid)
		}
	}
	return pgids
}

// isMonitor tells whether pid runs a container monitor (kura-local container-init).
func isMonitor(pid int) bool {
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	args := strings.Split(string(cmdline), "\x00")
	return len(args) > 1 && args[1] == "container-init"
}

// KillRecordedGroups SIGKILLs the container process groups the agent recorded in a Pod's
// directory.
func KillRecordedGroups(podDir string) {
	for _, pgid := range recordedGroups(podDir) {
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
	}
}

// KillNetNSProcesses SIGKILLs every process in the named network namespaces and waits until
// they are gone.
func KillNetNSProcesses(netns []string) error {
	pids := netNSProcesses(netns)
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, pid := range pids {
		for processAlive(pid) {
			if time.Now().After(deadline) {
				return fmt.Errorf("failed to kill Pod process %d", pid)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return nil
}

// PodNetNSProcesses lists the pids of processes that live in a Pod network namespace.
func PodNetNSProcesses() []int { return netNSProcesses(ListPodNetNS()) }

func netNSProcesses(names []string) []int {
	inodes := map[string]bool{}
	for _, ns := range names {
		var st syscall.Stat_t
		if err := syscall.Stat(filepath.Join("/run/netns", ns), &st); err == nil {
			inodes[fmt.Sprintf("net:[%d]", st.Ino)] = true
		}
	}
	if len(inodes) == 0 {
		return nil
	}
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		link, err := os.Readlink(filepath.Join("/proc", e.Name(), "ns", "net"))
		if err == nil && inodes[link] {
			pids = append(pids, pid)
		}
	}
	return pids
}

func (c *Config) removeStateDir() error {
	// Nothing is mounted under the state dir on the host (Pod mounts live in private mount
	// namespaces), but refuse to recurse through a mount point just in case.
	data, _ := os.ReadFile("/proc/self/mountinfo")
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && strings.HasPrefix(f[4], c.StateDir+"/") {
			if out, err := exec.Command("umount", "-l", f[4]).CombinedOutput(); err != nil {
				return fmt.Errorf("failed to unmount %s: %s: %w", f[4], out, err)
			}
		}
	}
	if err := os.RemoveAll(c.StateDir); err != nil {
		return fmt.Errorf("failed to remove state dir: %w", err)
	}
	return nil
}

func lookPath(name string) (string, error) { return exec.LookPath(name) }
