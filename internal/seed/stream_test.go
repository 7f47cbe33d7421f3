package seed

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"strings"
	"testing"
)

func encode(t *testing.T, data []byte, finish func(*Writer)) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewWriter(&buf, Header{Engine: "mariadb", Donor: "shop-0", ExecutedBefore: "0-1000-5"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	finish(w)
	return buf.Bytes()
}

func decode(b []byte) ([]byte, *Reader, error) {
	r, err := NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, nil, err
	}
	out, err := io.ReadAll(r)
	return out, r, err
}

func TestStreamRoundTrip(t *testing.T) {
	data := make([]byte, 3*MaxFrame+12345)
	_, _ = rand.Read(data[:len(data)/2]) // half incompressible, half zeros
	b := encode(t, data, func(w *Writer) {
		if err := w.Close(Trailer{ExecutedAfter: "0-1000-9", Position: "0-1000-7"}); err != nil {
			t.Fatal(err)
		}
	})
	out, r, err := decode(b)
	if err != nil || !bytes.Equal(out, data) {
		t.Fatalf("round trip: %d bytes, %v", len(out), err)
	}
	if r.Header.Donor != "shop-0" || r.Header.ExecutedBefore != "0-1000-5" || r.Trailer == nil || r.Trailer.ExecutedAfter != "0-1000-9" ||
		r.Trailer.Position != "0-1000-7" || r.Trailer.Bytes != int64(len(data)) || r.Err() != nil {
		t.Fatalf("header %+v trailer %+v", r.Header, r.Trailer)
	}
}

func TestStreamTruncatedAnywhereIsRefused(t *testing.T) {
	data := make([]byte, 2*MaxFrame)
	_, _ = rand.Read(data)
	b := encode(t, data, func(w *Writer) { _ = w.Close(Trailer{}) })
	for _, cut := range []int{0, 5, 100, len(b) / 3, len(b) / 2, len(b) - 40, len(b) - 8, len(b) - 1} {
		_, r, err := decode(b[:cut])
		if err == nil || !errors.Is(err, ErrTruncated) {
			t.Errorf("cut at %d of %d: %v", cut, len(b), err)
		}
		if r != nil && (r.Trailer != nil || r.Err() == nil) {
			t.Errorf("cut at %d: a trailer was accepted", cut)
		}
	}
}

func TestStreamWithoutTrailerIsTruncated(t *testing.T) {
	b := encode(t, []byte("some data"), func(*Writer) {})
	if _, _, err := decode(b); !errors.Is(err, ErrTruncated) {
		t.Fatalf("a stream without trailer: %v", err)
	}
}

func TestStreamChecksumMismatchIsRefused(t *testing.T) {
	b := encode(t, []byte("payload"), func(w *Writer) {
		w.sum.Write([]byte("tampered"))
		_ = w.Close(Trailer{})
	})
	if _, _, err := decode(b); err == nil || !strings.Contains(err.Error(), "SHA-256") {
		t.Fatalf("a wrong checksum must be refused: %v", err)
	}
}

func TestStreamDataAfterTrailerIsRefused(t *testing.T) {
	b := encode(t, []byte("payload"), func(w *Writer) { _ = w.Close(Trailer{}) })
	if _, _, err := decode(append(b, 'x')); err == nil || !strings.Contains(err.Error(), "after the trailer") {
		t.Fatalf("bytes after the trailer must be refused: %v", err)
	}
}

func TestStreamSourceErrorIsReported(t *testing.T) {
	b := encode(t, []byte("partial"), func(w *Writer) { w.Fail(errors.New("disk on fire")) })
	if _, _, err := decode(b); err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Fatalf("the source's error must reach the reader: %v", err)
	}
}
