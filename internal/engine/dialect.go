package engine

import (
	"fmt"
	"math"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/internal/gtid"
)

// stmt is one SQL statement with '?' placeholders. Arguments are interpolated by the driver
// (client side, aware of the session's NO_BACKSLASH_ESCAPES), so statements that cannot be
// prepared (CHANGE MASTER, CREATE USER) take them too.
type stmt struct {
	Query string
	Args  []any
}

// String renders the statement with literal values, for golden files and for bootstrap
// scripts, which run with the server's default SQL mode (backslash escapes on).
func (s stmt) String() string {
	var b strings.Builder
	arg := 0
	for i := 0; i < len(s.Query); i++ {
		c := s.Query[i]
		if c == '?' && arg < len(s.Args) {
			b.WriteString(literal(s.Args[arg]))
			arg++
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// literal renders a value as an SQL literal.
func literal(v any) string {
	switch x := v.(type) {
	case string:
		return quote(x)
	case int:
		return strconv.Itoa(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case uint64:
		return strconv.FormatUint(x, 10)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	}
	panic(fmt.Sprintf("engine: no literal form for %T", v))
}

// quote returns a single-quoted string literal with MySQL's backslash escapes.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('\'')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case 0:
			b.WriteString(`\0`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\\':
			b.WriteString(`\\`)
		case '\'':
			b.WriteString(`\'`)
		case '"':
			b.WriteString(`\"`)
		case 0x1a:
			b.WriteString(`\Z`)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('\'')
	return b.String()
}

// replicaColumns names the columns of SHOW SLAVE/REPLICA STATUS.
type replicaColumns struct {
	host, port, user, io, sql, ioState, sqlState, seconds, usingGTID, received string
	sslAllowed, sslVerify                                                      string
}

// semiSyncNames names the semi-sync variables and status counters.
type semiSyncNames struct {
	sourceEnabled, timeout, waitPoint, waitCount, replicaEnabled string
	sourceStatus, clients, yesTx, noTx, replicaStatus            string
}

// dialect is everything engine-specific: statement text, variable and column names and how
// GTID positions are read. Statement builders are pure and pinned by golden tests.
type dialect interface {
	engine() kurav1alpha1.Engine
	flavor() gtid.Flavor
	globalsQuery() string
	parseGlobals(row map[string]string, st *Status) error
	replicaStatusQuery() string
	columns() replicaColumns
	parseUsingGTID(row map[string]string) string
	semiSync() semiSyncNames
	processlistQuery() string
	// receiverQuery lists the connection ids of the replication receiver (I/O thread); empty
	// when the engine stops its receiver promptly without help.
	receiverQuery() string

	changeSource(src Source) stmt
	startThreads(t Thread) stmt
	stopThreads(t Thread) stmt
	resetReplica() []stmt
	waitGTID(set gtid.Set, seconds float64) stmt
	// waitTimedOut interprets the wait function's result.
	waitTimedOut(result int64) bool
	readOnly(on bool) []stmt
	semiSyncStatements(cfg SemiSyncConfig) []stmt
	flushBinaryLogs() stmt
	resetGTIDState(state gtid.Set) []stmt
	grants(role AccountRole) (privileges []string, grantOption bool)
	disableBinlog() stmt
	// applyRelayLog starts the SQL thread over the relay log at file:pos with the I/O thread
	// stopped, keeping the relay log.
	applyRelayLog(file string, pos int64) []stmt
	// rejoinStatements run before changeSource, with the threads stopped, given the executed
	// set and the replica position; nil when the position needs no preparation.
	rejoinStatements(executed, replicaPos gtid.Set) []stmt
	// cloneFrom copies a donor's data into this server with the CLONE plugin; nil when the
	// engine clones by stream instead.
	cloneFrom(donor Endpoint) []stmt
}

// withSourceTLS ends a change-of-source statement with its TLS options (prefix MASTER or
// SOURCE): verified against caFile, or off when caFile is empty.
func withSourceTLS(s stmt, prefix, caFile string) stmt {
	if caFile == "" {
		s.Query += fmt.Sprintf(", %[1]s_SSL = 0, %[1]s_SSL_VERIFY_SERVER_CERT = 0", prefix)
		return s
	}
	s.Query += fmt.Sprintf(", %[1]s_SSL = 1, %[1]s_SSL_CA = ?, %[1]s_SSL_VERIFY_SERVER_CERT = 1", prefix)
	s.Args = append(s.Args, caFile)
	return s
}

// threadClause renders the optional IO_THREAD / SQL_THREAD of START/STOP.
func threadClause(t Thread) string {
	switch t {
	case IOThread:
		return " IO_THREAD"
	case SQLThread:
		return " SQL_THREAD"
	}
	return ""
}

func connectRetrySeconds(d time.Duration) int {
	s := int(math.Ceil(d.Seconds()))
	if s < 1 {
		s = 1
	}
	return s
}

func semiSyncTimeoutMillis(d time.Duration) int64 {
	if d <= 0 || d.Milliseconds() > math.MaxUint32 {
		return math.MaxUint32
	}
	return d.Milliseconds()
}

func onOff(b bool) string {
	if b {
		return "ON"
	}
	return "OFF"
}

func joinHostPort(host string, port int) string {
	return net.JoinHostPort(host, strconv.Itoa(port))
}

// globalValue turns a SET GLOBAL value into an argument: integers (with an optional K, M or
// G suffix, which SET does not accept) and decimals as numbers (a numeric variable refuses a
// string), anything else as a string.
func globalValue(v string) any {
	v = strings.TrimSpace(v)
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		return n
	}
	if decimal.MatchString(v) {
		if f, err := strconv.ParseFloat(v, 64); err == nil {
			return f
		}
	}
	if len(v) > 1 {
		shift := map[byte]uint{'k': 10, 'K': 10, 'm': 20, 'M': 20, 'g': 30, 'G': 30}[v[len(v)-1]]
		if n, err := strconv.ParseInt(v[:len(v)-1], 10, 64); err == nil && shift > 0 && n >= 0 && n <= math.MaxInt64>>shift {
			return n << shift
		}
	}
	return v
}

var decimal = regexp.MustCompile(`^[0-9]*\.[0-9]+$|^[0-9]+\.[0-9]*$`)
