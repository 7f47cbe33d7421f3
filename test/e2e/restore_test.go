package e2e

import (
	"context"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/backup/s3test"
	"github.com/kura-db/kura/test/localcluster"
)

// A point-in-time restore end to end, through kubectl: a cluster archiving its binary log to
// a real S3 server takes a physical backup under writes; more writes follow, a moment T is
// noted, and writes go on after it. A Restore to T into a new cluster holds exactly the rows
// written before T — those in the backup and those replayed from the archive — and none
// after, and its status reports what was replayed.
func TestRestorePointInTime(t *testing.T) {
	needCluster(t)
	ns := newNamespace(t, "restore")
	ctx := context.Background()
	s3 := startS3(t, ns)
	storage := kurav1alpha1.BackupStorage{S3: &kurav1alpha1.S3Storage{Endpoint: s3.Endpoint, Region: "us-east-1", Bucket: "backups",
		CredentialsSecret: kurav1alpha1.S3CredentialsSecret{Name: "s3-keys"}}}
	src := newCluster(ns, "shop", 2)
	src.Spec.BinlogArchive = &kurav1alpha1.BinlogArchiveSpec{Storage: storage, PieceInterval: &metav1.Duration{Duration: time.Second}}
	if err := k8s.Create(ctx, src); err != nil {
		t.Fatal(err)
	}
	awaitCluster(t, ns, "shop", "2 healthy instances", 5*time.Minute, healthy(t, ns, "shop", 2))
	setupApp(t, ns, "shop")
	awaitCluster(t, ns, "shop", "the binary log archive", 3*time.Minute, func() error {
		c := get(t, ns, "shop")
		if !meta.IsStatusConditionTrue(c.Status.Conditions, kurav1alpha1.ConditionBinlogArchiving) {
			return fmt.Errorf("not archiving: %s", conditionSummary(c))
		}
		return nil
	})

	// Writes before T: a physical backup runs under them.
	host := serviceIP(t, ns, "shop-primary")
	before := startWriter(host, 1)
	before.waitFlowing(t)
	physicalBackup(t, ns, "base", s3.Endpoint)
	atBackup := before.count()
	// More writes after the backup, then T: commit times in the binary log are whole
	// seconds, so T is a whole second after the last write before it, and the writes after it
	// start a second later.
	waitFor(t, "writes after the backup", time.Minute, func() error {
		if n := before.count(); n < atBackup+50 {
			return fmt.Errorf("%d writes after the backup", n-atBackup)
		}
		return nil
	})
	acked := before.halt()
	target := time.Now().Truncate(time.Second).Add(time.Second)
	time.Sleep(time.Until(target.Add(1100 * time.Millisecond)))
	firstAfter := acked[len(acked)-1] + 1000
	after := startWriter(host, firstAfter)
	after.waitFlowing(t)
	afterAcked := after.halt()

	// Every row of the source written before T, as the source holds them.
	want := tableIDs(t, host, adminUser, adminPassword(t, ns, "shop"), firstAfter)
	if len(want) < len(acked) {
		t.Fatalf("the source holds %d rows written before T, %d were acknowledged", len(want), len(acked))
	}
	awaitCluster(t, ns, "shop", "the archive past T", 2*time.Minute, func() error {
		a := get(t, ns, "shop").Status.BinlogArchive
		if a == nil || a.LastArchivedTime == nil || !a.LastArchivedTime.After(target) {
			return fmt.Errorf("archive %+v", a)
		}
		return nil
	})

	start := time.Now()
	kubectlRun(t, fmt.Sprintf(`apiVersion: kura.dev/v1alpha1
kind: Restore
metadata: {name: before-t, namespace: %s}
spec:
  backup: base
  pointInTime: {time: %q}
  target: {newCluster: shop-pitr}
`, ns, target.UTC().Format(time.RFC3339)), "apply", "-f", "-")
	rs := &kurav1alpha1.Restore{}
	awaitCluster(t, ns, "shop-pitr", "Restore before-t Completed", 10*time.Minute, func() error {
		if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "before-t"}, rs); err != nil {
			return err
		}
		if rs.Status.Phase == kurav1alpha1.RestoreFailed {
			t.Fatalf("Restore failed: %s", rs.Status.Message)
		}
		if rs.Status.Phase != kurav1alpha1.RestoreCompleted {
			return fmt.Errorf("phase %s: %s", rs.Status.Phase, rs.Status.Message)
		}
		return nil
	})
	t.Logf("Restore to %s completed %s after kubectl apply: %s; the instance's restore took %d ms (seed %d, replay %d), %d transactions replayed",
		target.UTC().Format(time.RFC3339), time.Since(start).Round(time.Second), rs.Status.Message,
		rs.Status.DurationMillis, rs.Status.SeedMillis, rs.Status.ReplayMillis, rs.Status.Replayed)
	if rs.Status.Plan == nil || rs.Status.Plan.Method != kurav1alpha1.BackupMethodPhysical || rs.Status.Plan.Pieces == 0 || rs.Status.Replayed == 0 || rs.Status.GTIDReached == "" {
		t.Errorf("restore status %+v plan %+v: want a physical base and replayed pieces", rs.Status, rs.Status.Plan)
	}
	got := tableIDs(t, serviceIP(t, ns, "shop-pitr-primary"), adminUser, adminPassword(t, ns, "shop-pitr"), math.MaxInt64)
	if !slices.Equal(got, want) {
		t.Fatalf("the restored cluster holds %d rows (%v … %v), want the %d written before T (%v … %v); %d were written after T from id %d",
			len(got), head(got), tail(got), len(want), head(want), tail(want), len(afterAcked), firstAfter)
	}
	awaitCluster(t, ns, "shop-pitr", "the restored cluster's 2 instances healthy", 5*time.Minute, healthy(t, ns, "shop-pitr", 2))
}

// startS3 starts the S3 server on the host with bucket "backups" and puts its keys into
// Secret s3-keys of namespace ns.
func startS3(t *testing.T, ns string) *s3test.Server {
	t.Helper()
	s3 := s3test.StartAt(t, localcluster.HostIP, "backups")
	if err := k8s.Create(context.Background(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "s3-keys"},
		StringData: map[string]string{"AWS_ACCESS_KEY_ID": s3test.AccessKey, "AWS_SECRET_ACCESS_KEY": s3test.SecretKey}}); err != nil {
		t.Fatal(err)
	}
	return s3
}

// physicalBackup takes a physical Backup name of cluster shop into the S3 bucket "backups"
// at endpoint, through kubectl, and waits for it to complete.
func physicalBackup(t *testing.T, ns, name, endpoint string) {
	t.Helper()
	kubectlRun(t, fmt.Sprintf(`apiVersion: kura.dev/v1alpha1
kind: Backup
metadata: {name: %s, namespace: %s}
spec:
  cluster: shop
  method: physical
  storage:
    s3: {endpoint: %q, region: us-east-1, bucket: backups, credentialsSecret: {name: s3-keys}}
`, name, ns, endpoint), "apply", "-f", "-")
	waitFor(t, "Backup "+name+" Completed", 4*time.Minute, func() error {
		b := &kurav1alpha1.Backup{}
		if err := k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, b); err != nil {
			return err
		}
		if b.Status.Phase == kurav1alpha1.BackupFailed {
			t.Fatalf("Backup %s failed: %s", name, b.Status.Message)
		}
		if b.Status.Phase != kurav1alpha1.BackupCompleted {
			return fmt.Errorf("phase %s", b.Status.Phase)
		}
		return nil
	})
}

func head(s []int64) []int64 { return s[:min(3, len(s))] }
func tail(s []int64) []int64 { return s[max(0, len(s)-3):] }
