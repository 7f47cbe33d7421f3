package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/internal/kubectlkura"
	"github.com/kura-db/kura/internal/testenv"
)

// TestKubectlKura runs the kubectl plugin binary against a real 2-instance cluster: status,
// a switchover, a refused one, and a support bundle. Each command's output is kept under
// bin/kubectl-kura-e2e/ (docs/kubectl-plugin.md shows it).
func TestKubectlKura(t *testing.T) {
	needCluster(t)
	root := testenv.RepoRoot()
	plugin := filepath.Join(root, "bin", "kubectl-kura")
	build := exec.Command("go", "build", "-o", plugin, "./cmd/kubectl-kura")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/kubectl-kura: %v\n%s", err, out)
	}
	outDir := filepath.Join(root, "bin", "kubectl-kura-e2e")
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		t.Fatal(err)
	}
	ns := newNamespace(t, "kk")
	const name = "shop"
	if err := k8s.Create(context.Background(), newCluster(ns, name, 2)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "2 healthy instances", 5*time.Minute, healthy(t, ns, name, 2))

	run := func(save string, args ...string) (string, string, error) {
		cmd := exec.Command(plugin, append([]string{"--kubeconfig", lc.Kubeconfig(), "-n", ns}, args...)...)
		var out, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &stderr
		err := cmd.Run()
		t.Logf("$ kubectl kura %s\n%s%s", strings.Join(args, " "), out.String(), stderr.String())
		if save != "" {
			_ = os.WriteFile(filepath.Join(outDir, save), append(out.Bytes(), stderr.Bytes()...), 0o644)
		}
		return out.String(), stderr.String(), err
	}

	out, stderr, err := run("status.txt", "status", name)
	if err != nil || !strings.Contains(out, "State:     Healthy") || !strings.Contains(out, "shop-0    primary") || !strings.Contains(out, "Problems:  none found") {
		t.Fatalf("status: %v\n%s%s", err, out, stderr)
	}

	before := get(t, ns, name)
	out, stderr, err = run("switchover.txt", "switchover", name, "--timeout", "2m")
	after := get(t, ns, name)
	if err != nil || after.Status.CurrentPrimary != name+"-1" || after.Status.Term != before.Status.Term+1 ||
		!strings.Contains(out, "completed: shop-1 is the primary") {
		t.Fatalf("switchover: %v (primary %s term %d → %s term %d)\n%s%s", err, before.Status.CurrentPrimary, before.Status.Term,
			after.Status.CurrentPrimary, after.Status.Term, out, stderr)
	}

	_, stderr, err = run("switchover-bad.txt", "switchover", name, "--to", "shop-5")
	if err == nil || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, `instance "shop-5" does not exist`) {
		t.Errorf("switchover to a missing instance: %v, stderr %q", err, stderr)
	}

	out, _, err = run("status-after.txt", "status", name)
	if err != nil || !strings.Contains(out, "Switchover  shop-0  shop-1") {
		t.Errorf("status after the switchover lacks the history entry: %v\n%s", err, out)
	}

	out, _, err = run("mysql-print.txt", "mysql", name, "--print", "--", "-e", "SELECT @@hostname, @@read_only")
	if err != nil || !strings.Contains(out, " shop-1 -c mysqld ") || strings.Contains(out, adminPassword(t, ns, name)) {
		t.Errorf("mysql --print: %v\n%s", err, out)
	}

	bundle := filepath.Join(t.TempDir(), "report.tar.gz")
	out, stderr, err = run("report.txt", "report", name, "-o", bundle)
	if err != nil {
		t.Fatalf("report: %v\n%s%s", err, out, stderr)
	}
	files := readBundle(t, bundle)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	_ = os.WriteFile(filepath.Join(outDir, "report-files.txt"), []byte(strings.Join(names, "\n")+"\n"), 0o644)
	for _, f := range []string{"status.txt", "history.txt", "objects/mysqlcluster.yaml", "objects/statefulset/shop.yaml", "events.txt"} {
		if _, ok := files[f]; !ok {
			t.Errorf("the bundle lacks %s: %v", f, names)
		}
	}
	if !strings.Contains(files["history.txt"], "Switchover from=shop-0 to=shop-1") {
		t.Errorf("history.txt:\n%s", files["history.txt"])
	}
	pw := adminPassword(t, ns, name)
	for n, content := range files {
		if strings.Contains(content, pw) {
			t.Errorf("%s holds the admin password", n)
		}
	}

	t.Run("backup through a BackupSchedule's storage reports the operator's outcome", func(t *testing.T) {
		ctx := context.Background()
		pvc := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "backups"},
			Spec: corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}}}
		sched := &kurav1alpha1.BackupSchedule{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "nightly"},
			Spec: kurav1alpha1.BackupScheduleSpec{Schedule: "0 3 * * *", BackupOptions: kurav1alpha1.BackupOptions{
				Cluster: name, Storage: kurav1alpha1.BackupStorage{PVC: &kurav1alpha1.PVCStorage{ClaimName: "backups"}}}}}
		for _, o := range []client.Object{pvc, sched} {
			if err := k8s.Create(ctx, o); err != nil {
				t.Fatal(err)
			}
		}
		out, stderr, err := run("backup.txt", "backup", name, "--timeout", "5m")
		// The plugin reports the operator's outcome, whichever it is: exit 0 with the location
		// for a completed Backup, exit 1 with the operator's message for a failed one.
		var list kurav1alpha1.BackupList
		if lerr := k8s.List(ctx, &list, client.InNamespace(ns)); lerr != nil || len(list.Items) != 1 {
			t.Fatalf("Backups in %s: %v %d", ns, lerr, len(list.Items))
		}
		b := list.Items[0]
		if b.Spec.Storage.PVC == nil || b.Spec.Storage.PVC.ClaimName != "backups" {
			t.Errorf("the Backup does not use the schedule's storage: %+v", b.Spec.Storage)
		}
		switch b.Status.Phase {
		case kurav1alpha1.BackupCompleted:
			if err != nil || !strings.Contains(out, "completed in") {
				t.Errorf("completed Backup: %v\n%s%s", err, out, stderr)
			}
		case kurav1alpha1.BackupFailed:
			if err == nil || !strings.Contains(stderr, "failed: "+b.Status.Message) {
				t.Errorf("failed Backup (%s): %v\n%s%s", b.Status.Message, err, out, stderr)
			}
		default:
			t.Errorf("the command returned while the Backup is %q: %v\n%s%s", b.Status.Phase, err, out, stderr)
		}
		out, _, _ = run("status-backup.txt", "status", name)
		if !strings.Contains(out, b.Name) {
			t.Errorf("status does not show the backup:\n%s", out)
		}
	})
	deleteNamespace(t, ns)
}

func readBundle(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	files, err := kubectlkura.ReadBundle(f)
	if err != nil {
		t.Fatal(err)
	}
	return files
}
