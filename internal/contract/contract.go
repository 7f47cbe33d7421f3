// Package contract is the vocabulary the operator, the builders and the processes inside
// Kura's Pods share: label and annotation keys, port numbers and names, the field owner,
// container names, the keys of the credentials Secret, and where each Pod finds its files
// (mount paths). It holds constants and a few fixed lists only and imports no other Kura
// package, so any process can use it without pulling in the builders.
package contract

// Label keys and values.
const (
	LabelName      = "app.kubernetes.io/name"
	LabelInstance  = "app.kubernetes.io/instance"
	LabelManagedBy = "app.kubernetes.io/managed-by"
	LabelComponent = "app.kubernetes.io/component"
	LabelCluster   = "kura.dev/cluster"
	// LabelRole is set by the clustering loop on each Pod: primary, replica or none. The
	// primary and replicas Services select on it.
	LabelRole = "kura.dev/role"
	// LabelBackup is on a Backup's Job and Pod: the Backup's name.
	LabelBackup = "kura.dev/backup"
	// LabelSchedule is on every Backup a BackupSchedule created.
	LabelSchedule = "kura.dev/schedule"

	RolePrimary = "primary"
	RoleReplica = "replica"
	RoleNone    = "none"
)

// Annotation keys.
const (
	AnnotationConfigHash = "kura.dev/config-hash"
	// AnnotationAppliedHash on an owned object is the hash of what Kura last applied; an equal
	// hash skips the write.
	AnnotationAppliedHash = "kura.dev/applied-hash"
)

// FieldOwner is the server-side apply field manager of everything Kura writes.
const FieldOwner = "kura"

// Ports.
const (
	MySQLPortName = "mysql"
	// MySQLPort is the database server's port in every instance Pod.
	MySQLPort     = 3306
	AgentPortName = "agent"
	// AgentPort is the in-Pod agent's HTTP port.
	AgentPort = 8080
)

// Container names.
const (
	ContainerMySQLD       = "mysqld"
	ContainerAgent        = "agent"
	ContainerKuraCopy     = "kura-copy"
	ContainerKuraInit     = "kura-init"
	ContainerBackup       = "backup"
	ContainerBackupCreate = "create-backup"
)

// MySQLUID is the mysql user and group of the official engine images; every instance and
// backup Pod runs as it.
const MySQLUID = 999

// Paths inside an instance Pod.
const (
	DataDir      = "/var/lib/mysql"
	ConfigDir    = "/etc/kura/config"
	ConfigFile   = ConfigDir + "/my.cnf"
	InstanceDir  = "/etc/kura/instance"
	InstanceFile = InstanceDir + "/instance.cnf"
	RunDir       = "/run/mysqld"
	Socket       = RunDir + "/mysqld.sock"
	PidFile      = RunDir + "/mysqld.pid"
	TmpDir       = "/tmp"

	KuraBinDir  = "/opt/kura/bin"
	KuraBinPath = KuraBinDir + "/kura"
)

// Keys of the credentials Secret.
const (
	KeyOperatorPassword    = "operator-password"
	KeyAdminPassword       = "admin-password"
	KeyAppPassword         = "app-password"
	KeyRootPassword        = "root-password"
	KeyReplicationPassword = "replication-password"
	KeyAgentPassword       = "agent-password"
	KeyBackupPassword      = "backup-password"
)

// CredentialsDir is where a container finds the passwords it needs: one file per key of the
// credentials Secret, named after the key, from a Secret volume. Passwords never reach a
// container as environment variables or arguments.
const CredentialsDir = "/var/run/kura/credentials"

// The credentials each container of an instance Pod gets (docs/security.md): kura-init
// creates and repairs every account; the agent uses its own account and, to fence a primary
// cut off from everything, the operator's; `kura mysqld` asks the server with the operator's
// account whether it may stop. kura-copy gets none.
var (
	InitCredentialKeys = []string{KeyOperatorPassword, KeyReplicationPassword, KeyAgentPassword,
		KeyRootPassword, KeyAdminPassword, KeyAppPassword}
	AgentCredentialKeys  = []string{KeyAgentPassword, KeyOperatorPassword}
	MySQLDCredentialKeys = []string{KeyOperatorPassword}
)

// Environment variables of the instance Pods' containers (never secrets).
const (
	EnvPodName          = "POD_NAME"
	EnvPodNamespace     = "POD_NAMESPACE"
	EnvPodIP            = "POD_IP"
	EnvClusterName      = "CLUSTER_NAME"
	EnvEngine           = "ENGINE"
	EnvInstancesService = "KURA_INSTANCES_SERVICE"
	EnvDatabase         = "KURA_DATABASE"
	EnvFailoverGrace    = "KURA_FAILOVER_GRACE"
)

// Bootstrap from a backup (MySQLCluster spec.bootstrap, docs/backup.md "Restore"): every
// instance's containers get EnvBootstrap (the backup's name), so no instance ever initialises
// an empty data directory; the first instance's kura-init finds the restore Job
// (backup/restore.Job) as BootstrapFile, in a volume from the cluster's bootstrap ConfigMap
// (written by the operator), with the storage's credentials where a backup Job has them, and writes its result
// (backup/restore.Result) as its termination message.
const (
	EnvBootstrap  = "KURA_BOOTSTRAP"
	BootstrapDir  = "/etc/kura/bootstrap"
	BootstrapFile = BootstrapDir + "/restore.json"
	// RestoreMarker is on the data volume from the start of a restore to its end: a data
	// directory that carries it holds a partial restore, which is emptied and started over.
	RestoreMarker = ".kura-restoring"
	// AsideDir, on the data volume, keeps the data an instance had before a re-clone. A
	// physical copy leaves it out: mariadb-backup takes it for a database, and mbstream
	// refuses a name that starts with a dot (and stops extracting), which LegacyAsideDir did.
	AsideDir       = "kura-aside"
	LegacyAsideDir = ".kura-aside"
)

// Paths inside a backup Job's container (docs/backup.md). Credentials are files from
// Secret volumes, never environment variables or arguments.
const (
	BackupCredentialsDir   = CredentialsDir
	BackupAgentPasswordKey = KeyAgentPassword
	BackupS3CredentialsDir = "/var/run/kura/s3"
	BackupS3AccessKeyFile  = "access-key-id"
	BackupS3SecretKeyFile  = "secret-access-key"
	BackupS3CADir          = "/var/run/kura/s3-ca"
	BackupS3CAFile         = "ca.crt"
	BackupStorageMount     = "/var/lib/kura-backup"
)
