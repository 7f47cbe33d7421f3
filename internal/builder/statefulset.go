package builder

import (
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/internal/contract"
)

// Volume names inside instance Pods (the mount paths are in internal/contract).
const (
	VolumeData     = "data"
	VolumeConfig   = "config"
	VolumeKuraBin  = "kura-bin"
	VolumeRun      = "run"
	VolumeInstance = "instance"
	VolumeTmp      = "tmp"

	// One credentials volume per container that needs passwords, each with only the keys
	// that container uses (contract.*CredentialKeys).
	VolumeInitCredentials   = "init-credentials"
	VolumeAgentCredentials  = "agent-credentials"
	VolumeMySQLDCredentials = "mysqld-credentials"

	// The server certificate (spec.tls): all of it for the server (and kura-init, which
	// starts it privately), the CA alone for the agent.
	VolumeServerTLS = "server-tls"
	VolumeAgentTLS  = "agent-tls"
)

// serverCommand is the database server binary of each engine's official image.
func serverCommand(e kurav1alpha1.Engine) string {
	if e == kurav1alpha1.EngineMySQL {
		return "mysqld"
	}
	return "mariadbd"
}

// StatefulSet builds the instances' StatefulSet. Updates use OnDelete: Kubernetes never
// restarts an instance on its own; the clustering loop rolls replicas first, switches over,
// then restarts the old primary (docs/clustering.md, "Rolling changes"). Pods start in
// parallel; the clustering loop, not start order, decides the topology.
//
// For a cluster with spec.bootstrap, bootstrap is the storage of the backup it is seeded
// from (docs/backup.md, "Restore"): kura-init gets the bootstrap ConfigMap and that storage's
// credentials, and every instance container contract.EnvBootstrap.
//
// tlsHash (builder.TLSHash of the server certificate Secret; empty without TLS) is an
// annotation of the Pod template: a new CA rolls the instances (a renewed certificate is
// reloaded in place).
func StatefulSet(c *kurav1alpha1.MySQLCluster, configHash, tlsHash string, bootstrap *kurav1alpha1.BackupStorage, opts Options) *appsv1.StatefulSet {
	whenDeleted := appsv1.RetainPersistentVolumeClaimRetentionPolicyType
	if c.Spec.DeletionPolicy == kurav1alpha1.DeletionPolicyDelete {
		whenDeleted = appsv1.DeletePersistentVolumeClaimRetentionPolicyType
	}
	sts := &appsv1.StatefulSet{
		TypeMeta:   typeMeta("apps/v1", "StatefulSet"),
		ObjectMeta: objectMeta(c, StatefulSetName(c), nil, nil),
		Spec: appsv1.StatefulSetSpec{
			Replicas:            ptr.To(StatefulSetReplicas(c)),
			ServiceName:         HeadlessServiceName(c),
			PodManagementPolicy: appsv1.ParallelPodManagement,
			UpdateStrategy:      appsv1.StatefulSetUpdateStrategy{Type: appsv1.OnDeleteStatefulSetStrategyType},
			Selector:            &metav1.LabelSelector{MatchLabels: SelectorLabels(c)},
			PersistentVolumeClaimRetentionPolicy: &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{
				WhenDeleted: whenDeleted,
				// A scaled-down replica's volume is kept: scaling up again reuses it and the
				// replica only catches up (or is re-cloned if it turns out errant).
				WhenScaled: appsv1.RetainPersistentVolumeClaimRetentionPolicyType,
			},
			Template: podTemplate(c, configHash, tlsHash, bootstrap, opts),
			VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{
				ObjectMeta: metav1.ObjectMeta{Name: VolumeSet(c), Labels: SelectorLabels(c)},
				Spec: corev1.PersistentVolumeClaimSpec{
					AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
					StorageClassName: c.Spec.Storage.StorageClassName,
					Resources: corev1.VolumeResourceRequirements{
						Requests: corev1.ResourceList{corev1.ResourceStorage: c.Spec.Storage.Size},
					},
				},
			}},
		},
	}
	if set := VolumeSet(c); set != VolumeData {
		useVolumeSet(&sts.Spec.Template.Spec, set)
	}
	StampHash(&sts.ObjectMeta, sts.Spec)
	return sts
}

// StatefulSetReplicas is spec.replicas, raised to keep the recorded primary's ordinal while a
// scale-down waits for the clustering loop to switch over, and to status.keepInstances while a
// replica being removed may hold the only copy of an acknowledged write (docs/clustering.md,
// "Scale-down"). It is zero while an in-place restore fences the cluster (docs/backup.md,
// "In-place restore").
func StatefulSetReplicas(c *kurav1alpha1.MySQLCluster) int32 {
	if Fenced(c) {
		return 0
	}
	n := Replicas(c)
	if p := c.Status.CurrentPrimaryIndex; p != nil && *p >= n {
		n = *p + 1
	}
	return max(n, c.Status.KeepInstances)
}

func podTemplate(c *kurav1alpha1.MySQLCluster, configHash, tlsHash string, bootstrap *kurav1alpha1.BackupStorage, opts Options) corev1.PodTemplateSpec {
	p := c.Spec.Pod
	grace := p.TerminationGracePeriodSeconds
	if grace == nil {
		grace = ptr.To[int64](60)
	}
	initCtr := kuraInitContainer(c)
	mysqld, agent := mysqldContainer(c), agentContainer(c)
	annotations := map[string]string{contract.AnnotationConfigHash: configHash}
	volumes := []corev1.Volume{
		{Name: VolumeConfig, VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: ConfigMapName(c)},
			DefaultMode:          ptr.To[int32](0o444),
		}}},
		emptyDir(VolumeKuraBin),
		emptyDir(VolumeRun),
		emptyDir(VolumeInstance),
		emptyDir(VolumeTmp),
		credentialsVolume(c, VolumeInitCredentials, contract.InitCredentialKeys),
		credentialsVolume(c, VolumeAgentCredentials, contract.AgentCredentialKeys),
		credentialsVolume(c, VolumeMySQLDCredentials, contract.MySQLDCredentialKeys),
	}
	if TLSEnabled(c) {
		volumes = append(volumes, tlsVolume(c, VolumeServerTLS, TLSKeys), tlsVolume(c, VolumeAgentTLS, TLSKeys))
		initCtr.VolumeMounts = append(initCtr.VolumeMounts, tlsMount(VolumeServerTLS))
		mysqld.VolumeMounts = append(mysqld.VolumeMounts, tlsMount(VolumeServerTLS))
		// The agent serves its API over HTTPS with the server certificate (AgentServesTLS).
		agent.VolumeMounts = append(agent.VolumeMounts, tlsMount(VolumeAgentTLS))
		agent.LivenessProbe.HTTPGet.Scheme = corev1.URISchemeHTTPS
		annotations[contract.AnnotationTLSHash] = tlsHash
	}
	if c.Spec.Bootstrap != nil && bootstrap != nil {
		bv, bm := bootstrapVolumes(c, *bootstrap)
		volumes = append(volumes, bv...)
		initCtr.VolumeMounts = append(initCtr.VolumeMounts, bm...)
		// kura-init writes its restore result as its termination message; should it fail
		// before it can, the log's tail says why.
		initCtr.TerminationMessagePolicy = corev1.TerminationMessageFallbackToLogsOnError
	}
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{
			Labels:      merge(p.Labels, SelectorLabels(c)),
			Annotations: merge(p.Annotations, annotations),
		},
		Spec: corev1.PodSpec{
			ServiceAccountName:           ServiceAccountName(c),
			AutomountServiceAccountToken: ptr.To(false),
			EnableServiceLinks:           ptr.To(false),
			// The agent kills a frozen primary's server process when the operator fails over
			// from it (docs/clustering.md, rule 3c): it must see that process.
			ShareProcessNamespace:         ptr.To(true),
			TerminationGracePeriodSeconds: grace,
			ImagePullSecrets:              c.Spec.ImagePullSecrets,
			Affinity:                      affinity(c),
			Tolerations:                   p.Tolerations,
			NodeSelector:                  p.NodeSelector,
			TopologySpreadConstraints:     p.TopologySpreadConstraints,
			PriorityClassName:             p.PriorityClassName,
			SecurityContext: &corev1.PodSecurityContext{
				RunAsUser:           ptr.To[int64](contract.MySQLUID),
				RunAsGroup:          ptr.To[int64](contract.MySQLUID),
				FSGroup:             ptr.To[int64](contract.MySQLUID),
				RunAsNonRoot:        ptr.To(true),
				FSGroupChangePolicy: ptr.To(corev1.FSGroupChangeOnRootMismatch),
				SeccompProfile:      &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
			InitContainers: []corev1.Container{kuraCopyContainer(c, opts), initCtr},
			Containers:     []corev1.Container{mysqld, agent},
			Volumes:        volumes,
		},
	}
}

func emptyDir(name string) corev1.Volume {
	return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}
}

// affinity spreads instances across nodes unless the user gave an affinity of their own.
func affinity(c *kurav1alpha1.MySQLCluster) *corev1.Affinity {
	if c.Spec.Pod.Affinity != nil {
		return c.Spec.Pod.Affinity
	}
	term := corev1.PodAffinityTerm{
		LabelSelector: &metav1.LabelSelector{MatchLabels: SelectorLabels(c)},
		TopologyKey:   corev1.LabelHostname,
	}
	switch c.Spec.Pod.AntiAffinity {
	case "None":
		return nil
	case "Required":
		return &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
			RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{term},
		}}
	default:
		return &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
			PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{{Weight: 100, PodAffinityTerm: term}},
		}}
	}
}

func restrictedSecurityContext() *corev1.SecurityContext {
	return &corev1.SecurityContext{
		AllowPrivilegeEscalation: ptr.To(false),
		ReadOnlyRootFilesystem:   ptr.To(true),
		RunAsNonRoot:             ptr.To(true),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
	}
}

// instanceEnv is the environment every engine-image container gets: who it is and the
// cluster's plain settings. No password: those are files of the credentials volumes.
func instanceEnv(c *kurav1alpha1.MySQLCluster) []corev1.EnvVar {
	field := func(name, path string) corev1.EnvVar {
		return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: path}}}
	}
	env := []corev1.EnvVar{
		field(contract.EnvPodName, "metadata.name"),
		field(contract.EnvPodNamespace, "metadata.namespace"),
		field(contract.EnvPodIP, "status.podIP"),
		{Name: contract.EnvClusterName, Value: c.Name},
		{Name: contract.EnvEngine, Value: string(Engine(c))},
		{Name: contract.EnvInstancesService, Value: HeadlessServiceName(c)},
		{Name: contract.EnvDatabase, Value: Database(c)},
		{Name: contract.EnvFailoverGrace, Value: FailoverGrace(c).String()},
	}
	if b := c.Spec.Bootstrap; b != nil {
		// No instance of a cluster seeded from a backup ever initialises an empty data
		// directory: the first restores, the others wait to clone.
		env = append(env, corev1.EnvVar{Name: contract.EnvBootstrap, Value: b.Backup})
	}
	return env
}

func mounts(names ...string) []corev1.VolumeMount {
	paths := map[string]string{
		VolumeData:     contract.DataDir,
		VolumeConfig:   contract.ConfigDir,
		VolumeKuraBin:  contract.KuraBinDir,
		VolumeRun:      contract.RunDir,
		VolumeInstance: contract.InstanceDir,
		VolumeTmp:      contract.TmpDir,
	}
	out := make([]corev1.VolumeMount, 0, len(names))
	for _, n := range names {
		m := corev1.VolumeMount{Name: n, MountPath: paths[n]}
		if n == VolumeConfig {
			m.ReadOnly = true
		}
		out = append(out, m)
	}
	return out
}

func smallResources() corev1.ResourceRequirements {
	return corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("32Mi")},
		Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("128Mi")},
	}
}

// kuraCopyContainer copies the kura binary from the operator image into a shared emptyDir, so
// the engine's official image can run it: no custom database image is needed.
func kuraCopyContainer(c *kurav1alpha1.MySQLCluster, opts Options) corev1.Container {
	return corev1.Container{
		Name:            contract.ContainerKuraCopy,
		Image:           opts.KuraImage,
		ImagePullPolicy: c.Spec.ImagePullPolicy,
		Command:         []string{"/kura", "copy-binary", contract.KuraBinPath},
		VolumeMounts:    mounts(VolumeKuraBin),
		SecurityContext: restrictedSecurityContext(),
		Resources:       smallResources(),
	}
}

// kuraInitContainer writes the per-instance config and, on an empty volume, initialises the
// data directory and creates the accounts with binary logging off.
func kuraInitContainer(c *kurav1alpha1.MySQLCluster) corev1.Container {
	return corev1.Container{
		Name:            contract.ContainerKuraInit,
		Image:           EngineImage(c),
		ImagePullPolicy: c.Spec.ImagePullPolicy,
		Command:         []string{contract.KuraBinPath, "init"},
		Env:             instanceEnv(c),
		VolumeMounts: append(mounts(VolumeData, VolumeConfig, VolumeKuraBin, VolumeRun, VolumeInstance, VolumeTmp),
			credentialsMount(VolumeInitCredentials)),
		SecurityContext: restrictedSecurityContext(),
		Resources:       c.Spec.Resources,
	}
}

// holdFor is how long `kura mysqld` keeps a writable primary running after SIGTERM, waiting for
// the operator to switch over: the grace period minus time for a clean shutdown.
func holdFor(c *kurav1alpha1.MySQLCluster) time.Duration {
	grace := int64(60)
	if g := c.Spec.Pod.TerminationGracePeriodSeconds; g != nil {
		grace = *g
	}
	hold := grace - 15
	if hold < grace/2 {
		hold = grace / 2
	}
	return time.Duration(hold) * time.Second
}

// mysqldContainer runs the server under `kura mysqld`, which turns the Pod's SIGTERM into a
// planned switchover (docs/clustering.md): deleting the primary's Pod never drops writes
// on the floor.
func mysqldContainer(c *kurav1alpha1.MySQLCluster) corev1.Container {
	tcp := corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromString(contract.MySQLPortName)}}
	return corev1.Container{
		Name:            contract.ContainerMySQLD,
		Image:           EngineImage(c),
		ImagePullPolicy: c.Spec.ImagePullPolicy,
		Command: []string{contract.KuraBinPath, "mysqld", "--hold-for=" + holdFor(c).String(), "--",
			serverCommand(Engine(c)), "--defaults-file=" + contract.ConfigFile},
		Env:   instanceEnv(c),
		Ports: []corev1.ContainerPort{{Name: contract.MySQLPortName, ContainerPort: contract.MySQLPort, Protocol: corev1.ProtocolTCP}},
		VolumeMounts: append(mounts(VolumeData, VolumeConfig, VolumeKuraBin, VolumeRun, VolumeInstance, VolumeTmp),
			credentialsMount(VolumeMySQLDCredentials)),
		Resources:       c.Spec.Resources,
		SecurityContext: restrictedSecurityContext(),
		// Crash recovery of a large instance can take long: the startup probe allows an hour
		// before liveness starts counting.
		StartupProbe:   &corev1.Probe{ProbeHandler: tcp, PeriodSeconds: 2, FailureThreshold: 1800, TimeoutSeconds: 2},
		LivenessProbe:  &corev1.Probe{ProbeHandler: tcp, PeriodSeconds: 10, FailureThreshold: 6, TimeoutSeconds: 5},
		ReadinessProbe: &corev1.Probe{ProbeHandler: tcp, PeriodSeconds: 2, FailureThreshold: 2, TimeoutSeconds: 2},
	}
}

func agentContainer(c *kurav1alpha1.MySQLCluster) corev1.Container {
	res := c.Spec.Pod.AgentResources
	if len(res.Requests) == 0 && len(res.Limits) == 0 {
		res = corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("20m"), corev1.ResourceMemory: resource.MustParse("64Mi")},
			Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("512Mi")},
		}
	}
	http := func(path string) corev1.ProbeHandler {
		return corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: intstr.FromString(contract.AgentPortName)}}
	}
	return corev1.Container{
		Name:            contract.ContainerAgent,
		Image:           EngineImage(c),
		ImagePullPolicy: c.Spec.ImagePullPolicy,
		Command:         []string{contract.KuraBinPath, "agent"},
		Env:             instanceEnv(c),
		Ports:           []corev1.ContainerPort{{Name: contract.AgentPortName, ContainerPort: contract.AgentPort, Protocol: corev1.ProtocolTCP}},
		VolumeMounts: append(mounts(VolumeData, VolumeConfig, VolumeKuraBin, VolumeRun, VolumeInstance, VolumeTmp),
			credentialsMount(VolumeAgentCredentials)),
		Resources:       res,
		SecurityContext: restrictedSecurityContext(),
		// No readiness probe: Pod readiness (and so Service endpoints) follows mysqld only; an
		// agent restart must never take the primary out of its Service.
		LivenessProbe: &corev1.Probe{ProbeHandler: http("/healthz"), PeriodSeconds: 10, FailureThreshold: 6, TimeoutSeconds: 5},
	}
}
