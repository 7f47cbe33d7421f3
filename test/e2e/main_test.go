// Package e2e runs Kura end to end on the local cluster (test/localcluster): a real
// kube-apiserver, controller-manager and scheduler, Pods run as host processes, the operator
// installed with its Helm chart, and real MariaDB instances.
package e2e

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kura-db/kura/test/e2eutil"
	"github.com/kura-db/kura/test/localcluster"
)

var (
	lc      *localcluster.Config
	k8s     client.Client
	kubectl string
	keep    = flag.Bool("keep", os.Getenv("KURA_E2E_KEEP") != "", "leave the local cluster running after the suite")
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
	env, err := e2eutil.Start(context.Background(), e2eutil.Options{StateDir: filepath.Join("test", ".local-e2e"), Log: "e2e"})
	if err != nil {
		return 0, err
	}
	if !*keep {
		defer func() {
			if err := env.Down(); err != nil {
				fmt.Fprintln(os.Stderr, "e2e: teardown:", err)
			}
		}()
	}
	lc, k8s, kubectl = env.LC, env.Client, env.Kubectl
	return m.Run(), nil
}
