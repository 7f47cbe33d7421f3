package archive

import (
	"context"
	"fmt"
	"io"

	"github.com/kura-db/kura/backup"
	"github.com/kura-db/kura/backup/storage"
)

// Prune deletes the archive's oldest pieces whose transactions are all in keep, the GTID
// position of the oldest backup a restore may still start from (dba rule 18: backups and
// their binary logs are pruned together). Only a prefix of the archive goes, so no gap is
// made inside what is kept, and the newest piece always stays: the archiver resumes from it.
// A piece's metadata is deleted before its data, so an interrupted prune leaves at most a
// data object without metadata, which no reader lists. It returns how many pieces went.
func Prune(ctx context.Context, st storage.Storage, l backup.Layout, keep string, log io.Writer) (int, error) {
	kept, err := ParsePosition(keep)
	if err != nil {
		return 0, fmt.Errorf("failed to prune the archive below %q: %w", keep, err)
	}
	pieces, err := ListPieces(ctx, st, l)
	if err != nil {
		return 0, err
	}
	n := 0
	for i, p := range pieces {
		if i == len(pieces)-1 {
			break
		}
		after, err := ParsePosition(p.After)
		if err != nil {
			return n, fmt.Errorf("piece %d records the position %q: %w", p.Seq, p.After, err)
		}
		if !kept.Covers(after) {
			break
		}
		if err := st.Delete(ctx, MetaKey(l, p.Seq)); err != nil {
			return n, err
		}
		if err := st.Delete(ctx, Prefix(l)+p.Object); err != nil {
			return n, err
		}
		n++
	}
	if n > 0 && log != nil {
		fmt.Fprintf(log, "kura archive: pruned %d pieces below %s (oldest kept backup's point)\n", n, keep)
	}
	return n, nil
}
