package operator

import (
	"context"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/internal/agent"
	"github.com/kura-db/kura/internal/builder"
	"github.com/kura-db/kura/internal/contract"
	"github.com/kura-db/kura/internal/engine"
	"github.com/kura-db/kura/internal/enginetest"
)

type answering struct{ engine.Instance }

func (answering) Status(context.Context) engine.Status { return engine.Status{Reachable: true} }

// The operator's client for an instance's agent follows the Pod's spec: HTTPS verified
// against the cluster's CA for the instance's DNS name when the agent mounts the server
// certificate (it then reaches a real agent serving the cluster's certificate, and refuses
// one serving another cluster's), plain HTTP for a Pod of an earlier version or with TLS off.
func TestOperatorAgentClientFollowsThePod(t *testing.T) {
	c := &kurav1alpha1.MySQLCluster{ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: "prod"},
		Spec: kurav1alpha1.MySQLClusterSpec{Storage: kurav1alpha1.StorageSpec{Size: resource.MustParse("1Gi")}}}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "shop-1", Namespace: "prod"},
		Spec: builder.StatefulSet(c, "h", "t", nil, builder.Options{}).Spec.Template.Spec, Status: corev1.PodStatus{PodIP: "127.0.0.1"}}
	files, err := enginetest.WriteTLSFiles(c, filepath.Join(t.TempDir(), "tls"))
	if err != nil {
		t.Fatal(err)
	}
	serve := func(certFile, keyFile string) string {
		cfg, err := agent.ServerTLS(certFile, keyFile)
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: (&agent.Server{Instance: answering{}, Token: "tok", PodName: "shop-1"}).Handler(), TLSConfig: cfg, ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = srv.ServeTLS(ln, "", "") }()
		t.Cleanup(func() { _ = srv.Close() })
		return ln.Addr().String()
	}
	atPort := func(cl *agent.Client, addr string) *agent.Client {
		cl.BaseURL = strings.Replace(cl.BaseURL, net.JoinHostPort("127.0.0.1", "8080"), addr, 1)
		return cl
	}

	cl, err := agentClient(c, pod, "tok", "legacy", files.CAPEM)
	if err != nil || !strings.HasPrefix(cl.BaseURL, "https://127.0.0.1:") {
		t.Fatalf("a Pod whose agent mounts the certificate: %v, %v", cl, err)
	}
	if st, err := atPort(cl, serve(files.CertFile, files.KeyFile)).State(context.Background()); err != nil || st.Pod != "shop-1" {
		t.Errorf("the operator's client and a real agent with the cluster's certificate: %+v, %v", st, err)
	}
	other := c.DeepCopy()
	other.Name = "other"
	otherFiles, err := enginetest.WriteTLSFiles(other, filepath.Join(t.TempDir(), "tls"))
	if err != nil {
		t.Fatal(err)
	}
	cl, _ = agentClient(c, pod, "tok", "legacy", files.CAPEM)
	if _, err := atPort(cl, serve(otherFiles.CertFile, otherFiles.KeyFile)).State(context.Background()); err == nil {
		t.Error("the operator's client accepted another cluster's certificate")
	}
	if _, err := agentClient(c, pod, "tok", "legacy", nil); err == nil {
		t.Error("an agent serving HTTPS without a CA to verify it must be an error")
	}

	earlier := pod.DeepCopy() // its agent mounts the CA alone, as before the agent served HTTPS
	for i, v := range earlier.Spec.Volumes {
		if v.Name == builder.VolumeAgentTLS {
			earlier.Spec.Volumes[i].Secret.Items = []corev1.KeyToPath{{Key: contract.TLSCAKey, Path: contract.TLSCAKey}}
		}
	}
	off := c.DeepCopy()
	off.Spec.TLS.Enabled = ptr.To(false)
	offPod := &corev1.Pod{ObjectMeta: pod.ObjectMeta, Spec: builder.StatefulSet(off, "h", "", nil, builder.Options{}).Spec.Template.Spec, Status: pod.Status}
	for name, p := range map[string]*corev1.Pod{"earlier": earlier, "tls off": offPod} {
		if cl, err := agentClient(c, p, "tok", "legacy", files.CAPEM); err != nil || cl.BaseURL != "http://127.0.0.1:8080" {
			t.Errorf("%s: %v, %v; want plain HTTP", name, cl, err)
		}
	}
}
