package localcluster

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kura-db/kura/test/localcluster/containerinit"
)

// NsenterArgs are the arguments of nsenter(1) that run argv in the network, mount and UTS
// namespaces (and root) of process pid, as uid/gid with groups, in its working directory.
func NsenterArgs(pid int, uid, gid uint32, groups []uint32, argv []string) []string {
	// -r and -w take the root and working directory of the target process, that is the
	// container's root and workingDir (nsenter would resolve an explicit dir on the host).
	args := []string{"-t", strconv.Itoa(pid), "-n", "-m", "-u", "-r", "-w"}
	args = append(args, "--", "setpriv", "--reuid="+strconv.Itoa(int(uid)), "--regid="+strconv.Itoa(int(gid)))
	if len(groups) == 0 {
		args = append(args, "--clear-groups")
	} else {
		gs := make([]string, len(groups))
		for i, g := range groups {
			gs[i] = strconv.Itoa(int(g))
		}
		args = append(args, "--groups="+strings.Join(gs, ","))
	}
	return append(append(args, "--"), argv...)
}

// ExecCommand prepares a command that runs argv inside a running container of a Pod, with the
// container's user, groups, working dir and environment. An empty container means the first.
func (c *Config) ExecCommand(ctx context.Context, namespace, pod, container string, argv []string) (*exec.Cmd, error) {
	cs, err := c.Client()
	if err != nil {
		return nil, err
	}
	p, err := cs.CoreV1().Pods(namespace).Get(ctx, pod, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("failed to get pod %s/%s: %w", namespace, pod, err)
	}
	if container == "" {
		container = p.Spec.Containers[0].Name
	}
	data, err := os.ReadFile(c.PodProcessGroupFile(string(p.UID), container))
	if err != nil {
		return nil, fmt.Errorf("container %s of pod %s/%s is not running here: %w", container, namespace, pod, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || !processAlive(pid) {
		return nil, fmt.Errorf("container %s of pod %s/%s is not running", container, namespace, pod)
	}
	spec, err := containerinit.Load(c.Path("pods", string(p.UID), "containers", container+".json"))
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, "nsenter", NsenterArgs(pid, spec.UID, spec.GID, spec.Groups, argv)...)
	cmd.Env = spec.Env
	return cmd, nil
}

// Exec runs argv inside a container and returns its combined output.
func (c *Config) Exec(ctx context.Context, namespace, pod, container string, argv ...string) (string, error) {
	cmd, err := c.ExecCommand(ctx, namespace, pod, container, argv)
	if err != nil {
		return "", err
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("failed to run %v in %s/%s: %w: %s", argv, namespace, pod, err, out)
	}
	return string(out), nil
}
