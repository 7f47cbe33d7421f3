package archive

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"strings"

	"github.com/kura-db/kura/internal/gtid"
)

// Binary log event types the archiver looks at (MariaDB numbering; the rest pass through).
const (
	evQuery        = 2
	evStop         = 3
	evRotate       = 4
	evFormatDesc   = 15
	evXID          = 16
	evHeartbeat    = 27
	evXAPrepare    = 38
	evBinlogCkpt   = 161
	evMariaGTID    = 162
	evMariaGTIDSet = 163
)

// GTID event flags (MariaDB).
const (
	gtidStandalone  = 1
	gtidGroupCommit = 2
)

const headerLen = 19

// binlogMagic starts every binary log file.
var binlogMagic = []byte{0xfe, 'b', 'i', 'n'}

// event is one binary log event as it travels: header fields and the raw bytes.
type event struct {
	Time     uint32
	Type     byte
	ServerID uint32
	LogPos   uint32
	Flags    uint16
	Raw      []byte
}

func parseEvent(raw []byte) (event, error) {
	if len(raw) < headerLen {
		return event{}, fmt.Errorf("binary log event of %d bytes is shorter than its header", len(raw))
	}
	e := event{
		Time:     binary.LittleEndian.Uint32(raw[0:]),
		Type:     raw[4],
		ServerID: binary.LittleEndian.Uint32(raw[5:]),
		LogPos:   binary.LittleEndian.Uint32(raw[13:]),
		Flags:    binary.LittleEndian.Uint16(raw[17:]),
		Raw:      raw,
	}
	if size := binary.LittleEndian.Uint32(raw[9:]); int(size) != len(raw) {
		return event{}, fmt.Errorf("binary log event of type %d says %d bytes, got %d", e.Type, size, len(raw))
	}
	return e, nil
}

// body is the event without header and, with checksums on, without the CRC32.
func (e event) body(checksum bool) []byte {
	b := e.Raw[headerLen:]
	if checksum && len(b) >= 4 {
		b = b[:len(b)-4]
	}
	return b
}

// verifyChecksum checks the event's CRC32 trailer.
func (e event) verifyChecksum() error {
	n := len(e.Raw)
	if n < headerLen+4 {
		return fmt.Errorf("event too short for a checksum")
	}
	want := binary.LittleEndian.Uint32(e.Raw[n-4:])
	got := crc32.ChecksumIEEE(e.Raw[:n-4])
	// A format description event's checksum covers it with the "in use" flag cleared by
	// some servers; accept either form.
	if got != want && e.Type == evFormatDesc {
		c := append([]byte{}, e.Raw[:n-4]...)
		c[17] &^= 1
		got = crc32.ChecksumIEEE(c)
	}
	if got != want {
		return fmt.Errorf("checksum mismatch in a binary log event of type %d at position %d", e.Type, e.LogPos)
	}
	return nil
}

// fdeChecksum reports whether a format description event announces CRC32 checksums.
func fdeChecksum(e event) bool {
	// ... post-header lengths, checksum algorithm (1 byte), CRC32 (4 bytes).
	n := len(e.Raw)
	return n >= headerLen+57+5 && e.Raw[n-5] == 1
}

// mariaGTID is the GTID and flags of a MariaDB GTID event.
type mariaGTID struct {
	GTID  gtid.MariaDBGTID
	Flags byte
}

func parseMariaGTID(e event, checksum bool) (mariaGTID, error) {
	b := e.body(checksum)
	if len(b) < 13 {
		return mariaGTID{}, fmt.Errorf("short GTID event")
	}
	return mariaGTID{
		GTID:  gtid.MariaDBGTID{Seq: binary.LittleEndian.Uint64(b), Domain: binary.LittleEndian.Uint32(b[8:]), Server: e.ServerID},
		Flags: b[12],
	}, nil
}

// queryText is the statement of a query event.
func queryText(e event, checksum bool) (string, error) {
	b := e.body(checksum)
	if len(b) < 13 {
		return "", fmt.Errorf("short query event")
	}
	dbLen := int(b[8])
	varsLen := int(binary.LittleEndian.Uint16(b[11:]))
	off := 13 + varsLen + dbLen + 1
	if off > len(b) {
		return "", fmt.Errorf("malformed query event")
	}
	return string(b[off:]), nil
}

// rotateTarget is the file name and position of a rotate event.
func rotateTarget(e event, checksum bool) (string, uint64) {
	b := e.body(checksum)
	if len(b) < 8 {
		return "", 0
	}
	return string(bytes.TrimRight(b[8:], "\x00")), binary.LittleEndian.Uint64(b)
}

// endsGroup reports whether a query event closes the transaction it belongs to.
func endsGroup(query string) bool {
	q := strings.ToUpper(strings.TrimSpace(query))
	return q == "COMMIT" || q == "ROLLBACK" || strings.HasPrefix(q, "XA COMMIT") || strings.HasPrefix(q, "XA ROLLBACK")
}
