package e2e

import (
	"context"
	"fmt"
	"maps"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/internal/builder"
)

// Through kubectl: a dynamic option of spec.mysqld.config reaches every instance without a
// restart (same Pods, same containers); a static one rolls every instance.
func TestConfigChangesWithoutRestart(t *testing.T) {
	needCluster(t)
	ns := newNamespace(t, "e2e-config")
	const name = "cfg"
	ctx := context.Background()
	if err := k8s.Create(ctx, newCluster(ns, name, 3)); err != nil {
		t.Fatal(err)
	}
	awaitCluster(t, ns, name, "3 healthy instances", 5*time.Minute, healthy(t, ns, name, 3))

	pods := func() (map[string]string, map[string]string) {
		list := &corev1.PodList{}
		if err := k8s.List(ctx, list, client.InNamespace(ns), client.MatchingLabels(builder.SelectorLabels(get(t, ns, name)))); err != nil {
			t.Fatal(err)
		}
		uids := map[string]string{}
		for _, p := range list.Items {
			uids[p.Name] = string(p.UID)
		}
		return uids, containerIDs(list)
	}
	global := func(pod, variable string) (string, error) {
		db := openDB(podIP(t, ns, pod), "admin", adminPassword(t, ns, name))
		defer func() { _ = db.Close() }()
		var v string
		return v, db.QueryRow("SELECT @@GLOBAL." + variable).Scan(&v)
	}
	everywhere := func(variable, want string) func() error {
		return func() error {
			for i := 0; i < 3; i++ {
				pod := fmt.Sprintf("%s-%d", name, i)
				got, err := global(pod, variable)
				if err != nil {
					return fmt.Errorf("%s: %w", pod, err)
				}
				if got != want {
					return fmt.Errorf("%s: %s = %s, want %s", pod, variable, got, want)
				}
			}
			return nil
		}
	}
	state := func(option, want string) func() error {
		return func() error {
			for _, s := range get(t, ns, name).Status.Config {
				if s.Name == option {
					if s.State != want {
						return fmt.Errorf("%s is %s on %v (%s), want %s", option, s.State, s.Instances, s.Message, want)
					}
					return nil
				}
			}
			return fmt.Errorf("status.config does not list %s", option)
		}
	}
	patch := func(config string) {
		kubectlRun(t, "", "patch", "-n", ns, "mysqlcluster/"+name, "--type=merge", "-p", `{"spec":{"mysqld":{"config":`+config+`}}}`)
	}

	uids, containers := pods()
	patch(`{"max_connections":"777"}`)
	awaitCluster(t, ns, name, "max_connections applied", 2*time.Minute, func() error {
		if err := state("max_connections", "Applied")(); err != nil {
			return err
		}
		return everywhere("max_connections", "777")()
	})
	if u, c := pods(); !maps.Equal(u, uids) || !maps.Equal(c, containers) {
		t.Fatalf("a dynamic option restarted instances: Pods %v containers %v, before %v %v", u, c, uids, containers)
	}
	if c := get(t, ns, name); c.Status.State != kurav1alpha1.StateHealthy {
		t.Errorf("state %s after a dynamic change", c.Status.State)
	}

	patch(`{"back_log":"77"}`)
	awaitCluster(t, ns, name, "every instance restarted with back_log 77", 8*time.Minute, func() error {
		u, _ := pods()
		for pod, uid := range uids {
			if u[pod] == uid {
				return fmt.Errorf("%s not restarted yet", pod)
			}
		}
		if err := healthy(t, ns, name, 3)(); err != nil {
			return err
		}
		if err := state("back_log", "Applied")(); err != nil {
			return err
		}
		return everywhere("back_log", "77")()
	})
	if err := everywhere("max_connections", "777")(); err != nil {
		t.Errorf("after the roll: %v (the config file should carry it)", err)
	}
}
