package charttest

import (
	"slices"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
)

const testDigest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// option is one documented value, set and then checked in the rendered objects.
type option struct {
	value string // the value's path in values.yaml
	sets  []string
	api   []string
	check func(t *testing.T, r *rendered)
}

// options covers every value of values.yaml; TestEveryValueHasAnOptionCase keeps it so.
var options = []option{
	{value: "replicaCount", sets: []string{"replicaCount=3"}, check: func(t *testing.T, r *rendered) {
		d, c := operator(t, r)
		if ptr.Deref(d.Spec.Replicas, 0) != 3 || !slices.Contains(c.Args, "--leader-elect") {
			t.Errorf("replicas = %v, args = %v", d.Spec.Replicas, c.Args)
		}
	}},
	{value: "image.repository", sets: []string{"image.repository=registry.local/kura", "image.tag=dev"}, check: func(t *testing.T, r *rendered) {
		wantImage(t, r, "registry.local/kura:dev")
	}},
	{value: "image.tag", sets: []string{"image.tag=0.2.0-rc.1"}, check: func(t *testing.T, r *rendered) {
		wantImage(t, r, "kura-db/kura:0.2.0-rc.1")
	}},
	{value: "image.digest", sets: []string{"image.digest=" + testDigest}, check: func(t *testing.T, r *rendered) {
		wantImage(t, r, "kura-db/kura@"+testDigest)
	}},
	{value: "image.pullPolicy", sets: []string{"image.pullPolicy=Always"}, check: func(t *testing.T, r *rendered) {
		if _, c := operator(t, r); c.ImagePullPolicy != corev1.PullAlways {
			t.Errorf("imagePullPolicy = %q", c.ImagePullPolicy)
		}
	}},
	{value: "imagePullSecrets", sets: []string{"imagePullSecrets[0].name=regcred"}, check: func(t *testing.T, r *rendered) {
		d, _ := operator(t, r)
		if got := d.Spec.Template.Spec.ImagePullSecrets; len(got) != 1 || got[0].Name != "regcred" {
			t.Errorf("imagePullSecrets = %v", got)
		}
	}},
	{value: "nameOverride", sets: []string{"nameOverride=dbop"}, check: func(t *testing.T, r *rendered) {
		d := get[appsv1.Deployment](t, r, "Deployment", releaseNamespace, "kura-dbop")
		if d.Labels["app.kubernetes.io/name"] != "dbop" || d.Spec.Template.Labels["app.kubernetes.io/name"] != "dbop" {
			t.Errorf("labels = %v", d.Labels)
		}
	}},
	{value: "fullnameOverride", sets: []string{"fullnameOverride=db-operator"}, check: func(t *testing.T, r *rendered) {
		get[rbacv1.ClusterRole](t, r, "ClusterRole", "", "db-operator")
		get[corev1.Service](t, r, "Service", releaseNamespace, "db-operator-metrics")
		get[corev1.ServiceAccount](t, r, "ServiceAccount", releaseNamespace, "db-operator")
	}},
	{value: "watchNamespaces", sets: []string{"watchNamespaces={team-a}"}, check: func(t *testing.T, r *rendered) {
		get[rbacv1.Role](t, r, "Role", "team-a", "kura")
		wantArg(t, r, "--namespaces=team-a")
	}},
	{value: "clusteringInterval", sets: []string{"clusteringInterval=500ms"}, check: func(t *testing.T, r *rendered) {
		wantArg(t, r, "--clustering-interval=500ms")
	}},
	{value: "logLevel", sets: []string{"logLevel=debug"}, check: func(t *testing.T, r *rendered) {
		wantArg(t, r, "--zap-log-level=debug")
	}},
	{value: "extraArgs", sets: []string{"extraArgs={--some-flag=x}"}, check: func(t *testing.T, r *rendered) {
		if _, c := operator(t, r); c.Args[len(c.Args)-1] != "--some-flag=x" {
			t.Errorf("args = %v, want --some-flag=x last", c.Args)
		}
	}},
	{value: "extraEnv", sets: []string{"extraEnv[0].name=GOMEMLIMIT", "extraEnv[0].value=400MiB"}, check: func(t *testing.T, r *rendered) {
		_, c := operator(t, r)
		if !slices.Contains(c.Env, corev1.EnvVar{Name: "GOMEMLIMIT", Value: "400MiB"}) {
			t.Errorf("env = %v", c.Env)
		}
	}},
	{value: "serviceAccount.create", sets: []string{"serviceAccount.create=false", "serviceAccount.name=existing"}, check: func(t *testing.T, r *rendered) {
		if r.find("ServiceAccount", releaseNamespace, "existing") != nil || r.find("ServiceAccount", releaseNamespace, "kura") != nil {
			t.Error("a ServiceAccount is rendered with serviceAccount.create=false")
		}
		wantServiceAccount(t, r, "existing")
	}},
	{value: "serviceAccount.name", sets: []string{"serviceAccount.name=kura-op"}, check: func(t *testing.T, r *rendered) {
		get[corev1.ServiceAccount](t, r, "ServiceAccount", releaseNamespace, "kura-op")
		wantServiceAccount(t, r, "kura-op")
	}},
	{value: "serviceAccount.annotations", sets: []string{"serviceAccount.annotations.team=db"}, check: func(t *testing.T, r *rendered) {
		sa := get[corev1.ServiceAccount](t, r, "ServiceAccount", releaseNamespace, "kura")
		if sa.Annotations["team"] != "db" {
			t.Errorf("annotations = %v", sa.Annotations)
		}
	}},
	{value: "rbac.create", sets: []string{"rbac.create=false"}, check: func(t *testing.T, r *rendered) {
		for _, u := range r.objects {
			if u.GroupVersionKind().Group == rbacv1.GroupName {
				t.Errorf("rbac.create=false renders %s", key(u))
			}
		}
	}},
	{value: "podAnnotations", sets: []string{"podAnnotations.checksum=abc"}, check: func(t *testing.T, r *rendered) {
		d, _ := operator(t, r)
		if a := d.Spec.Template.Annotations; a["checksum"] != "abc" || a["kubectl.kubernetes.io/default-container"] != "operator" {
			t.Errorf("pod annotations = %v", a)
		}
	}},
	{value: "podLabels", sets: []string{"podLabels.team=db"}, check: func(t *testing.T, r *rendered) {
		d, _ := operator(t, r)
		if l := d.Spec.Template.Labels; l["team"] != "db" || l["app.kubernetes.io/name"] != "kura" {
			t.Errorf("pod labels = %v", l)
		}
	}},
	{value: "podSecurityContext", sets: []string{"podSecurityContext.runAsUser=1001"}, check: func(t *testing.T, r *rendered) {
		d, _ := operator(t, r)
		psc := d.Spec.Template.Spec.SecurityContext
		if ptr.Deref(psc.RunAsUser, 0) != 1001 || !ptr.Deref(psc.RunAsNonRoot, false) {
			t.Errorf("pod securityContext = %+v (the other defaults must stay)", psc)
		}
	}},
	{value: "securityContext", sets: []string{"securityContext.runAsUser=1001"}, check: func(t *testing.T, r *rendered) {
		_, c := operator(t, r)
		if sc := c.SecurityContext; ptr.Deref(sc.RunAsUser, 0) != 1001 || !ptr.Deref(sc.ReadOnlyRootFilesystem, false) {
			t.Errorf("container securityContext = %+v (the other defaults must stay)", sc)
		}
	}},
	{value: "resources.requests", sets: []string{"resources.requests.cpu=250m"}, check: func(t *testing.T, r *rendered) {
		_, c := operator(t, r)
		if c.Resources.Requests.Cpu().Cmp(resource.MustParse("250m")) != 0 || c.Resources.Requests.Memory().IsZero() {
			t.Errorf("resources = %+v", c.Resources)
		}
	}},
	{value: "resources.limits", sets: []string{"resources.limits.cpu=2"}, check: func(t *testing.T, r *rendered) {
		_, c := operator(t, r)
		if c.Resources.Limits.Cpu().Cmp(resource.MustParse("2")) != 0 || c.Resources.Limits.Memory().IsZero() {
			t.Errorf("resources = %+v", c.Resources)
		}
	}},
	{value: "nodeSelector", sets: []string{"nodeSelector.disk=ssd"}, check: func(t *testing.T, r *rendered) {
		if d, _ := operator(t, r); d.Spec.Template.Spec.NodeSelector["disk"] != "ssd" {
			t.Errorf("nodeSelector = %v", d.Spec.Template.Spec.NodeSelector)
		}
	}},
	{value: "tolerations", sets: []string{"tolerations[0].key=dedicated", "tolerations[0].operator=Exists", "tolerations[0].effect=NoSchedule"}, check: func(t *testing.T, r *rendered) {
		d, _ := operator(t, r)
		want := corev1.Toleration{Key: "dedicated", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}
		if tl := d.Spec.Template.Spec.Tolerations; len(tl) != 1 || tl[0] != want {
			t.Errorf("tolerations = %v", tl)
		}
	}},
	{value: "affinity", sets: []string{
		"affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].key=zone",
		"affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].operator=In",
		"affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].values={a}",
	}, check: func(t *testing.T, r *rendered) {
		d, _ := operator(t, r)
		a := d.Spec.Template.Spec.Affinity
		if a == nil || a.NodeAffinity == nil || a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil ||
			a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms[0].MatchExpressions[0].Key != "zone" {
			t.Errorf("affinity = %+v", a)
		}
	}},
	{value: "priorityClassName", sets: []string{"priorityClassName=system-cluster-critical"}, check: func(t *testing.T, r *rendered) {
		if d, _ := operator(t, r); d.Spec.Template.Spec.PriorityClassName != "system-cluster-critical" {
			t.Errorf("priorityClassName = %q", d.Spec.Template.Spec.PriorityClassName)
		}
	}},
	{value: "terminationGracePeriodSeconds", sets: []string{"terminationGracePeriodSeconds=45"}, check: func(t *testing.T, r *rendered) {
		if d, _ := operator(t, r); ptr.Deref(d.Spec.Template.Spec.TerminationGracePeriodSeconds, 0) != 45 {
			t.Errorf("terminationGracePeriodSeconds = %v", d.Spec.Template.Spec.TerminationGracePeriodSeconds)
		}
	}},
	{value: "metrics.service.type", sets: []string{"metrics.service.type=NodePort"}, check: func(t *testing.T, r *rendered) {
		if s := get[corev1.Service](t, r, "Service", releaseNamespace, "kura-metrics"); s.Spec.Type != corev1.ServiceTypeNodePort {
			t.Errorf("type = %q", s.Spec.Type)
		}
	}},
	{value: "metrics.service.port", sets: []string{"metrics.service.port=9443"}, check: func(t *testing.T, r *rendered) {
		s := get[corev1.Service](t, r, "Service", releaseNamespace, "kura-metrics")
		if s.Spec.Ports[0].Port != 9443 || s.Spec.Ports[0].TargetPort.StrVal != "metrics" {
			t.Errorf("ports = %+v", s.Spec.Ports)
		}
	}},
	{value: "metrics.service.annotations", sets: []string{"metrics.service.annotations.scrape=yes"}, check: func(t *testing.T, r *rendered) {
		if s := get[corev1.Service](t, r, "Service", releaseNamespace, "kura-metrics"); s.Annotations["scrape"] != "yes" {
			t.Errorf("annotations = %v", s.Annotations)
		}
	}},
	{value: "metrics.serviceMonitor.enabled", sets: []string{"metrics.serviceMonitor.enabled=true"}, api: []string{serviceMonitorAPI}, check: func(t *testing.T, r *rendered) {
		sm := r.find("ServiceMonitor", releaseNamespace, "kura")
		if sm == nil {
			t.Fatalf("no ServiceMonitor rendered: %v", r.keys())
		}
		ep := endpoint(t, r)
		tlsConfig, _ := ep["tlsConfig"].(map[string]any)
		if ep["port"] != "metrics" || ep["scheme"] != "https" || ep["path"] != "/metrics" || ep["interval"] != "30s" ||
			ep["bearerTokenFile"] != "/var/run/secrets/kubernetes.io/serviceaccount/token" || tlsConfig["insecureSkipVerify"] != true {
			t.Errorf("ServiceMonitor endpoint = %v; want https with the ServiceAccount token", ep)
		}
	}},
	{value: "metrics.secure", sets: []string{"metrics.secure=false", "metrics.serviceMonitor.enabled=true"}, api: []string{serviceMonitorAPI}, check: func(t *testing.T, r *rendered) {
		wantArg(t, r, "--metrics-secure=false")
		if ep := endpoint(t, r); ep["scheme"] != "http" || ep["bearerTokenFile"] != nil || ep["tlsConfig"] != nil {
			t.Errorf("ServiceMonitor endpoint = %v; want plain http", ep)
		}
		for _, name := range []string{"kura-metrics-auth", "kura-metrics-reader"} {
			if r.find("ClusterRole", "", name) != nil {
				t.Errorf("ClusterRole %s rendered although metrics are not secured", name)
			}
		}
	}},
	{value: "metrics.serviceMonitor.tlsConfig", sets: []string{"metrics.serviceMonitor.enabled=true", "metrics.serviceMonitor.tlsConfig.insecureSkipVerify=false",
		"metrics.serviceMonitor.tlsConfig.serverName=kura-metrics.kura-system.svc"}, api: []string{serviceMonitorAPI}, check: func(t *testing.T, r *rendered) {
		tlsConfig, _ := endpoint(t, r)["tlsConfig"].(map[string]any)
		if tlsConfig["insecureSkipVerify"] != false || tlsConfig["serverName"] != "kura-metrics.kura-system.svc" {
			t.Errorf("tlsConfig = %v", tlsConfig)
		}
	}},
	{value: "metrics.serviceMonitor.interval", sets: []string{"metrics.serviceMonitor.enabled=true", "metrics.serviceMonitor.interval=1m"}, api: []string{serviceMonitorAPI}, check: func(t *testing.T, r *rendered) {
		if ep := endpoint(t, r); ep["interval"] != "1m" {
			t.Errorf("interval = %v", ep["interval"])
		}
	}},
	{value: "metrics.serviceMonitor.scrapeTimeout", sets: []string{"metrics.serviceMonitor.enabled=true", "metrics.serviceMonitor.scrapeTimeout=10s"}, api: []string{serviceMonitorAPI}, check: func(t *testing.T, r *rendered) {
		if ep := endpoint(t, r); ep["scrapeTimeout"] != "10s" {
			t.Errorf("scrapeTimeout = %v", ep["scrapeTimeout"])
		}
	}},
	{value: "metrics.serviceMonitor.labels", sets: []string{"metrics.serviceMonitor.enabled=true", "metrics.serviceMonitor.labels.release=prom"}, api: []string{serviceMonitorAPI}, check: func(t *testing.T, r *rendered) {
		sm := r.find("ServiceMonitor", releaseNamespace, "kura")
		if sm == nil || sm.GetLabels()["release"] != "prom" {
			t.Errorf("ServiceMonitor = %v", sm)
		}
	}},
}

func TestOptions(t *testing.T) {
	for _, o := range options {
		t.Run(o.value, func(t *testing.T) {
			o.check(t, render(t, renderOpts{apiVersions: o.api}, o.sets...))
		})
	}
}

// The ServiceMonitor is rendered only when the cluster serves its API, so enabling it without
// the Prometheus Operator does not break the install.
func TestServiceMonitorNeedsItsAPI(t *testing.T) {
	r := render(t, renderOpts{}, "metrics.serviceMonitor.enabled=true")
	if sm := r.find("ServiceMonitor", releaseNamespace, "kura"); sm != nil {
		t.Error("ServiceMonitor rendered although the cluster does not serve monitoring.coreos.com/v1")
	}
	r = render(t, renderOpts{apiVersions: []string{serviceMonitorAPI}})
	if sm := r.find("ServiceMonitor", releaseNamespace, "kura"); sm != nil {
		t.Error("ServiceMonitor rendered although metrics.serviceMonitor.enabled is false")
	}
}

func wantImage(t *testing.T, r *rendered, image string) {
	t.Helper()
	_, c := operator(t, r)
	if c.Image != image || !slices.Contains(c.Args, "--kura-image="+image) {
		t.Errorf("image = %q, args = %v; want %q for both", c.Image, c.Args, image)
	}
}

func wantArg(t *testing.T, r *rendered, arg string) {
	t.Helper()
	if _, c := operator(t, r); !slices.Contains(c.Args, arg) {
		t.Errorf("args = %v, want %s", c.Args, arg)
	}
}

// wantServiceAccount checks that the Pods run as name and every binding names it.
func wantServiceAccount(t *testing.T, r *rendered, name string) {
	t.Helper()
	if d, _ := operator(t, r); d.Spec.Template.Spec.ServiceAccountName != name {
		t.Errorf("serviceAccountName = %q, want %q", d.Spec.Template.Spec.ServiceAccountName, name)
	}
	for _, u := range r.objects {
		if u.GetKind() != "ClusterRoleBinding" && u.GetKind() != "RoleBinding" {
			continue
		}
		b := get[rbacv1.RoleBinding](t, r, u.GetKind(), u.GetNamespace(), u.GetName())
		if len(b.Subjects) != 1 || b.Subjects[0].Name != name || b.Subjects[0].Namespace != releaseNamespace {
			t.Errorf("%s binds %v, want ServiceAccount %s/%s", key(u), b.Subjects, releaseNamespace, name)
		}
	}
}

// endpoint returns the ServiceMonitor's single endpoint.
func endpoint(t *testing.T, r *rendered) map[string]any {
	t.Helper()
	sm := r.find("ServiceMonitor", releaseNamespace, "kura")
	if sm == nil {
		t.Fatalf("no ServiceMonitor rendered: %v", r.keys())
	}
	eps, _, _ := unstructured.NestedSlice(sm.Object, "spec", "endpoints")
	if len(eps) != 1 {
		t.Fatalf("ServiceMonitor has %d endpoints, want 1", len(eps))
	}
	ep, _ := eps[0].(map[string]any)
	return ep
}
