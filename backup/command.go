package backup

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kura-db/kura/backup/storage"
	"github.com/kura-db/kura/internal/agent"
	"github.com/kura-db/kura/internal/contract"
	"github.com/kura-db/kura/internal/engine"
)

// StorageConfig says where the Job stores: an S3 bucket or a mounted directory. Secrets
// are read from files (the Job mounts them from Secrets).
type StorageConfig struct {
	S3  *S3Location  `json:"s3,omitempty"`
	Dir *DirLocation `json:"dir,omitempty"`
}

// S3Location is a bucket; CredentialsDir holds the files access-key-id and
// secret-access-key; CAFile optionally a PEM bundle.
type S3Location struct {
	Endpoint       string `json:"endpoint"`
	Region         string `json:"region,omitempty"`
	Bucket         string `json:"bucket"`
	Prefix         string `json:"prefix,omitempty"`
	PathStyle      bool   `json:"pathStyle,omitempty"`
	CredentialsDir string `json:"credentialsDir"`
	CAFile         string `json:"caFile,omitempty"`
}

// DirLocation is a directory on a mounted claim.
type DirLocation struct {
	Root    string `json:"root"`
	Claim   string `json:"claim"`
	SubPath string `json:"subPath,omitempty"`
}

// Job is what `kura backup run --request=<json>` is given: the backup, where to store it
// and where the agent password file is.
type Job struct {
	Request
	Storage StorageConfig `json:"storage"`
	// AgentPasswordFile holds the agent account's password; AgentTokenFile the agents' API
	// token (a physical backup reads the copy from the source's agent).
	AgentPasswordFile string `json:"agentPasswordFile"`
	AgentTokenFile    string `json:"agentTokenFile,omitempty"`
	// PruneArchiveBelow, on a delete, is the GTID position of the oldest backup of the
	// lineage that is kept: the binary log archive's pieces wholly below it go with the
	// deleted backup (dba rule 18). Empty: the archive is left alone.
	PruneArchiveBelow string `json:"pruneArchiveBelow,omitempty"`
}

// Pruner deletes a lineage's archived binary log below a GTID position (archive.Prune; the
// archive package builds on this one, so the command is given it).
type Pruner func(ctx context.Context, st storage.Storage, l Layout, keep string, log io.Writer) (int, error)

// OpenStorage opens the configured storage; for S3 it checks the bucket and credentials.
func OpenStorage(ctx context.Context, c StorageConfig) (storage.Storage, error) {
	switch {
	case c.S3 != nil && c.Dir == nil:
		read := func(name string) (string, error) {
			b, err := os.ReadFile(filepath.Join(c.S3.CredentialsDir, name))
			if err != nil {
				return "", fmt.Errorf("failed to read the S3 credentials: %w (check the Secret and keys named in spec.storage.s3.credentialsSecret)", err)
			}
			return strings.TrimSpace(string(b)), nil
		}
		id, err := read("access-key-id")
		if err != nil {
			return nil, err
		}
		secret, err := read("secret-access-key")
		if err != nil {
			return nil, err
		}
		var ca []byte
		if c.S3.CAFile != "" {
			if ca, err = os.ReadFile(c.S3.CAFile); err != nil {
				return nil, fmt.Errorf("failed to read the S3 CA bundle: %w", err)
			}
		}
		s, err := storage.NewS3(storage.S3Config{Endpoint: c.S3.Endpoint, Region: c.S3.Region, Bucket: c.S3.Bucket, Prefix: c.S3.Prefix,
			PathStyle: c.S3.PathStyle, AccessKeyID: id, SecretAccessKey: secret, CABundle: ca})
		if err != nil {
			return nil, err
		}
		cctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		if err := s.Check(cctx); err != nil {
			return nil, err
		}
		return s, nil
	case c.Dir != nil && c.S3 == nil:
		if fi, err := os.Stat(filepath.Dir(filepath.Clean(c.Dir.Root))); err != nil || !fi.IsDir() {
			return nil, fmt.Errorf("failed to open backup volume %s: %v", c.Dir.Claim, err)
		}
		if err := os.MkdirAll(c.Dir.Root, 0o750); err != nil {
			return nil, fmt.Errorf("failed to open backup volume %s: %w", c.Dir.Claim, err)
		}
		return &storage.Dir{Root: c.Dir.Root, Claim: c.Dir.Claim, SubPath: c.Dir.SubPath}, nil
	default:
		return nil, errors.New("invalid storage: set exactly one of s3 or dir")
	}
}

// Summary is the Job's termination message: what the operator copies into the Backup's
// status. The whole record is the manifest in storage.
type Summary struct {
	Location   string    `json:"location,omitempty"`
	Size       int64     `json:"size,omitempty"`
	SHA256     string    `json:"sha256,omitempty"`
	GTID       string    `json:"gtid,omitempty"`
	Binlog     string    `json:"binlog,omitempty"`
	Snapshot   time.Time `json:"snapshot,omitzero"`
	Engine     string    `json:"engine,omitempty"`
	Version    string    `json:"version,omitempty"`
	Source     string    `json:"source,omitempty"`
	Error      string    `json:"error,omitempty"`
	DurationMS int64     `json:"durationMS,omitempty"`
}

// maxSummary is the kubelet's limit for a termination message.
const maxSummary = 4096

// SummaryOf returns the summary of a finished (or failed) backup.
func SummaryOf(st storage.Storage, l Layout, m Manifest, err error) Summary {
	s := Summary{Source: m.Source.Instance, Engine: string(m.Engine), Version: m.EngineVersion}
	if err != nil {
		s.Error = err.Error()
		return s
	}
	s.Location = st.Location(l.BackupPrefix(m.Name))
	if len(m.Objects) > 0 {
		s.Size, s.SHA256 = m.Objects[0].Size, m.Objects[0].SHA256
	}
	s.GTID, s.Snapshot = m.Consistent.GTIDSet, m.Consistent.Time
	if m.Consistent.BinlogFile != "" {
		s.Binlog = fmt.Sprintf("%s:%d", m.Consistent.BinlogFile, m.Consistent.BinlogPosition)
	}
	s.DurationMS = m.Completed.Sub(m.Started).Milliseconds()
	return s
}

// Encode returns the summary as JSON within the termination message's limit (the error is
// shortened first).
func (s Summary) Encode() []byte {
	for {
		b, _ := json.Marshal(s)
		if len(b) <= maxSummary || len(s.Error) < 100 {
			return b
		}
		s.Error = s.Error[:len(s.Error)/2] + "…"
	}
}

// Command is CommandWith without archive pruning.
func Command(ctx context.Context, args []string, stderr io.Writer) error {
	return CommandWith(ctx, args, stderr, nil)
}

// CommandWith is `kura backup run|delete|cleanup --request=<json>`; prune runs a delete's
// PruneArchiveBelow.
func CommandWith(ctx context.Context, args []string, stderr io.Writer, prune Pruner) error {
	if len(args) == 0 || (args[0] != "run" && args[0] != "delete" && args[0] != "cleanup") {
		return errors.New("usage: kura backup run|delete|cleanup --request=<json> [--termination-log=/dev/termination-log]")
	}
	fs := flag.NewFlagSet("kura backup "+args[0], flag.ContinueOnError)
	reqJSON := fs.String("request", "", "the backup to take (JSON, written by the operator)")
	term := fs.String("termination-log", "/dev/termination-log", "where the summary is written for the operator")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	var job Job
	if err := json.Unmarshal([]byte(*reqJSON), &job); err != nil {
		return fmt.Errorf("failed to read --request: %w", err)
	}
	l := Layout{Namespace: job.Namespace, Cluster: job.Cluster, Lineage: job.Lineage}
	switch args[0] {
	case "delete":
		return deleteJob(ctx, job, l, stderr, prune)
	case "cleanup":
		return cleanupJob(ctx, job, l, stderr)
	}
	m, st, err := runJob(ctx, job, stderr)
	s := SummaryOf(st, l, m, err)
	if werr := os.WriteFile(*term, s.Encode(), 0o644); werr != nil {
		fmt.Fprintf(stderr, "kura backup: failed to write %s: %v\n", *term, werr)
	}
	return err
}

func runJob(ctx context.Context, job Job, log io.Writer) (Manifest, storage.Storage, error) {
	m := Manifest{Name: job.Name, Source: Source{Instance: job.Source.Pod}, Engine: job.Engine}
	b, err := os.ReadFile(job.AgentPasswordFile)
	if err != nil {
		return m, nil, fmt.Errorf("failed to read the agent password: %w", err)
	}
	password := strings.TrimSpace(string(b))
	st, err := OpenStorage(ctx, job.Storage)
	if err != nil {
		return m, nil, err
	}
	token := password // an operator of an earlier version gives no token file
	if job.AgentTokenFile != "" {
		t, err := os.ReadFile(job.AgentTokenFile)
		if err != nil {
			return m, nil, fmt.Errorf("failed to read the agent token: %w", err)
		}
		token = strings.TrimSpace(string(t))
	}
	client := agent.NewClient(job.Source.Host, job.Source.AgentPort, token)
	client.Legacy = password
	if job.Source.AgentTLS {
		ca, err := os.ReadFile(contract.TLSCAFile)
		if err != nil {
			return m, nil, fmt.Errorf("failed to read the CA to verify the source's agent: %w", err)
		}
		cfg, err := engine.ClientTLS(ca, job.Source.Host)
		if err != nil {
			return m, nil, fmt.Errorf("%s: %w", contract.TLSCAFile, err)
		}
		client.UseTLS(cfg)
	}
	// The frames undecoded (no gzip on the wire): the backup compresses them with zstd itself.
	d := Deps{AgentPassword: password, Log: log, Copy: client.CloneFrames}
	m, err = Run(ctx, job.Request, st, d)
	return m, st, err
}

// deleteJob deletes every stored object of the backup, the manifest first, so a backup
// whose deletion is interrupted no longer exists.
func deleteJob(ctx context.Context, job Job, l Layout, log io.Writer, prune Pruner) error {
	st, err := openLineage(ctx, job, l)
	if err != nil {
		return err
	}
	if job.PruneArchiveBelow != "" && prune != nil {
		defer func() {
			// The backup is gone whatever happens here; a failed prune is retried by the next.
			if _, err := prune(ctx, st, l, job.PruneArchiveBelow, log); err != nil {
				fmt.Fprintf(log, "kura backup: failed to prune the archive below %s: %v\n", job.PruneArchiveBelow, err)
			}
		}()
	}
	if err := st.Delete(ctx, l.ManifestKey(job.Name)); err != nil {
		return err
	}
	n, err := storage.DeletePrefix(ctx, st, l.BackupPrefix(job.Name))
	if err != nil {
		return err
	}
	fmt.Fprintf(log, "kura backup: deleted %s (%d objects)\n", st.Location(l.BackupPrefix(job.Name)), n+1)
	return nil
}

// cleanupJob removes what a failed or killed run left under the backup's prefix: data
// objects and unfinished uploads. A manifest there means a complete backup (its run finished
// but could not report, or it is another run's under the same name): it is left alone.
func cleanupJob(ctx context.Context, job Job, l Layout, log io.Writer) error {
	st, err := openLineage(ctx, job, l)
	if err != nil {
		return err
	}
	return Cleanup(ctx, st, l, job.Name, log)
}

// openLineage checks the layout and opens the job's storage.
func openLineage(ctx context.Context, job Job, l Layout) (storage.Storage, error) {
	if err := l.Validate(); err != nil {
		return nil, err
	}
	return OpenStorage(ctx, job.Storage)
}

// Cleanup removes the objects of a backup that has no manifest (see cleanupJob).
func Cleanup(ctx context.Context, st storage.Storage, l Layout, name string, log io.Writer) error {
	prefix := l.BackupPrefix(name)
	if _, err := ReadManifest(ctx, st, l, name); err == nil {
		fmt.Fprintf(log, "kura backup: %s has a manifest: a complete backup, kept\n", st.Location(prefix))
		return nil
	} else if !errors.Is(err, storage.ErrNotFound) {
		return err
	}
	n, err := storage.DeletePrefix(ctx, st, prefix)
	if err != nil {
		return err
	}
	fmt.Fprintf(log, "kura backup: removed %d leftover objects of a failed run at %s\n", n, st.Location(prefix))
	return nil
}
