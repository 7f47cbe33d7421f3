// Command kura is the single Kura binary: the operator, the in-pod agent and init step, and
// the backup and restore runners, each as a subcommand.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/internal/contract"
	"github.com/kura-db/kura/internal/supervise"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kura-db/kura/backup"
	"github.com/kura-db/kura/backup/archive"
	"github.com/kura-db/kura/backup/restore"
	"github.com/kura-db/kura/controllers"
	"github.com/kura-db/kura/internal/agent"
	"github.com/kura-db/kura/internal/engine"
	"github.com/kura-db/kura/internal/scheme"
	"github.com/kura-db/kura/operator"
)

const usage = `kura — MySQL-family databases on Kubernetes

usage: kura <command> [flags]

commands:
  operator      run the operator (controllers, clustering loops)
  init          prepare an instance Pod: per-instance config, data directory, accounts
                (--credentials-dir: the password files, default /var/run/kura/credentials)
  agent         run the instance sidecar on :8080 (health, state, clone and re-clone endpoints)
                (--credentials-dir as for init)
  mysqld        run the database server, turning the Pod's SIGTERM into a switchover
                (kura mysqld [--hold-for=D] [--credentials-dir=DIR] -- <server> <args>)
  backup        run or delete one backup (the backup Jobs: kura backup run|delete --request=<json>), or
                create a schedule's Backup (its CronJob: kura backup create --namespace --schedule --name)
  archive       stream the primary's binary log into backup storage until stopped
                (kura archive --request=<json>; docs/backup.md, "Archive")
  restore plan  show what a restore would read: base backup, archived pieces, bytes
                (kura restore plan --job=<json>; docs/backup.md, "Restore")
  copy-binary   copy this binary to a path (used by the instance Pods' init container)
  version       print the version
`

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "kura:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage)
		return fmt.Errorf("a command is required")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	switch args[0] {
	case "operator":
		return operator.Run(ctx, args[1:])
	case "init":
		dir, err := credentialsDirFlag("kura init", args[1:])
		if err != nil {
			return err
		}
		return agent.RunInit(ctx, dir, restore.Bootstrap)
	case "agent":
		dir, err := credentialsDirFlag("kura agent", args[1:])
		if err != nil {
			return err
		}
		return agent.Run(ctx, fmt.Sprintf(":%d", contract.AgentPort), dir)
	case "mysqld":
		// Not ctx: SIGTERM cancels it, and SIGTERM is exactly when the supervisor must still
		// ask the server whether it may stop.
		return runMySQLD(context.Background(), args[1:])
	case "backup":
		if len(args) > 1 && args[1] == "create" {
			return createBackup(ctx, args[2:])
		}
		return backup.CommandWith(ctx, args[1:], os.Stderr, archive.Prune)
	case "archive":
		return archive.Command(ctx, args[1:], os.Stderr)
	case "restore":
		return restore.Command(ctx, args[1:], os.Stdout, os.Stderr)
	case "copy-binary":
		if len(args) != 2 {
			return fmt.Errorf("usage: kura copy-binary <destination>")
		}
		return copyBinary(args[1])
	case "version":
		fmt.Println(version)
		return nil
	case "help", "-h", "--help":
		fmt.Print(usage)
		return nil
	default:
		fmt.Fprint(os.Stderr, usage)
		return fmt.Errorf("unknown command %q", args[0])
	}
}

// copyBinary copies the running executable to dst atomically, executable by everyone.
func copyBinary(dst string) error {
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("failed to find the running binary: %w", err)
	}
	in, err := os.Open(self)
	if err != nil {
		return fmt.Errorf("failed to open %s: %w", self, err)
	}
	defer in.Close()
	tmp := dst + ".tmp"
	out, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		return fmt.Errorf("failed to create %s: %w", tmp, err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("failed to copy to %s: %w", tmp, err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("failed to write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		return fmt.Errorf("failed to move %s into place: %w", dst, err)
	}
	return nil
}

// credentialsDirFlag parses `--credentials-dir=DIR` (default contract.CredentialsDir): the
// directory holding one password file per key of the credentials Secret.
func credentialsDirFlag(name string, args []string) (string, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	dir := fs.String("credentials-dir", contract.CredentialsDir, "directory of the password files, one per key of the credentials Secret")
	if err := fs.Parse(args); err != nil {
		return "", err
	}
	if fs.NArg() > 0 {
		return "", fmt.Errorf("%s takes no arguments, got %q", name, fs.Args())
	}
	return *dir, nil
}

// runMySQLD is `kura mysqld [--hold-for=D] [--credentials-dir=DIR] -- <server> <args>`. The
// operator password, which the shutdown check needs, is read from DIR when the check runs:
// the server itself gets no credential in its environment or arguments.
func runMySQLD(ctx context.Context, args []string) error {
	hold, credDir, args, err := parseMySQLDArgs(args)
	if err != nil {
		return err
	}
	kind := kurav1alpha1.Engine(os.Getenv(contract.EnvEngine))
	probe := func(ctx context.Context) (bool, string, error) {
		password, err := agent.ReadCredential(credDir, contract.KeyOperatorPassword)
		if err != nil {
			return false, "", err
		}
		tlsConfig, err := engine.LocalTLS(contract.TLSCAFile)
		if err != nil {
			return false, "", err
		}
		return supervise.SQLProbe(kind, contract.MySQLPort, engine.OperatorUser, password, tlsConfig)(ctx)
	}
	logf := func(format string, a ...any) { fmt.Fprintf(os.Stderr, "kura mysqld: "+format+"\n", a...) }
	if _, err := os.Stat(contract.TLSCertFile); err == nil {
		// A renewed server certificate reaches the mounted files; the server reloads them in
		// place (docs/security.md, "TLS").
		reload := func(ctx context.Context) error {
			password, err := agent.ReadCredential(credDir, contract.KeyOperatorPassword)
			if err != nil {
				return err
			}
			return supervise.ReloadTLS(ctx, kind, contract.MySQLPort, engine.OperatorUser, password)
		}
		watch := supervise.WatchFiles([]string{contract.TLSCertFile, contract.TLSKeyFile, contract.TLSCAFile})
		go watch.Run(ctx, 5*time.Second, reload, logf)
	}
	code, err := supervise.Run(ctx, args, probe, supervise.Options{HoldFor: hold, Log: logf})
	if err != nil {
		return err
	}
	os.Exit(code)
	return nil
}

// parseMySQLDArgs splits `[--hold-for=D] [--credentials-dir=DIR] [--] <server> <args>`.
func parseMySQLDArgs(args []string) (hold time.Duration, credDir string, server []string, err error) {
	hold, credDir = 45*time.Second, contract.CredentialsDir
	for len(args) > 0 && args[0] != "--" && strings.HasPrefix(args[0], "--") {
		name, value, _ := strings.Cut(strings.TrimPrefix(args[0], "--"), "=")
		switch name {
		case "hold-for":
			if hold, err = time.ParseDuration(value); err != nil {
				return 0, "", nil, fmt.Errorf("--hold-for: %w", err)
			}
		case "credentials-dir":
			credDir = value
		default:
			return 0, "", nil, fmt.Errorf("kura mysqld: unknown flag %q (want --hold-for, --credentials-dir, then -- and the server command)", args[0])
		}
		args = args[1:]
	}
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	return hold, credDir, args, nil
}

// createBackup is `kura backup create --namespace=N --schedule=S --name=B`, run by a
// BackupSchedule's CronJob with its own ServiceAccount: it creates one Backup.
func createBackup(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("kura backup create", flag.ContinueOnError)
	ns := fs.String("namespace", "", "namespace of the BackupSchedule")
	schedule := fs.String("schedule", "", "name of the BackupSchedule")
	name := fs.String("name", "", "name of the Backup to create (the CronJob's Job name)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *ns == "" || *schedule == "" || *name == "" {
		return fmt.Errorf("usage: kura backup create --namespace=N --schedule=S --name=B")
	}
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return fmt.Errorf("failed to load the Kubernetes configuration: %w", err)
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme.New()})
	if err != nil {
		return fmt.Errorf("failed to create a Kubernetes client: %w", err)
	}
	cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := controllers.CreateScheduledBackup(cctx, c, *ns, *schedule, *name); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "kura backup: created Backup %s/%s for schedule %s\n", *ns, *name, *schedule)
	return nil
}
