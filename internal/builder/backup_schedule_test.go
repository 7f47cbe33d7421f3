package builder

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/internal/golden"
)

// The schedule's CronJob (never overlapping runs, the run's Job name as the Backup's name)
// and its identity, which may only read its schedule and create Backups.
func TestBackupScheduleGolden(t *testing.T) {
	bs := &kurav1alpha1.BackupSchedule{
		ObjectMeta: metav1.ObjectMeta{Name: "nightly", Namespace: "prod"},
		Spec:       kurav1alpha1.BackupScheduleSpec{BackupOptions: newBackup().Spec.BackupOptions, Schedule: "0 3 * * *", TimeZone: "Europe/Paris"},
	}
	bs.Spec.Verify = &kurav1alpha1.BackupVerification{Every: ptr.To[int32](7), ActiveDeadlineSeconds: ptr.To[int64](3600)}
	sa, role, binding := BackupScheduleRBAC(bs)
	var out []byte
	for _, obj := range []any{BackupScheduleCronJob(bs, opts), sa, role, binding, ScheduledBackup(bs, "nightly-backups-29012345", true)} {
		b, err := yaml.Marshal(obj)
		if err != nil {
			t.Fatal(err)
		}
		out = append(append(out, "---\n"...), b...)
	}
	golden.Assert(t, "backup-schedule.yaml", out)
	// The Backup a run creates carries the schedule's verification without every, and none
	// when it is not its turn.
	if v := ScheduledBackup(bs, "x", true).Spec.Verify; v == nil || v.Every != nil || *v.ActiveDeadlineSeconds != 3600 {
		t.Errorf("verifying run: spec.verify %+v", v)
	}
	if v := ScheduledBackup(bs, "x", false).Spec.Verify; v != nil || bs.Spec.Verify.Every == nil {
		t.Errorf("other run: spec.verify %+v, or the schedule was changed", v)
	}
	long := &kurav1alpha1.BackupSchedule{ObjectMeta: metav1.ObjectMeta{Name: "a-schedule-name-that-is-much-longer-than-a-cronjob-allows"}}
	if n := BackupScheduleName(long); len(n) > 52 {
		t.Errorf("CronJob name %q is longer than 52", n)
	}
}
