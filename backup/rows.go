package backup

import (
	"bytes"
	"sort"
)

// TableRows is how many rows one table holds in a backup.
type TableRows struct {
	Database string `json:"database"`
	Table    string `json:"table"`
	Rows     int64  `json:"rows"`
}

// rowCounter counts the rows of every table in a mariadb-dump (mysqldump) stream as it
// passes, exactly: the dump writes each table's rows as INSERT statements (`INSERT INTO
// `t` VALUES` at the start of a line, then the rows, on that line or one per line, up to a
// ';'), each row one parenthesised tuple. Values are numbers, NULL, quoted strings (with
// backslash escapes) and, with --hex-blob, hex literals: outside quoted strings a '(' only
// ever opens a row and a ';' ends the statement. Tables come from the `USE` and `CREATE
// TABLE` lines, so empty tables count 0.
// Memory is one line head (lineHead bytes) and the per-table counts.
type rowCounter struct {
	head    []byte
	mode    uint8
	inQuote bool
	// escapes is the number of backslashes just before the current position in a quoted
	// string (only its parity matters).
	escapes int
	db      string
	cur     *int64
	counts  map[[2]string]*int64
}

const (
	modeLineStart = iota // collecting the line's head to classify it
	modeSkip             // a line of no interest: skip to its end
	modeValues           // in an INSERT statement's values
)

// lineHead is how much of a line is kept to classify it: enough for `INSERT INTO `<64
// characters, quoted>` VALUES ` and a `USE` or `CREATE TABLE` line's name.
const lineHead = 512

var (
	prefixInsert = []byte("INSERT INTO `")
	prefixUse    = []byte("USE `")
	prefixCreate = []byte("CREATE TABLE `")
	markValues   = []byte("` VALUES")
)

func newRowCounter() *rowCounter { return &rowCounter{counts: map[[2]string]*int64{}} }

func (c *rowCounter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		switch c.mode {
		case modeSkip:
			i := bytes.IndexByte(p, '\n')
			if i < 0 {
				return n, nil
			}
			p = p[i+1:]
			c.mode = modeLineStart
		case modeValues:
			p = c.values(p)
		case modeLineStart:
			i := bytes.IndexByte(p, '\n')
			end := len(p)
			if i >= 0 {
				end = i
			}
			take := min(end, lineHead-len(c.head))
			c.head = append(c.head, p[:take]...)
			complete := take == end && i >= 0
			rest := c.classify(complete)
			if rest != nil {
				// An INSERT: what followed its VALUES in the head is values already.
				c.mode = modeValues
				c.values(rest)
				p = p[take:]
				c.head = c.head[:0]
				continue
			}
			switch {
			case complete:
				p = p[end+1:]
				c.head = c.head[:0]
			case take < end || len(c.head) >= lineHead:
				c.mode = modeSkip
				p = p[take:]
				c.head = c.head[:0]
			default:
				p = p[take:] // the line goes on in the next write
			}
		}
	}
	return n, nil
}

// classify looks at the head of a line; for an INSERT it returns the bytes after VALUES
// (non-nil), for a USE or CREATE TABLE line (once complete) it records the name.
func (c *rowCounter) classify(complete bool) []byte {
	h := c.head
	switch {
	case bytes.HasPrefix(h, prefixInsert):
		name, rest, ok := bytes.Cut(h[len(prefixInsert):], markValues)
		if !ok {
			return nil
		}
		c.cur = c.table(string(name))
		return append(make([]byte, 0, len(rest)+1), rest...)
	case complete && bytes.HasPrefix(h, prefixUse):
		if name, _, ok := bytes.Cut(h[len(prefixUse):], []byte("`")); ok {
			c.db = string(name)
		}
	case bytes.HasPrefix(h, prefixCreate):
		if name, _, ok := bytes.Cut(h[len(prefixCreate):], []byte("`")); ok && complete {
			c.table(string(name))
		}
	}
	return nil
}

func (c *rowCounter) table(name string) *int64 {
	k := [2]string{c.db, name}
	if p, ok := c.counts[k]; ok {
		return p
	}
	p := new(int64)
	c.counts[k] = p
	return p
}

// values counts the rows in p, the values of an INSERT, and returns what follows the
// statement (nil when it goes on).
func (c *rowCounter) values(p []byte) []byte {
	for len(p) > 0 {
		if c.inQuote {
			i := bytes.IndexByte(p, '\'')
			if i < 0 {
				c.escapes = trailingBackslashes(p, c.escapes)
				return nil
			}
			escaped := trailingBackslashes(p[:i], c.escapes)%2 == 1
			c.escapes = 0
			p = p[i+1:]
			if !escaped {
				c.inQuote = false
			}
			continue
		}
		i := indexValueMark(p)
		if i < 0 {
			return nil
		}
		switch p[i] {
		case '\'':
			c.inQuote, c.escapes = true, 0
		case '(':
			*c.cur++
		case ';':
			c.mode = modeSkip
			return p[i+1:]
		}
		p = p[i+1:]
	}
	return nil
}

// indexValueMark is the index of the first quote, '(' or ';' in p, or -1. Outside quoted
// strings the spans are short (numbers, commas, NULL): a plain loop beats bytes.IndexAny,
// which builds its set on every call.
func indexValueMark(p []byte) int {
	for i, b := range p {
		if b == '\'' || b == '(' || b == ';' {
			return i
		}
	}
	return -1
}

// trailingBackslashes counts the backslashes at the end of p, adding carry when p is all
// backslashes.
func trailingBackslashes(p []byte, carry int) int {
	n := 0
	for n < len(p) && p[len(p)-1-n] == '\\' {
		n++
	}
	if n == len(p) {
		return carry + n
	}
	return n
}

// tables returns the counts, sorted by database and table.
func (c *rowCounter) tables() []TableRows {
	out := make([]TableRows, 0, len(c.counts))
	for k, n := range c.counts {
		out = append(out, TableRows{Database: k[0], Table: k[1], Rows: *n})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Database != out[j].Database {
			return out[i].Database < out[j].Database
		}
		return out[i].Table < out[j].Table
	})
	return out
}
