package tools

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
)

// Runner runs invocations. The zero value looks programs up with Find and makes private
// directories under os.TempDir().
type Runner struct {
	// Programs overrides program paths by name ("mariadb-backup": "/opt/…").
	Programs map[string]string
	// TmpDir is where private directories are made (default os.TempDir()).
	TmpDir string
	// Log receives a copy of the program's stderr (by default only its tail is kept, for
	// the error).
	Log io.Writer
}

// Run is one finished run.
type Run struct {
	// Program is the path that ran.
	Program string
	// Stderr is the tail of the program's stderr (at most 64 KiB).
	Stderr string
}

// Options of one run.
type Options struct {
	Stdin  io.Reader
	Stdout io.Writer
	// After is called with the private directory once the program succeeded, before the
	// directory is removed (to read metadata the program left there).
	After func(Private) error
}

// tailSize bounds the stderr kept for errors: mariadb-backup logs a line per file.
const tailSize = 64 << 10

// Run runs inv: private directory, option file, program, stderr tail in the error.
func (r Runner) Run(ctx context.Context, inv Invocation, o Options) (Run, error) {
	name, _, err := Command(inv, Private{})
	if err != nil {
		return Run{}, err
	}
	prog := r.Programs[name]
	if prog == "" {
		if prog, err = Find(name); err != nil {
			return Run{}, err
		}
	}
	res := Run{Program: prog}
	dir, err := os.MkdirTemp(r.TmpDir, "kura-"+string(inv.Op)+"-")
	if err != nil {
		return res, fmt.Errorf("failed to create a private directory: %w", err)
	}
	defer func() { _ = os.RemoveAll(dir) }()
	p := Private{Dir: dir}
	for _, d := range []string{p.Tmp(), p.Meta()} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return res, fmt.Errorf("failed to create %s: %w", d, err)
		}
	}
	if err := os.WriteFile(p.OptionFile(), []byte(OptionFile(inv)), 0o600); err != nil {
		return res, fmt.Errorf("failed to write %s: %w", p.OptionFile(), err)
	}
	if inv.Dir != "" && inv.Op == Extract {
		if err := os.MkdirAll(inv.Dir, 0o750); err != nil {
			return res, fmt.Errorf("failed to create %s: %w", inv.Dir, err)
		}
	}
	_, args, _ := Command(inv, p)
	cmd := exec.CommandContext(ctx, prog, args...)
	cmd.Stdin = o.Stdin
	tail := &tailBuffer{max: tailSize}
	var stderr io.Writer = tail
	if r.Log != nil {
		stderr = io.MultiWriter(r.Log, tail)
	}
	cmd.Stderr = stderr
	cmd.Stdout = o.Stdout
	if o.Stdout == nil {
		// mbstream and prepare log to stdout as well.
		cmd.Stdout = stderr
	}
	err = cmd.Run()
	res.Stderr = tail.String()
	if err != nil {
		return res, fmt.Errorf("failed to run %s: %w: %s", filepath.Base(prog), err, lastLines(res.Stderr, 8))
	}
	if inv.Op == PhysicalBackup {
		if missing := missingPrivileges(res.Stderr); missing != "" {
			return res, fmt.Errorf("failed to run %s: it reports missing privileges: %s", filepath.Base(prog), missing)
		}
	}
	if o.After != nil {
		if err := o.After(p); err != nil {
			return res, err
		}
	}
	return res, nil
}

// missingPrivileges returns mariadb-backup's "missing required privilege" lines.
func missingPrivileges(log string) string {
	var out []string
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, "missing required privilege") {
			out = append(out, strings.TrimSpace(l))
		}
	}
	return strings.Join(out, "; ")
}

// lastLines returns the last n non-empty lines of s, joined by " | ".
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	var out []string
	for i := len(lines) - 1; i >= 0 && len(out) < n; i-- {
		if l := strings.TrimSpace(lines[i]); l != "" {
			out = append(out, l)
		}
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return strings.Join(out, " | ")
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}
