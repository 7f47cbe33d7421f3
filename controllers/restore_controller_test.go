package controllers

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	backuprun "github.com/kura-db/kura/backup"
	restorejob "github.com/kura-db/kura/backup/restore"
	"github.com/kura-db/kura/internal/apply"
	"github.com/kura-db/kura/internal/builder"
	"github.com/kura-db/kura/internal/contract"
	"github.com/kura-db/kura/internal/metrics"
)

// completedBackupOf creates Backup name of cluster "shop" (backupCluster's) and plays its
// Job to completion.
func completedBackupOf(t *testing.T, ns, name string, mut ...func(*kurav1alpha1.Backup)) *kurav1alpha1.Backup {
	t.Helper()
	if err := k8s.Create(context.Background(), newBackupObject(ns, name, mut...)); err != nil {
		t.Fatal(err)
	}
	waitPhase(t, ns, name, kurav1alpha1.BackupRunning)
	finishJob(t, ns, name+"-backup", backuprun.Summary{Location: "s3://backups/" + ns + "/shop/x/backups/" + name + "/", Size: 10, SHA256: "ab",
		GTID: "0-1000-42", Snapshot: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC), Engine: "mariadb", Version: "11.4.5-MariaDB", Source: "shop-2"}, true, "")
	return waitPhase(t, ns, name, kurav1alpha1.BackupCompleted)
}

// firstInstanceReports plays the StatefulSet controller and the kubelet for the cluster's
// first instance: a Pod from the StatefulSet's template whose kura-init container is in
// state (and last terminated with last, if given).
func firstInstanceReports(t *testing.T, ns, cluster string, state corev1.ContainerState, last *corev1.ContainerStateTerminated) {
	t.Helper()
	ctx := context.Background()
	key := types.NamespacedName{Namespace: ns, Name: cluster + "-0"}
	pod := &corev1.Pod{}
	if err := k8s.Get(ctx, key, pod); apierrors.IsNotFound(err) {
		sts := &appsv1.StatefulSet{}
		if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: cluster}, sts); err != nil {
			t.Fatal(err)
		}
		pod = &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: key.Name, Labels: maps.Clone(sts.Spec.Template.Labels)},
			Spec: *sts.Spec.Template.Spec.DeepCopy()}
		pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: sts.Spec.VolumeClaimTemplates[0].Name, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})
		if err := k8s.Create(ctx, pod); err != nil {
			t.Fatal(err)
		}
	} else if err != nil {
		t.Fatal(err)
	}
	cs := corev1.ContainerStatus{Name: contract.ContainerKuraInit, Image: "mariadb:11.4", State: state}
	if last != nil {
		cs.LastTerminationState.Terminated = last
		cs.RestartCount = 1
	}
	pod.Status.InitContainerStatuses = []corev1.ContainerStatus{cs}
	if err := k8s.Status().Update(ctx, pod); err != nil {
		t.Fatal(err)
	}
}

func terminated(code int32, res restorejob.Result) *corev1.ContainerStateTerminated {
	return &corev1.ContainerStateTerminated{ExitCode: code, Message: string(res.Encode())}
}

func waitBootstrap(t *testing.T, ns, name string, phase kurav1alpha1.BootstrapPhase) *kurav1alpha1.MySQLCluster {
	t.Helper()
	var c *kurav1alpha1.MySQLCluster
	eventually(t, fmt.Sprintf("%s status.bootstrap %s", name, phase), func() error {
		c = getCluster(t, ns, name)
		if b := c.Status.Bootstrap; b == nil || b.Phase != phase {
			return fmt.Errorf("status.bootstrap %+v", b)
		}
		return nil
	})
	return c
}

var restoredResult = restorejob.Result{
	Plan: restorejob.Plan{Backup: "nightly", Method: kurav1alpha1.BackupMethodPhysical, BaseGTID: "0-1000-42",
		BaseTime: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC), Pieces: []uint64{7, 8, 9}, Target: "GTID 0-1000-50", TargetGTID: "0-1000-50", Bytes: 4096},
	GTIDReached: "0-1000-50", TimeReached: time.Date(2030, 1, 2, 3, 9, 0, 0, time.UTC), Replayed: 8, BytesRead: 4096,
	DurationMS: 12500, SeedMS: 9000, ReplayMS: 3500,
}

// A cluster whose spec.bootstrap names a Backup that is still running creates nothing and
// says so; once the Backup completes it writes the restore Job, the StatefulSet gets the
// bootstrap mounts, and status.bootstrap follows the first instance's kura-init: Failed with
// its error while it retries, Restored with what it reached, and Restored stays.
func TestBootstrapWaitsForItsBackupThenFollowsTheFirstInstance(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	src := backupCluster(t, ns)
	if err := k8s.Create(ctx, newBackupObject(ns, "nightly")); err != nil {
		t.Fatal(err)
	}
	waitPhase(t, ns, "nightly", kurav1alpha1.BackupRunning)
	if err := k8s.Create(ctx, newMySQLCluster(ns, "copy", func(c *kurav1alpha1.MySQLCluster) {
		c.Spec.Bootstrap = &kurav1alpha1.BootstrapSpec{Backup: "nightly", PointInTime: &kurav1alpha1.PointInTime{GTID: "0-1000-50"}}
	})); err != nil {
		t.Fatal(err)
	}
	c := waitReconciled(t, ns, "copy", metav1.ConditionFalse, "BootstrapBackupNotCompleted")
	if b := c.Status.Bootstrap; b == nil || b.Phase != kurav1alpha1.BootstrapPending || !strings.Contains(b.Message, `spec.bootstrap.backup: Backup "nightly" is not completed yet`) {
		t.Fatalf("status.bootstrap %+v", c.Status.Bootstrap)
	}
	for _, obj := range []struct {
		name string
		o    client.Object
	}{{"copy", &appsv1.StatefulSet{}}, {"copy-config", &corev1.ConfigMap{}}, {"copy-bootstrap", &corev1.ConfigMap{}}, {"copy-primary", &corev1.Service{}}} {
		if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: obj.name}, obj.o); !apierrors.IsNotFound(err) {
			t.Errorf("%s exists before the bootstrap resolved: %v", obj.name, err)
		}
	}

	finishJob(t, ns, "nightly-backup", backuprun.Summary{Location: "s3://backups/x/", Size: 10, SHA256: "ab", GTID: "0-1000-42",
		Snapshot: time.Now(), Engine: "mariadb", Source: "shop-2"}, true, "")
	waitReconciled(t, ns, "copy", metav1.ConditionTrue, "Reconciled")
	cm := &corev1.ConfigMap{}
	if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "copy-bootstrap"}, cm); err != nil {
		t.Fatal(err)
	}
	var job restorejob.Job
	if err := json.Unmarshal([]byte(cm.Data[builder.BootstrapJobKey]), &job); err != nil {
		t.Fatalf("restore.json: %v: %s", err, cm.Data[builder.BootstrapJobKey])
	}
	if job.Backup != "nightly" || job.Source != (backuprun.Layout{Namespace: ns, Cluster: "shop", Lineage: string(src.UID)}) ||
		job.Target.GTID != "0-1000-50" || job.Target.Time != nil || job.Engine != kurav1alpha1.EngineMariaDB ||
		job.Storage.S3 == nil || job.Storage.S3.Bucket != "backups" || job.Storage.S3.CredentialsDir != contract.BackupS3CredentialsDir {
		t.Fatalf("restore job %+v", job)
	}
	sts := &appsv1.StatefulSet{}
	if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "copy"}, sts); err != nil {
		t.Fatal(err)
	}
	init := sts.Spec.Template.Spec.InitContainers[1]
	mounted := map[string]bool{}
	for _, m := range init.VolumeMounts {
		mounted[m.MountPath] = true
	}
	if init.Name != contract.ContainerKuraInit || !mounted[contract.BootstrapDir] || !mounted[contract.BackupS3CredentialsDir] {
		t.Fatalf("kura-init mounts %v", init.VolumeMounts)
	}
	waitBootstrap(t, ns, "copy", kurav1alpha1.BootstrapRestoring)

	// The first attempt failed and kura-init runs again.
	firstInstanceReports(t, ns, "copy", corev1.ContainerState{Running: &corev1.ContainerStateRunning{}},
		terminated(1, restorejob.Result{Error: "the archive has a gap after 0-1000-45"}))
	c = waitBootstrap(t, ns, "copy", kurav1alpha1.BootstrapFailed)
	if m := c.Status.Bootstrap.Message; !strings.Contains(m, "copy-0 failed to restore Backup \"nightly\": the archive has a gap after 0-1000-45") || !strings.Contains(m, "retried") {
		t.Errorf("failure message %q", m)
	}
	waitEvent(t, ns, "BootstrapFailed")
	// kura-init failed before it could report: the log's tail (FallbackToLogsOnError).
	firstInstanceReports(t, ns, "copy", corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1,
		Message: "kura init: starting\nkura: failed to read the restore job: open /etc/kura/bootstrap/restore.json: no such file or directory\n"}}, nil)
	eventually(t, "the log's last line as the failure", func() error {
		if m := getCluster(t, ns, "copy").Status.Bootstrap.Message; !strings.HasSuffix(m, `Backup "nightly": kura: failed to read the restore job: open /etc/kura/bootstrap/restore.json: no such file or directory`) {
			return fmt.Errorf("message %q", m)
		}
		return nil
	})

	firstInstanceReports(t, ns, "copy", corev1.ContainerState{Terminated: terminated(0, restoredResult)}, nil)
	c = waitBootstrap(t, ns, "copy", kurav1alpha1.BootstrapRestored)
	b := c.Status.Bootstrap
	if b.GTIDReached != "0-1000-50" || b.Replayed != 8 || b.DurationMillis != 12500 || b.SeedMillis != 9000 || b.ReplayMillis != 3500 ||
		b.TimeReached == nil || !b.TimeReached.Time.Equal(restoredResult.TimeReached) || b.Plan == nil || b.Plan.Pieces != 3 ||
		b.Plan.BaseGTID != "0-1000-42" || b.Plan.TargetGTID != "0-1000-50" || b.Plan.Method != kurav1alpha1.BackupMethodPhysical {
		t.Fatalf("restored status %+v plan %+v", b, b.Plan)
	}
	waitEvent(t, ns, "BootstrapRestored")
	// Restored: the Job leaves the ConfigMap, so no instance restores again; the storage stays.
	eventually(t, "the restore Job removed from the bootstrap ConfigMap", func() error {
		cm := &corev1.ConfigMap{}
		if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "copy-bootstrap"}, cm); err != nil {
			return err
		}
		if _, ok := cm.Data[builder.BootstrapJobKey]; ok || !strings.Contains(cm.Data[builder.BootstrapStorageKey], `"bucket":"backups"`) {
			return fmt.Errorf("data %v", cm.Data)
		}
		return nil
	})

	// A later restart reports no restore result: Restored stays, and the Backup may go.
	firstInstanceReports(t, ns, "copy", corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0}}, nil)
	if err := k8s.Delete(ctx, getBackup(t, ns, "nightly")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the deletion Job", func() error {
		return k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "nightly-delete"}, &batchv1.Job{})
	})
	finishJob(t, ns, "nightly-delete", backuprun.Summary{}, true, "")
	waitBackupGone(t, ns, "nightly")
	changeSpec(t, ns, "copy", func(c *kurav1alpha1.MySQLCluster) { c.Spec.Replicas = 2 })
	c = waitReconciled(t, ns, "copy", metav1.ConditionTrue, "Reconciled")
	if c.Status.Bootstrap == nil || c.Status.Bootstrap.Phase != kurav1alpha1.BootstrapRestored || c.Status.Bootstrap.GTIDReached != "0-1000-50" {
		t.Fatalf("status.bootstrap after a restart and the Backup's deletion: %+v", c.Status.Bootstrap)
	}
}

// A spec.bootstrap that can never work blocks the cluster with the reason, in its condition,
// status.bootstrap and an event, and nothing is created.
func TestBootstrapRefusesBackupsThatCannotSeedIt(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	backupCluster(t, ns)
	completedBackupOf(t, ns, "full")
	completedBackupOf(t, ns, "part", func(b *kurav1alpha1.Backup) { b.Spec.Databases = []string{"shop"} })
	if err := k8s.Create(ctx, newBackupObject(ns, "broken", func(b *kurav1alpha1.Backup) { b.Spec.Cluster = "gone" })); err != nil {
		t.Fatal(err)
	}
	waitPhase(t, ns, "broken", kurav1alpha1.BackupFailed)
	cases := []struct {
		cluster, backup string
		engine          kurav1alpha1.Engine
		reason, want    string
	}{
		{"c-missing", "nope", "", "BootstrapBackupNotFound", `spec.bootstrap.backup: Backup "nope" not found in namespace ` + ns + `; create it`},
		{"c-failed", "broken", "", "BootstrapBackupFailed", `spec.bootstrap.backup: Backup "broken" failed (spec.cluster: MySQLCluster "gone" not found`},
		{"c-engine", "full", kurav1alpha1.EngineMySQL, "BootstrapEngineMismatch", `spec.bootstrap.backup: Backup "full" is of a mariadb server and the cluster runs mysql; restore it into a mariadb cluster`},
		{"c-partial", "part", "", "BootstrapBackupPartial", `spec.bootstrap.backup: Backup "part" holds only the databases shop (spec.databases), which cannot seed a cluster`},
	}
	for _, tc := range cases {
		if err := k8s.Create(ctx, newMySQLCluster(ns, tc.cluster, func(c *kurav1alpha1.MySQLCluster) {
			c.Spec.Engine = tc.engine
			c.Spec.Bootstrap = &kurav1alpha1.BootstrapSpec{Backup: tc.backup}
		})); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range cases {
		c := waitReconciled(t, ns, tc.cluster, metav1.ConditionFalse, tc.reason)
		if m := reconciledCondition(c).Message; !strings.Contains(m, tc.want) {
			t.Errorf("%s: condition message %q, want %q", tc.cluster, m, tc.want)
		}
		if b := c.Status.Bootstrap; b == nil || b.Phase != kurav1alpha1.BootstrapFailed || !strings.Contains(b.Message, tc.want) {
			t.Errorf("%s: status.bootstrap %+v", tc.cluster, b)
		}
		if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: tc.cluster}, &appsv1.StatefulSet{}); !apierrors.IsNotFound(err) {
			t.Errorf("%s: StatefulSet created for a refused bootstrap: %v", tc.cluster, err)
		}
	}
	waitEvent(t, ns, "BootstrapInvalid")
}

// inPlace is a Restore of backup into the existing cluster target.
func inPlace(ns, name, backup, target string, mut ...func(*kurav1alpha1.Restore)) *kurav1alpha1.Restore {
	return newRestore(ns, name, backup, "", append([]func(*kurav1alpha1.Restore){func(r *kurav1alpha1.Restore) { r.Spec.Target.ExistingCluster = target }}, mut...)...)
}

func newRestore(ns, name, backup, target string, mut ...func(*kurav1alpha1.Restore)) *kurav1alpha1.Restore {
	r := &kurav1alpha1.Restore{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: kurav1alpha1.RestoreSpec{Backup: backup, Target: kurav1alpha1.RestoreTarget{NewCluster: target}}}
	for _, m := range mut {
		m(r)
	}
	return r
}

func waitRestore(t *testing.T, ns, name string, phase kurav1alpha1.RestorePhase) *kurav1alpha1.Restore {
	t.Helper()
	r := &kurav1alpha1.Restore{}
	eventually(t, fmt.Sprintf("Restore %s %s", name, phase), func() error {
		if err := k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, r); err != nil {
			return err
		}
		if r.Status.Phase != phase {
			return fmt.Errorf("status %+v", r.Status)
		}
		return nil
	})
	return r
}

// A Restore creates the new cluster from the source's spec with spec.bootstrap and a copy of
// the source's credentials, stays Running while the cluster restores, and completes with what
// the first instance reached once the cluster is available.
func TestRestoreIntoANewCluster(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	backupCluster(t, ns)
	changeSpec(t, ns, "shop", func(c *kurav1alpha1.MySQLCluster) {
		c.Spec.Replicas = 2
		c.Spec.Storage.Size = resource.MustParse("2Gi")
		c.Spec.Switchover = &kurav1alpha1.SwitchoverRequest{Target: 1, ID: "pending"}
		c.Spec.MySQLD.Config = map[string]string{"max_connections": "300"}
	})
	completedBackupOf(t, ns, "nightly")
	at := metav1.NewTime(time.Date(2030, 1, 2, 3, 9, 0, 0, time.UTC))
	if err := k8s.Create(ctx, newRestore(ns, "back", "nightly", "shop-restored", func(r *kurav1alpha1.Restore) {
		r.Spec.PointInTime = &kurav1alpha1.PointInTime{Time: &at}
	})); err != nil {
		t.Fatal(err)
	}
	rs := waitRestore(t, ns, "back", kurav1alpha1.RestoreRunning)
	if rs.Status.Cluster != "shop-restored" || rs.Status.StartTime == nil {
		t.Errorf("running status %+v", rs.Status)
	}
	waitEvent(t, ns, "RestoreStarted")
	c := getCluster(t, ns, "shop-restored")
	if c.Labels[contract.LabelRestore] != "back" || c.Spec.Bootstrap == nil || c.Spec.Bootstrap.Backup != "nightly" ||
		c.Spec.Bootstrap.PointInTime == nil || !c.Spec.Bootstrap.PointInTime.Time.Equal(&at) ||
		c.Spec.Replicas != 2 || c.Spec.Storage.Size.String() != "2Gi" || c.Spec.MySQLD.Config["max_connections"] != "300" ||
		c.Spec.Database != "shop" || c.Spec.Switchover != nil || c.Spec.CredentialsSecret == nil || c.Spec.CredentialsSecret.Name != "shop-restored-credentials" {
		t.Fatalf("new cluster: labels %v spec %+v", c.Labels, c.Spec)
	}
	srcSecret, newSecret := &corev1.Secret{}, &corev1.Secret{}
	if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "shop-credentials"}, srcSecret); err != nil {
		t.Fatal(err)
	}
	if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "shop-restored-credentials"}, newSecret); err != nil {
		t.Fatal(err)
	}
	if !maps.EqualFunc(srcSecret.Data, newSecret.Data, func(a, b []byte) bool { return string(a) == string(b) }) || !metav1.IsControlledBy(newSecret, c) {
		t.Fatalf("the new cluster's credentials must be the source's, owned by the new cluster: owners %v", newSecret.OwnerReferences)
	}
	waitReconciled(t, ns, "shop-restored", metav1.ConditionTrue, "Reconciled")

	firstInstanceReports(t, ns, "shop-restored", corev1.ContainerState{Terminated: terminated(0, restoredResult)}, nil)
	waitBootstrap(t, ns, "shop-restored", kurav1alpha1.BootstrapRestored)
	eventually(t, "the Restore waiting for the cluster to be available", func() error {
		rs = waitRestore(t, ns, "back", kurav1alpha1.RestoreRunning)
		if !strings.Contains(rs.Status.Message, "waiting for it to be available") {
			return fmt.Errorf("message %q", rs.Status.Message)
		}
		return nil
	})
	// The clustering loop reports the primary writable.
	c = getCluster(t, ns, "shop-restored")
	if err := apply.Status(ctx, k8s, c, map[string]any{"conditions": []metav1.Condition{{Type: kurav1alpha1.ConditionAvailable, Status: metav1.ConditionTrue,
		Reason: "PrimaryWritable", Message: "shop-restored-0 accepts writes", LastTransitionTime: metav1.Now()}}}, "test-clustering"); err != nil {
		t.Fatal(err)
	}
	rs = waitRestore(t, ns, "back", kurav1alpha1.RestoreCompleted)
	st := rs.Status
	if st.GTIDReached != "0-1000-50" || st.Replayed != 8 || st.DurationMillis != 12500 || st.Plan == nil || st.Plan.Pieces != 3 ||
		st.TimeReached == nil || st.CompletionTime == nil || !strings.Contains(st.Message, "restored up to GTID 0-1000-50 and is available") {
		t.Fatalf("completed status %+v", st)
	}
	waitEvent(t, ns, "RestoreCompleted")
	eventually(t, "the restore duration metric", func() error {
		if v := testutil.ToFloat64(metrics.RestoreLastDuration.WithLabelValues(ns, "shop-restored")); v <= 0 {
			return fmt.Errorf("kura_restore_last_duration_seconds = %v", v)
		}
		return nil
	})
}

// What a Restore cannot do fails it at once with a message naming the field and the fix,
// and creates nothing; a restore that fails on the instance fails the Restore with its error.
func TestRestoreRefusals(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	backupCluster(t, ns)
	completedBackupOf(t, ns, "nightly")
	if err := k8s.Create(ctx, newBackupObject(ns, "running")); err != nil {
		t.Fatal(err)
	}
	waitPhase(t, ns, "running", kurav1alpha1.BackupRunning)
	old := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "data-old-0",
		Labels: builder.SelectorLabels(&kurav1alpha1.MySQLCluster{ObjectMeta: metav1.ObjectMeta{Name: "old"}})},
		Spec: corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}}}
	if err := k8s.Create(ctx, old); err != nil {
		t.Fatal(err)
	}
	if err := k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "stale-credentials"}}); err != nil {
		t.Fatal(err)
	}
	// A backup of a former cluster of the same name that ran MySQL (spec.engine is immutable).
	mysqlMade := completedBackupOf(t, ns, "mysql-made")
	if err := k8s.Status().Patch(ctx, mysqlMade, client.RawPatch(types.MergePatchType, []byte(`{"status":{"engine":"mysql"}}`))); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*kurav1alpha1.MySQLCluster{newMySQLCluster(ns, "other"), newMySQLCluster(ns, "sleepy", func(c *kurav1alpha1.MySQLCluster) { c.Spec.Paused = true })} {
		if err := k8s.Create(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		r            *kurav1alpha1.Restore
		reason, want string
	}{
		{inPlace(ns, "nowhere", "nightly", "gone"), "ClusterNotFound", `spec.target.existingCluster: MySQLCluster "gone" not found in namespace ` + ns},
		{inPlace(ns, "asleep", "nightly", "sleepy"), "ClusterPaused", `spec.target.existingCluster: MySQLCluster "sleepy" is paused (spec.paused); an in-place restore stops and restarts its instances`},
		{inPlace(ns, "early-in-place", "running", "shop"), "BackupNotCompleted", `spec.backup: Backup "running" is Running, not Completed`},
		{inPlace(ns, "foreign", "nightly", "other"), "BackupOfAnotherCluster", `spec.backup: Backup "nightly" is of cluster "shop", not "other"; an in-place restore takes a backup of the cluster itself`},
		{inPlace(ns, "cross-engine", "mysql-made", "shop"), "BootstrapEngineMismatch", `spec.backup: Backup "mysql-made" is of a mysql server and the cluster runs mariadb`},
		{inPlace(ns, "no-archive", "nightly", "shop", func(r *kurav1alpha1.Restore) { r.Spec.PointInTime = &kurav1alpha1.PointInTime{GTID: "0-1000-50"} }),
			"TargetNotRecoverable", `spec.pointInTime: MySQLCluster "shop" has no binary log archive (spec.binlogArchive)`},
		{newRestore(ns, "taken", "nightly", "shop"), "ClusterExists", `spec.target.newCluster: MySQLCluster "shop" already exists in namespace ` + ns},
		{newRestore(ns, "missing", "nope", "fresh1"), "BackupNotFound", `spec.backup: Backup "nope" not found in namespace ` + ns},
		{newRestore(ns, "early", "running", "fresh2"), "BackupNotCompleted", `spec.backup: Backup "running" is Running, not Completed`},
		{newRestore(ns, "leftover", "nightly", "old"), "VolumesInUse", `spec.target.newCluster: 1 volume(s) of a former cluster named "old" are still there (data-old-0`},
		{newRestore(ns, "stale", "nightly", "stale"), "CredentialsSecretExists", `spec.target.newCluster: Secret "stale-credentials" already exists in namespace ` + ns},
	}
	for _, tc := range cases {
		if err := k8s.Create(ctx, tc.r); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range cases {
		rs := waitRestore(t, ns, tc.r.Name, kurav1alpha1.RestoreFailed)
		if !strings.Contains(rs.Status.Message, tc.want) || len(rs.Status.Conditions) != 1 || rs.Status.Conditions[0].Reason != tc.reason {
			t.Errorf("%s: status %+v, want %s: %q", tc.r.Name, rs.Status, tc.reason, tc.want)
		}
	}
	for _, name := range []string{"fresh1", "fresh2", "old", "stale"} {
		if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &kurav1alpha1.MySQLCluster{}); !apierrors.IsNotFound(err) {
			t.Errorf("a refused Restore created cluster %s: %v", name, err)
		}
	}
	waitEvent(t, ns, "RestoreFailed")
	for _, name := range []string{"shop", "other", "sleepy"} {
		if c := getCluster(t, ns, name); len(c.Annotations) > 0 {
			t.Errorf("a refused in-place Restore touched cluster %s: annotations %v", name, c.Annotations)
		}
	}

	// A second in-place restore into a cluster another one is restoring.
	if err := k8s.Create(ctx, inPlace(ns, "first", "nightly", "shop")); err != nil {
		t.Fatal(err)
	}
	waitRestore(t, ns, "first", kurav1alpha1.RestoreRunning)
	if err := k8s.Create(ctx, inPlace(ns, "second", "nightly", "shop")); err != nil {
		t.Fatal(err)
	}
	if rs := waitRestore(t, ns, "second", kurav1alpha1.RestoreFailed); rs.Status.Conditions[0].Reason != "RestoreInProgress" ||
		!strings.Contains(rs.Status.Message, `spec.target.existingCluster: MySQLCluster "shop" is in Restore "first", which is running or still keeps volumes`) {
		t.Errorf("second in-place restore: %+v", rs.Status)
	}

	// The new cluster is deleted while it restores.
	if err := k8s.Create(ctx, newRestore(ns, "vanish", "nightly", "shop-vanish")); err != nil {
		t.Fatal(err)
	}
	waitRestore(t, ns, "vanish", kurav1alpha1.RestoreRunning)
	if err := k8s.Delete(ctx, getCluster(t, ns, "shop-vanish")); err != nil {
		t.Fatal(err)
	}
	if rs := waitRestore(t, ns, "vanish", kurav1alpha1.RestoreFailed); !strings.Contains(rs.Status.Message, `MySQLCluster "shop-vanish" was deleted while it restored; create a new Restore to try again`) {
		t.Errorf("vanished cluster: %+v", rs.Status)
	}

	// The instance's restore fails: the Restore fails with its error.
	if err := k8s.Create(ctx, newRestore(ns, "doomed", "nightly", "shop-doomed")); err != nil {
		t.Fatal(err)
	}
	waitRestore(t, ns, "doomed", kurav1alpha1.RestoreRunning)
	waitReconciled(t, ns, "shop-doomed", metav1.ConditionTrue, "Reconciled")
	firstInstanceReports(t, ns, "shop-doomed", corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}},
		terminated(1, restorejob.Result{Error: "target time 2030-01-02T03:09:00Z is after the newest archived transaction"}))
	rs := waitRestore(t, ns, "doomed", kurav1alpha1.RestoreFailed)
	if !strings.Contains(rs.Status.Message, "shop-doomed-0 failed to restore Backup \"nightly\": target time 2030-01-02T03:09:00Z is after the newest archived transaction") {
		t.Errorf("failed status %+v", rs.Status)
	}
}

// checkBootstrapBackup's refusals, including a backup of another engine.
func TestCheckBootstrapBackup(t *testing.T) {
	done := func(engine kurav1alpha1.Engine, dbs ...string) *kurav1alpha1.Backup {
		b := &kurav1alpha1.Backup{ObjectMeta: metav1.ObjectMeta{Name: "b"}}
		b.Spec.Databases = dbs
		b.Status.Phase, b.Status.Engine = kurav1alpha1.BackupCompleted, engine
		return b
	}
	running := done(kurav1alpha1.EngineMariaDB)
	running.Status.Phase = kurav1alpha1.BackupRunning
	cases := []struct {
		b      *kurav1alpha1.Backup
		engine kurav1alpha1.Engine
		reason string
	}{
		{done(kurav1alpha1.EngineMariaDB), kurav1alpha1.EngineMariaDB, ""},
		{done(""), kurav1alpha1.EngineMySQL, ""}, // engine unknown: kura init checks it against the stored manifest
		{done(kurav1alpha1.EngineMySQL), kurav1alpha1.EngineMariaDB, "BootstrapEngineMismatch"},
		{done(kurav1alpha1.EngineMariaDB, "shop"), kurav1alpha1.EngineMariaDB, "BootstrapBackupPartial"},
		{running, kurav1alpha1.EngineMariaDB, "BootstrapBackupNotCompleted"},
	}
	for i, tc := range cases {
		got := checkBootstrapBackup(tc.b, tc.engine, "spec.backup")
		switch {
		case tc.reason == "" && got != nil:
			t.Errorf("%d: refused: %+v", i, got)
		case tc.reason != "" && (got == nil || got.reason != tc.reason || !strings.HasPrefix(got.message, "spec.backup: ")):
			t.Errorf("%d: got %+v, want %s", i, got, tc.reason)
		}
	}
}

// A pass that stopped right after creating the new cluster (before the credentials and the
// status) is finished by the next one: the cluster labelled with the Restore is its own.
func TestRestoreResumesAfterCreatingTheCluster(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	backupCluster(t, ns)
	completedBackupOf(t, ns, "nightly")
	rs := newRestore(ns, "resume", "nightly", "shop-resumed")
	src := getCluster(t, ns, "shop")
	c := &kurav1alpha1.MySQLCluster{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "shop-resumed", Labels: map[string]string{contract.LabelRestore: "resume"}},
		Spec: restoredSpec(src, rs, "shop-resumed-credentials")}
	if err := k8s.Create(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := k8s.Create(ctx, rs); err != nil {
		t.Fatal(err)
	}
	waitRestore(t, ns, "resume", kurav1alpha1.RestoreRunning)
	sec := &corev1.Secret{}
	if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "shop-resumed-credentials"}, sec); err != nil {
		t.Fatalf("the credentials copy was not made: %v", err)
	}
	if sec.Labels[contract.LabelRestore] != "resume" || len(sec.Data[contract.KeyAdminPassword]) == 0 {
		t.Errorf("credentials copy %v", sec.Labels)
	}
	waitReconciled(t, ns, "shop-resumed", metav1.ConditionTrue, "Reconciled")
}
