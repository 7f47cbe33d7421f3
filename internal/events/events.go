// Package events is the catalogue of Kubernetes Events Kura emits. Events are emitted only for
// actions the operator chose, each with one reason from this list.
package events

import (
	"k8s.io/apimachinery/pkg/runtime"
)

// Event types.
const (
	Normal  = "Normal"
	Warning = "Warning"
)

// Reasons: the whole catalogue, documented in docs/events.md. Every reason here is emitted
// somewhere and every emitted reason is here (TestCatalogue). The clustering loop's reasons
// are the same constants under its own names (clustering.Event*).
const (
	// The MySQLCluster reconciler.
	CredentialsGenerated = "CredentialsGenerated"
	CredentialsInvalid   = "CredentialsInvalid"
	ConfigInvalid        = "ConfigInvalid"
	ReconcileFailed      = "ReconcileFailed"
	StorageExpanded      = "StorageExpanded"
	TLSIssued            = "TLSIssued"
	TLSInvalid           = "TLSInvalid"

	// The clustering loop.
	Bootstrapped            = "Bootstrapped"
	FailoverStarted         = "FailoverStarted"
	FailoverCompleted       = "FailoverCompleted"
	FailoverRefused         = "FailoverRefused"
	SwitchoverStarted       = "SwitchoverStarted"
	SwitchoverCompleted     = "SwitchoverCompleted"
	SwitchoverRefused       = "SwitchoverRefused"
	InstanceFenced          = "InstanceFenced"
	ReplicaConfigured       = "ReplicaConfigured"
	ErrantReplicaDetected   = "ErrantReplicaDetected"
	InstanceRestarted       = "InstanceRestarted"
	InstanceCloneStarted    = "InstanceCloneStarted"
	RecloneBackedOff        = "RecloneBackedOff"
	ClusterLost             = "ClusterLost"
	UnacknowledgedKeptAside = "UnacknowledgedTransactionsKeptAside"
	FrozenPrimaryStopped    = "FrozenPrimaryStopped"
	ConfigApplied           = "ConfigApplied"
	ConfigRefused           = "ConfigRefused"

	// Backups and their schedules.
	BackupStarted   = "BackupStarted"
	BackupCompleted = "BackupCompleted"
	BackupFailed    = "BackupFailed"
	BackupDataKept  = "BackupDataKept"
	BackupPruned    = "BackupPruned"
	ScheduleInvalid = "ScheduleInvalid"

	// Restores: a cluster seeded from a backup (spec.bootstrap) and the Restore kind.
	BootstrapInvalid  = "BootstrapInvalid"
	BootstrapRestored = "BootstrapRestored"
	BootstrapFailed   = "BootstrapFailed"
	RestoreStarted    = "RestoreStarted"
	RestoreCompleted  = "RestoreCompleted"
	RestoreFailed     = "RestoreFailed"
	// In-place restores: the cluster fenced, switched between volume sets, the kept volumes
	// deleted, a rollback.
	RestoreFenced         = "RestoreFenced"
	VolumeSetSwitched     = "VolumeSetSwitched"
	RestoreVolumesKept    = "RestoreVolumesKept"
	RestoreVolumesDeleted = "RestoreVolumesDeleted"
	RestoreRolledBack     = "RestoreRolledBack"

	// Verification by restore (a Backup's spec.verify or kura.dev/verify annotation).
	BackupVerifying          = "BackupVerifying"
	BackupVerified           = "BackupVerified"
	BackupVerificationFailed = "BackupVerificationFailed"

	// The binary log archive.
	BinlogArchiveGap     = "BinlogArchiveGap"
	BinlogArchiveStalled = "BinlogArchiveStalled"
	BinlogArchiveHealthy = "BinlogArchiveHealthy"
)

// EventRecorder is the events API recorder (client-go's tools/events.EventRecorder, which a
// controller-runtime manager hands out); declared here so the packages that only name
// reasons, like the clustering loop, do not depend on client-go.
type EventRecorder interface {
	Eventf(regarding runtime.Object, related runtime.Object, eventtype, reason, action, note string, args ...interface{})
}

// Recorder emits catalogue events about one object.
type Recorder struct {
	R EventRecorder
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
