package e2e

import (
	"context"
	"fmt"
	"maps"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/internal/builder"
	"github.com/kura-db/kura/internal/contract"
	"github.com/kura-db/kura/internal/engine"
)

// One cluster's life, in order: each step starts from the healthy cluster the previous one
// left.
func TestClusterLifecycle(t *testing.T) {
	needCluster(t)
	ns := newNamespace(t, "e2e")
	const name = "shop"
	ctx := context.Background()

	t.Run("a manifest becomes a healthy 3-instance cluster", func(t *testing.T) {
		start := time.Now()
		if err := k8s.Create(ctx, newCluster(ns, name, 3)); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(kubectl, "--kubeconfig", lc.Kubeconfig(), "wait", "-n", ns, "--for=condition=Available", "mysqlcluster/"+name, "--timeout=5m").CombinedOutput()
		if err != nil {
			t.Fatalf("kubectl wait --for=condition=Available: %v\n%s\n%s", err, out, conditionSummary(get(t, ns, name)))
		}
		t.Logf("kubectl apply → Available in %s", time.Since(start).Round(time.Millisecond))
		waitFor(t, "3 healthy instances", 3*time.Minute, healthy(t, ns, name, 3))
		c := get(t, ns, name)
		if c.Status.CurrentPrimary != name+"-0" || c.Status.Term < 1 {
			t.Errorf("bootstrap primary %s term %d", c.Status.CurrentPrimary, c.Status.Term)
		}
	})

	t.Run("writes through the primary Service, reads through the replicas Service", func(t *testing.T) {
		setupApp(t, ns, name)
		db := openDB(serviceIP(t, ns, name+"-primary"), appUser, appPassword)
		defer func() { _ = db.Close() }()
		if _, err := db.Exec("INSERT INTO " + appTable + " (id) VALUES (1)"); err != nil {
			t.Fatal(err)
		}
		ro := openDB(serviceIP(t, ns, name+"-replicas"), appUser, appPassword)
		defer func() { _ = ro.Close() }()
		waitFor(t, "the row on a replica", 30*time.Second, func() error {
			var n int
			if err := ro.QueryRow("SELECT COUNT(*) FROM " + appTable + " WHERE id = 1").Scan(&n); err != nil {
				return err
			}
			if n != 1 {
				return fmt.Errorf("not replicated yet")
			}
			return nil
		})
		if _, err := ro.Exec("INSERT INTO " + appTable + " (id) VALUES (2)"); err == nil {
			t.Error("a write through the replicas Service succeeded")
		}
	})

	next := int64(1000)
	failoverUnder := func(t *testing.T, what string, act func(primary string)) {
		before := get(t, ns, name)
		w := startWriter(serviceIP(t, ns, name+"-primary"), next)
		w.waitFlowing(t)
		at := time.Now()
		act(before.Status.CurrentPrimary)
		awaitCluster(t, ns, name, "a new primary", 2*time.Minute, func() error {
			if c := get(t, ns, name); c.Status.CurrentPrimary == before.Status.CurrentPrimary || c.Status.Term <= before.Status.Term {
				return fmt.Errorf("primary %s term %d", c.Status.CurrentPrimary, c.Status.Term)
			}
			return nil
		})
		w.waitAckedSince(t, at, "through the primary Service", 2*time.Minute)
		t.Logf("%s: first write on the new primary %s after %s", what, get(t, ns, name).Status.CurrentPrimary, time.Since(at).Round(time.Millisecond))
		acked := w.halt()
		next += int64(len(acked)) + 100000
		if lost := missingOnPrimary(t, ns, name, acked); len(lost) > 0 {
			t.Fatalf("%d of %d acknowledged writes lost: %v", len(lost), len(acked), lost)
		}
		t.Logf("%s: %d acknowledged writes, none lost", what, len(acked))
		awaitCluster(t, ns, name, "the cluster healed to 3 healthy instances", 4*time.Minute, healthy(t, ns, name, 3))
	}

	t.Run("a node agent crash and restart under writes changes nothing", func(t *testing.T) {
		before := get(t, ns, name)
		pods := &corev1.PodList{}
		if err := k8s.List(ctx, pods, client.InNamespace(ns), client.MatchingLabels(builder.SelectorLabels(before))); err != nil {
			t.Fatal(err)
		}
		ids := containerIDs(pods)
		w := startWriter(serviceIP(t, ns, name+"-primary"), next)
		w.waitFlowing(t)
		if err := lc.StopAgent(ctx, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		down := time.Now()
		w.waitAckedSince(t, down, "while the agent is down", 30*time.Second)
		if err := lc.StartAgent(ctx); err != nil {
			t.Fatal(err)
		}
		up := time.Now()
		w.waitAckedSince(t, up, "after the agent restarted", 30*time.Second)
		acked := w.halt()
		next += int64(len(acked)) + 100000
		if lost := missingOnPrimary(t, ns, name, acked); len(lost) > 0 {
			t.Fatalf("%d of %d acknowledged writes lost: %v", len(lost), len(acked), lost)
		}
		waitFor(t, "healthy after the agent restart", time.Minute, healthy(t, ns, name, 3))
		after := get(t, ns, name)
		if after.Status.CurrentPrimary != before.Status.CurrentPrimary || after.Status.Term != before.Status.Term {
			t.Errorf("primary %s term %d after the agent restart, want %s term %d unchanged",
				after.Status.CurrentPrimary, after.Status.Term, before.Status.CurrentPrimary, before.Status.Term)
		}
		if err := k8s.List(ctx, pods, client.InNamespace(ns), client.MatchingLabels(builder.SelectorLabels(before))); err != nil {
			t.Fatal(err)
		}
		if got := containerIDs(pods); !maps.Equal(got, ids) {
			t.Errorf("containers after the agent restart %v, want the same processes %v", got, ids)
		}
		t.Logf("agent restart: %d acknowledged writes, none lost; same primary, same processes", len(acked))
	})

	t.Run("SIGKILL of the primary's mariadbd fails over without losing a write", func(t *testing.T) {
		failoverUnder(t, "SIGKILL", func(primary string) { killContainer(t, ns, primary, contract.ContainerMySQLD) })
	})

	t.Run("deleting the primary's Pod moves the primary without losing a write", func(t *testing.T) {
		failoverUnder(t, "Pod deletion", func(primary string) {
			if err := k8s.Delete(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: primary}}); err != nil {
				t.Fatal(err)
			}
		})
	})

	t.Run("planned switchover through kubectl", func(t *testing.T) {
		c := get(t, ns, name)
		target := (*c.Status.CurrentPrimaryIndex + 1) % 3
		patch := fmt.Sprintf(`{"spec":{"switchover":{"target":%d,"id":"e2e-%d"}}}`, target, time.Now().Unix())
		if out, err := exec.Command(kubectl, "--kubeconfig", lc.Kubeconfig(), "patch", "mysqlcluster", name, "-n", ns, "--type", "merge", "-p", patch).CombinedOutput(); err != nil {
			t.Fatalf("kubectl patch: %v\n%s", err, out)
		}
		want := fmt.Sprintf("%s-%d", name, target)
		waitFor(t, "switchover to "+want, 2*time.Minute, func() error {
			c := get(t, ns, name)
			if c.Status.Switchover == nil || c.Status.Switchover.Phase != "Completed" || c.Status.CurrentPrimary != want {
				return fmt.Errorf("switchover %+v primary %s", c.Status.Switchover, c.Status.CurrentPrimary)
			}
			return nil
		})
		waitFor(t, "healthy after switchover", 2*time.Minute, healthy(t, ns, name, 3))
	})

	t.Run("a static my.cnf change rolls replicas first, then switches over, then restarts the old primary", func(t *testing.T) {
		before := get(t, ns, name)
		oldPrimary := before.Status.CurrentPrimary
		sts := &appsv1.StatefulSet{}
		if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, sts); err != nil {
			t.Fatal(err)
		}
		oldRevision := sts.Status.UpdateRevision
		stopWatch := watchReplacements(t, ns, builder.SelectorLabels(before))
		// back_log is read at start only: a change rolls (a dynamic option would be set in place).
		update(t, ns, name, func(c *kurav1alpha1.MySQLCluster) { c.Spec.MySQLD.Config["back_log"] = "321" })
		waitFor(t, "every Pod on the new revision and the cluster healthy", 6*time.Minute, func() error {
			if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, sts); err != nil {
				return err
			}
			if sts.Status.UpdateRevision == oldRevision || sts.Status.ObservedGeneration < sts.Generation {
				return fmt.Errorf("the StatefulSet has not published the new revision yet")
			}
			var pods corev1.PodList
			if err := k8s.List(ctx, &pods, client.InNamespace(ns), client.MatchingLabels(builder.SelectorLabels(before))); err != nil {
				return err
			}
			for _, p := range pods.Items {
				if p.Labels[appsv1.ControllerRevisionHashLabelKey] != sts.Status.UpdateRevision {
					return fmt.Errorf("%s on revision %s, want %s", p.Name, p.Labels[appsv1.ControllerRevisionHashLabelKey], sts.Status.UpdateRevision)
				}
			}
			return healthy(t, ns, name, 3)()
		})
		after := get(t, ns, name)
		if after.Status.CurrentPrimary == oldPrimary {
			t.Errorf("the primary %s was restarted in place instead of being switched over", oldPrimary)
		}
		// The old primary was restarted last: the order in which the Pods were replaced, as the
		// watcher started before the change saw it.
		order := stopWatch()
		if len(order) != 3 || order[2] != oldPrimary {
			t.Errorf("restart order %v: want the two replicas, then the old primary %s", order, oldPrimary)
		}
		var pods corev1.PodList
		if err := k8s.List(ctx, &pods, client.InNamespace(ns), client.MatchingLabels(builder.SelectorLabels(before))); err != nil {
			t.Fatal(err)
		}
		password := adminPassword(t, ns, name)
		for _, p := range pods.Items {
			db := openDB(p.Status.PodIP, adminUser, password)
			var v int
			err := db.QueryRow("SELECT @@back_log").Scan(&v)
			_ = db.Close()
			if err != nil || v != 321 {
				t.Errorf("%s: back_log %d (%v)", p.Name, v, err)
			}
		}
	})

	t.Run("scale 3 → 5 → 3 clones new replicas and never removes the primary", func(t *testing.T) {
		update(t, ns, name, func(c *kurav1alpha1.MySQLCluster) { c.Spec.Replicas = 5 })
		awaitCluster(t, ns, name, "5 healthy instances", 8*time.Minute, healthy(t, ns, name, 5))
		// Make the highest ordinal the primary, so scaling down must switch over first.
		patch := fmt.Sprintf(`{"spec":{"switchover":{"target":4,"id":"e2e-scale-%d"}}}`, time.Now().Unix())
		if out, err := exec.Command(kubectl, "--kubeconfig", lc.Kubeconfig(), "patch", "mysqlcluster", name, "-n", ns, "--type", "merge", "-p", patch).CombinedOutput(); err != nil {
			t.Fatalf("kubectl patch: %v\n%s", err, out)
		}
		awaitCluster(t, ns, name, "primary on ordinal 4", 2*time.Minute, func() error {
			if p := get(t, ns, name).Status.CurrentPrimary; p != name+"-4" {
				return fmt.Errorf("primary %s", p)
			}
			return nil
		})
		update(t, ns, name, func(c *kurav1alpha1.MySQLCluster) { c.Spec.Replicas = 3; c.Spec.Switchover = nil })
		awaitCluster(t, ns, name, "3 healthy instances with the primary moved off ordinal 4", 6*time.Minute, func() error {
			c := get(t, ns, name)
			if c.Status.CurrentPrimaryIndex == nil || *c.Status.CurrentPrimaryIndex > 2 {
				return fmt.Errorf("primary %s", c.Status.CurrentPrimary)
			}
			return healthy(t, ns, name, 3)()
		})
		if lost := missingOnPrimary(t, ns, name, []int64{1}); len(lost) > 0 {
			t.Error("data lost while scaling")
		}
	})

	t.Run("a replica whose PVC and Pod are deleted is re-cloned and rejoins the read set", func(t *testing.T) {
		c := get(t, ns, name)
		replica := fmt.Sprintf("%s-%d", name, (*c.Status.CurrentPrimaryIndex+1)%3)
		pvc := &corev1.PersistentVolumeClaim{}
		if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "data-" + replica}, pvc); err != nil {
			t.Fatal(err)
		}
		oldUID := pvc.UID
		oldPod := &corev1.Pod{}
		if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: replica}, oldPod); err != nil {
			t.Fatal(err)
		}
		if err := k8s.Delete(ctx, pvc); err != nil {
			t.Fatal(err)
		}
		if err := k8s.Delete(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: replica}}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "a new PVC for "+replica, 3*time.Minute, func() error {
			if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "data-" + replica}, pvc); err != nil {
				return err
			}
			if pvc.UID == oldUID {
				return fmt.Errorf("old PVC still there")
			}
			return nil
		})
		awaitCluster(t, ns, name, "a new, ready Pod for "+replica, 3*time.Minute, func() error {
			p := &corev1.Pod{}
			if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: replica}, p); err != nil {
				return err
			}
			if p.UID == oldPod.UID || p.Status.PodIP == "" || p.Labels[contract.LabelRole] != contract.RoleReplica {
				return fmt.Errorf("pod %s uid %s ip %q role %q", p.Name, p.UID, p.Status.PodIP, p.Labels[contract.LabelRole])
			}
			return nil
		})
		awaitCluster(t, ns, name, "the re-cloned replica healthy", 6*time.Minute, healthy(t, ns, name, 3))
		db := openDB(podIP(t, ns, replica), adminUser, adminPassword(t, ns, name))
		defer func() { _ = db.Close() }()
		var n int
		if err := db.QueryRow("SELECT COUNT(*) FROM " + appTable + " WHERE id = 1").Scan(&n); err != nil || n != 1 {
			t.Errorf("the re-cloned replica lacks the data: %d %v", n, err)
		}
	})

	t.Run("a replica whose data drifted stops on an applier error and is re-cloned", func(t *testing.T) {
		c := get(t, ns, name)
		replica := fmt.Sprintf("%s-%d", name, (*c.Status.CurrentPrimaryIndex+2)%3)
		oldPod := &corev1.Pod{}
		if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: replica}, oldPod); err != nil {
			t.Fatal(err)
		}
		const id = 777001
		primary := openDB(serviceIP(t, ns, name+"-primary"), appUser, appPassword)
		defer func() { _ = primary.Close() }()
		if _, err := primary.Exec("INSERT INTO "+appTable+" (id) VALUES (?)", id); err != nil {
			t.Fatal(err)
		}
		// The drift: the row goes from the replica outside replication (the operator's account
		// bypasses read_only and may turn the binary log off for its session).
		s := &corev1.Secret{}
		if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: name + "-credentials"}, s); err != nil {
			t.Fatal(err)
		}
		rdb := openDB(oldPod.Status.PodIP, engine.OperatorUser, string(s.Data[contract.KeyOperatorPassword]))
		waitFor(t, "the row on "+replica, time.Minute, func() error {
			var n int
			if err := rdb.QueryRow("SELECT COUNT(*) FROM "+appTable+" WHERE id = ?", id).Scan(&n); err != nil || n != 1 {
				return fmt.Errorf("%d rows (%v)", n, err)
			}
			return nil
		})
		conn, err := rdb.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range []string{"SET SESSION sql_log_bin = 0", fmt.Sprintf("DELETE FROM %s WHERE id = %d", appTable, id)} {
			if _, err := conn.ExecContext(ctx, q); err != nil {
				t.Fatalf("%s on %s: %v", q, replica, err)
			}
		}
		_ = conn.Close()
		_ = rdb.Close()
		// The primary changes the row: the replica cannot find it (applier error 1032).
		if _, err := primary.Exec("UPDATE "+appTable+" SET at = CURRENT_TIMESTAMP(6) WHERE id = ?", id); err != nil {
			t.Fatal(err)
		}
		awaitCluster(t, ns, name, replica+" re-cloned", 6*time.Minute, func() error {
			p := &corev1.Pod{}
			if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: replica}, p); err != nil {
				return err
			}
			if p.UID == oldPod.UID {
				return fmt.Errorf("%s not replaced yet (%s)", replica, instanceReason(get(t, ns, name), replica))
			}
			return healthy(t, ns, name, 3)()
		})
		db := openDB(podIP(t, ns, replica), adminUser, adminPassword(t, ns, name))
		defer func() { _ = db.Close() }()
		var n int
		if err := db.QueryRow("SELECT COUNT(*) FROM "+appTable+" WHERE id = ?", id).Scan(&n); err != nil || n != 1 {
			t.Errorf("the re-cloned replica lacks the row: %d %v", n, err)
		}
	})

	t.Run("deleting the cluster removes what it owns and keeps the PVCs", func(t *testing.T) {
		c := get(t, ns, name)
		if err := k8s.Delete(ctx, c); err != nil {
			t.Fatal(err)
		}
		for _, obj := range []client.Object{&appsv1.StatefulSet{}, &corev1.Service{}, &corev1.ConfigMap{}, &corev1.Secret{}} {
			key := types.NamespacedName{Namespace: ns, Name: name}
			switch obj.(type) {
			case *corev1.Service:
				key.Name = name + "-primary"
			case *corev1.ConfigMap:
				key.Name = name + "-config"
			case *corev1.Secret:
				key.Name = name + "-credentials"
			}
			waitFor(t, fmt.Sprintf("%T %s deleted", obj, key.Name), 2*time.Minute, func() error {
				err := k8s.Get(ctx, key, obj)
				if apierrors.IsNotFound(err) {
					return nil
				}
				return fmt.Errorf("still there (%v)", err)
			})
		}
		var pvcs corev1.PersistentVolumeClaimList
		if err := k8s.List(ctx, &pvcs, client.InNamespace(ns)); err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, p := range pvcs.Items {
			names = append(names, p.Name)
		}
		if len(pvcs.Items) < 3 {
			t.Errorf("PVCs must be kept by default (deletionPolicy Retain), found %s", strings.Join(names, ", "))
		}
	})
}
