package restore

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/backup"
	"github.com/kura-db/kura/internal/agent"
	"github.com/kura-db/kura/internal/contract"
	"github.com/kura-db/kura/internal/engine"
	"github.com/kura-db/kura/internal/mycnf"
)

// TerminationLog is where a container's termination message goes.
const TerminationLog = "/dev/termination-log"

// ReadJob reads a restore Job from a file.
func ReadJob(path string) (Job, error) {
	var job Job
	b, err := os.ReadFile(path)
	if err != nil {
		return job, fmt.Errorf("failed to read the restore job: %w", err)
	}
	if err := json.Unmarshal(b, &job); err != nil {
		return job, fmt.Errorf("failed to read the restore job %s: %w", path, err)
	}
	return job, nil
}

// Bootstrap is `kura init`'s restore of the first instance of a cluster with spec.bootstrap
// (agent.RestoreFunc): it runs the Job in contract.BootstrapFile into datadir with the
// cluster's accounts and writes the Result as the container's termination message.
func Bootstrap(ctx context.Context, datadir string, e agent.Env) error {
	job, err := ReadJob(contract.BootstrapFile)
	if err != nil {
		return err
	}
	if job.Engine == "" {
		job.Engine = e.Engine
	}
	res, err := bootstrap(ctx, job, datadir, Deps{DefaultsFile: contract.ConfigFile, Credentials: e.Credentials(), Log: os.Stderr})
	writeResult(res, TerminationLog, os.Stderr)
	return err
}

func bootstrap(ctx context.Context, job Job, datadir string, d Deps) (Result, error) {
	st, err := backup.OpenStorage(ctx, job.Storage)
	if err != nil {
		return Result{Plan: Plan{Backup: job.Backup, Target: job.Target.String()}, Error: err.Error()}, err
	}
	return Run(ctx, job, st, datadir, d)
}

func writeResult(res Result, path string, log io.Writer) {
	if err := os.WriteFile(path, res.Encode(), 0o644); err != nil {
		fmt.Fprintf(log, "kura restore: failed to write %s: %v\n", path, err)
	}
}

// Command is `kura restore plan|verify --job=<json>`.
//
// plan is the dry run: it reads the backup's manifest and the archive's metadata and reports
// the plan (base, pieces, bytes), touching nothing.
//
// verify restores the backup into --data-dir, a scratch directory, through the path a real
// restore takes, with throw-away accounts, and reads every table back (Verify).
//
// Both write the Result as the termination message and on stdout.
func Command(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	usage := errors.New("usage: kura restore plan|verify --job=<json> [--data-dir=<scratch>] [--termination-log=/dev/termination-log]")
	if len(args) == 0 || (args[0] != "plan" && args[0] != "verify") {
		return usage
	}
	fs := flag.NewFlagSet("kura restore "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	jobJSON := fs.String("job", "", "the restore (JSON, written by the operator)")
	dataDir := fs.String("data-dir", "", "verify: the scratch data directory")
	term := fs.String("termination-log", TerminationLog, "where the result is written for the operator")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	var job Job
	if err := json.Unmarshal([]byte(*jobJSON), &job); err != nil {
		return fmt.Errorf("failed to read --job: %w", err)
	}
	var res Result
	var err error
	if args[0] == "plan" {
		job.DryRun = true
		res, err = bootstrap(ctx, job, "", Deps{Log: stderr})
	} else {
		res, err = verifyJob(ctx, job, *dataDir, stderr)
	}
	writeResult(res, *term, stderr)
	b, _ := json.MarshalIndent(res, "", "  ")
	fmt.Fprintln(stdout, string(b))
	return err
}

// verifyJob runs Verify with a server configuration rendered for the engine and accounts
// with random passwords (the scratch instance is thrown away and never reachable).
func verifyJob(ctx context.Context, job Job, dataDir string, log io.Writer) (Result, error) {
	if dataDir == "" {
		return Result{}, errors.New("kura restore verify: --data-dir is required")
	}
	st, err := backup.OpenStorage(ctx, job.Storage)
	if err != nil {
		return Result{Plan: Plan{Backup: job.Backup, Target: job.Target.String()}, Error: err.Error()}, err
	}
	dir, err := os.MkdirTemp("", "kura-verify-conf-")
	if err != nil {
		return Result{}, err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	defaults, err := ScratchConfig(job.Engine, dir)
	if err != nil {
		return Result{}, err
	}
	return Verify(ctx, job, st, dataDir, Deps{DefaultsFile: defaults, Credentials: ScratchCredentials(), Log: log})
}

// ScratchConfig writes the server option file of a scratch instance (the cluster defaults
// of the engine, one instance) into dir and returns its path.
func ScratchConfig(kind kurav1alpha1.Engine, dir string) (string, error) {
	text, err := mycnf.Render(&kurav1alpha1.MySQLCluster{Spec: kurav1alpha1.MySQLClusterSpec{Engine: kind}})
	if err != nil {
		return "", err
	}
	text = strings.Replace(text, mycnf.IncludeLine(), mycnf.Instance(kind, 0, "localhost"), 1)
	path := filepath.Join(dir, "my.cnf")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		return "", fmt.Errorf("failed to write %s: %w", path, err)
	}
	return path, nil
}

// ScratchCredentials are random passwords for a scratch instance's accounts.
func ScratchCredentials() engine.Credentials {
	pw := func() string {
		b := make([]byte, 18)
		_, _ = rand.Read(b)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	return engine.Credentials{Operator: pw(), Replication: pw(), Agent: pw(), Root: pw(), Admin: pw(), App: pw(), Database: "kura_verify"}
}
