package agent

import (
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const maxBackoff = 5 * time.Minute

// ctrState is what the agent knows of one container, reported in the Pod's status.
type ctrState struct {
	spec *corev1.Container
	init bool

	mu          sync.Mutex
	state       corev1.ContainerState
	last        corev1.ContainerState
	restarts    int32
	ready       bool
	started     bool
	containerID string
	everRan     bool

	proc    *process // the current run, while running
	adopted *process // a run an earlier agent started, for runContainer to take over
}

func newCtrState(spec *corev1.Container, init bool) *ctrState {
	return &ctrState{spec: spec, init: init, state: corev1.ContainerState{
		Waiting: &corev1.ContainerStateWaiting{Reason: waitingReason(init)},
	}}
}

func waitingReason(init bool) string {
	if init {
		return "PodInitializing"
	}
	return "ContainerCreating"
}

func (cs *ctrState) setWaiting(reason, msg string) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cs.state = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: msg}}
	cs.ready = false
}

func (cs *ctrState) setRunning(p *process) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cs.state = corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(p.started)}}
	cs.containerID = fmt.Sprintf("kura-local://%d", p.pid)
	cs.proc = p
	cs.ready = false
	cs.started = false
	cs.everRan = true
}

func (cs *ctrState) setTerminated(p *process) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	reason := "Completed"
	if p.exitCode != 0 {
		reason = "Error"
	}
	cs.state = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
		ExitCode: p.exitCode, Signal: p.signal, Reason: reason, Message: p.message,
		StartedAt: metav1.NewTime(p.started), FinishedAt: metav1.NewTime(p.finished),
		ContainerID: cs.containerID,
	}}
	cs.ready = false
	cs.started = false
}

// restarting moves the terminated state to lastState before a restart.
func (cs *ctrState) restarting() {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.state.Terminated != nil {
		cs.last = cs.state
	}
	cs.restarts++
}

// completed tells whether an init container ran to success (in an adopted Pod).
func (cs *ctrState) completed() bool {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return cs.adopted == nil && cs.state.Terminated != nil && cs.state.Terminated.ExitCode == 0
}

// takeAdopted returns, once, the run an earlier agent started.
func (cs *ctrState) takeAdopted() *process {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	p := cs.adopted
	cs.adopted = nil
	return p
}

func (cs *ctrState) exitCode() int32 {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.state.Terminated == nil {
		return -1
	}
	return cs.state.Terminated.ExitCode
}

func (cs *ctrState) setReady(ready bool) bool {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	changed := cs.ready != ready
	cs.ready = ready
	return changed
}

func (cs *ctrState) setStarted() {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cs.started = true
}

// runContainer runs one container with its restart policy. For an init container it returns
// true when it completed successfully; it returns false when the Pod failed or must stop.
func (w *podWorker) runContainer(cs *ctrState) bool {
	pod := w.latest()
	policy := pod.Spec.RestartPolicy
	backoffs := 0
	proc := cs.takeAdopted()
	for {
		if w.ctx.Err() != nil && !w.isDetached() && proc != nil {
			// An adopted Pod being deleted: stop what still runs.
			w.stopContainer(cs, proc, w.gracePeriod())
		}
		if w.ctx.Err() != nil {
			return false
		}
		if proc == nil {
			var reason string
			var err error
			proc, reason, err = w.startContainer(cs)
			if err != nil {
				w.logf("container %s: %v", cs.spec.Name, err)
				cs.setWaiting(reason, err.Error())
				w.event(corev1.EventTypeWarning, "Failed", "Error: %s: %v", reason, err)
				w.markDirty()
				if !w.sleep(w.backoff(backoffs)) {
					return false
				}
				backoffs++
				continue
			}
			cs.setRunning(proc)
			w.event(corev1.EventTypeNormal, "Started", "Started container %s", cs.spec.Name)
			w.markDirty()
		}
		probesDone := w.startProbes(cs, proc)
		select {
		case <-proc.done:
		case <-w.ctx.Done():
			if !w.isDetached() {
				w.stopContainer(cs, proc, w.gracePeriod())
			}
		}
		probesDone()
		if w.isDetached() {
			return false
		}
		if proc.message == "" {
			proc.message = w.terminationMessage(cs, proc)
		}
		cs.setTerminated(proc)
		w.markDirty()
		if w.ctx.Err() != nil {
			return false
		}
		ok := proc.exitCode == 0
		var restart bool
		switch {
		case cs.init:
			if ok {
				return true
			}
			restart = policy != corev1.RestartPolicyNever
		case policy == corev1.RestartPolicyAlways:
			restart = true
		case policy == corev1.RestartPolicyOnFailure:
			restart = !ok
		}
		if !restart {
			if cs.init {
				w.mu.Lock()
				w.finalPhase = corev1.PodFailed
				w.mu.Unlock()
				w.markDirty()
			}
			return false
		}
		if proc.finished.Sub(proc.started) > 10*time.Minute {
			backoffs = 0
		}
		delay := w.backoff(backoffs)
		backoffs++
		cs.mu.Lock()
		cs.last = cs.state
		cs.mu.Unlock()
		cs.setWaiting("CrashLoopBackOff", fmt.Sprintf("back-off %s restarting failed container=%s pod=%s_%s", delay, cs.spec.Name, w.name, w.namespace))
		w.event(corev1.EventTypeWarning, "BackOff", "Back-off restarting failed container %s", cs.spec.Name)
		w.markDirty()
		if !w.sleep(delay) {
			return false
		}
		cs.restarting()
		proc = nil
	}
}

func (w *podWorker) backoff(n int) time.Duration {
	d := w.a.cfg.BackoffBase
	for i := 0; i < n && d < maxBackoff; i++ {
		d *= 2
	}
	if d > maxBackoff {
		d = maxBackoff
	}
	return d
}

// sleep waits d unless the Pod stops first; false when it stops.
func (w *podWorker) sleep(d time.Duration) bool {
	select {
	case <-w.ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

// stopContainer runs the preStop hook, then SIGTERM, then SIGKILL after the grace period.
func (w *podWorker) stopContainer(cs *ctrState, p *process, grace time.Duration) {
	deadline := time.Now().Add(grace)
	if cs.spec.Lifecycle != nil && cs.spec.Lifecycle.PreStop != nil {
		h := cs.spec.Lifecycle.PreStop
		probe := &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: h.Exec, HTTPGet: h.HTTPGet, TCPSocket: h.TCPSocket}}
		if h.Sleep != nil {
			time.Sleep(min(time.Duration(h.Sleep.Seconds)*time.Second, grace))
		} else if probe.Exec != nil || probe.HTTPGet != nil || probe.TCPSocket != nil {
			_ = w.probeOnce(cs, p, probe, grace)
		}
	}
	p.terminate(time.Until(deadline))
}
