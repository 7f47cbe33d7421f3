package storage

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// DefaultPartSize is the multipart upload's part size: the memory one upload holds, and
// with S3's 10,000 parts a limit of about 312 GiB per object. An upload of unknown size
// would otherwise use parts of about 537 MiB.
const DefaultPartSize = 32 << 20

// S3Config says how to reach a bucket.
type S3Config struct {
	// Endpoint is an http:// or https:// URL.
	Endpoint string
	Region   string
	Bucket   string
	// Prefix is prepended to every key.
	Prefix string
	// PathStyle addresses the bucket as endpoint/bucket.
	PathStyle bool
	// AccessKeyID and SecretAccessKey are the credentials.
	AccessKeyID, SecretAccessKey string
	// CABundle (PEM) verifies the endpoint's certificate in addition to the system roots.
	CABundle []byte
	// PartSize of multipart uploads (default DefaultPartSize).
	PartSize uint64
	// Uploads is how many parts are uploaded at once while the next fills (default
	// DefaultUploads); memory is one part buffer per upload.
	Uploads uint
}

// DefaultUploads parts are uploaded at once: the stream keeps flowing into the next part
// while the previous ones upload, for 3 × DefaultPartSize of buffers.
const DefaultUploads = 3

// S3 stores objects in an S3-compatible bucket.
type S3 struct {
	cfg    S3Config
	client *minio.Client
}

// NewS3 returns the storage for cfg. It does not contact the server (Check does).
func NewS3(cfg S3Config) (*S3, error) {
	u, err := url.Parse(cfg.Endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("invalid S3 endpoint %q: it must be an http:// or https:// URL", cfg.Endpoint)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.ResponseHeaderTimeout = 2 * time.Minute
	if len(cfg.CABundle) > 0 {
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(cfg.CABundle) {
			return nil, errors.New("invalid S3 CA bundle: no PEM certificate found")
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	lookup := minio.BucketLookupDNS
	if cfg.PathStyle {
		lookup = minio.BucketLookupPath
	}
	c, err := minio.New(u.Host, &minio.Options{
		Creds:        credentials.NewStaticV4(cfg.AccessKeyID, cfg.SecretAccessKey, ""),
		Secure:       u.Scheme == "https",
		Region:       cfg.Region,
		BucketLookup: lookup,
		Transport:    tr,
		MaxRetries:   5,
	})
	if err != nil {
		return nil, fmt.Errorf("failed to create the S3 client: %w", err)
	}
	if cfg.PartSize == 0 {
		cfg.PartSize = DefaultPartSize
	}
	if cfg.Uploads == 0 {
		cfg.Uploads = DefaultUploads
	}
	cfg.Prefix = strings.Trim(cfg.Prefix, "/")
	return &S3{cfg: cfg, client: c}, nil
}

func (s *S3) key(k string) string {
	if s.cfg.Prefix == "" {
		return k
	}
	return s.cfg.Prefix + "/" + k
}

// Check verifies that the bucket exists and the credentials are accepted, with an error
// that says which is wrong.
func (s *S3) Check(ctx context.Context) error {
	ok, err := s.client.BucketExists(ctx, s.cfg.Bucket)
	if err != nil {
		return explain(fmt.Errorf("failed to reach bucket %q at %s: %w", s.cfg.Bucket, s.cfg.Endpoint, err), err)
	}
	if !ok {
		return fmt.Errorf("bucket %q does not exist at %s: create it, or fix spec.storage.s3.bucket", s.cfg.Bucket, s.cfg.Endpoint)
	}
	return nil
}

// explain adds what to do to the S3 errors people cause.
func explain(wrapped, err error) error {
	switch minio.ToErrorResponse(err).Code {
	case "InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied":
		return fmt.Errorf("%w (the credentials were refused: check the Secret named in spec.storage.s3.credentialsSecret)", wrapped)
	case "NoSuchBucket":
		return fmt.Errorf("%w (create the bucket, or fix spec.storage.s3.bucket)", wrapped)
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return fmt.Errorf("%w (the endpoint did not answer: check spec.storage.s3.endpoint and that it is reachable from the cluster's Pods)", wrapped)
	}
	return wrapped
}

// Put implements Storage.
func (s *S3) Put(ctx context.Context, key string, r io.Reader, size int64) (Info, error) {
	info, err := s.client.PutObject(ctx, s.cfg.Bucket, s.key(key), r, size, minio.PutObjectOptions{
		ContentType:           "application/octet-stream",
		PartSize:              s.cfg.PartSize,
		NumThreads:            s.cfg.Uploads,
		ConcurrentStreamParts: size < 0 && s.cfg.Uploads > 1,
	})
	if err != nil {
		return Info{}, explain(fmt.Errorf("failed to upload %s: %w", s.Location(key), err), err)
	}
	return Info{Key: key, Size: info.Size, Modified: info.LastModified}, nil
}

// Create implements Storage with If-None-Match: *.
func (s *S3) Create(ctx context.Context, key string, data []byte) error {
	opts := minio.PutObjectOptions{ContentType: "application/json"}
	opts.SetMatchETagExcept("*")
	_, err := s.client.PutObject(ctx, s.cfg.Bucket, s.key(key), bytes.NewReader(data), int64(len(data)), opts)
	if err != nil {
		if code := minio.ToErrorResponse(err).Code; code == "PreconditionFailed" || code == "ConditionalRequestConflict" {
			return fmt.Errorf("failed to create %s: %w", s.Location(key), ErrExists)
		}
		return explain(fmt.Errorf("failed to create %s: %w", s.Location(key), err), err)
	}
	return nil
}

// Get implements Storage.
func (s *S3) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	o, err := s.client.GetObject(ctx, s.cfg.Bucket, s.key(key), minio.GetObjectOptions{})
	if err == nil {
		_, err = o.Stat()
	}
	if err != nil {
		if o != nil {
			_ = o.Close()
		}
		if minio.ToErrorResponse(err).Code == "NoSuchKey" {
			return nil, fmt.Errorf("failed to open %s: %w", s.Location(key), ErrNotFound)
		}
		return nil, explain(fmt.Errorf("failed to open %s: %w", s.Location(key), err), err)
	}
	return o, nil
}

// List implements Storage.
func (s *S3) List(ctx context.Context, prefix string) ([]Info, error) {
	var out []Info
	strip := ""
	if s.cfg.Prefix != "" {
		strip = s.cfg.Prefix + "/"
	}
	for o := range s.client.ListObjects(ctx, s.cfg.Bucket, minio.ListObjectsOptions{Prefix: s.key(prefix), Recursive: true}) {
		if o.Err != nil {
			return nil, explain(fmt.Errorf("failed to list %s: %w", s.Location(prefix), o.Err), o.Err)
		}
		out = append(out, Info{Key: strings.TrimPrefix(o.Key, strip), Size: o.Size, Modified: o.LastModified})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// Delete implements Storage.
func (s *S3) Delete(ctx context.Context, key string) error {
	if err := s.client.RemoveObject(ctx, s.cfg.Bucket, s.key(key), minio.RemoveObjectOptions{}); err != nil {
		if minio.ToErrorResponse(err).Code == "NoSuchKey" {
			return nil
		}
		return explain(fmt.Errorf("failed to delete %s: %w", s.Location(key), err), err)
	}
	return nil
}

// Incomplete lists the keys of the multipart uploads under prefix that were neither
// completed nor aborted.
func (s *S3) Incomplete(ctx context.Context, prefix string) ([]string, error) {
	var keys []string
	for u := range s.client.ListIncompleteUploads(ctx, s.cfg.Bucket, s.key(prefix), true) {
		if u.Err != nil {
			return keys, explain(fmt.Errorf("failed to list the unfinished uploads under %s: %w", s.Location(prefix), u.Err), u.Err)
		}
		keys = append(keys, u.Key)
	}
	return keys, nil
}

// DeleteIncomplete implements Storage: it aborts the multipart uploads under prefix (their
// parts are stored, and billed, until then).
func (s *S3) DeleteIncomplete(ctx context.Context, prefix string) (int, error) {
	keys, err := s.Incomplete(ctx, prefix)
	if err != nil {
		return 0, err
	}
	for i, k := range keys {
		if err := s.client.RemoveIncompleteUpload(ctx, s.cfg.Bucket, k); err != nil {
			return i, explain(fmt.Errorf("failed to abort the unfinished upload of s3://%s/%s: %w", s.cfg.Bucket, k, err), err)
		}
	}
	return len(keys), nil
}

// Location implements Storage.
func (s *S3) Location(key string) string {
	return "s3://" + path.Join(s.cfg.Bucket, s.key(key))
}
