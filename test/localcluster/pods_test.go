package localcluster_test

import (
	"context"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// testEnv: env from values, the downward API, Secrets and ConfigMaps, envFrom, $(VAR)
// expansion, workingDir, runAsUser/runAsGroup/fsGroup, and init containers in order.
func (e *env) testEnv(t *testing.T) {
	ctx := context.Background()
	ns := e.namespace(t, "env")
	if _, err := e.cs.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "s"}, StringData: map[string]string{"password": "s3cret"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.cs.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "c"}, Data: map[string]string{"MODE": "fast", "LEVEL": "3"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	p := shPod(ns, "envpod", "sleep 100000")
	p.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsUser: ptr.To(int64(999)), RunAsGroup: ptr.To(int64(998)), FSGroup: ptr.To(int64(997))}
	p.Spec.InitContainers = []corev1.Container{
		{Name: "first", Image: engineImage, Command: []string{"sh", "-c", "echo first >> /shared/order"},
			VolumeMounts: []corev1.VolumeMount{{Name: "shared", MountPath: "/shared"}}},
		// An init container's termination message is reported as a container's is (a
		// cluster restored from a backup reports its restore this way).
		{Name: "second", Image: engineImage, Command: []string{"sh", "-c", "echo second >> /shared/order && printf '{\"restored\":true}' > /dev/termination-log"},
			VolumeMounts: []corev1.VolumeMount{{Name: "shared", MountPath: "/shared"}}},
	}
	c := &p.Spec.Containers[0]
	c.WorkingDir = "/shared"
	c.VolumeMounts = []corev1.VolumeMount{{Name: "shared", MountPath: "/shared"}}
	c.EnvFrom = []corev1.EnvFromSource{{Prefix: "CM_", ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "c"}}}}
	c.Env = []corev1.EnvVar{
		{Name: "PLAIN", Value: "v1"},
		{Name: "EXPANDED", Value: "$(PLAIN)-x"},
		{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
		{Name: "POD_NAMESPACE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}},
		{Name: "POD_IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}},
		{Name: "NODE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.nodeName"}}},
		{Name: "PASSWORD", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "s"}, Key: "password"}}},
		{Name: "MODE", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "c"}, Key: "MODE"}}},
	}
	p.Spec.Volumes = []corev1.Volume{{Name: "shared", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
	e.createPod(t, p)
	got := e.waitReady(t, ns, "envpod")

	if st := got.Status.InitContainerStatuses; len(st) != 2 || st[1].State.Terminated == nil || st[1].State.Terminated.Message != `{"restored":true}` {
		t.Errorf("init container statuses %+v: want the second's termination message", st)
	}
	envOut := e.exec(t, ns, "envpod", "", "env")
	want := map[string]string{
		"PLAIN": "v1", "EXPANDED": "v1-x", "POD_NAME": "envpod", "POD_NAMESPACE": ns, "POD_IP": got.Status.PodIP,
		"NODE": got.Spec.NodeName, "PASSWORD": "s3cret", "MODE": "fast", "CM_MODE": "fast", "CM_LEVEL": "3",
		"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443", "HOSTNAME": "envpod",
	}
	for k, v := range want {
		if !strings.Contains("\n"+envOut, "\n"+k+"="+v+"\n") {
			t.Errorf("env %s != %q in:\n%s", k, v, envOut)
		}
	}
	if id := strings.TrimSpace(e.exec(t, ns, "envpod", "", "id", "-u")); id != "999" {
		t.Errorf("uid = %s, want 999", id)
	}
	if id := strings.TrimSpace(e.exec(t, ns, "envpod", "", "id", "-g")); id != "998" {
		t.Errorf("gid = %s, want 998", id)
	}
	if groups := e.exec(t, ns, "envpod", "", "id", "-G"); !strings.Contains(groups, "997") {
		t.Errorf("groups %q lack fsGroup 997", groups)
	}
	if wd := strings.TrimSpace(e.exec(t, ns, "envpod", "", "pwd")); wd != "/shared" {
		t.Errorf("working dir = %q", wd)
	}
	if order := e.exec(t, ns, "envpod", "", "cat", "/shared/order"); order != "first\nsecond\n" {
		t.Errorf("init containers ran as %q, want first then second", order)
	}
	if grp := strings.TrimSpace(e.exec(t, ns, "envpod", "", "stat", "-c", "%g", "/shared")); grp != "997" {
		t.Errorf("emptyDir group = %s, want fsGroup 997", grp)
	}
	// The container's root is private: writes outside volumes do not reach the host.
	e.exec(t, ns, "envpod", "", "sh", "-c", "echo x > /tmp/kura-local-private-"+ns)
	if _, err := readFileErr("/tmp/kura-local-private-" + ns); err == nil {
		t.Errorf("a write to /tmp inside the pod reached the host's /tmp")
	}
}

// testVolumes: ConfigMap (kept updated), Secret, downward API, and the projected service
// account token used against the apiserver through the kubernetes Service.
func (e *env) testVolumes(t *testing.T) {
	ctx := context.Background()
	ns := e.namespace(t, "vol")
	if _, err := e.cs.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "conf"}, Data: map[string]string{"my.cnf": "[mysqld]\nport=3306\n"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.cs.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "creds"}, StringData: map[string]string{"user": "admin"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Let the default service account read Pods, to prove the token authenticates.
	if _, err := e.cs.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "read-pods"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list"}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.cs.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "read-pods"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "read-pods"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "default", Namespace: ns}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	p := shPod(ns, "volpod", "sleep 100000")
	p.Labels["tier"] = "db"
	c := &p.Spec.Containers[0]
	c.VolumeMounts = []corev1.VolumeMount{
		{Name: "conf", MountPath: "/etc/kura/config"},
		{Name: "creds", MountPath: "/etc/creds", ReadOnly: true},
		{Name: "info", MountPath: "/etc/podinfo"},
	}
	p.Spec.Volumes = []corev1.Volume{
		{Name: "conf", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "conf"}}}},
		{Name: "creds", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "creds"}}},
		{Name: "info", VolumeSource: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{Items: []corev1.DownwardAPIVolumeFile{
			{Path: "name", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}},
			{Path: "labels", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels"}},
		}}}},
	}
	e.createPod(t, p)
	e.waitReady(t, ns, "volpod")

	if got := e.exec(t, ns, "volpod", "", "cat", "/etc/kura/config/my.cnf"); got != "[mysqld]\nport=3306\n" {
		t.Errorf("my.cnf = %q", got)
	}
	if got := e.exec(t, ns, "volpod", "", "cat", "/etc/creds/user"); got != "admin" {
		t.Errorf("secret user = %q", got)
	}
	if _, err := e.cfg.Exec(ctx, ns, "volpod", "", "touch", "/etc/creds/x"); err == nil {
		t.Errorf("writing into a readOnly mount succeeded")
	}
	if got := e.exec(t, ns, "volpod", "", "cat", "/etc/podinfo/name"); got != "volpod" {
		t.Errorf("downward name = %q", got)
	}
	if got := e.exec(t, ns, "volpod", "", "cat", "/etc/podinfo/labels"); !strings.Contains(got, `tier="db"`) {
		t.Errorf("downward labels = %q", got)
	}
	// ConfigMap updates reach the running container.
	cm, err := e.cs.CoreV1().ConfigMaps(ns).Get(ctx, "conf", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cm.Data["my.cnf"] = "[mysqld]\nport=3307\n"
	if _, err := e.cs.CoreV1().ConfigMaps(ns).Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.waitFor(t, 30*time.Second, "the ConfigMap update to reach the pod", func() (bool, error) {
		got, err := e.cfg.Exec(ctx, ns, "volpod", "", "cat", "/etc/kura/config/my.cnf")
		return got == "[mysqld]\nport=3307\n", err
	})
	// The projected service-account token and CA authenticate to the apiserver through the
	// kubernetes Service, as in-cluster clients do.
	sa := "/var/run/secrets/kubernetes.io/serviceaccount"
	if got := e.exec(t, ns, "volpod", "", "cat", sa+"/namespace"); got != ns {
		t.Errorf("service account namespace = %q", got)
	}
	script := selfBin + ` http-get -code -cacert ` + sa + `/ca.crt -token-file ` + sa + `/token ` +
		`https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT/api/v1/namespaces/` + ns + `/pods/volpod`
	if code := e.exec(t, ns, "volpod", "", "sh", "-c", script); code != "200" {
		t.Errorf("GET own pod with the projected token = HTTP %s, want 200", code)
	}
	noToken := selfBin + ` http-get -code -cacert ` + sa + `/ca.crt https://kubernetes.default.svc/api/v1/namespaces/` + ns + `/pods/volpod`
	if code := e.exec(t, ns, "volpod", "", "sh", "-c", noToken); code != "403" && code != "401" {
		t.Errorf("GET own pod without a token = HTTP %s, want 401 or 403", code)
	}
}

// testJob: a Job's Pod runs to completion and the Job controller sees it succeed.
func (e *env) testJob(t *testing.T) {
	ctx := context.Background()
	ns := e.namespace(t, "job")
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "once"},
		Spec: batchv1.JobSpec{
			BackoffLimit: ptr.To(int32(0)),
			Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				RestartPolicy: corev1.RestartPolicyNever,
				Containers:    []corev1.Container{{Name: "work", Image: engineImage, Command: []string{"sh", "-c", "echo job done"}}},
			}},
		},
	}
	if _, err := e.cs.BatchV1().Jobs(ns).Create(ctx, job, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.waitFor(t, 2*time.Minute, "job once to succeed", func() (bool, error) {
		j, err := e.cs.BatchV1().Jobs(ns).Get(ctx, "once", metav1.GetOptions{})
		return err == nil && j.Status.Succeeded == 1, err
	})
	pods, err := e.cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "job-name=once"})
	if err != nil || len(pods.Items) != 1 {
		t.Fatalf("job pods = %v, %v", pods, err)
	}
	p := pods.Items[0]
	if p.Status.Phase != corev1.PodSucceeded {
		t.Errorf("job pod phase = %s", p.Status.Phase)
	}
	st := p.Status.ContainerStatuses[0].State.Terminated
	if st == nil || st.ExitCode != 0 || st.Reason != "Completed" {
		t.Errorf("job container state = %+v", p.Status.ContainerStatuses[0].State)
	}
	if got := readLog(t, e.cfg, ns, p.Name, "work"); got != "job done\n" {
		t.Errorf("job log = %q", got)
	}
}

// testImages: the operator image runs the kura binary at /kura; unknown images fail clearly.
func (e *env) testImages(t *testing.T) {
	ns := e.namespace(t, "img")
	op := shPod(ns, "operator", "")
	op.Spec.Containers[0].Image = "kura-db/kura:dev"
	op.Spec.Containers[0].Command = []string{"/kura"}
	op.Spec.Containers[0].Args = []string{"copy-binary", "/x"}
	op.Spec.RestartPolicy = corev1.RestartPolicyNever
	// The chart's hardening: non-root, read-only root filesystem.
	op.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To(int64(65532)), RunAsGroup: ptr.To(int64(65532))}
	op.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{ReadOnlyRootFilesystem: ptr.To(true)}
	e.createPod(t, op)
	ro := shPod(ns, "readonly", "touch /etc/kura-local-ro-test")
	ro.Spec.RestartPolicy = corev1.RestartPolicyNever
	ro.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{ReadOnlyRootFilesystem: ptr.To(true)}
	e.createPod(t, ro)
	e.waitPod(t, ns, "readonly", "to fail", time.Minute, func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodFailed })
	if got := readLog(t, e.cfg, ns, "readonly", "main"); !strings.Contains(got, "Read-only file system") {
		t.Errorf("write to a read-only root: log %q", got)
	}
	root := shPod(ns, "nonroot", "true")
	root.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true)}
	e.createPod(t, root)
	e.waitPod(t, ns, "nonroot", "to report CreateContainerConfigError", time.Minute, func(p *corev1.Pod) bool {
		s := p.Status.ContainerStatuses
		return len(s) == 1 && s[0].State.Waiting != nil && s[0].State.Waiting.Reason == "CreateContainerConfigError"
	})
	e.waitPod(t, ns, "operator", "to succeed", time.Minute, func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodSucceeded })
	if got := readLog(t, e.cfg, ns, "operator", "main"); got != "kura-stand-in copy-binary /x\n" {
		t.Errorf("operator image log = %q", got)
	}
	bad := shPod(ns, "unknown", "true")
	bad.Spec.Containers[0].Image = "nginx:1.27"
	e.createPod(t, bad)
	p := e.waitPod(t, ns, "unknown", "to report ErrImagePull", time.Minute, func(p *corev1.Pod) bool {
		s := p.Status.ContainerStatuses
		return len(s) == 1 && s[0].State.Waiting != nil && s[0].State.Waiting.Reason == "ErrImagePull"
	})
	if msg := p.Status.ContainerStatuses[0].State.Waiting.Message; !strings.Contains(msg, "nginx:1.27") {
		t.Errorf("ErrImagePull message %q does not name the image", msg)
	}
	if p.Status.Phase != corev1.PodPending {
		t.Errorf("pod with unknown image is %s, want Pending", p.Status.Phase)
	}
}
