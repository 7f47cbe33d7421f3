package archive

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kura-db/kura/backup"
	"github.com/kura-db/kura/backup/s3test"
	"github.com/kura-db/kura/backup/storage"
	"github.com/kura-db/kura/internal/engine"
	"github.com/kura-db/kura/internal/enginetest"
	"github.com/kura-db/kura/internal/gtid"
)

var testLayout = backup.Layout{Namespace: "shop-ns", Cluster: "shop", Lineage: "5b1e7c1c-1111-4c4c-9d9d-000000000001"}

func s3Storage(t testing.TB) storage.Storage {
	t.Helper()
	st, _ := s3Server(t)
	return st
}

func s3Server(t testing.TB) (storage.Storage, *s3test.Server) {
	t.Helper()
	srv := s3test.Start(t, "backups")
	st, err := storage.NewS3(storage.S3Config{Endpoint: srv.Endpoint, Region: "us-east-1", Bucket: "backups", PathStyle: true,
		AccessKeyID: s3test.AccessKey, SecretAccessKey: s3test.SecretKey, PartSize: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	return st, srv
}

func addr(i *enginetest.Instance) string { return fmt.Sprintf("%s:%d", i.Host, i.Port) }

// primaryOf makes inst writable and creates app.w.
func makePrimary(t testing.TB, inst *enginetest.Instance, schema bool) *sql.DB {
	t.Helper()
	if err := inst.Open(engine.Options{}).SetReadOnly(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	db := inst.DB()
	if schema {
		enginetest.Exec(t, db, "CREATE DATABASE app", "CREATE TABLE app.w (id INT PRIMARY KEY, pad VARCHAR(200))")
	}
	return db
}

// write inserts rows from..to-1, one transaction each, and returns their GTIDs.
func write(t testing.TB, db *sql.DB, from, to int, pause time.Duration) []string {
	t.Helper()
	return enginetest.Insert(t, db, "INSERT INTO app.w (id, pad) VALUES (?, REPEAT('x', 150))", from, to, func(int, string) {
		if pause > 0 {
			time.Sleep(pause)
		}
	})
}

func binlogPos(t testing.TB, db *sql.DB) string {
	t.Helper()
	var s string
	if err := db.QueryRow("SELECT @@global.gtid_binlog_pos").Scan(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

type running struct {
	a    *Archiver
	stop func()
}

func config(st storage.Storage, sources ...*enginetest.Instance) Config {
	cfg := Config{Layout: testLayout, Storage: st, User: engine.AgentUser, Password: enginetest.AgentPassword,
		ServerID: 3_000_000_001, PieceInterval: 300 * time.Millisecond, Heartbeat: 200 * time.Millisecond,
		PrimaryCheck: 300 * time.Millisecond, LeaseTTL: 3 * time.Second}
	for _, s := range sources {
		cfg.Sources = append(cfg.Sources, addr(s))
	}
	return cfg
}

func start(t testing.TB, cfg Config) *running {
	t.Helper()
	if cfg.Log == nil {
		cfg.Log = func(f string, args ...any) { t.Logf(f, args...) }
	}
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = a.Run(ctx) }()
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); wg.Wait() }) }
	t.Cleanup(stop)
	return &running{a: a, stop: stop}
}

// waitArchived waits until the archive's position contains want (a gtid_binlog_pos).
func waitArchived(t testing.TB, a *Archiver, want string) Status {
	t.Helper()
	w := gtid.MustParse(gtid.MariaDB, want)
	deadline := time.Now().Add(60 * time.Second)
	for {
		s := a.Status()
		if s.LastGTID != "" && gtid.MustParse(gtid.MariaDB, s.LastGTID).Contains(w) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("the archive did not reach %s within 60s: %+v", want, s)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// archived reads every piece back (checksums, contents against metadata) and returns the
// pieces and the GTIDs of all their transactions in order.
func archived(t testing.TB, st storage.Storage) ([]Piece, []string) {
	t.Helper()
	ctx := context.Background()
	pieces, err := ListPieces(ctx, st, testLayout)
	if err != nil {
		t.Fatal(err)
	}
	var all []string
	for _, p := range pieces {
		_, c, err := ReadData(ctx, st, testLayout, p)
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range c.GTIDs {
			all = append(all, g.String())
		}
	}
	return pieces, all
}

// contiguous checks that got holds want as one run, each exactly once.
func contiguous(t testing.TB, got, want []string) {
	t.Helper()
	seen := map[string]int{}
	for _, g := range got {
		seen[g]++
	}
	for g, n := range seen {
		if n > 1 {
			t.Errorf("transaction %s is archived %d times", g, n)
		}
	}
	idx := -1
	for i, g := range got {
		if g == want[0] {
			idx = i
		}
	}
	if idx < 0 {
		t.Fatalf("transaction %s is not archived (archived: %d transactions)", want[0], len(got))
	}
	for k, w := range want {
		if idx+k >= len(got) || got[idx+k] != w {
			t.Fatalf("the archive does not hold the written transactions in order from %s: at %d want %s", want[0], k, w)
		}
	}
}

// archivedExactly checks that the archive holds want once each, in order, with no gap, and
// returns its pieces.
func archivedExactly(t testing.TB, st storage.Storage, want []string) []Piece {
	t.Helper()
	pieces, got := archived(t, st)
	contiguous(t, got, want)
	noGaps(t, pieces)
	return pieces
}

func noGaps(t testing.TB, pieces []Piece) {
	t.Helper()
	gaps, err := CheckChain(pieces)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range gaps {
		t.Errorf("unexpected %s", g)
	}
}

// TestArchiveStreamsEveryTransaction: rows written one transaction each, in bursts, and a DDL
// statement all appear exactly once, in order, in several pieces with continuous GTIDs; each
// piece is a binary log that mariadb-binlog decodes.
func TestArchiveStreamsEveryTransaction(t *testing.T) {
	c := enginetest.Start(t, 1, enginetest.Options{})
	db := makePrimary(t, c.Instances[0], true)
	st := s3Storage(t)
	r := start(t, config(st, c.Instances[0]))
	var want []string
	for burst := range 4 {
		want = append(want, write(t, db, burst*100, burst*100+100, 0)...)
		time.Sleep(400 * time.Millisecond) // a piece boundary falls between bursts
	}
	enginetest.Exec(t, db, "ALTER TABLE app.w ADD COLUMN extra INT")
	want = append(want, write(t, db, 1000, 1010, 0)...)
	s := waitArchived(t, r.a, binlogPos(t, db))
	r.stop()

	pieces, got := archived(t, st)
	if len(pieces) < 4 {
		t.Errorf("%d pieces; bursts 400 ms apart with a 300 ms interval should give at least 4", len(pieces))
	}
	contiguous(t, got, want[:400])
	contiguous(t, got, want[400:])
	// The DDL is archived between the bursts: every GTID from the first to the last is there.
	first := gtid.MustParse(gtid.MariaDB, want[0]).MariaDBGTIDs()[0]
	last := gtid.MustParse(gtid.MariaDB, want[len(want)-1]).MariaDBGTIDs()[0]
	for seq := first.Seq; seq <= last.Seq; seq++ {
		g := gtid.MariaDBGTID{Domain: first.Domain, Server: first.Server, Seq: seq}.String()
		if !strings.Contains(","+strings.Join(got, ",")+",", ","+g+",") {
			t.Errorf("%s is not archived", g)
		}
	}
	noGaps(t, pieces)
	if s.LastGTID != pieces[len(pieces)-1].After || len(s.Gaps) != 0 || s.Pieces != uint64(len(pieces)) {
		t.Errorf("status %+v does not match the %d stored pieces (last after %s)", s, len(pieces), pieces[len(pieces)-1].After)
	}
	p := pieces[len(pieces)-1]
	if p.Source.Address != addr(c.Instances[0]) || p.Source.ServerID != c.Instances[0].ServerID || p.Source.File == "" ||
		p.Source.End <= p.Source.Start || p.FirstEvent.IsZero() || p.LastEvent.Before(p.FirstEvent) || p.RawSize <= p.Size/2 {
		t.Errorf("metadata of the last piece: %+v", p)
	}

	// mariadb-binlog reads a piece as it is and finds the rows in it.
	data, _, err := ReadData(context.Background(), st, testLayout, pieces[1])
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "piece.bin")
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("mariadb-binlog", "--base64-output=decode-rows", "-v", file).CombinedOutput()
	if err != nil {
		t.Fatalf("mariadb-binlog: %v: %s", err, out)
	}
	if n := strings.Count(string(out), "### INSERT INTO `app`.`w`"); n != pieces[1].Transactions {
		t.Errorf("mariadb-binlog decoded %d inserts from piece 2, which holds %d transactions", n, pieces[1].Transactions)
	}
}

// TestMain runs `kura archive` when a test starts this test binary as that command.
func TestMain(m *testing.M) {
	if req := os.Getenv("KURA_ARCHIVE_REQUEST"); req != "" {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
		defer stop()
		if err := Command(ctx, []string{"--request=" + req}, os.Stderr); err != nil {
			fmt.Fprintln(os.Stderr, "kura archive:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// command is a `kura archive` process.
type command struct {
	cmd    *exec.Cmd
	listen string
	done   chan struct{}
}

func startCommand(t testing.TB, req Request) *command {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	req.Listen = ln.Addr().String()
	_ = ln.Close()
	text, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "KURA_ARCHIVE_REQUEST="+string(text))
	cmd.Stdout, cmd.Stderr = enginetest.Log{T: t}, enginetest.Log{T: t}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &command{cmd: cmd, listen: req.Listen, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(c.done) }()
	t.Cleanup(func() { c.kill() })
	return c
}

func (c *command) kill() {
	_ = c.cmd.Process.Signal(syscall.SIGKILL)
	<-c.done
}

// status reads the process's /status (zero Status until it answers).
func (c *command) status() (Status, string) {
	resp, err := http.Get("http://" + c.listen + "/status")
	if err != nil {
		return Status{}, ""
	}
	defer func() { _ = resp.Body.Close() }()
	var s Status
	_ = json.NewDecoder(resp.Body).Decode(&s)
	m, err := http.Get("http://" + c.listen + "/metrics")
	if err != nil {
		return s, ""
	}
	defer func() { _ = m.Body.Close() }()
	b, _ := io.ReadAll(m.Body)
	return s, string(b)
}

func (c *command) waitArchived(t testing.TB, want string) (Status, string) {
	t.Helper()
	w := gtid.MustParse(gtid.MariaDB, want)
	deadline := time.Now().Add(60 * time.Second)
	for {
		s, metrics := c.status()
		if s.LastGTID != "" && gtid.MustParse(gtid.MariaDB, s.LastGTID).Contains(w) {
			return s, metrics
		}
		if time.Now().After(deadline) {
			t.Fatalf("kura archive did not reach %s within 60s: %+v", want, s)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestArchiveResumesAfterKill: `kura archive` is killed (SIGKILL, no lease released) while
// writes go on; a second process waits for the dead one's lease to expire and resumes from
// the last stored piece: every transaction archived once, no gap.
func TestArchiveResumesAfterKill(t *testing.T) {
	c := enginetest.Start(t, 1, enginetest.Options{})
	db := makePrimary(t, c.Instances[0], true)
	st, srv := s3Server(t)
	dir := t.TempDir()
	for name, v := range map[string]string{"access-key-id": s3test.AccessKey, "secret-access-key": s3test.SecretKey, "agent": enginetest.AgentPassword} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	req := Request{Namespace: testLayout.Namespace, Cluster: testLayout.Cluster, Lineage: testLayout.Lineage,
		Sources: []string{addr(c.Instances[0])}, ServerID: 3_000_000_002, AgentPasswordFile: filepath.Join(dir, "agent"),
		Storage: backup.StorageConfig{S3: &backup.S3Location{Endpoint: srv.Endpoint, Region: "us-east-1", Bucket: "backups",
			PathStyle: true, CredentialsDir: dir}},
		PieceInterval: "300ms", LeaseTTL: "3s"}
	first := startCommand(t, req)
	want := write(t, db, 0, 200, time.Millisecond)
	first.waitArchived(t, binlogPos(t, db))
	done := make(chan []string)
	go func() { done <- write(t, db, 200, 600, 2*time.Millisecond) }()
	time.Sleep(300 * time.Millisecond)
	first.kill()
	killed := time.Now()
	second := startCommand(t, req)
	want = append(want, <-done...)
	s, metrics := second.waitArchived(t, binlogPos(t, db))
	if waited := time.Since(killed); waited < 2*time.Second {
		t.Errorf("the second archiver resumed %s after the kill, before the dead one's lease (3s) expired", waited)
	}
	if !s.Holding || !strings.Contains(metrics, "kura_archive_pieces_total{cluster=\"shop\",namespace=\"shop-ns\"}") {
		t.Errorf("status %+v; metrics:\n%s", s, metrics)
	}
	second.kill()
	pieces := archivedExactly(t, st, want)
	writers := map[string]bool{}
	for _, p := range pieces {
		writers[p.Writer] = true
	}
	if len(writers) != 2 {
		t.Errorf("pieces were written by %v; want both archivers", writers)
	}
}

// TestArchiveFollowsPrimarySwitch: the replica is promoted; the archive continues from it by
// GTID with no gap and no duplicate.
func TestArchiveFollowsPrimarySwitch(t *testing.T) {
	c := enginetest.Start(t, 2, enginetest.Options{})
	p0, p1 := c.Instances[0], c.Instances[1]
	db0 := makePrimary(t, p0, true)
	ctx := context.Background()
	r1 := p1.Open(engine.Options{})
	if err := r1.ConfigureReplica(ctx, p0.ReplicationSource()); err != nil {
		t.Fatal(err)
	}
	if err := r1.StartReplication(ctx, engine.BothThreads); err != nil {
		t.Fatal(err)
	}
	st := s3Storage(t)
	r := start(t, config(st, p0, p1))
	want := write(t, db0, 0, 300, time.Millisecond)

	// Switchover: the primary turns read-only, the replica catches up and is promoted.
	i0 := p0.Open(engine.Options{})
	if err := i0.SetReadOnly(ctx, true); err != nil {
		t.Fatal(err)
	}
	set, err := i0.ExecutedGTID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := r1.WaitForGTID(ctx, set, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := r1.StopReplicaAndReset(ctx); err != nil {
		t.Fatal(err)
	}
	db1 := makePrimary(t, p1, false)
	if err := i0.ConfigureReplica(ctx, p1.ReplicationSource()); err != nil {
		t.Fatal(err)
	}
	if err := i0.StartReplication(ctx, engine.BothThreads); err != nil {
		t.Fatal(err)
	}
	want = append(want, write(t, db1, 300, 600, time.Millisecond)...)
	s := waitArchived(t, r.a, binlogPos(t, db1))
	r.stop()
	pieces := archivedExactly(t, st, want)
	from := map[uint32]bool{}
	for _, p := range pieces {
		from[p.Source.ServerID] = true
	}
	if !from[p0.ServerID] || !from[p1.ServerID] || s.Source != addr(p1) {
		t.Errorf("pieces came from servers %v, status source %s; want both, ending at %s", from, s.Source, addr(p1))
	}
	if !strings.Contains(want[len(want)-1], fmt.Sprintf("-%d-", p1.ServerID)) {
		t.Fatalf("the last write %s was not committed by the new primary", want[len(want)-1])
	}
}

// TestArchiveReportsGaps: a piece deleted from storage and binary logs purged on the server
// before they were archived are both reported as gaps, at the right place.
func TestArchiveReportsGaps(t *testing.T) {
	c := enginetest.Start(t, 1, enginetest.Options{})
	db := makePrimary(t, c.Instances[0], true)
	st := s3Storage(t)
	cfg := config(st, c.Instances[0])
	r := start(t, cfg)
	for burst := range 3 {
		write(t, db, burst*50, burst*50+50, 0)
		time.Sleep(400 * time.Millisecond)
	}
	waitArchived(t, r.a, binlogPos(t, db))
	r.stop()
	ctx := context.Background()
	pieces, _ := archived(t, st)
	noGaps(t, pieces)
	if len(pieces) < 3 {
		t.Fatalf("%d pieces, want at least 3", len(pieces))
	}

	// Purged on the server while no archiver ran: the transactions 150..199 are lost.
	write(t, db, 150, 200, 0)
	lost := binlogPos(t, db)
	i := c.Instances[0].Open(engine.Options{})
	if err := i.FlushBinaryLogs(ctx); err != nil {
		t.Fatal(err)
	}
	var last string
	var pos, doDB, ignoreDB any
	if err := db.QueryRow("SHOW MASTER STATUS").Scan(&last, &pos, &doDB, &ignoreDB); err != nil {
		t.Fatal(err)
	}
	// The previous file is kept until its binlog checkpoint is written: purge until it goes.
	for deadline := time.Now().Add(30 * time.Second); ; {
		enginetest.Exec(t, db, "PURGE BINARY LOGS TO '"+last+"'")
		if countRows(t, db, "SHOW BINARY LOGS") == 1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	var oldest string
	if err := db.QueryRow("SELECT BINLOG_GTID_POS(?, 4)", last).Scan(&oldest); err != nil || oldest != lost {
		t.Fatalf("after the purge the oldest binary log starts at %q (%v), want %q", oldest, err, lost)
	}
	if n := countRows(t, db, "SHOW BINARY LOGS"); n != 1 {
		t.Fatalf("%d binary logs after the purge, want 1", n)
	}
	after := write(t, db, 200, 220, 0)
	r = start(t, cfg)
	s := waitArchived(t, r.a, binlogPos(t, db))
	r.stop()
	if len(s.Gaps) != 1 || s.Gaps[0].Archived != pieces[len(pieces)-1].After || !strings.Contains(s.Gaps[0].Reason, "continues at") {
		t.Fatalf("status gaps %+v; want one gap after %s", s.Gaps, pieces[len(pieces)-1].After)
	}
	all, got := archived(t, st)
	contiguous(t, got, after)
	gaps, err := CheckChain(all)
	if err != nil {
		t.Fatal(err)
	}
	if len(gaps) != 1 || gaps[0].Archived != pieces[len(pieces)-1].After || gaps[0].Next != after[0] {
		t.Fatalf("gaps %+v; want one gap from %s to %s", gaps, pieces[len(pieces)-1].After, after[0])
	}

	// A deleted piece is a gap too.
	if err := st.Delete(ctx, MetaKey(testLayout, 2)); err != nil {
		t.Fatal(err)
	}
	all, _ = archived(t, st)
	gaps, err = CheckChain(all)
	if err != nil {
		t.Fatal(err)
	}
	if len(gaps) != 2 || gaps[0].Seq != 3 || !strings.Contains(gaps[0].Reason, "pieces 2 to 2 are missing") {
		t.Fatalf("gaps after deleting piece 2: %+v", gaps)
	}
}

func countRows(t testing.TB, db *sql.DB, q string) int {
	t.Helper()
	rows, err := db.Query(q)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rows.Close() }()
	n := 0
	for rows.Next() {
		n++
	}
	return n
}

// semiSync reads the primary's semi-sync counters.
func semiSync(t testing.TB, db *sql.DB) map[string]string {
	t.Helper()
	rows, err := db.Query("SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_master_%'")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rows.Close() }()
	out := map[string]string{}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			t.Fatal(err)
		}
		out[k] = v
	}
	return out
}

// TestArchiverNeverAcknowledgesSemiSync: with a semi-sync replica the primary counts its
// acknowledgements (the check works); with the replica stopped and only the archiver
// streaming, a commit waits for the whole timeout and is not acknowledged by anyone, although
// the archiver stores it.
func TestArchiverNeverAcknowledgesSemiSync(t *testing.T) {
	c := enginetest.Start(t, 2, enginetest.Options{})
	p0, p1 := c.Instances[0], c.Instances[1]
	db := makePrimary(t, p0, true)
	ctx := context.Background()
	const timeout = 1500 * time.Millisecond
	i0, r1 := p0.Open(engine.Options{}), p1.Open(engine.Options{})
	if err := i0.ConfigureSemiSync(ctx, engine.SemiSyncConfig{Role: engine.RolePrimary, WaitCount: 1, Timeout: timeout}); err != nil {
		t.Fatal(err)
	}
	if err := r1.ConfigureSemiSync(ctx, engine.SemiSyncConfig{Role: engine.RoleReplica}); err != nil {
		t.Fatal(err)
	}
	if err := r1.ConfigureReplica(ctx, p0.ReplicationSource()); err != nil {
		t.Fatal(err)
	}
	if err := r1.StartReplication(ctx, engine.BothThreads); err != nil {
		t.Fatal(err)
	}
	// The measurement: a real semi-sync replica's acknowledgement is counted.
	deadline := time.Now().Add(30 * time.Second)
	for semiSync(t, db)["Rpl_semi_sync_master_clients"] != "1" {
		if time.Now().After(deadline) {
			t.Fatalf("the semi-sync replica did not connect: %v", semiSync(t, db))
		}
		time.Sleep(50 * time.Millisecond)
	}
	before := semiSync(t, db)
	write(t, db, 0, 1, 0)
	with := semiSync(t, db)
	if with["Rpl_semi_sync_master_yes_tx"] == before["Rpl_semi_sync_master_yes_tx"] {
		t.Fatalf("a semi-sync replica's acknowledgement was not counted: %v -> %v", before, with)
	}
	if err := r1.StopReplication(ctx, engine.BothThreads); err != nil {
		t.Fatal(err)
	}
	for semiSync(t, db)["Rpl_semi_sync_master_clients"] != "0" {
		time.Sleep(50 * time.Millisecond)
	}

	st := s3Storage(t)
	r := start(t, config(st, p0))
	waitArchived(t, r.a, binlogPos(t, db))
	before = semiSync(t, db)
	began := time.Now()
	want := write(t, db, 1, 2, 0)
	took := time.Since(began)
	waitArchived(t, r.a, binlogPos(t, db))
	after := semiSync(t, db)
	if after["Rpl_semi_sync_master_clients"] != "0" || after["Rpl_semi_sync_master_yes_tx"] != before["Rpl_semi_sync_master_yes_tx"] ||
		after["Rpl_semi_sync_master_no_tx"] == before["Rpl_semi_sync_master_no_tx"] {
		t.Errorf("with only the archiver connected: %v -> %v; want no client, no acknowledged and one unacknowledged transaction", before, after)
	}
	if took < timeout-100*time.Millisecond {
		t.Errorf("the commit returned after %s, before the semi-sync timeout (%s): someone acknowledged it", took, timeout)
	}
	r.stop()
	_, got := archived(t, st)
	contiguous(t, got, want)
}
