package backup

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/backup/s3test"
	"github.com/kura-db/kura/internal/agent"
	"github.com/kura-db/kura/internal/engine"
	"github.com/kura-db/kura/internal/enginetest"
	"github.com/kura-db/kura/internal/tools"
)

var backupMB = flag.Int("backup-mb", 300, "BenchmarkBackupVersusTool: approximate size of the source's table in MB")

// BenchmarkBackupVersusTool measures, in one run on one source, each method's raw tool piped
// to zstd into a local file against `kura backup run` (the real binary, a separate process)
// storing into versitygw on loopback, and the backup process's peak resident memory:
//
//	go test -run '^$' -bench BackupVersusTool -benchtime 1x ./backup/ [-args -backup-mb=300]
func BenchmarkBackupVersusTool(b *testing.B) {
	requireTools(b)
	c := enginetest.Start(b, 1, enginetest.Options{})
	inst := c.Instances[0]
	start := time.Now()
	source(b, inst, *backupMB)
	b.Logf("source filled with about %d MB in %s", *backupMB, time.Since(start).Round(time.Second))
	srv := s3test.Start(b, "backups")
	dir := b.TempDir()
	kura := filepath.Join(dir, "kura")
	_, file, _, _ := runtime.Caller(0)
	build := exec.Command("go", "build", "-o", kura, "./cmd/kura")
	build.Dir = filepath.Join(filepath.Dir(file), "..")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("go build: %v: %s", err, out)
	}
	creds := filepath.Join(dir, "s3")
	_ = os.MkdirAll(creds, 0o700)
	_ = os.WriteFile(filepath.Join(creds, "access-key-id"), []byte(s3test.AccessKey), 0o600)
	_ = os.WriteFile(filepath.Join(creds, "secret-access-key"), []byte(s3test.SecretKey), 0o600)
	pw := filepath.Join(dir, "agent-password")
	_ = os.WriteFile(pw, []byte(enginetest.AgentPassword), 0o600)
	ep := inst.Endpoint(engine.AgentUser, enginetest.AgentPassword)
	api := &agent.Server{Instance: engineAs(b, ep), Token: enginetest.AgentPassword, PodName: "shop-1", DataDir: inst.DataDir, Log: io.Discard,
		Backup: engine.BackupOptions{DefaultsFile: filepath.Join(inst.Dir, "my.cnf"), Endpoint: ep}}
	as := httptest.NewServer(api.Handler())
	b.Cleanup(as.Close)
	var agentPort int
	_, _ = fmt.Sscanf(as.URL[len("http://127.0.0.1:"):], "%d", &agentPort)

	// The raw tools, as an administrator would pipe them.
	acct := tools.Account{User: engine.AgentUser, Password: enginetest.AgentPassword, Host: inst.Host, Port: inst.Port}
	cnfDump := filepath.Join(dir, "dump.cnf")
	_ = os.WriteFile(cnfDump, []byte(tools.OptionFile(tools.Invocation{Op: tools.LogicalDump, Account: acct})), 0o600)
	cnfBackup := filepath.Join(dir, "backup.cnf")
	_ = os.WriteFile(cnfBackup, []byte(tools.OptionFile(tools.Invocation{Op: tools.PhysicalBackup, ServerDefaults: filepath.Join(inst.Dir, "my.cnf"), Account: acct})), 0o600)
	_ = os.MkdirAll(filepath.Join(dir, "xb"), 0o700)
	raw := map[kurav1alpha1.BackupMethod]string{
		kurav1alpha1.BackupMethodLogical: fmt.Sprintf("mariadb-dump --defaults-file=%s --single-transaction --quick --routines --events --triggers --hex-blob --master-data=2 --gtid --all-databases | zstd -q -T2 -3 > %s/raw.sql.zst", cnfDump, dir),
		kurav1alpha1.BackupMethodPhysical: fmt.Sprintf("mariadb-backup --defaults-file=%s --backup --stream=xbstream --target-dir=%s/xb/t --extra-lsndir=%s/xb/m --tmpdir=%s/xb 2>/dev/null | zstd -q -T2 -3 > %s/raw.xb.zst",
			cnfBackup, dir, dir, dir, dir),
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, m := range []kurav1alpha1.BackupMethod{kurav1alpha1.BackupMethodLogical, kurav1alpha1.BackupMethodPhysical} {
			t0 := time.Now()
			if out, err := exec.Command("bash", "-c", "set -o pipefail; "+raw[m]).CombinedOutput(); err != nil {
				b.Fatalf("raw %s: %v: %s", m, err, out)
			}
			rawTime := time.Since(t0)
			fi, _ := os.Stat(filepath.Join(dir, map[kurav1alpha1.BackupMethod]string{kurav1alpha1.BackupMethodLogical: "raw.sql.zst", kurav1alpha1.BackupMethodPhysical: "raw.xb.zst"}[m]))
			job := Job{Request: Request{Name: fmt.Sprintf("bench-%s-%d", m, i), Namespace: "bench", Cluster: "shop", Lineage: "lineage-1",
				Engine: kurav1alpha1.EngineMariaDB, Method: m, Compression: kurav1alpha1.CompressionZstd,
				Source: SourceInstance{Pod: "shop-1", Host: inst.Host, SQLPort: inst.Port, AgentPort: agentPort}},
				Storage:           StorageConfig{S3: &S3Location{Endpoint: srv.Endpoint, Region: "us-east-1", Bucket: "backups", PathStyle: true, CredentialsDir: creds}},
				AgentPasswordFile: pw}
			req, _ := json.Marshal(job)
			cmd := exec.Command(kura, "backup", "run", "--request="+string(req), "--termination-log="+filepath.Join(dir, "summary.json"))
			cmd.Stderr = io.Discard
			t1 := time.Now()
			if err := cmd.Run(); err != nil {
				summary, _ := os.ReadFile(filepath.Join(dir, "summary.json"))
				b.Fatalf("kura backup run %s: %v: %s", m, err, summary)
			}
			kuraTime := time.Since(t1)
			rss := cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss // KiB
			var sum Summary
			sb, _ := os.ReadFile(filepath.Join(dir, "summary.json"))
			_ = json.Unmarshal(sb, &sum)
			b.Logf("%s: raw tool | zstd > file: %s (%d MB); kura backup run → S3: %s (%d MB stored), ratio %.2f×, peak RSS %d MiB",
				m, rawTime.Round(time.Millisecond), fi.Size()>>20, kuraTime.Round(time.Millisecond), sum.Size>>20,
				rawTime.Seconds()/kuraTime.Seconds(), rss>>10)
			b.ReportMetric(rawTime.Seconds()/kuraTime.Seconds(), string(m)+"-ratio")
			b.ReportMetric(float64(rss>>10), string(m)+"-rss-MiB")
		}
	}
	_ = context.Background
}
