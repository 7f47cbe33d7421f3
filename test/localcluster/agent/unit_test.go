package agent

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/kura-db/kura/test/localcluster"
	"github.com/kura-db/kura/test/localcluster/containerinit"
)

func TestExpand(t *testing.T) {
	vars := map[string]string{"A": "1", "B": "two"}
	for in, want := range map[string]string{
		"plain":          "plain",
		"$(A)":           "1",
		"x-$(A)-$(B)":    "x-1-two",
		"$(MISSING)":     "$(MISSING)",
		"$$(A)":          "$(A)",
		"cost $5":        "cost $5",
		"open $(A":       "open $(A",
		"$(A)$(B)$(A)":   "1two1",
		"trailing $":     "trailing $",
		"$(A) and $$$$x": "1 and $$x",
	} {
		if got := expand(in, vars); got != want {
			t.Errorf("expand(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestResolveImage(t *testing.T) {
	a := &Agent{cfg: &localcluster.Config{KuraImages: []string{"registry.local/team/operator:*"}}}
	for image, want := range map[string]imageKind{
		"mariadb:11.4":                    imageMariaDB,
		"docker.io/library/mariadb:10.11": imageMariaDB,
		"mysql:8.4":                       imageMySQL,
		"kura:dev":                        imageKura,
		"kura-db/kura:0.1.0":              imageKura,
		"ghcr.io/kura-db/kura:v1":         imageKura,
		"registry.local/team/operator:x":  imageKura,
		"mariadb@sha256:abcd":             imageMariaDB,
	} {
		got, err := a.resolveImage(image)
		if err != nil || got != want {
			t.Errorf("resolveImage(%q) = %v, %v; want %v", image, got, err, want)
		}
	}
	for _, image := range []string{"nginx:1.27", "busybox", "kurax:1", "mariadb-operator:1"} {
		if _, err := a.resolveImage(image); err == nil || !strings.Contains(err.Error(), image) {
			t.Errorf("resolveImage(%q) = %v, want an error naming the image", image, err)
		}
	}
}

func TestResolvConf(t *testing.T) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop"}}
	got, err := resolvConf(pod)
	if err != nil {
		t.Fatal(err)
	}
	want := "nameserver 10.244.0.1\nsearch shop.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n"
	if got != want {
		t.Errorf("resolv.conf = %q, want %q", got, want)
	}
	pod.Spec.DNSPolicy = corev1.DNSNone
	pod.Spec.DNSConfig = &corev1.PodDNSConfig{Nameservers: []string{"10.244.0.9"}, Options: []corev1.PodDNSConfigOption{{Name: "ndots", Value: ptr.To("2")}}}
	if got, _ := resolvConf(pod); got != "nameserver 10.244.0.9\noptions ndots:2\n" {
		t.Errorf("dnsPolicy None: %q", got)
	}
}

func TestHostnames(t *testing.T) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "shop-0"},
		Spec: corev1.PodSpec{Hostname: "shop-0", Subdomain: "shop-instances"}}
	h, fqdn := podHostname(pod)
	if h != "shop-0" || fqdn != "shop-0.shop-instances.shop.svc.cluster.local" {
		t.Errorf("podHostname = %q, %q", h, fqdn)
	}
	hosts := hostsFile(pod, "10.244.1.7", h, fqdn)
	if !strings.Contains(hosts, "10.244.1.7\tshop-0.shop-instances.shop.svc.cluster.local\tshop-0\n") {
		t.Errorf("hosts file lacks the pod's own entry:\n%s", hosts)
	}
}

func TestCredentials(t *testing.T) {
	pod := &corev1.Pod{Spec: corev1.PodSpec{SecurityContext: &corev1.PodSecurityContext{
		RunAsUser: ptr.To(int64(999)), RunAsGroup: ptr.To(int64(999)), FSGroup: ptr.To(int64(1000)), SupplementalGroups: []int64{5},
	}}}
	c := &corev1.Container{SecurityContext: &corev1.SecurityContext{RunAsUser: ptr.To(int64(1001))}}
	uid, gid, groups, err := credentials(pod, c)
	if err != nil || uid != 1001 || gid != 999 || len(groups) != 2 || groups[0] != 1000 || groups[1] != 5 {
		t.Errorf("credentials = %d %d %v %v", uid, gid, groups, err)
	}
	nonRoot := &corev1.Pod{Spec: corev1.PodSpec{SecurityContext: &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true)}}}
	if _, _, _, err := credentials(nonRoot, &corev1.Container{}); err == nil {
		t.Errorf("runAsNonRoot without a user was accepted")
	}
}

func TestWriteAtomic(t *testing.T) {
	dir := t.TempDir()
	files := map[string]fileData{"a": {data: []byte("1"), mode: 0o644}, "sub/b": {data: []byte("2"), mode: 0o600}}
	changed, err := writeAtomic(dir, files, nil)
	if err != nil || !changed {
		t.Fatalf("first write: %v, %v", changed, err)
	}
	if changed, err := writeAtomic(dir, files, nil); err != nil || changed {
		t.Errorf("identical write changed = %v, %v", changed, err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "sub", "b")); string(got) != "2" {
		t.Errorf("sub/b = %q", got)
	}
	delete(files, "a")
	files["sub/b"] = fileData{data: []byte("3"), mode: 0o600}
	if changed, err := writeAtomic(dir, files, nil); err != nil || !changed {
		t.Fatalf("update: %v, %v", changed, err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "a")); !os.IsNotExist(err) {
		t.Errorf("removed key a still present: %v", err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "sub", "b")); string(got) != "3" {
		t.Errorf("sub/b after update = %q", got)
	}
	entries, _ := os.ReadDir(dir)
	var versions int
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "..data-") {
			versions++
		}
	}
	if versions != 1 {
		t.Errorf("%d data versions left, want 1", versions)
	}
}

// Secret volumes follow the kubelet: defaultMode (or an item's mode) is the file's mode;
// with an fsGroup the file belongs to that group, which gets read access (0400 becomes 0440),
// so a container running as the fsGroup reads a file the mode keeps from everyone else.
func TestSecretVolumeModeAndGroup(t *testing.T) {
	secret := map[string][]byte{"agent-password": []byte("g"), "operator-password": []byte("o"), "other": []byte("x")}
	items := []corev1.KeyToPath{{Key: "agent-password", Path: "agent-password"}, {Key: "operator-password", Path: "op", Mode: ptr.To[int32](0o600)}}
	for _, tc := range []struct {
		fsGroup     *int64
		agent, op   os.FileMode
		wantGroupID int
	}{
		{nil, 0o400, 0o600, os.Getgid()},
		{ptr.To[int64](999), 0o440, 0o640, 999},
	} {
		files := map[string]fileData{}
		if err := addItems(secret, items, modeOr(ptr.To[int32](0o400), 0o644), files, "secret s"); err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		if _, err := writeAtomic(dir, files, tc.fsGroup); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Lstat(filepath.Join(dir, "other")); !os.IsNotExist(err) {
			t.Errorf("a key not listed in items was written: %v", err)
		}
		for name, want := range map[string]os.FileMode{"agent-password": tc.agent, "op": tc.op} {
			fi, err := os.Stat(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			st := fi.Sys().(*syscall.Stat_t)
			if fi.Mode().Perm() != want || int(st.Gid) != tc.wantGroupID {
				t.Errorf("fsGroup %v: %s has mode %o group %d, want %o group %d", tc.fsGroup, name, fi.Mode().Perm(), st.Gid, want, tc.wantGroupID)
			}
		}
	}
}

func TestBackoff(t *testing.T) {
	w := &podWorker{a: &Agent{cfg: &localcluster.Config{BackoffBase: 10e9}}}
	want := []string{"10s", "20s", "40s", "1m20s", "2m40s", "5m0s", "5m0s"}
	for i, d := range want {
		if got := w.backoff(i).String(); got != d {
			t.Errorf("backoff(%d) = %s, want %s", i, got, d)
		}
	}
}

func TestIPAMRoundRobin(t *testing.T) {
	p := newIPAM("")
	a, _ := p.allocate(1)
	p.release(a)
	b, _ := p.allocate(1)
	if a != "10.244.1.2" || b != "10.244.1.3" {
		t.Errorf("allocations %s then %s, want 10.244.1.2 then 10.244.1.3 (no immediate reuse)", a, b)
	}
	for i := 0; i < 252; i++ {
		if _, err := p.allocate(1); err != nil {
			t.Fatalf("allocation %d: %v", i, err)
		}
	}
	if _, err := p.allocate(1); err == nil {
		t.Errorf("allocated more than 253 addresses on one node")
	}
	if ip, err := p.allocate(2); err != nil || ip != "10.244.2.2" {
		t.Errorf("node-2 allocation = %s, %v", ip, err)
	}
}

func TestIPAMReserve(t *testing.T) {
	p := newIPAM("")
	p.reserve("10.244.1.2")
	p.reserve("10.244.1.4")
	for range 251 {
		ip, err := p.allocate(1)
		if err != nil {
			t.Fatal(err)
		}
		if ip == "10.244.1.2" || ip == "10.244.1.4" {
			t.Fatalf("allocate handed out the reserved address %s", ip)
		}
	}
	if _, err := p.allocate(1); err == nil {
		t.Error("allocate succeeded with every address used or reserved")
	}
}

// TestAdoptProcess: a running process is adopted by pid and start time and its end is seen; a
// recorded exit status wins over the default; a pid whose start time differs is not the process.
func TestAdoptProcess(t *testing.T) {
	cmd := exec.Command("sleep", "1000")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = cmd.Wait() }()
	pid := cmd.Process.Pid
	tick, err := processStartTick(pid)
	if err != nil {
		t.Fatal(err)
	}
	exitFile := filepath.Join(t.TempDir(), "main.exit")

	if p := adoptProcess(pid, tick+1, time.Now(), exitFile); !isDone(p) {
		t.Error("a process with another start time was adopted")
	}

	p := adoptProcess(pid, tick, time.Now(), exitFile)
	if isDone(p) {
		t.Fatal("the running process was reported ended")
	}
	data, _ := json.Marshal(containerinit.ExitStatus{ExitCode: 7, FinishedAt: time.Now()})
	if err := os.WriteFile(exitFile, data, 0o600); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Process.Kill()
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the end of the adopted process was not seen")
	}
	if p.exitCode != 7 || p.signal != 0 {
		t.Errorf("exit %d signal %d, want the recorded exit code 7", p.exitCode, p.signal)
	}

	_ = os.Remove(exitFile)
	gone := adoptProcess(pid, tick, time.Now(), exitFile)
	if !isDone(gone) || gone.exitCode != 137 || gone.message == "" {
		t.Errorf("a vanished process without a record: done=%v exit %d message %q, want 137 and a message", isDone(gone), gone.exitCode, gone.message)
	}
}

func isDone(p *process) bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// TestIPAMKeepsItsPositionAcrossRestarts: a new allocator on the same file goes on where the
// last one stopped, instead of handing out the addresses freed just before.
func TestIPAMKeepsItsPositionAcrossRestarts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ipam.json")
	first := newIPAM(path)
	for range 3 {
		if _, err := first.allocate(2); err != nil {
			t.Fatal(err)
		}
	}
	second := newIPAM(path)
	ip, err := second.allocate(2)
	if err != nil {
		t.Fatal(err)
	}
	if ip != "10.244.2.5" {
		t.Errorf("first address after a restart = %s, want 10.244.2.5 (after the three handed out)", ip)
	}
}

// A container's termination message is what it wrote to its terminationMessagePath; with
// FallbackToLogsOnError, a failed container that wrote nothing gets its log's tail (at most
// 4096 bytes), and a successful one nothing.
func TestTerminationMessage(t *testing.T) {
	cfg := &localcluster.Config{StateDir: t.TempDir()}
	w := &podWorker{a: &Agent{cfg: cfg}, uid: "u1", namespace: "ns", name: "p"}
	cs := newCtrState(&corev1.Container{Name: "c", TerminationMessagePath: "/dev/termination-log",
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError}, false)
	if err := os.MkdirAll(filepath.Dir(w.terminationFile(cs)), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(cfg.PodLogPath("ns", "p", "c")), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(w.terminationFile(cs), []byte(`{"size":3}`), 0o666); err != nil {
		t.Fatal(err)
	}
	if got := w.terminationMessage(cs, &process{exitCode: 0}); got != `{"size":3}` {
		t.Errorf("written message: %q", got)
	}
	_ = os.WriteFile(w.terminationFile(cs), nil, 0o666)
	log := strings.Repeat("x", 5000) + "last words\n"
	if err := os.WriteFile(cfg.PodLogPath("ns", "p", "c"), []byte(log), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := w.terminationMessage(cs, &process{exitCode: 2}); len(got) != 4096 || !strings.HasSuffix(got, "last words\n") {
		t.Errorf("fallback to the log: %d bytes ending %q", len(got), got[max(0, len(got)-20):])
	}
	if got := w.terminationMessage(cs, &process{exitCode: 0}); got != "" {
		t.Errorf("a successful container that wrote nothing: %q", got)
	}
}
