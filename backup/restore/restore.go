package restore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/backup"
	"github.com/kura-db/kura/backup/archive"
	"github.com/kura-db/kura/backup/storage"
	"github.com/kura-db/kura/internal/contract"
	"github.com/kura-db/kura/internal/engine"
	"github.com/kura-db/kura/internal/gtid"
	"github.com/kura-db/kura/internal/seed"
	"github.com/kura-db/kura/internal/tools"
)

// Marker is on the data volume from the start of a restore until its end: a directory that
// carries it holds a partial restore, which the next attempt empties and starts over (dba
// rule 19: nothing half restored ever starts as an instance).
const Marker = contract.RestoreMarker

// Deps are what a restore uses besides the Job and storage.
type Deps struct {
	// DefaultsFile is the server's option file (the private servers read it).
	DefaultsFile string
	// Credentials are the cluster's accounts, which the restored data gets.
	Credentials engine.Credentials
	// Tools runs mbstream, mariadb-backup, mariadb and mariadb-binlog.
	Tools tools.Runner
	// Server is the private server (program, OS user); Init the data directory
	// initialisation of a logical restore.
	Server engine.PrivateServerOptions
	Init   engine.InitOptions
	// TmpDir holds the private servers' directories and the staged binary logs (default
	// os.TempDir()).
	TmpDir string
	// Log receives progress lines (default stderr).
	Log io.Writer
}

func (d Deps) logf(format string, a ...any) {
	w := d.Log
	if w == nil {
		w = os.Stderr
	}
	fmt.Fprintf(w, "kura restore: "+format+"\n", a...)
}

// Prepare reads the backup's manifest and, for a point in time, the archive's metadata, and
// returns the plan and the chain of pieces (nothing is written).
func Prepare(ctx context.Context, job Job, st storage.Storage) (Plan, backup.Manifest, []archive.Piece, error) {
	plan := Plan{Backup: job.Backup, Target: job.Target.String()}
	if err := job.Source.Validate(); err != nil {
		return plan, backup.Manifest{}, nil, err
	}
	m, err := backup.ReadManifest(ctx, st, job.Source, job.Backup)
	if errors.Is(err, storage.ErrNotFound) {
		return plan, m, nil, fmt.Errorf("backup %s has no manifest at %s: it is not a complete backup: %w",
			job.Backup, st.Location(job.Source.ManifestKey(job.Backup)), ErrUnrecoverable)
	}
	if err != nil {
		return plan, m, nil, err
	}
	if why := usable(m, job.Engine); why != "" {
		return plan, m, nil, fmt.Errorf("backup %s cannot seed this cluster: %s: %w", job.Backup, why, ErrUnrecoverable)
	}
	plan.Method, plan.BaseGTID, plan.BaseTime = m.Method, m.Consistent.GTIDSet, m.Consistent.Time
	for _, o := range m.Objects {
		plan.Bytes += o.Size
	}
	if job.Target.IsZero() {
		plan.TargetGTID = m.Consistent.GTIDSet
		return plan, m, nil, nil
	}
	pieces, err := archive.ListPieces(ctx, st, job.Source)
	if err != nil {
		return plan, m, nil, fmt.Errorf("failed to list the archive: %w", err)
	}
	chain, err := BuildChain(m, pieces, job.Target)
	if err != nil {
		return plan, m, nil, err
	}
	for _, p := range chain {
		plan.Pieces = append(plan.Pieces, p.Seq)
		plan.Bytes += p.Size
	}
	return plan, m, chain, nil
}

// Run restores job's backup into datadir, which holds nothing but markers, and replays the
// archive to the target (see the package comment). On success datadir is an initialised data
// directory whose executed GTID set is the planned one and whose accounts are the cluster's;
// on failure it carries Marker.
func Run(ctx context.Context, job Job, st storage.Storage, datadir string, d Deps) (res Result, err error) {
	start := time.Now()
	defer func() {
		res.DurationMS = time.Since(start).Milliseconds()
		if err != nil {
			res.Error = err.Error()
		}
	}()
	plan, m, chain, err := Prepare(ctx, job, st)
	res.Plan = plan
	if err != nil || job.DryRun {
		return res, err
	}
	d.logf("restoring %s (%s, point %s at %s) to %s: %d archived pieces, %d bytes to read",
		job.Backup, m.Method, m.Consistent.GTIDSet, m.Consistent.Time.UTC().Format(time.RFC3339), job.Target, len(chain), plan.Bytes)

	work, err := os.MkdirTemp(d.TmpDir, "kura-restore-")
	if err != nil {
		return res, fmt.Errorf("failed to create a private directory: %w", err)
	}
	defer func() { _ = os.RemoveAll(work) }()

	// Everything the replay needs is read and checked before the data is touched.
	c, err := newCut(m.Consistent.GTIDSet, job.Target)
	if err != nil {
		return res, fmt.Errorf("backup %s records the GTID set %q: %w", job.Backup, m.Consistent.GTIDSet, err)
	}
	files, n, err := stagePieces(ctx, st, job.Source, chain, c, work)
	res.BytesRead += n
	if err != nil {
		return res, err
	}
	want, err := c.planned(m.Consistent.GTIDSet)
	if err != nil {
		return res, err
	}
	res.Plan.TargetGTID = want.String()
	d.logf("%d transactions to replay; the restore must reach %q", len(c.applied), want)

	if err := writeMarker(datadir, job); err != nil {
		return res, err
	}
	seedStart := time.Now()
	if m.Method == kurav1alpha1.BackupMethodPhysical {
		if err := seedCopy(ctx, job, st, m, datadir, d); err != nil {
			return res, err
		}
	} else if err := initEmpty(ctx, job, datadir, d); err != nil {
		return res, err
	}
	srv, inst, err := private(ctx, datadir, work, "restore", job.Engine, d, restoreServerArgs...)
	if err != nil {
		return res, err
	}
	stopped := false
	defer func() {
		if !stopped {
			shutdown(srv, inst)
		}
	}()
	if m.Method != kurav1alpha1.BackupMethodPhysical {
		if err := loadDump(ctx, job, st, m, srv, d); err != nil {
			return res, err
		}
	}
	if err := setState(ctx, inst, m.Consistent.GTIDSet); err != nil {
		return res, err
	}
	for _, o := range m.Objects {
		res.BytesRead += o.Size
	}
	res.SeedMS = time.Since(seedStart).Milliseconds()
	replayStart := time.Now()
	if len(files) > 0 {
		if err := replay(ctx, srv, inst, files, want, job.Engine, d); err != nil {
			return res, err
		}
	}
	res.ReplayMS = time.Since(replayStart).Milliseconds()
	res.Replayed = len(c.applied)
	res.TimeReached = m.Consistent.Time.UTC()
	if !c.last.IsZero() {
		res.TimeReached = c.last
	}
	got, err := openAccounts(ctx, srv, want, job.Engine, d)
	if err != nil {
		return res, err
	}
	res.GTIDReached = got.String()
	stopped = true
	_ = inst.Close()
	sctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return res, fmt.Errorf("failed to stop the restored server cleanly: %w", err)
	}
	if err := os.Remove(filepath.Join(datadir, Marker)); err != nil {
		return res, fmt.Errorf("failed to remove %s: %w", Marker, err)
	}
	d.logf("restored %s to %q in %s (%d transactions replayed)", job.Backup, got, time.Since(start).Round(time.Millisecond), res.Replayed)
	return res, nil
}

// Partial reports whether datadir holds an unfinished restore.
func Partial(datadir string) bool {
	_, err := os.Stat(filepath.Join(datadir, Marker))
	return err == nil
}

func writeMarker(datadir string, job Job) error {
	if err := os.MkdirAll(datadir, 0o750); err != nil {
		return fmt.Errorf("failed to create %s: %w", datadir, err)
	}
	b, _ := json.Marshal(map[string]any{"backup": job.Backup, "target": job.Target.String(), "started": time.Now().UTC()})
	return engine.WriteFileDurably(filepath.Join(datadir, Marker), b, 0o640)
}

// private starts a private server on datadir (networking off, a socket in its own
// directory under work) with extra options.
func private(ctx context.Context, datadir, work, name string, kind kurav1alpha1.Engine, d Deps, extra ...string) (*engine.PrivateServer, engine.Instance, error) {
	dir := filepath.Join(work, name)
	if err := os.Mkdir(dir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("failed to create %s: %w", dir, err)
	}
	so := d.Server
	so.Engine, so.DefaultsFile, so.DataDir, so.Dir = kind, d.DefaultsFile, datadir, dir
	so.User, so.Password = engine.OperatorUser, d.Credentials.Operator
	so.ExtraArgs = append(append([]string(nil), so.ExtraArgs...), extra...)
	srv, err := engine.StartPrivateServer(ctx, so)
	if err != nil {
		return nil, nil, err
	}
	inst, err := srv.Open()
	if err != nil {
		shutdown(srv, nil)
		return nil, nil, err
	}
	return srv, inst, nil
}

func shutdown(srv *engine.PrivateServer, inst engine.Instance) {
	if inst != nil {
		_ = inst.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	_ = srv.Shutdown(ctx)
}

// The restore's private server skips the grant tables until the accounts are set: the
// restored data holds the source's accounts, whose passwords may not be the cluster's.
// Nobody else can reach it (no networking, a private socket). Durability is relaxed while
// it works: a restore cut short is started over anyway, and the clean shutdown at the end
// writes everything.
var restoreServerArgs = []string{"--skip-grant-tables", "--read-only=OFF",
	"--innodb-flush-log-at-trx-commit=0", "--sync-binlog=0"}

// seedCopy extracts and prepares a physical backup into datadir through the clone path; the
// GTID state is set on the restore's server.
func seedCopy(ctx context.Context, job Job, st storage.Storage, m backup.Manifest, datadir string, d Deps) error {
	res, err := seed.Into(ctx, backup.StoredCopy{Storage: st, Layout: job.Source, Backup: job.Backup}, datadir, seed.Options{
		Engine: job.Engine, DefaultsFile: d.DefaultsFile, OperatorPassword: d.Credentials.Operator,
		Tools: d.Tools, Server: d.Server, Log: d.Log, DeferGTIDState: true,
	})
	if err != nil {
		return err
	}
	if want := gtid.MustParse(gtid.MariaDB, m.Consistent.GTIDSet); !res.State.Equal(want) {
		return fmt.Errorf("the copy's GTID state %q is not the manifest's %q", res.State, want)
	}
	return nil
}

// initEmpty initialises datadir for a logical backup to be loaded into.
func initEmpty(ctx context.Context, job Job, datadir string, d Deps) error {
	init := d.Init
	if init.Server == "" {
		init.Server = d.Server.Program
	}
	if init.OSUser == "" {
		init.OSUser = d.Server.OSUser
	}
	_, err := engine.InitDataDir(ctx, job.Engine, datadir, engine.StandardAccounts(d.Credentials), init)
	return err
}

// setState records the base's GTID state (gtid_binlog_state and gtid_slave_pos) and checks it.
func setState(ctx context.Context, inst engine.Instance, set string) error {
	state, err := gtid.Parse(gtid.MariaDB, set)
	if err != nil {
		return err
	}
	if err := inst.ResetGTIDState(ctx, state); err != nil {
		return err
	}
	got, err := inst.ExecutedGTID(ctx)
	if err != nil {
		return err
	}
	if !got.Equal(state) {
		return fmt.Errorf("failed to set the base's GTID state: %q, want %q", got, state)
	}
	return nil
}

// client is the SQL client's invocation against the restore's server.
func client(srv *engine.PrivateServer, kind kurav1alpha1.Engine, d Deps, noBinlog bool) tools.Invocation {
	return tools.Invocation{Engine: kind, Op: tools.Load, ServerDefaults: d.DefaultsFile, NoBinlog: noBinlog,
		Account: tools.Account{User: engine.OperatorUser, Password: d.Credentials.Operator, Socket: srv.Socket()}}
}

// loadDump loads the logical backup with binary logging off, checking the stored object's
// size and SHA-256 as it streams.
func loadDump(ctx context.Context, job Job, st storage.Storage, m backup.Manifest, srv *engine.PrivateServer, d Deps) error {
	if len(m.Objects) != 1 {
		return fmt.Errorf("backup %s has %d data objects; a logical backup has one", job.Backup, len(m.Objects))
	}
	obj := m.Objects[0]
	key := job.Source.BackupPrefix(job.Backup) + obj.Name
	r, err := st.Get(ctx, key)
	if err != nil {
		return err
	}
	defer func() { _ = r.Close() }()
	h := sha256.New()
	counted := &countingReader{r: io.TeeReader(r, h)}
	dec, err := backup.Decompress(m.Compression, counted)
	if err != nil {
		return err
	}
	defer func() { _ = dec.Close() }()
	_, loadErr := d.Tools.Run(ctx, client(srv, job.Engine, d, true), tools.Options{Stdin: dec})
	// Read what is left of the stored object (trailing comments the client did not need, or
	// everything after a failure), so the checksum covers it all: altered bytes are named as
	// such rather than by whatever they broke.
	if _, err := io.Copy(io.Discard, counted); err != nil && loadErr == nil {
		return fmt.Errorf("failed to read %s: %w", st.Location(key), err)
	}
	if sum := hex.EncodeToString(h.Sum(nil)); counted.n != obj.Size || sum != obj.SHA256 {
		return fmt.Errorf("backup object %s does not match its manifest: %d bytes with SHA-256 %s, the manifest says %d bytes with %s",
			st.Location(key), counted.n, sum, obj.Size, obj.SHA256)
	}
	if loadErr != nil {
		return fmt.Errorf("failed to load %s: %w", st.Location(key), loadErr)
	}
	return nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// replay applies the staged binary logs: mariadb-binlog decodes them, the client applies
// them with their original GTIDs (binary logging on, so the server records each one), and the
// executed set must then be exactly want.
func replay(ctx context.Context, srv *engine.PrivateServer, inst engine.Instance, files []string, want gtid.Set, kind kurav1alpha1.Engine, d Deps) error {
	pr, pw := io.Pipe()
	decodeErr := make(chan error, 1)
	go func() {
		_, err := d.Tools.Run(ctx, tools.Invocation{Engine: kind, Op: tools.BinlogDecode, Files: files}, tools.Options{Stdout: pw})
		_ = pw.CloseWithError(err)
		decodeErr <- err
	}()
	_, loadErr := d.Tools.Run(ctx, client(srv, kind, d, false), tools.Options{Stdin: pr})
	_ = pr.CloseWithError(errors.New("the client stopped reading"))
	if err := <-decodeErr; err != nil && loadErr == nil {
		return fmt.Errorf("failed to decode the archived binary log: %w", err)
	}
	if loadErr != nil {
		return fmt.Errorf("failed to replay the archived binary log: %w", loadErr)
	}
	got, err := inst.ExecutedGTID(ctx)
	if err != nil {
		return err
	}
	if !got.Equal(want) {
		return fmt.Errorf("the replay reached %q, the plan %q", got, want)
	}
	return nil
}

// openAccounts gives the restored data the cluster's accounts: the account script (the one
// a new data directory gets) runs with binary logging off, its FLUSH PRIVILEGES turning the
// grant tables on; then a new connection logs in with the cluster's operator password and
// checks every account and the executed set.
func openAccounts(ctx context.Context, srv *engine.PrivateServer, want gtid.Set, kind kurav1alpha1.Engine, d Deps) (gtid.Set, error) {
	accounts := engine.StandardAccounts(d.Credentials)
	script, err := engine.AccountsScript(kind, accounts)
	if err != nil {
		return gtid.Set{}, err
	}
	if _, err := d.Tools.Run(ctx, client(srv, kind, d, true), tools.Options{Stdin: strings.NewReader(script)}); err != nil {
		return gtid.Set{}, fmt.Errorf("failed to set the cluster's accounts: %w", err)
	}
	inst, err := engine.Open(kind, engine.Endpoint{Socket: srv.Socket(), User: engine.OperatorUser, Password: d.Credentials.Operator}, engine.Options{})
	if err != nil {
		return gtid.Set{}, err
	}
	defer func() { _ = inst.Close() }()
	if err := inst.CheckAccounts(ctx, accounts); err != nil {
		return gtid.Set{}, err
	}
	got, err := inst.ExecutedGTID(ctx)
	if err != nil {
		return got, err
	}
	if !got.Equal(want) {
		return got, fmt.Errorf("after setting the accounts the executed set is %q, the plan %q", got, want)
	}
	return got, nil
}
