package controllers

import (
	"context"
	"fmt"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/internal/builder"
	"github.com/kura-db/kura/internal/contract"
)

func newMySQLCluster(ns, name string, mut ...func(*kurav1alpha1.MySQLCluster)) *kurav1alpha1.MySQLCluster {
	c := &kurav1alpha1.MySQLCluster{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: kurav1alpha1.MySQLClusterSpec{
			Storage: kurav1alpha1.StorageSpec{Size: resource.MustParse("1Gi")},
		},
	}
	for _, m := range mut {
		m(c)
	}
	return c
}

// updateSpec writes c's spec, labels and annotations; on a conflict (the operator wrote the
// object meanwhile) it puts them on the latest version and tries again. c becomes what was
// written.
func updateSpec(ctx context.Context, c *kurav1alpha1.MySQLCluster) error {
	err := k8s.Update(ctx, c)
	for tries := 0; apierrors.IsConflict(err) && tries < 10; tries++ {
		latest := &kurav1alpha1.MySQLCluster{}
		if gerr := k8s.Get(ctx, types.NamespacedName{Namespace: c.Namespace, Name: c.Name}, latest); gerr != nil {
			return gerr
		}
		latest.Spec, latest.Labels, latest.Annotations = c.Spec, c.Labels, c.Annotations
		if err = k8s.Update(ctx, latest); err == nil {
			*c = *latest
		}
	}
	return err
}

func getCluster(t *testing.T, ns, name string) *kurav1alpha1.MySQLCluster {
	t.Helper()
	c := &kurav1alpha1.MySQLCluster{}
	if err := k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, c); err != nil {
		t.Fatal(err)
	}
	return c
}

func reconciledCondition(c *kurav1alpha1.MySQLCluster) *metav1.Condition {
	return meta.FindStatusCondition(c.Status.Conditions, kurav1alpha1.ConditionReconciled)
}

// waitReconciled waits until the Reconciled condition reflects the current generation with
// the given status and reason.
func waitReconciled(t *testing.T, ns, name string, status metav1.ConditionStatus, reason string) *kurav1alpha1.MySQLCluster {
	t.Helper()
	var c *kurav1alpha1.MySQLCluster
	eventually(t, fmt.Sprintf("Reconciled=%s/%s", status, reason), func() error {
		c = getCluster(t, ns, name)
		cond := reconciledCondition(c)
		if cond == nil || cond.Status != status || cond.Reason != reason || cond.ObservedGeneration != c.Generation || c.Status.ObservedGeneration != c.Generation {
			return fmt.Errorf("generation %d, status %+v", c.Generation, c.Status)
		}
		return nil
	})
	return c
}

func TestMySQLClusterCreatesEveryOwnedObject(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	if err := k8s.Create(ctx, newMySQLCluster(ns, "shop")); err != nil {
		t.Fatal(err)
	}
	c := waitReconciled(t, ns, "shop", metav1.ConditionTrue, "Reconciled")

	// Defaults from the schema.
	if c.Spec.Engine != "mariadb" || c.Spec.Replicas != 3 || c.Spec.DeletionPolicy != "Retain" || *c.Spec.Replication.SemiSync != true ||
		c.Spec.Replication.FailoverGracePeriod.Seconds() != 3 || c.Spec.Replication.ErrantReplicaPolicy != "Manual" {
		t.Errorf("schema defaults not applied: %+v", c.Spec)
	}
	if c.Status.Ready != "0/3" || c.Status.Engine != "mariadb" || c.Status.Version != "11.4" || c.Status.CredentialsSecret != "shop-credentials" || c.Status.ConfigHash == "" {
		t.Errorf("status: %+v", c.Status)
	}

	objs := map[string]client.Object{
		"shop-credentials": &corev1.Secret{},
		"shop-agent-token": &corev1.Secret{}, // in the pass that created the credentials
		"shop-tls":         &corev1.Secret{},
		"shop-config":      &corev1.ConfigMap{},
		"shop-mysql":       &corev1.ServiceAccount{},
		"shop-instances":   &corev1.Service{},
		"shop-primary":     &corev1.Service{},
		"shop-replicas":    &corev1.Service{},
		"shop":             &appsv1.StatefulSet{},
	}
	for name, obj := range objs {
		if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, obj); err != nil {
			t.Fatalf("%T %s: %v", obj, name, err)
		}
		refs := obj.GetOwnerReferences()
		if len(refs) != 1 || refs[0].UID != c.UID || refs[0].Controller == nil || !*refs[0].Controller {
			t.Errorf("%s: owner references %+v", name, refs)
		}
	}
	pdb := &policyv1.PodDisruptionBudget{}
	if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "shop"}, pdb); err != nil {
		t.Fatal(err)
	}
	sts := objs["shop"].(*appsv1.StatefulSet)
	if *sts.Spec.Replicas != 3 || sts.Spec.Template.Spec.Containers[0].Image != "mariadb:11.4" || sts.Spec.Template.Spec.InitContainers[0].Image != "kura:test" {
		t.Errorf("statefulset spec: replicas %d, images %s %s", *sts.Spec.Replicas, sts.Spec.Template.Spec.Containers[0].Image, sts.Spec.Template.Spec.InitContainers[0].Image)
	}
	cm := objs["shop-config"].(*corev1.ConfigMap)
	if !strings.Contains(cm.Data["my.cnf"], "rpl_semi_sync_master_wait_point = AFTER_SYNC") {
		t.Errorf("my.cnf lacks loss-less semi-sync:\n%s", cm.Data["my.cnf"])
	}
	secret := objs["shop-credentials"].(*corev1.Secret)
	if missing := builder.MissingCredentialKeys(secret); len(missing) > 0 {
		t.Errorf("generated secret misses %v", missing)
	}
	if n, _ := loops.counts(types.NamespacedName{Namespace: ns, Name: "shop"}); n == 0 {
		t.Error("the clustering loop was not started")
	}
}

func TestMySQLClusterUpdatesObjects(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	if err := k8s.Create(ctx, newMySQLCluster(ns, "shop", func(c *kurav1alpha1.MySQLCluster) { c.Spec.Version = "10.11" })); err != nil {
		t.Fatal(err)
	}
	c := waitReconciled(t, ns, "shop", metav1.ConditionTrue, "Reconciled")
	secretBefore := &corev1.Secret{}
	if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "shop-credentials"}, secretBefore); err != nil {
		t.Fatal(err)
	}
	hashBefore := c.Status.ConfigHash

	c.Spec.Replicas = 5
	c.Spec.Version = "11.4"
	c.Spec.MySQLD.Config = map[string]string{"max_connections": "1234", "back_log": "90"}
	c.Spec.Resources = corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi")}}
	c.Spec.PrimaryService.Type = corev1.ServiceTypeNodePort
	if err := updateSpec(ctx, c); err != nil {
		t.Fatal(err)
	}
	c = waitReconciled(t, ns, "shop", metav1.ConditionTrue, "Reconciled")
	if c.Status.ConfigHash == hashBefore {
		t.Error("config hash did not change with a static option (back_log)")
	}
	sts := &appsv1.StatefulSet{}
	if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "shop"}, sts); err != nil {
		t.Fatal(err)
	}
	pod := sts.Spec.Template
	if *sts.Spec.Replicas != 5 || pod.Spec.Containers[0].Image != "mariadb:11.4" || pod.Annotations[contract.AnnotationConfigHash] != c.Status.ConfigHash ||
		pod.Spec.Containers[0].Resources.Requests.Memory().String() != "1Gi" {
		t.Errorf("statefulset not updated: replicas %d image %s hash %s", *sts.Spec.Replicas, pod.Spec.Containers[0].Image, pod.Annotations[contract.AnnotationConfigHash])
	}
	cm := &corev1.ConfigMap{}
	if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "shop-config"}, cm); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(cm.Data["my.cnf"], "max_connections = 1234") {
		t.Error("my.cnf override not rendered")
	}
	svc := &corev1.Service{}
	if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "shop-primary"}, svc); err != nil {
		t.Fatal(err)
	}
	if svc.Spec.Type != corev1.ServiceTypeNodePort {
		t.Errorf("primary service type = %s", svc.Spec.Type)
	}
	secretAfter := &corev1.Secret{}
	if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "shop-credentials"}, secretAfter); err != nil {
		t.Fatal(err)
	}
	if secretAfter.ResourceVersion != secretBefore.ResourceVersion || string(secretAfter.Data[contract.KeyAdminPassword]) != string(secretBefore.Data[contract.KeyAdminPassword]) {
		t.Error("the generated credentials Secret must never be rewritten")
	}

	// A dynamic option alone changes the ConfigMap (the next start reads it) but neither the
	// config hash nor the Pod template: the clustering loop applies it with SET GLOBAL and no
	// instance restarts.
	hashStatic := c.Status.ConfigHash
	c.Spec.MySQLD.Config = map[string]string{"max_connections": "4321", "back_log": "90", "long_query_time": "2"}
	if err := updateSpec(ctx, c); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the ConfigMap holds the new dynamic values", func() error {
		if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "shop-config"}, cm); err != nil {
			return err
		}
		if !strings.Contains(cm.Data["my.cnf"], "max_connections = 4321") || !strings.Contains(cm.Data["my.cnf"], "long_query_time = 2") {
			return fmt.Errorf("my.cnf:\n%s", cm.Data["my.cnf"])
		}
		return nil
	})
	c = waitReconciled(t, ns, "shop", metav1.ConditionTrue, "Reconciled")
	if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "shop"}, sts); err != nil {
		t.Fatal(err)
	}
	if c.Status.ConfigHash != hashStatic || sts.Spec.Template.Annotations[contract.AnnotationConfigHash] != hashStatic {
		t.Errorf("a dynamic-only change moved the config hash: status %s, template %s, was %s",
			c.Status.ConfigHash, sts.Spec.Template.Annotations[contract.AnnotationConfigHash], hashStatic)
	}
}

// A reconcile with nothing to change writes nothing.
func TestMySQLClusterSkipsUnchangedWrites(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	if err := k8s.Create(ctx, newMySQLCluster(ns, "shop")); err != nil {
		t.Fatal(err)
	}
	waitReconciled(t, ns, "shop", metav1.ConditionTrue, "Reconciled")
	sts := &appsv1.StatefulSet{}
	if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "shop"}, sts); err != nil {
		t.Fatal(err)
	}
	// Touch the cluster's metadata to trigger reconciles without changing the spec.
	c := getCluster(t, ns, "shop")
	c.Labels = map[string]string{"touched": "yes"}
	if err := updateSpec(ctx, c); err != nil {
		t.Fatal(err)
	}
	r := &MySQLClusterReconciler{Client: k8s, Options: builder.Options{KuraImage: "kura:test"}}
	if _, err := r.Reconcile(ctx, reconcileRequest(ns, "shop")); err != nil {
		t.Fatal(err)
	}
	after := &appsv1.StatefulSet{}
	if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "shop"}, after); err != nil {
		t.Fatal(err)
	}
	if after.ResourceVersion != sts.ResourceVersion {
		t.Error("an unchanged StatefulSet was written again")
	}
}

func TestMySQLClusterUserSecretMissingKey(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	sec := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "mine"},
		Data: map[string][]byte{
			contract.KeyRootPassword: []byte("r"), contract.KeyAdminPassword: []byte("a"),
			contract.KeyReplicationPassword: []byte("p"), contract.KeyAgentPassword: []byte("g"),
			contract.KeyOperatorPassword: []byte("o"), contract.KeyAppPassword: []byte("q"),
		},
	}
	if err := k8s.Create(ctx, sec); err != nil {
		t.Fatal(err)
	}
	if err := k8s.Create(ctx, newMySQLCluster(ns, "shop", func(c *kurav1alpha1.MySQLCluster) {
		c.Spec.CredentialsSecret = &corev1.LocalObjectReference{Name: "mine"}
	})); err != nil {
		t.Fatal(err)
	}
	c := waitReconciled(t, ns, "shop", metav1.ConditionFalse, "CredentialsSecretInvalid")
	if msg := reconciledCondition(c).Message; !strings.Contains(msg, `"mine"`) || !strings.Contains(msg, "backup-password") {
		t.Errorf("the condition must name the Secret and the key: %q", msg)
	}
	// Nothing that runs the database is created while credentials are incomplete.
	if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "shop"}, &appsv1.StatefulSet{}); err == nil {
		t.Error("a StatefulSet was created with incomplete credentials")
	}
	// Fixing the Secret unblocks the cluster without touching the cluster.
	sec.Data[contract.KeyBackupPassword] = []byte("b")
	if err := k8s.Update(ctx, sec); err != nil {
		t.Fatal(err)
	}
	waitReconciled(t, ns, "shop", metav1.ConditionTrue, "Reconciled")
	// The user's Secret is never modified or owned.
	got := &corev1.Secret{}
	if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "mine"}, got); err != nil {
		t.Fatal(err)
	}
	if len(got.OwnerReferences) != 0 || string(got.Data[contract.KeyAdminPassword]) != "a" {
		t.Error("the user's Secret was modified")
	}
}

func TestMySQLClusterUserSecretNotFound(t *testing.T) {
	ns := newNamespace(t)
	if err := k8s.Create(context.Background(), newMySQLCluster(ns, "shop", func(c *kurav1alpha1.MySQLCluster) {
		c.Spec.CredentialsSecret = &corev1.LocalObjectReference{Name: "absent"}
	})); err != nil {
		t.Fatal(err)
	}
	c := waitReconciled(t, ns, "shop", metav1.ConditionFalse, "CredentialsSecretNotFound")
	if !strings.Contains(reconciledCondition(c).Message, "spec.credentialsSecret") {
		t.Errorf("message: %s", reconciledCondition(c).Message)
	}
	// A blocked reconcile still runs the clustering loop: failover must not wait for it.
	if n, _ := loops.counts(types.NamespacedName{Namespace: ns, Name: "shop"}); n == 0 {
		t.Error("no clustering loop for a cluster whose reconcile is blocked")
	}
}

func TestMySQLClusterPaused(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	if err := k8s.Create(ctx, newMySQLCluster(ns, "shop")); err != nil {
		t.Fatal(err)
	}
	c := waitReconciled(t, ns, "shop", metav1.ConditionTrue, "Reconciled")
	c.Spec.Paused = true
	c.Spec.Replicas = 5
	if err := updateSpec(ctx, c); err != nil {
		t.Fatal(err)
	}
	waitReconciled(t, ns, "shop", metav1.ConditionFalse, "Paused")
	sts := &appsv1.StatefulSet{}
	if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "shop"}, sts); err != nil {
		t.Fatal(err)
	}
	if *sts.Spec.Replicas != 3 {
		t.Error("a paused cluster's StatefulSet changed")
	}
	c = getCluster(t, ns, "shop")
	c.Spec.Paused = false
	if err := updateSpec(ctx, c); err != nil {
		t.Fatal(err)
	}
	waitReconciled(t, ns, "shop", metav1.ConditionTrue, "Reconciled")
	eventually(t, "replicas 5 after unpausing", func() error {
		if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "shop"}, sts); err != nil {
			return err
		}
		if *sts.Spec.Replicas != 5 {
			return fmt.Errorf("replicas %d", *sts.Spec.Replicas)
		}
		return nil
	})
}

// Deleting a cluster stops its clustering loop; owned objects carry owner references (the
// garbage collector, which envtest does not run, deletes them — proven end to end) and PVCs
// follow spec.deletionPolicy through the StatefulSet's retention policy.
func TestMySQLClusterDeletion(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	if err := k8s.Create(ctx, newMySQLCluster(ns, "shop", func(c *kurav1alpha1.MySQLCluster) { c.Spec.DeletionPolicy = kurav1alpha1.DeletionPolicyDelete })); err != nil {
		t.Fatal(err)
	}
	waitReconciled(t, ns, "shop", metav1.ConditionTrue, "Reconciled")
	sts := &appsv1.StatefulSet{}
	if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "shop"}, sts); err != nil {
		t.Fatal(err)
	}
	if sts.Spec.PersistentVolumeClaimRetentionPolicy.WhenDeleted != appsv1.DeletePersistentVolumeClaimRetentionPolicyType {
		t.Error("deletionPolicy Delete must make the StatefulSet delete PVCs")
	}
	c := getCluster(t, ns, "shop")
	c.Spec.DeletionPolicy = kurav1alpha1.DeletionPolicyRetain
	if err := updateSpec(ctx, c); err != nil {
		t.Fatal(err)
	}
	eventually(t, "retention policy Retain", func() error {
		if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "shop"}, sts); err != nil {
			return err
		}
		if sts.Spec.PersistentVolumeClaimRetentionPolicy.WhenDeleted != appsv1.RetainPersistentVolumeClaimRetentionPolicyType {
			return fmt.Errorf("whenDeleted %s", sts.Spec.PersistentVolumeClaimRetentionPolicy.WhenDeleted)
		}
		return nil
	})
	if err := k8s.Delete(ctx, c); err != nil {
		t.Fatal(err)
	}
	eventually(t, "loop forgotten", func() error {
		if _, forgot := loops.counts(types.NamespacedName{Namespace: ns, Name: "shop"}); forgot == 0 {
			return fmt.Errorf("not forgotten")
		}
		return nil
	})
}

// Growing spec.storage.size expands every bound PVC and re-creates the StatefulSet (orphaning
// its Pods) with the grown claim template. The test plays the garbage collector's part, which
// envtest does not run: it removes the orphan finalizer.
func TestMySQLClusterStorageGrows(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	c := newMySQLCluster(ns, "shop", func(c *kurav1alpha1.MySQLCluster) { c.Spec.Replicas = 1 })
	if err := k8s.Create(ctx, c); err != nil {
		t.Fatal(err)
	}
	c = waitReconciled(t, ns, "shop", metav1.ConditionTrue, "Reconciled")
	sts := &appsv1.StatefulSet{}
	if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "shop"}, sts); err != nil {
		t.Fatal(err)
	}
	// What the StatefulSet controller and a provisioner would have made: a bound data PVC.
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: "pv-" + ns},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:               corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
			AccessModes:            []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			PersistentVolumeSource: corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/tmp/" + ns}},
			StorageClassName:       "expandable",
		},
	}
	if err := k8s.Create(ctx, pv); err != nil {
		t.Fatal(err)
	}
	sc := "expandable"
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "data-shop-0", Labels: builder.SelectorLabels(c)},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
			StorageClassName: &sc,
			VolumeName:       pv.Name,
		},
	}
	if err := k8s.Create(ctx, pvc); err != nil {
		t.Fatal(err)
	}
	pvc.Status.Phase = corev1.ClaimBound
	pvc.Status.Capacity = corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}
	if err := k8s.Status().Update(ctx, pvc); err != nil {
		t.Fatal(err)
	}
	expand := true
	if err := k8s.Create(ctx, storageClass(sc, expand)); err != nil {
		t.Fatal(err)
	}

	c.Spec.Storage.Size = resource.MustParse("2Gi")
	if err := updateSpec(ctx, c); err != nil {
		t.Fatal(err)
	}
	eventually(t, "PVC expanded and StatefulSet terminating", func() error {
		got := &corev1.PersistentVolumeClaim{}
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(pvc), got); err != nil {
			return err
		}
		if q := got.Spec.Resources.Requests[corev1.ResourceStorage]; q.String() != "2Gi" {
			return fmt.Errorf("pvc request %s", q.String())
		}
		old := &appsv1.StatefulSet{}
		if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "shop"}, old); err != nil {
			return err
		}
		if old.DeletionTimestamp.IsZero() {
			return fmt.Errorf("statefulset not being deleted")
		}
		// Act as the garbage collector: orphan dependents, drop the finalizer.
		old.Finalizers = nil
		return k8s.Update(ctx, old)
	})
	eventually(t, "StatefulSet re-created with 2Gi", func() error {
		got := &appsv1.StatefulSet{}
		if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "shop"}, got); err != nil {
			return err
		}
		if got.UID == sts.UID {
			return fmt.Errorf("not re-created yet")
		}
		if q := got.Spec.VolumeClaimTemplates[0].Spec.Resources.Requests[corev1.ResourceStorage]; q.String() != "2Gi" {
			return fmt.Errorf("template %s", q.String())
		}
		return nil
	})
	waitReconciled(t, ns, "shop", metav1.ConditionTrue, "Reconciled")
}

func storageClass(name string, expand bool) *storagev1.StorageClass {
	return &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: name}, Provisioner: "kura.dev/test", AllowVolumeExpansion: &expand}
}

// The schema refuses owned keys in their canonical spellings; any other spelling is caught by
// the operator before anything is applied.
func TestMySQLClusterRefusesOwnedKeyInAnyCase(t *testing.T) {
	ns := newNamespace(t)
	if err := k8s.Create(context.Background(), newMySQLCluster(ns, "shop", func(c *kurav1alpha1.MySQLCluster) {
		c.Spec.MySQLD.Config = map[string]string{"Sync_Binlog": "0"}
	})); err != nil {
		t.Fatal(err)
	}
	c := waitReconciled(t, ns, "shop", metav1.ConditionFalse, "InvalidConfig")
	if !strings.Contains(reconciledCondition(c).Message, "Sync_Binlog") {
		t.Errorf("message: %s", reconciledCondition(c).Message)
	}
	if err := k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: "shop-config"}, &corev1.ConfigMap{}); err == nil {
		t.Error("a ConfigMap was written from an invalid config")
	}
}
