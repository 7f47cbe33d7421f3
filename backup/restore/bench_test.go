package restore

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/backup"
	"github.com/kura-db/kura/internal/engine"
	"github.com/kura-db/kura/internal/enginetest"
	"github.com/kura-db/kura/internal/tools"
)

// BenchmarkRestore measures a physical restore with a point-in-time replay against the raw
// tools on the same backup, in the same run: the raw figure is mbstream -x of the copy
// (already downloaded and decoded, untimed) plus mariadb-backup --prepare; the restore is
// everything Run does (plan, download from the S3 server, decode and verify the stream,
// extract, prepare, GTID state, replay, accounts, checks). Reported: the ratio raw/restore
// (1.0 = as fast as the tools alone), the same for the base alone (the restore less its
// replay, raw/base), MB/s, and the replay rate in transactions per second.
//
//	KURA_RESTORE_BENCH_MB=200 KURA_RESTORE_BENCH_TX=5000 go test ./backup/restore/ -run '^$' -bench Restore -benchtime 3x
func BenchmarkRestore(b *testing.B) {
	mb := envInt("KURA_RESTORE_BENCH_MB", 50)
	txs := envInt("KURA_RESTORE_BENCH_TX", 2000)
	r := newRig(b)
	db := r.src.DB()
	fill(b, r.src, mb)
	r.rows = writeRows(b, db, 1, 2)
	m := r.backup("bench", kurav1alpha1.BackupMethodPhysical)
	r.rows = append(r.rows, writeRows(b, db, 2, 2+txs)...)
	r.waitArchived()
	latest := r.rows[len(r.rows)-1].gtid

	// The raw tools' input: the copy decoded to an xbstream file.
	raw := filepath.Join(b.TempDir(), "copy.xbstream")
	src := backup.StoredCopy{Storage: r.st, Layout: lineage, Backup: "bench"}
	sr, closer, err := src.Open(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	f, err := os.Create(raw)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.Copy(f, sr); err != nil {
		b.Fatal(err)
	}
	_ = f.Close()
	_ = closer.Close()
	size := float64(m.Objects[0].RawSize) / (1 << 20)

	var rawTotal, restoreTotal, replayTotal, seedTotal time.Duration
	var replayed int
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		dir := filepath.Join(b.TempDir(), "raw")
		start := time.Now()
		in, err := os.Open(raw)
		if err != nil {
			b.Fatal(err)
		}
		var run tools.Runner
		if _, err := run.Run(context.Background(), tools.Invocation{Op: tools.Extract, Dir: dir}, tools.Options{Stdin: in}); err != nil {
			b.Fatal(err)
		}
		_ = in.Close()
		if _, err := run.Run(context.Background(), tools.Invocation{Op: tools.Prepare, Dir: dir}, tools.Options{}); err != nil {
			b.Fatal(err)
		}
		rawTotal += time.Since(start)
		_ = os.RemoveAll(dir)

		if r.target.Running() {
			r.target.Stop()
		}
		_ = os.RemoveAll(r.target.DataDir)
		d := r.deps()
		d.Log = io.Discard
		start = time.Now()
		res, err := Run(context.Background(), Job{Source: lineage, Engine: kurav1alpha1.EngineMariaDB, Backup: "bench", Target: Target{GTID: latest}}, r.st, r.target.DataDir, d)
		if err != nil {
			b.Fatal(err)
		}
		restoreTotal += time.Since(start)
		replayTotal += time.Duration(res.ReplayMS) * time.Millisecond
		seedTotal += time.Duration(res.SeedMS) * time.Millisecond
		replayed += res.Replayed
	}
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(rawTotal.Seconds()/restoreTotal.Seconds(), "raw/restore")
	// The same without the replay, which the raw tools do not do: the base's restore alone.
	b.ReportMetric(rawTotal.Seconds()/(restoreTotal-replayTotal).Seconds(), "raw/base")
	b.ReportMetric(size*n/restoreTotal.Seconds(), "MB/s")
	b.ReportMetric(float64(replayed)/replayTotal.Seconds(), "replay-tx/s")
	b.ReportMetric(rawTotal.Seconds()/n, "raw-s")
	b.ReportMetric(restoreTotal.Seconds()/n, "restore-s")
	b.ReportMetric(seedTotal.Seconds()/n, "seed-s")
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// fill adds about mb MB to app.big on the source, outside the writer's table.
func fill(tb testing.TB, src interface{ Operator() engine.Endpoint }, mb int) {
	tb.Helper()
	db, err := sql.Open("mysql", engine.DSN(src.Operator(), engine.Options{ReadTimeout: 5 * time.Minute, WriteTimeout: time.Minute}))
	if err != nil {
		tb.Fatal(err)
	}
	defer func() { _ = db.Close() }()
	enginetest.Exec(tb, db, "CREATE TABLE app.big (id BIGINT AUTO_INCREMENT PRIMARY KEY, pad VARCHAR(255))")
	rows := mb * 1024 * 1024 / 300
	for done := 0; done < rows; done += 50000 {
		enginetest.Exec(tb, db, fmt.Sprintf("INSERT INTO app.big (pad) SELECT CONCAT(MD5(seq), MD5(seq+1), MD5(seq+2), MD5(seq+3), MD5(seq+4), MD5(seq+5), MD5(seq+6)) FROM app.seq_%d_to_%d", done+1, done+50000))
	}
}
