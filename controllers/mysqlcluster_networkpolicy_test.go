package controllers

import (
	"context"
	"errors"
	"fmt"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/internal/builder"
)

// The instances' NetworkPolicy exists by default, follows spec.networkPolicy.clients, is
// removed when spec.networkPolicy.enabled is false and comes back when it is true again.
func TestMySQLClusterNetworkPolicy(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	if err := k8s.Create(ctx, newMySQLCluster(ns, "shop")); err != nil {
		t.Fatal(err)
	}
	c := waitReconciled(t, ns, "shop", metav1.ConditionTrue, "Reconciled")
	key := types.NamespacedName{Namespace: ns, Name: "shop-instances"}
	// matches waits until the live policy's spec is what the builder makes of the cluster now.
	matches := func(what string) *networkingv1.NetworkPolicy {
		t.Helper()
		np := &networkingv1.NetworkPolicy{}
		eventually(t, what, func() error {
			c := getCluster(t, ns, "shop")
			if err := k8s.Get(ctx, key, np); err != nil {
				return err
			}
			if want := builder.NetworkPolicy(c, testInstanceOptions); !equality.Semantic.DeepEqual(np.Spec, want.Spec) {
				return fmt.Errorf("spec %+v, want %+v", np.Spec, want.Spec)
			}
			return nil
		})
		return np
	}
	np := matches("the default NetworkPolicy")
	if refs := np.OwnerReferences; len(refs) != 1 || refs[0].UID != c.UID {
		t.Errorf("owner references %+v", refs)
	}
	if len(np.Spec.Ingress) != 2 || len(np.Spec.Ingress[0].From) != 1 || np.Spec.Ingress[0].From[0].PodSelector == nil ||
		len(np.Spec.Ingress[0].From[0].PodSelector.MatchLabels) != 0 || np.Spec.Ingress[0].From[0].NamespaceSelector != nil {
		t.Errorf("the default clients must be every Pod of the cluster's namespace: %+v", np.Spec.Ingress)
	}

	changeSpec(t, ns, "shop", func(c *kurav1alpha1.MySQLCluster) {
		c.Spec.NetworkPolicy.Clients = []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}}}
	})
	np = matches("the NetworkPolicy with the chosen clients")
	if got := np.Spec.Ingress[0].From[0].PodSelector.MatchLabels["app"]; got != "web" {
		t.Errorf("clients not applied: %+v", np.Spec.Ingress[0].From)
	}

	changeSpec(t, ns, "shop", func(c *kurav1alpha1.MySQLCluster) { c.Spec.NetworkPolicy.Enabled = ptr.To(false) })
	eventually(t, "the NetworkPolicy removed", func() error {
		err := k8s.Get(ctx, key, &networkingv1.NetworkPolicy{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return errors.Join(err, errors.New("still there"))
	})
	waitReconciled(t, ns, "shop", metav1.ConditionTrue, "Reconciled")

	changeSpec(t, ns, "shop", func(c *kurav1alpha1.MySQLCluster) { c.Spec.NetworkPolicy.Enabled = ptr.To(true) })
	matches("the NetworkPolicy back")
}

// With the policy off, a NetworkPolicy of the same name that the cluster does not own is the
// user's and is left alone.
func TestMySQLClusterKeepsAForeignNetworkPolicy(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	mine := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "shop-instances"},
		Spec:       networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}},
	}
	if err := k8s.Create(ctx, mine); err != nil {
		t.Fatal(err)
	}
	off := newMySQLCluster(ns, "shop", func(c *kurav1alpha1.MySQLCluster) { c.Spec.NetworkPolicy.Enabled = ptr.To(false) })
	if err := k8s.Create(ctx, off); err != nil {
		t.Fatal(err)
	}
	waitReconciled(t, ns, "shop", metav1.ConditionTrue, "Reconciled")
	got := &networkingv1.NetworkPolicy{}
	if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "shop-instances"}, got); err != nil {
		t.Fatalf("the user's NetworkPolicy was removed: %v", err)
	}
	if got.UID != mine.UID || len(got.OwnerReferences) != 0 {
		t.Errorf("the user's NetworkPolicy was replaced: %+v", got.ObjectMeta)
	}
}

// changeSpec changes a MySQLCluster's spec on its latest version, again on a conflict (the
// operator writes the object too).
func changeSpec(t *testing.T, ns, name string, change func(*kurav1alpha1.MySQLCluster)) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		c := getCluster(t, ns, name)
		change(c)
		return k8s.Update(context.Background(), c)
	})
	if err != nil {
		t.Fatal(err)
	}
}
