// Package localcluster runs a Kubernetes control plane (etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler) and a node agent that replaces the kubelet by running
// every Pod as host processes in their own network, UTS and mount namespaces.
//
// See docs/local-cluster.md for what it implements and what it does not.
package localcluster

import (
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Fixed network layout of the local cluster. Only one local cluster runs on a machine at a time.
const (
	// BridgeName is the Linux bridge every Pod's veth is attached to.
	BridgeName = "kura0"
	// HostIP is the host's address on the bridge: the Pods' gateway, the DNS server and the
	// kube-apiserver's bind and advertise address.
	HostIP = "10.244.0.1"
	// PodCIDR is the range of Pod addresses; node-N allocates from 10.244.N.0/24.
	PodCIDR = "10.244.0.0/16"
	// ServiceCIDR is the range of ClusterIPs.
	ServiceCIDR = "10.96.0.0/16"
	// KubernetesServiceIP is the ClusterIP of the default/kubernetes Service.
	KubernetesServiceIP = "10.96.0.1"
	// APIServerPort is the kube-apiserver's secure port on HostIP.
	APIServerPort = 6443
	// EtcdClientPort and EtcdPeerPort are etcd's ports on loopback.
	EtcdClientPort = 32379
	EtcdPeerPort   = 32380
	// ClusterDomain is the DNS suffix of Services and Pods.
	ClusterDomain = "cluster.local"
	// NetNSPrefix prefixes the name of every Pod network namespace (ip netns).
	NetNSPrefix = "kl-"
	// VethPrefix prefixes the host side of every Pod veth pair.
	VethPrefix = "klv"
	// NFTable is the nftables table (family ip) holding the service proxy rules.
	NFTable = "kura_local"
)

// Config says where the local cluster keeps its state and which binaries it runs.
type Config struct {
	// StateDir holds everything: PKI, kubeconfig, etcd data, logs, pidfiles, Pod and volume
	// directories. Default test/.local under the repository root.
	StateDir string
	// K8sBinDir holds kube-apiserver, kube-controller-manager, kube-scheduler and kubectl.
	K8sBinDir string
	// Etcd is the etcd binary.
	Etcd string
	// Self is the kura-local binary: it runs the node agent and each container's init step.
	Self string
	// KuraBinary is the kura binary made available at /kura inside Pods of the operator image.
	KuraBinary string
	// Nodes is the number of Nodes the agent registers (node-1 .. node-N).
	Nodes int
	// BackoffBase is the first crash-loop back-off delay (doubling up to 5 minutes).
	BackoffBase time.Duration
	// KuraImages are extra image patterns (path.Match syntax) that map to the kura binary, in
	// addition to "kura:*" and "*/kura:*".
	KuraImages []string
	// Hold makes the process that calls Up own the cluster until it calls Down: it keeps
	// LockFile, so another Up waits for it, and if it dies first the cluster counts as
	// abandoned, which the next holder's Up takes down. Tests hold; make demo does not.
	Hold bool

	lock *os.File
}

// Defaults fills the zero fields.
func (c *Config) Defaults() error {
	if c.StateDir == "" {
		c.StateDir = "test/.local"
	}
	abs, err := filepath.Abs(c.StateDir)
	if err != nil {
		return fmt.Errorf("failed to resolve state dir: %w", err)
	}
	c.StateDir = abs
	if c.Etcd == "" {
		c.Etcd = "/usr/bin/etcd"
	}
	if c.Self == "" {
		self, err := os.Executable()
		if err != nil {
			return fmt.Errorf("failed to find own executable: %w", err)
		}
		c.Self = self
	}
	if c.Nodes == 0 {
		c.Nodes = 3
	}
	if c.BackoffBase == 0 {
		c.BackoffBase = 10 * time.Second
	}
	return nil
}

// Path joins elements under the state dir.
func (c *Config) Path(elem ...string) string {
	return filepath.Join(append([]string{c.StateDir}, elem...)...)
}

// Kubeconfig is the admin kubeconfig (system:masters) written by Up.
func (c *Config) Kubeconfig() string { return c.Path("kubeconfig") }

// LogDir holds the control plane's and the agent's logs.
func (c *Config) LogDir() string { return c.Path("logs") }

// PodLogPath is the log file of one container: stdout and stderr, appended across restarts.
func (c *Config) PodLogPath(namespace, pod, container string) string {
	return c.Path("logs", "pods", fmt.Sprintf("%s_%s_%s.log", namespace, pod, container))
}

// AgentReadyFile holds the pid of the node agent once it serves (Pods adopted, watches synced).
func (c *Config) AgentReadyFile() string { return c.Path("run", "agent.ready") }

// PidFile is the pidfile of one daemon.
func (c *Config) PidFile(name string) string { return c.Path("run", name+".pid") }

// APIServerURL is the kube-apiserver's address, reachable from the host and from Pods.
func APIServerURL() string { return fmt.Sprintf("https://%s:%d", HostIP, APIServerPort) }
