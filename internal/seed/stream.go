package seed

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
)

// The copy stream (docs/cloning.md) carries a physical copy with what is needed to trust it
// and to give it its GTID state:
//
//	magic "KURACLONE1"
//	frame: 1 byte type, 4 bytes big-endian payload length, payload
//	  'H' header, JSON Header (first frame)
//	  'D' data: the next bytes of the engine's copy (xbstream), at most 1 MiB
//	  'T' trailer, JSON Trailer: byte count and SHA-256 of all data, source state after
//	  'E' the source failed: the payload is the error text
//
// A stream that ends without a trailer, with a trailer whose count or checksum differs, or
// with an error frame is refused: nothing it wrote is used. The frames are not compressed
// here: the agent sends them gzip-compressed, a stored backup keeps them zstd-compressed.
const (
	streamMagic  = "KURACLONE1"
	frameHeader  = 'H'
	frameData    = 'D'
	frameTrailer = 'T'
	frameError   = 'E'
	// MaxFrame is the largest data frame.
	MaxFrame = 1 << 20
)

// Header is what the source knows before the copy starts.
type Header struct {
	Engine   string `json:"engine"`
	Donor    string `json:"donor"`
	ServerID uint32 `json:"serverID"`
	Version  string `json:"version"`
	// ExecutedBefore is the source's executed GTID set read just before the copy started.
	ExecutedBefore string `json:"executedBefore"`
}

// Trailer closes a complete stream.
type Trailer struct {
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"`
	// ExecutedAfter is the source's executed GTID set read just after the copy finished.
	ExecutedAfter string `json:"executedAfter"`
	// Position is the per-domain GTID position the copy is consistent with, as the copy
	// tool recorded it (empty when the source did not report it; the copy itself holds it
	// too).
	Position string `json:"position,omitempty"`
}

// ErrTruncated marks a stream that ended before its trailer.
var ErrTruncated = errors.New("clone stream truncated")

// Writer writes the frames.
type Writer struct {
	w    io.Writer
	sum  hash.Hash
	n    int64
	head [5]byte
}

// NewWriter starts a stream on w with its header.
func NewWriter(w io.Writer, h Header) (*Writer, error) {
	s := &Writer{w: w, sum: sha256.New()}
	if _, err := io.WriteString(w, streamMagic); err != nil {
		return nil, fmt.Errorf("failed to write copy stream: %w", err)
	}
	b, err := json.Marshal(h)
	if err != nil {
		return nil, fmt.Errorf("failed to encode copy header: %w", err)
	}
	return s, s.frame(frameHeader, b)
}

func (s *Writer) frame(t byte, p []byte) error {
	s.head[0] = t
	binary.BigEndian.PutUint32(s.head[1:], uint32(len(p)))
	if _, err := s.w.Write(s.head[:]); err != nil {
		return fmt.Errorf("failed to write copy stream: %w", err)
	}
	if _, err := s.w.Write(p); err != nil {
		return fmt.Errorf("failed to write copy stream: %w", err)
	}
	return nil
}

// Write frames p as data.
func (s *Writer) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		n := min(len(p), MaxFrame)
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

// Bytes is the number of data bytes written.
func (s *Writer) Bytes() int64 { return s.n }

// Close writes the trailer. The byte count and checksum are the writer's own: tr supplies
// the rest.
func (s *Writer) Close(tr Trailer) error {
	tr.Bytes, tr.SHA256 = s.n, hex.EncodeToString(s.sum.Sum(nil))
	b, err := json.Marshal(tr)
	if err != nil {
		return fmt.Errorf("failed to encode copy trailer: %w", err)
	}
	return s.frame(frameTrailer, b)
}

// Fail writes an error frame, so the receiver learns why the stream ends.
func (s *Writer) Fail(cause error) {
	_ = s.frame(frameError, []byte(cause.Error()))
}

// Reader reads the frames: Read returns the data and io.EOF only after the trailer was
// verified; Header and Trailer the rest.
type Reader struct {
	br      *bufio.Reader
	Header  Header
	Trailer *Trailer
	sum     hash.Hash
	n       int64
	left    uint32 // data bytes left in the current frame
	err     error
}

// NewReader reads the magic and the header of a stream.
func NewReader(r io.Reader) (*Reader, error) {
	s := &Reader{br: bufio.NewReaderSize(r, 64<<10), sum: sha256.New()}
	magic := make([]byte, len(streamMagic))
	if _, err := io.ReadFull(s.br, magic); err != nil {
		return nil, fmt.Errorf("failed to read copy stream: %w", Truncation(err))
	}
	if string(magic) != streamMagic {
		return nil, fmt.Errorf("failed to read copy stream: not a copy stream (%q)", magic)
	}
	t, p, err := s.next()
	if err != nil {
		return nil, err
	}
	if t != frameHeader {
		return nil, fmt.Errorf("failed to read copy stream: first frame %q is not a header", t)
	}
	if err := json.Unmarshal(p, &s.Header); err != nil {
		return nil, fmt.Errorf("failed to read copy header: %w", err)
	}
	return s, nil
}

// Truncation turns an early end of input into ErrTruncated.
func Truncation(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: %w", ErrTruncated, err)
	}
	return err
}

// Bytes is the number of data bytes read.
func (s *Reader) Bytes() int64 { return s.n }

// Err is the error that ended the stream, nil while it runs or after a verified trailer.
func (s *Reader) Err() error {
	if s.Trailer != nil {
		return nil
	}
	return s.err
}

// next reads one whole non-data frame, or the header of a data frame (payload nil).
func (s *Reader) next() (byte, []byte, error) {
	var head [5]byte
	if _, err := io.ReadFull(s.br, head[:]); err != nil {
		return 0, nil, fmt.Errorf("failed to read copy stream after %d bytes: %w", s.n, Truncation(err))
	}
	n := binary.BigEndian.Uint32(head[1:])
	if n > MaxFrame {
		return 0, nil, fmt.Errorf("failed to read copy stream: frame of %d bytes", n)
	}
	if head[0] == frameData {
		s.left = n
		return frameData, nil, nil
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(s.br, p); err != nil {
		return 0, nil, fmt.Errorf("failed to read copy stream after %d bytes: %w", s.n, Truncation(err))
	}
	return head[0], p, nil
}

// Read returns data bytes; at the trailer it checks count and checksum and returns io.EOF.
func (s *Reader) Read(p []byte) (int, error) {
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
			s.err = fmt.Errorf("failed to copy: the source failed after %d bytes: %s", s.n, payload)
			return 0, s.err
		default:
			s.err = fmt.Errorf("failed to read copy stream: unexpected frame %q", t)
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
		s.err = fmt.Errorf("failed to read copy stream after %d bytes: %w", s.n, Truncation(err))
		return n, s.err
	}
	return n, nil
}

func (s *Reader) finish(payload []byte) error {
	var tr Trailer
	if err := json.Unmarshal(payload, &tr); err != nil {
		return fmt.Errorf("failed to read copy trailer: %w", err)
	}
	if tr.Bytes != s.n {
		return fmt.Errorf("failed to verify copy stream: %d bytes received, source sent %d", s.n, tr.Bytes)
	}
	if got := hex.EncodeToString(s.sum.Sum(nil)); got != tr.SHA256 {
		return fmt.Errorf("failed to verify copy stream: SHA-256 %s, source sent %s", got, tr.SHA256)
	}
	// Nothing may follow the trailer.
	if _, err := s.br.ReadByte(); !errors.Is(err, io.EOF) {
		if err == nil {
			return errors.New("failed to verify copy stream: data after the trailer")
		}
		return fmt.Errorf("failed to verify copy stream: %w", Truncation(err))
	}
	s.Trailer = &tr
	return io.EOF
}
