// Command kura is the single Kura binary: the operator, the in-pod agent, and the backup and
// restore runners, each as a subcommand.
package main

import (
	"fmt"
	"os"

	_ "github.com/kura-db/kura/api/v1alpha1"
)

func main() {
	fmt.Fprintln(os.Stderr, "kura: not yet wired")
	os.Exit(2)
}
