package builder

import (
	"path"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/backup/restore"
	"github.com/kura-db/kura/internal/contract"
	"github.com/kura-db/kura/internal/golden"
)

func bootstrapped(c *kurav1alpha1.MySQLCluster) {
	c.Spec.Bootstrap = &kurav1alpha1.BootstrapSpec{Backup: "shop-nightly"}
}

// A cluster seeded from a backup: kura-init gets the restore Job and the backup storage's
// credentials where a backup Job has them, every instance container KURA_BOOTSTRAP.
func TestBootstrapStatefulSetGolden(t *testing.T) {
	cases := map[string]kurav1alpha1.BackupStorage{
		"statefulset-bootstrap-s3.yaml":  newBackup().Spec.Storage,
		"statefulset-bootstrap-pvc.yaml": {PVC: &kurav1alpha1.PVCStorage{ClaimName: "backup-volume", SubPath: "prod/shop"}},
	}
	for name, st := range cases {
		t.Run(name, func(t *testing.T) {
			b, err := yaml.Marshal(StatefulSet(newCluster(bootstrapped), "abc123", "", &st, opts))
			if err != nil {
				t.Fatal(err)
			}
			golden.Assert(t, name, b)
		})
	}
}

func TestBootstrapMounts(t *testing.T) {
	st := newBackup().Spec.Storage
	pod := StatefulSet(newCluster(bootstrapped), "h", "", &st, opts).Spec.Template.Spec
	for _, ctr := range append(pod.InitContainers, pod.Containers...) {
		has := slices.ContainsFunc(ctr.Env, func(e corev1.EnvVar) bool { return e.Name == contract.EnvBootstrap && e.Value == "shop-nightly" })
		if want := ctr.Name != contract.ContainerKuraCopy; has != want {
			t.Errorf("container %s: %s set = %v, want %v", ctr.Name, contract.EnvBootstrap, has, want)
		}
		mounted := map[string]bool{}
		for _, m := range ctr.VolumeMounts {
			mounted[m.MountPath] = true
		}
		for _, dir := range []string{contract.BootstrapDir, contract.BackupS3CredentialsDir, contract.BackupS3CADir} {
			if want := ctr.Name == contract.ContainerKuraInit; mounted[dir] != want {
				t.Errorf("container %s: %s mounted = %v, want %v", ctr.Name, dir, mounted[dir], want)
			}
		}
	}
	for _, v := range pod.Volumes {
		if s := v.Secret; s != nil && s.SecretName != CredentialsSecretName(newCluster()) && s.SecretName != TLSSecretName(newCluster()) && (s.Optional == nil || !*s.Optional) {
			t.Errorf("storage Secret volume %s must be optional: a Secret deleted after the restore must not keep instances from starting", v.Name)
		}
		if cm := v.ConfigMap; cm != nil && cm.Name == BootstrapConfigMapName(newCluster()) && (cm.Optional == nil || !*cm.Optional) {
			t.Error("the bootstrap ConfigMap volume must be optional: the Job is removed once the cluster is restored")
		}
	}
	if init := pod.InitContainers[1]; init.TerminationMessagePolicy != corev1.TerminationMessageFallbackToLogsOnError {
		t.Errorf("kura-init's termination message policy %q: a failure before the result is written must show the log's tail", init.TerminationMessagePolicy)
	}
	// The ConfigMap key is the file kura-init reads.
	if BootstrapJobKey != path.Base(contract.BootstrapFile) || BootstrapJobKey != restore.JobFileName {
		t.Errorf("bootstrap key %q, contract file %s, restore file %s", BootstrapJobKey, contract.BootstrapFile, restore.JobFileName)
	}
	// Without spec.bootstrap nothing of it appears, even with a storage given.
	plain := StatefulSet(newCluster(), "h", "", &st, opts).Spec.Template.Spec
	if len(plain.Volumes) != len(StatefulSet(newCluster(), "h", "", nil, opts).Spec.Template.Spec.Volumes) {
		t.Error("a cluster without spec.bootstrap got bootstrap volumes")
	}
}

func TestBootstrapConfigMapGolden(t *testing.T) {
	cm := BootstrapConfigMap(newCluster(bootstrapped), []byte(`{"backup":"shop-nightly"}`), []byte(`{"pvc":{"claimName":"backup-volume"}}`))
	b, err := yaml.Marshal(cm)
	if err != nil {
		t.Fatal(err)
	}
	golden.Assert(t, "bootstrap-configmap.yaml", b)
}
