package controllers

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	backuprun "github.com/kura-db/kura/backup"
	restorejob "github.com/kura-db/kura/backup/restore"
	"github.com/kura-db/kura/internal/builder"
	"github.com/kura-db/kura/internal/contract"
	"github.com/kura-db/kura/internal/events"
	"github.com/kura-db/kura/internal/metrics"
)

// VerifyAnnotation asks for a verification by restore of a completed Backup, whether or not
// its spec asked for one: each new value starts one (kubectl annotate backup x
// kura.dev/verify=$(date +%s) --overwrite). The spec cannot change; annotations can.
const VerifyAnnotation = "kura.dev/verify"

// verifyRetryInterval is how often a verification waiting for another one, or running, is
// looked at again (Pods that cannot start are failed), unless BackupReconciler.VerifyPoll
// says otherwise.
const verifyRetryInterval = 15 * time.Second

func (r *BackupReconciler) verifyPoll() time.Duration {
	if r.VerifyPoll > 0 {
		return r.VerifyPoll
	}
	return verifyRetryInterval
}

// verificationWanted says whether b, a completed Backup, has a verification to start or to
// follow, and the annotation's request it answers.
func verificationWanted(b *kurav1alpha1.Backup) (string, bool) {
	req := b.Annotations[VerifyAnnotation]
	v := b.Status.Verification
	switch {
	case v == nil:
		return req, b.Spec.Verify != nil || req != ""
	case v.Phase == kurav1alpha1.VerificationPassed || v.Phase == kurav1alpha1.VerificationFailed:
		return req, req != "" && req != v.Request
	default:
		return req, true
	}
}

// verify runs and follows a completed Backup's verification by restore (dba rule 20;
// docs/backup.md, "Verification"): a Job restores the backup into a scratch volume through
// the real restore path and reads every table back; its result becomes
// status.verification, the Verified condition, an event and metrics. A failed verification
// leaves the Backup Completed: its data is stored, and the condition says it did not restore.
func (r *BackupReconciler) verify(ctx context.Context, b *kurav1alpha1.Backup) (ctrl.Result, error) {
	req, want := verificationWanted(b)
	if !want {
		return ctrl.Result{}, r.cleanUpVerification(ctx, b)
	}
	job := &batchv1.Job{}
	key := types.NamespacedName{Namespace: b.Namespace, Name: builder.VerifyJobName(b)}
	err := r.Client.Get(ctx, key, job)
	if apierrors.IsNotFound(err) && b.Status.Verification != nil && b.Status.Verification.Phase == kurav1alpha1.VerificationRunning && r.APIReader != nil {
		// Just created and not in the cache yet?
		err = r.APIReader.Get(ctx, key, job)
	}
	switch {
	case apierrors.IsNotFound(err):
		if v := b.Status.Verification; v != nil && v.Phase == kurav1alpha1.VerificationRunning && v.Request == req {
			return r.verified(ctx, b, restorejob.Result{}, jobDeletedMessage(v.JobName))
		}
		return r.startVerification(ctx, b, req)
	case err != nil:
		return ctrl.Result{}, fmt.Errorf("failed to get Job %s: %w", key.Name, err)
	}
	v := b.Status.Verification
	done, failed := jobOutcome(job)
	switch {
	case job.Annotations[VerifyAnnotation] != req:
		// The Job of an earlier request, not yet gone: the new one waits for it to go
		// rather than read its result.
		if job.DeletionTimestamp.IsZero() {
			bg := metav1.DeletePropagationBackground
			if err := r.Client.Delete(ctx, job, &client.DeleteOptions{PropagationPolicy: &bg}); err != nil && !apierrors.IsNotFound(err) {
				return ctrl.Result{}, fmt.Errorf("failed to delete Job %s: %w", job.Name, err)
			}
		}
		return ctrl.Result{RequeueAfter: r.verifyPoll()}, nil
	case !job.DeletionTimestamp.IsZero() && !done && !failed:
		return r.verified(ctx, b, restorejob.Result{}, jobDeletedMessage(job.Name))
	}
	if !done && !failed {
		if v == nil || v.Phase != kurav1alpha1.VerificationRunning {
			// The status written with the Job is not seen yet: rebuilt from the Job.
			return ctrl.Result{RequeueAfter: r.verifyPoll()}, r.writeVerification(ctx, b, runningVerification(job, req), "Verifying", "verifying by restore (Job "+job.Name+")")
		}
		msg, err := r.stuck(ctx, b, job, "annotate the Backup with "+VerifyAnnotation+"=<new value> to verify again")
		if err != nil || msg == "" {
			return ctrl.Result{RequeueAfter: r.verifyPoll()}, err
		}
		return r.verified(ctx, b, restorejob.Result{}, msg)
	}
	res, err := r.verifyResult(ctx, job)
	if err != nil {
		return ctrl.Result{}, err
	}
	msg := res.Error
	switch {
	case msg != "":
	case failed && deadlineExceeded(job):
		msg = fmt.Sprintf("the verification ran longer than its deadline (%ds, spec.verify.activeDeadlineSeconds) and was stopped", ptrValue(job.Spec.ActiveDeadlineSeconds))
	case failed:
		msg = fmt.Sprintf("Job %s failed without reporting a result; see its Pod's log", job.Name)
	case res.Verification == nil:
		msg = fmt.Sprintf("Job %s completed without reporting a verification", job.Name)
	}
	return r.verified(ctx, b, res, msg)
}

func jobDeletedMessage(job string) string {
	return fmt.Sprintf("Job %s was deleted before it reported; annotate the Backup with %s=<new value> to verify again", job, VerifyAnnotation)
}

// startVerification creates the Job (one per cluster at a time) and marks the verification
// Running.
func (r *BackupReconciler) startVerification(ctx context.Context, b *kurav1alpha1.Backup, req string) (ctrl.Result, error) {
	c := &kurav1alpha1.MySQLCluster{}
	if err := r.Client.Get(ctx, types.NamespacedName{Namespace: b.Namespace, Name: b.Spec.Cluster}, c); err != nil {
		if apierrors.IsNotFound(err) {
			return r.verifiedWith(ctx, b, req, restorejob.Result{}, fmt.Sprintf("MySQLCluster %q is gone: a verification runs the cluster's engine image and needs it", b.Spec.Cluster))
		}
		return ctrl.Result{}, fmt.Errorf("failed to get MySQLCluster: %w", err)
	}
	// One verification per cluster at a time: each restores a whole backup.
	jobs := &batchv1.JobList{}
	if err := r.Client.List(ctx, jobs, client.InNamespace(b.Namespace), client.MatchingLabels(builder.VerifySelector(c))); err != nil {
		return ctrl.Result{}, fmt.Errorf("failed to list verification Jobs: %w", err)
	}
	for _, j := range jobs.Items {
		if done, failed := jobOutcome(&j); !done && !failed && j.DeletionTimestamp.IsZero() {
			v := kurav1alpha1.VerificationStatus{Phase: kurav1alpha1.VerificationPending, Request: req,
				Message: fmt.Sprintf("waiting for the verification of Backup %s to end (one at a time per cluster)", j.Labels[contract.LabelBackup])}
			if cur := b.Status.Verification; cur != nil && cur.Phase == v.Phase && cur.Message == v.Message {
				return ctrl.Result{RequeueAfter: r.verifyPoll()}, nil
			}
			return ctrl.Result{RequeueAfter: r.verifyPoll()}, r.writeVerification(ctx, b, v, "Waiting", v.Message)
		}
	}
	if msg, err := r.checkSecrets(ctx, b, c); err != nil {
		return ctrl.Result{}, err
	} else if msg != "" {
		return r.verifiedWith(ctx, b, req, restorejob.Result{}, msg)
	}
	spec, err := json.Marshal(verifyRequest(b, c))
	if err != nil {
		return ctrl.Result{}, fmt.Errorf("failed to encode the verification request: %w", err)
	}
	if builder.NetworkPolicyEnabled(c) {
		np := builder.VerifyNetworkPolicy(c, b)
		if err := r.createOwned(ctx, b, np); err != nil {
			return ctrl.Result{}, err
		}
	}
	job := builder.VerifyJob(c, b, string(spec), r.Options)
	// The request the Job answers, to tell it from an earlier request's Job of the same name.
	job.Annotations = map[string]string{VerifyAnnotation: req}
	if err := r.createOwned(ctx, b, job); err != nil {
		return ctrl.Result{}, err
	}
	if err := r.writeVerification(ctx, b, runningVerification(job, req), "Verifying", "verifying by restore (Job "+job.Name+")"); err != nil {
		return ctrl.Result{}, err
	}
	r.Recorder.Emit(b, events.Normal, events.BackupVerifying, "verifying %s by restoring it into a scratch volume (Job %s)", b.Name, job.Name)
	return ctrl.Result{}, nil
}

// verifyRequest is the verification Job's restorejob.Job: the backup exactly where its backup
// Job stored it, restored to its own point.
func verifyRequest(b *kurav1alpha1.Backup, c *kurav1alpha1.MySQLCluster) restorejob.Job {
	engine := b.Status.Engine
	if engine == "" {
		engine = builder.Engine(c)
	}
	// The lineage the backup was stored under (a cluster of the same name created again has
	// another UID); a Backup from before status.lineage was recorded is its cluster's.
	lineage := b.Status.Lineage
	if lineage == "" {
		lineage = string(c.UID)
	}
	return restorejob.Job{
		Storage: storageConfig(b.Spec.Storage),
		Source:  backuprun.Layout{Namespace: b.Namespace, Cluster: b.Spec.Cluster, Lineage: lineage},
		Backup:  b.Name,
		Engine:  engine,
	}
}

func (r *BackupReconciler) createOwned(ctx context.Context, b *kurav1alpha1.Backup, obj client.Object) error {
	if err := controllerutil.SetControllerReference(b, obj, r.Client.Scheme()); err != nil {
		return fmt.Errorf("failed to own %s: %w", obj.GetName(), err)
	}
	if err := r.Client.Create(ctx, obj); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("failed to create %s: %w", obj.GetName(), err)
	}
	return nil
}

func runningVerification(job *batchv1.Job, req string) kurav1alpha1.VerificationStatus {
	return kurav1alpha1.VerificationStatus{Phase: kurav1alpha1.VerificationRunning, Request: req, JobName: job.Name,
		StartTime: &metav1.Time{Time: job.CreationTimestamp.Time}}
}

// jobOutcome says whether a Job completed or failed.
func jobOutcome(job *batchv1.Job) (done, failed bool) {
	for _, c := range job.Status.Conditions {
		if c.Status != corev1.ConditionTrue {
			continue
		}
		switch c.Type {
		case batchv1.JobComplete:
			done = true
		case batchv1.JobFailed:
			failed = true
		}
	}
	return done, failed
}

func deadlineExceeded(job *batchv1.Job) bool {
	for _, c := range job.Status.Conditions {
		if c.Type == batchv1.JobFailed && c.Status == corev1.ConditionTrue && c.Reason == batchv1.JobReasonDeadlineExceeded {
			return true
		}
	}
	return false
}

// verifyResult reads the termination message of the verification container.
func (r *BackupReconciler) verifyResult(ctx context.Context, job *batchv1.Job) (restorejob.Result, error) {
	msg, err := r.terminationMessage(ctx, job, contract.ContainerVerify)
	if err != nil || msg == "" {
		return restorejob.Result{}, err
	}
	if res, derr := restorejob.DecodeResult([]byte(msg)); derr == nil {
		return res, nil
	}
	// FallbackToLogsOnError: the message is the log's tail.
	return restorejob.Result{Error: lastLine(msg)}, nil
}

// terminationMessage is the termination message of container in the Job's Pod ("" when it
// has not terminated).
func (r *BackupReconciler) terminationMessage(ctx context.Context, job *batchv1.Job, container string) (string, error) {
	pods, err := r.jobPods(ctx, job)
	if err != nil {
		return "", err
	}
	for _, p := range pods {
		for _, cs := range p.Status.ContainerStatuses {
			if cs.Name == container && cs.State.Terminated != nil {
				return strings.TrimSpace(cs.State.Terminated.Message), nil
			}
		}
	}
	return "", nil
}

// verified records a finished verification: Passed when msg is empty.
func (r *BackupReconciler) verified(ctx context.Context, b *kurav1alpha1.Backup, res restorejob.Result, msg string) (ctrl.Result, error) {
	req := b.Annotations[VerifyAnnotation]
	if v := b.Status.Verification; v != nil {
		req = v.Request
	}
	return r.verifiedWith(ctx, b, req, res, msg)
}

func (r *BackupReconciler) verifiedWith(ctx context.Context, b *kurav1alpha1.Backup, req string, res restorejob.Result, msg string) (ctrl.Result, error) {
	now := metav1.NewTime(r.now())
	v := kurav1alpha1.VerificationStatus{Phase: kurav1alpha1.VerificationPassed, Request: req, CompletionTime: &now,
		RestoreMillis: res.DurationMS, Message: msg}
	if cur := b.Status.Verification; cur != nil {
		v.JobName, v.StartTime = cur.JobName, cur.StartTime
	}
	if x := res.Verification; x != nil {
		v.Tables, v.Rows, v.Compared = int32(x.Tables), x.Rows, int32(x.Compared)
	}
	reason, words := "Passed", fmt.Sprintf("restored in %s: %d tables, %d rows read back, %d tables' rows equal to the backup's counts",
		(time.Duration(res.DurationMS)*time.Millisecond).Round(time.Millisecond), v.Tables, v.Rows, v.Compared)
	if msg != "" {
		v.Phase, reason, words = kurav1alpha1.VerificationFailed, "VerificationFailed", msg
	}
	if err := r.writeVerification(ctx, b, v, reason, words); err != nil {
		return ctrl.Result{}, err
	}
	m := string(method(b))
	if res.DurationMS > 0 {
		metrics.BackupVerificationRestore.WithLabelValues(b.Namespace, b.Spec.Cluster, m).Set(float64(res.DurationMS) / 1000)
	}
	if msg == "" {
		metrics.BackupLastVerified.WithLabelValues(b.Namespace, b.Spec.Cluster, m).Set(float64(now.Unix()))
		metrics.BackupVerifications.WithLabelValues(b.Namespace, b.Spec.Cluster, m, "passed").Inc()
		r.Recorder.Emit(b, events.Normal, events.BackupVerified, "%s", words)
	} else {
		metrics.BackupVerifications.WithLabelValues(b.Namespace, b.Spec.Cluster, m, "failed").Inc()
		r.Recorder.Emit(b, events.Warning, events.BackupVerificationFailed, "%s", msg)
	}
	b.Status.Verification = &v
	return ctrl.Result{}, r.cleanUpVerification(ctx, b)
}

// writeVerification writes status.verification and the Verified condition (True only when
// it passed).
func (r *BackupReconciler) writeVerification(ctx context.Context, b *kurav1alpha1.Backup, v kurav1alpha1.VerificationStatus, reason, msg string) error {
	st := statusOf(b)
	st.Verification = &v
	cond := metav1.Condition{Type: kurav1alpha1.ConditionVerified, Status: metav1.ConditionFalse, ObservedGeneration: b.Generation, Reason: reason, Message: msg}
	if v.Phase == kurav1alpha1.VerificationPassed {
		cond.Status = metav1.ConditionTrue
	}
	meta.SetStatusCondition(&st.Conditions, cond)
	return r.writeStatus(ctx, b, st)
}

// cleanUpVerification deletes a finished verification's Job (its Pod goes with it) and
// NetworkPolicy once the result is in status.
func (r *BackupReconciler) cleanUpVerification(ctx context.Context, b *kurav1alpha1.Backup) error {
	v := b.Status.Verification
	if v == nil || v.JobName == "" || (v.Phase != kurav1alpha1.VerificationPassed && v.Phase != kurav1alpha1.VerificationFailed) {
		return nil
	}
	job := &batchv1.Job{}
	if err := r.Client.Get(ctx, types.NamespacedName{Namespace: b.Namespace, Name: v.JobName}, job); err != nil {
		return client.IgnoreNotFound(err)
	}
	if !job.DeletionTimestamp.IsZero() {
		return nil
	}
	bg := metav1.DeletePropagationBackground
	if err := r.Client.Delete(ctx, job, &client.DeleteOptions{PropagationPolicy: &bg}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("failed to delete Job %s: %w", job.Name, err)
	}
	np := builder.VerifyNetworkPolicy(&kurav1alpha1.MySQLCluster{}, b)
	if err := r.Client.Delete(ctx, np); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("failed to delete NetworkPolicy %s: %w", np.Name, err)
	}
	return nil
}

// jobPods are the Pods of this Job: a Job of the same name that was deleted and created
// again (a verification asked for once more) may leave Pods with the same job-name label
// until the garbage collector removes them; they are told apart by their owner.
func (r *BackupReconciler) jobPods(ctx context.Context, job *batchv1.Job) ([]corev1.Pod, error) {
	pods := &corev1.PodList{}
	if err := r.Client.List(ctx, pods, client.InNamespace(job.Namespace), client.MatchingLabels{batchv1.JobNameLabel: job.Name}); err != nil {
		return nil, fmt.Errorf("failed to list the Pods of Job %s: %w", job.Name, err)
	}
	out := pods.Items[:0]
	for _, p := range pods.Items {
		if metav1.IsControlledBy(&p, job) {
			out = append(out, p)
		}
	}
	return out, nil
}
