package agent

import (
	"context"
	"log"
	"os"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// podWorker runs one Pod from sandbox creation to the deletion of its object.
type podWorker struct {
	a         *Agent
	uid       types.UID
	namespace string
	name      string
	nodeIndex int

	ctx    context.Context // ends when the Pod must stop (deletion or agent shutdown)
	cancel context.CancelFunc

	mu       sync.Mutex
	pod      *corev1.Pod // latest seen
	deleted  bool        // the object is gone from the API
	detached bool        // the agent stops and leaves the Pod running
	tornDown bool        // the sandbox and the Pod's files are gone

	// Guarded by mu; read by the status writer.
	sb           *sandbox
	sandboxReady bool
	initialized  bool
	finalPhase   corev1.PodPhase
	startTime    *metav1.Time
	inits        []*ctrState
	mains        []*ctrState

	volumes map[string]string // volume name -> host directory
	tokens  *tokenCache
	dirty   chan struct{}
}

func newPodWorker(a *Agent, pod *corev1.Pod) *podWorker {
	ctx, cancel := context.WithCancel(context.Background())
	w := &podWorker{
		a: a, uid: pod.UID, namespace: pod.Namespace, name: pod.Name, nodeIndex: a.nodes[pod.Spec.NodeName],
		ctx: ctx, cancel: cancel, pod: pod, dirty: make(chan struct{}, 1), tokens: newTokenCache(),
	}
	for i := range pod.Spec.InitContainers {
		w.inits = append(w.inits, newCtrState(&pod.Spec.InitContainers[i], true))
	}
	for i := range pod.Spec.Containers {
		w.mains = append(w.mains, newCtrState(&pod.Spec.Containers[i], false))
	}
	return w
}

func (w *podWorker) update(pod *corev1.Pod, deleted bool) {
	w.mu.Lock()
	w.pod = pod
	if deleted {
		w.deleted = true
	}
	stop := deleted || pod.DeletionTimestamp != nil
	w.mu.Unlock()
	if stop {
		w.cancel()
	}
}

// detach stops the worker but leaves the Pod's processes, sandbox and files in place, for the
// next agent run to adopt.
func (w *podWorker) detach() {
	w.mu.Lock()
	w.detached = true
	w.mu.Unlock()
	w.cancel()
}

// containers lists the init containers, then the main ones.
func (w *podWorker) containers() []*ctrState {
	return append(append([]*ctrState{}, w.inits...), w.mains...)
}

func (w *podWorker) isDetached() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.detached
}

func (w *podWorker) latest() *corev1.Pod {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.pod
}

func (w *podWorker) markDirty() {
	select {
	case w.dirty <- struct{}{}:
	default:
	}
}

// gracePeriod is how long containers get between SIGTERM and SIGKILL now.
func (w *podWorker) gracePeriod() time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	grace := int64(corev1.DefaultTerminationGracePeriodSeconds)
	if w.pod.Spec.TerminationGracePeriodSeconds != nil {
		grace = *w.pod.Spec.TerminationGracePeriodSeconds
	}
	if w.pod.DeletionGracePeriodSeconds != nil {
		grace = *w.pod.DeletionGracePeriodSeconds
	}
	if w.deleted && grace > 2 {
		grace = 2
	}
	return time.Duration(grace) * time.Second
}

func (w *podWorker) logf(format string, args ...any) {
	log.Printf("pod %s/%s: "+format, append([]any{w.namespace, w.name}, args...)...)
}

func (w *podWorker) event(eventType, reason, format string, args ...any) {
	w.a.recorder.Eventf(w.latest(), eventType, reason, format, args...)
}

func (w *podWorker) run() {
	statusDone := make(chan struct{})
	statusCtx, stopStatus := context.WithCancel(context.Background())
	go func() {
		defer close(statusDone)
		w.statusLoop(statusCtx)
	}()
	w.mu.Lock()
	if w.startTime == nil {
		now := metav1.Now()
		w.startTime = &now
	}
	w.mu.Unlock()
	w.markDirty()

	if w.setup() {
		refreshCtx, stopRefresh := context.WithCancel(w.ctx)
		go w.refreshVolumes(refreshCtx)
		if w.runInits() {
			w.runMains()
		}
		stopRefresh()
	}
	if w.isDetached() {
		stopStatus()
		<-statusDone
		w.saveRecord()
		return
	}
	stopped := time.Now()
	w.teardown()
	stopStatus()
	<-statusDone
	w.logf("stopped (teardown %s)", time.Since(stopped).Round(time.Millisecond))

	w.mu.Lock()
	final := w.finalPhase
	w.mu.Unlock()
	if final != "" && w.ctx.Err() == nil {
		// Terminal Pod: the object stays until someone deletes it.
		w.publishStatus(context.Background())
		<-w.ctx.Done()
		if w.isDetached() {
			return
		}
	}
	w.a.deletePodObject(w.latest())
}

// setup creates the sandbox and the volumes, retrying until it works or the Pod stops.
func (w *podWorker) setup() bool {
	pod := w.latest()
	delay := 500 * time.Millisecond
	for {
		err := w.trySetup(pod)
		if err == nil {
			w.markDirty()
			return true
		}
		w.logf("setup: %v", err)
		w.event(corev1.EventTypeWarning, "FailedMount", "%v", err)
		select {
		case <-w.ctx.Done():
			return false
		case <-time.After(delay):
		}
		if delay < 10*time.Second {
			delay *= 2
		}
		pod = w.latest()
	}
}

func (w *podWorker) trySetup(pod *corev1.Pod) error {
	if err := os.MkdirAll(w.dir("containers"), 0o755); err != nil {
		return err
	}
	w.mu.Lock()
	haveSandbox := w.sb != nil
	w.mu.Unlock()
	if !haveSandbox {
		var sb *sandbox
		if pod.Spec.HostNetwork {
			sb = &sandbox{ip: hostIPAddr()}
		} else {
			ip, err := w.a.ipam.allocate(w.nodeIndex)
			if err != nil {
				return err
			}
			sb, err = createSandbox(w.uid, ip)
			if err != nil {
				w.a.ipam.release(ip)
				return err
			}
		}
		w.mu.Lock()
		w.sb = sb
		w.sandboxReady = true
		w.mu.Unlock()
		w.markDirty()
	}
	return w.prepareVolumes(pod)
}

// runInits runs the init containers in order, skipping those an adopted Pod completed; false
// when the Pod failed or must stop.
func (w *podWorker) runInits() bool {
	w.mu.Lock()
	initialized := w.initialized
	w.mu.Unlock()
	if initialized {
		return true
	}
	for _, cs := range w.inits {
		if cs.completed() {
			continue
		}
		if !w.runContainer(cs) {
			return false
		}
	}
	w.mu.Lock()
	w.initialized = true
	w.mu.Unlock()
	w.markDirty()
	return true
}

// runMains runs the containers until none will run again or the Pod stops.
func (w *podWorker) runMains() {
	var wg sync.WaitGroup
	for _, cs := range w.mains {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.runContainer(cs)
		}()
	}
	wg.Wait()
	if w.ctx.Err() != nil {
		return
	}
	phase := corev1.PodSucceeded
	for _, cs := range w.mains {
		if cs.exitCode() != 0 {
			phase = corev1.PodFailed
		}
	}
	w.mu.Lock()
	w.finalPhase = phase
	w.mu.Unlock()
	w.markDirty()
}

func (w *podWorker) teardown() {
	w.mu.Lock()
	sb := w.sb
	w.sandboxReady = false
	w.tornDown = true
	w.mu.Unlock()
	// Whatever still runs of the Pod (an adopted run the worker never got to stop) goes now.
	for _, cs := range w.containers() {
		cs.mu.Lock()
		p := cs.proc
		cs.mu.Unlock()
		if p != nil {
			p.kill()
		}
	}
	if sb != nil {
		sb.destroy()
		if sb.netns != "" {
			w.a.ipam.release(sb.ip)
		}
	}
	_ = os.RemoveAll(w.a.cfg.Path("pods", string(w.uid)))
	w.markDirty()
}

func (w *podWorker) dir(elem ...string) string {
	return w.a.cfg.Path(append([]string{"pods", string(w.uid)}, elem...)...)
}
