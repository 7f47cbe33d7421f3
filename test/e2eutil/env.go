// Package e2eutil holds what the suites that run Kura on the local cluster share: bringing the
// cluster up with the operator Helm-installed (test/e2e, test/chaos), connections to instances,
// signalling containers and waiting for conditions.
package e2eutil

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/kube"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/kura-db/kura/internal/testenv"
	"github.com/kura-db/kura/test/localcluster"
)

// OperatorNamespace is where the operator is Helm-installed.
const OperatorNamespace = "kura-system"

// Env is a running local cluster with the operator installed.
type Env struct {
	LC      *localcluster.Config
	Client  client.Client
	Kubectl string
	Root    string
}

// Options say where the cluster keeps its state and how its node agent behaves.
type Options struct {
	// StateDir is relative to the repository root (one per suite, e.g. test/.local-e2e).
	StateDir string
	// BackoffBase is the node agent's first crash-loop delay (0: the kubelet's 10 s).
	BackoffBase time.Duration
	// Log prefixes progress lines on stderr.
	Log string
}

// Start builds bin/kura-local and bin/kura (and the Kubernetes binaries once), starts the local
// cluster, waits for its Nodes and installs the operator with its Helm chart. On error nothing
// is left running.
func Start(ctx context.Context, o Options) (*Env, error) {
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("the local cluster needs root (network namespaces, mounts): run as root")
	}
	root := testenv.RepoRoot()
	bin := filepath.Join(root, "bin")
	k8sBin, err := LastLine(root, filepath.Join(root, "hack", "build-k8s.sh"))
	if err != nil {
		return nil, err
	}
	for _, b := range [][]string{
		{"go", "build", "-o", filepath.Join(bin, "kura-local"), "./test/localcluster/cmd/kura-local"},
		{"env", "CGO_ENABLED=0", "go", "build", "-trimpath", "-o", filepath.Join(bin, "kura"), "./cmd/kura"},
	} {
		cmd := exec.Command(b[0], b[1:]...)
		cmd.Dir, cmd.Stderr = root, os.Stderr
		if err := cmd.Run(); err != nil {
			return nil, fmt.Errorf("failed to build: %v: %w", b, err)
		}
	}
	lc := &localcluster.Config{
		StateDir:    filepath.Join(root, o.StateDir),
		K8sBinDir:   k8sBin,
		Self:        filepath.Join(bin, "kura-local"),
		KuraBinary:  filepath.Join(bin, "kura"),
		BackoffBase: o.BackoffBase,
		Hold:        true,
	}
	if err := lc.Defaults(); err != nil {
		return nil, err
	}
	start := time.Now()
	if _, err := lc.Up(ctx); err != nil {
		_ = lc.Down(localcluster.DownOptions{})
		return nil, fmt.Errorf("failed to start the local cluster: %w", err)
	}
	e := &Env{LC: lc, Kubectl: filepath.Join(k8sBin, "kubectl"), Root: root}
	if err := e.install(ctx, o, start); err != nil {
		_ = lc.Down(localcluster.DownOptions{})
		return nil, err
	}
	return e, nil
}

func (e *Env) install(ctx context.Context, o Options, start time.Time) error {
	if err := e.LC.WaitNodesReady(ctx, 2*time.Minute); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "%s: local cluster up in %s (kubeconfig %s)\n", o.Log, time.Since(start).Round(time.Millisecond), e.LC.Kubeconfig())
	cfg, err := clientcmd.BuildConfigFromFlags("", e.LC.Kubeconfig())
	if err != nil {
		return err
	}
	ctrllog.SetLogger(logr.Discard())
	if e.Client, err = client.New(cfg, client.Options{Scheme: testenv.NewScheme()}); err != nil {
		return err
	}
	start = time.Now()
	if err := e.helmInstall(ctx); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "%s: operator installed with the Helm chart in %s\n", o.Log, time.Since(start).Round(time.Millisecond))
	return nil
}

// Down stops the local cluster and removes everything it made.
func (e *Env) Down() error { return e.LC.Down(localcluster.DownOptions{}) }

// helmInstall installs the operator with the chart, as a user would, and waits for it.
func (e *Env) helmInstall(ctx context.Context) error {
	kc, ns := e.LC.Kubeconfig(), OperatorNamespace
	flags := genericclioptions.NewConfigFlags(false)
	flags.KubeConfig, flags.Namespace = &kc, &ns
	cfg := action.NewConfiguration()
	if err := cfg.Init(flags, ns, "secret"); err != nil {
		return fmt.Errorf("failed to initialise helm: %w", err)
	}
	ch, err := loader.Load(filepath.Join(e.Root, "charts", "kura"))
	if err != nil {
		return fmt.Errorf("failed to load the chart: %w", err)
	}
	inst := action.NewInstall(cfg)
	inst.ReleaseName, inst.Namespace, inst.CreateNamespace = "kura", ns, true
	inst.WaitStrategy, inst.Timeout = kube.StatusWatcherStrategy, 5*time.Minute
	vals := map[string]any{
		"image":              map[string]any{"repository": "kura-db/kura", "tag": "dev"},
		"clusteringInterval": "1s",
	}
	if _, err := inst.RunWithContext(ctx, ch, vals); err != nil {
		return fmt.Errorf("failed to helm install the operator: %w", err)
	}
	return nil
}

// SignalContainer sends sig to a container's whole process group (its monitor, the command
// and whatever the command started), as a crash (SIGKILL) or a freeze (SIGSTOP) would.
func (e *Env) SignalContainer(ctx context.Context, ns, pod, container string, sig syscall.Signal) error {
	p := &corev1.Pod{}
	if err := e.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: pod}, p); err != nil {
		return err
	}
	data, err := os.ReadFile(e.LC.PodProcessGroupFile(string(p.UID), container))
	if err != nil {
		return fmt.Errorf("no process group recorded for %s/%s: %w", pod, container, err)
	}
	pgid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pgid <= 1 {
		return fmt.Errorf("bad process group %q for %s/%s", data, pod, container)
	}
	if err := syscall.Kill(-pgid, sig); err != nil {
		return fmt.Errorf("failed to send %s to %s/%s: %w", sig, pod, container, err)
	}
	return nil
}

// LastLine runs a command in dir and returns the last line it printed.
func LastLine(dir, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir, cmd.Stderr = dir, os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s failed: %w", name, err)
	}
	var last string
	for _, l := range strings.Split(string(out), "\n") {
		if l != "" {
			last = l
		}
	}
	if last == "" {
		return "", fmt.Errorf("%s printed nothing", name)
	}
	return last, nil
}
