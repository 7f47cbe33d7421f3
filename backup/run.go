package backup

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/backup/storage"
	"github.com/kura-db/kura/internal/contract"
	"github.com/kura-db/kura/internal/engine"
	"github.com/kura-db/kura/internal/gtid"
	"github.com/kura-db/kura/internal/seed"
	"github.com/kura-db/kura/internal/tools"
)

// Request is one backup to take. It holds no secret.
type Request struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	Cluster   string `json:"cluster"`
	// Lineage is the cluster's UID.
	Lineage     string                    `json:"lineage"`
	Engine      kurav1alpha1.Engine       `json:"engine"`
	Method      kurav1alpha1.BackupMethod `json:"method"`
	Compression kurav1alpha1.Compression  `json:"compression"`
	Databases   []string                  `json:"databases,omitempty"`
	// Source is the instance to read: its Pod name, stable host name, SQL and agent ports,
	// and its role when the operator chose it.
	Source SourceInstance `json:"source"`
}

// SourceInstance is where the backup reads.
type SourceInstance struct {
	Pod       string `json:"pod"`
	Host      string `json:"host"`
	SQLPort   int    `json:"sqlPort"`
	AgentPort int    `json:"agentPort"`
	Role      string `json:"role,omitempty"`
	// AgentTLS: the source's agent serves HTTPS; the Job verifies it with the cluster's CA
	// (contract.TLSCAFile) for Host.
	AgentTLS bool `json:"agentTLS,omitempty"`
}

// Copier opens the physical copy stream of the source (through its agent) as the frames
// the source wrote: the backup stores them as they are and verifies them as they pass.
type Copier func(ctx context.Context) (io.ReadCloser, error)

// Deps are what a run uses besides storage.
type Deps struct {
	// AgentPassword logs mariadb-dump in as the agent account, which has the backup
	// privileges.
	AgentPassword string
	// Tools runs mariadb-dump.
	Tools tools.Runner
	// Copy opens the physical copy (agent.Client.Clone of the source).
	Copy Copier
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Log receives progress lines.
	Log io.Writer
}

func (d Deps) now() time.Time {
	if d.Now == nil {
		return time.Now()
	}
	return d.Now()
}

func (d Deps) logf(format string, a ...any) {
	if d.Log != nil {
		fmt.Fprintf(d.Log, "kura backup: "+format+"\n", a...)
	}
}

// Run takes the backup and stores it: the data stream first, then the manifest. A failure
// at any point leaves no manifest, so nothing half-written is ever taken for a backup.
func Run(ctx context.Context, req Request, st storage.Storage, d Deps) (_ Manifest, err error) {
	l := Layout{Namespace: req.Namespace, Cluster: req.Cluster, Lineage: req.Lineage}
	if err := l.Validate(); err != nil {
		return Manifest{}, err
	}
	if !keyPart.MatchString(req.Name) {
		return Manifest{}, fmt.Errorf("invalid backup name %q", req.Name)
	}
	if req.Method == "" {
		req.Method = kurav1alpha1.BackupMethodLogical
	}
	if req.Compression == "" {
		req.Compression = kurav1alpha1.CompressionZstd
	}
	if req.Engine == "" {
		req.Engine = kurav1alpha1.EngineMariaDB
	}
	m := Manifest{Format: ManifestFormat, Name: req.Name, Namespace: req.Namespace, Cluster: req.Cluster, Lineage: req.Lineage,
		Method: req.Method, Compression: req.Compression, Databases: req.Databases, Engine: req.Engine,
		Source: Source{Instance: req.Source.Pod, Role: req.Source.Role}, Started: d.now().UTC()}
	if existing, err := st.List(ctx, l.BackupPrefix(req.Name)); err != nil {
		return m, err
	} else if len(existing) > 0 {
		return m, fmt.Errorf("failed to start backup: %s already holds objects; a backup is never overwritten (delete them or use another name)", st.Location(l.BackupPrefix(req.Name)))
	}
	// From here on everything under the backup's prefix is this run's: a failure removes it.
	defer func() {
		if err != nil && !errors.Is(err, storage.ErrExists) {
			err = removeLeftovers(ctx, st, l.BackupPrefix(req.Name), d, err)
		}
	}()
	obj := Object{Name: DataName(req.Method, req.Compression)}
	key := l.BackupPrefix(req.Name) + obj.Name
	switch req.Method {
	case kurav1alpha1.BackupMethodLogical:
		err = logical(ctx, req, st, key, d, &m, &obj)
	case kurav1alpha1.BackupMethodPhysical:
		err = physical(ctx, req, st, key, d, &m, &obj)
	default:
		err = fmt.Errorf("unknown backup method %q", req.Method)
	}
	if err != nil {
		return m, err
	}
	m.Objects = []Object{obj}
	m.Completed = d.now().UTC()
	b, err := m.Encode()
	if err != nil {
		return m, err
	}
	if err := st.Create(ctx, l.ManifestKey(req.Name), b); err != nil {
		return m, fmt.Errorf("failed to write the manifest: %w", err)
	}
	d.logf("%s complete: %d bytes stored (%d before compression), consistent with %q", st.Location(l.BackupPrefix(req.Name)), obj.Size, obj.RawSize, m.Consistent.GTIDSet)
	return m, nil
}

// cleanupTimeout bounds the removal of a failed run's objects (it runs after the run's own
// context may have ended: a stopped Job gets a grace period before it is killed).
const cleanupTimeout = 30 * time.Second

// removeLeftovers deletes what a failed run stored under prefix, completed objects and
// unfinished uploads, so nothing half-written stays that a restore could take for a backup
// (or that costs storage). The run's error stays the error; a failed removal is added to it.
func removeLeftovers(ctx context.Context, st storage.Storage, prefix string, d Deps, cause error) error {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	n, err := storage.DeletePrefix(cctx, st, prefix)
	if err != nil {
		return fmt.Errorf("%w; removing the failed run's objects at %s failed too: %v (deleting the Backup retries it)", cause, st.Location(prefix), err)
	}
	if n > 0 {
		d.logf("removed %d objects of the failed run at %s", n, st.Location(prefix))
	}
	return cause
}

// pipeline is tool output → compression → SHA-256 and count → storage, streamed through a
// pipe: memory is the compressor's window plus one upload part.
type pipeline struct {
	raw   counter
	comp  io.WriteCloser
	sum   hashCounter
	pw    *io.PipeWriter
	done  chan struct{}
	info  storage.Info
	err   error
	input io.Writer
}

func startPipeline(ctx context.Context, st storage.Storage, key string, c kurav1alpha1.Compression) (*pipeline, error) {
	pr, pw := io.Pipe()
	p := &pipeline{pw: pw, done: make(chan struct{}), sum: hashCounter{h: sha256.New()}}
	comp, err := compressor(c, io.MultiWriter(pw, &p.sum))
	if err != nil {
		return nil, err
	}
	p.comp = comp
	p.input = io.MultiWriter(&p.raw, comp)
	go func() {
		defer close(p.done)
		p.info, p.err = st.Put(ctx, key, pr, -1)
		_ = pr.CloseWithError(p.err)
	}()
	return p, nil
}

func (p *pipeline) Write(b []byte) (int, error) { return p.input.Write(b) }

// finish ends the stream: with cause nil it flushes and waits for the upload; otherwise it
// aborts the upload (nothing is stored).
func (p *pipeline) finish(cause error) (Object, error) {
	if cause == nil {
		cause = p.comp.Close()
	}
	p.pw.CloseWithError(cause)
	<-p.done
	if cause != nil {
		return Object{}, cause
	}
	if p.err != nil {
		return Object{}, p.err
	}
	if p.info.Size != p.sum.n && p.info.Size >= 0 {
		return Object{}, fmt.Errorf("failed to store the backup: %d bytes stored, %d written", p.info.Size, p.sum.n)
	}
	return Object{Size: p.sum.n, SHA256: hex.EncodeToString(p.sum.h.Sum(nil)), RawSize: p.raw.n}, nil
}

type counter struct{ n int64 }

func (c *counter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

type hashCounter struct {
	h interface {
		io.Writer
		Sum([]byte) []byte
	}
	n int64
}

func (c *hashCounter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return c.h.Write(p)
}

// logical runs mariadb-dump (mysqldump) against the source over TCP.
func logical(ctx context.Context, req Request, st storage.Storage, key string, d Deps, m *Manifest, obj *Object) error {
	inv := tools.Invocation{Engine: req.Engine, Op: tools.LogicalDump, Databases: req.Databases,
		Account: tools.Account{User: engine.AgentUser, Password: d.AgentPassword, Host: req.Source.Host, Port: req.Source.SQLPort,
			CAFile: engine.ExistingFile(contract.TLSCAFile)}}
	prog, _, err := tools.Command(inv, tools.Private{})
	if err != nil {
		return err
	}
	m.Tool = prog
	m.ToolVersion = toolVersion(ctx, d.Tools, prog)
	p, err := startPipeline(ctx, st, key, req.Compression)
	if err != nil {
		return err
	}
	scan := &dumpScan{now: d.now}
	rows := newRowCounter()
	_, runErr := d.Tools.Run(ctx, inv, tools.Options{Stdout: io.MultiWriter(scan, rows, p)})
	point, ok := scan.point(req.Engine)
	if runErr == nil && !ok {
		runErr = fmt.Errorf("failed to back up: %s printed no GTID position (is binary logging on at %s?)", prog, req.Source.Pod)
	}
	o, err := p.finish(runErr)
	if err != nil {
		return fmt.Errorf("failed to back up %s: %w", req.Source.Pod, err)
	}
	o.Name = obj.Name
	*obj = o
	m.Consistent = point
	m.EngineVersion = scan.version
	m.Tables = rows.tables()
	return nil
}

// toolVersion is the first line of `<prog> --version`, or "".
func toolVersion(ctx context.Context, r tools.Runner, prog string) string {
	path := r.Programs[prog]
	if path == "" {
		var err error
		if path, err = tools.Find(prog); err != nil {
			return ""
		}
	}
	out, err := exec.CommandContext(ctx, path, "--version").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
}

// dumpScan reads the dump as it streams past: the server version and binary log coordinates
// near its start (and when they appeared: the snapshot was just taken), and the GTID
// position the dump is consistent with, which mariadb-dump prints at its end.
type dumpScan struct {
	mu      sync.Mutex
	now     func() time.Time
	head    []byte
	headEnd bool
	tail    []byte
	file    string
	pos     uint64
	at      time.Time
	version string
}

// scanWindow bounds the head searched for the coordinates; tailWindow is the end of the dump
// kept for the GTID position (it is in the dump's last lines).
const (
	scanWindow = 1 << 20
	tailWindow = 64 << 10
)

var (
	mariadbGTID = regexp.MustCompile(`(?m)^-- SET GLOBAL gtid_slave_pos\s*=\s*'([^']*)'`)
	mysqlGTID   = regexp.MustCompile(`(?mi)GTID_PURGED=(?:/\*!80000 '\+'\*/ )?'([^']*)'`)
	binlogCoord = regexp.MustCompile(`(?m)^-- CHANGE (?:MASTER|REPLICATION SOURCE) TO (?:MASTER|SOURCE)_LOG_FILE='([^']+)', (?:MASTER|SOURCE)_LOG_POS=([0-9]+)`)
	serverLine  = regexp.MustCompile(`(?m)^-- Server version\s+(\S+)`)
)

func (h *dumpScan) Write(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.headEnd {
		h.head = append(h.head, p[:min(len(p), scanWindow-len(h.head))]...)
		if m := serverLine.FindSubmatch(h.head); m != nil && h.version == "" {
			h.version = string(m[1])
		}
		if m := binlogCoord.FindSubmatch(h.head); m != nil {
			h.file = string(m[1])
			h.pos, _ = strconv.ParseUint(string(m[2]), 10, 64)
			h.at = h.now()
			h.headEnd = true
		}
		if len(h.head) >= scanWindow {
			h.headEnd = true
		}
		if h.headEnd {
			h.head = nil
		}
	}
	// The last tailWindow bytes, trimmed only when four times that piled up (each byte is
	// copied about 1.3 times, not once per write).
	if len(p) >= tailWindow {
		h.tail = append(h.tail[:0], p[len(p)-tailWindow:]...)
	} else {
		h.tail = append(h.tail, p...)
		if len(h.tail) > 4*tailWindow {
			h.tail = append(h.tail[:0], h.tail[len(h.tail)-tailWindow:]...)
		}
	}
	return len(p), nil
}

// point returns the consistent point; ok is false when the dump printed no GTID position.
func (h *dumpScan) point(kind kurav1alpha1.Engine) (Point, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	re := mariadbGTID
	if kind == kurav1alpha1.EngineMySQL {
		re = mysqlGTID
	}
	all := re.FindAllSubmatch(h.tail[max(0, len(h.tail)-tailWindow):], -1)
	if len(all) == 0 {
		return Point{}, false
	}
	return Point{GTIDSet: string(all[len(all)-1][1]), Time: h.at.UTC(), BinlogFile: h.file, BinlogPosition: h.pos}, true
}

// physical copies the source through its agent (the same stream a clone uses) and stores
// the copy stream itself, header and trailer included, so a restore reads it exactly as a
// clone does (seed.Into with a stored-object source).
func physical(ctx context.Context, req Request, st storage.Storage, key string, d Deps, m *Manifest, obj *Object) error {
	if req.Engine == kurav1alpha1.EngineMySQL {
		return errors.New("failed to back up: physical backups of MySQL are not supported yet (the CLONE plugin has no stream); use method logical")
	}
	if d.Copy == nil {
		return errors.New("failed to back up: no copy source")
	}
	m.Tool = "mariadb-backup"
	body, err := d.Copy(ctx)
	if err != nil {
		return fmt.Errorf("failed to back up %s: %w", req.Source.Pod, err)
	}
	defer func() { _ = body.Close() }()
	p, err := startPipeline(ctx, st, key, req.Compression)
	if err != nil {
		return err
	}
	// The frames go to storage exactly as the source wrote them, while seed's reader checks
	// them (header, counts, SHA-256 of the copy, trailer) on their way.
	src, err := seed.NewReader(io.TeeReader(body, p))
	if err == nil {
		_, err = io.Copy(io.Discard, src)
	}
	if err == nil && src.Trailer == nil {
		err = fmt.Errorf("the copy ended without its trailer: %w", seed.ErrTruncated)
	}
	o, err := p.finish(err)
	if err != nil {
		return fmt.Errorf("failed to back up %s: %w", req.Source.Pod, err)
	}
	o.Name = obj.Name
	*obj = o
	at := d.now().UTC()
	state, err := physicalState(src.Header, *src.Trailer)
	if err != nil {
		return err
	}
	m.EngineVersion = src.Header.Version
	m.Source.ServerID = src.Header.ServerID
	m.Consistent = Point{GTIDSet: state.String(), Time: at, ExecutedBefore: src.Header.ExecutedBefore, ExecutedAfter: src.Trailer.ExecutedAfter}
	return nil
}

// physicalState is the full GTID state at the copy point, from the stream's header and
// trailer (the position mariadb-backup recorded travels in the trailer).
func physicalState(h seed.Header, t seed.Trailer) (gtid.Set, error) {
	before, err := gtid.Parse(gtid.MariaDB, h.ExecutedBefore)
	if err != nil {
		return gtid.Set{}, fmt.Errorf("failed to read the source's executed set: %w", err)
	}
	after, err := gtid.Parse(gtid.MariaDB, t.ExecutedAfter)
	if err != nil {
		return gtid.Set{}, fmt.Errorf("failed to read the source's executed set: %w", err)
	}
	pos, err := gtid.Parse(gtid.MariaDB, t.Position)
	if err != nil {
		return gtid.Set{}, fmt.Errorf("failed to read the copy's position: %w", err)
	}
	if t.Position == "" && !after.IsEmpty() {
		return gtid.Set{}, errors.New("failed to back up: the source did not report the copy's binary log position (an agent older than this Kura?)")
	}
	return engine.StateAtCopyPoint(before, after, pos)
}
