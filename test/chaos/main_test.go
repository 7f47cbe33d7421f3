// Package chaos injects faults into a Kura cluster on the local cluster (test/localcluster)
// while an application writes through the primary Service, and checks after each fault that no
// acknowledged write was lost, that two instances never accepted writes at once, that every
// instance holds the same data and that the cluster healed by itself. See docs/chaos.md.
package chaos

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/kura-db/kura/test/e2eutil"
)

var (
	env  *e2eutil.Env
	keep = flag.Bool("keep", os.Getenv("KURA_CHAOS_KEEP") != "", "leave the local cluster running after the suite")
)

// backoffBase is the node agent's first crash-loop delay. The kubelet's 10 s, doubling up to 5
// minutes and reset only after 10 minutes of running, would make a suite that kills the same
// three servers over and over measure mostly back-off; 2 s keeps a restart slower than the
// failover grace period, so a killed primary is failed over rather than simply reopened.
const backoffBase = 2 * time.Second

func TestMain(m *testing.M) {
	flag.Parse()
	// The driver logs every broken connection; the writer and the probe count them instead.
	_ = mysql.SetLogger(log.New(io.Discard, "", 0))
	if testing.Short() {
		os.Exit(m.Run())
	}
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func run(m *testing.M) (int, error) {
	var err error
	env, err = e2eutil.Start(context.Background(), e2eutil.Options{
		StateDir: filepath.Join("test", ".local-chaos"), BackoffBase: backoffBase, Log: "chaos"})
	if err != nil {
		return 0, err
	}
	if !*keep {
		defer func() {
			if err := env.Down(); err != nil {
				fmt.Fprintln(os.Stderr, "chaos: teardown:", err)
			}
		}()
	}
	return m.Run(), nil
}
