package builder

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/internal/contract"
)

// objectMeta returns metadata for an owned object with the owner reference set.
func objectMeta(c *kurav1alpha1.MySQLCluster, name string, extraLabels, annotations map[string]string) metav1.ObjectMeta {
	m := metav1.ObjectMeta{
		Name:            name,
		Namespace:       c.Namespace,
		Labels:          merge(extraLabels, CommonLabels(c)),
		OwnerReferences: []metav1.OwnerReference{OwnerReference(c)},
	}
	if len(annotations) > 0 {
		m.Annotations = merge(annotations)
	}
	return m
}

// OwnerReference makes the cluster the controller of an object, so deleting the cluster
// deletes it.
func OwnerReference(c *kurav1alpha1.MySQLCluster) metav1.OwnerReference {
	return metav1.OwnerReference{
		APIVersion:         kurav1alpha1.GroupVersion.String(),
		Kind:               "MySQLCluster",
		Name:               c.Name,
		UID:                c.UID,
		Controller:         ptr.To(true),
		BlockOwnerDeletion: ptr.To(true),
	}
}

// StampHash records the hash of an object's desired state in its annotations, so an apply of an
// unchanged object can be skipped. It must be called last, on the complete object.
func StampHash(meta *metav1.ObjectMeta, desired any) {
	b, err := json.Marshal(desired)
	if err != nil {
		panic(err) // desired objects are plain API structs; Marshal cannot fail
	}
	sum := sha256.Sum256(b)
	if meta.Annotations == nil {
		meta.Annotations = map[string]string{}
	}
	meta.Annotations[contract.AnnotationAppliedHash] = hex.EncodeToString(sum[:10])
}
