package controllers

import (
	"strings"
	"testing"

	"k8s.io/utils/ptr"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
)

// topology builds a cluster status from one word per instance: "P" primary, "R" healthy
// replica, "L<n>" replica lagging n seconds, "E" errant, "X" unreachable, "B" broken
// replica (no replication), "C" cloning.
func topology(words ...string) *kurav1alpha1.MySQLCluster {
	c := &kurav1alpha1.MySQLCluster{}
	for i, w := range words {
		in := kurav1alpha1.InstanceStatus{Name: "shop-" + string(rune('0'+i)), Role: kurav1alpha1.RoleReplica, Reachable: true, Healthy: true, LagSeconds: ptr.To[int64](0)}
		switch {
		case w == "P":
			in.Role = kurav1alpha1.RolePrimary
			c.Status.CurrentPrimary = in.Name
		case strings.HasPrefix(w, "L"):
			in.Healthy, in.LagSeconds = false, ptr.To[int64](int64(len(w)*100))
		case w == "E":
			in.ErrantGTIDs = "0-1002-5"
		case w == "X":
			in.Reachable = false
		case w == "B":
			in.Healthy, in.LagSeconds, in.Reason = false, nil, "IO thread stopped: error 1236"
		case w == "C":
			in.Role = kurav1alpha1.RoleCloning
		}
		c.Status.Instances = append(c.Status.Instances, in)
	}
	return c
}

func TestChooseBackupSource(t *testing.T) {
	cases := []struct {
		topo   []string
		policy kurav1alpha1.BackupSource
		want   string // instance, or "error: <substring>"
	}{
		{[]string{"P", "R", "R"}, "", "shop-1"},
		{[]string{"P", "L1", "R"}, "", "shop-2"},   // the least lagging replica
		{[]string{"P", "L1", "L22"}, "", "shop-1"}, // lagging is fine
		{[]string{"P", "E", "R"}, "", "shop-2"},    // never an errant replica
		{[]string{"P", "E", "B"}, "", "shop-0"},    // errant and broken: the primary
		{[]string{"P", "X", "C"}, "", "shop-0"},    // unreachable and cloning: the primary
		{[]string{"P", "E", "B"}, kurav1alpha1.BackupSourceReplica, "error: shop-1 has errant transactions; shop-2 is not replicating"},
		{[]string{"P", "R", "R"}, kurav1alpha1.BackupSourcePrimary, "shop-0"},
		{[]string{"X", "E"}, "", "error: no healthy instance to back up from"},
		{nil, "", "error: no instance reported yet"},
	}
	for _, c := range cases {
		got, err := ChooseBackupSource(topology(c.topo...), c.policy)
		desc := strings.Join(c.topo, ",") + "/" + string(c.policy)
		if want, ok := strings.CutPrefix(c.want, "error: "); ok {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%s: got %s, %v; want an error with %q", desc, got.Name, err, want)
			}
			continue
		}
		if err != nil || got.Name != c.want {
			t.Errorf("%s: got %s, %v; want %s", desc, got.Name, err, c.want)
		}
	}
}
