// Package engine is the SQL layer under the clustering core: one Instance interface with a
// MariaDB (10.11, 11.4) and a MySQL (8.4, experimental) implementation. Every
// engine-specific statement, variable name and GTID format lives here, so the core never
// branches on the engine. See docs/engines.md.
package engine

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"time"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/internal/gtid"
)

// Endpoint is where and as whom to connect.
type Endpoint struct {
	Host     string
	Port     int
	User     string
	Password string
	// Socket, when set, is a Unix socket used instead of Host and Port (a server started
	// privately with --skip-networking).
	Socket string
	// TLS, when set, makes TCP connections use TLS with this configuration (the server's CA
	// in RootCAs and, when Host is an address the certificate does not name, the name to
	// verify in ServerName); a server without TLS is then refused. Nil connects in clear
	// text. Unused with Socket.
	TLS *tls.Config
	// CAFile is the same CA as a file, for the external tools (mariadb-backup) that connect
	// to this endpoint: they then use TLS and verify the server against it.
	CAFile string
}

// Address returns host:port, or the socket path.
func (e Endpoint) Address() string {
	if e.Socket != "" {
		return e.Socket
	}
	return joinHostPort(e.Host, e.Port)
}

// Options bound every network operation. Zero fields take the defaults below.
type Options struct {
	// ConnectTimeout bounds dialing and the handshake (default 2s).
	ConnectTimeout time.Duration
	// ReadTimeout and WriteTimeout bound each network read and write (default 10s). Long waits
	// (WaitForGTID) are split into calls shorter than ReadTimeout.
	ReadTimeout  time.Duration
	WriteTimeout time.Duration
	// StatusTimeout bounds one Status call when the caller's context has no earlier deadline
	// (default ConnectTimeout + ReadTimeout).
	StatusTimeout time.Duration
	// ReplicationCA is the CA file, on the instance's own filesystem, that ConfigureReplica
	// uses for a Source without CAFile: replication then runs over TLS and the replica
	// verifies the source's certificate and host name against it. Empty replicates in clear
	// text.
	ReplicationCA string
}

// Default timeouts.
const (
	DefaultConnectTimeout = 2 * time.Second
	DefaultReadTimeout    = 10 * time.Second
	DefaultWriteTimeout   = 10 * time.Second
)

func (o Options) withDefaults() Options {
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = DefaultConnectTimeout
	}
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = DefaultReadTimeout
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	if o.StatusTimeout <= 0 {
		o.StatusTimeout = o.ConnectTimeout + o.ReadTimeout
	}
	return o
}

// Thread names a replication thread.
type Thread string

const (
	// IOThread receives the source's binlog into the relay log.
	IOThread Thread = "io"
	// SQLThread applies the relay log.
	SQLThread Thread = "sql"
	// BothThreads is the I/O and the SQL thread.
	BothThreads Thread = ""
)

// Source is the primary a replica replicates from.
type Source struct {
	Host     string
	Port     int
	User     string
	Password string
	// ConnectRetry is the delay between reconnection attempts (default 1s).
	ConnectRetry time.Duration
	// CAFile, when set, is the CA file on the replica's filesystem: the replica connects to
	// the source with TLS and verifies its certificate, host name included, against it.
	CAFile string
}

// Role is an instance's semi-synchronous replication role.
type Role string

const (
	// RolePrimary waits for replica acknowledgements before acknowledging commits.
	RolePrimary Role = "primary"
	// RoleReplica acknowledges the transactions it receives.
	RoleReplica Role = "replica"
	// RoleNone takes no part in semi-synchronous replication.
	RoleNone Role = "none"
)

// SemiSyncConfig is the semi-synchronous replication setting of one instance.
type SemiSyncConfig struct {
	Role Role
	// WaitCount is how many replica acknowledgements a primary waits for. 0 turns the source
	// side off, so a primary with no healthy replica never blocks. MariaDB waits for one
	// acknowledgement whatever the count above 0.
	WaitCount int
	// Timeout is how long a primary waits before falling back to asynchronous replication;
	// zero means the largest value (about 49 days), i.e. never.
	Timeout time.Duration
}

// Instance is one database server. Methods are safe for concurrent use. Every method that
// changes state is idempotent.
type Instance interface {
	// Engine names the engine; Flavor the GTID format of its sets.
	Engine() kurav1alpha1.Engine
	Flavor() gtid.Flavor
	// Endpoint returns where the instance is reached.
	Endpoint() Endpoint

	// Ping checks that the instance accepts the credentials.
	Ping(ctx context.Context) error
	// Status observes the instance. It never fails: an instance that cannot be reached within
	// the timeout is reported with Reachable=false, and a partial observation carries Error.
	Status(ctx context.Context) Status
	// ExecutedGTID returns the set of transactions the instance has (see docs/engines.md).
	ExecutedGTID(ctx context.Context) (gtid.Set, error)

	// ConfigureReplica points the instance at a source with GTID auto-positioning. The
	// threads are left stopped; StartReplication starts them. A replica already configured
	// for the same host, port and user is left as it is.
	ConfigureReplica(ctx context.Context, src Source) error
	// StartReplication and StopReplication start or stop one or both threads.
	StartReplication(ctx context.Context, t Thread) error
	StopReplication(ctx context.Context, t Thread) error
	// ApplyRelayLog applies what the instance has already received without contacting the
	// source again: it stops the I/O thread and runs the SQL thread over the relay log kept
	// on disk. This is how a failover candidate applies its retrieved set after the primary is
	// gone. (On MariaDB, StartReplication with both threads stopped would discard the relay
	// log in GTID mode; see docs/engines.md.) WaitForGTID then waits for the result.
	ApplyRelayLog(ctx context.Context) error
	// StopReplicaAndReset stops replication and forgets the source (not the GTID position).
	StopReplicaAndReset(ctx context.Context) error
	// WaitForGTID waits until the instance has executed every transaction of set, or fails
	// with ErrWaitTimeout after timeout.
	WaitForGTID(ctx context.Context, set gtid.Set, timeout time.Duration) error

	// SetReadOnly turns writes off (read_only, and super_read_only on MySQL) or on.
	SetReadOnly(ctx context.Context, readOnly bool) error
	// KillClientConnections kills every client connection except replication and server
	// threads and the one it runs on (chosen by connection id, never by account); it returns
	// how many it killed.
	KillClientConnections(ctx context.Context) (int, error)
	// Fence kills every other client connection, then turns read-only on with a bounded lock
	// wait, repeating both until it holds or ctx ends (rule 3a). It returns how many
	// connections it killed.
	Fence(ctx context.Context) (int, error)
	// Shutdown stops the server (SHUTDOWN): the last resort when a fence cannot complete.
	Shutdown(ctx context.Context) error
	// ConfigureSemiSync applies a semi-sync role (loss-less AFTER_SYNC wait point).
	ConfigureSemiSync(ctx context.Context, cfg SemiSyncConfig) error

	// EnsureAccounts creates missing accounts and fixes passwords and privileges. Changes are
	// binlogged, so call it on the primary only; it writes nothing when CheckAccounts passes.
	EnsureAccounts(ctx context.Context, accounts []Account) error
	// CheckAccounts returns an *AccountsError listing what is missing or wrong.
	CheckAccounts(ctx context.Context, accounts []Account) error

	// SetGlobal sets a dynamic global variable. Sizes may use K, M or G suffixes. An error the
	// server answered with (the variable is read-only, the value is out of range) wraps
	// ErrRefused.
	SetGlobal(ctx context.Context, name, value string) error
	// GlobalVariables returns the global values of the named variables the server has, by
	// lower-case name; a name the server does not know is absent.
	GlobalVariables(ctx context.Context, names []string) (map[string]string, error)
	// FlushBinaryLogs closes the current binlog file and opens a new one.
	FlushBinaryLogs(ctx context.Context) error
	// ResetGTIDState makes a freshly restored or cloned instance record exactly state as the
	// transactions it has: it empties the binary log (RESET MASTER / RESET BINARY LOGS AND
	// GTIDS) and sets the GTID state. Never call it on an instance that serves data.
	ResetGTIDState(ctx context.Context, state gtid.Set) error

	// Close releases the connection pool.
	Close() error
}

// ErrWaitTimeout is returned by WaitForGTID when the set was not reached in time.
var ErrWaitTimeout = errors.New("timed out waiting for GTID set")

// ErrRefused is wrapped by SetGlobal when the server refused the statement, as opposed to a
// connection that failed: retrying the same value cannot succeed.
var ErrRefused = errors.New("refused by the server")

// ErrNoRelayLog is wrapped by ApplyRelayLog when the replica has no relay log position to
// apply from (it never received anything): stopping the receiver is then all there is to do.
var ErrNoRelayLog = errors.New("no relay log position")

// Open returns an Instance without doing any I/O; connections are made on use.
func Open(kind kurav1alpha1.Engine, ep Endpoint, opts Options) (Instance, error) {
	d, err := dialectFor(kind)
	if err != nil {
		return nil, err
	}
	return newInstance(d, ep, opts.withDefaults()), nil
}

// Connect is Open followed by Ping; it returns the Ping error (for example wrong credentials)
// and closes the pool on failure.
func Connect(ctx context.Context, kind kurav1alpha1.Engine, ep Endpoint, opts Options) (Instance, error) {
	inst, err := Open(kind, ep, opts)
	if err != nil {
		return nil, err
	}
	if err := inst.Ping(ctx); err != nil {
		_ = inst.Close()
		return nil, err
	}
	return inst, nil
}

// FlavorOf returns the GTID flavor of an engine.
func FlavorOf(kind kurav1alpha1.Engine) gtid.Flavor {
	if kind == kurav1alpha1.EngineMySQL {
		return gtid.MySQL
	}
	return gtid.MariaDB
}

func dialectFor(kind kurav1alpha1.Engine) (dialect, error) {
	switch kind {
	case kurav1alpha1.EngineMariaDB, "":
		return mariadbDialect{}, nil
	case kurav1alpha1.EngineMySQL:
		return mysqlDialect{}, nil
	}
	return nil, fmt.Errorf("failed to open instance: unknown engine %q", kind)
}
