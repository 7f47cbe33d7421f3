package agent

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/kura-db/kura/internal/contract"
)

// EnvCredentialsDir overrides contract.CredentialsDir for EnvFromOS (tests and local runs);
// `kura init` and `kura agent` take --credentials-dir instead.
const EnvCredentialsDir = "KURA_CREDENTIALS_DIR"

// ReadCredential reads one password from dir/key: a file from a Secret volume, named after
// the key of the credentials Secret. The content is used exactly as stored, as an environment
// variable from the same key would have been. A missing or empty file is an error naming the
// file and the key, never the content.
func ReadCredential(dir, key string) (string, error) {
	p := filepath.Join(dir, key)
	b, err := os.ReadFile(p)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return "", fmt.Errorf("credential file %s does not exist: the container must mount key %q of the cluster's credentials Secret at %s", p, key, dir)
	case err != nil:
		return "", fmt.Errorf("failed to read credential file %s: %w", p, err)
	case len(b) == 0:
		return "", fmt.Errorf("credential file %s is empty: set key %q of the cluster's credentials Secret", p, key)
	}
	return string(b), nil
}

// readCredentials fills e's passwords for keys from files in dir.
func readCredentials(e *Env, dir string, keys []string) error {
	fields := map[string]*string{
		contract.KeyOperatorPassword: &e.OperatorPassword, contract.KeyReplicationPassword: &e.ReplicationPassword,
		contract.KeyAgentPassword: &e.AgentPassword, contract.KeyRootPassword: &e.RootPassword,
		contract.KeyAdminPassword: &e.AdminPassword, contract.KeyAppPassword: &e.AppPassword,
		contract.KeyAgentToken: &e.AgentToken,
	}
	for _, k := range keys {
		field, ok := fields[k]
		if !ok {
			return fmt.Errorf("credential key %q is not one an instance Pod uses", k)
		}
		v, err := ReadCredential(dir, k)
		if err != nil {
			return err
		}
		*field = v
	}
	return nil
}

// credentialFile is a password file re-read when it changes, so a rotated Secret reaches a
// running process (the kubelet updates Secret volumes in place). While the file cannot be
// read, the last good value is kept.
type credentialFile struct {
	dir, key string

	mu   sync.Mutex
	last string
}

// Get returns the file's current content, or the last good one.
func (f *credentialFile) Get() string {
	v, err := ReadCredential(f.dir, f.key)
	f.mu.Lock()
	defer f.mu.Unlock()
	if err == nil {
		f.last = v
	}
	return f.last
}
