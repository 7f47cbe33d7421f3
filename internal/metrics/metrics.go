// Package metrics holds every Prometheus metric the operator exports, labelled by the
// MySQLCluster's namespace and name and deleted when the cluster goes (docs/metrics.md).
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

const namespace = "kura"

var (
	// ClusterState is 1 for the cluster's current state and 0 for the others.
	ClusterState = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: namespace, Name: "cluster_state",
		Help: "1 for the MySQLCluster's current clustering state (Bootstrapping, Healthy, Degraded, Failed, Lost, Switching, Paused), 0 otherwise.",
	}, []string{"namespace", "cluster", "state"})
	// ClusterAvailable is 1 while the primary accepts writes.
	ClusterAvailable = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: namespace, Name: "cluster_available",
		Help: "1 while the MySQLCluster's primary accepts writes (condition Available), 0 otherwise.",
	}, []string{"namespace", "cluster"})
	// Instances counts instances by role and health.
	Instances = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: namespace, Name: "cluster_instances",
		Help: "Instances of the MySQLCluster by role (primary, replica, errant, cloning, unknown) and health.",
	}, []string{"namespace", "cluster", "role", "healthy"})
	// ReplicaLag is each replica's replication delay.
	ReplicaLag = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: namespace, Name: "instance_replication_lag_seconds",
		Help: "Replication delay reported by each replica.",
	}, []string{"namespace", "cluster", "instance"})
	// Term is the number of changes of primary.
	Term = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: namespace, Name: "cluster_term",
		Help: "Number of changes of primary of the MySQLCluster (status.term).",
	}, []string{"namespace", "cluster"})
	// TopologyChanges counts failovers and switchovers this operator process performed.
	TopologyChanges = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "topology_changes_total",
		Help: "Changes of primary recorded by this operator process, by kind (Bootstrap, Failover, Switchover).",
	}, []string{"namespace", "cluster", "kind"})
	// Passes counts clustering passes by outcome.
	Passes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "clustering_passes_total",
		Help: "Clustering passes by outcome (ok, error).",
	}, []string{"namespace", "cluster", "outcome"})
)

// Backups (docs/backup.md), by the backed-up cluster and the method.
var (
	// BackupLastSuccess is when the newest completed backup finished.
	BackupLastSuccess = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: namespace, Name: "backup_last_success_timestamp_seconds",
		Help: "Unix time at which the newest completed Backup of the cluster finished, by method.",
	}, []string{"namespace", "cluster", "method"})
	// BackupLastDuration is how long the newest completed backup took (Job start to manifest).
	BackupLastDuration = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: namespace, Name: "backup_last_duration_seconds",
		Help: "Duration of the newest completed Backup of the cluster, from its start to its manifest, by method.",
	}, []string{"namespace", "cluster", "method"})
	// BackupLastSize is the stored size of the newest completed backup.
	BackupLastSize = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: namespace, Name: "backup_last_size_bytes",
		Help: "Stored (compressed) size of the newest completed Backup of the cluster, by method.",
	}, []string{"namespace", "cluster", "method"})
	// Backups counts finished backups by outcome.
	Backups = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "backups_total",
		Help: "Backups this operator process saw finish, by method and outcome (completed, failed).",
	}, []string{"namespace", "cluster", "method", "outcome"})
	// RestoreLastDuration is how long the newest completed Restore into the cluster took.
	RestoreLastDuration = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: namespace, Name: "restore_last_duration_seconds",
		Help: "Duration of the newest completed Restore into the cluster, from the Restore's start to the restored cluster being available.",
	}, []string{"namespace", "cluster"})
)

// Verification by restore (docs/backup.md, "Verification"), by cluster and method.
var (
	// BackupLastVerified is when the newest passed verification finished.
	BackupLastVerified = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: namespace, Name: "backup_last_verified_timestamp_seconds",
		Help: "Unix time at which the newest passed verification by restore of a Backup of the cluster finished, by method.",
	}, []string{"namespace", "cluster", "method"})
	// BackupVerificationRestore is how long the newest verification's restore took.
	BackupVerificationRestore = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: namespace, Name: "backup_verification_restore_seconds",
		Help: "Duration of the restore (seed and load) in the newest finished verification of a Backup of the cluster, by method.",
	}, []string{"namespace", "cluster", "method"})
	// BackupVerifications counts finished verifications by outcome.
	BackupVerifications = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "backup_verifications_total",
		Help: "Verifications by restore this operator process saw finish, by method and outcome (passed, failed).",
	}, []string{"namespace", "cluster", "method", "outcome"})
)

var all = []*prometheus.MetricVec{
	ClusterState.MetricVec, ClusterAvailable.MetricVec, Instances.MetricVec, ReplicaLag.MetricVec,
	Term.MetricVec, TopologyChanges.MetricVec, Passes.MetricVec,
	BackupLastSuccess.MetricVec, BackupLastDuration.MetricVec, BackupLastSize.MetricVec, Backups.MetricVec,
	RestoreLastDuration.MetricVec,
	BackupLastVerified.MetricVec, BackupVerificationRestore.MetricVec, BackupVerifications.MetricVec,
}

func init() {
	crmetrics.Registry.MustRegister(ClusterState, ClusterAvailable, Instances, ReplicaLag, Term, TopologyChanges, Passes,
		BackupLastSuccess, BackupLastDuration, BackupLastSize, Backups, RestoreLastDuration,
		BackupLastVerified, BackupVerificationRestore, BackupVerifications)
}

// States are the values of the state label.
var States = []string{"Bootstrapping", "Healthy", "Degraded", "Failed", "Lost", "Switching", "Paused"}

// SetState sets the state gauge: 1 for state, 0 for the others.
func SetState(ns, cluster, state string) {
	for _, s := range States {
		v := 0.0
		if s == state {
			v = 1
		}
		ClusterState.WithLabelValues(ns, cluster, s).Set(v)
	}
}

// ResetInstances drops the per-instance series of a cluster before a pass republishes them,
// so instances that went away do not linger.
func ResetInstances(ns, cluster string) {
	l := prometheus.Labels{"namespace": ns, "cluster": cluster}
	Instances.DeletePartialMatch(l)
	ReplicaLag.DeletePartialMatch(l)
}

// Forget deletes every series of a cluster.
func Forget(ns, cluster string) {
	l := prometheus.Labels{"namespace": ns, "cluster": cluster}
	for _, v := range all {
		v.DeletePartialMatch(l)
	}
}
