package kubectlkura

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/internal/builder"
	"github.com/kura-db/kura/internal/testenv"
)

// apiRig runs plugin commands against a real kube-apiserver (envtest). The test itself plays
// the operator where a command waits for one: it writes status as the operator would.
type apiRig struct {
	t     *testing.T
	c     client.Client
	cs    kubernetes.Interface
	clock atomic.Int64
	dir   string
}

func (r *apiRig) run(args ...string) (stdout, stderr string, code int) {
	var out, errOut bytes.Buffer
	connect := func() (*Env, error) {
		return &Env{Client: r.c, Clientset: r.cs, Namespace: "demo", Out: &out, Err: &errOut, Poll: 50 * time.Millisecond,
			Now: func() time.Time { return testNow.Add(time.Duration(r.clock.Add(1)) * time.Second) }}, nil
	}
	root := newRoot(genericiooptions.IOStreams{Out: &out, ErrOut: &errOut}, connect)
	code = execute(context.Background(), root, args, &errOut)
	return out.String(), errOut.String(), code
}

// fails checks a command failed with one line on stderr containing want.
func (r *apiRig) fails(want string, args ...string) {
	r.t.Helper()
	_, stderr, code := r.run(args...)
	if code == 0 || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, want) {
		r.t.Errorf("kubectl kura %s: exit %d, stderr %q; want a non-zero exit and one line with %q", strings.Join(args, " "), code, stderr, want)
	}
}

func (r *apiRig) cluster() *kurav1alpha1.MySQLCluster {
	r.t.Helper()
	c := &kurav1alpha1.MySQLCluster{}
	if err := r.c.Get(context.Background(), client.ObjectKey{Namespace: "demo", Name: "shop"}, c); err != nil {
		r.t.Fatal(err)
	}
	return c
}

// actAsOperator waits until spec.switchover carries a new id, then writes the outcome.
func (r *apiRig) actAsOperator(wg *sync.WaitGroup, lastID string, outcome func(c *kurav1alpha1.MySQLCluster)) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		ctx := context.Background()
		err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			c := &kurav1alpha1.MySQLCluster{}
			if err := r.c.Get(ctx, client.ObjectKey{Namespace: "demo", Name: "shop"}, c); err != nil {
				return false, err
			}
			if c.Spec.Switchover == nil || c.Spec.Switchover.ID == lastID {
				return false, nil
			}
			c.Status.Switchover = &kurav1alpha1.SwitchoverStatus{ID: c.Spec.Switchover.ID, Target: c.Spec.Switchover.Target}
			outcome(c)
			return true, r.c.Status().Update(ctx, c)
		})
		if err != nil {
			r.t.Errorf("acting as the operator: %v", err)
		}
	}()
}

func TestCommandsAgainstAPIServer(t *testing.T) {
	env := testenv.Start(t)
	cs, err := kubernetes.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	r := &apiRig{t: t, c: env.Client, cs: cs, dir: t.TempDir()}
	ctx := context.Background()
	if err := r.c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "demo"}}); err != nil {
		t.Fatal(err)
	}
	fixture := cluster()
	c := &kurav1alpha1.MySQLCluster{ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: "demo"}, Spec: fixture.Spec}
	c.Spec.Storage.Size = resource.MustParse("1Gi")
	if err := r.c.Create(ctx, c); err != nil {
		t.Fatal(err)
	}
	c.Status = fixture.Status
	c.Status.ObservedGeneration = c.Generation
	c.Status.Instances[0].LagSeconds = ptr.To[int64](95) // shop-0 lags
	c.Status.Instances[0].Healthy = false
	if err := r.c.Status().Update(ctx, c); err != nil {
		t.Fatal(err)
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "shop-credentials", Namespace: "demo", Labels: builder.SelectorLabels(c)},
		Data: map[string][]byte{"admin-password": []byte(adminPassword), "app-password": []byte(appPassword)}}
	for _, o := range []client.Object{secret,
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "shop-1", Namespace: "demo", Labels: builder.SelectorLabels(c)},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "mysqld", Image: "mariadb:11.4"}}}},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "shop-2", Namespace: "demo", Labels: builder.SelectorLabels(c)},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "mysqld", Image: "mariadb:11.4"}}}},
	} {
		if err := r.c.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("bad input is one line and a non-zero exit", func(t *testing.T) {
		r.t = t
		r.fails("usage: kubectl kura status <cluster>", "status")
		r.fails(`mysqlcluster "nope" not found in namespace "demo"`, "status", "nope")
		r.fails(`mysqlcluster "nope" not found`, "switchover", "nope")
		r.fails(`instance "shop-7" does not exist: cluster shop has shop-0 to shop-2`, "switchover", "shop", "--to", "shop-7")
		r.fails(`instance "9" does not exist`, "mysql", "shop", "--instance", "9")
		r.fails("--replica and --instance exclude each other", "mysql", "shop", "--replica", "--instance", "1")
		r.fails(`unknown command "bogus"`, "bogus")
	})

	t.Run("status", func(t *testing.T) {
		r.t = t
		out, stderr, code := r.run("status", "shop")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		for _, want := range []string{"State:     Healthy   term 3", "shop-1    primary", "shop-0 is 95s behind the primary", "Switchover  shop-2  shop-1"} {
			if !strings.Contains(out, want) {
				t.Errorf("status lacks %q:\n%s", want, out)
			}
		}
	})

	t.Run("mysql builds a kubectl exec without the password", func(t *testing.T) {
		r.t = t
		out, stderr, code := r.run("mysql", "shop", "--print", "--", "-e", "SELECT 1")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		want := `exec -i -n demo shop-1 -c mysqld -- sh -c 'MYSQL_PWD="$(cat /var/run/kura/credentials/admin-password)" exec mariadb --user=admin --host=127.0.0.1 --port=3306 --ssl-ca=/etc/kura/tls/ca.crt --ssl-verify-server-cert "$@"' kubectl-kura-mysql -e 'SELECT 1'`
		// -t is added only when stdin is a terminal.
		if out = strings.Replace(out, "exec -i -t ", "exec -i ", 1); !strings.Contains(out, want) {
			t.Errorf("mysql --print:\n%s\nwant it to contain\n%s", out, want)
		}
		if strings.Contains(out, adminPassword) || strings.Contains(out, appPassword) {
			t.Errorf("the command holds a password: %s", out)
		}
		out, _, _ = r.run("mysql", "shop", "--replica", "--user", "app", "--print")
		if !strings.Contains(out, " shop-2 ") || !strings.Contains(out, `"$(cat /var/run/kura/credentials/app-password)"`) || !strings.Contains(out, "--database=shop") {
			t.Errorf("mysql --replica --user app chose: %s (want the healthy replica shop-2, the app account and database)", out)
		}
		r.fails("instance shop-0 has no Pod", "mysql", "shop", "--instance", "0")
	})

	t.Run("switchover refused by the operator", func(t *testing.T) {
		r.t = t
		var wg sync.WaitGroup
		r.actAsOperator(&wg, "", func(c *kurav1alpha1.MySQLCluster) {
			c.Status.Switchover.Phase = "Refused"
			c.Status.Switchover.Message = "target shop-0 is lagging 95s (maxLag 30s)"
		})
		r.fails("refused by the operator: target shop-0 is lagging 95s (maxLag 30s)", "switchover", "shop", "--to", "0", "--timeout", "30s")
		wg.Wait()
		if s := r.cluster().Spec.Switchover; s == nil || s.Target != 0 || !strings.HasPrefix(s.ID, "kubectl-kura-") {
			t.Errorf("spec.switchover = %+v, want target 0 with a kubectl-kura id", s)
		}
	})

	t.Run("switchover completed", func(t *testing.T) {
		r.t = t
		last := r.cluster().Spec.Switchover.ID
		var wg sync.WaitGroup
		r.actAsOperator(&wg, last, func(c *kurav1alpha1.MySQLCluster) {
			c.Status.Switchover.Phase = "Completed"
			c.Status.CurrentPrimary, c.Status.Term = "shop-2", 4
			c.Status.History = append(c.Status.History, kurav1alpha1.TopologyChange{Term: 4, Kind: "Switchover", From: "shop-1", To: "shop-2",
				Time: metav1.NewTime(testNow), WriteUnavailableMillis: 120, AcknowledgedWrites: "AllKept"})
		})
		// No --to: the healthy replica with the least lag (shop-2; shop-0 lags).
		out, stderr, code := r.run("switchover", "shop", "--timeout", "30s")
		wg.Wait()
		if code != 0 || !strings.Contains(out, "-> shop-2") || !strings.Contains(out, "completed: shop-2 is the primary, term 4, writes paused 120 ms") {
			t.Errorf("exit %d, stdout:\n%s\nstderr: %s", code, out, stderr)
		}
		out, _, code = r.run("switchover", "shop", "--to", "shop-2")
		if code != 0 || !strings.Contains(out, "already the primary") {
			t.Errorf("switchover to the primary: exit %d: %s", code, out)
		}
	})

	t.Run("switchover of a paused cluster is refused", func(t *testing.T) {
		r.t = t
		c := r.cluster()
		c.Spec.Paused = true
		if err := r.c.Update(ctx, c); err != nil {
			t.Fatal(err)
		}
		r.fails("cluster shop is paused (spec.paused)", "switchover", "shop", "--to", "1")
		c = r.cluster()
		c.Spec.Paused = false
		if err := r.c.Update(ctx, c); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("backup", func(t *testing.T) {
		r.t = t
		r.fails("cluster shop has no BackupSchedule and no spec.binlogArchive", "backup", "shop")
		sched := &kurav1alpha1.BackupSchedule{ObjectMeta: metav1.ObjectMeta{Name: "nightly", Namespace: "demo"},
			Spec: kurav1alpha1.BackupScheduleSpec{Schedule: "0 3 * * *", BackupOptions: kurav1alpha1.BackupOptions{
				Cluster: "shop", Method: "physical", Storage: kurav1alpha1.BackupStorage{PVC: &kurav1alpha1.PVCStorage{ClaimName: "backups"}}}}}
		if err := r.c.Create(ctx, sched); err != nil {
			t.Fatal(err)
		}
		out, stderr, code := r.run("backup", "shop", "--no-wait")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		var list kurav1alpha1.BackupList
		if err := r.c.List(ctx, &list, client.InNamespace("demo")); err != nil {
			t.Fatal(err)
		}
		if len(list.Items) != 1 || list.Items[0].Spec.Storage.PVC == nil || list.Items[0].Spec.Storage.PVC.ClaimName != "backups" ||
			list.Items[0].Spec.Method != "physical" || !strings.Contains(out, "storage from backupschedule nightly") {
			t.Fatalf("backup created %+v (output %q), want the schedule's storage and method", list.Items, out)
		}

		// Followed to a failure: the operator's message, non-zero exit.
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
				var l kurav1alpha1.BackupList
				if err := r.c.List(ctx, &l, client.InNamespace("demo")); err != nil || len(l.Items) < 2 {
					return false, err
				}
				for _, b := range l.Items {
					if b.Name != list.Items[0].Name {
						b.Status.Phase, b.Status.Message = kurav1alpha1.BackupFailed, "no space left on device"
						return true, r.c.Status().Update(ctx, &b)
					}
				}
				return false, nil
			})
		}()
		r.fails("failed: no space left on device", "backup", "shop", "--timeout", "30s")
		<-done
	})

	t.Run("restore", func(t *testing.T) {
		r.t = t
		snap := testNow.Add(-time.Hour).Truncate(time.Second)
		done := &kurav1alpha1.Backup{ObjectMeta: metav1.ObjectMeta{Name: "shop-done", Namespace: "demo"},
			Spec: kurav1alpha1.BackupSpec{BackupOptions: kurav1alpha1.BackupOptions{Cluster: "shop", Method: "physical",
				Storage: kurav1alpha1.BackupStorage{PVC: &kurav1alpha1.PVCStorage{ClaimName: "backups"}}}}}
		running := done.DeepCopy()
		running.Name = "shop-running"
		for _, b := range []*kurav1alpha1.Backup{done, running} {
			if err := r.c.Create(ctx, b); err != nil {
				t.Fatal(err)
			}
		}
		done.Status = kurav1alpha1.BackupStatus{Phase: kurav1alpha1.BackupCompleted, GTIDPosition: "0-1000-42", SizeBytes: 3 << 20,
			SnapshotTime: &metav1.Time{Time: snap}}
		running.Status.Phase = kurav1alpha1.BackupRunning
		for _, b := range []*kurav1alpha1.Backup{done, running} {
			if err := r.c.Status().Update(ctx, b); err != nil {
				t.Fatal(err)
			}
		}
		restores := func() []kurav1alpha1.Restore {
			var l kurav1alpha1.RestoreList
			if err := r.c.List(ctx, &l, client.InNamespace("demo")); err != nil {
				t.Fatal(err)
			}
			return l.Items
		}

		// Refused before anything is created, each in one line.
		r.fails("--to names the new cluster", "restore", "shop-done")
		r.fails(`backup "nope" not found in namespace demo`, "restore", "nope", "--to", "shop2")
		r.fails("backup shop-running is Running, not Completed", "restore", "shop-running", "--to", "shop2")
		r.fails(`cluster "shop" already exists in namespace demo`, "restore", "shop-done", "--to", "shop")
		r.fails("give --time or --gtid, not both", "restore", "shop-done", "--to", "shop2", "--time", "2026-01-01T00:00:00Z", "--gtid", "0-1000-50")
		r.fails("is not an RFC 3339 time", "restore", "shop-done", "--to", "shop2", "--time", "yesterday")
		r.fails("cluster shop has no spec.binlogArchive", "restore", "shop-done", "--to", "shop2", "--gtid", "0-1000-50")
		r.fails("give --to (a new cluster) or --into-existing (in place), not both", "restore", "shop-done", "--to", "shop2", "--into-existing", "shop")
		r.fails(`cluster "gone" not found in namespace demo: --into-existing names the cluster to restore in place`, "restore", "shop-done", "--into-existing", "gone")
		r.fails("cluster shop has no spec.binlogArchive", "restore", "shop-done", "--into-existing", "shop", "--gtid", "0-1000-50")
		if l := restores(); len(l) != 0 {
			t.Fatalf("refused restores created %d Restores", len(l))
		}

		// A dry run prints the plan and validates with the API server; it creates nothing.
		out, stderr, code := r.run("restore", "shop-done", "--to", "shop2", "--dry-run")
		if code != 0 {
			t.Fatalf("dry run: exit %d: %s", code, stderr)
		}
		for _, want := range []string{"backup:  shop-done (physical, 3.0 MiB, consistent at GTID 0-1000-42, " + snap.UTC().Format(time.RFC3339) + ")",
			"into:    new cluster demo/shop2", "replay:  nothing: the data as of the backup's point", "nothing was created"} {
			if !strings.Contains(out, want) {
				t.Errorf("dry run output lacks %q:\n%s", want, out)
			}
		}
		if l := restores(); len(l) != 0 {
			t.Fatalf("a dry run created %d Restores", len(l))
		}
		// In place: the plan says what happens to the cluster's volumes.
		out, stderr, code = r.run("restore", "shop-done", "--into-existing", "shop", "--dry-run")
		if code != 0 || !strings.Contains(out, "into:    cluster demo/shop in place: its instances stop, it switches to new volumes seeded from the backup; the old volumes are kept") ||
			!strings.Contains(out, "nothing was created") {
			t.Errorf("in-place dry run: exit %d: %s%s", code, out, stderr)
		}
		if l := restores(); len(l) != 0 {
			t.Fatalf("a dry run created %d Restores", len(l))
		}
		// The API server's validation is part of the dry run: a name it refuses fails.
		r.fails("the API server refuses the Restore", "restore", "shop-done", "--to", "Shop_2", "--dry-run")

		// For real, followed to the end while the test plays the operator.
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
				l := restores()
				if len(l) != 1 {
					return false, nil
				}
				rs := l[0]
				now := metav1.Now()
				rs.Status.Phase, rs.Status.Cluster, rs.Status.StartTime, rs.Status.CompletionTime = kurav1alpha1.RestoreCompleted, "shop2", &metav1.Time{Time: now.Add(-90 * time.Second)}, &now
				rs.Status.Message, rs.Status.GTIDReached = "shop2 restored up to GTID 0-1000-42 and is available", "0-1000-42"
				return true, r.c.Status().Update(ctx, &rs)
			})
			if err != nil {
				t.Errorf("acting as the operator: %v", err)
			}
		}()
		out, stderr, code = r.run("restore", "shop-done", "--to", "shop2", "--timeout", "30s")
		wg.Wait()
		if code != 0 {
			t.Fatalf("restore: exit %d: %s", code, stderr)
		}
		l := restores()
		if len(l) != 1 || l[0].Spec.Backup != "shop-done" || l[0].Spec.Target.NewCluster != "shop2" || l[0].Spec.PointInTime != nil {
			t.Fatalf("created %+v", l)
		}
		if !strings.Contains(out, "restore demo/"+l[0].Name+" created") || !strings.Contains(out, "completed in 1m30s: cluster shop2 at GTID 0-1000-42") {
			t.Errorf("output:\n%s", out)
		}
	})

	t.Run("report", func(t *testing.T) {
		r.t = t
		file := filepath.Join(r.dir, "bundle.tar.gz")
		out, stderr, code := r.run("report", "shop", "-o", file)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		files := unpack(t, data)
		if !strings.Contains(files["status.txt"], "shop-2") || !strings.Contains(files["objects/backupschedule/nightly.yaml"], "claimName: backups") ||
			!strings.Contains(files["objects/secret/shop-credentials.yaml"], "admin-password") {
			t.Errorf("report lacks the cluster's state: %v", keys(files))
		}
		// envtest has no kubelet (empty logs) and no operator: the bundle says what is missing.
		if _, ok := files["logs/shop-1/mysqld.log"]; !ok {
			t.Errorf("no log file for shop-1's mysqld: %v", keys(files))
		}
		if !strings.Contains(files["errors.txt"], "no operator Pod found") {
			t.Errorf("errors.txt:\n%s", files["errors.txt"])
		}
		for name, content := range files {
			if strings.Contains(content, adminPassword) || strings.Contains(content, appPassword) {
				t.Errorf("%s holds a password", name)
			}
		}
		if !strings.Contains(out, "wrote "+file) {
			t.Errorf("output: %s", out)
		}
	})
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
