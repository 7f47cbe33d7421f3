package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// BackupSource says which instance a backup reads from.
// +kubebuilder:validation:Enum=PreferReplica;Replica;Primary
type BackupSource string

const (
	// BackupSourcePreferReplica reads from a healthy replica, or the primary when there is none.
	BackupSourcePreferReplica BackupSource = "PreferReplica"
	// BackupSourceReplica reads only from a healthy replica and waits otherwise.
	BackupSourceReplica BackupSource = "Replica"
	// BackupSourcePrimary reads from the primary.
	BackupSourcePrimary BackupSource = "Primary"
)

// BackupOptions are the settings shared by a Backup and a BackupSchedule's backups.
type BackupOptions struct {
	// Cluster names the MySQLCluster in the same namespace to back up.
	// +kubebuilder:validation:MinLength=1
	Cluster string `json:"cluster"`
	// Method: logical (SQL dump, portable across versions) or physical (data files, fast to
	// restore).
	// +kubebuilder:default=logical
	// +optional
	Method BackupMethod `json:"method,omitempty"`
	// Storage is where the backup is written.
	Storage BackupStorage `json:"storage"`
	// Compression of the backup stream.
	// +kubebuilder:default=zstd
	// +optional
	Compression Compression `json:"compression,omitempty"`
	// Source says which instance to read from.
	// +kubebuilder:default=PreferReplica
	// +optional
	Source BackupSource `json:"source,omitempty"`
	// Databases limits a logical backup to these schemas; empty means all. A backup limited to
	// some databases cannot seed a new cluster or a point-in-time restore.
	// +kubebuilder:validation:XValidation:rule="self.all(d, !(d in ['mysql', 'sys', 'information_schema', 'performance_schema']))",message="databases: system schemas cannot be listed"
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=64
	// +optional
	Databases []string `json:"databases,omitempty"`
	// ActiveDeadlineSeconds bounds how long the backup Job may run.
	// +kubebuilder:default=21600
	// +kubebuilder:validation:Minimum=60
	// +optional
	ActiveDeadlineSeconds *int64 `json:"activeDeadlineSeconds,omitempty"`
	// Resources of the backup Job's container.
	// +optional
	Resources corev1.ResourceRequirements `json:"resources,omitempty"`
	// DeletionPolicy says what deleting the Backup (by hand or by a schedule's retention) does
	// to its stored data: Delete removes it, Retain keeps it in storage.
	// +kubebuilder:default=Delete
	// +optional
	DeletionPolicy DeletionPolicy `json:"deletionPolicy,omitempty"`
	// Verify asks for verification by restore (dba rule 20): once a Backup completes, a
	// scratch Pod restores it through the code path a real restore takes and reads every
	// table back (docs/backup.md, "Verification"). On a BackupSchedule, every: N verifies one
	// backup in N.
	// +optional
	Verify *BackupVerification `json:"verify,omitempty"`
}

// BackupVerification asks for a backup to be verified by restoring it.
type BackupVerification struct {
	// Every verifies one in this many of a BackupSchedule's backups (default 1: each one). A
	// run asks for verification unless one of the schedule's Every-1 newest Backups already
	// did and has not failed. Only for a BackupSchedule: a Backup with spec.verify is always
	// verified.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000
	// +optional
	Every *int32 `json:"every,omitempty"`
	// ActiveDeadlineSeconds bounds how long the verification Job may run (default 21600).
	// +kubebuilder:validation:Minimum=60
	// +optional
	ActiveDeadlineSeconds *int64 `json:"activeDeadlineSeconds,omitempty"`
	// Resources of the verification container, which runs the restored server.
	// +optional
	Resources *corev1.ResourceRequirements `json:"resources,omitempty"`
	// ScratchSizeLimit bounds the scratch volume the backup is restored into (an emptyDir on
	// the node). Unset means no limit beyond the node's ephemeral storage: a restored
	// logical backup takes several times its stored size.
	// +optional
	ScratchSizeLimit *resource.Quantity `json:"scratchSizeLimit,omitempty"`
}

// BackupSpec is a request for one backup. It cannot be changed once created.
// +kubebuilder:validation:XValidation:rule="self.method == 'logical' || !has(self.databases) || size(self.databases) == 0",message="spec.databases: only logical backups can be limited to some databases"
// +kubebuilder:validation:XValidation:rule="!has(self.verify) || !has(self.verify.every)",message="spec.verify.every: only a BackupSchedule verifies one backup in N; a Backup with spec.verify is always verified, so remove every"
type BackupSpec struct {
	BackupOptions `json:",inline"`
}

// BackupPhase is the lifecycle stage of a Backup.
type BackupPhase string

const (
	BackupPending   BackupPhase = "Pending"
	BackupRunning   BackupPhase = "Running"
	BackupCompleted BackupPhase = "Completed"
	BackupFailed    BackupPhase = "Failed"
)

// ConditionVerified is a Backup's verification by restore: True when it passed, False
// while it runs or when it failed (the reason says which).
const ConditionVerified = "Verified"

// VerificationPhase is the stage of a Backup's verification by restore.
type VerificationPhase string

const (
	// VerificationPending waits for another verification of the same cluster to end.
	VerificationPending VerificationPhase = "Pending"
	VerificationRunning VerificationPhase = "Running"
	VerificationPassed  VerificationPhase = "Passed"
	VerificationFailed  VerificationPhase = "Failed"
)

// VerificationStatus is what verifying a Backup by restoring it found.
type VerificationStatus struct {
	// Phase: Pending (another verification of the cluster runs), Running, Passed or Failed.
	Phase VerificationPhase `json:"phase"`
	// Request is the kura.dev/verify annotation this verification answered, if any.
	// +optional
	Request string `json:"request,omitempty"`
	// JobName is the Job that restores the backup into a scratch volume.
	// +optional
	JobName string `json:"jobName,omitempty"`
	// StartTime and CompletionTime of the verification.
	// +optional
	StartTime *metav1.Time `json:"startTime,omitempty"`
	// +optional
	CompletionTime *metav1.Time `json:"completionTime,omitempty"`
	// RestoreMillis is how long the restore itself took (seeding the data and, for a logical
	// backup, loading it): about what a real restore of this backup takes once its Pod runs.
	// +optional
	RestoreMillis int64 `json:"restoreMillis,omitempty"`
	// Tables is the number of restored tables read back in full; Rows their rows.
	// +optional
	Tables int32 `json:"tables,omitempty"`
	// +optional
	Rows int64 `json:"rows,omitempty"`
	// Compared is the number of tables whose rows were compared with the counts the backup
	// recorded (a logical backup records them; a physical copy does not).
	// +optional
	Compared int32 `json:"compared,omitempty"`
	// Message says what failed (a checksum, a table that does not open, counts that differ).
	// +optional
	Message string `json:"message,omitempty"`
}

// BackupStatus is the observed state of a Backup.
type BackupStatus struct {
	// ObservedGeneration is the spec generation the operator last acted on.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Phase: Pending, Running, Completed or Failed.
	// +optional
	Phase BackupPhase `json:"phase,omitempty"`
	// Conditions: Complete and Failed.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// JobName is the Job that runs the backup.
	// +optional
	JobName string `json:"jobName,omitempty"`
	// SourceInstance is the Pod the backup read from.
	// +optional
	SourceInstance string `json:"sourceInstance,omitempty"`
	// StartTime and CompletionTime of the backup.
	// +optional
	StartTime *metav1.Time `json:"startTime,omitempty"`
	// +optional
	CompletionTime *metav1.Time `json:"completionTime,omitempty"`
	// SnapshotTime is the moment the backup is consistent with.
	// +optional
	SnapshotTime *metav1.Time `json:"snapshotTime,omitempty"`
	// GTIDPosition is the executed GTID set the backup is consistent with.
	// +optional
	GTIDPosition string `json:"gtidPosition,omitempty"`
	// BinlogPosition is the source binlog file and position, where the tool reports one.
	// +optional
	BinlogPosition string `json:"binlogPosition,omitempty"`
	// Location is the URL of the backup (s3://bucket/key or pvc://claim/path).
	// +optional
	Location string `json:"location,omitempty"`
	// SizeBytes is the stored (compressed) size.
	// +optional
	SizeBytes int64 `json:"sizeBytes,omitempty"`
	// SHA256 is the checksum of the stored object.
	// +optional
	SHA256 string `json:"sha256,omitempty"`
	// Engine and EngineVersion of the server backed up.
	// +optional
	Engine Engine `json:"engine,omitempty"`
	// +optional
	EngineVersion string `json:"engineVersion,omitempty"`
	// Lineage is the UID of the cluster the backup was taken from: its objects are stored
	// under it, so a restore finds them after that cluster is gone.
	// +optional
	Lineage string `json:"lineage,omitempty"`
	// Message explains a failure.
	// +optional
	Message string `json:"message,omitempty"`
	// Verification is the backup's verification by restore, when one was asked for.
	// +optional
	Verification *VerificationStatus `json:"verification,omitempty"`
}

// Backup is one logical or physical backup of a MySQLCluster.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=mbk,categories=kura
// +kubebuilder:validation:XValidation:rule="self.spec == oldSelf.spec",message="spec is immutable; create a new Backup instead"
// +kubebuilder:validation:XValidation:rule="size(self.metadata.name) <= 56",message="metadata.name: a Backup name is at most 56 characters: its Jobs are named <name>-backup and <name>-delete, and a Job name is at most 63 characters"
// +kubebuilder:printcolumn:name="Cluster",type=string,JSONPath=`.spec.cluster`
// +kubebuilder:printcolumn:name="Method",type=string,JSONPath=`.spec.method`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Source",type=string,JSONPath=`.status.sourceInstance`
// +kubebuilder:printcolumn:name="Size",type=integer,JSONPath=`.status.sizeBytes`
// +kubebuilder:printcolumn:name="Verified",type=string,JSONPath=`.status.verification.phase`
// +kubebuilder:printcolumn:name="GTID",type=string,JSONPath=`.status.gtidPosition`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Backup struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   BackupSpec   `json:"spec"`
	Status BackupStatus `json:"status,omitempty"`
}

// BackupList is a list of Backup.
//
// +kubebuilder:object:root=true
type BackupList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Backup `json:"items"`
}

// RetentionPolicy says which scheduled backups to keep. A backup that the oldest point-in-time
// recovery still needs is never deleted.
type RetentionPolicy struct {
	// KeepLast keeps this many completed backups.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000
	// +optional
	KeepLast *int32 `json:"keepLast,omitempty"`
	// MaxAge deletes completed backups older than this (for example "168h"), keeping at least one.
	// At least 1m.
	// +kubebuilder:validation:XValidation:rule="size(self) <= 32 && self.matches('^([0-9]+([.][0-9]+)?(ns|us|µs|μs|ms|s|m|h))+$') && duration(self) >= duration('1m')",message="spec.retention.maxAge: must be a duration of at least 1m with a unit, such as 168h or 720h (units h, m, s, ms, us, ns)"
	// +optional
	MaxAge *metav1.Duration `json:"maxAge,omitempty"`
}

// BackupScheduleSpec creates Backups on a cron schedule.
type BackupScheduleSpec struct {
	BackupOptions `json:",inline"`
	// Schedule in cron syntax ("0 3 * * *", or a descriptor such as "@daily"). It is parsed
	// by the operator; a bad one is reported in the Ready condition.
	// +kubebuilder:validation:MinLength=1
	Schedule string `json:"schedule"`
	// TimeZone of the schedule, as an IANA name ("Europe/Paris"). Defaults to UTC.
	// +optional
	TimeZone string `json:"timeZone,omitempty"`
	// Retention of the backups this schedule created.
	// +optional
	Retention RetentionPolicy `json:"retention,omitempty"`
	// Suspend stops creating new backups; existing ones are kept.
	// +optional
	Suspend bool `json:"suspend,omitempty"`
}

// BackupScheduleStatus is the observed state of a BackupSchedule.
type BackupScheduleStatus struct {
	// ObservedGeneration is the spec generation the operator last acted on.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions: Ready (the schedule parses and its CronJob is in place).
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// NextScheduleTime is when the next backup will be created.
	// +optional
	NextScheduleTime *metav1.Time `json:"nextScheduleTime,omitempty"`
	// LastScheduleTime is when the last backup was created.
	// +optional
	LastScheduleTime *metav1.Time `json:"lastScheduleTime,omitempty"`
	// LastSuccessfulBackup names the newest completed Backup.
	// +optional
	LastSuccessfulBackup string `json:"lastSuccessfulBackup,omitempty"`
}

// BackupSchedule takes Backups of a MySQLCluster on a cron schedule and applies retention.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=mbs,categories=kura
// +kubebuilder:validation:XValidation:rule="size(self.metadata.name) <= 39",message="metadata.name: a BackupSchedule name is at most 39 characters: its CronJob <name>-backups creates Backups named <name>-backups-<8-digit minute>, whose Jobs add -backup, and a Job name is at most 63 characters"
// +kubebuilder:printcolumn:name="Cluster",type=string,JSONPath=`.spec.cluster`
// +kubebuilder:printcolumn:name="Schedule",type=string,JSONPath=`.spec.schedule`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Last",type=string,JSONPath=`.status.lastSuccessfulBackup`
// +kubebuilder:printcolumn:name="Next",type=date,JSONPath=`.status.nextScheduleTime`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type BackupSchedule struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   BackupScheduleSpec   `json:"spec"`
	Status BackupScheduleStatus `json:"status,omitempty"`
}

// BackupScheduleList is a list of BackupSchedule.
//
// +kubebuilder:object:root=true
type BackupScheduleList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []BackupSchedule `json:"items"`
}

func init() {
	register(&Backup{}, &BackupList{}, &BackupSchedule{}, &BackupScheduleList{})
}
