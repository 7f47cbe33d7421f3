package controllers

import (
	"context"
	"fmt"
	"sort"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/robfig/cron/v3"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/internal/apply"
	"github.com/kura-db/kura/internal/builder"
	"github.com/kura-db/kura/internal/contract"
	"github.com/kura-db/kura/internal/events"
)

// cronParser accepts the five standard fields and the @hourly/@daily/... descriptors, the
// same syntax as a Kubernetes CronJob.
var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// ParseSchedule checks a BackupSchedule's schedule and time zone and returns the next run
// after now. Errors name the field and say how to fix it.
func ParseSchedule(schedule, timeZone string, now time.Time) (time.Time, error) {
	loc := time.UTC
	if timeZone != "" {
		l, err := time.LoadLocation(timeZone)
		if err != nil {
			return time.Time{}, fmt.Errorf("spec.timeZone: %q is not a known IANA time zone (for example \"Europe/Paris\")", timeZone)
		}
		loc = l
	}
	s, err := cronParser.Parse(schedule)
	if err != nil {
		return time.Time{}, fmt.Errorf("spec.schedule: %q is not a valid cron expression (%v); use five fields \"minute hour day-of-month month day-of-week\", e.g. \"0 3 * * *\", or a descriptor such as \"@daily\"", schedule, err)
	}
	next := s.Next(now.In(loc))
	if next.IsZero() {
		return time.Time{}, fmt.Errorf("spec.schedule: %q never fires", schedule)
	}
	return next, nil
}

// BackupScheduleReconciler keeps a BackupSchedule's CronJob (and the identity it creates
// Backups with) in place, reports the schedule in Ready, and applies retention after
// backups complete.
type BackupScheduleReconciler struct {
	Client   client.Client
	Options  builder.Options
	Recorder events.Recorder
	Now      func() time.Time
}

// +kubebuilder:rbac:groups=kura.dev,resources=backupschedules,verbs=get;list;watch
// +kubebuilder:rbac:groups=kura.dev,resources=backupschedules/status,verbs=patch
// +kubebuilder:rbac:groups=kura.dev,resources=backupschedules/finalizers,verbs=update
// +kubebuilder:rbac:groups=kura.dev,resources=backups,verbs=get;list;watch;create;delete
// +kubebuilder:rbac:groups=batch,resources=cronjobs,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups="",resources=serviceaccounts,verbs=get;list;watch;create;patch
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=roles;rolebindings,verbs=get;list;watch;create;patch

// scheduleStatus is the status this reconciler writes.
type scheduleStatus struct {
	ObservedGeneration   int64              `json:"observedGeneration"`
	Conditions           []metav1.Condition `json:"conditions"`
	NextScheduleTime     *metav1.Time       `json:"nextScheduleTime,omitempty"`
	LastScheduleTime     *metav1.Time       `json:"lastScheduleTime,omitempty"`
	LastSuccessfulBackup string             `json:"lastSuccessfulBackup,omitempty"`
}

// Reconcile parses the schedule, applies the CronJob, prunes and sets the status.
func (r *BackupScheduleReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	bs := &kurav1alpha1.BackupSchedule{}
	if err := r.Client.Get(ctx, req.NamespacedName, bs); err != nil {
		if apierrors.IsNotFound(err) {
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, fmt.Errorf("failed to get BackupSchedule: %w", err)
	}
	now := time.Now()
	if r.Now != nil {
		now = r.Now()
	}
	cond := metav1.Condition{Type: kurav1alpha1.ConditionReady, ObservedGeneration: bs.Generation}
	status := scheduleStatus{ObservedGeneration: bs.Generation}
	next, err := ParseSchedule(bs.Spec.Schedule, bs.Spec.TimeZone, now)
	switch {
	case err != nil:
		cond.Status, cond.Reason, cond.Message = metav1.ConditionFalse, "InvalidSchedule", err.Error()
		if c := meta.FindStatusCondition(bs.Status.Conditions, cond.Type); c == nil || c.Message != cond.Message {
			r.Recorder.Emit(bs, events.Warning, events.ScheduleInvalid, "%v", err)
		}
		// No CronJob runs a schedule that does not parse.
		cj := &batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Namespace: bs.Namespace, Name: builder.BackupScheduleName(bs)}}
		if err := r.Client.Delete(ctx, cj); err != nil && !apierrors.IsNotFound(err) {
			return ctrl.Result{}, fmt.Errorf("failed to delete CronJob %s: %w", cj.Name, err)
		}
	default:
		if err := r.applyCronJob(ctx, bs); err != nil {
			return ctrl.Result{}, err
		}
		if bs.Spec.Suspend {
			cond.Status, cond.Reason, cond.Message = metav1.ConditionFalse, "Suspended", "spec.suspend is true: no new backups are created"
		} else {
			cond.Status, cond.Reason, cond.Message = metav1.ConditionTrue, "ScheduleValid", fmt.Sprintf("next backup at %s", next.UTC().Format(time.RFC3339))
			status.NextScheduleTime = &metav1.Time{Time: next}
		}
	}
	cj := &batchv1.CronJob{}
	if err := r.Client.Get(ctx, types.NamespacedName{Namespace: bs.Namespace, Name: builder.BackupScheduleName(bs)}, cj); err == nil {
		status.LastScheduleTime = cj.Status.LastScheduleTime
	}
	last, err := r.retain(ctx, bs, now)
	if err != nil {
		return ctrl.Result{}, err
	}
	status.LastSuccessfulBackup = last
	conds := append([]metav1.Condition(nil), bs.Status.Conditions...)
	meta.SetStatusCondition(&conds, cond)
	status.Conditions = []metav1.Condition{*meta.FindStatusCondition(conds, cond.Type)}
	if err := apply.Status(ctx, r.Client, bs, status, StatusOwner); err != nil {
		return ctrl.Result{}, err
	}
	if status.NextScheduleTime != nil {
		return ctrl.Result{RequeueAfter: time.Until(next) + time.Second}, nil
	}
	return ctrl.Result{}, nil
}

// applyCronJob applies the CronJob and its identity, owned by the schedule.
func (r *BackupScheduleReconciler) applyCronJob(ctx context.Context, bs *kurav1alpha1.BackupSchedule) error {
	sa, role, binding := builder.BackupScheduleRBAC(bs)
	for _, obj := range []client.Object{sa, role, binding, builder.BackupScheduleCronJob(bs, r.Options)} {
		if err := controllerutil.SetControllerReference(bs, obj, r.Client.Scheme()); err != nil {
			return fmt.Errorf("failed to own %s: %w", obj.GetName(), err)
		}
		if _, err := apply.Object(ctx, r.Client, obj, contract.FieldOwner); err != nil {
			return err
		}
	}
	return nil
}

// retain deletes the Backups retention drops (their finalizer deletes the stored data) and
// returns the newest completed one.
func (r *BackupScheduleReconciler) retain(ctx context.Context, bs *kurav1alpha1.BackupSchedule, now time.Time) (string, error) {
	list := &kurav1alpha1.BackupList{}
	if err := r.Client.List(ctx, list, client.InNamespace(bs.Namespace), client.MatchingLabels{contract.LabelSchedule: bs.Name}); err != nil {
		return "", fmt.Errorf("failed to list the schedule's Backups: %w", err)
	}
	newest := ""
	var at time.Time
	live := list.Items[:0]
	for _, b := range list.Items {
		if !b.DeletionTimestamp.IsZero() {
			continue
		}
		live = append(live, b)
		if b.Status.Phase == kurav1alpha1.BackupCompleted && (newest == "" || pointOf(b).After(at)) {
			newest, at = b.Name, pointOf(b)
		}
	}
	for _, name := range Prune(live, bs.Spec.Retention, now) {
		b := &kurav1alpha1.Backup{ObjectMeta: metav1.ObjectMeta{Namespace: bs.Namespace, Name: name}}
		if err := r.Client.Delete(ctx, b); err != nil && !apierrors.IsNotFound(err) {
			return newest, fmt.Errorf("failed to delete Backup %s: %w", name, err)
		}
		r.Recorder.Emit(bs, events.Normal, events.BackupPruned, "deleted Backup %s and its stored data (retention)", name)
	}
	return newest, nil
}

// CreateScheduledBackup is what a schedule's CronJob runs (`kura backup create`): it creates
// the Backup of one run, named after the run's Job; a second attempt finds it and succeeds.
// With spec.verify, the Backup asks for verification when ScheduledVerify says it is its turn.
func CreateScheduledBackup(ctx context.Context, c client.Client, namespace, schedule, name string) error {
	bs := &kurav1alpha1.BackupSchedule{}
	if err := c.Get(ctx, types.NamespacedName{Namespace: namespace, Name: schedule}, bs); err != nil {
		return fmt.Errorf("failed to get BackupSchedule %s: %w", schedule, err)
	}
	verify := false
	if v := bs.Spec.Verify; v != nil {
		verify = true
		if v.Every != nil && *v.Every > 1 {
			list := &kurav1alpha1.BackupList{}
			if err := c.List(ctx, list, client.InNamespace(namespace), client.MatchingLabels{contract.LabelSchedule: schedule}); err != nil {
				return fmt.Errorf("failed to list the schedule's Backups: %w", err)
			}
			verify = ScheduledVerify(*v.Every, list.Items, name)
		}
	}
	if err := c.Create(ctx, builder.ScheduledBackup(bs, name, verify)); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("failed to create Backup %s: %w", name, err)
	}
	return nil
}

// ScheduledVerify says whether the schedule's new Backup name verifies, one in every: it does
// unless one of the schedule's every-1 newest other Backups asked for verification and has
// not failed. A failed Backup never verifies, so it does not use up the turn; retention that
// keeps fewer Backups than every makes verifications more frequent, never rarer; and a
// retried run (its Backup already exists) is not counted against itself.
func ScheduledVerify(every int32, backups []kurav1alpha1.Backup, name string) bool {
	others := make([]kurav1alpha1.Backup, 0, len(backups))
	for _, b := range backups {
		if b.Name != name {
			others = append(others, b)
		}
	}
	sort.Slice(others, func(i, j int) bool {
		ti, tj := others[i].CreationTimestamp.Time, others[j].CreationTimestamp.Time
		if !ti.Equal(tj) {
			return ti.After(tj)
		}
		return others[i].Name > others[j].Name
	})
	for i := 0; i < len(others) && i < int(every)-1; i++ {
		if others[i].Spec.Verify != nil && others[i].Status.Phase != kurav1alpha1.BackupFailed {
			return false
		}
	}
	return true
}

// SetupWithManager registers the reconciler; a Backup of a schedule changing wakes it
// (retention and the last successful backup).
func (r *BackupScheduleReconciler) SetupWithManager(mgr ctrl.Manager) error {
	toSchedule := handler.EnqueueRequestsFromMapFunc(func(_ context.Context, obj client.Object) []reconcile.Request {
		name := obj.GetLabels()[contract.LabelSchedule]
		if name == "" {
			return nil
		}
		return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: obj.GetNamespace(), Name: name}}}
	})
	return ctrl.NewControllerManagedBy(mgr).For(&kurav1alpha1.BackupSchedule{}).Owns(&batchv1.CronJob{}).
		Watches(&kurav1alpha1.Backup{}, toSchedule).Named("backupschedule").Complete(r)
}
