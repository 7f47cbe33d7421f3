package controllers

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/internal/builder"
	"github.com/kura-db/kura/internal/contract"
	"github.com/kura-db/kura/internal/engine"
	"github.com/kura-db/kura/internal/events"
	"github.com/kura-db/kura/internal/gtid"
)

// In-place restores (docs/backup.md, "In-place restore"): fence the cluster (its instances
// stopped, its clustering loop off), switch it to a new volume set seeded from the backup
// through the spec.bootstrap machinery, follow it until restored and available, keep the old
// volumes (labelled) until confirmed or keepOldVolumesFor has passed; a rollback fences again
// and switches back.

// Steps of status.inPlace.step.
const (
	stepFencing     = "Fencing"
	stepRestoring   = "Restoring"
	stepRestored    = "Restored"
	stepRollingBack = "RollingBack"
	stepRolledBack  = "RolledBack"
	stepConfirmed   = "Confirmed"
)

// defaultKeepOldVolumes is spec.keepOldVolumesFor's default (also the schema's).
const defaultKeepOldVolumes = 24 * time.Hour

// inPlaceView is what decideInPlace decides from: the Restore's own state and what was
// observed of its cluster.
type inPlaceView struct {
	step      string
	failed    bool // phase Failed
	switched  bool
	kept      bool // kept volumes still there
	confirm   bool // kura.dev/confirm: "true"
	rollback  bool // kura.dev/rollback: "true"
	pods      int  // instance Pods still there
	expired   bool // deleteKeptVolumesAfter has passed
	restored  bool // the current volume set's bootstrap reported Restored
	broken    bool // the current volume set's bootstrap reported Failed
	mismatch  bool // restored, but the GTID set reached is not the planned one
	available bool // the cluster has a primary of the new set accepting writes
}

// inPlaceAction is the one thing an in-place Restore does in a pass.
type inPlaceAction string

const (
	actNothing     inPlaceAction = "Nothing"
	actWait        inPlaceAction = "Wait"        // requeue and look again
	actSwitch      inPlaceAction = "Switch"      // fenced and stopped: switch to the new set
	actUnfence     inPlaceAction = "Unfence"     // rolled back before the switch
	actComplete    inPlaceAction = "Complete"    // restored and available
	actFail        inPlaceAction = "Fail"        // the new set's restore failed
	actFenceBack   inPlaceAction = "FenceBack"   // a rollback: fence again
	actSwitchBack  inPlaceAction = "SwitchBack"  // fenced again and stopped: back to the old set
	actDeleteKept  inPlaceAction = "DeleteKept"  // confirmed or expired: the kept volumes go
	actAwaitExpiry inPlaceAction = "AwaitExpiry" // kept volumes wait for confirmation or expiry
)

// decideInPlace is the in-place restore's state machine (docs/backup.md, "In-place restore"),
// pure so that each transition is table-tested. The old data is deleted in one place only,
// actDeleteKept, and only after the cluster has been switched away from it, restored and
// opened (or switched back), on confirmation or expiry.
func decideInPlace(v inPlaceView) inPlaceAction {
	switch v.step {
	case stepFencing:
		switch {
		case v.rollback:
			return actUnfence
		case v.pods > 0:
			return actWait
		}
		return actSwitch
	case stepRestoring:
		switch {
		case v.rollback:
			return actFenceBack
		case v.failed:
			// Failed after the switch: the old volumes stay until a rollback (a confirmation
			// does not delete them while nothing restored works).
			return actNothing
		case v.broken || v.mismatch:
			return actFail
		case v.restored && v.available:
			return actComplete
		}
		return actWait
	case stepRestored:
		switch {
		case v.rollback && v.kept:
			return actFenceBack
		case v.kept && (v.confirm || v.expired):
			return actDeleteKept
		case v.kept:
			return actAwaitExpiry
		}
		return actNothing
	case stepRollingBack:
		if v.pods > 0 {
			return actWait
		}
		return actSwitchBack
	case stepRolledBack:
		switch {
		case !v.kept || !v.switched:
			return actNothing
		case v.confirm || v.expired:
			return actDeleteKept
		}
		return actAwaitExpiry
	}
	return actNothing
}

// inPlace runs one pass of an in-place Restore.
func (r *RestoreReconciler) inPlace(ctx context.Context, rs *kurav1alpha1.Restore) (ctrl.Result, error) {
	ip := rs.Status.InPlace
	if ip == nil {
		if rs.Status.Phase == kurav1alpha1.RestoreFailed {
			return ctrl.Result{}, nil
		}
		return r.fence(ctx, rs)
	}
	if ip.Step == stepConfirmed || (ip.Step == stepRolledBack && (!ip.Switched || ip.KeptVolumesDeleted)) {
		return ctrl.Result{}, nil
	}
	c := &kurav1alpha1.MySQLCluster{}
	if err := r.Client.Get(ctx, types.NamespacedName{Namespace: rs.Namespace, Name: rs.Spec.Target.ExistingCluster}, c); err != nil {
		if apierrors.IsNotFound(err) {
			if rs.Status.Phase == kurav1alpha1.RestoreFailed {
				return ctrl.Result{}, nil
			}
			return r.fail(ctx, rs, "ClusterDeleted", fmt.Sprintf("MySQLCluster %q was deleted during the in-place restore; the kept volumes (%s) are left as they are", rs.Spec.Target.ExistingCluster, strings.Join(ip.KeptVolumes, ", ")))
		}
		return ctrl.Result{}, fmt.Errorf("failed to get MySQLCluster %s: %w", rs.Spec.Target.ExistingCluster, err)
	}
	v, err := r.viewInPlace(ctx, rs, c)
	if err != nil {
		return ctrl.Result{}, err
	}
	switch decideInPlace(v) {
	case actWait:
		return ctrl.Result{RequeueAfter: 2 * time.Second}, nil
	case actSwitch:
		return r.switchSets(ctx, rs, c, false)
	case actSwitchBack:
		return r.switchSets(ctx, rs, c, true)
	case actUnfence:
		if err := r.patchClusterAnnotations(ctx, c, map[string]*string{contract.AnnotationRestoreFence: nil}); err != nil {
			return ctrl.Result{}, err
		}
		return r.rolledBack(ctx, rs, nil, "rolled back before the switch: the cluster runs on its volumes as before")
	case actFenceBack:
		if err := r.patchClusterAnnotations(ctx, c, map[string]*string{contract.AnnotationRestoreFence: &rs.Name}); err != nil {
			return ctrl.Result{}, err
		}
		st := rs.Status.DeepCopy()
		st.InPlace.Step = stepRollingBack
		st.Message = fmt.Sprintf("rolling back: %s is fenced; once its instances have stopped it is switched back to volume set %s", c.Name, ip.FromVolumeSet)
		r.Recorder.Emit(rs, events.Normal, events.RestoreFenced, "%s", st.Message)
		return ctrl.Result{RequeueAfter: 2 * time.Second}, r.writeStatus(ctx, rs, *st)
	case actComplete:
		return r.completeInPlace(ctx, rs, c)
	case actFail:
		bs := c.Status.Bootstrap
		rs.Status.RestoreOutcome = bs.RestoreOutcome
		why := bs.Message
		if v.mismatch {
			why = fmt.Sprintf("%s reached GTID %s, not the planned %s", c.Name, bs.GTIDReached, bs.Plan.TargetGTID)
		}
		return r.fail(ctx, rs, "RestoreFailed", fmt.Sprintf("%s; the old volumes (%s) are kept: roll back with kubectl annotate restore %s %s=true", why, strings.Join(ip.KeptVolumes, ", "), rs.Name, contract.AnnotationRollback))
	case actDeleteKept:
		return r.deleteKept(ctx, rs)
	case actAwaitExpiry:
		return ctrl.Result{RequeueAfter: max(time.Second, ip.DeleteKeptVolumesAfter.Sub(r.now()))}, nil
	}
	if ip.Step == stepRestoring {
		return r.followInPlace(ctx, rs, c)
	}
	return ctrl.Result{}, nil
}

// viewInPlace observes what decideInPlace needs.
func (r *RestoreReconciler) viewInPlace(ctx context.Context, rs *kurav1alpha1.Restore, c *kurav1alpha1.MySQLCluster) (inPlaceView, error) {
	ip := rs.Status.InPlace
	v := inPlaceView{step: ip.Step, failed: rs.Status.Phase == kurav1alpha1.RestoreFailed, switched: ip.Switched,
		kept:    ip.Switched && !ip.KeptVolumesDeleted && len(ip.KeptVolumes) > 0,
		confirm: rs.Annotations[contract.AnnotationConfirm] == "true", rollback: rs.Annotations[contract.AnnotationRollback] == "true",
		expired: ip.DeleteKeptVolumesAfter != nil && !r.now().Before(ip.DeleteKeptVolumesAfter.Time)}
	if (ip.Step == stepFencing || ip.Step == stepRollingBack) && !switchedTo(c, switchTarget(ip)) {
		var pods corev1.PodList
		if err := r.Client.List(ctx, &pods, client.InNamespace(c.Namespace), client.MatchingLabels(builder.SelectorLabels(c))); err != nil {
			return v, fmt.Errorf("failed to list Pods: %w", err)
		}
		v.pods = len(pods.Items)
	}
	if bs := c.Status.Bootstrap; bs != nil && orDefault(bs.VolumeSet, builder.VolumeData) == ip.ToVolumeSet && builder.VolumeSet(c) == ip.ToVolumeSet {
		v.restored = bs.Phase == kurav1alpha1.BootstrapRestored
		v.broken = bs.Phase == kurav1alpha1.BootstrapFailed
		v.mismatch = v.restored && !reachedPlan(builder.Engine(c), bs.RestoreOutcome)
	}
	// The switch cleared status.currentPrimaryIndex: a primary recorded since is the new
	// set's, opened by the clustering loop.
	v.available = c.Status.CurrentPrimaryIndex != nil && meta.IsStatusConditionTrue(c.Status.Conditions, kurav1alpha1.ConditionAvailable)
	return v, nil
}

// reachedPlan checks the first instance's report once more before the cluster is declared
// restored: the GTID set reached is the planned one (kura init checks it too; dba rule 19).
// A report without a planned set has nothing to compare.
func reachedPlan(e kurav1alpha1.Engine, o kurav1alpha1.RestoreOutcome) bool {
	if o.Plan == nil || o.Plan.TargetGTID == "" {
		return true
	}
	want, err1 := gtid.Parse(engine.FlavorOf(e), o.Plan.TargetGTID)
	got, err2 := gtid.Parse(engine.FlavorOf(e), o.GTIDReached)
	return err1 == nil && err2 == nil && got.Equal(want)
}

// switchTarget is the volume set the current step switches to.
func switchTarget(ip *kurav1alpha1.InPlaceRestoreStatus) string {
	if ip.Step == stepRollingBack {
		return ip.FromVolumeSet
	}
	return ip.ToVolumeSet
}

// switchedTo reports whether the cluster already runs, unfenced, on volume set set: a pass
// that switched it stopped before writing the Restore's status, and the next one only
// records the switch (its instances may be running on the set by then).
func switchedTo(c *kurav1alpha1.MySQLCluster, set string) bool {
	return builder.VolumeSet(c) == set && !builder.Fenced(c)
}

// fence checks an in-place Restore, then fences its cluster. Every refusal fails the Restore
// before anything is touched.
func (r *RestoreReconciler) fence(ctx context.Context, rs *kurav1alpha1.Restore) (ctrl.Result, error) {
	c, refusal, err := r.checkInPlace(ctx, rs)
	if err != nil {
		return ctrl.Result{}, err
	}
	if refusal != nil {
		return r.fail(ctx, rs, refusal.reason, refusal.message)
	}
	if err := r.patchClusterAnnotations(ctx, c, map[string]*string{contract.AnnotationRestoreFence: &rs.Name}); err != nil {
		return ctrl.Result{}, err
	}
	st := rs.Status
	now := metav1.NewTime(r.now())
	st.Phase, st.StartTime, st.Cluster = kurav1alpha1.RestoreRunning, &now, c.Name
	st.InPlace = &kurav1alpha1.InPlaceRestoreStatus{Step: stepFencing, FromVolumeSet: builder.VolumeSet(c), ToVolumeSet: builder.VolumeSetFor(rs.UID),
		FromBootstrap: c.Annotations[contract.AnnotationBootstrap]}
	st.Message = fmt.Sprintf("%s is fenced: its instances stop, then it is switched to volume set %s and restores Backup %q (%s) there; its volumes of set %s are kept",
		c.Name, st.InPlace.ToVolumeSet, rs.Spec.Backup, targetWords(rs.Spec.PointInTime), st.InPlace.FromVolumeSet)
	if err := r.writeStatus(ctx, rs, st); err != nil {
		return ctrl.Result{}, err
	}
	r.Recorder.Emit(rs, events.Normal, events.RestoreStarted, "%s", st.Message)
	return ctrl.Result{RequeueAfter: 2 * time.Second}, nil
}

// checkInPlace refuses what an in-place restore cannot do, naming the field and the fix.
func (r *RestoreReconciler) checkInPlace(ctx context.Context, rs *kurav1alpha1.Restore) (*kurav1alpha1.MySQLCluster, *bootstrapRefusal, error) {
	name := rs.Spec.Target.ExistingCluster
	c := &kurav1alpha1.MySQLCluster{}
	if err := r.Client.Get(ctx, types.NamespacedName{Namespace: rs.Namespace, Name: name}, c); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, &bootstrapRefusal{reason: "ClusterNotFound", message: fmt.Sprintf("spec.target.existingCluster: MySQLCluster %q not found in namespace %s; name an existing cluster, or restore into a new one with spec.target.newCluster", name, rs.Namespace)}, nil
		}
		return nil, nil, fmt.Errorf("failed to get MySQLCluster %s: %w", name, err)
	}
	switch {
	case !c.DeletionTimestamp.IsZero():
		return nil, &bootstrapRefusal{reason: "ClusterDeleting", message: fmt.Sprintf("spec.target.existingCluster: MySQLCluster %q is being deleted; restore into a new cluster with spec.target.newCluster", name)}, nil
	case c.Spec.Paused:
		return nil, &bootstrapRefusal{reason: "ClusterPaused", message: fmt.Sprintf("spec.target.existingCluster: MySQLCluster %q is paused (spec.paused); an in-place restore stops and restarts its instances: unpause it, then create the Restore again", name)}, nil
	}
	if other, err := r.otherInPlace(ctx, rs, c); err != nil || other != "" {
		if err != nil {
			return nil, nil, err
		}
		return nil, &bootstrapRefusal{reason: "RestoreInProgress", message: fmt.Sprintf("spec.target.existingCluster: MySQLCluster %q is in Restore %q, which is running or still keeps volumes; wait for it, or confirm it (annotation %s=true) or roll it back, then create this Restore again", name, other, contract.AnnotationConfirm)}, nil
	}
	b, refusal, err := r.completedBackup(ctx, rs)
	if err != nil || refusal != nil {
		return nil, refusal, err
	}
	if b.Spec.Cluster != c.Name {
		return nil, &bootstrapRefusal{reason: "BackupOfAnotherCluster", message: fmt.Sprintf("spec.backup: Backup %q is of cluster %q, not %q; an in-place restore takes a backup of the cluster itself (the data holds its accounts): restore it into a new cluster with spec.target.newCluster", b.Name, b.Spec.Cluster, c.Name)}, nil
	}
	if f := checkBootstrapBackup(b, builder.Engine(c), "spec.backup"); f != nil {
		return nil, f, nil
	}
	if f := checkRecoverable(b, c, rs.Spec.PointInTime); f != nil {
		return nil, f, nil
	}
	return c, nil, nil
}

// otherInPlace names another in-place Restore of cluster c that is not settled: running, or
// keeping volumes (after its switch, until they are deleted), or the cluster's fence.
func (r *RestoreReconciler) otherInPlace(ctx context.Context, rs *kurav1alpha1.Restore, c *kurav1alpha1.MySQLCluster) (string, error) {
	if f := c.Annotations[contract.AnnotationRestoreFence]; f != "" && f != rs.Name {
		return f, nil
	}
	var list kurav1alpha1.RestoreList
	if err := r.Client.List(ctx, &list, client.InNamespace(rs.Namespace)); err != nil {
		return "", fmt.Errorf("failed to list Restores: %w", err)
	}
	for _, o := range list.Items {
		ip := o.Status.InPlace
		if o.Name == rs.Name || o.Spec.Target.ExistingCluster != c.Name || ip == nil {
			continue
		}
		settled := ip.Step == stepConfirmed || ip.KeptVolumesDeleted || !ip.Switched && (ip.Step == stepRolledBack || o.Status.Phase == kurav1alpha1.RestoreFailed)
		if !settled {
			return o.Name, nil
		}
	}
	return "", nil
}

// checkRecoverable refuses a point in time the cluster's archive cannot reach, as far as its
// status tells, before anything is touched; kura init's plan checks the pieces themselves.
func checkRecoverable(b *kurav1alpha1.Backup, c *kurav1alpha1.MySQLCluster, pit *kurav1alpha1.PointInTime) *bootstrapRefusal {
	if pit == nil {
		return nil
	}
	refuse := func(format string, args ...any) *bootstrapRefusal {
		return &bootstrapRefusal{reason: "TargetNotRecoverable", message: fmt.Sprintf(format, args...)}
	}
	a := c.Status.BinlogArchive
	switch {
	case c.Spec.BinlogArchive == nil:
		return refuse("spec.pointInTime: MySQLCluster %q has no binary log archive (spec.binlogArchive), so nothing can be replayed after the backup; drop spec.pointInTime to restore the backup's point", c.Name)
	case a != nil && a.Gaps > 0:
		return refuse("spec.pointInTime: the binary log archive of %q has %d gap(s) (status.binlogArchive.gaps), so a replay could skip transactions; drop spec.pointInTime, or take a new backup and restore that", c.Name, a.Gaps)
	case pit.Time == nil:
		return nil
	case b.Status.SnapshotTime != nil && pit.Time.Before(b.Status.SnapshotTime):
		return refuse("spec.pointInTime.time: %s is before Backup %q's point (%s); name an older backup", pit.Time.UTC().Format(time.RFC3339), b.Name, b.Status.SnapshotTime.UTC().Format(time.RFC3339))
	case a == nil || a.LastRecoverableTime == nil:
		return refuse("spec.pointInTime.time: the binary log archive of %q reports no recoverable range yet (status.binlogArchive); wait until it does, or drop spec.pointInTime", c.Name)
	case pit.Time.After(a.LastRecoverableTime.Time):
		return refuse("spec.pointInTime.time: %s is after the newest recoverable moment of %q's archive (%s); name an earlier time", pit.Time.UTC().Format(time.RFC3339), c.Name, a.LastRecoverableTime.UTC().Format(time.RFC3339))
	}
	return nil
}

// switchSets switches the fenced, stopped cluster between volume sets: to the Restore's new
// set, or back to its old one (back). The volumes left are labelled kept-by-restore (and the
// ones returned to lose the label), the clustering loop's records of the instances are
// cleared (they describe the other set's data; saved first in status.inPlace.previousRecords)
// or, on the way back, the old set's saved records put back, and the cluster is unfenced on
// the set.
func (r *RestoreReconciler) switchSets(ctx context.Context, rs *kurav1alpha1.Restore, c *kurav1alpha1.MySQLCluster, back bool) (ctrl.Result, error) {
	ip := rs.Status.InPlace
	leave, enter := ip.FromVolumeSet, ip.ToVolumeSet
	var bootstrap *string
	if back {
		leave, enter = enter, leave
		if ip.FromBootstrap != "" {
			bootstrap = &ip.FromBootstrap
		}
	} else {
		raw, err := json.Marshal(kurav1alpha1.BootstrapSpec{Backup: rs.Spec.Backup, PointInTime: rs.Spec.PointInTime.DeepCopy()})
		if err != nil {
			return ctrl.Result{}, fmt.Errorf("failed to encode the bootstrap: %w", err)
		}
		bootstrap = ptrTo(string(raw))
	}
	kept, err := r.labelClaims(ctx, c, leave, rs.Name)
	if err != nil {
		return ctrl.Result{}, err
	}
	if _, err := r.labelClaims(ctx, c, enter, ""); err != nil {
		return ctrl.Result{}, err
	}
	if !switchedTo(c, enter) {
		var put *kurav1alpha1.ClusteringRecords
		if back {
			put = recordsToPutBack(ip.PreviousRecords, enter, c.Status.Term)
		} else if ip.PreviousRecords == nil {
			// Saved before they are cleared: a pass that stops in between finds them saved.
			// Read from the API server: the cache may not hold the loop's last record yet.
			fresh := &kurav1alpha1.MySQLCluster{}
			if err := r.reader().Get(ctx, client.ObjectKeyFromObject(c), fresh); err != nil {
				return ctrl.Result{}, fmt.Errorf("failed to get MySQLCluster %s: %w", c.Name, err)
			}
			if saved := savedRecords(fresh, leave); saved != nil {
				st := rs.Status.DeepCopy()
				st.InPlace.PreviousRecords = saved
				if err := r.writeStatus(ctx, rs, *st); err != nil {
					return ctrl.Result{}, err
				}
				rs.Status = *st
			}
		}
		if err := r.setClusteringRecords(ctx, c, put); err != nil {
			return ctrl.Result{}, err
		}
		set := &enter
		if enter == builder.VolumeData {
			set = nil
		}
		if err := r.patchClusterAnnotations(ctx, c, map[string]*string{contract.AnnotationVolumeSet: set, contract.AnnotationBootstrap: bootstrap,
			contract.AnnotationRestoreFence: nil}); err != nil {
			return ctrl.Result{}, err
		}
		r.Recorder.Emit(rs, events.Normal, events.VolumeSetSwitched, "%s switched from volume set %s to %s; kept: %s", c.Name, leave, enter, orDefault(strings.Join(kept, ", "), "no volume"))
	}
	if back {
		return r.rolledBack(ctx, rs, kept, fmt.Sprintf("rolled back: %s runs on volume set %s again", c.Name, enter))
	}
	st := rs.Status.DeepCopy()
	st.InPlace.Step, st.InPlace.Switched, st.InPlace.KeptVolumes = stepRestoring, true, kept
	st.InPlace.Hint = fmt.Sprintf("to go back to the old volumes: kubectl annotate restore %s %s=true", rs.Name, contract.AnnotationRollback)
	st.Message = fmt.Sprintf("%s switched to volume set %s; its first instance restores Backup %q (%s); the old volumes are kept", c.Name, enter, rs.Spec.Backup, targetWords(rs.Spec.PointInTime))
	return ctrl.Result{RequeueAfter: 2 * time.Second}, r.writeStatus(ctx, rs, *st)
}

// rolledBack records a rollback: the cluster is back on its old volumes, and kept (the
// restored set's, if the switch happened) wait for confirmation or expiry.
func (r *RestoreReconciler) rolledBack(ctx context.Context, rs *kurav1alpha1.Restore, kept []string, msg string) (ctrl.Result, error) {
	st := rs.Status.DeepCopy()
	now := metav1.NewTime(r.now())
	st.Phase, st.CompletionTime, st.InPlace.Step, st.InPlace.KeptVolumes = kurav1alpha1.RestoreRolledBack, &now, stepRolledBack, kept
	st.InPlace.DeleteKeptVolumesAfter, st.InPlace.Hint = nil, ""
	if st.InPlace.Switched && len(kept) > 0 {
		after := metav1.NewTime(now.Add(keepFor(rs)))
		st.InPlace.DeleteKeptVolumesAfter = &after
		st.InPlace.Hint = fmt.Sprintf("the restored volumes (%s) are deleted at %s, or at once with kubectl annotate restore %s %s=true",
			strings.Join(kept, ", "), after.UTC().Format(time.RFC3339), rs.Name, contract.AnnotationConfirm)
	}
	st.Message = msg
	if err := r.writeStatus(ctx, rs, *st); err != nil {
		return ctrl.Result{}, err
	}
	r.Recorder.Emit(rs, events.Normal, events.RestoreRolledBack, "%s", msg)
	if st.InPlace.DeleteKeptVolumesAfter != nil {
		return ctrl.Result{RequeueAfter: keepFor(rs)}, nil
	}
	return ctrl.Result{}, nil
}

// followInPlace copies the new set's bootstrap progress into the Restore's message.
func (r *RestoreReconciler) followInPlace(ctx context.Context, rs *kurav1alpha1.Restore, c *kurav1alpha1.MySQLCluster) (ctrl.Result, error) {
	msg := fmt.Sprintf("waiting for %s's first instance to restore Backup %q into volume set %s", c.Name, rs.Spec.Backup, rs.Status.InPlace.ToVolumeSet)
	if bs := c.Status.Bootstrap; bs != nil && orDefault(bs.VolumeSet, builder.VolumeData) == rs.Status.InPlace.ToVolumeSet {
		msg = bs.Message
		if bs.Phase == kurav1alpha1.BootstrapRestored {
			msg = fmt.Sprintf("%s restored up to GTID %s; waiting for it to be available", c.Name, bs.GTIDReached)
		}
	}
	if msg == rs.Status.Message {
		return ctrl.Result{RequeueAfter: 5 * time.Second}, nil
	}
	st := rs.Status
	st.Message = msg
	return ctrl.Result{RequeueAfter: 5 * time.Second}, r.writeStatus(ctx, rs, st)
}

// completeInPlace completes a restore whose new set is restored (the first instance verified
// the GTID set reached against the plan) and open, and starts the kept volumes' clock.
func (r *RestoreReconciler) completeInPlace(ctx context.Context, rs *kurav1alpha1.Restore, c *kurav1alpha1.MySQLCluster) (ctrl.Result, error) {
	bs := c.Status.Bootstrap
	st := rs.Status.DeepCopy()
	now := metav1.NewTime(r.now())
	after := metav1.NewTime(now.Add(keepFor(rs)))
	st.Phase, st.CompletionTime, st.RestoreOutcome = kurav1alpha1.RestoreCompleted, &now, bs.RestoreOutcome
	st.InPlace.Step, st.InPlace.DeleteKeptVolumesAfter = stepRestored, &after
	st.InPlace.Hint = fmt.Sprintf("the old volumes (%s) are deleted at %s, or at once with kubectl annotate restore %s %s=true; to go back to them: kubectl annotate restore %s %s=true",
		strings.Join(st.InPlace.KeptVolumes, ", "), after.UTC().Format(time.RFC3339), rs.Name, contract.AnnotationConfirm, rs.Name, contract.AnnotationRollback)
	st.Message = fmt.Sprintf("%s restored in place up to GTID %s and is available; %s", c.Name, bs.GTIDReached, st.InPlace.Hint)
	meta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: kurav1alpha1.ConditionComplete, Status: metav1.ConditionTrue,
		ObservedGeneration: rs.Generation, Reason: "RestoreCompleted", Message: st.Message})
	if err := r.writeStatus(ctx, rs, *st); err != nil {
		return ctrl.Result{}, err
	}
	r.Recorder.Emit(rs, events.Normal, events.RestoreCompleted, "%s", st.Message)
	r.Recorder.Emit(rs, events.Normal, events.RestoreVolumesKept, "%s", st.InPlace.Hint)
	return ctrl.Result{RequeueAfter: keepFor(rs)}, nil
}

// deleteKept deletes the volumes the Restore kept: confirmed, or keepOldVolumesFor passed.
// Only PVCs that still carry this Restore's kept-by-restore label are deleted.
func (r *RestoreReconciler) deleteKept(ctx context.Context, rs *kurav1alpha1.Restore) (ctrl.Result, error) {
	var pvcs corev1.PersistentVolumeClaimList
	if err := r.Client.List(ctx, &pvcs, client.InNamespace(rs.Namespace), client.MatchingLabels{contract.LabelKeptByRestore: rs.Name}); err != nil {
		return ctrl.Result{}, fmt.Errorf("failed to list PVCs: %w", err)
	}
	for i := range pvcs.Items {
		if err := r.Client.Delete(ctx, &pvcs.Items[i]); err != nil && !apierrors.IsNotFound(err) {
			return ctrl.Result{}, fmt.Errorf("failed to delete PVC %s: %w", pvcs.Items[i].Name, err)
		}
	}
	st := rs.Status.DeepCopy()
	why := "confirmed"
	if rs.Annotations[contract.AnnotationConfirm] != "true" {
		why = "kept for " + keepFor(rs).String()
	}
	st.InPlace.KeptVolumesDeleted, st.InPlace.Hint = true, ""
	if st.InPlace.Step == stepRestored {
		st.InPlace.Step = stepConfirmed
	}
	msg := fmt.Sprintf("the kept volumes (%s) are deleted (%s)", strings.Join(st.InPlace.KeptVolumes, ", "), why)
	st.Message = msg
	if err := r.writeStatus(ctx, rs, *st); err != nil {
		return ctrl.Result{}, err
	}
	r.Recorder.Emit(rs, events.Normal, events.RestoreVolumesDeleted, "%s", msg)
	return ctrl.Result{}, nil
}

// labelClaims sets (restore != "") or removes the kept-by-restore label on the PVCs of
// volume set set, and returns their names.
func (r *RestoreReconciler) labelClaims(ctx context.Context, c *kurav1alpha1.MySQLCluster, set, restore string) ([]string, error) {
	var pvcs corev1.PersistentVolumeClaimList
	if err := r.Client.List(ctx, &pvcs, client.InNamespace(c.Namespace), client.MatchingLabels(builder.SelectorLabels(c))); err != nil {
		return nil, fmt.Errorf("failed to list PVCs: %w", err)
	}
	var names []string
	for i := range pvcs.Items {
		pvc := &pvcs.Items[i]
		if !strings.HasPrefix(pvc.Name, builder.ClaimPrefix(c, set)) || !isOrdinal(strings.TrimPrefix(pvc.Name, builder.ClaimPrefix(c, set))) {
			continue
		}
		names = append(names, pvc.Name)
		if pvc.Labels[contract.LabelKeptByRestore] == restore {
			continue
		}
		patch := client.MergeFrom(pvc.DeepCopy())
		if restore == "" {
			delete(pvc.Labels, contract.LabelKeptByRestore)
		} else {
			pvc.Labels[contract.LabelKeptByRestore] = restore
		}
		if err := r.Client.Patch(ctx, pvc, patch); err != nil {
			return nil, fmt.Errorf("failed to label PVC %s: %w", pvc.Name, err)
		}
	}
	sort.Strings(names)
	return names, nil
}

func isOrdinal(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// setClusteringRecords replaces the clustering loop's records of the instances in the
// cluster's status (the recorded primary, per-instance GTID sets, re-clones, an open
// asynchronous window): they describe the data of the set being left. With put nil they are
// cleared, and the loop, stopped by the fence, starts again on the other set from nothing, as
// on a new cluster (instance 0 becomes the primary); a rollback puts back the old set's saved
// records (recordsToPutBack), so the loop reopens its recorded primary under its reopen
// guards. The term and the history are kept: the term never goes back. A JSON merge patch:
// the fields belong to the loop's field manager.
func (r *RestoreReconciler) setClusteringRecords(ctx context.Context, c *kurav1alpha1.MySQLCluster, put *kurav1alpha1.ClusteringRecords) error {
	patch, err := recordsPatch(c, put)
	if err != nil {
		return err
	}
	if err := r.Client.Status().Patch(ctx, c, client.RawPatch(types.MergePatchType, patch)); err != nil {
		return fmt.Errorf("failed to set the clustering records of MySQLCluster %s: %w", c.Name, err)
	}
	return nil
}

// savedRecords are the clustering records of c's status, of volume set set, to save before
// they are cleared; nil when the loop recorded nothing.
func savedRecords(c *kurav1alpha1.MySQLCluster, set string) *kurav1alpha1.ClusteringRecords {
	st := c.Status
	if st.CurrentPrimaryIndex == nil && len(st.Instances) == 0 && st.AsynchronousWindow == nil {
		return nil
	}
	rec := &kurav1alpha1.ClusteringRecords{VolumeSet: set, Term: st.Term, CurrentPrimary: st.CurrentPrimary, AsynchronousWindow: st.AsynchronousWindow.DeepCopy()}
	if p := st.CurrentPrimaryIndex; p != nil {
		rec.CurrentPrimaryIndex = ptrTo(*p)
	}
	for _, in := range st.Instances {
		rec.Instances = append(rec.Instances, kurav1alpha1.RecordedInstance{Name: in.Name, GTIDExecuted: in.GTIDExecuted, ErrantGTIDs: in.ErrantGTIDs})
	}
	return rec
}

// recordsToPutBack decides whether a rollback to volume set enter puts saved back: only the
// records of that very set (they describe its volumes as they were fenced; nothing ran on
// them since), and only under a term no lower than theirs (the term is the loop's fencing
// token and never goes back; the current one is kept). Otherwise the records stay cleared.
func recordsToPutBack(saved *kurav1alpha1.ClusteringRecords, enter string, term int64) *kurav1alpha1.ClusteringRecords {
	if saved == nil || saved.VolumeSet != enter || term < saved.Term {
		return nil
	}
	return saved
}

// recordsPatch is the status merge patch that sets the clustering records to put, or clears
// them (put nil). The term is not part of it.
func recordsPatch(c *kurav1alpha1.MySQLCluster, put *kurav1alpha1.ClusteringRecords) ([]byte, error) {
	st := map[string]any{"currentPrimaryIndex": nil, "currentPrimary": nil, "keepInstances": nil, "instances": nil, "reclones": nil, "asynchronousWindow": nil}
	if put != nil {
		if put.CurrentPrimaryIndex != nil {
			st["currentPrimaryIndex"] = *put.CurrentPrimaryIndex
		}
		if put.CurrentPrimary != "" {
			st["currentPrimary"] = put.CurrentPrimary
		}
		if put.AsynchronousWindow != nil {
			st["asynchronousWindow"] = put.AsynchronousWindow
		}
		var ins []kurav1alpha1.InstanceStatus
		for _, in := range put.Instances {
			ins = append(ins, kurav1alpha1.InstanceStatus{Name: in.Name, Role: kurav1alpha1.RoleUnknown, GTIDExecuted: in.GTIDExecuted, ErrantGTIDs: in.ErrantGTIDs,
				Reason: fmt.Sprintf("recorded before Restore %s switched %s away from volume set %s; not observed since", c.Annotations[contract.AnnotationRestoreFence], c.Name, put.VolumeSet)})
		}
		if len(ins) > 0 {
			st["instances"] = ins
		}
	}
	raw, err := json.Marshal(map[string]any{"status": st})
	if err != nil {
		return nil, fmt.Errorf("failed to encode the clustering records: %w", err)
	}
	return raw, nil
}

// patchClusterAnnotations sets (non-nil) or removes (nil) annotations of the cluster.
func (r *RestoreReconciler) patchClusterAnnotations(ctx context.Context, c *kurav1alpha1.MySQLCluster, set map[string]*string) error {
	ann := map[string]any{}
	for k, v := range set {
		if v == nil {
			ann[k] = nil
		} else {
			ann[k] = *v
		}
	}
	raw, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": ann}})
	if err != nil {
		return fmt.Errorf("failed to encode annotations: %w", err)
	}
	if err := r.Client.Patch(ctx, c, client.RawPatch(types.MergePatchType, raw)); err != nil {
		return fmt.Errorf("failed to annotate MySQLCluster %s: %w", c.Name, err)
	}
	return nil
}

// keepFor is spec.keepOldVolumesFor.
func keepFor(rs *kurav1alpha1.Restore) time.Duration {
	if d := rs.Spec.KeepOldVolumesFor; d != nil && d.Duration > 0 {
		return d.Duration
	}
	return defaultKeepOldVolumes
}

func ptrTo[T any](v T) *T { return &v }
