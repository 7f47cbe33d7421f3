package seed

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/internal/engine"
	"github.com/kura-db/kura/internal/gtid"
	"github.com/kura-db/kura/internal/tools"
)

// Local is the running local server a copy is taken of.
type Local struct {
	Engine kurav1alpha1.Engine
	// Name is the instance's name in headers (the Pod name).
	Name string
	// Instance reads the executed set before and after the copy, server id and version.
	Instance engine.Instance
	// Invocation says how the copy tool reaches the server (option file, account); Op and
	// Engine are filled in.
	Invocation tools.Invocation
	Tools      tools.Runner
}

// Copy writes a complete copy stream of the local server: start is called with the header
// (executed set before) and returns the stream to write to; then the tool's data and the
// trailer (executed set after, the position the copy is consistent with). On failure after
// the header it writes an error frame, so a reader never takes a partial copy for a whole one;
// the error is returned as well. The writer is returned for its byte count.
func Copy(ctx context.Context, l Local, start func(Header) (*Writer, error)) (*Writer, error) {
	kind := l.Engine
	if kind == "" {
		kind = kurav1alpha1.EngineMariaDB
	}
	if kind == kurav1alpha1.EngineMySQL {
		return nil, tools.ErrNoStream
	}
	before := l.Instance.Status(ctx)
	if !before.Reachable || before.Error != "" {
		return nil, fmt.Errorf("failed to read the executed set before the copy: %s", statusError(before))
	}
	sw, err := start(Header{Engine: string(kind), Donor: l.Name, ServerID: before.ServerID, Version: before.Version,
		ExecutedBefore: before.ExecutedGTID.String()})
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*Writer, error) {
		sw.Fail(err)
		return sw, err
	}
	inv := l.Invocation
	inv.Engine, inv.Op = kind, tools.PhysicalBackup
	var position string
	_, err = l.Tools.Run(ctx, inv, tools.Options{Stdout: sw, After: func(p tools.Private) error {
		pos, err := readPosition(p.Meta())
		position = pos
		return err
	}})
	if err != nil {
		return fail(fmt.Errorf("failed to copy: %w", err))
	}
	after := l.Instance.Status(ctx)
	if !after.Reachable || after.Error != "" {
		return fail(fmt.Errorf("failed to read the executed set after the copy: %s", statusError(after)))
	}
	if err := sw.Close(Trailer{ExecutedAfter: after.ExecutedGTID.String(), Position: position}); err != nil {
		return sw, err
	}
	return sw, nil
}

func statusError(st engine.Status) string {
	if st.Error != "" {
		return st.Error
	}
	return "the server is not reachable"
}

// binlogPos is xtrabackup_info's position line: "binlog_pos = filename '…', position '…',
// GTID of the last change '0-1000-5,1-1000-3'".
var binlogPos = regexp.MustCompile(`(?m)^binlog_pos = .*GTID of the last change '([^']*)'`)

// readPosition reads the position the copy is consistent with from mariadb-backup's
// --extra-lsndir: a binlog info file when it is there, else xtrabackup_info. "" when the
// server had binary logging off.
func readPosition(dir string) (string, error) {
	pos, ok, err := engine.ReadBackupPosition(dir)
	if err != nil {
		return "", err
	}
	if ok {
		return pos.String(), nil
	}
	b, err := os.ReadFile(filepath.Join(dir, "xtrabackup_info"))
	if err != nil {
		if os.IsNotExist(err) {
			return "", nil
		}
		return "", fmt.Errorf("failed to read the copy's position: %w", err)
	}
	m := binlogPos.FindSubmatch(b)
	if m == nil {
		return "", nil
	}
	set, err := gtid.Parse(gtid.MariaDB, string(m[1]))
	if err != nil {
		return "", fmt.Errorf("failed to read the copy's position %q: %w", m[1], err)
	}
	return set.String(), nil
}
