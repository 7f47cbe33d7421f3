package operator

import (
	"context"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	ctrl "sigs.k8s.io/controller-runtime"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/internal/clustering"
	"github.com/kura-db/kura/internal/contract"
	"github.com/kura-db/kura/internal/engine"
	"github.com/kura-db/kura/internal/events"
	"github.com/kura-db/kura/internal/metrics"
)

// Defaults used when a stored object predates a schema default.
const (
	defaultMaxLag        = 30 * time.Second
	defaultFailoverGrace = 3 * time.Second
	defaultDownGrace     = time.Second
	defaultApplyTimeout  = 60 * time.Second
)

func durationOr(d *metav1.Duration, def time.Duration) time.Duration {
	if d == nil {
		return def
	}
	return d.Duration
}

// clusterLoops runs one clustering loop per MySQLCluster, each in its own goroutine, so a slow
// or unreachable cluster never delays another. Pod changes poke the loop of their cluster.
type clusterLoops struct {
	mgr ctrl.Manager
	o   Options
	rec events.Recorder

	mu      sync.Mutex
	running map[types.NamespacedName]*runningLoop
	hooked  bool
}

type runningLoop struct {
	loop   *clustering.Loop
	src    *kubeSource
	cancel context.CancelFunc
	// generation is the spec generation the loop was last poked for.
	generation int64
}

func newClusterLoops(mgr ctrl.Manager, o Options, rec events.Recorder) *clusterLoops {
	return &clusterLoops{mgr: mgr, o: o, rec: rec, running: map[types.NamespacedName]*runningLoop{}}
}

// Ensure starts the cluster's loop if it is not running, and pokes it when the spec changed.
// Status writes (every pass publishes one) also reach the reconciler; poking on those would
// make passes run back to back under writes, so they do not poke.
func (l *clusterLoops) Ensure(ctx context.Context, c *kurav1alpha1.MySQLCluster) {
	key := types.NamespacedName{Namespace: c.Namespace, Name: c.Name}
	l.hookPods(ctx)
	l.mu.Lock()
	defer l.mu.Unlock()
	if r, ok := l.running[key]; ok {
		if r.generation != c.Generation {
			r.generation = c.Generation
			r.loop.Poke()
		}
		return
	}
	// A short connect timeout: an unreachable primary costs each pass at most this much,
	// which keeps failover detection fine-grained (docs/clustering.md, "Tunables").
	memo := &executedMemo{}
	src := &kubeSource{client: l.mgr.GetClient(), direct: l.mgr.GetAPIReader(), key: key, memo: memo, engineOptions: engine.Options{ConnectTimeout: 500 * time.Millisecond}}
	sink := &kubeSink{client: l.mgr.GetClient(), reader: l.mgr.GetAPIReader(), key: key, rec: l.rec, memo: memo}
	loop := clustering.NewLoop(src, sink, clustering.Options{
		Interval: l.o.ClusteringInterval,
		Log:      quietPasses(ctrl.Log.WithName("clustering").WithValues("mysqlcluster", key.String())),
	})
	lctx, cancel := context.WithCancel(context.Background())
	l.running[key] = &runningLoop{loop: loop, src: src, cancel: cancel, generation: c.Generation}
	go func() {
		defer src.close()
		_ = loop.Run(lctx)
	}()
}

// Forget stops the cluster's loop.
func (l *clusterLoops) Forget(key types.NamespacedName) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if r, ok := l.running[key]; ok {
		r.cancel()
		delete(l.running, key)
	}
	metrics.Forget(key.Namespace, key.Name)
}

// stopAll stops every loop (operator shutdown or lost leadership).
func (l *clusterLoops) stopAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for k, r := range l.running {
		r.cancel()
		delete(l.running, k)
	}
}

func (l *clusterLoops) poke(ns, cluster string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if r, ok := l.running[types.NamespacedName{Namespace: ns, Name: cluster}]; ok {
		r.loop.Poke()
	}
}

// hookPods pokes a cluster's loop on every change of one of its Pods (readiness, deletion),
// so failover does not wait for the next tick.
func (l *clusterLoops) hookPods(ctx context.Context) {
	l.mu.Lock()
	if l.hooked {
		l.mu.Unlock()
		return
	}
	l.hooked = true
	l.mu.Unlock()
	inf, err := l.mgr.GetCache().GetInformer(ctx, &corev1.Pod{})
	if err != nil {
		ctrl.Log.Error(err, "failed to watch Pods; clustering loops run on their interval only")
		return
	}
	handle := func(obj any) {
		if t, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
			obj = t.Obj
		}
		p, ok := obj.(*corev1.Pod)
		if !ok || !strings.EqualFold(p.Labels[contract.LabelName], "mysql") {
			return
		}
		if c := p.Labels[contract.LabelCluster]; c != "" {
			l.poke(p.Namespace, c)
		}
	}
	_, _ = inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    handle,
		UpdateFunc: func(_, n any) { handle(n) },
		DeleteFunc: handle,
	})
}
