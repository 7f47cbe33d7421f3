// Package controllers holds one reconciler per Kura kind. Each reconcile is a short named list
// of steps; the objects they apply are built by the pure functions of internal/builder.
package controllers

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	builderpkg "sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/internal/builder"
	"github.com/kura-db/kura/internal/contract"
	"github.com/kura-db/kura/internal/events"
)

// ClusterLoops hosts the clustering loop of each MySQLCluster (internal/clustering). The
// reconciler starts a loop once the cluster's objects exist and stops it when the cluster goes.
type ClusterLoops interface {
	Ensure(ctx context.Context, c *kurav1alpha1.MySQLCluster)
	Forget(key types.NamespacedName)
}

// MySQLClusterReconciler makes a MySQLCluster's Kubernetes objects match its spec.
type MySQLClusterReconciler struct {
	Client client.Client
	// APIReader reads what the cache does not hold: a user's credentials Secret (the cache
	// holds only the Secrets Kura created). Nil reads through Client.
	APIReader client.Reader
	Options   builder.Options
	Recorder  events.Recorder
	Loops     ClusterLoops
}

// errBlocked marks a step that cannot go on until the user fixes something; the reason is in
// the Reconciled condition and no error is returned (no crash loop, no hot requeue).
type errBlocked struct {
	reason, message string
	// recheck: the fix is in an object the operator does not watch (a user's Secret without
	// Kura's label), so the step is tried again after userObjectRecheck.
	recheck bool
}

// userObjectRecheck is how often a step blocked on an object the operator does not watch is
// tried again.
const userObjectRecheck = 10 * time.Second

func (e *errBlocked) Error() string { return e.message }

// errWaiting marks a step waiting on Kubernetes itself (for example the garbage collector);
// the pass ends and is retried shortly.
type errWaiting struct{ reason, message string }

func (e *errWaiting) Error() string { return e.message }

// pass carries what one reconcile learns from step to step.
type pass struct {
	cluster    *kurav1alpha1.MySQLCluster
	configHash string
	sts        *appsv1.StatefulSet
	// bootstrapStorage is the storage of spec.bootstrap's backup, once resolved, and
	// bootstrap what the first instance reported; bootstrapRefusal why it is not resolved.
	bootstrapStorage *kurav1alpha1.BackupStorage
	bootstrap        *kurav1alpha1.BootstrapStatus
	bootstrapRefusal *bootstrapRefusal
	// tlsHash is builder.TLSHash of the server certificate (empty without TLS); requeueAfter
	// when the pass must run again without any change (a certificate's renewal).
	tlsHash      string
	requeueAfter time.Duration
}

type step struct {
	name string
	run  func(ctx context.Context, p *pass) error
}

// RBAC: only the verbs the code uses. Owned objects are written with server-side apply (patch,
// and create for the first apply); the reconciler deletes only a StatefulSet it re-creates;
// the clustering loop labels and deletes instance Pods; a growing volume patches its PVCs.
// Owner references block owner deletion, which needs update on the owner's finalizers.
// +kubebuilder:rbac:groups=kura.dev,resources=mysqlclusters,verbs=get;list;watch
// +kubebuilder:rbac:groups=kura.dev,resources=mysqlclusters/status,verbs=patch
// +kubebuilder:rbac:groups=kura.dev,resources=mysqlclusters/finalizers,verbs=update
// +kubebuilder:rbac:groups=kura.dev,resources=backups;restores,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch;create;update
// +kubebuilder:rbac:groups="",resources=configmaps;services;serviceaccounts,verbs=get;list;watch;create;patch
// +kubebuilder:rbac:groups="",resources=pods,verbs=get;list;watch;patch;delete
// +kubebuilder:rbac:groups="",resources=persistentvolumeclaims,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=apps,resources=statefulsets,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=policy,resources=poddisruptionbudgets,verbs=get;list;watch;create;patch

// Reconcile runs the steps in order. A failing step stops the pass and is named in the
// Reconciled condition.
func (r *MySQLClusterReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	logger := log.FromContext(ctx)
	c := &kurav1alpha1.MySQLCluster{}
	if err := r.Client.Get(ctx, req.NamespacedName, c); err != nil {
		if apierrors.IsNotFound(err) {
			if r.Loops != nil {
				r.Loops.Forget(req.NamespacedName)
			}
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, fmt.Errorf("failed to get MySQLCluster: %w", err)
	}
	if !c.DeletionTimestamp.IsZero() {
		if r.Loops != nil {
			r.Loops.Forget(req.NamespacedName)
		}
		return ctrl.Result{}, nil
	}
	if builder.Fenced(c) {
		gone, err := r.fenceGone(ctx, c)
		if err != nil {
			return ctrl.Result{}, err
		}
		if gone {
			// The Restore that fenced the cluster was deleted: the fence goes with it, and
			// the cluster runs on the volume set it is on.
			c = c.DeepCopy()
			delete(c.Annotations, contract.AnnotationRestoreFence)
		}
	}
	// The clustering loop runs whatever happens to the steps below: a cluster whose reconcile
	// is blocked (a bad Secret, a refused change) must still fail over. Only an in-place
	// restore's fence stops it (docs/backup.md, "In-place restore"): nothing may act on the
	// instances while their volumes are switched.
	if r.Loops != nil {
		if builder.Fenced(c) {
			r.Loops.Forget(req.NamespacedName)
		} else {
			r.Loops.Ensure(ctx, c)
		}
	}
	c, bootstrapErr := builder.WithInPlaceBootstrap(c)
	p := &pass{cluster: c}
	if bootstrapErr != nil {
		return ctrl.Result{}, r.writeStatus(ctx, p, condBlocked(&errBlocked{reason: "InvalidBootstrapAnnotation", message: bootstrapErr.Error()}))
	}
	if c.Spec.Paused {
		return ctrl.Result{}, r.writeStatus(ctx, p, condPaused())
	}
	steps := []step{
		{"Bootstrap", r.reconcileBootstrap},
		{"Config", r.reconcileConfig},
		{"Credentials", r.reconcileCredentials},
		{"TLS", r.reconcileTLS},
		{"ServiceAccount", r.reconcileServiceAccount},
		{"Services", r.reconcileServices},
		{"PodDisruptionBudget", r.reconcilePDB},
		{"NetworkPolicy", r.reconcileNetworkPolicy},
		{"StatefulSet", r.reconcileStatefulSet},
	}
	for _, s := range steps {
		if err := s.run(ctx, p); err != nil {
			var blocked *errBlocked
			var waiting *errWaiting
			if errors.As(err, &waiting) {
				return ctrl.Result{RequeueAfter: time.Second}, r.writeStatus(ctx, p, condWaiting(waiting))
			}
			if errors.As(err, &blocked) {
				logger.Info("reconcile blocked", "step", s.name, "reason", blocked.reason, "message", blocked.message)
				var res ctrl.Result
				if blocked.recheck {
					res.RequeueAfter = userObjectRecheck
				}
				return res, r.writeStatus(ctx, p, condBlocked(blocked))
			}
			r.Recorder.Emit(c, events.Warning, events.ReconcileFailed, "step %s failed: %v", s.name, err)
			if serr := r.writeStatus(ctx, p, condFailed(s.name, err)); serr != nil {
				logger.Error(serr, "failed to write status")
			}
			return ctrl.Result{}, fmt.Errorf("failed to reconcile %s: %w", s.name, err)
		}
	}
	if builder.Fenced(c) {
		return ctrl.Result{}, r.writeStatus(ctx, p, condFenced(c))
	}
	return ctrl.Result{RequeueAfter: p.requeueAfter}, r.writeStatus(ctx, p, condReconciled())
}

// fenceGone reports whether the Restore named by the cluster's fence no longer exists.
func (r *MySQLClusterReconciler) fenceGone(ctx context.Context, c *kurav1alpha1.MySQLCluster) (bool, error) {
	err := r.Client.Get(ctx, types.NamespacedName{Namespace: c.Namespace, Name: c.Annotations[contract.AnnotationRestoreFence]}, &kurav1alpha1.Restore{})
	if apierrors.IsNotFound(err) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("failed to get the fencing Restore: %w", err)
	}
	return false, nil
}

// SetupWithManager watches the cluster and everything it owns, and credentials Secrets in the
// cache (Kura's own, and a user's Secret labelled kura.dev/cluster, so fixing it unblocks the
// cluster at once; an unlabelled user Secret is re-read every userObjectRecheck while it
// blocks), the Backups spec.bootstrap names, and the init containers of the instance Pods of
// clusters with spec.bootstrap (the restore's result). Status writes wake the reconciler only when they change what it builds from
// (clusterChanged): the clustering loop writes status on every change it sees, and each of
// those would otherwise re-run every step.
func (r *MySQLClusterReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &kurav1alpha1.MySQLCluster{}, credentialsSecretIndex,
		func(o client.Object) []string {
			return []string{builder.CredentialsSecretName(o.(*kurav1alpha1.MySQLCluster))}
		}); err != nil {
		return fmt.Errorf("failed to index credentials secrets: %w", err)
	}
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &kurav1alpha1.MySQLCluster{}, tlsSecretIndex,
		func(o client.Object) []string {
			return []string{builder.TLSSecretName(o.(*kurav1alpha1.MySQLCluster)), builder.CASecretName(o.(*kurav1alpha1.MySQLCluster))}
		}); err != nil {
		return fmt.Errorf("failed to index TLS secrets: %w", err)
	}
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &kurav1alpha1.MySQLCluster{}, bootstrapBackupIndex,
		func(o client.Object) []string {
			if b := o.(*kurav1alpha1.MySQLCluster).Spec.Bootstrap; b != nil {
				return []string{b.Backup}
			}
			return nil
		}); err != nil {
		return fmt.Errorf("failed to index bootstrap backups: %w", err)
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&kurav1alpha1.MySQLCluster{}, builderpkg.WithPredicates(predicate.Funcs{UpdateFunc: clusterChanged})).
		Owns(&appsv1.StatefulSet{}).
		Owns(&corev1.Service{}).
		Owns(&corev1.ConfigMap{}).
		Owns(&corev1.ServiceAccount{}).
		Owns(&policyv1.PodDisruptionBudget{}).
		Owns(&networkingv1.NetworkPolicy{}).
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(r.clustersUsingSecret)).
		Watches(&kurav1alpha1.Backup{}, handler.EnqueueRequestsFromMapFunc(r.clustersBootstrappedFrom)).
		Watches(&kurav1alpha1.Restore{}, handler.EnqueueRequestsFromMapFunc(clusterRestoredInPlace)).
		Watches(&corev1.Pod{}, handler.EnqueueRequestsFromMapFunc(clusterOfPod), builderpkg.WithPredicates(predicate.Funcs{
			CreateFunc: func(event.CreateEvent) bool { return false }, DeleteFunc: func(event.DeleteEvent) bool { return false },
			GenericFunc: func(event.GenericEvent) bool { return false }, UpdateFunc: bootstrapPodChanged})).
		Named("mysqlcluster").
		Complete(r)
}

const (
	credentialsSecretIndex = "spec.credentialsSecret"
	tlsSecretIndex         = "spec.tls.secretName"
)

// clusterChanged reports whether an update of a MySQLCluster can change what its reconcile
// does: the spec (generation), labels, annotations, deletion, the ordinals the StatefulSet must
// keep (status.currentPrimaryIndex and status.keepInstances, builder.StatefulSetReplicas) or
// the Reconciled condition having been lost.
func clusterChanged(e event.UpdateEvent) bool {
	o, ok1 := e.ObjectOld.(*kurav1alpha1.MySQLCluster)
	n, ok2 := e.ObjectNew.(*kurav1alpha1.MySQLCluster)
	if !ok1 || !ok2 {
		return true
	}
	return o.Generation != n.Generation ||
		!n.DeletionTimestamp.Equal(o.DeletionTimestamp) ||
		!maps.Equal(o.Labels, n.Labels) || !maps.Equal(o.Annotations, n.Annotations) ||
		!ptr.Equal(o.Status.CurrentPrimaryIndex, n.Status.CurrentPrimaryIndex) ||
		o.Status.KeepInstances != n.Status.KeepInstances ||
		meta.FindStatusCondition(n.Status.Conditions, kurav1alpha1.ConditionReconciled) == nil
}

// clusterRestoredInPlace maps an in-place Restore to its cluster (a deleted Restore lifts its
// fence).
func clusterRestoredInPlace(_ context.Context, o client.Object) []reconcile.Request {
	rs, ok := o.(*kurav1alpha1.Restore)
	if !ok || rs.Spec.Target.ExistingCluster == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: rs.Namespace, Name: rs.Spec.Target.ExistingCluster}}}
}

func (r *MySQLClusterReconciler) clustersUsingSecret(ctx context.Context, o client.Object) []reconcile.Request {
	return append(r.clustersIndexed(ctx, credentialsSecretIndex, o), r.clustersIndexed(ctx, tlsSecretIndex, o)...)
}

// clustersIndexed maps an object to the clusters of its namespace whose index names it.
func (r *MySQLClusterReconciler) clustersIndexed(ctx context.Context, index string, o client.Object) []reconcile.Request {
	var list kurav1alpha1.MySQLClusterList
	if err := r.Client.List(ctx, &list, client.InNamespace(o.GetNamespace()), client.MatchingFields{index: o.GetName()}); err != nil {
		return nil
	}
	out := make([]reconcile.Request, 0, len(list.Items))
	for _, c := range list.Items {
		out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&c)})
	}
	return out
}
