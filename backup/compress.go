package backup

import (
	"compress/gzip"
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
)

// zstd settings: the fastest level (on a 300 MB source it stored no more than the default
// level and kept up better with the tools: docs/benchmarks.md), two encoder goroutines (the
// Job gets one or two CPUs) and an 8 MiB window, so the encoder's memory stays a few tens of
// MiB whatever the size.
const (
	zstdConcurrency = 2
	zstdWindow      = 8 << 20
)

// compressor returns a writer compressing into w; Close flushes it (not w).
func compressor(c kurav1alpha1.Compression, w io.Writer) (io.WriteCloser, error) {
	switch c {
	case kurav1alpha1.CompressionNone:
		return nopCloser{w}, nil
	case kurav1alpha1.CompressionGzip:
		gz, err := gzip.NewWriterLevel(w, gzip.BestSpeed)
		if err != nil {
			return nil, fmt.Errorf("failed to start gzip: %w", err)
		}
		return gz, nil
	case kurav1alpha1.CompressionZstd, "":
		z, err := zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(zstdConcurrency),
			zstd.WithWindowSize(zstdWindow))
		if err != nil {
			return nil, fmt.Errorf("failed to start zstd: %w", err)
		}
		return z, nil
	default:
		return nil, fmt.Errorf("unknown compression %q", c)
	}
}

// Decompress returns a reader of the uncompressed stream.
func Decompress(c kurav1alpha1.Compression, r io.Reader) (io.ReadCloser, error) {
	switch c {
	case kurav1alpha1.CompressionNone:
		return io.NopCloser(r), nil
	case kurav1alpha1.CompressionGzip:
		gz, err := gzip.NewReader(r)
		if err != nil {
			return nil, fmt.Errorf("failed to read gzip: %w", err)
		}
		return gz, nil
	case kurav1alpha1.CompressionZstd, "":
		z, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(64<<20))
		if err != nil {
			return nil, fmt.Errorf("failed to read zstd: %w", err)
		}
		return z.IOReadCloser(), nil
	default:
		return nil, fmt.Errorf("unknown compression %q", c)
	}
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }
