package restore

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/backup"
	"github.com/kura-db/kura/backup/archive"
	"github.com/kura-db/kura/backup/s3test"
	"github.com/kura-db/kura/backup/storage"
	"github.com/kura-db/kura/internal/agent"
	"github.com/kura-db/kura/internal/engine"
	"github.com/kura-db/kura/internal/enginetest"
	"github.com/kura-db/kura/internal/gtid"
	"github.com/kura-db/kura/internal/tools"
)

var lineage = backup.Layout{Namespace: "shop-ns", Cluster: "shop", Lineage: "5b1e7c1c-1111-4c4c-9d9d-000000000002"}

// row is one acknowledged write: its id, GTID and the second its commit was logged in.
type row struct {
	id   int
	gtid string
	at   time.Time
}

// writeRows inserts ids from..to-1, one transaction each, and records each commit.
func writeRows(t testing.TB, db *sql.DB, from, to int) []row {
	t.Helper()
	var out []row
	enginetest.Insert(t, db, "INSERT INTO app.w (id) VALUES (?)", from, to, func(id int, g string) {
		out = append(out, row{id: id, at: time.Now().UTC(), gtid: g})
	})
	return out
}

// nextSecond waits for the wall clock to enter a new second, so the writes that follow are
// logged with a later timestamp than those before (binary log times have a one-second
// resolution).
func nextSecond() time.Time {
	now := time.Now()
	next := now.Truncate(time.Second).Add(time.Second)
	time.Sleep(time.Until(next) + 20*time.Millisecond)
	return next
}

// ids returns the writer table's ids of a restored server, in order.
func ids(t testing.TB, db *sql.DB) []int {
	t.Helper()
	rs, err := db.Query("SELECT id FROM app.w ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rs.Close() }()
	var out []int
	for rs.Next() {
		var id int
		if err := rs.Scan(&id); err != nil {
			t.Fatal(err)
		}
		out = append(out, id)
	}
	return out
}

func span(from, to int) []int {
	var out []int
	for k := from; k <= to; k++ {
		out = append(out, k)
	}
	return out
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

type rig struct {
	t       testing.TB
	src     *enginetest.Instance
	target  *enginetest.Instance
	st      storage.Storage
	s3      *s3test.Server
	archive *archive.Archiver
	stop    func()
	rows    []row
	// replicas replicate from src (newRigWith).
	replicas []*enginetest.Instance
}

// newRig starts a source with a binary log archive streaming to S3 and a second instance the
// restores go into.
func newRig(t testing.TB) *rig { return newRigWith(t, 0) }

// newRigWith adds replicas of the source, which the archive may also stream from.
func newRigWith(t testing.TB, replicas int) *rig {
	if testing.Short() {
		t.Skip("engine tier: needs mariadbd, mariadb-backup, mariadb-binlog and the S3 server; not run with -short")
	}
	for _, p := range []string{"mariadb-dump", "mariadb-backup", "mbstream", "mariadb-binlog", "mariadb"} {
		if _, err := tools.Find(p); err != nil {
			t.Fatalf("%s not found: run make deps", p)
		}
	}
	c := enginetest.Start(t, 2+replicas, enginetest.Options{})
	r := &rig{t: t, src: c.Instances[0], target: c.Instances[1], replicas: c.Instances[2:]}
	srv := s3test.Start(t, "backups")
	st, err := storage.NewS3(storage.S3Config{Endpoint: srv.Endpoint, Region: "us-east-1", Bucket: "backups", PathStyle: true,
		AccessKeyID: s3test.AccessKey, SecretAccessKey: s3test.SecretKey, PartSize: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	r.st, r.s3 = st, srv
	if err := r.src.Open(engine.Options{}).SetReadOnly(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	enginetest.Exec(t, r.src.DB(), "CREATE DATABASE app", "CREATE TABLE app.w (id INT PRIMARY KEY)")
	sources := []string{fmt.Sprintf("%s:%d", r.src.Host, r.src.Port)}
	for _, rep := range r.replicas {
		ri := rep.Open(engine.Options{})
		if err := ri.ConfigureReplica(context.Background(), r.src.ReplicationSource()); err != nil {
			t.Fatal(err)
		}
		if err := ri.StartReplication(context.Background(), engine.BothThreads); err != nil {
			t.Fatal(err)
		}
		sources = append(sources, fmt.Sprintf("%s:%d", rep.Host, rep.Port))
	}
	a, err := archive.New(archive.Config{Layout: lineage, Storage: st, User: engine.AgentUser, Password: enginetest.AgentPassword,
		ServerID: 3_000_000_002, PieceInterval: 300 * time.Millisecond, Heartbeat: 200 * time.Millisecond,
		PrimaryCheck: 300 * time.Millisecond, LeaseTTL: 3 * time.Second,
		Sources: sources,
		Log:     func(f string, args ...any) { t.Logf(f, args...) }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = a.Run(ctx) }()
	var once sync.Once
	r.archive, r.stop = a, func() { once.Do(func() { cancel(); wg.Wait() }) }
	t.Cleanup(r.stop)
	return r
}

// backup takes a backup of the source.
func (r *rig) backup(name string, method kurav1alpha1.BackupMethod) backup.Manifest {
	r.t.Helper()
	ep := r.src.Endpoint(engine.AgentUser, enginetest.AgentPassword)
	ei, err := engine.Open(kurav1alpha1.EngineMariaDB, ep, engine.Options{})
	if err != nil {
		r.t.Fatal(err)
	}
	defer func() { _ = ei.Close() }()
	api := &agent.Server{Instance: ei, Token: enginetest.AgentPassword, PodName: "shop-0", DataDir: r.src.DataDir, Log: enginetest.Log{T: r.t},
		Backup: engine.BackupOptions{DefaultsFile: filepath.Join(r.src.Dir, "my.cnf"), Endpoint: ep}}
	srv := httptest.NewServer(api.Handler())
	defer srv.Close()
	client := &agent.Client{BaseURL: srv.URL, Token: enginetest.AgentPassword}
	req := backup.Request{Name: name, Namespace: lineage.Namespace, Cluster: lineage.Cluster, Lineage: lineage.Lineage,
		Engine: kurav1alpha1.EngineMariaDB, Method: method, Compression: kurav1alpha1.CompressionZstd,
		Source: backup.SourceInstance{Pod: "shop-0", Host: r.src.Host, SQLPort: r.src.Port, AgentPort: 8080, Role: "primary"}}
	m, err := backup.Run(context.Background(), req, r.st, backup.Deps{AgentPassword: enginetest.AgentPassword, Copy: client.CloneFrames, Log: enginetest.Log{T: r.t}})
	if err != nil {
		r.t.Fatal(err)
	}
	return m
}

// waitArchived waits until every written row's transaction is archived.
func (r *rig) waitArchived() {
	r.t.Helper()
	want := gtid.MustParse(gtid.MariaDB, r.rows[len(r.rows)-1].gtid)
	deadline := time.Now().Add(time.Minute)
	for {
		s := r.archive.Status()
		if s.LastGTID != "" && gtid.MustParse(gtid.MariaDB, s.LastGTID).Contains(want) {
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("the archive did not reach %s within a minute: %+v", want, s)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (r *rig) deps() Deps {
	return Deps{DefaultsFile: filepath.Join(r.target.Dir, "my.cnf"), Credentials: enginetest.Credentials(), Log: enginetest.Log{T: r.t}}
}

// restore restores into the target instance's emptied data directory and starts it.
func (r *rig) restore(job Job) (Result, error) {
	r.t.Helper()
	if r.target.Running() {
		r.target.Stop()
	}
	if err := os.RemoveAll(r.target.DataDir); err != nil {
		r.t.Fatal(err)
	}
	job.Source, job.Engine = lineage, kurav1alpha1.EngineMariaDB
	res, err := Run(context.Background(), job, r.st, r.target.DataDir, r.deps())
	if err == nil {
		r.target.Restart()
	}
	return res, err
}

// untouched asserts a failed restore left the data directory empty.
func (r *rig) untouched(what string) {
	r.t.Helper()
	entries, _ := os.ReadDir(r.target.DataDir)
	if len(entries) > 0 {
		r.t.Fatalf("%s: the data directory was touched: %d entries (first %s)", what, len(entries), entries[0].Name())
	}
}

func timePtr(t time.Time) *time.Time { return &t }

// Rows written with known GTIDs and commit seconds, a physical and a logical backup in the
// middle, the archive streaming: restores to the backup's point, to GTIDs and to times give
// exactly the rows committed up to the target, with the planned GTID set, from either base;
// targets the archive cannot reach fail before any data is touched.
func TestPointInTimeRestore(t *testing.T) {
	r := newRig(t)
	db := r.src.DB()
	r.rows = writeRows(t, db, 1, 21)
	physical := r.backup("phys", kurav1alpha1.BackupMethodPhysical)
	logical := r.backup("dump", kurav1alpha1.BackupMethodLogical)
	nextSecond()
	r.rows = append(r.rows, writeRows(t, db, 21, 41)...)
	endB := r.rows[len(r.rows)-1].at.Truncate(time.Second)
	nextSecond()
	r.rows = append(r.rows, writeRows(t, db, 41, 61)...)
	r.waitArchived()
	latest := r.rows[len(r.rows)-1]

	check := func(t *testing.T, job Job, want []int, wantGTID string) Result {
		t.Helper()
		res, err := r.restore(job)
		if err != nil {
			t.Fatalf("restore to %s: %v", job.Target, err)
		}
		got := ids(t, r.target.DB())
		if !equalInts(got, want) {
			t.Fatalf("restore to %s: rows %v, want %v", job.Target, got, want)
		}
		if wantGTID != "" {
			exec, err := r.target.Open(engine.Options{}).ExecutedGTID(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if !exec.Position().Equal(gtid.MustParse(gtid.MariaDB, wantGTID).Position()) || res.GTIDReached != exec.String() || res.Plan.TargetGTID != res.GTIDReached {
				t.Fatalf("restore to %s: executed %s (reported %s, planned %s), want the position %s", job.Target, exec, res.GTIDReached, res.Plan.TargetGTID, wantGTID)
			}
		}
		// The cluster's accounts log in (the server was restarted on the restored data).
		if err := r.target.Open(engine.Options{}).CheckAccounts(context.Background(), enginetest.Accounts()); err != nil {
			t.Fatalf("restore to %s: accounts: %v", job.Target, err)
		}
		t.Logf("restore to %s: %d rows, %d transactions replayed from %d pieces, seed %dms replay %dms, total %dms",
			job.Target, len(got), res.Replayed, len(res.Plan.Pieces), res.SeedMS, res.ReplayMS, res.DurationMS)
		return res
	}

	t.Run("the backup's own point", func(t *testing.T) {
		res := check(t, Job{Backup: "phys"}, span(1, 20), physical.Consistent.GTIDSet)
		if res.Replayed != 0 || len(res.Plan.Pieces) != 0 {
			t.Fatalf("nothing should be replayed: %+v", res)
		}
	})
	t.Run("a GTID from a physical base", func(t *testing.T) {
		res := check(t, Job{Backup: "phys", Target: Target{GTID: r.rows[29].gtid}}, span(1, 30), r.rows[29].gtid)
		if res.Replayed != 10 {
			t.Fatalf("replayed %d transactions, want 10", res.Replayed)
		}
	})
	t.Run("a time from a physical base", func(t *testing.T) {
		check(t, Job{Backup: "phys", Target: Target{Time: timePtr(endB.Add(500 * time.Millisecond))}}, span(1, 40), r.rows[39].gtid)
	})
	t.Run("the newest archived transaction from a logical base", func(t *testing.T) {
		check(t, Job{Backup: "dump", Target: Target{GTID: latest.gtid}}, span(1, 60), latest.gtid)
	})
	t.Run("a time from a logical base", func(t *testing.T) {
		res := check(t, Job{Backup: "dump", Target: Target{Time: timePtr(endB)}}, span(1, 40), r.rows[39].gtid)
		if res.Plan.Method != kurav1alpha1.BackupMethodLogical || res.Plan.BaseGTID != logical.Consistent.GTIDSet {
			t.Fatalf("plan: %+v", res.Plan)
		}
	})

	unreachable := func(t *testing.T, job Job, words ...string) {
		t.Helper()
		_, err := r.restore(job)
		if !errors.Is(err, ErrUnrecoverable) {
			t.Fatalf("restore to %s: %v; want an unrecoverable target", job.Target, err)
		}
		for _, w := range words {
			if !strings.Contains(err.Error(), w) {
				t.Fatalf("restore to %s: %q does not say %q", job.Target, err, w)
			}
		}
		r.untouched(job.Target.String())
	}
	t.Run("a time before the backup is refused with the range", func(t *testing.T) {
		unreachable(t, Job{Backup: "phys", Target: Target{Time: timePtr(physical.Consistent.Time.Add(-time.Hour))}}, "before the backup's point", "recoverable from this backup")
	})
	t.Run("a GTID after the archive is refused with the range", func(t *testing.T) {
		g := gtid.MustParse(gtid.MariaDB, latest.gtid).MariaDBGTIDs()[0]
		g.Seq += 1000
		unreachable(t, Job{Backup: "phys", Target: Target{GTID: g.String()}}, "after the newest archived transaction", latest.gtid)
	})
	t.Run("a backup that does not exist", func(t *testing.T) {
		unreachable(t, Job{Backup: "nightly-7"}, "no manifest")
	})

	// Damage the archive last: a changed piece, then a missing one.
	pieces, err := archive.ListPieces(context.Background(), r.st, lineage)
	if err != nil || len(pieces) < 3 {
		t.Fatalf("archive: %d pieces, %v", len(pieces), err)
	}
	mid := pieces[len(pieces)-1]
	t.Run("a piece whose stored bytes changed fails before the data is touched", func(t *testing.T) {
		key := archive.Prefix(lineage) + mid.Object
		rc, err := r.st.Get(context.Background(), key)
		if err != nil {
			t.Fatal(err)
		}
		orig, err := io.ReadAll(rc)
		_ = rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		bad := append([]byte(nil), orig...)
		bad[len(bad)/2] ^= 0xff
		if _, err := r.st.Put(context.Background(), key, bytes.NewReader(bad), int64(len(bad))); err != nil {
			t.Fatal(err)
		}
		_, err = r.restore(Job{Backup: "phys", Target: Target{GTID: latest.gtid}})
		if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("piece %d", mid.Seq)) || !strings.Contains(err.Error(), "does not match") {
			t.Fatalf("restore over a changed piece: %v", err)
		}
		r.untouched("changed piece")
		if _, err := r.st.Put(context.Background(), key, bytes.NewReader(orig), int64(len(orig))); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("a missing piece is a gap named before the data is touched", func(t *testing.T) {
		gone := pieces[len(pieces)-2]
		if err := r.st.Delete(context.Background(), archive.MetaKey(lineage, gone.Seq)); err != nil {
			t.Fatal(err)
		}
		unreachable(t, Job{Backup: "phys", Target: Target{GTID: latest.gtid}}, "gap", fmt.Sprintf("piece %d", mid.Seq))
	})
}

// storageConfig is the rig's bucket as a restore Job names it, with credential files.
func (r *rig) storageConfig() backup.StorageConfig {
	r.t.Helper()
	dir := r.t.TempDir()
	for name, v := range map[string]string{"access-key-id": s3test.AccessKey, "secret-access-key": s3test.SecretKey} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v), 0o600); err != nil {
			r.t.Fatal(err)
		}
	}
	return backup.StorageConfig{S3: &backup.S3Location{Endpoint: r.s3.Endpoint, Region: "us-east-1", Bucket: "backups", PathStyle: true, CredentialsDir: dir}}
}

// kura init on the first instance of a cluster with spec.bootstrap restores the backup from
// the Job file; a restore cut short is thrown away and done again on the next start; once
// restored, a restart keeps the data; the dry run plans without touching anything.
func TestBootstrapThroughInit(t *testing.T) {
	r := newRig(t)
	r.rows = writeRows(t, r.src.DB(), 1, 11)
	r.backup("phys", kurav1alpha1.BackupMethodPhysical)
	r.rows = append(r.rows, writeRows(t, r.src.DB(), 11, 21)...)
	r.waitArchived()
	job := Job{Storage: r.storageConfig(), Source: lineage, Backup: "phys", Target: Target{GTID: r.rows[14].gtid}, Engine: kurav1alpha1.EngineMariaDB}
	jobFile := filepath.Join(t.TempDir(), JobFileName)
	b, _ := json.Marshal(job)
	if err := os.WriteFile(jobFile, b, 0o600); err != nil {
		t.Fatal(err)
	}

	var plan bytes.Buffer
	if err := Command(context.Background(), []string{"plan", "--job=" + string(b), "--termination-log=" + filepath.Join(t.TempDir(), "term")}, &plan, enginetest.Log{T: t}); err != nil {
		t.Fatal(err)
	}
	var planned Result
	if err := json.Unmarshal(plan.Bytes(), &planned); err != nil || planned.Plan.Backup != "phys" || len(planned.Plan.Pieces) == 0 || planned.Plan.Bytes == 0 {
		t.Fatalf("dry run: %s (%v)", plan.String(), err)
	}

	if r.target.Running() {
		r.target.Stop()
	}
	if err := os.RemoveAll(r.target.DataDir); err != nil {
		t.Fatal(err)
	}
	e := agent.Env{PodName: "shop-0", Namespace: lineage.Namespace, Cluster: "shop-restored", Engine: kurav1alpha1.EngineMariaDB,
		Bootstrap: "phys", OperatorPassword: enginetest.OperatorPassword}
	c := enginetest.Credentials()
	e.ReplicationPassword, e.AgentPassword, e.RootPassword, e.AdminPassword, e.AppPassword, e.Database = c.Replication, c.Agent, c.Root, c.Admin, c.App, c.Database
	paths := agent.InitPaths{DataDir: r.target.DataDir, InstanceFile: filepath.Join(t.TempDir(), "instance.cnf")}
	restores := 0
	opts := func(hook agent.RestoreFunc) agent.InitOptions {
		return agent.InitOptions{Peers: []agent.Peer{}, BootstrapFile: jobFile, Log: enginetest.Log{T: t}, Restore: hook}
	}
	real := func(ctx context.Context, dir string, e agent.Env) error {
		restores++
		job, err := ReadJob(jobFile)
		if err != nil {
			return err
		}
		d := r.deps()
		d.Credentials = e.Credentials()
		_, err = bootstrap(ctx, job, dir, d)
		return err
	}
	// A restore that dies half way: its marker and a stray file stay on the volume.
	crash := func(ctx context.Context, dir string, e agent.Env) error {
		if err := writeMarker(dir, job); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, "ibdata1"), []byte("half"), 0o600); err != nil {
			return err
		}
		return errors.New("killed")
	}
	if _, err := agent.Init(context.Background(), e, paths, opts(crash)); err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("the cut-short restore: %v", err)
	}
	out, err := agent.Init(context.Background(), e, paths, opts(real))
	if err != nil || out != agent.Restored || restores != 1 {
		t.Fatalf("init after a cut-short restore: %s, %v (%d restores)", out, err, restores)
	}
	out, err = agent.Init(context.Background(), e, paths, opts(real))
	if err != nil || out != agent.Kept || restores != 1 {
		t.Fatalf("init of a restored instance: %s, %v (%d restores)", out, err, restores)
	}
	r.target.Restart()
	if got := ids(t, r.target.DB()); !equalInts(got, span(1, 15)) {
		t.Fatalf("rows %v, want 1..15", got)
	}
}

// A failover in the middle of the archive: the primary dies after its replica has every
// transaction, the replica is promoted and takes writes under its own server id, and the
// archive follows it by GTID. A restore from a backup of the old primary to a GTID and to a
// time after the failover replays across it and gives exactly the rows up to the target.
func TestPointInTimeRestoreAcrossAFailover(t *testing.T) {
	r := newRigWith(t, 1)
	ctx := context.Background()
	old, next := r.src, r.replicas[0]
	r.rows = writeRows(t, old.DB(), 1, 11)
	r.backup("before", kurav1alpha1.BackupMethodPhysical)
	r.rows = append(r.rows, writeRows(t, old.DB(), 11, 21)...)
	r.waitArchived()

	ni := next.Open(engine.Options{})
	set, err := old.Open(engine.Options{}).ExecutedGTID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := ni.WaitForGTID(ctx, set, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	old.Kill()
	if err := ni.StopReplicaAndReset(ctx); err != nil {
		t.Fatal(err)
	}
	if err := ni.SetReadOnly(ctx, false); err != nil {
		t.Fatal(err)
	}
	nextSecond()
	r.rows = append(r.rows, writeRows(t, next.DB(), 21, 31)...)
	endC := r.rows[len(r.rows)-1].at.Truncate(time.Second)
	nextSecond()
	r.rows = append(r.rows, writeRows(t, next.DB(), 31, 41)...)
	r.waitArchived()
	if !strings.Contains(r.rows[24].gtid, fmt.Sprintf("-%d-", next.ServerID)) {
		t.Fatalf("row 25 (%s) was not committed by the promoted replica (server %d)", r.rows[24].gtid, next.ServerID)
	}

	for _, tc := range []struct {
		target Target
		want   []int
	}{
		{Target{GTID: r.rows[24].gtid}, span(1, 25)},
		{Target{Time: timePtr(endC)}, span(1, 30)},
		{Target{GTID: r.rows[39].gtid}, span(1, 40)},
	} {
		res, err := r.restore(Job{Backup: "before", Target: tc.target})
		if err != nil {
			t.Fatalf("restore to %s: %v", tc.target, err)
		}
		if got := ids(t, r.target.DB()); !equalInts(got, tc.want) {
			t.Fatalf("restore to %s across the failover: rows %v, want %v", tc.target, got, tc.want)
		}
		t.Logf("restore to %s across the failover: %d rows, %d replayed from pieces %v, GTID %s", tc.target, len(tc.want), res.Replayed, res.Plan.Pieces, res.GTIDReached)
	}
}

// verify runs `kura restore verify` on a backup of the rig's lineage and returns its result.
func (r *rig) verify(name string) (Result, error) {
	r.t.Helper()
	job := Job{Storage: r.storageConfig(), Source: lineage, Backup: name, Engine: kurav1alpha1.EngineMariaDB}
	b, _ := json.Marshal(job)
	var out bytes.Buffer
	err := Command(context.Background(), []string{"verify", "--job=" + string(b), "--data-dir=" + filepath.Join(r.t.TempDir(), "scratch"),
		"--termination-log=" + filepath.Join(r.t.TempDir(), "term")}, &out, enginetest.Log{T: r.t})
	var res Result
	if jerr := json.Unmarshal(out.Bytes(), &res); jerr != nil {
		r.t.Fatalf("verify printed %q: %v", out.String(), jerr)
	}
	return res, err
}

// A backup is verified by restoring it into a scratch directory through the restore path and
// reading every table back: a logical backup's counts are compared with its manifest, a
// physical one's tables must open. A manifest whose counts do not match and stored bytes that
// were altered each fail, saying which table or which object and which check.
func TestVerifyByRestore(t *testing.T) {
	r := newRig(t)
	db := r.src.DB()
	enginetest.Exec(t, db, "CREATE TABLE app.other (id INT PRIMARY KEY, note TEXT)", "CREATE TABLE app.empty (id INT PRIMARY KEY)",
		"INSERT INTO app.other SELECT seq, REPEAT('n', seq % 50) FROM app.seq_1_to_777")
	r.rows = writeRows(t, db, 1, 31)
	r.backup("dump", kurav1alpha1.BackupMethodLogical)
	r.backup("phys", kurav1alpha1.BackupMethodPhysical)

	res, err := r.verify("dump")
	if err != nil {
		t.Fatal(err)
	}
	if v := res.Verification; v == nil || v.Tables != 3 || v.Compared != 3 || v.Rows != 777+30 || len(v.Mismatches) != 0 {
		t.Fatalf("logical verification: %+v", v)
	}
	logicalMS := res.DurationMS
	res, err = r.verify("phys")
	if err != nil {
		t.Fatal(err)
	}
	if v := res.Verification; v == nil || v.Tables != 3 || v.Compared != 0 || v.Rows != 777+30 {
		t.Fatalf("physical verification: %+v", v)
	}
	t.Logf("verified: logical in %dms, physical in %dms", logicalMS, res.DurationMS)

	ctx := context.Background()
	m, err := backup.ReadManifest(ctx, r.st, lineage, "dump")
	if err != nil {
		t.Fatal(err)
	}
	orig := m
	m.Tables = append([]backup.TableRows(nil), m.Tables...)
	for i := range m.Tables {
		if m.Tables[i].Database == "app" && m.Tables[i].Table == "w" {
			m.Tables[i].Rows++
		}
	}
	put := func(key string, b []byte) {
		t.Helper()
		if _, err := r.st.Put(ctx, key, bytes.NewReader(b), int64(len(b))); err != nil {
			t.Fatal(err)
		}
	}
	enc, _ := m.Encode()
	put(lineage.ManifestKey("dump"), enc)
	// The result the operator reads says so too (the termination message).
	if res, err := r.verify("dump"); err == nil || !strings.Contains(err.Error(), "app.w has 30 rows, the manifest 31") || res.Error != err.Error() {
		t.Fatalf("a manifest whose count differs: %v (result error %q)", err, res.Error)
	}
	enc, _ = orig.Encode()
	put(lineage.ManifestKey("dump"), enc)

	key := lineage.BackupPrefix("dump") + orig.Objects[0].Name
	rc, err := r.st.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(rc)
	_ = rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0x55
	put(key, data)
	if _, err := r.verify("dump"); err == nil || !strings.Contains(err.Error(), orig.Objects[0].Name) || !strings.Contains(err.Error(), "does not match its manifest") || !strings.Contains(err.Error(), "SHA-256") {
		t.Fatalf("altered stored bytes: %v", err)
	}
}
