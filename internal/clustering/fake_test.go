package clustering

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/kura-db/kura/internal/engine"
	"github.com/kura-db/kura/internal/gtid"
)

// fakeCluster is an in-memory stand-in for a few servers, a Source and a Sink, precise enough
// to test Act and Loop: replication copies the source's set when both threads run, semi-sync
// and read-only are flags, and any call can be made to fail once.
type fakeCluster struct {
	mu       sync.Mutex
	spec     Spec
	recorded Recorded
	nodes    []*fakeNode
	// failOnce maps "Method@ordinal" to an error returned once.
	failOnce map[string]error
	calls    []string
	events   []EmitEvent
	labels   map[int]string
	reports  []Report
	// bounds is the time left on the context of each method's last call ("Facts@2").
	bounds map[string]time.Duration
}

type fakeNode struct {
	c        *fakeCluster
	ord      int
	up       bool
	frozen   bool
	ro       bool
	executed map[int]int // server id -> highest seq (domain 0)
	source   int         // ordinal of the source, -1 when none
	io, sql  bool
	semiSrc  bool
	wait     int
	semiRep  bool
	// vars are the server's global variables; stores maps a variable to the value the server
	// keeps whatever is set (rounding), refuses to the message of a refused SET GLOBAL.
	vars, stores, refuses map[string]string
}

func newFakeCluster(n int) *fakeCluster {
	c := &fakeCluster{
		spec: Spec{Replicas: n, SemiSync: true, MaxLag: 30 * time.Second, ApplyTimeout: 5 * time.Second,
			ErrantPolicy: ErrantManual, AutoFailover: true},
		recorded: Recorded{Primary: NoPrimary},
		failOnce: map[string]error{},
		labels:   map[int]string{},
	}
	for i := 0; i < n; i++ {
		c.nodes = append(c.nodes, &fakeNode{c: c, ord: i, up: true, ro: true, executed: map[int]int{}, source: -1, semiRep: true})
	}
	return c
}

func (n *fakeNode) host() string { return fmt.Sprintf("fake-%d", n.ord) }

// write commits one transaction on node o, as a client would.
func (c *fakeCluster) write(o int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.nodes[o]
	if !n.up || n.ro {
		return errors.New("read-only or down")
	}
	n.executed[1000+o]++
	if n.semiSrc {
		// The commit returns once a replica received it: model the acknowledgement.
		c.replicate()
	}
	return nil
}

func setOf(m map[int]int) gtid.Set {
	var parts []string
	for sid, seq := range m {
		parts = append(parts, fmt.Sprintf("0-%d-%d", sid, seq))
	}
	sort.Strings(parts)
	return gtid.MustParse(gtid.MariaDB, strings.Join(parts, ","))
}

// sync copies sources to replicas whose threads run (called under the lock).
func (c *fakeCluster) replicate() {
	for range c.nodes {
		for _, n := range c.nodes {
			if n.source < 0 || !n.io || !n.sql || !n.up {
				continue
			}
			src := c.nodes[n.source]
			if !src.up {
				continue
			}
			for sid, seq := range src.executed {
				if seq > n.executed[sid] {
					n.executed[sid] = seq
				}
			}
		}
	}
}

func (c *fakeCluster) call(method string, n *fakeNode) error {
	c.calls = append(c.calls, fmt.Sprintf("%s@%d", method, n.ord))
	key := fmt.Sprintf("%s@%d", method, n.ord)
	if err, ok := c.failOnce[key]; ok {
		delete(c.failOnce, key)
		return err
	}
	if !n.up {
		return errors.New("connection refused")
	}
	return nil
}

func (n *fakeNode) enter(ctx context.Context, method string) error {
	n.c.mu.Lock()
	if dl, ok := ctx.Deadline(); ok {
		if n.c.bounds == nil {
			n.c.bounds = map[string]time.Duration{}
		}
		n.c.bounds[fmt.Sprintf("%s@%d", method, n.ord)] = time.Until(dl)
	}
	frozen := n.frozen
	n.c.mu.Unlock()
	if frozen {
		<-ctx.Done()
		return ctx.Err()
	}
	n.c.mu.Lock()
	defer n.c.mu.Unlock()
	return n.c.call(method, n)
}

func (n *fakeNode) Facts(ctx context.Context) (*SQLFacts, error) {
	if err := n.enter(ctx, "Facts"); err != nil {
		return nil, err
	}
	n.c.mu.Lock()
	defer n.c.mu.Unlock()
	n.c.replicate()
	f := &SQLFacts{ServerID: uint32(1000 + n.ord), ReadOnly: n.ro, Executed: setOf(n.executed),
		SemiSync: SemiSyncFacts{SourceEnabled: n.semiSrc, ReplicaEnabled: n.semiRep, WaitCount: n.wait, AfterSync: true}}
	if n.source >= 0 {
		var lag int64
		l := lagOf(lag)
		f.Replica = &ReplicaFacts{SourceHost: n.c.nodes[n.source].host(), SourcePort: 3306,
			IORunning: n.io && n.c.nodes[n.source].up, IOConnecting: n.io && !n.c.nodes[n.source].up, SQLRunning: n.sql, Lag: l}
		f.Retrieved = f.Executed
	}
	return f, nil
}

func lagOf(s int64) *time.Duration { d := time.Duration(s) * time.Second; return &d }

func (n *fakeNode) Executed(ctx context.Context) (gtid.Set, error) {
	if err := n.enter(ctx, "Executed"); err != nil {
		return gtid.Set{}, err
	}
	n.c.mu.Lock()
	defer n.c.mu.Unlock()
	n.c.replicate()
	return setOf(n.executed), nil
}

func (n *fakeNode) do(ctx context.Context, method string, f func()) error {
	if err := n.enter(ctx, method); err != nil {
		return err
	}
	n.c.mu.Lock()
	defer n.c.mu.Unlock()
	f()
	return nil
}

func (n *fakeNode) StopReceiver(ctx context.Context) error {
	return n.do(ctx, "StopReceiver", func() { n.c.replicate(); n.io = false })
}
func (n *fakeNode) SetReadOnly(ctx context.Context, on bool) error {
	return n.do(ctx, fmt.Sprintf("SetReadOnly(%t)", on), func() { n.ro = on })
}
func (n *fakeNode) Fence(ctx context.Context) error {
	return n.do(ctx, "Fence", func() { n.ro = true })
}
func (n *fakeNode) Shutdown(ctx context.Context) error {
	return n.do(ctx, "Shutdown", func() {})
}
func (n *fakeNode) WaitExecuted(ctx context.Context, set gtid.Set) error {
	return n.do(ctx, "WaitExecuted", func() { n.c.replicate() })
}
func (n *fakeNode) ResetReplication(ctx context.Context) error {
	return n.do(ctx, "ResetReplication", func() { n.source, n.io, n.sql = -1, false, false })
}
func (n *fakeNode) ReplicateFrom(ctx context.Context, host string, port int, semiSync bool) error {
	return n.do(ctx, "ReplicateFrom", func() {
		for _, s := range n.c.nodes {
			if s.host() == host {
				n.source = s.ord
			}
		}
		n.io, n.sql, n.semiRep, n.semiSrc = true, true, semiSync, false
		n.c.replicate()
	})
}
func (n *fakeNode) Variables(ctx context.Context, names []string) (map[string]string, error) {
	out := map[string]string{}
	err := n.do(ctx, "Variables", func() {
		for _, k := range names {
			if v, ok := n.vars[k]; ok {
				out[k] = v
			}
		}
	})
	return out, err
}
func (n *fakeNode) SetGlobal(ctx context.Context, name, value string) error {
	var refused string
	err := n.do(ctx, "SetGlobal("+name+"="+value+")", func() {
		if refused = n.refuses[name]; refused != "" {
			return
		}
		if n.vars == nil {
			n.vars = map[string]string{}
		}
		n.vars[name] = value
		if v, ok := n.stores[name]; ok {
			n.vars[name] = v
		}
	})
	if err == nil && refused != "" {
		return fmt.Errorf("failed to set %s: %w: %s", name, engine.ErrRefused, refused)
	}
	return err
}
func (n *fakeNode) ConfigureSemiSyncSource(ctx context.Context, enabled bool, waitCount int) error {
	return n.do(ctx, "ConfigureSemiSyncSource", func() { n.semiSrc, n.wait = enabled, waitCount })
}

// Source.
func (c *fakeCluster) Snapshot(context.Context) (Snapshot, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := Snapshot{Cluster: "fake", Spec: c.spec, Recorded: c.recorded, Engine: EngineTraits{MaxAckCount: 1}}
	if c.spec.Switchover != nil {
		r := *c.spec.Switchover
		s.Spec.Switchover = &r
	}
	for _, n := range c.nodes {
		s.Targets = append(s.Targets, Target{Ordinal: n.ord, Name: fmt.Sprintf("fake-%d", n.ord), Host: n.host(), Port: 3306,
			Pod: PodFacts{Exists: true, Phase: "Running", Ready: n.up, RoleLabel: c.labels[n.ord]}})
	}
	s.Connect = func(t Target) (SQL, error) { return c.nodes[t.Ordinal], nil }
	return s, nil
}

// Sink.
func (c *fakeCluster) RecordTopologyChange(_ context.Context, t TopologyChange) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err, ok := c.failOnce["RecordTopologyChange"]; ok {
		delete(c.failOnce, "RecordTopologyChange")
		return err
	}
	c.recorded.Primary, c.recorded.Term = t.To, t.Term
	return nil
}
func (c *fakeCluster) RecordSwitchover(_ context.Context, r RecordSwitchover) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.recorded.SwitchoverHandled = r.ID
	return nil
}
func (c *fakeCluster) SetRoleLabel(_ context.Context, t Target, role string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.labels[t.Ordinal] = role
	return nil
}
func (c *fakeCluster) RestartInstance(context.Context, Target, string) error { return nil }

// FenceThroughAgent stands in for the agent beside a server: a frozen node is killed, an
// answering one is made read-only.
func (c *fakeCluster) FenceThroughAgent(_ context.Context, t Target) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.nodes[t.Ordinal]
	if err := c.call("FenceThroughAgent", n); err != nil {
		return "", err
	}
	if n.frozen {
		n.frozen, n.up = false, false
		return "Stopped", nil
	}
	n.ro = true
	return "Fenced", nil
}
func (c *fakeCluster) RecloneInstance(_ context.Context, t, donor Target, reason string, r Reclone) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.call("RecloneInstance", c.nodes[t.Ordinal]); err != nil {
		return err
	}
	if c.recorded.Reclones == nil {
		c.recorded.Reclones = map[int]Reclone{}
	}
	c.recorded.Reclones[t.Ordinal] = r
	return nil
}
func (c *fakeCluster) Event(_ context.Context, e EmitEvent) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.events = append(c.events, e)
}
func (c *fakeCluster) Publish(_ context.Context, r Report) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reports = append(c.reports, r)
	return nil
}
