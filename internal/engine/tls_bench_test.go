package engine_test

import (
	"database/sql"
	"testing"

	"github.com/kura-db/kura/internal/engine"
	"github.com/kura-db/kura/internal/enginetest"
)

// BenchmarkTLS measures, on one real mariadbd with the generated certificate, single-row
// autocommit INSERTs over one connection (sync_binlog=1 and
// innodb_flush_log_at_trx_commit=1, as Kura runs) and the cost of opening a connection, each
// in clear text and over TLS verified against the cluster's CA. Figures: docs/benchmarks.md.
func BenchmarkTLS(b *testing.B) {
	c := enginetest.Start(b, 1, enginetest.Options{})
	inst := c.Instances[0]
	setup := inst.DB()
	if _, err := setup.Exec("CREATE DATABASE IF NOT EXISTS bench"); err != nil {
		b.Fatal(err)
	}
	for _, mode := range []string{"clear", "tls"} {
		ep := inst.Operator()
		if mode == "clear" {
			ep.TLS = nil
		}
		open := func(b *testing.B) *sql.DB {
			conn, err := engine.Connector(ep, engine.Options{})
			if err != nil {
				b.Fatal(err)
			}
			db := sql.OpenDB(conn)
			db.SetMaxOpenConns(1)
			return db
		}
		b.Run("commit/"+mode, func(b *testing.B) {
			db := open(b)
			defer func() { _ = db.Close() }()
			table := "bench.t_" + mode
			if _, err := db.Exec("CREATE TABLE IF NOT EXISTS " + table + " (id BIGINT AUTO_INCREMENT PRIMARY KEY, v BIGINT)"); err != nil {
				b.Fatal(err)
			}
			var cipher, name string
			if err := db.QueryRow("SHOW SESSION STATUS LIKE 'Ssl_cipher'").Scan(&name, &cipher); err != nil || (cipher != "") != (mode == "tls") {
				b.Fatalf("%s connection reports cipher %q (%v)", mode, cipher, err)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := db.Exec("INSERT INTO "+table+" (v) VALUES (?)", i); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "commits/s")
		})
		b.Run("connect/"+mode, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				db := open(b)
				if err := db.Ping(); err != nil {
					b.Fatal(err)
				}
				_ = db.Close()
			}
		})
	}
}
