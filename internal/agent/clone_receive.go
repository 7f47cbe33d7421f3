package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/internal/engine"
	"github.com/kura-db/kura/internal/gtid"
)

// CloningMarker is on the data volume while a clone is being written into it: a directory
// that carries it holds a partial copy, which the next `kura init` throws away.
const CloningMarker = ".kura-cloning"

// cloningState is the cloning marker's content.
type cloningState struct {
	Donor   string    `json:"donor"`
	Started time.Time `json:"started"`
}

// CloneOptions tune CloneInto.
type CloneOptions struct {
	Engine kurav1alpha1.Engine
	// DefaultsFile is the server's option file; the private server started to set the GTID
	// state reads it, so the copy is opened with the settings it will run with.
	DefaultsFile string
	// OperatorPassword is the operator account's password (the copy holds the donor's
	// accounts, which are the cluster's).
	OperatorPassword string
	// Restore tunes extraction and prepare; Server the private server (program, OS user).
	Restore engine.RestoreOptions
	Server  engine.PrivateServerOptions
	// StallTimeout aborts a clone whose stream delivers nothing for this long (default 10m).
	StallTimeout time.Duration
	// Log receives progress lines (default stderr).
	Log io.Writer
}

func (o CloneOptions) log() io.Writer {
	if o.Log == nil {
		return os.Stderr
	}
	return o.Log
}

// CloneResult describes a finished clone.
type CloneResult struct {
	Donor string
	// State is the GTID state the copy was given: the donor's at the copy point.
	State    gtid.Set
	Bytes    int64
	Duration time.Duration
}

// CloneInto copies the donor's data into datadir, which must hold nothing but markers and
// the aside directory. On success the directory is prepared, its GTID state is the donor's
// at the copy point and it carries the initialised marker; on any failure it carries the
// cloning marker instead, so the next attempt starts over.
func CloneInto(ctx context.Context, donor *Client, donorName, datadir string, opts CloneOptions) (CloneResult, error) {
	start := time.Now()
	res := CloneResult{Donor: donorName}
	if err := os.MkdirAll(datadir, 0o750); err != nil {
		return res, fmt.Errorf("failed to create %s: %w", datadir, err)
	}
	if err := writeMarker(datadir, CloningMarker, cloningState{Donor: donorName, Started: start.UTC()}); err != nil {
		return res, err
	}
	kind := opts.Engine
	if kind == "" {
		kind = kurav1alpha1.EngineMariaDB
	}
	if kind == kurav1alpha1.EngineMySQL {
		return res, errors.New("failed to clone: MySQL clones with the CLONE plugin (cloneMySQL)")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := donor.Clone(ctx)
	if err != nil {
		return res, fmt.Errorf("failed to clone from %s: %w", donorName, err)
	}
	defer func() { _ = stream.Close() }()
	if stream.Header.Engine != string(kind) {
		return res, fmt.Errorf("failed to clone from %s: donor runs %s, this instance %s", donorName, stream.Header.Engine, kind)
	}
	fmt.Fprintf(opts.log(), "kura init: cloning from %s (server_id %d, %s)\n", donorName, stream.Header.ServerID, stream.Header.Version)
	watched := &stallWatch{r: stream, timeout: opts.StallTimeout, cancel: cancel}
	stop := watched.start()
	err = engine.ExtractBackup(ctx, kind, watched, datadir, opts.Restore)
	stop()
	if stream.Trailer == nil {
		// The trailer is the proof of completeness: without it nothing extracted is used.
		// mbstream fails (or may even exit cleanly) on a cut stream; the stream's own error
		// says why it ended.
		cause := stream.err
		switch {
		case cause == nil && err != nil:
			return res, fmt.Errorf("failed to clone from %s: %w", donorName, err)
		case cause == nil:
			cause = ErrTruncated
		}
		if watched.stalled() {
			cause = fmt.Errorf("nothing received for %s: %w", watched.timeout, cause)
		}
		return res, fmt.Errorf("failed to clone from %s: %w", donorName, cause)
	}
	if err != nil {
		return res, fmt.Errorf("failed to clone from %s: %w", donorName, err)
	}
	res.Bytes = stream.n
	fmt.Fprintf(opts.log(), "kura init: received %d bytes in %s; preparing\n", res.Bytes, time.Since(start).Round(time.Millisecond))
	if err := engine.PrepareBackup(ctx, kind, datadir, opts.Restore); err != nil {
		return res, err
	}
	state, err := copyPointState(datadir, stream.Header, *stream.Trailer)
	if err != nil {
		return res, err
	}
	res.State = state
	if err := setGTIDState(ctx, datadir, state, opts); err != nil {
		return res, err
	}
	if err := writeMarker(datadir, engine.InitMarker, map[string]any{"clonedFrom": donorName, "state": state.String()}); err != nil {
		return res, err
	}
	if err := removeMarker(datadir, CloningMarker); err != nil {
		return res, err
	}
	res.Duration = time.Since(start)
	fmt.Fprintf(opts.log(), "kura init: cloned from %s in %s; GTID state %q\n", donorName, res.Duration.Round(time.Millisecond), state)
	return res, nil
}

// copyPointState is the donor's full GTID state at the copy point (engine.StateAtCopyPoint).
func copyPointState(datadir string, h CloneHeader, t CloneTrailer) (gtid.Set, error) {
	before, err := gtid.Parse(gtid.MariaDB, h.ExecutedBefore)
	if err != nil {
		return gtid.Set{}, fmt.Errorf("failed to read the donor's executed set: %w", err)
	}
	after, err := gtid.Parse(gtid.MariaDB, t.ExecutedAfter)
	if err != nil {
		return gtid.Set{}, fmt.Errorf("failed to read the donor's executed set: %w", err)
	}
	pos, ok, err := engine.ReadBackupPosition(datadir)
	if err != nil {
		return gtid.Set{}, err
	}
	if !ok && !after.IsEmpty() {
		return gtid.Set{}, errors.New("failed to clone: the copy records no binary log position although the donor has GTIDs")
	}
	return engine.StateAtCopyPoint(before, after, pos)
}

// setGTIDState starts the copy on a private socket with networking off, records the GTID
// state (RESET MASTER, gtid_binlog_state, gtid_slave_pos), checks it and stops the server.
// Nobody but this process can see the copy before its executed set is right.
func setGTIDState(ctx context.Context, datadir string, state gtid.Set, opts CloneOptions) error {
	dir, err := os.MkdirTemp("", "kura-clone-")
	if err != nil {
		return fmt.Errorf("failed to create a private directory: %w", err)
	}
	defer func() { _ = os.RemoveAll(dir) }()
	so := opts.Server
	so.Engine, so.DefaultsFile, so.DataDir, so.Dir = opts.Engine, opts.DefaultsFile, datadir, dir
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

// stallWatch cancels the clone when the stream delivers nothing for its timeout.
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
