package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
)

// InitMarker is written into a data directory once InitDataDir has completed.
const InitMarker = ".kura-initialized"

// InitOptions tune InitDataDir. The zero value suits both the init container and tests.
type InitOptions struct {
	// OSUser is passed as --user. Empty means "root" when the process runs as root (the
	// servers refuse to run as root unless told so explicitly) and no --user otherwise (in a
	// Pod, the container already runs as the mysql user).
	OSUser string
	// Installer and Server are program paths; empty means FindProgram.
	Installer string
	Server    string
	// ServerArgs are extra server options for both steps, e.g. a smaller
	// --innodb-log-file-size; they must agree with the configuration the server later runs with.
	ServerArgs []string
	// TmpDir is the servers' --tmpdir. Empty means a private directory created for the call
	// and removed afterwards: the programs never share a temporary directory with other
	// processes (a shared /tmp made initialisation fail when other processes used it).
	TmpDir string
	// Output receives the programs' output; by default it is kept and its tail is returned in
	// the error when a program fails.
	Output io.Writer
}

// FindProgram looks a server program up in PATH and then in the directories the Debian
// packages and the official images use.
func FindProgram(name string) (string, error) {
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

// Initialized reports whether InitDataDir has completed on datadir.
func Initialized(datadir string) bool {
	_, err := os.Stat(filepath.Join(datadir, InitMarker))
	return err == nil
}

// InitDataDir initialises an empty data directory and creates the accounts with binary
// logging off, so no instance ever holds GTIDs of its own from initialisation. MariaDB:
// mariadb-install-db, then mariadbd --bootstrap reading the account script from stdin. MySQL
// (experimental): mysqld --initialize-insecure with the script as --init-file. It returns
// false without doing anything when the directory is already initialised; a directory whose
// earlier initialisation stopped after the system tables were created only gets the account
// script again (it is idempotent).
func InitDataDir(ctx context.Context, kind kurav1alpha1.Engine, datadir string, accounts []Account, opts InitOptions) (bool, error) {
	if Initialized(datadir) {
		return false, nil
	}
	d, err := dialectFor(kind)
	if err != nil {
		return false, err
	}
	script, err := bootstrapSQL(d, accounts)
	if err != nil {
		return false, err
	}
	if err := os.MkdirAll(datadir, 0o750); err != nil {
		return false, fmt.Errorf("failed to create data directory %s: %w", datadir, err)
	}
	user := opts.OSUser
	if user == "" && os.Geteuid() == 0 {
		user = "root"
	}
	var userFlag []string
	if user != "" {
		userFlag = []string{"--user=" + user}
	}
	tmp, cleanup, err := privateTmpDir(opts.TmpDir, "kura-init-")
	if err != nil {
		return false, err
	}
	defer cleanup()
	opts.TmpDir = tmp
	opts.ServerArgs = append([]string{"--tmpdir=" + tmp}, opts.ServerArgs...)
	if d.engine() == kurav1alpha1.EngineMySQL {
		err = initMySQL(ctx, datadir, script, userFlag, opts)
	} else {
		err = initMariaDB(ctx, datadir, script, userFlag, opts)
	}
	if err != nil {
		return false, err
	}
	if err := writeMarker(datadir); err != nil {
		return false, err
	}
	return true, nil
}

func initMariaDB(ctx context.Context, datadir, script string, userFlag []string, opts InitOptions) error {
	installer, server := opts.Installer, opts.Server
	var err error
	if installer == "" {
		if installer, err = FindProgram("mariadb-install-db"); err != nil {
			return err
		}
	}
	if server == "" {
		if server, err = FindProgram("mariadbd"); err != nil {
			return err
		}
	}
	if _, err := os.Stat(filepath.Join(datadir, "mysql")); errors.Is(err, os.ErrNotExist) {
		args := append([]string{"--no-defaults", "--datadir=" + datadir, "--skip-test-db"}, userFlag...)
		args = append(args, opts.ServerArgs...)
		if err := run(ctx, opts.Output, "", installer, args...); err != nil {
			return fmt.Errorf("failed to initialise data directory %s: %w", datadir, err)
		}
	}
	args := append([]string{"--no-defaults", "--datadir=" + datadir, "--bootstrap", "--skip-log-bin"}, userFlag...)
	args = append(args, opts.ServerArgs...)
	if err := run(ctx, opts.Output, script, server, args...); err != nil {
		return fmt.Errorf("failed to create accounts in %s: %w", datadir, err)
	}
	return nil
}

func initMySQL(ctx context.Context, datadir, script string, userFlag []string, opts InitOptions) error {
	server := opts.Server
	if server == "" {
		var err error
		if server, err = FindProgram("mysqld"); err != nil {
			return err
		}
	}
	if _, err := os.Stat(filepath.Join(datadir, "mysql")); err == nil {
		return fmt.Errorf("failed to initialise data directory %s: it holds system tables but no %s; empty it first", datadir, InitMarker)
	}
	f, err := os.CreateTemp(opts.TmpDir, "kura-init-*.sql")
	if err != nil {
		return fmt.Errorf("failed to write account script: %w", err)
	}
	defer func() { _ = os.Remove(f.Name()) }()
	if _, err := f.WriteString(script); err != nil {
		_ = f.Close()
		return fmt.Errorf("failed to write account script: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("failed to write account script: %w", err)
	}
	args := append([]string{"--no-defaults", "--datadir=" + datadir, "--initialize-insecure", "--init-file=" + f.Name()}, userFlag...)
	args = append(args, opts.ServerArgs...)
	if err := run(ctx, opts.Output, "", server, args...); err != nil {
		return fmt.Errorf("failed to initialise data directory %s: %w", datadir, err)
	}
	return nil
}

// privateTmpDir returns dir when set, else a new private directory (mode 0700) and a function
// that removes it.
func privateTmpDir(dir, prefix string) (string, func(), error) {
	if dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return "", nil, fmt.Errorf("failed to create temporary directory %s: %w", dir, err)
		}
		return dir, func() {}, nil
	}
	d, err := os.MkdirTemp("", prefix)
	if err != nil {
		return "", nil, fmt.Errorf("failed to create a temporary directory: %w", err)
	}
	return d, func() { _ = os.RemoveAll(d) }, nil
}

func run(ctx context.Context, out io.Writer, stdin, prog string, args ...string) error {
	cmd := exec.CommandContext(ctx, prog, args...)
	var buf bytes.Buffer
	if out != nil {
		cmd.Stdout, cmd.Stderr = io.MultiWriter(out, &buf), io.MultiWriter(out, &buf)
	} else {
		cmd.Stdout, cmd.Stderr = &buf, &buf
	}
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w: %s", filepath.Base(prog), err, tail(buf.String(), 6000))
	}
	return nil
}

func tail(s string, n int) string {
	if len(s) > n {
		s = "..." + s[len(s)-n:]
	}
	return strings.TrimSpace(s)
}

func writeMarker(datadir string) error {
	return WriteFileDurably(filepath.Join(datadir, InitMarker), []byte("initialised by kura\n"), 0o640)
}
