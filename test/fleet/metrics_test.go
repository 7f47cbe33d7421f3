package fleet

import (
	"context"
	"crypto/tls"
	"net/http"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// The operator serves metrics over HTTPS to authorized callers (docs/metrics.md): the bench
// grants the operator's user what the chart's metrics-auth ClusterRole grants, and reads the
// metrics with a ServiceAccount token bound to a metrics-reader role.

func (f *fleet) grantExtra(ctx context.Context) {
	auth := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: operatorUser + "-metrics-auth"}, Rules: []rbacv1.PolicyRule{
		{APIGroups: []string{"authentication.k8s.io"}, Resources: []string{"tokenreviews"}, Verbs: []string{"create"}},
		{APIGroups: []string{"authorization.k8s.io"}, Resources: []string{"subjectaccessreviews"}, Verbs: []string{"create"}},
	}}
	reader := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "bench-metrics-reader"},
		Rules: []rbacv1.PolicyRule{{NonResourceURLs: []string{"/metrics"}, Verbs: []string{"get"}}}}
	f.must(f.admin.Create(ctx, auth))
	f.must(f.admin.Create(ctx, reader))
	f.must(f.admin.Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: auth.Name},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: auth.Name},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: operatorUser}}}))
	f.must(f.admin.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "bench-scraper"}}))
	f.must(f.admin.Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: reader.Name},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: reader.Name},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: "default", Name: "bench-scraper"}}}))
	cs, err := kubernetes.NewForConfig(f.cfg)
	f.must(err)
	tr, err := cs.CoreV1().ServiceAccounts("default").CreateToken(ctx, "bench-scraper", &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	f.must(err)
	f.mToken = tr.Status.Token
}

func (f *fleet) metricsClient() *http.Client {
	return &http.Client{Transport: bearer{token: f.mToken, rt: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // the operator's certificate is self-signed
	}}}
}

func (f *fleet) metricsURL() string { return "https://" + f.mAddr + "/metrics" }

type bearer struct {
	token string
	rt    http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.rt.RoundTrip(r)
}
