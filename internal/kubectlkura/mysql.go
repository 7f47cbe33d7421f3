package kubectlkura

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/internal/builder"
	"github.com/kura-db/kura/internal/contract"
)

func mysqlCommand(connect Connector) *cobra.Command {
	var replica, printOnly bool
	var instance, user string
	cmd := &cobra.Command{
		Use:   "mysql <cluster> [--replica | --instance <instance>] [-- <client arguments>]",
		Short: "Open the engine's client on the primary (or a replica) with the right credentials",
		Long: `Runs the engine's client (mariadb or mysql) inside the instance's mysqld container
through kubectl exec. The password is never read by this plugin nor put on any command line:
the container already has it in its environment (from the credentials Secret), and a small
shell step hands it to the client as MYSQL_PWD.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			var extra []string
			if d := cmd.ArgsLenAtDash(); d >= 0 {
				args, extra = args[:d], args[d:]
			}
			if len(args) != 1 || args[0] == "" {
				return fmt.Errorf("%w: kubectl kura mysql <cluster> [--replica | --instance <instance>] [-- <client arguments>]", ErrUsage)
			}
			if replica && instance != "" {
				return fmt.Errorf("%w: --replica and --instance exclude each other", ErrUsage)
			}
			e, err := connect()
			if err != nil {
				return err
			}
			argv, err := e.mysqlArgs(cmd.Context(), args[0], replica, instance, user, extra)
			if err != nil {
				return err
			}
			if printOnly {
				fmt.Fprintln(e.Out, "kubectl "+shellQuote(argv))
				return nil
			}
			return runKubectl(cmd.Context(), argv)
		},
	}
	cmd.Flags().BoolVar(&replica, "replica", false, "connect to the healthy replica with the least lag instead of the primary")
	cmd.Flags().StringVar(&instance, "instance", "", "connect to this instance: its ordinal (2) or Pod name (shop-2)")
	cmd.Flags().StringVar(&user, "user", "admin", "account: admin or app")
	cmd.Flags().BoolVar(&printOnly, "print", false, "print the kubectl command instead of running it (it holds no password)")
	return cmd
}

// passwordFile maps the accounts this command opens sessions for to the file the mysqld
// container holds the password in (mode 0400, from the credentials Secret).
var passwordFile = map[string]string{
	"admin": contract.CredentialsDir + "/" + contract.KeyAdminPassword,
	"app":   contract.CredentialsDir + "/" + contract.KeyAppPassword,
}

// mysqlArgs builds the kubectl arguments of the session.
func (e *Env) mysqlArgs(ctx context.Context, name string, replica bool, instance, user string, extra []string) ([]string, error) {
	file, ok := passwordFile[user]
	if !ok {
		return nil, fmt.Errorf("%w: --user %q: use admin or app (the operator's own accounts are not for people)", ErrUsage, user)
	}
	c, err := e.getCluster(ctx, name)
	if err != nil {
		return nil, err
	}
	pod := c.Status.CurrentPrimary
	switch {
	case instance != "":
		n, err := resolveInstance(c, instance)
		if err != nil {
			return nil, err
		}
		pod = builder.PodName(c, n)
	case replica:
		if pod, err = bestReplica(c); err != nil {
			return nil, err
		}
	case pod == "":
		return nil, fmt.Errorf("cluster %s has no primary recorded (kubectl kura status %s says why); pick one with --instance", c.Name, c.Name)
	}
	if _, err := e.Clientset.CoreV1().Pods(c.Namespace).Get(ctx, pod, metav1.GetOptions{}); err != nil {
		return nil, fmt.Errorf("instance %s has no Pod to connect to: %w", pod, err)
	}
	clientBin := "mariadb"
	if builder.Engine(c) == kurav1alpha1.EngineMySQL {
		clientBin = "mysql"
	}
	db := ""
	if user == "app" {
		db = builder.Database(c)
	}
	// The password stays inside the container: sh reads it from the container's password file
	// and hands it to the client in its environment, never on a command line.
	tls := ""
	if builder.TLSEnabled(c) {
		// The session is encrypted and the server's certificate checked against the cluster's
		// CA (it names 127.0.0.1), as a client must when require_secure_transport is on.
		tls = " --ssl-ca=" + contract.TLSCAFile + " --ssl-verify-server-cert"
		if builder.Engine(c) == kurav1alpha1.EngineMySQL {
			tls = " --ssl-ca=" + contract.TLSCAFile + " --ssl-mode=VERIFY_IDENTITY"
		}
	}
	script := fmt.Sprintf(`MYSQL_PWD="$(cat %s)" exec %s --user=%s --host=127.0.0.1 --port=3306%s "$@"`, file, clientBin, user, tls)
	argv := append([]string{}, e.KubectlArgs...)
	argv = append(argv, "exec", "-i")
	if term.IsTerminal(int(os.Stdin.Fd())) {
		argv = append(argv, "-t")
	}
	argv = append(argv, "-n", c.Namespace, pod, "-c", contract.ContainerMySQLD, "--", "sh", "-c", script, "kubectl-kura-mysql")
	if db != "" {
		argv = append(argv, "--database="+db)
	}
	return append(argv, extra...), nil
}

// shellQuote renders argv so that a shell gives it back unchanged.
func shellQuote(argv []string) string {
	out := make([]string, len(argv))
	for i, a := range argv {
		if a != "" && strings.Trim(a, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_=./:,@") == "" {
			out[i] = a
		} else {
			out[i] = "'" + strings.ReplaceAll(a, "'", `'"'"'`) + "'"
		}
	}
	return strings.Join(out, " ")
}

// runKubectl runs kubectl (or $KUBECTL) with the terminal attached and passes its exit code on.
func runKubectl(ctx context.Context, argv []string) error {
	bin := os.Getenv("KUBECTL")
	if bin == "" {
		bin = "kubectl"
	}
	cmd := exec.CommandContext(ctx, bin, argv...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return exitCode(ee.ExitCode())
	}
	if err != nil {
		return fmt.Errorf("failed to run %s: %w", bin, err)
	}
	return nil
}
