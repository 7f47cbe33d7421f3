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
	if err := seedBase(ctx, job, st, m, datadir, work, d); err != nil {
		return res, err
	}
	for _, o := range m.Objects {
		res.BytesRead += o.Size
	}
	res.SeedMS = time.Since(seedStart).Milliseconds()
	replayStart := time.Now()
	if len(files) > 0 {
		if err := replay(ctx, datadir, work, files, want, job.Engine, d); err != nil {
			return res, err
		}
	}
	res.ReplayMS = time.Since(replayStart).Milliseconds()
	res.Replayed = len(c.applied)
	res.TimeReached = m.Consistent.Time.UTC()
	if !c.last.IsZero() {
		res.TimeReached = c.last
	}
	got, err := openAccounts(ctx, datadir, work, want, job.Engine, d)
	if err != nil {
		return res, err
	}
	res.GTIDReached = got.String()
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

// The restore's private servers skip the grant tables until the accounts are set: the
// restored data holds the source's accounts, whose passwords may not be the cluster's.
// Nobody else can reach them (no networking, a private socket).
var noGrants = []string{"--skip-grant-tables", "--read-only=OFF"}

// seedBase fills datadir with the backup's data and its GTID state.
func seedBase(ctx context.Context, job Job, st storage.Storage, m backup.Manifest, datadir, work string, d Deps) error {
	state, err := gtid.Parse(gtid.MariaDB, m.Consistent.GTIDSet)
	if err != nil {
		return err
	}
	switch m.Method {
	case kurav1alpha1.BackupMethodPhysical:
		so := d.Server
		so.ExtraArgs = append(append([]string(nil), so.ExtraArgs...), noGrants...)
		res, err := seed.Into(ctx, backup.StoredCopy{Storage: st, Layout: job.Source, Backup: job.Backup}, datadir, seed.Options{
			Engine: job.Engine, DefaultsFile: d.DefaultsFile, OperatorPassword: d.Credentials.Operator,
			Tools: d.Tools, Server: so, Log: d.Log,
		})
		if err != nil {
			return err
		}
		if !res.State.Equal(state) {
			return fmt.Errorf("the copy's GTID state %q is not the manifest's %q", res.State, state)
		}
		return nil
	default:
		return loadDump(ctx, job, st, m, datadir, work, state, d)
	}
}

// loadDump initialises datadir, loads the logical backup with binary logging off and sets
// the GTID state to the dump's point.
func loadDump(ctx context.Context, job Job, st storage.Storage, m backup.Manifest, datadir, work string, state gtid.Set, d Deps) error {
	if len(m.Objects) != 1 {
		return fmt.Errorf("backup %s has %d data objects; a logical backup has one", job.Backup, len(m.Objects))
	}
	obj := m.Objects[0]
	init := d.Init
	if init.Server == "" {
		init.Server = d.Server.Program
	}
	if init.OSUser == "" {
		init.OSUser = d.Server.OSUser
	}
	if _, err := engine.InitDataDir(ctx, job.Engine, datadir, engine.StandardAccounts(d.Credentials), init); err != nil {
		return err
	}
	srv, inst, err := private(ctx, datadir, work, "load", job.Engine, d, noGrants...)
	if err != nil {
		return err
	}
	defer shutdown(srv, inst)
	r, err := st.Get(ctx, job.Source.BackupPrefix(job.Backup)+obj.Name)
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
	load := tools.Invocation{Engine: job.Engine, Op: tools.Load, ServerDefaults: d.DefaultsFile, NoBinlog: true,
		Account: tools.Account{User: engine.OperatorUser, Password: d.Credentials.Operator, Socket: srv.Socket()}}
	if _, err := d.Tools.Run(ctx, load, tools.Options{Stdin: dec}); err != nil {
		return fmt.Errorf("failed to load %s: %w", st.Location(job.Source.BackupPrefix(job.Backup)+obj.Name), err)
	}
	// Drain what the client left unread (trailing comments), so the checksum covers it all.
	if _, err := io.Copy(io.Discard, dec); err != nil {
		return fmt.Errorf("failed to read %s: %w", obj.Name, err)
	}
	if sum := hex.EncodeToString(h.Sum(nil)); counted.n != obj.Size || sum != obj.SHA256 {
		return fmt.Errorf("backup object %s: %d bytes with SHA-256 %s, the manifest says %d bytes with %s",
			st.Location(job.Source.BackupPrefix(job.Backup)+obj.Name), counted.n, sum, obj.Size, obj.SHA256)
	}
	if err := inst.ResetGTIDState(ctx, state); err != nil {
		return err
	}
	got, err := inst.ExecutedGTID(ctx)
	if err != nil {
		return err
	}
	if !got.Equal(state) {
		return fmt.Errorf("failed to set the GTID state of the loaded dump: %q, want %q", got, state)
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

// replay applies the staged binary logs on a private server: mariadb-binlog decodes them,
// the client applies them with their original GTIDs (binary logging on, so the server
// records each one), and the executed set must then be exactly want.
func replay(ctx context.Context, datadir, work string, files []string, want gtid.Set, kind kurav1alpha1.Engine, d Deps) error {
	srv, inst, err := private(ctx, datadir, work, "replay", kind, d, noGrants...)
	if err != nil {
		return err
	}
	defer shutdown(srv, inst)
	pr, pw := io.Pipe()
	decodeErr := make(chan error, 1)
	go func() {
		_, err := d.Tools.Run(ctx, tools.Invocation{Engine: kind, Op: tools.BinlogDecode, Files: files}, tools.Options{Stdout: pw})
		_ = pw.CloseWithError(err)
		decodeErr <- err
	}()
	load := tools.Invocation{Engine: kind, Op: tools.Load, ServerDefaults: d.DefaultsFile,
		Account: tools.Account{User: engine.OperatorUser, Password: d.Credentials.Operator, Socket: srv.Socket()}}
	_, loadErr := d.Tools.Run(ctx, load, tools.Options{Stdin: pr})
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

// openAccounts starts the restored data with the cluster's accounts (set by the server's
// init file, outside the binary log), logs in with them, checks them and the executed set,
// and stops it.
func openAccounts(ctx context.Context, datadir, work string, want gtid.Set, kind kurav1alpha1.Engine, d Deps) (gtid.Set, error) {
	accounts := engine.StandardAccounts(d.Credentials)
	script, err := engine.AccountsScript(kind, accounts)
	if err != nil {
		return gtid.Set{}, err
	}
	file := filepath.Join(work, "accounts.sql")
	if err := os.WriteFile(file, []byte(script), 0o600); err != nil {
		return gtid.Set{}, fmt.Errorf("failed to write %s: %w", file, err)
	}
	srv, inst, err := private(ctx, datadir, work, "open", kind, d, "--init-file="+file)
	if err != nil {
		return gtid.Set{}, err
	}
	defer shutdown(srv, inst)
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
