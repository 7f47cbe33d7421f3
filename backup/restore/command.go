package restore

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/kura-db/kura/backup"
	"github.com/kura-db/kura/internal/agent"
	"github.com/kura-db/kura/internal/contract"
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

// Command is `kura restore plan --job=<json>`: the dry run, which reads the backup's manifest
// and the archive's metadata and reports the plan (base, pieces, bytes) as its termination
// message and on stdout, touching nothing.
func Command(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "plan" {
		return errors.New("usage: kura restore plan --job=<json> [--termination-log=/dev/termination-log]")
	}
	fs := flag.NewFlagSet("kura restore plan", flag.ContinueOnError)
	fs.SetOutput(stderr)
	jobJSON := fs.String("job", "", "the restore to plan (JSON, written by the operator)")
	term := fs.String("termination-log", TerminationLog, "where the plan is written for the operator")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	var job Job
	if err := json.Unmarshal([]byte(*jobJSON), &job); err != nil {
		return fmt.Errorf("failed to read --job: %w", err)
	}
	job.DryRun = true
	res, err := bootstrap(ctx, job, "", Deps{Log: stderr})
	writeResult(res, *term, stderr)
	b, _ := json.MarshalIndent(res, "", "  ")
	fmt.Fprintln(stdout, string(b))
	return err
}
