package builder

import (
	"crypto/tls"
	"crypto/x509"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/internal/contract"
)

func TestRenewalDue(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	year := start.AddDate(1, 0, 0)
	third := year.Sub(start) / 3
	for _, tc := range []struct {
		name string
		now  time.Time
		want bool
	}{
		{"just issued", start, false},
		{"half way", start.Add(year.Sub(start) / 2), false},
		{"a second before two thirds", year.Add(-third - time.Second), false},
		{"at two thirds", year.Add(-third), true},
		{"a day before expiry", year.Add(-24 * time.Hour), true},
		{"expired", year.Add(time.Hour), true},
		{"not valid yet", start.Add(-time.Hour), true},
	} {
		if got := RenewalDue(start, year, tc.now); got != tc.want {
			t.Errorf("%s: RenewalDue = %v, want %v", tc.name, got, tc.want)
		}
	}
	if !RenewalDue(year, start, start) {
		t.Error("a certificate that ends before it starts must be renewed")
	}
}

// TestServerCertificateVerifies issues a CA and a server certificate and verifies the
// certificate the way a replica and the operator do: against the CA, for each instance's
// names and the Services.
func TestServerCertificateVerifies(t *testing.T) {
	c := newCluster()
	now := time.Now()
	ca, err := CASecret(c, now)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ServerTLSSecret(c, ca, now)
	if err != nil {
		t.Fatal(err)
	}
	if srv.Name != "shop-tls" || ca.Name != "shop-ca" || srv.OwnerReferences[0].UID != c.UID || ca.Labels[contract.LabelCluster] != "shop" {
		t.Fatalf("names or ownership wrong: %s %s %v %v", srv.Name, ca.Name, srv.OwnerReferences, ca.Labels)
	}
	pair, err := tls.X509KeyPair(srv.Data[contract.TLSCertKey], srv.Data[contract.TLSKeyKey])
	if err != nil {
		t.Fatalf("certificate and key do not match: %v", err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(srv.Data[contract.TLSCAKey]) {
		t.Fatal("ca.crt of the server Secret is not a PEM certificate")
	}
	for _, name := range []string{
		"shop-0.shop-instances.prod.svc.cluster.local", "shop-2.shop-instances.prod.svc", "shop-8.shop-instances",
		"shop-primary", "shop-replicas.prod.svc", "localhost", "127.0.0.1",
	} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: name, CurrentTime: now}); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "shop-0.other-instances.prod.svc", CurrentTime: now}); err == nil {
		t.Error("a name outside the cluster verified")
	}
	other, _ := CASecret(c, now)
	otherPool := x509.NewCertPool()
	otherPool.AppendCertsFromPEM(other.Data[contract.TLSCAKey])
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: otherPool, DNSName: "localhost", CurrentTime: now}); err == nil {
		t.Error("another cluster's CA verified the certificate")
	}
	if got := leaf.NotAfter.Sub(leaf.NotBefore); got < ServerLifetime || got > ServerLifetime+time.Hour {
		t.Errorf("server lifetime %s", got)
	}
}

func TestServerRenewalReason(t *testing.T) {
	c := newCluster()
	now := time.Now()
	ca, _ := CASecret(c, now)
	srv, _ := ServerTLSSecret(c, ca, now)
	if r := ServerRenewalReason(c, srv, ca, now); r != "" {
		t.Fatalf("fresh certificate due: %s", r)
	}
	if r := ServerRenewalReason(c, srv, ca, now.Add(ServerLifetime*2/3+time.Hour)); r == "" {
		t.Error("certificate within a third of its lifetime of expiry not due")
	}
	other, _ := CASecret(c, now)
	if r := ServerRenewalReason(c, srv, other, now); r == "" {
		t.Error("certificate of another CA not due")
	}
	renamed := newCluster(func(c *kurav1alpha1.MySQLCluster) { c.Namespace = "staging" })
	if r := ServerRenewalReason(renamed, srv, ca, now); r == "" {
		t.Error("certificate without the cluster's names not due")
	}
	broken := srv.DeepCopy()
	delete(broken.Data, contract.TLSKeyKey)
	if r := ServerRenewalReason(c, broken, ca, now); r == "" {
		t.Error("Secret without a key not due")
	}
}

func TestTLSMountsAndConfig(t *testing.T) {
	on := StatefulSet(newCluster(), "h", "t1", nil, Options{}).Spec.Template
	if on.Annotations[contract.AnnotationTLSHash] != "t1" {
		t.Errorf("TLS hash annotation %q", on.Annotations[contract.AnnotationTLSHash])
	}
	mounted := func(containers []string) {
		t.Helper()
		for _, ctr := range append(slices.Clone(on.Spec.InitContainers), on.Spec.Containers...) {
			has := slices.ContainsFunc(ctr.VolumeMounts, func(m corev1.VolumeMount) bool { return m.MountPath == contract.TLSDir && m.ReadOnly })
			if has != slices.Contains(containers, ctr.Name) {
				t.Errorf("container %s: TLS mounted %v", ctr.Name, has)
			}
		}
	}
	mounted([]string{contract.ContainerKuraInit, contract.ContainerMySQLD, contract.ContainerAgent})
	for _, v := range on.Spec.Volumes {
		if v.Name == VolumeAgentTLS && len(v.Secret.Items) != len(TLSKeys) {
			t.Errorf("the agent serves HTTPS with the server certificate: it needs %v, has %v", TLSKeys, v.Secret.Items)
		}
		if (v.Name == VolumeAgentTLS || v.Name == VolumeServerTLS) && (*v.Secret.DefaultMode != 0o400 || v.Secret.SecretName != "shop-tls") {
			t.Errorf("volume %s: %v", v.Name, v.Secret)
		}
	}
	off := StatefulSet(newCluster(func(c *kurav1alpha1.MySQLCluster) { c.Spec.TLS.Enabled = ptr.To(false) }), "h", "", nil, Options{}).Spec.Template
	if _, ok := off.Annotations[contract.AnnotationTLSHash]; ok || len(off.Spec.Volumes) != len(on.Spec.Volumes)-2 {
		t.Errorf("TLS disabled still mounts certificates: %d volumes", len(off.Spec.Volumes))
	}
	// The agent's scheme follows its mount; the kubelet probes it accordingly.
	onPod, offPod := &corev1.Pod{Spec: on.Spec}, &corev1.Pod{Spec: off.Spec}
	if !AgentServesTLS(onPod) || AgentServesTLS(offPod) {
		t.Errorf("AgentServesTLS: on %v, off %v", AgentServesTLS(onPod), AgentServesTLS(offPod))
	}
	for tmpl, want := range map[*corev1.PodTemplateSpec]corev1.URIScheme{&on: corev1.URISchemeHTTPS, &off: ""} {
		for _, ctr := range tmpl.Spec.Containers {
			if ctr.Name == contract.ContainerAgent && ctr.LivenessProbe.HTTPGet.Scheme != want {
				t.Errorf("agent probe scheme %q, want %q", ctr.LivenessProbe.HTTPGet.Scheme, want)
			}
		}
	}
	earlier := onPod.DeepCopy() // a Pod of an earlier version: the agent mounts the CA alone
	for i, v := range earlier.Spec.Volumes {
		if v.Name == VolumeAgentTLS {
			earlier.Spec.Volumes[i].Secret.Items = []corev1.KeyToPath{{Key: contract.TLSCAKey, Path: contract.TLSCAKey}}
		}
	}
	if AgentServesTLS(earlier) {
		t.Error("an agent mounting the CA alone serves plain HTTP")
	}
	user := newCluster(func(c *kurav1alpha1.MySQLCluster) { c.Spec.TLS.SecretName = "own-cert" })
	if TLSSecretName(user) != "own-cert" {
		t.Errorf("user Secret not used: %s", TLSSecretName(user))
	}
}
