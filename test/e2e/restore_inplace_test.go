package e2e

import (
	"context"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/internal/contract"
)

// An in-place restore end to end, through kubectl: rows, a physical backup, more rows; a
// Restore into the cluster itself leaves exactly the backup's rows behind the primary Service
// and keeps the old volumes, labelled; a rollback brings the rows written after the backup
// back, with the primary the old volumes had (shop-1, after a switchover) reopened by the
// clustering loop from the records the Restore saved; a second in-place restore, confirmed,
// deletes the old volumes.
func TestRestoreInPlace(t *testing.T) {
	needCluster(t)
	ns := newNamespace(t, "inplace")
	ctx := context.Background()
	s3 := startS3(t, ns)
	if err := k8s.Create(ctx, newCluster(ns, "shop", 2)); err != nil {
		t.Fatal(err)
	}
	awaitCluster(t, ns, "shop", "2 healthy instances", 5*time.Minute, healthy(t, ns, "shop", 2))
	// The old volumes' primary is shop-1: a rollback from nothing would make shop-0 primary.
	kubectlRun(t, "", "patch", "mysqlcluster", "shop", "-n", ns, "--type", "merge", "-p", `{"spec":{"switchover":{"target":1,"id":"e2e-inplace"}}}`)
	awaitCluster(t, ns, "shop", "switchover to shop-1", 2*time.Minute, func() error {
		c := &kurav1alpha1.MySQLCluster{}
		if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "shop"}, c); err != nil {
			return err
		}
		if c.Status.Switchover == nil || c.Status.Switchover.Phase != "Completed" || c.Status.CurrentPrimary != "shop-1" {
			return fmt.Errorf("switchover %+v primary %s", c.Status.Switchover, c.Status.CurrentPrimary)
		}
		return nil
	})
	awaitCluster(t, ns, "shop", "2 healthy instances after the switchover", 2*time.Minute, healthy(t, ns, "shop", 2))
	setupApp(t, ns, "shop")
	rows := func() []int64 {
		return tableIDs(t, serviceIP(t, ns, "shop-primary"), adminUser, adminPassword(t, ns, "shop"), math.MaxInt64)
	}

	w := startWriter(serviceIP(t, ns, "shop-primary"), 1)
	w.waitFlowing(t)
	w.halt()
	atBackup := rows()
	physicalBackup(t, ns, "base", s3.Endpoint)
	w = startWriter(serviceIP(t, ns, "shop-primary"), 100000)
	w.waitFlowing(t)
	w.halt()
	all := rows()
	if len(all) <= len(atBackup) {
		t.Fatalf("%d rows after the backup, %d at it", len(all), len(atBackup))
	}

	inPlace := func(name string) *kurav1alpha1.Restore {
		t.Helper()
		kubectlRun(t, fmt.Sprintf(`apiVersion: kura.dev/v1alpha1
kind: Restore
metadata: {name: %s, namespace: %s}
spec:
  backup: base
  target: {existingCluster: shop}
  keepOldVolumesFor: 1h
`, name, ns), "apply", "-f", "-")
		return awaitRestore(t, ns, name, kurav1alpha1.RestoreCompleted)
	}
	rs := inPlace("undo")
	t.Logf("in place: %s", rs.Status.Message)
	if got := rows(); !slices.Equal(got, atBackup) {
		t.Fatalf("after the in-place restore the cluster holds %d rows, want the backup's %d", len(got), len(atBackup))
	}
	for _, pvc := range []string{"data-shop-0", "data-shop-1"} {
		if l := claimLabel(t, ns, pvc); l != "undo" {
			t.Errorf("old volume %s: kept-by-restore %q, want undo", pvc, l)
		}
	}
	if ip := rs.Status.InPlace; ip == nil || !slices.Equal(ip.KeptVolumes, []string{"data-shop-0", "data-shop-1"}) || ip.DeleteKeptVolumesAfter == nil {
		t.Errorf("in-place status %+v", ip)
	}
	awaitCluster(t, ns, "shop", "2 healthy instances on the restored volumes", 5*time.Minute, healthy(t, ns, "shop", 2))

	if p := rs.Status.InPlace.PreviousRecords; p == nil || p.CurrentPrimary != "shop-1" || p.VolumeSet != "data" {
		t.Errorf("saved records %+v", p)
	}
	restored := &kurav1alpha1.MySQLCluster{}
	if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "shop"}, restored); err != nil {
		t.Fatal(err)
	}

	kubectlRun(t, "", "annotate", "-n", ns, "restore", "undo", contract.AnnotationRollback+"=true")
	awaitRestore(t, ns, "undo", kurav1alpha1.RestoreRolledBack)
	awaitCluster(t, ns, "shop", "2 healthy instances on the old volumes", 5*time.Minute, healthy(t, ns, "shop", 2))
	if got := rows(); !slices.Equal(got, all) {
		t.Fatalf("after the rollback the cluster holds %d rows, want the %d it had", len(got), len(all))
	}
	back := &kurav1alpha1.MySQLCluster{}
	if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "shop"}, back); err != nil {
		t.Fatal(err)
	}
	// The old volumes' primary (shop-1) is reopened, or, when the reopen guard cannot show it
	// holds everything status recorded for it, replaced by a failover to shop-0; either way
	// without a person, with every row, under a term that never goes back.
	if back.Status.CurrentPrimary == "" || back.Status.Term < restored.Status.Term {
		t.Fatalf("after the rollback: primary %q term %d, want an old volume's instance under a term of at least %d",
			back.Status.CurrentPrimary, back.Status.Term, restored.Status.Term)
	}
	t.Logf("after the rollback: %s is the primary (term %d; shop-1 was before the restore)", back.Status.CurrentPrimary, back.Status.Term)
	// The restored volumes go at once on confirmation; a new in-place restore waits for that.
	kubectlRun(t, "", "annotate", "-n", ns, "restore", "undo", contract.AnnotationConfirm+"=true")
	waitFor(t, "the rolled-back restore's volumes deleted", time.Minute, func() error {
		rs := &kurav1alpha1.Restore{}
		if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "undo"}, rs); err != nil {
			return err
		}
		if !rs.Status.InPlace.KeptVolumesDeleted {
			return fmt.Errorf("in place %+v", rs.Status.InPlace)
		}
		return nil
	})

	inPlace("again")
	if got := rows(); !slices.Equal(got, atBackup) {
		t.Fatalf("after the second in-place restore the cluster holds %d rows, want the backup's %d", len(got), len(atBackup))
	}
	kubectlRun(t, "", "annotate", "-n", ns, "restore", "again", contract.AnnotationConfirm+"=true")
	waitFor(t, "the old volumes deleted on confirmation", 2*time.Minute, func() error {
		for _, pvc := range []string{"data-shop-0", "data-shop-1"} {
			err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: pvc}, &corev1.PersistentVolumeClaim{})
			if !apierrors.IsNotFound(err) {
				return fmt.Errorf("%s: %v", pvc, err)
			}
		}
		return nil
	})
	if got := rows(); !slices.Equal(got, atBackup) {
		t.Fatalf("after the confirmation the cluster holds %d rows, want the backup's %d", len(got), len(atBackup))
	}
}

func awaitRestore(t *testing.T, ns, name string, phase kurav1alpha1.RestorePhase) *kurav1alpha1.Restore {
	t.Helper()
	rs := &kurav1alpha1.Restore{}
	awaitCluster(t, ns, "shop", "Restore "+name+" "+string(phase), 10*time.Minute, func() error {
		if err := k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, rs); err != nil {
			return err
		}
		if rs.Status.Phase == kurav1alpha1.RestoreFailed {
			t.Fatalf("Restore %s failed: %s", name, rs.Status.Message)
		}
		if rs.Status.Phase != phase {
			return fmt.Errorf("phase %s: %s", rs.Status.Phase, rs.Status.Message)
		}
		return nil
	})
	return rs
}

func claimLabel(t *testing.T, ns, name string) string {
	t.Helper()
	pvc := &corev1.PersistentVolumeClaim{}
	if err := k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, pvc); err != nil {
		t.Fatal(err)
	}
	return pvc.Labels[contract.LabelKeptByRestore]
}
