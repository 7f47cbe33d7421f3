package controllers

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	ctrlbuilder "sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	backuprun "github.com/kura-db/kura/backup"
	"github.com/kura-db/kura/backup/archive"
	"github.com/kura-db/kura/internal/apply"
	"github.com/kura-db/kura/internal/builder"
	"github.com/kura-db/kura/internal/contract"
	"github.com/kura-db/kura/internal/events"
)

// ArchiveOwner is the field owner of the archive's Deployment and of the status fields the
// BinlogArchiveReconciler writes: status.binlogArchive and the BinlogArchiving and
// PointInTimeReady conditions.
const ArchiveOwner = "kura-archive"

// BinlogArchiveReconciler runs the binary log archiver of every MySQLCluster with
// spec.binlogArchive (docs/backup.md, "Archive"): it owns the archiver's Deployment and turns
// the archiver's /status into the cluster's status.binlogArchive, conditions and events. It is
// a reconciler of its own so that the MySQLCluster reconciler's steps stay as they are.
type BinlogArchiveReconciler struct {
	Client   client.Client
	Options  builder.Options
	Recorder events.Recorder
	// Port is where archivers serve /status (default builder.ArchivePort).
	Port int
	// Interval is how often the status is read (default 10s).
	Interval time.Duration
	Now      func() time.Time
}

// +kubebuilder:rbac:groups=apps,resources=deployments,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",resources=pods,verbs=get;list;watch
// +kubebuilder:rbac:groups=kura.dev,resources=backups,verbs=get;list;watch

// SetupWithManager watches clusters and the archivers' Deployments.
func (r *BinlogArchiveReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		// Not on status changes: this reconciler writes status itself and polls the archiver.
		For(&kurav1alpha1.MySQLCluster{}, ctrlbuilder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Owns(&appsv1.Deployment{}).
		Named("binlogarchive").
		Complete(r)
}

// archiveStatusFields is the part of the cluster's status this reconciler owns.
type archiveStatusFields struct {
	BinlogArchive *kurav1alpha1.BinlogArchiveStatus `json:"binlogArchive,omitempty"`
	Conditions    []metav1.Condition                `json:"conditions,omitempty"`
}

// Reconcile applies or removes the archiver and reports its status.
func (r *BinlogArchiveReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	c := &kurav1alpha1.MySQLCluster{}
	if err := r.Client.Get(ctx, req.NamespacedName, c); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !c.DeletionTimestamp.IsZero() || c.Spec.Paused {
		return ctrl.Result{}, nil
	}
	if c.Spec.BinlogArchive == nil {
		return ctrl.Result{}, r.remove(ctx, c)
	}
	request, err := archiveRequest(c)
	if err != nil {
		return ctrl.Result{}, err
	}
	if _, err := apply.Object(ctx, r.Client, builder.ArchiveDeployment(c, request, r.Options), ArchiveOwner); err != nil {
		return ctrl.Result{}, err
	}
	st, fetchErr := r.fetch(ctx, c)
	var backups kurav1alpha1.BackupList
	if err := r.Client.List(ctx, &backups, client.InNamespace(c.Namespace)); err != nil {
		return ctrl.Result{}, fmt.Errorf("failed to list backups: %w", err)
	}
	now := r.now()
	out, conds := ArchiveStatus(c, st, fetchErr, backups.Items, now)
	r.emit(c, conds[0])
	for i := range conds {
		conds[i].ObservedGeneration = c.Generation
		conds[i].LastTransitionTime = metav1.NewTime(now)
		if old := meta.FindStatusCondition(c.Status.Conditions, conds[i].Type); old != nil && old.Status == conds[i].Status {
			conds[i].LastTransitionTime = old.LastTransitionTime
		}
	}
	if err := apply.Status(ctx, r.Client, c, archiveStatusFields{BinlogArchive: &out, Conditions: conds}, ArchiveOwner); err != nil && !apierrors.IsNotFound(err) {
		return ctrl.Result{}, err
	}
	interval := r.Interval
	if interval <= 0 {
		interval = 10 * time.Second
	}
	return ctrl.Result{RequeueAfter: interval}, nil
}

func (r *BinlogArchiveReconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// emit records an event when BinlogArchiving changes: a gap, any other reason to stop
// archiving (stalled, unreachable, no lease), and the return to health.
func (r *BinlogArchiveReconciler) emit(c *kurav1alpha1.MySQLCluster, cond metav1.Condition) {
	old := meta.FindStatusCondition(c.Status.Conditions, cond.Type)
	if old != nil && old.Status == cond.Status && old.Reason == cond.Reason {
		return
	}
	switch {
	case cond.Reason == reasonArchiveGap:
		r.Recorder.Emit(c, events.Warning, events.BinlogArchiveGap, "%s", cond.Message)
	case cond.Status == metav1.ConditionFalse && cond.Reason != reasonArchiveStarting:
		r.Recorder.Emit(c, events.Warning, events.BinlogArchiveStalled, "%s: %s", cond.Reason, cond.Message)
	case cond.Status == metav1.ConditionTrue && old != nil && old.Status == metav1.ConditionFalse:
		r.Recorder.Emit(c, events.Normal, events.BinlogArchiveHealthy, "%s", cond.Message)
	}
}

// remove deletes the archiver when spec.binlogArchive is gone and gives up its status fields.
func (r *BinlogArchiveReconciler) remove(ctx context.Context, c *kurav1alpha1.MySQLCluster) error {
	d := &appsv1.Deployment{}
	err := r.Client.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: builder.ArchiveName(c)}, d)
	if err == nil && metav1.IsControlledBy(d, c) {
		if err := r.Client.Delete(ctx, d); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("failed to delete the archiver: %w", err)
		}
	} else if client.IgnoreNotFound(err) != nil {
		return err
	}
	if c.Status.BinlogArchive == nil && meta.FindStatusCondition(c.Status.Conditions, kurav1alpha1.ConditionBinlogArchiving) == nil {
		return nil
	}
	return client.IgnoreNotFound(apply.Status(ctx, r.Client, c, archiveStatusFields{}, ArchiveOwner))
}

// fetch reads the status of the running archiver Pod.
func (r *BinlogArchiveReconciler) fetch(ctx context.Context, c *kurav1alpha1.MySQLCluster) (*archive.Status, error) {
	var pods corev1.PodList
	if err := r.Client.List(ctx, &pods, client.InNamespace(c.Namespace), client.MatchingLabels(builder.ArchiveLabels(c))); err != nil {
		return nil, err
	}
	var ip string
	for _, p := range pods.Items {
		if p.Status.Phase == corev1.PodRunning && p.Status.PodIP != "" && p.DeletionTimestamp.IsZero() {
			ip = p.Status.PodIP
		}
	}
	if ip == "" {
		return nil, errNoArchiver
	}
	port := r.Port
	if port == 0 {
		port = builder.ArchivePort
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	hreq, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+net.JoinHostPort(ip, strconv.Itoa(port))+"/status", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(hreq)
	if err != nil {
		return nil, fmt.Errorf("the archiver does not answer: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("the archiver answered %s", resp.Status)
	}
	var st archive.Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return nil, fmt.Errorf("the archiver's status does not parse: %w", err)
	}
	return &st, nil
}

var errNoArchiver = fmt.Errorf("no running archiver Pod yet")

// Reasons of the BinlogArchiving and PointInTimeReady conditions.
const (
	reasonArchiving       = "Archiving"
	reasonArchiveStarting = "Starting"
	reasonArchiveDown     = "Unreachable"
	reasonArchiveLease    = "WaitingForLease"
	reasonArchiveStalled  = "Stalled"
	reasonArchiveGap      = "Gap"
	reasonPITRReady       = "Ready"
	reasonPITRNoBackup    = "NoBackupAfterGap"
	reasonPITRNoArchive   = "NotArchiving"
)

// ArchiveStalledAfter is the lag at which the archive counts as stalled: many piece
// intervals, and never less than 30 s.
func ArchiveStalledAfter(c *kurav1alpha1.MySQLCluster) time.Duration {
	interval := 2 * time.Second
	if a := c.Spec.BinlogArchive; a != nil && a.PieceInterval != nil && a.PieceInterval.Duration > 0 {
		interval = a.PieceInterval.Duration
	}
	return max(30*time.Second, 10*interval)
}

// ArchiveStatus turns an archiver's status (nil with fetchErr when it could not be read) and
// the cluster's Backups into status.binlogArchive and the conditions BinlogArchiving (first)
// and PointInTimeReady (pure). A gap turns both False until a Backup consistent with a moment
// after the gap completes: point-in-time recovery starts from a backup and cannot cross a gap.
func ArchiveStatus(c *kurav1alpha1.MySQLCluster, st *archive.Status, fetchErr error, backups []kurav1alpha1.Backup, now time.Time) (kurav1alpha1.BinlogArchiveStatus, []metav1.Condition) {
	out := kurav1alpha1.BinlogArchiveStatus{}
	if old := c.Status.BinlogArchive; old != nil {
		out = *old.DeepCopy()
	}
	archiving := metav1.Condition{Type: kurav1alpha1.ConditionBinlogArchiving}
	pitr := metav1.Condition{Type: kurav1alpha1.ConditionPointInTimeReady, Status: metav1.ConditionFalse, Reason: reasonPITRNoArchive}
	var lastGap *archive.Gap
	switch {
	case st == nil && fetchErr == errNoArchiver:
		archiving.Status, archiving.Reason, archiving.Message = metav1.ConditionFalse, reasonArchiveStarting, "waiting for the archiver Pod "+builder.ArchiveName(c)
	case st == nil:
		archiving.Status, archiving.Reason, archiving.Message = metav1.ConditionFalse, reasonArchiveDown, fmt.Sprint(fetchErr)
	default:
		out.LastArchivedGTID, out.Gaps, out.LagSeconds = st.LastGTID, int32(len(st.Gaps)), int64(st.Lag(now).Seconds())
		if !st.LastEventTime.IsZero() {
			out.LastArchivedTime = &metav1.Time{Time: st.LastEventTime}
			out.LastRecoverableTime = &metav1.Time{Time: st.LastEventTime}
		}
		out.Message = st.LastError
		if w := st.ExpiryWarning(now); w != "" {
			out.Message = w
		}
		if n := len(st.Gaps); n > 0 {
			lastGap = &st.Gaps[n-1]
		}
		switch lag := st.Lag(now); {
		case !st.Holding:
			archiving.Status, archiving.Reason = metav1.ConditionFalse, reasonArchiveLease
			archiving.Message = "the archiver waits for the archive lease held by another archiver (it expires if that one is gone)"
		case lag > ArchiveStalledAfter(c):
			archiving.Status, archiving.Reason = metav1.ConditionFalse, reasonArchiveStalled
			archiving.Message = fmt.Sprintf("nothing stored for %s (threshold %s): %s", lag.Round(time.Second), ArchiveStalledAfter(c), orText(st.LastError, "no error reported"))
		default:
			archiving.Status, archiving.Reason = metav1.ConditionTrue, reasonArchiving
			archiving.Message = fmt.Sprintf("archived up to %s, %s behind", st.LastGTID, lag.Round(time.Second))
		}
	}
	// Backups consistent with a moment after the newest gap can be rolled forward.
	var usable, before []string
	var first *metav1.Time
	for _, b := range sortedBackups(c, backups) {
		t := b.Status.SnapshotTime
		if lastGap != nil && !t.After(lastGap.Time) {
			before = append(before, b.Name)
			continue
		}
		usable = append(usable, b.Name)
		if first == nil {
			first = t.DeepCopy()
		}
	}
	out.FirstRecoverableTime = first
	if lastGap != nil && len(usable) == 0 {
		msg := fmt.Sprintf("binary log %s; take a new Backup to make point-in-time recovery possible again", lastGap)
		if len(before) > 0 {
			msg += fmt.Sprintf(" (backups %s restore, but cannot be rolled forward past the gap)", strings.Join(before, ", "))
		}
		if archiving.Status == metav1.ConditionTrue {
			archiving.Status, archiving.Reason, archiving.Message = metav1.ConditionFalse, reasonArchiveGap, msg
		}
		pitr.Reason, pitr.Message = reasonPITRNoBackup, msg
		out.Message = msg
		out.FirstRecoverableTime = nil
		return out, []metav1.Condition{archiving, pitr}
	}
	switch {
	case archiving.Status != metav1.ConditionTrue:
		pitr.Message = "the binary log archive is not working: " + archiving.Message
	case first == nil:
		pitr.Reason, pitr.Message = "NoBackup", "no completed Backup of this cluster to start a point-in-time recovery from"
	default:
		pitr.Status, pitr.Reason = metav1.ConditionTrue, reasonPITRReady
		pitr.Message = fmt.Sprintf("recoverable from %s to %s", first.UTC().Format(time.RFC3339), out.LastRecoverableTime.UTC().Format(time.RFC3339))
	}
	return out, []metav1.Condition{archiving, pitr}
}

// sortedBackups are the cluster's completed Backups with a consistent point, oldest first.
func sortedBackups(c *kurav1alpha1.MySQLCluster, backups []kurav1alpha1.Backup) []kurav1alpha1.Backup {
	var out []kurav1alpha1.Backup
	for _, b := range backups {
		if b.Spec.Cluster == c.Name && b.Status.Phase == kurav1alpha1.BackupCompleted && b.Status.SnapshotTime != nil {
			out = append(out, b)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Status.SnapshotTime.Before(out[j].Status.SnapshotTime) })
	return out
}

func orText(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// archiveRequest is the archiver's --request: the lineage, every instance's address and the
// storage; no secrets.
func archiveRequest(c *kurav1alpha1.MySQLCluster) (string, error) {
	spec := c.Spec.BinlogArchive
	req := archive.Request{Namespace: c.Namespace, Cluster: c.Name, Lineage: builder.Lineage(c), ServerID: builder.ArchiveServerID,
		AgentPasswordFile: contract.BackupCredentialsDir + "/" + contract.BackupAgentPasswordKey,
		Storage:           storageConfig(spec.Storage), Listen: fmt.Sprintf(":%d", builder.ArchivePort)}
	for i := range builder.Replicas(c) {
		req.Sources = append(req.Sources, net.JoinHostPort(builder.InstanceHost(c, i), strconv.Itoa(contract.MySQLPort)))
	}
	if spec.PieceInterval != nil {
		req.PieceInterval = spec.PieceInterval.Duration.String()
	}
	if spec.PieceSizeMiB > 0 {
		req.PieceSize = int(spec.PieceSizeMiB) << 20
	}
	out, err := json.Marshal(req)
	if err != nil {
		return "", fmt.Errorf("failed to encode the archive request: %w", err)
	}
	return string(out), nil
}

// storageConfig is where a Pod built with the builder's storage volumes finds its storage.
func storageConfig(st kurav1alpha1.BackupStorage) backuprun.StorageConfig {
	var out backuprun.StorageConfig
	if s3 := st.S3; s3 != nil {
		loc := &backuprun.S3Location{Endpoint: s3.Endpoint, Region: s3.Region, Bucket: s3.Bucket, Prefix: s3.Prefix,
			PathStyle: s3.ForcePathStyle == nil || *s3.ForcePathStyle, CredentialsDir: contract.BackupS3CredentialsDir}
		if s3.CASecret != nil {
			loc.CAFile = contract.BackupS3CADir + "/" + contract.BackupS3CAFile
		}
		out.S3 = loc
	}
	if pvc := st.PVC; pvc != nil {
		out.Dir = &backuprun.DirLocation{Root: builder.BackupStorageRoot(pvc), Claim: pvc.ClaimName, SubPath: pvc.SubPath}
	}
	return out
}
