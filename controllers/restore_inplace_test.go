package controllers

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/internal/apply"
	"github.com/kura-db/kura/internal/builder"
	"github.com/kura-db/kura/internal/contract"
)

// Every transition of the in-place restore, and above all where the old data may go: only
// after the switch, once restored and open (or rolled back), on confirmation or expiry.
func TestDecideInPlace(t *testing.T) {
	cases := []struct {
		name string
		v    inPlaceView
		want inPlaceAction
	}{
		{"fencing, an instance still runs", inPlaceView{step: stepFencing, pods: 1}, actWait},
		{"fencing, every instance stopped", inPlaceView{step: stepFencing}, actSwitch},
		{"fencing, rolled back before the switch", inPlaceView{step: stepFencing, pods: 2, rollback: true}, actUnfence},
		{"restoring", inPlaceView{step: stepRestoring, switched: true, kept: true}, actWait},
		{"restored, not open yet", inPlaceView{step: stepRestoring, switched: true, kept: true, restored: true}, actWait},
		{"restored and open", inPlaceView{step: stepRestoring, switched: true, kept: true, restored: true, available: true}, actComplete},
		{"the new set's restore failed", inPlaceView{step: stepRestoring, switched: true, kept: true, broken: true}, actFail},
		{"restored to another GTID set than planned", inPlaceView{step: stepRestoring, switched: true, kept: true, restored: true, mismatch: true, available: true}, actFail},
		{"failed: a confirmation deletes nothing", inPlaceView{step: stepRestoring, failed: true, switched: true, kept: true, confirm: true, expired: true}, actNothing},
		{"failed: rolled back", inPlaceView{step: stepRestoring, failed: true, switched: true, kept: true, rollback: true}, actFenceBack},
		{"restoring: rolled back", inPlaceView{step: stepRestoring, switched: true, kept: true, rollback: true}, actFenceBack},
		{"restored: kept until expiry", inPlaceView{step: stepRestored, switched: true, kept: true}, actAwaitExpiry},
		{"restored: confirmed", inPlaceView{step: stepRestored, switched: true, kept: true, confirm: true}, actDeleteKept},
		{"restored: expired", inPlaceView{step: stepRestored, switched: true, kept: true, expired: true}, actDeleteKept},
		{"restored: rolled back wins over expiry", inPlaceView{step: stepRestored, switched: true, kept: true, expired: true, rollback: true}, actFenceBack},
		{"restored: volumes gone, no rollback", inPlaceView{step: stepRestored, switched: true, rollback: true}, actNothing},
		{"rolling back, an instance still runs", inPlaceView{step: stepRollingBack, switched: true, kept: true, pods: 1}, actWait},
		{"rolling back, every instance stopped", inPlaceView{step: stepRollingBack, switched: true, kept: true}, actSwitchBack},
		{"rolled back: restored set kept", inPlaceView{step: stepRolledBack, switched: true, kept: true}, actAwaitExpiry},
		{"rolled back: restored set confirmed", inPlaceView{step: stepRolledBack, switched: true, kept: true, confirm: true}, actDeleteKept},
		{"rolled back before the switch", inPlaceView{step: stepRolledBack, confirm: true}, actNothing},
		{"confirmed", inPlaceView{step: stepConfirmed, confirm: true}, actNothing},
	}
	for _, tc := range cases {
		if got := decideInPlace(tc.v); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}

func TestReachedPlan(t *testing.T) {
	plan := func(target, reached string) kurav1alpha1.RestoreOutcome {
		return kurav1alpha1.RestoreOutcome{GTIDReached: reached, Plan: &kurav1alpha1.RestorePlanSummary{TargetGTID: target}}
	}
	for _, tc := range []struct {
		o    kurav1alpha1.RestoreOutcome
		want bool
	}{
		{plan("0-1000-50", "0-1000-50"), true},
		{plan("0-1000-50,1-2-3", "1-2-3,0-1000-50"), true},
		{plan("0-1000-50", "0-1000-49"), false},
		{plan("0-1000-50", "garbage"), false},
		{kurav1alpha1.RestoreOutcome{GTIDReached: "0-1000-50"}, true},
	} {
		if got := reachedPlan(kurav1alpha1.EngineMariaDB, tc.o); got != tc.want {
			t.Errorf("%+v: %v, want %v", tc.o, got, tc.want)
		}
	}
}

// A point in time the archive cannot reach, as its status tells, is refused before anything
// is touched.
func TestCheckRecoverable(t *testing.T) {
	at := func(h int) *metav1.Time { return &metav1.Time{Time: time.Date(2030, 1, 2, h, 0, 0, 0, time.UTC)} }
	b := &kurav1alpha1.Backup{ObjectMeta: metav1.ObjectMeta{Name: "nightly"}, Status: kurav1alpha1.BackupStatus{SnapshotTime: at(3)}}
	archived := func(gaps int32, last *metav1.Time) *kurav1alpha1.MySQLCluster {
		return &kurav1alpha1.MySQLCluster{ObjectMeta: metav1.ObjectMeta{Name: "shop"},
			Spec:   kurav1alpha1.MySQLClusterSpec{BinlogArchive: &kurav1alpha1.BinlogArchiveSpec{}},
			Status: kurav1alpha1.MySQLClusterStatus{BinlogArchive: &kurav1alpha1.BinlogArchiveStatus{Gaps: gaps, LastRecoverableTime: last}}}
	}
	cases := []struct {
		name string
		c    *kurav1alpha1.MySQLCluster
		pit  *kurav1alpha1.PointInTime
		want string
	}{
		{"the backup's point", &kurav1alpha1.MySQLCluster{}, nil, ""},
		{"no archive", &kurav1alpha1.MySQLCluster{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}, &kurav1alpha1.PointInTime{Time: at(4)}, `spec.pointInTime: MySQLCluster "shop" has no binary log archive`},
		{"a gap", archived(1, at(9)), &kurav1alpha1.PointInTime{GTID: "0-1-5"}, "has 1 gap(s) (status.binlogArchive.gaps)"},
		{"before the backup", archived(0, at(9)), &kurav1alpha1.PointInTime{Time: at(2)}, "spec.pointInTime.time: 2030-01-02T02:00:00Z is before Backup \"nightly\"'s point"},
		{"after the archive", archived(0, at(9)), &kurav1alpha1.PointInTime{Time: at(10)}, "is after the newest recoverable moment of \"shop\"'s archive (2030-01-02T09:00:00Z)"},
		{"range unknown", archived(0, nil), &kurav1alpha1.PointInTime{Time: at(4)}, "reports no recoverable range yet"},
		{"inside", archived(0, at(9)), &kurav1alpha1.PointInTime{Time: at(4)}, ""},
		{"a GTID", archived(0, at(9)), &kurav1alpha1.PointInTime{GTID: "0-1-5"}, ""},
	}
	for _, tc := range cases {
		got := checkRecoverable(b, tc.c, tc.pit)
		switch {
		case tc.want == "" && got != nil:
			t.Errorf("%s: refused: %s", tc.name, got.message)
		case tc.want != "" && (got == nil || !strings.Contains(got.message, tc.want)):
			t.Errorf("%s: %+v, want %q", tc.name, got, tc.want)
		}
	}
}

// An in-place Restore fences the cluster (scaled to zero, its clustering loop stopped),
// switches it to a new volume set once no instance runs, keeps the old PVCs labelled and
// reported, completes once the new set restored and opened, rolls back to the old set on
// request (keeping the restored one until it expires), and a second in-place restore deletes
// the old volumes once confirmed.
func TestRestoreInPlace(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	backupCluster(t, ns)
	completedBackupOf(t, ns, "nightly")
	// The old set's primary is shop-1; shop-0 is a lagging replica with an errant transaction.
	oldInstances := []kurav1alpha1.InstanceStatus{
		{Name: "shop-0", Role: kurav1alpha1.RoleErrant, Reachable: true, GTIDExecuted: "0-1000-40,1-2000-1", ErrantGTIDs: "1-2000-1"},
		{Name: "shop-1", Role: kurav1alpha1.RolePrimary, Reachable: true, Healthy: true, GTIDExecuted: "0-1000-45"},
	}
	loopRecordsOf(t, ns, 4, 1, oldInstances...)
	wantSaved := &kurav1alpha1.ClusteringRecords{VolumeSet: "data", Term: 4, CurrentPrimaryIndex: ptr.To[int32](1), CurrentPrimary: "shop-1",
		Instances: recordedInstances(getCluster(t, ns, "shop"))}
	if len(wantSaved.Instances) < 2 || wantSaved.Instances[0] != (kurav1alpha1.RecordedInstance{Name: "shop-0", GTIDExecuted: "0-1000-40,1-2000-1", ErrantGTIDs: "1-2000-1"}) {
		t.Fatalf("old set's instance records %+v", wantSaved.Instances)
	}
	for _, name := range []string{"data-shop-0", "data-shop-1"} {
		newClaim(t, ns, name)
	}
	running := newInstancePod(t, ns, "shop-1")

	if err := k8s.Create(ctx, inPlace(ns, "undo", "nightly", "shop", func(r *kurav1alpha1.Restore) {
		r.Spec.KeepOldVolumesFor = &metav1.Duration{Duration: time.Hour}
	})); err != nil {
		t.Fatal(err)
	}
	rs := waitRestore(t, ns, "undo", kurav1alpha1.RestoreRunning)
	set := builder.VolumeSetFor(rs.UID)
	suffix := strings.TrimPrefix(set, "data-")
	if ip := rs.Status.InPlace; ip == nil || ip.Step != stepFencing || ip.FromVolumeSet != "data" || ip.ToVolumeSet != set || rs.Status.Cluster != "shop" {
		t.Fatalf("fencing status %+v", rs.Status)
	}
	eventually(t, "the cluster fenced: scaled to zero, its clustering loop stopped", func() error {
		c := getCluster(t, ns, "shop")
		sts := &appsv1.StatefulSet{}
		if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "shop"}, sts); err != nil {
			return err
		}
		if _, forgot := loops.counts(types.NamespacedName{Namespace: ns, Name: "shop"}); c.Annotations[contract.AnnotationRestoreFence] != "undo" || *sts.Spec.Replicas != 0 || forgot == 0 {
			return fmt.Errorf("annotations %v, replicas %d, loop forgotten %d times", c.Annotations, *sts.Spec.Replicas, forgot)
		}
		return nil
	})
	waitReconciled(t, ns, "shop", metav1.ConditionFalse, "FencedByRestore")
	// Nothing switches while an instance runs.
	if c := getCluster(t, ns, "shop"); c.Annotations[contract.AnnotationVolumeSet] != "" {
		t.Fatalf("switched while shop-1 runs: %v", c.Annotations)
	}
	deletePod(t, running)

	rs = waitInPlaceStep(t, ns, "undo", stepRestoring)
	if !slices.Equal(rs.Status.InPlace.KeptVolumes, []string{"data-shop-0", "data-shop-1"}) || !rs.Status.InPlace.Switched ||
		!strings.Contains(rs.Status.InPlace.Hint, "kubectl annotate restore undo kura.dev/rollback=true") {
		t.Fatalf("switched status %+v", rs.Status.InPlace)
	}
	c := getCluster(t, ns, "shop")
	var bs kurav1alpha1.BootstrapSpec
	if err := json.Unmarshal([]byte(c.Annotations[contract.AnnotationBootstrap]), &bs); err != nil || bs.Backup != "nightly" ||
		c.Annotations[contract.AnnotationVolumeSet] != set || c.Annotations[contract.AnnotationRestoreFence] != "" {
		t.Fatalf("switched cluster annotations %v", c.Annotations)
	}
	if c.Status.CurrentPrimaryIndex != nil || c.Status.CurrentPrimary != "" || len(c.Status.Instances) != 0 || c.Status.Term != 4 {
		t.Fatalf("the clustering records of the old set must go (the term stays): %+v", c.Status)
	}
	if got := rs.Status.InPlace.PreviousRecords; !equality.Semantic.DeepEqual(got, wantSaved) {
		t.Fatalf("saved records %+v, want %+v", got, wantSaved)
	}
	wantClaimLabel(t, ns, "data-shop-0", "undo")
	wantClaimLabel(t, ns, "data-shop-1", "undo")
	waitStatefulSetOn(t, ns, set)
	eventually(t, "the new set's restore Job", func() error {
		cm := &corev1.ConfigMap{}
		if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "shop-bootstrap-" + suffix}, cm); err != nil {
			return err
		}
		if !strings.Contains(cm.Data[builder.BootstrapJobKey], `"nightly"`) {
			return fmt.Errorf("restore job %s", cm.Data[builder.BootstrapJobKey])
		}
		return nil
	})

	// The first instance of the new set restores; the clustering loop opens it.
	firstInstanceReports(t, ns, "shop", corev1.ContainerState{Terminated: terminated(0, restoredResult)}, nil)
	if b := waitBootstrap(t, ns, "shop", kurav1alpha1.BootstrapRestored).Status.Bootstrap; b.VolumeSet != set {
		t.Fatalf("status.bootstrap %+v", b)
	}
	if rs = waitInPlaceStep(t, ns, "undo", stepRestoring); rs.Status.Phase != kurav1alpha1.RestoreRunning {
		t.Fatalf("completed before the cluster opened: %+v", rs.Status)
	}
	// The loop bootstraps the new set: a new term, shop-0 primary.
	loopRecordsOf(t, ns, 5, 0, kurav1alpha1.InstanceStatus{Name: "shop-0", Role: kurav1alpha1.RolePrimary, Reachable: true, Healthy: true, GTIDExecuted: "0-1000-50"})
	rs = waitRestore(t, ns, "undo", kurav1alpha1.RestoreCompleted)
	ip := rs.Status.InPlace
	if ip.Step != stepRestored || ip.DeleteKeptVolumesAfter == nil || rs.Status.GTIDReached != "0-1000-50" ||
		ip.DeleteKeptVolumesAfter.Sub(rs.Status.CompletionTime.Time) != time.Hour ||
		!strings.Contains(rs.Status.Message, "the old volumes (data-shop-0, data-shop-1) are deleted at") ||
		!strings.Contains(rs.Status.Message, "kubectl annotate restore undo kura.dev/confirm=true") {
		t.Fatalf("completed status %+v %+v", rs.Status, ip)
	}
	waitEvent(t, ns, "RestoreVolumesKept")

	// Roll back: fenced again, switched back once the instances stopped; the restored set is
	// kept, the old volumes lose their label.
	newClaim(t, ns, set+"-shop-0")
	annotateRestore(t, ns, "undo", contract.AnnotationRollback)
	waitInPlaceStep(t, ns, "undo", stepRollingBack)
	eventually(t, "the cluster fenced again", func() error {
		if c := getCluster(t, ns, "shop"); c.Annotations[contract.AnnotationRestoreFence] != "undo" {
			return fmt.Errorf("annotations %v", c.Annotations)
		}
		return nil
	})
	deletePod(t, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "shop-0"}})
	rs = waitRestore(t, ns, "undo", kurav1alpha1.RestoreRolledBack)
	if ip := rs.Status.InPlace; ip.Step != stepRolledBack || !slices.Equal(ip.KeptVolumes, []string{set + "-shop-0"}) || ip.DeleteKeptVolumesAfter == nil {
		t.Fatalf("rolled back status %+v", ip)
	}
	c = getCluster(t, ns, "shop")
	if len(c.Annotations) != 0 {
		t.Fatalf("rolled back cluster annotations %v", c.Annotations)
	}
	// The old set's records are back, under the current term (never a lower one).
	if p := c.Status.CurrentPrimaryIndex; p == nil || *p != 1 || c.Status.CurrentPrimary != "shop-1" || c.Status.Term != 5 {
		t.Fatalf("rolled back: primary %v %q term %d, want shop-1 under term 5", p, c.Status.CurrentPrimary, c.Status.Term)
	}
	if got := recordedInstances(c); !slices.Equal(got, wantSaved.Instances) {
		t.Fatalf("rolled back instance records %+v, want %+v", got, wantSaved.Instances)
	}
	wantClaimLabel(t, ns, "data-shop-0", "")
	wantClaimLabel(t, ns, set+"-shop-0", "undo")
	waitStatefulSetOn(t, ns, "data")

	// The restored set expires.
	restoreClock.Advance(2 * time.Hour)
	annotateRestore(t, ns, "undo", "poke")
	eventually(t, "the restored set deleted after keepOldVolumesFor", func() error {
		if !claimGone(t, ns, set+"-shop-0") {
			return fmt.Errorf("%s-shop-0 still there", set)
		}
		return nil
	})
	if claimGone(t, ns, "data-shop-0") || claimGone(t, ns, "data-shop-1") {
		t.Fatal("the old volumes the cluster runs on again were deleted")
	}

	// Restore again, then confirm: the old volumes go.
	if err := k8s.Create(ctx, inPlace(ns, "again", "nightly", "shop")); err != nil {
		t.Fatal(err)
	}
	rs = waitInPlaceStep(t, ns, "again", stepRestoring)
	if d := rs.Spec.KeepOldVolumesFor; d == nil || d.Duration != 24*time.Hour {
		t.Errorf("keepOldVolumesFor default %v", d)
	}
	if c := getCluster(t, ns, "shop"); c.Status.CurrentPrimaryIndex != nil || len(c.Status.Instances) != 0 {
		t.Fatalf("the old set's records were left on the new set: %+v", c.Status)
	}
	waitStatefulSetOn(t, ns, rs.Status.InPlace.ToVolumeSet)
	firstInstanceReports(t, ns, "shop", corev1.ContainerState{Terminated: terminated(0, restoredResult)}, nil)
	loopRecordsOf(t, ns, 6, 0, kurav1alpha1.InstanceStatus{Name: "shop-0", Role: kurav1alpha1.RolePrimary, Reachable: true, Healthy: true, GTIDExecuted: "0-1000-50"})
	waitRestore(t, ns, "again", kurav1alpha1.RestoreCompleted)
	if claimGone(t, ns, "data-shop-0") {
		t.Fatal("old volumes deleted before confirmation")
	}
	annotateRestore(t, ns, "again", contract.AnnotationConfirm)
	rs = waitInPlaceStep(t, ns, "again", stepConfirmed)
	if !rs.Status.InPlace.KeptVolumesDeleted || !claimGone(t, ns, "data-shop-0") || !claimGone(t, ns, "data-shop-1") {
		t.Fatalf("confirmed: %+v", rs.Status.InPlace)
	}
	waitEvent(t, ns, "RestoreVolumesDeleted")
	// Confirmed: the new set keeps its own records, never the old set's.
	c = getCluster(t, ns, "shop")
	if p := c.Status.CurrentPrimaryIndex; p == nil || *p != 0 || slices.Equal(recordedInstances(c), wantSaved.Instances) || c.Status.Term != 6 {
		t.Fatalf("confirmed: status %+v", c.Status)
	}
}

// recordedInstances are the recorded GTID sets of c's instances.
func recordedInstances(c *kurav1alpha1.MySQLCluster) []kurav1alpha1.RecordedInstance {
	var out []kurav1alpha1.RecordedInstance
	for _, in := range c.Status.Instances {
		out = append(out, kurav1alpha1.RecordedInstance{Name: in.Name, GTIDExecuted: in.GTIDExecuted, ErrantGTIDs: in.ErrantGTIDs})
	}
	return out
}

// loopRecordsOf plays the clustering loop: primary shop-<primary> recorded under term, the
// instances' records, Available.
func loopRecordsOf(t *testing.T, ns string, term int64, primary int32, instances ...kurav1alpha1.InstanceStatus) {
	t.Helper()
	c := getCluster(t, ns, "shop")
	name := fmt.Sprintf("shop-%d", primary)
	st := map[string]any{"currentPrimaryIndex": primary, "currentPrimary": name, "term": term, "conditions": []metav1.Condition{{Type: kurav1alpha1.ConditionAvailable, Status: metav1.ConditionTrue,
		Reason: "PrimaryWritable", Message: name + " accepts writes", LastTransitionTime: metav1.Now()}}}
	if len(instances) > 0 {
		st["instances"] = instances
	}
	if err := apply.Status(context.Background(), k8s, c, st, "test-loop"); err != nil {
		t.Fatal(err)
	}
}

func newClaim(t *testing.T, ns, name string) {
	t.Helper()
	pvc := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name,
		Labels: builder.SelectorLabels(&kurav1alpha1.MySQLCluster{ObjectMeta: metav1.ObjectMeta{Name: "shop"}})},
		Spec: corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}}}
	if err := k8s.Create(context.Background(), pvc); err != nil {
		t.Fatal(err)
	}
}

// newInstancePod plays a running instance of cluster shop.
func newInstancePod(t *testing.T, ns, name string) *corev1.Pod {
	t.Helper()
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name,
		Labels: builder.SelectorLabels(&kurav1alpha1.MySQLCluster{ObjectMeta: metav1.ObjectMeta{Name: "shop"}})},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "mysqld", Image: "mariadb:11.4"}}}}
	if err := k8s.Create(context.Background(), pod); err != nil {
		t.Fatal(err)
	}
	return pod
}

// deletePod plays the kubelet ending a Pod the StatefulSet scaled away.
func deletePod(t *testing.T, pod *corev1.Pod) {
	t.Helper()
	if err := k8s.Delete(context.Background(), pod, client.GracePeriodSeconds(0)); err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
}

func annotateRestore(t *testing.T, ns, name, key string) {
	t.Helper()
	rs := &kurav1alpha1.Restore{}
	if err := k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, rs); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(rs.DeepCopy())
	if rs.Annotations == nil {
		rs.Annotations = map[string]string{}
	}
	rs.Annotations[key] = "true"
	if key == "poke" {
		rs.Annotations[key] = time.Now().String()
	}
	if err := k8s.Patch(context.Background(), rs, patch); err != nil {
		t.Fatal(err)
	}
}

func waitInPlaceStep(t *testing.T, ns, name, step string) *kurav1alpha1.Restore {
	t.Helper()
	rs := &kurav1alpha1.Restore{}
	eventually(t, fmt.Sprintf("Restore %s step %s", name, step), func() error {
		if err := k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, rs); err != nil {
			return err
		}
		if rs.Status.InPlace == nil || rs.Status.InPlace.Step != step {
			return fmt.Errorf("status %+v", rs.Status)
		}
		return nil
	})
	return rs
}

func wantClaimLabel(t *testing.T, ns, name, restore string) {
	t.Helper()
	eventually(t, fmt.Sprintf("PVC %s kept-by-restore %q", name, restore), func() error {
		pvc := &corev1.PersistentVolumeClaim{}
		if err := k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, pvc); err != nil {
			return err
		}
		if got := pvc.Labels[contract.LabelKeptByRestore]; got != restore {
			return fmt.Errorf("label %q", got)
		}
		return nil
	})
}

// claimGone: deleted (envtest keeps a deleted PVC with its protection finalizer).
func claimGone(t *testing.T, ns, name string) bool {
	t.Helper()
	pvc := &corev1.PersistentVolumeClaim{}
	err := k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, pvc)
	if err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	return apierrors.IsNotFound(err) || !pvc.DeletionTimestamp.IsZero()
}

// waitStatefulSetOn plays the garbage collector for the StatefulSet deleted with orphan
// propagation and waits for it to be re-created on volume set set, every data mount with it.
func waitStatefulSetOn(t *testing.T, ns, set string) {
	t.Helper()
	ctx := context.Background()
	eventually(t, "StatefulSet on volume set "+set, func() error {
		sts := &appsv1.StatefulSet{}
		if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "shop"}, sts); err != nil {
			return err
		}
		if !sts.DeletionTimestamp.IsZero() {
			sts.Finalizers = nil
			return fmt.Errorf("being deleted: %v", k8s.Update(ctx, sts))
		}
		if got := sts.Spec.VolumeClaimTemplates[0].Name; got != set {
			return fmt.Errorf("claim template %s", got)
		}
		if ptr.Deref(sts.Spec.Replicas, 0) != 3 {
			return fmt.Errorf("replicas %d", ptr.Deref(sts.Spec.Replicas, 0))
		}
		for _, ctr := range append(sts.Spec.Template.Spec.InitContainers, sts.Spec.Template.Spec.Containers...) {
			for _, m := range ctr.VolumeMounts {
				if m.MountPath == contract.DataDir && m.Name != set {
					return fmt.Errorf("%s mounts %s", ctr.Name, m.Name)
				}
			}
		}
		return nil
	})
}

// A fence whose Restore is deleted is lifted: the cluster scales back up on the volumes it is on.
func TestDeletedRestoreLiftsItsFence(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	backupCluster(t, ns)
	completedBackupOf(t, ns, "nightly")
	running := newInstancePod(t, ns, "shop-0")
	if err := k8s.Create(ctx, inPlace(ns, "gone", "nightly", "shop")); err != nil {
		t.Fatal(err)
	}
	waitInPlaceStep(t, ns, "gone", stepFencing)
	waitReconciled(t, ns, "shop", metav1.ConditionFalse, "FencedByRestore")
	if err := k8s.Delete(ctx, &kurav1alpha1.Restore{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "gone"}}); err != nil {
		t.Fatal(err)
	}
	waitReconciled(t, ns, "shop", metav1.ConditionTrue, "Reconciled")
	eventually(t, "the StatefulSet scaled back up on volume set data", func() error {
		sts := &appsv1.StatefulSet{}
		if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "shop"}, sts); err != nil {
			return err
		}
		if ptr.Deref(sts.Spec.Replicas, 0) != 3 || sts.Spec.VolumeClaimTemplates[0].Name != "data" {
			return fmt.Errorf("replicas %d on %s", ptr.Deref(sts.Spec.Replicas, 0), sts.Spec.VolumeClaimTemplates[0].Name)
		}
		return nil
	})
	deletePod(t, running)
}

// A switch whose Restore status was not written is recognised on the next pass (the instances
// may already run on the new set) and only recorded.
func TestSwitchedTo(t *testing.T) {
	on := func(ann map[string]string) *kurav1alpha1.MySQLCluster {
		return &kurav1alpha1.MySQLCluster{ObjectMeta: metav1.ObjectMeta{Name: "shop", Annotations: ann}}
	}
	fencing := &kurav1alpha1.InPlaceRestoreStatus{Step: stepFencing, FromVolumeSet: "data", ToVolumeSet: "data-1a2b3c4d"}
	rollingBack := &kurav1alpha1.InPlaceRestoreStatus{Step: stepRollingBack, FromVolumeSet: "data", ToVolumeSet: "data-1a2b3c4d"}
	for _, tc := range []struct {
		name string
		c    *kurav1alpha1.MySQLCluster
		ip   *kurav1alpha1.InPlaceRestoreStatus
		want bool
	}{
		{"fenced on the old set", on(map[string]string{contract.AnnotationRestoreFence: "r"}), fencing, false},
		{"switched, status not written", on(map[string]string{contract.AnnotationVolumeSet: "data-1a2b3c4d"}), fencing, true},
		{"fenced on the new set for a rollback", on(map[string]string{contract.AnnotationVolumeSet: "data-1a2b3c4d", contract.AnnotationRestoreFence: "r"}), rollingBack, false},
		{"switched back, status not written", on(nil), rollingBack, true},
	} {
		if got := switchedTo(tc.c, switchTarget(tc.ip)); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

// A rollback puts back only the records of the set it returns to, and never under a lower
// term than theirs.
func TestRecordsToPutBack(t *testing.T) {
	saved := &kurav1alpha1.ClusteringRecords{VolumeSet: "data", Term: 4, CurrentPrimaryIndex: ptr.To[int32](1)}
	for _, tc := range []struct {
		name  string
		saved *kurav1alpha1.ClusteringRecords
		enter string
		term  int64
		want  bool
	}{
		{"back to the saved set, term moved on", saved, "data", 5, true},
		{"back to the saved set, same term", saved, "data", 4, true},
		{"nothing saved", nil, "data", 5, false},
		{"another set", saved, "data-1a2b3c4d", 5, false},
		{"a term lower than the records'", saved, "data", 3, false},
	} {
		if got := recordsToPutBack(tc.saved, tc.enter, tc.term); (got != nil) != tc.want {
			t.Errorf("%s: put back %v, want %v", tc.name, got != nil, tc.want)
		}
	}
}

// savedRecords keeps the primary, the instances' GTID sets and an open window; nothing is
// saved when the loop recorded nothing. recordsPatch puts them back without the term, or
// clears them.
func TestSavedRecordsAndPatch(t *testing.T) {
	c := &kurav1alpha1.MySQLCluster{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}
	if savedRecords(c, "data") != nil {
		t.Fatal("records saved from an empty status")
	}
	c.Status = kurav1alpha1.MySQLClusterStatus{Term: 7, CurrentPrimaryIndex: ptr.To[int32](1), CurrentPrimary: "shop-1",
		AsynchronousWindow: &kurav1alpha1.AsynchronousWindow{Since: "0-1000-9"},
		Instances:          []kurav1alpha1.InstanceStatus{{Name: "shop-0", Role: kurav1alpha1.RoleReplica, GTIDExecuted: "0-1000-8", ErrantGTIDs: "1-2-3", Reason: "lag"}, {Name: "shop-1", GTIDExecuted: "0-1000-10"}}}
	rec := savedRecords(c, "data")
	want := &kurav1alpha1.ClusteringRecords{VolumeSet: "data", Term: 7, CurrentPrimaryIndex: ptr.To[int32](1), CurrentPrimary: "shop-1",
		AsynchronousWindow: &kurav1alpha1.AsynchronousWindow{Since: "0-1000-9"},
		Instances:          []kurav1alpha1.RecordedInstance{{Name: "shop-0", GTIDExecuted: "0-1000-8", ErrantGTIDs: "1-2-3"}, {Name: "shop-1", GTIDExecuted: "0-1000-10"}}}
	if !equality.Semantic.DeepEqual(rec, want) {
		t.Fatalf("saved %+v, want %+v", rec, want)
	}
	*c.Status.CurrentPrimaryIndex = 0
	if *rec.CurrentPrimaryIndex != 1 {
		t.Fatal("the saved records share the status's primary index")
	}

	var put struct {
		Status kurav1alpha1.MySQLClusterStatus `json:"status"`
	}
	raw, err := recordsPatch(c, rec)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &put); err != nil {
		t.Fatal(err)
	}
	st := put.Status
	if p := st.CurrentPrimaryIndex; p == nil || *p != 1 || st.CurrentPrimary != "shop-1" || st.Term != 0 || st.AsynchronousWindow == nil ||
		len(st.Instances) != 2 || st.Instances[0].GTIDExecuted != "0-1000-8" || st.Instances[0].ErrantGTIDs != "1-2-3" || st.Instances[1].GTIDExecuted != "0-1000-10" {
		t.Fatalf("put-back patch %s", raw)
	}
	if strings.Contains(string(raw), `"term"`) {
		t.Fatalf("the patch writes the term: %s", raw)
	}
	raw, err = recordsPatch(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"status":{"asynchronousWindow":null,"currentPrimary":null,"currentPrimaryIndex":null,"instances":null,"keepInstances":null,"reclones":null}}`; string(raw) != want {
		t.Fatalf("clearing patch %s, want %s", raw, want)
	}
}
