package builder

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/internal/contract"
)

// Volume sets (docs/backup.md, "In-place restore"): the instances run on the PVCs of one
// claim template, "data" until an in-place restore switches the cluster to a new set
// (data-<suffix>) so that the old PVCs stay as they are, and a rollback switches back.

// VolumeSet is the claim template c's instances run on (contract.AnnotationVolumeSet).
func VolumeSet(c *kurav1alpha1.MySQLCluster) string {
	if s := c.Annotations[contract.AnnotationVolumeSet]; s != "" {
		return s
	}
	return VolumeData
}

// VolumeSetFor is the volume set an in-place Restore restores into: data-<8 hex digits of a
// hash of the Restore's UID>, short enough for a volume name and unique per Restore.
func VolumeSetFor(restore types.UID) string {
	sum := sha256.Sum256([]byte(restore))
	return VolumeData + "-" + hex.EncodeToString(sum[:4])
}

// volumeSetSuffix is what tells a set from the first: "" for "data".
func volumeSetSuffix(set string) string {
	return strings.TrimPrefix(strings.TrimPrefix(set, VolumeData), "-")
}

// ClaimPrefix is the name prefix of the PVCs of volume set set: <set>-<statefulset>-,
// followed by the ordinal.
func ClaimPrefix(c *kurav1alpha1.MySQLCluster, set string) string {
	return set + "-" + StatefulSetName(c) + "-"
}

// Lineage is the archive lineage c's current data belongs to (docs/backup.md, "Storage
// layout"): the cluster's UID, and for a volume set an in-place restore seeded,
// <uid>-<suffix>, so restored data never writes into its source's archive and a rollback
// continues the old history where it stopped.
func Lineage(c *kurav1alpha1.MySQLCluster) string {
	if s := volumeSetSuffix(VolumeSet(c)); s != "" {
		return string(c.UID) + "-" + s
	}
	return string(c.UID)
}

// Fenced reports whether an in-place restore has stopped c's instances.
func Fenced(c *kurav1alpha1.MySQLCluster) bool {
	return c.Annotations[contract.AnnotationRestoreFence] != ""
}

// WithInPlaceBootstrap is c as the operator builds it: when an in-place restore seeded the
// current volume set (contract.AnnotationBootstrap), a copy whose spec.bootstrap is that
// restore's, so the seeding uses the spec.bootstrap machinery unchanged.
func WithInPlaceBootstrap(c *kurav1alpha1.MySQLCluster) (*kurav1alpha1.MySQLCluster, error) {
	raw := c.Annotations[contract.AnnotationBootstrap]
	if raw == "" {
		return c, nil
	}
	var b kurav1alpha1.BootstrapSpec
	if err := json.Unmarshal([]byte(raw), &b); err != nil || b.Backup == "" {
		return c, fmt.Errorf("annotation %s holds no readable bootstrap (%q); it is written by in-place Restores only: remove it", contract.AnnotationBootstrap, raw)
	}
	out := c.DeepCopy()
	out.Spec.Bootstrap = &b
	return out, nil
}

// useVolumeSet points every data mount of a Pod template at claim template set.
func useVolumeSet(spec *corev1.PodSpec, set string) {
	for _, ctrs := range [][]corev1.Container{spec.InitContainers, spec.Containers} {
		for i := range ctrs {
			for j := range ctrs[i].VolumeMounts {
				if ctrs[i].VolumeMounts[j].Name == VolumeData {
					ctrs[i].VolumeMounts[j].Name = set
				}
			}
		}
	}
}
