package clustering

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// DefaultStepTimeout bounds every step but the waits, which carry their own bound.
const DefaultStepTimeout = 5 * time.Second

// StepResult is what one step did.
type StepResult struct {
	Step     string
	Err      error
	Duration time.Duration
}

// Result is what Act did with a plan.
type Result struct {
	Steps []StepResult
	// Err is the failure of the first step that stopped the plan, or nil.
	Err error
	// Recorded is true once a RecordTopologyChange step succeeded.
	Recorded bool
	// WriteUnavailable is the time from fencing the old primary to the new primary accepting
	// writes, when the plan was a switchover that got that far.
	WriteUnavailable time.Duration
	// Globals are the outcomes of the plan's SetGlobal steps.
	Globals []GlobalOutcome
}

// GlobalOutcome is what one SetGlobal step did.
type GlobalOutcome struct {
	Step SetGlobal
	Err  error
}

// Actor runs plans. The zero value is not usable: build it with its fields set.
type Actor struct {
	// Targets are the instances by ordinal, as the observation saw them.
	Targets map[int]Target
	// Connect returns the SQL access to a target.
	Connect func(Target) (SQL, error)
	// Sink carries labels, restarts, clones, records and events.
	Sink Sink
	// StepTimeout bounds each step (DefaultStepTimeout when zero).
	StepTimeout time.Duration
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// Act runs a plan's steps in order (docs/clustering.md, "Act"). A failing step stops the plan
// unless it is Optional; then, if no topology change was recorded yet, the plan's OnFailure
// steps run best effort. Every step is idempotent, so a crash in the middle and a re-run of
// the next pass's plan converge.
func (a *Actor) Act(ctx context.Context, p Plan) Result {
	var res Result
	var fencedAt time.Time
	from, to := -1, -1
	for _, s := range p.Steps {
		if r, ok := s.(RecordTopologyChange); ok {
			from, to = r.From, r.To
		}
	}
	fenced := map[int]error{}
	for i, s := range p.Steps {
		if ctx.Err() != nil {
			res.Err = ctx.Err()
			break
		}
		start := a.now()
		if _, done := fenced[i]; !done && isFence(s) {
			a.fenceAtOnce(ctx, p.Steps, i, fenced)
		}
		err, done := fenced[i]
		if !done {
			err = a.run(ctx, s, "")
		}
		res.Steps = append(res.Steps, StepResult{Step: s.String(), Err: err, Duration: a.now().Sub(start)})
		if g, ok := unwrap(s).(SetGlobal); ok {
			res.Globals = append(res.Globals, GlobalOutcome{Step: g, Err: err})
		}
		if err == nil {
			switch st := s.(type) {
			case RecordTopologyChange:
				res.Recorded = true
			case Fence:
				if st.Instance == from && fencedAt.IsZero() {
					fencedAt = start
				}
			case SetReadOnly:
				if !st.ReadOnly && st.Instance == to && !fencedAt.IsZero() {
					res.WriteUnavailable = a.now().Sub(fencedAt)
				}
			}
			continue
		}
		if _, optional := s.(Optional); optional {
			continue
		}
		res.Err = fmt.Errorf("failed to %s: %w", s, err)
		if !res.Recorded {
			for _, u := range p.OnFailure {
				uerr := a.run(context.WithoutCancel(ctx), u, err.Error())
				res.Steps = append(res.Steps, StepResult{Step: "on failure: " + u.String(), Err: uerr})
			}
		}
		break
	}
	return res
}

// fenceAtOnce runs the first-stage fences that follow one another from step i at once, and
// records their results by step index in out. On MariaDB stopping a receiver connected to a
// frozen primary takes about 2 s, and the old primary's agent may be cut off with it; one
// after the other they added up to the failover time (docs/clustering.md, "Failover").
func (a *Actor) fenceAtOnce(ctx context.Context, steps []Step, i int, out map[int]error) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	for k := i; k < len(steps) && isFence(steps[k]); k++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := a.run(ctx, steps[k], "")
			mu.Lock()
			out[k] = err
			mu.Unlock()
		}()
	}
	wg.Wait()
}

// unwrap returns the step an Optional wraps, or s.
func unwrap(s Step) Step {
	if o, ok := s.(Optional); ok {
		return o.Step
	}
	return s
}

// isFence reports whether a step is one of a failover's first-stage fences: a replica's
// receiver or the old primary through its agent (Optional or not).
func isFence(s Step) bool {
	if o, ok := s.(Optional); ok {
		s = o.Step
	}
	switch s.(type) {
	case FenceIOThreads, FenceThroughAgent:
		return true
	}
	return false
}

func (a *Actor) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

func (a *Actor) target(ordinal int) (Target, error) {
	t, ok := a.Targets[ordinal]
	if !ok {
		return Target{}, fmt.Errorf("instance %d is not in the observation", ordinal)
	}
	return t, nil
}

func (a *Actor) sql(ordinal int) (SQL, error) {
	t, err := a.target(ordinal)
	if err != nil {
		return nil, err
	}
	c, err := a.Connect(t)
	if err != nil {
		return nil, fmt.Errorf("failed to connect to %s: %w", t.Name, err)
	}
	return c, nil
}

// run executes one step; cause is appended to the messages of OnFailure records and events.
func (a *Actor) run(ctx context.Context, s Step, cause string) error {
	base := a.StepTimeout
	if base == 0 {
		base = DefaultStepTimeout
	}
	timeout := base
	switch st := s.(type) {
	case Optional:
		return a.run(ctx, st.Step, cause)
	case WaitApplied:
		timeout = st.Timeout
	case WaitCaughtUp:
		timeout = st.Timeout + base
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return a.runStep(ctx, s, cause)
}

func (a *Actor) runStep(ctx context.Context, s Step, cause string) error {
	switch st := s.(type) {
	case FenceIOThreads:
		return a.withSQL(st.Instance, func(c SQL) error { return c.StopReceiver(ctx) })
	case FenceThroughAgent:
		t, err := a.target(st.Instance)
		if err != nil {
			return err
		}
		_, err = a.Sink.FenceThroughAgent(ctx, t)
		return err
	case SetReadOnly:
		return a.withSQL(st.Instance, func(c SQL) error { return c.SetReadOnly(ctx, st.ReadOnly) })
	case Fence:
		return a.withSQL(st.Instance, func(c SQL) error { return a.fence(ctx, c, st) })
	case WaitApplied:
		return a.withSQL(st.Instance, func(c SQL) error { return c.WaitExecuted(ctx, st.GTIDs) })
	case WaitCaughtUp:
		src, err := a.sql(st.Source)
		if err != nil {
			return err
		}
		set, err := src.Executed(ctx)
		if err != nil {
			return fmt.Errorf("failed to read the executed set of instance %d: %w", st.Source, err)
		}
		return a.withSQL(st.Instance, func(c SQL) error { return c.WaitExecuted(ctx, set) })
	case Promote:
		return a.withSQL(st.Instance, func(c SQL) error { return c.ResetReplication(ctx) })
	case ConfigureReplica:
		src, err := a.target(st.Source)
		if err != nil {
			return err
		}
		return a.withSQL(st.Instance, func(c SQL) error { return c.ReplicateFrom(ctx, src.Host, src.Port, st.SemiSync) })
	case ConfigureSemiSync:
		return a.withSQL(st.Instance, func(c SQL) error { return c.ConfigureSemiSyncSource(ctx, st.Enabled, st.WaitCount) })
	case SetGlobal:
		return a.withSQL(st.Instance, func(c SQL) error { return c.SetGlobal(ctx, st.Name, st.Value) })
	case SetRoleLabel:
		t, err := a.target(st.Instance)
		if err != nil {
			return err
		}
		return a.Sink.SetRoleLabel(ctx, t, st.Role)
	case RestartInstance:
		t, err := a.target(st.Instance)
		if err != nil {
			return err
		}
		return a.Sink.RestartInstance(ctx, t, st.Reason)
	case RecloneInstance:
		t, err := a.target(st.Instance)
		if err != nil {
			return err
		}
		d, err := a.target(st.Donor)
		if err != nil {
			return err
		}
		return a.Sink.RecloneInstance(ctx, t, d, st.Reason, st.Record)
	case RecordTopologyChange:
		c := TopologyChange{Term: st.Term, Kind: st.Kind, From: st.From, To: st.To, Reason: st.Reason, Time: a.now(),
			MayLoseAcknowledged: st.MayLoseAcknowledged}
		if t, ok := a.Targets[st.From]; ok {
			c.FromName = t.Name
		}
		if t, ok := a.Targets[st.To]; ok {
			c.ToName = t.Name
		}
		return a.Sink.RecordTopologyChange(ctx, c)
	case RecordSwitchover:
		if cause != "" {
			st.Message += ": " + cause
		}
		return a.Sink.RecordSwitchover(ctx, st)
	case EmitEvent:
		if cause != "" {
			st.Message += ": " + cause
		}
		a.Sink.Event(ctx, st)
		return nil
	}
	return fmt.Errorf("unknown step %T", s)
}

// fence runs a Fence step: the fence gets the step's time but the last second, which a stuck
// fence with StopIfStuck spends on shutting the server down.
func (a *Actor) fence(ctx context.Context, c SQL, st Fence) error {
	fctx := ctx
	if d, ok := ctx.Deadline(); ok && st.StopIfStuck {
		var cancel context.CancelFunc
		fctx, cancel = context.WithDeadline(ctx, d.Add(-time.Second))
		defer cancel()
	}
	err := c.Fence(fctx)
	if err == nil || !st.StopIfStuck {
		return err
	}
	if serr := c.Shutdown(ctx); serr != nil {
		return errors.Join(err, serr)
	}
	return fmt.Errorf("stopped the server, which could not be fenced: %w", err)
}

func (a *Actor) withSQL(ordinal int, f func(SQL) error) error {
	c, err := a.sql(ordinal)
	if err != nil {
		return err
	}
	if err := f(c); err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("timed out: %w", err)
		}
		return err
	}
	return nil
}
