package engine

import (
	"fmt"
	"strings"
	"testing"
	"time"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/internal/golden"
	"github.com/kura-db/kura/internal/gtid"
)

// testAccounts have passwords that need escaping.
var testAccounts = StandardAccounts(Credentials{Operator: `op'er`, Replication: `re\pl`, Agent: "agent\"pw",
	Root: "root\npw", Admin: "ad`min", App: "a'pp", Database: "shop_db"})

// renderStatements lists every statement a dialect produces for fixed inputs, one section per
// method, so a golden file shows the exact text sent to the server.
func renderStatements(d dialect) string {
	var b strings.Builder
	section := func(name string, stmts ...stmt) {
		fmt.Fprintf(&b, "-- %s\n", name)
		for _, s := range stmts {
			b.WriteString(s.String() + ";\n")
		}
	}
	set := map[gtid.Flavor]gtid.Set{
		gtid.MariaDB: gtid.MustParse(gtid.MariaDB, "0-1001-42,0-1002-50,1-1001-7"),
		gtid.MySQL:   gtid.MustParse(gtid.MySQL, "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-42:web:1-3"),
	}[d.flavor()]
	section("status: globals", stmt{Query: d.globalsQuery()})
	section("status: replica", stmt{Query: d.replicaStatusQuery()})
	section("kill: list connections", stmt{Query: d.processlistQuery()})
	if q := d.receiverQuery(); q != "" {
		section("ApplyRelayLog: the receiver's connection, killed first", stmt{Query: q})
	}
	behind := map[gtid.Flavor]gtid.Set{
		gtid.MariaDB: gtid.MustParse(gtid.MariaDB, "0-1001-41"),
		gtid.MySQL:   gtid.MustParse(gtid.MySQL, "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-41"),
	}[d.flavor()]
	section("ConfigureReplica", append(d.rejoinStatements(set, behind),
		d.changeSource(Source{Host: "shop-1.shop-instances.prod.svc.cluster.local", Port: 3306, User: ReplicationUser, Password: `s3'cr\et`}))...)
	section("ConfigureReplica (TLS verified against the CA)", d.changeSource(Source{Host: "shop-1.shop-instances.prod.svc.cluster.local", Port: 3306,
		User: ReplicationUser, Password: "p", CAFile: "/etc/kura/tls/ca.crt"}))
	section("ConfigureReplica (connect retry 2.5s)", d.changeSource(Source{Host: "10.0.0.1", Port: 3307, User: "r", Password: "p", ConnectRetry: 2500 * time.Millisecond}))
	section("StartReplication", d.startThreads(BothThreads), d.startThreads(IOThread), d.startThreads(SQLThread))
	section("StopReplication", d.stopThreads(BothThreads), d.stopThreads(IOThread), d.stopThreads(SQLThread))
	section("ApplyRelayLog (SQL thread stopped)", d.applyRelayLog("relay-bin.000002", 910)...)
	section("StopReplicaAndReset", d.resetReplica()...)
	section("WaitForGTID", d.waitGTID(set, 9))
	section("SetReadOnly(true)", d.readOnly(true)...)
	section("SetReadOnly(false)", d.readOnly(false)...)
	section("ConfigureSemiSync(primary, 2, default timeout)", d.semiSyncStatements(SemiSyncConfig{Role: RolePrimary, WaitCount: 2})...)
	section("ConfigureSemiSync(primary, 0)", d.semiSyncStatements(SemiSyncConfig{Role: RolePrimary})...)
	section("ConfigureSemiSync(replica)", d.semiSyncStatements(SemiSyncConfig{Role: RoleReplica})...)
	section("ConfigureSemiSync(none, 30s)", d.semiSyncStatements(SemiSyncConfig{Role: RoleNone, Timeout: 30 * time.Second})...)
	section("FlushBinaryLogs", d.flushBinaryLogs())
	section("ResetGTIDState", d.resetGTIDState(set)...)
	section("CloneFrom", d.cloneFrom(Endpoint{Host: "shop-1.shop-instances.prod.svc.cluster.local", Port: 3306, User: AgentUser, Password: `ag'ent`})...)
	for _, a := range testAccounts {
		section("EnsureAccounts: "+a.name(), accountStatements(d, a)...)
	}
	return b.String()
}

func TestStatementsGolden(t *testing.T) {
	for _, kind := range []kurav1alpha1.Engine{kurav1alpha1.EngineMariaDB, kurav1alpha1.EngineMySQL} {
		d, err := dialectFor(kind)
		if err != nil {
			t.Fatal(err)
		}
		golden.Assert(t, "statements-"+string(kind)+".sql", []byte(renderStatements(d)))
	}
}

func TestBootstrapSQLGolden(t *testing.T) {
	for _, kind := range []kurav1alpha1.Engine{kurav1alpha1.EngineMariaDB, kurav1alpha1.EngineMySQL} {
		d, _ := dialectFor(kind)
		script, err := bootstrapSQL(d, testAccounts)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(script, "SET SESSION sql_log_bin = 0;\n") {
			t.Fatalf("%s: the account script must start with binary logging off:\n%s", kind, script)
		}
		golden.Assert(t, "accounts-"+string(kind)+".sql", []byte(script))
	}
}

func TestBootstrapSQLRejectsBadAccounts(t *testing.T) {
	d := mariadbDialect{}
	for _, a := range []Account{
		{User: "x'y", Host: "%", Password: "p", Role: RoleOperator},
		{User: "x", Host: "%", Password: "", Role: RoleOperator},
		{User: "", Host: "%", Password: "p", Role: RoleOperator},
		{User: "x", Host: "%", Password: "p", Role: "superuser"},
	} {
		if _, err := bootstrapSQL(d, []Account{a}); err == nil {
			t.Errorf("account %+v accepted", a)
		}
	}
}

func TestQuote(t *testing.T) {
	cases := map[string]string{
		"":           "''",
		"plain":      "'plain'",
		"it's":       `'it\'s'`,
		`back\slash`: `'back\\slash'`,
		"a\nb\rc":    `'a\nb\rc'`,
		"nul\x00":    `'nul\0'`,
		`"q"`:        `'\"q\"'`,
		"ctrl-z\x1a": `'ctrl-z\Z'`,
	}
	for in, want := range cases {
		if got := quote(in); got != want {
			t.Errorf("quote(%q) = %s, want %s", in, got, want)
		}
	}
	if got := (stmt{Query: "SELECT ?, ?, '?'", Args: []any{1, "a"}}).String(); got != "SELECT 1, 'a', '?'" {
		t.Errorf("render = %s", got)
	}
}

func TestGlobalValue(t *testing.T) {
	cases := []struct {
		in   string
		want any
	}{
		{"500", int64(500)},
		{" 42 ", int64(42)},
		{"-1", int64(-1)},
		{"128M", int64(128 << 20)},
		{"1G", int64(1 << 30)},
		{"64k", int64(64 << 10)},
		{"ON", "ON"},
		{"ROW", "ROW"},
		{"M", "M"},
		{"utf8mb4_unicode_ci", "utf8mb4_unicode_ci"},
		{"1.5", 1.5}, // a numeric variable (long_query_time) refuses a string
		{".5", 0.5},
		{"1.2.3", "1.2.3"},
		{"1e3", "1e3"},
	}
	for _, c := range cases {
		if got := globalValue(c.in); got != c.want {
			t.Errorf("globalValue(%q) = %#v, want %#v", c.in, got, c.want)
		}
	}
}

func TestDriverConfigHasTimeouts(t *testing.T) {
	c := driverConfig(Endpoint{Host: "::1", Port: 3306, User: "u", Password: "p"}, Options{})
	if c.Timeout != DefaultConnectTimeout || c.ReadTimeout != DefaultReadTimeout || c.WriteTimeout != DefaultWriteTimeout {
		t.Fatalf("timeouts = %v %v %v", c.Timeout, c.ReadTimeout, c.WriteTimeout)
	}
	if c.Addr != "[::1]:3306" || c.Net != "tcp" || !c.InterpolateParams {
		t.Fatalf("config = %+v", c)
	}
	dsn := DSN(Endpoint{Host: "h", Port: 1, User: "u", Password: "p"}, Options{ConnectTimeout: time.Second, ReadTimeout: 3 * time.Second, WriteTimeout: 4 * time.Second})
	for _, want := range []string{"timeout=1s", "readTimeout=3s", "writeTimeout=4s", "tcp(h:1)"} {
		if !strings.Contains(dsn, want) {
			t.Errorf("DSN %q lacks %q", dsn, want)
		}
	}
}

func TestNativePasswordHash(t *testing.T) {
	// PASSWORD('pw') on MariaDB 10.11.
	if got := nativePasswordHash("pw"); got != "*D821809F681A40A6E379B50D0463EFAE20BDD122" {
		t.Fatalf("hash = %s", got)
	}
}

func TestHasPrivilege(t *testing.T) {
	grants := []string{
		"GRANT RELOAD, PROCESS, BINLOG MONITOR, REPLICATION SLAVE ON *.* TO `kura-agent`@`%` IDENTIFIED BY PASSWORD '*X'",
		"GRANT SELECT ON `shop`.* TO `kura-agent`@`%`",
		"GRANT BACKUP_ADMIN,CLONE_ADMIN ON *.* TO `kura-agent`@`%`",
	}
	for p, want := range map[string]bool{
		"RELOAD": true, "PROCESS": true, "REPLICATION CLIENT": true, "REPLICATION SLAVE": true,
		"BACKUP_ADMIN": true, "CLONE_ADMIN": true, "SELECT": false, "ALL PRIVILEGES": false, "SUPER": false,
	} {
		if got := hasPrivilege(grants, p); got != want {
			t.Errorf("hasPrivilege(%s) = %v, want %v", p, got, want)
		}
	}
	all := []string{"GRANT ALL PRIVILEGES ON *.* TO `kura-operator`@`%` WITH GRANT OPTION"}
	if !hasPrivilege(all, "SUPER") || !hasGrantOption(all) || hasGrantOption(grants) {
		t.Error("ALL PRIVILEGES / GRANT OPTION misread")
	}
	mysqlAll := []string{"GRANT SELECT, INSERT, SHUTDOWN, SUPER, CREATE USER ON *.* TO `kura-operator`@`%` WITH GRANT OPTION"}
	if !hasPrivilege(mysqlAll, "ALL PRIVILEGES") {
		t.Error("MySQL's expanded ALL not recognised")
	}
}
