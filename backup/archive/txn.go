package archive

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"time"

	"github.com/kura-db/kura/internal/gtid"
)

// Transaction is one archived transaction: its GTID, the time of its last event (the commit,
// to the second: binary log timestamps have a resolution of one second) and its events as
// the server wrote them.
type Transaction struct {
	GTID gtid.MariaDBGTID
	Time time.Time
	Raw  []byte
}

// Data is a piece's binary log split into transactions.
type Data struct {
	// FormatDescription is the piece's format description event, which says how to read
	// the events that follow (a piece streamed from another server may differ).
	FormatDescription []byte
	Transactions      []Transaction
	// Events counts every event after the format description.
	Events int
}

// SplitData splits a piece's uncompressed data (magic, format description, whole
// transactions) into its transactions, verifying every event's checksum. A transaction runs
// from its GTID event to the next one.
func SplitData(data []byte) (Data, error) {
	var out Data
	if !bytes.HasPrefix(data, binlogMagic) {
		return out, fmt.Errorf("not a binary log (no magic number)")
	}
	data = data[len(binlogMagic):]
	checksum := false
	var cur *Transaction
	for len(data) > 0 {
		if len(data) < headerLen {
			return out, fmt.Errorf("truncated event header")
		}
		size := int(binary.LittleEndian.Uint32(data[9:]))
		if size < headerLen || size > len(data) {
			return out, fmt.Errorf("truncated event (%d bytes announced, %d left)", size, len(data))
		}
		e, err := parseEvent(data[:size])
		if err != nil {
			return out, err
		}
		data = data[size:]
		if e.Type == evFormatDesc {
			checksum = fdeChecksum(e)
		}
		if checksum {
			if err := e.verifyChecksum(); err != nil {
				return out, err
			}
		}
		if e.Type == evFormatDesc {
			out.FormatDescription = e.Raw
			continue
		}
		out.Events++
		if e.Type == evMariaGTID {
			g, err := parseMariaGTID(e, checksum)
			if err != nil {
				return out, err
			}
			out.Transactions = append(out.Transactions, Transaction{GTID: g.GTID})
			cur = &out.Transactions[len(out.Transactions)-1]
		}
		if cur != nil {
			cur.Raw = append(cur.Raw, e.Raw...)
			cur.Time = time.Unix(int64(e.Time), 0).UTC()
		}
	}
	return out, nil
}

// WriteBinlog writes a binary log file holding the format description and the transactions,
// which mariadb-binlog decodes like the server's own files.
func WriteBinlog(w io.Writer, formatDescription []byte, txns []Transaction) error {
	if len(formatDescription) == 0 {
		return fmt.Errorf("failed to write a binary log: no format description event")
	}
	if _, err := w.Write(binlogMagic); err != nil {
		return err
	}
	if _, err := w.Write(formatDescription); err != nil {
		return err
	}
	for _, t := range txns {
		if _, err := w.Write(t.Raw); err != nil {
			return err
		}
	}
	return nil
}
