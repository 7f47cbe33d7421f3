package clustering

import (
	"context"
	"time"

	"github.com/kura-db/kura/internal/gtid"
)

// SQL is what Observe and Act need of one instance over SQL. It is narrow on purpose: the
// engine package's connection is wrapped to satisfy it (engine.go), and a test can stand in for
// it. Every method must return when ctx is done.
type SQL interface {
	// Facts reports the instance's state: read-only, GTID sets, replication, semi-sync.
	Facts(ctx context.Context) (*SQLFacts, error)
	// Executed reports the executed GTID set only (cheap; read after the replicas' facts so a
	// replica is never judged errant against an older primary set).
	Executed(ctx context.Context) (gtid.Set, error)
	// StopReceiver stops the replication I/O thread; a no-op when it is stopped.
	StopReceiver(ctx context.Context) error
	// SetReadOnly turns read-only on or off (super_read_only on MySQL).
	SetReadOnly(ctx context.Context, on bool) error
	// Fence kills every client connection but its own (by connection id, never by account),
	// then turns read-only on with a bounded lock wait, repeating both until read-only holds or
	// ctx ends (rule 3a).
	Fence(ctx context.Context) error
	// Shutdown stops the server: the last resort of a fence that cannot complete.
	Shutdown(ctx context.Context) error
	// WaitExecuted blocks until the instance has executed set, or ctx is done.
	WaitExecuted(ctx context.Context, set gtid.Set) error
	// ResetReplication stops replication and forgets the source.
	ResetReplication(ctx context.Context) error
	// ReplicateFrom points the instance at host:port with GTID auto-positioning, sets the
	// semi-sync replica role and starts both threads. It turns the semi-sync source role off.
	ReplicateFrom(ctx context.Context, host string, port int, semiSync bool) error
	// ConfigureSemiSyncSource sets the semi-sync source role (AFTER_SYNC, waitCount acks).
	ConfigureSemiSyncSource(ctx context.Context, enabled bool, waitCount int) error
	// Variables reads the global values of the named variables; a name the server does not
	// know is absent.
	Variables(ctx context.Context, names []string) (map[string]string, error)
	// SetGlobal sets a dynamic variable. A refusal by the server (as opposed to a failed
	// connection) wraps engine.ErrRefused.
	SetGlobal(ctx context.Context, name, value string) error
}

// Target is one instance to observe and act on, with what the orchestrator knows of it.
type Target struct {
	Ordinal         int
	Name            string
	Host            string
	Port            int
	Pod             PodFacts
	Cloning         bool
	Revision        string
	DesiredRevision string
}

// Snapshot is what a Source reports at the start of a pass.
type Snapshot struct {
	Cluster  string
	Spec     Spec
	Recorded Recorded
	Engine   EngineTraits
	// Targets are the instances: every ordinal below Spec.Replicas and every Pod above it.
	Targets []Target
	// Connect returns the SQL access to one instance. It is called for every target of
	// every pass and should reuse connections (a pool per instance).
	Connect func(Target) (SQL, error)
}

// Source tells the loop what the cluster should be and what exists (the operator: the
// MySQLCluster, its Pods and its Secret; tests: a fixed list of mariadbd processes).
type Source interface {
	Snapshot(ctx context.Context) (Snapshot, error)
}

// TopologyChange is a change of primary to record durably.
type TopologyChange struct {
	Term     int64
	Kind     string
	From, To int
	// FromName and ToName are the instances' names ("" for NoPrimary).
	FromName, ToName string
	Reason           string
	Time             time.Time
	// MayLoseAcknowledged: see RecordTopologyChange.
	MayLoseAcknowledged bool
}

// Report is the outcome of one pass, for status.
type Report struct {
	// OperationID names the pass in logs and events.
	OperationID string
	Plan        Plan
	Result      Result
	// Observation is what the pass decided on.
	Observation Observation
}

// Sink carries the loop's decisions to the world (the operator: the MySQLCluster status,
// Pod labels, Pod deletion, clone jobs and Events; tests: memory and direct actions).
type Sink interface {
	// RecordTopologyChange must persist the new primary and term before it returns: the new
	// primary becomes writable only after it succeeded. Recording the same term twice is a
	// no-op.
	RecordTopologyChange(ctx context.Context, c TopologyChange) error
	// RecordSwitchover persists the outcome of a switchover request.
	RecordSwitchover(ctx context.Context, r RecordSwitchover) error
	// SetRoleLabel sets the role label of an instance's Pod.
	SetRoleLabel(ctx context.Context, t Target, role string) error
	// RestartInstance restarts an instance so it runs its desired revision.
	RestartInstance(ctx context.Context, t Target, reason string) error
	// FenceThroughAgent asks the instance's agent to fence its server, or to kill it when it
	// is frozen (FenceThroughAgent step, rule 3c); it reports what the agent did.
	FenceThroughAgent(ctx context.Context, t Target) (string, error)
	// RecloneInstance keeps the instance's data aside and clones it from donor. It persists
	// record (the instance's re-clone record with this one counted) before the instance goes.
	RecloneInstance(ctx context.Context, t, donor Target, reason string, record Reclone) error
	// Event emits one Event about the cluster.
	Event(ctx context.Context, e EmitEvent)
	// Publish writes the pass's status (state, conditions, instances). Called once per pass.
	Publish(ctx context.Context, r Report) error
}
