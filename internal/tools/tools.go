// Package tools runs the database server's own programs — mariadb-backup, mbstream,
// mariadb-dump, mariadb-binlog and their MySQL counterparts — the same way everywhere: the
// program is looked up where the packages and official images install it, every run gets a
// private temporary directory and a private option file holding the account (so no password
// is ever on a command line), the command line for each engine is built by one pure function
// pinned by golden files (Command), and the tail of the program's stderr is part of the error.
package tools

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/internal/contract"
)

// Op is what a tool is run for.
type Op string

// Operations.
const (
	// PhysicalBackup writes a physical copy of the running local server to stdout
	// (mariadb-backup --backup --stream=xbstream). MySQL copies with the CLONE plugin instead.
	PhysicalBackup Op = "physical-backup"
	// Extract unpacks a PhysicalBackup stream read from stdin into Dir (mbstream -x).
	Extract Op = "extract"
	// Prepare applies the copied redo log in Dir so it is a consistent data directory.
	Prepare Op = "prepare"
	// LogicalDump writes SQL for the server's data (or Databases) to stdout, consistent with
	// one GTID position written into the dump (--single-transaction).
	LogicalDump Op = "logical-dump"
	// Load runs the SQL read from stdin on the server (a dump, or decoded binary log),
	// stopping at the first error; with NoBinlog the session writes no binary log.
	Load Op = "load"
	// BinlogDecode writes the events of the binary log Files to stdout as SQL that Load
	// replays with their original GTIDs.
	BinlogDecode Op = "binlog-decode"
)

// ErrNoStream is returned for an engine that copies with a plugin rather than a stream.
var ErrNoStream = errors.New("this engine clones with the CLONE plugin, not a stream")

// Account is how a tool logs in to the server: a Unix socket, or Host and Port over TCP.
type Account struct {
	User, Password string
	Socket         string
	Host           string
	Port           int
	// CAFile, over TCP, makes the tool use TLS and verify the server's certificate and host
	// name against this CA.
	CAFile string
}

// Invocation is everything that decides a tool's command line.
type Invocation struct {
	Engine kurav1alpha1.Engine
	Op     Op
	// ServerDefaults is the server's option file; the private option file includes it so
	// the tool reads the data directory and InnoDB settings the server runs with.
	ServerDefaults string
	// Account logs in (PhysicalBackup, LogicalDump).
	Account Account
	// Dir is the data directory written by Extract and Prepare.
	Dir string
	// Databases limits a LogicalDump (empty: every database).
	Databases []string
	// UseMemory is Prepare's --use-memory (default 128M).
	UseMemory string
	// NoBinlog keeps a Load out of the binary log (loading a dump whose GTID state is set
	// afterwards).
	NoBinlog bool
	// Files are BinlogDecode's binary log files, in order.
	Files []string
}

// Private names the files of an invocation's private directory.
type Private struct {
	Dir string
}

// OptionFile is the private option file holding the account.
func (p Private) OptionFile() string { return filepath.Join(p.Dir, "client.cnf") }

// Target is mariadb-backup's --target-dir (nothing is written there when streaming).
func (p Private) Target() string { return filepath.Join(p.Dir, "target") }

// Meta is mariadb-backup's --extra-lsndir: a copy of the stream's metadata files
// (xtrabackup_info with the binary log position) for the caller to read after the run.
func (p Private) Meta() string { return filepath.Join(p.Dir, "meta") }

// Tmp is the tool's --tmpdir.
func (p Private) Tmp() string { return filepath.Join(p.Dir, "tmp") }

// Command returns the program name and arguments of inv with its private directory at p.
// It is pure: testdata/commands-<engine>.txt pins it.
func Command(inv Invocation, p Private) (string, []string, error) {
	kind := inv.Engine
	if kind == "" {
		kind = kurav1alpha1.EngineMariaDB
	}
	mysql := kind == kurav1alpha1.EngineMySQL
	defaults := "--defaults-file=" + p.OptionFile()
	switch inv.Op {
	case PhysicalBackup:
		if mysql {
			return "", nil, ErrNoStream
		}
		// The aside copy of an earlier re-clone is on the data volume and would be taken
		// for a database, whose name mbstream then refuses, stopping the extraction.
		return "mariadb-backup", []string{defaults, "--backup", "--stream=xbstream",
			"--target-dir=" + p.Target(), "--extra-lsndir=" + p.Meta(), "--tmpdir=" + p.Tmp(),
			"--databases-exclude=" + contract.AsideDir + " lost+found"}, nil
	case Extract:
		if mysql {
			return "", nil, ErrNoStream
		}
		return "mbstream", []string{"-x", "-C", inv.Dir}, nil
	case Prepare:
		if mysql {
			return "", nil, ErrNoStream
		}
		mem := inv.UseMemory
		if mem == "" {
			mem = "128M"
		}
		// No option file: --user would name a database account here, not the OS user.
		return "mariadb-backup", []string{"--prepare", "--target-dir=" + inv.Dir, "--tmpdir=" + p.Tmp(), "--use-memory=" + mem}, nil
	case LogicalDump:
		// --single-transaction: one consistent snapshot without locking InnoDB tables;
		// --master-data=2 (MariaDB: with the GTID position as a comment, --gtid) and
		// MySQL's --source-data=2 record the point the dump is consistent with.
		prog := "mariadb-dump"
		args := []string{defaults, "--single-transaction", "--quick", "--routines", "--events", "--triggers",
			"--hex-blob", "--default-character-set=utf8mb4", "--tz-utc"}
		if mysql {
			prog = "mysqldump"
			args = append(args, "--source-data=2", "--set-gtid-purged=COMMENTED")
		} else {
			args = append(args, "--master-data=2", "--gtid")
		}
		if len(inv.Databases) == 0 {
			args = append(args, "--all-databases")
		} else {
			args = append(args, "--databases")
			args = append(args, inv.Databases...)
		}
		return prog, args, nil
	case Load:
		// --binary-mode: decoded binary logs and dumps carry raw bytes (BINLOG '…', blobs).
		prog := "mariadb"
		if mysql {
			prog = "mysql"
		}
		args := []string{defaults, "--binary-mode", "--batch", "--default-character-set=utf8mb4"}
		if inv.NoBinlog {
			args = append(args, "--init-command=SET SESSION sql_log_bin=0")
		}
		return prog, args, nil
	case BinlogDecode:
		if len(inv.Files) == 0 {
			return "", nil, errors.New("binlog-decode: no files")
		}
		prog := "mariadb-binlog"
		if mysql {
			prog = "mysqlbinlog"
		}
		return prog, append([]string{"--no-defaults"}, inv.Files...), nil
	default:
		return "", nil, fmt.Errorf("unknown tool operation %q", inv.Op)
	}
}

// OptionFile returns the private option file's text for inv: the server's file included,
// then the account in the tool's group.
func OptionFile(inv Invocation) string {
	var b strings.Builder
	if inv.ServerDefaults != "" {
		fmt.Fprintf(&b, "!include %s\n", inv.ServerDefaults)
	}
	groups := []string{"client"}
	switch {
	case inv.Op == Load:
		// The client's own group ([client]); [mariadb] would be the server's.
	case inv.Op == PhysicalBackup:
		groups = []string{"mariadb-backup"}
	case inv.Engine == kurav1alpha1.EngineMySQL:
		groups = []string{"mysqldump"}
	case inv.Op == LogicalDump:
		groups = []string{"mariadb-dump"}
	}
	a := inv.Account
	for _, g := range groups {
		fmt.Fprintf(&b, "[%s]\n", g)
		fmt.Fprintf(&b, "user=%s\npassword=%s\n", optionValue(a.User), optionValue(a.Password))
		if a.Socket != "" {
			fmt.Fprintf(&b, "socket=%s\n", optionValue(a.Socket))
		} else {
			fmt.Fprintf(&b, "host=%s\nport=%d\nprotocol=tcp\n", optionValue(a.Host), a.Port)
			if a.CAFile != "" {
				fmt.Fprintf(&b, "ssl-ca=%s\n", optionValue(a.CAFile))
				if inv.Engine == kurav1alpha1.EngineMySQL {
					b.WriteString("ssl-mode=VERIFY_IDENTITY\n")
				} else {
					b.WriteString("ssl-verify-server-cert\n")
				}
			}
		}
	}
	return b.String()
}

// optionValue quotes an option-file value.
func optionValue(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}

// Find looks a program up in PATH and then where the Debian packages and the official
// images install it.
func Find(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/usr/bin", "/usr/local/bin", "/usr/local/mysql/bin"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p, nil
		}
	}
	return "", fmt.Errorf("failed to find %s in PATH or /usr/sbin, /usr/bin: run make deps", name)
}
