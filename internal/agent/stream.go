package agent

import (
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

// wireWriter is the donor's side of the wire: gzip around the copy stream, flushed through
// to the client at least every flushInterval.
type wireWriter struct {
	gz    *gzip.Writer
	flush func()
	last  time.Time
}

func newWireWriter(w io.Writer) (*wireWriter, error) {
	gz, err := gzip.NewWriterLevel(w, gzip.BestSpeed)
	if err != nil {
		return nil, fmt.Errorf("failed to start clone stream: %w", err)
	}
	ww := &wireWriter{gz: gz, last: time.Now()}
	if f, ok := w.(http.Flusher); ok {
		ww.flush = f.Flush
	}
	return ww, nil
}

func (w *wireWriter) Write(p []byte) (int, error) {
	n, err := w.gz.Write(p)
	if err == nil && time.Since(w.last) >= flushInterval {
		err = w.Flush()
	}
	return n, err
}

// Flush sends everything written so far.
func (w *wireWriter) Flush() error {
	w.last = time.Now()
	if err := w.gz.Flush(); err != nil {
		return fmt.Errorf("failed to write clone stream: %w", err)
	}
	if w.flush != nil {
		w.flush()
	}
	return nil
}

// Close ends the gzip stream and flushes it.
func (w *wireWriter) Close() error {
	if err := w.gz.Close(); err != nil {
		return fmt.Errorf("failed to finish clone stream: %w", err)
	}
	if w.flush != nil {
		w.flush()
	}
	return nil
}

// newWireReader reads a clone stream from the wire.
func newWireReader(r io.Reader) (*seed.Reader, error) {
	gz, err := gzip.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("failed to read clone stream: %w", seed.Truncation(err))
	}
	return seed.NewReader(gz)
}
