package operator

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	kuratestenv "github.com/kura-db/kura/internal/testenv"
)

func TestParseFlags(t *testing.T) {
	o, err := ParseFlags([]string{"--kura-image=kura:dev", "--namespaces= a, b ,", "--clustering-interval=500ms"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(o.Namespaces, ",") != "a,b" || o.ClusteringInterval != 500*time.Millisecond {
		t.Errorf("options %+v", o)
	}
	if _, err := ParseFlags(nil); err == nil || !strings.Contains(err.Error(), "--kura-image") {
		t.Errorf("missing image: %v", err)
	}
	if _, err := ParseFlags([]string{"--kura-image=x", "--clustering-interval=1ms"}); err == nil || !strings.Contains(err.Error(), "--clustering-interval") {
		t.Errorf("short interval: %v", err)
	}
	if o.LeaseDuration != 8*time.Second || o.RenewDeadline != 5*time.Second || o.RetryPeriod != time.Second {
		t.Errorf("leader election defaults %s/%s/%s, want 8s/5s/1s", o.LeaseDuration, o.RenewDeadline, o.RetryPeriod)
	}
	if _, err := ParseFlags([]string{"--kura-image=x", "--leader-election-renew-deadline=10s"}); err == nil || !strings.Contains(err.Error(), "lease duration (8s) > renew deadline (10s)") {
		t.Errorf("renew deadline beyond the lease: %v", err)
	}
	if o.APIQPS != 100 || o.APIBurst != 200 {
		t.Errorf("API rate defaults %g/%d, want 100/200", o.APIQPS, o.APIBurst)
	}
	if _, err := ParseFlags([]string{"--kura-image=x", "--kube-api-qps=0"}); err == nil || !strings.Contains(err.Error(), "--kube-api-qps 0") {
		t.Errorf("zero API rate: %v", err)
	}
}

func freePort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().String()
}

// The whole manager, as `kura operator` runs it, against a real API server: it serves health,
// readiness and metrics, and only acts in the namespaces it watches.
func TestManagerServesAndWatchesOnlyItsNamespaces(t *testing.T) {
	env := testenv(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, n := range []string{"watched", "ignored"} {
		if err := env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: n}}); err != nil {
			t.Fatal(err)
		}
	}
	health, metrics := freePort(t), freePort(t)
	o, err := ParseFlags([]string{"--kura-image=kura:dev", "--namespaces=watched", "--health-probe-bind-address=" + health, "--metrics-bind-address=" + metrics, "--metrics-secure=false"})
	if err != nil {
		t.Fatal(err)
	}
	o.skipNameValidation = true
	mgr, err := NewManager(env.Config, o)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()

	for _, n := range []string{"watched", "ignored"} {
		c := &kurav1alpha1.MySQLCluster{
			ObjectMeta: metav1.ObjectMeta{Namespace: n, Name: "shop"},
			Spec:       kurav1alpha1.MySQLClusterSpec{Storage: kurav1alpha1.StorageSpec{Size: resource.MustParse("1Gi")}},
		}
		if err := env.Client.Create(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := env.Client.Get(ctx, types.NamespacedName{Namespace: "watched", Name: "shop"}, &appsv1.StatefulSet{})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no StatefulSet in the watched namespace: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, path := range []string{"http://" + health + "/healthz", "http://" + health + "/readyz", "http://" + metrics + "/metrics"} {
		if err := getOK(path); err != nil {
			t.Error(err)
		}
	}
	if err := env.Client.Get(ctx, types.NamespacedName{Namespace: "ignored", Name: "shop"}, &appsv1.StatefulSet{}); err == nil {
		t.Error("the operator acted in a namespace it does not watch")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func getOK(url string) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("GET %s: %w", url, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func testenv(t *testing.T) *kuratestenv.Env { return kuratestenv.Start(t) }
