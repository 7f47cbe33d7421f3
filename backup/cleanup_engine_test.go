package backup

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/backup/s3test"
	"github.com/kura-db/kura/backup/storage"
	"github.com/kura-db/kura/internal/enginetest"
)

// bucket is a test's S3 server seen two ways: as the backup storage, and through a plain
// client that shows what the storage hides (unfinished multipart uploads).
type bucket struct {
	st  *storage.S3
	raw *minio.Core
}

func newBucket(t *testing.T) bucket {
	t.Helper()
	srv := s3test.Start(t, "backups")
	st, err := storage.NewS3(storage.S3Config{Endpoint: srv.Endpoint, Region: "us-east-1", Bucket: "backups", PathStyle: true,
		AccessKeyID: s3test.AccessKey, SecretAccessKey: s3test.SecretKey, PartSize: 5 << 20})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := minio.NewCore(strings.TrimPrefix(srv.Endpoint, "http://"), &minio.Options{
		Creds: credentials.NewStaticV4(s3test.AccessKey, s3test.SecretKey, ""), Region: "us-east-1", BucketLookup: minio.BucketLookupPath})
	if err != nil {
		t.Fatal(err)
	}
	return bucket{st: st, raw: raw}
}

// left lists every object and unfinished upload under prefix.
func (b bucket) left(t *testing.T, prefix string) []string {
	t.Helper()
	ctx := context.Background()
	var out []string
	objs, err := b.st.List(ctx, prefix)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		out = append(out, "object "+o.Key)
	}
	keys, err := b.st.Incomplete(ctx, prefix)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		out = append(out, "unfinished upload "+k)
	}
	return out
}

// failingCreate is storage whose conditional create (the manifest) fails.
type failingCreate struct{ storage.Storage }

func (failingCreate) Create(context.Context, string, []byte) error {
	return errors.New("injected: the manifest could not be written")
}

// cancelAfter is storage whose upload cancels the run once n bytes went through, as a
// SIGTERM to the Job would: the upload is cut off mid-way, with parts already stored.
type cancelAfter struct {
	storage.Storage
	n      int64
	cancel context.CancelFunc
}

func (c cancelAfter) Put(ctx context.Context, key string, r io.Reader, size int64) (storage.Info, error) {
	return c.Storage.Put(ctx, key, &cancellingReader{r: r, left: c.n, cancel: c.cancel}, size)
}

type cancellingReader struct {
	r      io.Reader
	left   int64
	cancel context.CancelFunc
	done   atomic.Bool
}

func (c *cancellingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if c.left -= int64(n); c.left <= 0 && !c.done.Swap(true) {
		c.cancel()
	}
	return n, err
}

// Runs that fail after storing something leave nothing in a real S3 bucket: not the data
// object of a run whose manifest could not be written, not the parts of an upload stopped
// half-way; and `kura backup cleanup` removes what a killed run left (a data object without a
// manifest, an unfinished upload) but never touches a complete backup.
func TestFailedRunsLeaveNothingInS3(t *testing.T) {
	requireTools(t)
	c := enginetest.Start(t, 1, enginetest.Options{})
	inst := c.Instances[0]
	source(t, inst, 1)
	// 8 MB that do not compress: the upload needs more than one part.
	enginetest.Exec(t, inst.DB(), "CREATE TABLE app.r (id INT PRIMARY KEY, b VARBINARY(1024))",
		"INSERT INTO app.r SELECT seq, RANDOM_BYTES(1024) FROM app.seq_1_to_8000")
	b := newBucket(t)
	ctx := context.Background()
	d := Deps{AgentPassword: enginetest.AgentPassword, Log: enginetest.Log{T: t}}
	req := request(inst, "no-manifest", kurav1alpha1.BackupMethodLogical)
	l := Layout{Namespace: req.Namespace, Cluster: req.Cluster, Lineage: req.Lineage}

	// The data object completes, the manifest fails: the data goes.
	if _, err := Run(ctx, req, failingCreate{b.st}, d); err == nil || !strings.Contains(err.Error(), "injected") {
		t.Fatalf("the run must fail with the manifest's error: %v", err)
	}
	if left := b.left(t, l.BackupPrefix(req.Name)); len(left) != 0 {
		t.Errorf("a run whose manifest failed left %v", left)
	}

	// Stopped after 5.5 MB, as a SIGTERM would: nothing stays (the client aborts its own
	// upload where it can; the run removes whatever is left).
	req.Name = "stopped"
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if _, err := Run(rctx, req, cancelAfter{Storage: b.st, n: 11 << 19, cancel: cancel}, d); err == nil {
		t.Fatal("a stopped run must fail")
	}
	if left := b.left(t, l.BackupPrefix(req.Name)); len(left) != 0 {
		t.Errorf("a stopped run left %v", left)
	}

	// What a killed run leaves (it could not clean up): a data object without a manifest
	// and an upload that never completed.
	killed := l.BackupPrefix("killed")
	if _, err := b.st.Put(ctx, killed+"data.sql.zst", strings.NewReader("half"), -1); err != nil {
		t.Fatal(err)
	}
	id, err := b.raw.NewMultipartUpload(ctx, "backups", killed+"data.kuracopy.zst", minio.PutObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	part := make([]byte, 5<<20)
	_, _ = rand.Read(part)
	if _, err := b.raw.PutObjectPart(ctx, "backups", killed+"data.kuracopy.zst", id, 1, bytes.NewReader(part), int64(len(part)), minio.PutObjectPartOptions{}); err != nil {
		t.Fatal(err)
	}
	if left := b.left(t, killed); len(left) != 2 {
		t.Fatalf("the killed run's leftovers were not set up: %v", left)
	}
	// A complete backup next to it.
	req.Name = "complete"
	if _, err := Run(ctx, req, b.st, d); err != nil {
		t.Fatal(err)
	}
	if err := Cleanup(ctx, b.st, l, "killed", enginetest.Log{T: t}); err != nil {
		t.Fatal(err)
	}
	if left := b.left(t, killed); len(left) != 0 {
		t.Errorf("cleanup left %v", left)
	}
	if err := Cleanup(ctx, b.st, l, "complete", enginetest.Log{T: t}); err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(ctx, b.st, l, "complete"); err != nil {
		t.Fatalf("cleanup must keep a backup with a manifest: %v", err)
	}
}

// A storage that does not answer fails the run before anything is read from the source,
// saying which setting to check.
func TestUnreachableEndpointSaysWhatToCheck(t *testing.T) {
	if testing.Short() {
		t.Skip("opens a connection; not run with -short")
	}
	dir := t.TempDir()
	for name, v := range map[string]string{"access-key-id": "id", "secret-access-key": "secret"} {
		if err := writeFile(dir+"/"+name, v); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, err := OpenStorage(ctx, StorageConfig{S3: &S3Location{Endpoint: "http://127.0.0.1:1", Bucket: "backups", PathStyle: true, CredentialsDir: dir}})
	if err == nil || !strings.Contains(err.Error(), "check spec.storage.s3.endpoint") {
		t.Fatalf("an unreachable endpoint: %v", err)
	}
	t.Logf("failed after %s: %v", time.Since(start).Round(time.Millisecond), err)
}

func writeFile(path, content string) error { return os.WriteFile(path, []byte(content), 0o600) }
