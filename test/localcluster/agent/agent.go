// Package agent is the local cluster's node agent: in place of the kubelet it registers Nodes,
// runs the Pods bound to them as host processes in their own namespaces, reports their status,
// serves cluster DNS, keeps the service proxy rules in sync and provisions volumes.
package agent

import (
	"context"
	"fmt"
	"log"
	"os"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/record"

	"github.com/kura-db/kura/test/localcluster"
)

// Agent runs the Nodes of the local cluster.
type Agent struct {
	cfg    *localcluster.Config
	client kubernetes.Interface

	factory   informers.SharedInformerFactory
	pods      corelisters.PodLister
	services  corelisters.ServiceLister
	slices    discoverylisters.EndpointSliceLister
	configMap corelisters.ConfigMapLister
	secrets   corelisters.SecretLister
	pvcs      corelisters.PersistentVolumeClaimLister
	pvs       corelisters.PersistentVolumeLister

	recorder record.EventRecorder
	ipam     *ipam
	nodes    map[string]int // name -> index (1-based)

	mu      sync.Mutex
	workers map[types.UID]*podWorker
	wg      sync.WaitGroup

	proxy *serviceProxy
	dns   *dnsServer

	// adoptable holds what an earlier run of the agent left running, by Pod UID, until the
	// Pod's worker takes it over.
	adoptable map[types.UID]*podRecord
}

// New connects to the control plane of cfg.
func New(cfg *localcluster.Config) (*Agent, error) {
	rc, err := clientcmd.BuildConfigFromFlags("", cfg.Kubeconfig())
	if err != nil {
		return nil, fmt.Errorf("failed to load kubeconfig: %w", err)
	}
	rc.QPS, rc.Burst = 200, 400
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("failed to build client: %w", err)
	}
	a := &Agent{cfg: cfg, client: cs, ipam: newIPAM(cfg.Path("run", "ipam.json")), nodes: map[string]int{}, workers: map[types.UID]*podWorker{}}
	for i := 1; i <= cfg.Nodes; i++ {
		a.nodes[nodeName(i)] = i
	}
	return a, nil
}

func nodeName(i int) string { return fmt.Sprintf("node-%d", i) }

// Run serves until ctx ends. It adopts the Pods an earlier run left running, and leaves its
// Pods running when it stops, as a kubelet does: a restarted agent takes them over again.
func (a *Agent) Run(ctx context.Context) error {
	broadcaster := record.NewBroadcaster()
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: a.client.CoreV1().Events("")})
	defer broadcaster.Shutdown()
	a.recorder = broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "kura-local-agent"})

	if err := a.registerNodes(ctx); err != nil {
		return err
	}
	go a.heartbeat(ctx)

	a.factory = informers.NewSharedInformerFactory(a.client, 10*time.Minute)
	a.pods = a.factory.Core().V1().Pods().Lister()
	a.services = a.factory.Core().V1().Services().Lister()
	a.slices = a.factory.Discovery().V1().EndpointSlices().Lister()
	a.configMap = a.factory.Core().V1().ConfigMaps().Lister()
	a.secrets = a.factory.Core().V1().Secrets().Lister()
	a.pvcs = a.factory.Core().V1().PersistentVolumeClaims().Lister()
	a.pvs = a.factory.Core().V1().PersistentVolumes().Lister()

	a.proxy = newServiceProxy(a)
	a.dns = newDNSServer(a)
	prov := newProvisioner(a)
	prov.register(a.factory)
	a.proxy.register(a.factory)

	podInformer := a.factory.Core().V1().Pods().Informer()
	a.factory.Start(ctx.Done())
	for typ, ok := range a.factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return fmt.Errorf("failed to sync informer for %v", typ)
		}
	}
	// With the Pods known, sort out what an earlier run left: adopt or remove. Only then are
	// Pods handed to workers (the handler below first replays every existing Pod).
	a.recoverPods()
	if _, err := podInformer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { a.podChanged(obj, false) },
		UpdateFunc: func(_, obj any) { a.podChanged(obj, false) },
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			a.podChanged(obj, true)
		},
	}); err != nil {
		return fmt.Errorf("failed to watch pods: %w", err)
	}
	if err := a.ensureStorageClass(ctx); err != nil {
		return err
	}
	if err := a.dns.start(ctx); err != nil {
		return err
	}
	go a.proxy.run(ctx)
	go prov.run(ctx)
	log.Printf("agent ready: nodes %v", a.nodeNames())
	if err := os.WriteFile(a.cfg.AgentReadyFile(), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		log.Printf("failed to write %s: %v", a.cfg.AgentReadyFile(), err)
	}

	<-ctx.Done()
	log.Printf("agent stopping: leaving pods running")
	a.mu.Lock()
	for _, w := range a.workers {
		w.detach()
	}
	a.mu.Unlock()
	a.wg.Wait()
	log.Printf("agent stopped")
	return nil
}

func (a *Agent) nodeNames() []string {
	names := make([]string, 0, len(a.nodes))
	for i := 1; i <= len(a.nodes); i++ {
		names = append(names, nodeName(i))
	}
	return names
}

func (a *Agent) podChanged(obj any, deleted bool) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	if _, mine := a.nodes[pod.Spec.NodeName]; !mine {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	w := a.workers[pod.UID]
	if w == nil {
		if deleted {
			return
		}
		terminal := pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed
		if terminal {
			// Its processes are gone (an earlier agent ran it); only the object remains.
			if pod.DeletionTimestamp != nil {
				go a.deletePodObject(pod)
			}
			return
		}
		w = newPodWorker(a, pod)
		if r := a.adoptable[pod.UID]; r != nil {
			delete(a.adoptable, pod.UID)
			w.restore(r)
		}
		a.workers[pod.UID] = w
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			w.run()
			a.mu.Lock()
			delete(a.workers, pod.UID)
			a.mu.Unlock()
		}()
	}
	w.update(pod, deleted)
}

// deletePodObject removes a Pod whose processes are gone, as the kubelet does at the end of a
// graceful deletion.
func (a *Agent) deletePodObject(pod *corev1.Pod) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	zero := int64(0)
	uid := pod.UID
	err := a.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
		GracePeriodSeconds: &zero,
		Preconditions:      &metav1.Preconditions{UID: &uid},
	})
	if err != nil && !isNotFoundOrConflict(err) {
		log.Printf("failed to delete pod %s/%s: %v", pod.Namespace, pod.Name, err)
	}
}
