package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// MySQLClusterSpec is the desired state of a replicated MySQL-family database.
//
// +kubebuilder:validation:XValidation:rule="has(self.image) || !has(self.version) || (self.engine == 'mariadb' && self.version in ['10.11', '11.4']) || (self.engine == 'mysql' && self.version == '8.4')",message="spec.version: mariadb supports 10.11 or 11.4 and mysql supports 8.4; set spec.image to run another build"
// +kubebuilder:validation:XValidation:rule="has(oldSelf.version) || !has(self.version) || self.version == ((has(oldSelf.engine) && oldSelf.engine == 'mysql') ? '8.4' : '11.4')",fieldPath=".version",message="spec.version: the cluster runs its engine's default version (11.4 for mariadb, 8.4 for mysql) while spec.version is unset, so only that version may be set; downgrades are refused"
// +kubebuilder:validation:XValidation:rule="!has(self.switchover) || self.switchover.target < self.replicas",message="spec.switchover.target: must be an instance ordinal below spec.replicas"
type MySQLClusterSpec struct {
	// Engine is the database server: mariadb or mysql. It cannot be changed after creation.
	// +kubebuilder:default=mariadb
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.engine is immutable; restore a backup into a new cluster to change engines"
	// +optional
	Engine Engine `json:"engine,omitempty"`

	// Version is the engine's release line: "10.11" or "11.4" for mariadb, "8.4" for mysql.
	// Empty means the engine's newest supported line (11.4 for mariadb, 8.4 for mysql).
	// Upgrades roll replicas first; downgrades are refused, including setting a version lower
	// than the default a cluster created without one runs.
	// +kubebuilder:validation:XValidation:rule="self == oldSelf || (oldSelf == '10.11' && self == '11.4')",message="spec.version: downgrades and unsupported upgrade paths are refused; only 10.11 -> 11.4 is allowed"
	// +optional
	Version string `json:"version,omitempty"`

	// Image overrides the container image of the database server. When empty the engine's
	// official image for Version is used ("mariadb:<version>" or "mysql:<version>").
	// +optional
	Image string `json:"image,omitempty"`

	// ImagePullPolicy for every container of the cluster's Pods.
	// +kubebuilder:default=IfNotPresent
	// +optional
	ImagePullPolicy corev1.PullPolicy `json:"imagePullPolicy,omitempty"`

	// ImagePullSecrets for private registries.
	// +optional
	ImagePullSecrets []corev1.LocalObjectReference `json:"imagePullSecrets,omitempty"`

	// Replicas is the number of instances, primary included (1 to 9). Scale-down never
	// removes the primary: it is switched over first.
	// +kubebuilder:default=3
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=9
	// +optional
	Replicas int32 `json:"replicas,omitempty"`

	// Storage is each instance's data volume.
	Storage StorageSpec `json:"storage"`

	// Resources of the database container.
	// +optional
	Resources corev1.ResourceRequirements `json:"resources,omitempty"`

	// MySQLD tunes the database server.
	// +optional
	MySQLD MySQLDSpec `json:"mysqld,omitempty"`

	// Replication tunes replication, failover and the read service.
	// +optional
	Replication ReplicationSpec `json:"replication,omitempty"`

	// PrimaryService customises the Service that always points at the primary.
	// +optional
	PrimaryService ServiceTemplate `json:"primaryService,omitempty"`

	// ReplicaService customises the Service that points at healthy replicas within maxLag.
	// +optional
	ReplicaService ServiceTemplate `json:"replicaService,omitempty"`

	// Pod customises placement and metadata of the instance Pods.
	// +optional
	Pod PodTemplate `json:"pod,omitempty"`

	// CredentialsSecret names a Secret holding the accounts' passwords (keys
	// "operator-password", "admin-password", "app-password", "root-password",
	// "replication-password", "agent-password", "backup-password"). When empty, Kura generates
	// "<cluster>-credentials" with strong random passwords once and never overwrites it. Users
	// connect as "admin" (admin-password) or "app" (app-password); the operator's own account
	// is not for users.
	// +optional
	CredentialsSecret *corev1.LocalObjectReference `json:"credentialsSecret,omitempty"`

	// Database is the application database, created with the cluster and owned by the "app"
	// account. Defaults to the cluster's name. It cannot be changed after creation.
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9_$-]{1,64}$`
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.database is immutable: create the new database with the admin account instead"
	// +optional
	Database string `json:"database,omitempty"`

	// Bootstrap seeds a new cluster from a backup instead of an empty database.
	// It cannot be changed after creation.
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.bootstrap is immutable"
	// +optional
	Bootstrap *BootstrapSpec `json:"bootstrap,omitempty"`

	// BinlogArchive continuously archives the primary's binary logs, which point-in-time
	// recovery needs.
	// +optional
	BinlogArchive *BinlogArchiveSpec `json:"binlogArchive,omitempty"`

	// Switchover requests a planned change of primary. Set a new id to ask again.
	// +optional
	Switchover *SwitchoverRequest `json:"switchover,omitempty"`

	// DeletionPolicy says what happens to the data volumes when the MySQLCluster is deleted:
	// Retain keeps the PersistentVolumeClaims, Delete removes them.
	// +kubebuilder:default=Retain
	// +optional
	DeletionPolicy DeletionPolicy `json:"deletionPolicy,omitempty"`

	// Paused stops every change the operator would make to this cluster's objects and
	// replication topology, failover included. Status is still observed.
	// +optional
	Paused bool `json:"paused,omitempty"`

	// NetworkPolicy restricts who may connect to the instances (docs/security.md). By default
	// Kura owns a NetworkPolicy that lets only the selected clients reach the database port,
	// and only the operator and the cluster's own Pods reach the agent port.
	// +optional
	NetworkPolicy NetworkPolicySpec `json:"networkPolicy,omitempty"`

	// TLS encrypts client, replication and operator connections (docs/security.md). On by
	// default, with certificates from a CA Kura creates for the cluster.
	// +kubebuilder:default={enabled: true}
	// +optional
	TLS TLSSpec `json:"tls,omitempty"`
}

// TLSSpec says whether the instances serve TLS, with which certificate, and whether they
// refuse clear-text connections.
// +kubebuilder:validation:XValidation:rule="!has(self.requireSecureTransport) || !self.requireSecureTransport || !has(self.enabled) || self.enabled",message="spec.tls.requireSecureTransport needs spec.tls.enabled: true; set enabled to true or requireSecureTransport to false"
// +kubebuilder:validation:XValidation:rule="!has(self.issuerRef) || !has(self.secretName) || size(self.secretName) == 0",message="spec.tls.secretName and spec.tls.issuerRef are mutually exclusive: name your own certificate Secret or a cert-manager issuer, not both"
// +kubebuilder:validation:XValidation:rule="!has(self.issuerRef) || !has(self.enabled) || self.enabled",message="spec.tls.issuerRef needs spec.tls.enabled: true; remove issuerRef or enable TLS"
type TLSSpec struct {
	// Enabled makes the instances serve TLS and the operator, the agents and replicas connect
	// with it, verifying the cluster's CA (the default). false serves clear text only.
	// +kubebuilder:default=true
	// +optional
	Enabled *bool `json:"enabled,omitempty"`

	// RequireSecureTransport makes the servers refuse clear-text TCP connections
	// (require_secure_transport=ON): every client must use TLS. Local Unix socket connections
	// inside the Pod are still accepted.
	// +kubebuilder:default=false
	// +optional
	RequireSecureTransport bool `json:"requireSecureTransport,omitempty"`

	// SecretName names a Secret with the server certificate to use instead of the generated
	// one: keys "tls.crt" (the certificate, with the chain if any), "tls.key" (its private
	// key) and "ca.crt" (the CA that clients, replicas and the operator verify it with). Its
	// names must cover every instance's DNS name (<cluster>-N.<cluster>-instances.<namespace>.svc
	// and the .cluster.local form) and localhost. Kura never writes or renews it.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	SecretName string `json:"secretName,omitempty"`

	// IssuerRef names a cert-manager Issuer or ClusterIssuer that issues the server
	// certificate instead of Kura's own CA: the operator creates a cert-manager Certificate
	// "<cluster>-tls" for the instances' names, and the instances serve the Secret
	// "<cluster>-tls" that cert-manager writes, with the CA in its "ca.crt". Mutually
	// exclusive with secretName.
	// +optional
	IssuerRef *TLSIssuerRef `json:"issuerRef,omitempty"`
}

// TLSIssuerRef names a cert-manager issuer.
type TLSIssuerRef struct {
	// Name of the Issuer (in the cluster's namespace) or of the ClusterIssuer.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// Kind is Issuer (in the cluster's namespace) or ClusterIssuer.
	// +kubebuilder:validation:Enum=Issuer;ClusterIssuer
	// +kubebuilder:default=Issuer
	// +optional
	Kind string `json:"kind,omitempty"`

	// Group is the issuer's API group: cert-manager.io, or an external issuer's own group.
	// +kubebuilder:default=cert-manager.io
	// +kubebuilder:validation:MaxLength=253
	// +optional
	Group string `json:"group,omitempty"`
}

// NetworkPolicySpec says whether Kura restricts traffic to the instances, and whom it lets in.
type NetworkPolicySpec struct {
	// Enabled makes Kura create and own a NetworkPolicy for the instance Pods (the default).
	// false removes it: every Pod that can reach the instances can then try both ports.
	// Enforcement needs a network plugin that implements NetworkPolicy.
	// +kubebuilder:default=true
	// +optional
	Enabled *bool `json:"enabled,omitempty"`

	// Clients may connect to the database port, besides the operator and the cluster's own
	// Pods (replication, backups). Each entry is a NetworkPolicy peer: a podSelector alone
	// selects Pods of the cluster's namespace; add a namespaceSelector to select other
	// namespaces. Empty means every Pod of the cluster's namespace.
	// +kubebuilder:validation:MaxItems=32
	// +optional
	Clients []networkingv1.NetworkPolicyPeer `json:"clients,omitempty"`
}

// Why Kura owns the settings of OperatorOwnedConfig; each refusal message says it.
const (
	ownedForDurability    = "every commit must be on disk before it is acknowledged"
	ownedForSemiSync      = "semi-sync must never acknowledge a commit that no replica has received"
	ownedForCrashRecovery = "crash recovery must drop a commit that no replica received, so that a failed primary can rejoin"
	ownedForReplication   = "every instance must log and apply every transaction with GTIDs, so that any replica can take over"
	ownedForTopology      = "only the operator opens the primary for writes and starts replication"
	ownedForPod           = "the Pod's volumes, Services and probes depend on it"
	ownedForAccess        = "it would bypass authentication, cut off the operator or run code at startup"
)

// OwnedConfigKey is a my.cnf setting, or with Prefix a family of settings, that Kura owns.
//
// +kubebuilder:object:generate=false
type OwnedConfigKey struct {
	// Name is the option in lower case with '_'.
	Name string
	// Prefix makes Name stand for every option that starts with it.
	Prefix bool
	// Except lists options of a Prefix family that users may set.
	Except []string
	// Why Kura owns it.
	Why string
}

// OperatorOwnedConfig are the my.cnf settings durability and replication safety depend on.
// Kura renders the ones it needs itself; spec.mysqld.config may not set any of them, in '_' or
// '-' spelling, behind an option modifier (loose-, skip-, disable-, enable-, maximum-, autoset-)
// or behind a structured-variable or connection-name prefix ("name."). The CRD refuses them
// with one rule each on MySQLDSpec.Config (written in lower case; internal/mycnf also refuses
// every other spelling). internal/mycnf's tests check the rules against this list and
// controllers/validation_test.go checks that the API server refuses every entry.
var OperatorOwnedConfig = []OwnedConfigKey{
	{Name: "server_id", Why: ownedForReplication},
	{Name: "gtid_mode", Why: ownedForReplication},
	{Name: "enforce_gtid_consistency", Why: ownedForReplication},
	{Name: "gtid_strict_mode", Why: ownedForReplication},
	{Name: "gtid_domain_id", Why: ownedForReplication},
	{Name: "log_bin", Prefix: true, Except: []string{"log_bin_trust_function_creators"}, Why: ownedForReplication},
	{Name: "log_slave_updates", Why: ownedForReplication},
	{Name: "log_replica_updates", Why: ownedForReplication},
	{Name: "sql_log_bin", Why: ownedForReplication},
	{Name: "binlog_format", Why: ownedForReplication},
	{Name: "binlog_do_db", Why: ownedForReplication},
	{Name: "binlog_ignore_db", Why: ownedForReplication},
	{Name: "relay_log", Prefix: true, Why: ownedForReplication},
	{Name: "replicate_", Prefix: true, Why: ownedForReplication},
	{Name: "slave_skip_errors", Why: ownedForReplication},
	{Name: "replica_skip_errors", Why: ownedForReplication},
	{Name: "slave_exec_mode", Why: ownedForReplication},
	{Name: "replica_exec_mode", Why: ownedForReplication},
	{Name: "sync_binlog", Why: ownedForDurability},
	{Name: "innodb_flush_log_at_trx_commit", Why: ownedForDurability},
	{Name: "rpl_semi_sync_master_", Prefix: true, Why: ownedForSemiSync},
	{Name: "rpl_semi_sync_slave_", Prefix: true, Why: ownedForSemiSync},
	{Name: "rpl_semi_sync_source_", Prefix: true, Why: ownedForSemiSync},
	{Name: "rpl_semi_sync_replica_", Prefix: true, Why: ownedForSemiSync},
	{Name: "init_rpl_role", Why: ownedForCrashRecovery},
	{Name: "read_only", Why: ownedForTopology},
	{Name: "super_read_only", Why: ownedForTopology},
	{Name: "skip_slave_start", Why: ownedForTopology},
	{Name: "skip_replica_start", Why: ownedForTopology},
	{Name: "datadir", Why: ownedForPod},
	{Name: "socket", Why: ownedForPod},
	{Name: "port", Why: ownedForPod},
	{Name: "bind_address", Why: ownedForPod},
	{Name: "report_host", Why: ownedForPod},
	{Name: "report_port", Why: ownedForPod},
	{Name: "pid_file", Why: ownedForPod},
	{Name: "user", Why: ownedForAccess},
	{Name: "skip_grant_tables", Why: ownedForAccess},
	{Name: "skip_networking", Why: ownedForAccess},
	{Name: "init_file", Why: ownedForAccess},
	{Name: "plugin_load", Prefix: true, Why: ownedForAccess},
}

// DeletionPolicy says what happens to data volumes when a cluster is deleted.
// +kubebuilder:validation:Enum=Retain;Delete
type DeletionPolicy string

const (
	DeletionPolicyRetain DeletionPolicy = "Retain"
	DeletionPolicyDelete DeletionPolicy = "Delete"
)

// StorageSpec is an instance's data volume.
type StorageSpec struct {
	// Size of each instance's volume. It may grow (when the StorageClass allows expansion)
	// but never shrink.
	// +kubebuilder:validation:XValidation:rule="quantity(self).isGreaterThan(quantity('0'))",message="spec.storage.size must be positive"
	// +kubebuilder:validation:XValidation:rule="quantity(self).compareTo(quantity(oldSelf)) >= 0",message="spec.storage.size cannot shrink; volumes can only grow"
	Size resource.Quantity `json:"size"`
	// StorageClassName of the volumes; empty uses the default class. Immutable.
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.storage.storageClassName is immutable"
	// +optional
	StorageClassName *string `json:"storageClassName,omitempty"`
}

// MySQLDSpec tunes the database server.
type MySQLDSpec struct {
	// Config holds my.cnf settings for the [mysqld] section, merged over Kura's defaults.
	// Settings that durability and replication safety depend on are owned by Kura and refused
	// here (OperatorOwnedConfig; docs/configuration.md). Option names are letters, digits, '_',
	// '-' and '.'; values are one line of at most 1024 characters without '#'.
	// Dynamic variables are applied with SET GLOBAL; static ones roll the instances.
	// +kubebuilder:validation:XValidation:rule="self.all(k, k.matches('^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$'))",message="spec.mysqld.config: option names are letters, digits, '_', '-' and '.', at most 128 characters"
	// +kubebuilder:validation:XValidation:rule="self.all(k, size(self[k]) <= 1024)",message="spec.mysqld.config: values are limited to 1024 characters (mysqld reads option files in 4 KiB pieces, so the rest of a longer line would be read as another, unchecked setting)",messageExpression="'spec.mysqld.config.' + self.filter(k, size(self[k]) > 1024)[0] + ': values are limited to 1024 characters (mysqld reads option files in 4 KiB pieces, so the rest of a longer line would be read as another, unchecked setting)'"
	// +kubebuilder:validation:XValidation:rule="self.all(k, size(self[k]) > 1024 || (size(self[k]) <= 64 ? lists.range(64) : lists.range(1024)).all(i, i >= size(self[k]) || !(self[k].charAt(i) in ['\\n', '\\r', '#'])))",message="spec.mysqld.config: a value must be one line without '#' (a newline or carriage return would start another, unchecked setting; '#' starts a comment)"
	// +kubebuilder:validation:XValidation:rule="!self.exists(k, k.replace('-', '_').matches('^(([a-z0-9_]*[.])|((loose|skip|disable|enable|maximum|autoset)_))*server_id$'))",message="spec.mysqld.config: server_id is owned by Kura and cannot be overridden (every instance must log and apply every transaction with GTIDs, so that any replica can take over); remove it"
	// +kubebuilder:validation:XValidation:rule="!self.exists(k, k.replace('-', '_').matches('^(([a-z0-9_]*[.])|((loose|skip|disable|enable|maximum|autoset)_))*gtid_mode$'))",message="spec.mysqld.config: gtid_mode is owned by Kura and cannot be overridden (every instance must log and apply every transaction with GTIDs, so that any replica can take over); remove it"
	// +kubebuilder:validation:XValidation:rule="!self.exists(k, k.replace('-', '_').matches('^(([a-z0-9_]*[.])|((loose|skip|disable|enable|maximum|autoset)_))*enforce_gtid_consistency$'))",message="spec.mysqld.config: enforce_gtid_consistency is owned by Kura and cannot be overridden (every instance must log and apply every transaction with GTIDs, so that any replica can take over); remove it"
	// +kubebuilder:validation:XValidation:rule="!self.exists(k, k.replace('-', '_').matches('^(([a-z0-9_]*[.])|((loose|skip|disable|enable|maximum|autoset)_))*gtid_strict_mode$'))",message="spec.mysqld.config: gtid_strict_mode is owned by Kura and cannot be overridden (every instance must log and apply every transaction with GTIDs, so that any replica can take over); remove it"
	// +kubebuilder:validation:XValidation:rule="!self.exists(k, k.replace('-', '_').matches('^(([a-z0-9_]*[.])|((loose|skip|disable|enable|maximum|autoset)_))*gtid_domain_id$'))",message="spec.mysqld.config: gtid_domain_id is owned by Kura and cannot be overridden (every instance must log and apply every transaction with GTIDs, so that any replica can take over); remove it"
	// +kubebuilder:validation:XValidation:rule="!self.exists(k, k.replace('-', '_').matches('^(([a-z0-9_]*[.])|((loose|skip|disable|enable|maximum|autoset)_))*log_bin') && !k.replace('-', '_').matches('^(([a-z0-9_]*[.])|((loose|skip|disable|enable|maximum|autoset)_))*log_bin_trust_function_creators$'))",message="spec.mysqld.config: log_bin* is owned by Kura and cannot be overridden (every instance must log and apply every transaction with GTIDs, so that any replica can take over); remove it"
	// +kubebuilder:validation:XValidation:rule="!self.exists(k, k.replace('-', '_').matches('^(([a-z0-9_]*[.])|((loose|skip|disable|enable|maximum|autoset)_))*log_slave_updates$'))",message="spec.mysqld.config: log_slave_updates is owned by Kura and cannot be overridden (every instance must log and apply every transaction with GTIDs, so that any replica can take over); remove it"
	// +kubebuilder:validation:XValidation:rule="!self.exists(k, k.replace('-', '_').matches('^(([a-z0-9_]*[.])|((loose|skip|disable|enable|maximum|autoset)_))*log_replica_updates$'))",message="spec.mysqld.config: log_replica_updates is owned by Kura and cannot be overridden (every instance must log and apply every transaction with GTIDs, so that any replica can take over); remove it"
	// +kubebuilder:validation:XValidation:rule="!self.exists(k, k.replace('-', '_').matches('^(([a-z0-9_]*[.])|((loose|skip|disable|enable|maximum|autoset)_))*sql_log_bin$'))",message="spec.mysqld.config: sql_log_bin is owned by Kura and cannot be overridden (every instance must log and apply every transaction with GTIDs, so that any replica can take over); remove it"
	// +kubebuilder:validation:XValidation:rule="!self.exists(k, k.replace('-', '_').matches('^(([a-z0-9_]*[.])|((loose|skip|disable|enable|maximum|autoset)_))*binlog_format$'))",message="spec.mysqld.config: binlog_format is owned by Kura and cannot be overridden (every instance must log and apply every transaction with GTIDs, so that any replica can take over); remove it"
	// +kubebuilder:validation:XValidation:rule="!self.exists(k, k.replace('-', '_').matches('^(([a-z0-9_]*[.])|((loose|skip|disable|enable|maximum|autoset)_))*binlog_do_db$'))",message="spec.mysqld.config: binlog_do_db is owned by Kura and cannot be overridden (every instance must log and apply every transaction with GTIDs, so that any replica can take over); remove it"
	// +kubebuilder:validation:XValidation:rule="!self.exists(k, k.replace('-', '_').matches('^(([a-z0-9_]*[.])|((loose|skip|disable|enable|maximum|autoset)_))*binlog_ignore_db$'))",message="spec.mysqld.config: binlog_ignore_db is owned by Kura and cannot be overridden (every instance must log and apply every transaction with GTIDs, so that any replica can take over); remove it"
	// +kubebuilder:validation:XValidation:rule="!self.exists(k, k.replace('-', '_').matches('^(([a-z0-9_]*[.])|((loose|skip|disable|enable|maximum|autoset)_))*relay_log'))",message="spec.mysqld.config: relay_log* is owned by Kura and cannot be overridden (every instance must log and apply every transaction with GTIDs, so that any replica can take over); remove it"
	// +kubebuilder:validation:XValidation:rule="!self.exists(k, k.replace('-', '_').matches('^(([a-z0-9_]*[.])|((loose|skip|disable|enable|maximum|autoset)_))*replicate_'))",message="spec.mysqld.config: replicate_* is owned by Kura and cannot be overridden (every instance must log and apply every transaction with GTIDs, so that any replica can take over); remove it"
	// +kubebuilder:validation:XValidation:rule="!self.exists(k, k.replace('-', '_').matches('^(([a-z0-9_]*[.])|((loose|skip|disable|enable|maximum|autoset)_))*slave_skip_errors$'))",message="spec.mysqld.config: slave_skip_errors is owned by Kura and cannot be overridden (every instance must log and apply every transaction with GTIDs, so that any replica can take over); remove it"
	// +kubebuilder:validation:XValidation:rule="!self.exists(k, k.replace('-', '_').matches('^(([a-z0-9_]*[.])|((loose|skip|disable|enable|maximum|autoset)_))*replica_skip_errors$'))",message="spec.mysqld.config: replica_skip_errors is owned by Kura and cannot be overridden (every instance must log and apply every transaction with GTIDs, so that any replica can take over); remove it"
	// +kubebuilder:validation:XValidation:rule="!self.exists(k, k.replace('-', '_').matches('^(([a-z0-9_]*[.])|((loose|skip|disable|enable|maximum|autoset)_))*slave_exec_mode$'))",message="spec.mysqld.config: slave_exec_mode is owned by Kura and cannot be overridden (every instance must log and apply every transaction with GTIDs, so that any replica can take over); remove it"
	// +kubebuilder:validation:XValidation:rule="!self.exists(k, k.replace('-', '_').matches('^(([a-z0-9_]*[.])|((loose|skip|disable|enable|maximum|autoset)_))*replica_exec_mode$'))",message="spec.mysqld.config: replica_exec_mode is owned by Kura and cannot be overridden (every instance must log and apply every transaction with GTIDs, so that any replica can take over); remove it"
	// +kubebuilder:validation:XValidation:rule="!self.exists(k, k.replace('-', '_').matches('^(([a-z0-9_]*[.])|((loose|skip|disable|enable|maximum|autoset)_))*sync_binlog$'))",message="spec.mysqld.config: sync_binlog is owned by Kura and cannot be overridden (every commit must be on disk before it is acknowledged); remove it"
	// +kubebuilder:validation:XValidation:rule="!self.exists(k, k.replace('-', '_').matches('^(([a-z0-9_]*[.])|((loose|skip|disable|enable|maximum|autoset)_))*innodb_flush_log_at_trx_commit$'))",message="spec.mysqld.config: innodb_flush_log_at_trx_commit is owned by Kura and cannot be overridden (every commit must be on disk before it is acknowledged); remove it"
	// +kubebuilder:validation:XValidation:rule="!self.exists(k, k.replace('-', '_').matches('^(([a-z0-9_]*[.])|((loose|skip|disable|enable|maximum|autoset)_))*rpl_semi_sync_master_'))",message="spec.mysqld.config: rpl_semi_sync_master_* is owned by Kura and cannot be overridden (semi-sync must never acknowledge a commit that no replica has received); remove it"
	// +kubebuilder:validation:XValidation:rule="!self.exists(k, k.replace('-', '_').matches('^(([a-z0-9_]*[.])|((loose|skip|disable|enable|maximum|autoset)_))*rpl_semi_sync_slave_'))",message="spec.mysqld.config: rpl_semi_sync_slave_* is owned by Kura and cannot be overridden (semi-sync must never acknowledge a commit that no replica has received); remove it"
	// +kubebuilder:validation:XValidation:rule="!self.exists(k, k.replace('-', '_').matches('^(([a-z0-9_]*[.])|((loose|skip|disable|enable|maximum|autoset)_))*rpl_semi_sync_source_'))",message="spec.mysqld.config: rpl_semi_sync_source_* is owned by Kura and cannot be overridden (semi-sync must never acknowledge a commit that no replica has received); remove it"
	// +kubebuilder:validation:XValidation:rule="!self.exists(k, k.replace('-', '_').matches('^(([a-z0-9_]*[.])|((loose|skip|disable|enable|maximum|autoset)_))*rpl_semi_sync_replica_'))",message="spec.mysqld.config: rpl_semi_sync_replica_* is owned by Kura and cannot be overridden (semi-sync must never acknowledge a commit that no replica has received); remove it"
	// +kubebuilder:validation:XValidation:rule="!self.exists(k, k.replace('-', '_').matches('^(([a-z0-9_]*[.])|((loose|skip|disable|enable|maximum|autoset)_))*init_rpl_role$'))",message="spec.mysqld.config: init_rpl_role is owned by Kura and cannot be overridden (crash recovery must drop a commit that no replica received, so that a failed primary can rejoin); remove it"
	// +kubebuilder:validation:XValidation:rule="!self.exists(k, k.replace('-', '_').matches('^(([a-z0-9_]*[.])|((loose|skip|disable|enable|maximum|autoset)_))*read_only$'))",message="spec.mysqld.config: read_only is owned by Kura and cannot be overridden (only the operator opens the primary for writes and starts replication); remove it"
	// +kubebuilder:validation:XValidation:rule="!self.exists(k, k.replace('-', '_').matches('^(([a-z0-9_]*[.])|((loose|skip|disable|enable|maximum|autoset)_))*super_read_only$'))",message="spec.mysqld.config: super_read_only is owned by Kura and cannot be overridden (only the operator opens the primary for writes and starts replication); remove it"
	// +kubebuilder:validation:XValidation:rule="!self.exists(k, k.replace('-', '_').matches('^(([a-z0-9_]*[.])|((loose|skip|disable|enable|maximum|autoset)_))*skip_slave_start$'))",message="spec.mysqld.config: skip_slave_start is owned by Kura and cannot be overridden (only the operator opens the primary for writes and starts replication); remove it"
	// +kubebuilder:validation:XValidation:rule="!self.exists(k, k.replace('-', '_').matches('^(([a-z0-9_]*[.])|((loose|skip|disable|enable|maximum|autoset)_))*skip_replica_start$'))",message="spec.mysqld.config: skip_replica_start is owned by Kura and cannot be overridden (only the operator opens the primary for writes and starts replication); remove it"
	// +kubebuilder:validation:XValidation:rule="!self.exists(k, k.replace('-', '_').matches('^(([a-z0-9_]*[.])|((loose|skip|disable|enable|maximum|autoset)_))*datadir$'))",message="spec.mysqld.config: datadir is owned by Kura and cannot be overridden (the Pod's volumes, Services and probes depend on it); remove it"
	// +kubebuilder:validation:XValidation:rule="!self.exists(k, k.replace('-', '_').matches('^(([a-z0-9_]*[.])|((loose|skip|disable|enable|maximum|autoset)_))*socket$'))",message="spec.mysqld.config: socket is owned by Kura and cannot be overridden (the Pod's volumes, Services and probes depend on it); remove it"
	// +kubebuilder:validation:XValidation:rule="!self.exists(k, k.replace('-', '_').matches('^(([a-z0-9_]*[.])|((loose|skip|disable|enable|maximum|autoset)_))*port$'))",message="spec.mysqld.config: port is owned by Kura and cannot be overridden (the Pod's volumes, Services and probes depend on it); remove it"
	// +kubebuilder:validation:XValidation:rule="!self.exists(k, k.replace('-', '_').matches('^(([a-z0-9_]*[.])|((loose|skip|disable|enable|maximum|autoset)_))*bind_address$'))",message="spec.mysqld.config: bind_address is owned by Kura and cannot be overridden (the Pod's volumes, Services and probes depend on it); remove it"
	// +kubebuilder:validation:XValidation:rule="!self.exists(k, k.replace('-', '_').matches('^(([a-z0-9_]*[.])|((loose|skip|disable|enable|maximum|autoset)_))*report_host$'))",message="spec.mysqld.config: report_host is owned by Kura and cannot be overridden (the Pod's volumes, Services and probes depend on it); remove it"
	// +kubebuilder:validation:XValidation:rule="!self.exists(k, k.replace('-', '_').matches('^(([a-z0-9_]*[.])|((loose|skip|disable|enable|maximum|autoset)_))*report_port$'))",message="spec.mysqld.config: report_port is owned by Kura and cannot be overridden (the Pod's volumes, Services and probes depend on it); remove it"
	// +kubebuilder:validation:XValidation:rule="!self.exists(k, k.replace('-', '_').matches('^(([a-z0-9_]*[.])|((loose|skip|disable|enable|maximum|autoset)_))*pid_file$'))",message="spec.mysqld.config: pid_file is owned by Kura and cannot be overridden (the Pod's volumes, Services and probes depend on it); remove it"
	// +kubebuilder:validation:XValidation:rule="!self.exists(k, k.replace('-', '_').matches('^(([a-z0-9_]*[.])|((loose|skip|disable|enable|maximum|autoset)_))*user$'))",message="spec.mysqld.config: user is owned by Kura and cannot be overridden (it would bypass authentication, cut off the operator or run code at startup); remove it"
	// +kubebuilder:validation:XValidation:rule="!self.exists(k, k.replace('-', '_').matches('^(([a-z0-9_]*[.])|((loose|skip|disable|enable|maximum|autoset)_))*skip_grant_tables$'))",message="spec.mysqld.config: skip_grant_tables is owned by Kura and cannot be overridden (it would bypass authentication, cut off the operator or run code at startup); remove it"
	// +kubebuilder:validation:XValidation:rule="!self.exists(k, k.replace('-', '_').matches('^(([a-z0-9_]*[.])|((loose|skip|disable|enable|maximum|autoset)_))*skip_networking$'))",message="spec.mysqld.config: skip_networking is owned by Kura and cannot be overridden (it would bypass authentication, cut off the operator or run code at startup); remove it"
	// +kubebuilder:validation:XValidation:rule="!self.exists(k, k.replace('-', '_').matches('^(([a-z0-9_]*[.])|((loose|skip|disable|enable|maximum|autoset)_))*init_file$'))",message="spec.mysqld.config: init_file is owned by Kura and cannot be overridden (it would bypass authentication, cut off the operator or run code at startup); remove it"
	// +kubebuilder:validation:XValidation:rule="!self.exists(k, k.replace('-', '_').matches('^(([a-z0-9_]*[.])|((loose|skip|disable|enable|maximum|autoset)_))*plugin_load'))",message="spec.mysqld.config: plugin_load* is owned by Kura and cannot be overridden (it would bypass authentication, cut off the operator or run code at startup); remove it"
	// +kubebuilder:validation:MaxProperties=200
	// +optional
	Config map[string]string `json:"config,omitempty"`
}

// ErrantReplicaPolicy says what happens to a replica holding transactions the primary lacks.
// +kubebuilder:validation:Enum=Manual;Reclone
type ErrantReplicaPolicy string

const (
	// ErrantReplicaManual removes the replica from the read service and leaves it for a human.
	ErrantReplicaManual ErrantReplicaPolicy = "Manual"
	// ErrantReplicaReclone keeps the replica's data aside and clones it afresh from a donor.
	ErrantReplicaReclone ErrantReplicaPolicy = "Reclone"
)

// ReplicationSpec tunes replication, failover and the read service.
type ReplicationSpec struct {
	// SemiSync makes the primary wait, after syncing each commit to its binlog, until a replica
	// has received it before acknowledging the client (loss-less, AFTER_SYNC). Turning it off
	// trades the no-lost-writes promise for lower commit latency.
	// +kubebuilder:default=true
	// +optional
	SemiSync *bool `json:"semiSync,omitempty"`

	// MaxLag is the replication delay beyond which a replica leaves the replicas Service.
	// At least 1s.
	// +kubebuilder:validation:XValidation:rule="size(self) <= 32 && self.matches('^([0-9]+([.][0-9]+)?(ns|us|µs|μs|ms|s|m|h))+$') && duration(self) >= duration('1s')",message="spec.replication.maxLag: must be a duration of at least 1s with a unit, such as 30s or 2m (units h, m, s, ms, us, ns)"
	// +kubebuilder:default="30s"
	// +optional
	MaxLag *metav1.Duration `json:"maxLag,omitempty"`

	// FailoverGracePeriod is how long the operator's own probes must find the primary
	// unreachable before it fails over. Shorter fails over faster; longer tolerates brief
	// network blips without a change of primary.
	// At least 1s.
	// +kubebuilder:validation:XValidation:rule="size(self) <= 32 && self.matches('^([0-9]+([.][0-9]+)?(ns|us|µs|μs|ms|s|m|h))+$') && duration(self) >= duration('1s')",message="spec.replication.failoverGracePeriod: must be a duration of at least 1s with a unit, such as 3s or 1m30s (units h, m, s, ms, us, ns)"
	// +kubebuilder:default="3s"
	// +optional
	FailoverGracePeriod *metav1.Duration `json:"failoverGracePeriod,omitempty"`

	// ServerDownGracePeriod is how long a primary whose server is down is waited for before
	// failing over, when it is shorter than failoverGracePeriod: the Pod's address answers
	// but refuses connections on the database port (the server crashed, was killed, ran out of
	// memory or is shutting down). That is no network blip, and waiting longer only waits
	// for a restart and its crash recovery. Set it equal to failoverGracePeriod to treat a
	// down server like an unreachable one.
	// At least 1s.
	// +kubebuilder:validation:XValidation:rule="size(self) <= 32 && self.matches('^([0-9]+([.][0-9]+)?(ns|us|µs|μs|ms|s|m|h))+$') && duration(self) >= duration('1s')",message="spec.replication.serverDownGracePeriod: must be a duration of at least 1s with a unit, such as 1s or 3s (units h, m, s, ms, us, ns)"
	// +kubebuilder:default="1s"
	// +optional
	ServerDownGracePeriod *metav1.Duration `json:"serverDownGracePeriod,omitempty"`

	// ApplyTimeout bounds how long a failover candidate may take to apply the transactions it
	// has received before being promoted, and how long a switchover waits for the target to
	// catch up.
	// At least 1s.
	// +kubebuilder:validation:XValidation:rule="size(self) <= 32 && self.matches('^([0-9]+([.][0-9]+)?(ns|us|µs|μs|ms|s|m|h))+$') && duration(self) >= duration('1s')",message="spec.replication.applyTimeout: must be a duration of at least 1s with a unit, such as 60s or 5m (units h, m, s, ms, us, ns)"
	// +kubebuilder:default="60s"
	// +optional
	ApplyTimeout *metav1.Duration `json:"applyTimeout,omitempty"`

	// ErrantReplicaPolicy: Manual leaves an errant replica for a human (out of the read
	// service); Reclone keeps its data aside and re-clones it from a healthy donor.
	// +kubebuilder:default=Manual
	// +optional
	ErrantReplicaPolicy ErrantReplicaPolicy `json:"errantReplicaPolicy,omitempty"`

	// AutoFailover may be turned off to let a human decide every change of primary.
	// +kubebuilder:default=true
	// +optional
	AutoFailover *bool `json:"autoFailover,omitempty"`
}

// ServiceTemplate customises a Service the operator owns.
type ServiceTemplate struct {
	// Type of the Service.
	// +kubebuilder:default=ClusterIP
	// +kubebuilder:validation:Enum=ClusterIP;NodePort;LoadBalancer
	// +optional
	Type corev1.ServiceType `json:"type,omitempty"`
	// Annotations added to the Service.
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`
	// Labels added to the Service.
	// +optional
	Labels map[string]string `json:"labels,omitempty"`
	// LoadBalancerSourceRanges restricts a LoadBalancer Service to these CIDRs.
	// +optional
	LoadBalancerSourceRanges []string `json:"loadBalancerSourceRanges,omitempty"`
	// ExternalTrafficPolicy of a NodePort or LoadBalancer Service.
	// +optional
	ExternalTrafficPolicy corev1.ServiceExternalTrafficPolicy `json:"externalTrafficPolicy,omitempty"`
}

// PodTemplate customises the instance Pods.
type PodTemplate struct {
	// Labels added to every instance Pod.
	// +optional
	Labels map[string]string `json:"labels,omitempty"`
	// Annotations added to every instance Pod.
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`
	// Affinity replaces the default, which prefers to spread instances across nodes
	// (kubernetes.io/hostname).
	// +optional
	Affinity *corev1.Affinity `json:"affinity,omitempty"`
	// AntiAffinity is the strength of the default spread across nodes when Affinity is empty:
	// Preferred (default) or Required.
	// +kubebuilder:default=Preferred
	// +kubebuilder:validation:Enum=Preferred;Required;None
	// +optional
	AntiAffinity string `json:"antiAffinity,omitempty"`
	// Tolerations of the instance Pods.
	// +optional
	Tolerations []corev1.Toleration `json:"tolerations,omitempty"`
	// NodeSelector of the instance Pods.
	// +optional
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`
	// TopologySpreadConstraints of the instance Pods.
	// +optional
	TopologySpreadConstraints []corev1.TopologySpreadConstraint `json:"topologySpreadConstraints,omitempty"`
	// PriorityClassName of the instance Pods.
	// +optional
	PriorityClassName string `json:"priorityClassName,omitempty"`
	// TerminationGracePeriodSeconds of the instance Pods; mysqld gets this long to shut down
	// cleanly.
	// +kubebuilder:default=60
	// +kubebuilder:validation:Minimum=5
	// +optional
	TerminationGracePeriodSeconds *int64 `json:"terminationGracePeriodSeconds,omitempty"`
	// AgentResources are the resources of the kura agent sidecar.
	// +optional
	AgentResources corev1.ResourceRequirements `json:"agentResources,omitempty"`
}

// BootstrapSpec seeds a new cluster from a backup.
type BootstrapSpec struct {
	// Backup names a completed Backup in the same namespace.
	// +kubebuilder:validation:MinLength=1
	Backup string `json:"backup"`
	// PointInTime replays archived binlogs after the backup up to this point.
	// +optional
	PointInTime *PointInTime `json:"pointInTime,omitempty"`
}

// BinlogArchiveSpec configures the continuous binary log archive (docs/backup.md, "Archive"):
// an archiver streams the primary's binary log as a replica would and stores it in pieces of
// whole transactions.
type BinlogArchiveSpec struct {
	// Storage is where the pieces are stored, next to the cluster's backups.
	Storage BackupStorage `json:"storage"`
	// PieceInterval is how long a transaction may wait before the piece holding it is cut
	// and stored: with the default a commit is in storage about 1 s later at the median and
	// 2 s at most. Shorter means more, smaller objects. At least 1s.
	// +kubebuilder:validation:XValidation:rule="size(self) <= 32 && self.matches('^([0-9]+([.][0-9]+)?(ns|us|µs|μs|ms|s|m|h))+$') && duration(self) >= duration('1s')",message="spec.binlogArchive.pieceInterval: must be a duration of at least 1s with a unit, such as 2s or 1m (units h, m, s, ms, us, ns)"
	// +kubebuilder:default="2s"
	// +optional
	PieceInterval *metav1.Duration `json:"pieceInterval,omitempty"`
	// PieceSizeMiB cuts a piece earlier once it holds this many MiB of binary log.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1024
	// +kubebuilder:default=32
	// +optional
	PieceSizeMiB int32 `json:"pieceSizeMiB,omitempty"`
	// Resources of the archiver's container.
	// +optional
	Resources corev1.ResourceRequirements `json:"resources,omitempty"`
}

// SwitchoverRequest asks for a planned change of primary. The operator acts once per id.
type SwitchoverRequest struct {
	// Target is the ordinal of the instance to promote (0 for "<cluster>-0").
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=8
	Target int32 `json:"target"`
	// ID identifies this request; change it (for example to a timestamp) to request another
	// switchover. The outcome is reported in status.switchover under the same id.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	ID string `json:"id"`
}

// ClusterState summarises the replication topology.
type ClusterState string

const (
	StateBootstrapping ClusterState = "Bootstrapping"
	StateHealthy       ClusterState = "Healthy"
	StateDegraded      ClusterState = "Degraded"
	StateFailed        ClusterState = "Failed"
	StateLost          ClusterState = "Lost"
	StatePaused        ClusterState = "Paused"
	StateSwitching     ClusterState = "Switching"
)

// InstanceRole is the part an instance plays.
type InstanceRole string

const (
	RolePrimary InstanceRole = "primary"
	RoleReplica InstanceRole = "replica"
	RoleErrant  InstanceRole = "errant"
	RoleCloning InstanceRole = "cloning"
	RoleUnknown InstanceRole = "unknown"
)

// InstanceStatus is what the operator last observed of one instance.
type InstanceStatus struct {
	// Name of the instance's Pod.
	Name string `json:"name"`
	// Role of the instance.
	Role InstanceRole `json:"role"`
	// Reachable is true when the operator could query it over SQL.
	Reachable bool `json:"reachable"`
	// Healthy is true for a writable primary, or for a replica that replicates from the
	// primary within maxLag.
	Healthy bool `json:"healthy"`
	// ReadOnly is the instance's read-only state.
	// +optional
	ReadOnly bool `json:"readOnly,omitempty"`
	// GTIDExecuted is the instance's executed GTID set.
	// +optional
	GTIDExecuted string `json:"gtidExecuted,omitempty"`
	// LagSeconds is the replication delay reported by the instance.
	// +optional
	LagSeconds *int64 `json:"lagSeconds,omitempty"`
	// ErrantGTIDs lists transactions this instance has and the primary lacks.
	// +optional
	ErrantGTIDs string `json:"errantGTIDs,omitempty"`
	// Reason explains an unhealthy instance.
	// +optional
	Reason string `json:"reason,omitempty"`
}

// TopologyChange records one failover or switchover.
type TopologyChange struct {
	// Term is the failover number after this change.
	Term int64 `json:"term"`
	// Kind is Failover or Switchover.
	Kind string `json:"kind"`
	// From is the previous primary.
	// +optional
	From string `json:"from,omitempty"`
	// To is the new primary.
	To string `json:"to"`
	// Reason says why.
	// +optional
	Reason string `json:"reason,omitempty"`
	// Time the change completed.
	Time metav1.Time `json:"time"`
	// WriteUnavailableMillis is how long writes were refused during the change, as measured by
	// the operator (from fencing to promotion).
	// +optional
	WriteUnavailableMillis int64 `json:"writeUnavailableMillis,omitempty"`
	// AcknowledgedWrites says whether a write acknowledged to a client could have been lost in
	// this change: "AllKept" when the new primary provably holds every acknowledged write
	// (semi-synchronous replication on and every replica that could hold one observed),
	// "MayBeLost" when it cannot be proven (semi-synchronous replication off).
	// +optional
	AcknowledgedWrites string `json:"acknowledgedWrites,omitempty"`
}

// KeptAsideRecord lists transactions an instance had that were taken out of the cluster's
// data and kept aside in its volume (rule 15b): a former primary's transactions that no
// replica ever received, so none was acknowledged to a client.
type KeptAsideRecord struct {
	// Instance is the Pod whose data directory keeps them aside.
	Instance string `json:"instance"`
	// GTIDs are the transactions kept aside.
	GTIDs string `json:"gtids"`
	// Reason says why they could be set aside safely.
	Reason string `json:"reason"`
	// Time they were set aside.
	Time metav1.Time `json:"time"`
}

// RecloneRecord counts the re-clones of one instance (docs/clustering.md, "Re-cloning"): when
// the fault that called for a re-clone comes back after it, the next one waits, 30 s after the
// first and twice as long after each further one, at most 10 minutes. The record goes once the
// instance has been healthy for 10 minutes.
type RecloneRecord struct {
	// Instance is the Pod name of the re-cloned instance.
	Instance string `json:"instance"`
	// Count is the number of re-clones since FirstTime.
	Count int32 `json:"count"`
	// FirstTime is when the first of them started.
	FirstTime metav1.Time `json:"firstTime"`
	// LastTime is when the latest started.
	LastTime metav1.Time `json:"lastTime"`
	// Reason says why the latest started.
	Reason string `json:"reason"`
	// Donor is the instance the latest copied from.
	Donor string `json:"donor"`
	// PodUID is the Pod the latest replaced; the re-clone is under way until another Pod
	// holds the instance.
	// +optional
	PodUID string `json:"podUID,omitempty"`
	// FinishedTime is when the instance first answered after the latest; the wait before the
	// next one runs from it.
	// +optional
	FinishedTime *metav1.Time `json:"finishedTime,omitempty"`
	// HealthySince is when the instance was first seen healthy after the latest.
	// +optional
	HealthySince *metav1.Time `json:"healthySince,omitempty"`
}

// SwitchoverStatus reports the outcome of the last switchover request.
type SwitchoverStatus struct {
	// ID of the request.
	ID string `json:"id"`
	// Target ordinal of the request.
	Target int32 `json:"target"`
	// Phase: Pending, Running, Completed or Refused.
	Phase string `json:"phase"`
	// Message explains a refusal or the current step.
	// +optional
	Message string `json:"message,omitempty"`
}

// BinlogArchiveStatus reports the continuous binary log archive; the conditions
// BinlogArchiving and PointInTimeReady say whether it is working.
type BinlogArchiveStatus struct {
	// LastArchivedGTID is the archived GTID position (the last transaction of each domain).
	// +optional
	LastArchivedGTID string `json:"lastArchivedGTID,omitempty"`
	// LastArchivedTime is the commit time of the newest archived transaction.
	// +optional
	LastArchivedTime *metav1.Time `json:"lastArchivedTime,omitempty"`
	// LagSeconds is how long ago everything the primary had sent was last stored.
	// +optional
	LagSeconds int64 `json:"lagSeconds,omitempty"`
	// LastRecoverableTime is the newest moment a point-in-time restore can reach.
	// +optional
	LastRecoverableTime *metav1.Time `json:"lastRecoverableTime,omitempty"`
	// FirstRecoverableTime is the oldest moment a point-in-time restore can reach: the
	// consistent point of the oldest completed backup taken after the newest gap.
	// +optional
	FirstRecoverableTime *metav1.Time `json:"firstRecoverableTime,omitempty"`
	// Gaps is how many GTID gaps the archive has had since the archiver started.
	// +optional
	Gaps int32 `json:"gaps,omitempty"`
	// Message explains the newest gap, failure or expiry warning.
	// +optional
	Message string `json:"message,omitempty"`
}

// MySQLClusterStatus is the observed state of a MySQLCluster.
type MySQLClusterStatus struct {
	// ObservedGeneration is the spec generation the operator last acted on.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions: Reconciled (objects match the spec), Available (primary accepts writes),
	// Healthy (every instance replicates correctly) and Degraded.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// State summarises the topology: Bootstrapping, Healthy, Degraded, Failed, Lost, Paused.
	// +optional
	State ClusterState `json:"state,omitempty"`
	// Engine and Version currently running.
	// +optional
	Engine Engine `json:"engine,omitempty"`
	// +optional
	Version string `json:"version,omitempty"`
	// Replicas is the number of instance Pods that exist.
	// +optional
	Replicas int32 `json:"replicas,omitempty"`
	// ReadyReplicas is the number of instance Pods that are ready.
	// +optional
	ReadyReplicas int32 `json:"readyReplicas,omitempty"`
	// Ready is ReadyReplicas/spec.replicas, for display.
	// +optional
	Ready string `json:"ready,omitempty"`
	// CurrentPrimary is the Pod name of the primary.
	// +optional
	CurrentPrimary string `json:"currentPrimary,omitempty"`
	// CurrentPrimaryIndex is the ordinal of the primary.
	// +optional
	CurrentPrimaryIndex *int32 `json:"currentPrimaryIndex,omitempty"`
	// KeepInstances is how many ordinals the StatefulSet keeps while a scale-down waits: the
	// primary is switched over first, and a replica being removed stops receiving and goes
	// only once a replica that stays holds everything it holds (it may hold the only copy of
	// an acknowledged write).
	// +optional
	KeepInstances int32 `json:"keepInstances,omitempty"`
	// Term increases by one with every change of primary.
	// +optional
	Term int64 `json:"term,omitempty"`
	// Instances as last observed.
	// +listType=map
	// +listMapKey=name
	// +optional
	Instances []InstanceStatus `json:"instances,omitempty"`
	// History of the last changes of primary, newest last (at most 20).
	// +optional
	History []TopologyChange `json:"history,omitempty"`
	// Switchover reports the outcome of the last switchover request.
	// +optional
	Switchover *SwitchoverStatus `json:"switchover,omitempty"`
	// CredentialsSecret is the Secret holding the accounts' passwords.
	// +optional
	CredentialsSecret string `json:"credentialsSecret,omitempty"`
	// ConfigHash is the hash of the static part of the rendered my.cnf (without the dynamic
	// options of spec.mysqld.config, which are applied with SET GLOBAL); the Pod template
	// carries it, so a change of it rolls the instances.
	// +optional
	ConfigHash string `json:"configHash,omitempty"`
	// BinlogArchive reports continuous binlog archiving.
	// +optional
	BinlogArchive *BinlogArchiveStatus `json:"binlogArchive,omitempty"`
	// Bootstrap reports the restore of spec.bootstrap's backup into the first instance.
	// +optional
	Bootstrap *BootstrapStatus `json:"bootstrap,omitempty"`
	// KeptAside lists the transactions set aside by the operator, newest last (at most 20).
	// +optional
	KeptAside []KeptAsideRecord `json:"keptAside,omitempty"`
	// Reclones counts the re-clones of instances whose fault came back after a re-clone; the
	// next re-clone of such an instance waits (docs/clustering.md, "Re-cloning").
	// +listType=map
	// +listMapKey=instance
	// +optional
	Reclones []RecloneRecord `json:"reclones,omitempty"`
	// AsynchronousWindow is set while writes may be acknowledged without a copy on a replica
	// (spec.replication.semiSync false, and until a semi-synchronous replica holds everything
	// the primary executed when semi-sync was turned back on). Automatic failover refuses to
	// cross it: a human decides with spec.switchover.
	// +optional
	AsynchronousWindow *AsynchronousWindow `json:"asynchronousWindow,omitempty"`
	// Config is the state of each option of spec.mysqld.config on the running instances:
	// dynamic ones are applied with SET GLOBAL, static ones when the instances restart.
	// +listType=map
	// +listMapKey=name
	// +optional
	Config []ConfigOptionStatus `json:"config,omitempty"`
}

// ConfigOptionStatus is the state of one option of spec.mysqld.config.
type ConfigOptionStatus struct {
	// Name is the option's name, normalised (lower case, '_').
	Name string `json:"name"`
	// Value is the value in spec.mysqld.config.
	Value string `json:"value"`
	// Dynamic is true when running servers take the option with SET GLOBAL; a static option
	// takes effect when an instance restarts, and changing it rolls the instances.
	Dynamic bool `json:"dynamic"`
	// State: Applied (every observed instance runs with it), Applying (being set with SET
	// GLOBAL), PendingRestart (a static option the instances named get at their restart) or
	// Refused (the server refused SET GLOBAL; Message has its words).
	State string `json:"state"`
	// Instances the state is about: not applied yet, refusing, or waiting for a restart.
	// +optional
	Instances []string `json:"instances,omitempty"`
	// Message explains the state: the server's refusal, or the value a server holds instead
	// (it rounded or adjusted it).
	// +optional
	Message string `json:"message,omitempty"`
}

// AsynchronousWindow is a period in which the primary did not wait for acknowledgements.
type AsynchronousWindow struct {
	// Since is the primary's executed GTID set when the window began: transactions after it
	// may exist on the primary only.
	Since string `json:"since"`
	// StartTime is when the window began.
	StartTime metav1.Time `json:"startTime"`
	// Until is, once semi-sync is on again, the primary's executed set when it was turned back
	// on; the window closes when a semi-synchronous replica holds it.
	// +optional
	Until string `json:"until,omitempty"`
}

// MySQLCluster is a replicated MySQL-family database: one writable primary and
// semi-synchronous GTID replicas, with automatic failover.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=myc;mysql,categories=kura
// +kubebuilder:validation:XValidation:rule="size(self.metadata.name) <= 52",message="metadata.name: a MySQLCluster name is at most 52 characters: its instance Pods carry the label controller-revision-hash=<name>-<hash of up to 10 characters>, and a label value is at most 63 characters"
// +kubebuilder:printcolumn:name="Engine",type=string,JSONPath=`.spec.engine`
// +kubebuilder:printcolumn:name="Version",type=string,JSONPath=`.status.version`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.ready`
// +kubebuilder:printcolumn:name="Primary",type=string,JSONPath=`.status.currentPrimary`
// +kubebuilder:printcolumn:name="State",type=string,JSONPath=`.status.state`
// +kubebuilder:printcolumn:name="Term",type=integer,JSONPath=`.status.term`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type MySQLCluster struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   MySQLClusterSpec   `json:"spec"`
	Status MySQLClusterStatus `json:"status,omitempty"`
}

// MySQLClusterList is a list of MySQLCluster.
//
// +kubebuilder:object:root=true
type MySQLClusterList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []MySQLCluster `json:"items"`
}

func init() {
	register(&MySQLCluster{}, &MySQLClusterList{})
}
