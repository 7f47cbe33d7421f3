package localcluster_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

func readFileErr(p string) ([]byte, error) { return os.ReadFile(p) }

// testProbes: an exec readiness probe drives Ready both ways, and a failing liveness probe
// restarts the container.
func (e *env) testProbes(t *testing.T) {
	ns := e.namespace(t, "probes")
	p := shPod(ns, "ready", "sleep 100000")
	p.Spec.Containers[0].ReadinessProbe = &corev1.Probe{PeriodSeconds: 1, FailureThreshold: 1,
		ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"test", "-f", "/tmp/ready"}}}}
	e.createPod(t, p)
	e.waitPod(t, ns, "ready", "to run, not Ready", time.Minute, func(p *corev1.Pod) bool {
		return p.Status.Phase == corev1.PodRunning && !podReady(p)
	})
	e.exec(t, ns, "ready", "", "touch", "/tmp/ready")
	e.waitReady(t, ns, "ready")
	e.exec(t, ns, "ready", "", "rm", "/tmp/ready")
	e.waitPod(t, ns, "ready", "to become not Ready", time.Minute, func(p *corev1.Pod) bool { return !podReady(p) })

	// Liveness: TCP on a port nobody listens on fails, the container is restarted.
	live := shPod(ns, "live", "sleep 100000")
	live.Spec.Containers[0].LivenessProbe = &corev1.Probe{PeriodSeconds: 1, FailureThreshold: 2,
		ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(9)}}}
	live.Spec.TerminationGracePeriodSeconds = ptr.To(int64(1))
	e.createPod(t, live)
	e.waitPod(t, ns, "live", "to be restarted by its liveness probe", time.Minute, func(p *corev1.Pod) bool {
		s := p.Status.ContainerStatuses
		return len(s) == 1 && s[0].RestartCount >= 1
	})
}

// testCrashLoop: a crashing container is restarted with a doubling back-off, and its exit
// code and restart count are reported.
func (e *env) testCrashLoop(t *testing.T) {
	ns := e.namespace(t, "crash")
	e.createPod(t, shPod(ns, "crash", "echo crashing; exit 3"))
	var messages []string
	e.waitPod(t, ns, "crash", "to restart twice", 2*time.Minute, func(p *corev1.Pod) bool {
		s := p.Status.ContainerStatuses
		if len(s) != 1 {
			return false
		}
		if w := s[0].State.Waiting; w != nil && w.Reason == "CrashLoopBackOff" {
			if len(messages) == 0 || messages[len(messages)-1] != w.Message {
				messages = append(messages, w.Message)
			}
		}
		return s[0].RestartCount >= 2 && len(messages) >= 2
	})
	p := e.pod(t, ns, "crash")
	s := p.Status.ContainerStatuses[0]
	if s.LastTerminationState.Terminated == nil || s.LastTerminationState.Terminated.ExitCode != 3 {
		t.Errorf("last termination = %+v, want exit code 3", s.LastTerminationState)
	}
	if p.Status.Phase != corev1.PodRunning {
		t.Errorf("phase of a crash-looping pod = %s, want Running", p.Status.Phase)
	}
	if !strings.Contains(messages[0], "back-off 1s") || !strings.Contains(messages[1], "back-off 2s") {
		t.Errorf("back-off messages %q do not double from 1s", messages)
	}
	if got := readLog(t, e.cfg, ns, "crash", "main"); strings.Count(got, "crashing\n") < 3 {
		t.Errorf("log after 2 restarts = %q, want 3 runs", got)
	}
}

// testTermination: deleting a Pod sends SIGTERM and waits for the process; a process that
// ignores SIGTERM is killed after the grace period; then the Pod object goes away.
func (e *env) testTermination(t *testing.T) {
	ctx := context.Background()
	ns := e.namespace(t, "term")
	polite := shPod(ns, "polite", `trap 'echo got TERM; exit 0' TERM; echo up; while true; do sleep 0.2; done`)
	polite.Spec.TerminationGracePeriodSeconds = ptr.To(int64(30))
	stubborn := shPod(ns, "stubborn", `trap 'echo ignoring TERM' TERM; echo up; while true; do sleep 0.2; done`)
	stubborn.Spec.TerminationGracePeriodSeconds = ptr.To(int64(2))
	for _, p := range []*corev1.Pod{polite, stubborn} {
		e.createPod(t, p)
	}
	for _, name := range []string{"polite", "stubborn"} {
		e.waitReady(t, ns, name)
		e.waitFor(t, 10*time.Second, name+" to install its trap", func() (bool, error) {
			return strings.Contains(readLog(t, e.cfg, ns, name, "main"), "up\n"), nil
		})
	}
	pids := map[string]int{}
	for _, name := range []string{"polite", "stubborn"} {
		var pid int
		p := e.pod(t, ns, name)
		e.recordPids(p)
		if _, err := fmtSscanf(p.Status.ContainerStatuses[0].ContainerID, &pid); err != nil {
			t.Fatalf("container id %q: %v", p.Status.ContainerStatuses[0].ContainerID, err)
		}
		pids[name] = pid
		if err := e.cs.CoreV1().Pods(ns).Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"polite", "stubborn"} {
		e.waitGone(t, ns, name)
		if alive(pids[name]) {
			t.Errorf("process %d of %s still runs after its pod is gone", pids[name], name)
		}
	}
	if got := readLog(t, e.cfg, ns, "polite", "main"); !strings.Contains(got, "got TERM") {
		t.Errorf("polite log = %q, want SIGTERM handled", got)
	}
	if got := readLog(t, e.cfg, ns, "stubborn", "main"); !strings.Contains(got, "ignoring TERM") {
		t.Errorf("stubborn log = %q, want SIGTERM received then SIGKILL", got)
	}
}
