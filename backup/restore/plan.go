package restore

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/backup"
	"github.com/kura-db/kura/backup/archive"
)

// ErrUnrecoverable marks a target the backups and the archive cannot reach: before the
// base's point, after the newest archived transaction, or across a gap. Nothing has been
// touched when it is returned; retrying does not help.
var ErrUnrecoverable = errors.New("point not recoverable")

// usable reports why a backup cannot seed a cluster of kind ("" when it can).
func usable(m backup.Manifest, kind kurav1alpha1.Engine) string {
	switch {
	case kind != "" && m.Engine != kind:
		return fmt.Sprintf("it is a backup of %s, the cluster runs %s", m.Engine, kind)
	case len(m.Databases) > 0:
		return fmt.Sprintf("it holds only the databases %s, not a whole server", strings.Join(m.Databases, ", "))
	case m.Consistent.GTIDSet == "" && m.Consistent.Time.IsZero():
		return "its manifest records no consistent point"
	}
	return ""
}

// ChooseBase returns the newest backup a restore to target can start from (pure): for a time,
// the newest whose consistent point is at or before it; for a GTID position, the newest whose
// point the position covers; for the zero target, the newest. Backups that cannot seed a
// cluster of kind (another engine, a partial logical backup) are never chosen.
func ChooseBase(backups []backup.Manifest, kind kurav1alpha1.Engine, target Target) (backup.Manifest, error) {
	var tpos archive.Position
	if target.GTID != "" {
		var err error
		if tpos, err = archive.ParsePosition(target.GTID); err != nil {
			return backup.Manifest{}, fmt.Errorf("target GTID %q: %w", target.GTID, err)
		}
	}
	var best *backup.Manifest
	var refused []string
	for i := range backups {
		m := &backups[i]
		if why := usable(*m, kind); why != "" {
			refused = append(refused, m.Name+": "+why)
			continue
		}
		switch {
		case target.Time != nil && m.Consistent.Time.After(*target.Time):
			continue
		case tpos != nil:
			bpos, err := archive.ParsePosition(m.Consistent.GTIDSet)
			if err != nil || !tpos.Covers(bpos) {
				continue
			}
		}
		if best == nil || m.Consistent.Time.After(best.Consistent.Time) {
			best = m
		}
	}
	if best == nil {
		msg := fmt.Sprintf("no backup can be restored to %s", target)
		if len(refused) > 0 {
			msg += " (refused: " + strings.Join(refused, "; ") + ")"
		}
		if oldest := oldestPoint(backups); !oldest.IsZero() {
			msg += fmt.Sprintf("; the oldest backup's point is %s", oldest.UTC().Format(time.RFC3339))
		}
		return backup.Manifest{}, fmt.Errorf("%s: %w", msg, ErrUnrecoverable)
	}
	return *best, nil
}

func oldestPoint(backups []backup.Manifest) time.Time {
	var t time.Time
	for _, m := range backups {
		if t.IsZero() || m.Consistent.Time.Before(t) {
			t = m.Consistent.Time
		}
	}
	return t
}

// Range is what a base and the archive after it can recover: from the base's point to the
// newest archived transaction that follows it without a gap.
type Range struct {
	FromGTID, ToGTID string
	From, To         time.Time
}

func (r Range) String() string {
	return fmt.Sprintf("recoverable from this backup: %s (GTID %s) to %s (GTID %s)",
		r.From.UTC().Format(time.RFC3339), r.FromGTID, r.To.UTC().Format(time.RFC3339), r.ToGTID)
}

// BuildChain returns the archived pieces a restore from base to target replays, in order
// (pure). It fails, naming the reason and the recoverable range, when the target is before
// the base's point, after the newest archived transaction, or when the pieces between are
// not continuous (a gap, a missing piece, an archive that starts after the base).
func BuildChain(base backup.Manifest, pieces []archive.Piece, target Target) ([]archive.Piece, error) {
	if target.IsZero() {
		return nil, nil
	}
	if base.Engine == kurav1alpha1.EngineMySQL {
		return nil, errors.New("point-in-time recovery reads a MariaDB binary log archive; MySQL is not supported yet")
	}
	if target.Time != nil && target.GTID != "" {
		return nil, errors.New("a target is a time or a GTID position, not both")
	}
	bpos, err := archive.ParsePosition(base.Consistent.GTIDSet)
	if err != nil {
		return nil, fmt.Errorf("backup %s records the GTID set %q: %w", base.Name, base.Consistent.GTIDSet, err)
	}
	w := walk{target: target, bpos: bpos,
		rng: Range{FromGTID: bpos.String(), From: base.Consistent.Time, ToGTID: bpos.String(), To: base.Consistent.Time}}
	if target.GTID != "" {
		if w.tpos, err = archive.ParsePosition(target.GTID); err != nil {
			return nil, fmt.Errorf("target GTID %q: %w", target.GTID, err)
		}
	}
	pieces = append([]archive.Piece(nil), pieces...)
	sort.Slice(pieces, func(i, j int) bool { return pieces[i].Seq < pieces[j].Seq })
	start, err := firstAfter(pieces, bpos)
	if err != nil {
		return nil, err
	}
	w.reached = w.tpos != nil && bpos.Covers(w.tpos)
	if start >= 0 && !w.reached {
		if err := w.follow(pieces[start:]); err != nil {
			return nil, err
		}
	}
	if err := w.inRange(base.Consistent.Time); err != nil {
		return nil, err
	}
	return w.chain, w.namesEveryDomain()
}

// firstAfter returns the index of the first piece holding a transaction after bpos (-1:
// none).
func firstAfter(pieces []archive.Piece, bpos archive.Position) (int, error) {
	for i, p := range pieces {
		after, err := archive.ParsePosition(p.After)
		if err != nil {
			return -1, fmt.Errorf("piece %d records the position %q: %w", p.Seq, p.After, err)
		}
		if !bpos.Covers(after) {
			return i, nil
		}
	}
	return -1, nil
}

// walk builds a chain from the base's position to the target.
type walk struct {
	target     Target
	bpos, tpos archive.Position
	rng        Range
	chain      []archive.Piece
	reached    bool
}

// follow adds pieces from the first one after the base until the target is reached, checking
// continuity as it goes.
func (w *walk) follow(pieces []archive.Piece) error {
	before, err := archive.ParsePosition(pieces[0].Before)
	if err != nil {
		return fmt.Errorf("piece %d records the position %q: %w", pieces[0].Seq, pieces[0].Before, err)
	}
	if !w.bpos.Covers(before) {
		return fmt.Errorf("the archive has a gap after the backup's point %q: it continues at piece %d from %q, and the transactions between are not archived; restore from a later backup: %w",
			w.bpos, pieces[0].Seq, pieces[0].Before, ErrUnrecoverable)
	}
	for _, p := range pieces {
		if w.target.Time != nil && p.FirstEvent.After(*w.target.Time) {
			w.reached = true
			return nil
		}
		w.chain = append(w.chain, p)
		if gaps, err := archive.CheckChain(w.chain); err != nil {
			return err
		} else if len(gaps) > 0 {
			return fmt.Errorf("the archive has a gap: %s; %s: %w", gaps[0], w.rng, ErrUnrecoverable)
		}
		w.rng.ToGTID, w.rng.To = p.After, p.LastEvent
		if w.tpos != nil {
			if after, _ := archive.ParsePosition(p.After); after.Covers(w.tpos) {
				w.reached = true
				return nil
			}
		}
	}
	return nil
}

// inRange refuses a target before the base's point or after what the chain reaches.
func (w *walk) inRange(baseTime time.Time) error {
	t, tpos := w.target, w.tpos
	switch {
	case t.Time != nil && t.Time.Before(baseTime), tpos != nil && !tpos.Covers(w.bpos):
		return fmt.Errorf("the target %s is before the backup's point: %s; choose an earlier backup: %w", t, w.rng, ErrUnrecoverable)
	case t.Time != nil && !w.reached && t.Time.After(w.rng.To), tpos != nil && !w.reached && !w.bpos.Covers(tpos):
		return fmt.Errorf("the target %s is after the newest archived transaction: %s: %w", t, w.rng, ErrUnrecoverable)
	}
	return nil
}

// namesEveryDomain refuses a GTID target that does not name a domain the chain advances: a
// position names where each domain stops, and such a domain would be cut arbitrarily.
func (w *walk) namesEveryDomain() error {
	if w.tpos == nil {
		return nil
	}
	for _, p := range w.chain {
		after, _ := archive.ParsePosition(p.After)
		for d, g := range after {
			if _, named := w.tpos[d]; !named && g.Seq > w.bpos.Seq(d) {
				return fmt.Errorf("the archive holds transactions of domain %d after the backup, which the target %s does not name: give a position for every domain (for example %s): %w",
					d, w.target, after, ErrUnrecoverable)
			}
		}
	}
	return nil
}
