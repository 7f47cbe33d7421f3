package controllers

import (
	"fmt"
	"sort"
	"strings"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
)

// ChooseBackupSource picks the instance a backup reads from (dba rule 16): a healthy
// replica when there is one — lagging is fine, errant, unreachable or broken is not — the
// least lagging first, then the lowest name; the primary when the policy allows it and no
// replica qualifies. The error says why nothing qualifies.
func ChooseBackupSource(c *kurav1alpha1.MySQLCluster, policy kurav1alpha1.BackupSource) (kurav1alpha1.InstanceStatus, error) {
	if policy == "" {
		policy = kurav1alpha1.BackupSourcePreferReplica
	}
	var replicas []kurav1alpha1.InstanceStatus
	var primary *kurav1alpha1.InstanceStatus
	var refused []string
	for i := range c.Status.Instances {
		in := c.Status.Instances[i]
		switch {
		case in.Role == kurav1alpha1.RolePrimary && in.Reachable && in.Name == c.Status.CurrentPrimary:
			primary = &c.Status.Instances[i]
		case in.Role != kurav1alpha1.RoleReplica:
			refused = append(refused, fmt.Sprintf("%s is %s", in.Name, orUnknown(string(in.Role))))
		case !in.Reachable:
			refused = append(refused, in.Name+" is unreachable")
		case in.ErrantGTIDs != "":
			refused = append(refused, in.Name+" has errant transactions")
		case !in.Healthy && in.LagSeconds == nil:
			refused = append(refused, fmt.Sprintf("%s is not replicating (%s)", in.Name, orUnknown(in.Reason)))
		default:
			replicas = append(replicas, in)
		}
	}
	sort.SliceStable(replicas, func(i, j int) bool {
		li, lj := lag(replicas[i]), lag(replicas[j])
		if li != lj {
			return li < lj
		}
		return replicas[i].Name < replicas[j].Name
	})
	switch {
	case policy != kurav1alpha1.BackupSourcePrimary && len(replicas) > 0:
		return replicas[0], nil
	case policy != kurav1alpha1.BackupSourceReplica && primary != nil:
		return *primary, nil
	}
	why := "no instance reported yet"
	if len(refused) > 0 {
		why = strings.Join(refused, "; ")
	}
	switch policy {
	case kurav1alpha1.BackupSourceReplica:
		return kurav1alpha1.InstanceStatus{}, fmt.Errorf("no healthy replica to back up from (spec.source is Replica): %s", why)
	case kurav1alpha1.BackupSourcePrimary:
		return kurav1alpha1.InstanceStatus{}, fmt.Errorf("no reachable primary to back up from (spec.source is Primary): %s", why)
	}
	return kurav1alpha1.InstanceStatus{}, fmt.Errorf("no healthy instance to back up from: %s", why)
}

func lag(in kurav1alpha1.InstanceStatus) int64 {
	if in.LagSeconds == nil {
		return 0
	}
	return *in.LagSeconds
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
