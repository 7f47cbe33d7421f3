package kubectlkura

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/duration"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/internal/builder"
)

func statusCommand(connect Connector) *cobra.Command {
	return &cobra.Command{
		Use:   "status <cluster>",
		Short: "Topology, lag, GTID positions, health, recent failovers and switchovers, backups and what is wrong",
		Args:  exactlyOneCluster,
		RunE: runE(connect, func(ctx context.Context, e *Env, args []string) error {
			v, err := e.gatherStatus(ctx, args[0])
			if err != nil {
				return err
			}
			renderStatus(e.Out, v)
			return nil
		}),
	}
}

// statusView is everything `status` shows, read once.
type statusView struct {
	Cluster *kurav1alpha1.MySQLCluster
	// Pods by name (the cluster's instance Pods).
	Pods map[string]*corev1.Pod
	// Backups of this cluster, newest first.
	Backups []kurav1alpha1.Backup
	Now     time.Time
}

func (e *Env) gatherStatus(ctx context.Context, name string) (statusView, error) {
	c, err := e.getCluster(ctx, name)
	if err != nil {
		return statusView{}, err
	}
	v := statusView{Cluster: c, Pods: map[string]*corev1.Pod{}, Now: e.Now()}
	var pods corev1.PodList
	if err := e.Client.List(ctx, &pods, client.InNamespace(c.Namespace), client.MatchingLabels(builder.SelectorLabels(c))); err != nil {
		return v, fmt.Errorf("failed to list the cluster's Pods: %w", err)
	}
	for i := range pods.Items {
		v.Pods[pods.Items[i].Name] = &pods.Items[i]
	}
	var backups kurav1alpha1.BackupList
	if err := e.Client.List(ctx, &backups, client.InNamespace(c.Namespace)); err != nil {
		return v, fmt.Errorf("failed to list Backups: %w", err)
	}
	for _, b := range backups.Items {
		if b.Spec.Cluster == c.Name {
			v.Backups = append(v.Backups, b)
		}
	}
	sort.SliceStable(v.Backups, func(i, j int) bool {
		return v.Backups[i].CreationTimestamp.After(v.Backups[j].CreationTimestamp.Time)
	})
	return v, nil
}

// age renders how long ago t was, as kubectl does ("5m", "2d3h").
func age(now time.Time, t metav1.Time) string {
	if t.IsZero() {
		return "-"
	}
	return duration.HumanDuration(now.Sub(t.Time)) + " ago"
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// maxLag is the cluster's spec.replication.maxLag, defaulted as the API does.
func maxLag(c *kurav1alpha1.MySQLCluster) time.Duration {
	if c.Spec.Replication.MaxLag != nil {
		return c.Spec.Replication.MaxLag.Duration
	}
	return 30 * time.Second
}

const maxHistoryShown = 5

func renderStatus(w io.Writer, v statusView) {
	c, st := v.Cluster, v.Cluster.Status
	state := string(st.State)
	if state == "" {
		state = "Unknown (not observed yet)"
	}
	fmt.Fprintf(w, "Cluster:   %s/%s   %s %s   %d instances wanted, ready %s\n", c.Namespace, c.Name,
		orDash(string(st.Engine)), orDash(st.Version), builder.Replicas(c), orDash(st.Ready))
	fmt.Fprintf(w, "State:     %s   term %d\n", state, st.Term)
	primary := orDash(st.CurrentPrimary)
	if st.CurrentPrimary != "" {
		primary += fmt.Sprintf("   writes: service %s", builder.PrimaryServiceName(c))
	}
	fmt.Fprintf(w, "Primary:   %s\n", primary)
	fmt.Fprintf(w, "Reads:     service %s (replicas within maxLag %s)\n", builder.ReplicasServiceName(c), maxLag(c))

	fmt.Fprintln(w)
	if len(st.Instances) == 0 {
		fmt.Fprintln(w, "Instances: none observed yet")
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if len(st.Instances) > 0 {
		fmt.Fprintln(tw, "INSTANCE\tROLE\tHEALTHY\tREACHABLE\tREAD-ONLY\tLAG\tPOD\tGTID EXECUTED")
	}
	for _, in := range st.Instances {
		lag := "-"
		if in.LagSeconds != nil {
			lag = fmt.Sprintf("%ds", *in.LagSeconds)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", in.Name, orDash(string(in.Role)), yesNo(in.Healthy),
			yesNo(in.Reachable), yesNo(in.ReadOnly), lag, podState(v.Pods[in.Name]), orDash(in.GTIDExecuted))
	}
	_ = tw.Flush()

	fmt.Fprintln(w)
	fmt.Fprintln(w, "Conditions:")
	for _, cond := range st.Conditions {
		line := fmt.Sprintf("  %-11s %-6s %s", cond.Type, cond.Status, cond.Reason)
		if cond.Message != "" {
			line += ": " + cond.Message
		}
		fmt.Fprintln(w, line)
	}
	if len(st.Conditions) == 0 {
		fmt.Fprintln(w, "  (none yet)")
	}

	renderHistorySection(w, v)
	renderBackupsSection(w, v)
	fmt.Fprintln(w)
	if ps := problems(v); len(ps) == 0 {
		fmt.Fprintln(w, "Problems:  none found")
	} else {
		fmt.Fprintln(w, "Problems:")
		for _, p := range ps {
			fmt.Fprintln(w, "  - "+p)
		}
	}
}

// renderHistorySection prints the newest changes of primary and the last switchover request.
func renderHistorySection(w io.Writer, v statusView) {
	c, st := v.Cluster, v.Cluster.Status
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Failovers and switchovers (newest first):")
	if len(st.History) == 0 {
		fmt.Fprintln(w, "  none since the cluster was created")
	} else {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  TERM\tKIND\tFROM\tTO\tWHEN\tWRITES PAUSED\tACKED WRITES\tREASON")
		shown := 0
		for i := len(st.History) - 1; i >= 0 && shown < maxHistoryShown; i, shown = i-1, shown+1 {
			h := st.History[i]
			paused := "-"
			if h.WriteUnavailableMillis > 0 {
				paused = fmt.Sprintf("%dms", h.WriteUnavailableMillis)
			}
			fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", h.Term, h.Kind, orDash(h.From), h.To,
				age(v.Now, h.Time), paused, orDash(h.AcknowledgedWrites), orDash(h.Reason))
		}
		_ = tw.Flush()
		if n := len(st.History) - maxHistoryShown; n > 0 {
			fmt.Fprintf(w, "  (%d older in status.history)\n", n)
		}
	}
	if s := st.Switchover; s != nil {
		line := fmt.Sprintf("Last switchover request: %s to %s: %s", s.ID, builder.PodName(c, s.Target), s.Phase)
		if s.Message != "" {
			line += ": " + s.Message
		}
		fmt.Fprintln(w, line)
	}

}

// renderBackupsSection prints the newest backups and the binlog archive.
func renderBackupsSection(w io.Writer, v statusView) {
	st := v.Cluster.Status
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Backups:")
	if len(v.Backups) == 0 {
		fmt.Fprintln(w, "  none")
	} else {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  NAME\tMETHOD\tPHASE\tSTARTED\tCOMPLETED\tSIZE\tGTID POSITION")
		for i, b := range v.Backups {
			if i == 3 {
				break
			}
			started, completed := "-", "-"
			if b.Status.StartTime != nil {
				started = age(v.Now, *b.Status.StartTime)
			}
			if b.Status.CompletionTime != nil {
				completed = age(v.Now, *b.Status.CompletionTime)
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t%s\n", b.Name, orDash(string(b.Spec.Method)), orDash(string(b.Status.Phase)),
				started, completed, size(b.Status.SizeBytes), orDash(b.Status.GTIDPosition))
		}
		_ = tw.Flush()
	}
	if a := st.BinlogArchive; a != nil {
		line := fmt.Sprintf("  binlog archive: archived to GTID %s (%ds behind)", orDash(a.LastArchivedGTID), a.LagSeconds)
		if a.LastRecoverableTime != nil {
			line += ", point-in-time restore possible to " + a.LastRecoverableTime.UTC().Format(time.RFC3339)
		}
		if a.Message != "" {
			line += "; " + a.Message
		}
		fmt.Fprintln(w, line)
	}

}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func size(n int64) string {
	if n <= 0 {
		return "-"
	}
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	f, i := float64(n), 0
	for f >= 1024 && i < len(units)-1 {
		f, i = f/1024, i+1
	}
	if i == 0 {
		return fmt.Sprintf("%d B", n)
	}
	return fmt.Sprintf("%.1f %s", f, units[i])
}

// podState is the Pod's phase as `kubectl get pods` shows it, with restarts.
func podState(p *corev1.Pod) string {
	if p == nil {
		return "missing"
	}
	if p.DeletionTimestamp != nil {
		return "Terminating"
	}
	s := string(p.Status.Phase)
	restarts := int32(0)
	for _, cs := range append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
		restarts += cs.RestartCount
		if cs.State.Waiting != nil && cs.State.Waiting.Reason != "" && cs.State.Waiting.Reason != "PodInitializing" {
			s = cs.State.Waiting.Reason
		}
	}
	if restarts > 0 {
		s += fmt.Sprintf(" (%d restarts)", restarts)
	}
	return s
}

// problems says in plain words what needs attention, most urgent first.
func problems(v statusView) []string {
	c, st := v.Cluster, v.Cluster.Status
	var out []string
	add := func(format string, a ...any) { out = append(out, fmt.Sprintf(format, a...)) }
	if c.Spec.Paused {
		add("the cluster is paused (spec.paused): the operator only observes; no failover, switchover or repair happens until it is unpaused")
	}
	switch st.State {
	case kurav1alpha1.StateLost:
		add("no instance can be shown to hold every acknowledged write: the operator will not pick a primary on its own (docs/clustering.md, state Lost)")
	case kurav1alpha1.StateFailed:
		add("the primary has failed and no failover happened yet")
	}
	if cond := meta.FindStatusCondition(st.Conditions, kurav1alpha1.ConditionAvailable); cond != nil && cond.Status != metav1.ConditionTrue {
		add("writes are not accepted: %s", condText(cond))
	} else if st.CurrentPrimary == "" && len(st.Instances) > 0 {
		add("no primary is recorded")
	}
	if c.Status.ObservedGeneration == 0 && st.State == "" {
		add("the operator has not reported on this cluster yet: is it running and watching namespace %s?", c.Namespace)
	} else if c.Status.ObservedGeneration < c.Generation {
		add("the operator has not acted on the latest spec yet (generation %d, observed %d): is the operator running?", c.Generation, c.Status.ObservedGeneration)
	}
	lagLimit := maxLag(c)
	for _, in := range st.Instances {
		switch {
		case !in.Reachable:
			add("%s cannot be reached over SQL%s", in.Name, because(in.Reason))
		case in.ErrantGTIDs != "":
			add("%s has transactions the primary lacks (errant GTIDs %s): it is kept out of the cluster until resolved (spec.replication.errantReplicaPolicy)", in.Name, in.ErrantGTIDs)
		case in.LagSeconds != nil && time.Duration(*in.LagSeconds)*time.Second > lagLimit:
			add("%s is %ds behind the primary (maxLag %s): it is out of the read Service until it catches up", in.Name, *in.LagSeconds, lagLimit)
		case !in.Healthy:
			add("%s is unhealthy%s", in.Name, because(in.Reason))
		}
		if p := v.Pods[in.Name]; p == nil {
			add("%s has no Pod", in.Name)
		} else if s := podState(p); strings.Contains(s, "CrashLoopBackOff") || strings.Contains(s, "ErrImagePull") || strings.Contains(s, "ImagePullBackOff") {
			add("Pod %s is %s", p.Name, s)
		}
	}
	if w := st.AsynchronousWindow; w != nil {
		add("an asynchronous window is open since %s: writes may exist on the primary only, so automatic failover is refused until a semi-synchronous replica catches up", w.StartTime.UTC().Format(time.RFC3339))
	}
	for _, o := range st.Config {
		if o.State == "Refused" {
			add("SET GLOBAL of spec.mysqld.config.%s = %s was refused: %s (the value stays in the config file, which the next start reads)", o.Name, o.Value, orDash(o.Message))
		}
	}
	if s := st.Switchover; s != nil && s.Phase == "Refused" {
		add("the last switchover request (%s) was refused: %s", s.ID, orDash(s.Message))
	}
	if n := len(st.KeptAside); n > 0 {
		k := st.KeptAside[n-1]
		add("transactions no replica had received (so never acknowledged) were set aside on %s (%s) %s: status.keptAside says where they are kept", k.Instance, k.GTIDs, age(v.Now, k.Time))
	}
	if len(v.Backups) > 0 && v.Backups[0].Status.Phase == kurav1alpha1.BackupFailed {
		add("the latest backup %s failed: %s", v.Backups[0].Name, orDash(v.Backups[0].Status.Message))
	}
	return out
}

func because(reason string) string {
	if reason == "" {
		return ""
	}
	return ": " + reason
}

func condText(c *metav1.Condition) string {
	if c.Message != "" {
		return c.Message
	}
	return c.Reason
}
