package clustering

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/internal/agent"
	"github.com/kura-db/kura/internal/engine"
	"github.com/kura-db/kura/internal/enginetest"
	"github.com/kura-db/kura/internal/gtid"
)

// The engine tier: real mariadbd processes on loopback, driven by the same Loop, Observe,
// Decide and Act the operator runs. Pod facts are synthesised: a process that runs is a Pod
// that exists.

const (
	adminPassword = enginetest.OperatorPassword
	replPassword  = enginetest.ReplicationPassword
	appUser       = "tester"
	appPassword   = "tester-pw"
)

// rig is a cluster of real servers (internal/enginetest) plus an in-memory Source and Sink.
type rig struct {
	t       testing.TB
	servers []*enginetest.Instance
	mu      sync.Mutex
	spec    Spec
	rec     Recorded
	labels  map[int]string
	events  []EmitEvent
	last    Report
	sqls    map[int]*EngineSQL
	loop    *Loop
	// agents stand beside the servers when withAgents was called (the real agent code that
	// fences a server locally or kills it when frozen).
	agents map[int]*agent.SelfFence
	// onRecord, when set, runs as a topology change is recorded (before the new primary
	// becomes writable).
	onRecord func(TopologyChange)
	// revisions are what each instance runs and desired what they should (a Pod template's
	// config hash); a restart brings an instance to desired.
	revisions map[int]string
	desired   string
	restarts  map[int]int
}

// newRig starts n servers and a loop over them (not yet running).
func newRig(t testing.TB, n int) *rig {
	c := &kurav1alpha1.MySQLCluster{ObjectMeta: metav1.ObjectMeta{Name: "it", Namespace: "test"}}
	c.Spec.Engine = kurav1alpha1.EngineMariaDB
	c.Spec.Replicas = int32(n)
	if os.Getenv("KURA_BENCH_TLS") == "off" {
		// The benchmarks' comparison run (docs/benchmarks.md, "TLS"): servers, replication and
		// the loop's connections in clear text.
		off := false
		c.Spec.TLS.Enabled = &off
	}
	cl := enginetest.Start(t, n, enginetest.Options{Cluster: c})
	r := &rig{t: t, servers: cl.Instances, labels: map[int]string{}, sqls: map[int]*EngineSQL{}, rec: Recorded{Primary: NoPrimary},
		spec: Spec{Replicas: n, SemiSync: true, MaxLag: 30 * time.Second, FailoverGrace: 3 * time.Second, DownGrace: time.Second,
			ApplyTimeout: 60 * time.Second, ErrantPolicy: ErrantManual, AutoFailover: true}}
	t.Cleanup(func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, e := range r.sqls {
			_ = e.Instance.Close()
		}
	})
	r.loop = NewLoop(r, r, Options{Log: testr.NewWithInterface(r.t, testr.Options{Verbosity: 0})})
	return r
}

// kill SIGKILLs an instance (a crash) and waits for it to exit.
func (r *rig) kill(o int) { r.servers[o].Kill() }

// restart starts an instance again (killing it first if it runs) and waits until it serves.
func (r *rig) restart(o int) {
	if r.servers[o].Running() {
		r.servers[o].Kill()
	}
	r.servers[o].Restart()
}

// db opens a client connection pool to an instance as the given account.
func (r *rig) db(o int, user, password string, timeout time.Duration) *sql.DB {
	ep := r.servers[o].Endpoint(user, password)
	db, err := sql.Open("mysql", engine.DSN(ep, engine.Options{ConnectTimeout: timeout, ReadTimeout: timeout, WriteTimeout: timeout}))
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { _ = db.Close() })
	return db
}

// Source.
func (r *rig) Snapshot(context.Context) (Snapshot, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	snap := Snapshot{Cluster: "it", Spec: r.spec, Recorded: r.rec, Engine: Traits(kurav1alpha1.EngineMariaDB)}
	if r.spec.Switchover != nil {
		sw := *r.spec.Switchover
		snap.Spec.Switchover = &sw
	}
	for _, s := range r.servers {
		snap.Targets = append(snap.Targets, Target{Ordinal: s.Index, Name: fmt.Sprintf("it-%d", s.Index), Host: s.Host, Port: s.Port,
			Pod:      PodFacts{Exists: true, Phase: "Running", Ready: true, RoleLabel: r.labels[s.Index]},
			Revision: r.revisions[s.Index], DesiredRevision: r.desired})
	}
	snap.Connect = r.connect
	return snap, nil
}

func (r *rig) connect(t Target) (SQL, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e, ok := r.sqls[t.Ordinal]; ok {
		return e, nil
	}
	inst, err := engine.Open(kurav1alpha1.EngineMariaDB, engine.Endpoint{Host: t.Host, Port: t.Port, User: engine.OperatorUser, Password: adminPassword},
		engine.Options{ConnectTimeout: 500 * time.Millisecond, ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second})
	if err != nil {
		return nil, err
	}
	e := &EngineSQL{Instance: inst, ReplicationUser: engine.ReplicationUser, ReplicationPassword: replPassword}
	r.sqls[t.Ordinal] = e
	return e, nil
}

// Sink.
func (r *rig) RecordTopologyChange(_ context.Context, c TopologyChange) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.onRecord != nil {
		r.onRecord(c)
	}
	if c.Term > r.rec.Term || r.rec.Primary == NoPrimary {
		r.rec.Primary, r.rec.Term = c.To, c.Term
	}
	return nil
}
func (r *rig) RecordSwitchover(_ context.Context, s RecordSwitchover) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rec.SwitchoverHandled = s.ID
	return nil
}
func (r *rig) SetRoleLabel(_ context.Context, t Target, role string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.labels[t.Ordinal] = role
	return nil
}
func (r *rig) RestartInstance(_ context.Context, t Target, _ string) error {
	r.mu.Lock()
	if r.restarts == nil {
		r.restarts = map[int]int{}
	}
	r.restarts[t.Ordinal]++
	if r.revisions != nil {
		r.revisions[t.Ordinal] = r.desired // a new Pod runs the current template
	}
	r.mu.Unlock()
	go r.restart(t.Ordinal)
	return nil
}
func (r *rig) FenceThroughAgent(ctx context.Context, t Target) (string, error) {
	r.mu.Lock()
	a := r.agents[t.Ordinal]
	r.mu.Unlock()
	if a == nil {
		return "", fmt.Errorf("no agent runs beside %s on this rig", t.Name)
	}
	res, err := a.FenceOrStop(ctx)
	return res.Outcome, err
}

// withAgents runs an agent's guard beside every server: it watches its server as the agent in
// the Pod does (every 100 ms) and serves FenceThroughAgent. It never fences by itself.
func (r *rig) withAgents() {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	r.agents = map[int]*agent.SelfFence{}
	for _, s := range r.servers {
		opts := engine.Options{ConnectTimeout: 300 * time.Millisecond, ReadTimeout: time.Second, WriteTimeout: time.Second}
		observer, err := sql.Open("mysql", engine.DSN(s.Endpoint(engine.AgentUser, enginetest.AgentPassword), opts))
		if err != nil {
			r.t.Fatal(err)
		}
		fencer := s.Open(opts)
		a := &agent.SelfFence{Observer: observer, Fencer: fencer, OperatorUser: engine.OperatorUser, Grace: time.Hour,
			Interval: 100 * time.Millisecond, PidFile: filepath.Join(s.Dir, "mysqld.pid")}
		r.agents[s.Index] = a
		wg.Add(1)
		go func() { defer wg.Done(); a.Run(ctx) }()
		r.t.Cleanup(func() { _ = observer.Close(); _ = fencer.Close() })
	}
	r.t.Cleanup(func() { cancel(); wg.Wait() })
}

func (r *rig) RecloneInstance(context.Context, Target, Target, string, Reclone) error {
	return fmt.Errorf("failed to reclone: not supported on the engine tier")
}
func (r *rig) Event(_ context.Context, e EmitEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}
func (r *rig) Publish(_ context.Context, rep Report) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.last = rep
	// Status memory: errant sets are what the operator keeps in status.instances.
	r.rec.Errant = nil
	for _, st := range rep.Plan.Instances {
		if !st.Errant.IsEmpty() {
			if r.rec.Errant == nil {
				r.rec.Errant = map[int]gtid.Set{}
			}
			r.rec.Errant[st.Ordinal] = st.Errant
		}
	}
	return nil
}

func (r *rig) recorded() Recorded {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.rec
}

func (r *rig) report() Report {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last
}

// run starts the loop in the background until the test ends.
func (r *rig) run() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = r.loop.Run(ctx); close(done) }()
	r.t.Cleanup(func() { cancel(); <-done })
}

// until polls cond until it holds or the deadline passes.
func (r *rig) until(what string, d time.Duration, cond func() bool) {
	r.t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			rep := r.report()
			r.t.Fatalf("not %s within %s: state %s/%s: %s", what, d, rep.Plan.State, rep.Plan.Reason, rep.Plan.Message)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (r *rig) healthy() bool {
	rep := r.report()
	return rep.Plan.State == StateHealthy && len(rep.Plan.Steps) == 0
}

// setupApp creates an application account (no SUPER, no READ ONLY ADMIN: read_only stops it)
// and a table, on the primary.
func (r *rig) setupApp() {
	p := r.recorded().Primary
	db := r.db(p, engine.OperatorUser, adminPassword, 5*time.Second)
	for _, q := range []string{
		"CREATE DATABASE IF NOT EXISTS app",
		"CREATE TABLE IF NOT EXISTS app.t (id BIGINT PRIMARY KEY, at TIMESTAMP(6) DEFAULT CURRENT_TIMESTAMP(6))",
		fmt.Sprintf("CREATE USER IF NOT EXISTS '%s'@'%%' IDENTIFIED BY '%s'", appUser, appPassword),
		fmt.Sprintf("GRANT SELECT, INSERT ON app.* TO '%s'@'%%'", appUser),
	} {
		if _, err := db.Exec(q); err != nil {
			r.t.Fatalf("%s: %v", q, err)
		}
	}
}
