package agent

import (
	"bufio"
	"compress/gzip"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
)

// The clone stream (docs/cloning.md) is a gzip stream (fastest level) of frames:
//
//	magic "KURACLONE1"
//	frame: 1 byte type, 4 bytes big-endian payload length, payload
//	  'H' header, JSON CloneHeader (first frame)
//	  'D' data: the next bytes of the engine's copy (xbstream), at most 1 MiB
//	  'T' trailer, JSON CloneTrailer: byte count and SHA-256 of all data, donor state after
//	  'E' the donor failed: the payload is the error text
//
// A stream that ends without a trailer, with a trailer whose count or checksum differs, or
// with an error frame is refused: nothing it wrote is used.
const (
	streamMagic  = "KURACLONE1"
	frameHeader  = 'H'
	frameData    = 'D'
	frameTrailer = 'T'
	frameError   = 'E'
	maxFrame     = 1 << 20
)

// ContentTypeClone is the media type of the clone stream.
const ContentTypeClone = "application/x-kura-clone"

// CloneHeader is what the donor knows before the copy starts.
type CloneHeader struct {
	Engine   string `json:"engine"`
	Donor    string `json:"donor"`
	ServerID uint32 `json:"serverID"`
	Version  string `json:"version"`
	// ExecutedBefore is the donor's executed GTID set read just before the copy started.
	ExecutedBefore string `json:"executedBefore"`
}

// CloneTrailer closes a complete stream.
type CloneTrailer struct {
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"`
	// ExecutedAfter is the donor's executed GTID set read just after the copy finished.
	ExecutedAfter string `json:"executedAfter"`
}

// ErrTruncated marks a stream that ended before its trailer.
var ErrTruncated = errors.New("clone stream truncated")

// streamWriter writes the frames.
type streamWriter struct {
	gz   *gzip.Writer
	sum  hash.Hash
	n    int64
	head [5]byte
}

func newStreamWriter(w io.Writer, h CloneHeader) (*streamWriter, error) {
	gz, err := gzip.NewWriterLevel(w, gzip.BestSpeed)
	if err != nil {
		return nil, fmt.Errorf("failed to start clone stream: %w", err)
	}
	s := &streamWriter{gz: gz, sum: sha256.New()}
	if _, err := gz.Write([]byte(streamMagic)); err != nil {
		return nil, fmt.Errorf("failed to write clone stream: %w", err)
	}
	b, err := json.Marshal(h)
	if err != nil {
		return nil, fmt.Errorf("failed to encode clone header: %w", err)
	}
	return s, s.frame(frameHeader, b)
}

func (s *streamWriter) frame(t byte, p []byte) error {
	s.head[0] = t
	binary.BigEndian.PutUint32(s.head[1:], uint32(len(p)))
	if _, err := s.gz.Write(s.head[:]); err != nil {
		return fmt.Errorf("failed to write clone stream: %w", err)
	}
	if _, err := s.gz.Write(p); err != nil {
		return fmt.Errorf("failed to write clone stream: %w", err)
	}
	return nil
}

// Write frames p as data.
func (s *streamWriter) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		n := min(len(p), maxFrame)
		if err := s.frame(frameData, p[:n]); err != nil {
			return written, err
		}
		s.sum.Write(p[:n])
		s.n += int64(n)
		written += n
		p = p[n:]
	}
	return written, nil
}

// Close writes the trailer and flushes.
func (s *streamWriter) Close(executedAfter string) error {
	b, err := json.Marshal(CloneTrailer{Bytes: s.n, SHA256: hex.EncodeToString(s.sum.Sum(nil)), ExecutedAfter: executedAfter})
	if err != nil {
		return fmt.Errorf("failed to encode clone trailer: %w", err)
	}
	if err := s.frame(frameTrailer, b); err != nil {
		return err
	}
	if err := s.gz.Close(); err != nil {
		return fmt.Errorf("failed to finish clone stream: %w", err)
	}
	return nil
}

// Fail writes an error frame and flushes, so the receiver learns why the stream ends.
func (s *streamWriter) Fail(cause error) {
	_ = s.frame(frameError, []byte(cause.Error()))
	_ = s.gz.Close()
}

// streamReader reads the frames: Read returns the data; Header and Trailer the rest.
type streamReader struct {
	gz      *gzip.Reader
	br      *bufio.Reader
	Header  CloneHeader
	Trailer *CloneTrailer
	sum     hash.Hash
	n       int64
	left    uint32 // data bytes left in the current frame
	err     error
}

func newStreamReader(r io.Reader) (*streamReader, error) {
	gz, err := gzip.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("failed to read clone stream: %w", truncation(err))
	}
	s := &streamReader{gz: gz, br: bufio.NewReaderSize(gz, 64<<10), sum: sha256.New()}
	magic := make([]byte, len(streamMagic))
	if _, err := io.ReadFull(s.br, magic); err != nil {
		return nil, fmt.Errorf("failed to read clone stream: %w", truncation(err))
	}
	if string(magic) != streamMagic {
		return nil, fmt.Errorf("failed to read clone stream: not a clone stream (%q)", magic)
	}
	t, p, err := s.next()
	if err != nil {
		return nil, err
	}
	if t != frameHeader {
		return nil, fmt.Errorf("failed to read clone stream: first frame %q is not a header", t)
	}
	if err := json.Unmarshal(p, &s.Header); err != nil {
		return nil, fmt.Errorf("failed to read clone header: %w", err)
	}
	return s, nil
}

// truncation turns an early end of input into ErrTruncated.
func truncation(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: %w", ErrTruncated, err)
	}
	return err
}

// next reads one whole non-data frame, or the header of a data frame (payload nil).
func (s *streamReader) next() (byte, []byte, error) {
	var head [5]byte
	if _, err := io.ReadFull(s.br, head[:]); err != nil {
		return 0, nil, fmt.Errorf("failed to read clone stream after %d bytes: %w", s.n, truncation(err))
	}
	n := binary.BigEndian.Uint32(head[1:])
	if n > maxFrame {
		return 0, nil, fmt.Errorf("failed to read clone stream: frame of %d bytes", n)
	}
	if head[0] == frameData {
		s.left = n
		return frameData, nil, nil
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(s.br, p); err != nil {
		return 0, nil, fmt.Errorf("failed to read clone stream after %d bytes: %w", s.n, truncation(err))
	}
	return head[0], p, nil
}

// Read returns data bytes; at the trailer it checks count and checksum and returns io.EOF.
func (s *streamReader) Read(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	for s.left == 0 {
		t, payload, err := s.next()
		if err != nil {
			s.err = err
			return 0, err
		}
		switch t {
		case frameData:
			continue
		case frameTrailer:
			s.err = s.finish(payload)
			return 0, s.err
		case frameError:
			s.err = fmt.Errorf("failed to clone: the donor failed after %d bytes: %s", s.n, payload)
			return 0, s.err
		default:
			s.err = fmt.Errorf("failed to read clone stream: unexpected frame %q", t)
			return 0, s.err
		}
	}
	if uint32(len(p)) > s.left {
		p = p[:s.left]
	}
	n, err := s.br.Read(p)
	s.left -= uint32(n)
	s.n += int64(n)
	s.sum.Write(p[:n])
	if err != nil {
		s.err = fmt.Errorf("failed to read clone stream after %d bytes: %w", s.n, truncation(err))
		return n, s.err
	}
	return n, nil
}

func (s *streamReader) finish(payload []byte) error {
	var tr CloneTrailer
	if err := json.Unmarshal(payload, &tr); err != nil {
		return fmt.Errorf("failed to read clone trailer: %w", err)
	}
	if tr.Bytes != s.n {
		return fmt.Errorf("failed to verify clone stream: %d bytes received, donor sent %d", s.n, tr.Bytes)
	}
	if got := hex.EncodeToString(s.sum.Sum(nil)); got != tr.SHA256 {
		return fmt.Errorf("failed to verify clone stream: SHA-256 %s, donor sent %s", got, tr.SHA256)
	}
	// Nothing may follow the trailer but the end of the gzip stream.
	if _, err := s.br.ReadByte(); !errors.Is(err, io.EOF) {
		if err == nil {
			return errors.New("failed to verify clone stream: data after the trailer")
		}
		return fmt.Errorf("failed to verify clone stream: %w", truncation(err))
	}
	s.Trailer = &tr
	return io.EOF
}
