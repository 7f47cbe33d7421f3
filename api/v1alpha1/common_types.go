package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Engine names a MySQL-family database server.
// +kubebuilder:validation:Enum=mariadb;mysql
type Engine string

const (
	// EngineMariaDB runs MariaDB (10.11 or 11.4 LTS).
	EngineMariaDB Engine = "mariadb"
	// EngineMySQL runs MySQL 8.4 LTS. Experimental: its code paths are unit-tested only.
	EngineMySQL Engine = "mysql"
)

// BackupMethod says how a backup reads the data.
// +kubebuilder:validation:Enum=logical;physical
type BackupMethod string

const (
	// BackupMethodLogical dumps SQL (mariadb-dump / mysqldump) in one consistent snapshot.
	BackupMethodLogical BackupMethod = "logical"
	// BackupMethodPhysical copies the data files (mariadb-backup / MySQL CLONE).
	BackupMethodPhysical BackupMethod = "physical"
)

// Compression names the compression applied to a backup stream.
// +kubebuilder:validation:Enum=zstd;gzip;none
type Compression string

const (
	CompressionZstd Compression = "zstd"
	CompressionGzip Compression = "gzip"
	CompressionNone Compression = "none"
)

// BackupStorage says where backups and archived binlogs are kept. Exactly one of s3 or pvc is set.
// +kubebuilder:validation:XValidation:rule="has(self.s3) != has(self.pvc)",message="storage: set exactly one of s3 or pvc"
type BackupStorage struct {
	// S3 stores objects in an S3-compatible bucket.
	// +optional
	S3 *S3Storage `json:"s3,omitempty"`
	// PVC stores files on an existing PersistentVolumeClaim in the same namespace.
	// +optional
	PVC *PVCStorage `json:"pvc,omitempty"`
}

// S3Storage is an S3-compatible bucket.
type S3Storage struct {
	// Bucket is the bucket name. It must exist.
	// +kubebuilder:validation:MinLength=3
	// +kubebuilder:validation:MaxLength=63
	Bucket string `json:"bucket"`
	// Prefix is prepended to every object key, for example "team-a". Under it Kura keeps
	// <namespace>/<cluster>/<cluster UID>/ (docs/backup.md).
	// +optional
	Prefix string `json:"prefix,omitempty"`
	// Endpoint is the S3 endpoint URL, for example "https://s3.eu-west-1.amazonaws.com" or the URL
	// of a MinIO or other S3-compatible server.
	// +kubebuilder:validation:XValidation:rule="self.startsWith('https://') || self.startsWith('http://')",message="endpoint must be an http:// or https:// URL"
	Endpoint string `json:"endpoint"`
	// Region is the bucket's region.
	// +kubebuilder:default="us-east-1"
	// +optional
	Region string `json:"region,omitempty"`
	// ForcePathStyle addresses the bucket as endpoint/bucket rather than bucket.endpoint, which
	// most self-hosted S3 servers need.
	// +kubebuilder:default=true
	// +optional
	ForcePathStyle *bool `json:"forcePathStyle,omitempty"`
	// CredentialsSecret names a Secret in the same namespace holding the access key pair.
	CredentialsSecret S3CredentialsSecret `json:"credentialsSecret"`
	// CASecret optionally names a Secret whose key "ca.crt" holds the CA bundle that signs the
	// endpoint's certificate.
	// +optional
	CASecret *corev1.LocalObjectReference `json:"caSecret,omitempty"`
}

// S3CredentialsSecret names a Secret and the keys that hold an S3 access key pair.
type S3CredentialsSecret struct {
	// Name of the Secret.
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
	// AccessKeyIDKey is the key holding the access key id.
	// +kubebuilder:default="AWS_ACCESS_KEY_ID"
	// +optional
	AccessKeyIDKey string `json:"accessKeyIDKey,omitempty"`
	// SecretAccessKeyKey is the key holding the secret access key.
	// +kubebuilder:default="AWS_SECRET_ACCESS_KEY"
	// +optional
	SecretAccessKeyKey string `json:"secretAccessKeyKey,omitempty"`
}

// PVCStorage is a directory on an existing PersistentVolumeClaim.
type PVCStorage struct {
	// ClaimName is the PersistentVolumeClaim's name.
	// +kubebuilder:validation:MinLength=1
	ClaimName string `json:"claimName"`
	// SubPath is a directory inside the volume (default: its root). Under it Kura keeps
	// <namespace>/<cluster>/<cluster UID>/ (docs/backup.md).
	// +kubebuilder:validation:XValidation:rule="!self.startsWith('/') && !self.contains('..')",message="subPath must be relative and must not contain '..'"
	// +optional
	SubPath string `json:"subPath,omitempty"`
}

// PointInTime is a moment to recover to: either a wall-clock time or a GTID set. Exactly one is set.
// +kubebuilder:validation:XValidation:rule="has(self.time) != has(self.gtid)",message="pointInTime: set exactly one of time (an RFC 3339 moment such as 2026-11-23T14:05:00Z) or gtid (a GTID position such as 0-1-42); remove the other"
type PointInTime struct {
	// Time recovers every transaction committed at or before this moment (RFC 3339).
	// +optional
	Time *metav1.Time `json:"time,omitempty"`
	// GTID recovers up to and including this GTID set: MariaDB's domain-server-sequence list
	// ("0-1-42" or "0-1-42,1-2-7") or MySQL's source UUID and intervals
	// ("3e11fa47-71ca-11e1-9e33-c80aa9429562:1-42").
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=4096
	// +kubebuilder:validation:XValidation:rule="self.matches('^[0-9]{1,10}-[0-9]{1,10}-[0-9]{1,20}(,[0-9]{1,10}-[0-9]{1,10}-[0-9]{1,20})*$') || self.matches('^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}(:[0-9]+(-[0-9]+)?)+(,[ \\n]*[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}(:[0-9]+(-[0-9]+)?)+)*$')",message="pointInTime.gtid: not a GTID position; write MariaDB's domain-server-sequence list (0-1-42 or 0-1-42,1-2-7) or MySQL's uuid:interval set (3e11fa47-71ca-11e1-9e33-c80aa9429562:1-42)"
	// +optional
	GTID string `json:"gtid,omitempty"`
}

// RestorePlanSummary is what a restore read: the base backup and the archived pieces
// replayed after it, decided before any data was written.
type RestorePlanSummary struct {
	// Backup is the base backup's name.
	Backup string `json:"backup"`
	// Method of the base backup.
	// +optional
	Method BackupMethod `json:"method,omitempty"`
	// BaseGTID and BaseTime are the base backup's consistent point.
	// +optional
	BaseGTID string `json:"baseGTID,omitempty"`
	// +optional
	BaseTime *metav1.Time `json:"baseTime,omitempty"`
	// Pieces is how many archived binary log pieces were replayed.
	// +optional
	Pieces int32 `json:"pieces,omitempty"`
	// Target is the point asked for, in words.
	// +optional
	Target string `json:"target,omitempty"`
	// TargetGTID is the GTID position the restore had to reach.
	// +optional
	TargetGTID string `json:"targetGTID,omitempty"`
	// Bytes is what the restore read from storage.
	// +optional
	Bytes int64 `json:"bytes,omitempty"`
}

// RestoreOutcome is what the first instance reported when its restore ended.
type RestoreOutcome struct {
	// Plan is the base backup and the pieces replayed.
	// +optional
	Plan *RestorePlanSummary `json:"plan,omitempty"`
	// GTIDReached is the executed GTID set of the restored data.
	// +optional
	GTIDReached string `json:"gtidReached,omitempty"`
	// TimeReached is the commit time of the last replayed transaction (the base's point when
	// nothing was replayed).
	// +optional
	TimeReached *metav1.Time `json:"timeReached,omitempty"`
	// Replayed counts the transactions replayed after the base.
	// +optional
	Replayed int64 `json:"replayed,omitempty"`
	// DurationMillis is the whole restore's duration on the instance; SeedMillis and
	// ReplayMillis its two stages (seeding the base, replaying the archive).
	// +optional
	DurationMillis int64 `json:"durationMillis,omitempty"`
	// +optional
	SeedMillis int64 `json:"seedMillis,omitempty"`
	// +optional
	ReplayMillis int64 `json:"replayMillis,omitempty"`
}

// BootstrapPhase is the stage of a cluster's bootstrap from a backup.
type BootstrapPhase string

const (
	// BootstrapPending: the backup cannot be used yet (it is still running); nothing is created.
	BootstrapPending BootstrapPhase = "Pending"
	// BootstrapRestoring: the first instance is restoring the backup.
	BootstrapRestoring BootstrapPhase = "Restoring"
	// BootstrapRestored: the first instance restored the backup and reported what it reached.
	BootstrapRestored BootstrapPhase = "Restored"
	// BootstrapFailed: spec.bootstrap cannot be used, or the restore failed (see message).
	BootstrapFailed BootstrapPhase = "Failed"
)

// BootstrapStatus reports a cluster's bootstrap from a backup (spec.bootstrap).
type BootstrapStatus struct {
	// Phase: Pending, Restoring, Restored or Failed.
	Phase BootstrapPhase `json:"phase"`
	// Backup is the backup restored.
	Backup string `json:"backup"`
	// VolumeSet is the claim template the backup was restored into (empty: "data"); an
	// in-place restore seeds a new one.
	// +optional
	VolumeSet string `json:"volumeSet,omitempty"`
	// Outcome is what the first instance reported.
	RestoreOutcome `json:",inline"`
	// Message explains a failure or the current step.
	// +optional
	Message string `json:"message,omitempty"`
}

// Condition types used across kinds.
const (
	// ConditionAvailable is True when the cluster's primary accepts writes through its Service.
	ConditionAvailable = "Available"
	// ConditionHealthy is True when every instance is replicating correctly within maxLag.
	ConditionHealthy = "Healthy"
	// ConditionDegraded is True when the primary is fine but some replicas are not.
	ConditionDegraded = "Degraded"
	// ConditionReconciled is True when every owned Kubernetes object matches the spec.
	ConditionReconciled = "Reconciled"
	// ConditionReady is used by BackupSchedule (schedule valid and CronJob in place).
	ConditionReady = "Ready"
	// ConditionComplete is True when a Backup or Restore has finished successfully.
	ConditionComplete = "Complete"
	// ConditionFailed is True when a Backup or Restore has failed for good.
	ConditionFailed = "Failed"
	// ConditionBinlogArchiving is True while the binary log archive stores the primary's
	// transactions within its lag bound and without a gap (docs/backup.md, "Archive").
	ConditionBinlogArchiving = "BinlogArchiving"
	// ConditionPointInTimeReady is True when a point-in-time restore to any moment between
	// status.binlogArchive.firstRecoverableTime and lastRecoverableTime is possible.
	ConditionPointInTimeReady = "PointInTimeReady"
)
