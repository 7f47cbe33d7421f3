package builder

import (
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/internal/contract"
)

// The binary log archiver (docs/backup.md, "Archive") runs as its own one-replica Deployment
// per cluster: `kura archive` streams from whichever instance is the primary, so it belongs to
// no instance Pod (a sidecar would have to hand the stream over at every failover), and it
// needs only the kura binary, no engine tools.
const (
	ContainerArchive = "archive"
	// ArchivePort serves the archiver's /status and /metrics.
	ArchivePort     = 8081
	ArchivePortName = "http-archive"
	// ArchiveServerID is the archiver's replica server id: far above the instances' ids
	// (mycnf.ServerIDBase + ordinal) and below 2^32.
	ArchiveServerID = 4_000_000_001
)

// ArchiveName is the archiver's Deployment.
func ArchiveName(c *kurav1alpha1.MySQLCluster) string { return c.Name + "-archive" }

// ArchiveLabels are the labels of the archiver's Deployment and Pod.
func ArchiveLabels(c *kurav1alpha1.MySQLCluster) map[string]string {
	return map[string]string{
		contract.LabelName:      "mysql-archive",
		contract.LabelInstance:  c.Name,
		contract.LabelCluster:   c.Name,
		contract.LabelManagedBy: "kura",
		contract.LabelComponent: "archive",
	}
}

// ArchiveDeployment runs `kura archive --request=<request>` (JSON, no secrets) from the kura
// image: one replica, replaced with Recreate so two archivers do not overlap in a rollout (the
// lease and the piece numbers would keep the archive correct anyway); the agent password and
// the storage credentials as files; no Kubernetes API token.
func ArchiveDeployment(c *kurav1alpha1.MySQLCluster, request string, opts Options) *appsv1.Deployment {
	spec := c.Spec.BinlogArchive
	vols := []corev1.Volume{
		emptyDir(VolumeTmp),
		credentialsVolume(c, volumeBackupCredentials, []string{contract.BackupAgentPasswordKey}),
	}
	mnts := append(mounts(VolumeTmp), credentialsMount(volumeBackupCredentials))
	cv, cm := caVolumes(c)
	vols, mnts = append(vols, cv...), append(mnts, cm...)
	sv, sm := storageVolumes(spec.Storage)
	vols, mnts = append(vols, sv...), append(mnts, sm...)
	labels := ArchiveLabels(c)
	probe := &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/status", Port: intstr.FromString(ArchivePortName)}},
		PeriodSeconds: 10, TimeoutSeconds: 2}
	d := &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: objectMeta(c, ArchiveName(c), labels, nil),
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					ServiceAccountName:           ServiceAccountName(c),
					AutomountServiceAccountToken: ptr.To(false),
					EnableServiceLinks:           ptr.To(false),
					ImagePullSecrets:             c.Spec.ImagePullSecrets,
					SecurityContext:              jobPodSecurityContext(),
					Containers: []corev1.Container{{
						Name:            ContainerArchive,
						Image:           opts.KuraImage,
						ImagePullPolicy: c.Spec.ImagePullPolicy,
						Command:         []string{"/kura", "archive", "--request=" + request},
						Ports:           []corev1.ContainerPort{{Name: ArchivePortName, ContainerPort: ArchivePort}},
						VolumeMounts:    mnts,
						Resources:       spec.Resources,
						SecurityContext: restrictedSecurityContext(),
						ReadinessProbe:  probe,
					}},
					Volumes: vols,
				},
			},
		},
	}
	StampHash(&d.ObjectMeta, d)
	return d
}

// jobPodSecurityContext is the Pod security context of the backup Jobs and the archiver: the
// engine's user, restricted.
func jobPodSecurityContext() *corev1.PodSecurityContext {
	return &corev1.PodSecurityContext{
		RunAsUser:      ptr.To[int64](contract.MySQLUID),
		RunAsGroup:     ptr.To[int64](contract.MySQLUID),
		FSGroup:        ptr.To[int64](contract.MySQLUID),
		RunAsNonRoot:   ptr.To(true),
		SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
}

// storageVolumes mount a BackupStorage into a Pod: the S3 key pair (and CA) from their
// Secrets as files, or the claim.
func storageVolumes(st kurav1alpha1.BackupStorage) ([]corev1.Volume, []corev1.VolumeMount) {
	var vols []corev1.Volume
	var mnts []corev1.VolumeMount
	if s3 := st.S3; s3 != nil {
		vols = append(vols, corev1.Volume{Name: volumeBackupS3, VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
			SecretName: s3.CredentialsSecret.Name,
			Items: []corev1.KeyToPath{
				{Key: orDefault(s3.CredentialsSecret.AccessKeyIDKey, "AWS_ACCESS_KEY_ID"), Path: contract.BackupS3AccessKeyFile},
				{Key: orDefault(s3.CredentialsSecret.SecretAccessKeyKey, "AWS_SECRET_ACCESS_KEY"), Path: contract.BackupS3SecretKeyFile},
			},
			DefaultMode: ptr.To[int32](0o400),
		}}})
		mnts = append(mnts, corev1.VolumeMount{Name: volumeBackupS3, MountPath: contract.BackupS3CredentialsDir, ReadOnly: true})
		if s3.CASecret != nil {
			vols = append(vols, corev1.Volume{Name: volumeBackupS3CA, VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
				SecretName:  s3.CASecret.Name,
				Items:       []corev1.KeyToPath{{Key: contract.BackupS3CAFile, Path: contract.BackupS3CAFile}},
				DefaultMode: ptr.To[int32](0o444),
			}}})
			mnts = append(mnts, corev1.VolumeMount{Name: volumeBackupS3CA, MountPath: contract.BackupS3CADir, ReadOnly: true})
		}
	}
	if pvc := st.PVC; pvc != nil {
		vols = append(vols, corev1.Volume{Name: volumeBackupStorage, VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: pvc.ClaimName}}})
		mnts = append(mnts, corev1.VolumeMount{Name: volumeBackupStorage, MountPath: contract.BackupStorageMount})
	}
	return vols, mnts
}
