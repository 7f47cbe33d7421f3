package controllers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	backuprun "github.com/kura-db/kura/backup"
	"github.com/kura-db/kura/internal/apply"
	"github.com/kura-db/kura/internal/builder"
	"github.com/kura-db/kura/internal/contract"
	"github.com/kura-db/kura/internal/events"
	"github.com/kura-db/kura/internal/gtid"
	"github.com/kura-db/kura/internal/metrics"
)

// BackupReconciler runs each Backup as a Job (docs/backup.md): it picks the source instance,
// creates the Job built by builder.BackupJob, and copies the Job's result (its termination
// message) into status. It is the only writer of a Backup's status.
type BackupReconciler struct {
	Client client.Client
	// APIReader reads the Secrets a spec names (storage credentials, a user's credentials
	// Secret): the cache holds only the Secrets Kura created. Nil reads through Client.
	APIReader client.Reader
	Options   builder.Options
	Recorder  events.Recorder
	Now       func() time.Time
	// VerifyPoll is how often a running or waiting verification is looked at (default 15 s).
	VerifyPoll time.Duration
}

// BackupDataFinalizer is on a Backup while its stored data must be deleted with it.
const BackupDataFinalizer = "kura.dev/backup-data"

// +kubebuilder:rbac:groups=kura.dev,resources=backups,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=kura.dev,resources=backups/status,verbs=patch
// +kubebuilder:rbac:groups=kura.dev,resources=backups/finalizers,verbs=update
// +kubebuilder:rbac:groups=batch,resources=jobs,verbs=get;list;watch;create;delete
// +kubebuilder:rbac:groups="",resources=pods,verbs=get;list;watch

// backupStatus is the part of the status this reconciler writes (all of it).
type backupStatus struct {
	ObservedGeneration int64                    `json:"observedGeneration"`
	Phase              kurav1alpha1.BackupPhase `json:"phase"`
	Conditions         []metav1.Condition       `json:"conditions,omitempty"`
	JobName            string                   `json:"jobName,omitempty"`
	SourceInstance     string                   `json:"sourceInstance,omitempty"`
	StartTime          *metav1.Time             `json:"startTime,omitempty"`
	CompletionTime     *metav1.Time             `json:"completionTime,omitempty"`
	SnapshotTime       *metav1.Time             `json:"snapshotTime,omitempty"`
	GTIDPosition       string                   `json:"gtidPosition,omitempty"`
	BinlogPosition     string                   `json:"binlogPosition,omitempty"`
	Location           string                   `json:"location,omitempty"`
	SizeBytes          int64                    `json:"sizeBytes,omitempty"`
	SHA256             string                   `json:"sha256,omitempty"`
	Engine             kurav1alpha1.Engine      `json:"engine,omitempty"`
	EngineVersion      string                   `json:"engineVersion,omitempty"`
	Lineage            string                   `json:"lineage,omitempty"`
	Message            string                   `json:"message,omitempty"`
	// Verification is written by the verification steps (backup_verify.go).
	Verification *kurav1alpha1.VerificationStatus `json:"verification,omitempty"`
}

// statusFromJob is b's status with what the Job says filled in where it is missing: each
// status write applies every field this reconciler owns, so a stale read must not drop any.
func statusFromJob(b *kurav1alpha1.Backup, job *batchv1.Job) backupStatus {
	st := statusOf(b)
	st.JobName = job.Name
	if st.StartTime == nil {
		st.StartTime = &metav1.Time{Time: job.CreationTimestamp.Time}
	}
	if c := job.Spec.Template.Spec.Containers; len(c) > 0 && len(c[0].Command) > 0 {
		var req backuprun.Job
		arg, ok := strings.CutPrefix(c[0].Command[len(c[0].Command)-1], "--request=")
		if ok && json.Unmarshal([]byte(arg), &req) == nil {
			if st.SourceInstance == "" {
				st.SourceInstance = req.Source.Pod
			}
			if st.Engine == "" {
				st.Engine = req.Engine
			}
			if st.Lineage == "" {
				st.Lineage = req.Lineage
			}
		}
	}
	return st
}

// fromBackupStatus folds st back into a status (for the write that follows).
func fromBackupStatus(st backupStatus, s kurav1alpha1.BackupStatus) kurav1alpha1.BackupStatus {
	s.JobName, s.StartTime, s.SourceInstance, s.Engine, s.Lineage = st.JobName, st.StartTime, st.SourceInstance, st.Engine, st.Lineage
	return s
}

func statusOf(b *kurav1alpha1.Backup) backupStatus {
	s := b.Status
	return backupStatus{ObservedGeneration: b.Generation, Phase: s.Phase, Conditions: s.Conditions, JobName: s.JobName,
		SourceInstance: s.SourceInstance, StartTime: s.StartTime, CompletionTime: s.CompletionTime, SnapshotTime: s.SnapshotTime,
		GTIDPosition: s.GTIDPosition, BinlogPosition: s.BinlogPosition, Location: s.Location, SizeBytes: s.SizeBytes,
		SHA256: s.SHA256, Engine: s.Engine, EngineVersion: s.EngineVersion, Lineage: s.Lineage, Message: s.Message, Verification: s.Verification}
}

func (r *BackupReconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// Reconcile moves one Backup along Pending → Running → Completed or Failed.
func (r *BackupReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	b := &kurav1alpha1.Backup{}
	if err := r.Client.Get(ctx, req.NamespacedName, b); err != nil {
		if apierrors.IsNotFound(err) {
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, fmt.Errorf("failed to get Backup: %w", err)
	}
	if !b.DeletionTimestamp.IsZero() {
		return r.finalize(ctx, b)
	}
	switch b.Status.Phase {
	case kurav1alpha1.BackupCompleted:
		return r.verify(ctx, b)
	case kurav1alpha1.BackupFailed:
		return ctrl.Result{}, nil
	}
	if !controllerutil.ContainsFinalizer(b, BackupDataFinalizer) {
		// A patch of the finalizers alone: an update would send the whole spec as this
		// version's types serialize it (an empty resources: {} the stored object lacks),
		// which the spec's immutability rule refuses.
		base := b.DeepCopy()
		controllerutil.AddFinalizer(b, BackupDataFinalizer)
		if err := r.Client.Patch(ctx, b, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})); err != nil {
			return ctrl.Result{}, fmt.Errorf("failed to add the finalizer: %w", err)
		}
	}
	job := &batchv1.Job{}
	err := r.Client.Get(ctx, types.NamespacedName{Namespace: b.Namespace, Name: builder.BackupJobName(b)}, job)
	switch {
	case apierrors.IsNotFound(err) && b.Status.JobName != "":
		return r.jobMissing(ctx, b)
	case apierrors.IsNotFound(err):
		return r.start(ctx, b)
	case err != nil:
		return ctrl.Result{}, fmt.Errorf("failed to get Job: %w", err)
	}
	return r.follow(ctx, b, job)
}

// jobMissing handles a running Backup whose Job the cache does not hold. A backup is never
// run twice behind the user's back: the cache may be behind (the Job just created, or the
// Backup already failed and its stuck Job deleted), so both are read from the API server;
// a Job that is really gone fails the Backup.
func (r *BackupReconciler) jobMissing(ctx context.Context, b *kurav1alpha1.Backup) (ctrl.Result, error) {
	reader := client.Reader(r.Client)
	if r.APIReader != nil {
		reader = r.APIReader
	}
	live := &kurav1alpha1.Backup{}
	if err := reader.Get(ctx, client.ObjectKeyFromObject(b), live); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if live.Status.Phase != kurav1alpha1.BackupRunning {
		return ctrl.Result{}, nil // failed or completed meanwhile: the cache was behind
	}
	err := reader.Get(ctx, types.NamespacedName{Namespace: b.Namespace, Name: b.Status.JobName}, &batchv1.Job{})
	switch {
	case err == nil:
		return ctrl.Result{RequeueAfter: time.Second}, nil // the cache is behind
	case !apierrors.IsNotFound(err):
		return ctrl.Result{}, fmt.Errorf("failed to get Job %s: %w", b.Status.JobName, err)
	}
	return r.fail(ctx, live, "JobDeleted", fmt.Sprintf("Job %s was deleted before the backup finished; create a new Backup", b.Status.JobName))
}

// start checks what the Job needs, picks the source and creates the Job. A problem the user
// must fix fails the Backup with a message naming it: never a Job retried forever.
func (r *BackupReconciler) start(ctx context.Context, b *kurav1alpha1.Backup) (ctrl.Result, error) {
	c := &kurav1alpha1.MySQLCluster{}
	if err := r.Client.Get(ctx, types.NamespacedName{Namespace: b.Namespace, Name: b.Spec.Cluster}, c); err != nil {
		if apierrors.IsNotFound(err) {
			return r.fail(ctx, b, "ClusterNotFound", fmt.Sprintf("spec.cluster: MySQLCluster %q not found in namespace %s; create it or fix spec.cluster", b.Spec.Cluster, b.Namespace))
		}
		return ctrl.Result{}, fmt.Errorf("failed to get MySQLCluster: %w", err)
	}
	if msg, err := r.checkSecrets(ctx, b, c); err != nil {
		return ctrl.Result{}, err
	} else if msg != "" {
		return r.fail(ctx, b, "CredentialsMissing", msg)
	}
	src, err := ChooseBackupSource(c, b.Spec.Source)
	if err != nil {
		return r.fail(ctx, b, "NoSource", err.Error()+"; create a new Backup when the cluster is healthy")
	}
	agentTLS, err := r.agentServesTLS(ctx, c, src.Name)
	if err != nil {
		return ctrl.Result{}, err
	}
	reqJSON, err := backupRequest(b, c, src, agentTLS)
	if err != nil {
		return ctrl.Result{}, err
	}
	job := builder.BackupJob(c, b, reqJSON, r.Options)
	if err := controllerutil.SetControllerReference(b, job, r.Client.Scheme()); err != nil {
		return ctrl.Result{}, fmt.Errorf("failed to own the Job: %w", err)
	}
	if err := r.Client.Create(ctx, job); err != nil && !apierrors.IsAlreadyExists(err) {
		return ctrl.Result{}, fmt.Errorf("failed to create Job %s: %w", job.Name, err)
	}
	st := statusOf(b)
	now := metav1.NewTime(r.now())
	st.Phase, st.JobName, st.SourceInstance, st.StartTime, st.Engine, st.Message = kurav1alpha1.BackupRunning, job.Name, src.Name, &now, builder.Engine(c), ""
	// The lineage the backup is stored under (builder.Lineage), so a restore finds it
	// after the cluster is gone.
	st.Lineage = builder.Lineage(c)
	if err := r.writeStatus(ctx, b, st); err != nil {
		return ctrl.Result{}, err
	}
	r.Recorder.Emit(b, events.Normal, events.BackupStarted, "%s backup of %s started from %s (Job %s)", method(b), c.Name, src.Name, job.Name)
	return ctrl.Result{}, nil
}

// checkSecrets returns a message when a Secret or key the Job mounts is missing.
func (r *BackupReconciler) checkSecrets(ctx context.Context, b *kurav1alpha1.Backup, c *kurav1alpha1.MySQLCluster) (string, error) {
	need := []struct{ secret, key, field string }{{builder.CredentialsSecretName(c), contract.KeyAgentPassword, "the cluster's credentials Secret"},
		{builder.AgentTokenSecretName(c), contract.KeyAgentToken, "the cluster's agent token Secret"}}
	if s3 := b.Spec.Storage.S3; s3 != nil {
		cs := s3.CredentialsSecret
		need = append(need,
			struct{ secret, key, field string }{cs.Name, orDefault(cs.AccessKeyIDKey, "AWS_ACCESS_KEY_ID"), "spec.storage.s3.credentialsSecret"},
			struct{ secret, key, field string }{cs.Name, orDefault(cs.SecretAccessKeyKey, "AWS_SECRET_ACCESS_KEY"), "spec.storage.s3.credentialsSecret"})
		if s3.CASecret != nil {
			need = append(need, struct{ secret, key, field string }{s3.CASecret.Name, contract.BackupS3CAFile, "spec.storage.s3.caSecret"})
		}
	}
	var reader client.Reader = r.Client
	if r.APIReader != nil {
		reader = r.APIReader
	}
	for _, n := range need {
		s := &corev1.Secret{}
		if err := reader.Get(ctx, types.NamespacedName{Namespace: b.Namespace, Name: n.secret}, s); err != nil {
			if apierrors.IsNotFound(err) {
				return fmt.Sprintf("%s: Secret %q not found in namespace %s; create it", n.field, n.secret, b.Namespace), nil
			}
			return "", fmt.Errorf("failed to get Secret %s: %w", n.secret, err)
		}
		if len(s.Data[n.key]) == 0 {
			return fmt.Sprintf("%s: Secret %q has no key %q; add it or name the right key", n.field, n.secret, n.key), nil
		}
	}
	return "", nil
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

func method(b *kurav1alpha1.Backup) kurav1alpha1.BackupMethod {
	if b.Spec.Method == "" {
		return kurav1alpha1.BackupMethodLogical
	}
	return b.Spec.Method
}

// agentServesTLS reports whether the agent of the source instance serves HTTPS, as its Pod
// says (builder.AgentServesTLS); without the Pod, as the cluster's spec says.
func (r *BackupReconciler) agentServesTLS(ctx context.Context, c *kurav1alpha1.MySQLCluster, name string) (bool, error) {
	pod := &corev1.Pod{}
	if err := r.Client.Get(ctx, types.NamespacedName{Namespace: c.Namespace, Name: name}, pod); err != nil {
		if apierrors.IsNotFound(err) {
			return builder.TLSEnabled(c), nil
		}
		return false, fmt.Errorf("failed to get Pod %s: %w", name, err)
	}
	return builder.AgentServesTLS(pod), nil
}

// backupRequest is the Job's --request: the backup, its source (agentTLS: its agent serves
// HTTPS) and storage; no secrets.
func backupRequest(b *kurav1alpha1.Backup, c *kurav1alpha1.MySQLCluster, src kurav1alpha1.InstanceStatus, agentTLS bool) (string, error) {
	job := backuprun.Job{
		Request: backuprun.Request{Name: b.Name, Namespace: b.Namespace, Cluster: c.Name, Lineage: builder.Lineage(c), Engine: builder.Engine(c),
			Method: method(b), Compression: b.Spec.Compression, Databases: b.Spec.Databases,
			Source: backuprun.SourceInstance{Pod: src.Name, Host: builder.PodHost(c, src.Name),
				SQLPort: contract.MySQLPort, AgentPort: contract.AgentPort, Role: string(src.Role), AgentTLS: agentTLS}},
		AgentPasswordFile: contract.BackupCredentialsDir + "/" + contract.BackupAgentPasswordKey,
		AgentTokenFile:    contract.BackupCredentialsDir + "/" + contract.KeyAgentToken,
		Storage:           storageConfig(b.Spec.Storage),
	}
	out, err := json.Marshal(job)
	if err != nil {
		return "", fmt.Errorf("failed to encode the backup request: %w", err)
	}
	return string(out), nil
}

// follow copies a finished Job's result into status.
func (r *BackupReconciler) follow(ctx context.Context, b *kurav1alpha1.Backup, job *batchv1.Job) (ctrl.Result, error) {
	var done, failed *batchv1.JobCondition
	for i := range job.Status.Conditions {
		cond := &job.Status.Conditions[i]
		if cond.Status != corev1.ConditionTrue {
			continue
		}
		switch cond.Type {
		case batchv1.JobComplete:
			done = cond
		case batchv1.JobFailed:
			failed = cond
		}
	}
	if done == nil && failed == nil {
		if b.Status.Phase != kurav1alpha1.BackupRunning {
			// The Job exists but the status written after creating it is not seen (lost,
			// or not yet in the cache): what it said is rebuilt from the Job.
			st := statusFromJob(b, job)
			st.Phase = kurav1alpha1.BackupRunning
			// The write may change nothing (the status was there, the cache behind): look
			// again on the timer as for any running backup.
			return ctrl.Result{RequeueAfter: stuckCheckInterval}, r.writeStatus(ctx, b, st)
		}
		// A Pod that cannot start (a Secret deleted after the Job was created, an image
		// that cannot be pulled) would wait forever: the Backup fails and the Job goes.
		msg, err := r.stuck(ctx, b, job, "fix it and create a new Backup")
		if err != nil || msg == "" {
			return ctrl.Result{RequeueAfter: stuckCheckInterval}, err
		}
		bg := metav1.DeletePropagationBackground
		if err := r.Client.Delete(ctx, job, &client.DeleteOptions{PropagationPolicy: &bg}); err != nil && !apierrors.IsNotFound(err) {
			return ctrl.Result{}, fmt.Errorf("failed to delete Job %s: %w", job.Name, err)
		}
		b.Status = fromBackupStatus(statusFromJob(b, job), b.Status)
		return r.fail(ctx, b, "PodCannotStart", msg)
	}
	sum, err := r.summary(ctx, job)
	if err != nil {
		return ctrl.Result{}, err
	}
	b.Status = fromBackupStatus(statusFromJob(b, job), b.Status)
	if failed != nil || done == nil || sum.Error != "" || sum.Location == "" {
		msg := sum.Error
		switch {
		case msg != "":
		case failed != nil && failed.Reason == batchv1.JobReasonDeadlineExceeded:
			msg = fmt.Sprintf("the backup ran longer than spec.activeDeadlineSeconds (%ds) and was stopped; nothing was kept", ptrValue(b.Spec.ActiveDeadlineSeconds))
		case failed != nil:
			msg = fmt.Sprintf("Job %s failed (%s: %s); see its Pod's log", job.Name, failed.Reason, failed.Message)
		default:
			msg = fmt.Sprintf("Job %s completed without reporting a backup", job.Name)
		}
		return r.fail(ctx, b, "BackupFailed", msg)
	}
	st := statusOf(b)
	now := metav1.NewTime(r.now())
	st.Phase, st.CompletionTime, st.Message = kurav1alpha1.BackupCompleted, &now, ""
	st.Location, st.SizeBytes, st.SHA256, st.GTIDPosition, st.BinlogPosition = sum.Location, sum.Size, sum.SHA256, sum.GTID, sum.Binlog
	st.EngineVersion = sum.Version
	if sum.Source != "" {
		st.SourceInstance = sum.Source
	}
	if !sum.Snapshot.IsZero() {
		st.SnapshotTime = &metav1.Time{Time: sum.Snapshot}
	}
	meta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: kurav1alpha1.ConditionComplete, Status: metav1.ConditionTrue,
		ObservedGeneration: b.Generation, Reason: "BackupCompleted", Message: "stored at " + sum.Location})
	if err := r.writeStatus(ctx, b, st); err != nil {
		return ctrl.Result{}, err
	}
	m := string(method(b))
	metrics.BackupLastSuccess.WithLabelValues(b.Namespace, b.Spec.Cluster, m).Set(float64(now.Unix()))
	if st.StartTime != nil {
		metrics.BackupLastDuration.WithLabelValues(b.Namespace, b.Spec.Cluster, m).Set(now.Sub(st.StartTime.Time).Seconds())
	}
	metrics.BackupLastSize.WithLabelValues(b.Namespace, b.Spec.Cluster, m).Set(float64(sum.Size))
	metrics.Backups.WithLabelValues(b.Namespace, b.Spec.Cluster, m, "completed").Inc()
	r.Recorder.Emit(b, events.Normal, events.BackupCompleted, "stored %d bytes at %s, consistent with GTID %s", sum.Size, sum.Location, sum.GTID)
	return ctrl.Result{}, nil
}

// stuckCheckInterval is how often a running backup's Pod is checked for a start that
// cannot succeed.
const stuckCheckInterval = 15 * time.Second

// stuckReasons are the waiting reasons of a container that will not start without a fix.
var stuckReasons = map[string]bool{"CreateContainerConfigError": true, "CreateContainerError": true, "ErrImagePull": true,
	"ImagePullBackOff": true, "InvalidImageName": true, "RunContainerError": true}

// stuck returns why the Job's Pod cannot start, or "": a container waiting for a fix (fix
// says what to do then), or a Secret the Pod mounts that is gone (it would wait forever).
func (r *BackupReconciler) stuck(ctx context.Context, b *kurav1alpha1.Backup, job *batchv1.Job, fix string) (string, error) {
	pods, err := r.jobPods(ctx, job)
	if err != nil {
		return "", err
	}
	for _, p := range pods {
		if p.Status.Phase != corev1.PodPending {
			continue
		}
		for _, cs := range append(append([]corev1.ContainerStatus(nil), p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
			if w := cs.State.Waiting; w != nil && stuckReasons[w.Reason] {
				return fmt.Sprintf("Pod %s cannot start container %s: %s: %s; %s", p.Name, cs.Name, w.Reason, w.Message, fix), nil
			}
		}
		c := &kurav1alpha1.MySQLCluster{}
		if err := r.Client.Get(ctx, types.NamespacedName{Namespace: b.Namespace, Name: b.Spec.Cluster}, c); err != nil {
			return "", client.IgnoreNotFound(err)
		}
		if msg, err := r.checkSecrets(ctx, b, c); err != nil || msg != "" {
			return msg, err
		}
	}
	return "", nil
}

func ptrValue(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
}

// summary reads the termination message of the Job's backup container.
func (r *BackupReconciler) summary(ctx context.Context, job *batchv1.Job) (backuprun.Summary, error) {
	msg, err := r.terminationMessage(ctx, job, contract.ContainerBackup)
	if err != nil || msg == "" {
		return backuprun.Summary{}, err
	}
	var s backuprun.Summary
	if !json.Valid([]byte(msg)) || json.Unmarshal([]byte(msg), &s) != nil {
		// FallbackToLogsOnError: the message is the log's tail.
		s = backuprun.Summary{Error: lastLine(msg)}
	}
	return s, nil
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// fail marks the Backup Failed with a message and one Warning event.
func (r *BackupReconciler) fail(ctx context.Context, b *kurav1alpha1.Backup, reason, msg string) (ctrl.Result, error) {
	st := statusOf(b)
	now := metav1.NewTime(r.now())
	st.Phase, st.Message, st.CompletionTime = kurav1alpha1.BackupFailed, msg, &now
	meta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: kurav1alpha1.ConditionFailed, Status: metav1.ConditionTrue,
		ObservedGeneration: b.Generation, Reason: reason, Message: msg})
	if err := r.writeStatus(ctx, b, st); err != nil {
		return ctrl.Result{}, err
	}
	metrics.Backups.WithLabelValues(b.Namespace, b.Spec.Cluster, string(method(b)), "failed").Inc()
	r.Recorder.Emit(b, events.Warning, events.BackupFailed, "%s", msg)
	return ctrl.Result{}, nil
}

func (r *BackupReconciler) writeStatus(ctx context.Context, b *kurav1alpha1.Backup, st backupStatus) error {
	return apply.Status(ctx, r.Client, b, st, StatusOwner)
}

// finalize deletes the backup's stored data with a Job (the operator never holds storage
// credentials or mounts volumes), unless spec.deletionPolicy is Retain, then releases the
// Backup.
func (r *BackupReconciler) finalize(ctx context.Context, b *kurav1alpha1.Backup) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(b, BackupDataFinalizer) {
		return ctrl.Result{}, nil
	}
	if needsDataJob(b) {
		done, err := r.deleteData(ctx, b)
		if err != nil || !done {
			return ctrl.Result{RequeueAfter: 5 * time.Second}, err
		}
	}
	base := b.DeepCopy()
	controllerutil.RemoveFinalizer(b, BackupDataFinalizer)
	if err := r.Client.Patch(ctx, b, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})); err != nil && !apierrors.IsNotFound(err) {
		return ctrl.Result{}, fmt.Errorf("failed to remove the finalizer: %w", err)
	}
	return ctrl.Result{}, nil
}

// needsDataJob says whether deleting b needs a Job in storage: a completed Backup's data is
// deleted (unless spec.deletionPolicy is Retain); a failed run may have left objects without
// a manifest (a killed Job cannot clean up after itself), which are removed whatever the
// policy, since they are no backup. A Backup whose Job never ran stored nothing.
func needsDataJob(b *kurav1alpha1.Backup) bool {
	if b.Status.Phase == kurav1alpha1.BackupFailed {
		return b.Status.JobName != ""
	}
	return b.Status.Location != "" && b.Spec.DeletionPolicy != kurav1alpha1.DeletionPolicyRetain
}

// deleteData runs (or follows) the deletion Job; done when it succeeded.
func (r *BackupReconciler) deleteData(ctx context.Context, b *kurav1alpha1.Backup) (bool, error) {
	c := &kurav1alpha1.MySQLCluster{}
	if err := r.Client.Get(ctx, types.NamespacedName{Namespace: b.Namespace, Name: b.Spec.Cluster}, c); err != nil {
		if apierrors.IsNotFound(err) {
			// Without the cluster the lineage is unknown here; the data stays (docs/backup.md).
			r.Recorder.Emit(b, events.Warning, events.BackupDataKept, "MySQLCluster %q is gone: the stored data at %s is kept", b.Spec.Cluster, orDefault(b.Status.Location, "its backup prefix"))
			return true, nil
		}
		return false, fmt.Errorf("failed to get MySQLCluster: %w", err)
	}
	name := builder.BackupDeleteJobName(b)
	job := &batchv1.Job{}
	err := r.Client.Get(ctx, types.NamespacedName{Namespace: b.Namespace, Name: name}, job)
	if apierrors.IsNotFound(err) {
		src := kurav1alpha1.InstanceStatus{Name: b.Status.SourceInstance}
		reqJSON, err := backupRequest(b, c, src, false)
		if err != nil {
			return false, err
		}
		if reqJSON, err = r.withArchivePrune(ctx, reqJSON, b, c); err != nil {
			return false, err
		}
		job = builder.BackupDeleteJob(c, b, reqJSON, r.Options)
		if err := r.Client.Create(ctx, job); err != nil && !apierrors.IsAlreadyExists(err) {
			if apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
				// The whole namespace goes: no Job can run in it any more.
				r.Recorder.Emit(b, events.Warning, events.BackupDataKept, "namespace %s is being deleted, so no Job can delete the stored data of %s; it is kept at %s",
					b.Namespace, b.Name, orDefault(b.Status.Location, "its backup prefix"))
				return true, nil
			}
			return false, fmt.Errorf("failed to create Job %s: %w", name, err)
		}
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("failed to get Job %s: %w", name, err)
	}
	for _, cond := range job.Status.Conditions {
		if cond.Status != corev1.ConditionTrue {
			continue
		}
		switch cond.Type {
		case batchv1.JobComplete:
			bg := metav1.DeletePropagationBackground
			if err := r.Client.Delete(ctx, job, &client.DeleteOptions{PropagationPolicy: &bg}); err != nil && !apierrors.IsNotFound(err) {
				return false, fmt.Errorf("failed to delete Job %s: %w", name, err)
			}
			return true, nil
		case batchv1.JobFailed:
			if b.Status.Phase == kurav1alpha1.BackupFailed {
				// A failed run's leftovers are no backup: the Backup is not held for them.
				r.Recorder.Emit(b, events.Warning, events.BackupDataKept, "Job %s could not check the storage for objects the failed run left (see its log): whatever it stored stays", name)
				return true, nil
			}
			return false, errors.New("failed to delete the stored data of " + b.Name + ": Job " + name + " failed; see its log, fix storage access, then delete the Job to retry")
		}
	}
	return false, nil
}

// SetupWithManager registers the reconciler.
func (r *BackupReconciler) SetupWithManager(mgr ctrl.Manager) error {
	// A Job's Pod that cannot start changes no Job: its Pods are watched too, so a stuck one
	// fails the Backup when it is seen, not on the next timed check.
	podsOfBackups := handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
		name := o.GetLabels()[contract.LabelBackup]
		if name == "" {
			return nil
		}
		return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: name}}}
	})
	return ctrl.NewControllerManagedBy(mgr).For(&kurav1alpha1.Backup{}).Owns(&batchv1.Job{}).
		Watches(&corev1.Pod{}, podsOfBackups).Named("backup").Complete(r)
}

// withArchivePrune adds to a delete Job's request the position below which the cluster's
// binary log archive goes with the deleted backup (dba rule 18; archive.Prune): the point every
// other completed backup of the cluster's lineage that can seed a restore has reached. Only
// when the archive is in the backup's storage (the Job holds no other credentials) and another
// such backup exists: otherwise the archive stays whole.
func (r *BackupReconciler) withArchivePrune(ctx context.Context, reqJSON string, b *kurav1alpha1.Backup, c *kurav1alpha1.MySQLCluster) (string, error) {
	if c.Spec.BinlogArchive == nil || !equality.Semantic.DeepEqual(c.Spec.BinlogArchive.Storage, b.Spec.Storage) ||
		b.Status.Phase != kurav1alpha1.BackupCompleted || builder.Engine(c) != kurav1alpha1.EngineMariaDB {
		return reqJSON, nil
	}
	list := &kurav1alpha1.BackupList{}
	if err := r.Client.List(ctx, list, client.InNamespace(b.Namespace)); err != nil {
		return "", fmt.Errorf("failed to list Backups: %w", err)
	}
	var kept []gtid.Set
	for _, o := range list.Items {
		if o.Name == b.Name || o.Spec.Cluster != c.Name || o.Status.Phase != kurav1alpha1.BackupCompleted || !o.DeletionTimestamp.IsZero() ||
			len(o.Spec.Databases) > 0 || (o.Status.Lineage != "" && o.Status.Lineage != builder.Lineage(c)) {
			continue
		}
		set, err := gtid.Parse(gtid.MariaDB, o.Status.GTIDPosition)
		if err != nil || set.IsEmpty() {
			return reqJSON, nil //nolint:nilerr // a backup whose point is unknown keeps the whole archive
		}
		kept = append(kept, set)
	}
	if len(kept) == 0 {
		return reqJSON, nil
	}
	var job backuprun.Job
	if err := json.Unmarshal([]byte(reqJSON), &job); err != nil {
		return "", fmt.Errorf("failed to decode the delete request: %w", err)
	}
	job.PruneArchiveBelow = gtid.Earliest(kept...).String()
	out, err := json.Marshal(job)
	if err != nil {
		return "", fmt.Errorf("failed to encode the delete request: %w", err)
	}
	return string(out), nil
}
