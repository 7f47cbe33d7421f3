package supervise

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"database/sql"
	"fmt"
	"os"
	"time"

	"github.com/go-sql-driver/mysql"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
)

// FileWatch notices changes of a set of files' contents from the moment it was made.
type FileWatch struct {
	paths []string
	last  string
}

// WatchFiles reads the files' contents now; Run reports changes from this state.
func WatchFiles(paths []string) *FileWatch {
	return &FileWatch{paths: paths, last: digest(paths)}
}

// Run calls reload whenever the contents of the files change, once the change has held for
// one interval (a Secret volume's files are not all replaced at the same instant), until ctx
// ends. A reload that fails is tried again at the next interval. Missing files are waited for.
func (w *FileWatch) Run(ctx context.Context, every time.Duration, reload func(context.Context) error, log func(string, ...any)) {
	paths, last := w.paths, w.last
	pending := ""
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cur := digest(paths)
		switch {
		case cur == "" || cur == last:
			pending = ""
			continue
		case cur != pending:
			pending = cur // changed since the last look: wait until it holds
			continue
		}
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := reload(rctx)
		cancel()
		if err != nil {
			log("the certificate files changed; reloading them failed, trying again: %v", err)
			continue
		}
		last, pending = cur, ""
		log("the certificate files changed: the server reloaded them")
	}
}

// digest hashes the files' contents; "" when one cannot be read.
func digest(paths []string) string {
	h := sha256.New()
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return ""
		}
		h.Write(b)
	}
	return string(h.Sum(nil))
}

// ReloadTLS makes the local server read its certificate, key and CA files again, without a
// restart: FLUSH NO_WRITE_TO_BINLOG SSL on MariaDB (a plain FLUSH is written to the binary
// log: on a replica it would be a transaction of its own, errant, and would break replication
// with an out-of-order GTID), ALTER INSTANCE RELOAD TLS on MySQL (never logged). The connection is over
// loopback inside the Pod and does not verify the server's certificate, which may be the one
// being replaced (a new CA would not verify it).
func ReloadTLS(ctx context.Context, engine kurav1alpha1.Engine, port int, user, password string) error {
	cfg := loopback(port, user, password, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}, 5*time.Second) //nolint:gosec // loopback inside the Pod, see above
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return err
	}
	db := sql.OpenDB(conn)
	defer func() { _ = db.Close() }()
	stmt := "FLUSH NO_WRITE_TO_BINLOG SSL"
	if engine == kurav1alpha1.EngineMySQL {
		stmt = "ALTER INSTANCE RELOAD TLS"
	}
	if _, err := db.ExecContext(ctx, stmt); err != nil {
		return fmt.Errorf("%s: %w", stmt, err)
	}
	return nil
}
