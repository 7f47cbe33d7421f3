package metrics

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestStateAndForget(t *testing.T) {
	SetState("prod", "shop", "Healthy")
	SetState("prod", "other", "Degraded")
	if v := testutil.ToFloat64(ClusterState.WithLabelValues("prod", "shop", "Healthy")); v != 1 {
		t.Errorf("Healthy = %v", v)
	}
	if v := testutil.ToFloat64(ClusterState.WithLabelValues("prod", "shop", "Failed")); v != 0 {
		t.Errorf("Failed = %v", v)
	}
	Instances.WithLabelValues("prod", "shop", "replica", "true").Set(2)
	TopologyChanges.WithLabelValues("prod", "shop", "Failover").Inc()
	Forget("prod", "shop")
	if problems, err := testutil.CollectAndLint(ClusterState); err != nil || len(problems) > 0 {
		t.Fatalf("metric lint: %v %v", problems, err)
	}
	n := testutil.CollectAndCount(ClusterState)
	if n != len(States) {
		t.Errorf("after forgetting shop, %d state series remain, want the %d of the other cluster", n, len(States))
	}
	if testutil.CollectAndCount(TopologyChanges) != 0 || testutil.CollectAndCount(Instances) != 0 {
		t.Error("series of a forgotten cluster remain")
	}
}
