package localcluster_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

func httpGet(url string) (string, error) {
	// A new connection each time: an established connection stays with its endpoint (as with
	// kube-proxy), and following the Service is about new connections.
	c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return strings.TrimSpace(string(b)), err
}

func webStatefulSet(ns string) *appsv1.StatefulSet {
	labels := map[string]string{"app": "web"}
	return &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"},
		Spec: appsv1.StatefulSetSpec{
			ServiceName:         "web",
			Replicas:            ptr.To(int32(3)),
			PodManagementPolicy: appsv1.ParallelPodManagement,
			Selector:            &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					TerminationGracePeriodSeconds: ptr.To(int64(5)),
					TopologySpreadConstraints: []corev1.TopologySpreadConstraint{{
						MaxSkew: 1, TopologyKey: "kubernetes.io/hostname", WhenUnsatisfiable: corev1.DoNotSchedule,
						LabelSelector: &metav1.LabelSelector{MatchLabels: labels},
					}},
					Containers: []corev1.Container{{
						Name: "web", Image: engineImage,
						Command: []string{"sh", "-c", "date +%s%N >> /data/starts && " + httpServer("/data/www")},
						Ports:   []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
						ReadinessProbe: &corev1.Probe{PeriodSeconds: 1, ProbeHandler: corev1.ProbeHandler{
							HTTPGet: &corev1.HTTPGetAction{Path: "/", Port: intstr.FromString("http")},
						}},
						VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/data"}},
					}},
				},
			},
			VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{
				ObjectMeta: metav1.ObjectMeta{Name: "data"},
				Spec: corev1.PersistentVolumeClaimSpec{
					AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
					Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
				},
			}},
		},
	}
}

// testStatefulSet: 3 Pods Ready on 3 Nodes; host-to-pod and pod-to-pod traffic; DNS of pod
// FQDNs and Service names; a ClusterIP follows a label move; PVC data survives a Pod
// re-creation; a claim grows.
func (e *env) testStatefulSet(t *testing.T) {
	ctx := context.Background()
	ns := e.namespace(t, "sts")
	svcs := []*corev1.Service{
		{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"}, Spec: corev1.ServiceSpec{
			ClusterIP: corev1.ClusterIPNone, PublishNotReadyAddresses: true, Selector: map[string]string{"app": "web"},
			Ports: []corev1.ServicePort{{Name: "http", Port: 8080}},
		}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web-primary"}, Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "web", "role": "primary"},
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}},
		}},
	}
	for _, s := range svcs {
		if _, err := e.cs.CoreV1().Services(ns).Create(ctx, s, metav1.CreateOptions{}); err != nil {
			t.Fatalf("failed to create service: %v", err)
		}
	}
	start := time.Now()
	if _, err := e.cs.AppsV1().StatefulSets(ns).Create(ctx, webStatefulSet(ns), metav1.CreateOptions{}); err != nil {
		t.Fatalf("failed to create statefulset: %v", err)
	}
	e.waitFor(t, 2*time.Minute, "statefulset web to have 3 ready replicas", func() (bool, error) {
		s, err := e.cs.AppsV1().StatefulSets(ns).Get(ctx, "web", metav1.GetOptions{})
		return err == nil && s.Status.ReadyReplicas == 3, err
	})
	t.Logf("StatefulSet of 3 (with PVCs, HTTP readiness) Ready in %s", time.Since(start).Round(time.Millisecond))

	nodes, ips := map[string]bool{}, map[string]string{}
	for i := 0; i < 3; i++ {
		p := e.waitReady(t, ns, fmt.Sprintf("web-%d", i))
		nodes[p.Spec.NodeName] = true
		ips[p.Name] = p.Status.PodIP
		if !strings.HasPrefix(p.Status.PodIP, "10.244.") {
			t.Errorf("pod %s has IP %q, want one in 10.244.0.0/16", p.Name, p.Status.PodIP)
		}
	}
	if len(nodes) != 3 {
		t.Errorf("pods are on nodes %v, want 3 distinct nodes", nodes)
	}

	// Host to pod.
	for name, ip := range ips {
		got, err := httpGet("http://" + ip + ":8080/")
		if err != nil || got != name {
			t.Errorf("GET %s:8080 from the host = %q, %v; want %q", ip, got, err, name)
		}
	}
	// Pod to pod, by IP and by FQDN; DNS of pods and Services.
	if got := e.exec(t, ns, "web-0", "", selfBin, "http-get", "http://"+ips["web-1"]+":8080/"); strings.TrimSpace(got) != "web-1" {
		t.Errorf("web-0 -> web-1 by IP = %q", got)
	}
	fqdn := "web-2.web." + ns + ".svc.cluster.local"
	if got := e.exec(t, ns, "web-0", "", "getent", "hosts", fqdn); !strings.HasPrefix(got, ips["web-2"]+" ") {
		t.Errorf("getent hosts %s = %q, want %s", fqdn, got, ips["web-2"])
	}
	if got := e.exec(t, ns, "web-0", "", selfBin, "http-get", "http://web-1.web:8080/"); strings.TrimSpace(got) != "web-1" {
		t.Errorf("web-0 -> web-1.web (search path) = %q", got)
	}
	if got := e.exec(t, ns, "web-1", "", "hostname"); strings.TrimSpace(got) != "web-1" {
		t.Errorf("hostname in web-1 = %q", got)
	}
	primary, err := e.cs.CoreV1().Services(ns).Get(ctx, "web-primary", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := e.exec(t, ns, "web-0", "", "getent", "hosts", "web-primary"); !strings.HasPrefix(got, primary.Spec.ClusterIP+" ") {
		t.Errorf("getent hosts web-primary = %q, want %s", got, primary.Spec.ClusterIP)
	}
	if got := e.exec(t, ns, "web-0", "", "getent", "hosts", "kubernetes.default"); !strings.HasPrefix(got, "10.96.0.1 ") {
		t.Errorf("getent hosts kubernetes.default = %q", got)
	}

	// A ClusterIP reaches the Pod carrying the label, from the host and from Pods, and follows
	// the label when it moves.
	url := "http://" + primary.Spec.ClusterIP + "/"
	if _, err := httpGet(url); err == nil {
		t.Errorf("GET %s succeeded with no endpoint", url)
	}
	for _, target := range []string{"web-0", "web-2"} {
		for i := 0; i < 3; i++ {
			name := fmt.Sprintf("web-%d", i)
			role := "replica"
			if name == target {
				role = "primary"
			}
			patch := fmt.Sprintf(`{"metadata":{"labels":{"role":%q}}}`, role)
			if _, err := e.cs.CoreV1().Pods(ns).Patch(ctx, name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		moved := time.Now()
		e.waitFor(t, 30*time.Second, "web-primary to reach "+target+" from the host", func() (bool, error) {
			got, err := httpGet(url)
			return got == target, err
		})
		t.Logf("ClusterIP followed the label to %s in %s", target, time.Since(moved).Round(time.Millisecond))
		for _, from := range []string{"web-1", target} {
			got := e.exec(t, ns, from, "", selfBin, "http-get", "http://web-primary/")
			if strings.TrimSpace(got) != target {
				t.Errorf("%s -> web-primary = %q, want %q", from, got, target)
			}
		}
	}

	// PVC data survives deleting the Pod; the StatefulSet re-creates it on the same volume.
	e.exec(t, ns, "web-1", "", "sh", "-c", "echo kept > /data/marker")
	old := e.pod(t, ns, "web-1")
	if err := e.cs.CoreV1().Pods(ns).Delete(ctx, "web-1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	e.waitPod(t, ns, "web-1", "to be re-created and Ready", 2*time.Minute, func(p *corev1.Pod) bool {
		return p.UID != old.UID && podReady(p)
	})
	if got := e.exec(t, ns, "web-1", "", "cat", "/data/marker"); strings.TrimSpace(got) != "kept" {
		t.Errorf("marker after re-creation = %q, want kept", got)
	}
	if got := e.exec(t, ns, "web-1", "", "sh", "-c", "wc -l < /data/starts"); strings.TrimSpace(got) != "2" {
		t.Errorf("starts recorded on the PVC = %q, want 2", got)
	}

	// Expansion: the claim's capacity follows a larger request.
	patch := `{"spec":{"resources":{"requests":{"storage":"2Gi"}}}}`
	if _, err := e.cs.CoreV1().PersistentVolumeClaims(ns).Patch(ctx, "data-web-0", types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatalf("failed to grow claim: %v", err)
	}
	e.waitFor(t, 30*time.Second, "claim data-web-0 to report 2Gi", func() (bool, error) {
		c, err := e.cs.CoreV1().PersistentVolumeClaims(ns).Get(ctx, "data-web-0", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		q := c.Status.Capacity[corev1.ResourceStorage]
		return q.Cmp(resource.MustParse("2Gi")) == 0, fmt.Errorf("capacity %s", q.String())
	})
}
