package kubectlkura

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/internal/builder"
)

func switchoverCommand(connect Connector) *cobra.Command {
	var to string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "switchover <cluster> [--to <instance>]",
		Short: "Move the primary to another instance (spec.switchover) and wait for the outcome",
		Long: `Sets spec.switchover on the MySQLCluster, as docs/clustering.md describes, and waits
until the operator reports the outcome in status.switchover. Without --to the healthy replica
with the least lag is chosen. A refusal (target lagging, errant, unreachable, cloning) is
printed with the operator's reason and exits non-zero.`,
		Args: exactlyOneCluster,
		RunE: runE(connect, func(ctx context.Context, e *Env, args []string) error {
			return e.switchover(ctx, args[0], to, timeout)
		}),
	}
	cmd.Flags().StringVar(&to, "to", "", "instance to promote: its ordinal (1) or Pod name (shop-1); default: the healthy replica with the least lag")
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Minute, "how long to wait for the operator's outcome")
	return cmd
}

// resolveInstance turns "1" or "shop-1" into the ordinal, refusing instances the cluster does
// not have.
func resolveInstance(c *kurav1alpha1.MySQLCluster, s string) (int32, error) {
	n, err := strconv.Atoi(strings.TrimPrefix(s, c.Name+"-"))
	replicas := builder.Replicas(c)
	if err != nil || n < 0 || int32(n) >= replicas {
		return 0, fmt.Errorf("instance %q does not exist: cluster %s has %s-0 to %s-%d", s, c.Name, c.Name, c.Name, replicas-1)
	}
	return int32(n), nil
}

// bestReplica is the healthy, reachable, non-errant replica with the least lag.
func bestReplica(c *kurav1alpha1.MySQLCluster) (string, error) {
	var cands []kurav1alpha1.InstanceStatus
	for _, in := range c.Status.Instances {
		if in.Role == kurav1alpha1.RoleReplica && in.Healthy && in.Reachable && in.ErrantGTIDs == "" {
			cands = append(cands, in)
		}
	}
	if len(cands) == 0 {
		return "", fmt.Errorf("cluster %s has no healthy replica to switch over to (kubectl kura status %s says why)", c.Name, c.Name)
	}
	lag := func(in kurav1alpha1.InstanceStatus) int64 {
		if in.LagSeconds == nil {
			return 0
		}
		return *in.LagSeconds
	}
	sort.SliceStable(cands, func(i, j int) bool { return lag(cands[i]) < lag(cands[j]) })
	return cands[0].Name, nil
}

func (e *Env) switchover(ctx context.Context, name, to string, timeout time.Duration) error {
	c, err := e.getCluster(ctx, name)
	if err != nil {
		return err
	}
	if c.Spec.Paused {
		return fmt.Errorf("cluster %s is paused (spec.paused): the operator would not act on a switchover; unpause it first", c.Name)
	}
	if to == "" {
		if to, err = bestReplica(c); err != nil {
			return err
		}
	}
	target, err := resolveInstance(c, to)
	if err != nil {
		return err
	}
	targetName := builder.PodName(c, target)
	if targetName == c.Status.CurrentPrimary {
		fmt.Fprintf(e.Out, "%s is already the primary of %s (term %d): nothing to do\n", targetName, c.Name, c.Status.Term)
		return nil
	}
	id := "kubectl-kura-" + e.Now().UTC().Format("20060102-150405")
	patch, err := json.Marshal(map[string]any{"spec": map[string]any{"switchover": kurav1alpha1.SwitchoverRequest{Target: target, ID: id}}})
	if err != nil {
		return err
	}
	if err := e.Client.Patch(ctx, c, client.RawPatch("application/merge-patch+json", patch)); err != nil {
		return fmt.Errorf("failed to request the switchover: %w", err)
	}
	fmt.Fprintf(e.Out, "switchover %s requested: %s -> %s (term %d)\n", id, orDash(c.Status.CurrentPrimary), targetName, c.Status.Term)

	var last *kurav1alpha1.MySQLCluster
	phase := ""
	err = wait.PollUntilContextTimeout(ctx, e.Poll, timeout, true, func(ctx context.Context) (bool, error) {
		cur, err := e.getCluster(ctx, name)
		if err != nil {
			return false, err
		}
		last = cur
		s := cur.Status.Switchover
		if s == nil || s.ID != id {
			return false, nil
		}
		if s.Phase != phase {
			phase = s.Phase
			if phase != "Completed" && phase != "Refused" {
				fmt.Fprintf(e.Out, "  %s%s\n", phase, because(s.Message))
			}
		}
		return phase == "Completed" || phase == "Refused", nil
	})
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || wait.Interrupted(err) {
			return fmt.Errorf("no outcome for switchover %s after %s (status.switchover phase %q): is the operator running?", id, timeout, phase)
		}
		return err
	}
	s := last.Status.Switchover
	if s.Phase == "Refused" {
		return fmt.Errorf("switchover %s to %s refused by the operator: %s", id, targetName, orDash(s.Message))
	}
	line := fmt.Sprintf("switchover %s completed: %s is the primary, term %d", id, orDash(last.Status.CurrentPrimary), last.Status.Term)
	if h := lastChangeTo(last, targetName); h != nil && h.WriteUnavailableMillis > 0 {
		line += fmt.Sprintf(", writes paused %d ms", h.WriteUnavailableMillis)
	}
	fmt.Fprintln(e.Out, line)
	return nil
}

func lastChangeTo(c *kurav1alpha1.MySQLCluster, to string) *kurav1alpha1.TopologyChange {
	for i := len(c.Status.History) - 1; i >= 0; i-- {
		if c.Status.History[i].To == to {
			return &c.Status.History[i]
		}
	}
	return nil
}
