package builder

import (
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/internal/contract"
)

// NetworkPolicyEnabled is spec.networkPolicy.enabled with its default, true.
func NetworkPolicyEnabled(c *kurav1alpha1.MySQLCluster) bool {
	return c.Spec.NetworkPolicy.Enabled == nil || *c.Spec.NetworkPolicy.Enabled
}

// NetworkPolicy admits ingress to the instance Pods on two ports only (docs/security.md):
//   - the database port from the selected clients (default: every Pod of the cluster's
//     namespace), the operator and the cluster's own Pods (replication, backup Jobs);
//   - the agent port from the operator and the cluster's own Pods (peers asking for a clone
//     donor, backup Jobs) only.
//
// Everything else is refused once a policy selects the Pods. Replication uses the database
// port, so it cannot be told apart from client traffic at this level: replicas connect with
// the replication account, which can do nothing else.
func NetworkPolicy(c *kurav1alpha1.MySQLCluster, opts Options) *networkingv1.NetworkPolicy {
	clients := c.Spec.NetworkPolicy.Clients
	if len(clients) == 0 {
		clients = []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{}}}
	}
	internal := []networkingv1.NetworkPolicyPeer{clusterPodsPeer(c)}
	if p, ok := operatorPeer(opts); ok {
		internal = append(internal, p)
	}
	mysql := port(contract.MySQLPort)
	np := &networkingv1.NetworkPolicy{
		TypeMeta:   typeMeta("networking.k8s.io/v1", "NetworkPolicy"),
		ObjectMeta: objectMeta(c, NetworkPolicyName(c), nil, nil),
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: SelectorLabels(c)},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
			Ingress: []networkingv1.NetworkPolicyIngressRule{
				{Ports: []networkingv1.NetworkPolicyPort{mysql}, From: clients},
				{Ports: []networkingv1.NetworkPolicyPort{mysql, port(contract.AgentPort)}, From: internal},
			},
		},
	}
	StampHash(&np.ObjectMeta, np.Spec)
	return np
}

func port(n int32) networkingv1.NetworkPolicyPort {
	return networkingv1.NetworkPolicyPort{Protocol: ptr.To(corev1.ProtocolTCP), Port: ptr.To(intstr.FromInt32(n))}
}

// clusterPodsPeer selects every Pod of the cluster in its namespace: the instances and the
// backup Jobs, which all carry the cluster label.
func clusterPodsPeer(c *kurav1alpha1.MySQLCluster) networkingv1.NetworkPolicyPeer {
	return networkingv1.NetworkPolicyPeer{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{contract.LabelCluster: c.Name}}}
}

// operatorPeer selects the operator's Pods by namespace (its well-known name label) and labels.
func operatorPeer(opts Options) (networkingv1.NetworkPolicyPeer, bool) {
	if opts.OperatorNamespace == "" {
		return networkingv1.NetworkPolicyPeer{}, false
	}
	return networkingv1.NetworkPolicyPeer{
		NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{corev1.LabelMetadataName: opts.OperatorNamespace}},
		PodSelector:       &metav1.LabelSelector{MatchLabels: merge(opts.OperatorPodLabels)},
	}, true
}
