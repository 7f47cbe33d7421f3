package kubectlkura

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
)

// restoreRequest is what the command line asks for.
type restoreRequest struct {
	backup, to, existing, at, gtid string
}

func restoreCommand(connect Connector) *cobra.Command {
	var req restoreRequest
	var timeout time.Duration
	var dryRun, noWait bool
	cmd := &cobra.Command{
		Use:   "restore <backup> (--to <new-cluster> | --into-existing <cluster>)",
		Short: "Restore a Backup into a new cluster or in place, optionally to a point in time, and follow it",
		Long: `Creates a Restore of the Backup into a new MySQLCluster (--to), which copies the backed-up
cluster's spec and credentials, or in place into the cluster the Backup was taken from
(--into-existing): that cluster is stopped, switched to new volumes seeded from the backup, and
its old volumes are kept until the Restore is confirmed (kura.dev/confirm=true) or 24 hours
pass; kura.dev/rollback=true switches back. --time or --gtid replays the cluster's binary log
archive up to that point. Checks first what the operator would refuse (a Backup that is missing
or not completed, a name in use, a point outside the archive's recoverable range) and prints the plan.
--dry-run stops there, after the API server has validated the Restore; otherwise the command
follows the restore until the new cluster is available or the restore failed.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return fmt.Errorf("%w: name one Backup (kubectl kura restore <backup> --to <new-cluster> | --into-existing <cluster>)", ErrUsage)
			}
			return nil
		},
		RunE: runE(connect, func(ctx context.Context, e *Env, args []string) error {
			req.backup = args[0]
			rs, err := e.planRestore(ctx, req)
			if err != nil {
				return err
			}
			if dryRun {
				if err := e.Client.Create(ctx, rs.DeepCopy(), client.DryRunAll); err != nil {
					return fmt.Errorf("the API server refuses the Restore: %w", err)
				}
				fmt.Fprintln(e.Out, "dry run: the API server accepts the Restore; nothing was created")
				return nil
			}
			if err := e.Client.Create(ctx, rs); err != nil {
				return fmt.Errorf("failed to create Restore %s: %w", rs.Name, err)
			}
			fmt.Fprintf(e.Out, "restore %s/%s created\n", rs.Namespace, rs.Name)
			if noWait {
				return nil
			}
			return e.followRestore(ctx, rs, timeout)
		}),
	}
	cmd.Flags().StringVar(&req.to, "to", "", "name of the new MySQLCluster to restore into")
	cmd.Flags().StringVar(&req.existing, "into-existing", "", "restore in place into this MySQLCluster (the Backup's own cluster); its old volumes are kept")
	cmd.Flags().StringVar(&req.at, "time", "", "replay the archive up to this moment (RFC 3339, e.g. 2026-12-02T10:15:00Z)")
	cmd.Flags().StringVar(&req.gtid, "gtid", "", "replay the archive up to this GTID set")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print the plan and validate the Restore without creating it")
	cmd.Flags().BoolVar(&noWait, "no-wait", false, "create the Restore and return")
	cmd.Flags().DurationVar(&timeout, "timeout", 6*time.Hour, "how long to follow the restore")
	return cmd
}

// planRestore checks the request against what the API holds, prints the plan and returns the
// Restore to create.
func (e *Env) planRestore(ctx context.Context, req restoreRequest) (*kurav1alpha1.Restore, error) {
	switch {
	case req.to != "" && req.existing != "":
		return nil, fmt.Errorf("%w: give --to (a new cluster) or --into-existing (in place), not both", ErrUsage)
	case req.to == "" && req.existing == "":
		return nil, fmt.Errorf("%w: --to names the new cluster to restore into, or --into-existing the cluster to restore in place", ErrUsage)
	}
	if req.at != "" && req.gtid != "" {
		return nil, fmt.Errorf("%w: give --time or --gtid, not both", ErrUsage)
	}
	var pit *kurav1alpha1.PointInTime
	switch {
	case req.at != "":
		t, err := time.Parse(time.RFC3339, req.at)
		if err != nil {
			return nil, fmt.Errorf("%w: --time %q is not an RFC 3339 time (e.g. 2026-12-02T10:15:00Z)", ErrUsage, req.at)
		}
		pit = &kurav1alpha1.PointInTime{Time: &metav1.Time{Time: t}}
	case req.gtid != "":
		pit = &kurav1alpha1.PointInTime{GTID: req.gtid}
	}
	b := &kurav1alpha1.Backup{}
	if err := e.Client.Get(ctx, types.NamespacedName{Namespace: e.Namespace, Name: req.backup}, b); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("backup %q not found in namespace %s (kubectl get backups)", req.backup, e.Namespace)
		}
		return nil, fmt.Errorf("failed to read Backup %s: %w", req.backup, err)
	}
	if b.Status.Phase != kurav1alpha1.BackupCompleted {
		return nil, fmt.Errorf("backup %s is %s, not Completed: only a completed backup can be restored", b.Name, orDash(string(b.Status.Phase)))
	}
	if req.existing != "" {
		return e.planInPlace(ctx, req, b, pit)
	}
	err := e.Client.Get(ctx, types.NamespacedName{Namespace: e.Namespace, Name: req.to}, &kurav1alpha1.MySQLCluster{})
	switch {
	case err == nil:
		return nil, fmt.Errorf("cluster %q already exists in namespace %s: a restore never writes into an existing cluster; name a new one with --to", req.to, e.Namespace)
	case !apierrors.IsNotFound(err):
		return nil, fmt.Errorf("failed to read MySQLCluster %s: %w", req.to, err)
	}
	src := &kurav1alpha1.MySQLCluster{}
	if err := e.Client.Get(ctx, types.NamespacedName{Namespace: e.Namespace, Name: b.Spec.Cluster}, src); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("cluster %q, which backup %s was taken from, is gone, so there is no spec to copy: create a MySQLCluster with spec.bootstrap.backup: %s instead", b.Spec.Cluster, b.Name, b.Name)
		}
		return nil, fmt.Errorf("failed to read MySQLCluster %s: %w", b.Spec.Cluster, err)
	}
	if err := e.printPlan(b, src, pit, "  from:    cluster "+src.Name+" (its spec and credentials are copied)", "  into:    new cluster "+e.Namespace+"/"+req.to); err != nil {
		return nil, err
	}
	return e.newRestore(b, pit, req.to, kurav1alpha1.RestoreTarget{NewCluster: req.to}), nil
}

// printPlan prints the plan: the backup, the given lines, and what is replayed (refusing a
// point the archive cannot reach).
func (e *Env) printPlan(b *kurav1alpha1.Backup, c *kurav1alpha1.MySQLCluster, pit *kurav1alpha1.PointInTime, lines ...string) error {
	replay, err := replayWords(b, c, pit)
	if err != nil {
		return err
	}
	s := b.Status
	fmt.Fprintf(e.Out, "Restore plan:\n")
	fmt.Fprintf(e.Out, "  backup:  %s (%s, %s, consistent at GTID %s, %s)\n", b.Name, orDash(string(b.Spec.Method)), size(s.SizeBytes),
		orDash(s.GTIDPosition), stampOf(s.SnapshotTime))
	for _, l := range lines {
		fmt.Fprintln(e.Out, l)
	}
	fmt.Fprintf(e.Out, "  replay:  %s\n", replay)
	return nil
}

// planInPlace is planRestore for --into-existing: the cluster must exist and be the Backup's.
func (e *Env) planInPlace(ctx context.Context, req restoreRequest, b *kurav1alpha1.Backup, pit *kurav1alpha1.PointInTime) (*kurav1alpha1.Restore, error) {
	c := &kurav1alpha1.MySQLCluster{}
	if err := e.Client.Get(ctx, types.NamespacedName{Namespace: e.Namespace, Name: req.existing}, c); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("cluster %q not found in namespace %s: --into-existing names the cluster to restore in place", req.existing, e.Namespace)
		}
		return nil, fmt.Errorf("failed to read MySQLCluster %s: %w", req.existing, err)
	}
	if b.Spec.Cluster != c.Name {
		return nil, fmt.Errorf("backup %s is of cluster %s, not %s: an in-place restore takes a backup of the cluster itself; restore it into a new cluster with --to", b.Name, b.Spec.Cluster, c.Name)
	}
	if c.Spec.Paused {
		return nil, fmt.Errorf("cluster %s is paused (spec.paused): unpause it first, an in-place restore stops and restarts its instances", c.Name)
	}
	into := "  into:    cluster " + e.Namespace + "/" + c.Name + " in place: its instances stop, it switches to new volumes seeded from the backup; the old volumes are kept for 24h or until confirmed"
	if err := e.printPlan(b, c, pit, into); err != nil {
		return nil, err
	}
	return e.newRestore(b, pit, c.Name, kurav1alpha1.RestoreTarget{ExistingCluster: c.Name}), nil
}

// newRestore is the Restore to create: named after the cluster and the time.
func (e *Env) newRestore(b *kurav1alpha1.Backup, pit *kurav1alpha1.PointInTime, cluster string, target kurav1alpha1.RestoreTarget) *kurav1alpha1.Restore {
	stamp := e.Now().UTC().Format("20060102-150405")
	name := cluster
	if len(name) > 63-len(stamp)-1 {
		name = name[:63-len(stamp)-1]
	}
	return &kurav1alpha1.Restore{
		ObjectMeta: metav1.ObjectMeta{Namespace: e.Namespace, Name: strings.TrimRight(name, "-") + "-" + stamp,
			Labels: map[string]string{"app.kubernetes.io/created-by": "kubectl-kura"}},
		Spec: kurav1alpha1.RestoreSpec{Backup: b.Name, PointInTime: pit, Target: target},
	}
}

// replayWords says what is replayed after the backup, refusing a point the archive cannot
// reach as far as the source cluster's status tells.
func replayWords(b *kurav1alpha1.Backup, src *kurav1alpha1.MySQLCluster, pit *kurav1alpha1.PointInTime) (string, error) {
	if pit == nil {
		return "nothing: the data as of the backup's point", nil
	}
	if src.Spec.BinlogArchive == nil {
		return "", fmt.Errorf("cluster %s has no spec.binlogArchive, so there is nothing to replay after the backup: drop --time/--gtid to restore the backup's point", src.Name)
	}
	a := src.Status.BinlogArchive
	rng := "the archive's recoverable range is not reported yet"
	if a != nil && a.FirstRecoverableTime != nil && a.LastRecoverableTime != nil {
		rng = fmt.Sprintf("recoverable from %s to %s", stampOf(a.FirstRecoverableTime), stampOf(a.LastRecoverableTime))
	}
	if pit.GTID != "" {
		return fmt.Sprintf("the archive of %s up to GTID %s (%s)", src.Name, pit.GTID, rng), nil
	}
	t := pit.Time.UTC()
	if st := b.Status.SnapshotTime; st != nil && t.Before(st.UTC()) {
		return "", fmt.Errorf("--time %s is before backup %s's point (%s): name an older backup", t.Format(time.RFC3339), b.Name, stampOf(st))
	}
	if a != nil && a.LastRecoverableTime != nil && t.After(a.LastRecoverableTime.UTC()) {
		return "", fmt.Errorf("--time %s is after the newest recoverable moment of %s's archive (%s)", t.Format(time.RFC3339), src.Name, rng)
	}
	return fmt.Sprintf("the archive of %s up to %s (%s)", src.Name, t.Format(time.RFC3339), rng), nil
}

func stampOf(t *metav1.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// followRestore prints the Restore's steps until it completed or failed.
func (e *Env) followRestore(ctx context.Context, rs *kurav1alpha1.Restore, timeout time.Duration) error {
	var last string
	cur := &kurav1alpha1.Restore{}
	err := wait.PollUntilContextTimeout(ctx, e.Poll, timeout, true, func(ctx context.Context) (bool, error) {
		if err := e.Client.Get(ctx, client.ObjectKeyFromObject(rs), cur); err != nil {
			return false, fmt.Errorf("failed to read Restore %s: %w", rs.Name, err)
		}
		line := "  " + orDash(string(cur.Status.Phase))
		if cur.Status.Message != "" {
			line += ": " + cur.Status.Message
		}
		if line != last {
			last = line
			fmt.Fprintln(e.Out, line)
		}
		p := cur.Status.Phase
		return p == kurav1alpha1.RestoreCompleted || p == kurav1alpha1.RestoreFailed || p == kurav1alpha1.RestoreRolledBack, nil
	})
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || wait.Interrupted(err) {
			return fmt.Errorf("restore %s still %q after %s: is the operator running? (kubectl get restore %s)", rs.Name, orDash(string(cur.Status.Phase)), timeout, rs.Name)
		}
		return err
	}
	s := cur.Status
	if s.Phase == kurav1alpha1.RestoreFailed || s.Phase == kurav1alpha1.RestoreRolledBack {
		return fmt.Errorf("restore %s %s: %s", rs.Name, strings.ToLower(string(s.Phase)), orDash(s.Message))
	}
	took := "-"
	if s.StartTime != nil && s.CompletionTime != nil {
		took = s.CompletionTime.Sub(s.StartTime.Time).Round(time.Second).String()
	}
	fmt.Fprintf(e.Out, "restore %s completed in %s: cluster %s at GTID %s\n", rs.Name, took, orDash(s.Cluster), orDash(s.GTIDReached))
	if ip := s.InPlace; ip != nil && ip.Hint != "" {
		fmt.Fprintf(e.Out, "  %s\n", ip.Hint)
	}
	return nil
}
