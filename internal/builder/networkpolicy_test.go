package builder

import (
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/internal/golden"
)

var operatorOpts = Options{KuraImage: "kura:dev", OperatorNamespace: "kura-system",
	OperatorPodLabels: map[string]string{"app.kubernetes.io/name": "kura", "app.kubernetes.io/instance": "kura"}}

// The default policy (clients: the cluster's namespace), one with chosen clients, and one
// built by an operator that does not know where it runs (no rule admits it).
func TestNetworkPolicyGolden(t *testing.T) {
	cases := map[string]struct {
		c    *kurav1alpha1.MySQLCluster
		opts Options
	}{
		"networkpolicy-default.yaml": {newCluster(), operatorOpts},
		"networkpolicy-clients.yaml": {newCluster(func(c *kurav1alpha1.MySQLCluster) {
			c.Spec.NetworkPolicy.Clients = []networkingv1.NetworkPolicyPeer{
				{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "shop-web"}}},
				{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "analytics"}}},
			}
		}), operatorOpts},
		"networkpolicy-no-operator-identity.yaml": {newCluster(), opts},
	}
	for name, tc := range cases {
		b, err := yaml.Marshal(NetworkPolicy(tc.c, tc.opts))
		if err != nil {
			t.Fatal(err)
		}
		golden.Assert(t, name, b)
	}
}

func TestNetworkPolicyEnabledByDefault(t *testing.T) {
	if !NetworkPolicyEnabled(newCluster()) {
		t.Error("NetworkPolicy must be on when spec.networkPolicy is unset")
	}
	off := newCluster(func(c *kurav1alpha1.MySQLCluster) { c.Spec.NetworkPolicy.Enabled = ptr.To(false) })
	if NetworkPolicyEnabled(off) {
		t.Error("enabled: false must turn it off")
	}
	np := NetworkPolicy(newCluster(), operatorOpts)
	// The agent port is only in the rule for the operator and the cluster's own Pods.
	for _, r := range np.Spec.Ingress {
		agent := false
		for _, p := range r.Ports {
			agent = agent || p.Port.IntValue() == 8080
		}
		if !agent {
			continue
		}
		for _, f := range r.From {
			if f.PodSelector == nil || (len(f.PodSelector.MatchLabels) == 0 && f.NamespaceSelector == nil) {
				t.Errorf("agent port open to %+v", f)
			}
		}
	}
}
