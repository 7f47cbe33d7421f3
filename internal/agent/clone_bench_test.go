package agent

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/kura-db/kura/internal/enginetest"
)

var cloneMB = flag.Int("clone-mb", 300, "BenchmarkClone: approximate size of the donor's table in MB")

// BenchmarkClone measures a whole clone through the agent (stream, extract, prepare, GTID
// state) of a donor holding about -clone-mb MB, with the agent serving plain HTTP and HTTPS
// (spec.tls.enabled, the default), from the same donor:
//
//	go test -run XXX -bench Clone -benchtime 3x ./internal/agent/
func BenchmarkClone(b *testing.B) {
	requireBackupTools(b)
	c := enginetest.Start(b, 1, enginetest.Options{})
	donor := c.Instances[0]
	db := donor.DB()
	enginetest.Exec(b, db, "CREATE DATABASE app", "CREATE TABLE app.big (id BIGINT AUTO_INCREMENT PRIMARY KEY, pad VARCHAR(255))",
		"INSERT INTO app.big (pad) SELECT CONCAT(MD5(seq), MD5(seq * 7), MD5(seq * 13), MD5(seq * 17)) FROM app.seq_1_to_4000")
	for {
		var mb float64
		if err := db.QueryRow("SELECT (DATA_LENGTH + INDEX_LENGTH) / 1048576 FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'app' AND TABLE_NAME = 'big'").Scan(&mb); err != nil {
			b.Fatal(err)
		}
		if mb >= float64(*cloneMB) {
			break
		}
		enginetest.Exec(b, db, "INSERT INTO app.big (pad) SELECT CONCAT(SUBSTR(pad, 9), LEFT(pad, 8)) FROM app.big LIMIT 400000")
		enginetest.Exec(b, db, "ANALYZE TABLE app.big")
	}
	_, plain := donorAgent(b, donor, "shop-0", io.Discard)
	for _, tc := range []struct {
		name   string
		client *Client
	}{{"plain", plain}, {"tls", donorAgentTLS(b, c, donor, "shop-0", io.Discard)}} {
		b.Run(tc.name, func(b *testing.B) {
			root := b.TempDir()
			var total int64
			for i := 0; i < b.N; i++ {
				opts := cloneOpts(donor, io.Discard)
				res, err := CloneInto(context.Background(), tc.client, "shop-0", filepath.Join(root, fmt.Sprintf("data-%d", i)), opts)
				if err != nil {
					b.Fatal(err)
				}
				total += res.Bytes
				b.Logf("clone %d (%s): %d MB in %s (%.1f MB/s of copy)", i, tc.name, res.Bytes>>20, res.Duration.Round(1e6), float64(res.Bytes)/1048576/res.Duration.Seconds())
				// Each clone's copy is removed before the next: the disk holds one at a time.
				b.StopTimer()
				if err := os.RemoveAll(filepath.Join(root, fmt.Sprintf("data-%d", i))); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
			b.ReportMetric(float64(total)/1048576/b.Elapsed().Seconds(), "MB/s")
		})
	}
}
