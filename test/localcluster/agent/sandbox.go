package agent

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"sync"

	"k8s.io/apimachinery/pkg/types"

	"github.com/kura-db/kura/test/localcluster"
)

// ipam hands out Pod addresses: node-N allocates 10.244.N.2 .. 10.244.N.254, round robin, so
// a new Pod does not inherit an address whose old MAC address peers still have cached. The
// round-robin position is kept in a file (when path is set), so that a restarted agent does
// not start over at addresses that were freed a moment ago.
type ipam struct {
	mu   sync.Mutex
	path string
	used map[string]bool
	next map[int]int
}

func newIPAM(path string) *ipam {
	p := &ipam{path: path, used: map[string]bool{}, next: map[int]int{}}
	if path != "" {
		if data, err := os.ReadFile(path); err == nil {
			_ = json.Unmarshal(data, &p.next)
		}
	}
	return p
}

// save records the round-robin position; losing it only risks an earlier reuse of an address.
func (p *ipam) save() {
	if p.path == "" {
		return
	}
	data, err := json.Marshal(p.next)
	if err != nil {
		return
	}
	if err := os.WriteFile(p.path+".tmp", data, 0o644); err == nil {
		_ = os.Rename(p.path+".tmp", p.path)
	}
}

func (p *ipam) allocate(nodeIndex int) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	const first, count = 2, 253
	start := p.next[nodeIndex]
	for i := 0; i < count; i++ {
		host := first + (start+i)%count
		ip := fmt.Sprintf("10.244.%d.%d", nodeIndex, host)
		if !p.used[ip] {
			p.used[ip] = true
			p.next[nodeIndex] = (start + i + 1) % count
			p.save()
			return ip, nil
		}
	}
	return "", fmt.Errorf("no free pod address on node-%d", nodeIndex)
}

// reserve marks ip as used (by a Pod an earlier agent run started).
func (p *ipam) reserve(ip string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.used[ip] = true
}

func (p *ipam) release(ip string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.used, ip)
}

// sandbox is a Pod's network: a named network namespace with a veth pair onto the bridge.
type sandbox struct {
	netns string // name under /run/netns; empty for hostNetwork Pods
	veth  string
	ip    string
}

func (s *sandbox) netnsPath() string {
	if s.netns == "" {
		return ""
	}
	return filepath.Join("/run/netns", s.netns)
}

func shortID(uid types.UID) string {
	h := fnv.New32a()
	_, _ = h.Write([]byte(uid))
	return fmt.Sprintf("%08x", h.Sum32())
}

// createSandbox builds the Pod's network namespace, attaches it to the bridge and gives it ip.
func createSandbox(uid types.UID, ip string) (*sandbox, error) {
	id := shortID(uid)
	s := &sandbox{netns: localcluster.NetNSPrefix + id, veth: localcluster.VethPrefix + id, ip: ip}
	steps := [][]string{
		{"netns", "add", s.netns},
		{"link", "add", s.veth, "type", "veth", "peer", "name", "eth0", "netns", s.netns},
		{"link", "set", s.veth, "master", localcluster.BridgeName},
		// Hairpin lets a Pod reach itself through its own Service's ClusterIP.
		{"link", "set", "dev", s.veth, "type", "bridge_slave", "hairpin", "on"},
		{"link", "set", s.veth, "up"},
		{"-n", s.netns, "link", "set", "lo", "up"},
		{"-n", s.netns, "addr", "add", ip + "/16", "dev", "eth0"},
		{"-n", s.netns, "link", "set", "eth0", "up"},
		{"-n", s.netns, "route", "add", "default", "via", localcluster.HostIP},
	}
	for _, st := range steps {
		if err := localcluster.IP(st...); err != nil {
			s.destroy()
			return nil, fmt.Errorf("failed to create pod network: %w", err)
		}
	}
	// Forget whatever MAC address the host last saw for this IP (after wrap-around).
	_ = localcluster.IP("neigh", "flush", "to", ip, "dev", localcluster.BridgeName)
	return s, nil
}

// destroy removes the namespace (which removes the veth pair with it).
func (s *sandbox) destroy() {
	if s.netns == "" {
		return
	}
	_ = localcluster.IP("link", "delete", s.veth)
	_ = localcluster.IP("netns", "delete", s.netns)
}
