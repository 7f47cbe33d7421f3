package kubectlkura

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/internal/builder"
	"github.com/kura-db/kura/internal/scheme"
)

// The secret values of the fixture. Each must be absent from the bundle, raw and in base64.
const (
	adminPassword = "Adm1nSecretValue42xyz"
	appPassword   = "AppPw-9f8e7d6c5b4a"
	s3SecretKey   = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	literalToken  = "tok-literal-123456"
	certLine      = "MIIBkTCB+wIJAKHHIG...privatekeyline"
)

func unpack(t *testing.T, data []byte) map[string]string {
	t.Helper()
	files, err := ReadBundle(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// TestReportRedactsEverySecretValue builds a bundle from a namespace whose Secrets' values
// also appear in a ConfigMap, an Event, a Pod's literal environment and the logs, and fails if
// any value, or its base64 form, is in the bundle.
func TestReportRedactsEverySecretValue(t *testing.T) {
	c := cluster()
	labels := builder.SelectorLabels(c)
	objs := []client.Object{
		c,
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "shop-credentials", Namespace: "demo", Labels: labels},
			Data: map[string][]byte{"admin-password": []byte(adminPassword), "app-password": []byte(appPassword)}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s3", Namespace: "demo"},
			Data: map[string][]byte{"AWS_SECRET_ACCESS_KEY": []byte(s3SecretKey), "tls.key": []byte("-----BEGIN KEY-----\n" + certLine + "\n-----END KEY-----\n")}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "shop-config", Namespace: "demo", Labels: labels,
			Annotations: map[string]string{"kubectl.kubernetes.io/last-applied-configuration": `{"note":"` + literalToken + `"}`}},
			Data: map[string]string{"my.cnf": "[mysqld]\nmax_connections=800\n# copied by hand: " + appPassword + "\n"}},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "shop-0", Namespace: "demo", Labels: labels},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "mysqld", Image: "mariadb:11.4",
				Env: []corev1.EnvVar{{Name: "DEBUG_TOKEN", Value: literalToken}, {Name: "ENGINE", Value: "mariadb"}}}}},
			Status: corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{{Name: "mysqld", RestartCount: 1}}}},
		&corev1.Event{ObjectMeta: metav1.ObjectMeta{Name: "shop.1", Namespace: "demo"},
			InvolvedObject: corev1.ObjectReference{Kind: "MySQLCluster", Name: "shop"}, Type: "Warning", Reason: "BadPassword",
			Message: "login failed with " + adminPassword, LastTimestamp: ago(0)},
		&kurav1alpha1.Backup{ObjectMeta: metav1.ObjectMeta{Name: "shop-nightly", Namespace: "demo"},
			Spec: kurav1alpha1.BackupSpec{BackupOptions: kurav1alpha1.BackupOptions{Cluster: "shop"}}},
		&kurav1alpha1.Backup{ObjectMeta: metav1.ObjectMeta{Name: "other-nightly", Namespace: "demo"},
			Spec: kurav1alpha1.BackupSpec{BackupOptions: kurav1alpha1.BackupOptions{Cluster: "other"}}},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "kura-7d9f", Namespace: "kura-system",
			Labels: map[string]string{"app.kubernetes.io/name": "kura", "app.kubernetes.io/component": "operator"}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "operator"}}}},
	}
	cl := fake.NewClientBuilder().WithScheme(scheme.New()).WithObjects(objs...).Build()
	logs := func(_ context.Context, ns, pod, container string, previous bool, _ int64) ([]byte, error) {
		return []byte(fmt.Sprintf("%s/%s/%s previous=%v\nconnecting with password %s\nS3 key %s\nbase64 %s\n", ns, pod, container, previous,
			adminPassword, s3SecretKey, base64.StdEncoding.EncodeToString([]byte(appPassword)))), nil
	}
	e := &Env{Client: cl, Namespace: "demo", Out: io.Discard, Err: io.Discard, Now: func() time.Time { return testNow }, Logs: logs}
	ctx := context.Background()
	b, err := e.collect(ctx, c, 100)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := b.write(&buf, testNow); err != nil {
		t.Fatal(err)
	}
	files := unpack(t, buf.Bytes())

	for _, secret := range []string{adminPassword, appPassword, s3SecretKey, literalToken, certLine} {
		for _, form := range []string{secret, base64.StdEncoding.EncodeToString([]byte(secret))} {
			for name, content := range files {
				if strings.Contains(content, form) {
					t.Errorf("%s holds the secret value %q", name, form)
				}
			}
		}
	}

	// And the bundle still says what it should.
	want := map[string]string{
		"status.txt":                                       "shop-1",
		"history.txt":                                      "Switchover from=shop-2 to=shop-1",
		"objects/mysqlcluster.yaml":                        "kind: MySQLCluster",
		"objects/secret/shop-credentials.yaml":             "admin-password: '[REDACTED]'",
		"objects/configmap/shop-config.yaml":               "max_connections=800",
		"objects/pod/shop-0.yaml":                          "value: '[REDACTED]'",
		"objects/backup/shop-nightly.yaml":                 "cluster: shop",
		"configs/shop-config/my.cnf":                       "# copied by hand: [REDACTED]",
		"events.txt":                                       "login failed with [REDACTED]",
		"logs/shop-0/mysqld.log":                           "connecting with password [REDACTED]\nS3 key [REDACTED]\nbase64 [REDACTED]",
		"logs/shop-0/mysqld.previous.log":                  "previous=true",
		"logs/operator/kura-system_kura-7d9f/operator.log": "kura-system/kura-7d9f/operator",
	}
	for name, s := range want {
		if !strings.Contains(files[name], s) {
			t.Errorf("%s lacks %q:\n%s", name, s, files[name])
		}
	}
	if _, ok := files["objects/backup/other-nightly.yaml"]; ok {
		t.Error("the bundle holds another cluster's Backup")
	}
	if !strings.Contains(files["objects/pod/shop-0.yaml"], "value: mariadb") {
		t.Errorf("a harmless env value was removed:\n%s", files["objects/pod/shop-0.yaml"])
	}
}

// TestReportRefusesWithoutSecrets: without the Secrets' values nothing could be scrubbed, so
// no bundle is written.
func TestReportRefusesWithoutSecrets(t *testing.T) {
	cl := fake.NewClientBuilder().WithScheme(scheme.New()).WithObjects(cluster()).
		WithInterceptorFuncs(interceptorListSecretsForbidden()).Build()
	e := &Env{Client: cl, Namespace: "demo", Out: io.Discard, Err: io.Discard, Now: func() time.Time { return testNow }}
	if _, err := e.collect(context.Background(), cluster(), 10); err == nil || !strings.Contains(err.Error(), "Secrets") {
		t.Fatalf("collect without Secret access: %v", err)
	}
}

func interceptorListSecretsForbidden() interceptor.Funcs {
	return interceptor.Funcs{List: func(ctx context.Context, c client.WithWatch, list client.ObjectList, opts ...client.ListOption) error {
		if _, ok := list.(*corev1.SecretList); ok {
			return apierrors.NewForbidden(corev1.Resource("secrets"), "", errors.New("no access"))
		}
		return c.List(ctx, list, opts...)
	}}
}
