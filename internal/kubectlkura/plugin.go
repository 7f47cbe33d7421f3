// Package kubectlkura is `kubectl kura`, the kubectl plugin for Kura clusters: status,
// switchover, a client session, a backup, a restore and a support bundle (docs/kubectl-plugin.md).
package kubectlkura

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/internal/scheme"
)

// Env is what every command works with: the API clients, the namespace and the streams.
type Env struct {
	Client    client.Client
	Clientset kubernetes.Interface
	Namespace string
	Out, Err  io.Writer
	// Now is the clock (fixed in tests, so rendered ages are stable).
	Now func() time.Time
	// Poll is how often a waiting command reads the API again.
	Poll time.Duration
	// KubectlArgs are the kubeconfig flags the user gave, passed on to `kubectl exec`.
	KubectlArgs []string
	// Logs reads container logs; nil reads them through Clientset.
	Logs LogFunc
}

// Connector builds the Env once the flags are parsed.
type Connector func() (*Env, error)

// Version is the plugin's version; empty means the module version of the build.
var Version = ""

func versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the plugin's version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			v := Version
			if bi, ok := debug.ReadBuildInfo(); v == "" && ok {
				v = bi.Main.Version
			}
			fmt.Fprintln(cmd.OutOrStdout(), orDash(v))
		},
	}
}

// ErrUsage marks a mistake in the command line.
var ErrUsage = errors.New("usage")

// NewCommand returns the root command with the standard kubeconfig flags (--kubeconfig,
// --context, --namespace, ...).
func NewCommand(streams genericiooptions.IOStreams) *cobra.Command {
	flags := genericclioptions.NewConfigFlags(true)
	connect := func() (*Env, error) {
		cfg, err := flags.ToRESTConfig()
		if err != nil {
			return nil, fmt.Errorf("failed to load the kubeconfig: %w", err)
		}
		ns, _, err := flags.ToRawKubeConfigLoader().Namespace()
		if err != nil {
			return nil, fmt.Errorf("failed to find the namespace: %w", err)
		}
		c, err := client.New(cfg, client.Options{Scheme: scheme.New()})
		if err != nil {
			return nil, fmt.Errorf("failed to create a Kubernetes client: %w", err)
		}
		cs, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			return nil, fmt.Errorf("failed to create a Kubernetes client: %w", err)
		}
		return &Env{Client: c, Clientset: cs, Namespace: ns, Out: streams.Out, Err: streams.ErrOut,
			Now: time.Now, Poll: 500 * time.Millisecond, KubectlArgs: kubectlArgs(flags)}, nil
	}
	root := newRoot(streams, connect)
	flags.AddFlags(root.PersistentFlags())
	return root
}

// kubectlArgs turns the kubeconfig flags that were set into kubectl arguments.
func kubectlArgs(f *genericclioptions.ConfigFlags) []string {
	var out []string
	add := func(flag string, v *string) {
		if v != nil && *v != "" {
			out = append(out, "--"+flag+"="+*v)
		}
	}
	add("kubeconfig", f.KubeConfig)
	add("context", f.Context)
	add("cluster", f.ClusterName)
	add("user", f.AuthInfoName)
	add("server", f.APIServer)
	add("token", f.BearerToken)
	return out
}

func newRoot(streams genericiooptions.IOStreams, connect Connector) *cobra.Command {
	root := &cobra.Command{
		Use:           "kubectl-kura",
		Short:         "Operate Kura MySQL-family clusters: status, switchover, mysql, backup, restore, report",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.CompletionOptions.DisableDefaultCmd = true
	root.SetOut(streams.Out)
	root.SetErr(streams.ErrOut)
	root.AddCommand(statusCommand(connect), switchoverCommand(connect), mysqlCommand(connect),
		backupCommand(connect), restoreCommand(connect), reportCommand(connect), versionCommand())
	return root
}

// Main runs the plugin and returns the process exit code: every failure is one line on
// stderr and a non-zero code.
func Main(args []string, streams genericiooptions.IOStreams) int {
	// controller-runtime's client logs through its global logger; the plugin reports errors itself.
	ctrllog.SetLogger(logr.Discard())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return execute(ctx, NewCommand(streams), args, streams.ErrOut)
}

// execute runs root with args and turns an error into one line on errOut and an exit code.
func execute(ctx context.Context, root *cobra.Command, args []string, errOut io.Writer) int {
	root.SetArgs(args)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(errOut, "kubectl-kura: "+oneLine(err.Error()))
		var code exitCode
		if errors.As(err, &code) {
			return int(code)
		}
		return 1
	}
	return 0
}

// exitCode lets a command (mysql) pass on the exit code of what it ran.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// exactlyOneCluster is the positional-argument check of the commands taking a cluster name.
func exactlyOneCluster(cmd *cobra.Command, args []string) error {
	if len(args) != 1 || args[0] == "" {
		return fmt.Errorf("%w: kubectl kura %s <cluster> (the MySQLCluster's name)", ErrUsage, cmd.Name())
	}
	return nil
}

// getCluster reads the MySQLCluster, with a plain message when it is not there.
func (e *Env) getCluster(ctx context.Context, name string) (*kurav1alpha1.MySQLCluster, error) {
	c := &kurav1alpha1.MySQLCluster{}
	if err := e.Client.Get(ctx, types.NamespacedName{Namespace: e.Namespace, Name: name}, c); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("mysqlcluster %q not found in namespace %q (kubectl get mysqlclusters -n %s lists them)", name, e.Namespace, e.Namespace)
		}
		return nil, fmt.Errorf("failed to read mysqlcluster %s/%s: %w", e.Namespace, name, err)
	}
	return c, nil
}

// runE wraps a command body: connect, then run.
func runE(connect Connector, body func(ctx context.Context, e *Env, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		e, err := connect()
		if err != nil {
			return err
		}
		return body(cmd.Context(), e, args)
	}
}
