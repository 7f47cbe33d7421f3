package localcluster_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/kura-db/kura/test/localcluster"
)

// env is the running local cluster shared by the subtests.
type env struct {
	cfg *localcluster.Config
	cs  *kubernetes.Clientset
	// pids of every container process seen, checked to be gone after teardown.
	pids map[int]bool
}

const engineImage = "mariadb:11.4"

func repoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("failed to find the repository root")
		}
		dir = parent
	}
}

// newConfig builds kura-local and points the config at the built Kubernetes binaries.
func newConfig(t testing.TB) *localcluster.Config {
	t.Helper()
	root := repoRoot(t)
	bin := t.TempDir()
	self := filepath.Join(bin, "kura-local")
	build := exec.Command("go", "build", "-o", self, "./test/localcluster/cmd/kura-local")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("failed to build kura-local: %v\n%s", err, out)
	}
	k8s := os.Getenv("KURA_LOCAL_K8S_BIN_DIR")
	if k8s == "" {
		k8s = filepath.Join(root, "bin", "k8s", "v1.37.2")
	}
	// A stand-in for the kura binary: any executable proves the /kura mount.
	kura := filepath.Join(bin, "kura")
	if err := os.WriteFile(kura, []byte("#!/bin/sh\necho kura-stand-in \"$@\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := &localcluster.Config{
		StateDir:    filepath.Join(t.TempDir(), "state"),
		K8sBinDir:   k8s,
		Self:        self,
		KuraBinary:  kura,
		BackoffBase: time.Second,
		Hold:        true,
	}
	if err := cfg.Defaults(); err != nil {
		t.Fatal(err)
	}
	selfBin = self
	if err := cfg.CheckPrerequisites(); err != nil {
		t.Fatalf("%v (run make deps, or hack/local-up.sh once)", err)
	}
	for _, tool := range []string{"mariadbd", "mariadb-install-db", "getent"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("missing %s: run make deps", tool)
		}
	}
	return cfg
}

// namespace creates a namespace for one subtest and waits for its default ServiceAccount.
func (e *env) namespace(t *testing.T, name string) string {
	t.Helper()
	ctx := context.Background()
	_, err := e.cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("failed to create namespace: %v", err)
	}
	e.waitFor(t, time.Minute, "default service account in "+name, func() (bool, error) {
		_, err := e.cs.CoreV1().ServiceAccounts(name).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	})
	return name
}

// waitFor polls check every 100ms until it reports done or timeout passes.
func (e *env) waitFor(t *testing.T, timeout time.Duration, what string, check func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var lastErr error
	for {
		done, err := check()
		if done {
			return
		}
		if err != nil {
			lastErr = err
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s (last error: %v)", timeout, what, lastErr)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (e *env) pod(t *testing.T, ns, name string) *corev1.Pod {
	t.Helper()
	p, err := e.cs.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("failed to get pod %s/%s: %v", ns, name, err)
	}
	return p
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// waitPod waits until the Pod satisfies cond and returns it.
func (e *env) waitPod(t *testing.T, ns, name, what string, timeout time.Duration, cond func(*corev1.Pod) bool) *corev1.Pod {
	t.Helper()
	var last *corev1.Pod
	e.waitFor(t, timeout, fmt.Sprintf("pod %s/%s %s", ns, name, what), func() (bool, error) {
		p, err := e.cs.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		last = p
		e.recordPids(p)
		return cond(p), fmt.Errorf("phase %s, statuses %+v", p.Status.Phase, p.Status.ContainerStatuses)
	})
	return last
}

func (e *env) waitReady(t *testing.T, ns, name string) *corev1.Pod {
	t.Helper()
	return e.waitPod(t, ns, name, "to be Ready", 2*time.Minute, podReady)
}

func (e *env) waitGone(t *testing.T, ns, name string) {
	t.Helper()
	e.waitFor(t, 2*time.Minute, fmt.Sprintf("pod %s/%s to be gone", ns, name), func() (bool, error) {
		_, err := e.cs.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
		return err != nil && strings.Contains(err.Error(), "not found"), nil
	})
}

func (e *env) recordPids(p *corev1.Pod) {
	for _, s := range append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
		var pid int
		if _, err := fmt.Sscanf(s.ContainerID, "kura-local://%d", &pid); err == nil && pid > 0 {
			e.pids[pid] = true
		}
	}
}

func (e *env) createPod(t *testing.T, p *corev1.Pod) {
	t.Helper()
	if _, err := e.cs.CoreV1().Pods(p.Namespace).Create(context.Background(), p, metav1.CreateOptions{}); err != nil {
		t.Fatalf("failed to create pod %s: %v", p.Name, err)
	}
}

// exec runs a command in a container and fails the test on error.
func (e *env) exec(t *testing.T, ns, pod, container string, argv ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := e.cfg.Exec(ctx, ns, pod, container, argv...)
	if err != nil {
		t.Fatalf("%v", err)
	}
	return out
}

// shPod is a Pod running one shell command in the engine image.
func shPod(ns, name, script string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"app": name}},
		Spec: corev1.PodSpec{
			TerminationGracePeriodSeconds: ptr.To(int64(5)),
			Containers: []corev1.Container{{
				Name: "main", Image: engineImage, Command: []string{"sh", "-c", script},
			}},
		},
	}
}

// selfBin is the kura-local binary; Pods see the host's filesystem, so its http-serve and
// http-get commands stand in for a web server and client inside Pods.
var selfBin string

// httpServer is a script serving the container's host name on 8080 from dir.
func httpServer(dir string) string {
	return fmt.Sprintf("mkdir -p %[1]s && hostname > %[1]s/index.html && exec %[2]s http-serve %[1]s :8080", dir, selfBin)
}

func readLog(t *testing.T, cfg *localcluster.Config, ns, pod, container string) string {
	t.Helper()
	data, _ := os.ReadFile(cfg.PodLogPath(ns, pod, container))
	return string(data)
}

func fmtSscanf(containerID string, pid *int) (int, error) {
	return fmt.Sscanf(containerID, "kura-local://%d", pid)
}
