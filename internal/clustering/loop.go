package clustering

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"

	"github.com/kura-db/kura/internal/engine"
)

// DefaultInterval is the time between passes when nothing asks for one sooner (the operator's
// --clustering-interval).
const DefaultInterval = time.Second

// maxContinues bounds back-to-back passes, so a plan that keeps asking for another pass
// cannot spin.
const maxContinues = 5

// Options tune a Loop; zero values take the defaults.
type Options struct {
	// Interval between passes (DefaultInterval).
	Interval time.Duration
	// ObserveTimeout bounds the query of one instance (DefaultObserveTimeout).
	ObserveTimeout time.Duration
	// StepTimeout bounds each step but the waits (DefaultStepTimeout).
	StepTimeout time.Duration
	// Log receives one line per pass and per failed step, with the operation id.
	Log logr.Logger
	// Now is the clock (time.Now).
	Now func() time.Time
}

// Loop runs observe → decide → act passes for one cluster. Loops share nothing, so one
// cluster's slow pass never delays another's.
type Loop struct {
	src  Source
	sink Sink
	opts Options
	poke chan struct{}

	probes probes
	passes int
	mu     sync.Mutex
	// lastEvents holds the events of the previous pass; an event repeated pass after pass is
	// emitted once.
	lastEvents map[string]bool
	last       Report
	// attempts remembers the SET GLOBAL statements run, by instance name and variable
	// (Observation.Attempts).
	attempts map[string]map[string]Attempt
	// termSeen is the highest term this loop has read or recorded. A snapshot with a lower term
	// is stale (an informer cache that has not caught up with a change just recorded): acting
	// on it could fence the new primary, so the pass is skipped.
	termSeen int64
}

// ErrStaleSnapshot is returned by Pass when the snapshot's term is older than one the loop has
// seen; nothing was decided or done.
var ErrStaleSnapshot = errors.New("stale snapshot")

// NewLoop builds a loop over src and sink.
func NewLoop(src Source, sink Sink, opts Options) *Loop {
	if opts.Interval <= 0 {
		opts.Interval = DefaultInterval
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Loop{src: src, sink: sink, opts: opts, poke: make(chan struct{}, 1), probes: probes{interval: opts.Interval}}
}

// Poke asks for a pass as soon as the current one ends (an instance Pod changed, the spec
// changed). It never blocks.
func (l *Loop) Poke() {
	select {
	case l.poke <- struct{}{}:
	default:
	}
}

// Last returns the report of the last pass.
func (l *Loop) Last() Report {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.last
}

// Run runs passes until ctx is done, then returns ctx's error.
func (l *Loop) Run(ctx context.Context) error {
	continues := 0
	for {
		r, err := l.Pass(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		wait := l.opts.Interval
		switch {
		case err != nil:
		case r.Plan.Continue && r.Result.Err == nil && continues < maxContinues:
			continues++
			wait = 0
		case r.Plan.RequeueAfter > 0 && r.Plan.RequeueAfter < wait:
			wait = r.Plan.RequeueAfter
		}
		if wait > 0 {
			continues = 0
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-l.poke:
				t.Stop()
			case <-t.C:
			}
		}
	}
}

// Pass runs one observe → decide → act pass and publishes its report.
func (l *Loop) Pass(ctx context.Context) (Report, error) {
	l.passes++
	op := operationID(l.passes)
	log := l.opts.Log.WithValues("operation", op)
	snap, err := l.src.Snapshot(ctx)
	if err != nil {
		log.Error(err, "failed to read the cluster's spec and instances")
		return Report{OperationID: op}, fmt.Errorf("failed to read the cluster's spec and instances: %w", err)
	}
	log = log.WithValues("cluster", snap.Cluster)
	if snap.Recorded.Term < l.termSeen {
		log.V(1).Info("skipping a pass on a stale snapshot", "snapshotTerm", snap.Recorded.Term, "termSeen", l.termSeen)
		return Report{OperationID: op}, fmt.Errorf("%w: term %d, but term %d was seen", ErrStaleSnapshot, snap.Recorded.Term, l.termSeen)
	}
	l.termSeen = snap.Recorded.Term
	start := l.opts.Now()
	ins := observe(ctx, snap, l.opts.ObserveTimeout, l.probes.failing())
	observed := l.opts.Now()
	l.probes.track(ins, start)
	l.forgetUnreachable(ins)
	obs := Observation{Cluster: snap.Cluster, Spec: snap.Spec, Recorded: snap.Recorded, Engine: snap.Engine, Instances: ins,
		Attempts: l.currentAttempts(snap), Now: observed}
	plan := Decide(obs)

	targets := map[int]Target{}
	for _, t := range snap.Targets {
		targets[t.Ordinal] = t
	}
	actor := &Actor{Targets: targets, Connect: snap.Connect, Sink: &dedupSink{Sink: l.sink, loop: l, op: op},
		StepTimeout: l.opts.StepTimeout, Now: l.opts.Now}
	l.beginEvents()
	res := actor.Act(ctx, plan)
	l.recordAttempts(ctx, actor, res.Globals)
	l.endEvents()
	if res.Recorded && plan.Term > l.termSeen {
		l.termSeen = plan.Term
	}

	kv := []any{"state", plan.State, "reason", plan.Reason, "primary", plan.Primary, "term", plan.Term,
		"observeMillis", observed.Sub(start).Milliseconds(), "passMillis", l.opts.Now().Sub(start).Milliseconds()}
	if len(plan.Steps) > 0 {
		var steps []string
		for _, s := range res.Steps {
			steps = append(steps, fmt.Sprintf("%s [%dms]", s.Step, s.Duration.Milliseconds()))
		}
		kv = append(kv, "steps", strings.Join(steps, "; "))
	}
	for _, s := range res.Steps {
		if s.Err != nil {
			log.Info("step failed", "step", s.Step, "error", s.Err.Error())
		}
	}
	if res.Err != nil {
		log.Error(res.Err, "plan stopped", kv...)
	} else if len(plan.Steps) > 0 || plan.State != StateHealthy {
		log.Info("pass", append(kv, "message", plan.Message)...)
	} else {
		log.V(1).Info("pass", kv...)
	}
	r := Report{OperationID: op, Plan: plan, Result: res, Observation: obs}
	if err := l.sink.Publish(ctx, r); err != nil {
		log.Error(err, "failed to publish status")
	}
	l.mu.Lock()
	l.last = r
	l.mu.Unlock()
	return r, nil
}

func operationID(n int) string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%d-%s", n, hex.EncodeToString(b))
}

// Event de-duplication across passes.

func (l *Loop) beginEvents() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lastEvents == nil {
		l.lastEvents = map[string]bool{}
	}
	for k := range l.lastEvents {
		if strings.HasPrefix(k, "new:") {
			delete(l.lastEvents, k)
		}
	}
}

func (l *Loop) endEvents() {
	l.mu.Lock()
	defer l.mu.Unlock()
	next := map[string]bool{}
	for k := range l.lastEvents {
		if strings.HasPrefix(k, "new:") {
			next[strings.TrimPrefix(k, "new:")] = true
		}
	}
	l.lastEvents = next
}

// seen records an event of this pass and reports whether the previous pass emitted it too.
func (l *Loop) seen(e EmitEvent) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	// Durations and counts change from pass to pass; the same event with other numbers is
	// the same event.
	k := e.Reason + "\x00" + strings.Map(func(r rune) rune {
		if (r >= '0' && r <= '9') || r == '.' {
			return -1
		}
		return r
	}, e.Message)
	l.lastEvents["new:"+k] = true
	return l.lastEvents[k]
}

type dedupSink struct {
	Sink
	loop *Loop
	op   string
}

func (s *dedupSink) Event(ctx context.Context, e EmitEvent) {
	if s.loop.seen(e) {
		return
	}
	e.Message = fmt.Sprintf("%s (operation %s)", e.Message, s.op)
	s.Sink.Event(ctx, e)
}

// currentAttempts returns a copy of the attempts memory, without the instances and variables
// the snapshot no longer has.
func (l *Loop) currentAttempts(snap Snapshot) map[string]map[string]Attempt {
	l.mu.Lock()
	defer l.mu.Unlock()
	wanted := map[string]bool{}
	for _, s := range snap.Spec.Config {
		wanted[s.Name] = true
	}
	names := map[string]bool{}
	for _, t := range snap.Targets {
		names[t.Name] = true
	}
	out := map[string]map[string]Attempt{}
	for in, vars := range l.attempts {
		if !names[in] {
			delete(l.attempts, in)
			continue
		}
		for v, a := range vars {
			if !wanted[v] {
				delete(vars, v)
				continue
			}
			if out[in] == nil {
				out[in] = map[string]Attempt{}
			}
			out[in][v] = a
		}
	}
	return out
}

// forgetUnreachable drops what was set on instances that did not answer: a server that comes
// back may have restarted, and what it runs with is then what its config file says, which is
// looked at afresh.
func (l *Loop) forgetUnreachable(ins []Instance) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, in := range ins {
		if in.SQL == nil {
			delete(l.attempts, in.Name)
		}
	}
}

// recordAttempts remembers what the SET GLOBAL steps did and emits one event for the values
// applied and one for the values refused. A connection that failed is not remembered: the next
// pass tries again.
func (l *Loop) recordAttempts(ctx context.Context, a *Actor, outcomes []GlobalOutcome) {
	applied, refused := &settingList{}, &settingList{}
	l.mu.Lock()
	if l.attempts == nil {
		l.attempts = map[string]map[string]Attempt{}
	}
	for _, o := range outcomes {
		name := a.Targets[o.Step.Instance].Name
		at := Attempt{Value: o.Step.Value}
		switch {
		case o.Err == nil:
			applied.add(o.Step, name, "")
		case errors.Is(o.Err, engine.ErrRefused):
			at.Refused = o.Err.Error()
			refused.add(o.Step, name, o.Err.Error())
		default:
			continue
		}
		if l.attempts[name] == nil {
			l.attempts[name] = map[string]Attempt{}
		}
		l.attempts[name][o.Step.Name] = at
	}
	l.mu.Unlock()
	sink, _ := a.Sink.(*dedupSink)
	if sink == nil {
		return
	}
	if s := applied.String(); s != "" {
		sink.event(ctx, EventConfigApplied, false, "applied without a restart: %s", s)
	}
	if s := refused.String(); s != "" {
		sink.event(ctx, EventConfigRefused, true, "the server refused SET GLOBAL (the value stays in the config file and takes effect at the next restart if the server accepts it there): %s", s)
	}
}

// settingList groups SET GLOBAL outcomes by variable and value for one event: "max_connections
// = 800 on db-0, db-1". Long values are cut, so that an event stays within the 1 KiB the events
// API allows for its note.
type settingList struct {
	keys []string
	on   map[string][]string
	why  map[string]string
}

func (l *settingList) add(s SetGlobal, instance, why string) {
	v := s.Value
	if len(v) > 40 {
		v = v[:37] + "..."
	}
	k := s.Name + " = " + v + "\x00" + why
	if l.on == nil {
		l.on, l.why = map[string][]string{}, map[string]string{}
	}
	l.why[k] = why
	if _, ok := l.on[k]; !ok {
		l.keys = append(l.keys, k)
	}
	l.on[k] = append(l.on[k], instance)
}

func (l *settingList) String() string {
	parts := make([]string, 0, len(l.keys))
	for _, k := range l.keys {
		part := strings.Split(k, "\x00")[0] + " on " + strings.Join(l.on[k], ", ")
		if w := l.why[k]; w != "" {
			part += ": " + w
		}
		parts = append(parts, part)
	}
	out := strings.Join(parts, "; ")
	if len(out) > 800 {
		out = out[:797] + "..."
	}
	return out
}

// event emits one event of the loop's own (not chosen by Decide).
func (s *dedupSink) event(ctx context.Context, reason string, warning bool, format string, args ...any) {
	s.Event(ctx, EmitEvent{Warning: warning, Reason: reason, Message: fmt.Sprintf(format, args...)})
}
