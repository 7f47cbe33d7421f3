package kubectlkura

import (
	"bytes"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/internal/golden"
)

var testNow = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

func ago(d time.Duration) metav1.Time { return metav1.NewTime(testNow.Add(-d)) }

// cluster is a 3-instance MariaDB cluster, shop-1 primary since a switchover, as the
// operator reports it.
func cluster() *kurav1alpha1.MySQLCluster {
	c := &kurav1alpha1.MySQLCluster{
		ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: "demo", Generation: 3},
		Spec:       kurav1alpha1.MySQLClusterSpec{Engine: kurav1alpha1.EngineMariaDB, Version: "11.4", Replicas: 3},
	}
	c.Status = kurav1alpha1.MySQLClusterStatus{
		ObservedGeneration: 3, State: kurav1alpha1.StateHealthy, Engine: kurav1alpha1.EngineMariaDB, Version: "11.4",
		Ready: "3/3", CurrentPrimary: "shop-1", CurrentPrimaryIndex: ptr.To[int32](1), Term: 3,
		Instances: []kurav1alpha1.InstanceStatus{
			{Name: "shop-0", Role: kurav1alpha1.RoleReplica, Reachable: true, Healthy: true, ReadOnly: true, GTIDExecuted: "0-1001-57,1-1002-240", LagSeconds: ptr.To[int64](0)},
			{Name: "shop-1", Role: kurav1alpha1.RolePrimary, Reachable: true, Healthy: true, GTIDExecuted: "0-1001-57,1-1002-240"},
			{Name: "shop-2", Role: kurav1alpha1.RoleReplica, Reachable: true, Healthy: true, ReadOnly: true, GTIDExecuted: "0-1001-57,1-1002-239", LagSeconds: ptr.To[int64](1)},
		},
		Conditions: []metav1.Condition{
			{Type: "Available", Status: metav1.ConditionTrue, Reason: "PrimaryWritable", Message: "shop-1 accepts writes", LastTransitionTime: ago(5 * time.Minute)},
			{Type: "Healthy", Status: metav1.ConditionTrue, Reason: "AllReplicating", LastTransitionTime: ago(5 * time.Minute)},
		},
		History: []kurav1alpha1.TopologyChange{
			{Term: 2, Kind: "Failover", From: "shop-0", To: "shop-2", Reason: "primary shop-0 unreachable for 3s", Time: ago(26 * time.Hour), WriteUnavailableMillis: 3980, AcknowledgedWrites: "AllKept"},
			{Term: 3, Kind: "Switchover", From: "shop-2", To: "shop-1", Reason: "switchover by request maint-1", Time: ago(5 * time.Minute), WriteUnavailableMillis: 140, AcknowledgedWrites: "AllKept"},
		},
		Switchover:    &kurav1alpha1.SwitchoverStatus{ID: "maint-1", Target: 1, Phase: "Completed"},
		BinlogArchive: &kurav1alpha1.BinlogArchiveStatus{LastArchivedGTID: "0-1001-57,1-1002-240", LagSeconds: 1, LastRecoverableTime: ptr.To(ago(10 * time.Second))},
	}
	return c
}

func runningPod(name string, restarts int32) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "demo"}, Status: corev1.PodStatus{
		Phase:             corev1.PodRunning,
		ContainerStatuses: []corev1.ContainerStatus{{Name: "mysqld", RestartCount: restarts, Ready: true}},
	}}
}

func backupOf(name string, phase kurav1alpha1.BackupPhase, created time.Duration) kurav1alpha1.Backup {
	b := kurav1alpha1.Backup{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "demo", CreationTimestamp: ago(created)}}
	b.Spec.Cluster, b.Spec.Method = "shop", "physical"
	b.Status.Phase = phase
	b.Status.StartTime = ptr.To(ago(created - time.Second))
	if phase == kurav1alpha1.BackupCompleted {
		b.Status.CompletionTime = ptr.To(ago(created - 40*time.Second))
		b.Status.SizeBytes = 734003200
		b.Status.GTIDPosition = "0-1001-57,1-1002-200"
	}
	if phase == kurav1alpha1.BackupFailed {
		b.Status.Message = "mariadb-backup exited with status 1: disk full"
	}
	return b
}

func healthyView() statusView {
	return statusView{
		Cluster: cluster(),
		Pods:    map[string]*corev1.Pod{"shop-0": runningPod("shop-0", 0), "shop-1": runningPod("shop-1", 1), "shop-2": runningPod("shop-2", 0)},
		Backups: []kurav1alpha1.Backup{backupOf("shop-nightly-1", kurav1alpha1.BackupCompleted, 9*time.Hour)},
		Now:     testNow,
	}
}

// troubledView has most of what can go wrong at once.
func troubledView() statusView {
	v := healthyView()
	c := v.Cluster
	c.Generation = 4
	c.Spec.Paused = true
	c.Status.State = kurav1alpha1.StateDegraded
	c.Status.Ready = "2/3"
	c.Status.Instances[0].LagSeconds = ptr.To[int64](95)
	c.Status.Instances[0].Healthy = false
	c.Status.Instances[0].Reason = "lagging 95s"
	c.Status.Instances[2] = kurav1alpha1.InstanceStatus{Name: "shop-2", Role: kurav1alpha1.RoleErrant, Reachable: true, ReadOnly: true,
		GTIDExecuted: "0-1001-57,1-1002-240,7-3-1", ErrantGTIDs: "7-3-1", Reason: "errant transactions"}
	c.Status.Conditions = append(c.Status.Conditions[:1], metav1.Condition{Type: "Healthy", Status: metav1.ConditionFalse, Reason: "Degraded", Message: "shop-0 lagging; shop-2 errant", LastTransitionTime: ago(time.Minute)})
	c.Status.Switchover = &kurav1alpha1.SwitchoverStatus{ID: "maint-2", Target: 2, Phase: "Refused", Message: "target shop-2 is errant (7-3-1)"}
	c.Status.AsynchronousWindow = &kurav1alpha1.AsynchronousWindow{Since: "0-1001-57,1-1002-230", StartTime: ago(time.Hour)}
	c.Status.Config = []kurav1alpha1.ConfigOptionStatus{
		{Name: "back_log", Value: "90", State: "PendingRestart", Instances: []string{"shop-1"}},
		{Name: "max_connections", Value: "99999999", Dynamic: true, State: "Refused", Instances: []string{"shop-0"}, Message: "shop-0: Error 1232"},
	}
	v.Pods["shop-2"].Status.ContainerStatuses[0].State.Waiting = &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}
	v.Pods["shop-2"].Status.ContainerStatuses[0].RestartCount = 7
	v.Backups = append([]kurav1alpha1.Backup{backupOf("shop-manual", kurav1alpha1.BackupFailed, time.Hour)}, v.Backups...)
	return v
}

func TestRenderStatus(t *testing.T) {
	for name, v := range map[string]statusView{
		"status-healthy.txt":  healthyView(),
		"status-troubled.txt": troubledView(),
		"status-new.txt": {Cluster: &kurav1alpha1.MySQLCluster{ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: "demo"}},
			Pods: map[string]*corev1.Pod{}, Now: testNow},
	} {
		t.Run(name, func(t *testing.T) {
			var out bytes.Buffer
			renderStatus(&out, v)
			golden.Assert(t, name, out.Bytes())
		})
	}
}

func TestProblems(t *testing.T) {
	if ps := problems(healthyView()); len(ps) != 0 {
		t.Errorf("a healthy cluster has problems: %q", ps)
	}
	ps := problems(troubledView())
	for _, want := range []string{"paused", "not acted on the latest spec", "shop-0 is 95s behind", "shop-2 has transactions the primary lacks",
		"CrashLoopBackOff", "asynchronous window", "maint-2) was refused: target shop-2 is errant",
		"spec.mysqld.config.max_connections = 99999999 was refused: shop-0: Error 1232", "latest backup shop-manual failed: mariadb-backup exited"} {
		found := false
		for _, p := range ps {
			if bytes.Contains([]byte(p), []byte(want)) {
				found = true
			}
		}
		if !found {
			t.Errorf("no problem mentions %q: %q", want, ps)
		}
	}
}
