// Package scheme builds the runtime.Scheme Kura's clients use: the core Kubernetes kinds and
// kura.dev/v1alpha1.
package scheme

import (
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
)

// New returns a scheme with the core Kubernetes kinds and Kura's kinds.
func New() *runtime.Scheme {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		panic(err) // registering the built-in kinds cannot fail
	}
	if err := kurav1alpha1.AddToScheme(s); err != nil {
		panic(err)
	}
	return s
}
