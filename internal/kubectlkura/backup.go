package kubectlkura

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
)

func backupCommand(connect Connector) *cobra.Command {
	var schedule, method string
	var timeout time.Duration
	var noWait bool
	cmd := &cobra.Command{
		Use:   "backup <cluster>",
		Short: "Create a Backup of the cluster and follow it to the end",
		Long: `Creates a Backup with the storage and options of the cluster's BackupSchedule (--schedule
when it has several; without any, the storage of spec.binlogArchive) and follows it until it
completes or fails.`,
		Args: exactlyOneCluster,
		RunE: runE(connect, func(ctx context.Context, e *Env, args []string) error {
			b, err := e.createBackup(ctx, args[0], schedule, kurav1alpha1.BackupMethod(method))
			if err != nil {
				return err
			}
			if noWait {
				return nil
			}
			return e.followBackup(ctx, b, timeout)
		}),
	}
	cmd.Flags().StringVar(&schedule, "schedule", "", "BackupSchedule whose storage and options to use (needed when the cluster has several)")
	cmd.Flags().StringVar(&method, "method", "", "logical or physical (default: the schedule's, else logical)")
	cmd.Flags().DurationVar(&timeout, "timeout", 6*time.Hour, "how long to follow the backup")
	cmd.Flags().BoolVar(&noWait, "no-wait", false, "create the Backup and return")
	return cmd
}

// backupOptions picks the options a new Backup of c copies.
func (e *Env) backupOptions(ctx context.Context, c *kurav1alpha1.MySQLCluster, schedule string) (kurav1alpha1.BackupOptions, string, error) {
	if schedule != "" {
		s := &kurav1alpha1.BackupSchedule{}
		if err := e.Client.Get(ctx, types.NamespacedName{Namespace: c.Namespace, Name: schedule}, s); err != nil {
			return kurav1alpha1.BackupOptions{}, "", fmt.Errorf("backupschedule %q: %w", schedule, err)
		}
		if s.Spec.Cluster != c.Name {
			return kurav1alpha1.BackupOptions{}, "", fmt.Errorf("backupschedule %s backs up cluster %s, not %s", schedule, s.Spec.Cluster, c.Name)
		}
		return s.Spec.BackupOptions, "backupschedule " + s.Name, nil
	}
	var list kurav1alpha1.BackupScheduleList
	if err := e.Client.List(ctx, &list, client.InNamespace(c.Namespace)); err != nil {
		return kurav1alpha1.BackupOptions{}, "", fmt.Errorf("failed to list BackupSchedules: %w", err)
	}
	var mine []kurav1alpha1.BackupSchedule
	for _, s := range list.Items {
		if s.Spec.Cluster == c.Name {
			mine = append(mine, s)
		}
	}
	switch {
	case len(mine) == 1:
		return mine[0].Spec.BackupOptions, "backupschedule " + mine[0].Name, nil
	case len(mine) > 1:
		return kurav1alpha1.BackupOptions{}, "", fmt.Errorf("cluster %s has %d BackupSchedules: pick one with --schedule", c.Name, len(mine))
	case c.Spec.BinlogArchive != nil:
		return kurav1alpha1.BackupOptions{Cluster: c.Name, Storage: c.Spec.BinlogArchive.Storage}, "spec.binlogArchive.storage", nil
	}
	return kurav1alpha1.BackupOptions{}, "", fmt.Errorf("cluster %s has no BackupSchedule and no spec.binlogArchive: nothing says where a backup goes (create a BackupSchedule, or a Backup by hand)", c.Name)
}

func (e *Env) createBackup(ctx context.Context, cluster, schedule string, method kurav1alpha1.BackupMethod) (*kurav1alpha1.Backup, error) {
	c, err := e.getCluster(ctx, cluster)
	if err != nil {
		return nil, err
	}
	opts, from, err := e.backupOptions(ctx, c, schedule)
	if err != nil {
		return nil, err
	}
	opts.Cluster = c.Name
	if method != "" {
		opts.Method = method
	}
	// Backup names are at most 56 characters (its Jobs add "-backup" and "-delete").
	stamp := e.Now().UTC().Format("20060102-150405")
	prefix := c.Name
	if len(prefix) > 56-len(stamp)-1 {
		prefix = prefix[:56-len(stamp)-1]
	}
	b := &kurav1alpha1.Backup{
		ObjectMeta: metav1.ObjectMeta{Namespace: c.Namespace, Name: prefix + "-" + stamp,
			Labels: map[string]string{"app.kubernetes.io/created-by": "kubectl-kura"}},
		Spec: kurav1alpha1.BackupSpec{BackupOptions: opts},
	}
	if err := e.Client.Create(ctx, b); err != nil {
		return nil, fmt.Errorf("failed to create Backup %s: %w", b.Name, err)
	}
	m := b.Spec.Method
	if m == "" {
		m = kurav1alpha1.BackupMethod("logical")
	}
	fmt.Fprintf(e.Out, "backup %s/%s created (%s, storage from %s)\n", b.Namespace, b.Name, m, from)
	return b, nil
}

func (e *Env) followBackup(ctx context.Context, b *kurav1alpha1.Backup, timeout time.Duration) error {
	phase := kurav1alpha1.BackupPhase("")
	cur := &kurav1alpha1.Backup{}
	err := wait.PollUntilContextTimeout(ctx, e.Poll, timeout, true, func(ctx context.Context) (bool, error) {
		if err := e.Client.Get(ctx, client.ObjectKeyFromObject(b), cur); err != nil {
			return false, fmt.Errorf("failed to read Backup %s: %w", b.Name, err)
		}
		if cur.Status.Phase != phase {
			phase = cur.Status.Phase
			line := "  " + string(phase)
			if cur.Status.SourceInstance != "" && phase == kurav1alpha1.BackupRunning {
				line += " on " + cur.Status.SourceInstance
			}
			fmt.Fprintln(e.Out, line)
		}
		return phase == kurav1alpha1.BackupCompleted || phase == kurav1alpha1.BackupFailed, nil
	})
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || wait.Interrupted(err) {
			return fmt.Errorf("backup %s still %q after %s: is the operator running? (kubectl get backup %s)", b.Name, orDash(string(phase)), timeout, b.Name)
		}
		return err
	}
	if phase == kurav1alpha1.BackupFailed {
		return fmt.Errorf("backup %s failed: %s", b.Name, orDash(cur.Status.Message))
	}
	s := cur.Status
	took := "-"
	if s.StartTime != nil && s.CompletionTime != nil {
		took = s.CompletionTime.Sub(s.StartTime.Time).Round(time.Second).String()
	}
	fmt.Fprintf(e.Out, "backup %s completed in %s: %s, %s, GTID %s\n", b.Name, took, orDash(s.Location), size(s.SizeBytes), orDash(s.GTIDPosition))
	return nil
}
