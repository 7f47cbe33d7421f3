package clustering

import (
	"fmt"
	"time"

	"github.com/kura-db/kura/internal/events"
	"github.com/kura-db/kura/internal/gtid"
)

// Step is one idempotent action of a Plan. Each is a small value; Act knows how to run each
// kind. Running a step twice has the effect of running it once.
type Step interface {
	// String describes the step for logs and status.
	String() string
	isStep()
}

// Optional wraps a step whose failure must not stop the plan (fencing an old primary that may
// be gone, repointing a replica the next pass can repair).
type Optional struct{ Step Step }

// FenceIOThreads stops the replication receiver of a replica, so the primary it replicated
// from can no longer collect its acknowledgement (docs/clustering.md, "Failover" step 1).
type FenceIOThreads struct{ Instance int }

// SetReadOnly makes an instance refuse writes (ReadOnly true) or accept them.
type SetReadOnly struct {
	Instance int
	ReadOnly bool
}

// Fence makes an instance refuse writes and completes (rule 3a): it kills every client
// connection but the operator's own (by connection id), then turns read-only on with a bounded
// lock wait, repeating both until read-only holds. A commit waiting for a semi-sync
// acknowledgement ends with an error to its client, never a success. With StopIfStuck, an
// instance that still cannot be fenced within the step's time is shut down: it must never
// acknowledge a write.
type Fence struct {
	Instance    int
	StopIfStuck bool
}

// FenceThroughAgent asks an instance's agent, which runs beside the server, to fence it, or,
// when the server does not answer the agent either but last answered it as a writable primary
// (frozen), to kill it (rule 3c). A failover runs it on the old primary next to the receiver
// fences, so a frozen primary is dead before another instance is promoted and never answers
// as writable when it would have thawed.
type FenceThroughAgent struct{ Instance int }

// WaitApplied waits until an instance has executed GTIDs, at most Timeout.
type WaitApplied struct {
	Instance int
	GTIDs    gtid.Set
	Timeout  time.Duration
}

// WaitCaughtUp reads the executed set of Source when the step runs (after Source was made
// read-only), then waits until Instance has executed it, at most Timeout.
type WaitCaughtUp struct {
	Instance int
	Source   int
	Timeout  time.Duration
}

// Promote stops replication on an instance and forgets its source. It stays read-only; a later
// SetReadOnly makes it writable once the new topology is recorded.
type Promote struct{ Instance int }

// ConfigureReplica points an instance at Source with GTID auto-positioning and starts both
// replication threads. It turns the semi-sync source role off and the replica role on
// (when SemiSync).
type ConfigureReplica struct {
	Instance int
	Source   int
	SemiSync bool
}

// ConfigureSemiSync sets the semi-sync source role of a primary: enabled, waiting after sync
// for WaitCount acknowledgements.
type ConfigureSemiSync struct {
	Instance  int
	Enabled   bool
	WaitCount int
}

// SetRoleLabel sets the role label the Services select on.
type SetRoleLabel struct {
	Instance int
	Role     string
}

// RestartInstance restarts an instance so it runs its desired revision (rolling changes).
type RestartInstance struct {
	Instance int
	Reason   string
}

// RecloneInstance keeps an instance's data aside and clones it afresh from Donor. Record is the
// instance's re-clone record once this one has started; the sink persists it before the Pod
// goes, so the backoff survives a restart of the operator.
type RecloneInstance struct {
	Instance int
	Donor    int
	Reason   string
	Record   Reclone
}

// SetGlobal applies a dynamic option of spec.mysqld.config to a running instance (SET GLOBAL).
type SetGlobal struct {
	Instance int
	Name     string
	Value    string
}

// RecordTopologyChange durably records a new primary and term in status. It runs before the
// new primary becomes writable, so a crash never leaves a writable instance status does not
// name.
type RecordTopologyChange struct {
	Term   int64
	Kind   string
	From   int
	To     int
	Reason string
	// MayLoseAcknowledged is true when the change cannot prove that the new primary holds
	// every acknowledged write (semi-synchronous replication is off).
	MayLoseAcknowledged bool
}

// Topology change kinds.
const (
	KindBootstrap  = "Bootstrap"
	KindFailover   = "Failover"
	KindSwitchover = "Switchover"
)

// RecordSwitchover records the outcome of a switchover request.
type RecordSwitchover struct {
	ID      string
	Target  int
	Phase   string
	Message string
}

// Switchover phases.
const (
	SwitchoverCompleted = "Completed"
	SwitchoverRefused   = "Refused"
)

// EmitEvent emits one Event for an action the loop chose.
type EmitEvent struct {
	Warning bool
	Reason  string
	Message string
}

// Event reasons, the clustering part of the operator's event catalogue (internal/events).
const (
	EventBootstrapped          = events.Bootstrapped
	EventFailoverStarted       = events.FailoverStarted
	EventFailoverCompleted     = events.FailoverCompleted
	EventFailoverRefused       = events.FailoverRefused
	EventSwitchoverStarted     = events.SwitchoverStarted
	EventSwitchoverCompleted   = events.SwitchoverCompleted
	EventSwitchoverRefused     = events.SwitchoverRefused
	EventInstanceFenced        = events.InstanceFenced
	EventReplicaConfigured     = events.ReplicaConfigured
	EventErrantReplicaDetected = events.ErrantReplicaDetected
	EventInstanceRestarted     = events.InstanceRestarted
	EventInstanceCloneStarted  = events.InstanceCloneStarted
	EventClusterLost           = events.ClusterLost
	EventKeptAside             = events.UnacknowledgedKeptAside
	EventFrozenPrimaryStopped  = events.FrozenPrimaryStopped
	EventConfigApplied         = events.ConfigApplied
	EventConfigRefused         = events.ConfigRefused
	EventRecloneBackedOff      = events.RecloneBackedOff
)

func (Optional) isStep()             {}
func (FenceIOThreads) isStep()       {}
func (SetReadOnly) isStep()          {}
func (FenceThroughAgent) isStep()    {}
func (Fence) isStep()                {}
func (WaitApplied) isStep()          {}
func (WaitCaughtUp) isStep()         {}
func (Promote) isStep()              {}
func (ConfigureReplica) isStep()     {}
func (ConfigureSemiSync) isStep()    {}
func (SetRoleLabel) isStep()         {}
func (RestartInstance) isStep()      {}
func (RecloneInstance) isStep()      {}
func (RecordTopologyChange) isStep() {}
func (RecordSwitchover) isStep()     {}
func (SetGlobal) isStep()            {}
func (EmitEvent) isStep()            {}

func (s Optional) String() string       { return "optional " + s.Step.String() }
func (s FenceIOThreads) String() string { return fmt.Sprintf("fence-io-threads(%d)", s.Instance) }
func (s FenceThroughAgent) String() string {
	return fmt.Sprintf("fence-through-agent(%d)", s.Instance)
}
func (s SetReadOnly) String() string {
	return fmt.Sprintf("set-read-only(%d, %t)", s.Instance, s.ReadOnly)
}
func (s Fence) String() string {
	if s.StopIfStuck {
		return fmt.Sprintf("fence(%d, or stop it)", s.Instance)
	}
	return fmt.Sprintf("fence(%d)", s.Instance)
}
func (s WaitApplied) String() string {
	return fmt.Sprintf("wait-applied(%d, %q, %s)", s.Instance, s.GTIDs.String(), s.Timeout)
}
func (s WaitCaughtUp) String() string {
	return fmt.Sprintf("wait-caught-up(%d, source %d, %s)", s.Instance, s.Source, s.Timeout)
}
func (s Promote) String() string { return fmt.Sprintf("promote(%d)", s.Instance) }
func (s ConfigureReplica) String() string {
	return fmt.Sprintf("configure-replica(%d, source %d, semi-sync %t)", s.Instance, s.Source, s.SemiSync)
}
func (s ConfigureSemiSync) String() string {
	return fmt.Sprintf("configure-semi-sync(%d, %t, wait %d)", s.Instance, s.Enabled, s.WaitCount)
}
func (s SetRoleLabel) String() string {
	return fmt.Sprintf("set-role-label(%d, %s)", s.Instance, s.Role)
}
func (s RestartInstance) String() string {
	return fmt.Sprintf("restart(%d: %s)", s.Instance, s.Reason)
}
func (s RecloneInstance) String() string {
	return fmt.Sprintf("reclone(%d from %d: %s)", s.Instance, s.Donor, s.Reason)
}
func (s RecordTopologyChange) String() string {
	return fmt.Sprintf("record-%s(term %d, %d -> %d: %s)", s.Kind, s.Term, s.From, s.To, s.Reason)
}
func (s RecordSwitchover) String() string {
	return fmt.Sprintf("record-switchover(%s, target %d, %s: %s)", s.ID, s.Target, s.Phase, s.Message)
}
func (s SetGlobal) String() string {
	return fmt.Sprintf("set-global(%d, %s = %s)", s.Instance, s.Name, s.Value)
}
func (s EmitEvent) String() string { return fmt.Sprintf("event(%s: %s)", s.Reason, s.Message) }
