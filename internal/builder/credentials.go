package builder

import (
	"crypto/rand"
	"fmt"
	"math/big"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/internal/contract"
)

// CredentialKeys are the keys every credentials Secret must hold. The instance Pods get them as
// files of Secret volumes, each container only those it needs (contract.*CredentialKeys).
var CredentialKeys = []string{
	contract.KeyOperatorPassword, contract.KeyAdminPassword, contract.KeyAppPassword, contract.KeyRootPassword,
	contract.KeyReplicationPassword, contract.KeyAgentPassword, contract.KeyBackupPassword,
}

const passwordAlphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

// GeneratePassword returns a random password of n characters from a 62-letter alphabet
// (n=32 gives about 190 bits), read from crypto/rand.
func GeneratePassword(n int) (string, error) {
	b := make([]byte, n)
	max := big.NewInt(int64(len(passwordAlphabet)))
	for i := range b {
		x, err := rand.Int(rand.Reader, max)
		if err != nil {
			return "", fmt.Errorf("failed to read random bytes: %w", err)
		}
		b[i] = passwordAlphabet[x.Int64()]
	}
	return string(b), nil
}

// CredentialsSecret builds the generated credentials Secret with fresh random passwords. The
// reconciler only ever creates it; it is never updated, so the passwords never change under a
// running cluster.
func CredentialsSecret(c *kurav1alpha1.MySQLCluster) (*corev1.Secret, error) {
	data := map[string][]byte{}
	for _, k := range CredentialKeys {
		p, err := GeneratePassword(32)
		if err != nil {
			return nil, err
		}
		data[k] = []byte(p)
	}
	return CopiedCredentialsSecret(c, data), nil
}

// CopiedCredentialsSecret is the credentials Secret of a cluster restored from another
// cluster's backup: the restored data holds the source's accounts, so it gets the source's
// passwords (data, copied from the source's Secret), owned by the new cluster.
func CopiedCredentialsSecret(c *kurav1alpha1.MySQLCluster, data map[string][]byte) *corev1.Secret {
	return &corev1.Secret{
		TypeMeta:   typeMeta("v1", "Secret"),
		ObjectMeta: objectMeta(c, CredentialsSecretName(c), nil, nil),
		Type:       corev1.SecretTypeOpaque,
		Data:       data,
	}
}

// MissingCredentialKeys returns the required keys a Secret lacks or holds empty.
func MissingCredentialKeys(s *corev1.Secret) []string { return missingKeys(s, CredentialKeys) }

// missingKeys returns the keys of a Secret that are absent or empty.
func missingKeys(s *corev1.Secret, keys []string) []string {
	var missing []string
	for _, k := range keys {
		if len(s.Data[k]) == 0 {
			missing = append(missing, k)
		}
	}
	return missing
}

// credentialsVolume is a volume of the cluster's credentials holding only keys, one file per
// key, readable by the owner only (the kubelet adds group read for the Pod's fsGroup, which is
// the containers' own group). The agent token comes from its own Secret, projected next to the
// passwords.
func credentialsVolume(c *kurav1alpha1.MySQLCluster, name string, keys []string) corev1.Volume {
	var items []corev1.KeyToPath
	token := false
	for _, k := range keys {
		if k == contract.KeyAgentToken {
			token = true
			continue
		}
		items = append(items, corev1.KeyToPath{Key: k, Path: k})
	}
	if !token {
		return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
			SecretName:  CredentialsSecretName(c),
			Items:       items,
			DefaultMode: ptr.To[int32](0o400),
		}}}
	}
	return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
		Sources: []corev1.VolumeProjection{
			{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: CredentialsSecretName(c)}, Items: items}},
			{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: AgentTokenSecretName(c)},
				Items: []corev1.KeyToPath{{Key: contract.KeyAgentToken, Path: contract.KeyAgentToken}}}},
		},
		DefaultMode: ptr.To[int32](0o400),
	}}}
}

// AgentTokenSecret builds the cluster's agent token Secret with a fresh random token. It is
// created once and never updated.
func AgentTokenSecret(c *kurav1alpha1.MySQLCluster) (*corev1.Secret, error) {
	t, err := GeneratePassword(40)
	if err != nil {
		return nil, err
	}
	return &corev1.Secret{
		TypeMeta:   typeMeta("v1", "Secret"),
		ObjectMeta: objectMeta(c, AgentTokenSecretName(c), nil, nil),
		Type:       corev1.SecretTypeOpaque,
		Data:       map[string][]byte{contract.KeyAgentToken: []byte(t)},
	}, nil
}

// credentialsMount mounts a credentials volume read-only at contract.CredentialsDir.
func credentialsMount(volume string) corev1.VolumeMount {
	return corev1.VolumeMount{Name: volume, MountPath: contract.CredentialsDir, ReadOnly: true}
}
