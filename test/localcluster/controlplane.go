package localcluster

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// Timings are measured by Up.
type Timings struct {
	// ControlPlane is from the start of Up until kube-apiserver is ready.
	ControlPlane time.Duration
	// Nodes is from the start of Up until every Node is Ready.
	Nodes time.Duration
}

// Client returns a clientset for the admin kubeconfig.
func (c *Config) Client() (*kubernetes.Clientset, error) {
	rc, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig())
	if err != nil {
		return nil, fmt.Errorf("failed to load kubeconfig: %w", err)
	}
	rc.QPS, rc.Burst = 100, 200
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("failed to build client: %w", err)
	}
	return cs, nil
}

// CheckPrerequisites fails with a message naming the fix when something needed is missing.
func (c *Config) CheckPrerequisites() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("the local cluster needs root (network namespaces, bridges, mounts)")
	}
	need := []string{c.Etcd, c.Self}
	for _, b := range []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler"} {
		need = append(need, filepath.Join(c.K8sBinDir, b))
	}
	for _, p := range need {
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("missing %s: run make deps and hack/build-k8s.sh (or hack/local-up.sh)", p)
		}
	}
	for _, tool := range []string{"ip", "nft", "nsenter", "setpriv"} {
		if _, err := lookPath(tool); err != nil {
			return fmt.Errorf("missing %s: run hack/local-up.sh (installs iproute2, nftables, util-linux)", tool)
		}
	}
	return nil
}

// Up starts etcd, the control plane and the node agent, and waits until every Node is Ready.
func (c *Config) Up(ctx context.Context) (Timings, error) {
	var t Timings
	start := time.Now()
	if err := c.CheckPrerequisites(); err != nil {
		return t, err
	}
	lock, err := lockMachine(ctx)
	if err != nil {
		return t, err
	}
	c.lock = lock
	if !c.Hold {
		defer c.unlockMachine()
	}
	if c.daemonPid("kube-apiserver") != 0 || c.daemonPid("etcd") != 0 {
		return t, fmt.Errorf("a local cluster already runs from %s (run hack/local-down.sh)", c.StateDir)
	}
	if err := c.clearMachine(); err != nil {
		return t, err
	}
	if err := os.MkdirAll(c.Path("run"), 0o755); err != nil {
		return t, fmt.Errorf("failed to create state dir: %w", err)
	}
	if c.Hold {
		if err := os.WriteFile(c.heldMarker(), nil, 0o644); err != nil {
			return t, fmt.Errorf("failed to mark the cluster held: %w", err)
		}
	}
	if err := c.recordNetnsDir(); err != nil {
		return t, err
	}
	if err := c.setupBridge(); err != nil {
		return t, err
	}
	if err := c.writePKI(); err != nil {
		return t, err
	}
	if err := c.startEtcd(ctx); err != nil {
		return t, err
	}
	if err := c.startAPIServer(ctx); err != nil {
		return t, err
	}
	t.ControlPlane = time.Since(start)
	if err := c.startControllers(); err != nil {
		return t, err
	}
	if err := c.startAgent(); err != nil {
		return t, err
	}
	if err := c.WaitNodesReady(ctx, 2*time.Minute); err != nil {
		return t, err
	}
	if err := c.waitAgentReady(ctx, time.Minute); err != nil {
		return t, err
	}
	t.Nodes = time.Since(start)
	return t, nil
}

func (c *Config) startEtcd(ctx context.Context) error {
	client := fmt.Sprintf("http://127.0.0.1:%d", EtcdClientPort)
	peer := fmt.Sprintf("http://127.0.0.1:%d", EtcdPeerPort)
	if err := c.startDaemon("etcd", []string{c.Etcd,
		"--name=kura-local",
		"--data-dir=" + c.Path("etcd"),
		"--listen-client-urls=" + client, "--advertise-client-urls=" + client,
		"--listen-peer-urls=" + peer, "--initial-advertise-peer-urls=" + peer,
		"--initial-cluster=kura-local=" + peer,
		"--snapshot-count=10000",
	}, []string{"ETCD_UNSUPPORTED_ARCH="}); err != nil {
		return err
	}
	return poll(ctx, 30*time.Second, "etcd to be healthy", func() (bool, error) {
		if c.daemonPid("etcd") == 0 {
			return false, fmt.Errorf("etcd exited: see %s", filepath.Join(c.LogDir(), "etcd.log"))
		}
		resp, err := http.Get(client + "/health")
		if err != nil {
			return false, nil //nolint:nilerr // polling: etcd is not serving yet
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
}

func (c *Config) startAPIServer(ctx context.Context) error {
	pki := c.Path("pki")
	if err := c.startDaemon("kube-apiserver", []string{filepath.Join(c.K8sBinDir, "kube-apiserver"),
		fmt.Sprintf("--etcd-servers=http://127.0.0.1:%d", EtcdClientPort),
		"--bind-address=" + HostIP, "--advertise-address=" + HostIP,
		"--secure-port=" + strconv.Itoa(APIServerPort),
		"--cert-dir=" + filepath.Join(pki, "apiserver-certs"),
		"--tls-cert-file=" + filepath.Join(pki, "apiserver.crt"),
		"--tls-private-key-file=" + filepath.Join(pki, "apiserver.key"),
		"--client-ca-file=" + filepath.Join(pki, "ca.crt"),
		"--service-account-issuer=https://kubernetes.default.svc." + ClusterDomain,
		"--service-account-key-file=" + filepath.Join(pki, "sa.pub"),
		"--service-account-signing-key-file=" + filepath.Join(pki, "sa.key"),
		"--service-cluster-ip-range=" + ServiceCIDR,
		"--authorization-mode=RBAC",
		"--allow-privileged=true",
		"--profiling=false",
	}, nil); err != nil {
		return err
	}
	cs, err := c.Client()
	if err != nil {
		return err
	}
	return poll(ctx, 90*time.Second, "kube-apiserver to be ready", func() (bool, error) {
		if c.daemonPid("kube-apiserver") == 0 {
			return false, fmt.Errorf("kube-apiserver exited: see %s", filepath.Join(c.LogDir(), "kube-apiserver.log"))
		}
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		_, err := cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(rctx)
		return err == nil, nil
	})
}

func (c *Config) startControllers() error {
	pki := c.Path("pki")
	kc := c.Kubeconfig()
	if err := c.startDaemon("kube-controller-manager", []string{filepath.Join(c.K8sBinDir, "kube-controller-manager"),
		"--kubeconfig=" + kc, "--authentication-kubeconfig=" + kc, "--authorization-kubeconfig=" + kc,
		"--bind-address=127.0.0.1", "--secure-port=0",
		"--leader-elect=false",
		"--service-account-private-key-file=" + filepath.Join(pki, "sa.key"),
		"--root-ca-file=" + filepath.Join(pki, "ca.crt"),
		"--service-cluster-ip-range=" + ServiceCIDR,
		"--controllers=*",
		"--concurrent-statefulset-syncs=5",
	}, nil); err != nil {
		return err
	}
	if err := c.startDaemon("kube-scheduler", []string{filepath.Join(c.K8sBinDir, "kube-scheduler"),
		"--kubeconfig=" + kc, "--authentication-kubeconfig=" + kc, "--authorization-kubeconfig=" + kc,
		"--bind-address=127.0.0.1", "--secure-port=0",
		"--leader-elect=false",
	}, nil); err != nil {
		return err
	}
	return nil
}

// startAgent starts the node agent; its command line is kept in run/agent.args, so that a
// restart (RestartAgent, kura-local restart-agent) runs it the same way.
func (c *Config) startAgent() error {
	args := []string{c.Self, "agent",
		"--state-dir=" + c.StateDir,
		"--nodes=" + strconv.Itoa(c.Nodes),
		"--backoff-base=" + c.BackoffBase.String(),
	}
	if c.KuraBinary != "" {
		args = append(args, "--kura-binary="+c.KuraBinary)
	}
	for _, p := range c.KuraImages {
		args = append(args, "--kura-image="+p)
	}
	if err := os.WriteFile(c.agentArgsFile(), []byte(strings.Join(args, "\x00")), 0o644); err != nil {
		return fmt.Errorf("failed to record the agent's command line: %w", err)
	}
	return c.startDaemon("agent", args, nil)
}

func (c *Config) agentArgsFile() string { return c.Path("run", "agent.args") }

// RestartAgent stops the node agent with sig (SIGTERM for a clean stop, SIGKILL for a crash),
// starts it again and waits until the new agent serves. The Pods keep running throughout.
func (c *Config) RestartAgent(ctx context.Context, sig syscall.Signal) error {
	if err := c.StopAgent(ctx, sig); err != nil {
		return err
	}
	return c.StartAgent(ctx)
}

// StopAgent stops the node agent with sig and waits until it is gone. Its Pods keep running.
func (c *Config) StopAgent(ctx context.Context, sig syscall.Signal) error {
	pid := c.daemonPid("agent")
	if pid == 0 {
		return nil
	}
	_ = syscall.Kill(pid, sig)
	return poll(ctx, 40*time.Second, "the node agent to stop", func() (bool, error) {
		return !processAlive(pid), nil
	})
}

// StartAgent starts the node agent again, as it was started last, and waits until it serves
// (it has adopted the Pods the previous run left and watches the API again).
func (c *Config) StartAgent(ctx context.Context) error {
	if c.daemonPid("agent") != 0 {
		return fmt.Errorf("the node agent already runs")
	}
	_ = os.Remove(c.AgentReadyFile())
	data, err := os.ReadFile(c.agentArgsFile())
	if err != nil {
		return fmt.Errorf("no local cluster was started from %s: %w", c.StateDir, err)
	}
	if err := c.startDaemon("agent", strings.Split(string(data), "\x00"), nil); err != nil {
		return err
	}
	return c.waitAgentReady(ctx, time.Minute)
}

// waitAgentReady waits until the running agent reports that it serves.
func (c *Config) waitAgentReady(ctx context.Context, timeout time.Duration) error {
	return poll(ctx, timeout, "the node agent to serve", func() (bool, error) {
		pid := c.daemonPid("agent")
		if pid == 0 {
			return false, fmt.Errorf("the node agent exited: see %s", filepath.Join(c.LogDir(), "agent.log"))
		}
		data, err := os.ReadFile(c.AgentReadyFile())
		return err == nil && strings.TrimSpace(string(data)) == strconv.Itoa(pid), nil
	})
}

// WaitNodesReady waits until the agent's Nodes are registered and Ready.
func (c *Config) WaitNodesReady(ctx context.Context, timeout time.Duration) error {
	cs, err := c.Client()
	if err != nil {
		return err
	}
	return poll(ctx, timeout, fmt.Sprintf("%d Nodes to be Ready", c.Nodes), func() (bool, error) {
		if c.daemonPid("agent") == 0 {
			return false, fmt.Errorf("the node agent exited: see %s", filepath.Join(c.LogDir(), "agent.log"))
		}
		nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, nil //nolint:nilerr // polling: the API server may not answer yet
		}
		ready := 0
		for _, n := range nodes.Items {
			for _, cond := range n.Status.Conditions {
				if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
					ready++
				}
			}
		}
		return ready >= c.Nodes, nil
	})
}

// poll runs check every 100ms until it reports done, fails, or timeout passes.
func poll(ctx context.Context, timeout time.Duration, what string, check func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	for {
		done, err := check()
		if err != nil {
			return fmt.Errorf("failed waiting for %s: %w", what, err)
		}
		if done {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s waiting for %s", timeout, what)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("stopped waiting for %s: %w", what, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}
