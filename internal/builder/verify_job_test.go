package builder

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/internal/contract"
	"github.com/kura-db/kura/internal/golden"
)

// The verification Job: the engine image plus the kura binary, the backup's storage
// credentials and nothing else (no agent password, no API token), a scratch emptyDir, never
// retried; its NetworkPolicy admits no ingress.
func TestVerifyJobGolden(t *testing.T) {
	cases := map[string]*kurav1alpha1.Backup{
		"verify-job-s3.yaml": newBackup(func(b *kurav1alpha1.Backup) {
			b.Spec.Verify = &kurav1alpha1.BackupVerification{ActiveDeadlineSeconds: ptr.To[int64](1800),
				ScratchSizeLimit: ptr.To(resource.MustParse("20Gi")),
				Resources:        &corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi")}}}
		}),
		"verify-job-pvc.yaml": newBackup(func(b *kurav1alpha1.Backup) {
			b.Spec.Method = kurav1alpha1.BackupMethodPhysical
			b.Spec.Storage = kurav1alpha1.BackupStorage{PVC: &kurav1alpha1.PVCStorage{ClaimName: "backup-volume", SubPath: "prod/shop"}}
			b.Spec.Verify = &kurav1alpha1.BackupVerification{}
		}),
	}
	for name, b := range cases {
		job := VerifyJob(newCluster(), b, `{"backup":"`+b.Name+`"}`, opts)
		np := VerifyNetworkPolicy(newCluster(), b)
		var out []byte
		for _, obj := range []any{job, np} {
			y, err := yaml.Marshal(obj)
			if err != nil {
				t.Fatal(err)
			}
			out = append(append(out, "---\n"...), y...)
		}
		golden.Assert(t, name, out)
		pod := job.Spec.Template.Spec
		if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken || *job.Spec.BackoffLimit != 0 {
			t.Errorf("%s: the Job must have no API token and no retries", name)
		}
		for _, v := range pod.Volumes {
			if v.Secret != nil && v.Secret.SecretName == CredentialsSecretName(newCluster()) {
				t.Errorf("%s: the verification must not mount the cluster's credentials", name)
			}
		}
		if job.Spec.Template.Labels[contract.LabelCluster] != "shop" {
			t.Errorf("%s: the verification Pod must carry the cluster label (the operator's cache sees only those)", name)
		}
		if !matches(np.Spec.PodSelector.MatchLabels, job.Spec.Template.Labels) || len(np.Spec.Ingress) != 0 {
			t.Errorf("%s: the NetworkPolicy must select the Pod and admit nothing", name)
		}
		if !strings.Contains(strings.Join(pod.Containers[0].Command, " "), "restore verify --job=") {
			t.Errorf("%s: command %v", name, pod.Containers[0].Command)
		}
	}
	if d := *VerifyJob(newCluster(), newBackup(), "{}", opts).Spec.ActiveDeadlineSeconds; d != DefaultVerifyDeadlineSeconds {
		t.Errorf("default deadline %d", d)
	}
}

func matches(selector, labels map[string]string) bool {
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}
