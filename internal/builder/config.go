package builder

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/internal/mycnf"
)

func typeMeta(apiVersion, kind string) metav1.TypeMeta {
	return metav1.TypeMeta{APIVersion: apiVersion, Kind: kind}
}

// ConfigMap holds the rendered my.cnf, the full text the next start of an instance reads. It
// returns the hash of its static part (mycnf.StaticHash), which the Pod template carries: a
// change of static settings rolls the instances, while dynamic ones are applied to the running
// servers by the clustering loop and change only the ConfigMap.
func ConfigMap(c *kurav1alpha1.MySQLCluster) (*corev1.ConfigMap, string, error) {
	text, err := mycnf.Render(c)
	if err != nil {
		return nil, "", err
	}
	hash, err := mycnf.StaticHash(c)
	if err != nil {
		return nil, "", err
	}
	cm := &corev1.ConfigMap{
		TypeMeta:   typeMeta("v1", "ConfigMap"),
		ObjectMeta: objectMeta(c, ConfigMapName(c), nil, nil),
		Data:       map[string]string{"my.cnf": text},
	}
	StampHash(&cm.ObjectMeta, cm.Data)
	return cm, hash, nil
}
