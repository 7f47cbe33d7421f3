package tools

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/internal/golden"
)

// The command line of every operation per engine, with the private directory at /PRIVATE.
func TestCommandsGolden(t *testing.T) {
	acct := Account{User: "kura-agent", Password: `p"w\x`, Host: "127.0.0.1", Port: 3306}
	invs := []Invocation{
		{Op: PhysicalBackup, ServerDefaults: "/etc/mysql/my.cnf", Account: acct},
		{Op: PhysicalBackup, ServerDefaults: "/etc/mysql/my.cnf", Account: Account{User: "kura-agent", Password: "p", Host: "127.0.0.1", Port: 3306, CAFile: "/etc/kura/tls/ca.crt"}},
		{Op: Extract, Dir: "/var/lib/mysql"},
		{Op: Prepare, Dir: "/var/lib/mysql"},
		{Op: Prepare, Dir: "/var/lib/mysql", UseMemory: "1G"},
		{Op: LogicalDump, ServerDefaults: "/etc/mysql/my.cnf", Account: acct},
		{Op: LogicalDump, Account: Account{User: "u", Password: "p", Socket: "/run/mysqld/mysqld.sock"}, Databases: []string{"shop", "crm"}},
		{Op: Load, ServerDefaults: "/etc/mysql/my.cnf", Account: Account{User: "kura-operator", Password: "p", Socket: "/PRIVATE/mysqld.sock"}, NoBinlog: true},
		{Op: Load, Account: Account{User: "kura-operator", Password: "p", Socket: "/PRIVATE/mysqld.sock"}},
		{Op: BinlogDecode, Files: []string{"/PRIVATE/0000000001.binlog", "/PRIVATE/0000000002.binlog"}},
	}
	for _, kind := range []kurav1alpha1.Engine{kurav1alpha1.EngineMariaDB, kurav1alpha1.EngineMySQL} {
		var b strings.Builder
		for _, inv := range invs {
			inv.Engine = kind
			prog, args, err := Command(inv, Private{Dir: "/PRIVATE"})
			fmt.Fprintf(&b, "# %s", inv.Op)
			if len(inv.Databases) > 0 {
				fmt.Fprintf(&b, " %v", inv.Databases)
			}
			b.WriteString("\n")
			if err != nil {
				fmt.Fprintf(&b, "error: %v\n\n", err)
				continue
			}
			fmt.Fprintf(&b, "%s %s\n", prog, strings.Join(args, " "))
			if inv.Op == PhysicalBackup || inv.Op == LogicalDump || inv.Op == Load {
				fmt.Fprintf(&b, "-- client.cnf\n%s", OptionFile(inv))
			}
			b.WriteString("\n")
		}
		golden.Assert(t, "commands-"+string(kind)+".txt", []byte(b.String()))
	}
}

func TestOptionValueQuotes(t *testing.T) {
	if got := optionValue(`a"b\c`); got != `"a\"b\\c"` {
		t.Errorf("optionValue: %s", got)
	}
}

func TestTailBufferKeepsTheEnd(t *testing.T) {
	tb := &tailBuffer{max: 10}
	for i := 0; i < 100; i++ {
		fmt.Fprintf(tb, "%d,", i)
	}
	if got := tb.String(); got != ",97,98,99," {
		t.Fatalf("tail %q", got)
	}
	if got := lastLines("a\n\nb\nc\nd\n", 2); got != "c | d" {
		t.Fatalf("lastLines %q", got)
	}
}

// A failing program's error names it and carries its last stderr lines; the option file
// with the password exists only during the run.
func TestRunReportsStderrAndCleansUp(t *testing.T) {
	dir := t.TempDir()
	fake := filepath.Join(dir, "fake-dump")
	script := "#!/bin/sh\nfor a in \"$@\"; do case $a in --defaults-file=*) cp \"${a#--defaults-file=}\" " + dir + "/seen.cnf;; esac; done\necho line1 >&2\necho 'mariadb-dump: Got error: 1045: Access denied' >&2\nexit 2\n"
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	r := Runner{Programs: map[string]string{"mariadb-dump": fake}, TmpDir: tmp}
	_, err := r.Run(context.Background(), Invocation{Op: LogicalDump, Account: Account{User: "u", Password: "secret", Host: "h", Port: 1}}, Options{Stdout: &strings.Builder{}})
	if err == nil || !strings.Contains(err.Error(), "failed to run fake-dump: exit status 2") || !strings.Contains(err.Error(), "Access denied") {
		t.Fatalf("error: %v", err)
	}
	seen, rerr := os.ReadFile(filepath.Join(dir, "seen.cnf"))
	if rerr != nil || !strings.Contains(string(seen), `password="secret"`) {
		t.Fatalf("the program must read the account from its option file: %q %v", seen, rerr)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Fatalf("private directory left behind: %v", left)
	}
	if _, err := (Runner{Programs: map[string]string{"mbstream": filepath.Join(dir, "missing")}}).Run(context.Background(), Invocation{Op: Extract, Dir: t.TempDir()}, Options{}); err == nil {
		t.Fatal("a missing program must fail")
	}
	if _, _, err := Command(Invocation{Engine: kurav1alpha1.EngineMySQL, Op: PhysicalBackup}, Private{}); !errors.Is(err, ErrNoStream) {
		t.Fatalf("MySQL physical stream: %v", err)
	}
}
