package builder

import (
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/internal/contract"
)

// BackupScheduleName names a BackupSchedule's CronJob, ServiceAccount, Role and RoleBinding
// (a CronJob's name is limited to 52 characters).
func BackupScheduleName(bs *kurav1alpha1.BackupSchedule) string {
	name := bs.Name + "-backups"
	if len(name) > 52 {
		name = name[:52]
	}
	return name
}

func scheduleLabels(bs *kurav1alpha1.BackupSchedule) map[string]string {
	return map[string]string{
		contract.LabelName:      "mysql-backup-schedule",
		contract.LabelInstance:  bs.Spec.Cluster,
		contract.LabelCluster:   bs.Spec.Cluster,
		contract.LabelManagedBy: "kura",
		contract.LabelComponent: "backup-schedule",
		contract.LabelSchedule:  bs.Name,
	}
}

// BackupScheduleCronJob runs `kura backup create` on the schedule: each run creates one
// Backup named after the run's Job (so a retried Pod never creates two), which the Backup
// controller then runs. Runs never overlap (concurrencyPolicy Forbid).
func BackupScheduleCronJob(bs *kurav1alpha1.BackupSchedule, opts Options) *batchv1.CronJob {
	name := BackupScheduleName(bs)
	labels := scheduleLabels(bs)
	var tz *string
	if bs.Spec.TimeZone != "" {
		tz = ptr.To(bs.Spec.TimeZone)
	}
	field := func(env, path string) corev1.EnvVar {
		return corev1.EnvVar{Name: env, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: path}}}
	}
	return &batchv1.CronJob{
		TypeMeta:   metav1.TypeMeta{APIVersion: "batch/v1", Kind: "CronJob"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: bs.Namespace, Labels: labels},
		Spec: batchv1.CronJobSpec{
			Schedule:                   bs.Spec.Schedule,
			TimeZone:                   tz,
			ConcurrencyPolicy:          batchv1.ForbidConcurrent,
			Suspend:                    ptr.To(bs.Spec.Suspend),
			StartingDeadlineSeconds:    ptr.To[int64](300),
			SuccessfulJobsHistoryLimit: ptr.To[int32](3),
			FailedJobsHistoryLimit:     ptr.To[int32](3),
			JobTemplate: batchv1.JobTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: batchv1.JobSpec{
					BackoffLimit:          ptr.To[int32](3),
					ActiveDeadlineSeconds: ptr.To[int64](300),
					Template: corev1.PodTemplateSpec{
						ObjectMeta: metav1.ObjectMeta{Labels: labels},
						Spec: corev1.PodSpec{
							RestartPolicy:      corev1.RestartPolicyNever,
							ServiceAccountName: name,
							EnableServiceLinks: ptr.To(false),
							SecurityContext: &corev1.PodSecurityContext{
								RunAsUser:      ptr.To[int64](65532),
								RunAsGroup:     ptr.To[int64](65532),
								RunAsNonRoot:   ptr.To(true),
								SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
							},
							Containers: []corev1.Container{{
								Name:  contract.ContainerBackupCreate,
								Image: opts.KuraImage,
								Command: []string{"/kura", "backup", "create", "--namespace=$(POD_NAMESPACE)", "--schedule=" + bs.Name,
									"--name=$(JOB_NAME)"},
								Env: []corev1.EnvVar{
									field("POD_NAMESPACE", "metadata.namespace"),
									field("JOB_NAME", "metadata.labels['"+batchv1.JobNameLabel+"']"),
								},
								Resources:       smallResources(),
								SecurityContext: restrictedSecurityContext(),
							}},
						},
					},
				},
			},
		},
	}
}

// BackupScheduleRBAC is the CronJob's identity: it may read its BackupSchedule, and list and
// create Backups in its namespace, nothing else.
func BackupScheduleRBAC(bs *kurav1alpha1.BackupSchedule) (*corev1.ServiceAccount, *rbacv1.Role, *rbacv1.RoleBinding) {
	name := BackupScheduleName(bs)
	meta := metav1.ObjectMeta{Name: name, Namespace: bs.Namespace, Labels: scheduleLabels(bs)}
	sa := &corev1.ServiceAccount{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"}, ObjectMeta: meta}
	role := &rbacv1.Role{TypeMeta: metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "Role"}, ObjectMeta: meta,
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{kurav1alpha1.GroupVersion.Group}, Resources: []string{"backupschedules"}, ResourceNames: []string{bs.Name}, Verbs: []string{"get"}},
			// list: to count the schedule's Backups for spec.verify.every.
			{APIGroups: []string{kurav1alpha1.GroupVersion.Group}, Resources: []string{"backups"}, Verbs: []string{"create", "list"}},
		}}
	binding := &rbacv1.RoleBinding{TypeMeta: metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "RoleBinding"}, ObjectMeta: meta,
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: name},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: name, Namespace: bs.Namespace}}}
	return sa, role, binding
}

// ScheduledBackup is the Backup a schedule's run creates; verify says whether it asks for
// verification by restore (the schedule's spec.verify without every, which only a schedule has).
func ScheduledBackup(bs *kurav1alpha1.BackupSchedule, name string, verify bool) *kurav1alpha1.Backup {
	opts := *bs.Spec.BackupOptions.DeepCopy()
	opts.Verify = nil
	if verify && bs.Spec.Verify != nil {
		opts.Verify = bs.Spec.Verify.DeepCopy()
		opts.Verify.Every = nil
	}
	return &kurav1alpha1.Backup{
		TypeMeta: metav1.TypeMeta{APIVersion: kurav1alpha1.GroupVersion.String(), Kind: "Backup"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: bs.Namespace,
			Labels: map[string]string{contract.LabelSchedule: bs.Name, contract.LabelCluster: bs.Spec.Cluster}},
		Spec: kurav1alpha1.BackupSpec{BackupOptions: opts},
	}
}
