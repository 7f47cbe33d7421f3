// Package operator wires Kura's controllers into a controller-runtime manager: flags, leader
// election, health and readiness endpoints, metrics, structured logs and the namespaces to
// watch.
package operator

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"go.uber.org/zap/zapcore"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/kura-db/kura/controllers"
	"github.com/kura-db/kura/internal/builder"
	"github.com/kura-db/kura/internal/events"
	"github.com/kura-db/kura/internal/scheme"
)

// Options are the operator's flags.
type Options struct {
	Namespaces         []string
	ClusteringInterval time.Duration
	LeaderElect        bool
	LeaderElectionID   string
	LeaderElectionNS   string
	// LeaseDuration, RenewDeadline and RetryPeriod tune leader election (see ParseFlags).
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
	MetricsBindAddress                        string
	// MetricsSecure serves metrics over HTTPS to authenticated, authorized callers only.
	MetricsSecure bool
	// MetricsCertDir holds tls.crt and tls.key; empty: a self-signed certificate.
	MetricsCertDir         string
	HealthProbeBindAddress string
	KuraImage              string
	// MaxConcurrentReconciles is how many objects of one kind are reconciled at once.
	MaxConcurrentReconciles int
	// APIQPS and APIBurst bound the operator's requests to the API server (client-side rate
	// limit); the server's own priority and fairness still applies.
	APIQPS     float64
	APIBurst   int
	ZapOptions zap.Options

	// skipNameValidation lets tests build more than one manager in a process.
	skipNameValidation bool
}

// ParseFlags parses the operator's command line.
func ParseFlags(args []string) (Options, error) {
	fs := flag.NewFlagSet("kura operator", flag.ContinueOnError)
	var o Options
	var namespaces string
	fs.StringVar(&namespaces, "namespaces", os.Getenv("KURA_WATCH_NAMESPACES"), "comma-separated namespaces to watch; empty watches all namespaces")
	fs.DurationVar(&o.ClusteringInterval, "clustering-interval", time.Second, "how often each cluster's topology is observed when nothing else wakes its loop")
	fs.BoolVar(&o.LeaderElect, "leader-elect", false, "elect a leader so that only one operator replica acts at a time")
	fs.StringVar(&o.LeaderElectionID, "leader-election-id", "kura-operator.kura.dev", "name of the leader election Lease")
	fs.StringVar(&o.LeaderElectionNS, "leader-election-namespace", "", "namespace of the leader election Lease (default: the operator's own)")
	// Shorter than controller-runtime's 15 s / 10 s / 2 s: an operator lost with its node held
	// every cluster's failover back until its Lease expired. Two operators acting for a moment
	// would still be safe (each change of primary is a compare-and-swap on the term in
	// status), and a leader that cannot renew within the deadline stops acting first.
	fs.DurationVar(&o.LeaseDuration, "leader-election-lease-duration", 8*time.Second, "how long a leader's Lease is valid without renewal; another operator takes over after this")
	fs.DurationVar(&o.RenewDeadline, "leader-election-renew-deadline", 5*time.Second, "how long the leader keeps trying to renew before it stops acting")
	fs.DurationVar(&o.RetryPeriod, "leader-election-retry-period", time.Second, "how often leader election is retried and the Lease renewed")
	fs.StringVar(&o.MetricsBindAddress, "metrics-bind-address", ":8443", "address of the Prometheus metrics endpoint; 0 disables it")
	fs.BoolVar(&o.MetricsSecure, "metrics-secure", true, "serve metrics over HTTPS, only to callers whose bearer token the API server authenticates (TokenReview) and authorizes for get /metrics (SubjectAccessReview); false serves plain HTTP to anyone")
	fs.StringVar(&o.MetricsCertDir, "metrics-cert-dir", "", "folder holding tls.crt and tls.key for the metrics endpoint; empty: a self-signed certificate generated at start")
	fs.StringVar(&o.HealthProbeBindAddress, "health-probe-bind-address", ":8081", "address of /healthz and /readyz")
	fs.IntVar(&o.MaxConcurrentReconciles, "max-concurrent-reconciles", 4, "how many objects of each kind are reconciled at once")
	// controller-runtime's defaults (20/s, bursts of 30) hold a fleet back: creating one
	// cluster takes about ten requests, so a thousand clusters queued for 8 minutes on the
	// client's rate limiter alone (docs/benchmarks.md, "Fleet").
	fs.Float64Var(&o.APIQPS, "kube-api-qps", 100, "requests per second the operator may make to the API server (client-side limit)")
	fs.IntVar(&o.APIBurst, "kube-api-burst", 200, "requests the operator may make to the API server in a burst above --kube-api-qps")
	fs.StringVar(&o.KuraImage, "kura-image", os.Getenv("KURA_IMAGE"), "image holding the kura binary at /kura, copied into every instance Pod (required)")
	o.ZapOptions = zap.Options{Development: false, TimeEncoder: zapcore.RFC3339NanoTimeEncoder}
	o.ZapOptions.BindFlags(fs)
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	for _, n := range strings.Split(namespaces, ",") {
		if n = strings.TrimSpace(n); n != "" {
			o.Namespaces = append(o.Namespaces, n)
		}
	}
	if o.KuraImage == "" {
		return o, errors.New("--kura-image (or KURA_IMAGE) is required: the image holding the kura binary that instance Pods copy")
	}
	if o.LeaseDuration <= o.RenewDeadline || o.RenewDeadline <= o.RetryPeriod || o.RetryPeriod <= 0 {
		return o, fmt.Errorf("leader election needs lease duration (%s) > renew deadline (%s) > retry period (%s) > 0", o.LeaseDuration, o.RenewDeadline, o.RetryPeriod)
	}
	if o.MaxConcurrentReconciles < 1 {
		return o, fmt.Errorf("--max-concurrent-reconciles %d: use at least 1", o.MaxConcurrentReconciles)
	}
	if o.APIQPS <= 0 || o.APIBurst < 1 {
		return o, fmt.Errorf("--kube-api-qps %g and --kube-api-burst %d: use a positive rate and a burst of at least 1", o.APIQPS, o.APIBurst)
	}
	if o.ClusteringInterval < 100*time.Millisecond {
		return o, fmt.Errorf("--clustering-interval %s is too short; use at least 100ms", o.ClusteringInterval)
	}
	return o, nil
}

// Scheme returns the scheme the operator uses.
func Scheme() *runtime.Scheme { return scheme.New() }

// NewManager builds a manager with every controller registered.
func NewManager(cfg *rest.Config, o Options) (ctrl.Manager, error) {
	mo := ctrl.Options{
		Scheme:                        Scheme(),
		Metrics:                       metricsOptions(o),
		HealthProbeBindAddress:        o.HealthProbeBindAddress,
		LeaderElection:                o.LeaderElect,
		LeaderElectionID:              o.LeaderElectionID,
		LeaderElectionNamespace:       o.LeaderElectionNS,
		LeaderElectionReleaseOnCancel: true,
		LeaseDuration:                 &o.LeaseDuration,
		RenewDeadline:                 &o.RenewDeadline,
		RetryPeriod:                   &o.RetryPeriod,
		Cache:                         controllers.CacheOptions(),
		Controller:                    config.Controller{MaxConcurrentReconciles: o.MaxConcurrentReconciles, SkipNameValidation: &o.skipNameValidation},
	}
	if o.LeaderElect {
		lock, err := leaderLock(cfg, o)
		if err != nil {
			return nil, err
		}
		mo.LeaderElectionResourceLockInterface = lock
	}
	if len(o.Namespaces) > 0 {
		mo.Cache.DefaultNamespaces = map[string]cache.Config{}
		for _, n := range o.Namespaces {
			mo.Cache.DefaultNamespaces[n] = cache.Config{}
		}
	}
	mgr, err := ctrl.NewManager(cfg, mo)
	if err != nil {
		return nil, fmt.Errorf("failed to create manager: %w", err)
	}
	rec := events.Recorder{R: mgr.GetEventRecorder("kura-operator")}
	loops := newClusterLoops(mgr, o, rec)
	instanceOpts, err := instanceBuilderOptions(o)
	if err != nil {
		return nil, err
	}
	if err := (&controllers.MySQLClusterReconciler{
		Client:    mgr.GetClient(),
		APIReader: mgr.GetAPIReader(),
		Options:   instanceOpts,
		Recorder:  rec,
		Loops:     loops,
	}).SetupWithManager(mgr); err != nil {
		return nil, fmt.Errorf("failed to set up the MySQLCluster controller: %w", err)
	}
	if err := (&controllers.BackupScheduleReconciler{Client: mgr.GetClient(), Options: builder.Options{KuraImage: o.KuraImage}, Recorder: rec}).SetupWithManager(mgr); err != nil {
		return nil, fmt.Errorf("failed to set up the BackupSchedule controller: %w", err)
	}
	if err := (&controllers.BinlogArchiveReconciler{Client: mgr.GetClient(), Options: builder.Options{KuraImage: o.KuraImage}, Recorder: rec}).SetupWithManager(mgr); err != nil {
		return nil, fmt.Errorf("failed to set up the binary log archive controller: %w", err)
	}
	if err := (&controllers.BackupReconciler{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Options: builder.Options{KuraImage: o.KuraImage}, Recorder: rec}).SetupWithManager(mgr); err != nil {
		return nil, fmt.Errorf("failed to set up the Backup controller: %w", err)
	}
	if err := (&controllers.RestoreReconciler{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Recorder: rec}).SetupWithManager(mgr); err != nil {
		return nil, fmt.Errorf("failed to set up the Restore controller: %w", err)
	}
	if err := mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
		<-ctx.Done()
		loops.stopAll()
		return nil
	})); err != nil {
		return nil, fmt.Errorf("failed to register the clustering loops: %w", err)
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return nil, fmt.Errorf("failed to add health check: %w", err)
	}
	if err := mgr.AddReadyzCheck("informers", func(req *http.Request) error {
		if !mgr.GetCache().WaitForCacheSync(req.Context()) {
			return errors.New("informer caches not synced")
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("failed to add readiness check: %w", err)
	}
	return mgr, nil
}

// metricsOptions serves metrics over HTTPS with authentication and authorization through the
// API server (docs/metrics.md), unless --metrics-secure=false.
func metricsOptions(o Options) metricsserver.Options {
	m := metricsserver.Options{BindAddress: o.MetricsBindAddress}
	if o.MetricsSecure {
		m.SecureServing = true
		m.CertDir = o.MetricsCertDir
		m.FilterProvider = filters.WithAuthenticationAndAuthorization
	}
	return m
}

// Run runs the operator until ctx ends.
func Run(ctx context.Context, args []string) error {
	o, err := ParseFlags(args)
	if err != nil {
		return err
	}
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&o.ZapOptions)))
	log := ctrl.Log.WithName("operator")
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return fmt.Errorf("failed to load a kubeconfig: %w", err)
	}
	cfg.QPS, cfg.Burst = float32(o.APIQPS), o.APIBurst
	mgr, err := NewManager(cfg, o)
	if err != nil {
		return err
	}
	log.Info("starting", "namespaces", o.Namespaces, "clusteringInterval", o.ClusteringInterval, "kuraImage", o.KuraImage, "leaderElect", o.LeaderElect,
		"kubeAPIQPS", o.APIQPS, "kubeAPIBurst", o.APIBurst)
	return mgr.Start(ctx)
}

// leaderLock is the leader election Lease with a stable identity: the Pod's name (POD_NAME,
// else the host name), without the random suffix controller-runtime adds. An operator
// container that crashed and was restarted in the same Pod finds the Lease held by its own
// identity and takes it back at once, instead of waiting for it to expire (15 s) while no
// clustering loop runs; only one container of a Pod runs at a time, so two holders can never
// share the identity. Any other Pod still waits for the Lease to expire.
func leaderLock(cfg *rest.Config, o Options) (resourcelock.Interface, error) {
	id := os.Getenv("POD_NAME")
	if id == "" {
		h, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("failed to name this operator for leader election: %w", err)
		}
		id = h
	}
	ns := o.LeaderElectionNS
	if ns == "" {
		ns = os.Getenv("POD_NAMESPACE")
	}
	if ns == "" {
		b, err := os.ReadFile("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
		if err != nil {
			return nil, fmt.Errorf("failed to find the leader election namespace (set --leader-election-namespace): %w", err)
		}
		ns = strings.TrimSpace(string(b))
	}
	c := rest.CopyConfig(cfg)
	c.Timeout = 5 * time.Second // half the default renew deadline
	cs, err := kubernetes.NewForConfig(rest.AddUserAgent(c, "leader-election"))
	if err != nil {
		return nil, fmt.Errorf("failed to build the leader election client: %w", err)
	}
	lock, err := resourcelock.New(resourcelock.LeasesResourceLock, ns, o.LeaderElectionID, cs.CoreV1(), cs.CoordinationV1(),
		resourcelock.ResourceLockConfig{Identity: id})
	if err != nil {
		return nil, fmt.Errorf("failed to build the leader election lock: %w", err)
	}
	return lock, nil
}
