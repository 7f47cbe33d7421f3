package backup

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/backup/s3test"
	"github.com/kura-db/kura/backup/storage"
	"github.com/kura-db/kura/internal/agent"
	"github.com/kura-db/kura/internal/engine"
	"github.com/kura-db/kura/internal/enginetest"
	"github.com/kura-db/kura/internal/gtid"
	"github.com/kura-db/kura/internal/seed"
	"github.com/kura-db/kura/internal/tools"
)

func requireTools(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("engine tier: needs mariadbd, mariadb-dump and mariadb-backup; not run with -short")
	}
	for _, p := range []string{"mariadb-dump", "mariadb-backup", "mbstream"} {
		if _, err := tools.Find(p); err != nil {
			t.Fatalf("%s not found: run make deps", p)
		}
	}
}

// source prepares an instance with data: app.big (about mb MB) and app.w, which a writer
// fills one row per transaction.
func source(t testing.TB, inst *enginetest.Instance, mb int) {
	t.Helper()
	// Each statement writes about 15 MB: on a loaded machine that can take longer than the
	// default read timeout.
	db, err := sql.Open("mysql", engine.DSN(inst.Operator(), engine.Options{ReadTimeout: 5 * time.Minute, WriteTimeout: time.Minute}))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = db.Close() }()
	enginetest.Exec(t, db, "CREATE DATABASE app", "CREATE TABLE app.big (id BIGINT AUTO_INCREMENT PRIMARY KEY, pad VARCHAR(255))",
		"CREATE TABLE app.w (id INT PRIMARY KEY)")
	rows := mb * 1024 * 1024 / 300
	for done := 0; done < rows; done += 50000 {
		enginetest.Exec(t, db, fmt.Sprintf("INSERT INTO app.big (pad) SELECT CONCAT(MD5(seq), MD5(seq+1), MD5(seq+2), MD5(seq+3), MD5(seq+4), MD5(seq+5), MD5(seq+6)) FROM app.seq_%d_to_%d", done+1, done+50000))
	}
}

type writer struct {
	last atomic.Int64
	stop chan struct{}
	wg   sync.WaitGroup
	err  atomic.Value
}

func startWriter(db *sql.DB) *writer {
	w := &writer{stop: make(chan struct{})}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		for k := int64(1); ; k++ {
			select {
			case <-w.stop:
				return
			default:
			}
			if _, err := db.Exec("INSERT INTO app.w VALUES (?)", k); err != nil {
				w.err.Store(err)
				return
			}
			w.last.Store(k)
			time.Sleep(2 * time.Millisecond)
		}
	}()
	return w
}

func (w *writer) Stop(t testing.TB) int64 {
	close(w.stop)
	w.wg.Wait()
	if err, _ := w.err.Load().(error); err != nil {
		t.Fatalf("writer: %v", err)
	}
	return w.last.Load()
}

func s3Storage(t testing.TB) storage.Storage {
	srv := s3test.Start(t, "backups")
	st, err := storage.NewS3(storage.S3Config{Endpoint: srv.Endpoint, Region: "us-east-1", Bucket: "backups", PathStyle: true,
		AccessKeyID: s3test.AccessKey, SecretAccessKey: s3test.SecretKey, PartSize: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func request(inst *enginetest.Instance, name string, method kurav1alpha1.BackupMethod) Request {
	return Request{Name: name, Namespace: "shop-ns", Cluster: "shop", Lineage: "5b1e7c1c-1111-4c4c-9d9d-000000000001",
		Engine: kurav1alpha1.EngineMariaDB, Method: method, Compression: kurav1alpha1.CompressionZstd,
		Source: SourceInstance{Pod: "shop-1", Host: inst.Host, SQLPort: inst.Port, AgentPort: 8080, Role: "replica"}}
}

// seqOf is the seq_no of domain 0, server 1000 (the writer's stream) in s.
func seqOf(s gtid.Set) uint64 {
	for _, g := range s.MariaDBGTIDs() {
		if g.Domain == 0 && g.Server == 1000 {
			return g.Seq
		}
	}
	return 0
}

func executed(t testing.TB, inst *enginetest.Instance) gtid.Set {
	t.Helper()
	s, err := inst.Open(engine.Options{}).ExecutedGTID(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var wRows = regexp.MustCompile(`\(([0-9]+)\)`)

// A logical backup of a database under writes: stored compressed in S3, its checksum
// verified on read back, its manifest complete, and its rows exactly those of the GTID
// position it records (one writer row per transaction).
func TestLogicalBackupUnderWrites(t *testing.T) {
	requireTools(t)
	c := enginetest.Start(t, 1, enginetest.Options{})
	inst := c.Instances[0]
	source(t, inst, 20)
	enginetest.Exec(t, inst.DB(), "CREATE TABLE app.empty (id INT PRIMARY KEY)")
	st := s3Storage(t)
	base := executed(t, inst)
	w := startWriter(inst.DB())
	time.Sleep(300 * time.Millisecond)
	req := request(inst, "nightly-1", kurav1alpha1.BackupMethodLogical)
	start := time.Now()
	m, err := Run(context.Background(), req, st, Deps{AgentPassword: enginetest.AgentPassword, Log: enginetest.Log{T: t}})
	last := w.Stop(t)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("logical backup in %s: %+v", time.Since(start).Round(time.Millisecond), m)
	l := Layout{Namespace: req.Namespace, Cluster: req.Cluster, Lineage: req.Lineage}
	vm, err := Verify(context.Background(), st, l, req.Name)
	if err != nil {
		t.Fatal(err)
	}
	if vm.Method != kurav1alpha1.BackupMethodLogical || vm.Engine != kurav1alpha1.EngineMariaDB || !strings.HasPrefix(vm.EngineVersion, "10.11") ||
		vm.Tool != "mariadb-dump" || vm.ToolVersion == "" || vm.Source.Instance != "shop-1" || len(vm.Objects) != 1 ||
		vm.Objects[0].Name != "data.sql.zst" || vm.Objects[0].RawSize <= vm.Objects[0].Size || vm.Consistent.BinlogFile == "" ||
		vm.Consistent.Time.Before(vm.Started) || vm.Completed.Before(vm.Consistent.Time) {
		t.Fatalf("manifest: %+v", vm)
	}
	pos := gtid.MustParse(gtid.MariaDB, vm.Consistent.GTIDSet)
	if seqOf(pos) <= seqOf(base) || seqOf(pos) >= seqOf(base)+uint64(last) {
		t.Fatalf("position %s must be inside the writes (base %s, %d rows written)", pos, base, last)
	}
	// The dump's app.w rows are exactly 1..(position - base).
	r, err := st.Get(context.Background(), l.BackupPrefix(req.Name)+"data.sql.zst")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = r.Close() }()
	d, err := Decompress(vm.Compression, r)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(d)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	rows, maxID := int64(0), int64(0)
	inW := false
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "INSERT INTO `w` VALUES"); ok {
			inW, line = true, rest
		}
		if !inW {
			continue
		}
		for _, m := range wRows.FindAllStringSubmatch(line, -1) {
			var id int64
			_, _ = fmt.Sscan(m[1], &id)
			rows++
			maxID = max(maxID, id)
		}
		if strings.HasSuffix(line, ";") {
			inW = false
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if want := int64(seqOf(pos) - seqOf(base)); rows != want || maxID != want {
		t.Fatalf("the dump holds %d writer rows (max id %d); its position %s says %d", rows, maxID, pos, want)
	}
	t.Logf("dump consistent with %s: %d writer rows of %d written", pos, rows, last)
	// The manifest counts every table's rows: the writer's as found above, app.big's as
	// the server counts them (nothing writes it), the empty one as 0.
	var big int64
	if err := inst.DB().QueryRow("SELECT COUNT(*) FROM app.big").Scan(&big); err != nil {
		t.Fatal(err)
	}
	counts := map[string]int64{}
	for _, tr := range vm.Tables {
		counts[tr.Database+"."+tr.Table] = tr.Rows
	}
	if counts["app.w"] != rows || counts["app.big"] != big || big == 0 {
		t.Errorf("manifest row counts app.w %d, app.big %d; the dump holds %d and the server %d", counts["app.w"], counts["app.big"], rows, big)
	}
	if n, ok := counts["app.empty"]; !ok || n != 0 {
		t.Errorf("manifest row count of the empty table app.empty: %d (listed %v)", n, ok)
	}
}

// A physical backup of a database under writes, taken through the source's agent (the
// clone stream), stored in S3, verified, then restored with the same code a clone uses: the
// restored server's executed set is the manifest's and its rows match it.
func TestPhysicalBackupUnderWritesRestores(t *testing.T) {
	requireTools(t)
	c := enginetest.Start(t, 2, enginetest.Options{})
	inst, target := c.Instances[0], c.Instances[1]
	source(t, inst, 30)
	st := s3Storage(t)
	ep := inst.Endpoint(engine.AgentUser, enginetest.AgentPassword)
	ei := inst.Open(engine.Options{})
	api := &agent.Server{Instance: engineAs(t, ep), Token: enginetest.AgentPassword, PodName: "shop-1", DataDir: inst.DataDir, Log: enginetest.Log{T: t},
		Backup: engine.BackupOptions{DefaultsFile: filepath.Join(inst.Dir, "my.cnf"), Endpoint: ep}}
	srv := httptest.NewServer(api.Handler())
	t.Cleanup(srv.Close)
	client := &agent.Client{BaseURL: srv.URL, Token: enginetest.AgentPassword}
	base, err := ei.ExecutedGTID(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	w := startWriter(inst.DB())
	time.Sleep(300 * time.Millisecond)
	req := request(inst, "phys-1", kurav1alpha1.BackupMethodPhysical)
	copier := client.CloneFrames
	start := time.Now()
	m, err := Run(context.Background(), req, st, Deps{Copy: copier, Log: enginetest.Log{T: t}})
	w.Stop(t)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("physical backup in %s: %d MB stored of %d MB copied", time.Since(start).Round(time.Millisecond), m.Objects[0].Size>>20, m.Objects[0].RawSize>>20)
	l := Layout{Namespace: req.Namespace, Cluster: req.Cluster, Lineage: req.Lineage}
	vm, err := Verify(context.Background(), st, l, req.Name)
	if err != nil {
		t.Fatal(err)
	}
	state := gtid.MustParse(gtid.MariaDB, vm.Consistent.GTIDSet)
	if vm.Tool != "mariadb-backup" || vm.Source.ServerID == 0 || !strings.HasPrefix(vm.EngineVersion, "10.11") || !state.Contains(base) ||
		vm.Objects[0].Name != "data.kuracopy.zst" {
		t.Fatalf("manifest: %+v", vm)
	}
	target.Stop()
	if err := os.RemoveAll(target.DataDir); err != nil {
		t.Fatal(err)
	}
	res, err := seed.Into(context.Background(), StoredCopy{Storage: st, Layout: l, Backup: req.Name}, target.DataDir,
		seed.Options{DefaultsFile: filepath.Join(target.Dir, "my.cnf"), OperatorPassword: enginetest.OperatorPassword, Log: enginetest.Log{T: t}})
	if err != nil {
		t.Fatal(err)
	}
	if !res.State.Equal(state) {
		t.Fatalf("restored state %s, manifest %s", res.State, state)
	}
	target.Restart()
	if got := executed(t, target); !got.Equal(state) {
		t.Fatalf("restored server executed %s, manifest %s", got, state)
	}
	var rows, maxID int64
	if err := target.DB().QueryRow("SELECT COUNT(*), COALESCE(MAX(id), 0) FROM app.w").Scan(&rows, &maxID); err != nil {
		t.Fatal(err)
	}
	if want := int64(seqOf(state) - seqOf(base)); rows != want || maxID != want {
		t.Fatalf("restored %d writer rows (max %d); the manifest's state %s says %d", rows, maxID, state, want)
	}
}

func engineAs(t testing.TB, ep engine.Endpoint) engine.Instance {
	t.Helper()
	ei, err := engine.Open(kurav1alpha1.EngineMariaDB, ep, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ei.Close() })
	return ei
}

// A backup whose tool fails (refused credentials) fails with the tool's own words and
// leaves nothing in storage; a PVC-style directory stores a complete backup the same way.
func TestFailedBackupLeavesNothing(t *testing.T) {
	requireTools(t)
	c := enginetest.Start(t, 1, enginetest.Options{})
	inst := c.Instances[0]
	source(t, inst, 1)
	dir := &storage.Dir{Root: t.TempDir(), Claim: "backups"}
	req := request(inst, "bad-1", kurav1alpha1.BackupMethodLogical)
	_, err := Run(context.Background(), req, dir, Deps{AgentPassword: "wrong", Log: enginetest.Log{T: t}})
	if err == nil || !strings.Contains(err.Error(), "Access denied") {
		t.Fatalf("a refused login must fail with the tool's message: %v", err)
	}
	if objs, err := dir.List(context.Background(), ""); err != nil || len(objs) != 0 {
		t.Fatalf("a failed backup left %+v %v", objs, err)
	}
	req.Name = "good-1"
	if _, err := Run(context.Background(), req, dir, Deps{AgentPassword: enginetest.AgentPassword}); err != nil {
		t.Fatal(err)
	}
	l := Layout{Namespace: req.Namespace, Cluster: req.Cluster, Lineage: req.Lineage}
	if _, err := Verify(context.Background(), dir, l, req.Name); err != nil {
		t.Fatal(err)
	}
	// The same name again is refused: a backup is never overwritten.
	if _, err := Run(context.Background(), req, dir, Deps{AgentPassword: enginetest.AgentPassword}); err == nil || !strings.Contains(err.Error(), "never overwritten") {
		t.Fatalf("a second backup under the same name: %v", err)
	}
	// One corrupted stored byte fails verification with a clear reason.
	p := filepath.Join(dir.Root, filepath.FromSlash(l.BackupPrefix(req.Name)+"data.sql.zst"))
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(p, b, 0o640); err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(context.Background(), dir, l, req.Name); err == nil || !strings.Contains(err.Error(), "the manifest says") {
		t.Fatalf("a corrupted object must fail verification: %v", err)
	}
	if _, err := ReadManifest(context.Background(), dir, l, "bad-1"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("the failed backup must not exist: %v", err)
	}
}
