package controllers

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	backuprun "github.com/kura-db/kura/backup"
	"github.com/kura-db/kura/internal/contract"
)

func TestParseSchedule(t *testing.T) {
	now := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	cases := []struct {
		schedule, tz string
		next         string
		err          string
	}{
		{"0 3 * * *", "", "2026-11-25T03:00:00Z", ""},
		{"@daily", "", "2026-11-25T00:00:00Z", ""},
		{"*/15 * * * *", "", "2026-11-24T10:15:00Z", ""},
		{"0 3 * * *", "Europe/Paris", "2026-11-25T02:00:00Z", ""},
		{"0 3 * *", "", "", "spec.schedule"},
		{"61 * * * *", "", "", "spec.schedule"},
		{"every day", "", "", "spec.schedule"},
		{"0 0 30 2 *", "", "", "never fires"},
		{"0 3 * * *", "Mars/Olympus", "", "spec.timeZone"},
	}
	for _, tc := range cases {
		next, err := ParseSchedule(tc.schedule, tc.tz, now)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q %q: want error with %q, got %v", tc.schedule, tc.tz, tc.err, err)
			}
			continue
		}
		if err != nil || next.UTC().Format(time.RFC3339) != tc.next {
			t.Errorf("%q %q: next %v err %v, want %s", tc.schedule, tc.tz, next.UTC(), err, tc.next)
		}
	}
}

func newSchedule(ns, name, schedule string) *kurav1alpha1.BackupSchedule {
	return &kurav1alpha1.BackupSchedule{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: kurav1alpha1.BackupScheduleSpec{
			BackupOptions: kurav1alpha1.BackupOptions{
				Cluster: "shop",
				Storage: kurav1alpha1.BackupStorage{PVC: &kurav1alpha1.PVCStorage{ClaimName: "backups"}},
			},
			Schedule: schedule,
		},
	}
}

func waitReady(t *testing.T, ns, name string, status metav1.ConditionStatus) *kurav1alpha1.BackupSchedule {
	t.Helper()
	var bs *kurav1alpha1.BackupSchedule
	eventually(t, "Ready="+string(status), func() error {
		bs = &kurav1alpha1.BackupSchedule{}
		if err := k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, bs); err != nil {
			return err
		}
		c := meta.FindStatusCondition(bs.Status.Conditions, kurav1alpha1.ConditionReady)
		if c == nil || c.Status != status || c.ObservedGeneration != bs.Generation {
			return fmt.Errorf("conditions %+v", bs.Status.Conditions)
		}
		return nil
	})
	return bs
}

func TestBackupScheduleReportsBadCron(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	if err := k8s.Create(ctx, newSchedule(ns, "bad", "0 3 * *")); err != nil {
		t.Fatal(err)
	}
	bs := waitReady(t, ns, "bad", metav1.ConditionFalse)
	c := meta.FindStatusCondition(bs.Status.Conditions, kurav1alpha1.ConditionReady)
	if c.Reason != "InvalidSchedule" || !strings.Contains(c.Message, "spec.schedule") || !strings.Contains(c.Message, "0 3 * * *") {
		t.Errorf("condition %+v", c)
	}
	if bs.Status.NextScheduleTime != nil {
		t.Error("an invalid schedule has no next run")
	}
	bs.Spec.Schedule = "0 3 * * *"
	if err := k8s.Update(ctx, bs); err != nil {
		t.Fatal(err)
	}
	bs = waitReady(t, ns, "bad", metav1.ConditionTrue)
	if bs.Status.NextScheduleTime == nil || bs.Status.NextScheduleTime.UTC().Hour() != 3 {
		t.Errorf("next schedule time %v", bs.Status.NextScheduleTime)
	}
}

// A schedule owns a CronJob that never overlaps runs, with an identity that may only create
// Backups; `kura backup create` creates one labelled Backup per run (idempotently); after
// backups complete, retention deletes the oldest Backups (and, through their finalizer,
// their data) and the newest completed one is reported.
func TestBackupScheduleOwnsACronJobAndPrunes(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	backupCluster(t, ns)
	bs := newSchedule(ns, "nightly", "*/5 * * * *")
	bs.Spec.Storage = newBackupObject(ns, "x").Spec.Storage
	bs.Spec.TimeZone = "Europe/Paris"
	if err := k8s.Create(ctx, bs); err != nil {
		t.Fatal(err)
	}
	waitReady(t, ns, "nightly", metav1.ConditionTrue)
	cj := &batchv1.CronJob{}
	eventually(t, "the CronJob", func() error {
		return k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "nightly-backups"}, cj)
	})
	if cj.Spec.Schedule != "*/5 * * * *" || cj.Spec.ConcurrencyPolicy != batchv1.ForbidConcurrent || cj.Spec.TimeZone == nil ||
		*cj.Spec.TimeZone != "Europe/Paris" || *cj.Spec.Suspend || cj.Spec.JobTemplate.Spec.Template.Spec.ServiceAccountName != "nightly-backups" {
		t.Fatalf("CronJob spec %+v", cj.Spec)
	}
	for _, obj := range []client.Object{&corev1.ServiceAccount{}, &rbacv1.Role{}, &rbacv1.RoleBinding{}} {
		if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "nightly-backups"}, obj); err != nil {
			t.Fatalf("%T: %v", obj, err)
		}
	}

	// Three runs, each completing a day apart.
	for i, name := range []string{"nightly-backups-1", "nightly-backups-2", "nightly-backups-3"} {
		for range 2 { // a retried run creates nothing more
			if err := CreateScheduledBackup(ctx, k8s, ns, "nightly", name); err != nil {
				t.Fatal(err)
			}
		}
		b := waitPhase(t, ns, name, kurav1alpha1.BackupRunning)
		if b.Labels[contract.LabelSchedule] != "nightly" || b.Spec.Cluster != "shop" || b.Spec.Storage.S3 == nil {
			t.Fatalf("scheduled Backup %+v", b.ObjectMeta)
		}
		finishJob(t, ns, name+"-backup", backuprun.Summary{Location: "s3://backups/x/" + name + "/", Size: 1, SHA256: "ab", GTID: "0-1000-1",
			Snapshot: time.Now().Add(time.Duration(i-3) * 24 * time.Hour).UTC()}, true, "")
		waitPhase(t, ns, name, kurav1alpha1.BackupCompleted)
	}
	// keepLast 2: the oldest goes, with its data.
	updateSchedule(t, ns, "nightly", func(s *kurav1alpha1.BackupSchedule) { s.Spec.Retention.KeepLast = ptr.To[int32](2) })
	eventually(t, "the oldest Backup's deletion Job", func() error {
		return k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "nightly-backups-1-delete"}, &batchv1.Job{})
	})
	finishJob(t, ns, "nightly-backups-1-delete", backuprun.Summary{}, true, "")
	eventually(t, "the pruned Backup to be gone", func() error {
		list := &kurav1alpha1.BackupList{}
		if err := k8s.List(ctx, list, client.InNamespace(ns), client.MatchingLabels{contract.LabelSchedule: "nightly"}); err != nil {
			return err
		}
		var names []string
		for _, b := range list.Items {
			names = append(names, b.Name)
		}
		if strings.Join(names, ",") != "nightly-backups-2,nightly-backups-3" {
			return fmt.Errorf("backups %v", names)
		}
		return nil
	})
	eventually(t, "the last successful backup", func() error {
		if got := getSchedule(t, ns, "nightly").Status.LastSuccessfulBackup; got != "nightly-backups-3" {
			return fmt.Errorf("last successful %q", got)
		}
		return nil
	})
	// Suspending the schedule suspends the CronJob.
	updateSchedule(t, ns, "nightly", func(s *kurav1alpha1.BackupSchedule) { s.Spec.Suspend = true })
	waitReady(t, ns, "nightly", metav1.ConditionFalse)
	eventually(t, "a suspended CronJob", func() error {
		if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "nightly-backups"}, cj); err != nil {
			return err
		}
		if !*cj.Spec.Suspend {
			return fmt.Errorf("not suspended")
		}
		return nil
	})
}

func getSchedule(t *testing.T, ns, name string) *kurav1alpha1.BackupSchedule {
	t.Helper()
	bs := &kurav1alpha1.BackupSchedule{}
	if err := k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, bs); err != nil {
		t.Fatal(err)
	}
	return bs
}

// updateSchedule changes a schedule's spec, retrying on conflicts with status writes.
func updateSchedule(t *testing.T, ns, name string, change func(*kurav1alpha1.BackupSchedule)) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		bs := getSchedule(t, ns, name)
		change(bs)
		return k8s.Update(context.Background(), bs)
	})
	if err != nil {
		t.Fatal(err)
	}
}
