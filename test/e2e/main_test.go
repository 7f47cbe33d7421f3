// Package e2e runs Kura end to end on the local cluster (test/localcluster): a real
// kube-apiserver, controller-manager and scheduler, Pods run as host processes, the operator
// installed with its Helm chart, and real MariaDB instances.
package e2e

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/kube"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kura-db/kura/internal/testenv"
	"github.com/kura-db/kura/test/localcluster"
)

var (
	lc       *localcluster.Config
	k8s      client.Client
	kubectl  string
	keep     = flag.Bool("keep", os.Getenv("KURA_E2E_KEEP") != "", "leave the local cluster running after the suite")
	repoRoot = testenv.RepoRoot()
)

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run())
	}
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func run(m *testing.M) (int, error) {
	if os.Geteuid() != 0 {
		return 0, fmt.Errorf("the e2e suite needs root (network namespaces, mounts): run it as root, or make e2e")
	}
	ctx := context.Background()
	bin := filepath.Join(repoRoot, "bin")
	k8sBin, err := output(filepath.Join(repoRoot, "hack", "build-k8s.sh"))
	if err != nil {
		return 0, err
	}
	for _, b := range [][]string{
		{"go", "build", "-o", filepath.Join(bin, "kura-local"), "./test/localcluster/cmd/kura-local"},
		{"env", "CGO_ENABLED=0", "go", "build", "-trimpath", "-o", filepath.Join(bin, "kura"), "./cmd/kura"},
	} {
		cmd := exec.Command(b[0], b[1:]...)
		cmd.Dir, cmd.Stderr = repoRoot, os.Stderr
		if err := cmd.Run(); err != nil {
			return 0, fmt.Errorf("failed to build: %v: %w", b, err)
		}
	}
	lc = &localcluster.Config{
		StateDir:   filepath.Join(repoRoot, "test", ".local-e2e"),
		K8sBinDir:  k8sBin,
		Self:       filepath.Join(bin, "kura-local"),
		KuraBinary: filepath.Join(bin, "kura"),
	}
	if err := lc.Defaults(); err != nil {
		return 0, err
	}
	start := time.Now()
	if _, err := lc.Up(ctx); err != nil {
		_ = lc.Down(localcluster.DownOptions{})
		return 0, fmt.Errorf("failed to start the local cluster: %w", err)
	}
	if !*keep {
		defer func() {
			if err := lc.Down(localcluster.DownOptions{}); err != nil {
				fmt.Fprintln(os.Stderr, "e2e: teardown:", err)
			}
		}()
	}
	if err := lc.WaitNodesReady(ctx, 2*time.Minute); err != nil {
		return 0, err
	}
	fmt.Fprintf(os.Stderr, "e2e: local cluster up in %s (kubeconfig %s)\n", time.Since(start).Round(time.Millisecond), lc.Kubeconfig())
	kubectl = filepath.Join(k8sBin, "kubectl")
	cfg, err := clientcmd.BuildConfigFromFlags("", lc.Kubeconfig())
	if err != nil {
		return 0, err
	}
	k8s, err = client.New(cfg, client.Options{Scheme: testenv.NewScheme()})
	if err != nil {
		return 0, err
	}
	if err := helmInstall(ctx); err != nil {
		return 0, err
	}
	return m.Run(), nil
}

// helmInstall installs the operator with the chart, as a user would, and waits for it.
func helmInstall(ctx context.Context) error {
	kc, ns := lc.Kubeconfig(), "kura-system"
	flags := genericclioptions.NewConfigFlags(false)
	flags.KubeConfig, flags.Namespace = &kc, &ns
	cfg := action.NewConfiguration()
	if err := cfg.Init(flags, ns, "secret"); err != nil {
		return fmt.Errorf("failed to initialise helm: %w", err)
	}
	ch, err := loader.Load(filepath.Join(repoRoot, "charts", "kura"))
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
	start := time.Now()
	if _, err := inst.RunWithContext(ctx, ch, vals); err != nil {
		return fmt.Errorf("failed to helm install the operator: %w", err)
	}
	fmt.Fprintf(os.Stderr, "e2e: operator installed with the Helm chart in %s\n", time.Since(start).Round(time.Millisecond))
	return nil
}

func output(name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir, cmd.Stderr = repoRoot, os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s failed: %w", name, err)
	}
	lines := splitLines(string(out))
	if len(lines) == 0 {
		return "", fmt.Errorf("%s printed nothing", name)
	}
	return lines[len(lines)-1], nil
}

func splitLines(s string) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			if i > start {
				out = append(out, s[start:i])
			}
			start = i + 1
		}
	}
	if start < len(s) {
		out = append(out, s[start:])
	}
	return out
}
