package builder

import (
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/internal/contract"
)

// volumeVerifyData is the scratch volume a verification restores into.
const volumeVerifyData = "scratch"

// DefaultVerifyDeadlineSeconds bounds a verification Job without spec.verify.activeDeadlineSeconds.
const DefaultVerifyDeadlineSeconds = 21600

// VerifyJobName is the Job (and its NetworkPolicy) that verifies a Backup by restoring it.
func VerifyJobName(b *kurav1alpha1.Backup) string { return backupJobName(b, "-verify") }

// VerifyLabels are the labels of a verification Job and Pod. They carry the cluster label,
// as every object Kura creates (the operator's cache sees only those); the instances'
// NetworkPolicy therefore admits the Pod as it admits backup Jobs, but it holds none of the
// cluster's credentials.
func VerifyLabels(c *kurav1alpha1.MySQLCluster, b *kurav1alpha1.Backup) map[string]string {
	return map[string]string{
		contract.LabelName:      "mysql-backup-verify",
		contract.LabelInstance:  c.Name,
		contract.LabelCluster:   c.Name,
		contract.LabelManagedBy: "kura",
		contract.LabelComponent: "backup-verify",
		contract.LabelBackup:    b.Name,
	}
}

// VerifySelector selects the verification Jobs of a cluster.
func VerifySelector(c *kurav1alpha1.MySQLCluster) map[string]string {
	return map[string]string{contract.LabelComponent: "backup-verify", contract.LabelCluster: c.Name}
}

// VerifyJob is the Job running `kura restore verify` for b with job (the restore.Job as
// JSON: the backup's storage as its backup Job saw it, its lineage and name; no secrets):
// one Pod of the engine image with the kura binary copied in by an init container, as the
// backup Job; the backup restored into an emptyDir through the real restore path, with
// throw-away passwords, on a server without networking; only the storage credentials
// mounted; no Kubernetes API token; never retried (the result is reported as it is).
func VerifyJob(c *kurav1alpha1.MySQLCluster, b *kurav1alpha1.Backup, job string, opts Options) *batchv1.Job {
	v := b.Spec.Verify
	if v == nil {
		v = &kurav1alpha1.BackupVerification{}
	}
	deadline := v.ActiveDeadlineSeconds
	if deadline == nil {
		deadline = ptr.To[int64](DefaultVerifyDeadlineSeconds)
	}
	var resources corev1.ResourceRequirements
	if v.Resources != nil {
		resources = *v.Resources
	}
	scratch := corev1.Volume{Name: volumeVerifyData, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{SizeLimit: v.ScratchSizeLimit}}}
	vols := []corev1.Volume{emptyDir(VolumeKuraBin), emptyDir(VolumeTmp), scratch}
	mnts := append(mounts(VolumeKuraBin, VolumeTmp), corev1.VolumeMount{Name: volumeVerifyData, MountPath: contract.VerifyDataDir})
	sv, sm := storageVolumes(b.Spec.Storage)
	vols, mnts = append(vols, sv...), append(mnts, sm...)
	main := corev1.Container{
		Name:         contract.ContainerVerify,
		Command:      []string{contract.KuraBinPath, "restore", "verify", "--job=" + job, "--data-dir=" + contract.VerifyDataDir},
		VolumeMounts: mnts,
		Resources:    resources,
	}
	out := engineJob(c, b.Namespace, VerifyJobName(b), VerifyLabels(c, b), deadline, main, vols, opts)
	// The operator deletes the Job once it has read the result; this is a backstop long
	// enough to outlast an operator restart.
	out.Spec.TTLSecondsAfterFinished = ptr.To[int32](86400)
	return out
}

// VerifyNetworkPolicy selects b's verification Pod and admits no ingress at all: the
// restored server listens on no port, and nothing may reach the Pod should it ever do.
func VerifyNetworkPolicy(c *kurav1alpha1.MySQLCluster, b *kurav1alpha1.Backup) *networkingv1.NetworkPolicy {
	return &networkingv1.NetworkPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "NetworkPolicy"},
		ObjectMeta: metav1.ObjectMeta{Name: VerifyJobName(b), Namespace: b.Namespace, Labels: VerifyLabels(c, b)},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{contract.LabelComponent: "backup-verify", contract.LabelBackup: b.Name}},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
			Ingress:     []networkingv1.NetworkPolicyIngressRule{},
		},
	}
}
