package builder

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/internal/contract"
)

// HeadlessService gives every instance a stable DNS name, ready or not (replicas must reach a
// primary that is still starting, and the operator addresses instances before they are ready).
func HeadlessService(c *kurav1alpha1.MySQLCluster) *corev1.Service {
	s := &corev1.Service{
		TypeMeta:   typeMeta("v1", "Service"),
		ObjectMeta: objectMeta(c, HeadlessServiceName(c), map[string]string{contract.LabelComponent: "instances"}, nil),
		Spec: corev1.ServiceSpec{
			ClusterIP:                corev1.ClusterIPNone,
			PublishNotReadyAddresses: true,
			Selector:                 SelectorLabels(c),
			Ports: []corev1.ServicePort{
				{Name: contract.MySQLPortName, Port: contract.MySQLPort, TargetPort: intstr.FromString(contract.MySQLPortName), Protocol: corev1.ProtocolTCP},
				{Name: contract.AgentPortName, Port: contract.AgentPort, TargetPort: intstr.FromString(contract.AgentPortName), Protocol: corev1.ProtocolTCP},
			},
		},
	}
	StampHash(&s.ObjectMeta, s.Spec)
	return s
}

// PrimaryService always points at the one writable instance: the clustering loop labels it
// kura.dev/role=primary.
func PrimaryService(c *kurav1alpha1.MySQLCluster) *corev1.Service {
	return roleService(c, PrimaryServiceName(c), contract.RolePrimary, c.Spec.PrimaryService)
}

// ReplicasService points at replicas that replicate from the primary within maxLag.
func ReplicasService(c *kurav1alpha1.MySQLCluster) *corev1.Service {
	return roleService(c, ReplicasServiceName(c), contract.RoleReplica, c.Spec.ReplicaService)
}

func roleService(c *kurav1alpha1.MySQLCluster, name, role string, t kurav1alpha1.ServiceTemplate) *corev1.Service {
	typ := t.Type
	if typ == "" {
		typ = corev1.ServiceTypeClusterIP
	}
	s := &corev1.Service{
		TypeMeta:   typeMeta("v1", "Service"),
		ObjectMeta: objectMeta(c, name, merge(t.Labels, map[string]string{contract.LabelComponent: role}), t.Annotations),
		Spec: corev1.ServiceSpec{
			Type:     typ,
			Selector: merge(SelectorLabels(c), map[string]string{contract.LabelRole: role}),
			Ports: []corev1.ServicePort{
				{Name: contract.MySQLPortName, Port: contract.MySQLPort, TargetPort: intstr.FromString(contract.MySQLPortName), Protocol: corev1.ProtocolTCP},
			},
			LoadBalancerSourceRanges: t.LoadBalancerSourceRanges,
		},
	}
	if typ != corev1.ServiceTypeClusterIP {
		s.Spec.ExternalTrafficPolicy = t.ExternalTrafficPolicy
	}
	StampHash(&s.ObjectMeta, s.Spec)
	return s
}
