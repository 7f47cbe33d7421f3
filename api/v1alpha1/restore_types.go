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
	// ExistingCluster restores in place into this MySQLCluster: its data is replaced. The
	// cluster is paused for the duration and its current data is kept aside on the volumes
	// until the restore is verified.
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
}

// RestorePhase is the lifecycle stage of a Restore.
type RestorePhase string

const (
	RestorePending   RestorePhase = "Pending"
	RestoreRunning   RestorePhase = "Running"
	RestoreVerifying RestorePhase = "Verifying"
	RestoreCompleted RestorePhase = "Completed"
	RestoreFailed    RestorePhase = "Failed"
)

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
	// Phase: Pending, Running, Verifying, Completed or Failed.
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
// +kubebuilder:printcolumn:name="Target",type=string,JSONPath=`.spec.target.newCluster`
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
