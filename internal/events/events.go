// Package events is the catalogue of Kubernetes Events Kura emits. Events are emitted only for
// actions the operator chose, each with one reason from this list.
package events

import (
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"
)

// Event types.
const (
	Normal  = "Normal"
	Warning = "Warning"
)

// Reasons. The action of each event is the reason's verb in lower case.
const (
	CredentialsGenerated = "CredentialsGenerated"
	CredentialsInvalid   = "CredentialsInvalid"
	ConfigInvalid        = "ConfigInvalid"
	ConfigChanged        = "ConfigChanged"
	ReconcileFailed      = "ReconcileFailed"
	ScheduleInvalid      = "ScheduleInvalid"
	StorageExpanded      = "StorageExpanded"

	// Clustering.
	Bootstrapped           = "Bootstrapped"
	FailoverStarted        = "FailoverStarted"
	FailoverCompleted      = "FailoverCompleted"
	FailoverRefused        = "FailoverRefused"
	SwitchoverStarted      = "SwitchoverStarted"
	SwitchoverCompleted    = "SwitchoverCompleted"
	SwitchoverRefused      = "SwitchoverRefused"
	InstanceFenced         = "InstanceFenced"
	ReplicaConfigured      = "ReplicaConfigured"
	ErrantReplicaDetected  = "ErrantReplicaDetected"
	InstanceRestarted      = "InstanceRestarted"
	InstanceCloneStarted   = "InstanceCloneStarted"
	InstanceCloneCompleted = "InstanceCloneCompleted"
	ClusterLost            = "ClusterLost"

	// Backups.
	BackupStarted   = "BackupStarted"
	BackupCompleted = "BackupCompleted"
	BackupFailed    = "BackupFailed"
	BackupPruned    = "BackupPruned"
	BackupDataKept  = "BackupDataKept"
	RestoreStarted  = "RestoreStarted"
	RestoreComplete = "RestoreCompleted"
	RestoreFailed   = "RestoreFailed"

	// The binary log archive.
	BinlogArchiveGap     = "BinlogArchiveGap"
	BinlogArchiveStalled = "BinlogArchiveStalled"
	BinlogArchiveHealthy = "BinlogArchiveHealthy"
)

// Recorder emits catalogue events about one object.
type Recorder struct {
	R events.EventRecorder
}

// Emit records an event; action is derived from the reason.
func (r Recorder) Emit(obj runtime.Object, eventType, reason, note string, args ...any) {
	r.EmitRelated(obj, nil, eventType, reason, note, args...)
}

// EmitRelated records an event about obj that concerns related (for example one instance Pod
// of a cluster). Events with the same object, related object and reason are merged into one
// series by the events API, so per-instance events must name their instance here.
func (r Recorder) EmitRelated(obj, related runtime.Object, eventType, reason, note string, args ...any) {
	if r.R == nil {
		return
	}
	r.R.Eventf(obj, related, eventType, reason, reason, note, args...)
}
