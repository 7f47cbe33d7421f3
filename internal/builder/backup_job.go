package builder

import (
	"path"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/internal/contract"
)

// Volume names of a backup Job's Pod (the mount paths are in internal/contract).
const (
	volumeBackupCredentials = "credentials"
	volumeBackupS3          = "s3-credentials"
	volumeBackupS3CA        = "s3-ca"
	volumeBackupStorage     = "backup-storage"
)

// BackupJobName is the Job that runs a Backup.
func BackupJobName(b *kurav1alpha1.Backup) string { return backupJobName(b, "-backup") }

// backupJobName is one of a Backup's Jobs: its name and suffix, within 63 characters.
func backupJobName(b *kurav1alpha1.Backup, suffix string) string {
	name := b.Name + suffix
	if len(name) > 63 {
		name = name[:63]
	}
	return name
}

// BackupLabels are the labels of a Backup's Job and Pod.
func BackupLabels(c *kurav1alpha1.MySQLCluster, b *kurav1alpha1.Backup) map[string]string {
	return map[string]string{
		contract.LabelName:      "mysql-backup",
		contract.LabelInstance:  c.Name,
		contract.LabelCluster:   c.Name,
		contract.LabelManagedBy: "kura",
		contract.LabelComponent: "backup",
		contract.LabelBackup:    b.Name,
	}
}

// BackupJob is the Job running `kura backup run` for b with the request request (JSON, no
// secrets): the engine image (its dump and backup tools) with the kura binary copied in by
// an init container, as the instance Pods get it; the agent password and the storage
// credentials mounted as files; no Kubernetes API token; never retried (a failed backup is
// reported, and a new Backup is the retry).
func BackupJob(c *kurav1alpha1.MySQLCluster, b *kurav1alpha1.Backup, request string, opts Options) *batchv1.Job {
	return backupJob(c, b, BackupJobName(b), "run", request, opts)
}

// BackupDeleteJobName is the Job that deletes a Backup's stored data.
func BackupDeleteJobName(b *kurav1alpha1.Backup) string { return backupJobName(b, "-delete") }

// BackupDeleteJob deletes a Backup's stored data when the Backup is deleted: the same Pod as
// BackupJob, so the operator itself never holds storage credentials or mounts backup volumes.
// A completed Backup's data goes with `kura backup delete`; what a failed run may have left
// (objects without a manifest, unfinished uploads) with `kura backup cleanup`.
func BackupDeleteJob(c *kurav1alpha1.MySQLCluster, b *kurav1alpha1.Backup, request string, opts Options) *batchv1.Job {
	verb := "delete"
	if b.Status.Phase == kurav1alpha1.BackupFailed {
		verb = "cleanup"
	}
	job := backupJob(c, b, BackupDeleteJobName(b), verb, request, opts)
	job.Spec.BackoffLimit = ptr.To[int32](2)
	job.Spec.ActiveDeadlineSeconds = ptr.To[int64](3600)
	return job
}

func backupJob(c *kurav1alpha1.MySQLCluster, b *kurav1alpha1.Backup, name, verb, request string, opts Options) *batchv1.Job {
	spec := b.Spec.BackupOptions
	vols := []corev1.Volume{
		emptyDir(VolumeKuraBin),
		emptyDir(VolumeTmp),
		credentialsVolume(c, volumeBackupCredentials, []string{contract.BackupAgentPasswordKey, contract.KeyAgentToken}),
	}
	mnts := append(mounts(VolumeKuraBin, VolumeTmp), credentialsMount(volumeBackupCredentials))
	cv, cm := caVolumes(c)
	vols, mnts = append(vols, cv...), append(mnts, cm...)
	sv, sm := storageVolumes(spec.Storage)
	vols, mnts = append(vols, sv...), append(mnts, sm...)
	main := corev1.Container{
		Name:         contract.ContainerBackup,
		Command:      []string{contract.KuraBinPath, "backup", verb, "--request=" + request},
		VolumeMounts: mnts,
		Resources:    spec.Resources,
	}
	return engineJob(c, b.Namespace, name, BackupLabels(c, b), spec.ActiveDeadlineSeconds, main, vols, opts)
}

// engineJob is a Job of one Pod, never retried, running main in the cluster's engine image
// with the kura binary copied in by the kura-copy init container: the cluster's identity
// without an API token, no service links, the restricted security context, and the
// container's termination message (falling back to its log's tail) as its result.
func engineJob(c *kurav1alpha1.MySQLCluster, namespace, name string, labels map[string]string, deadline *int64, main corev1.Container,
	vols []corev1.Volume, opts Options) *batchv1.Job {
	main.Image, main.ImagePullPolicy, main.SecurityContext = EngineImage(c), c.Spec.ImagePullPolicy, restrictedSecurityContext()
	main.TerminationMessagePath, main.TerminationMessagePolicy = corev1.TerminationMessagePathDefault, corev1.TerminationMessageFallbackToLogsOnError
	return &batchv1.Job{
		TypeMeta:   metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: labels},
		Spec: batchv1.JobSpec{
			BackoffLimit:          ptr.To[int32](0),
			ActiveDeadlineSeconds: deadline,
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					RestartPolicy:                corev1.RestartPolicyNever,
					ServiceAccountName:           ServiceAccountName(c),
					AutomountServiceAccountToken: ptr.To(false),
					EnableServiceLinks:           ptr.To(false),
					ImagePullSecrets:             c.Spec.ImagePullSecrets,
					SecurityContext:              jobPodSecurityContext(),
					InitContainers:               []corev1.Container{kuraCopyContainer(c, opts)},
					Containers:                   []corev1.Container{main},
					Volumes:                      vols,
				},
			},
		},
	}
}

// BackupStorageRoot is where a PVC-stored backup's files are inside the Job.
func BackupStorageRoot(pvc *kurav1alpha1.PVCStorage) string {
	return path.Join(contract.BackupStorageMount, pvc.SubPath)
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}
