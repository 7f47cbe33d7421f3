package restore

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/kura-db/kura/backup"
	"github.com/kura-db/kura/backup/archive"
	"github.com/kura-db/kura/backup/storage"
	"github.com/kura-db/kura/internal/gtid"
)

// cut decides, transaction by transaction, what a replay applies: everything after the
// base's position, in archive order, up to the target. A time target stops at the first
// transaction committed after it (binary log order is commit order, so what is applied is a
// prefix of the history); a GTID target applies each named domain up to its position.
type cut struct {
	pos    archive.Position // what the data holds so far
	target Target
	tpos   archive.Position
	done   bool
	// last is the newest applied transaction's commit time.
	last time.Time
	// applied are the GTIDs chosen, in order.
	applied []gtid.MariaDBGTID
}

func newCut(base string, target Target) (*cut, error) {
	pos, err := archive.ParsePosition(base)
	if err != nil {
		return nil, err
	}
	c := &cut{pos: pos, target: target}
	if target.GTID != "" {
		if c.tpos, err = archive.ParsePosition(target.GTID); err != nil {
			return nil, err
		}
		c.done = pos.Covers(c.tpos)
	}
	return c, nil
}

// take returns the transactions of one piece to apply. A transaction that does not follow
// the data's position in its domain is a gap inside the archive: an error, before anything of
// the piece is applied.
func (c *cut) take(txns []archive.Transaction) ([]archive.Transaction, error) {
	var out []archive.Transaction
	for _, t := range txns {
		if c.done {
			break
		}
		g := t.GTID
		have := c.pos.Seq(g.Domain)
		if g.Seq <= have {
			continue // in the base already
		}
		if g.Seq != have+1 {
			return nil, fmt.Errorf("the archive jumps from %d-%d to %s: transactions are missing: %w", g.Domain, have, g, ErrUnrecoverable)
		}
		switch {
		case c.target.Time != nil && t.Time.After(*c.target.Time):
			c.done = true
			continue
		case c.tpos != nil:
			want, named := c.tpos[g.Domain]
			if !named || g.Seq > want.Seq {
				// Past the target in this domain (or a domain the target does not name,
				// which BuildChain refuses before any data is read).
				continue
			}
		}
		out = append(out, t)
		c.pos[g.Domain] = g
		c.applied = append(c.applied, g)
		if t.Time.After(c.last) {
			c.last = t.Time
		}
		if c.tpos != nil && c.pos.Covers(c.tpos) {
			c.done = true
		}
	}
	return out, nil
}

// planned is the full GTID state the data must have after the replay: the base's state with
// every applied transaction added.
func (c *cut) planned(base string) (gtid.Set, error) {
	set, err := gtid.Parse(gtid.MariaDB, base)
	if err != nil {
		return set, err
	}
	for _, g := range c.applied {
		set = set.Union(gtid.MustParse(gtid.MariaDB, g.String()))
	}
	return set, nil
}

// stagePieces reads every piece of the chain (checking each against its metadata), keeps the
// transactions the cut chooses and writes them as binary log files under dir, one per piece
// that has any. It reads everything before anything is applied: a corrupt piece or a gap
// fails the restore with the data untouched.
func stagePieces(ctx context.Context, st storage.Storage, l backup.Layout, chain []archive.Piece, c *cut, dir string) (files []string, bytes int64, err error) {
	for _, p := range chain {
		if c.done {
			break
		}
		data, _, err := archive.ReadData(ctx, st, l, p)
		if err != nil {
			return nil, bytes, fmt.Errorf("failed to read the archive: %w", err)
		}
		bytes += p.Size
		d, err := archive.SplitData(data)
		if err != nil {
			return nil, bytes, fmt.Errorf("failed to read piece %d: %w", p.Seq, err)
		}
		txns, err := c.take(d.Transactions)
		if err != nil {
			return nil, bytes, fmt.Errorf("piece %d: %w", p.Seq, err)
		}
		if len(txns) == 0 {
			continue
		}
		name := filepath.Join(dir, fmt.Sprintf("%010d.binlog", p.Seq))
		if err := writeFile(name, func(w io.Writer) error { return archive.WriteBinlog(w, d.FormatDescription, txns) }); err != nil {
			return nil, bytes, err
		}
		files = append(files, name)
	}
	return files, bytes, nil
}

func writeFile(name string, write func(io.Writer) error) error {
	f, err := os.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("failed to create %s: %w", name, err)
	}
	if err := write(f); err != nil {
		_ = f.Close()
		return fmt.Errorf("failed to write %s: %w", name, err)
	}
	return f.Close()
}
