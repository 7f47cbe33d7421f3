package localcluster_test

import (
	"context"
	"database/sql"
	"net"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// testMariaDB runs a real mariadbd in a Pod of image mariadb:11.4 as user 999 with its datadir
// on a PVC, and connects to it over the Pod IP from the host.
func (e *env) testMariaDB(t *testing.T) {
	ctx := context.Background()
	ns := e.namespace(t, "db")
	if _, err := e.cs.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "init"},
		Data: map[string]string{"init.sql": "CREATE USER IF NOT EXISTS 'probe'@'%' IDENTIFIED BY 'pw';\n" +
			"GRANT ALL ON *.* TO 'probe'@'%';\n"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.cs.CoreV1().PersistentVolumeClaims(ns).Create(ctx, &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "data"},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
		},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	mounts := []corev1.VolumeMount{
		{Name: "data", MountPath: "/var/lib/mysql"},
		{Name: "run", MountPath: "/run/mysqld"},
		{Name: "init", MountPath: "/etc/kura/init"},
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "mariadb-0"},
		Spec: corev1.PodSpec{
			SecurityContext:               &corev1.PodSecurityContext{RunAsUser: ptr.To(int64(999)), RunAsGroup: ptr.To(int64(999)), FSGroup: ptr.To(int64(999))},
			TerminationGracePeriodSeconds: ptr.To(int64(30)),
			InitContainers: []corev1.Container{{
				Name: "install", Image: "mariadb:11.4", VolumeMounts: mounts,
				Command: []string{"sh", "-c", "test -d /var/lib/mysql/mysql || mariadb-install-db --no-defaults --datadir=/var/lib/mysql --auth-root-authentication-method=normal --skip-test-db"},
			}},
			Containers: []corev1.Container{{
				Name: "mysqld", Image: "mariadb:11.4", VolumeMounts: mounts,
				Command: []string{"mariadbd", "--no-defaults", "--datadir=/var/lib/mysql", "--socket=/run/mysqld/mysqld.sock",
					"--port=3306", "--bind-address=0.0.0.0", "--init-file=/etc/kura/init/init.sql", "--log-bin=mysql-bin"},
				Ports: []corev1.ContainerPort{{Name: "mysql", ContainerPort: 3306}},
				ReadinessProbe: &corev1.Probe{PeriodSeconds: 1, ProbeHandler: corev1.ProbeHandler{
					TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromString("mysql")}}},
			}},
			Volumes: []corev1.Volume{
				{Name: "data", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data"}}},
				{Name: "run", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
				{Name: "init", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "init"}}}},
			},
		},
	}
	start := time.Now()
	e.createPod(t, pod)
	p := e.waitReady(t, ns, "mariadb-0")
	t.Logf("mariadbd pod (datadir initialised on a PVC) Ready in %s", time.Since(start).Round(time.Millisecond))

	db, err := sql.Open("mysql", "probe:pw@tcp("+net.JoinHostPort(p.Status.PodIP, "3306")+")/?timeout=5s")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var host, user string
	if err := db.QueryRowContext(ctx, "SELECT @@hostname, CURRENT_USER()").Scan(&host, &user); err != nil {
		t.Fatalf("failed to query mariadbd over the pod IP: %v\nlog:\n%s", err, readLog(t, e.cfg, ns, "mariadb-0", "mysqld"))
	}
	if host != "mariadb-0" {
		t.Errorf("@@hostname = %q, want the pod's host name mariadb-0", host)
	}
	if user != "probe@%" {
		t.Errorf("CURRENT_USER() = %q", user)
	}
	var owner string
	if err := db.QueryRowContext(ctx, "SELECT @@datadir").Scan(&owner); err != nil || owner != "/var/lib/mysql/" {
		t.Errorf("datadir = %q, %v", owner, err)
	}
	if got := e.exec(t, ns, "mariadb-0", "mysqld", "stat", "-c", "%u", "/var/lib/mysql/mysql"); got != "999\n" {
		t.Errorf("owner of the system schema dir = %q, want 999", got)
	}
}
