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
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	backuprun "github.com/kura-db/kura/backup"
	"github.com/kura-db/kura/internal/apply"
	"github.com/kura-db/kura/internal/contract"
	"github.com/kura-db/kura/internal/metrics"
)

// backupCluster creates a cluster whose status (written as the clustering loop would)
// shows a primary shop-0 and replicas shop-1 (errant) and shop-2 (healthy), and the S3
// credentials Secret.
func backupCluster(t *testing.T, ns string) *kurav1alpha1.MySQLCluster {
	t.Helper()
	ctx := context.Background()
	if err := k8s.Create(ctx, newMySQLCluster(ns, "shop")); err != nil {
		t.Fatal(err)
	}
	c := waitReconciled(t, ns, "shop", metav1.ConditionTrue, "Reconciled")
	status := map[string]any{
		"currentPrimary": "shop-0",
		"instances": []kurav1alpha1.InstanceStatus{
			{Name: "shop-0", Role: kurav1alpha1.RolePrimary, Reachable: true, Healthy: true},
			{Name: "shop-1", Role: kurav1alpha1.RoleReplica, Reachable: true, Healthy: true, ErrantGTIDs: "0-1001-3", LagSeconds: ptr.To[int64](0)},
			{Name: "shop-2", Role: kurav1alpha1.RoleReplica, Reachable: true, Healthy: false, LagSeconds: ptr.To[int64](40)},
		},
	}
	if err := apply.Status(ctx, k8s, c, status, "test-clustering"); err != nil {
		t.Fatal(err)
	}
	s3 := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "s3-keys"},
		StringData: map[string]string{"AWS_ACCESS_KEY_ID": "id", "AWS_SECRET_ACCESS_KEY": "secret"}}
	if err := k8s.Create(ctx, s3); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the credentials Secret", func() error {
		return k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "shop-credentials"}, &corev1.Secret{})
	})
	return getCluster(t, ns, "shop")
}

func newBackupObject(ns, name string, mut ...func(*kurav1alpha1.Backup)) *kurav1alpha1.Backup {
	b := &kurav1alpha1.Backup{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: kurav1alpha1.BackupSpec{BackupOptions: kurav1alpha1.BackupOptions{
			Cluster: "shop",
			Storage: kurav1alpha1.BackupStorage{S3: &kurav1alpha1.S3Storage{Bucket: "backups", Endpoint: "http://s3.example:9000",
				CredentialsSecret: kurav1alpha1.S3CredentialsSecret{Name: "s3-keys"}}},
		}},
	}
	for _, m := range mut {
		m(b)
	}
	return b
}

func getBackup(t *testing.T, ns, name string) *kurav1alpha1.Backup {
	t.Helper()
	b := &kurav1alpha1.Backup{}
	if err := k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, b); err != nil {
		t.Fatal(err)
	}
	return b
}

func waitPhase(t *testing.T, ns, name string, phase kurav1alpha1.BackupPhase) *kurav1alpha1.Backup {
	t.Helper()
	return waitPhaseWithin(t, 20*time.Second, ns, name, phase)
}

func waitPhaseWithin(t *testing.T, timeout time.Duration, ns, name string, phase kurav1alpha1.BackupPhase) *kurav1alpha1.Backup {
	t.Helper()
	var b *kurav1alpha1.Backup
	eventuallyWithin(t, timeout, fmt.Sprintf("Backup %s %s", name, phase), func() error {
		b = getBackup(t, ns, name)
		if b.Status.Phase != phase {
			return fmt.Errorf("status %+v", b.Status)
		}
		return nil
	})
	return b
}

// waitBackupGone waits until the Backup is deleted (its finalizer released).
func waitBackupGone(t *testing.T, ns, name string) {
	t.Helper()
	eventually(t, "Backup "+name+" to be gone", func() error {
		err := k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, &kurav1alpha1.Backup{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("still there: %v", err)
	})
}

// finishJob plays the job controller and the kubelet: a Pod of the Job whose backup
// container ended with summary as its termination message, and the Job's final condition.
func finishJob(t *testing.T, ns, jobName string, summary backuprun.Summary, ok bool, reason string) {
	t.Helper()
	finishJobWith(t, ns, jobName, contract.ContainerBackup, summary.Encode(), ok, reason)
}

// finishJobWith is finishJob for any container and termination message.
func finishJobWith(t *testing.T, ns, jobName, container string, message []byte, ok bool, reason string) {
	t.Helper()
	ctx := context.Background()
	// The Job controller gives its Pods the template's labels (Kura's, which the operator's
	// cache selects on) and the Job's name.
	job := &batchv1.Job{}
	if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: jobName}, job); err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{batchv1.JobNameLabel: jobName}
	maps.Copy(labels, job.Spec.Template.Labels)
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: jobName + "-" + string(job.UID)[:5], Labels: labels,
		OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(job, batchv1.SchemeGroupVersion.WithKind("Job"))}},
		Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: container, Image: "mariadb:11.4"}}}}
	if err := k8s.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	code := int32(0)
	if !ok {
		code = 1
	}
	pod.Status.Phase = corev1.PodSucceeded
	pod.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: container, Image: "mariadb:11.4",
		State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: code, Message: string(message)}}}}
	if err := k8s.Status().Update(ctx, pod); err != nil {
		t.Fatal(err)
	}
	job = &batchv1.Job{}
	if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: jobName}, job); err != nil {
		t.Fatal(err)
	}
	now := metav1.Now()
	job.Status.StartTime = &now
	if ok {
		job.Status.CompletionTime = &now
		job.Status.Succeeded = 1
		job.Status.Conditions = []batchv1.JobCondition{
			{Type: batchv1.JobSuccessCriteriaMet, Status: corev1.ConditionTrue, LastTransitionTime: now},
			{Type: batchv1.JobComplete, Status: corev1.ConditionTrue, LastTransitionTime: now}}
	} else {
		job.Status.Failed = 1
		job.Status.Conditions = []batchv1.JobCondition{
			{Type: batchv1.JobFailureTarget, Status: corev1.ConditionTrue, Reason: reason, LastTransitionTime: now},
			{Type: batchv1.JobFailed, Status: corev1.ConditionTrue, Reason: reason, Message: "the Job failed", LastTransitionTime: now}}
	}
	if err := k8s.Status().Update(ctx, job); err != nil {
		t.Fatal(err)
	}
}

// A Backup becomes a Job reading from the healthy (lagging) replica, never the errant one;
// the Job's summary becomes the Backup's status; deleting the Backup deletes its data
// through a deletion Job first.
func TestBackupRunsAJobAndReportsItsResult(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	c := backupCluster(t, ns)
	if err := k8s.Create(ctx, newBackupObject(ns, "nightly")); err != nil {
		t.Fatal(err)
	}
	b := waitPhase(t, ns, "nightly", kurav1alpha1.BackupRunning)
	if b.Status.SourceInstance != "shop-2" || b.Status.JobName != "nightly-backup" || b.Status.StartTime == nil || len(b.Finalizers) != 1 ||
		b.Status.Lineage != string(c.UID) {
		t.Fatalf("running status: %+v finalizers %v", b.Status, b.Finalizers)
	}
	job := &batchv1.Job{}
	if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "nightly-backup"}, job); err != nil {
		t.Fatal(err)
	}
	if !metav1.IsControlledBy(job, b) {
		t.Errorf("the Job must be owned by the Backup: %v", job.OwnerReferences)
	}
	args := job.Spec.Template.Spec.Containers[0].Command
	req, ok := strings.CutPrefix(args[len(args)-1], "--request=")
	var parsed backuprun.Job
	if !ok || json.Unmarshal([]byte(req), &parsed) != nil {
		t.Fatalf("command %v", args)
	}
	if parsed.Lineage != string(c.UID) || parsed.Source.Pod != "shop-2" || parsed.Source.Host != "shop-2.shop-instances."+ns+".svc.cluster.local" ||
		parsed.Method != kurav1alpha1.BackupMethodLogical || parsed.Storage.S3 == nil || parsed.Storage.S3.Bucket != "backups" || !parsed.Storage.S3.PathStyle {
		t.Fatalf("request %+v", parsed)
	}
	if strings.Contains(req, "secret") {
		t.Fatalf("the request must not hold secrets: %s", req)
	}
	snap := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	finishJob(t, ns, "nightly-backup", backuprun.Summary{Location: "s3://backups/" + ns + "/shop/x/backups/nightly/", Size: 1234, SHA256: "abcd",
		GTID: "0-1000-42", Binlog: "mysql-bin.000003:777", Snapshot: snap, Engine: "mariadb", Version: "11.4.5-MariaDB", Source: "shop-2"}, true, "")
	b = waitPhase(t, ns, "nightly", kurav1alpha1.BackupCompleted)
	st := b.Status
	if st.GTIDPosition != "0-1000-42" || st.SizeBytes != 1234 || st.SHA256 != "abcd" || st.BinlogPosition != "mysql-bin.000003:777" ||
		st.EngineVersion != "11.4.5-MariaDB" || st.SnapshotTime == nil || !st.SnapshotTime.Time.Equal(snap) || st.CompletionTime == nil ||
		!strings.HasPrefix(st.Location, "s3://backups/") || st.Lineage != string(c.UID) {
		t.Fatalf("completed status: %+v", st)
	}

	// The reconciler sets the metrics after it wrote the status the wait above saw.
	eventually(t, "the backup metrics", func() error {
		if v := testutil.ToFloat64(metrics.BackupLastSize.WithLabelValues(ns, "shop", "logical")); v != 1234 {
			return fmt.Errorf("kura_backup_last_size_bytes = %v", v)
		}
		if v := testutil.ToFloat64(metrics.Backups.WithLabelValues(ns, "shop", "logical", "completed")); v != 1 {
			return fmt.Errorf("kura_backups_total{outcome=completed} = %v", v)
		}
		return nil
	})

	// Deleting it deletes the stored data first, through a Job.
	if err := k8s.Delete(ctx, b); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the deletion Job", func() error {
		return k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "nightly-delete"}, &batchv1.Job{})
	})
	if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "nightly"}, &kurav1alpha1.Backup{}); err != nil {
		t.Fatalf("the Backup must wait for its data to be deleted: %v", err)
	}
	finishJob(t, ns, "nightly-delete", backuprun.Summary{}, true, "")
	waitBackupGone(t, ns, "nightly")
}

// What the user must fix fails the Backup at once with a message that names it; a failed
// Job's own words and a deadline are reported.
func TestBackupFailuresSayWhatToFix(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	backupCluster(t, ns)
	cases := []struct {
		backup *kurav1alpha1.Backup
		want   string
	}{
		{newBackupObject(ns, "no-cluster", func(b *kurav1alpha1.Backup) { b.Spec.Cluster = "gone" }), `spec.cluster: MySQLCluster "gone" not found`},
		{newBackupObject(ns, "no-secret", func(b *kurav1alpha1.Backup) { b.Spec.Storage.S3.CredentialsSecret.Name = "nope" }), `spec.storage.s3.credentialsSecret: Secret "nope" not found`},
		{newBackupObject(ns, "no-key", func(b *kurav1alpha1.Backup) { b.Spec.Storage.S3.CredentialsSecret.AccessKeyIDKey = "ID" }), `has no key "ID"`},
		{newBackupObject(ns, "replica-only", func(b *kurav1alpha1.Backup) {
			b.Spec.Source = kurav1alpha1.BackupSourcePrimary
			b.Spec.Cluster = "shop"
		}), ""},
	}
	for _, c := range cases {
		if err := k8s.Create(ctx, c.backup); err != nil {
			t.Fatal(err)
		}
		if c.want == "" {
			continue
		}
		b := waitPhase(t, ns, c.backup.Name, kurav1alpha1.BackupFailed)
		if !strings.Contains(b.Status.Message, c.want) {
			t.Errorf("%s: message %q, want %q", c.backup.Name, b.Status.Message, c.want)
		}
		if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: c.backup.Name + "-backup"}, &batchv1.Job{}); !apierrors.IsNotFound(err) {
			t.Errorf("%s: no Job may be created: %v", c.backup.Name, err)
		}
	}
	// spec.source Primary reads from the primary.
	if b := waitPhase(t, ns, "replica-only", kurav1alpha1.BackupRunning); b.Status.SourceInstance != "shop-0" {
		t.Errorf("source %s, want the primary", b.Status.SourceInstance)
	}
	// The runner's error reaches status; so does a deadline.
	if err := k8s.Create(ctx, newBackupObject(ns, "bad-bucket")); err != nil {
		t.Fatal(err)
	}
	waitPhase(t, ns, "bad-bucket", kurav1alpha1.BackupRunning)
	finishJob(t, ns, "bad-bucket-backup", backuprun.Summary{Error: `bucket "backups" does not exist at http://s3.example:9000: create it, or fix spec.storage.s3.bucket`}, false, batchv1.JobReasonBackoffLimitExceeded)
	if b := waitPhase(t, ns, "bad-bucket", kurav1alpha1.BackupFailed); !strings.Contains(b.Status.Message, "does not exist") {
		t.Errorf("message %q", b.Status.Message)
	}
	if err := k8s.Create(ctx, newBackupObject(ns, "slow")); err != nil {
		t.Fatal(err)
	}
	waitPhase(t, ns, "slow", kurav1alpha1.BackupRunning)
	finishJob(t, ns, "slow-backup", backuprun.Summary{}, false, batchv1.JobReasonDeadlineExceeded)
	if b := waitPhase(t, ns, "slow", kurav1alpha1.BackupFailed); !strings.Contains(b.Status.Message, "spec.activeDeadlineSeconds") {
		t.Errorf("message %q", b.Status.Message)
	}
}

// spec.deletionPolicy Retain: deleting the Backup keeps its stored data (no deletion Job).
func TestBackupRetainKeepsTheData(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	backupCluster(t, ns)
	b := newBackupObject(ns, "keep", func(b *kurav1alpha1.Backup) { b.Spec.DeletionPolicy = kurav1alpha1.DeletionPolicyRetain })
	if err := k8s.Create(ctx, b); err != nil {
		t.Fatal(err)
	}
	waitPhase(t, ns, "keep", kurav1alpha1.BackupRunning)
	finishJob(t, ns, "keep-backup", backuprun.Summary{Location: "s3://backups/x/keep/", Size: 1, SHA256: "ab", GTID: "0-1000-1"}, true, "")
	b = waitPhase(t, ns, "keep", kurav1alpha1.BackupCompleted)
	if err := k8s.Delete(ctx, b); err != nil {
		t.Fatal(err)
	}
	waitBackupGone(t, ns, "keep")
	if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "keep-delete"}, &batchv1.Job{}); !apierrors.IsNotFound(err) {
		t.Fatalf("a retained Backup's data must not be deleted: %v", err)
	}
}

// pendingPod plays the kubelet for a Job's Pod that has not started: its backup container
// waits with reason (none: still creating).
func pendingPod(t *testing.T, ns, jobName, reason string) {
	t.Helper()
	ctx := context.Background()
	job := &batchv1.Job{}
	if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: jobName}, job); err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{batchv1.JobNameLabel: jobName}
	maps.Copy(labels, job.Spec.Template.Labels)
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: jobName + "-p1", Labels: labels,
		OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(job, batchv1.SchemeGroupVersion.WithKind("Job"))}},
		Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: contract.ContainerBackup, Image: "mariadb:11.4"}}}}
	if err := k8s.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	pod.Status.Phase = corev1.PodPending
	if reason != "" {
		pod.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: contract.ContainerBackup, Image: "mariadb:11.4",
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: "secret \"s3-keys\" not found"}}}}
	}
	if err := k8s.Status().Update(ctx, pod); err != nil {
		t.Fatal(err)
	}
}

// A backup Pod that cannot start fails the Backup (and its Job goes) instead of waiting
// forever: a container the kubelet cannot create, or a Secret deleted after the Job was made.
func TestBackupPodThatCannotStartFails(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	backupCluster(t, ns)
	if err := k8s.Create(ctx, newBackupObject(ns, "config-error")); err != nil {
		t.Fatal(err)
	}
	waitPhase(t, ns, "config-error", kurav1alpha1.BackupRunning)
	pendingPod(t, ns, "config-error-backup", "CreateContainerConfigError")
	// The stuck Pod is noticed on the controller's next check, up to stuckCheckInterval later.
	if b := waitPhaseWithin(t, 3*stuckCheckInterval, ns, "config-error", kurav1alpha1.BackupFailed); !strings.Contains(b.Status.Message, "cannot start container backup: CreateContainerConfigError") {
		t.Errorf("message %q", b.Status.Message)
	}
	eventually(t, "the stuck Job to be deleted", func() error {
		job := &batchv1.Job{}
		err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "config-error-backup"}, job)
		if apierrors.IsNotFound(err) || (err == nil && !job.DeletionTimestamp.IsZero()) {
			return nil
		}
		return fmt.Errorf("still there: %v", err)
	})

	keys := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "other-keys"},
		StringData: map[string]string{"AWS_ACCESS_KEY_ID": "id", "AWS_SECRET_ACCESS_KEY": "secret"}}
	if err := k8s.Create(ctx, keys); err != nil {
		t.Fatal(err)
	}
	if err := k8s.Create(ctx, newBackupObject(ns, "secret-gone", func(b *kurav1alpha1.Backup) { b.Spec.Storage.S3.CredentialsSecret.Name = "other-keys" })); err != nil {
		t.Fatal(err)
	}
	waitPhase(t, ns, "secret-gone", kurav1alpha1.BackupRunning)
	if err := k8s.Delete(ctx, keys); err != nil {
		t.Fatal(err)
	}
	pendingPod(t, ns, "secret-gone-backup", "")
	if b := waitPhaseWithin(t, 3*stuckCheckInterval, ns, "secret-gone", kurav1alpha1.BackupFailed); !strings.Contains(b.Status.Message, `spec.storage.s3.credentialsSecret: Secret "other-keys" not found`) {
		t.Errorf("message %q", b.Status.Message)
	}
}

// Deleting a failed Backup whose Job ran removes what the run may have left with a cleanup
// Job (which keeps anything with a manifest); when that Job cannot reach the storage the
// Backup still goes, with an event saying so. One that failed before any Job goes at once.
func TestFailedBackupDeletionCleansUp(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	backupCluster(t, ns)
	for _, name := range []string{"killed", "unreachable"} {
		if err := k8s.Create(ctx, newBackupObject(ns, name)); err != nil {
			t.Fatal(err)
		}
		waitPhase(t, ns, name, kurav1alpha1.BackupRunning)
		finishJob(t, ns, name+"-backup", backuprun.Summary{}, false, batchv1.JobReasonDeadlineExceeded)
		b := waitPhase(t, ns, name, kurav1alpha1.BackupFailed)
		if err := k8s.Delete(ctx, b); err != nil {
			t.Fatal(err)
		}
		job := &batchv1.Job{}
		eventually(t, "the cleanup Job", func() error {
			return k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: name + "-delete"}, job)
		})
		if cmd := job.Spec.Template.Spec.Containers[0].Command; cmd[2] != "cleanup" {
			t.Fatalf("the Job of a failed Backup runs %v, want kura backup cleanup", cmd)
		}
		if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &kurav1alpha1.Backup{}); err != nil {
			t.Fatalf("the Backup must wait for the cleanup: %v", err)
		}
		finishJob(t, ns, name+"-delete", backuprun.Summary{}, name == "killed", batchv1.JobReasonBackoffLimitExceeded)
		waitBackupGone(t, ns, name)
	}
	if err := k8s.Create(ctx, newBackupObject(ns, "never-ran", func(b *kurav1alpha1.Backup) { b.Spec.Cluster = "gone" })); err != nil {
		t.Fatal(err)
	}
	b := waitPhase(t, ns, "never-ran", kurav1alpha1.BackupFailed)
	if err := k8s.Delete(ctx, b); err != nil {
		t.Fatal(err)
	}
	waitBackupGone(t, ns, "never-ran")
	if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "never-ran-delete"}, &batchv1.Job{}); !apierrors.IsNotFound(err) {
		t.Errorf("a Backup whose Job never ran needs no cleanup Job: %v", err)
	}
}

// A Backup created from YAML, as kubectl creates it (without the empty fields the Go types
// always write, such as resources: {}), runs: adding the finalizer must not touch the
// immutable spec.
func TestBackupFromYAMLRuns(t *testing.T) {
	ns := newNamespace(t)
	backupCluster(t, ns)
	doc := `apiVersion: kura.dev/v1alpha1
kind: Backup
metadata:
  name: bad-bucket
  namespace: ` + ns + `
spec:
  cluster: shop
  storage:
    s3:
      endpoint: http://s3.example:9000
      region: us-east-1
      bucket: no-such-bucket
      credentialsSecret:
        name: s3-keys
`
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
		t.Fatal(err)
	}
	if err := k8s.Create(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	waitPhase(t, ns, "bad-bucket", kurav1alpha1.BackupRunning)
}

// Deleting a completed Backup of a cluster whose binary log archive is in the same storage
// prunes the archive with it, below the point every other completed backup of the cluster has
// reached (dba rule 18); a partial backup is no base and does not count, and with no other
// base the archive stays whole.
func TestBackupDeletionPrunesTheArchiveBelowTheOldestKeptBackup(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	backupCluster(t, ns)
	storage := newBackupObject(ns, "x").Spec.Storage
	changeSpec(t, ns, "shop", func(c *kurav1alpha1.MySQLCluster) {
		c.Spec.BinlogArchive = &kurav1alpha1.BinlogArchiveSpec{Storage: storage}
	})
	for _, b := range []struct {
		name, gtid string
		partial    bool
	}{{"mon", "0-1000-10", false}, {"tue", "0-1000-20,1-1002-5", false}, {"wed", "0-1000-30,1-1002-9", false}, {"part", "0-1000-15", true}} {
		if err := k8s.Create(ctx, newBackupObject(ns, b.name, func(o *kurav1alpha1.Backup) {
			if b.partial {
				o.Spec.Databases = []string{"shop"}
			}
		})); err != nil {
			t.Fatal(err)
		}
		waitPhase(t, ns, b.name, kurav1alpha1.BackupRunning)
		finishJob(t, ns, b.name+"-backup", backuprun.Summary{Location: "s3://backups/" + ns + "/shop/x/backups/" + b.name + "/", Size: 1, SHA256: "ab",
			GTID: b.gtid, Snapshot: time.Now(), Engine: "mariadb", Version: "11.4.5-MariaDB", Source: "shop-2"}, true, "")
		waitPhase(t, ns, b.name, kurav1alpha1.BackupCompleted)
	}
	prunes := func(name string) string {
		t.Helper()
		if err := k8s.Delete(ctx, getBackup(t, ns, name)); err != nil {
			t.Fatal(err)
		}
		job := &batchv1.Job{}
		eventually(t, "the delete Job of "+name, func() error {
			return k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: name + "-delete"}, job)
		})
		args := job.Spec.Template.Spec.Containers[0].Command
		var parsed backuprun.Job
		if req, ok := strings.CutPrefix(args[len(args)-1], "--request="); !ok || json.Unmarshal([]byte(req), &parsed) != nil {
			t.Fatalf("command %v", args)
		}
		finishJob(t, ns, name+"-delete", backuprun.Summary{}, true, "")
		waitBackupGone(t, ns, name)
		return parsed.PruneArchiveBelow
	}
	if got := prunes("mon"); got != "0-1000-20,1-1002-5" {
		t.Errorf("deleting mon prunes below %q, want tue's point 0-1000-20,1-1002-5 (the partial backup's 0-1000-15 is no base)", got)
	}
	if got := prunes("tue"); got != "0-1000-30,1-1002-9" {
		t.Errorf("deleting tue prunes below %q, want wed's point", got)
	}
	if got := prunes("wed"); got != "" {
		t.Errorf("deleting the last base (a partial backup is none) prunes below %q, want nothing", got)
	}
}

// A running backup whose Job is deleted fails, saying so; it is never started again.
func TestBackupWhoseJobIsDeletedFails(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	backupCluster(t, ns)
	if err := k8s.Create(ctx, newBackupObject(ns, "job-gone")); err != nil {
		t.Fatal(err)
	}
	b := waitPhase(t, ns, "job-gone", kurav1alpha1.BackupRunning)
	job := &batchv1.Job{}
	if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: b.Status.JobName}, job); err != nil {
		t.Fatal(err)
	}
	bg := metav1.DeletePropagationBackground
	if err := k8s.Delete(ctx, job, &client.DeleteOptions{PropagationPolicy: &bg}); err != nil {
		t.Fatal(err)
	}
	if b := waitPhase(t, ns, "job-gone", kurav1alpha1.BackupFailed); !strings.Contains(b.Status.Message, "Job job-gone-backup was deleted before the backup finished") {
		t.Errorf("message %q", b.Status.Message)
	}
	err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: b.Status.JobName}, &batchv1.Job{})
	if !apierrors.IsNotFound(err) {
		t.Errorf("a Job exists again after the Backup failed: %v", err)
	}
}
