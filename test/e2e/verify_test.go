package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	backuprun "github.com/kura-db/kura/backup"
	"github.com/kura-db/kura/internal/contract"
)

// Verification by restore end to end, through kubectl: a schedule with verify on a cluster
// under writes has its backup restored into a scratch Pod, every table read back and the
// rows compared with the backup's own counts (status.verification Passed, the Verified
// condition, kubectl get's column); a backup whose stored object is altered in the bucket,
// then asked to verify with the kura.dev/verify annotation, fails verification naming the
// object, and stays Completed; a physical backup with spec.verify is prepared through the
// clone path in the scratch Pod and every table read back.
func TestBackupVerification(t *testing.T) {
	e := newBackupEnv(t, "verify")
	t.Run("side by side", func(t *testing.T) {
		t.Run("a scheduled backup under writes is verified", func(t *testing.T) {
			t.Parallel()
			e.testScheduledVerification(t)
		})
		t.Run("one-off", func(t *testing.T) {
			t.Parallel()
			t.Run("altered stored bytes fail verification", e.testAlteredBackupFailsVerification)
			t.Run("a physical backup is verified", e.testPhysicalVerification)
		})
	})
}

// waitVerification waits with kubectl for the Backup's verification phase.
func (e *backupEnv) waitVerification(t testing.TB, name string, phase kurav1alpha1.VerificationPhase, timeout time.Duration) *kurav1alpha1.Backup {
	t.Helper()
	return e.waitBackupField(t, name, "{.status.verification.phase}", string(phase), timeout, func(b *kurav1alpha1.Backup) string {
		v := b.Status.Verification
		if v == nil {
			return "no verification"
		}
		return fmt.Sprintf("verification: %+v\n%s", *v, e.jobLog(v.JobName))
	})
}

// checkVerificationGone checks that the verification's Job and NetworkPolicy were deleted.
func (e *backupEnv) checkVerificationGone(t testing.TB, b *kurav1alpha1.Backup) {
	t.Helper()
	waitFor(t, "the verification Job of "+b.Name+" to be gone", time.Minute, func() error {
		err := k8s.Get(context.Background(), types.NamespacedName{Namespace: e.ns, Name: b.Status.Verification.JobName}, &batchv1.Job{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("still there (%v)", err)
	})
}

func (e *backupEnv) testScheduledVerification(t *testing.T) {
	ctx := context.Background()
	w := startGTIDWriter(t, serviceIP(t, e.ns, "shop-primary"))
	defer w.halt(t)
	waitFor(t, "writes flowing", 30*time.Second, func() error {
		if n := w.count(); n < 20 {
			return fmt.Errorf("%d writes", n)
		}
		return nil
	})
	e.apply(t, e.backupYAML("BackupSchedule", "verified", "  schedule: \"* * * * *\"\n  verify:\n    every: 1\n", nil))
	var name string
	waitFor(t, "a scheduled backup", 3*time.Minute, func() error {
		list := &kurav1alpha1.BackupList{}
		if err := k8s.List(ctx, list, client.InNamespace(e.ns), client.MatchingLabels{contract.LabelSchedule: "verified"}); err != nil {
			return err
		}
		if len(list.Items) == 0 {
			return fmt.Errorf("none yet")
		}
		name = list.Items[0].Name
		if list.Items[0].Spec.Verify == nil {
			t.Fatalf("scheduled Backup %s does not ask for verification (every: 1)", name)
		}
		return nil
	})
	// One backup is enough: the schedule stops.
	kubectlRun(t, "", "patch", "-n", e.ns, "backupschedules.kura.dev/verified", "--type=merge", "-p", `{"spec":{"suspend":true}}`)
	e.waitBackup(t, name, kurav1alpha1.BackupCompleted, 3*time.Minute)
	b := e.waitVerification(t, name, kurav1alpha1.VerificationPassed, 5*time.Minute)
	v := b.Status.Verification
	m, err := backuprun.ReadManifest(ctx, e.bucket, e.layout, name)
	if err != nil {
		t.Fatal(err)
	}
	// The restored tables are the manifest's user tables, each counted and equal to it.
	var tables int32
	var rows int64
	for _, tr := range m.Tables {
		if tr.Database != "mysql" && tr.Database != "sys" && tr.Database != "performance_schema" && tr.Database != "information_schema" {
			tables++
			rows += tr.Rows
		}
	}
	if v.Tables != tables || v.Compared != tables || v.Rows != rows || tableRows(m, "shop", "t") == 0 || v.RestoreMillis <= 0 || v.Message != "" {
		t.Errorf("verification %+v; the manifest has %d user tables, %d rows (shop.t %d)", v, tables, rows, tableRows(m, "shop", "t"))
	}
	cond := meta.FindStatusCondition(b.Status.Conditions, kurav1alpha1.ConditionVerified)
	if cond == nil || cond.Status != "True" || b.Status.Phase != kurav1alpha1.BackupCompleted {
		t.Errorf("Verified condition %+v, phase %s", cond, b.Status.Phase)
	}
	if out := kubectlRun(t, "", "get", "-n", e.ns, "backups.kura.dev", name); !strings.Contains(out, "VERIFIED") || !strings.Contains(out, "Passed") {
		t.Errorf("kubectl get does not show the verification:\n%s", out)
	}
	if ev := kubectlRun(t, "", "get", "events", "-n", e.ns, "--field-selector", "involvedObject.name="+name); !strings.Contains(ev, "BackupVerified") {
		t.Errorf("no BackupVerified event:\n%s", ev)
	}
	e.checkVerificationGone(t, b)
	total := v.CompletionTime.Sub(v.StartTime.Time)
	t.Logf("verified %s (%d bytes stored, %d rows of shop.t, %d tables, %d rows): restore %s, whole verification %s from Job creation to result",
		name, b.Status.SizeBytes, tableRows(m, "shop", "t"), v.Tables, v.Rows, time.Duration(v.RestoreMillis)*time.Millisecond, total)
	kubectlRun(t, "", "delete", "-n", e.ns, "backupschedules.kura.dev/verified", "--wait=false")
}

func (e *backupEnv) testAlteredBackupFailsVerification(t *testing.T) {
	e.apply(t, e.backupYAML("Backup", "altered", "  method: logical\n", nil))
	b := e.waitBackup(t, "altered", kurav1alpha1.BackupCompleted, 3*time.Minute)
	if b.Status.Verification != nil {
		t.Fatalf("a Backup without spec.verify was verified: %+v", b.Status.Verification)
	}
	// Alter one byte in the middle of the stored object, in versitygw's directory.
	key := e.layout.BackupPrefix("altered") + "data.sql.zst"
	path := filepath.Join(e.s3.Dir, "backups", filepath.FromSlash(key))
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0xff
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	kubectlRun(t, "", "annotate", "-n", e.ns, "backups.kura.dev/altered", "kura.dev/verify=1")
	b = e.waitVerification(t, "altered", kurav1alpha1.VerificationFailed, 5*time.Minute)
	v := b.Status.Verification
	if !strings.Contains(v.Message, "data.sql.zst") || !strings.Contains(strings.ToLower(v.Message), "sha-256") {
		t.Errorf("the message does not name the object and the checksum: %q", v.Message)
	}
	cond := meta.FindStatusCondition(b.Status.Conditions, kurav1alpha1.ConditionVerified)
	if cond == nil || cond.Status != "False" || cond.Reason != "VerificationFailed" || b.Status.Phase != kurav1alpha1.BackupCompleted || v.Request != "1" {
		t.Errorf("Verified condition %+v, phase %s, verification %+v", cond, b.Status.Phase, v)
	}
	if out := kubectlRun(t, "", "get", "-n", e.ns, "backups.kura.dev", "altered"); !strings.Contains(out, "Failed") {
		t.Errorf("kubectl get does not show the failed verification:\n%s", out)
	}
	e.checkVerificationGone(t, b)
	t.Logf("altered backup: %s", v.Message)
}

func (e *backupEnv) testPhysicalVerification(t *testing.T) {
	e.apply(t, e.backupYAML("Backup", "physical-verified", "  method: physical\n  verify: {}\n", nil))
	e.waitBackup(t, "physical-verified", kurav1alpha1.BackupCompleted, 3*time.Minute)
	b := e.waitVerification(t, "physical-verified", kurav1alpha1.VerificationPassed, 5*time.Minute)
	v := b.Status.Verification
	// A copy records no row counts: every table is read back, none compared.
	if v.Tables < 1 || v.Rows < 1 || v.Compared != 0 || v.RestoreMillis <= 0 {
		t.Errorf("verification %+v", v)
	}
	e.checkVerificationGone(t, b)
	t.Logf("verified physical-verified (%d bytes stored, %d tables, %d rows): restore %s, whole verification %s from Job creation to result",
		b.Status.SizeBytes, v.Tables, v.Rows, time.Duration(v.RestoreMillis)*time.Millisecond, v.CompletionTime.Sub(v.StartTime.Time))
}
