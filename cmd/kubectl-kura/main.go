// Command kubectl-kura is the kubectl plugin for Kura clusters (`kubectl kura status|switchover|
// mysql|backup|report <cluster>`; docs/kubectl-plugin.md). Install it with
//
//	go install github.com/kura-db/kura/cmd/kubectl-kura@latest
//
// into a directory on PATH; kubectl finds it by its name.
package main

import (
	"os"

	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kura-db/kura/internal/kubectlkura"
)

// version is set by `make plugin` (-X main.version); `go install ...@vX` reports the module
// version instead.
var version = ""

func main() {
	kubectlkura.Version = version
	os.Exit(kubectlkura.Main(os.Args[1:], genericiooptions.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr}))
}
