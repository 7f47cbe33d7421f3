// Package testenv starts a real kube-apiserver and etcd (controller-runtime's envtest) with
// Kura's CRDs installed, for the envtest tier.
package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/kura-db/kura/internal/scheme"
)

// Env is a running API server with Kura's CRDs.
type Env struct {
	Config *rest.Config
	Client client.Client
	Scheme *runtime.Scheme
	env    *envtest.Environment
}

// RepoRoot returns the repository's root directory.
func RepoRoot() string {
	_, file, _, _ := goruntime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// assetsDir is where envtest finds kube-apiserver and etcd: $KUBEBUILDER_ASSETS, else
// bin/envtest-assets (make envtest-assets).
func assetsDir() string {
	if dir := os.Getenv("KUBEBUILDER_ASSETS"); dir != "" {
		return dir
	}
	return filepath.Join(RepoRoot(), "bin", "envtest-assets")
}

// NewScheme returns a scheme with the core Kubernetes kinds and Kura's kinds.
func NewScheme() *runtime.Scheme { return scheme.New() }

// Available reports whether the envtest binaries are configured. When they are not, tests in
// this tier fail with a message that says how to get them (make envtest-assets), unless the
// run is -short, in which case they are left out: -short is the unit tier.
func Available() error {
	dir := assetsDir()
	for _, b := range []string{"kube-apiserver", "etcd"} {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			return fmt.Errorf("envtest binary %s not found in %s: run 'make envtest-assets' (or 'make test')", b, dir)
		}
	}
	return nil
}

// Start starts an API server and etcd and stops them when the test ends. Call it from
// TestMain-less suites via a sync.Once, or once per test for isolation.
func Start(tb testing.TB) *Env {
	tb.Helper()
	if testing.Short() {
		tb.Skip("envtest tier: not run with -short (the unit tier)")
	}
	e, err := StartE()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = e.Stop() })
	return e
}

// StartE starts an API server and etcd; the caller stops them.
func StartE() (*Env, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	s := NewScheme()
	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join(RepoRoot(), "charts", "kura", "crds")},
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: assetsDir(),
		Scheme:                s,
	}
	cfg, err := env.Start()
	if err != nil {
		return nil, fmt.Errorf("failed to start envtest: %w", err)
	}
	c, err := client.New(cfg, client.Options{Scheme: s})
	if err != nil {
		_ = env.Stop()
		return nil, fmt.Errorf("failed to create client: %w", err)
	}
	return &Env{Config: cfg, Client: c, Scheme: s, env: env}, nil
}

// Stop stops the API server and etcd.
func (e *Env) Stop() error { return e.env.Stop() }
