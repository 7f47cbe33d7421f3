package charttest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kura-db/kura/internal/testenv"
)

const fieldOwner = "helm"

var (
	envOnce sync.Once
	envErr  error
	sharedE *testenv.Env
)

// apiServer starts one kube-apiserver for every test of this file, with the namespaces the
// tests install into.
func apiServer(t *testing.T) *testenv.Env {
	t.Helper()
	// The tier's rules, as testenv.Start: skipped under -short, failing when the binaries are
	// missing.
	if testing.Short() {
		t.Skip("envtest tier: not run with -short (the unit tier)")
	}
	envOnce.Do(func() {
		sharedE, envErr = testenv.StartE()
		if envErr != nil {
			return
		}
		for _, ns := range []string{releaseNamespace, "kura-cluster", "team-a", "team-b", "not-watched"} {
			o := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}
			if err := sharedE.Client.Create(context.Background(), o); err != nil {
				envErr = fmt.Errorf("failed to create namespace %s: %w", ns, err)
				return
			}
		}
	})
	if envErr != nil {
		t.Fatal(envErr)
	}
	return sharedE
}

// dryRunApply sends obj to the API server as `helm install --server-side` would, without
// persisting it: every admission and schema check runs.
func dryRunApply(ctx context.Context, c client.Client, obj *unstructured.Unstructured) error {
	return c.Apply(ctx, client.ApplyConfigurationFromUnstructured(obj.DeepCopy()),
		client.FieldOwner(fieldOwner), client.ForceOwnership, client.DryRunAll)
}

func apply(ctx context.Context, c client.Client, obj *unstructured.Unstructured) error {
	return c.Apply(ctx, client.ApplyConfigurationFromUnstructured(obj.DeepCopy()),
		client.FieldOwner(fieldOwner), client.ForceOwnership)
}

// Every object of every render the tests check is valid for a real API server.
func TestServerSideDryRun(t *testing.T) {
	e := apiServer(t)
	ctx := context.Background()
	renders := map[string][]string{
		"defaults":   nil,
		"namespaced": {"watchNamespaces={team-a,team-b}"},
	}
	for _, o := range options {
		renders["option "+o.value] = o.sets
	}
	for name, sets := range renders {
		t.Run(name, func(t *testing.T) {
			r := render(t, renderOpts{}, sets...)
			for _, obj := range r.objects {
				if err := dryRunApply(ctx, e.Client, obj); err != nil {
					t.Errorf("API server refused %s: %v", key(obj), err)
				}
			}
		})
	}
}

// The dry run can fail: a rendered object with a field Kubernetes does not know is refused.
func TestServerSideDryRunRefusesInvalidObjects(t *testing.T) {
	e := apiServer(t)
	r := render(t, renderOpts{})
	d := r.find("Deployment", releaseNamespace, "kura").DeepCopy()
	if err := unstructured.SetNestedField(d.Object, "yes", "spec", "template", "spec", "runAsRoot"); err != nil {
		t.Fatal(err)
	}
	if err := dryRunApply(context.Background(), e.Client, d); err == nil {
		t.Fatal("API server accepted a Deployment with an unknown field")
	}
	d = r.find("Deployment", releaseNamespace, "kura").DeepCopy()
	if err := unstructured.SetNestedField(d.Object, int64(-1), "spec", "replicas"); err != nil {
		t.Fatal(err)
	}
	if err := dryRunApply(context.Background(), e.Client, d); err == nil {
		t.Fatal("API server accepted a Deployment with replicas -1")
	}
}

// The MySQLCluster that NOTES.txt tells the user to apply is valid for Kura's CRD.
func TestNotesSampleIsValid(t *testing.T) {
	e := apiServer(t)
	r := render(t, renderOpts{}, "watchNamespaces={team-a}")
	sample, err := sampleCluster(r.notes)
	if err != nil {
		t.Fatal(err)
	}
	sample.SetNamespace("team-a")
	if err := dryRunApply(context.Background(), e.Client, sample); err != nil {
		t.Fatalf("API server refused the sample in NOTES: %v", err)
	}
}

// A namespaced Role can grant only namespaced resources: every resource of the operator's
// rules must be one, or namespaced mode would silently grant less than the markers ask.
// cert-manager's kinds are the exception: optional (spec.tls.issuerRef; not served by this
// API server), and an operator limited to namespaces cannot read ClusterIssuers, so it skips
// that check (docs/security.md, "cert-manager").
func TestRulesAreNamespaced(t *testing.T) {
	e := apiServer(t)
	mapper := e.Client.RESTMapper()
	for _, rule := range chartRules(t) {
		for _, g := range rule.APIGroups {
			if g == "cert-manager.io" {
				continue
			}
			for _, res := range rule.Resources {
				base, _, _ := strings.Cut(res, "/")
				gvk, err := mapper.KindFor(schema.GroupVersionResource{Group: g, Resource: base})
				if err != nil {
					t.Errorf("resource %q %s is not served: %v", g, res, err)
					continue
				}
				namespaced, err := e.Client.IsObjectNamespaced(&unstructured.Unstructured{Object: map[string]any{
					"apiVersion": gvk.GroupVersion().String(), "kind": gvk.Kind}})
				if err != nil {
					t.Errorf("failed to find the scope of %s: %v", gvk, err)
					continue
				}
				if !namespaced {
					t.Errorf("%q %s is cluster-scoped: a Role cannot grant it in namespaced mode", g, res)
				}
			}
		}
	}
}

// can asks the API server's authorizer whether the operator's ServiceAccount may do verb on
// resource in namespace ("" is cluster-wide).
func can(t *testing.T, e *testenv.Env, saNamespace, verb, group, resource, namespace string) bool {
	t.Helper()
	resource, sub, _ := strings.Cut(resource, "/")
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User:   "system:serviceaccount:" + saNamespace + ":kura",
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + saNamespace, "system:authenticated"},
		ResourceAttributes: &authorizationv1.ResourceAttributes{
			Namespace: namespace, Verb: verb, Group: group, Resource: resource, Subresource: sub,
		},
	}}
	if err := e.Client.Create(context.Background(), sar); err != nil {
		t.Fatalf("failed to create SubjectAccessReview: %v", err)
	}
	return sar.Status.Allowed
}

// Installs both modes for real and asks the authorizer what the operator may do.
func TestRBACGrantsOnlyWhatTheModeSays(t *testing.T) {
	e := apiServer(t)
	ctx := context.Background()
	install := func(o renderOpts, sets ...string) {
		for _, obj := range render(t, o, sets...).objects {
			if err := apply(ctx, e.Client, obj); err != nil {
				t.Fatalf("failed to apply %s: %v", key(obj), err)
			}
		}
	}
	install(renderOpts{}, "watchNamespaces={team-a,team-b}")
	install(renderOpts{namespace: "kura-cluster"}, "fullnameOverride=kura-all", "serviceAccount.name=kura")

	type check struct {
		verb, group, resource, namespace string
		want                             bool
	}
	ns := releaseNamespace
	for _, c := range []check{
		{"patch", "", "pods", "team-a", true},
		{"watch", "kura.dev", "mysqlclusters", "team-b", true},
		{"patch", "kura.dev", "mysqlclusters/status", "team-a", true},
		// Verbs nothing in the code uses are not granted.
		{"update", "kura.dev", "mysqlclusters/status", "team-a", false},
		{"update", "kura.dev", "mysqlclusters", "team-a", false},
		{"update", "", "pods", "team-a", false},
		{"delete", "", "configmaps", "team-a", false},
		// An in-place restore deletes the volumes it kept once confirmed or expired
		// (docs/backup.md, "In-place restore").
		{"delete", "", "persistentvolumeclaims", "team-a", true},
		{"update", "", "persistentvolumeclaims", "team-a", false},
		{"update", "apps", "statefulsets", "team-b", false},
		// The generated server certificate is renewed in place (docs/security.md, "TLS").
		{"update", "", "secrets", "team-a", true},
		{"delete", "", "secrets", "team-a", false},
		{"patch", "", "secrets", "team-a", false},
		{"create", "apps", "statefulsets", "team-b", true},
		{"patch", "", "pods", "not-watched", false},
		{"list", "kura.dev", "mysqlclusters", "", false},
		{"get", "", "secrets", ns, false},
		{"update", "coordination.k8s.io", "leases", ns, true},
		{"update", "coordination.k8s.io", "leases", "team-a", false},
		// Authenticated metrics: who a scraper is and whether it may get /metrics.
		{"create", "authentication.k8s.io", "tokenreviews", "", true},
		{"create", "authorization.k8s.io", "subjectaccessreviews", "", true},
		{"list", "authentication.k8s.io", "tokenreviews", "", false},
		{"delete", "", "namespaces", "", false},
		{"escalate", "rbac.authorization.k8s.io", "roles", "team-a", false},
	} {
		if got := can(t, e, ns, c.verb, c.group, c.resource, c.namespace); got != c.want {
			t.Errorf("namespaced mode: %s %q %s in %q allowed=%v, want %v", c.verb, c.group, c.resource, c.namespace, got, c.want)
		}
	}
	for _, c := range []check{
		{"list", "kura.dev", "mysqlclusters", "", true},
		{"patch", "", "pods", "not-watched", true},
		{"update", "coordination.k8s.io", "leases", "kura-cluster", true},
		{"update", "coordination.k8s.io", "leases", "team-a", false},
		{"delete", "", "namespaces", "", false},
		{"create", "", "nodes", "", false},
	} {
		if got := can(t, e, "kura-cluster", c.verb, c.group, c.resource, c.namespace); got != c.want {
			t.Errorf("cluster mode: %s %q %s in %q allowed=%v, want %v", c.verb, c.group, c.resource, c.namespace, got, c.want)
		}
	}
	// Every permission of the rules reaches the operator in a watched namespace.
	for _, p := range permissions(chartRules(t)) {
		f := strings.Fields(p)
		group := strings.Trim(f[0], `"`)
		if !can(t, e, ns, f[2], group, f[1], "team-a") {
			t.Errorf("namespaced mode does not grant %s in team-a", p)
		}
	}
}

// The operator Pod passes the API server's Pod Security admission at the restricted level:
// a Pod made from the Deployment's template is dry-run created in a namespace that enforces
// it, and the same Pod without its security context is refused there.
func TestPodMeetsRestrictedPodSecurity(t *testing.T) {
	e := apiServer(t)
	ctx := context.Background()
	const ns = "restricted"
	nsObj := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: map[string]string{
		"pod-security.kubernetes.io/enforce":         "restricted",
		"pod-security.kubernetes.io/enforce-version": "latest",
	}}}
	if err := e.Client.Create(ctx, nsObj); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("failed to create namespace: %v", err)
	}
	d, _ := operator(t, render(t, renderOpts{}))
	pod := func() *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "operator", Namespace: ns, Labels: d.Spec.Template.Labels},
			Spec:       *d.Spec.Template.Spec.DeepCopy(),
		}
	}
	p := pod()
	p.Spec.ServiceAccountName = "default"
	if err := e.Client.Create(ctx, p, client.DryRunAll); err != nil {
		t.Fatalf("restricted Pod Security refused the operator Pod: %v", err)
	}
	p = pod()
	p.Spec.ServiceAccountName = "default"
	p.Spec.SecurityContext = nil
	p.Spec.Containers[0].SecurityContext = nil
	if err := e.Client.Create(ctx, p, client.DryRunAll); err == nil {
		t.Fatal("restricted Pod Security accepted a Pod without a security context: the check proves nothing")
	}
}
