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

// Down stops everything Up started: the node agent (which stops its Pods), the control plane,
// any Pod process left behind, and removes the network namespaces, veths, bridge, nftables
// table and, unless told otherwise, the state dir. It is safe to run when nothing runs.
func (c *Config) Down(opts DownOptions) error {
	var first error
	keep := func(err error) {
		if err != nil && first == nil {
			first = err
		}
	}
	keep(c.stopDaemon("agent", 40*time.Second))
	keep(c.killPodProcesses())
	for _, d := range []string{"kube-scheduler", "kube-controller-manager", "kube-apiserver", "etcd"} {
		keep(c.stopDaemon(d, 15*time.Second))
	}
	keep(c.teardownNetwork())
	if !opts.KeepState {
		keep(c.removeStateDir())
	}
	return first
}

// PodProcessGroupFile is where the agent records the process group of a running container.
func (c *Config) PodProcessGroupFile(podUID, container string) string {
	return c.Path("pods", podUID, "pgid."+container)
}

// killPodProcesses kills what is left of Pods: process groups recorded by the agent, and any
// process whose network namespace is a Pod's.
func (c *Config) killPodProcesses() error {
	files, _ := filepath.Glob(c.Path("pods", "*", "pgid.*"))
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if pgid, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil && pgid > 1 {
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
		}
	}
	pids := PodNetNSProcesses()
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
func PodNetNSProcesses() []int {
	inodes := map[string]bool{}
	for _, ns := range ListPodNetNS() {
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

// CleanPods kills every Pod process and removes every Pod network namespace and veth, leaving
// the bridge and the control plane alone. The node agent calls it when it starts.
func (c *Config) CleanPods() error {
	err := c.killPodProcesses()
	for _, ns := range ListPodNetNS() {
		if e := ipCmd("netns", "delete", ns); e != nil && err == nil {
			err = e
		}
	}
	if e := os.RemoveAll(c.Path("pods")); e != nil && err == nil {
		err = fmt.Errorf("failed to remove pod dirs: %w", e)
	}
	return err
}
