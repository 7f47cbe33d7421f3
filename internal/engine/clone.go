package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/kura-db/kura/internal/gtid"
)

// Physical copies (docs/cloning.md): the SQL side. MariaDB copies a running instance with
// mariadb-backup, streamed as xbstream (internal/seed runs it through internal/tools); here
// are the copy's recorded position and the GTID arithmetic of the copy point. MySQL 8.4
// (experimental) uses the CLONE plugin instead: the receiver's server pulls the copy over
// the SQL port (CloneFrom), so it has no stream.

// ErrNoStream is returned for an engine that clones with a plugin rather than a stream.
var ErrNoStream = errors.New("this engine clones with the CLONE plugin, not a stream")

// BackupOptions say how a physical copy of the local instance reaches it (the agent's
// clones). The copy itself is taken by internal/seed with internal/tools.
type BackupOptions struct {
	// DefaultsFile is the server's option file (mariadb-backup reads the data directory and
	// InnoDB settings from it).
	DefaultsFile string
	// Endpoint is the account mariadb-backup connects with (the agent account); Socket or
	// Host and Port.
	Endpoint Endpoint
	// TmpDir is where the copy tool's private directories are made; empty means os.TempDir().
	TmpDir string
	// Program is the path of mariadb-backup; empty means FindProgram.
	Program string
	// Stderr receives the program's log; by default only its tail is kept, for errors.
	Stderr io.Writer
}

func programOr(path, name string) (string, error) {
	if path != "" {
		return path, nil
	}
	return FindProgram(name)
}

// BackupInfoFiles are the names mariadb-backup gives the file holding the binary log
// coordinates and gtid_current_pos of the copy (10.11 writes the first, later versions the
// second).
var BackupInfoFiles = []string{"xtrabackup_binlog_info", "mariadb_backup_binlog_info"}

// ReadBackupPosition returns the GTID position (one GTID per domain, gtid_current_pos) at
// which a prepared or extracted copy in dir is consistent. ok is false when the copy holds no
// position file (the donor had binary logging off).
func ReadBackupPosition(dir string) (pos gtid.Set, ok bool, err error) {
	for _, name := range BackupInfoFiles {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return gtid.Set{}, false, fmt.Errorf("failed to read %s: %w", name, err)
		}
		pos, err := ParseBackupInfo(string(b))
		if err != nil {
			return gtid.Set{}, false, fmt.Errorf("failed to read %s: %w", name, err)
		}
		return pos, true, nil
	}
	return gtid.Empty(gtid.MariaDB), false, nil
}

// ParseBackupInfo reads "<binlog file>\t<offset>\t<gtid position>" (the position may be
// absent or empty when the donor had no GTIDs yet).
func ParseBackupInfo(text string) (gtid.Set, error) {
	line := strings.TrimSpace(strings.SplitN(text, "\n", 2)[0])
	fields := strings.Split(line, "\t")
	if len(fields) < 2 {
		fields = strings.Fields(line)
	}
	if len(fields) < 2 {
		return gtid.Set{}, fmt.Errorf("unexpected binlog info %q", line)
	}
	pos := ""
	if len(fields) >= 3 {
		pos = strings.TrimSpace(strings.Join(fields[2:], ","))
	}
	return gtid.Parse(gtid.MariaDB, pos)
}

// StateAtCopyPoint returns a MariaDB donor's full GTID state (per domain and server_id) at
// the moment a copy was taken, from its executed set read before the copy started, the same
// read after it finished, and the per-domain position recorded in the copy. With
// gtid_strict_mode, seq_no grows with binlog order within a domain, so a stream whose last
// seq_no after the copy is not beyond the domain's position was complete at the copy point,
// and the stream of the position's own GTID stood exactly at it. A stream that moved beyond
// the position while not being the position's stream cannot be placed; that only happens when
// two servers wrote into one domain during the copy (a change of primary), and the copy must
// be taken again.
func StateAtCopyPoint(before, after, pos gtid.Set) (gtid.Set, error) {
	if pos.Flavor() != gtid.MariaDB && !pos.IsEmpty() {
		return gtid.Set{}, fmt.Errorf("failed to compute GTID state at the copy point: %s position", pos.Flavor())
	}
	last := map[uint32]gtid.MariaDBGTID{}
	for _, g := range pos.MariaDBGTIDs() {
		last[g.Domain] = g
	}
	prior := map[gtid.DomainServer]uint64{}
	for _, g := range before.MariaDBGTIDs() {
		prior[gtid.DomainServer{Domain: g.Domain, Server: g.Server}] = g.Seq
	}
	var parts []string
	for _, g := range after.Union(pos).MariaDBGTIDs() {
		p, ok := last[g.Domain]
		switch {
		case !ok:
			// The domain did not exist at the copy point.
			if b, had := prior[gtid.DomainServer{Domain: g.Domain, Server: g.Server}]; had {
				return gtid.Set{}, fmt.Errorf("failed to compute GTID state at the copy point: domain %d (%d-%d-%d before the copy) is missing from the copy's position %q", g.Domain, g.Domain, g.Server, b, pos.String())
			}
			continue
		case g.Seq <= p.Seq:
			parts = append(parts, g.String())
		case g.Server == p.Server:
			parts = append(parts, p.String())
		default:
			b, had := prior[gtid.DomainServer{Domain: g.Domain, Server: g.Server}]
			if had && b == g.Seq {
				// Did not move during the copy, yet is beyond the position: impossible under
				// gtid_strict_mode.
				return gtid.Set{}, fmt.Errorf("failed to compute GTID state at the copy point: %s is beyond the copy's position %s", g, p)
			}
			return gtid.Set{}, fmt.Errorf("failed to compute GTID state at the copy point: servers %d and %d both wrote into domain %d during the copy; take the copy again", g.Server, p.Server, g.Domain)
		}
	}
	state, err := gtid.Parse(gtid.MariaDB, strings.Join(parts, ","))
	if err != nil {
		return gtid.Set{}, fmt.Errorf("failed to compute GTID state at the copy point: %w", err)
	}
	if !state.Contains(before) {
		return gtid.Set{}, fmt.Errorf("failed to compute GTID state at the copy point: %s lacks %s, which the donor had before the copy", state, before.Subtract(state))
	}
	return state, nil
}

// CloneFrom replaces the data of inst, a running MySQL server, with a copy of donor's using
// the CLONE plugin (experimental). The server restarts itself when a supervisor runs it; a
// server started with StartPrivateServer stops instead, and its data directory then holds
// the copy. MariaDB has no CLONE plugin (it clones by stream, StreamBackup): an error.
func CloneFrom(ctx context.Context, inst Instance, donor Endpoint) error {
	in, ok := inst.(*instance)
	if !ok {
		return fmt.Errorf("failed to clone: %T is not an engine instance", inst)
	}
	stmts := in.d.cloneFrom(donor)
	if stmts == nil {
		return fmt.Errorf("failed to clone: %s has no CLONE plugin; it clones by stream", in.d.engine())
	}
	return in.exec(ctx, "clone from "+donor.Address(), stmts...)
}
