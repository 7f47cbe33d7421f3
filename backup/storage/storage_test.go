package storage

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"testing/iotest"

	"github.com/kura-db/kura/backup/s3test"
)

// conformance is what every Storage must do; it runs against a real S3 server and a
// directory.
func conformance(t *testing.T, s Storage) {
	ctx := context.Background()
	t.Run("put of unknown size, get, list", func(t *testing.T) {
		data := make([]byte, 5<<20+123) // several parts at the test's part size
		_, _ = rand.Read(data)
		info, err := s.Put(ctx, "a/b/data.zst", bytes.NewReader(data), -1)
		if err != nil || info.Size != int64(len(data)) {
			t.Fatalf("put: %+v %v", info, err)
		}
		if _, err := s.Put(ctx, "a/b/manifest.json", strings.NewReader("{}"), 2); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Put(ctx, "a/c/other", strings.NewReader("x"), -1); err != nil {
			t.Fatal(err)
		}
		r, err := s.Get(ctx, "a/b/data.zst")
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(r)
		_ = r.Close()
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("get: %d bytes, %v", len(got), err)
		}
		list, err := s.List(ctx, "a/b/")
		if err != nil || len(list) != 2 || list[0].Key != "a/b/data.zst" || list[1].Key != "a/b/manifest.json" || list[0].Size != int64(len(data)) {
			t.Fatalf("list: %+v %v", list, err)
		}
		if n, err := DeletePrefix(ctx, s, "a/"); err != nil || n != 3 {
			t.Fatalf("delete prefix: %d %v", n, err)
		}
		if list, err := s.List(ctx, "a/"); err != nil || len(list) != 0 {
			t.Fatalf("after delete: %+v %v", list, err)
		}
	})
	t.Run("missing objects", func(t *testing.T) {
		if _, err := s.Get(ctx, "nothing/here"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("get of a missing object: %v", err)
		}
		if err := s.Delete(ctx, "nothing/here"); err != nil {
			t.Fatalf("delete of a missing object: %v", err)
		}
		if list, err := s.List(ctx, "nothing/"); err != nil || len(list) != 0 {
			t.Fatalf("list of nothing: %+v %v", list, err)
		}
	})
	t.Run("a failed upload leaves nothing", func(t *testing.T) {
		r := io.MultiReader(bytes.NewReader(make([]byte, 3<<20)), iotest.ErrReader(errors.New("tool died")))
		if _, err := s.Put(ctx, "x/partial", r, -1); err == nil {
			t.Fatal("an upload whose reader fails must fail")
		}
		if list, err := s.List(ctx, "x/"); err != nil || len(list) != 0 {
			t.Fatalf("a failed upload left %+v %v", list, err)
		}
	})
	t.Run("conditional create", func(t *testing.T) {
		var wg sync.WaitGroup
		errs := make([]error, 4)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = s.Create(ctx, "lease.json", []byte(`{"n":1}`))
			}()
		}
		wg.Wait()
		won := 0
		for _, err := range errs {
			switch {
			case err == nil:
				won++
			case !errors.Is(err, ErrExists):
				t.Fatalf("create: %v", err)
			}
		}
		if won != 1 {
			t.Fatalf("%d creators won, want exactly 1", won)
		}
		_ = s.Delete(ctx, "lease.json")
	})
}

func TestDirConformance(t *testing.T) {
	conformance(t, &Dir{Root: t.TempDir(), Claim: "backups"})
}

func TestS3Conformance(t *testing.T) {
	srv := s3test.Start(t, "kura")
	s, err := NewS3(S3Config{Endpoint: srv.Endpoint, Region: "us-east-1", Bucket: "kura", Prefix: "team/", PathStyle: true,
		AccessKeyID: s3test.AccessKey, SecretAccessKey: s3test.SecretKey, PartSize: 5 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	conformance(t, s)
	if got := s.Location("a/b"); got != "s3://kura/team/a/b" {
		t.Errorf("location %q", got)
	}
}

// A missing bucket and refused credentials each fail with a message that says what to fix.
func TestS3ExplainsBadBucketAndCredentials(t *testing.T) {
	srv := s3test.Start(t, "kura")
	cfg := S3Config{Endpoint: srv.Endpoint, Region: "us-east-1", Bucket: "no-such-bucket", PathStyle: true,
		AccessKeyID: s3test.AccessKey, SecretAccessKey: s3test.SecretKey}
	s, _ := NewS3(cfg)
	if err := s.Check(context.Background()); err == nil || !strings.Contains(err.Error(), `bucket "no-such-bucket" does not exist`) {
		t.Fatalf("missing bucket: %v", err)
	}
	cfg.Bucket, cfg.SecretAccessKey = "kura", "wrong"
	s, _ = NewS3(cfg)
	if err := s.Check(context.Background()); err == nil || !strings.Contains(err.Error(), "credentials were refused") {
		t.Fatalf("wrong credentials: %v", err)
	}
	if _, err := NewS3(S3Config{Endpoint: "ftp://x"}); err == nil {
		t.Fatal("a non-HTTP endpoint must be refused")
	}
}
