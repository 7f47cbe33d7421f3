package operator

import (
	"context"
	"sync"

	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/internal/events"
)

// clusterLoops runs one clustering loop per MySQLCluster. Each loop has its own goroutine, so a
// slow or unreachable cluster never delays another.
type clusterLoops struct {
	mgr ctrl.Manager
	o   Options
	rec events.Recorder

	mu    sync.Mutex
	loops map[types.NamespacedName]context.CancelFunc
}

func newClusterLoops(mgr ctrl.Manager, o Options, rec events.Recorder) *clusterLoops {
	return &clusterLoops{mgr: mgr, o: o, rec: rec, loops: map[types.NamespacedName]context.CancelFunc{}}
}

// Ensure starts the cluster's loop if it is not running.
func (l *clusterLoops) Ensure(_ context.Context, c *kurav1alpha1.MySQLCluster) {
	key := types.NamespacedName{Namespace: c.Namespace, Name: c.Name}
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.loops[key]; ok {
		return
	}
	_, cancel := context.WithCancel(context.Background())
	l.loops[key] = cancel
}

// Forget stops the cluster's loop.
func (l *clusterLoops) Forget(key types.NamespacedName) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if cancel, ok := l.loops[key]; ok {
		cancel()
		delete(l.loops, key)
	}
}
