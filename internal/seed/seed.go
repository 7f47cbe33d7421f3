// Package seed fills a data directory from a physical copy (docs/cloning.md): a clone from a
// donor's agent and a physical restore from a stored backup are the same operation from two
// sources. It owns the copy stream (stream.go), taking a copy of the local server (Copy) and
// seeding a directory from any Source (Into): extract, prepare, and the GTID state of the copy
// point written before the real server ever starts.
package seed

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/internal/engine"
	"github.com/kura-db/kura/internal/gtid"
	"github.com/kura-db/kura/internal/tools"
)

// CloningMarker is on the data volume while a copy is being written into it: a directory
// that carries it holds a partial copy, which the next `kura init` throws away.
const CloningMarker = ".kura-cloning"

// CloningState is the cloning marker's content.
type CloningState struct {
	Donor   string    `json:"donor"`
	Started time.Time `json:"started"`
}

// Source is where a physical copy comes from: a donor's agent, a stored backup.
type Source interface {
	// Name names the source in logs, errors and markers.
	Name() string
	// Open starts the copy. The reader verifies the trailer; closing it releases the source.
	Open(ctx context.Context) (*Reader, io.Closer, error)
}

// Options tune Into.
type Options struct {
	Engine kurav1alpha1.Engine
	// DefaultsFile is the server's option file; the private server started to set the GTID
	// state reads it, so the copy is opened with the settings it will run with.
	DefaultsFile string
	// OperatorPassword is the password of engine.OperatorUser in the copy (the copy holds
	// the source's accounts, which are the cluster's).
	OperatorPassword string
	// Tools runs mbstream and mariadb-backup --prepare; UseMemory is the prepare step's
	// --use-memory.
	Tools     tools.Runner
	UseMemory string
	// Server is the private server (program, OS user).
	Server engine.PrivateServerOptions
	// DeferGTIDState leaves setting the GTID state (Result.State) to the caller, which starts
	// the copy itself anyway (a restore, on the server it replays on): one server start less.
	DeferGTIDState bool
	// StallTimeout aborts a copy whose stream delivers nothing for this long (default 10m).
	StallTimeout time.Duration
	// Log receives progress lines (default stderr).
	Log io.Writer
}

func (o Options) log() io.Writer {
	if o.Log == nil {
		return os.Stderr
	}
	return o.Log
}

// Result describes a finished copy.
type Result struct {
	Donor string
	// State is the GTID state the copy was given: the source's at the copy point.
	State    gtid.Set
	Bytes    int64
	Duration time.Duration
}

// Into copies src into datadir, which must hold nothing but markers and the aside directory.
// On success the directory is prepared, its GTID state is the source's at the copy point and
// it carries the initialised marker; on any failure it carries the cloning marker instead,
// so the next attempt starts over.
func Into(ctx context.Context, src Source, datadir string, opts Options) (Result, error) {
	start := time.Now()
	res := Result{Donor: src.Name()}
	if err := os.MkdirAll(datadir, 0o750); err != nil {
		return res, fmt.Errorf("failed to create %s: %w", datadir, err)
	}
	if err := writeJSON(datadir, CloningMarker, CloningState{Donor: src.Name(), Started: start.UTC()}); err != nil {
		return res, err
	}
	kind := opts.Engine
	if kind == "" {
		kind = kurav1alpha1.EngineMariaDB
	}
	if kind == kurav1alpha1.EngineMySQL {
		return res, errors.New("failed to copy: MySQL clones with the CLONE plugin")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stall := opts.StallTimeout
	if stall <= 0 {
		stall = 10 * time.Minute
	}
	// Opening includes waiting for a busy donor's slot: bounded like a stalled stream.
	waiting := time.AfterFunc(stall, cancel)
	stream, closer, err := src.Open(ctx)
	if !waiting.Stop() && err != nil {
		err = fmt.Errorf("nothing received for %s: %w", stall, err)
	}
	if err != nil {
		return res, fmt.Errorf("failed to copy from %s: %w", src.Name(), err)
	}
	defer func() { _ = closer.Close() }()
	if stream.Header.Engine != string(kind) {
		return res, fmt.Errorf("failed to copy from %s: it runs %s, this instance %s", src.Name(), stream.Header.Engine, kind)
	}
	fmt.Fprintf(opts.log(), "kura: copying from %s (server_id %d, %s)\n", src.Name(), stream.Header.ServerID, stream.Header.Version)
	watched := &stallWatch{r: stream, timeout: opts.StallTimeout, cancel: cancel}
	stop := watched.start()
	run, err := opts.Tools.Run(ctx, tools.Invocation{Engine: kind, Op: tools.Extract, Dir: datadir}, tools.Options{Stdin: watched})
	stop()
	if stream.Trailer == nil {
		// The trailer is the proof of completeness: without it nothing extracted is used.
		// mbstream fails (or may even exit cleanly) on a cut stream; the stream's own error
		// says why it ended.
		cause := stream.Err()
		switch {
		case cause == nil && err != nil:
			return res, fmt.Errorf("failed to copy from %s after %d bytes: %w", src.Name(), stream.Bytes(), err)
		case cause == nil:
			// mbstream ends successfully on some refusals (a file name it does not accept):
			// its own words say why.
			cause = fmt.Errorf("mbstream stopped reading after %d bytes%s: %w", stream.Bytes(), said(run.Stderr), ErrTruncated)
		}
		if watched.stalled() {
			cause = fmt.Errorf("nothing received for %s: %w", watched.timeout, cause)
		}
		return res, fmt.Errorf("failed to copy from %s: %w", src.Name(), cause)
	}
	if err != nil {
		return res, fmt.Errorf("failed to copy from %s: %w", src.Name(), err)
	}
	res.Bytes = stream.Bytes()
	fmt.Fprintf(opts.log(), "kura: received %d bytes in %s; preparing\n", res.Bytes, time.Since(start).Round(time.Millisecond))
	if _, err := opts.Tools.Run(ctx, tools.Invocation{Engine: kind, Op: tools.Prepare, Dir: datadir, UseMemory: opts.UseMemory}, tools.Options{}); err != nil {
		return res, fmt.Errorf("failed to prepare the copy in %s: %w", datadir, err)
	}
	state, err := CopyPointState(datadir, stream.Header, *stream.Trailer)
	if err != nil {
		return res, err
	}
	res.State = state
	if !opts.DeferGTIDState {
		if err := setGTIDState(ctx, datadir, state, kind, opts); err != nil {
			return res, err
		}
	}
	if err := writeJSON(datadir, engine.InitMarker, map[string]any{"clonedFrom": src.Name(), "state": state.String()}); err != nil {
		return res, err
	}
	if err := os.Remove(filepath.Join(datadir, CloningMarker)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return res, fmt.Errorf("failed to remove %s: %w", CloningMarker, err)
	}
	if err := syncDir(datadir); err != nil {
		return res, err
	}
	res.Duration = time.Since(start)
	fmt.Fprintf(opts.log(), "kura: copied from %s in %s; GTID state %q\n", src.Name(), res.Duration.Round(time.Millisecond), state)
	return res, nil
}

// CopyPointState is the source's full GTID state at the copy point (engine.StateAtCopyPoint)
// of an extracted copy in datadir.
func CopyPointState(datadir string, h Header, t Trailer) (gtid.Set, error) {
	before, err := gtid.Parse(gtid.MariaDB, h.ExecutedBefore)
	if err != nil {
		return gtid.Set{}, fmt.Errorf("failed to read the source's executed set: %w", err)
	}
	after, err := gtid.Parse(gtid.MariaDB, t.ExecutedAfter)
	if err != nil {
		return gtid.Set{}, fmt.Errorf("failed to read the source's executed set: %w", err)
	}
	pos, ok, err := engine.ReadBackupPosition(datadir)
	if err != nil {
		return gtid.Set{}, err
	}
	if !ok && !after.IsEmpty() {
		return gtid.Set{}, errors.New("failed to copy: the copy records no binary log position although the source has GTIDs")
	}
	if t.Position != "" {
		if reported, err := gtid.Parse(gtid.MariaDB, t.Position); err == nil && !reported.Equal(pos) {
			return gtid.Set{}, fmt.Errorf("failed to copy: the copy records position %q, the source reported %q", pos, reported)
		}
	}
	return engine.StateAtCopyPoint(before, after, pos)
}

// setGTIDState starts the copy on a private socket with networking off, records the GTID
// state (RESET MASTER, gtid_binlog_state, gtid_slave_pos), checks it and stops the server.
// Nobody but this process can see the copy before its executed set is right.
func setGTIDState(ctx context.Context, datadir string, state gtid.Set, kind kurav1alpha1.Engine, opts Options) error {
	dir, err := os.MkdirTemp("", "kura-seed-")
	if err != nil {
		return fmt.Errorf("failed to create a private directory: %w", err)
	}
	defer func() { _ = os.RemoveAll(dir) }()
	so := opts.Server
	so.Engine, so.DefaultsFile, so.DataDir, so.Dir = kind, opts.DefaultsFile, datadir, dir
	so.User, so.Password = engine.OperatorUser, opts.OperatorPassword
	srv, err := engine.StartPrivateServer(ctx, so)
	if err != nil {
		return err
	}
	stopped := false
	defer func() {
		if !stopped {
			sctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			_ = srv.Shutdown(sctx)
		}
	}()
	inst, err := srv.Open()
	if err != nil {
		return err
	}
	defer func() { _ = inst.Close() }()
	if err := inst.ResetGTIDState(ctx, state); err != nil {
		return err
	}
	got, err := inst.ExecutedGTID(ctx)
	if err != nil {
		return err
	}
	if !got.Equal(state) {
		return fmt.Errorf("failed to set the GTID state of the copy: executed set %q, want %q", got, state)
	}
	_ = inst.Close()
	stopped = true
	sctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	return srv.Shutdown(sctx)
}

func writeJSON(dir, name string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("failed to encode %s: %w", name, err)
	}
	return engine.WriteFileDurably(filepath.Join(dir, name), append(b, '\n'), 0o640)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("failed to sync %s: %w", dir, err)
	}
	defer func() { _ = d.Close() }()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("failed to sync %s: %w", dir, err)
	}
	return nil
}

// stallWatch cancels the copy when the stream delivers nothing for its timeout.
type stallWatch struct {
	r       io.Reader
	timeout time.Duration
	cancel  context.CancelFunc
	last    chan struct{}
	fired   chan struct{}
}

func (s *stallWatch) start() func() {
	if s.timeout <= 0 {
		s.timeout = 10 * time.Minute
	}
	s.last, s.fired = make(chan struct{}, 1), make(chan struct{})
	done := make(chan struct{})
	go func() {
		t := time.NewTimer(s.timeout)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-s.last:
				t.Reset(s.timeout)
			case <-t.C:
				close(s.fired)
				s.cancel()
				return
			}
		}
	}()
	return func() { close(done) }
}

func (s *stallWatch) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if n > 0 {
		select {
		case s.last <- struct{}{}:
		default:
		}
	}
	return n, err
}

func (s *stallWatch) stalled() bool {
	select {
	case <-s.fired:
		return true
	default:
		return false
	}
}

// said quotes the last line of a tool's output, if any, for an error message.
func said(stderr string) string {
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	last := strings.TrimSpace(lines[len(lines)-1])
	if last == "" {
		return ""
	}
	if len(last) > 300 {
		last = last[len(last)-300:]
	}
	return fmt.Sprintf(" (it said %q)", last)
}
