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
		return nil, errors.New("a target is a time or a GTID archive.Position, not both")
	}
	bpos, err := archive.ParsePosition(base.Consistent.GTIDSet)
	if err != nil {
		return nil, fmt.Errorf("backup %s records the GTID set %q: %w", base.Name, base.Consistent.GTIDSet, err)
	}
	pieces = append([]archive.Piece(nil), pieces...)
	sort.Slice(pieces, func(i, j int) bool { return pieces[i].Seq < pieces[j].Seq })

	// The first piece holding a transaction after the base's point.
	start := -1
	for i, p := range pieces {
		after, err := archive.ParsePosition(p.After)
		if err != nil {
			return nil, fmt.Errorf("piece %d records the archive.Position %q: %w", p.Seq, p.After, err)
		}
		if !bpos.Covers(after) {
			start = i
			break
		}
	}
	rng := Range{FromGTID: bpos.String(), From: base.Consistent.Time, ToGTID: bpos.String(), To: base.Consistent.Time}
	var tpos archive.Position
	if target.GTID != "" {
		if tpos, err = archive.ParsePosition(target.GTID); err != nil {
			return nil, fmt.Errorf("target GTID %q: %w", target.GTID, err)
		}
	}
	var chain []archive.Piece
	reached := tpos != nil && bpos.Covers(tpos)
	if start >= 0 && !reached {
		before, err := archive.ParsePosition(pieces[start].Before)
		if err != nil {
			return nil, fmt.Errorf("piece %d records the archive.Position %q: %w", pieces[start].Seq, pieces[start].Before, err)
		}
		if !bpos.Covers(before) {
			return nil, fmt.Errorf("the archive has a gap after the backup's point %q: it continues at piece %d from %q, and the transactions between are not archived; restore from a later backup: %w",
				bpos, pieces[start].Seq, pieces[start].Before, ErrUnrecoverable)
		}
		for _, p := range pieces[start:] {
			if target.Time != nil && p.FirstEvent.After(*target.Time) {
				reached = true
				break
			}
			chain = append(chain, p)
			if gaps, err := archive.CheckChain(chain); err != nil {
				return nil, err
			} else if len(gaps) > 0 {
				return nil, fmt.Errorf("the archive has a gap: %s; %s: %w", gaps[0], rng, ErrUnrecoverable)
			}
			rng.ToGTID, rng.To = p.After, p.LastEvent
			if tpos != nil {
				after, _ := archive.ParsePosition(p.After)
				if after.Covers(tpos) {
					reached = true
					break
				}
			}
		}
	}
	switch {
	case target.Time != nil && target.Time.Before(base.Consistent.Time):
		return nil, fmt.Errorf("the target %s is before the backup's point: %s; choose an earlier backup: %w", target, rng, ErrUnrecoverable)
	case tpos != nil && !tpos.Covers(bpos):
		return nil, fmt.Errorf("the target %s is before the backup's point: %s; choose an earlier backup: %w", target, rng, ErrUnrecoverable)
	case target.Time != nil && !reached && target.Time.After(rng.To):
		return nil, fmt.Errorf("the target %s is after the newest archived transaction: %s: %w", target, rng, ErrUnrecoverable)
	case tpos != nil && !reached && !bpos.Covers(tpos):
		return nil, fmt.Errorf("the target %s is after the newest archived transaction: %s: %w", target, rng, ErrUnrecoverable)
	}
	if tpos != nil {
		// A position names where each domain stops: a domain the chain advances that the
		// target does not name would be cut arbitrarily.
		for _, p := range chain {
			after, _ := archive.ParsePosition(p.After)
			for d, g := range after {
				if _, named := tpos[d]; !named && g.Seq > bpos.Seq(d) {
					return nil, fmt.Errorf("the archive holds transactions of domain %d after the backup, which the target %s does not name: give a archive.Position for every domain (for example %s): %w",
						d, target, after, ErrUnrecoverable)
				}
			}
		}
	}
	return chain, nil
}
