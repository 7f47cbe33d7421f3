// Command kura-local runs the local cluster: a real Kubernetes control plane and a node agent
// that runs Pods as host processes. See docs/local-cluster.md.
//
//	kura-local up      start etcd, the control plane and the node agent; wait for Ready Nodes
//	kura-local down    stop everything and remove what it created
//	kura-local logs    print a container's log:  kura-local logs [-f] <ns>/<pod> [container]
//	kura-local exec    run a command in a container:  kura-local exec <ns>/<pod> [-c name] -- cmd...
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/kura-db/kura/test/localcluster"
	"github.com/kura-db/kura/test/localcluster/agent"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	cmd, args := os.Args[1], os.Args[2:]
	if cmd == "container-init" {
		// Runs inside a new container's namespaces; must stay minimal.
		if len(args) != 1 {
			fmt.Fprintln(os.Stderr, "usage: kura-local container-init <spec.json>")
			os.Exit(2)
		}
		agent.RunContainerInit(args[0])
		return
	}
	var err error
	switch cmd {
	case "up":
		err = up(args)
	case "down":
		err = down(args)
	case "agent":
		err = runAgent(args)
	case "restart-agent":
		err = restartAgent(args)
	case "logs":
		err = logs(args)
	case "exec":
		err = execCmd(args)
	case "http-serve":
		err = httpServe(args)
	case "http-get":
		err = httpGet(args)
	default:
		usage()
	}
	if err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			os.Exit(exit.ExitCode())
		}
		fmt.Fprintf(os.Stderr, "kura-local %s: %v\n", cmd, err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, `usage: kura-local <command> [flags]
  up      start the local cluster (control plane + node agent) in the background
  down    stop it and remove every process, mount, namespace, link, rule and file it made
  restart-agent [-kill]   restart the node agent (SIGTERM, or SIGKILL to simulate a crash); Pods keep running
  logs    [-f] <namespace>/<pod> [container]   print a container's log
  exec    <namespace>/<pod> [-c container] -- command...   run a command in a container
  http-serve <dir> [addr]          serve a directory over HTTP (a web server for test Pods)
  http-get [-code] [-cacert f] [-token-file f] <url>   fetch a URL (a client for test Pods)`)
	os.Exit(2)
}

type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func commonFlags(fs *flag.FlagSet) *localcluster.Config {
	c := &localcluster.Config{}
	fs.StringVar(&c.StateDir, "state-dir", envOr("KURA_LOCAL_STATE_DIR", "test/.local"), "directory holding all state (env KURA_LOCAL_STATE_DIR)")
	return c
}

func runFlags(fs *flag.FlagSet, c *localcluster.Config) *stringList {
	fs.StringVar(&c.K8sBinDir, "k8s-bin-dir", envOr("KURA_LOCAL_K8S_BIN_DIR", "bin/k8s/v1.37.2"), "directory with kube-apiserver, kube-controller-manager, kube-scheduler")
	fs.StringVar(&c.Etcd, "etcd", "/usr/bin/etcd", "etcd binary")
	fs.StringVar(&c.KuraBinary, "kura-binary", envOr("KURA_LOCAL_KURA_BINARY", ""), "kura binary mounted at /kura in Pods of the operator image")
	fs.IntVar(&c.Nodes, "nodes", 3, "number of Nodes")
	fs.DurationVar(&c.BackoffBase, "backoff-base", 10*time.Second, "first crash-loop back-off delay")
	images := &stringList{}
	fs.Var(images, "kura-image", "extra image pattern (path.Match) that maps to the kura binary; repeatable")
	return images
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func absolutize(c *localcluster.Config) error {
	for _, p := range []*string{&c.K8sBinDir, &c.KuraBinary} {
		if *p == "" {
			continue
		}
		abs, err := filepath.Abs(*p)
		if err != nil {
			return fmt.Errorf("failed to resolve %s: %w", *p, err)
		}
		*p = abs
	}
	return c.Defaults()
}

func up(args []string) error {
	fs := flag.NewFlagSet("up", flag.ExitOnError)
	c := commonFlags(fs)
	images := runFlags(fs, c)
	_ = fs.Parse(args)
	c.KuraImages = *images
	if err := absolutize(c); err != nil {
		return err
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	t, err := c.Up(ctx)
	if err != nil {
		return fmt.Errorf("%w (logs in %s; run kura-local down to clean up)", err, c.LogDir())
	}
	fmt.Printf("control plane ready in %s, %d nodes ready in %s\n", t.ControlPlane.Round(time.Millisecond), c.Nodes, t.Nodes.Round(time.Millisecond))
	fmt.Printf("export KUBECONFIG=%s\n", c.Kubeconfig())
	return nil
}

func down(args []string) error {
	fs := flag.NewFlagSet("down", flag.ExitOnError)
	c := commonFlags(fs)
	keep := fs.Bool("keep-state", false, "keep the state dir (logs, etcd data)")
	_ = fs.Parse(args)
	if err := c.Defaults(); err != nil {
		return err
	}
	return c.Down(localcluster.DownOptions{KeepState: *keep})
}

func restartAgent(args []string) error {
	fs := flag.NewFlagSet("restart-agent", flag.ExitOnError)
	c := commonFlags(fs)
	kill := fs.Bool("kill", false, "stop the agent with SIGKILL (a crash) instead of SIGTERM")
	_ = fs.Parse(args)
	if err := c.Defaults(); err != nil {
		return err
	}
	sig := syscall.SIGTERM
	if *kill {
		sig = syscall.SIGKILL
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	return c.RestartAgent(ctx, sig)
}

func runAgent(args []string) error {
	fs := flag.NewFlagSet("agent", flag.ExitOnError)
	c := commonFlags(fs)
	images := runFlags(fs, c)
	_ = fs.Parse(args)
	c.KuraImages = *images
	if err := absolutize(c); err != nil {
		return err
	}
	log.SetFlags(log.LstdFlags | log.Lmicroseconds)
	a, err := agent.New(c)
	if err != nil {
		return err
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	return a.Run(ctx)
}

func splitPod(ref string) (string, string, error) {
	ns, name, ok := strings.Cut(ref, "/")
	if !ok || ns == "" || name == "" {
		return "", "", fmt.Errorf("want <namespace>/<pod>, got %q", ref)
	}
	return ns, name, nil
}

func logs(args []string) error {
	fs := flag.NewFlagSet("logs", flag.ExitOnError)
	c := commonFlags(fs)
	follow := fs.Bool("f", false, "follow the log")
	_ = fs.Parse(args)
	if err := c.Defaults(); err != nil {
		return err
	}
	if fs.NArg() < 1 {
		return fmt.Errorf("usage: kura-local logs [-f] <namespace>/<pod> [container]")
	}
	ns, pod, err := splitPod(fs.Arg(0))
	if err != nil {
		return err
	}
	path := ""
	if fs.NArg() > 1 {
		path = c.PodLogPath(ns, pod, fs.Arg(1))
	} else {
		matches, _ := filepath.Glob(c.PodLogPath(ns, pod, "*"))
		switch len(matches) {
		case 0:
			return fmt.Errorf("no logs for pod %s/%s in %s", ns, pod, filepath.Dir(c.PodLogPath(ns, pod, "x")))
		case 1:
			path = matches[0]
		default:
			var names []string
			for _, m := range matches {
				names = append(names, strings.TrimSuffix(strings.TrimPrefix(filepath.Base(m), ns+"_"+pod+"_"), ".log"))
			}
			return fmt.Errorf("pod %s/%s has several containers, name one of: %s", ns, pod, strings.Join(names, " "))
		}
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("failed to open log: %w", err)
	}
	defer f.Close()
	for {
		if _, err := io.Copy(os.Stdout, f); err != nil {
			return err
		}
		if !*follow {
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func execCmd(args []string) error {
	fs := flag.NewFlagSet("exec", flag.ExitOnError)
	c := commonFlags(fs)
	container := fs.String("c", "", "container name (default: the first)")
	// Accept "<ns>/<pod>" before or after the flags.
	var target string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		target, args = args[0], args[1:]
	}
	_ = fs.Parse(args)
	rest := fs.Args()
	if target == "" && len(rest) > 0 {
		target, rest = rest[0], rest[1:]
	}
	if len(rest) > 0 && rest[0] == "--" {
		rest = rest[1:]
	}
	if target == "" || len(rest) == 0 {
		return fmt.Errorf("usage: kura-local exec <namespace>/<pod> [-c container] -- <command> [args]")
	}
	if err := c.Defaults(); err != nil {
		return err
	}
	ns, pod, err := splitPod(target)
	if err != nil {
		return err
	}
	cmd, err := c.ExecCommand(context.Background(), ns, pod, *container, rest)
	if err != nil {
		return err
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	return cmd.Run()
}
