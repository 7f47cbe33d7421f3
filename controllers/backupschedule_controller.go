package controllers

import (
	"context"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/robfig/cron/v3"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/internal/apply"
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

// BackupScheduleReconciler validates schedules and reports the next run.
type BackupScheduleReconciler struct {
	Client   client.Client
	Recorder events.Recorder
	Now      func() time.Time
}

// +kubebuilder:rbac:groups=kura.dev,resources=backupschedules,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=kura.dev,resources=backupschedules/status,verbs=get;update;patch

// Reconcile parses the schedule and sets the Ready condition.
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
	status := struct {
		ObservedGeneration int64              `json:"observedGeneration"`
		Conditions         []metav1.Condition `json:"conditions"`
		NextScheduleTime   *metav1.Time       `json:"nextScheduleTime,omitempty"`
	}{ObservedGeneration: bs.Generation}
	next, err := ParseSchedule(bs.Spec.Schedule, bs.Spec.TimeZone, now)
	switch {
	case err != nil:
		cond.Status, cond.Reason, cond.Message = metav1.ConditionFalse, "InvalidSchedule", err.Error()
		if c := meta.FindStatusCondition(bs.Status.Conditions, cond.Type); c == nil || c.Message != cond.Message {
			r.Recorder.Emit(bs, events.Warning, events.ScheduleInvalid, "%v", err)
		}
	case bs.Spec.Suspend:
		cond.Status, cond.Reason, cond.Message = metav1.ConditionFalse, "Suspended", "spec.suspend is true: no new backups are created"
	default:
		cond.Status, cond.Reason, cond.Message = metav1.ConditionTrue, "ScheduleValid", fmt.Sprintf("next backup at %s", next.UTC().Format(time.RFC3339))
		status.NextScheduleTime = &metav1.Time{Time: next}
	}
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

// SetupWithManager registers the reconciler.
func (r *BackupScheduleReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).For(&kurav1alpha1.BackupSchedule{}).Named("backupschedule").Complete(r)
}
