package operator

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// The metrics endpoint serves HTTPS and asks the API server who the caller is (TokenReview)
// and whether it may get /metrics (SubjectAccessReview): no token is 401, a token of an
// account without the permission is 403, an account bound to a metrics-reader role reads the
// metrics. A made-up token is refused too.
func TestMetricsNeedAnAuthorizedToken(t *testing.T) {
	env := testenv(t)
	ctx := context.Background()
	addr := freePort(t)
	startManager(t, env.Config, "--metrics-bind-address="+addr)

	cs, err := kubernetes.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "metrics-"}}
	if err := env.Client.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	token := func(name string) string {
		t.Helper()
		if err := env.Client.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: name}}); err != nil {
			t.Fatal(err)
		}
		tr, err := cs.CoreV1().ServiceAccounts(ns.Name).CreateToken(ctx, name, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return tr.Status.Token
	}
	nobody, reader := token("nobody"), token("prometheus")
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: ns.Name + "-metrics-reader"},
		Rules: []rbacv1.PolicyRule{{NonResourceURLs: []string{"/metrics"}, Verbs: []string{"get"}}}}
	binding := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: role.Name},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns.Name, Name: "prometheus"}}}
	if err := env.Client.Create(ctx, role); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Create(ctx, binding); err != nil {
		t.Fatal(err)
	}

	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // the endpoint's certificate is self-signed
	}}
	get := func(bearer string) (int, string) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+addr+"/metrics", nil)
			if bearer != "" {
				req.Header.Set("Authorization", "Bearer "+bearer)
			}
			resp, err := hc.Do(req)
			if err == nil {
				body, _ := io.ReadAll(resp.Body)
				_ = resp.Body.Close()
				return resp.StatusCode, string(body)
			}
			if time.Now().After(deadline) {
				t.Fatalf("GET https://%s/metrics: %v", addr, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	if code, _ := get(""); code != http.StatusUnauthorized {
		t.Errorf("no token: status %d, want 401", code)
	}
	// The API server reports a malformed token as an error of its TokenReview, which
	// controller-runtime's filter answers with 500: refused all the same.
	if code, body := get("not-a-token"); code == http.StatusOK || strings.Contains(body, "controller_runtime") {
		t.Errorf("a made-up token: status %d, want a refusal", code)
	}
	if code, _ := get(nobody); code != http.StatusForbidden {
		t.Errorf("a token without get /metrics: status %d, want 403", code)
	}
	code, body := get(reader)
	if code != http.StatusOK || !strings.Contains(body, "controller_runtime_reconcile_total") {
		t.Errorf("a metrics reader: status %d, want 200 with the metrics; body starts %.200q", code, body)
	}
	// Plain HTTP is not served on the port.
	if resp, err := http.Get("http://" + addr + "/metrics"); err == nil {
		_ = resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Error("metrics served over plain HTTP")
		}
	}
}
