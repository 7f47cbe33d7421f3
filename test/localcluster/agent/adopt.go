package agent

import (
	"encoding/json"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kura-db/kura/test/localcluster"
)

// A node agent restart keeps the Pods running, as a kubelet restart does. Each Pod worker
// writes what it knows of its Pod to <state>/pods/<uid>/agent.json whenever it changes: the
// sandbox (network namespace, veth, IP), the start time, and every container's state, restart
// count, readiness and running process (pid plus start time, which together name one process
// for good). A starting agent reads these records back: a Pod whose object still exists is
// adopted (its processes keep running and are watched through pidfds; a container that ended
// meanwhile is reported with the status its monitor recorded and restarted per policy), and
// whatever belongs to no Pod any more is stopped and removed.

const recordFile = "agent.json"

// podRecord is a Pod worker's persisted state.
type podRecord struct {
	Namespace   string          `json:"namespace"`
	Name        string          `json:"name"`
	NetNS       string          `json:"netns,omitempty"`
	Veth        string          `json:"veth,omitempty"`
	IP          string          `json:"ip,omitempty"`
	StartTime   *metav1.Time    `json:"startTime,omitempty"`
	Initialized bool            `json:"initialized,omitempty"`
	FinalPhase  corev1.PodPhase `json:"finalPhase,omitempty"`
	Containers  []ctrRecord     `json:"containers"`
}

// ctrRecord is one container's persisted state.
type ctrRecord struct {
	Name        string                `json:"name"`
	Init        bool                  `json:"init,omitempty"`
	State       corev1.ContainerState `json:"state"`
	Last        corev1.ContainerState `json:"last"`
	Restarts    int32                 `json:"restarts,omitempty"`
	Ready       bool                  `json:"ready,omitempty"`
	Started     bool                  `json:"started,omitempty"`
	EverRan     bool                  `json:"everRan,omitempty"`
	ContainerID string                `json:"containerID,omitempty"`
	PID         int                   `json:"pid,omitempty"`
	StartTick   uint64                `json:"startTick,omitempty"`
}

// record captures the worker's state; nil once the Pod is torn down.
func (w *podWorker) record() *podRecord {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.sb == nil || w.tornDown {
		return nil
	}
	r := &podRecord{
		Namespace: w.namespace, Name: w.name, NetNS: w.sb.netns, Veth: w.sb.veth, IP: w.sb.ip,
		StartTime: w.startTime, Initialized: w.initialized, FinalPhase: w.finalPhase,
	}
	for _, cs := range w.containers() {
		cs.mu.Lock()
		cr := ctrRecord{
			Name: cs.spec.Name, Init: cs.init, State: *cs.state.DeepCopy(), Last: *cs.last.DeepCopy(),
			Restarts: cs.restarts, Ready: cs.ready, Started: cs.started, EverRan: cs.everRan,
			ContainerID: cs.containerID,
		}
		if cs.state.Running != nil && cs.proc != nil {
			cr.PID, cr.StartTick = cs.proc.pid, cs.proc.startTick
		}
		cs.mu.Unlock()
		r.Containers = append(r.Containers, cr)
	}
	return r
}

// saveRecord writes the worker's state next to its Pod's files (atomically, and never
// re-creating the directory of a Pod that was torn down).
func (w *podWorker) saveRecord() {
	r := w.record()
	if r == nil {
		return
	}
	data, err := json.Marshal(r)
	if err != nil {
		w.logf("encode state: %v", err)
		return
	}
	path := w.dir(recordFile)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return // the Pod's directory is gone: it was torn down meanwhile
	}
	if err := os.Rename(tmp, path); err != nil {
		w.logf("save state: %v", err)
	}
}

func loadRecord(path string) (*podRecord, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r podRecord
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("failed to parse %s: %w", path, err)
	}
	return &r, nil
}

// recoverPods runs once at start, before Pods are watched: it keeps the records of Pods that
// still exist on this agent's Nodes for adoption, and stops and removes everything else an
// earlier run left behind (processes, network namespaces, veths, Pod directories).
func (a *Agent) recoverPods() {
	a.adoptable = map[types.UID]*podRecord{}
	keepNetNS := map[string]bool{}
	dirs, _ := os.ReadDir(a.cfg.Path("pods"))
	for _, d := range dirs {
		uid := types.UID(d.Name())
		dir := a.cfg.Path("pods", d.Name())
		r, err := loadRecord(filepath.Join(dir, recordFile))
		if err == nil {
			if reason := a.adoptionRefused(uid, r); reason == "" {
				a.adoptable[uid] = r
				if r.NetNS != "" {
					keepNetNS[r.NetNS] = true
					a.ipam.reserve(r.IP)
				}
				log.Printf("pod %s/%s: adopting what the previous agent ran", r.Namespace, r.Name)
				continue
			} else {
				log.Printf("pod %s/%s: not adopted (%s): stopping what is left of it", r.Namespace, r.Name, reason)
			}
		}
		localcluster.KillRecordedGroups(dir)
		_ = os.RemoveAll(dir)
	}
	// Network namespaces of no adopted Pod: stop the processes still in them, then remove them.
	var orphans []string
	for _, ns := range localcluster.ListPodNetNS() {
		if !keepNetNS[ns] {
			orphans = append(orphans, ns)
		}
	}
	if len(orphans) > 0 {
		if err := localcluster.KillNetNSProcesses(orphans); err != nil {
			log.Printf("cleaning leftovers of an earlier run: %v", err)
		}
		for _, ns := range orphans {
			(&sandbox{netns: ns, veth: localcluster.VethPrefix + strings.TrimPrefix(ns, localcluster.NetNSPrefix)}).destroy()
		}
	}
}

// adoptionRefused says why a record cannot be adopted, or "" when it can.
func (a *Agent) adoptionRefused(uid types.UID, r *podRecord) string {
	pod, err := a.pods.Pods(r.Namespace).Get(r.Name)
	switch {
	case err != nil:
		return "the Pod object is gone"
	case pod.UID != uid:
		return "the Pod object was replaced"
	case a.nodes[pod.Spec.NodeName] == 0:
		return "the Pod is bound to another Node"
	case len(r.Containers) != len(pod.Spec.InitContainers)+len(pod.Spec.Containers):
		return "the record does not match the Pod's containers"
	}
	if r.NetNS != "" {
		if _, err := os.Stat(filepath.Join("/run/netns", r.NetNS)); err != nil {
			return "its network namespace is gone"
		}
	}
	return ""
}

// restore gives a new worker the state of an adopted record: its sandbox, start time and
// containers, with each running container's process adopted.
func (w *podWorker) restore(r *podRecord) {
	w.sb = &sandbox{netns: r.NetNS, veth: r.Veth, ip: r.IP}
	w.sandboxReady = true
	w.startTime = r.StartTime
	w.initialized = r.Initialized
	w.finalPhase = r.FinalPhase
	for i, cs := range w.containers() {
		cr := r.Containers[i]
		if cr.Name != cs.spec.Name {
			continue // the spec changed under the record: start this container afresh
		}
		cs.state, cs.last = cr.State, cr.Last
		cs.restarts, cs.ready, cs.started, cs.everRan = cr.Restarts, cr.Ready, cr.Started, cr.EverRan
		cs.containerID = cr.ContainerID
		exitFile := w.dir("containers", cs.spec.Name+".exit")
		switch {
		case cr.State.Running != nil:
			cs.adopted = adoptProcess(cr.PID, cr.StartTick, cr.State.Running.StartedAt.Time, exitFile)
			cs.proc = cs.adopted
		case cr.State.Terminated != nil && (!cs.init || cr.State.Terminated.ExitCode != 0):
			// It ended and was not restarted (a completed init container is simply skipped):
			// let the restart policy decide again.
			t := cr.State.Terminated
			p := &process{started: t.StartedAt.Time, finished: t.FinishedAt.Time, exitCode: t.ExitCode,
				signal: t.Signal, message: t.Message, done: make(chan struct{})}
			close(p.done)
			cs.adopted = p
		case cr.State.Waiting != nil && cr.EverRan:
			// It was waiting out a back-off: the next start is a restart.
			cs.restarts++
		}
	}
}
