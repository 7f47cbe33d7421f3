package agent

import (
	"bufio"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/kura-db/kura/internal/seed"
)

// On the wire the clone stream (seed's copy stream, docs/cloning.md) is gzip-compressed at
// the fastest level. The donor flushes it at once after the header and then at least every
// second, so the receiver has the response headers before any HTTP timeout and sees progress
// even while the copy tool is slow to produce output.

// ContentTypeClone is the media type of the clone stream.
const ContentTypeClone = "application/x-kura-clone"

// The stream's header and trailer.
type (
	CloneHeader  = seed.Header
	CloneTrailer = seed.Trailer
)

// ErrTruncated marks a stream that ended before its trailer.
var ErrTruncated = seed.ErrTruncated

// flushInterval bounds how long compressed bytes wait in the donor's buffers.
const flushInterval = time.Second

// Wire encodings of the clone stream. Gzip is the default (a clone crosses the Pod network
// and is extracted as is); identity is for a client that compresses the stream itself (a
// physical backup stores it zstd-compressed), which would otherwise pay for gzip on both
// ends.
const (
	EncodingGzip     = "gzip"
	EncodingIdentity = "identity"
	// EncodingHeader names the encoding of a clone response.
	EncodingHeader = "X-Kura-Clone-Encoding"
)

// wireWriter is the donor's side of the wire: the encoder around the copy stream, flushed
// through to the client at least every flushInterval.
type wireWriter struct {
	enc   encoder
	flush func()
	last  time.Time
}

type encoder interface {
	io.Writer
	Flush() error
	Close() error
}

// identity buffers writes and never compresses.
type identity struct{ *bufio.Writer }

func (identity) Close() error { return nil }

func newWireWriter(w io.Writer, encoding string) (*wireWriter, error) {
	ww := &wireWriter{last: time.Now()}
	switch encoding {
	case EncodingIdentity:
		ww.enc = identity{bufio.NewWriterSize(w, 256<<10)}
	case EncodingGzip, "":
		gz, err := gzip.NewWriterLevel(w, gzip.BestSpeed)
		if err != nil {
			return nil, fmt.Errorf("failed to start clone stream: %w", err)
		}
		ww.enc = gz
	default:
		return nil, fmt.Errorf("unknown clone stream encoding %q", encoding)
	}
	if f, ok := w.(http.Flusher); ok {
		ww.flush = f.Flush
	}
	return ww, nil
}

func (w *wireWriter) Write(p []byte) (int, error) {
	n, err := w.enc.Write(p)
	if err == nil && time.Since(w.last) >= flushInterval {
		err = w.Flush()
	}
	return n, err
}

// Flush sends everything written so far.
func (w *wireWriter) Flush() error {
	w.last = time.Now()
	if err := w.enc.Flush(); err != nil {
		return fmt.Errorf("failed to write clone stream: %w", err)
	}
	if w.flush != nil {
		w.flush()
	}
	return nil
}

// Close ends the encoding and flushes it.
func (w *wireWriter) Close() error {
	if err := w.enc.Close(); err != nil {
		return fmt.Errorf("failed to finish clone stream: %w", err)
	}
	return w.Flush()
}

// newWireReader reads a clone stream from the wire.
func newWireReader(r io.Reader, encoding string) (*seed.Reader, error) {
	switch encoding {
	case EncodingIdentity:
		return seed.NewReader(r)
	case EncodingGzip, "":
		gz, err := gzip.NewReader(r)
		if err != nil {
			return nil, fmt.Errorf("failed to read clone stream: %w", seed.Truncation(err))
		}
		return seed.NewReader(gz)
	default:
		return nil, fmt.Errorf("unknown clone stream encoding %q", encoding)
	}
}
