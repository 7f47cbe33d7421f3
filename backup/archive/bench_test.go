package archive

import (
	"context"
	"fmt"
	"os"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/kura-db/kura/internal/enginetest"
	"github.com/kura-db/kura/internal/gtid"
)

// BenchmarkArchiveRPO measures the archive's recovery point under a steady write load: for
// every acknowledged commit, the time from the acknowledgement to the moment the piece
// holding it (data and metadata) is in storage (versitygw on loopback), with the default
// piece interval and size. Writers: 4 connections inserting one row per transaction, as fast
// as the server takes them, for ARCHIVE_BENCH_SECONDS (default 30). Reports p50, p99 and max
// in milliseconds (docs/benchmarks.md). ARCHIVE_BENCH_INTERVAL overrides the piece interval.
//
//	go test -run '^$' -bench ArchiveRPO -benchtime 1x ./backup/archive/
func BenchmarkArchiveRPO(b *testing.B) {
	seconds := 30
	if v := os.Getenv("ARCHIVE_BENCH_SECONDS"); v != "" {
		_, _ = fmt.Sscan(v, &seconds)
	}
	c := enginetest.Start(b, 1, enginetest.Options{})
	db := makePrimary(b, c.Instances[0], true)
	st := s3Storage(b)

	var mu sync.Mutex
	stored := map[uint64]time.Time{} // seq of domain 0 -> when its piece was stored
	pieces := 0
	cfg := config(st, c.Instances[0])
	cfg.PieceInterval, cfg.Heartbeat, cfg.PrimaryCheck = 0, 0, 0 // the defaults
	if v := os.Getenv("ARCHIVE_BENCH_INTERVAL"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			b.Fatal(err)
		}
		cfg.PieceInterval = d
	}
	cfg.OnPiece = func(p Piece) {
		now := time.Now()
		first := gtid.MustParse(gtid.MariaDB, p.FirstGTID).MariaDBGTIDs()[0]
		last := gtid.MustParse(gtid.MariaDB, p.LastGTID).MariaDBGTIDs()[0]
		mu.Lock()
		defer mu.Unlock()
		for s := first.Seq; s <= last.Seq; s++ {
			stored[s] = now
		}
		pieces++
	}
	r := start(b, cfg)
	waitArchived(b, r.a, binlogPos(b, db))

	type ack struct {
		seq uint64
		at  time.Time
	}
	var acks []ack
	var amu sync.Mutex
	b.ResetTimer()
	stop := time.Now().Add(time.Duration(seconds) * time.Second)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := context.Background()
			conn, err := db.Conn(ctx)
			if err != nil {
				b.Error(err)
				return
			}
			defer func() { _ = conn.Close() }()
			for k := w * 10_000_000; time.Now().Before(stop); k++ {
				if _, err := conn.ExecContext(ctx, "INSERT INTO app.w (id, pad) VALUES (?, REPEAT('x', 150))", k); err != nil {
					b.Error(err)
					return
				}
				at := time.Now()
				var g string
				if err := conn.QueryRowContext(ctx, "SELECT @@last_gtid").Scan(&g); err != nil {
					b.Error(err)
					return
				}
				amu.Lock()
				acks = append(acks, ack{gtid.MustParse(gtid.MariaDB, g).MariaDBGTIDs()[0].Seq, at})
				amu.Unlock()
			}
		}()
	}
	wg.Wait()
	waitArchived(b, r.a, binlogPos(b, db))
	b.StopTimer()
	r.stop()

	mu.Lock()
	defer mu.Unlock()
	delays := make([]time.Duration, 0, len(acks))
	for _, a := range acks {
		s, ok := stored[a.seq]
		if !ok {
			b.Fatalf("transaction %d was acknowledged but never stored", a.seq)
		}
		delays = append(delays, max(0, s.Sub(a.at)))
	}
	sort.Slice(delays, func(i, j int) bool { return delays[i] < delays[j] })
	pct := func(p float64) time.Duration { return delays[min(len(delays)-1, int(p*float64(len(delays))))] }
	b.ReportMetric(float64(len(acks))/float64(seconds), "commits/s")
	b.ReportMetric(float64(pct(0.50).Milliseconds()), "p50-ms")
	b.ReportMetric(float64(pct(0.99).Milliseconds()), "p99-ms")
	b.ReportMetric(float64(delays[len(delays)-1].Milliseconds()), "max-ms")
	b.ReportMetric(float64(pieces), "pieces")
	b.Logf("%d commits in %d s, %d pieces; commit acknowledged -> piece stored: p50 %s, p99 %s, max %s",
		len(acks), seconds, pieces, pct(0.5), pct(0.99), delays[len(delays)-1])
}
