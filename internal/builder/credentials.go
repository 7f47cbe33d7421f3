package builder

import (
	"crypto/rand"
	"fmt"
	"math/big"

	corev1 "k8s.io/api/core/v1"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/internal/contract"
)

// CredentialKeys are the keys every credentials Secret must hold, with the env var each is
// exposed as in the instance Pods.
var CredentialKeys = []struct{ Key, Env string }{
	{contract.KeyOperatorPassword, "KURA_OPERATOR_PASSWORD"},
	{contract.KeyAdminPassword, "KURA_ADMIN_PASSWORD"},
	{contract.KeyAppPassword, "KURA_APP_PASSWORD"},
	{contract.KeyRootPassword, "KURA_ROOT_PASSWORD"},
	{contract.KeyReplicationPassword, "KURA_REPL_PASSWORD"},
	{contract.KeyAgentPassword, "KURA_AGENT_PASSWORD"},
	{contract.KeyBackupPassword, "KURA_BACKUP_PASSWORD"},
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
		data[k.Key] = []byte(p)
	}
	return &corev1.Secret{
		TypeMeta:   typeMeta("v1", "Secret"),
		ObjectMeta: objectMeta(c, CredentialsSecretName(c), nil, nil),
		Type:       corev1.SecretTypeOpaque,
		Data:       data,
	}, nil
}

// MissingCredentialKeys returns the required keys a Secret lacks or holds empty.
func MissingCredentialKeys(s *corev1.Secret) []string {
	var missing []string
	for _, k := range CredentialKeys {
		if len(s.Data[k.Key]) == 0 {
			missing = append(missing, k.Key)
		}
	}
	return missing
}
