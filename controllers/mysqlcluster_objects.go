package controllers

import (
	"context"
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/internal/apply"
	"github.com/kura-db/kura/internal/builder"
	"github.com/kura-db/kura/internal/contract"
	"github.com/kura-db/kura/internal/events"
	"github.com/kura-db/kura/internal/mycnf"
)

func (r *MySQLClusterReconciler) apply(ctx context.Context, obj client.Object) error {
	_, err := apply.Object(ctx, r.Client, obj, contract.FieldOwner)
	return err
}

func (r *MySQLClusterReconciler) reconcileConfig(ctx context.Context, p *pass) error {
	if err := mycnf.ValidateOverrides(p.cluster.Spec.MySQLD.Config); err != nil {
		r.Recorder.Emit(p.cluster, events.Warning, events.ConfigInvalid, "%v", err)
		return &errBlocked{reason: "InvalidConfig", message: err.Error()}
	}
	cm, hash, err := builder.ConfigMap(p.cluster)
	if err != nil {
		return &errBlocked{reason: "InvalidConfig", message: err.Error()}
	}
	p.configHash = hash
	return r.apply(ctx, cm)
}

// reconcileCredentials creates the generated Secret once, or checks the user's Secret. A
// missing key blocks the cluster with a condition naming the key; passwords are never logged
// and never overwritten.
func (r *MySQLClusterReconciler) reconcileCredentials(ctx context.Context, p *pass) error {
	c := p.cluster
	name := builder.CredentialsSecretName(c)
	s := &corev1.Secret{}
	err := r.secretReader(c).Get(ctx, types.NamespacedName{Namespace: c.Namespace, Name: name}, s)
	switch {
	case apierrors.IsNotFound(err) && c.Spec.CredentialsSecret != nil:
		return &errBlocked{reason: "CredentialsSecretNotFound", recheck: true,
			message: fmt.Sprintf("spec.credentialsSecret: Secret %q not found in namespace %q; create it with keys %s", name, c.Namespace, strings.Join(builder.CredentialKeys, ", "))}
	case apierrors.IsNotFound(err):
		gen, err := builder.CredentialsSecret(c)
		if err != nil {
			return err
		}
		if err := r.Client.Create(ctx, gen); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("failed to create Secret %s: %w", name, err)
		}
		r.Recorder.Emit(c, events.Normal, events.CredentialsGenerated, "generated Secret %s with random passwords", name)
		// The agent token in the same pass: nothing may wake the reconciler again before the
		// Pods need it (a fleet showed 800 of 1,000 new clusters without one).
		return r.reconcileAgentToken(ctx, c)
	case err != nil:
		return fmt.Errorf("failed to get Secret %s: %w", name, err)
	}
	if missing := builder.MissingCredentialKeys(s); len(missing) > 0 {
		msg := fmt.Sprintf("Secret %q lacks key(s) %s; add them (non-empty) to the Secret", name, strings.Join(missing, ", "))
		r.Recorder.Emit(c, events.Warning, events.CredentialsInvalid, "%s", msg)
		return &errBlocked{reason: "CredentialsSecretInvalid", message: msg, recheck: c.Spec.CredentialsSecret != nil}
	}
	return r.reconcileAgentToken(ctx, c)
}

// reconcileAgentToken creates the agents' API token Secret once (docs/security.md): always
// generated, never a database password, never updated.
func (r *MySQLClusterReconciler) reconcileAgentToken(ctx context.Context, c *kurav1alpha1.MySQLCluster) error {
	name := builder.AgentTokenSecretName(c)
	err := r.Client.Get(ctx, types.NamespacedName{Namespace: c.Namespace, Name: name}, &corev1.Secret{})
	if !apierrors.IsNotFound(err) {
		return err
	}
	gen, err := builder.AgentTokenSecret(c)
	if err != nil {
		return err
	}
	if err := r.Client.Create(ctx, gen); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("failed to create Secret %s: %w", name, err)
	}
	return nil
}

// secretReader reads the cluster's credentials Secret: the generated one (labelled, so in the
// cache) from the cache, a user's Secret straight from the API server, since the cache holds
// only the Secrets Kura created.
func (r *MySQLClusterReconciler) secretReader(c *kurav1alpha1.MySQLCluster) client.Reader {
	if c.Spec.CredentialsSecret != nil && r.APIReader != nil {
		return r.APIReader
	}
	return r.Client
}

func (r *MySQLClusterReconciler) reconcileServiceAccount(ctx context.Context, p *pass) error {
	return r.apply(ctx, builder.ServiceAccount(p.cluster))
}

func (r *MySQLClusterReconciler) reconcileServices(ctx context.Context, p *pass) error {
	for _, s := range []*corev1.Service{builder.HeadlessService(p.cluster), builder.PrimaryService(p.cluster), builder.ReplicasService(p.cluster)} {
		if err := r.apply(ctx, s); err != nil {
			return err
		}
	}
	return nil
}

func (r *MySQLClusterReconciler) reconcilePDB(ctx context.Context, p *pass) error {
	return r.apply(ctx, builder.PodDisruptionBudget(p.cluster))
}

func (r *MySQLClusterReconciler) reconcileStatefulSet(ctx context.Context, p *pass) error {
	desired := builder.StatefulSet(p.cluster, p.configHash, p.tlsHash, p.bootstrapStorage, r.Options)
	if err := r.recreateIfClaimTemplateChanged(ctx, p, desired); err != nil {
		return err
	}
	if err := r.apply(ctx, desired); err != nil {
		return err
	}
	sts := &appsv1.StatefulSet{}
	key := types.NamespacedName{Namespace: p.cluster.Namespace, Name: builder.StatefulSetName(p.cluster)}
	err := r.Client.Get(ctx, key, sts)
	if apierrors.IsNotFound(err) && r.APIReader != nil {
		// Just created: the cache has not seen it yet.
		err = r.APIReader.Get(ctx, key, sts)
	}
	if err != nil {
		return fmt.Errorf("failed to read StatefulSet back: %w", err)
	}
	p.sts = sts
	return nil
}

// recreateIfClaimTemplateChanged handles a grown spec.storage.size. A StatefulSet's
// volumeClaimTemplates are immutable, so each existing PVC is expanded in place and the
// StatefulSet is deleted with orphan propagation and re-created with the new template: the
// Pods keep running throughout (the update strategy is OnDelete) and the new StatefulSet adopts
// them and the PVCs.
func (r *MySQLClusterReconciler) recreateIfClaimTemplateChanged(ctx context.Context, p *pass, desired *appsv1.StatefulSet) error {
	live := &appsv1.StatefulSet{}
	err := r.Client.Get(ctx, client.ObjectKeyFromObject(desired), live)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("failed to get StatefulSet: %w", err)
	}
	if !live.DeletionTimestamp.IsZero() {
		return &errWaiting{reason: "RecreatingStatefulSet", message: "waiting for the old StatefulSet to be deleted (orphaning its Pods) before re-creating it with the grown volume claim template"}
	}
	if len(live.Spec.VolumeClaimTemplates) == 0 {
		return nil
	}
	if live.Spec.VolumeClaimTemplates[0].Name != desired.Spec.VolumeClaimTemplates[0].Name {
		return r.switchVolumeSet(ctx, p, live, desired)
	}
	want := desired.Spec.VolumeClaimTemplates[0].Spec.Resources.Requests[corev1.ResourceStorage]
	have := live.Spec.VolumeClaimTemplates[0].Spec.Resources.Requests[corev1.ResourceStorage]
	if want.Cmp(have) <= 0 {
		return nil
	}
	if err := r.expandClaims(ctx, p, want); err != nil {
		return err
	}
	if err := r.Client.Delete(ctx, live, client.PropagationPolicy(metav1.DeletePropagationOrphan), client.Preconditions{UID: &live.UID}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("failed to delete StatefulSet for re-creation: %w", err)
	}
	r.Recorder.Emit(p.cluster, events.Normal, events.StorageExpanded, "volumes grow from %s to %s; StatefulSet re-created with the new claim template, Pods kept running", have.String(), want.String())
	return &errWaiting{reason: "RecreatingStatefulSet", message: "StatefulSet deleted with orphan propagation; it is re-created with the grown volume claim template once gone"}
}

// switchVolumeSet re-creates the StatefulSet on another claim template: an in-place restore
// switched the cluster to new volumes, or a rollback back to its old ones (docs/backup.md,
// "In-place restore"). The Restore switches only once no instance runs; should one still
// run, the switch waits, so an instance never moves to other volumes under a running server.
func (r *MySQLClusterReconciler) switchVolumeSet(ctx context.Context, p *pass, live, desired *appsv1.StatefulSet) error {
	var pods corev1.PodList
	if err := r.Client.List(ctx, &pods, client.InNamespace(p.cluster.Namespace), client.MatchingLabels(builder.SelectorLabels(p.cluster))); err != nil {
		return fmt.Errorf("failed to list Pods: %w", err)
	}
	from, to := live.Spec.VolumeClaimTemplates[0].Name, desired.Spec.VolumeClaimTemplates[0].Name
	if len(pods.Items) > 0 {
		return &errWaiting{reason: "SwitchingVolumeSet", message: fmt.Sprintf("waiting for %d instance(s) to stop before switching from volume set %s to %s", len(pods.Items), from, to)}
	}
	if err := r.Client.Delete(ctx, live, client.PropagationPolicy(metav1.DeletePropagationOrphan), client.Preconditions{UID: &live.UID}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("failed to delete StatefulSet for re-creation: %w", err)
	}
	r.Recorder.Emit(p.cluster, events.Normal, events.VolumeSetSwitched, "instances switched from volume set %s to %s; StatefulSet re-created, the old volumes are left as they are", from, to)
	return &errWaiting{reason: "RecreatingStatefulSet", message: fmt.Sprintf("StatefulSet deleted with orphan propagation; it is re-created on volume set %s once gone", to)}
}

// expandClaims raises the storage request of every data PVC of the cluster to size.
func (r *MySQLClusterReconciler) expandClaims(ctx context.Context, p *pass, size resource.Quantity) error {
	var pvcs corev1.PersistentVolumeClaimList
	if err := r.Client.List(ctx, &pvcs, client.InNamespace(p.cluster.Namespace), client.MatchingLabels(builder.SelectorLabels(p.cluster))); err != nil {
		return fmt.Errorf("failed to list PVCs: %w", err)
	}
	for i := range pvcs.Items {
		pvc := &pvcs.Items[i]
		cur := pvc.Spec.Resources.Requests[corev1.ResourceStorage]
		if cur.Cmp(size) >= 0 {
			continue
		}
		patch := client.MergeFrom(pvc.DeepCopy())
		pvc.Spec.Resources.Requests[corev1.ResourceStorage] = size
		if err := r.Client.Patch(ctx, pvc, patch); err != nil {
			if apierrors.IsForbidden(err) || apierrors.IsInvalid(err) {
				return &errBlocked{reason: "VolumeExpansionRefused", message: fmt.Sprintf("spec.storage.size: PVC %s cannot grow to %s: %v; use a StorageClass with allowVolumeExpansion: true", pvc.Name, size.String(), err)}
			}
			return fmt.Errorf("failed to expand PVC %s: %w", pvc.Name, err)
		}
	}
	return nil
}
