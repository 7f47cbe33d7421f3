// Package archive is the continuous binary log archive (docs/backup.md, "Archive"; dba rule
// 17): it streams the primary's binary log as a replica would (MariaDB GTID auto-positioning,
// a server id of its own, heartbeats, never a semi-sync acknowledgement), cuts immutable
// pieces of whole transactions every few seconds or few tens of MiB, stores each with a small
// metadata object, follows a new primary by GTID, holds a lease so one archiver writes, and
// checks every piece for a GTID gap. Nothing here talks to the Kubernetes API.
package archive

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/kura-db/kura/backup"
	"github.com/kura-db/kura/backup/storage"
	"github.com/kura-db/kura/internal/contract"
	"github.com/kura-db/kura/internal/engine"
	"github.com/kura-db/kura/internal/gtid"
)

// Defaults of Config.
const (
	DefaultPieceInterval = 2 * time.Second
	DefaultPieceSize     = 32 << 20
	DefaultHeartbeat     = time.Second
	DefaultLeaseTTL      = 15 * time.Second
	DefaultPrimaryCheck  = 2 * time.Second
)

// Config is what an archiver needs.
type Config struct {
	Layout  backup.Layout
	Storage storage.Storage
	// Sources are host:port of every instance of the cluster; the one writable instance is
	// streamed. One address (the primary's Service) works too.
	Sources []string
	// User and Password log in to the servers (REPLICATION SLAVE to stream; BINLOG MONITOR to
	// list binary logs): the agent account.
	User, Password string
	// ServerID is the archiver's replica server id, unique among the cluster's servers.
	ServerID uint32
	// Holder names this archiver in the lease (default: host name and a random suffix).
	Holder string
	// PieceInterval and PieceSize cut a piece: at the first transaction boundary after the
	// piece's first transaction is this old, or the piece this large.
	PieceInterval time.Duration
	PieceSize     int
	Heartbeat     time.Duration
	LeaseTTL      time.Duration
	// PrimaryCheck is how often the streamed server is asked whether it is still the writable
	// one (a switchover leaves the old primary running, read-only).
	PrimaryCheck time.Duration
	// Log receives one line per notable event (default: discarded).
	Log func(format string, args ...any)
	// OnPiece is called after a piece is stored (tests and benchmarks).
	OnPiece func(Piece)
}

func (c *Config) defaults() error {
	if err := c.Layout.Validate(); err != nil {
		return err
	}
	if c.Storage == nil || len(c.Sources) == 0 || c.User == "" {
		return fmt.Errorf("the archiver needs storage, at least one source and a user")
	}
	if c.ServerID == 0 {
		return fmt.Errorf("the archiver needs a replica server id of its own")
	}
	if c.PieceInterval <= 0 {
		c.PieceInterval = DefaultPieceInterval
	}
	if c.PieceSize <= 0 {
		c.PieceSize = DefaultPieceSize
	}
	if c.Heartbeat <= 0 {
		c.Heartbeat = DefaultHeartbeat
	}
	if c.LeaseTTL <= 0 {
		c.LeaseTTL = DefaultLeaseTTL
	}
	if c.PrimaryCheck <= 0 {
		c.PrimaryCheck = DefaultPrimaryCheck
	}
	if c.Log == nil {
		c.Log = func(string, ...any) {}
	}
	if c.Holder == "" {
		host, _ := os.Hostname()
		c.Holder = host + "-" + randomID()
	}
	return nil
}

func randomID() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Status is what the archiver reports (the operator turns it into the cluster's status).
type Status struct {
	Holding bool   `json:"holding"`
	Source  string `json:"source,omitempty"`
	// LastGTID is the archived position; LastEventTime the commit time of its newest
	// transaction; LastPieceTime when the newest piece was stored.
	LastGTID      string    `json:"lastGTID,omitempty"`
	LastSeq       uint64    `json:"lastSeq,omitempty"`
	LastEventTime time.Time `json:"lastEventTime,omitzero"`
	LastPieceTime time.Time `json:"lastPieceTime,omitzero"`
	// CaughtUp is the last time everything the server had sent was stored (lag is now minus
	// this while the archiver streams; it grows while it cannot).
	CaughtUp time.Time `json:"caughtUp,omitzero"`
	Pieces   uint64    `json:"pieces"`
	Bytes    int64     `json:"bytes"`
	Failures uint64    `json:"failures"`
	// LastError is the newest failure (empty after the next stored piece).
	LastError string `json:"lastError,omitempty"`
	Gaps      []Gap  `json:"gaps,omitempty"`
	// ExpireSeconds is the streamed server's binlog_expire_logs_seconds.
	ExpireSeconds int64 `json:"expireSeconds,omitempty"`
}

// Lag is how far the archive is behind at now.
func (s Status) Lag(now time.Time) time.Duration {
	if s.CaughtUp.IsZero() {
		return 0
	}
	return max(0, now.Sub(s.CaughtUp))
}

// ExpiryWarning says when the oldest unarchived binary log could be purged by the server
// before it is archived: a binlog is kept at least binlog_expire_logs_seconds after its last
// write, so the margin is at least that minus the lag. Warns when half the period is gone.
func (s Status) ExpiryWarning(now time.Time) string {
	if s.ExpireSeconds <= 0 {
		return ""
	}
	expire := time.Duration(s.ExpireSeconds) * time.Second
	lag := s.Lag(now)
	if lag < expire/2 {
		return ""
	}
	return fmt.Sprintf("the archive is %s behind and the server may purge binary logs %s after their last write (binlog_expire_logs_seconds): unarchived transactions can be lost in %s",
		lag.Round(time.Second), expire, max(0, expire-lag).Round(time.Second))
}

// Archiver streams one cluster's binary log into storage.
type Archiver struct {
	cfg   Config
	lease *lease

	mu     sync.Mutex
	status Status
}

// New checks the configuration.
func New(cfg Config) (*Archiver, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	a := &Archiver{cfg: cfg, lease: newLease(cfg.Storage, cfg.Layout, cfg.Holder, cfg.LeaseTTL)}
	a.status.CaughtUp = time.Now()
	return a, nil
}

// Status returns a copy of the current status.
func (a *Archiver) Status() Status {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.status
	s.Gaps = append([]Gap(nil), s.Gaps...)
	return s
}

func (a *Archiver) update(f func(*Status)) {
	a.mu.Lock()
	defer a.mu.Unlock()
	f(&a.status)
}

func (a *Archiver) fail(err error) {
	a.cfg.Log("archive: %v", err)
	a.update(func(s *Status) { s.Failures++; s.LastError = err.Error() })
}

// errFenced: another writer committed the sequence number this archiver was about to use.
var errFenced = errors.New("another archiver stored the next piece")

// Run archives until ctx ends: it waits for the lease, then streams, reconnecting (to
// whichever instance is the primary) after every failure, and gives the lease back at the end.
func (a *Archiver) Run(ctx context.Context) error {
	for ctx.Err() == nil {
		if !a.acquire(ctx) {
			return nil
		}
		a.cfg.Log("archive: holding the lease as %s", a.cfg.Holder)
		a.update(func(s *Status) { s.Holding = true })
		err := a.holding(ctx)
		a.update(func(s *Status) { s.Holding = false })
		if ctx.Err() == nil {
			a.fail(err) // the lease was lost or another archiver wrote: wait for the lease again
		}
	}
	// Stopped: give the lease back so a successor need not wait for it to expire.
	rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return a.lease.release(rctx)
}

// acquire waits for the lease; false when ctx ended first.
func (a *Archiver) acquire(ctx context.Context) bool {
	for {
		ok, cur, err := a.lease.tryAcquire(ctx)
		if err != nil {
			a.fail(fmt.Errorf("failed to take the archive lease: %w", err))
		} else if ok {
			return true
		} else {
			a.cfg.Log("archive: waiting for the lease held by %s", cur.Holder)
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(a.cfg.LeaseTTL / 3):
		}
	}
}

// holding streams while the lease is renewed; it returns when the lease is lost or the
// archive is fenced.
func (a *Archiver) holding(ctx context.Context) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() {
		t := time.NewTicker(a.cfg.LeaseTTL / 3)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if err := a.lease.renew(ctx); errors.Is(err, ErrLeaseLost) {
				cancel(err)
				return
			} else if err != nil {
				a.fail(fmt.Errorf("failed to renew the archive lease: %w", err))
			}
		}
	}()
	backoff := 200 * time.Millisecond
	for {
		err := a.session(ctx)
		if cause := context.Cause(ctx); cause != nil {
			return cause
		}
		if errors.Is(err, errFenced) {
			return err
		}
		if err != nil {
			a.fail(err)
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
		if err == nil {
			backoff = 200 * time.Millisecond
		}
	}
}

// session is one connection to the primary: resume from storage, stream, cut, store.
func (a *Archiver) session(ctx context.Context) error {
	last, found, err := lastPiece(ctx, a.cfg.Storage, a.cfg.Layout)
	if err != nil {
		return fmt.Errorf("failed to read the archive: %w", err)
	}
	addr, db, err := a.primary(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = db.Close() }()
	var expire int64
	_ = db.QueryRowContext(ctx, "SELECT @@global.binlog_expire_logs_seconds").Scan(&expire)
	a.update(func(s *Status) { s.Source, s.ExpireSeconds = addr, expire })

	b := &pieceBuilder{cfg: &a.cfg, seq: 1, pos: Position{}}
	connectState := ""
	if found {
		if b.pos, err = ParsePosition(last.After); err != nil {
			return fmt.Errorf("piece %d: %w", last.Seq, err)
		}
		b.seq = last.Seq + 1
		connectState = b.pos.String()
		a.update(func(s *Status) {
			s.LastGTID, s.LastSeq = last.After, last.Seq
			if s.LastEventTime.IsZero() {
				s.LastEventTime, s.LastPieceTime = last.LastEvent, last.Created
			}
		})
	} else {
		// A new archive starts at the oldest binary log the server still has.
		if connectState, err = oldestPosition(ctx, db); err != nil {
			return err
		}
		if b.pos, err = ParsePosition(connectState); err != nil {
			return err
		}
		a.cfg.Log("archive: new archive, starting at %q", connectState)
	}

	c, err := a.dump(ctx, addr, connectState)
	var se *ServerError
	if errors.As(err, &se) && se.Code == errBinlogUnavailable && strings.Contains(se.Message, "purged") {
		// The binary logs after the archived position are gone: archive what the server
		// still has; the next piece records the gap.
		oldest, oerr := oldestPosition(ctx, db)
		if oerr != nil {
			return oerr
		}
		a.cfg.Log("archive: the server purged binary logs after %q (%s); continuing from %q", connectState, se.Message, oldest)
		connectState = oldest
		c, err = a.dump(ctx, addr, oldest)
	}
	if err != nil {
		return err
	}
	defer func() { _ = c.Close() }()
	a.cfg.Log("archive: streaming from %s at %q", addr, connectState)
	return a.stream(ctx, c, db, addr, b)
}

// primary finds the one writable instance among the sources.
func (a *Archiver) primary(ctx context.Context) (string, *sql.DB, error) {
	var writable []string
	var dbs []*sql.DB
	var errs []string
	for _, addr := range a.cfg.Sources {
		db, ro, err := a.probe(ctx, addr)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		if ro {
			_ = db.Close()
			continue
		}
		writable = append(writable, addr)
		dbs = append(dbs, db)
	}
	if len(writable) == 1 {
		return writable[0], dbs[0], nil
	}
	for _, db := range dbs {
		_ = db.Close()
	}
	if len(writable) > 1 {
		return "", nil, fmt.Errorf("several instances are writable (%s): waiting for one primary", strings.Join(writable, ", "))
	}
	return "", nil, fmt.Errorf("no writable instance among %s: %s", strings.Join(a.cfg.Sources, ", "), strings.Join(errs, "; "))
}

func (a *Archiver) probe(ctx context.Context, addr string) (*sql.DB, bool, error) {
	host, portText, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, false, fmt.Errorf("source %q: %w", addr, err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		return nil, false, fmt.Errorf("source %q: bad port", addr)
	}
	ep := engine.Endpoint{Host: host, Port: port, User: a.cfg.User, Password: a.cfg.Password}
	// With the cluster's CA mounted the primary is verified for its DNS name over TLS.
	if ep.TLS, err = engine.LocalTLS(contract.TLSCAFile); err != nil {
		return nil, false, err
	}
	conn, err := engine.Connector(ep, engine.Options{ConnectTimeout: 2 * time.Second, ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second})
	if err != nil {
		return nil, false, err
	}
	db := sql.OpenDB(conn)
	db.SetMaxOpenConns(1)
	ro, err := readOnly(ctx, db)
	if err != nil {
		_ = db.Close()
		return nil, false, fmt.Errorf("%s: %w", addr, err)
	}
	return db, ro, nil
}

func readOnly(ctx context.Context, db *sql.DB) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var ro bool
	err := db.QueryRowContext(ctx, "SELECT @@global.read_only").Scan(&ro)
	return ro, err
}

// oldestPosition is the GTID position at the start of the oldest binary log of the server.
func oldestPosition(ctx context.Context, db *sql.DB) (string, error) {
	rows, err := db.QueryContext(ctx, "SHOW BINARY LOGS")
	if err != nil {
		return "", fmt.Errorf("failed to list binary logs: %w", err)
	}
	defer func() { _ = rows.Close() }()
	cols, _ := rows.Columns()
	var first string
	if rows.Next() {
		vals := make([]any, len(cols))
		var name string
		vals[0] = &name
		for i := 1; i < len(vals); i++ {
			vals[i] = new(sql.RawBytes)
		}
		if err := rows.Scan(vals...); err != nil {
			return "", err
		}
		first = name
	}
	_ = rows.Close()
	if first == "" {
		return "", fmt.Errorf("the server has no binary logs (log_bin is off?)")
	}
	var pos sql.NullString
	if err := db.QueryRowContext(ctx, "SELECT BINLOG_GTID_POS(?, 4)", first).Scan(&pos); err != nil {
		return "", fmt.Errorf("failed to read the GTID position of %s: %w", first, err)
	}
	return pos.String, nil
}

// dump opens the replication connection and starts streaming from state.
func (a *Archiver) dump(ctx context.Context, addr, state string) (*conn, error) {
	c, err := dial(ctx, addr, a.cfg.User, a.cfg.Password, 5*time.Second)
	if err != nil {
		return nil, err
	}
	stmts := []string{
		// Checksums as the server writes them (verified per event).
		"SET @master_binlog_checksum = @@global.binlog_checksum",
		// GTID-aware replica: the server positions by @slave_connect_state.
		"SET @mariadb_slave_capability = 4",
		"SET @slave_connect_state = '" + state + "'",
		"SET @slave_gtid_strict_mode = 1",
		"SET @slave_gtid_ignore_duplicates = 0",
		fmt.Sprintf("SET @master_heartbeat_period = %d", a.cfg.Heartbeat.Nanoseconds()),
	}
	for _, s := range stmts {
		if err := c.exec(s); err != nil {
			_ = c.Close()
			return nil, err
		}
	}
	if err := c.registerReplica(a.cfg.ServerID, "kura-archive"); err != nil {
		_ = c.Close()
		return nil, err
	}
	if err := c.startDump(a.cfg.ServerID); err != nil {
		_ = c.Close()
		return nil, err
	}
	// The first event tells whether the server accepted the position (or an error packet).
	if _, err := c.peek(time.Now().Add(10 * time.Second)); err != nil {
		_ = c.Close()
		return nil, err
	}
	return c, nil
}

type readResult struct {
	ev  event
	err error
}

// readEvents reads the connection's events into a channel until it fails or done closes.
func (a *Archiver) readEvents(c *conn, done <-chan struct{}) <-chan readResult {
	events := make(chan readResult, 256)
	go func() {
		defer close(events)
		for {
			raw, err := c.next(time.Now().Add(3*a.cfg.Heartbeat + 2*time.Second))
			var ev event
			if err == nil {
				ev, err = parseEvent(raw)
			}
			select {
			case events <- readResult{ev, err}:
			case <-done:
				return
			}
			if err != nil {
				return
			}
		}
	}()
	return events
}

// stream handles one connection's events until it fails.
func (a *Archiver) stream(ctx context.Context, c *conn, db *sql.DB, addr string, b *pieceBuilder) error {
	done := make(chan struct{})
	defer close(done)
	events := a.readEvents(c, done)
	defer func() { _ = c.Close() }()

	up := newUploader(ctx, a)
	defer up.close()
	b.src = addr
	b.up = up
	check := time.NewTicker(a.cfg.PrimaryCheck)
	defer check.Stop()
	var timer <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-up.errc:
			return err
		case <-check.C:
			if ro, err := readOnly(ctx, db); err != nil || ro {
				b.cut()
				if err != nil {
					return up.finish(fmt.Errorf("lost %s: %w", addr, err))
				}
				return up.finish(fmt.Errorf("%s is read-only now: looking for the new primary", addr))
			}
		case <-timer:
			timer = nil
			b.cut()
		case r, ok := <-events:
			if !ok {
				return ctx.Err()
			}
			if r.err != nil {
				b.cut()
				return up.finish(fmt.Errorf("stream from %s: %w", addr, r.err))
			}
			if err := b.add(r.ev); err != nil {
				return err
			}
			timer = a.afterEvent(b, up, timer)
		}
	}
}

// afterEvent arms the cut timer when a piece has its first transaction, and records that
// the archive is caught up when nothing is waiting.
func (a *Archiver) afterEvent(b *pieceBuilder, up *uploader, timer <-chan time.Time) <-chan time.Time {
	if b.trxs > 0 {
		if timer == nil {
			timer = time.After(time.Until(b.opened.Add(a.cfg.PieceInterval)))
		}
		return timer
	}
	if !b.inTrx && up.idle() {
		a.update(func(s *Status) { s.CaughtUp = time.Now() })
	}
	return nil
}

// peek reads the first event and keeps it for next.
func (c *conn) peek(deadline time.Time) ([]byte, error) {
	raw, err := c.readEvent(deadline)
	if err != nil {
		return nil, err
	}
	c.pending = append(c.pending, raw)
	return raw, nil
}

func (c *conn) next(deadline time.Time) ([]byte, error) {
	if len(c.pending) > 0 {
		raw := c.pending[0]
		c.pending = c.pending[1:]
		return raw, nil
	}
	return c.readEvent(deadline)
}

// pieceBuilder assembles whole transactions into pieces.
type pieceBuilder struct {
	cfg *Config
	src string
	up  *uploader

	checksum  bool
	fde       []byte
	fdeServer uint32
	file      string

	// the transaction being received
	inTrx      bool
	standalone bool
	trx        []byte
	trxGTID    gtid.MariaDBGTID
	trxStart   uint32
	trxTime    uint32

	// the piece being built
	seq        uint64
	pos        Position // archived position after the piece's transactions
	before     Position
	buf        bytes.Buffer
	trxs       int
	first      Position
	firstGTID  gtid.MariaDBGTID
	lastGTID   gtid.MariaDBGTID
	firstTime  uint32
	lastTime   uint32
	serverID   uint32
	pieceFile  string
	start, end uint32
	opened     time.Time
}

func (b *pieceBuilder) add(e event) error {
	if b.checksum || e.Type == evFormatDesc {
		if e.Type == evFormatDesc {
			b.checksum = fdeChecksum(e)
		}
		if b.checksum {
			if err := e.verifyChecksum(); err != nil {
				return err
			}
		}
	}
	switch e.Type {
	case evHeartbeat:
		return nil
	case evRotate:
		name, _ := rotateTarget(e, b.checksum)
		if name != b.file {
			b.cut()
		}
		b.file = name
		return nil
	case evFormatDesc:
		if b.fde != nil && !bytes.Equal(b.fde[headerLen:], e.Raw[headerLen:]) {
			b.cut()
		}
		b.fde = append([]byte(nil), e.Raw...)
		b.fdeServer = e.ServerID
		return nil
	case evMariaGTIDSet, evBinlogCkpt, evStop:
		return nil
	case evMariaGTID:
		g, err := parseMariaGTID(e, b.checksum)
		if err != nil {
			return err
		}
		if b.inTrx {
			b.cfg.Log("archive: a transaction without its end at %s:%d was dropped", b.file, b.trxStart)
		}
		b.inTrx, b.standalone, b.trxGTID = true, g.Flags&gtidStandalone != 0, g.GTID
		b.trx = append(b.trx[:0], e.Raw...)
		b.trxStart = e.LogPos - uint32(len(e.Raw))
		b.trxTime = e.Time
		return nil
	}
	if !b.inTrx {
		return nil // an event outside any transaction (incidents): not replayable on its own
	}
	b.trx = append(b.trx, e.Raw...)
	end := false
	switch e.Type {
	case evXID, evXAPrepare:
		end = true
	case evQuery:
		q, err := queryText(e, b.checksum)
		if err != nil {
			return err
		}
		end = b.standalone || endsGroup(q)
	}
	if end {
		b.inTrx = false
		b.commit(e)
	}
	return nil
}

// commit adds the completed transaction to the piece, cutting first where needed.
func (b *pieceBuilder) commit(end event) {
	g := b.trxGTID
	if b.trxs > 0 && (!b.pos.follows(g) || b.pieceFile != b.file) {
		b.cut()
	}
	if b.trxs == 0 {
		b.before = b.pos.clone()
		b.first = Position{}
		b.buf.Reset()
		b.buf.Write(binlogMagic)
		b.buf.Write(b.fde)
		b.firstGTID, b.firstTime, b.pieceFile, b.start = g, b.trxTime, b.file, b.trxStart
		b.serverID = b.fdeServer
		b.opened = time.Now()
	}
	if _, ok := b.first[g.Domain]; !ok {
		b.first[g.Domain] = g
	}
	b.buf.Write(b.trx)
	b.trxs++
	b.pos[g.Domain] = g
	b.lastGTID, b.lastTime, b.end = g, end.Time, end.LogPos
	if b.buf.Len() >= b.cfg.PieceSize {
		b.cut()
	}
}

// cut hands the piece's complete transactions to the uploader.
func (b *pieceBuilder) cut() {
	if b.trxs == 0 {
		return
	}
	p := Piece{
		Format: PieceFormat, Seq: b.seq, Flavor: string(gtid.MariaDB),
		Source: Source{Address: b.src, ServerID: b.serverID, File: b.pieceFile, Start: b.start, End: b.end},
		Before: b.before.String(), After: b.pos.String(),
		FirstGTID: b.firstGTID.String(), LastGTID: b.lastGTID.String(), First: b.first.String(),
		Transactions: b.trxs,
		FirstEvent:   time.Unix(int64(b.firstTime), 0).UTC(), LastEvent: time.Unix(int64(b.lastTime), 0).UTC(),
		RawSize: int64(b.buf.Len()),
	}
	data := append([]byte(nil), b.buf.Bytes()...)
	b.up.push(p, data)
	b.seq++
	b.trxs = 0
	b.buf.Reset()
}

// uploader stores pieces in order, in the background, so streaming never waits for storage
// unless several pieces are queued.
type uploader struct {
	a    *Archiver
	ctx  context.Context
	q    chan upload
	errc chan error
	wg   sync.WaitGroup
	once sync.Once

	mu      sync.Mutex
	pending int
}

type upload struct {
	p    Piece
	data []byte
}

func newUploader(ctx context.Context, a *Archiver) *uploader {
	u := &uploader{a: a, ctx: ctx, q: make(chan upload, 4), errc: make(chan error, 1)}
	u.wg.Add(1)
	go u.run()
	return u
}

func (u *uploader) push(p Piece, data []byte) {
	u.mu.Lock()
	u.pending++
	u.mu.Unlock()
	select {
	case u.q <- upload{p, data}:
	case <-u.ctx.Done():
	}
}

func (u *uploader) idle() bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.pending == 0
}

// finish waits until every cut piece is stored and returns err (or the upload's error).
func (u *uploader) finish(err error) error {
	u.close()
	select {
	case uerr := <-u.errc:
		return uerr
	default:
		return err
	}
}

func (u *uploader) close() {
	u.once.Do(func() { close(u.q) })
	u.wg.Wait()
}

func (u *uploader) run() {
	defer u.wg.Done()
	q := u.q
	for up := range q {
		if err := u.store(up); err != nil {
			select {
			case u.errc <- err:
			default:
			}
			for range q {
			}
			return
		}
		u.mu.Lock()
		u.pending--
		idle := u.pending == 0
		u.mu.Unlock()
		if idle {
			u.a.update(func(s *Status) { s.CaughtUp = time.Now() })
		}
	}
}

// store writes the data object, then creates the metadata only if no other writer has that
// sequence number; storage failures are retried until the context ends.
func (u *uploader) store(up upload) error {
	cfg := &u.a.cfg
	writer := randomID()
	key := DataKey(cfg.Layout, up.p.Seq, writer)
	up.p.Object = strings.TrimPrefix(key, Prefix(cfg.Layout))
	up.p.Writer = cfg.Holder
	var z bytes.Buffer
	enc, _ := zstd.NewWriter(&z, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
	_, _ = enc.Write(up.data)
	_ = enc.Close()
	sum := sha256.Sum256(z.Bytes())
	up.p.Size, up.p.SHA256 = int64(z.Len()), hex.EncodeToString(sum[:])
	backoff := 100 * time.Millisecond
	for {
		err := u.storeOnce(key, z.Bytes(), &up.p)
		if err == nil {
			break
		}
		if errors.Is(err, errFenced) {
			_ = cfg.Storage.Delete(context.Background(), key)
			return err
		}
		u.a.fail(fmt.Errorf("failed to store piece %d: %w", up.p.Seq, err))
		select {
		case <-u.ctx.Done():
			return u.ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
	u.a.update(func(s *Status) {
		s.LastGTID, s.LastSeq, s.LastEventTime, s.LastPieceTime = up.p.After, up.p.Seq, up.p.LastEvent, up.p.Created
		s.Pieces++
		s.Bytes += up.p.Size
		s.LastError = ""
	})
	if r, err := discontinuity(up.p.Before, up.p); err == nil && r != "" {
		g := Gap{AfterSeq: up.p.Seq - 1, Seq: up.p.Seq, Archived: up.p.Before, Next: up.p.FirstGTID, Reason: r, Time: up.p.FirstEvent}
		cfg.Log("archive: %s", g)
		u.a.update(func(s *Status) { s.Gaps = append(s.Gaps, g) })
	}
	if cfg.OnPiece != nil {
		cfg.OnPiece(up.p)
	}
	return nil
}

func (u *uploader) storeOnce(key string, data []byte, p *Piece) error {
	cfg := &u.a.cfg
	// Only the first attempt may find the number taken by someone else's metadata.
	ctx, cancel := context.WithTimeout(u.ctx, 30*time.Second)
	defer cancel()
	if _, err := cfg.Storage.Put(ctx, key, bytes.NewReader(data), int64(len(data))); err != nil {
		return err
	}
	p.Created = time.Now().UTC()
	meta, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return err
	}
	err = cfg.Storage.Create(ctx, MetaKey(cfg.Layout, p.Seq), meta)
	if errors.Is(err, storage.ErrExists) {
		// Ours from an attempt whose answer was lost, or another writer's.
		if cur, rerr := readPiece(ctx, cfg.Storage, MetaKey(cfg.Layout, p.Seq)); rerr == nil && cur.Object == p.Object {
			return nil
		}
		return fmt.Errorf("%w (piece %d)", errFenced, p.Seq)
	}
	return err
}

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }
