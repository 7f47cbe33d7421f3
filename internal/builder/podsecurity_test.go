package builder

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kura-db/kura/internal/testenv"
)

// hardeningProblems lists where a Pod spec falls short of what every Pod Kura creates must
// have: seccomp RuntimeDefault, non-root, no privilege escalation, no capabilities, a
// read-only root filesystem, no host namespaces or host paths.
func hardeningProblems(p corev1.PodSpec) []string {
	var out []string
	psc := p.SecurityContext
	podSeccomp := psc != nil && psc.SeccompProfile != nil && psc.SeccompProfile.Type == corev1.SeccompProfileTypeRuntimeDefault
	podNonRoot := psc != nil && ptr.Deref(psc.RunAsNonRoot, false) && ptr.Deref(psc.RunAsUser, 0) != 0
	if p.HostNetwork || p.HostPID || p.HostIPC {
		out = append(out, "shares a host namespace")
	}
	for _, v := range p.Volumes {
		if v.HostPath != nil {
			out = append(out, "hostPath volume "+v.Name)
		}
	}
	for _, c := range allContainers(p) {
		sc := c.SecurityContext
		if sc == nil {
			out = append(out, c.Name+": no securityContext")
			continue
		}
		if !podSeccomp && (sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault) {
			out = append(out, c.Name+": seccomp is not RuntimeDefault")
		}
		if !podNonRoot && !ptr.Deref(sc.RunAsNonRoot, false) {
			out = append(out, c.Name+": may run as root")
		}
		if ptr.Deref(sc.AllowPrivilegeEscalation, true) {
			out = append(out, c.Name+": allowPrivilegeEscalation is not false")
		}
		if ptr.Deref(sc.Privileged, false) {
			out = append(out, c.Name+": privileged")
		}
		if sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" || len(sc.Capabilities.Add) > 0 {
			out = append(out, c.Name+": capabilities are not drop ALL")
		}
		if !ptr.Deref(sc.ReadOnlyRootFilesystem, false) {
			out = append(out, c.Name+": root filesystem is writable")
		}
	}
	return out
}

// Every Pod and Job Kura builds is hardened, and the check sees a Pod that is not.
func TestBuiltPodsAreHardened(t *testing.T) {
	specs := builtPodSpecs()
	names := make([]string, 0, len(specs))
	for n := range specs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		for _, p := range hardeningProblems(specs[n]) {
			t.Errorf("%s: %s", n, p)
		}
	}
	weak := builtPodSpecs()["instance/mariadb"]
	weak.SecurityContext = nil
	weak.Containers[0].SecurityContext.ReadOnlyRootFilesystem = nil
	if len(hardeningProblems(weak)) < 3 {
		t.Errorf("the check misses a Pod without seccomp, non-root or a read-only root: %v", hardeningProblems(weak))
	}
}

// The API server's Pod Security admission, at the restricted level, admits a Pod made from
// every Pod spec Kura builds (a server-side dry run in a namespace that enforces it), and
// refuses the instance Pod without its security contexts, so the check can fail.
func TestBuiltPodsMeetRestrictedPodSecurity(t *testing.T) {
	e := testenv.Start(t)
	ctx := context.Background()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "restricted", Labels: map[string]string{
		"pod-security.kubernetes.io/enforce":         "restricted",
		"pod-security.kubernetes.io/enforce-version": "latest",
	}}}
	if err := e.Client.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	create := func(name string, spec corev1.PodSpec) error {
		spec.ServiceAccountName = "default" // the dry run needs no account of its own
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns.Name}, Spec: spec}
		return e.Client.Create(ctx, p, client.DryRunAll)
	}
	i := 0
	for name, spec := range builtPodSpecs() {
		i++
		if err := create(fmt.Sprintf("pod-%d", i), spec); err != nil {
			t.Errorf("%s: refused at the restricted level: %v", name, err)
		}
	}
	weak := builtPodSpecs()["instance/mariadb"]
	weak.SecurityContext = nil
	for j := range weak.Containers {
		weak.Containers[j].SecurityContext = nil
	}
	if err := create("weak", weak); err == nil || !strings.Contains(err.Error(), "violates PodSecurity") {
		t.Fatalf("restricted Pod Security did not refuse the instance Pod without its security contexts (%v): the check proves nothing", err)
	}
}
