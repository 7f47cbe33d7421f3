package builder

import (
	"testing"

	"sigs.k8s.io/yaml"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/internal/contract"
	"github.com/kura-db/kura/internal/golden"
)

// The archiver's Deployment: the kura image alone, one replica replaced with Recreate,
// credentials as files, no API token, resources from the spec.
func TestArchiveDeploymentGolden(t *testing.T) {
	c := newCluster(func(c *kurav1alpha1.MySQLCluster) {
		c.Spec.BinlogArchive = &kurav1alpha1.BinlogArchiveSpec{Storage: newBackup().Spec.Storage}
	})
	d := ArchiveDeployment(c, `{"cluster":"`+c.Name+`"}`, opts)
	out, err := yaml.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	golden.Assert(t, "archive-deployment.yaml", out)
	pod := d.Spec.Template.Spec
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken || *d.Spec.Replicas != 1 || d.Spec.Strategy.Type != "Recreate" {
		t.Error("the archiver must have no API token, one replica and the Recreate strategy")
	}
	for _, e := range pod.Containers[0].Env {
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			t.Errorf("secrets must be files, not environment: %s", e.Name)
		}
	}
	c.Spec.BinlogArchive.Storage = kurav1alpha1.BackupStorage{PVC: &kurav1alpha1.PVCStorage{ClaimName: "archive"}}
	pvc := ArchiveDeployment(c, "{}", opts)
	if v := pvc.Spec.Template.Spec.Volumes; v[len(v)-1].PersistentVolumeClaim == nil || v[len(v)-1].PersistentVolumeClaim.ClaimName != "archive" {
		t.Errorf("the claim is not mounted: %+v", v)
	}
	if pvc.Annotations[contract.AnnotationAppliedHash] == d.Annotations[contract.AnnotationAppliedHash] {
		t.Error("a storage change does not change the applied hash")
	}
}
