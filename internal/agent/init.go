// Package agent is what runs inside an instance Pod: `kura init` (the init container that
// prepares the instance, cloning it from a peer when the cluster holds data) and `kura agent`
// (the sidecar serving health, state, clone and re-clone endpoints). See docs/cloning.md.
package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/internal/contract"
	"github.com/kura-db/kura/internal/engine"
	"github.com/kura-db/kura/internal/mycnf"
)

// Env is what an instance Pod learns from its environment (the downward API and plain values;
// see internal/builder/statefulset.go) and, for the passwords, from the files of its
// credentials volume (contract.CredentialsDir): each container gets only the passwords it
// needs, so the others stay empty.
type Env struct {
	PodName, Namespace, Cluster, InstancesService string
	Engine                                        kurav1alpha1.Engine
	Ordinal                                       int32
	OperatorPassword, ReplicationPassword         string
	AgentPassword, RootPassword                   string
	// AgentToken is the agents' API token (not a database password).
	AgentToken string
	// AdminPassword and AppPassword are the users' accounts; Database is the app's database.
	AdminPassword, AppPassword, Database string
	// Bootstrap names the backup a cluster with spec.bootstrap is seeded from (empty
	// otherwise).
	Bootstrap string
	// CA is the cluster's CA certificate when the Pod mounts it (contract.TLSCAFile, TLS
	// enabled): the peers' agents are then asked over HTTPS, verified for their DNS names.
	CA []byte
}

// Credentials are the accounts' passwords for engine.StandardAccounts.
func (e Env) Credentials() engine.Credentials {
	return engine.Credentials{Operator: e.OperatorPassword, Replication: e.ReplicationPassword, Agent: e.AgentPassword,
		Root: e.RootPassword, Admin: e.AdminPassword, App: e.AppPassword, Database: e.Database}
}

// EnvFromOS is LoadEnv with the passwords `kura init` needs, from $KURA_CREDENTIALS_DIR or
// else contract.CredentialsDir.
func EnvFromOS() (Env, error) {
	dir := os.Getenv(EnvCredentialsDir)
	if dir == "" {
		dir = contract.CredentialsDir
	}
	return LoadEnv(dir, contract.InitCredentialKeys)
}

// LoadEnv reads Env from the environment and the passwords named by keys from files in
// credDir, failing with the name of any missing variable or file.
func LoadEnv(credDir string, keys []string) (Env, error) {
	get := func(k string) string { return os.Getenv(k) }
	e := Env{
		PodName: get(contract.EnvPodName), Namespace: get(contract.EnvPodNamespace), Cluster: get(contract.EnvClusterName),
		InstancesService: get(contract.EnvInstancesService), Engine: kurav1alpha1.Engine(get(contract.EnvEngine)),
		Database: get(contract.EnvDatabase), Bootstrap: get(contract.EnvBootstrap),
	}
	for _, k := range []string{contract.EnvPodName, contract.EnvPodNamespace, contract.EnvClusterName,
		contract.EnvInstancesService, contract.EnvEngine, contract.EnvDatabase} {
		if get(k) == "" {
			return e, fmt.Errorf("environment variable %s is not set", k)
		}
	}
	if err := readCredentials(&e, credDir, keys); err != nil {
		return e, err
	}
	ca, err := readCA(contract.TLSCAFile)
	if err != nil {
		return e, err
	}
	if ca != nil {
		if _, err := engine.ClientTLS(ca, ""); err != nil {
			return e, fmt.Errorf("%s: %w", contract.TLSCAFile, err)
		}
		e.CA = ca
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
var DefaultInitPaths = InitPaths{DataDir: contract.DataDir, InstanceFile: contract.InstanceFile}

// InitOptions tune Init. The zero value is what `kura init` uses in a Pod.
type InitOptions struct {
	// Engine tunes the initialisation of an empty data directory.
	Engine engine.InitOptions
	// Peers are asked for a donor; nil means PeersOf(env) (ordinals 0..8 but this one).
	Peers []Peer
	// DefaultsFile is the server's option file (default contract.ConfigFile).
	DefaultsFile string
	// AskTimeout bounds one peer's answer (default 2s).
	AskTimeout time.Duration
	// DiscoveryWait is how long an instance other than ordinal 0 waits for at least one peer
	// to answer before it concludes the cluster is new (default 60s): in a new cluster every
	// instance starts at once and instance 0 answers once it is up.
	DiscoveryWait time.Duration
	// Clone tunes the copy (engine, defaults file and admin password are filled in).
	Clone CloneOptions
	// CloneAttempts is how many times a failed clone is tried in one run (default 8);
	// RetryBackoff is the first wait between attempts (default 5s), doubled each time up
	// to a minute.
	CloneAttempts int
	RetryBackoff  time.Duration
	// Log receives progress lines (default stderr).
	Log io.Writer
	// Now is the clock for the aside directory's name (default time.Now).
	Now func() time.Time
	// BootstrapFile is the restore Job of a cluster with spec.bootstrap (default
	// contract.BootstrapFile); the operator removes it once the cluster is restored.
	BootstrapFile string
	// Restore runs that Job on the first instance (required when the file exists).
	Restore RestoreFunc
}

// Outcome says what Init did with the data directory.
type Outcome string

// Outcomes of Init.
const (
	Kept        Outcome = "kept"
	Initialised Outcome = "initialised"
	Cloned      Outcome = "cloned"
	Restored    Outcome = "restored"
)

// RestoreFunc restores the bootstrap backup into an empty data directory (backup/restore,
// given to `kura init` by the command, which knows storage).
type RestoreFunc func(ctx context.Context, datadir string, e Env) error

// bootstrapWait is how long an instance of a cluster being restored waits for a donor: the
// first instance's restore may take hours for a large backup.
const bootstrapWait = 24 * time.Hour

// Init writes the per-instance config and prepares the data directory (docs/cloning.md):
//   - a directory carrying the cloning marker holds a partial copy: it is emptied and cloned
//     again;
//   - a directory carrying the re-clone marker is moved aside and cloned afresh from the
//     named donor (or the best one);
//   - an initialised directory is kept;
//   - an empty one is cloned from the best donor when a peer holds data, and initialised
//     empty (accounts, binary logging off) when none does.
func Init(ctx context.Context, e Env, paths InitPaths, opts InitOptions) (Outcome, error) {
	opts = opts.withDefaults(e)
	if err := os.MkdirAll(filepath.Dir(paths.InstanceFile), 0o755); err != nil {
		return "", fmt.Errorf("failed to create %s: %w", filepath.Dir(paths.InstanceFile), err)
	}
	text := mycnf.Instance(e.Engine, e.Ordinal, e.Host())
	if err := os.WriteFile(paths.InstanceFile, []byte(text), 0o644); err != nil {
		return "", fmt.Errorf("failed to write %s: %w", paths.InstanceFile, err)
	}
	dir := paths.DataDir
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", fmt.Errorf("failed to create %s: %w", dir, err)
	}
	if err := migrateAside(dir, opts.Log); err != nil {
		return "", err
	}
	// A failed clone is retried here, with back-off, rather than by exiting: an init
	// container that exits is restarted by Kubernetes with a growing back-off
	// (Init:CrashLoopBackOff) and every restart starts the copy over anyway.
	wait := opts.RetryBackoff
	for attempt := 1; ; attempt++ {
		out, err := prepareData(ctx, e, dir, opts)
		var failed *cloneFailure
		if err == nil || !errors.As(err, &failed) || attempt >= opts.CloneAttempts || ctx.Err() != nil {
			return out, err
		}
		fmt.Fprintf(opts.Log, "kura init: clone attempt %d of %d failed: %v; retrying in %s\n", attempt, opts.CloneAttempts, err, wait)
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("failed to clone: %w (after %v)", ctx.Err(), err)
		case <-time.After(wait):
		}
		wait = min(2*wait, maxRetryBackoff)
	}
}

// maxRetryBackoff caps the wait between clone attempts.
const maxRetryBackoff = time.Minute

// cloneFailure marks an error of a clone attempt, which Init retries.
type cloneFailure struct{ err error }

func (c *cloneFailure) Error() string { return c.err.Error() }
func (c *cloneFailure) Unwrap() error { return c.err }

func retryable(err error) error {
	if err == nil {
		return nil
	}
	return &cloneFailure{err: err}
}

// prepareData is one attempt at preparing the data directory (Init).
func prepareData(ctx context.Context, e Env, dir string, opts InitOptions) (Outcome, error) {
	if e.Bootstrap != "" {
		if _, err := os.Stat(opts.BootstrapFile); err == nil {
			return prepareBootstrap(ctx, e, dir, opts)
		}
	}
	return prepareOwn(ctx, e, dir, opts)
}

// prepareBootstrap prepares an instance of a cluster being seeded from a backup (docs/backup.md,
// "Restore"): no instance ever initialises an empty data directory. The first instance
// restores the backup unless it holds data already (a finished restore) or a peer does (the
// cluster runs and this is a replacement); a partial restore is thrown away and started over.
// The others clone, waiting as long as the restore takes.
func prepareBootstrap(ctx context.Context, e Env, dir string, opts InitOptions) (Outcome, error) {
	if _, err := os.Stat(filepath.Join(dir, contract.RestoreMarker)); err == nil {
		fmt.Fprintf(opts.Log, "kura init: %s holds a partial restore; starting over\n", dir)
		if err := clearData(dir); err != nil {
			return "", err
		}
	} else if engine.Initialized(dir) {
		return prepareOwn(ctx, e, dir, opts)
	}
	if e.Ordinal > 0 {
		opts.DiscoveryWait = max(opts.DiscoveryWait, bootstrapWait)
		fmt.Fprintf(opts.Log, "kura init: the cluster is seeded from backup %s: waiting to clone from an instance that holds it\n", e.Bootstrap)
		return cloneOrInit(ctx, e, dir, opts, "")
	}
	out, err := cloneFromPeers(ctx, e, dir, opts, "", false)
	if err != nil || out != "" {
		return out, err
	}
	if opts.Restore == nil {
		return "", errors.New("failed to prepare the data directory: the cluster is seeded from a backup but this kura cannot restore")
	}
	fmt.Fprintf(opts.Log, "kura init: no peer holds data: restoring backup %s\n", e.Bootstrap)
	if err := opts.Restore(ctx, dir, e); err != nil {
		return "", err
	}
	return Restored, nil
}

// prepareOwn prepares the data directory of an instance that is not being restored.
func prepareOwn(ctx context.Context, e Env, dir string, opts InitOptions) (Outcome, error) {
	var cloning cloningState
	partial, err := readMarker(dir, CloningMarker, &cloning)
	if err != nil {
		return "", err
	}
	if partial {
		fmt.Fprintf(opts.Log, "kura init: %s holds a partial copy from %s; starting over\n", dir, cloning.Donor)
		if err := clearData(dir); err != nil {
			return "", err
		}
		return cloneOrInit(ctx, e, dir, opts, cloning.Donor)
	}
	var reclone RecloneRequest
	requested, err := readMarker(dir, RecloneMarker, &reclone)
	if err != nil {
		return "", err
	}
	if requested {
		fmt.Fprintf(opts.Log, "kura init: re-clone requested (donor %q, reason %q)\n", reclone.Donor, reclone.Reason)
		return cloneOrInit(ctx, e, dir, opts, reclone.Donor)
	}
	if engine.Initialized(dir) {
		return Kept, nil
	}
	out, err := cloneFromPeers(ctx, e, dir, opts, "", false)
	if err != nil || out != "" {
		return out, err
	}
	return initEmpty(ctx, e, dir, opts)
}

// cloneOrInit is a required clone; it initialises empty only when the cluster provably holds
// no transaction at all (its writable primary's executed set is empty).
func cloneOrInit(ctx context.Context, e Env, dir string, opts InitOptions, prefer string) (Outcome, error) {
	out, err := cloneFromPeers(ctx, e, dir, opts, prefer, true)
	if err != nil || out != "" {
		return out, err
	}
	return initEmpty(ctx, e, dir, opts)
}

func initEmpty(ctx context.Context, e Env, dir string, opts InitOptions) (Outcome, error) {
	accounts := engine.StandardAccounts(e.Credentials())
	if _, err := engine.InitDataDir(ctx, e.Engine, dir, accounts, opts.Engine); err != nil {
		return "", err
	}
	return Initialised, nil
}

func (o InitOptions) withDefaults(e Env) InitOptions {
	if o.Log == nil {
		o.Log = os.Stderr
	}
	if o.Peers == nil {
		o.Peers = PeersOf(e, contract.AgentPort)
	}
	if o.DefaultsFile == "" {
		o.DefaultsFile = contract.ConfigFile
	}
	if o.AskTimeout <= 0 {
		o.AskTimeout = 2 * time.Second
	}
	if o.DiscoveryWait <= 0 {
		o.DiscoveryWait = 60 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.BootstrapFile == "" {
		o.BootstrapFile = contract.BootstrapFile
	}
	if o.CloneAttempts <= 0 {
		o.CloneAttempts = 8
	}
	if o.RetryBackoff <= 0 {
		o.RetryBackoff = 5 * time.Second
	}
	o.Clone.Engine = e.Engine
	o.Clone.DefaultsFile = o.DefaultsFile
	o.Clone.OperatorPassword = e.OperatorPassword
	if o.Clone.Log == nil {
		o.Clone.Log = o.Log
	}
	return o
}

// cloneFromPeers asks the peers for a donor and clones from it. Without a donor it returns
// "" (initialise empty) — or an error when a clone is required (re-clone, partial copy).
func cloneFromPeers(ctx context.Context, e Env, dir string, opts InitOptions, prefer string, required bool) (Outcome, error) {
	deadline := time.Now().Add(opts.DiscoveryWait)
	for {
		states := AskPeers(ctx, opts.Peers, opts.AskTimeout)
		answered := 0
		for _, s := range states {
			if s.Answered() {
				answered++
			}
		}
		if donor, ok := ChooseDonor(e.Engine, states, prefer); ok {
			if prefer != "" && donor.Peer.Name != prefer {
				fmt.Fprintf(opts.Log, "kura init: requested donor %s holds no data or did not answer; using %s\n", prefer, donor.Peer.Name)
			}
			return cloneFrom(ctx, e, dir, opts, donor)
		}
		if required && emptyCluster(states) {
			return "", asideForEmptyCluster(dir, opts)
		}
		waitForAnswer := e.Ordinal > 0 && answered == 0
		undecided := undecidedPeers(states)
		if !required && !waitForAnswer && len(undecided) == 0 {
			fmt.Fprintf(opts.Log, "kura init: %d peer(s) answered, none holds data\n", answered)
			return "", nil
		}
		if !required && len(undecided) > 0 {
			// Never initialise an empty volume (it may be the primary's) while a peer that
			// answered cannot yet say what it holds: its server may hold the cluster's data.
			if time.Now().After(deadline) {
				return "", retryable(fmt.Errorf("failed to prepare the data directory: %s answered but their servers could not yet say what they hold; not initialising an empty instance",
					strings.Join(undecided, ", ")))
			}
			fmt.Fprintf(opts.Log, "kura init: waiting for %s to say what they hold\n", strings.Join(undecided, ", "))
		} else if time.Now().After(deadline) {
			if required {
				return "", retryable(fmt.Errorf("failed to clone: no peer holding data answered within %s (%d answered)", opts.DiscoveryWait, answered))
			}
			fmt.Fprintf(opts.Log, "kura init: no peer answered within %s\n", opts.DiscoveryWait)
			return "", nil
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("failed to find a donor: %w", ctx.Err())
		case <-time.After(2 * time.Second):
		}
	}
}

// RunInit is `kura init`; restore seeds the first instance of a cluster with spec.bootstrap.
func RunInit(ctx context.Context, credDir string, restore RestoreFunc) error {
	e, err := LoadEnv(credDir, contract.InitCredentialKeys)
	if err != nil {
		return err
	}
	out, err := Init(ctx, e, DefaultInitPaths, InitOptions{Engine: engine.InitOptions{Output: os.Stderr}, Restore: restore})
	if err != nil {
		return err
	}
	switch out {
	case Initialised:
		fmt.Fprintf(os.Stderr, "kura init: initialised %s for %s (server_id %d)\n", contract.DataDir, e.PodName, mycnf.ServerIDBase+int(e.Ordinal))
	case Cloned:
		fmt.Fprintf(os.Stderr, "kura init: cloned %s for %s (server_id %d)\n", contract.DataDir, e.PodName, mycnf.ServerIDBase+int(e.Ordinal))
	case Restored:
		fmt.Fprintf(os.Stderr, "kura init: restored %s for %s from backup %s (server_id %d)\n", contract.DataDir, e.PodName, e.Bootstrap, mycnf.ServerIDBase+int(e.Ordinal))
	default:
		fmt.Fprintf(os.Stderr, "kura init: %s already initialised; kept\n", contract.DataDir)
	}
	return nil
}

// cloneFrom clones the data directory from donor, keeping the instance's own data aside.
func cloneFrom(ctx context.Context, e Env, dir string, opts InitOptions, donor PeerState) (Outcome, error) {
	if err := moveAside(dir, opts.Now(), opts.Log); err != nil {
		return "", err
	}
	// From here the directory holds no data of its own: it is a clone in progress.
	if err := writeMarker(dir, CloningMarker, cloningState{Donor: donor.Peer.Name, Started: time.Now().UTC()}); err != nil {
		return "", err
	}
	if err := removeMarker(dir, RecloneMarker); err != nil {
		return "", err
	}
	if e.Engine == kurav1alpha1.EngineMySQL {
		out, err := cloneMySQL(ctx, e, dir, donor.Peer, opts)
		return out, retryable(err)
	}
	if _, err := CloneInto(ctx, donor.Peer.Client, donor.Peer.Name, dir, opts.Clone); err != nil {
		return "", retryable(err)
	}
	return Cloned, nil
}

// asideForEmptyCluster prepares an empty initialisation in place of a clone: the primary has no
// transaction, so an empty instance is an exact copy. The instance's own data still goes aside,
// as for any re-clone.
func asideForEmptyCluster(dir string, opts InitOptions) error {
	if err := moveAside(dir, opts.Now(), opts.Log); err != nil {
		return err
	}
	for _, m := range []string{RecloneMarker, CloningMarker} {
		if err := removeMarker(dir, m); err != nil {
			return err
		}
	}
	fmt.Fprintf(opts.Log, "kura init: the cluster's writable primary holds no transaction: initialising an empty instance instead of cloning\n")
	return nil
}

// emptyCluster reports whether a writable primary answered with an empty executed set: then
// no instance can hold an acknowledged transaction.
// undecidedPeers names the peers whose agent answered with an initialised data directory
// whose server could not report what it holds (starting, recovering).
func undecidedPeers(states []PeerState) []string {
	var out []string
	for _, p := range states {
		if p.Answered() && p.State.Initialized && (p.Err != nil || !p.State.Reachable) {
			out = append(out, p.Peer.Name)
		}
	}
	return out
}

func emptyCluster(states []PeerState) bool {
	for _, p := range states {
		if p.Err == nil && p.State.Reachable && p.State.Initialized && !p.State.ReadOnly && p.State.Executed == "" {
			return true
		}
	}
	return false
}
