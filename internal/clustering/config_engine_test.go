package clustering

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/internal/engine"
	"github.com/kura-db/kura/internal/mycnf"
)

// TestEngineDynamicConfigWithoutRestartStaticRolls changes spec.mysqld.config on three real
// servers as the operator would: the Pod template's revision is mycnf.StaticHash of the
// cluster, the options reach the loop through mycnf.Settings. A dynamic change
// (max_connections, long_query_time) is applied on every instance by SET GLOBAL and no server
// restarts (same process ids); a static change (back_log) changes the revision and the loop
// rolls every instance, replicas first, after which each server runs with the new value.
func TestEngineDynamicConfigWithoutRestartStaticRolls(t *testing.T) {
	r := newRig(t, 3)
	c := &kurav1alpha1.MySQLCluster{ObjectMeta: metav1.ObjectMeta{Name: "it", Namespace: "test"},
		Spec: kurav1alpha1.MySQLClusterSpec{Engine: kurav1alpha1.EngineMariaDB}}
	revision := func() string {
		h, err := mycnf.StaticHash(c)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	// change renders the new config into every instance's file, as the ConfigMap the next
	// start reads (the per-instance lines that replace the include line are kept), and hands
	// the options and the new revision to the loop.
	change := func(cfg map[string]string) {
		oldText, err := mycnf.Render(c)
		if err != nil {
			t.Fatal(err)
		}
		c.Spec.MySQLD.Config = cfg
		newText, err := mycnf.Render(c)
		if err != nil {
			t.Fatal(err)
		}
		oldPrefix := strings.Split(oldText, mycnf.IncludeLine())[0]
		newPrefix := strings.Split(newText, mycnf.IncludeLine())[0]
		for _, s := range r.servers {
			path := filepath.Join(s.Dir, "my.cnf")
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			rest, ok := strings.CutPrefix(string(b), oldPrefix)
			if !ok {
				t.Fatalf("%s does not start with the rendered config", path)
			}
			if err := os.WriteFile(path, []byte(newPrefix+rest), 0o640); err != nil {
				t.Fatal(err)
			}
		}
		var settings []Setting
		for _, s := range mycnf.Settings(c) {
			settings = append(settings, Setting{Name: s.Name, Value: s.Value, Dynamic: s.Dynamic})
		}
		r.mu.Lock()
		r.spec.Config, r.desired = settings, revision()
		r.mu.Unlock()
		r.loop.Poke()
	}
	r.revisions = map[int]string{0: revision(), 1: revision(), 2: revision()}
	r.desired = revision()
	r.run()
	r.until("healthy after bootstrap", 30*time.Second, r.healthy)

	pids := func() map[int]string {
		out := map[int]string{}
		for _, s := range r.servers {
			b, err := os.ReadFile(filepath.Join(s.Dir, "mysqld.pid"))
			if err != nil {
				t.Fatal(err)
			}
			out[s.Index] = strings.TrimSpace(string(b))
		}
		return out
	}
	global := func(o int, name string) string {
		var v string
		if err := r.db(o, engine.OperatorUser, adminPassword, 5*time.Second).QueryRow("SELECT @@GLOBAL." + name).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	configState := func(name string) ConfigStatus {
		for _, s := range r.report().Plan.Config {
			if s.Name == name {
				return s
			}
		}
		return ConfigStatus{}
	}
	before := pids()
	oldBackLog := global(0, "back_log")

	// Dynamic: applied everywhere, nothing restarts.
	dynamic := map[string]string{"max_connections": "777", "long_query_time": "0.5"}
	change(dynamic)
	r.until("max_connections and long_query_time applied", 30*time.Second, func() bool {
		return r.healthy() && configState("max_connections").State == ConfigApplied && configState("long_query_time").State == ConfigApplied
	})
	for o := range r.servers {
		if got := global(o, "max_connections"); got != "777" {
			t.Errorf("it-%d: max_connections %s, want 777", o, got)
		}
		if got := global(o, "long_query_time"); !mycnf.SameValue("0.5", got) {
			t.Errorf("it-%d: long_query_time %s, want 0.5", o, got)
		}
	}
	if after := pids(); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("a dynamic change restarted servers: process ids %v, before %v", after, before)
	}
	r.mu.Lock()
	restarts := len(r.restarts)
	applied := 0
	for _, e := range r.events {
		if e.Reason == EventConfigApplied && strings.Contains(e.Message, "max_connections = 777") {
			applied++
		}
	}
	r.mu.Unlock()
	if restarts != 0 || applied != 1 {
		t.Errorf("after the dynamic change: %d instances restarted, %d ConfigApplied events naming max_connections; want 0 and 1", restarts, applied)
	}

	// Static: the revision changes and the loop rolls every instance; each comes back with
	// every value of the config file, the dynamic ones too.
	static := map[string]string{"max_connections": "777", "long_query_time": "0.5", "back_log": "77"}
	if oldBackLog == "77" {
		t.Fatal("back_log is 77 already; pick another value")
	}
	change(static)
	r.until("back_log pending a restart", 10*time.Second, func() bool { return configState("back_log").State == ConfigPendingRestart })
	r.until("every instance restarted with back_log = 77", 3*time.Minute, func() bool {
		return r.healthy() && configState("back_log").State == ConfigApplied
	})
	after := pids()
	for o := range r.servers {
		if after[o] == before[o] {
			t.Errorf("it-%d was not restarted for a static change (process id %s)", o, after[o])
		}
		if got := global(o, "back_log"); got != "77" {
			t.Errorf("it-%d: back_log %s, want 77", o, got)
		}
		if got := global(o, "max_connections"); got != "777" {
			t.Errorf("it-%d: max_connections %s after the restart, want 777 (from the config file)", o, got)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for o := range r.servers {
		if r.restarts[o] != 1 {
			t.Errorf("it-%d restarted %d times by the loop, want once", o, r.restarts[o])
		}
	}
	named := false
	for _, e := range r.events {
		if e.Reason == EventInstanceRestarted && strings.Contains(e.Message, "static settings: back_log") {
			named = true
		}
	}
	if !named {
		t.Errorf("no restart event names back_log: %v", r.events)
	}
}
