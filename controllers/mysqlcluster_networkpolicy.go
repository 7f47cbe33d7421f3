package controllers

import (
	"context"
	"fmt"

	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kura-db/kura/internal/builder"
)

// +kubebuilder:rbac:groups=networking.k8s.io,resources=networkpolicies,verbs=get;list;watch;create;update;patch;delete

// reconcileNetworkPolicy applies the instances' NetworkPolicy while spec.networkPolicy.enabled
// is true (the default) and deletes it, if this cluster owns it, when it is false.
func (r *MySQLClusterReconciler) reconcileNetworkPolicy(ctx context.Context, p *pass) error {
	c := p.cluster
	if builder.NetworkPolicyEnabled(c) {
		return r.apply(ctx, builder.NetworkPolicy(c, r.Options))
	}
	np := &networkingv1.NetworkPolicy{}
	err := r.Client.Get(ctx, types.NamespacedName{Namespace: c.Namespace, Name: builder.NetworkPolicyName(c)}, np)
	switch {
	case apierrors.IsNotFound(err):
		return nil
	case err != nil:
		return fmt.Errorf("failed to get NetworkPolicy %s: %w", builder.NetworkPolicyName(c), err)
	}
	if owner := metav1.GetControllerOf(np); owner == nil || owner.UID != c.UID {
		return nil // not ours: a policy of the same name the user made
	}
	if err := r.Client.Delete(ctx, np, client.Preconditions{UID: &np.UID}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("failed to delete NetworkPolicy %s: %w", np.Name, err)
	}
	return nil
}
