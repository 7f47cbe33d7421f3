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
// +kubebuilder:validation:XValidation:rule="has(self.time) != has(self.gtid)",message="pointInTime: set exactly one of time or gtid"
type PointInTime struct {
	// Time recovers every transaction committed at or before this moment (RFC 3339).
	// +optional
	Time *metav1.Time `json:"time,omitempty"`
	// GTID recovers up to and including this GTID set (MariaDB "0-1-42" or MySQL "uuid:1-42").
	// +kubebuilder:validation:MinLength=1
	// +optional
	GTID string `json:"gtid,omitempty"`
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
