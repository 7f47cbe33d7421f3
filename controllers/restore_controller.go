package controllers

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/internal/apply"
	"github.com/kura-db/kura/internal/builder"
	"github.com/kura-db/kura/internal/contract"
	"github.com/kura-db/kura/internal/events"
	"github.com/kura-db/kura/internal/metrics"
)

// RestoreReconciler runs a Restore into a new cluster (docs/backup.md, "Restore"): it checks
// the request, copies the source cluster's credentials Secret, creates the MySQLCluster from
// the source's spec with spec.bootstrap, and follows the new cluster's status.bootstrap and
// Available condition. The data work is the new cluster's first instance's (kura init). It
// is the only writer of a Restore's status. A Restore into an existing cluster runs in place
// (restore_inplace.go; docs/backup.md, "In-place restore").
type RestoreReconciler struct {
	Client client.Client
	// APIReader reads the source's credentials Secret when it is a user's (the cache holds
	// only the Secrets Kura created). Nil reads through Client.
	APIReader client.Reader
	Recorder  events.Recorder
	Now       func() time.Time
}

// +kubebuilder:rbac:groups=kura.dev,resources=restores,verbs=get;list;watch
// +kubebuilder:rbac:groups=kura.dev,resources=restores/status,verbs=patch
// An in-place restore annotates its cluster, clears the clustering records of its status,
// labels the volumes it keeps and deletes them once confirmed or expired.
// +kubebuilder:rbac:groups=kura.dev,resources=mysqlclusters,verbs=get;list;watch;create;patch
// +kubebuilder:rbac:groups=kura.dev,resources=mysqlclusters/status,verbs=patch
// +kubebuilder:rbac:groups=kura.dev,resources=backups,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch;create
// +kubebuilder:rbac:groups="",resources=persistentvolumeclaims,verbs=get;list;watch;patch;delete
// +kubebuilder:rbac:groups="",resources=pods,verbs=get;list;watch

func (r *RestoreReconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *RestoreReconciler) reader() client.Reader {
	if r.APIReader != nil {
		return r.APIReader
	}
	return r.Client
}

// Reconcile moves one Restore along Pending → Running → Completed or Failed.
func (r *RestoreReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	rs := &kurav1alpha1.Restore{}
	if err := r.Client.Get(ctx, req.NamespacedName, rs); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if rs.Spec.Target.ExistingCluster != "" {
		// An in-place restore goes on after it completed: its kept volumes wait for a
		// confirmation, a rollback or their expiry.
		return r.inPlace(ctx, rs)
	}
	if rs.Status.Phase == kurav1alpha1.RestoreCompleted || rs.Status.Phase == kurav1alpha1.RestoreFailed {
		return ctrl.Result{}, nil
	}
	name := rs.Spec.Target.NewCluster
	c := &kurav1alpha1.MySQLCluster{}
	err := r.Client.Get(ctx, types.NamespacedName{Namespace: rs.Namespace, Name: name}, c)
	switch {
	case err == nil && c.Labels[contract.LabelRestore] == rs.Name && rs.Status.Phase != kurav1alpha1.RestoreRunning:
		// Created by a pass that stopped before its status was written.
		src, refusal, err := r.source(ctx, rs)
		if err != nil {
			return ctrl.Result{}, err
		}
		if refusal != nil {
			return r.fail(ctx, rs, refusal.reason, refusal.message)
		}
		return r.created(ctx, rs, c, src)
	case err == nil && c.Labels[contract.LabelRestore] == rs.Name:
		return r.follow(ctx, rs, c)
	case err == nil:
		return r.fail(ctx, rs, "ClusterExists", fmt.Sprintf("spec.target.newCluster: MySQLCluster %q already exists in namespace %s; a Restore never writes into an existing cluster: name a new one", name, rs.Namespace))
	case !apierrors.IsNotFound(err):
		return ctrl.Result{}, fmt.Errorf("failed to get MySQLCluster %s: %w", name, err)
	case rs.Status.Phase == kurav1alpha1.RestoreRunning:
		return r.fail(ctx, rs, "ClusterDeleted", fmt.Sprintf("MySQLCluster %q was deleted while it restored; create a new Restore to try again", name))
	}
	return r.start(ctx, rs)
}

// restoreSource is what a Restore copies: the Backup, its cluster and that cluster's
// credentials Secret.
type restoreSource struct {
	backup  *kurav1alpha1.Backup
	cluster *kurav1alpha1.MySQLCluster
	secret  *corev1.Secret
}

// source reads what the Restore copies; a refusal (reason, message) when something is
// missing or unusable.
func (r *RestoreReconciler) source(ctx context.Context, rs *kurav1alpha1.Restore) (restoreSource, *bootstrapRefusal, error) {
	var out restoreSource
	b, refusal, err := r.completedBackup(ctx, rs)
	if err != nil || refusal != nil {
		return out, refusal, err
	}
	src := &kurav1alpha1.MySQLCluster{}
	if err := r.Client.Get(ctx, types.NamespacedName{Namespace: rs.Namespace, Name: b.Spec.Cluster}, src); err != nil {
		if apierrors.IsNotFound(err) {
			return out, &bootstrapRefusal{reason: "SourceClusterGone", message: fmt.Sprintf("MySQLCluster %q, which Backup %q was taken from, is gone, so there is no spec to copy; create a MySQLCluster with spec.bootstrap.backup: %s and the spec you want instead, with a copy of the old credentials Secret as spec.credentialsSecret", b.Spec.Cluster, b.Name, b.Name)}, nil
		}
		return out, nil, fmt.Errorf("failed to get MySQLCluster %s: %w", b.Spec.Cluster, err)
	}
	if f := checkBootstrapBackup(b, builder.Engine(src), "spec.backup"); f != nil {
		return out, f, nil
	}
	secret := &corev1.Secret{}
	name := builder.CredentialsSecretName(src)
	if err := r.reader().Get(ctx, types.NamespacedName{Namespace: rs.Namespace, Name: name}, secret); err != nil {
		if apierrors.IsNotFound(err) {
			return out, &bootstrapRefusal{reason: "CredentialsMissing", message: fmt.Sprintf("the source cluster's credentials Secret %q is gone, and the restored data holds its accounts; recreate it with the passwords of the backup's time", name)}, nil
		}
		return out, nil, fmt.Errorf("failed to get Secret %s: %w", name, err)
	}
	return restoreSource{backup: b, cluster: src, secret: secret}, nil, nil
}

// completedBackup reads spec.backup; a refusal when it is missing or not completed.
func (r *RestoreReconciler) completedBackup(ctx context.Context, rs *kurav1alpha1.Restore) (*kurav1alpha1.Backup, *bootstrapRefusal, error) {
	b := &kurav1alpha1.Backup{}
	if err := r.Client.Get(ctx, types.NamespacedName{Namespace: rs.Namespace, Name: rs.Spec.Backup}, b); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, &bootstrapRefusal{reason: "BackupNotFound", message: fmt.Sprintf("spec.backup: Backup %q not found in namespace %s; name a completed Backup of this namespace", rs.Spec.Backup, rs.Namespace)}, nil
		}
		return nil, nil, fmt.Errorf("failed to get Backup %s: %w", rs.Spec.Backup, err)
	}
	if b.Status.Phase != kurav1alpha1.BackupCompleted {
		return nil, &bootstrapRefusal{reason: "BackupNotCompleted", message: fmt.Sprintf("spec.backup: Backup %q is %s, not Completed; create the Restore again once it has completed, or name a completed Backup", b.Name, orDefault(string(b.Status.Phase), "Pending"))}, nil
	}
	return b, nil, nil
}

// start checks the request, then creates the new cluster and its credentials Secret. Every
// check that fails fails the Restore with a message naming the field and the fix; nothing is
// created before all pass.
func (r *RestoreReconciler) start(ctx context.Context, rs *kurav1alpha1.Restore) (ctrl.Result, error) {
	name := rs.Spec.Target.NewCluster
	src, refusal, err := r.source(ctx, rs)
	if err != nil {
		return ctrl.Result{}, err
	}
	if refusal != nil {
		return r.fail(ctx, rs, refusal.reason, refusal.message)
	}
	newc := &kurav1alpha1.MySQLCluster{ObjectMeta: metav1.ObjectMeta{Namespace: rs.Namespace, Name: name}}
	var pvcs corev1.PersistentVolumeClaimList
	if err := r.Client.List(ctx, &pvcs, client.InNamespace(rs.Namespace), client.MatchingLabels(builder.SelectorLabels(newc))); err != nil {
		return ctrl.Result{}, fmt.Errorf("failed to list PVCs: %w", err)
	}
	if len(pvcs.Items) > 0 {
		return r.fail(ctx, rs, "VolumesInUse", fmt.Sprintf("spec.target.newCluster: %d volume(s) of a former cluster named %q are still there (%s; kept by deletionPolicy Retain), and the new cluster would start on their data; delete them or name another cluster", len(pvcs.Items), name, pvcs.Items[0].Name))
	}
	credName := builder.CredentialsSecretName(newc)
	// Read from the API server: a Secret Kura did not create is not in the cache.
	if err := r.reader().Get(ctx, types.NamespacedName{Namespace: rs.Namespace, Name: credName}, &corev1.Secret{}); err == nil {
		return r.fail(ctx, rs, "CredentialsSecretExists", fmt.Sprintf("spec.target.newCluster: Secret %q already exists in namespace %s (a former cluster's?); delete it or name another cluster", credName, rs.Namespace))
	} else if !apierrors.IsNotFound(err) {
		return ctrl.Result{}, fmt.Errorf("failed to get Secret %s: %w", credName, err)
	}
	newc.Labels = map[string]string{contract.LabelRestore: rs.Name}
	newc.Spec = restoredSpec(src.cluster, rs, credName)
	if err := r.Client.Create(ctx, newc); err != nil {
		if apierrors.IsAlreadyExists(err) {
			return ctrl.Result{RequeueAfter: time.Second}, nil
		}
		return ctrl.Result{}, fmt.Errorf("failed to create MySQLCluster %s: %w", name, err)
	}
	return r.created(ctx, rs, newc, src)
}

// created finishes a start once the new cluster exists, also when an earlier pass stopped
// right after creating it: the copy of the source's credentials, owned by the new cluster,
// then Running.
func (r *RestoreReconciler) created(ctx context.Context, rs *kurav1alpha1.Restore, c *kurav1alpha1.MySQLCluster, src restoreSource) (ctrl.Result, error) {
	sec := builder.CopiedCredentialsSecret(c, src.secret.Data)
	sec.Labels[contract.LabelRestore] = rs.Name
	if err := r.Client.Create(ctx, sec); err != nil {
		// Already there (a retried pass, or created since start's check): only this
		// Restore's own copy will do.
		live := &corev1.Secret{}
		if !apierrors.IsAlreadyExists(err) || r.reader().Get(ctx, client.ObjectKeyFromObject(sec), live) != nil || live.Labels[contract.LabelRestore] != rs.Name {
			return ctrl.Result{}, fmt.Errorf("failed to create Secret %s: %w", sec.Name, err)
		}
	}
	st := rs.Status
	now := metav1.NewTime(r.now())
	st.Phase, st.StartTime, st.Cluster = kurav1alpha1.RestoreRunning, &now, c.Name
	st.Message = fmt.Sprintf("MySQLCluster %s created from %s's spec; its first instance restores Backup %q (%s)", c.Name, src.cluster.Name, src.backup.Name, targetWords(rs.Spec.PointInTime))
	if err := r.writeStatus(ctx, rs, st); err != nil {
		return ctrl.Result{}, err
	}
	r.Recorder.Emit(rs, events.Normal, events.RestoreStarted, "%s", st.Message)
	return ctrl.Result{}, nil
}

// restoredSpec is the new cluster's spec: the source's, seeded from the Restore's backup,
// with its own credentials Secret (a copy of the source's), the source's application
// database by name (it defaults to the cluster's name, which differs), and nothing pending
// from the source (a switchover request, a pause). The binary log archive keeps its storage:
// the new cluster archives under its own lineage (its UID).
func restoredSpec(src *kurav1alpha1.MySQLCluster, rs *kurav1alpha1.Restore, credentials string) kurav1alpha1.MySQLClusterSpec {
	spec := *src.Spec.DeepCopy()
	spec.Database = builder.Database(src)
	spec.Bootstrap = &kurav1alpha1.BootstrapSpec{Backup: rs.Spec.Backup, PointInTime: rs.Spec.PointInTime.DeepCopy()}
	spec.CredentialsSecret = &corev1.LocalObjectReference{Name: credentials}
	spec.Switchover = nil
	spec.Paused = false
	return spec
}

func targetWords(p *kurav1alpha1.PointInTime) string {
	switch {
	case p == nil:
		return "to the backup's point"
	case p.Time != nil:
		return "to " + p.Time.UTC().Format(time.RFC3339)
	default:
		return "to GTID " + p.GTID
	}
}

// follow copies the new cluster's bootstrap into the Restore's status: Running while it
// restores, Completed once it restored and is available, Failed with the instance's error.
func (r *RestoreReconciler) follow(ctx context.Context, rs *kurav1alpha1.Restore, c *kurav1alpha1.MySQLCluster) (ctrl.Result, error) {
	bs := c.Status.Bootstrap
	if bs != nil && bs.Phase == kurav1alpha1.BootstrapFailed {
		rs.Status.RestoreOutcome = bs.RestoreOutcome
		return r.fail(ctx, rs, "RestoreFailed", bs.Message)
	}
	st := rs.Status
	st.Phase, st.Cluster = kurav1alpha1.RestoreRunning, c.Name
	if st.StartTime == nil {
		st.StartTime = &metav1.Time{Time: c.CreationTimestamp.Time}
	}
	available := meta.IsStatusConditionTrue(c.Status.Conditions, kurav1alpha1.ConditionAvailable)
	switch {
	case bs != nil && bs.Phase == kurav1alpha1.BootstrapRestored && available:
		now := metav1.NewTime(r.now())
		st.Phase, st.CompletionTime, st.RestoreOutcome = kurav1alpha1.RestoreCompleted, &now, bs.RestoreOutcome
		st.Message = fmt.Sprintf("%s restored up to GTID %s and is available", c.Name, bs.GTIDReached)
		meta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: kurav1alpha1.ConditionComplete, Status: metav1.ConditionTrue,
			ObservedGeneration: rs.Generation, Reason: "RestoreCompleted", Message: st.Message})
		if err := r.writeStatus(ctx, rs, st); err != nil {
			return ctrl.Result{}, err
		}
		took := now.Sub(st.StartTime.Time)
		metrics.RestoreLastDuration.WithLabelValues(rs.Namespace, c.Name).Set(took.Seconds())
		r.Recorder.Emit(rs, events.Normal, events.RestoreCompleted, "%s in %s (the instance's restore %s, %d transactions replayed)",
			st.Message, took.Round(time.Second), restoreDuration(bs.DurationMillis), bs.Replayed)
		return ctrl.Result{}, nil
	case bs != nil && bs.Phase == kurav1alpha1.BootstrapRestored:
		st.RestoreOutcome = bs.RestoreOutcome
		st.Message = fmt.Sprintf("%s restored up to GTID %s; waiting for it to be available", c.Name, bs.GTIDReached)
	case bs != nil:
		st.Message = bs.Message
	default:
		st.Message = fmt.Sprintf("waiting for MySQLCluster %s to start restoring", c.Name)
	}
	if st.Phase == rs.Status.Phase && st.Message == rs.Status.Message && st.StartTime.Equal(rs.Status.StartTime) {
		return ctrl.Result{}, nil
	}
	return ctrl.Result{}, r.writeStatus(ctx, rs, st)
}

// fail marks the Restore Failed with a message and one Warning event.
func (r *RestoreReconciler) fail(ctx context.Context, rs *kurav1alpha1.Restore, reason, msg string) (ctrl.Result, error) {
	st := rs.Status
	now := metav1.NewTime(r.now())
	st.Phase, st.Message, st.CompletionTime = kurav1alpha1.RestoreFailed, msg, &now
	meta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: kurav1alpha1.ConditionFailed, Status: metav1.ConditionTrue,
		ObservedGeneration: rs.Generation, Reason: reason, Message: msg})
	if err := r.writeStatus(ctx, rs, st); err != nil {
		return ctrl.Result{}, err
	}
	r.Recorder.Emit(rs, events.Warning, events.RestoreFailed, "%s", msg)
	return ctrl.Result{}, nil
}

func (r *RestoreReconciler) writeStatus(ctx context.Context, rs *kurav1alpha1.Restore, st kurav1alpha1.RestoreStatus) error {
	st.ObservedGeneration = rs.Generation
	return apply.Status(ctx, r.Client, rs, st, StatusOwner)
}

// restoresOfCluster maps a cluster to the Restore that created it (kura.dev/restore) and to
// the in-place Restores into it that are not settled.
func (r *RestoreReconciler) restoresOfCluster(ctx context.Context, o client.Object) []reconcile.Request {
	var out []reconcile.Request
	if name := o.GetLabels()[contract.LabelRestore]; name != "" {
		out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: name}})
	}
	var list kurav1alpha1.RestoreList
	if err := r.Client.List(ctx, &list, client.InNamespace(o.GetNamespace())); err != nil {
		return out
	}
	for _, rs := range list.Items {
		if ip := rs.Status.InPlace; rs.Spec.Target.ExistingCluster == o.GetName() && (ip == nil || !ip.KeptVolumesDeleted) {
			out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&rs)})
		}
	}
	return out
}

// SetupWithManager watches Restores, the clusters they created (kura.dev/restore) and the
// clusters they restore in place.
func (r *RestoreReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&kurav1alpha1.Restore{}).
		Watches(&kurav1alpha1.MySQLCluster{}, handler.EnqueueRequestsFromMapFunc(r.restoresOfCluster)).
		Named("restore").
		Complete(r)
}
