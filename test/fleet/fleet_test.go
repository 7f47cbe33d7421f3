// Package fleet benchmarks the operator holding a fleet of MySQLClusters against a real API
// server (envtest's kube-apiserver and etcd). See docs/benchmarks.md, "Fleet".
//
// What is real: the API server, etcd, the `kura operator` binary (built from this tree, run as
// its own process with the chart's RBAC rules, not as an administrator), its informers, work
// queues, reconcilers and one clustering loop per cluster. What is simulated: there is no
// kubelet and no controller manager, so no StatefulSet ever gets a Pod and no database runs;
// every clustering pass sees instances without Pods (unreachable) and publishes that. The
// rest of a busy cluster is stood in for by "foreign" Pods, Secrets and ConfigMaps that Kura
// does not own.
package fleet

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/internal/testenv"
)

const operatorUser = "kura-operator"

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v >= 0 {
		return v
	}
	return def
}

// fleet is one benchmark run's state.
type fleet struct {
	b      *testing.B
	env    *envtest.Environment
	admin  client.Client
	cfg    *rest.Config
	dir    string
	op     *exec.Cmd
	opPID  int
	mAddr  string
	mToken string

	mu sync.Mutex
	// seen records, per cluster and generation, when the bench first saw the reconciler's
	// Reconciled=True for that generation, and when the clustering loop first published.
	reconciledAt map[types.NamespacedName]map[int64]time.Time
	loopAt       map[types.NamespacedName]time.Time
}

func BenchmarkFleet(b *testing.B) {
	clusters := envInt("KURA_FLEET_CLUSTERS", 1000)
	namespaces := envInt("KURA_FLEET_NAMESPACES", 20)
	foreign := envInt("KURA_FLEET_FOREIGN", 2000)
	changes := envInt("KURA_FLEET_CHANGES", 300)
	idle := time.Duration(envInt("KURA_FLEET_IDLE_SECONDS", 60)) * time.Second
	for i := 0; i < b.N; i++ {
		f := start(b)
		f.run(clusters, namespaces, foreign, changes, idle)
	}
}

func start(b *testing.B) *fleet {
	b.Helper()
	if err := testenv.Available(); err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	f := &fleet{b: b, dir: dir, reconciledAt: map[types.NamespacedName]map[int64]time.Time{}, loopAt: map[types.NamespacedName]time.Time{}}
	f.env = &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join(testenv.RepoRoot(), "charts", "kura", "crds")},
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: assets(),
		Scheme:                testenv.NewScheme(),
	}
	// Two ClusterIP Services per cluster: the default range (a /24) runs out at 127 clusters.
	f.env.ControlPlane.GetAPIServer().Configure().Set("service-cluster-ip-range", "10.96.0.0/16")
	cfg, err := f.env.Start()
	if err != nil {
		b.Fatalf("failed to start envtest: %v", err)
	}
	b.Cleanup(func() { _ = f.env.Stop() })
	cfg.QPS, cfg.Burst = -1, 0 // the bench's own client is not the subject
	f.cfg = cfg
	f.admin, err = client.New(cfg, client.Options{Scheme: testenv.NewScheme()})
	if err != nil {
		b.Fatal(err)
	}
	return f
}

func assets() string {
	if d := os.Getenv("KUBEBUILDER_ASSETS"); d != "" {
		return d
	}
	return filepath.Join(testenv.RepoRoot(), "bin", "envtest-assets")
}

func (f *fleet) run(clusters, namespaces, foreign, changes int, idle time.Duration) {
	b := f.b
	ctx := context.Background()
	nsNames := make([]string, namespaces)
	for i := range nsNames {
		nsNames[i] = fmt.Sprintf("fleet-%02d", i)
		f.must(f.admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: nsNames[i]}}))
	}
	t0 := time.Now()
	f.createForeign(ctx, nsNames, foreign)
	b.Logf("foreign objects: %d Pods, %d Secrets, %d ConfigMaps (8 KiB each) in %s", foreign, foreign, foreign, time.Since(t0).Round(time.Second))

	f.startOperator(ctx)
	stopWatch := f.watchClusters(ctx)
	defer stopWatch()

	// Apply the fleet as fast as the API server takes it.
	keys := make([]types.NamespacedName, clusters)
	created := make([]time.Time, clusters)
	applyStart := time.Now()
	parallel(clusters, 16, func(i int) {
		c := &kurav1alpha1.MySQLCluster{
			ObjectMeta: metav1.ObjectMeta{Namespace: nsNames[i%namespaces], Name: fmt.Sprintf("db-%04d", i)},
			Spec:       kurav1alpha1.MySQLClusterSpec{Storage: kurav1alpha1.StorageSpec{Size: resource.MustParse("1Gi")}},
		}
		created[i] = time.Now()
		f.must(f.admin.Create(ctx, c))
		keys[i] = client.ObjectKeyFromObject(c)
	})
	applied := time.Since(applyStart)
	b.Logf("applied %d MySQLClusters in %d namespaces in %s", clusters, namespaces, applied.Round(time.Millisecond))

	lat := f.waitReconciled(keys, created, 10*time.Minute)
	allReconciled := time.Since(applyStart)
	f.waitLoops(keys, 5*time.Minute)
	allLoops := time.Since(applyStart)
	f.checkObjects(ctx, clusters)
	b.Logf("every cluster reconciled %s after the first apply (per cluster from its apply: p50 %s, p99 %s, max %s); every clustering loop published after %s",
		allReconciled.Round(time.Millisecond), pct(lat, 50), pct(lat, 99), pct(lat, 100), allLoops.Round(time.Millisecond))
	rssAfterApply := f.rss()

	// Idle: nothing changes; what the operator asks of the API server is its steady cost.
	settle := 20 * time.Second
	time.Sleep(settle)
	req0, byVerb0 := f.requests()
	cpu0, w0 := f.cpu(), time.Now()
	time.Sleep(idle)
	req1, byVerb1 := f.requests()
	cpu1, w1 := f.cpu(), time.Now()
	secs := w1.Sub(w0).Seconds()
	idleRPS := (req1 - req0) / secs
	idleCPU := (cpu1 - cpu0).Seconds() / secs
	var verbs []string
	for k, v := range byVerb1 {
		if d := v - byVerb0[k]; d > 0 {
			verbs = append(verbs, fmt.Sprintf("%s %.1f/s", k, d/secs))
		}
	}
	slices.Sort(verbs)
	b.Logf("idle for %s: %.1f API requests/s (%s), CPU %.2f cores, RSS %s", w1.Sub(w0).Round(time.Second), idleRPS, strings.Join(verbs, ", "), idleCPU, mib(f.rss()))

	// Spec changes at a steady 10 per second.
	changed := keys[:min(changes, len(keys))]
	sent := make([]time.Time, len(changed))
	gens := make([]int64, len(changed))
	cpu2, w2 := f.cpu(), time.Now()
	tick := time.NewTicker(100 * time.Millisecond)
	for i, k := range changed {
		<-tick.C
		c := &kurav1alpha1.MySQLCluster{}
		f.must(f.admin.Get(ctx, k, c))
		patch := client.MergeFrom(c.DeepCopy())
		if c.Spec.MySQLD.Config == nil {
			c.Spec.MySQLD.Config = map[string]string{}
		}
		c.Spec.MySQLD.Config["max_connections"] = strconv.Itoa(200 + i)
		sent[i] = time.Now()
		f.must(f.admin.Patch(ctx, c, patch))
		gens[i] = c.Generation
	}
	tick.Stop()
	changeLat := f.waitReconciled(changed, sent, 5*time.Minute, gens...)
	cpu3, w3 := f.cpu(), time.Now()
	b.Logf("%d spec changes at 10/s: reconciled p50 %s, p99 %s, max %s; CPU %.2f cores meanwhile",
		len(changed), pct(changeLat, 50), pct(changeLat, 99), pct(changeLat, 100), (cpu3-cpu2).Seconds()/w3.Sub(w2).Seconds())
	peak := f.peakRSS()
	b.Logf("operator memory: RSS %s after the fleet was reconciled, %s now, peak %s", mib(rssAfterApply), mib(f.rss()), mib(peak))

	b.ReportMetric(allReconciled.Seconds(), "s-all-reconciled")
	b.ReportMetric(pct(changeLat, 50).Seconds(), "s-change-p50")
	b.ReportMetric(pct(changeLat, 99).Seconds(), "s-change-p99")
	b.ReportMetric(float64(peak)/(1<<20), "MiB-peak-rss")
	b.ReportMetric(idleRPS, "idle-req/s")
	b.ReportMetric(idleCPU, "idle-cores")
}

func (f *fleet) must(err error) {
	f.b.Helper()
	if err != nil {
		f.b.Fatal(err)
	}
}

// parallel runs fn(0..n-1) on workers goroutines.
func parallel(n, workers int, fn func(i int)) {
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				fn(i)
			}
		}()
	}
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
}

// createForeign creates n Pods, Secrets and ConfigMaps that Kura does not own: what any busy
// cluster holds besides Kura's objects.
func (f *fleet) createForeign(ctx context.Context, namespaces []string, n int) {
	payload := strings.Repeat("x", 8<<10)
	parallel(n, 16, func(i int) {
		ns := namespaces[i%len(namespaces)]
		name := fmt.Sprintf("app-%05d", i)
		f.must(f.admin.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Data: map[string][]byte{"payload": []byte(payload)}}))
		f.must(f.admin.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Data: map[string]string{"payload": payload}}))
		f.must(f.admin.Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"app": "web"}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "nginx",
				Env: []corev1.EnvVar{{Name: "PAYLOAD", Value: payload[:2048]}}}}}}))
	})
}

// startOperator runs `kura operator` as its own process, authenticated as a user that holds
// exactly the chart's rules (charts/kura/files/rbac-rules.yaml) cluster-wide.
func (f *fleet) startOperator(ctx context.Context) {
	b := f.b
	data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "charts", "kura", "files", "rbac-rules.yaml"))
	f.must(err)
	var rules []rbacv1.PolicyRule
	f.must(yaml.UnmarshalStrict(data, &rules))
	f.must(f.admin.Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: operatorUser}, Rules: rules}))
	f.must(f.admin.Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: operatorUser},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: operatorUser},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: operatorUser}}}))
	f.grantExtra(ctx)
	user, err := f.env.AddUser(envtest.User{Name: operatorUser}, nil)
	f.must(err)
	kc, err := user.KubeConfig()
	f.must(err)
	kubeconfig := filepath.Join(f.dir, "kubeconfig")
	f.must(os.WriteFile(kubeconfig, kc, 0o600))

	bin := filepath.Join(f.dir, "kura")
	build := exec.Command("go", "build", "-o", bin, "./cmd/kura")
	build.Dir = testenv.RepoRoot()
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("failed to build kura: %v\n%s", err, out)
	}
	f.mAddr = freeAddr(b)
	health := freeAddr(b)
	logPath := os.Getenv("KURA_FLEET_LOG") // keep the operator's log there
	if logPath == "" {
		logPath = filepath.Join(f.dir, "operator.log")
	}
	logFile, err := os.Create(logPath)
	f.must(err)
	f.op = exec.Command(bin, "operator", "--kura-image=kura:bench", "--metrics-bind-address="+f.mAddr, "--health-probe-bind-address="+health)
	f.op.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig)
	f.op.Stdout, f.op.Stderr = logFile, logFile
	f.must(f.op.Start())
	f.opPID = f.op.Process.Pid
	b.Cleanup(func() {
		_ = f.op.Process.Signal(os.Interrupt)
		_, _ = f.op.Process.Wait()
		_ = logFile.Close()
		if st, err := os.Stat(logPath); err == nil {
			b.Logf("operator log: %s", mib(st.Size()))
		}
		if tail, err := exec.Command("tail", "-n", "20", logPath).Output(); err == nil && b.Failed() {
			b.Logf("operator log tail:\n%s", tail)
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + health + "/readyz")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			tail, _ := exec.Command("tail", "-n", "30", logPath).Output()
			b.Fatalf("operator not ready after 60 s:\n%s", tail)
		}
		time.Sleep(200 * time.Millisecond)
	}
	b.Logf("operator ready, RSS %s", mib(f.rss()))
}

func freeAddr(b *testing.B) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().String()
}

// watchClusters records, from the bench's own informer, when each cluster reached
// Reconciled=True for each generation and when its clustering loop first published.
func (f *fleet) watchClusters(ctx context.Context) func() {
	ctrl.SetLogger(logr.Discard())
	c, err := cache.New(f.cfg, cache.Options{Scheme: testenv.NewScheme()})
	f.must(err)
	inf, err := c.GetInformer(ctx, &kurav1alpha1.MySQLCluster{})
	f.must(err)
	record := func(obj any) {
		mc, ok := obj.(*kurav1alpha1.MySQLCluster)
		if !ok {
			return
		}
		now := time.Now()
		k := client.ObjectKeyFromObject(mc)
		f.mu.Lock()
		defer f.mu.Unlock()
		if cond := meta.FindStatusCondition(mc.Status.Conditions, kurav1alpha1.ConditionReconciled); cond != nil &&
			cond.Status == metav1.ConditionTrue && cond.ObservedGeneration == mc.Generation {
			if f.reconciledAt[k] == nil {
				f.reconciledAt[k] = map[int64]time.Time{}
			}
			if _, ok := f.reconciledAt[k][mc.Generation]; !ok {
				f.reconciledAt[k][mc.Generation] = now
			}
		}
		if _, ok := f.loopAt[k]; !ok && mc.Status.State != "" {
			f.loopAt[k] = now
		}
	}
	_, err = inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{AddFunc: record, UpdateFunc: func(_, n any) { record(n) }})
	f.must(err)
	cctx, cancel := context.WithCancel(ctx)
	go func() { _ = c.Start(cctx) }()
	if !c.WaitForCacheSync(cctx) {
		f.b.Fatal("bench informer did not sync")
	}
	return cancel
}

// waitReconciled waits until every key reached Reconciled for its generation (gens[i], or
// generation 1 when gens is empty) and returns each one's latency from since[i].
func (f *fleet) waitReconciled(keys []types.NamespacedName, since []time.Time, timeout time.Duration, gens ...int64) []time.Duration {
	deadline := time.Now().Add(timeout)
	for {
		f.mu.Lock()
		var lat []time.Duration
		for i, k := range keys {
			gen := int64(1)
			if len(gens) > 0 {
				gen = gens[i]
			}
			if at, ok := f.reconciledAt[k][gen]; ok {
				lat = append(lat, at.Sub(since[i]))
			}
		}
		f.mu.Unlock()
		if len(lat) == len(keys) {
			slices.Sort(lat)
			return lat
		}
		if time.Now().After(deadline) {
			// Keep measuring: the figures of a run that missed its goal are what it is for.
			f.b.Errorf("only %d of %d clusters reconciled within %s", len(lat), len(keys), timeout)
			for len(lat) < len(keys) {
				lat = append(lat, timeout)
			}
			slices.Sort(lat)
			return lat
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (f *fleet) waitLoops(keys []types.NamespacedName, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for {
		f.mu.Lock()
		n := 0
		for _, k := range keys {
			if _, ok := f.loopAt[k]; ok {
				n++
			}
		}
		f.mu.Unlock()
		if n == len(keys) {
			return
		}
		if time.Now().After(deadline) {
			f.b.Errorf("only %d of %d clustering loops published within %s", n, len(keys), timeout)
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// checkObjects counts what the operator created per cluster: one StatefulSet, three
// Services, two ConfigMaps (the configuration and the CA bundle for clients), four Secrets
// (credentials, the agents' token, the CA and the server certificate) and one ServiceAccount.
func (f *fleet) checkObjects(ctx context.Context, clusters int) {
	sel := client.MatchingLabels{"app.kubernetes.io/managed-by": "kura", "app.kubernetes.io/name": "mysql"}
	count := func(l client.ObjectList) int {
		f.must(f.admin.List(ctx, l, sel))
		return meta.LenList(l)
	}
	for _, c := range []struct {
		what string
		list client.ObjectList
		per  int
	}{
		{"StatefulSets", &appsv1.StatefulSetList{}, 1},
		{"Services", &corev1.ServiceList{}, 3},
		{"ConfigMaps", &corev1.ConfigMapList{}, 2},
		{"Secrets", &corev1.SecretList{}, 4},
		{"ServiceAccounts", &corev1.ServiceAccountList{}, 1},
	} {
		if n := count(c.list); n != clusters*c.per {
			f.b.Errorf("%d %s carry Kura's labels, want %d", n, c.what, clusters*c.per)
		}
	}
}

// requests reads the operator's client-go request counter (rest_client_requests_total) from
// its metrics endpoint: the total and the count per method.
func (f *fleet) requests() (float64, map[string]float64) {
	body := f.scrape()
	total, by := 0.0, map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "rest_client_requests_total{") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		total += v
		if _, rest, ok := strings.Cut(line, `method="`); ok {
			m, _, _ := strings.Cut(rest, `"`)
			by[m] += v
		}
	}
	if total == 0 {
		f.b.Fatalf("no rest_client_requests_total in the operator's metrics")
	}
	return total, by
}

func (f *fleet) scrape() string {
	resp, err := f.metricsClient().Get(f.metricsURL())
	f.must(err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	f.must(err)
	if resp.StatusCode != http.StatusOK {
		f.b.Fatalf("metrics: status %d: %s", resp.StatusCode, body)
	}
	return string(body)
}

// cpu is the operator process's user+system CPU time (/proc/<pid>/stat).
func (f *fleet) cpu() time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", f.opPID))
	f.must(err)
	s := string(data)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / 100 // USER_HZ
}

func (f *fleet) status(field string) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", f.opPID))
	f.must(err)
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	f.b.Fatalf("no %s in /proc/%d/status", field, f.opPID)
	return 0
}

func (f *fleet) rss() int64     { return f.status("VmRSS") }
func (f *fleet) peakRSS() int64 { return f.status("VmHWM") }

func mib(n int64) string { return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20)) }

// pct returns the p-th percentile of sorted durations (100 is the maximum).
func pct(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := (len(sorted)*p + 99) / 100
	i = min(max(i-1, 0), len(sorted)-1)
	return sorted[i].Round(time.Millisecond)
}
