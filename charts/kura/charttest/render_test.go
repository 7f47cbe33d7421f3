package charttest

import (
	"slices"
	"strings"
	"testing"

	"helm.sh/helm/v4/pkg/chart/loader"
	chartv2 "helm.sh/helm/v4/pkg/chart/v2"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

const defaultImage = "kura-db/kura:0.1.0"

// operator returns the rendered Deployment and its operator container.
func operator(t *testing.T, r *rendered) (*appsv1.Deployment, *corev1.Container) {
	t.Helper()
	d := get[appsv1.Deployment](t, r, "Deployment", releaseNamespace, "kura")
	if n := len(d.Spec.Template.Spec.Containers); n != 1 {
		t.Fatalf("Deployment has %d containers, want 1", n)
	}
	return d, &d.Spec.Template.Spec.Containers[0]
}

func TestDefaultObjects(t *testing.T) {
	r := render(t, renderOpts{})
	want := []string{
		"ClusterRole//kura",
		"ClusterRole//kura-metrics-auth",
		"ClusterRole//kura-metrics-reader",
		"ClusterRoleBinding//kura",
		"ClusterRoleBinding//kura-metrics-auth",
		"Deployment/kura-system/kura",
		"Role/kura-system/kura-leader-election",
		"RoleBinding/kura-system/kura-leader-election",
		"Service/kura-system/kura-metrics",
		"ServiceAccount/kura-system/kura",
	}
	if got := r.keys(); !slices.Equal(got, want) {
		t.Fatalf("rendered objects:\n%v\nwant:\n%v", got, want)
	}
	for _, u := range r.objects {
		l := u.GetLabels()
		if l["app.kubernetes.io/name"] != "kura" || l["app.kubernetes.io/instance"] != releaseName ||
			l["app.kubernetes.io/managed-by"] != "Helm" || l["app.kubernetes.io/version"] != "0.1.0" {
			t.Errorf("%s has labels %v, want the chart's common labels", key(u), l)
		}
	}

	crb := get[rbacv1.ClusterRoleBinding](t, r, "ClusterRoleBinding", "", "kura")
	wantSubject := []rbacv1.Subject{{Kind: "ServiceAccount", Name: "kura", Namespace: releaseNamespace}}
	if crb.RoleRef != (rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "kura"}) ||
		!equality.Semantic.DeepEqual(crb.Subjects, wantSubject) {
		t.Errorf("ClusterRoleBinding kura binds %v to %v", crb.RoleRef, crb.Subjects)
	}
	le := get[rbacv1.Role](t, r, "Role", releaseNamespace, "kura-leader-election")
	if !slices.Contains(permissions(le.Rules), `"coordination.k8s.io" leases update`) {
		t.Errorf("leader election Role lacks leases update: %v", permissions(le.Rules))
	}

	svc := get[corev1.Service](t, r, "Service", releaseNamespace, "kura-metrics")
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != 8443 || svc.Spec.Ports[0].TargetPort != intstr.FromString("metrics") {
		t.Errorf("metrics Service ports = %+v", svc.Spec.Ports)
	}
	d, _ := operator(t, r)
	if !equality.Semantic.DeepEqual(svc.Spec.Selector, d.Spec.Selector.MatchLabels) {
		t.Errorf("metrics Service selects %v, Deployment Pods carry %v", svc.Spec.Selector, d.Spec.Selector.MatchLabels)
	}
}

func TestDefaultDeployment(t *testing.T) {
	d, c := operator(t, render(t, renderOpts{}))
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 1 {
		t.Errorf("replicas = %v, want 1", d.Spec.Replicas)
	}
	ps := d.Spec.Template.Spec
	if ps.ServiceAccountName != "kura" {
		t.Errorf("serviceAccountName = %q", ps.ServiceAccountName)
	}
	if c.Image != defaultImage {
		t.Errorf("image = %q, want %q", c.Image, defaultImage)
	}
	if !slices.Equal(c.Command, []string{"/kura"}) {
		t.Errorf("command = %v", c.Command)
	}
	wantArgs := []string{
		"operator",
		"--clustering-interval=1s",
		"--leader-elect",
		"--metrics-bind-address=:8443",
		"--metrics-secure=true",
		"--health-probe-bind-address=:8081",
		"--kura-image=" + defaultImage,
		"--zap-log-level=info",
	}
	if !slices.Equal(c.Args, wantArgs) {
		t.Errorf("args =\n%v\nwant\n%v", c.Args, wantArgs)
	}
	// The instances' NetworkPolicies admit the operator by these labels: they must select
	// the operator's own Pods.
	var podLabels string
	for _, e := range c.Env {
		if e.Name == "KURA_OPERATOR_POD_LABELS" {
			podLabels = e.Value
		}
	}
	for k, v := range d.Spec.Selector.MatchLabels {
		if !strings.Contains(","+podLabels+",", ","+k+"="+v+",") || d.Spec.Template.Labels[k] != v {
			t.Errorf("KURA_OPERATOR_POD_LABELS=%q lacks selector label %s=%s", podLabels, k, v)
		}
	}
	if podLabels == "" || strings.Count(podLabels, "=") != len(d.Spec.Selector.MatchLabels) {
		t.Errorf("KURA_OPERATOR_POD_LABELS=%q, want the selector labels %v", podLabels, d.Spec.Selector.MatchLabels)
	}

	for _, p := range []struct {
		probe *corev1.Probe
		path  string
	}{{c.LivenessProbe, "/healthz"}, {c.ReadinessProbe, "/readyz"}} {
		if p.probe == nil || p.probe.HTTPGet == nil || p.probe.HTTPGet.Path != p.path || p.probe.HTTPGet.Port != intstr.FromString("health") {
			t.Errorf("probe for %s = %+v", p.path, p.probe)
		}
	}
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	if ports["health"] != 8081 || ports["metrics"] != 8443 || len(ports) != 2 {
		t.Errorf("container ports = %v, want health 8081 and metrics 8443", ports)
	}

	// The restricted Pod Security Standard.
	psc := ps.SecurityContext
	if psc == nil || !ptr.Deref(psc.RunAsNonRoot, false) || psc.SeccompProfile == nil ||
		psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod securityContext = %+v", psc)
	}
	sc := c.SecurityContext
	if sc == nil || !ptr.Deref(sc.RunAsNonRoot, false) || !ptr.Deref(sc.ReadOnlyRootFilesystem, false) ||
		ptr.Deref(sc.AllowPrivilegeEscalation, true) || ptr.Deref(sc.Privileged, false) ||
		sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) ||
		len(sc.Capabilities.Add) != 0 ||
		sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("container securityContext = %+v", sc)
	}
	if ps.HostNetwork || ps.HostPID || ps.HostIPC {
		t.Error("operator Pod shares a host namespace")
	}
	for _, v := range ps.Volumes {
		if v.HostPath != nil {
			t.Errorf("volume %s is a hostPath", v.Name)
		}
	}

	if c.Resources.Requests.Cpu().Cmp(resource.MustParse("100m")) != 0 ||
		c.Resources.Limits.Memory().Cmp(resource.MustParse("512Mi")) != 0 {
		t.Errorf("resources = %+v", c.Resources)
	}
	if ps.NodeSelector != nil || ps.Affinity != nil || ps.Tolerations != nil || ps.PriorityClassName != "" ||
		ps.ImagePullSecrets != nil {
		t.Errorf("scheduling options set without values: %+v", ps)
	}
}

func TestWatchNamespaces(t *testing.T) {
	r := render(t, renderOpts{}, "watchNamespaces={team-a,team-b}")
	for _, k := range r.keys() {
		if k == "ClusterRole//kura" || k == "ClusterRoleBinding//kura" {
			t.Errorf("namespaced mode renders %s", k)
		}
	}
	for _, ns := range []string{"team-a", "team-b"} {
		get[rbacv1.Role](t, r, "Role", ns, "kura")
		rb := get[rbacv1.RoleBinding](t, r, "RoleBinding", ns, "kura")
		if rb.RoleRef.Kind != "Role" || rb.RoleRef.Name != "kura" || len(rb.Subjects) != 1 ||
			rb.Subjects[0].Name != "kura" || rb.Subjects[0].Namespace != releaseNamespace {
			t.Errorf("RoleBinding %s/kura = %+v %+v", ns, rb.RoleRef, rb.Subjects)
		}
	}
	// Leader election stays in the release namespace, which is not watched.
	get[rbacv1.Role](t, r, "Role", releaseNamespace, "kura-leader-election")
	get[rbacv1.RoleBinding](t, r, "RoleBinding", releaseNamespace, "kura-leader-election")
	if r.find("Role", releaseNamespace, "kura") != nil {
		t.Error("the release namespace got the operator Role although it is not watched")
	}

	_, c := operator(t, r)
	if !slices.Contains(c.Args, "--namespaces=team-a,team-b") {
		t.Errorf("args %v lack --namespaces=team-a,team-b", c.Args)
	}
	if !strings.Contains(r.notes, "kubectl apply -n team-a") {
		t.Errorf("NOTES do not apply the sample in a watched namespace:\n%s", r.notes)
	}
}

func TestNotes(t *testing.T) {
	r := render(t, renderOpts{})
	for _, want := range []string{
		"kubectl -n kura-system rollout status deployment/kura",
		"kind: MySQLCluster",
		"kubectl get mysqlclusters -n default -w",
		"--for=condition=Available mysqlcluster/demo",
		"kubectl apply --server-side -f",
	} {
		if !strings.Contains(r.notes, want) {
			t.Errorf("NOTES lack %q:\n%s", want, r.notes)
		}
	}
	if _, err := sampleCluster(r.notes); err != nil {
		t.Error(err)
	}
}

// The chart as Helm loads (and packages) it carries no test code.
func TestChartHoldsNoTestCode(t *testing.T) {
	ch, err := loader.Load(chartDir())
	if err != nil {
		t.Fatalf("failed to load chart: %v", err)
	}
	c, ok := ch.(*chartv2.Chart)
	if !ok {
		t.Fatalf("unexpected chart type %T", ch)
	}
	if len(c.Files) == 0 || len(c.Templates) == 0 {
		t.Fatalf("loaded %d files and %d templates, want some of each", len(c.Files), len(c.Templates))
	}
	for _, f := range append(c.Files, c.Templates...) {
		if strings.HasPrefix(f.Name, "charttest/") || strings.HasSuffix(f.Name, ".go") {
			t.Errorf("the chart carries %s; .helmignore must leave it out", f.Name)
		}
	}
}
