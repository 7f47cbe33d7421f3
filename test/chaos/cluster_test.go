package chaos

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/internal/builder"
	"github.com/kura-db/kura/internal/contract"
	"github.com/kura-db/kura/test/e2eutil"
)

// clusterName is the MySQLCluster every round runs against; its database defaults to the same
// name.
const clusterName = "chaos"

// cluster is the MySQLCluster under test and how the application reaches it.
type cluster struct {
	ns, name string
	replicas int
	// The application's account and database: the Secret's app account and spec.database.
	user, password, database string
	// adminUser and adminPassword: the Secret's admin account, used only to look (replication
	// state for the stage-timed operator kills).
	adminUser, adminPassword string
	// writerIgnoresReadOnly: the writer's account holds READ ONLY ADMIN or SUPER.
	writerIgnoresReadOnly bool
	primaryIP             string // the primary Service's ClusterIP
}

func (c *cluster) table() string { return "`" + c.database + "`.ledger" }

func (c *cluster) key() types.NamespacedName {
	return types.NamespacedName{Namespace: c.ns, Name: c.name}
}

func (c *cluster) get(ctx context.Context) (*kurav1alpha1.MySQLCluster, error) {
	mc := &kurav1alpha1.MySQLCluster{}
	return mc, env.Client.Get(ctx, c.key(), mc)
}

// newCluster creates a 3-instance MariaDB cluster with the product's defaults (what a new user
// gets) in a fresh namespace, waits until it is healthy and prepares the ledger table.
func newCluster(ctx context.Context, unsafe string) (*cluster, error) {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "chaos-"}}
	if err := env.Client.Create(ctx, ns); err != nil {
		return nil, err
	}
	mc := &kurav1alpha1.MySQLCluster{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: clusterName},
		Spec: kurav1alpha1.MySQLClusterSpec{
			Engine:   kurav1alpha1.EngineMariaDB,
			Replicas: 3,
			Storage:  kurav1alpha1.StorageSpec{Size: resource.MustParse("1Gi")},
			MySQLD:   kurav1alpha1.MySQLDSpec{Config: map[string]string{"innodb_buffer_pool_size": "32M", "innodb_log_file_size": "16M"}},
		},
	}
	if policy := os.Getenv("KURA_CHAOS_ERRANT_POLICY"); policy != "" {
		mc.Spec.Replication.ErrantReplicaPolicy = kurav1alpha1.ErrantReplicaPolicy(policy)
	}
	if unsafe == unsafeSemiSyncOff {
		off := false
		mc.Spec.Replication.SemiSync = &off
	}
	if err := env.Client.Create(ctx, mc); err != nil {
		return nil, err
	}
	c := &cluster{ns: ns.Name, name: clusterName, replicas: 3}
	if err := e2eutil.Await(8*time.Minute, time.Second, func() error { return c.converged(ctx, nil) }); err != nil {
		return c, fmt.Errorf("the new cluster %s/%s never became healthy: %w\n%s", c.ns, c.name, err, c.dump(ctx))
	}
	if err := c.accounts(ctx, unsafe); err != nil {
		return c, err
	}
	return c, nil
}

// The accounts of the credentials Secret (docs/engines.md, "Accounts"): the users' admin
// account, the application account owning spec.database, and the operator's own account,
// which is never for users (used here only by the deliberately unsafe privileged-writer run).
const (
	adminUser    = "admin"
	appUser      = "app"
	operatorUser = "kura-operator"
)

// accounts reads the Secret and spec.database, and creates the ledger table with the
// application account.
func (c *cluster) accounts(ctx context.Context, unsafe string) error {
	s := &corev1.Secret{}
	if err := env.Client.Get(ctx, types.NamespacedName{Namespace: c.ns, Name: c.name + "-credentials"}, s); err != nil {
		return err
	}
	mc, err := c.get(ctx)
	if err != nil {
		return err
	}
	c.database = builder.Database(mc)
	c.adminUser, c.adminPassword = adminUser, string(s.Data[contract.KeyAdminPassword])
	c.user, c.password = appUser, string(s.Data[contract.KeyAppPassword])
	if c.password == "" {
		return fmt.Errorf("the Secret %s has no %s", s.Name, contract.KeyAppPassword)
	}
	if unsafe == unsafePrivilegedWriter {
		c.user, c.password = operatorUser, string(s.Data[contract.KeyOperatorPassword])
	}
	c.primaryIP = serviceIP(ctx, c.ns, c.name+"-primary")
	db := e2eutil.OpenDB(c.primaryIP, c.user, c.password, e2eutil.DefaultTimeouts)
	defer func() { _ = db.Close() }()
	q := "CREATE TABLE IF NOT EXISTS " + c.table() + " (id BIGINT PRIMARY KEY, round INT NOT NULL, at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6))"
	if err := e2eutil.Await(30*time.Second, 250*time.Millisecond, func() error { _, err := db.ExecContext(ctx, q); return err }); err != nil {
		return fmt.Errorf("%s as %s: %w", q, c.user, err)
	}
	ignores, err := c.ignoresReadOnly(ctx)
	if err != nil {
		return err
	}
	c.writerIgnoresReadOnly = ignores
	return nil
}

// ignoresReadOnly reports whether the writer's account holds a privilege that read_only does
// not stop (MariaDB: READ ONLY ADMIN, part of ALL PRIVILEGES ON *.*; SUPER).
func (c *cluster) ignoresReadOnly(ctx context.Context) (bool, error) {
	db := e2eutil.OpenDB(c.primaryIP, c.user, c.password, e2eutil.DefaultTimeouts)
	defer func() { _ = db.Close() }()
	rows, err := db.QueryContext(ctx, "SHOW GRANTS")
	if err != nil {
		return false, err
	}
	defer func() { _ = rows.Close() }()
	for rows.Next() {
		var g string
		if err := rows.Scan(&g); err != nil {
			return false, err
		}
		if strings.Contains(g, " ON *.*") && (strings.Contains(g, "ALL PRIVILEGES") || strings.Contains(g, "READ ONLY ADMIN") ||
			strings.Contains(g, "READ_ONLY ADMIN") || strings.Contains(g, "SUPER")) {
			return true, nil
		}
	}
	return false, rows.Err()
}

func serviceIP(ctx context.Context, ns, name string) string {
	s := &corev1.Service{}
	if err := env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, s); err != nil {
		return ""
	}
	return s.Spec.ClusterIP
}

// pods lists the instance Pods.
func (c *cluster) pods(ctx context.Context) ([]corev1.Pod, error) {
	var l corev1.PodList
	sel := builder.SelectorLabels(&kurav1alpha1.MySQLCluster{ObjectMeta: metav1.ObjectMeta{Name: c.name}})
	if err := env.Client.List(ctx, &l, client.InNamespace(c.ns), client.MatchingLabels(sel)); err != nil {
		return nil, err
	}
	sort.Slice(l.Items, func(i, j int) bool { return l.Items[i].Name < l.Items[j].Name })
	return l.Items, nil
}

// podIPs maps each instance Pod to its IP.
func (c *cluster) podIPs(ctx context.Context) map[string]string {
	pods, err := c.pods(ctx)
	if err != nil {
		return nil
	}
	m := map[string]string{}
	for _, p := range pods {
		m[p.Name] = p.Status.PodIP
	}
	return m
}

// converged is nil when the cluster is Healthy and Available, every instance is healthy and
// its Pod ready, the operator's Pod is ready, and (with a probe) the status's primary is the one
// instance that accepts writes.
func (c *cluster) converged(ctx context.Context, p *probe) error {
	mc, err := c.get(ctx)
	if err != nil {
		return err
	}
	st := mc.Status
	if st.State != kurav1alpha1.StateHealthy {
		return fmt.Errorf("state %s (%s)", st.State, conditionSummary(mc))
	}
	if !meta.IsStatusConditionTrue(st.Conditions, kurav1alpha1.ConditionAvailable) {
		return fmt.Errorf("not Available: %s", conditionSummary(mc))
	}
	healthy := 0
	for _, in := range st.Instances {
		if in.Healthy {
			healthy++
		}
	}
	if healthy != c.replicas || len(st.Instances) != c.replicas {
		return fmt.Errorf("%d of %d instances healthy", healthy, c.replicas)
	}
	pods, err := c.pods(ctx)
	if err != nil {
		return err
	}
	ready := 0
	for i := range pods {
		if e2eutil.PodReady(&pods[i]) && pods[i].DeletionTimestamp == nil {
			ready++
		}
	}
	if ready != c.replicas || len(pods) != c.replicas {
		return fmt.Errorf("%d of %d instance Pods ready", ready, c.replicas)
	}
	op, err := e2eutil.OperatorPod(ctx, env.Client)
	if err != nil {
		return err
	}
	if !e2eutil.PodReady(op) {
		return fmt.Errorf("the operator's Pod %s is not ready", op.Name)
	}
	if p != nil {
		if w := p.writableNow(); len(w) != 1 || w[0] != st.CurrentPrimary {
			return fmt.Errorf("status names %s the primary, the probe finds %v writable", st.CurrentPrimary, w)
		}
	}
	return nil
}

func conditionSummary(mc *kurav1alpha1.MySQLCluster) string {
	var parts []string
	for _, cond := range mc.Status.Conditions {
		if cond.Status != metav1.ConditionTrue || cond.Type == kurav1alpha1.ConditionDegraded {
			parts = append(parts, fmt.Sprintf("%s=%s/%s: %s", cond.Type, cond.Status, cond.Reason, cond.Message))
		}
	}
	return strings.Join(parts, "; ")
}

// eventVersions maps each Event with reason to its resourceVersion: an Event not in an earlier
// map, or with another version, happened since.
func (c *cluster) eventVersions(ctx context.Context, reason string) map[string]string {
	m := map[string]string{}
	for _, e := range e2eutil.Events(ctx, env.Client, c.ns) {
		if e.Reason == reason {
			m[e.Name] = e.ResourceVersion
		}
	}
	return m
}

// dump is the evidence of a round that went wrong: status, Events, Pods and the operator's
// log tail.
func (c *cluster) dump(ctx context.Context) string {
	return e2eutil.Evidence(ctx, env.Client, env.LC, c.ns, c.name)
}
