package operator

import (
	"fmt"
	"os"
	"strings"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/kura-db/kura/internal/builder"
)

// EnvOperatorPodLabels holds labels every operator Pod carries ("k=v,k2=v2"; the chart sets
// its selector labels), which the instances' NetworkPolicy admits.
const EnvOperatorPodLabels = "KURA_OPERATOR_POD_LABELS"

// serviceAccountNamespaceFile names the namespace of the Pod the operator runs in.
const serviceAccountNamespaceFile = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

// instanceBuilderOptions are the builder options of the MySQLCluster controller: the Kura
// image and where the operator's own Pods are (POD_NAMESPACE, else the service account's
// namespace; labels from KURA_OPERATOR_POD_LABELS). Outside a Pod the namespace stays empty.
func instanceBuilderOptions(o Options) (builder.Options, error) {
	opts := builder.Options{KuraImage: o.KuraImage, OperatorNamespace: os.Getenv("POD_NAMESPACE")}
	if opts.OperatorNamespace == "" {
		if b, err := os.ReadFile(serviceAccountNamespaceFile); err == nil {
			opts.OperatorNamespace = strings.TrimSpace(string(b))
		}
	}
	if v := os.Getenv(EnvOperatorPodLabels); v != "" {
		m, err := labels.ConvertSelectorToLabelsMap(v)
		if err != nil {
			return opts, fmt.Errorf("%s=%q: want k=v pairs separated by commas: %w", EnvOperatorPodLabels, v, err)
		}
		opts.OperatorPodLabels = m
	}
	return opts, nil
}
