package controllers

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
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
