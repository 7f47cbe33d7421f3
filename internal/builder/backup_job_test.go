package builder

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/internal/golden"
)

func newBackup(mut ...func(*kurav1alpha1.Backup)) *kurav1alpha1.Backup {
	b := &kurav1alpha1.Backup{
		ObjectMeta: metav1.ObjectMeta{Name: "shop-nightly", Namespace: "prod"},
		Spec: kurav1alpha1.BackupSpec{BackupOptions: kurav1alpha1.BackupOptions{
			Cluster: "shop", Method: kurav1alpha1.BackupMethodLogical, Compression: kurav1alpha1.CompressionZstd,
			ActiveDeadlineSeconds: ptr.To[int64](21600),
			Storage: kurav1alpha1.BackupStorage{S3: &kurav1alpha1.S3Storage{
				Bucket: "backups", Endpoint: "https://s3.example.com", Region: "eu-west-1",
				CredentialsSecret: kurav1alpha1.S3CredentialsSecret{Name: "s3-keys"},
				CASecret:          &corev1.LocalObjectReference{Name: "s3-ca"},
			}},
			Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi")}},
		}},
	}
	for _, m := range mut {
		m(b)
	}
	return b
}

// The backup Job: engine image plus the kura binary, credentials as files, no API token,
// never retried, deadline and resources from the spec.
func TestBackupJobGolden(t *testing.T) {
	cases := map[string]*kurav1alpha1.Backup{
		"backup-job-s3.yaml": newBackup(),
		"backup-job-pvc.yaml": newBackup(func(b *kurav1alpha1.Backup) {
			b.Spec.Method = kurav1alpha1.BackupMethodPhysical
			b.Spec.Storage = kurav1alpha1.BackupStorage{PVC: &kurav1alpha1.PVCStorage{ClaimName: "backup-volume", SubPath: "prod/shop"}}
		}),
	}
	for name, b := range cases {
		job := BackupJob(newCluster(), b, `{"name":"`+b.Name+`"}`, opts)
		out, err := yaml.Marshal(job)
		if err != nil {
			t.Fatal(err)
		}
		golden.Assert(t, name, out)
		pod := job.Spec.Template.Spec
		if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken || *job.Spec.BackoffLimit != 0 {
			t.Errorf("%s: the Job must have no API token and no retries", name)
		}
		for _, e := range pod.Containers[0].Env {
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				t.Errorf("%s: secrets must be files, not environment: %s", name, e.Name)
			}
		}
	}
	// Deleting a completed Backup deletes its data; a failed one's Job removes only what
	// has no manifest.
	for phase, verb := range map[kurav1alpha1.BackupPhase]string{kurav1alpha1.BackupCompleted: "delete", kurav1alpha1.BackupFailed: "cleanup"} {
		b := newBackup(func(b *kurav1alpha1.Backup) { b.Status.Phase = phase })
		cmd := BackupDeleteJob(newCluster(), b, "{}", opts).Spec.Template.Spec.Containers[0].Command
		if len(cmd) < 3 || cmd[2] != verb {
			t.Errorf("deletion Job of a %s Backup runs %v, want kura backup %s", phase, cmd, verb)
		}
	}
	long := newBackup(func(b *kurav1alpha1.Backup) {
		b.Name = "a-very-long-backup-name-that-goes-on-and-on-and-on-for-sixty-chars"
	})
	if n := BackupJobName(long); len(n) > 63 {
		t.Errorf("job name %q is longer than 63", n)
	}
}
