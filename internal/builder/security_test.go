package builder

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/internal/contract"
)

// builtPodSpecs are the Pod specs of every Pod, Job and Deployment Kura creates, for both engines and
// every backup storage.
func builtPodSpecs() map[string]corev1.PodSpec {
	out := map[string]corev1.PodSpec{}
	for _, e := range []kurav1alpha1.Engine{kurav1alpha1.EngineMariaDB, kurav1alpha1.EngineMySQL} {
		c := newCluster(func(c *kurav1alpha1.MySQLCluster) { c.Spec.Engine = e })
		sts := StatefulSet(c, "h", "", nil, opts)
		pod := sts.Spec.Template.Spec
		// The StatefulSet controller adds each claim template as a volume of the Pod.
		for _, pvc := range sts.Spec.VolumeClaimTemplates {
			pod.Volumes = append(pod.Volumes, corev1.Volume{Name: pvc.Name, VolumeSource: corev1.VolumeSource{
				PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: pvc.Name + "-shop-0"}}})
		}
		out["instance/"+string(e)] = pod
		pvc := newBackup(func(b *kurav1alpha1.Backup) {
			b.Spec.Storage = kurav1alpha1.BackupStorage{PVC: &kurav1alpha1.PVCStorage{ClaimName: "v"}}
		})
		for name, b := range map[string]*kurav1alpha1.Backup{"s3": newBackup(), "pvc": pvc} {
			out["backup-"+name+"/"+string(e)] = BackupJob(c, b, `{"name":"`+b.Name+`"}`, opts).Spec.Template.Spec
			out["backup-delete-"+name+"/"+string(e)] = BackupDeleteJob(c, b, `{"name":"`+b.Name+`"}`, opts).Spec.Template.Spec
			out["verify-"+name+"/"+string(e)] = VerifyJob(c, b, `{"backup":"`+b.Name+`"}`, opts).Spec.Template.Spec
			archived := c.DeepCopy()
			archived.Spec.BinlogArchive = &kurav1alpha1.BinlogArchiveSpec{Storage: b.Spec.Storage}
			out["archive-"+name+"/"+string(e)] = ArchiveDeployment(archived, `{"cluster":"shop"}`, opts).Spec.Template.Spec
		}
	}
	bs := &kurav1alpha1.BackupSchedule{
		ObjectMeta: metav1.ObjectMeta{Name: "nightly", Namespace: "prod"},
		Spec:       kurav1alpha1.BackupScheduleSpec{BackupOptions: newBackup().Spec.BackupOptions, Schedule: "0 3 * * *"},
	}
	out["backup-schedule"] = BackupScheduleCronJob(bs, opts).Spec.JobTemplate.Spec.Template.Spec
	return out
}

func allContainers(p corev1.PodSpec) []corev1.Container {
	return append(slices.Clone(p.InitContainers), p.Containers...)
}

// secretArg matches an argument that carries a secret's value rather than a file's path.
var secretArg = regexp.MustCompile(`(?i)(password|passwd|secret|token)[A-Za-z]*"?\s*[=:]\s*"?([^/"\s,}][^"\s,}]*)`)

// No container of any Pod or Job Kura builds gets a password as an environment variable (from
// a Secret or literal) or as an argument: passwords are files of Secret volumes.
func TestNoSecretInEnvironmentOrArguments(t *testing.T) {
	for name, p := range builtPodSpecs() {
		for _, c := range allContainers(p) {
			for _, e := range c.Env {
				if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
					t.Errorf("%s/%s: env %s comes from Secret %s", name, c.Name, e.Name, e.ValueFrom.SecretKeyRef.Name)
				}
				if u := strings.ToUpper(e.Name); strings.Contains(u, "PASSWORD") || strings.Contains(u, "SECRET") || strings.Contains(u, "TOKEN") {
					t.Errorf("%s/%s: env %s looks like a credential", name, c.Name, e.Name)
				}
			}
			for _, ef := range c.EnvFrom {
				if ef.SecretRef != nil {
					t.Errorf("%s/%s: envFrom Secret %s", name, c.Name, ef.SecretRef.Name)
				}
			}
			for _, a := range append(slices.Clone(c.Command), c.Args...) {
				if m := secretArg.FindStringSubmatch(a); m != nil {
					t.Errorf("%s/%s: argument %q carries a credential (%s)", name, c.Name, a, m[1])
				}
			}
		}
	}
	// The pattern must catch what it is meant to catch.
	for _, bad := range []string{"--password=hunter2", `{"agentPassword":"hunter2"}`, "TOKEN=abc"} {
		if !secretArg.MatchString(bad) {
			t.Errorf("the check misses %q", bad)
		}
	}
	if secretArg.MatchString(`{"agentPasswordFile":"/var/run/kura/credentials/agent-password"}`) {
		t.Error("a password file's path must not count as a password")
	}
}

// Each instance container mounts only the passwords it uses, owner-read-only, read-only, at
// contract.CredentialsDir; kura-copy, which runs the operator's image, gets none.
func TestInstanceCredentialsPerContainer(t *testing.T) {
	p := StatefulSet(newCluster(), "h", "", nil, opts).Spec.Template.Spec
	vols := map[string]corev1.Volume{}
	for _, v := range p.Volumes {
		vols[v.Name] = v
	}
	want := map[string][]string{
		contract.ContainerKuraCopy: nil,
		contract.ContainerKuraInit: contract.InitCredentialKeys,
		contract.ContainerAgent:    contract.AgentCredentialKeys,
		contract.ContainerMySQLD:   contract.MySQLDCredentialKeys,
	}
	for _, c := range allContainers(p) {
		var got []string
		for _, m := range c.VolumeMounts {
			v := vols[m.Name]
			var sources []corev1.SecretProjection
			var mode *int32
			switch {
			case v.Secret != nil:
				sources, mode = []corev1.SecretProjection{{LocalObjectReference: corev1.LocalObjectReference{Name: v.Secret.SecretName}, Items: v.Secret.Items}}, v.Secret.DefaultMode
			case v.Projected != nil:
				for _, src := range v.Projected.Sources {
					if src.Secret != nil {
						sources = append(sources, *src.Secret)
					}
				}
				mode = v.Projected.DefaultMode
			}
			if len(sources) == 0 || m.MountPath == contract.TLSDir { // certificates: TestTLSMountsAndConfig
				continue
			}
			if m.MountPath != contract.CredentialsDir || !m.ReadOnly {
				t.Errorf("%s: credentials mount %+v", c.Name, m)
			}
			if mode == nil || *mode != 0o400 {
				t.Errorf("%s: credentials volume %s must be mode 0400", c.Name, m.Name)
			}
			for _, s := range sources {
				for _, it := range s.Items {
					// The agent token has its own Secret: no database password.
					wantSecret := "shop-credentials"
					if it.Key == contract.KeyAgentToken {
						wantSecret = "shop-agent-token"
					}
					if s.Name != wantSecret || it.Path != it.Key || it.Mode != nil {
						t.Errorf("%s: item %+v of Secret %s must be a file named after its key, from %s", c.Name, it, s.Name, wantSecret)
					}
					got = append(got, it.Key)
				}
			}
		}
		slices.Sort(got)
		want := slices.Clone(want[c.Name])
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s gets passwords %v, want %v", c.Name, got, want)
		}
	}
	// The server's container: the operator's password (kura mysqld) and the two accounts that
	// kubectl kura mysql opens sessions with, never replication, agent, root or the agent token.
	for _, k := range []string{contract.KeyReplicationPassword, contract.KeyAgentPassword, contract.KeyRootPassword, contract.KeyAgentToken} {
		if slices.Contains(contract.MySQLDCredentialKeys, k) {
			t.Errorf("the server's container gets %s: %v", k, contract.MySQLDCredentialKeys)
		}
	}
}
