package clustering

import (
	"time"

	"github.com/kura-db/kura/internal/gtid"
)

// NoPrimary is the ordinal used when there is no primary (a fresh cluster).
const NoPrimary = -1

// Observation is everything Decide may look at: the spec, what status recorded, and what one
// observe pass found on every instance. It is a value: Decide and Act never change it, and the
// tests check that Decide leaves it untouched.
type Observation struct {
	// Cluster names the cluster in messages.
	Cluster string
	// Spec holds the knobs of the cluster's spec that clustering uses.
	Spec Spec
	// Recorded is what status recorded in earlier passes (the durable memory of the loop).
	Recorded Recorded
	// Engine describes what the engine can do (it never names the engine).
	Engine EngineTraits
	// Instances in ordinal order: every ordinal below Spec.Replicas, plus any instance whose
	// Pod still exists above it (scale-down in progress).
	Instances []Instance
	// Attempts is the loop's memory of the SET GLOBAL statements it ran, by instance name and
	// variable: a value the server rounded or refused is not set again pass after pass.
	Attempts map[string]map[string]Attempt
	// Now is when the instances were observed; the backoff of re-clones is measured against it.
	Now time.Time
}

// Setting is one option of spec.mysqld.config: its variable name, the value the config
// file holds, and whether the running servers take it with SET GLOBAL (Dynamic) or only at
// their next start.
type Setting struct {
	Name    string
	Value   string
	Dynamic bool
}

// Attempt is one SET GLOBAL the loop ran on an instance: the value, and the server's refusal
// ("" when it succeeded).
type Attempt struct {
	Value   string
	Refused string
}

// Spec holds the clustering knobs of a MySQLCluster spec (docs/clustering.md, "Tunables").
type Spec struct {
	// Replicas is the desired number of instances, primary included.
	Replicas int
	// SemiSync turns loss-less semi-synchronous replication on.
	SemiSync bool
	// MaxLag is the delay beyond which a replica leaves the read set.
	MaxLag time.Duration
	// FailoverGrace is how long the operator's own probes must fail before failover.
	FailoverGrace time.Duration
	// DownGrace, when shorter, replaces FailoverGrace for a primary whose server is down
	// (connection refused); zero means never.
	DownGrace time.Duration
	// ApplyTimeout bounds the wait for a candidate or switchover target to apply what it has.
	ApplyTimeout time.Duration
	// ErrantPolicy says what happens to an errant replica.
	ErrantPolicy ErrantPolicy
	// AutoFailover allows failover without a human.
	AutoFailover bool
	// Paused makes the loop observe and report only.
	Paused bool
	// Switchover is a pending request for a planned change of primary, or nil.
	Switchover *SwitchoverRequest
	// Config holds the options of spec.mysqld.config (docs/configuration.md).
	Config []Setting
}

// ErrantPolicy says what happens to a replica holding transactions the primary lacks.
type ErrantPolicy string

const (
	// ErrantManual leaves the replica out of the read set for a human.
	ErrantManual ErrantPolicy = "Manual"
	// ErrantReclone keeps its data aside and clones it afresh from a donor.
	ErrantReclone ErrantPolicy = "Reclone"
)

// SwitchoverRequest asks for a planned change of primary; the loop acts once per ID.
type SwitchoverRequest struct {
	ID     string
	Target int
}

// Recorded is what the cluster's status says; Decide treats it as the truth about who the
// primary is.
type Recorded struct {
	// Primary is the ordinal of the recorded primary, or NoPrimary.
	Primary int
	// Term is the number of changes of primary so far.
	Term int64
	// SwitchoverHandled is the ID of the last switchover request that completed or was refused.
	SwitchoverHandled string
	// Errant holds, per ordinal, the errant transactions status last reported. During a
	// failover the old primary cannot be asked, so this memory keeps errant replicas out of the
	// candidates and tells their legitimate transactions from the errant ones.
	Errant map[int]gtid.Set
	// Executed holds, per ordinal, the executed set status last reported (the last one seen
	// while the instance answered). A recorded primary that comes back without part of it
	// lost data (an emptied or older volume) and is never made writable again.
	Executed map[int]gtid.Set
	// FormerPrimaries are the ordinals status history names as a primary of an earlier term.
	FormerPrimaries map[int]bool
	// Async is the asynchronous window status records, or nil.
	Async *AsyncWindow
	// Reclones holds, per ordinal, the re-clones status recorded (docs/clustering.md,
	// "Re-cloning"): a fault a re-clone did not cure is not cloned again at once.
	Reclones map[int]Reclone
}

// Reclone is the record of an instance's re-clones: how many started since the first, and the
// latest of them. It is forgotten once the instance has been healthy for recloneResetAfter.
type Reclone struct {
	// Count is the number of re-clones since First, when the first of them started.
	Count int
	First time.Time
	// Last is when the latest started, Reason why, and Donor the ordinal it copies from.
	Last   time.Time
	Reason string
	Donor  int
	// Pod is the identity of the Pod the latest re-clone replaced: the re-clone is under way
	// until another Pod holds the instance.
	Pod string
	// Finished is when the instance was first seen answering after the latest re-clone (zero
	// until then); the backoff runs from it.
	Finished time.Time
	// HealthySince is when the instance was first seen healthy after it (zero while it is not).
	HealthySince time.Time
}

// AsyncWindow is a period in which the primary did not wait for acknowledgements (rule 15):
// transactions after Since may exist on the primary only. Until is, once semi-sync is on
// again, the primary's executed set then; the window closes when a semi-sync replica holds it.
type AsyncWindow struct {
	Since, Until gtid.Set
}

// EngineTraits are the engine differences clustering must know about, as capabilities.
type EngineTraits struct {
	// MaxAckCount is the most acknowledgements a primary can wait for per commit (MariaDB: 1);
	// 0 means no limit (MySQL's rpl_semi_sync_source_wait_for_replica_count).
	MaxAckCount int
}

// Instance is one instance as observed.
type Instance struct {
	Ordinal int
	// Name is the Pod name.
	Name string
	// Host and Port are the address replicas use to reach this instance as their source.
	Host string
	Port int
	// Pod holds what the orchestrator reports about the instance's Pod.
	Pod PodFacts
	// SQL holds what the instance reported over SQL; nil when it could not be reached.
	SQL *SQLFacts
	// Error says why SQL is nil.
	Error string
	// UnreachableFor is how long the operator's own probes have failed to reach the instance
	// without a success in between (0 when reachable).
	UnreachableFor time.Duration
	// Cloning is true while the orchestrator is cloning the instance from a donor.
	Cloning bool
	// Revision is the config/version hash the instance runs with and DesiredRevision the one
	// it should run with; they differ during a rolling change. Empty values never differ.
	Revision        string
	DesiredRevision string
	// Variables are the global values of the Spec.Config variables the server has, by name;
	// nil when they could not be read (VariablesError says why).
	Variables      map[string]string
	VariablesError string
}

// PodFacts are what the orchestrator knows about the instance's Pod.
type PodFacts struct {
	Exists bool
	// Phase is the Pod phase (Pending, Running, ...).
	Phase string
	Ready bool
	// Terminating is true once the Pod is being deleted.
	Terminating bool
	// RoleLabel is the current value of the role label (primary, replica, none or empty).
	RoleLabel string
	// UID identifies the Pod: a re-created Pod has another.
	UID string
}

// SQLFacts are what an instance reported over SQL in one pass.
type SQLFacts struct {
	ServerID uint32
	// ReadOnly is true when ordinary accounts cannot write.
	ReadOnly bool
	// Executed is the set of transactions the instance has committed.
	Executed gtid.Set
	// Retrieved is the set of transactions its replication receiver has received (including
	// those not applied yet); empty when it is not a replica.
	Retrieved gtid.Set
	// Replica describes the instance's replication from a source; nil when none is configured.
	Replica *ReplicaFacts
	// SemiSync is the instance's semi-synchronous replication state.
	SemiSync SemiSyncFacts
}

// ReplicaFacts describe replication from a source.
type ReplicaFacts struct {
	SourceHost string
	SourcePort int
	// IORunning is true when the receiver thread is running and connected.
	IORunning bool
	// IOConnecting is true when the receiver runs but has not connected (yet).
	IOConnecting bool
	// SQLRunning is true when the applier thread is running.
	SQLRunning bool
	IOErrno    int
	IOError    string
	SQLErrno   int
	SQLError   string
	// Lag is the replication delay; nil when the engine does not know it.
	Lag *time.Duration
}

// SemiSyncFacts is an instance's semi-sync state.
type SemiSyncFacts struct {
	SourceEnabled  bool
	ReplicaEnabled bool
	// WaitCount is the number of acknowledgements the source waits for.
	WaitCount int
	// AfterSync is true when the source waits after syncing the binlog (loss-less).
	AfterSync bool
}

// holds returns every transaction the instance has, applied or only received.
func (f *SQLFacts) holds() gtid.Set {
	return f.Executed.Union(f.Retrieved)
}

// reachable reports whether the instance answered over SQL.
func (i Instance) reachable() bool { return i.SQL != nil }

// instance returns the instance with the given ordinal.
func (o Observation) instance(ordinal int) (Instance, bool) {
	for _, in := range o.Instances {
		if in.Ordinal == ordinal {
			return in, true
		}
	}
	return Instance{}, false
}
