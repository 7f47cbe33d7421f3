package builder

import (
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
)

// PodDisruptionBudget lets voluntary disruptions (node drains) take one instance at a time, so
// a semi-sync acknowledgement source always remains.
func PodDisruptionBudget(c *kurav1alpha1.MySQLCluster) *policyv1.PodDisruptionBudget {
	p := &policyv1.PodDisruptionBudget{
		TypeMeta:   typeMeta("policy/v1", "PodDisruptionBudget"),
		ObjectMeta: objectMeta(c, PDBName(c), nil, nil),
		Spec: policyv1.PodDisruptionBudgetSpec{
			MaxUnavailable: ptr.To(intstr.FromInt32(1)),
			Selector:       &metav1.LabelSelector{MatchLabels: SelectorLabels(c)},
		},
	}
	StampHash(&p.ObjectMeta, p.Spec)
	return p
}

// ServiceAccount is the instance Pods' identity. They need no Kubernetes API access at all
// (the operator does every API write), so no Role is bound and no token is mounted.
func ServiceAccount(c *kurav1alpha1.MySQLCluster) *corev1.ServiceAccount {
	sa := &corev1.ServiceAccount{
		TypeMeta:                     typeMeta("v1", "ServiceAccount"),
		ObjectMeta:                   objectMeta(c, ServiceAccountName(c), nil, nil),
		AutomountServiceAccountToken: ptr.To(false),
	}
	StampHash(&sa.ObjectMeta, sa.AutomountServiceAccountToken)
	return sa
}
