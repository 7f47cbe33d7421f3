package localcluster

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// ipCmd runs `ip args...` and returns a wrapped error with its output.
func ipCmd(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("failed to run ip %s: %s: %w", strings.Join(args, " "), bytes.TrimSpace(out), err)
	}
	return nil
}

func linkExists(name string) bool {
	return exec.Command("ip", "link", "show", "dev", name).Run() == nil
}

// setupBridge creates the bridge with the host's address, routes the service range over it
// (so host-to-ClusterIP traffic leaves from HostIP) and enables IPv4 forwarding, remembering the
// previous setting for teardown.
func (c *Config) setupBridge() error {
	if linkExists(BridgeName) {
		return fmt.Errorf("bridge %s already exists: a local cluster is already running (run hack/local-down.sh)", BridgeName)
	}
	if err := ipCmd("link", "add", BridgeName, "type", "bridge"); err != nil {
		return err
	}
	if err := ipCmd("addr", "add", HostIP+"/16", "dev", BridgeName); err != nil {
		return err
	}
	if err := ipCmd("link", "set", BridgeName, "up"); err != nil {
		return err
	}
	if err := ipCmd("route", "add", ServiceCIDR, "dev", BridgeName, "src", HostIP); err != nil {
		return err
	}
	const fwd = "/proc/sys/net/ipv4/ip_forward"
	prev, err := os.ReadFile(fwd)
	if err != nil {
		return fmt.Errorf("failed to read ip_forward: %w", err)
	}
	if err := os.WriteFile(c.Path("run", "ip_forward.orig"), prev, 0o644); err != nil {
		return fmt.Errorf("failed to save ip_forward: %w", err)
	}
	if err := os.WriteFile(fwd, []byte("1\n"), 0o644); err != nil {
		return fmt.Errorf("failed to enable ip_forward: %w", err)
	}
	return nil
}

// ListPodNetNS returns the names of the Pod network namespaces that exist now.
func ListPodNetNS() []string {
	entries, err := os.ReadDir("/run/netns")
	if err != nil {
		return nil
	}
	var names []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), NetNSPrefix) {
			names = append(names, e.Name())
		}
	}
	return names
}

// teardownNetwork removes every Pod network namespace, veth, the bridge, the service route, the
// nftables table, and restores ip_forward. It keeps going on errors and returns the first.
func (c *Config) teardownNetwork() error {
	var first error
	keep := func(err error) {
		if err != nil && first == nil {
			first = err
		}
	}
	for _, ns := range ListPodNetNS() {
		keep(ipCmd("netns", "delete", ns))
	}
	out, _ := exec.Command("ip", "-o", "link", "show").Output()
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		name := strings.SplitN(strings.TrimSuffix(f[1], ":"), "@", 2)[0]
		// A veth goes away by itself once its namespace is destroyed, which the kernel does
		// asynchronously after the namespace's last process and mount are gone.
		if strings.HasPrefix(name, VethPrefix) {
			if err := ipCmd("link", "delete", name); err != nil && linkExists(name) {
				keep(err)
			}
		}
	}
	if linkExists(BridgeName) {
		keep(ipCmd("link", "delete", BridgeName))
	}
	if exec.Command("nft", "list", "table", "ip", NFTable).Run() == nil {
		if out, err := exec.Command("nft", "delete", "table", "ip", NFTable).CombinedOutput(); err != nil {
			keep(fmt.Errorf("failed to delete nftables table %s: %s: %w", NFTable, out, err))
		}
	}
	if prev, err := os.ReadFile(c.Path("run", "ip_forward.orig")); err == nil {
		keep(os.WriteFile("/proc/sys/net/ipv4/ip_forward", prev, 0o644))
	}
	keep(c.unmountNetnsDir())
	return first
}

// unmountNetnsDir undoes the /run/netns mount that `ip netns add` creates on first use, when
// the local cluster created it and no namespace is left in it.
func (c *Config) unmountNetnsDir() error {
	if _, err := os.Stat(c.Path("run", "netns-dir-created")); err != nil {
		return nil //nolint:nilerr // the marker is absent: the directory is not ours to undo
	}
	entries, _ := os.ReadDir("/run/netns")
	if len(entries) > 0 {
		return nil
	}
	for isMountPoint("/run/netns") {
		if err := exec.Command("umount", "/run/netns").Run(); err != nil {
			return fmt.Errorf("failed to unmount /run/netns: %w", err)
		}
	}
	_ = os.Remove("/run/netns")
	return nil
}

// isMountPoint reports whether path is a mount point in this mount namespace.
func isMountPoint(path string) bool {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && f[4] == path {
			return true
		}
	}
	return false
}

// recordNetnsDir notes whether /run/netns exists before the first Pod namespace is created.
func (c *Config) recordNetnsDir() error {
	if _, err := os.Stat("/run/netns"); err == nil {
		return nil
	}
	if err := os.WriteFile(c.Path("run", "netns-dir-created"), nil, 0o644); err != nil {
		return fmt.Errorf("failed to record /run/netns state: %w", err)
	}
	return nil
}

// IP runs the ip(8) command with args.
func IP(args ...string) error { return ipCmd(args...) }
