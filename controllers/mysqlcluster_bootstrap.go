package controllers

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	backuprun "github.com/kura-db/kura/backup"
	restorejob "github.com/kura-db/kura/backup/restore"
	"github.com/kura-db/kura/internal/builder"
	"github.com/kura-db/kura/internal/contract"
	"github.com/kura-db/kura/internal/events"
)

// bootstrapRefusal says why spec.bootstrap cannot be used (yet): the cluster's Reconciled
// condition and status.bootstrap say it, and nothing that runs the database is created.
type bootstrapRefusal struct {
	reason, message string
	// pending: the backup may still become usable (it is running).
	pending bool
}

// reconcileBootstrap resolves spec.bootstrap into the restore Job the first instance runs
// (docs/backup.md, "Restore") and writes it as the bootstrap ConfigMap. The ConfigMap is the
// record of the resolution: once it exists the Backup is not read again, so a Backup deleted
// after the cluster exists changes nothing. A Backup that is missing, not completed, of
// another engine or limited to some databases blocks the cluster before any other object is
// created. The step then reads what the first instance reported, and once it restored, takes
// the Job out of the ConfigMap.
func (r *MySQLClusterReconciler) reconcileBootstrap(ctx context.Context, p *pass) error {
	c := p.cluster
	if c.Spec.Bootstrap == nil {
		return nil
	}
	cm := &corev1.ConfigMap{}
	err := r.Client.Get(ctx, types.NamespacedName{Namespace: c.Namespace, Name: builder.BootstrapConfigMapName(c)}, cm)
	switch {
	case err == nil:
		var st kurav1alpha1.BackupStorage
		if err := json.Unmarshal([]byte(cm.Data[builder.BootstrapStorageKey]), &st); err != nil {
			return fmt.Errorf("ConfigMap %s holds no readable %s: %w", cm.Name, builder.BootstrapStorageKey, err)
		}
		p.bootstrapStorage = &st
		_, pending := cm.Data[builder.BootstrapJobKey]
		if !pending && currentBootstrap(c) == nil {
			// A volume set seeded earlier that the cluster is switched back to (an in-place
			// restore's rollback): its record says it is done.
			p.bootstrap = &kurav1alpha1.BootstrapStatus{Phase: kurav1alpha1.BootstrapRestored, Backup: c.Spec.Bootstrap.Backup, VolumeSet: builder.VolumeSet(c),
				Message: fmt.Sprintf("volume set %s was seeded from Backup %q earlier", builder.VolumeSet(c), c.Spec.Bootstrap.Backup)}
			return nil
		}
		p.bootstrap = r.observeBootstrap(ctx, c)
		if pending && p.bootstrap.Phase == kurav1alpha1.BootstrapRestored {
			// Restored: the Job goes, so that no instance ever restores again (an instance
			// that loses its volume later clones from the others).
			return r.apply(ctx, builder.BootstrapConfigMap(c, nil, []byte(cm.Data[builder.BootstrapStorageKey])))
		}
		return nil
	case !apierrors.IsNotFound(err):
		return fmt.Errorf("failed to get ConfigMap %s: %w", builder.BootstrapConfigMapName(c), err)
	}
	job, storage, refusal, err := r.resolveBootstrap(ctx, c)
	if err != nil {
		return err
	}
	if refusal != nil {
		p.bootstrapRefusal = refusal
		if cur := c.Status.Bootstrap; cur == nil || cur.Message != refusal.message {
			typ := events.Warning
			if refusal.pending {
				typ = events.Normal
			}
			r.Recorder.Emit(c, typ, events.BootstrapInvalid, "%s", refusal.message)
		}
		return &errBlocked{reason: refusal.reason, message: refusal.message}
	}
	jobJSON, err := json.Marshal(job)
	if err != nil {
		return fmt.Errorf("failed to encode the restore job: %w", err)
	}
	storageJSON, err := json.Marshal(storage)
	if err != nil {
		return fmt.Errorf("failed to encode the backup storage: %w", err)
	}
	if err := r.apply(ctx, builder.BootstrapConfigMap(c, jobJSON, storageJSON)); err != nil {
		return err
	}
	p.bootstrapStorage = &storage
	p.bootstrap = r.observeBootstrap(ctx, c)
	return nil
}

// resolveBootstrap checks spec.bootstrap's Backup and builds the restore Job from it.
func (r *MySQLClusterReconciler) resolveBootstrap(ctx context.Context, c *kurav1alpha1.MySQLCluster) (restorejob.Job, kurav1alpha1.BackupStorage, *bootstrapRefusal, error) {
	spec := c.Spec.Bootstrap
	b := &kurav1alpha1.Backup{}
	if err := r.Client.Get(ctx, types.NamespacedName{Namespace: c.Namespace, Name: spec.Backup}, b); err != nil {
		if apierrors.IsNotFound(err) {
			return restorejob.Job{}, kurav1alpha1.BackupStorage{}, &bootstrapRefusal{reason: "BootstrapBackupNotFound",
				message: fmt.Sprintf("spec.bootstrap.backup: Backup %q not found in namespace %s; create it, or name a completed Backup of this namespace", spec.Backup, c.Namespace)}, nil
		}
		return restorejob.Job{}, kurav1alpha1.BackupStorage{}, nil, fmt.Errorf("failed to get Backup %s: %w", spec.Backup, err)
	}
	if refusal := checkBootstrapBackup(b, builder.Engine(c), "spec.bootstrap.backup"); refusal != nil {
		return restorejob.Job{}, kurav1alpha1.BackupStorage{}, refusal, nil
	}
	lineage := b.Status.Lineage
	if lineage == "" {
		// A Backup taken before backups recorded their lineage: its cluster's UID, if the
		// cluster still exists.
		src := &kurav1alpha1.MySQLCluster{}
		err := r.Client.Get(ctx, types.NamespacedName{Namespace: c.Namespace, Name: b.Spec.Cluster}, src)
		switch {
		case apierrors.IsNotFound(err):
			return restorejob.Job{}, kurav1alpha1.BackupStorage{}, &bootstrapRefusal{reason: "BootstrapLineageUnknown",
				message: fmt.Sprintf("spec.bootstrap.backup: Backup %q does not record the lineage it is stored under (status.lineage) and its cluster %q is gone, so its objects cannot be found; name a Backup taken by this version of the operator", b.Name, b.Spec.Cluster)}, nil
		case err != nil:
			return restorejob.Job{}, kurav1alpha1.BackupStorage{}, nil, fmt.Errorf("failed to get MySQLCluster %s: %w", b.Spec.Cluster, err)
		}
		lineage = string(src.UID)
	}
	job := restorejob.Job{
		Storage: storageConfig(b.Spec.Storage),
		Source:  backuprun.Layout{Namespace: c.Namespace, Cluster: b.Spec.Cluster, Lineage: lineage},
		Backup:  b.Name,
		Target:  restorejob.TargetOf(spec.PointInTime),
		Engine:  builder.Engine(c),
	}
	return job, b.Spec.Storage, nil, nil
}

// checkBootstrapBackup refuses a Backup that cannot seed a cluster of engine: not completed,
// of another engine, or a logical backup of some databases only. field names the reference in
// messages.
func checkBootstrapBackup(b *kurav1alpha1.Backup, engine kurav1alpha1.Engine, field string) *bootstrapRefusal {
	switch b.Status.Phase {
	case kurav1alpha1.BackupCompleted:
	case kurav1alpha1.BackupFailed:
		return &bootstrapRefusal{reason: "BootstrapBackupFailed",
			message: fmt.Sprintf("%s: Backup %q failed (%s); name a completed Backup", field, b.Name, b.Status.Message)}
	default:
		return &bootstrapRefusal{reason: "BootstrapBackupNotCompleted", pending: true,
			message: fmt.Sprintf("%s: Backup %q is not completed yet (phase %s); the cluster is created once it completes", field, b.Name, orDefault(string(b.Status.Phase), "Pending"))}
	}
	if b.Status.Engine != "" && b.Status.Engine != engine {
		return &bootstrapRefusal{reason: "BootstrapEngineMismatch",
			message: fmt.Sprintf("%s: Backup %q is of a %s server and the cluster runs %s; restore it into a %s cluster (spec.engine)", field, b.Name, b.Status.Engine, engine, b.Status.Engine)}
	}
	if len(b.Spec.Databases) > 0 {
		return &bootstrapRefusal{reason: "BootstrapBackupPartial",
			message: fmt.Sprintf("%s: Backup %q holds only the databases %s (spec.databases), which cannot seed a cluster; name a backup of every database", field, b.Name, strings.Join(b.Spec.Databases, ", "))}
	}
	return nil
}

// bootstrapStatus is status.bootstrap after this pass: what the Bootstrap step observed, its
// refusal, or (when the step did not run: paused, or an error) the current one.
func bootstrapStatus(p *pass) *kurav1alpha1.BootstrapStatus {
	c := p.cluster
	switch {
	case c.Spec.Bootstrap == nil:
		return nil
	case p.bootstrap != nil:
		return p.bootstrap
	case p.bootstrapRefusal != nil:
		phase := kurav1alpha1.BootstrapFailed
		if p.bootstrapRefusal.pending {
			phase = kurav1alpha1.BootstrapPending
		}
		return &kurav1alpha1.BootstrapStatus{Phase: phase, Backup: c.Spec.Bootstrap.Backup, VolumeSet: builder.VolumeSet(c), Message: p.bootstrapRefusal.message}
	}
	return c.Status.Bootstrap
}

// currentBootstrap is status.bootstrap when it is about the cluster's current volume set
// (an in-place restore seeds a new set: the former set's record does not count).
func currentBootstrap(c *kurav1alpha1.MySQLCluster) *kurav1alpha1.BootstrapStatus {
	cur := c.Status.Bootstrap
	if cur == nil || orDefault(cur.VolumeSet, builder.VolumeData) != builder.VolumeSet(c) {
		return nil
	}
	return cur
}

// observeBootstrap reads what the first instance's kura-init reported as its termination
// message. Restored is final: a later restart of that instance does not restore again, and
// reports nothing.
func (r *MySQLClusterReconciler) observeBootstrap(ctx context.Context, c *kurav1alpha1.MySQLCluster) *kurav1alpha1.BootstrapStatus {
	cur := currentBootstrap(c)
	if cur != nil && cur.Phase == kurav1alpha1.BootstrapRestored {
		return cur
	}
	st := r.observeFirstInstance(ctx, c, cur)
	st.VolumeSet = builder.VolumeSet(c)
	return st
}

// observeFirstInstance is observeBootstrap's reading of the first instance's Pod.
func (r *MySQLClusterReconciler) observeFirstInstance(ctx context.Context, c *kurav1alpha1.MySQLCluster, cur *kurav1alpha1.BootstrapStatus) *kurav1alpha1.BootstrapStatus {
	spec := c.Spec.Bootstrap
	first := builder.PodName(c, 0)
	pod := &corev1.Pod{}
	if err := r.Client.Get(ctx, types.NamespacedName{Namespace: c.Namespace, Name: first}, pod); err != nil {
		if !apierrors.IsNotFound(err) && cur != nil {
			return cur
		}
		return &kurav1alpha1.BootstrapStatus{Phase: kurav1alpha1.BootstrapRestoring, Backup: spec.Backup,
			Message: fmt.Sprintf("waiting for Pod %s to restore Backup %q", first, spec.Backup)}
	}
	st := BootstrapFromPod(pod, spec.Backup)
	if cur == nil || cur.Phase != st.Phase {
		switch st.Phase {
		case kurav1alpha1.BootstrapRestored:
			r.Recorder.Emit(c, events.Normal, events.BootstrapRestored, "%s restored Backup %q up to GTID %s (%d transactions replayed)", first, spec.Backup, st.GTIDReached, st.Replayed)
		case kurav1alpha1.BootstrapFailed:
			r.Recorder.Emit(c, events.Warning, events.BootstrapFailed, "%s", st.Message)
		}
	}
	return st
}

// BootstrapFromPod reads the restore result the first instance's kura-init wrote as its
// termination message (backup/restorejob.Result): the current termination, else the last one
// (the container is restarted after a failure).
func BootstrapFromPod(pod *corev1.Pod, backupName string) *kurav1alpha1.BootstrapStatus {
	st := &kurav1alpha1.BootstrapStatus{Phase: kurav1alpha1.BootstrapRestoring, Backup: backupName,
		Message: fmt.Sprintf("%s is restoring Backup %q", pod.Name, backupName)}
	var term *corev1.ContainerStateTerminated
	retrying := false
	for _, cs := range pod.Status.InitContainerStatuses {
		if cs.Name != contract.ContainerKuraInit {
			continue
		}
		term = cs.State.Terminated
		if term == nil {
			term = cs.LastTerminationState.Terminated
			retrying = term != nil
		}
	}
	if term == nil {
		return st
	}
	msg := strings.TrimSpace(term.Message)
	res, err := restorejob.DecodeResult([]byte(msg))
	if err != nil && msg != "" {
		// FallbackToLogsOnError: kura-init failed before it could report; its log's tail.
		res, err = restorejob.Result{Error: lastLine(msg)}, nil
	}
	switch {
	case err != nil || (term.ExitCode == 0 && res.Plan.Backup == "" && res.Error == ""):
		st.Phase = kurav1alpha1.BootstrapFailed
		st.Message = fmt.Sprintf("%s's kura-init ended (exit code %d) without reporting a restore result; check that the operator and the kura image are of the same version, and see kubectl logs %s -c %s", pod.Name, term.ExitCode, pod.Name, contract.ContainerKuraInit)
		return st
	case res.Error != "" || term.ExitCode != 0:
		st.Phase = kurav1alpha1.BootstrapFailed
		st.Message = fmt.Sprintf("%s failed to restore Backup %q: %s", pod.Name, backupName, orDefault(res.Error, fmt.Sprintf("kura-init exited with code %d", term.ExitCode)))
		if retrying {
			st.Message += " (kura-init is being retried)"
		}
	default:
		st.Phase = kurav1alpha1.BootstrapRestored
		st.Message = fmt.Sprintf("%s restored Backup %q (%s)", pod.Name, backupName, orDefault(res.Plan.Target, "the backup's point"))
	}
	st.RestoreOutcome = outcomeOf(res)
	return st
}

// outcomeOf is the API's view of a restore result.
func outcomeOf(res restorejob.Result) kurav1alpha1.RestoreOutcome {
	o := kurav1alpha1.RestoreOutcome{GTIDReached: res.GTIDReached, Replayed: int64(res.Replayed),
		DurationMillis: res.DurationMS, SeedMillis: res.SeedMS, ReplayMillis: res.ReplayMS}
	if !res.TimeReached.IsZero() {
		o.TimeReached = &metav1.Time{Time: res.TimeReached}
	}
	if pl := res.Plan; pl.Backup != "" {
		o.Plan = &kurav1alpha1.RestorePlanSummary{Backup: pl.Backup, Method: pl.Method, BaseGTID: pl.BaseGTID,
			Pieces: int32(len(pl.Pieces)), Target: pl.Target, TargetGTID: pl.TargetGTID, Bytes: pl.Bytes}
		if !pl.BaseTime.IsZero() {
			o.Plan.BaseTime = &metav1.Time{Time: pl.BaseTime}
		}
	}
	return o
}

// bootstrapPodChanged passes updates of an instance Pod of a cluster with spec.bootstrap
// (its containers carry contract.EnvBootstrap) whose init containers' statuses changed: the
// restore result is there.
func bootstrapPodChanged(e event.UpdateEvent) bool {
	o, ok1 := e.ObjectOld.(*corev1.Pod)
	n, ok2 := e.ObjectNew.(*corev1.Pod)
	if !ok1 || !ok2 || !isBootstrapPod(n) {
		return false
	}
	ob, _ := json.Marshal(o.Status.InitContainerStatuses)
	nb, _ := json.Marshal(n.Status.InitContainerStatuses)
	return string(ob) != string(nb)
}

func isBootstrapPod(p *corev1.Pod) bool {
	for _, ctr := range p.Spec.InitContainers {
		if ctr.Name != contract.ContainerKuraInit {
			continue
		}
		for _, e := range ctr.Env {
			if e.Name == contract.EnvBootstrap {
				return true
			}
		}
	}
	return false
}

// clusterOfPod maps an instance Pod to its cluster (the kura.dev/cluster label).
func clusterOfPod(_ context.Context, o client.Object) []reconcile.Request {
	name := o.GetLabels()[contract.LabelCluster]
	if name == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: name}}}
}

const bootstrapBackupIndex = "spec.bootstrap.backup"

// clustersBootstrappedFrom maps a Backup to the clusters whose spec.bootstrap names it, so a
// Backup that completes (or appears) unblocks them at once.
func (r *MySQLClusterReconciler) clustersBootstrappedFrom(ctx context.Context, o client.Object) []reconcile.Request {
	return r.clustersIndexed(ctx, bootstrapBackupIndex, o)
}

// restoreDuration is a result's duration for messages.
func restoreDuration(ms int64) string {
	return (time.Duration(ms) * time.Millisecond).Round(time.Millisecond).String()
}
