package e2e

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	backuprun "github.com/kura-db/kura/backup"
	"github.com/kura-db/kura/backup/s3test"
	"github.com/kura-db/kura/backup/storage"
	"github.com/kura-db/kura/internal/contract"
	"github.com/kura-db/kura/internal/gtid"
	"github.com/kura-db/kura/test/localcluster"
)

// backupEnv is what the backup cases share: one two-instance cluster with the application's
// table, and a real S3 server (versitygw) listening on the local cluster's bridge address,
// which the backup Jobs' Pods reach as they would reach any S3 endpoint.
type backupEnv struct {
	ns       string
	cluster  *kurav1alpha1.MySQLCluster
	s3       *s3test.Server
	bucket   *storage.S3
	layout   backuprun.Layout
	endpoint string
}

// Backups end to end, through kubectl: a schedule every minute whose retention prunes; a
// logical and a physical backup under writes, consistent with the GTID position they report
// and stored with the checksum their status shows; a bad bucket, refused credentials and an
// endpoint that does not answer each fail once (never retried) with what to fix, leaving
// nothing in the bucket. The cases share one cluster and run side by side.
func TestBackups(t *testing.T) {
	e := newBackupEnv(t, "backup")

	// The schedule waits for minute boundaries: the other cases run meanwhile.
	t.Run("side by side", func(t *testing.T) {
		t.Run("a schedule every minute takes backups and retention prunes them", func(t *testing.T) {
			t.Parallel()
			e.testSchedule(t)
		})
		t.Run("one-off", func(t *testing.T) {
			t.Parallel()
			t.Run("storage failures say what to fix and leave nothing", e.testStorageFailures)
			t.Run("a killed run's leftovers go with its failed Backup", e.testLeftoversGoWithTheBackup)
			t.Run("logical and physical backups under writes", e.testUnderWrites)
		})
	})
}

// newBackupEnv starts the S3 server and a two-instance cluster with the application's table
// in a new namespace, with the S3 key Secrets s3-keys (right) and s3-wrong (refused).
func newBackupEnv(t *testing.T, prefix string) *backupEnv {
	needCluster(t)
	e := &backupEnv{ns: newNamespace(t, prefix)}
	ctx := context.Background()
	if err := k8s.Create(ctx, newCluster(e.ns, "shop", 2)); err != nil {
		t.Fatal(err)
	}
	e.s3 = s3test.StartAt(t, localcluster.HostIP, "backups")
	e.endpoint = e.s3.Endpoint
	st, err := storage.NewS3(storage.S3Config{Endpoint: e.endpoint, Region: "us-east-1", Bucket: "backups", PathStyle: true,
		AccessKeyID: s3test.AccessKey, SecretAccessKey: s3test.SecretKey})
	if err != nil {
		t.Fatal(err)
	}
	e.bucket = st
	for name, secret := range map[string]string{"s3-keys": s3test.SecretKey, "s3-wrong": "not-the-secret"} {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: e.ns, Name: name},
			StringData: map[string]string{"AWS_ACCESS_KEY_ID": s3test.AccessKey, "AWS_SECRET_ACCESS_KEY": secret}}
		if err := k8s.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "2 healthy instances", 5*time.Minute, healthy(t, e.ns, "shop", 2))
	e.cluster = get(t, e.ns, "shop")
	e.layout = backuprun.Layout{Namespace: e.ns, Cluster: "shop", Lineage: string(e.cluster.UID)}
	setupApp(t, e.ns, "shop")
	return e
}

// backupYAML is a Backup or BackupSchedule manifest for kubectl apply.
func (e *backupEnv) backupYAML(kind, name, extra string, s3 map[string]string) string {
	s := map[string]string{"endpoint": e.endpoint, "bucket": "backups", "secret": "s3-keys"}
	for k, v := range s3 {
		s[k] = v
	}
	return fmt.Sprintf(`apiVersion: kura.dev/v1alpha1
kind: %s
metadata:
  name: %s
  namespace: %s
spec:
  cluster: shop
  storage:
    s3:
      endpoint: %s
      region: us-east-1
      bucket: %s
      credentialsSecret:
        name: %s
%s`, kind, name, e.ns, s["endpoint"], s["bucket"], s["secret"], extra)
}

func kubectlRun(t testing.TB, stdin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(kubectl, append([]string{"--kubeconfig", lc.Kubeconfig()}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func (e *backupEnv) apply(t testing.TB, manifest string) {
	t.Helper()
	kubectlRun(t, manifest, "apply", "-f", "-")
}

// waitBackup waits with kubectl for the Backup's phase and returns it.
func (e *backupEnv) waitBackup(t testing.TB, name string, phase kurav1alpha1.BackupPhase, timeout time.Duration) *kurav1alpha1.Backup {
	t.Helper()
	return e.waitBackupField(t, name, "{.status.phase}", string(phase), timeout, func(b *kurav1alpha1.Backup) string {
		return fmt.Sprintf("status: %+v\n%s", b.Status, e.jobLog(b.Status.JobName))
	})
}

// waitBackupField waits with kubectl until the Backup's field (a JSONPath) has value; on a
// timeout it fails with what explain says of the Backup and what the operator said.
func (e *backupEnv) waitBackupField(t testing.TB, name, path, value string, timeout time.Duration, explain func(*kurav1alpha1.Backup) string) *kurav1alpha1.Backup {
	t.Helper()
	cmd := exec.Command(kubectl, "--kubeconfig", lc.Kubeconfig(), "wait", "-n", e.ns, "--for=jsonpath="+path+"="+value,
		"backups.kura.dev/"+name, fmt.Sprintf("--timeout=%ds", int(timeout.Seconds())))
	out, err := cmd.CombinedOutput()
	b := &kurav1alpha1.Backup{}
	if gerr := k8s.Get(context.Background(), types.NamespacedName{Namespace: e.ns, Name: name}, b); gerr != nil {
		t.Fatal(gerr)
	}
	if err != nil {
		t.Fatalf("kubectl wait for Backup %s %s to be %s: %v\n%s\n%s\n%s", name, path, value, err, out, explain(b), e.diagnose(name))
	}
	return b
}

// diagnose is what the operator said about a Backup: its events and the operator's log lines
// that name it.
func (e *backupEnv) diagnose(name string) string {
	ev, _ := exec.Command(kubectl, "--kubeconfig", lc.Kubeconfig(), "get", "events", "-n", e.ns, "--field-selector", "involvedObject.name="+name).CombinedOutput()
	logs, _ := exec.Command(kubectl, "--kubeconfig", lc.Kubeconfig(), "logs", "-n", "kura-system", "deployment/kura", "--tail=2000").CombinedOutput()
	var lines []string
	for _, l := range strings.Split(string(logs), "\n") {
		if strings.Contains(l, name) || strings.Contains(l, "rror") {
			lines = append(lines, l)
		}
	}
	return "events:\n" + string(ev) + "operator log:\n" + strings.Join(lines[max(0, len(lines)-40):], "\n")
}

// jobLog is the log of a Backup's Job Pod (for failure messages).
func (e *backupEnv) jobLog(job string) string {
	if job == "" {
		return ""
	}
	out, _ := exec.Command(kubectl, "--kubeconfig", lc.Kubeconfig(), "logs", "-n", e.ns, "job/"+job, "--all-containers").CombinedOutput()
	return string(out)
}

// left lists the stored objects and unfinished uploads under a backup's prefix.
func (e *backupEnv) left(t testing.TB, name string) []string {
	t.Helper()
	ctx := context.Background()
	objs, err := e.bucket.List(ctx, e.layout.BackupPrefix(name))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, o := range objs {
		out = append(out, o.Key)
	}
	unfinished, err := e.bucket.Incomplete(ctx, e.layout.BackupPrefix(name))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range unfinished {
		out = append(out, "unfinished upload "+k)
	}
	return out
}

// checkStored reads the backup's data back from the bucket: its size and SHA-256 are the
// status's and the manifest's. It returns the manifest and the uncompressed data.
func (e *backupEnv) checkStored(t testing.TB, b *kurav1alpha1.Backup) (backuprun.Manifest, []byte) {
	t.Helper()
	ctx := context.Background()
	m, err := backuprun.Verify(ctx, e.bucket, e.layout, b.Name)
	if err != nil {
		t.Fatalf("%s: %v", b.Name, err)
	}
	if want := e.bucket.Location(e.layout.BackupPrefix(b.Name)); b.Status.Location != want {
		t.Errorf("%s: status location %s, want %s", b.Name, b.Status.Location, want)
	}
	if len(m.Objects) != 1 {
		t.Fatalf("%s: manifest objects %+v", b.Name, m.Objects)
	}
	r, err := e.bucket.Get(ctx, e.layout.BackupPrefix(b.Name)+m.Objects[0].Name)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = r.Close() }()
	h := sha256.New()
	d, err := backuprun.Decompress(m.Compression, io.TeeReader(r, h))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(d)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(h, r)
	if sum := hex.EncodeToString(h.Sum(nil)); sum != b.Status.SHA256 || sum != m.Objects[0].SHA256 || b.Status.SizeBytes != m.Objects[0].Size {
		t.Errorf("%s: stored SHA-256 %s; status %s (%d bytes), manifest %s (%d bytes)", b.Name, sum, b.Status.SHA256, b.Status.SizeBytes, m.Objects[0].SHA256, m.Objects[0].Size)
	}
	if m.Consistent.GTIDSet != b.Status.GTIDPosition || b.Status.GTIDPosition == "" {
		t.Errorf("%s: status GTID %q, manifest %q", b.Name, b.Status.GTIDPosition, m.Consistent.GTIDSet)
	}
	return m, raw
}

// tableRows is the manifest's row count of db.table (-1 when it lists none).
func tableRows(m backuprun.Manifest, db, table string) int64 {
	for _, tr := range m.Tables {
		if tr.Database == db && tr.Table == table {
			return tr.Rows
		}
	}
	return -1
}

// seqOf is the highest seq_no of domain 0 in a MariaDB GTID set.
func seqOf(t testing.TB, s string) uint64 {
	t.Helper()
	set, err := gtid.Parse(gtid.MariaDB, s)
	if err != nil {
		t.Fatalf("GTID %q: %v", s, err)
	}
	var seq uint64
	for _, g := range set.MariaDBGTIDs() {
		if g.Domain == 0 && g.Seq > seq {
			seq = g.Seq
		}
	}
	return seq
}

func (e *backupEnv) primarySeq(t testing.TB) uint64 {
	t.Helper()
	db := openDB(serviceIP(t, e.ns, "shop-primary"), adminUser, adminPassword(t, e.ns, "shop"))
	defer func() { _ = db.Close() }()
	var pos string
	waitFor(t, "the primary's GTID position", 30*time.Second, func() error {
		return db.QueryRow("SELECT @@gtid_binlog_pos").Scan(&pos)
	})
	return seqOf(t, pos)
}

var tuple = regexp.MustCompile(`\(([0-9]+),'`)

// dumpedIDs returns the writer's ids in a dump of shop.t, in order.
func dumpedIDs(t testing.TB, dump []byte) []int64 {
	t.Helper()
	var ids []int64
	sc := bufio.NewScanner(strings.NewReader(string(dump)))
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	in := false // in an INSERT into t: its rows follow, on its line or one per line, up to a ';'
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "INSERT INTO `t` VALUES"); ok {
			in, line = true, rest
		}
		if !in {
			continue
		}
		for _, m := range tuple.FindAllStringSubmatch(line, -1) {
			id, _ := strconv.ParseInt(m[1], 10, 64)
			ids = append(ids, id)
		}
		in = !strings.HasSuffix(line, ";")
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return ids
}

// gtidWriter inserts ids 1, 2, … into the application's table, one per transaction, and
// records the GTID sequence number each one committed with (@@last_gtid of its session).
type gtidWriter struct {
	mu   sync.Mutex
	seqs []uint64 // seqs[i] is the seq_no of id i+1
	err  error
	stop chan struct{}
	done chan struct{}
}

func startGTIDWriter(t testing.TB, host string) *gtidWriter {
	w := &gtidWriter{stop: make(chan struct{}), done: make(chan struct{})}
	db := openDB(host, appUser, appPassword)
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(w.done)
		defer func() { _ = conn.Close(); _ = db.Close() }()
		for id := int64(1); ; id++ {
			select {
			case <-w.stop:
				return
			default:
			}
			var last string
			_, err := conn.ExecContext(context.Background(), "INSERT INTO "+appTable+" (id) VALUES (?)", id)
			if err == nil {
				err = conn.QueryRowContext(context.Background(), "SELECT @@last_gtid").Scan(&last)
			}
			var seq uint64
			if err == nil {
				_, rest, _ := strings.Cut(last, "-")
				_, tail, _ := strings.Cut(rest, "-")
				seq, err = strconv.ParseUint(tail, 10, 64)
			}
			w.mu.Lock()
			if err != nil {
				w.err = fmt.Errorf("write of id %d: %w (last_gtid %q)", id, err, last)
				w.mu.Unlock()
				return
			}
			w.seqs = append(w.seqs, seq)
			w.mu.Unlock()
		}
	}()
	return w
}

func (w *gtidWriter) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.seqs)
}

func (w *gtidWriter) halt(t testing.TB) []uint64 {
	t.Helper()
	close(w.stop)
	<-w.done
	if w.err != nil {
		t.Fatal(w.err)
	}
	return w.seqs
}

func (e *backupEnv) testUnderWrites(t *testing.T) {
	before := e.primarySeq(t)
	w := startGTIDWriter(t, serviceIP(t, e.ns, "shop-primary"))
	waitFor(t, "writes flowing", 30*time.Second, func() error {
		if n := w.count(); n < 20 {
			return fmt.Errorf("%d writes", n)
		}
		return nil
	})
	start := time.Now()
	e.apply(t, e.backupYAML("Backup", "logical-1", "  method: logical\n", nil)+"---\n"+e.backupYAML("Backup", "physical-1", "  method: physical\n", nil))
	logical := e.waitBackup(t, "logical-1", kurav1alpha1.BackupCompleted, 3*time.Minute)
	physical := e.waitBackup(t, "physical-1", kurav1alpha1.BackupCompleted, 3*time.Minute)
	t.Logf("both backups completed %s after kubectl apply", time.Since(start).Round(time.Millisecond))
	seqs := w.halt(t)
	after := e.primarySeq(t)

	for _, b := range []*kurav1alpha1.Backup{logical, physical} {
		if b.Status.SourceInstance != "shop-1" {
			t.Errorf("%s: read from %s, want the replica shop-1", b.Name, b.Status.SourceInstance)
		}
	}
	// Logical: the dump holds exactly the writer's first N rows, and the GTID position it
	// reports is the one right after row N committed and before row N+1 did.
	lm, dump := e.checkStored(t, logical)
	ids := dumpedIDs(t, dump)
	for i, id := range ids {
		if id != int64(i+1) {
			t.Fatalf("logical: dumped ids are not the writer's first %d: position %d holds %d", len(ids), i, id)
		}
	}
	n := len(ids)
	if n == 0 || n >= len(seqs) {
		t.Fatalf("logical: %d writer rows dumped of %d written: the backup did not run under writes", n, len(seqs))
	}
	if got := seqOf(t, logical.Status.GTIDPosition); got < seqs[n-1] || got >= seqs[n] {
		t.Errorf("logical: GTID %s (seq %d) with %d writer rows; row %d committed as seq %d and row %d as seq %d",
			logical.Status.GTIDPosition, got, n, n, seqs[n-1], n+1, seqs[n])
	}
	if rows := tableRows(lm, "shop", "t"); rows != int64(n) {
		t.Errorf("logical: the manifest counts %d rows of shop.t, the dump holds %d", rows, n)
	}
	t.Logf("logical: %d of %d written rows, GTID %s, %d bytes stored", n, len(seqs), logical.Status.GTIDPosition, logical.Status.SizeBytes)

	// Physical: the full GTID state at the copy point, between the executed sets read around
	// the copy, during the writes (restoring it is the engine tier's
	// TestPhysicalBackupUnderWritesRestores).
	m, _ := e.checkStored(t, physical)
	got, lo, hi := seqOf(t, physical.Status.GTIDPosition), seqOf(t, m.Consistent.ExecutedBefore), seqOf(t, m.Consistent.ExecutedAfter)
	if got < lo || got > hi || got <= before || got > after {
		t.Errorf("physical: GTID seq %d outside the copy's bounds [%d, %d] or the writes' (%d, %d]", got, lo, hi, before, after)
	}
	t.Logf("physical: GTID %s, %d bytes stored", physical.Status.GTIDPosition, physical.Status.SizeBytes)
}

func (e *backupEnv) testStorageFailures(t *testing.T) {
	cases := []struct {
		name string
		s3   map[string]string
		want []string
	}{
		{"bad-bucket", map[string]string{"bucket": "no-such-bucket"}, []string{`bucket "no-such-bucket" does not exist`, "fix spec.storage.s3.bucket"}},
		{"wrong-keys", map[string]string{"secret": "s3-wrong"}, []string{"the credentials were refused", "spec.storage.s3.credentialsSecret"}},
		{"no-endpoint", map[string]string{"endpoint": "http://" + localcluster.HostIP + ":1"}, []string{"the endpoint did not answer", "check spec.storage.s3.endpoint"}},
	}
	var manifests []string
	for _, c := range cases {
		manifests = append(manifests, e.backupYAML("Backup", c.name, "", c.s3))
	}
	e.apply(t, strings.Join(manifests, "---\n"))
	for _, c := range cases {
		b := e.waitBackup(t, c.name, kurav1alpha1.BackupFailed, 3*time.Minute)
		for _, w := range c.want {
			if !strings.Contains(b.Status.Message, w) {
				t.Errorf("%s: message %q does not say %q", c.name, b.Status.Message, w)
			}
		}
		job := &batchv1.Job{}
		if err := k8s.Get(context.Background(), types.NamespacedName{Namespace: e.ns, Name: b.Status.JobName}, job); err != nil {
			t.Fatal(err)
		}
		if job.Status.Failed != 1 || job.Status.Active != 0 || *job.Spec.BackoffLimit != 0 {
			t.Errorf("%s: the Job ran %d times (%d active, backoffLimit %d); a failed backup is never retried", c.name, job.Status.Failed, job.Status.Active, *job.Spec.BackoffLimit)
		}
		if left := e.left(t, c.name); len(left) != 0 {
			t.Errorf("%s: the failed backup left %v", c.name, left)
		}
		if _, err := backuprun.ReadManifest(context.Background(), e.bucket, e.layout, c.name); err == nil {
			t.Errorf("%s: a failed backup has a manifest", c.name)
		}
		t.Logf("%s: %s", c.name, b.Status.Message)
	}
	if entries, err := os.ReadDir(e.s3.Dir); err != nil || len(entries) != 1 {
		t.Errorf("the server holds %v (%v); only the bucket backups may exist", entries, err)
	}
}

func (e *backupEnv) testSchedule(t *testing.T) {
	ctx := context.Background()
	start := time.Now()
	e.apply(t, e.backupYAML("BackupSchedule", "minutely", "  schedule: \"* * * * *\"\n  retention:\n    keepLast: 1\n", nil))
	// Two runs complete; the first is then pruned, and its stored data deleted.
	var completed []string
	waitFor(t, "two scheduled backups completed", 4*time.Minute, func() error {
		list := &kurav1alpha1.BackupList{}
		if err := k8s.List(ctx, list, client.InNamespace(e.ns), client.MatchingLabels{contract.LabelSchedule: "minutely"}); err != nil {
			return err
		}
		for _, b := range list.Items {
			if b.Status.Phase == kurav1alpha1.BackupFailed {
				t.Fatalf("scheduled Backup %s failed: %s", b.Name, b.Status.Message)
			}
			if b.Status.Phase == kurav1alpha1.BackupCompleted && !contains(completed, b.Name) {
				completed = append(completed, b.Name)
				e.checkStored(t, &b)
			}
		}
		if len(completed) < 2 {
			return fmt.Errorf("completed so far: %v", completed)
		}
		return nil
	})
	t.Logf("scheduled backups %v completed within %s", completed, time.Since(start).Round(time.Second))
	first := completed[0]
	waitFor(t, "retention to prune "+first, 2*time.Minute, func() error {
		err := k8s.Get(ctx, types.NamespacedName{Namespace: e.ns, Name: first}, &kurav1alpha1.Backup{})
		if !apierrors.IsNotFound(err) {
			return fmt.Errorf("%s still exists (%v)", first, err)
		}
		if left := e.left(t, first); len(left) != 0 {
			return fmt.Errorf("%s is gone but its objects stay: %v", first, left)
		}
		return nil
	})
	// Stop the schedule so nothing more runs while the other cases finish.
	kubectlRun(t, "", "delete", "-n", e.ns, "backupschedules.kura.dev/minutely", "--wait=false")
	if _, err := backuprun.ReadManifest(ctx, e.bucket, e.layout, completed[1]); err != nil {
		t.Errorf("the newest scheduled backup must stay: %v", err)
	}
}

// A run that fails in the tool (a database that does not exist) fails its Backup with the
// tool's words and stores nothing; what a run killed outright would have left under its prefix
// (a data object without a manifest, an upload never completed, put there by the test) is
// removed when the failed Backup is deleted, by the deletion path's cleanup Job.
func (e *backupEnv) testLeftoversGoWithTheBackup(t *testing.T) {
	ctx := context.Background()
	e.apply(t, e.backupYAML("Backup", "no-db", "  databases: [\"no_such_db\"]\n", nil))
	b := e.waitBackup(t, "no-db", kurav1alpha1.BackupFailed, 3*time.Minute)
	if !strings.Contains(b.Status.Message, "no_such_db") || !strings.Contains(b.Status.Message, "mariadb-dump") {
		t.Errorf("message %q does not name the tool and the database", b.Status.Message)
	}
	if left := e.left(t, "no-db"); len(left) != 0 {
		t.Fatalf("the failed run left %v", left)
	}
	prefix := e.layout.BackupPrefix("no-db")
	if _, err := e.bucket.Put(ctx, prefix+"data.sql.zst", strings.NewReader("half a dump"), -1); err != nil {
		t.Fatal(err)
	}
	raw, err := minio.NewCore(strings.TrimPrefix(e.endpoint, "http://"), &minio.Options{
		Creds: credentials.NewStaticV4(s3test.AccessKey, s3test.SecretKey, ""), Region: "us-east-1", BucketLookup: minio.BucketLookupPath})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.NewMultipartUpload(ctx, "backups", prefix+"data.kuracopy.zst", minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	if left := e.left(t, "no-db"); len(left) != 2 {
		t.Fatalf("the leftovers were not planted: %v", left)
	}
	kubectlRun(t, "", "delete", "-n", e.ns, "backups.kura.dev/no-db", "--timeout=3m")
	if left := e.left(t, "no-db"); len(left) != 0 {
		t.Errorf("the deleted Backup's leftovers stay: %v", left)
	}
}
