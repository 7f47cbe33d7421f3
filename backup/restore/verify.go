package restore

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/kura-db/kura/backup"
	"github.com/kura-db/kura/backup/storage"
	"github.com/kura-db/kura/internal/engine"
)

// Verification is what verifying a backup by restoring it found (dba rule 20).
type Verification struct {
	// Tables is the number of tables read back; Rows their rows.
	Tables int   `json:"tables"`
	Rows   int64 `json:"rows"`
	// Compared counts the tables whose rows were compared with the manifest's counts (a
	// logical backup restored to its own point records them; a physical copy does not).
	Compared int `json:"compared"`
	// Mismatches name every table whose count differs from the manifest, or that is missing on
	// one side. A verification with mismatches failed.
	Mismatches []string `json:"mismatches,omitempty"`
}

// systemSchemas are not compared: the restore gives them the cluster's accounts and state.
var systemSchemas = map[string]bool{"mysql": true, "information_schema": true, "performance_schema": true, "sys": true}

// Verify proves a backup by restoring it (dba rule 20): Run into datadir, a scratch
// directory, through exactly the path a real restore takes (and, for a target, the archive's
// replay); then the restored data starts on a private server, every table of the users'
// databases is read in full, and for a backup restored to its own point that recorded row
// counts, every count must equal the manifest's. Altered stored bytes fail the restore
// itself, naming the object and the check.
func Verify(ctx context.Context, job Job, st storage.Storage, datadir string, d Deps) (res Result, err error) {
	defer func() {
		// The operator reads the result alone: a failure after the restore is named in it too.
		if err != nil && res.Error == "" {
			res.Error = err.Error()
		}
	}()
	res, err = Run(ctx, job, st, datadir, d)
	if err != nil {
		return res, err
	}
	var want []backup.TableRows
	if job.Target.IsZero() {
		m, err := backup.ReadManifest(ctx, st, job.Source, job.Backup)
		if err != nil {
			return res, err
		}
		want = m.Tables
	}
	work, err := os.MkdirTemp(d.TmpDir, "kura-verify-")
	if err != nil {
		return res, fmt.Errorf("failed to create a private directory: %w", err)
	}
	defer func() { _ = os.RemoveAll(work) }()
	srv, inst, err := private(ctx, datadir, work, "verify", job.Engine, d)
	if err != nil {
		return res, err
	}
	defer shutdown(srv, inst)
	db, err := sql.Open("mysql", engine.DSN(engine.Endpoint{Socket: srv.Socket(), User: engine.OperatorUser, Password: d.Credentials.Operator},
		engine.Options{ReadTimeout: time.Hour}))
	if err != nil {
		return res, err
	}
	defer func() { _ = db.Close() }()
	v, err := countTables(ctx, db, want)
	res.Verification = &v
	if err != nil {
		return res, err
	}
	if len(v.Mismatches) > 0 {
		return res, fmt.Errorf("backup %s restored, but %d of %d tables differ from its manifest: %s", job.Backup, len(v.Mismatches), v.Compared, strings.Join(v.Mismatches, "; "))
	}
	d.logf("verified %s: %d tables, %d rows (%d compared with the manifest)", job.Backup, v.Tables, v.Rows, v.Compared)
	return res, nil
}

// countTables reads every table of the users' databases in full and compares the counts
// with want (when it is not empty).
func countTables(ctx context.Context, db *sql.DB, want []backup.TableRows) (Verification, error) {
	var v Verification
	rs, err := db.QueryContext(ctx, "SELECT table_schema, table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE' ORDER BY 1, 2")
	if err != nil {
		return v, fmt.Errorf("failed to list the restored tables: %w", err)
	}
	var tables [][2]string
	for rs.Next() {
		var t [2]string
		if err := rs.Scan(&t[0], &t[1]); err != nil {
			_ = rs.Close()
			return v, err
		}
		if !systemSchemas[t[0]] {
			tables = append(tables, t)
		}
	}
	_ = rs.Close()
	if err := rs.Err(); err != nil {
		return v, err
	}
	expected := map[[2]string]int64{}
	for _, t := range want {
		if !systemSchemas[t.Database] {
			expected[[2]string{t.Database, t.Table}] = t.Rows
		}
	}
	seen := map[[2]string]bool{}
	for _, t := range tables {
		var n int64
		q := fmt.Sprintf("SELECT COUNT(*) FROM `%s`.`%s`", strings.ReplaceAll(t[0], "`", "``"), strings.ReplaceAll(t[1], "`", "``"))
		if err := db.QueryRowContext(ctx, q).Scan(&n); err != nil {
			return v, fmt.Errorf("restored table %s.%s does not open: %w", t[0], t[1], err)
		}
		v.Tables++
		v.Rows += n
		seen[t] = true
		if len(expected) == 0 {
			continue
		}
		v.Compared++
		if w, ok := expected[t]; !ok {
			v.Mismatches = append(v.Mismatches, fmt.Sprintf("%s.%s is restored but not in the manifest", t[0], t[1]))
		} else if w != n {
			v.Mismatches = append(v.Mismatches, fmt.Sprintf("%s.%s has %d rows, the manifest %d", t[0], t[1], n, w))
		}
	}
	var missing []string
	for t := range expected {
		if !seen[t] {
			missing = append(missing, fmt.Sprintf("%s.%s is in the manifest but not restored", t[0], t[1]))
		}
	}
	sort.Strings(missing)
	v.Mismatches = append(v.Mismatches, missing...)
	return v, nil
}
