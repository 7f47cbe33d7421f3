package localcluster_test

import (
	"context"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/kura-db/kura/test/localcluster"
)

// testAgentRestart: the node agent stops (cleanly, then by a crash) and starts again while Pods
// run. Their processes, addresses, volumes, restart counts and readiness stay as they were; a
// container that exits while the agent is down is reported with its real exit code and
// restarted per policy; a Pod deleted meanwhile has its processes and network removed; and an
// adopted Pod still terminates gracefully when deleted.
func (e *env) testAgentRestart(t *testing.T) {
	ctx := context.Background()
	ns := e.namespace(t, "restart")
	t.Cleanup(func() {
		if t.Failed() {
			logs, _ := os.ReadFile(e.cfg.Path("logs", "agent.log"))
			t.Logf("agent log:\n%s", logs)
		}
	})
	keeper := shPod(ns, "keeper", `i=0; while true; do i=$((i+1)); echo $i > /data/count; sleep 0.1; done`)
	keeper.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
	mount := []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}
	keeper.Spec.Containers[0].VolumeMounts = mount
	keeper.Spec.Containers[0].ReadinessProbe = &corev1.Probe{PeriodSeconds: 1, FailureThreshold: 1,
		ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"test", "-f", "/data/count"}}}}
	keeper.Spec.InitContainers = []corev1.Container{{Name: "init", Image: engineImage, VolumeMounts: mount,
		Command: []string{"sh", "-c", "echo ran >> /data/inits"}}}
	keeper.Spec.Containers = append(keeper.Spec.Containers, corev1.Container{Name: "quitter", Image: engineImage,
		VolumeMounts: mount, Command: []string{"sh", "-c",
			`trap 'echo got TERM; exit 0' TERM; echo up; while [ ! -f /data/quit ]; do sleep 0.1; done; rm /data/quit; exit 7`}})
	keeper.Spec.TerminationGracePeriodSeconds = ptr.To(int64(30))
	orphan := shPod(ns, "orphan", "sleep 100000")
	for _, p := range []*corev1.Pod{keeper, orphan} {
		e.createPod(t, p)
	}
	before := e.waitReady(t, ns, "keeper")
	orphanPod := e.waitReady(t, ns, "orphan")
	mainPid, quitterPid, orphanPid := containerPid(t, before, "main"), containerPid(t, before, "quitter"), containerPid(t, orphanPod, "main")
	readySince := condition(before, corev1.PodReady).LastTransitionTime
	orphanNet, err := os.Readlink("/proc/" + itoa(orphanPid) + "/ns/net")
	if err != nil {
		t.Fatal(err)
	}

	// A clean stop and start: nothing changes.
	t.Log("restarting the agent (SIGTERM)")
	if err := e.cfg.RestartAgent(ctx, syscall.SIGTERM); err != nil {
		t.Fatalf("restart the agent: %v", err)
	}
	e.checkKept(t, ns, mainPid, before.Status.PodIP, &readySince)

	// A crash; while the agent is down, the quitter exits 7 and the orphan's Pod is deleted.
	t.Log("killing the agent (SIGKILL)")
	if err := e.cfg.StopAgent(ctx, syscall.SIGKILL); err != nil {
		t.Fatalf("kill the agent: %v", err)
	}
	e.exec(t, ns, "keeper", "main", "touch", "/data/quit")
	e.waitFor(t, 30*time.Second, "the quitter to exit while the agent is down", func() (bool, error) {
		return !alive(quitterPid), nil
	})
	if err := e.cs.CoreV1().Pods(ns).Delete(ctx, "orphan", metav1.DeleteOptions{GracePeriodSeconds: ptr.To(int64(0))}); err != nil {
		t.Fatal(err)
	}
	t.Log("starting the agent")
	if err := e.cfg.StartAgent(ctx); err != nil {
		t.Fatalf("start the agent: %v", err)
	}
	after := e.waitPod(t, ns, "keeper", "to report the quitter's exit and restart", time.Minute, func(p *corev1.Pod) bool {
		s := status(p, "quitter")
		return s != nil && s.RestartCount == 1 && s.State.Running != nil
	})
	q := status(after, "quitter")
	if last := q.LastTerminationState.Terminated; last == nil || last.ExitCode != 7 {
		t.Errorf("quitter's last termination = %+v, want exit code 7 as recorded while the agent was down", q.LastTerminationState)
	}
	if pid := containerPid(t, after, "quitter"); pid == quitterPid || !alive(pid) {
		t.Errorf("quitter was not restarted: pid %d (was %d)", pid, quitterPid)
	}
	// The quitter's exit made the Pod not Ready for a moment: only the main container's
	// readiness must have held.
	e.checkKept(t, ns, mainPid, before.Status.PodIP, nil)
	if alive(orphanPid) {
		t.Errorf("process %d of the Pod deleted while the agent was down still runs", orphanPid)
	}
	for _, name := range localcluster.ListPodNetNS() {
		if netnsInode(name) == orphanNet {
			t.Errorf("network namespace %s of the deleted Pod is left", name)
		}
	}
	if _, err := os.Stat(e.cfg.Path("pods", string(orphanPod.UID))); err == nil {
		t.Errorf("files of the Pod deleted while the agent was down are left")
	}

	// The adopted Pod still terminates gracefully.
	t.Log("deleting the adopted Pod")
	e.recordPids(after)
	if err := e.cs.CoreV1().Pods(ns).Delete(ctx, "keeper", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	e.waitGone(t, ns, "keeper")
	if alive(mainPid) {
		t.Errorf("adopted process %d still runs after its Pod is gone", mainPid)
	}
	if got := readLog(t, e.cfg, ns, "keeper", "quitter"); !strings.Contains(got, "got TERM") {
		t.Errorf("quitter log = %q, want SIGTERM handled on deletion", got)
	}
}

// checkKept verifies that the keeper Pod's main container is the same process as before, with
// the same address, no restarts, Ready, its volume intact and its init container not run again;
// with readySince, that the Pod stayed Ready throughout.
func (e *env) checkKept(t *testing.T, ns string, mainPid int, ip string, readySince *metav1.Time) {
	t.Helper()
	p := e.pod(t, ns, "keeper")
	if pid := containerPid(t, p, "main"); pid != mainPid || !alive(pid) {
		t.Errorf("main container: pid %d alive=%v, want the same process %d still running", pid, alive(pid), mainPid)
	}
	if s := status(p, "main"); s == nil || s.RestartCount != 0 || !s.Ready {
		t.Errorf("main container status %+v, want Ready with no restarts", s)
	}
	if p.Status.PodIP != ip {
		t.Errorf("pod IP %s, want %s kept", p.Status.PodIP, ip)
	}
	if c := condition(p, corev1.PodReady); readySince != nil && (c == nil || c.Status != corev1.ConditionTrue || !c.LastTransitionTime.Equal(readySince)) {
		t.Errorf("Ready condition %+v, want True since %s (never dropped)", c, readySince)
	}
	first, _ := strconv.Atoi(strings.TrimSpace(e.exec(t, ns, "keeper", "main", "cat", "/data/count")))
	e.waitFor(t, 10*time.Second, "the counter to go on", func() (bool, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		now, err := e.cfg.Exec(ctx, ns, "keeper", "main", "cat", "/data/count")
		n, _ := strconv.Atoi(strings.TrimSpace(now))
		return n > first, err
	})
	if got := e.exec(t, ns, "keeper", "main", "cat", "/data/inits"); got != "ran\n" {
		t.Errorf("init container runs = %q, want exactly one", got)
	}
}

func status(p *corev1.Pod, container string) *corev1.ContainerStatus {
	for i := range p.Status.ContainerStatuses {
		if p.Status.ContainerStatuses[i].Name == container {
			return &p.Status.ContainerStatuses[i]
		}
	}
	return nil
}

func condition(p *corev1.Pod, t corev1.PodConditionType) *corev1.PodCondition {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == t {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}

func containerPid(t *testing.T, p *corev1.Pod, container string) int {
	t.Helper()
	s := status(p, container)
	if s == nil {
		t.Fatalf("pod %s has no status for container %s", p.Name, container)
	}
	var pid int
	if _, err := fmtSscanf(s.ContainerID, &pid); err != nil {
		t.Fatalf("container id %q: %v", s.ContainerID, err)
	}
	return pid
}

// alive tells whether pid runs. A zombie has exited: a container monitor whose agent was
// restarted is an orphan, and its new parent reaps it when it gets to it.
func alive(pid int) bool {
	stat, err := os.ReadFile("/proc/" + itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(stat), ')')
	return i > 0 && i+2 < len(stat) && stat[i+2] != 'Z'
}

// netnsInode names a network namespace as /proc/<pid>/ns/net does.
func netnsInode(name string) string {
	var st syscall.Stat_t
	if err := syscall.Stat("/run/netns/"+name, &st); err != nil {
		return ""
	}
	return "net:[" + strconv.FormatUint(st.Ino, 10) + "]"
}
