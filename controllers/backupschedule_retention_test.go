package controllers

import (
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
)

var retentionNow = time.Date(2030, 6, 10, 12, 0, 0, 0, time.UTC)

// history builds a schedule's Backups from "name:age:phase" words (age in hours before now;
// phase C completed, CV completed and verified, F failed, R running).
func history(words ...string) []kurav1alpha1.Backup {
	var out []kurav1alpha1.Backup
	for _, w := range words {
		parts := strings.Split(w, ":")
		var h int
		_, _ = fmt.Sscan(parts[1], &h)
		at := metav1.NewTime(retentionNow.Add(-time.Duration(h) * time.Hour))
		b := kurav1alpha1.Backup{ObjectMeta: metav1.ObjectMeta{Name: parts[0]}}
		switch parts[2] {
		case "C", "CV":
			b.Status.Phase, b.Status.SnapshotTime = kurav1alpha1.BackupCompleted, &at
			if parts[2] == "CV" {
				b.Status.Verification = &kurav1alpha1.VerificationStatus{Phase: kurav1alpha1.VerificationPassed}
			}
		case "F":
			b.Status.Phase, b.Status.CompletionTime = kurav1alpha1.BackupFailed, &at
		case "R":
			b.Status.Phase = kurav1alpha1.BackupRunning
		}
		out = append(out, b)
	}
	return out
}

func TestPrune(t *testing.T) {
	keep := func(n int32) *int32 { return ptr.To(n) }
	age := func(h int) *metav1.Duration { return &metav1.Duration{Duration: time.Duration(h) * time.Hour} }
	cases := []struct {
		name    string
		backups []string
		r       kurav1alpha1.RetentionPolicy
		want    string
	}{
		{"keepLast 2 of 4", []string{"a:4:C", "b:3:C", "c:2:C", "d:1:C"}, kurav1alpha1.RetentionPolicy{KeepLast: keep(2)}, "a,b"},
		{"running ones are never touched", []string{"a:4:C", "b:3:R", "c:2:C"}, kurav1alpha1.RetentionPolicy{KeepLast: keep(1)}, "a"},
		{"the newest completed survives keepLast 1 even when failures follow", []string{"a:5:C", "b:4:F", "c:3:F"}, kurav1alpha1.RetentionPolicy{KeepLast: keep(1)}, ""},
		{"window of 24h keeps the base before it", []string{"a:72:C", "b:48:C", "c:30:C", "d:20:C", "e:2:C"}, kurav1alpha1.RetentionPolicy{MaxAge: age(24)}, "a,b"},
		{"all older than the window: only the newest stays", []string{"a:72:C", "b:48:C"}, kurav1alpha1.RetentionPolicy{MaxAge: age(24)}, "a"},
		{"both rules: either deletes", []string{"a:72:C", "b:30:C", "c:20:C", "d:10:C", "e:2:C"}, kurav1alpha1.RetentionPolicy{KeepLast: keep(3), MaxAge: age(24)}, "a,b"},
		{"no rule keeps everything", []string{"a:72:C", "b:48:C"}, kurav1alpha1.RetentionPolicy{}, ""},
		{"the last verified backup is never deleted", []string{"a:5:CV", "b:4:CV", "c:3:C", "d:2:C"}, kurav1alpha1.RetentionPolicy{KeepLast: keep(1)}, "a,c"},
		{"nor by the window", []string{"a:72:CV", "b:48:C", "c:30:C", "d:2:C"}, kurav1alpha1.RetentionPolicy{MaxAge: age(24)}, "b"},
		{"only three failures stay", []string{"a:1:C", "f1:5:F", "f2:4:F", "f3:3:F", "f4:2:F"}, kurav1alpha1.RetentionPolicy{}, "f1"},
	}
	for _, c := range cases {
		got := strings.Join(Prune(history(c.backups...), c.r, retentionNow), ",")
		if got != c.want {
			t.Errorf("%s: pruned %q, want %q", c.name, got, c.want)
		}
	}
}
