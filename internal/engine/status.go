package engine

import (
	"strconv"
	"strings"
	"time"

	"github.com/kura-db/kura/internal/gtid"
)

// Status is one observation of an instance. It is a value: nothing in it is shared.
type Status struct {
	// Reachable is false when no connection could be made (or a query timed out) within the
	// timeout. The remaining fields are then zero.
	Reachable bool
	// Error describes what could not be observed; empty when the observation is complete.
	Error string
	// ObservedAt is when the observation finished.
	ObservedAt time.Time

	ServerID uint32
	// ServerUUID is @@server_uuid on MySQL and @@server_uid on MariaDB (which has no UUID).
	ServerUUID string
	Version    string
	// ReadOnly is @@read_only; SuperReadOnly is @@super_read_only (always false on MariaDB,
	// which has no such variable: its read_only also blocks SUPER, see docs/engines.md).
	ReadOnly      bool
	SuperReadOnly bool
	// LogBin reports whether binary logging is on.
	LogBin bool

	// ExecutedGTID is every transaction the instance has executed: @@gtid_executed on MySQL;
	// on MariaDB @@gtid_binlog_state united with @@gtid_slave_pos.
	ExecutedGTID gtid.Set
	// RetrievedGTID is ExecutedGTID plus what the I/O thread received but the SQL thread may
	// not have applied yet (MySQL Retrieved_Gtid_Set, MariaDB Gtid_IO_Pos).
	RetrievedGTID gtid.Set
	// BinlogPosition is the per-domain position of the binary log (MariaDB
	// @@gtid_binlog_pos); on MySQL it equals ExecutedGTID.
	BinlogPosition gtid.Set
	// ReplicaPosition is the per-domain position of applied replicated transactions (MariaDB
	// @@gtid_slave_pos); on MySQL it equals ExecutedGTID.
	ReplicaPosition gtid.Set

	// Replica is nil when no source is configured.
	Replica *ReplicaStatus
	// SemiSync is the semi-synchronous replication state of both sides.
	SemiSync SemiSyncStatus
}

// Writable reports whether ordinary accounts can write.
func (s Status) Writable() bool { return s.Reachable && !s.ReadOnly && !s.SuperReadOnly }

// ThreadState is the state of a replication thread.
type ThreadState string

const (
	ThreadRunning    ThreadState = "Yes"
	ThreadStopped    ThreadState = "No"
	ThreadConnecting ThreadState = "Connecting"
)

// ReplicaStatus is the replica side of an instance.
type ReplicaStatus struct {
	SourceHost string
	SourcePort int
	SourceUser string

	IOThread  ThreadState
	SQLThread ThreadState
	// IOState and SQLState are the threads' human-readable state texts.
	IOState  string
	SQLState string

	LastIOErrno  int
	LastIOError  string
	LastSQLErrno int
	LastSQLError string

	// UsingGTID is MariaDB's Using_Gtid (Slave_Pos, Current_Pos or No) or, on MySQL, "Auto"
	// when SOURCE_AUTO_POSITION=1 and "No" otherwise.
	UsingGTID string
	// ReceivedGTID is the raw received position: MariaDB Gtid_IO_Pos (per domain), MySQL
	// Retrieved_Gtid_Set.
	ReceivedGTID gtid.Set
	// SecondsBehindSource is nil when the server reports NULL (SQL thread stopped or I/O not
	// connected).
	SecondsBehindSource *int64
	RelayLogSpace       int64
	// TLS: the replica connects to its source with TLS and verifies its certificate.
	TLS bool
}

// Replicating reports whether both threads run.
func (r *ReplicaStatus) Replicating() bool {
	return r != nil && r.IOThread == ThreadRunning && r.SQLThread == ThreadRunning
}

// SemiSyncStatus is the semi-synchronous replication state of an instance.
type SemiSyncStatus struct {
	// SourceEnabled is the configured source side; SourceActive is whether the source is
	// currently waiting for acknowledgements (Rpl_semi_sync_master_status).
	SourceEnabled bool
	SourceActive  bool
	// SourceClients is the number of connected semi-sync replicas.
	SourceClients int
	WaitPoint     string
	// WaitCount is how many acknowledgements a commit waits for (always 1 on MariaDB).
	WaitCount int
	Timeout   time.Duration
	// AckedTransactions and UnackedTransactions count commits acknowledged by a replica and
	// commits that were not (Rpl_semi_sync_master_yes_tx / _no_tx).
	AckedTransactions   int64
	UnackedTransactions int64

	ReplicaEnabled bool
	ReplicaActive  bool
}

func parseBool(v string) bool {
	switch strings.ToUpper(strings.TrimSpace(v)) {
	case "1", "ON", "YES", "TRUE":
		return true
	}
	return false
}

func parseInt(v string) int64 {
	n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	return n
}
