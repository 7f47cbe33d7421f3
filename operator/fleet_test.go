package operator

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/internal/contract"
	"github.com/kura-db/kura/internal/metrics"
)

// requestCounter counts the operator's API requests by method and path.
type requestCounter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *requestCounter) wrap(cfg *rest.Config) *rest.Config {
	cfg = rest.CopyConfig(cfg)
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
		return roundTripper(func(r *http.Request) (*http.Response, error) {
			c.mu.Lock()
			c.n[r.Method+" "+r.URL.Path]++
			c.mu.Unlock()
			return rt.RoundTrip(r)
		})
	}
	return cfg
}

// count returns how many requests matched method and a path containing every part.
func (c *requestCounter) count(method string, parts ...string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	total := 0
	for k, v := range c.n {
		m, path, _ := strings.Cut(k, " ")
		ok := m == method
		for _, p := range parts {
			ok = ok && strings.Contains(path, p)
		}
		if ok {
			total += v
		}
	}
	return total
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func startManager(t *testing.T, cfg *rest.Config, args ...string) ctrl.Manager {
	t.Helper()
	o, err := ParseFlags(append([]string{"--kura-image=kura:dev", "--health-probe-bind-address=0", "--metrics-bind-address=0"}, args...))
	if err != nil {
		t.Fatal(err)
	}
	o.skipNameValidation = true
	mgr, err := NewManager(cfg, o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	if !mgr.GetCache().WaitForCacheSync(ctx) {
		t.Fatal("caches did not sync")
	}
	return mgr
}

func passes(key types.NamespacedName) float64 {
	return testutil.ToFloat64(metrics.Passes.WithLabelValues(key.Namespace, key.Name, "ok")) +
		testutil.ToFloat64(metrics.Passes.WithLabelValues(key.Namespace, key.Name, "error"))
}

// An idle cluster costs its interval's passes and nothing more: the loop's own status writes
// neither poke the loop nor wake the reconciler, and a pass that changes nothing writes
// nothing. The cluster has no Pods (envtest runs no kubelet), so every pass sees unreachable
// instances, the fleet benchmark's steady state.
func TestIdleClusterCostsOnlyItsInterval(t *testing.T) {
	env := testenv(t)
	ctx := context.Background()
	counter := &requestCounter{n: map[string]int{}}
	const interval = time.Second
	startManager(t, counter.wrap(env.Config), "--clustering-interval="+interval.String())
	c, key := newSinkCluster(t, env.Client)

	// Wait for the reconciler and the loop to have published once, then for the status to
	// settle (the loop's first passes record what they see).
	eventually(t, 30*time.Second, "the loop published", func() bool {
		got := &kurav1alpha1.MySQLCluster{}
		return env.Client.Get(ctx, key, got) == nil && got.Status.State != "" && got.Status.ObservedGeneration == c.Generation
	})
	time.Sleep(3 * interval)

	const window = 6 * interval
	p0 := passes(key)
	writes0 := counter.count(http.MethodPatch, "/mysqlclusters/", "/status")
	puts0 := counter.count(http.MethodPatch) + counter.count(http.MethodPut) + counter.count(http.MethodPost)
	time.Sleep(window)
	got := passes(key) - p0
	if max := float64(window/interval) + 1; got > max || got < 2 {
		t.Errorf("%.0f clustering passes in %s at a %s interval; want between 2 and %.0f (status writes must not poke the loop)", got, window, interval, max)
	}
	if w := counter.count(http.MethodPatch, "/mysqlclusters/", "/status") - writes0; w != 0 {
		t.Errorf("%d status writes while nothing changed; want 0", w)
	}
	if w := counter.count(http.MethodPatch) + counter.count(http.MethodPut) + counter.count(http.MethodPost) - puts0; w != 0 {
		t.Errorf("%d writes of any kind while nothing changed; want 0: %v", w, counter.n)
	}

	// A spec change is a real change: the reconciler runs and the loop is poked at once.
	before := passes(key)
	cur := &kurav1alpha1.MySQLCluster{}
	if err := env.Client.Get(ctx, key, cur); err != nil {
		t.Fatal(err)
	}
	cur.Spec.MySQLD.Config = map[string]string{"max_connections": "300"}
	if err := env.Client.Update(ctx, cur); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the spec change reconciled", func() bool {
		got := &kurav1alpha1.MySQLCluster{}
		return env.Client.Get(ctx, key, got) == nil && got.Status.ObservedGeneration == cur.Generation
	})
	if passes(key) == before {
		t.Error("no clustering pass after a spec change")
	}
}

// The cache holds only the Secrets Kura created (labelled kura.dev/cluster): the manager's
// client does not serve any other Secret of a watched namespace, while the API reader (used
// for the Secrets a spec names) reads it.
func TestCacheServesOnlyKurasSecrets(t *testing.T) {
	env := testenv(t)
	ctx := context.Background()
	mgr := startManager(t, env.Config)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "cache-"}}
	if err := env.Client.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	foreign := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: "someone-elses"}, StringData: map[string]string{"token": "x"}}
	mine := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: "shop-credentials",
		Labels: map[string]string{contract.LabelCluster: "shop"}}, StringData: map[string]string{"token": "y"}}
	for _, s := range []*corev1.Secret{foreign, mine} {
		if err := env.Client.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 10*time.Second, "the labelled Secret is cached", func() bool {
		return mgr.GetClient().Get(ctx, types.NamespacedName{Namespace: ns.Name, Name: mine.Name}, &corev1.Secret{}) == nil
	})
	err := mgr.GetClient().Get(ctx, types.NamespacedName{Namespace: ns.Name, Name: foreign.Name}, &corev1.Secret{})
	if !apierrors.IsNotFound(err) {
		t.Errorf("the cached client served an unlabelled Secret (err=%v); want NotFound", err)
	}
	var list corev1.SecretList
	if err := mgr.GetClient().List(ctx, &list); err != nil {
		t.Fatal(err)
	}
	for _, s := range list.Items {
		if _, ok := s.Labels[contract.LabelCluster]; !ok {
			t.Errorf("the cache holds Secret %s/%s without Kura's label", s.Namespace, s.Name)
		}
	}
	if err := mgr.GetAPIReader().Get(ctx, types.NamespacedName{Namespace: ns.Name, Name: foreign.Name}, &corev1.Secret{}); err != nil {
		t.Errorf("the API reader could not read a Secret by name: %v", err)
	}
	// The same holds for Pods and ConfigMaps.
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: "web"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "web"}}}}
	if err := env.Client.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	var pods corev1.PodList
	if err := mgr.GetClient().List(ctx, &pods); err != nil {
		t.Fatal(err)
	}
	if len(pods.Items) != 0 {
		t.Errorf("the cache holds %d Pods Kura does not own", len(pods.Items))
	}
}

func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting until %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
