package controllers

import (
	"context"
	"fmt"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/internal/builder"
	"github.com/kura-db/kura/internal/events"
	"github.com/kura-db/kura/internal/testenv"
)

// The envtest tier: one real kube-apiserver and etcd for the package, with the reconcilers
// running in a manager. Each test works in its own namespace.
var (
	env   *testenv.Env
	k8s   client.Client
	loops = &recordingLoops{}
)

type recordingLoops struct {
	mu      sync.Mutex
	ensured map[types.NamespacedName]int
	forgot  map[types.NamespacedName]int
}

func (l *recordingLoops) Ensure(_ context.Context, c *kurav1alpha1.MySQLCluster) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ensured == nil {
		l.ensured = map[types.NamespacedName]int{}
	}
	l.ensured[client.ObjectKeyFromObject(c)]++
}

func (l *recordingLoops) Forget(k types.NamespacedName) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.forgot == nil {
		l.forgot = map[types.NamespacedName]int{}
	}
	l.forgot[k]++
}

func (l *recordingLoops) counts(k types.NamespacedName) (int, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ensured[k], l.forgot[k]
}

// restoreClock is the Restore reconciler's clock: the real time plus an offset a test moves
// forward (an in-place restore's kept volumes expire).
var restoreClock = &testClock{}

type testClock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}

// testInstanceOptions are the MySQLCluster reconciler's builder options: an operator in
// kura-system with the chart's selector labels.
var testInstanceOptions = builder.Options{KuraImage: "kura:test", OperatorNamespace: "kura-system",
	OperatorPodLabels: map[string]string{"app.kubernetes.io/name": "kura", "app.kubernetes.io/instance": "kura"}}

func TestMain(m *testing.M) {
	os.Exit(runSuite(m))
}

func runSuite(m *testing.M) int {
	if testingShort() {
		return m.Run()
	}
	var err error
	env, err = testenv.StartE()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = env.Stop() }()
	k8s = env.Client
	ctrl.SetLogger(zap.New(zap.UseDevMode(true), zap.WriteTo(os.Stderr), zap.Level(zapcore.Level(zapLevel()))))
	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{
		Scheme:                 env.Scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache:                  CacheOptions(), // as the operator runs: only Kura's objects cached
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	rec := events.Recorder{R: mgr.GetEventRecorder("kura")}
	if err := (&MySQLClusterReconciler{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Options: testInstanceOptions, Recorder: rec, Loops: loops}).SetupWithManager(mgr); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := (&BackupScheduleReconciler{Client: mgr.GetClient(), Options: builder.Options{KuraImage: "kura:test"}, Recorder: rec}).SetupWithManager(mgr); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := (&BackupReconciler{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Options: builder.Options{KuraImage: "kura:test"}, Recorder: rec,
		VerifyPoll: time.Second}).SetupWithManager(mgr); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := (&RestoreReconciler{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Recorder: rec, Now: restoreClock.Now}).SetupWithManager(mgr); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	stub := startArchiverStub()
	defer stub.Close()
	if err := (&BinlogArchiveReconciler{Client: mgr.GetClient(), Options: builder.Options{KuraImage: "kura:test"}, Recorder: rec,
		Port: stub.Listener.Addr().(*net.TCPAddr).Port, Interval: 300 * time.Millisecond}).SetupWithManager(mgr); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	code := m.Run()
	cancel()
	if err := <-done; err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return code
}

// newNamespace creates a namespace for one test.
func newNamespace(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("envtest tier: not run with -short (the unit tier)")
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "kura-test-"}}
	if err := k8s.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

// eventually polls cond until it returns nil or the deadline passes, then fails with the last
// error.
func eventually(t *testing.T, what string, cond func() error) {
	t.Helper()
	eventuallyWithin(t, 20*time.Second, what, cond)
}

// eventuallyWithin is eventually with its own deadline, for conditions a controller checks
// on a timer (a stuck backup Pod: every stuckCheckInterval).
func eventuallyWithin(t *testing.T, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		if err = cond(); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s: %v", what, err)
}

func reconcileRequest(ns, name string) ctrl.Request {
	return ctrl.Request{NamespacedName: types.NamespacedName{Namespace: ns, Name: name}}
}
