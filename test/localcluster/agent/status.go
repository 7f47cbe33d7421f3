package agent

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// statusLoop writes the Pod's status whenever something changed, until ctx ends.
func (w *podWorker) statusLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			w.publishStatus(context.Background())
			return
		case <-w.dirty:
		}
		w.saveRecord()
		w.publishStatus(ctx)
	}
}

// publishStatus computes the status and writes it if it differs from the object's.
func (w *podWorker) publishStatus(ctx context.Context) {
	w.mu.Lock()
	deleted := w.deleted
	w.mu.Unlock()
	if deleted {
		return
	}
	for attempt := 0; attempt < 5; attempt++ {
		pod := w.latest()
		if attempt > 0 {
			fresh, err := w.a.client.CoreV1().Pods(w.namespace).Get(ctx, w.name, metav1.GetOptions{})
			if err != nil {
				return
			}
			if fresh.UID != w.uid {
				return
			}
			pod = fresh
		}
		status := w.buildStatus(pod)
		if apiequality.Semantic.DeepEqual(status, pod.Status) {
			return
		}
		upd := pod.DeepCopy()
		upd.Status = status
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		res, err := w.a.client.CoreV1().Pods(w.namespace).UpdateStatus(rctx, upd, metav1.UpdateOptions{})
		cancel()
		if err == nil {
			w.mu.Lock()
			if !w.deleted {
				w.pod = res
			}
			w.mu.Unlock()
			return
		}
		if apierrors.IsNotFound(err) {
			return
		}
		if ctx.Err() != nil {
			return
		}
		if !apierrors.IsConflict(err) {
			w.logf("status update: %v", err)
			time.Sleep(200 * time.Millisecond)
		}
	}
}

func (w *podWorker) buildStatus(pod *corev1.Pod) corev1.PodStatus {
	w.mu.Lock()
	sandboxReady, initialized, final := w.sandboxReady, w.initialized, w.finalPhase
	var ip string
	if w.sb != nil {
		ip = w.sb.ip
	}
	start := w.startTime
	w.mu.Unlock()

	st := *pod.Status.DeepCopy()
	st.HostIP = hostIPAddr()
	st.HostIPs = []corev1.HostIP{{IP: st.HostIP}}
	if ip != "" {
		st.PodIP = ip
		st.PodIPs = []corev1.PodIP{{IP: ip}}
	}
	if st.StartTime == nil {
		st.StartTime = start
	}
	st.InitContainerStatuses = containerStatuses(w.inits)
	st.ContainerStatuses = containerStatuses(w.mains)

	allReady := len(w.mains) > 0
	allStarted := true
	for _, cs := range st.ContainerStatuses {
		allReady = allReady && cs.Ready
		allStarted = allStarted && (cs.State.Waiting == nil || cs.RestartCount > 0 || cs.LastTerminationState.Terminated != nil)
	}
	switch {
	case final != "":
		st.Phase = final
	case initialized && allStarted:
		st.Phase = corev1.PodRunning
	default:
		st.Phase = corev1.PodPending
	}
	if final != "" {
		allReady = false
	}
	ready := allReady && readinessGatesOK(pod)
	setCond(&st, corev1.PodReadyToStartContainers, sandboxReady, "")
	setCond(&st, corev1.PodInitialized, initialized || final == corev1.PodSucceeded, reasonIf(!initialized, "ContainersNotInitialized"))
	setCond(&st, corev1.ContainersReady, allReady, reasonIf(!allReady, reasonNotReady(final)))
	setCond(&st, corev1.PodReady, ready, reasonIf(!ready, reasonNotReady(final)))
	return st
}

func reasonIf(cond bool, reason string) string {
	if cond {
		return reason
	}
	return ""
}

func reasonNotReady(final corev1.PodPhase) string {
	if final != "" {
		return "PodCompleted"
	}
	return "ContainersNotReady"
}

func readinessGatesOK(pod *corev1.Pod) bool {
	for _, g := range pod.Spec.ReadinessGates {
		ok := false
		for _, c := range pod.Status.Conditions {
			if c.Type == g.ConditionType && c.Status == corev1.ConditionTrue {
				ok = true
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

func setCond(st *corev1.PodStatus, t corev1.PodConditionType, ok bool, reason string) {
	status := corev1.ConditionFalse
	if ok {
		status = corev1.ConditionTrue
	}
	for i := range st.Conditions {
		c := &st.Conditions[i]
		if c.Type != t {
			continue
		}
		if c.Status != status {
			c.Status = status
			c.LastTransitionTime = metav1.Now()
		}
		c.Reason = reason
		return
	}
	st.Conditions = append(st.Conditions, corev1.PodCondition{Type: t, Status: status, Reason: reason, LastTransitionTime: metav1.Now()})
}

func containerStatuses(states []*ctrState) []corev1.ContainerStatus {
	if len(states) == 0 {
		return nil
	}
	out := make([]corev1.ContainerStatus, 0, len(states))
	for _, cs := range states {
		cs.mu.Lock()
		s := corev1.ContainerStatus{
			Name:                 cs.spec.Name,
			Image:                cs.spec.Image,
			ImageID:              "kura-local://host/" + cs.spec.Image,
			State:                *cs.state.DeepCopy(),
			LastTerminationState: *cs.last.DeepCopy(),
			Ready:                cs.ready,
			RestartCount:         cs.restarts,
			ContainerID:          cs.containerID,
		}
		started := cs.started
		s.Started = &started
		cs.mu.Unlock()
		out = append(out, s)
	}
	return out
}
