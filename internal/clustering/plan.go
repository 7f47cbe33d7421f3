package clustering

import (
	"time"

	"github.com/kura-db/kura/internal/gtid"
)

// State summarises the topology (docs/clustering.md, "States").
type State string

const (
	StateBootstrapping State = "Bootstrapping"
	StateHealthy       State = "Healthy"
	StateDegraded      State = "Degraded"
	StateFailed        State = "Failed"
	StateLost          State = "Lost"
	StateSwitching     State = "Switching"
	StatePaused        State = "Paused"
)

// Role is the part an instance plays, as reported in status.
type Role string

const (
	RolePrimary Role = "primary"
	RoleReplica Role = "replica"
	RoleErrant  Role = "errant"
	RoleCloning Role = "cloning"
	RoleUnknown Role = "unknown"
)

// Role label values the primary and replicas Services select on.
const (
	LabelPrimary = "primary"
	LabelReplica = "replica"
	LabelNone    = "none"
)

// Plan is Decide's answer: what the cluster is, why, and the ordered steps that move it toward
// the spec.
type Plan struct {
	State State
	// Reason (CamelCase) and Message say why the cluster is in State, for an on-call engineer.
	Reason  string
	Message string
	// Primary is the ordinal of the primary once the steps have run (NoPrimary when none).
	Primary int
	// Term is the term once the steps have run.
	Term int64
	// Steps run in order; each is idempotent. A step that fails stops the plan unless it is
	// wrapped in Optional.
	Steps []Step
	// OnFailure runs (each step best effort) when a step of Steps fails before a
	// RecordTopologyChange succeeded: it undoes the fencing of a switchover that cannot finish.
	OnFailure []Step
	// Instances is the derived status of every observed instance, in ordinal order.
	Instances []InstanceStatus
	// Conditions are Available, Healthy and Degraded, with reasons an on-call engineer can act on.
	Conditions []Condition
	// Continue asks for the next pass right after this one: the plan did the first stage of a
	// multi-pass change (a fence before a failover).
	Continue bool
	// RequeueAfter asks for the next pass no later than this (0: the loop's interval). It is set
	// while the primary is unreachable so the grace period is measured finely.
	RequeueAfter time.Duration
	// MinInstances is the number of ordinals the orchestrator must keep: scale-down never
	// removes the primary before it has been switched over.
	MinInstances int
	// KeptAside lists the transactions this plan sets aside (rule 15b), for status.
	KeptAside []KeptAside
	// Async is the asynchronous window status must hold after this pass, or nil.
	Async *AsyncWindow
	// Config is the state of every option of spec.mysqld.config, by name.
	Config []ConfigStatus
	// Reclones are the re-clone records status must hold after this pass, by ordinal.
	Reclones map[int]Reclone
}

// KeptAside is a set of transactions an instance's re-clone keeps aside in its volume.
type KeptAside struct {
	Ordinal int
	Name    string
	GTIDs   gtid.Set
	Reason  string
}

// InstanceStatus is the derived status of one instance.
type InstanceStatus struct {
	Ordinal   int
	Name      string
	Role      Role
	Reachable bool
	// Healthy: a writable primary, or a replica replicating from the primary within maxLag.
	Healthy bool
	// Label is the role label the instance should carry (primary, replica or none).
	Label    string
	ReadOnly bool
	Executed gtid.Set
	Lag      *time.Duration
	// Errant holds the transactions this instance has and the primary lacks.
	Errant gtid.Set
	// Reason explains an unhealthy instance.
	Reason string
}

// Condition types.
const (
	ConditionAvailable = "Available"
	ConditionHealthy   = "Healthy"
	ConditionDegraded  = "Degraded"
)

// ConditionStatus is True, False or Unknown.
type ConditionStatus string

const (
	ConditionTrue    ConditionStatus = "True"
	ConditionFalse   ConditionStatus = "False"
	ConditionUnknown ConditionStatus = "Unknown"
)

// Condition is one status condition.
type Condition struct {
	Type    string
	Status  ConditionStatus
	Reason  string
	Message string
}

// Condition returns the condition of the given type.
func (p Plan) Condition(t string) (Condition, bool) {
	for _, c := range p.Conditions {
		if c.Type == t {
			return c, true
		}
	}
	return Condition{}, false
}

// InstanceStatus returns the derived status of an ordinal.
func (p Plan) InstanceStatus(ordinal int) (InstanceStatus, bool) {
	for _, s := range p.Instances {
		if s.Ordinal == ordinal {
			return s, true
		}
	}
	return InstanceStatus{}, false
}
