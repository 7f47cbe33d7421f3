package clustering

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// withConfig sets spec.mysqld.config and what every reachable instance reports for it.
func (f *fx) withConfig(settings []Setting, vars map[string]string) *fx {
	f.o.Spec.Config = settings
	for i := range f.o.Instances {
		if f.o.Instances[i].SQL != nil {
			v := map[string]string{}
			for k, x := range vars {
				v[k] = x
			}
			f.o.Instances[i].Variables = v
		}
	}
	return f
}

func setGlobals(p Plan) []SetGlobal {
	var out []SetGlobal
	for _, s := range p.Steps {
		if g, ok := unwrap(s).(SetGlobal); ok {
			if _, optional := s.(Optional); !optional {
				panic("a SetGlobal step must be optional: a refusal must not stop the plan")
			}
			out = append(out, g)
		}
	}
	return out
}

func configOf(p Plan, name string) ConfigStatus {
	for _, c := range p.Config {
		if c.Name == name {
			return c
		}
	}
	return ConfigStatus{}
}

func TestDecideConfig(t *testing.T) {
	maxConn := []Setting{{Name: "max_connections", Value: "800", Dynamic: true}}
	for _, tc := range []struct {
		name      string
		f         *fx
		want      []SetGlobal
		state     string
		instances []string
		message   string
	}{
		{
			name:  "a dynamic value no instance holds yet is set on every instance",
			f:     cluster(3).primary(0).withConfig(maxConn, map[string]string{"max_connections": "500"}),
			want:  []SetGlobal{{0, "max_connections", "800"}, {1, "max_connections", "800"}, {2, "max_connections", "800"}},
			state: ConfigApplying, instances: []string{"db-0", "db-1", "db-2"},
		},
		{
			name:  "a value held in another spelling (64M and bytes) is applied",
			f:     cluster(2).primary(0).withConfig([]Setting{{Name: "max_allowed_packet", Value: "64M", Dynamic: true}}, map[string]string{"max_allowed_packet": "67108864"}),
			state: ConfigApplied,
		},
		{
			name: "an instance set before is not set again when the server rounded the value",
			f: func() *fx {
				f := cluster(2).primary(0).withConfig([]Setting{{Name: "innodb_buffer_pool_size", Value: "129M", Dynamic: true}}, map[string]string{"innodb_buffer_pool_size": "268435456"})
				f.o.Attempts = map[string]map[string]Attempt{"db-0": {"innodb_buffer_pool_size": {Value: "129M"}}, "db-1": {"innodb_buffer_pool_size": {Value: "129M"}}}
				return f
			}(),
			state: ConfigApplied, message: "db-0 holds 268435456 (adjusted by the server)",
		},
		{
			name: "a new value is set even where an older one was rounded",
			f: func() *fx {
				f := cluster(2).primary(0).withConfig([]Setting{{Name: "innodb_buffer_pool_size", Value: "1G", Dynamic: true}}, map[string]string{"innodb_buffer_pool_size": "268435456"})
				f.o.Attempts = map[string]map[string]Attempt{"db-0": {"innodb_buffer_pool_size": {Value: "129M"}}}
				return f
			}(),
			want:  []SetGlobal{{0, "innodb_buffer_pool_size", "1G"}, {1, "innodb_buffer_pool_size", "1G"}},
			state: ConfigApplying, instances: []string{"db-0", "db-1"},
		},
		{
			name: "a refused value is reported with the server's words and not retried",
			f: func() *fx {
				f := cluster(2).primary(0).withConfig(maxConn, map[string]string{"max_connections": "500"})
				f.o.Attempts = map[string]map[string]Attempt{"db-1": {"max_connections": {Value: "800", Refused: "Error 1232: Incorrect argument"}}}
				return f
			}(),
			want:  []SetGlobal{{0, "max_connections", "800"}},
			state: ConfigRefused, instances: []string{"db-1"}, message: "db-1: Error 1232: Incorrect argument",
		},
		{
			name:  "a static value is pending until the outdated instances restart; nothing is set",
			f:     outdated(cluster(3).primary(0).withConfig([]Setting{{Name: "back_log", Value: "100"}}, map[string]string{"back_log": "80"}), 1, 2),
			state: ConfigPendingRestart, instances: []string{"db-1", "db-2"},
		},
		{
			name:  "a static value the running revision already has is applied, with what the server holds",
			f:     cluster(2).primary(0).withConfig([]Setting{{Name: "open_files_limit", Value: "100"}}, map[string]string{"open_files_limit": "4096"}),
			state: ConfigApplied, message: "db-0 holds 4096; db-1 holds 4096",
		},
		{
			name:  "an option that is no variable (loose_ prefix) is pending on an outdated instance only",
			f:     outdated(cluster(2).primary(0).withConfig([]Setting{{Name: "loose_x", Value: "1"}}, nil), 1),
			state: ConfigPendingRestart, instances: []string{"db-1"},
		},
		{
			name:  "nothing is set while the primary is down; the state is still reported",
			f:     cluster(3).primary(0).withConfig(maxConn, map[string]string{"max_connections": "500"}).down(0, time.Second, "connection refused"),
			state: ConfigApplying, instances: []string{"db-1", "db-2"},
		},
		{
			name:  "paused: nothing is set",
			f:     cluster(2).primary(0).withConfig(maxConn, map[string]string{"max_connections": "500"}).paused(),
			state: ConfigApplying, instances: []string{"db-0", "db-1"},
		},
		{
			name: "an instance whose variables could not be read is left alone",
			f: func() *fx {
				f := cluster(2).primary(0).withConfig(maxConn, map[string]string{"max_connections": "500"})
				f.in(1).Variables, f.in(1).VariablesError = nil, "timeout"
				return f
			}(),
			want:  []SetGlobal{{0, "max_connections", "800"}},
			state: ConfigApplying, instances: []string{"db-0"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := deepCopy(tc.f.o)
			p := Decide(tc.f.o)
			if !reflect.DeepEqual(before, tc.f.o) {
				t.Error("Decide changed its input")
			}
			if again := Decide(tc.f.o); !reflect.DeepEqual(p, again) {
				t.Error("Decide is not deterministic")
			}
			if got := setGlobals(p); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("SET GLOBAL steps %v, want %v", got, tc.want)
			}
			name := tc.f.o.Spec.Config[0].Name
			c := configOf(p, name)
			if c.State != tc.state || !reflect.DeepEqual(c.Instances, tc.instances) {
				t.Errorf("%s: state %s on %v, want %s on %v (%s)", name, c.State, c.Instances, tc.state, tc.instances, c.Message)
			}
			if tc.message != "" && !strings.Contains(c.Message, tc.message) {
				t.Errorf("message %q lacks %q", c.Message, tc.message)
			}
		})
	}
}

// outdated makes instances run another revision than desired (a static change rolling).
func outdated(f *fx, ordinals ...int) *fx {
	for i := range f.o.Instances {
		f.o.Instances[i].Revision, f.o.Instances[i].DesiredRevision = "r2", "r2"
	}
	for _, o := range ordinals {
		f.in(o).Revision = "r1"
	}
	return f
}

// Through the loop: a dynamic value is set once on every instance; a value the server rounds
// or refuses is not set again pass after pass; one event names what was applied and one what
// was refused.
func TestLoopAppliesDynamicConfigOnce(t *testing.T) {
	c := newFakeCluster(3)
	for _, n := range c.nodes {
		n.vars = map[string]string{"max_connections": "500", "innodb_buffer_pool_size": "134217728"}
		n.stores = map[string]string{"innodb_buffer_pool_size": "268435456"}
	}
	c.nodes[2].refuses = map[string]string{"max_connections": "Error 1232: Incorrect argument type"}
	l := newFakeLoop(t, c)
	passUntil(t, l, 5, "healthy", healthy)

	c.mu.Lock()
	c.spec.Config = []Setting{{Name: "max_connections", Value: "800", Dynamic: true}, {Name: "innodb_buffer_pool_size", Value: "129M", Dynamic: true}}
	c.calls, c.events = nil, nil
	c.mu.Unlock()
	var r Report
	for i := 0; i < 5; i++ {
		var err error
		if r, err = l.Pass(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	sets := map[string]int{}
	for _, call := range c.calls {
		if strings.HasPrefix(call, "SetGlobal(") {
			sets[call]++
		}
	}
	want := map[string]int{
		"SetGlobal(max_connections=800)@0": 1, "SetGlobal(max_connections=800)@1": 1, "SetGlobal(max_connections=800)@2": 1,
		"SetGlobal(innodb_buffer_pool_size=129M)@0": 1, "SetGlobal(innodb_buffer_pool_size=129M)@1": 1, "SetGlobal(innodb_buffer_pool_size=129M)@2": 1,
	}
	if !reflect.DeepEqual(sets, want) {
		t.Errorf("SET GLOBAL calls over 5 passes: %v, want each once: %v", sets, want)
	}
	for _, n := range c.nodes[:2] {
		if n.vars["max_connections"] != "800" {
			t.Errorf("node %d: max_connections %s", n.ord, n.vars["max_connections"])
		}
	}
	if got := configOf(r.Plan, "max_connections"); got.State != ConfigRefused || !reflect.DeepEqual(got.Instances, []string{"fake-2"}) || !strings.Contains(got.Message, "Incorrect argument type") {
		t.Errorf("max_connections: %+v, want Refused on fake-2 with the server's words", got)
	}
	if got := configOf(r.Plan, "innodb_buffer_pool_size"); got.State != ConfigApplied || !strings.Contains(got.Message, "268435456") {
		t.Errorf("innodb_buffer_pool_size: %+v, want Applied with the rounded value", got)
	}
	if !healthy(r) {
		t.Errorf("the loop keeps acting: %v", r.Plan.Steps)
	}
	count := map[string]int{}
	for _, e := range c.events {
		count[e.Reason]++
		if e.Reason == EventConfigRefused && !strings.Contains(e.Message, "max_connections = 800 on fake-2") {
			t.Errorf("refusal event does not name the variable and instance: %s", e.Message)
		}
		if e.Reason == EventConfigApplied && !strings.Contains(e.Message, "max_connections = 800 on fake-0") {
			t.Errorf("applied event does not name the variable and instance: %s", e.Message)
		}
	}
	if count[EventConfigApplied] != 1 || count[EventConfigRefused] != 1 {
		t.Errorf("events %v, want one ConfigApplied and one ConfigRefused", count)
	}
}

// A server that stopped answering may come back restarted: a value set on it before is set
// again if it does not hold it, once.
func TestLoopSetsAgainAfterAnInstanceWasUnreachable(t *testing.T) {
	c, l := healthyWithMaxConnections(t, nil)
	passUntil(t, l, 3, "max_connections applied", func(r Report) bool { return healthy(r) && configOf(r.Plan, "max_connections").State == ConfigApplied })

	// Replica 1 restarts with its old value.
	c.mu.Lock()
	c.nodes[1].up = false
	c.mu.Unlock()
	if _, err := l.Pass(context.Background()); err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	c.nodes[1].up, c.nodes[1].vars["max_connections"] = true, "500"
	c.calls = nil
	c.mu.Unlock()
	passUntil(t, l, 5, "max_connections applied again", func(r Report) bool { return healthy(r) && configOf(r.Plan, "max_connections").State == ConfigApplied })
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.nodes[1].vars["max_connections"] != "800" {
		t.Errorf("the restarted replica holds max_connections %s", c.nodes[1].vars["max_connections"])
	}
	n := 0
	for _, call := range c.calls {
		if strings.HasPrefix(call, "SetGlobal(") {
			n++
			if call != "SetGlobal(max_connections=800)@1" {
				t.Errorf("unexpected %s", call)
			}
		}
	}
	if n != 1 {
		t.Errorf("%d SET GLOBAL calls after the restart, want 1", n)
	}
}

// A failed read of the variables leaves the instance reachable (it is not a failover signal)
// and its options unjudged for the pass.
func TestObserveVariablesFailureKeepsTheInstanceReachable(t *testing.T) {
	_, l := healthyWithMaxConnections(t, func(c *fakeCluster) {
		c.failOnce["Variables@0"] = errors.New("Error 1927: connection was killed")
	})
	r, err := l.Pass(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	p := r.Observation.Instances[0]
	if p.SQL == nil || p.Variables != nil || !strings.Contains(p.VariablesError, "1927") {
		t.Fatalf("instance 0: reachable %t, variables %v, error %q", p.SQL != nil, p.Variables, p.VariablesError)
	}
	if r.Plan.State != StateHealthy {
		t.Errorf("state %s: %s", r.Plan.State, r.Plan.Message)
	}
	if got := setGlobals(r.Plan); !reflect.DeepEqual(got, []SetGlobal{{1, "max_connections", "800"}}) {
		t.Errorf("steps %v, want max_connections set on instance 1 only", got)
	}
}

// healthyWithMaxConnections bootstraps a fake cluster of two whose servers hold
// max_connections = 500, then asks for 800 (and runs before, under the lock, when given).
func healthyWithMaxConnections(t *testing.T, before func(*fakeCluster)) (*fakeCluster, *Loop) {
	c := newFakeCluster(2)
	for _, n := range c.nodes {
		n.vars = map[string]string{"max_connections": "500"}
	}
	l := newFakeLoop(t, c)
	passUntil(t, l, 5, "healthy", healthy)
	c.mu.Lock()
	c.spec.Config = []Setting{{Name: "max_connections", Value: "800", Dynamic: true}}
	if before != nil {
		before(c)
	}
	c.mu.Unlock()
	return c, l
}
