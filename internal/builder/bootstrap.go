package builder

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/internal/contract"
)

// Keys of the bootstrap ConfigMap: the restore Job the first instance's kura-init reads
// (contract.BootstrapFile, backup/restore.JobFileName), and the backup's spec.storage as JSON
// (names of Secrets and claims, no secret), from which the operator rebuilds the StatefulSet's
// volumes without reading the Backup again: it may be deleted once the cluster exists.
const (
	BootstrapJobKey     = "restore.json"
	BootstrapStorageKey = "storage.json"
)

// volumeBootstrap is the bootstrap ConfigMap's volume in instance Pods.
const volumeBootstrap = "bootstrap"

// BootstrapConfigMapName is the ConfigMap of a cluster with spec.bootstrap: one per volume set
// (<cluster>-bootstrap, <cluster>-bootstrap-<suffix> for a set an in-place restore seeded), so
// each set's seeding is resolved once and a rollback finds its set's record as it was.
func BootstrapConfigMapName(c *kurav1alpha1.MySQLCluster) string {
	if s := volumeSetSuffix(VolumeSet(c)); s != "" {
		return c.Name + "-bootstrap-" + s
	}
	return c.Name + "-bootstrap"
}

// BootstrapConfigMap holds the restore Job (JSON) for the first instance's kura-init and the
// storage it names. It is written when spec.bootstrap resolves; once the cluster is restored
// it is written again without the Job (job nil), so no instance restores a second time.
func BootstrapConfigMap(c *kurav1alpha1.MySQLCluster, job, storage []byte) *corev1.ConfigMap {
	cm := &corev1.ConfigMap{
		TypeMeta:   typeMeta("v1", "ConfigMap"),
		ObjectMeta: objectMeta(c, BootstrapConfigMapName(c), nil, nil),
		Data:       map[string]string{BootstrapStorageKey: string(storage)},
	}
	if job != nil {
		cm.Data[BootstrapJobKey] = string(job)
	}
	StampHash(&cm.ObjectMeta, cm.Data)
	return cm
}

// bootstrapVolumes are kura-init's extra volumes and mounts in a cluster with spec.bootstrap:
// the restore Job at contract.BootstrapDir and the backup storage where a backup Job has it.
// The volumes stay in the Pod template once the restore is done (changing it would roll every
// instance), so the ConfigMap's volume and the storage Secrets' are optional (the Job is
// removed from the ConfigMap then, and a Secret deleted afterwards must not keep an instance
// from starting), and a claim is mounted read-only.
func bootstrapVolumes(c *kurav1alpha1.MySQLCluster, storage kurav1alpha1.BackupStorage) ([]corev1.Volume, []corev1.VolumeMount) {
	vols := []corev1.Volume{{Name: volumeBootstrap, VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
		LocalObjectReference: corev1.LocalObjectReference{Name: BootstrapConfigMapName(c)},
		Items:                []corev1.KeyToPath{{Key: BootstrapJobKey, Path: BootstrapJobKey}},
		DefaultMode:          ptr.To[int32](0o444),
		Optional:             ptr.To(true),
	}}}}
	mnts := []corev1.VolumeMount{{Name: volumeBootstrap, MountPath: contract.BootstrapDir, ReadOnly: true}}
	sv, sm := storageVolumes(storage)
	for i := range sv {
		if s := sv[i].Secret; s != nil {
			s.Optional = ptr.To(true)
		}
		if p := sv[i].PersistentVolumeClaim; p != nil {
			p.ReadOnly = true
		}
	}
	for i := range sm {
		sm[i].ReadOnly = true
	}
	return append(vols, sv...), append(mnts, sm...)
}
