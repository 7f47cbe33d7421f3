package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// chaosTable is the nftables table the suite adds inside a Pod's network namespace. The
// service proxy's table lives in the host's namespace, so this one never meets it.
const chaosTable = "kura_chaos"

// podNetNS is the name (under /run/netns) of a Pod's network namespace, from the node agent's
// record of the Pod.
func podNetNS(ctx context.Context, ns, pod string) (string, error) {
	p := &corev1.Pod{}
	if err := env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: pod}, p); err != nil {
		return "", err
	}
	data, err := os.ReadFile(env.LC.Path("pods", string(p.UID), "agent.json"))
	if err != nil {
		return "", fmt.Errorf("no agent record for %s/%s: %w", ns, pod, err)
	}
	var rec struct {
		NetNS string `json:"netns"`
	}
	if err := json.Unmarshal(data, &rec); err != nil || rec.NetNS == "" {
		return "", fmt.Errorf("no network namespace recorded for %s/%s (%v)", ns, pod, err)
	}
	return rec.NetNS, nil
}

// partition drops traffic in a network namespace: with no peers, everything on eth0 both ways
// (loopback inside the Pod still works, routes and addresses stay); with peers, only traffic to
// and from those addresses. It returns the heal function, which removes the rules.
func partition(netns string, peers []string) (heal func() error, err error) {
	match := ""
	if len(peers) > 0 {
		match = "ip daddr { " + strings.Join(peers, ", ") + " } "
	}
	inMatch := strings.Replace(match, "daddr", "saddr", 1)
	rules := fmt.Sprintf(`table inet %[1]s {
	chain in {
		type filter hook input priority -300; policy accept;
		iifname "eth0" %[2]sdrop
	}
	chain out {
		type filter hook output priority -300; policy accept;
		oifname "eth0" %[3]sdrop
	}
}
`, chaosTable, inMatch, match)
	if err := nft(netns, rules); err != nil {
		return nil, err
	}
	return func() error { return nft(netns, "delete table inet "+chaosTable+"\n") }, nil
}

func nft(netns, script string) error {
	cmd := exec.Command("ip", "netns", "exec", netns, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("nft in %s: %w: %s", netns, err, out)
	}
	return nil
}
