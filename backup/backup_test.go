package backup

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
)

func TestLayout(t *testing.T) {
	l := Layout{Namespace: "prod", Cluster: "shop", Lineage: "0b6c2e1a-0000-4000-8000-000000000001"}
	if err := l.Validate(); err != nil {
		t.Fatal(err)
	}
	if got := l.ManifestKey("nightly-1"); got != "prod/shop/0b6c2e1a-0000-4000-8000-000000000001/backups/nightly-1/manifest.json" {
		t.Errorf("manifest key %s", got)
	}
	if got := l.BackupNameOf(l.BackupPrefix("nightly-1") + "data.sql.zst"); got != "nightly-1" {
		t.Errorf("backup name %q", got)
	}
	for _, bad := range []Layout{{Namespace: "a/b", Cluster: "c", Lineage: "d"}, {Namespace: "..", Cluster: "c", Lineage: "d"}, {Namespace: "a", Cluster: "", Lineage: "d"}} {
		if bad.Validate() == nil {
			t.Errorf("%+v must be refused", bad)
		}
	}
	names := map[string]string{
		DataName(kurav1alpha1.BackupMethodLogical, kurav1alpha1.CompressionZstd):  "data.sql.zst",
		DataName(kurav1alpha1.BackupMethodPhysical, kurav1alpha1.CompressionGzip): "data.kuracopy.gz",
		DataName(kurav1alpha1.BackupMethodLogical, kurav1alpha1.CompressionNone):  "data.sql",
	}
	for got, want := range names {
		if got != want {
			t.Errorf("data name %s, want %s", got, want)
		}
	}
}

// The dump's coordinates are read near its start (with the time they appeared) and its GTID
// position at its end, whatever the chunking.
func TestDumpScan(t *testing.T) {
	head := "-- Server version\t10.11.19-MariaDB-log\n-- CHANGE MASTER TO MASTER_USE_GTID=slave_pos;\n" +
		"-- CHANGE MASTER TO MASTER_LOG_FILE='mysql-bin.000003', MASTER_LOG_POS=813;\n"
	body := strings.Repeat("INSERT INTO `t` VALUES (1),(2);\n", 100000)
	tail := "-- SET GLOBAL gtid_slave_pos='0-1000-64,1-1000-3';\n-- Dump completed\n"
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	s := &dumpScan{now: func() time.Time { return at }}
	all := head + body + tail
	for i := 0; i < len(all); i += 4093 {
		_, _ = s.Write([]byte(all[i:min(i+4093, len(all))]))
	}
	p, ok := s.point(kurav1alpha1.EngineMariaDB)
	if !ok || p.GTIDSet != "0-1000-64,1-1000-3" || p.BinlogFile != "mysql-bin.000003" || p.BinlogPosition != 813 || !p.Time.Equal(at) || s.version != "10.11.19-MariaDB-log" {
		t.Fatalf("point %+v ok %v version %q", p, ok, s.version)
	}
	if _, ok := (&dumpScan{now: time.Now}).point(kurav1alpha1.EngineMariaDB); ok {
		t.Fatal("an empty dump has no point")
	}
	my := &dumpScan{now: time.Now}
	_, _ = my.Write([]byte("-- CHANGE REPLICATION SOURCE TO SOURCE_LOG_FILE='binlog.000002', SOURCE_LOG_POS=157;\n" +
		"/* SET @@GLOBAL.GTID_PURGED=/*!80000 '+'*/ '3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5'; */\n"))
	if p, ok := my.point(kurav1alpha1.EngineMySQL); !ok || p.GTIDSet != "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5" || p.BinlogFile != "binlog.000002" {
		t.Fatalf("mysql point %+v %v", p, ok)
	}
}

func TestSummaryFitsTheTerminationMessage(t *testing.T) {
	s := Summary{Error: strings.Repeat("mariadb-dump: Got error 2013 ", 1000)}
	if b := s.Encode(); len(b) > maxSummary {
		t.Fatalf("summary of %d bytes", len(b))
	}
	m := Manifest{Format: ManifestFormat, Name: "x", Method: kurav1alpha1.BackupMethodLogical}
	b, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := DecodeManifest(b); err != nil {
		t.Fatal(err)
	}
	if _, err := DecodeManifest([]byte(`{"format":2}`)); err == nil {
		t.Fatal("a newer manifest format must be refused")
	}
}

// Row counts from a dump: quoted values with escaped quotes, parentheses, backslashes and
// hex literals; empty tables; databases from USE lines; the same counts however the stream
// is cut into writes.
func TestRowCounter(t *testing.T) {
	dump := "-- MariaDB dump\n" +
		"/*!40101 SET NAMES utf8mb4 */;\n" +
		"CREATE DATABASE /*!32312 IF NOT EXISTS*/ `shop` /*!40100 DEFAULT CHARACTER SET latin1 */;\n" +
		"USE `shop`;\n" +
		"DROP TABLE IF EXISTS `orders`;\n" +
		"CREATE TABLE `orders` (\n  `id` int(11) NOT NULL,\n  `note` varchar(64) DEFAULT NULL,\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB;\n" +
		"INSERT INTO `orders` VALUES (1,'a (b), c'),(2,'it\\'s (x)'),(3,'back\\\\'),(4,NULL),(5,0x28292C27);\n" +
		"INSERT INTO `orders` VALUES\n(6,'\\\\\\';('),\n(7,'');\n" +
		"CREATE TABLE `empty` (\n  `id` int(11) NOT NULL\n) ENGINE=InnoDB;\n" +
		"-- INSERT INTO `orders` VALUES (99,'a comment');\n" +
		"USE `crm`;\n" +
		"CREATE TABLE `orders` (\n  `id` int(11) NOT NULL\n);\n" +
		"INSERT INTO `orders` VALUES (1),(2),(3);\n" +
		"-- SET GLOBAL gtid_slave_pos='0-1-5';\n"
	want := []TableRows{{"crm", "orders", 3}, {"shop", "empty", 0}, {"shop", "orders", 7}}
	for _, size := range []int{1, 2, 3, 7, 64, len(dump)} {
		c := newRowCounter()
		for i := 0; i < len(dump); i += size {
			_, _ = c.Write([]byte(dump[i:min(i+size, len(dump))]))
		}
		if got := c.tables(); !reflect.DeepEqual(got, want) {
			t.Errorf("written %d bytes at a time: %+v, want %+v", size, got, want)
		}
	}
	// A long INSERT line (beyond the classified head) counts all its rows.
	c := newRowCounter()
	var b strings.Builder
	b.WriteString("USE `db`;\nINSERT INTO `big` VALUES ")
	for i := 0; i < 5000; i++ {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, "(%d,'%s')", i, strings.Repeat("x(',", 3)[:2])
	}
	b.WriteString(";\n")
	_, _ = c.Write([]byte(b.String()))
	if got := c.tables(); len(got) != 1 || got[0].Rows != 5000 {
		t.Errorf("a long INSERT: %+v, want 5000 rows of db.big", got)
	}
}
