package controllers

import (
	"sort"
	"time"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
)

// keptFailed is how many failed Backups of a schedule stay visible.
const keptFailed = 3

// Prune returns the names of a schedule's Backups that retention deletes (docs/backup.md,
// "Retention"). Only finished Backups are considered; the newest completed one is always
// kept. Completed Backups are ordered by the point they are consistent with (snapshot time,
// else completion time):
//   - keepLast N keeps the N newest;
//   - maxAge is a recovery window: every backup inside it is kept, and so is the newest one
//     older than its start (the base a restore to the window's first moment needs, dba
//     rule 18); older ones are deleted.
//
// A Backup is deleted when either rule set in r deletes it, except the newest one whose
// verification by restore passed (dba rule 18: never delete the last verified backup).
// Failed Backups are kept for inspection, the newest three of them.
func Prune(backups []kurav1alpha1.Backup, r kurav1alpha1.RetentionPolicy, now time.Time) []string {
	var done, failed []kurav1alpha1.Backup
	for _, b := range backups {
		switch b.Status.Phase {
		case kurav1alpha1.BackupCompleted:
			done = append(done, b)
		case kurav1alpha1.BackupFailed:
			failed = append(failed, b)
		}
	}
	newestFirst := func(list []kurav1alpha1.Backup) {
		sort.SliceStable(list, func(i, j int) bool {
			ti, tj := pointOf(list[i]), pointOf(list[j])
			if !ti.Equal(tj) {
				return ti.After(tj)
			}
			return list[i].Name > list[j].Name
		})
	}
	newestFirst(done)
	newestFirst(failed)
	lastVerified := ""
	for _, b := range done {
		if v := b.Status.Verification; v != nil && v.Phase == kurav1alpha1.VerificationPassed {
			lastVerified = b.Name
			break
		}
	}
	var out []string
	baseSeen := false
	for i, b := range done {
		if i == 0 {
			if r.MaxAge != nil && pointOf(b).Before(now.Add(-r.MaxAge.Duration)) {
				baseSeen = true
			}
			continue
		}
		drop := r.KeepLast != nil && i >= int(*r.KeepLast)
		if r.MaxAge != nil && pointOf(b).Before(now.Add(-r.MaxAge.Duration)) {
			if baseSeen {
				drop = true
			}
			baseSeen = true
		}
		if drop && b.Name != lastVerified {
			out = append(out, b.Name)
		}
	}
	for i, b := range failed {
		if i >= keptFailed {
			out = append(out, b.Name)
		}
	}
	sort.Strings(out)
	return out
}

// pointOf is when a Backup's data is consistent.
func pointOf(b kurav1alpha1.Backup) time.Time {
	switch {
	case b.Status.SnapshotTime != nil:
		return b.Status.SnapshotTime.Time
	case b.Status.CompletionTime != nil:
		return b.Status.CompletionTime.Time
	}
	return b.CreationTimestamp.Time
}
