package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// RestoreTarget is where a backup is restored. Exactly one field is set.
// +kubebuilder:validation:XValidation:rule="has(self.newCluster) != has(self.existingCluster)",message="spec.target: set exactly one of newCluster or existingCluster"
type RestoreTarget struct {
	// NewCluster creates a MySQLCluster of this name, copying the source cluster's spec, and
	// seeds it from the backup. The name must not be in use.
	// +kubebuilder:validation:MaxLength=52
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +optional
	NewCluster string `json:"newCluster,omitempty"`
	// ExistingCluster restores in place into this MySQLCluster, from a backup of that cluster:
	// the cluster is fenced (its instances stopped), restored into new volumes, switched to
	// them and opened once the restore is verified; its old volumes are kept, labelled
	// kura.dev/kept-by-restore, until the Restore is confirmed (annotation kura.dev/confirm:
	// "true") or keepOldVolumesFor has passed. Annotation kura.dev/rollback: "true" switches
	// the cluster back to them (docs/backup.md, "In-place restore").
	// +kubebuilder:validation:MinLength=1
	// +optional
	ExistingCluster string `json:"existingCluster,omitempty"`
}

// RestoreSpec is a request to restore a backup. It cannot be changed once created.
type RestoreSpec struct {
	// Backup names a completed Backup in the same namespace.
	// +kubebuilder:validation:MinLength=1
	Backup string `json:"backup"`
	// PointInTime replays archived binlogs after the backup up to this point. Needs the source
	// cluster's binlogArchive.
	// +optional
	PointInTime *PointInTime `json:"pointInTime,omitempty"`
	// Target is where to restore.
	Target RestoreTarget `json:"target"`
	// KeepOldVolumesFor is how long an in-place restore keeps the volumes it switched away
	// from once it has completed (or been rolled back), unless confirmed earlier.
	// +kubebuilder:default="24h"
	// +optional
	KeepOldVolumesFor *metav1.Duration `json:"keepOldVolumesFor,omitempty"`
}

// RestorePhase is the lifecycle stage of a Restore.
type RestorePhase string

const (
	RestorePending   RestorePhase = "Pending"
	RestoreRunning   RestorePhase = "Running"
	RestoreVerifying RestorePhase = "Verifying"
	RestoreCompleted RestorePhase = "Completed"
	RestoreFailed    RestorePhase = "Failed"
	// RestoreRolledBack: an in-place restore switched the cluster back to its old volumes.
	RestoreRolledBack RestorePhase = "RolledBack"
)

// InPlaceRestoreStatus is the state of an in-place restore (docs/backup.md, "In-place
// restore").
type InPlaceRestoreStatus struct {
	// Step: Fencing, Restoring, Restored, RollingBack, RolledBack or Confirmed.
	Step string `json:"step"`
	// FromVolumeSet is the claim template the cluster ran on before; ToVolumeSet the one
	// restored into.
	FromVolumeSet string `json:"fromVolumeSet"`
	ToVolumeSet   string `json:"toVolumeSet"`
	// FromBootstrap is the cluster's kura.dev/bootstrap annotation before the switch, put
	// back by a rollback.
	// +optional
	FromBootstrap string `json:"fromBootstrap,omitempty"`
	// KeptVolumes are the PVCs kept (labelled kura.dev/kept-by-restore): the old ones, or
	// after a rollback the restored ones.
	// +optional
	KeptVolumes []string `json:"keptVolumes,omitempty"`
	// DeleteKeptVolumesAfter is when the kept volumes are deleted unless the cluster is
	// switched to them before.
	// +optional
	DeleteKeptVolumesAfter *metav1.Time `json:"deleteKeptVolumesAfter,omitempty"`
	// Switched is true once the cluster has left its old volumes.
	// +optional
	Switched bool `json:"switched,omitempty"`
	// KeptVolumesDeleted is true once the kept volumes are gone.
	// +optional
	KeptVolumesDeleted bool `json:"keptVolumesDeleted,omitempty"`
	// Hint says how to confirm or roll back.
	// +optional
	Hint string `json:"hint,omitempty"`
	// PreviousRecords are the clustering loop's records of the old volume set, saved when the
	// cluster left it and put back by a rollback to that same set.
	// +optional
	PreviousRecords *ClusteringRecords `json:"previousRecords,omitempty"`
}

// ClusteringRecords are the clustering loop's records of one volume set's instances, as they
// were when the set was fenced: its primary, what each instance had executed, its errant
// transactions and an open asynchronous window. The term is the one they were recorded under.
type ClusteringRecords struct {
	// VolumeSet is the set the records describe.
	VolumeSet string `json:"volumeSet"`
	// Term is status.term when the records were saved.
	Term int64 `json:"term"`
	// CurrentPrimaryIndex is the ordinal of the recorded primary.
	// +optional
	CurrentPrimaryIndex *int32 `json:"currentPrimaryIndex,omitempty"`
	// CurrentPrimary is the Pod name of the recorded primary.
	// +optional
	CurrentPrimary string `json:"currentPrimary,omitempty"`
	// Instances are the recorded GTID sets of each instance.
	// +optional
	Instances []RecordedInstance `json:"instances,omitempty"`
	// AsynchronousWindow is the window open when the records were saved.
	// +optional
	AsynchronousWindow *AsynchronousWindow `json:"asynchronousWindow,omitempty"`
}

// RecordedInstance is what the clustering loop recorded of one instance's data.
type RecordedInstance struct {
	// Name of the instance's Pod.
	Name string `json:"name"`
	// GTIDExecuted is the instance's recorded executed GTID set.
	// +optional
	GTIDExecuted string `json:"gtidExecuted,omitempty"`
	// ErrantGTIDs are its recorded errant transactions.
	// +optional
	ErrantGTIDs string `json:"errantGTIDs,omitempty"`
}

// RestoreVerification is what the restore checked at the end.
type RestoreVerification struct {
	// Tables is the number of tables checked.
	Tables int32 `json:"tables"`
	// Rows is the total row count of the checked tables.
	Rows int64 `json:"rows"`
	// Checksum combines CHECKSUM TABLE of every checked table.
	Checksum string `json:"checksum"`
	// GTIDReached is the executed GTID set after the restore.
	GTIDReached string `json:"gtidReached"`
}

// RestoreStatus is the observed state of a Restore.
type RestoreStatus struct {
	// ObservedGeneration is the spec generation the operator last acted on.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Phase: Pending, Running, Verifying, Completed, Failed or RolledBack.
	// +optional
	Phase RestorePhase `json:"phase,omitempty"`
	// Conditions: Complete and Failed.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// StartTime and CompletionTime of the restore.
	// +optional
	StartTime *metav1.Time `json:"startTime,omitempty"`
	// +optional
	CompletionTime *metav1.Time `json:"completionTime,omitempty"`
	// Cluster is the MySQLCluster restored into.
	// +optional
	Cluster string `json:"cluster,omitempty"`
	// Outcome is what the restored cluster's first instance reported.
	RestoreOutcome `json:",inline"`
	// InPlace is the state of an in-place restore: its step, the volumes kept and until when.
	// +optional
	InPlace *InPlaceRestoreStatus `json:"inPlace,omitempty"`
	// Verification is what was checked at the end.
	// +optional
	Verification *RestoreVerification `json:"verification,omitempty"`
	// Message explains a failure or the current step.
	// +optional
	Message string `json:"message,omitempty"`
}

// Restore restores a Backup into a new or an existing MySQLCluster, optionally to a point in time.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=mrs,categories=kura
// +kubebuilder:validation:XValidation:rule="self.spec == oldSelf.spec",message="spec is immutable; create a new Restore instead"
// +kubebuilder:printcolumn:name="Backup",type=string,JSONPath=`.spec.backup`
// +kubebuilder:printcolumn:name="Target",type=string,JSONPath=`.status.cluster`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Restore struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   RestoreSpec   `json:"spec"`
	Status RestoreStatus `json:"status,omitempty"`
}

// RestoreList is a list of Restore.
//
// +kubebuilder:object:root=true
type RestoreList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Restore `json:"items"`
}

func init() {
	register(&Restore{}, &RestoreList{})
}
