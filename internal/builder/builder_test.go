package builder

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/internal/contract"
	"github.com/kura-db/kura/internal/golden"
)

var opts = Options{KuraImage: "kura:dev"}

func newCluster(mut ...func(*kurav1alpha1.MySQLCluster)) *kurav1alpha1.MySQLCluster {
	c := &kurav1alpha1.MySQLCluster{
		ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: "prod", UID: types.UID("0b6c2e1a-0000-4000-8000-000000000001")},
		Spec: kurav1alpha1.MySQLClusterSpec{
			Engine:   kurav1alpha1.EngineMariaDB,
			Replicas: 3,
			Storage:  kurav1alpha1.StorageSpec{Size: resource.MustParse("20Gi")},
		},
	}
	for _, m := range mut {
		m(c)
	}
	return c
}

func TestStatefulSetGolden(t *testing.T) {
	cases := map[string]*kurav1alpha1.MySQLCluster{
		"statefulset-mariadb.yaml": newCluster(),
		"statefulset-mysql.yaml": newCluster(func(c *kurav1alpha1.MySQLCluster) {
			c.Spec.Engine = kurav1alpha1.EngineMySQL
			c.Spec.Replicas = 5
			c.Spec.DeletionPolicy = kurav1alpha1.DeletionPolicyDelete
			c.Spec.Storage.StorageClassName = ptr.To("fast")
			c.Spec.Pod.AntiAffinity = "Required"
			c.Spec.Pod.Tolerations = []corev1.Toleration{{Key: "db", Operator: corev1.TolerationOpExists}}
			c.Spec.Pod.NodeSelector = map[string]string{"disk": "ssd"}
			c.Spec.Pod.PriorityClassName = "databases"
			c.Spec.Pod.Labels = map[string]string{"team": "shop"}
			c.Spec.Resources = corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2")}}
		}),
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			b, err := yaml.Marshal(StatefulSet(c, "abc123", "", nil, opts))
			if err != nil {
				t.Fatal(err)
			}
			golden.Assert(t, name, b)
		})
	}
}

func TestStatefulSetInvariants(t *testing.T) {
	sts := StatefulSet(newCluster(), "h", "", nil, opts)
	if sts.Spec.UpdateStrategy.Type != "OnDelete" {
		t.Error("instances must only be restarted by the clustering loop (OnDelete)")
	}
	if got := sts.Spec.PersistentVolumeClaimRetentionPolicy.WhenDeleted; got != "Retain" {
		t.Errorf("PVCs must be kept by default, got %s", got)
	}
	del := StatefulSet(newCluster(func(c *kurav1alpha1.MySQLCluster) { c.Spec.DeletionPolicy = kurav1alpha1.DeletionPolicyDelete }), "h", "", nil, opts)
	if got := del.Spec.PersistentVolumeClaimRetentionPolicy.WhenDeleted; got != "Delete" {
		t.Errorf("deletionPolicy Delete must delete PVCs, got %s", got)
	}
	pod := sts.Spec.Template.Spec
	if pod.SecurityContext.RunAsNonRoot == nil || !*pod.SecurityContext.RunAsNonRoot {
		t.Error("instances must run as non-root")
	}
	if *pod.AutomountServiceAccountToken {
		t.Error("instance Pods need no API token")
	}
	for _, ctr := range append(pod.InitContainers, pod.Containers...) {
		if ctr.SecurityContext == nil || ctr.SecurityContext.AllowPrivilegeEscalation == nil || *ctr.SecurityContext.AllowPrivilegeEscalation {
			t.Errorf("container %s may escalate privileges", ctr.Name)
		}
		for _, e := range ctr.Env {
			if strings.Contains(e.Name, "PASSWORD") && e.Value != "" {
				t.Errorf("container %s has a password in its spec", ctr.Name)
			}
		}
	}
	if pod.InitContainers[0].Image != "kura:dev" || pod.InitContainers[1].Image != "mariadb:11.4" {
		t.Errorf("images: %s, %s", pod.InitContainers[0].Image, pod.InitContainers[1].Image)
	}
	if got := strings.Join(pod.Containers[0].Command, " "); got != "/opt/kura/bin/kura mysqld --hold-for=45s -- mariadbd --defaults-file=/etc/kura/config/my.cnf" {
		t.Errorf("mysqld command: %s", got)
	}
	if sts.Spec.Template.Annotations[contract.AnnotationConfigHash] != "h" {
		t.Error("the pod template must carry the config hash")
	}
	if pod.Affinity.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution[0].PodAffinityTerm.TopologyKey != corev1.LabelHostname {
		t.Error("instances must be spread across nodes by default")
	}
	none := StatefulSet(newCluster(func(c *kurav1alpha1.MySQLCluster) { c.Spec.Pod.AntiAffinity = "None" }), "h", "", nil, opts)
	if none.Spec.Template.Spec.Affinity != nil {
		t.Error("antiAffinity None must not set an affinity")
	}
	own := &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{}}
	custom := StatefulSet(newCluster(func(c *kurav1alpha1.MySQLCluster) { c.Spec.Pod.Affinity = own }), "h", "", nil, opts)
	if custom.Spec.Template.Spec.Affinity != own {
		t.Error("a user affinity must replace the default")
	}
}

func TestVersionAndImage(t *testing.T) {
	cases := []struct {
		mut       func(*kurav1alpha1.MySQLCluster)
		wantImage string
	}{
		{func(c *kurav1alpha1.MySQLCluster) {}, "mariadb:11.4"},
		{func(c *kurav1alpha1.MySQLCluster) { c.Spec.Version = "10.11" }, "mariadb:10.11"},
		{func(c *kurav1alpha1.MySQLCluster) { c.Spec.Engine = kurav1alpha1.EngineMySQL }, "mysql:8.4"},
		{func(c *kurav1alpha1.MySQLCluster) { c.Spec.Engine = ""; c.Spec.Image = "registry.local/mariadb:11.4.5" }, "registry.local/mariadb:11.4.5"},
	}
	for _, tc := range cases {
		if got := EngineImage(newCluster(tc.mut)); got != tc.wantImage {
			t.Errorf("image = %s, want %s", got, tc.wantImage)
		}
	}
}

func TestServices(t *testing.T) {
	c := newCluster(func(c *kurav1alpha1.MySQLCluster) {
		c.Spec.PrimaryService = kurav1alpha1.ServiceTemplate{Type: corev1.ServiceTypeLoadBalancer, Annotations: map[string]string{"lb": "internal"}, Labels: map[string]string{"expose": "yes"}, ExternalTrafficPolicy: corev1.ServiceExternalTrafficPolicyLocal}
	})
	h := HeadlessService(c)
	if h.Spec.ClusterIP != "None" || !h.Spec.PublishNotReadyAddresses || h.Name != "shop-instances" {
		t.Errorf("headless service: %+v", h.Spec)
	}
	p := PrimaryService(c)
	if p.Spec.Selector[contract.LabelRole] != contract.RolePrimary || p.Spec.Type != corev1.ServiceTypeLoadBalancer || p.Annotations["lb"] != "internal" || p.Labels["expose"] != "yes" || p.Spec.ExternalTrafficPolicy != "Local" {
		t.Errorf("primary service: %+v %+v", p.ObjectMeta, p.Spec)
	}
	r := ReplicasService(c)
	if r.Spec.Selector[contract.LabelRole] != contract.RoleReplica || r.Spec.Type != corev1.ServiceTypeClusterIP || r.Spec.ExternalTrafficPolicy != "" {
		t.Errorf("replicas service: %+v", r.Spec)
	}
	for _, s := range []*corev1.Service{h, p, r} {
		if len(s.OwnerReferences) != 1 || s.OwnerReferences[0].Name != "shop" || !*s.OwnerReferences[0].Controller {
			t.Errorf("%s: owner reference %+v", s.Name, s.OwnerReferences)
		}
	}
}

func TestCredentials(t *testing.T) {
	s1, err := CredentialsSecret(newCluster())
	if err != nil {
		t.Fatal(err)
	}
	s2, _ := CredentialsSecret(newCluster())
	if s1.Name != "shop-credentials" || len(MissingCredentialKeys(s1)) != 0 {
		t.Fatalf("generated secret %s misses %v", s1.Name, MissingCredentialKeys(s1))
	}
	seen := map[string]bool{}
	for _, k := range CredentialKeys {
		p := string(s1.Data[k])
		if len(p) != 32 || seen[p] || p == string(s2.Data[k]) {
			t.Errorf("%s: passwords must be 32 random characters, distinct", k)
		}
		seen[p] = true
	}
	user := newCluster(func(c *kurav1alpha1.MySQLCluster) {
		c.Spec.CredentialsSecret = &corev1.LocalObjectReference{Name: "mine"}
	})
	if CredentialsSecretName(user) != "mine" {
		t.Error("a user-named secret must be used")
	}
	partial := &corev1.Secret{Data: map[string][]byte{contract.KeyAdminPassword: []byte("x"), contract.KeyRootPassword: {}}}
	missing := MissingCredentialKeys(partial)
	if strings.Join(missing, ",") != "operator-password,app-password,root-password,replication-password,agent-password,backup-password" {
		t.Errorf("missing = %v", missing)
	}
}

func TestHashChangesWithSpec(t *testing.T) {
	a := StatefulSet(newCluster(), "h", "", nil, opts).Annotations[contract.AnnotationAppliedHash]
	b := StatefulSet(newCluster(func(c *kurav1alpha1.MySQLCluster) { c.Spec.Replicas = 5 }), "h", "", nil, opts).Annotations[contract.AnnotationAppliedHash]
	a2 := StatefulSet(newCluster(), "h", "", nil, opts).Annotations[contract.AnnotationAppliedHash]
	if a == "" || a == b || a != a2 {
		t.Errorf("applied hash must be stable and follow the spec: %s %s %s", a, b, a2)
	}
}

func TestPDBAndServiceAccount(t *testing.T) {
	p := PodDisruptionBudget(newCluster())
	if p.Spec.MaxUnavailable.IntValue() != 1 {
		t.Errorf("pdb maxUnavailable = %v", p.Spec.MaxUnavailable)
	}
	sa := ServiceAccount(newCluster())
	if sa.Name != "shop-mysql" || *sa.AutomountServiceAccountToken {
		t.Errorf("service account %+v", sa)
	}
}

func TestScaleDownKeepsThePrimary(t *testing.T) {
	c := newCluster(func(c *kurav1alpha1.MySQLCluster) { c.Spec.Replicas = 2 })
	if got := StatefulSetReplicas(c); got != 2 {
		t.Errorf("no primary recorded: %d", got)
	}
	c.Status.CurrentPrimaryIndex = ptr.To[int32](1)
	if got := StatefulSetReplicas(c); got != 2 {
		t.Errorf("primary inside the range: %d", got)
	}
	c.Status.CurrentPrimaryIndex = ptr.To[int32](4)
	if got := *StatefulSet(c, "h", "", nil, opts).Spec.Replicas; got != 5 {
		t.Errorf("primary at ordinal 4 must be kept until switched over, got %d instances", got)
	}
	c.Status.CurrentPrimaryIndex = ptr.To[int32](0)
	c.Status.KeepInstances = 3
	if got := StatefulSetReplicas(c); got != 3 {
		t.Errorf("a replica that may hold the only copy of an acknowledged write must be kept: %d instances", got)
	}
}

func TestHoldForLeavesTimeToShutDown(t *testing.T) {
	for grace, want := range map[int64]string{60: "45s", 20: "10s", 10: "5s"} {
		c := newCluster(func(c *kurav1alpha1.MySQLCluster) { c.Spec.Pod.TerminationGracePeriodSeconds = ptr.To(grace) })
		if got := holdFor(c).String(); got != want {
			t.Errorf("grace %ds: hold %s, want %s", grace, got, want)
		}
	}
}
