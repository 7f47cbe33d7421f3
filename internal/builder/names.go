// Package builder builds every Kubernetes object a MySQLCluster owns, as pure functions of the
// cluster and a few operator options. Reconcilers fetch, build and apply; nothing here does I/O.
package builder

import (
	"fmt"
	"time"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/internal/contract"
)

// Default versions per engine, used when spec.version is empty.
var DefaultVersion = map[kurav1alpha1.Engine]string{
	kurav1alpha1.EngineMariaDB: "11.4",
	kurav1alpha1.EngineMySQL:   "8.4",
}

// Options are the operator-wide inputs of the builders.
type Options struct {
	// KuraImage is the image holding the kura binary at /kura.
	KuraImage string
	// OperatorNamespace and OperatorPodLabels identify the operator's Pods, which the
	// NetworkPolicy lets reach the instances. Without a namespace no rule admits the operator
	// (an operator outside the cluster is not a Pod a policy can select); without labels every
	// Pod of the namespace counts as the operator.
	OperatorNamespace string
	OperatorPodLabels map[string]string
}

// Database is the application database: spec.database, else the cluster's name.
func Database(c *kurav1alpha1.MySQLCluster) string {
	if c.Spec.Database != "" {
		return c.Spec.Database
	}
	return c.Name
}

// DefaultFailoverGrace is spec.replication.failoverGracePeriod when it is unset.
const DefaultFailoverGrace = 3 * time.Second

// FailoverGrace is spec.replication.failoverGracePeriod or its default. The agent of a
// primary cut off from everything makes it read-only after it (docs/clustering.md).
func FailoverGrace(c *kurav1alpha1.MySQLCluster) time.Duration {
	if g := c.Spec.Replication.FailoverGracePeriod; g != nil && g.Duration > 0 {
		return g.Duration
	}
	return DefaultFailoverGrace
}

// Names of owned objects.
func StatefulSetName(c *kurav1alpha1.MySQLCluster) string { return c.Name }
func HeadlessServiceName(c *kurav1alpha1.MySQLCluster) string {
	return c.Name + "-instances"
}
func PrimaryServiceName(c *kurav1alpha1.MySQLCluster) string  { return c.Name + "-primary" }
func ReplicasServiceName(c *kurav1alpha1.MySQLCluster) string { return c.Name + "-replicas" }
func ConfigMapName(c *kurav1alpha1.MySQLCluster) string       { return c.Name + "-config" }
func ServiceAccountName(c *kurav1alpha1.MySQLCluster) string  { return c.Name + "-mysql" }
func PDBName(c *kurav1alpha1.MySQLCluster) string             { return c.Name }
func NetworkPolicyName(c *kurav1alpha1.MySQLCluster) string   { return c.Name + "-instances" }

// AgentTokenSecretName is the Secret holding the agents' API token (always generated).
func AgentTokenSecretName(c *kurav1alpha1.MySQLCluster) string { return c.Name + "-agent-token" }

// CredentialsSecretName is the Secret holding the cluster's passwords: the user's, or the
// generated "<cluster>-credentials".
func CredentialsSecretName(c *kurav1alpha1.MySQLCluster) string {
	if c.Spec.CredentialsSecret != nil && c.Spec.CredentialsSecret.Name != "" {
		return c.Spec.CredentialsSecret.Name
	}
	return c.Name + "-credentials"
}

// PodName is the name of instance ordinal n.
func PodName(c *kurav1alpha1.MySQLCluster, n int32) string { return fmt.Sprintf("%s-%d", c.Name, n) }

// InstanceHost is the stable DNS name of instance n.
func InstanceHost(c *kurav1alpha1.MySQLCluster, n int32) string {
	return PodHost(c, PodName(c, n))
}

// PodHost is the stable DNS name of the instance Pod named pod.
func PodHost(c *kurav1alpha1.MySQLCluster, pod string) string {
	return fmt.Sprintf("%s.%s.%s.svc.cluster.local", pod, HeadlessServiceName(c), c.Namespace)
}

// Engine returns the cluster's engine with the default applied.
func Engine(c *kurav1alpha1.MySQLCluster) kurav1alpha1.Engine {
	if c.Spec.Engine == "" {
		return kurav1alpha1.EngineMariaDB
	}
	return c.Spec.Engine
}

// Version returns the cluster's engine version with the default applied.
func Version(c *kurav1alpha1.MySQLCluster) string {
	if c.Spec.Version != "" {
		return c.Spec.Version
	}
	return DefaultVersion[Engine(c)]
}

// EngineImage is the database server image.
func EngineImage(c *kurav1alpha1.MySQLCluster) string {
	if c.Spec.Image != "" {
		return c.Spec.Image
	}
	return fmt.Sprintf("%s:%s", Engine(c), Version(c))
}

// Replicas returns spec.replicas with the default applied.
func Replicas(c *kurav1alpha1.MySQLCluster) int32 {
	if c.Spec.Replicas == 0 {
		return 3
	}
	return c.Spec.Replicas
}

// SelectorLabels select every instance Pod of a cluster.
func SelectorLabels(c *kurav1alpha1.MySQLCluster) map[string]string {
	return map[string]string{
		contract.LabelName:     "mysql",
		contract.LabelInstance: c.Name,
		contract.LabelCluster:  c.Name,
	}
}

// CommonLabels are set on every owned object.
func CommonLabels(c *kurav1alpha1.MySQLCluster) map[string]string {
	l := SelectorLabels(c)
	l[contract.LabelManagedBy] = "kura"
	return l
}

func merge(maps ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range maps {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}
