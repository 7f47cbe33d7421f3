package controllers

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	batchv1 "k8s.io/api/batch/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	backuprun "github.com/kura-db/kura/backup"
	restorejob "github.com/kura-db/kura/backup/restore"
	"github.com/kura-db/kura/internal/contract"
	"github.com/kura-db/kura/internal/metrics"
)

// runs builds a schedule's Backups, oldest first, one minute apart, from "name:flags" words:
// V asked for verification, F failed.
func runs(words ...string) []kurav1alpha1.Backup {
	var out []kurav1alpha1.Backup
	for i, w := range words {
		name, flags, _ := strings.Cut(w, ":")
		b := kurav1alpha1.Backup{ObjectMeta: metav1.ObjectMeta{Name: name,
			CreationTimestamp: metav1.NewTime(retentionNow.Add(time.Duration(i) * time.Minute))}}
		b.Status.Phase = kurav1alpha1.BackupCompleted
		if strings.Contains(flags, "V") {
			b.Spec.Verify = &kurav1alpha1.BackupVerification{}
		}
		if strings.Contains(flags, "F") {
			b.Status.Phase = kurav1alpha1.BackupFailed
		}
		out = append(out, b)
	}
	return out
}

// One scheduled Backup in every asks for verification: counted over the schedule's newest
// Backups, a failed one does not use up the turn, the run's own Backup (a retry) is not
// counted, and pruning only makes it more frequent.
func TestScheduledVerify(t *testing.T) {
	cases := []struct {
		every   int32
		backups []kurav1alpha1.Backup
		want    bool
	}{
		{1, runs("a:V", "b:V"), true},
		{3, nil, true},                               // the first run
		{3, runs("a:V"), false},                      // second
		{3, runs("a:V", "b"), false},                 // third
		{3, runs("a:V", "b", "c"), true},             // fourth: one in three
		{3, runs("a:VF", "b"), true},                 // the verifying one failed: the turn is not used
		{3, runs("a:V", "b", "new"), false},          // a retried run is not counted against itself
		{7, runs("x", "y"), true},                    // retention dropped the verified one: verify now
		{2, runs("a", "b:V", "c", "d:V", "e"), true}, // only the newest every-1 count
		{2, runs("a", "b:V", "c", "d:V"), false},
		{2, runs("a", "b:V", "c:V", "d"), true},
	}
	for i, c := range cases {
		if got := ScheduledVerify(c.every, c.backups, "new"); got != c.want {
			var names []string
			for _, b := range c.backups {
				names = append(names, fmt.Sprintf("%s(verify=%v,%s)", b.Name, b.Spec.Verify != nil, b.Status.Phase))
			}
			t.Errorf("case %d: every %d after %v: verify=%v, want %v", i, c.every, names, got, c.want)
		}
	}
}

// Which completed Backups have a verification to run: spec.verify once, the annotation for
// each new value, and whatever is in progress.
func TestVerificationWanted(t *testing.T) {
	withSpec := &kurav1alpha1.BackupVerification{}
	status := func(p kurav1alpha1.VerificationPhase, req string) *kurav1alpha1.VerificationStatus {
		return &kurav1alpha1.VerificationStatus{Phase: p, Request: req}
	}
	cases := []struct {
		spec       *kurav1alpha1.BackupVerification
		annotation string
		status     *kurav1alpha1.VerificationStatus
		want       bool
	}{
		{nil, "", nil, false},
		{withSpec, "", nil, true},
		{nil, "1", nil, true},
		{withSpec, "", status(kurav1alpha1.VerificationPassed, ""), false},
		{withSpec, "", status(kurav1alpha1.VerificationFailed, ""), false},
		{withSpec, "1", status(kurav1alpha1.VerificationFailed, ""), true}, // asked again
		{nil, "1", status(kurav1alpha1.VerificationPassed, "1"), false},
		{nil, "2", status(kurav1alpha1.VerificationPassed, "1"), true},
		{nil, "1", status(kurav1alpha1.VerificationRunning, "1"), true},
		{withSpec, "", status(kurav1alpha1.VerificationPending, ""), true},
	}
	for i, c := range cases {
		b := &kurav1alpha1.Backup{}
		b.Spec.Verify, b.Status.Verification = c.spec, c.status
		if c.annotation != "" {
			b.Annotations = map[string]string{VerifyAnnotation: c.annotation}
		}
		if _, got := verificationWanted(b); got != c.want {
			t.Errorf("case %d: wanted=%v, want %v", i, got, c.want)
		}
	}
}

// verifiableBackup creates a Backup and plays its backup Job to completion.
func verifiableBackup(t *testing.T, ns, name string, mut ...func(*kurav1alpha1.Backup)) {
	t.Helper()
	if err := k8s.Create(context.Background(), newBackupObject(ns, name, mut...)); err != nil {
		t.Fatal(err)
	}
	waitPhase(t, ns, name, kurav1alpha1.BackupRunning)
	finishJob(t, ns, name+"-backup", backuprun.Summary{Location: "s3://backups/" + ns + "/shop/x/backups/" + name + "/", Size: 1000, SHA256: "ab",
		GTID: "0-1000-7", Snapshot: time.Now().UTC(), Engine: "mariadb", Version: "11.4.5-MariaDB", Source: "shop-2"}, true, "")
	waitPhase(t, ns, name, kurav1alpha1.BackupCompleted)
}

func waitVerification(t *testing.T, ns, name string, phase kurav1alpha1.VerificationPhase) *kurav1alpha1.Backup {
	t.Helper()
	var b *kurav1alpha1.Backup
	eventually(t, fmt.Sprintf("Backup %s verification %s", name, phase), func() error {
		b = getBackup(t, ns, name)
		if v := b.Status.Verification; v == nil || v.Phase != phase {
			return fmt.Errorf("verification %+v", v)
		}
		return nil
	})
	return b
}

func verifiedCondition(b *kurav1alpha1.Backup) *metav1.Condition {
	return meta.FindStatusCondition(b.Status.Conditions, kurav1alpha1.ConditionVerified)
}

func waitGone(t *testing.T, ns, name string, obj client.Object) {
	t.Helper()
	eventually(t, fmt.Sprintf("%T %s to be gone", obj, name), func() error {
		err := k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, obj)
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("still there: %v", err)
	})
}

// A Backup with spec.verify is verified once completed: a Job restores it from the storage
// and lineage its backup Job wrote to, behind a NetworkPolicy that admits nothing; one
// verification runs per cluster at a time; the Job's result becomes status.verification, the
// Verified condition and metrics, and the Job and policy go. A failed verification leaves the
// Backup Completed, says what failed, and shows in the condition; the kura.dev/verify
// annotation verifies again; a Job deleted before it reported fails the verification.
func TestBackupVerificationByRestore(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	c := backupCluster(t, ns)
	verify := func(b *kurav1alpha1.Backup) { b.Spec.Verify = &kurav1alpha1.BackupVerification{} }
	verifiableBackup(t, ns, "plain")
	verifiableBackup(t, ns, "first", verify)

	b := waitVerification(t, ns, "first", kurav1alpha1.VerificationRunning)
	if cond := verifiedCondition(b); cond == nil || cond.Status != metav1.ConditionFalse || cond.Reason != "Verifying" ||
		b.Status.Verification.JobName != "first-verify" || b.Status.Verification.StartTime == nil {
		t.Fatalf("running verification %+v, condition %+v", b.Status.Verification, cond)
	}
	job := &batchv1.Job{}
	if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "first-verify"}, job); err != nil {
		t.Fatal(err)
	}
	if !metav1.IsControlledBy(job, b) {
		t.Errorf("the Job must be owned by the Backup: %v", job.OwnerReferences)
	}
	args := job.Spec.Template.Spec.Containers[0].Command
	spec, ok := strings.CutPrefix(args[len(args)-2], "--job=")
	var parsed restorejob.Job
	if !ok || json.Unmarshal([]byte(spec), &parsed) != nil || args[len(args)-1] != "--data-dir="+contract.VerifyDataDir {
		t.Fatalf("command %v", args)
	}
	if parsed.Backup != "first" || parsed.Source != (backuprun.Layout{Namespace: ns, Cluster: "shop", Lineage: string(c.UID)}) ||
		parsed.Engine != kurav1alpha1.EngineMariaDB || parsed.Storage.S3 == nil || parsed.Storage.S3.Bucket != "backups" ||
		parsed.Storage.S3.CredentialsDir != contract.BackupS3CredentialsDir || !parsed.Target.IsZero() {
		t.Fatalf("verification request %+v", parsed)
	}
	np := &networkingv1.NetworkPolicy{}
	if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "first-verify"}, np); err != nil {
		t.Fatalf("the verification's NetworkPolicy: %v", err)
	}
	if len(np.Spec.Ingress) != 0 || np.Spec.PodSelector.MatchLabels[contract.LabelBackup] != "first" {
		t.Fatalf("NetworkPolicy %+v", np.Spec)
	}
	if getBackup(t, ns, "plain").Status.Verification != nil {
		t.Fatal("a Backup that did not ask must not be verified")
	}

	// A second verification of the same cluster waits for the first.
	verifiableBackup(t, ns, "second", verify)
	b = waitVerification(t, ns, "second", kurav1alpha1.VerificationPending)
	if !strings.Contains(b.Status.Verification.Message, "first") {
		t.Errorf("pending message %q", b.Status.Verification.Message)
	}
	if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "second-verify"}, &batchv1.Job{}); !apierrors.IsNotFound(err) {
		t.Fatalf("a second verification Job started beside the first: %v", err)
	}

	// The first passes.
	finishJobWith(t, ns, "first-verify", contract.ContainerVerify, restorejob.Result{DurationMS: 4200, SeedMS: 4100,
		Verification: &restorejob.Verification{Tables: 3, Rows: 120, Compared: 3}}.Encode(), true, "")
	b = waitVerification(t, ns, "first", kurav1alpha1.VerificationPassed)
	v := b.Status.Verification
	if v.Tables != 3 || v.Rows != 120 || v.Compared != 3 || v.RestoreMillis != 4200 || v.CompletionTime == nil || v.Message != "" ||
		b.Status.Phase != kurav1alpha1.BackupCompleted {
		t.Fatalf("passed verification %+v (phase %s)", v, b.Status.Phase)
	}
	if cond := verifiedCondition(b); cond == nil || cond.Status != metav1.ConditionTrue || !strings.Contains(cond.Message, "120 rows") {
		t.Fatalf("condition %+v", cond)
	}
	waitGone(t, ns, "first-verify", &batchv1.Job{})
	waitGone(t, ns, "first-verify", &networkingv1.NetworkPolicy{})
	eventually(t, "the verification metrics", func() error {
		if v := testutil.ToFloat64(metrics.BackupVerificationRestore.WithLabelValues(ns, "shop", "logical")); v != 4.2 {
			return fmt.Errorf("kura_backup_verification_restore_seconds = %v", v)
		}
		if v := testutil.ToFloat64(metrics.BackupLastVerified.WithLabelValues(ns, "shop", "logical")); v == 0 {
			return fmt.Errorf("kura_backup_last_verified_timestamp_seconds not set")
		}
		return nil
	})

	// Then the second runs, and fails: altered stored bytes.
	waitVerification(t, ns, "second", kurav1alpha1.VerificationRunning)
	const altered = "backup second: object data.sql.zst: SHA-256 9f86d0 does not match the manifest's 2307bc: the stored bytes were altered"
	finishJobWith(t, ns, "second-verify", contract.ContainerVerify, restorejob.Result{DurationMS: 300, Error: altered}.Encode(), false, "BackoffLimitExceeded")
	b = waitVerification(t, ns, "second", kurav1alpha1.VerificationFailed)
	if b.Status.Verification.Message != altered || b.Status.Phase != kurav1alpha1.BackupCompleted {
		t.Fatalf("failed verification %+v (phase %s)", b.Status.Verification, b.Status.Phase)
	}
	if cond := verifiedCondition(b); cond == nil || cond.Status != metav1.ConditionFalse || cond.Reason != "VerificationFailed" || cond.Message != altered {
		t.Fatalf("condition %+v", cond)
	}
	waitGone(t, ns, "second-verify", &batchv1.Job{})
	eventually(t, "the failed verification counted", func() error {
		if v := testutil.ToFloat64(metrics.BackupVerifications.WithLabelValues(ns, "shop", "logical", "failed")); v != 1 {
			return fmt.Errorf("kura_backup_verifications_total{outcome=failed} = %v", v)
		}
		return nil
	})

	// Asked again with the annotation (on a Backup whose spec did not ask): a new Job; its
	// log tail is the message when it reports no result.
	annotate(t, ns, "plain", "1")
	b = waitVerification(t, ns, "plain", kurav1alpha1.VerificationRunning)
	if b.Status.Verification.Request != "1" {
		t.Fatalf("verification %+v", b.Status.Verification)
	}
	finishJobWith(t, ns, "plain-verify", contract.ContainerVerify, []byte("starting\nkura restore: failed to open storage: connection refused"), false, "BackoffLimitExceeded")
	b = waitVerification(t, ns, "plain", kurav1alpha1.VerificationFailed)
	if b.Status.Verification.Message != "kura restore: failed to open storage: connection refused" {
		t.Fatalf("message %q", b.Status.Verification.Message)
	}
	waitGone(t, ns, "plain-verify", &batchv1.Job{})
	annotate(t, ns, "plain", "2")
	eventually(t, "a second verification Job", func() error {
		b = getBackup(t, ns, "plain")
		if v := b.Status.Verification; v.Phase != kurav1alpha1.VerificationRunning || v.Request != "2" {
			return fmt.Errorf("verification %+v", v)
		}
		return k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "plain-verify"}, &batchv1.Job{})
	})
	finishJobWith(t, ns, "plain-verify", contract.ContainerVerify, restorejob.Result{DurationMS: 900,
		Verification: &restorejob.Verification{Tables: 1, Rows: 5}}.Encode(), true, "")
	b = waitVerification(t, ns, "plain", kurav1alpha1.VerificationPassed)
	if v := b.Status.Verification; v.Request != "2" || v.Rows != 5 {
		t.Fatalf("verification %+v", v)
	}

	// A Job deleted before it reported fails the verification and says how to ask again.
	annotate(t, ns, "first", "again")
	waitVerification(t, ns, "first", kurav1alpha1.VerificationRunning)
	eventually(t, "the Job", func() error {
		return k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "first-verify"}, &batchv1.Job{})
	})
	if err := k8s.Delete(ctx, &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "first-verify"}}); err != nil {
		t.Fatal(err)
	}
	b = waitVerification(t, ns, "first", kurav1alpha1.VerificationFailed)
	if !strings.Contains(b.Status.Verification.Message, "deleted before it reported") {
		t.Fatalf("message %q", b.Status.Verification.Message)
	}
}

func annotate(t *testing.T, ns, name, value string) {
	t.Helper()
	b := getBackup(t, ns, name)
	base := b.DeepCopy()
	if b.Annotations == nil {
		b.Annotations = map[string]string{}
	}
	b.Annotations[VerifyAnnotation] = value
	if err := k8s.Patch(context.Background(), b, client.MergeFrom(base)); err != nil {
		t.Fatal(err)
	}
}
