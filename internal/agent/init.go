// Package agent is what runs inside an instance Pod: `kura init` (the init container that
// prepares the instance) and `kura agent` (the sidecar serving health and, later, clone and
// backup endpoints).
package agent

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/internal/engine"
	"github.com/kura-db/kura/internal/mycnf"
)

// Env is what an instance Pod learns from its environment (downward API and the credentials
// Secret; see internal/builder/statefulset.go).
type Env struct {
	PodName, Namespace, Cluster, InstancesService string
	Engine                                        kurav1alpha1.Engine
	Ordinal                                       int32
	AdminPassword, ReplicationPassword            string
	AgentPassword, RootPassword                   string
}

// EnvFromOS reads Env, failing with the name of any missing variable.
func EnvFromOS() (Env, error) {
	get := func(k string) string { return os.Getenv(k) }
	e := Env{
		PodName: get("POD_NAME"), Namespace: get("POD_NAMESPACE"), Cluster: get("CLUSTER_NAME"),
		InstancesService: get("KURA_INSTANCES_SERVICE"), Engine: kurav1alpha1.Engine(get("ENGINE")),
		AdminPassword: get("KURA_ADMIN_PASSWORD"), ReplicationPassword: get("KURA_REPL_PASSWORD"),
		AgentPassword: get("KURA_AGENT_PASSWORD"), RootPassword: get("KURA_ROOT_PASSWORD"),
	}
	for k, v := range map[string]string{
		"POD_NAME": e.PodName, "POD_NAMESPACE": e.Namespace, "CLUSTER_NAME": e.Cluster,
		"KURA_INSTANCES_SERVICE": e.InstancesService, "ENGINE": string(e.Engine),
		"KURA_ADMIN_PASSWORD": e.AdminPassword, "KURA_REPL_PASSWORD": e.ReplicationPassword,
		"KURA_AGENT_PASSWORD": e.AgentPassword, "KURA_ROOT_PASSWORD": e.RootPassword,
	} {
		if v == "" {
			return e, fmt.Errorf("environment variable %s is not set", k)
		}
	}
	rest, ok := strings.CutPrefix(e.PodName, e.Cluster+"-")
	n, err := strconv.Atoi(rest)
	if !ok || err != nil || n < 0 {
		return e, fmt.Errorf("POD_NAME %q is not <cluster>-<ordinal> for cluster %q", e.PodName, e.Cluster)
	}
	e.Ordinal = int32(n)
	return e, nil
}

// Host is the instance's stable DNS name.
func (e Env) Host() string {
	return fmt.Sprintf("%s.%s.%s.svc.cluster.local", e.PodName, e.InstancesService, e.Namespace)
}

// InitPaths are where `kura init` writes; tests point them at temporary directories.
type InitPaths struct {
	DataDir      string
	InstanceFile string
}

// DefaultInitPaths are the paths inside an instance Pod.
var DefaultInitPaths = InitPaths{DataDir: mycnf.DataDir, InstanceFile: mycnf.InstanceFile}

// Init writes the per-instance config and initialises an empty data directory with the
// accounts (binary logging off). It is idempotent: a restarted Pod keeps its data.
func Init(ctx context.Context, e Env, paths InitPaths, opts engine.InitOptions) (initialised bool, err error) {
	if err := os.MkdirAll(filepath.Dir(paths.InstanceFile), 0o755); err != nil {
		return false, fmt.Errorf("failed to create %s: %w", filepath.Dir(paths.InstanceFile), err)
	}
	text := mycnf.Instance(e.Engine, e.Ordinal, e.Host())
	if err := os.WriteFile(paths.InstanceFile, []byte(text), 0o644); err != nil {
		return false, fmt.Errorf("failed to write %s: %w", paths.InstanceFile, err)
	}
	accounts := engine.StandardAccounts(e.AdminPassword, e.ReplicationPassword, e.AgentPassword, e.RootPassword)
	return engine.InitDataDir(ctx, e.Engine, paths.DataDir, accounts, opts)
}

// RunInit is `kura init`.
func RunInit(ctx context.Context) error {
	e, err := EnvFromOS()
	if err != nil {
		return err
	}
	done, err := Init(ctx, e, DefaultInitPaths, engine.InitOptions{Output: os.Stderr})
	if err != nil {
		return err
	}
	if done {
		fmt.Fprintf(os.Stderr, "kura init: initialised %s for %s (server_id %d)\n", mycnf.DataDir, e.PodName, mycnf.ServerIDBase+int(e.Ordinal))
	} else {
		fmt.Fprintf(os.Stderr, "kura init: %s already initialised; kept\n", mycnf.DataDir)
	}
	return nil
}
