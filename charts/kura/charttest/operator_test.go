package charttest

import (
	"context"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/internal/builder"
	"github.com/kura-db/kura/internal/testenv"
	kuraop "github.com/kura-db/kura/operator"
)

// asServiceAccount is the API server config of the operator's ServiceAccount (impersonated by
// the test's administrator), so every request is authorized by the chart's RBAC alone.
func asServiceAccount(e *testenv.Env, namespace, name string) *rest.Config {
	cfg := rest.CopyConfig(e.Config)
	cfg.Impersonate = rest.ImpersonationConfig{
		UserName: "system:serviceaccount:" + namespace + ":" + name,
		Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:" + namespace, "system:authenticated"},
	}
	return cfg
}

// The operator, run as the chart's ServiceAccount with only the chart's rules, reconciles a
// cluster (so the rules are enough), and its client does not serve a Secret of a watched
// namespace that Kura did not create, although RBAC lets it read Secrets there: the cache
// holds only Kura's labelled Secrets.
func TestOperatorRunsOnTheChartRBAC(t *testing.T) {
	e := apiServer(t)
	ctx := context.Background()
	const ns = "kura-op"
	for _, n := range []string{ns, "apps-op"} {
		if err := e.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: n}}); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	for _, obj := range render(t, renderOpts{namespace: ns}, "fullnameOverride=kura-op", "serviceAccount.name=kura", "watchNamespaces={apps-op}").objects {
		if err := apply(ctx, e.Client, obj); err != nil {
			t.Fatalf("failed to apply %s: %v", key(obj), err)
		}
	}
	o, err := kuraop.ParseFlags([]string{"--kura-image=kura:dev", "--namespaces=apps-op", "--metrics-bind-address=0", "--health-probe-bind-address=0"})
	if err != nil {
		t.Fatal(err)
	}
	mgr, err := kuraop.NewManager(asServiceAccount(e, ns, "kura"), o)
	if err != nil {
		t.Fatal(err)
	}
	mctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- mgr.Start(mctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	foreign := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "apps-op", Name: "payments-api-key"}, StringData: map[string]string{"key": "s3cr3t"}}
	if err := e.Client.Create(ctx, foreign); err != nil {
		t.Fatal(err)
	}
	c := &kurav1alpha1.MySQLCluster{ObjectMeta: metav1.ObjectMeta{Namespace: "apps-op", Name: "shop"},
		Spec: kurav1alpha1.MySQLClusterSpec{Storage: kurav1alpha1.StorageSpec{Size: resource.MustParse("1Gi")}}}
	if err := e.Client.Create(ctx, c); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		err := e.Client.Get(ctx, types.NamespacedName{Namespace: "apps-op", Name: "shop"}, &appsv1.StatefulSet{})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			got := &kurav1alpha1.MySQLCluster{}
			_ = e.Client.Get(ctx, client.ObjectKeyFromObject(c), got)
			t.Fatalf("the operator on the chart's RBAC made no StatefulSet in 60 s: %v; status %+v", err, got.Status.Conditions)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Its own Secret is served from the cache; someone else's is not.
	if err := mgr.GetClient().Get(ctx, types.NamespacedName{Namespace: "apps-op", Name: builder.CredentialsSecretName(c)}, &corev1.Secret{}); err != nil {
		t.Errorf("the operator cannot read the credentials Secret it created: %v", err)
	}
	if err := mgr.GetClient().Get(ctx, client.ObjectKeyFromObject(foreign), &corev1.Secret{}); !apierrors.IsNotFound(err) {
		t.Errorf("the operator's client served Secret %s, which Kura did not create (err=%v); want NotFound", foreign.Name, err)
	}
	if !can(t, e, ns, "get", "", "secrets", "apps-op") || can(t, e, ns, "get", "", "secrets", "kura-system") {
		t.Error("RBAC: the operator must read Secrets by name in a watched namespace only")
	}
	// The Restore reconciler runs on the same rules: it writes a refused Restore's status.
	rs := &kurav1alpha1.Restore{ObjectMeta: metav1.ObjectMeta{Namespace: "apps-op", Name: "in-place"},
		Spec: kurav1alpha1.RestoreSpec{Backup: "nightly", Target: kurav1alpha1.RestoreTarget{ExistingCluster: "shop"}}}
	if err := e.Client.Create(ctx, rs); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); rs.Status.Phase != kurav1alpha1.RestoreFailed; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the operator on the chart's RBAC did not fail an in-place Restore in 30 s: %+v", rs.Status)
		}
		if err := e.Client.Get(ctx, client.ObjectKeyFromObject(rs), rs); err != nil {
			t.Fatal(err)
		}
	}
}
