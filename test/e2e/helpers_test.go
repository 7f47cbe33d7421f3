package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/internal/contract"
	"github.com/kura-db/kura/test/e2eutil"
)

// The accounts the generated Secret hands out: the user admin account and the application
// account, which owns the database named by spec.database (default: the cluster's name; every
// cluster here is named shop).
const (
	adminUser = "admin"
	appUser   = "app"
	appTable  = "shop.t"
)

// appPassword is the application account's password, read from the Secret by setupApp.
var appPassword string

func needCluster(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("e2e tier: not run with -short")
	}
}

func newNamespace(t testing.TB, prefix string) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-"}}
	if err := k8s.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

func newCluster(ns, name string, replicas int32) *kurav1alpha1.MySQLCluster {
	return &kurav1alpha1.MySQLCluster{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: kurav1alpha1.MySQLClusterSpec{
			Engine:   kurav1alpha1.EngineMariaDB,
			Replicas: replicas,
			Storage:  kurav1alpha1.StorageSpec{Size: resource.MustParse("1Gi")},
			MySQLD:   kurav1alpha1.MySQLDSpec{Config: map[string]string{"innodb_buffer_pool_size": "32M", "innodb_log_file_size": "16M"}},
			Pod:      kurav1alpha1.PodTemplate{TerminationGracePeriodSeconds: ptrInt64(20)},
			// A primary killed while a commit waited for its acknowledgement comes back with that
			// never-acknowledged transaction in its binlog, and is errant (docs/clustering.md);
			// Reclone heals it, so every step can start from three healthy instances.
			Replication: kurav1alpha1.ReplicationSpec{ErrantReplicaPolicy: kurav1alpha1.ErrantReplicaReclone},
		},
	}
}

func ptrInt64(v int64) *int64 { return &v }

func get(t testing.TB, ns, name string) *kurav1alpha1.MySQLCluster {
	t.Helper()
	c := &kurav1alpha1.MySQLCluster{}
	if err := k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, c); err != nil {
		t.Fatal(err)
	}
	return c
}

// update applies mut to the latest version of the cluster, retrying on conflicts.
func update(t testing.TB, ns, name string, mut func(*kurav1alpha1.MySQLCluster)) {
	t.Helper()
	waitFor(t, "update of "+name, 30*time.Second, func() error {
		c := get(t, ns, name)
		mut(c)
		return k8s.Update(context.Background(), c)
	})
}

// waitFor polls cond until it returns nil, failing with its last error at the deadline.
func waitFor(t testing.TB, what string, timeout time.Duration, cond func() error) {
	t.Helper()
	e2eutil.WaitFor(t, what, timeout, cond)
}

// awaitCluster is waitFor for a cluster: at the deadline the failure carries the evidence
// (status, Events, Pods, the operator's log tail).
func awaitCluster(t testing.TB, ns, name, what string, timeout time.Duration, cond func() error) {
	t.Helper()
	if err := e2eutil.Await(timeout, 250*time.Millisecond, cond); err != nil {
		t.Fatalf("timed out after %s waiting for %s: %v\n%s", timeout, what, err, e2eutil.Evidence(context.Background(), k8s, lc, ns, name))
	}
}

// healthy reports nil once the cluster is Healthy with n healthy instances, one primary.
func healthy(t testing.TB, ns, name string, n int) func() error {
	return func() error {
		c := get(t, ns, name)
		if c.Status.State != kurav1alpha1.StateHealthy {
			return fmt.Errorf("state %s (%s)", c.Status.State, conditionSummary(c))
		}
		if !meta.IsStatusConditionTrue(c.Status.Conditions, kurav1alpha1.ConditionAvailable) {
			return fmt.Errorf("not Available: %s", conditionSummary(c))
		}
		ok := 0
		for _, in := range c.Status.Instances {
			if in.Healthy {
				ok++
			}
		}
		if ok != n || len(c.Status.Instances) != n {
			return fmt.Errorf("%d of %d instances healthy: %+v", ok, n, c.Status.Instances)
		}
		return nil
	}
}

// instanceReason is what status says of one instance.
func instanceReason(c *kurav1alpha1.MySQLCluster, instance string) string {
	for _, in := range c.Status.Instances {
		if in.Name == instance {
			return fmt.Sprintf("%s: %s", in.Role, in.Reason)
		}
	}
	return "not in status"
}

func conditionSummary(c *kurav1alpha1.MySQLCluster) string {
	var parts []string
	for _, cond := range c.Status.Conditions {
		parts = append(parts, fmt.Sprintf("%s=%s/%s: %s", cond.Type, cond.Status, cond.Reason, cond.Message))
	}
	return strings.Join(parts, "; ")
}

func adminPassword(t testing.TB, ns, name string) string {
	t.Helper()
	s := &corev1.Secret{}
	if err := k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name + "-credentials"}, s); err != nil {
		t.Fatal(err)
	}
	return string(s.Data[contract.KeyAdminPassword])
}

func serviceIP(t testing.TB, ns, svc string) string {
	t.Helper()
	s := &corev1.Service{}
	if err := k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: svc}, s); err != nil {
		t.Fatal(err)
	}
	return s.Spec.ClusterIP
}

func podIP(t testing.TB, ns, pod string) string {
	t.Helper()
	p := &corev1.Pod{}
	if err := k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: pod}, p); err != nil {
		t.Fatal(err)
	}
	return p.Status.PodIP
}

func openDB(host, user, password string) *sql.DB {
	return e2eutil.OpenDB(host, user, password, e2eutil.DefaultTimeouts)
}

// setupApp reads the application account from the cluster's Secret and creates the
// application's table with it, through the primary Service.
func setupApp(t testing.TB, ns, name string) {
	t.Helper()
	s := &corev1.Secret{}
	if err := k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name + "-credentials"}, s); err != nil {
		t.Fatal(err)
	}
	appPassword = string(s.Data[contract.KeyAppPassword])
	db := openDB(serviceIP(t, ns, name+"-primary"), appUser, appPassword)
	defer func() { _ = db.Close() }()
	q := "CREATE TABLE IF NOT EXISTS " + appTable + " (id BIGINT PRIMARY KEY, at TIMESTAMP(6) DEFAULT CURRENT_TIMESTAMP(6))"
	waitFor(t, q, 30*time.Second, func() error { _, err := db.Exec(q); return err })
}

// writer inserts unique ids through the primary Service and records each acknowledged one.
type writer struct {
	host       string
	mu         sync.Mutex
	acked      []int64
	next       int64
	lastOK     time.Time
	stop, done chan struct{}
}

func startWriter(host string, first int64) *writer {
	w := &writer{host: host, next: first, stop: make(chan struct{}), done: make(chan struct{}), lastOK: time.Now()}
	go w.run()
	return w
}

func (w *writer) run() {
	defer close(w.done)
	db := openDB(w.host, appUser, appPassword)
	defer func() { _ = db.Close() }()
	for {
		select {
		case <-w.stop:
			return
		default:
		}
		id := w.next
		w.next++
		if _, err := db.Exec("INSERT INTO "+appTable+" (id) VALUES (?)", id); err != nil {
			// A write whose outcome is unknown is not counted as acknowledged. Reconnect:
			// the Service may point elsewhere now.
			_ = db.Close()
			db = openDB(w.host, appUser, appPassword)
			time.Sleep(20 * time.Millisecond)
			continue
		}
		w.mu.Lock()
		w.acked = append(w.acked, id)
		w.lastOK = time.Now()
		w.mu.Unlock()
	}
}

func (w *writer) ackedSince(t0 time.Time) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.lastOK.After(t0)
}

// waitFlowing waits until the writer has 20 acknowledged writes.
func (w *writer) waitFlowing(t testing.TB) {
	t.Helper()
	waitFor(t, "writes flowing", 30*time.Second, func() error {
		if n := w.count(); n < 20 {
			return fmt.Errorf("%d writes", n)
		}
		return nil
	})
}

// waitAckedSince waits until a write started after t0 is acknowledged.
func (w *writer) waitAckedSince(t testing.TB, t0 time.Time, what string, timeout time.Duration) {
	t.Helper()
	waitFor(t, "a write acknowledged "+what, timeout, func() error {
		if !w.ackedSince(t0) {
			return fmt.Errorf("no write acknowledged since %s", t0.Format(time.StampMilli))
		}
		return nil
	})
}

func (w *writer) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acked)
}

func (w *writer) halt() []int64 {
	close(w.stop)
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]int64(nil), w.acked...)
}

// missingOnPrimary returns the acknowledged ids the current primary lacks.
func missingOnPrimary(t testing.TB, ns, name string, acked []int64) []int64 {
	t.Helper()
	have := map[int64]bool{}
	for _, id := range tableIDs(t, serviceIP(t, ns, name+"-primary"), adminUser, adminPassword(t, ns, name), math.MaxInt64) {
		have[id] = true
	}
	var lost []int64
	for _, id := range acked {
		if !have[id] {
			lost = append(lost, id)
		}
	}
	return lost
}

// tableIDs reads the application table's ids below limit, in order.
func tableIDs(t testing.TB, host, user, password string, limit int64) []int64 {
	t.Helper()
	db := openDB(host, user, password)
	defer func() { _ = db.Close() }()
	var out []int64
	waitFor(t, "the application's rows", 30*time.Second, func() error {
		out = out[:0]
		rows, err := db.Query("SELECT id FROM "+appTable+" WHERE id < ? ORDER BY id", limit)
		if err != nil {
			return err
		}
		defer func() { _ = rows.Close() }()
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				return err
			}
			out = append(out, id)
		}
		return rows.Err()
	})
	return out
}

// containerIDs maps "<pod>/<container>" to its container ID and restart count: the same map
// later means the same processes, never restarted.
func containerIDs(pods *corev1.PodList) map[string]string {
	ids := map[string]string{}
	for _, p := range pods.Items {
		for _, s := range p.Status.ContainerStatuses {
			ids[p.Name+"/"+s.Name] = fmt.Sprintf("%s restarts=%d", s.ContainerID, s.RestartCount)
		}
	}
	return ids
}

// killContainer sends SIGKILL to a container's process group, as a crash would.
func killContainer(t testing.TB, ns, pod, container string) {
	t.Helper()
	env := e2eutil.Env{LC: lc, Client: k8s}
	if err := env.SignalContainer(context.Background(), ns, pod, container, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
}

// watchReplacements polls the cluster's Pods every 50 ms and records, in order, each Pod whose
// UID changed (it was deleted and re-created). stop ends the watch and returns the order.
func watchReplacements(t testing.TB, ns string, selector map[string]string) (stop func() []string) {
	t.Helper()
	done := make(chan struct{})
	result := make(chan []string, 1)
	uids := map[string]string{}
	var order []string
	poll := func() {
		var pods corev1.PodList
		if err := k8s.List(context.Background(), &pods, client.InNamespace(ns), client.MatchingLabels(selector)); err != nil {
			return
		}
		for _, p := range pods.Items {
			old, seen := uids[p.Name]
			if seen && old != string(p.UID) && !contains(order, p.Name) {
				order = append(order, p.Name)
			}
			uids[p.Name] = string(p.UID)
		}
	}
	poll()
	go func() {
		for {
			select {
			case <-done:
				poll()
				result <- order
				return
			case <-time.After(50 * time.Millisecond):
				poll()
			}
		}
	}()
	return func() []string {
		close(done)
		return <-result
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
