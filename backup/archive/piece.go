package archive

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/kura-db/kura/backup"
	"github.com/kura-db/kura/backup/storage"
	"github.com/kura-db/kura/internal/gtid"
)

// Layout of the archive, next to the backups of the same lineage (docs/backup.md, "Archive"):
//
//	<root>/binlog/<seq>.json                    the piece's metadata, created last and only once
//	<root>/binlog/<seq>-<writer>.binlog.zst     the piece: a binary log file of whole transactions
//	<root>/binlog/lease.json                    the archiver that may write
//
// <seq> is the piece's number, ten digits, so listing returns pieces in archive order; the
// conditional create of <seq>.json is what makes an archiver the writer of that number.

// PieceFormat is the metadata format version; a reader refuses newer ones.
const PieceFormat = 1

// Prefix is where a lineage's archive lives.
func Prefix(l backup.Layout) string { return l.Root() + "binlog/" }

// MetaKey is the metadata object of piece seq.
func MetaKey(l backup.Layout, seq uint64) string { return Prefix(l) + fmt.Sprintf("%010d.json", seq) }

// DataKey is the data object of piece seq written by writer.
func DataKey(l backup.Layout, seq uint64, writer string) string {
	return Prefix(l) + fmt.Sprintf("%010d-%s.binlog.zst", seq, writer)
}

// LeaseKey is the archive's lease.
func LeaseKey(l backup.Layout) string { return Prefix(l) + "lease.json" }

// Source is the server a piece was streamed from.
type Source struct {
	Address  string `json:"address"`
	ServerID uint32 `json:"serverID"`
	File     string `json:"file"`
	// Start and End are the positions in File of the piece's first and past its last event.
	Start uint32 `json:"start"`
	End   uint32 `json:"end"`
}

// Piece is a piece's metadata (<seq>.json).
type Piece struct {
	Format int    `json:"format"`
	Seq    uint64 `json:"seq"`
	// Object is the data object's name under binlog/.
	Object string `json:"object"`
	Flavor string `json:"flavor"`
	Source Source `json:"source"`
	// Before and After are the archived GTID positions (MariaDB: last GTID per domain)
	// before the piece's first and after its last transaction.
	Before string `json:"before"`
	After  string `json:"after"`
	// FirstGTID and LastGTID are the piece's first and last transactions; First holds the
	// first transaction of each domain in the piece.
	FirstGTID    string    `json:"firstGTID"`
	LastGTID     string    `json:"lastGTID"`
	First        string    `json:"first"`
	Transactions int       `json:"transactions"`
	FirstEvent   time.Time `json:"firstEventTime"`
	LastEvent    time.Time `json:"lastEventTime"`
	// Size and SHA256 describe the stored (compressed) object; RawSize the binary log bytes.
	Size    int64     `json:"size"`
	RawSize int64     `json:"rawSize"`
	SHA256  string    `json:"sha256"`
	Writer  string    `json:"writer"`
	Created time.Time `json:"created"`
}

// Gap is a break in the archive's continuity: transactions that are not archived.
type Gap struct {
	// AfterSeq is the last piece before the gap (0: the gap is before the first piece), Seq
	// the piece after it.
	AfterSeq, Seq uint64
	// Archived is the position archived before the gap; Next what the next piece starts with.
	Archived, Next string
	Reason         string
	// Time is the commit time of the first transaction after the gap: a backup consistent
	// with a later moment can be rolled forward again.
	Time time.Time `json:"time,omitzero"`
}

func (g Gap) String() string {
	return fmt.Sprintf("gap before piece %d: archived up to %q, the piece starts at %q (%s)", g.Seq, g.Archived, g.Next, g.Reason)
}

// Position is a MariaDB GTID position: the last GTID of each domain.
type Position map[uint32]gtid.MariaDBGTID

// ParsePosition reads a GTID set as a position (the highest sequence number of each domain).
func ParsePosition(s string) (Position, error) {
	set, err := gtid.Parse(gtid.MariaDB, s)
	if err != nil {
		return nil, err
	}
	p := Position{}
	for _, g := range set.Position().MariaDBGTIDs() {
		p[g.Domain] = g
	}
	return p, nil
}

func (p Position) String() string {
	domains := make([]uint32, 0, len(p))
	for d := range p {
		domains = append(domains, d)
	}
	sort.Slice(domains, func(i, j int) bool { return domains[i] < domains[j] })
	parts := make([]string, 0, len(domains))
	for _, d := range domains {
		parts = append(parts, p[d].String())
	}
	return strings.Join(parts, ",")
}

// Seq is the domain's last sequence number (0: nothing in the domain).
func (p Position) Seq(domain uint32) uint64 { return p[domain].Seq }

// Covers reports whether p holds every transaction of q, domain by domain.
func (p Position) Covers(q Position) bool {
	for d, g := range q {
		if p.Seq(d) < g.Seq {
			return false
		}
	}
	return true
}

func (p Position) clone() Position {
	out := make(Position, len(p))
	for k, v := range p {
		out[k] = v
	}
	return out
}

// follows reports whether g is the next transaction of its domain after p: with
// gtid_strict_mode a domain's sequence numbers grow by one per transaction, whichever
// server wrote it; a domain p has never seen starts at 1.
func (p Position) follows(g gtid.MariaDBGTID) bool {
	last, ok := p[g.Domain]
	if !ok {
		return g.Seq == 1
	}
	return g.Seq == last.Seq+1
}

// CheckChain returns the gaps of a list of pieces in sequence order (pure). The first
// piece's Before is where the archive starts. A missing sequence number is a gap (a deleted
// piece), and so is a piece that was streamed from another position than the one the
// previous piece ended at, or whose first transaction of a domain does not follow it.
func CheckChain(pieces []Piece) ([]Gap, error) {
	var gaps []Gap
	for i := 1; i < len(pieces); i++ {
		prev, p := pieces[i-1], pieces[i]
		gap := Gap{AfterSeq: prev.Seq, Seq: p.Seq, Archived: prev.After, Next: p.FirstGTID, Time: p.FirstEvent}
		if p.Seq != prev.Seq+1 {
			gap.Reason = fmt.Sprintf("pieces %d to %d are missing", prev.Seq+1, p.Seq-1)
			gaps = append(gaps, gap)
			continue
		}
		r, err := discontinuity(prev.After, p)
		if err != nil {
			return nil, fmt.Errorf("piece %d: %w", p.Seq, err)
		}
		if r != "" {
			gap.Reason = r
			gaps = append(gaps, gap)
		}
	}
	return gaps, nil
}

// discontinuity explains why piece p does not follow the archived position after ("" when
// it does).
func discontinuity(after string, p Piece) (string, error) {
	prev, err := ParsePosition(after)
	if err != nil {
		return "", err
	}
	before, err := ParsePosition(p.Before)
	if err != nil {
		return "", err
	}
	first, err := ParsePosition(p.First)
	if err != nil {
		return "", err
	}
	for d, g := range first {
		if !prev.follows(g) {
			want := "1"
			if last, ok := prev[d]; ok {
				want = strconv.FormatUint(last.Seq+1, 10)
			}
			return fmt.Sprintf("domain %d continues at %d, the archive expects %s", d, g.Seq, want), nil
		}
	}
	if before.String() != prev.String() {
		return fmt.Sprintf("the piece was streamed from %q, the archive ends at %q", p.Before, after), nil
	}
	return "", nil
}

// ListPieces reads every piece's metadata in sequence order.
func ListPieces(ctx context.Context, st storage.Storage, l backup.Layout) ([]Piece, error) {
	objs, err := st.List(ctx, Prefix(l))
	if err != nil {
		return nil, err
	}
	var out []Piece
	for _, o := range objs {
		if !isMetaKey(l, o.Key) {
			continue
		}
		p, err := readPiece(ctx, st, o.Key)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

func isMetaKey(l backup.Layout, key string) bool {
	name, ok := strings.CutPrefix(key, Prefix(l))
	if !ok || !strings.HasSuffix(name, ".json") {
		return false
	}
	_, err := strconv.ParseUint(strings.TrimSuffix(name, ".json"), 10, 64)
	return err == nil
}

func readPiece(ctx context.Context, st storage.Storage, key string) (Piece, error) {
	rc, err := st.Get(ctx, key)
	if err != nil {
		return Piece{}, err
	}
	defer func() { _ = rc.Close() }()
	b, err := io.ReadAll(io.LimitReader(rc, 1<<20))
	if err != nil {
		return Piece{}, fmt.Errorf("failed to read %s: %w", key, err)
	}
	var p Piece
	if err := json.Unmarshal(b, &p); err != nil {
		return Piece{}, fmt.Errorf("failed to parse %s: %w", key, err)
	}
	if p.Format > PieceFormat {
		return Piece{}, fmt.Errorf("%s has format %d; this version reads up to %d: upgrade kura", key, p.Format, PieceFormat)
	}
	return p, nil
}

// lastPiece returns the newest piece's metadata (ok false when the archive is empty).
func lastPiece(ctx context.Context, st storage.Storage, l backup.Layout) (Piece, bool, error) {
	objs, err := st.List(ctx, Prefix(l))
	if err != nil {
		return Piece{}, false, err
	}
	for i := len(objs) - 1; i >= 0; i-- {
		if isMetaKey(l, objs[i].Key) {
			p, err := readPiece(ctx, st, objs[i].Key)
			return p, err == nil, err
		}
	}
	return Piece{}, false, nil
}

// Contents is what a piece's data holds, read back from the binary log bytes.
type Contents struct {
	GTIDs []gtid.MariaDBGTID
	// Events counts every event after the format description.
	Events int
}

// ParseData reads a piece's uncompressed data (a binary log file: magic, format description,
// whole transactions) and returns its transactions' GTIDs in order. Checksums are verified.
func ParseData(data []byte) (Contents, error) {
	d, err := SplitData(data)
	if err != nil {
		return Contents{}, err
	}
	out := Contents{Events: d.Events}
	for _, t := range d.Transactions {
		out.GTIDs = append(out.GTIDs, t.GTID)
	}
	return out, nil
}

// ReadData fetches a piece's data, checks its size and SHA-256 against the metadata,
// decompresses it and checks that its transactions are the ones the metadata names.
func ReadData(ctx context.Context, st storage.Storage, l backup.Layout, p Piece) ([]byte, Contents, error) {
	rc, err := st.Get(ctx, Prefix(l)+p.Object)
	if err != nil {
		return nil, Contents{}, fmt.Errorf("piece %d: %w", p.Seq, err)
	}
	defer func() { _ = rc.Close() }()
	stored, err := io.ReadAll(rc)
	if err != nil {
		return nil, Contents{}, fmt.Errorf("piece %d: %w", p.Seq, err)
	}
	sum := sha256.Sum256(stored)
	if int64(len(stored)) != p.Size || hex.EncodeToString(sum[:]) != p.SHA256 {
		return nil, Contents{}, fmt.Errorf("piece %d: stored object %s does not match its metadata (size %d, want %d; checksum differs: %v)",
			p.Seq, p.Object, len(stored), p.Size, hex.EncodeToString(sum[:]) != p.SHA256)
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1))
	if err != nil {
		return nil, Contents{}, err
	}
	defer dec.Close()
	data, err := dec.DecodeAll(stored, nil)
	if err != nil {
		return nil, Contents{}, fmt.Errorf("piece %d: %w", p.Seq, err)
	}
	c, err := ParseData(data)
	if err != nil {
		return nil, Contents{}, fmt.Errorf("piece %d: %w", p.Seq, err)
	}
	if len(c.GTIDs) != p.Transactions || len(c.GTIDs) == 0 || c.GTIDs[0].String() != p.FirstGTID || c.GTIDs[len(c.GTIDs)-1].String() != p.LastGTID {
		return nil, Contents{}, fmt.Errorf("piece %d: holds %d transactions, the metadata says %d from %s to %s", p.Seq, len(c.GTIDs), p.Transactions, p.FirstGTID, p.LastGTID)
	}
	return data, c, nil
}
