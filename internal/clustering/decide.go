package clustering

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/kura-db/kura/internal/gtid"
)

// Decide is the pure core of the loop: from one Observation it derives the cluster's State,
// status and the ordered Steps that move the topology toward the spec. It does no I/O and never
// changes obs. The order of the predicates below is the state table of docs/clustering.md,
// "States".
//
// A plan may do only the first stage of a change (fencing before a failover, fencing a
// returning old primary before it rejoins); it then sets Continue and the next pass, on a fresh
// observation, does the rest. Which steps finish within one pass is listed in
// docs/clustering.md, "Passes".
func Decide(obs Observation) Plan {
	d := &decider{o: obs, p: Plan{Primary: obs.Recorded.Primary, Term: obs.Recorded.Term}}
	d.p.Reclones = d.currentReclones()
	if w := obs.Recorded.Async; w != nil {
		c := *w
		d.p.Async = &c
	}
	switch obs.Recorded.Primary {
	case NoPrimary:
		d.bootstrap()
	default:
		primary, ok := obs.instance(obs.Recorded.Primary)
		if ok && primary.reachable() {
			d.primaryReachable(primary)
		} else {
			d.primaryUnreachable(primary, ok)
		}
	}
	if !d.configDone {
		d.config(false)
	}
	if obs.Spec.Paused {
		d.pause()
	}
	d.finish()
	return d.p
}

// decider accumulates one plan.
type decider struct {
	o Observation
	p Plan
	// labelsSet is true once the plan sets role labels itself (failover, switchover).
	labelsSet bool
	// problems are the reasons the cluster is not Healthy, for the Degraded condition.
	problems []string
	// configDone is true once config ran.
	configDone bool
}

func (d *decider) add(steps ...Step) { d.p.Steps = append(d.p.Steps, steps...) }

func (d *decider) event(warning bool, reason, format string, args ...any) {
	d.add(EmitEvent{Warning: warning, Reason: reason, Message: fmt.Sprintf(format, args...)})
}

func (d *decider) state(s State, reason, format string, args ...any) {
	d.p.State, d.p.Reason, d.p.Message = s, reason, fmt.Sprintf(format, args...)
}

func (d *decider) name(ordinal int) string {
	if in, ok := d.o.instance(ordinal); ok && in.Name != "" {
		return in.Name
	}
	return fmt.Sprintf("%s-%d", d.o.Cluster, ordinal)
}

// desiredAcks is the number of acknowledgements a primary waits for: a majority of the
// replicas that are not being cloned (floor(N/2), at least one), capped by what the engine can
// do (docs/clustering.md, "Acknowledgements"). It never follows the replicas that can
// acknowledge now: when fewer can, writes wait rather than go asynchronous (rule 15). Only the
// spec turns semi-sync off.
func (d *decider) desiredAcks() int {
	if !d.o.Spec.SemiSync || d.o.Spec.Replicas <= 1 {
		return 0
	}
	replicas := 0
	for o := 0; o < d.o.Spec.Replicas; o++ {
		if o == d.o.Recorded.Primary {
			continue
		}
		if in, ok := d.o.instance(o); ok && in.Cloning {
			continue // a new replica does not count until it has its data (rule 15)
		}
		replicas++
	}
	k := max(replicas/2, 1)
	if m := d.o.Engine.MaxAckCount; m > 0 && k > m {
		k = m
	}
	return k
}

// configureSemiSync returns the step that sets the semi-sync source role of a primary, or nil
// when it already is as wanted.
func (d *decider) configureSemiSync(primary Instance, waitCount int, force bool) Step {
	want := ConfigureSemiSync{Instance: primary.Ordinal, Enabled: waitCount > 0, WaitCount: waitCount}
	if force || primary.SQL == nil {
		return want
	}
	s := primary.SQL.SemiSync
	switch {
	case s.SourceEnabled != want.Enabled:
		return want
	case want.Enabled && !s.AfterSync:
		return want
	case want.Enabled && d.o.Engine.MaxAckCount != 1 && s.WaitCount != waitCount:
		return want
	}
	return nil
}

// fenceWritable fences every reachable instance that accepts writes and is not the primary
// (rule 3). It reports whether it fenced one.
func (d *decider) fenceWritable(primary int) bool {
	fenced := false
	for _, in := range d.o.Instances {
		if in.Ordinal == primary || in.SQL == nil || in.SQL.ReadOnly {
			continue
		}
		d.add(Fence{Instance: in.Ordinal, StopIfStuck: true})
		d.event(true, EventInstanceFenced, "%s accepted writes but is not the primary; made it read-only and closed its client connections", in.Name)
		d.problems = append(d.problems, fmt.Sprintf("%s was writable and not the primary (fenced)", in.Name))
		fenced = true
	}
	return fenced
}

// pause keeps the assessment and drops every action (spec.paused).
func (d *decider) pause() {
	var would []string
	for _, s := range d.p.Steps {
		if _, ok := s.(EmitEvent); !ok {
			would = append(would, s.String())
		}
	}
	msg := "spec.paused is set: observing only"
	if len(would) > 0 {
		msg += "; would run " + strings.Join(would, ", ")
	}
	if d.p.Message != "" {
		msg += " (" + string(d.p.State) + ": " + d.p.Message + ")"
	}
	d.p.State, d.p.Reason, d.p.Message = StatePaused, "Paused", msg
	d.p.Steps, d.p.OnFailure, d.p.Continue = nil, nil, false
	d.p.Primary, d.p.Term = d.o.Recorded.Primary, d.o.Recorded.Term
	d.p.Reclones = d.currentReclones() // a re-clone it would start is not one that ran
	d.labelsSet = true
}

// finish adds role labels, MinInstances and conditions.
func (d *decider) finish() {
	sort.Slice(d.p.Instances, func(i, j int) bool { return d.p.Instances[i].Ordinal < d.p.Instances[j].Ordinal })
	// An instance that does not answer keeps the executed set it last reported, so a primary
	// that returns with less than it had is recognised (primaryBehind).
	for i, st := range d.p.Instances {
		if rec, ok := d.o.Recorded.Executed[st.Ordinal]; ok && !st.Reachable && st.Executed.IsEmpty() {
			d.p.Instances[i].Executed = rec
		}
	}
	if !d.labelsSet {
		var toNone, toOther []Step
		for _, st := range d.p.Instances {
			in, _ := d.o.instance(st.Ordinal)
			if !in.Pod.Exists || in.Pod.RoleLabel == st.Label {
				continue
			}
			step := Optional{SetRoleLabel{Instance: st.Ordinal, Role: st.Label}}
			if st.Label == LabelNone {
				toNone = append(toNone, step)
			} else {
				toOther = append(toOther, step)
			}
		}
		// Instances leave the Services before anything else happens and join them last, so the
		// labels never route to two primaries or to a replica about to restart.
		d.p.Steps = append(toNone, d.p.Steps...)
		d.add(toOther...)
	}
	d.p.MinInstances = d.o.Spec.Replicas
	if d.o.Recorded.Primary >= d.p.MinInstances {
		d.p.MinInstances = d.o.Recorded.Primary + 1
	}
	if d.p.Primary >= d.p.MinInstances {
		d.p.MinInstances = d.p.Primary + 1
	}
	for _, in := range d.o.Instances {
		if in.Ordinal < d.p.MinInstances || !in.Pod.Exists {
			continue
		}
		if why := d.mayHoldOnlyCopy(in); why != "" {
			d.p.MinInstances = in.Ordinal + 1
			for i := range d.p.Instances {
				if d.p.Instances[i].Ordinal == in.Ordinal {
					d.p.Instances[i].Reason = "beyond spec.replicas, kept until it can be removed safely: " + why
				}
			}
		}
	}
	d.conditions()
}

func (d *decider) conditions() {
	avail := Condition{Type: ConditionAvailable, Status: ConditionFalse, Reason: d.p.Reason, Message: d.p.Message}
	if primary, ok := d.o.instance(d.o.Recorded.Primary); ok && primary.SQL != nil && !primary.SQL.ReadOnly {
		avail = Condition{Type: ConditionAvailable, Status: ConditionTrue, Reason: "PrimaryWritable",
			Message: fmt.Sprintf("%s accepts writes", primary.Name)}
	}
	healthy := Condition{Type: ConditionHealthy, Status: ConditionFalse, Reason: d.p.Reason, Message: d.p.Message}
	degraded := Condition{Type: ConditionDegraded, Status: ConditionFalse, Reason: d.p.Reason, Message: d.p.Message}
	switch d.p.State {
	case StateHealthy:
		healthy.Status = ConditionTrue
	case StateDegraded, StateFailed, StateLost:
		degraded.Status = ConditionTrue
	case StatePaused:
		healthy.Status, degraded.Status = ConditionUnknown, ConditionUnknown
	}
	d.p.Conditions = []Condition{avail, healthy, degraded}
}

// mayHoldOnlyCopy says why an instance beyond spec.replicas must not be removed yet, or "" (rule
// 15): it may hold the only copy of an acknowledged write. It may go once its receiver is
// stopped (it acknowledges nothing more) and a replica that stays holds everything it holds
// of the primary's transactions; an instance that cannot be observed may go once a replica
// that stays holds everything the reachable primary executed.
func (d *decider) mayHoldOnlyCopy(in Instance) string {
	primary, ok := d.o.instance(d.o.Recorded.Primary)
	if !ok || primary.SQL == nil {
		return "the primary cannot be observed"
	}
	var need gtid.Set
	switch {
	case in.SQL == nil:
		need = primary.SQL.Executed
	case in.SQL.Replica != nil && (in.SQL.Replica.IORunning || in.SQL.Replica.IOConnecting):
		return "its replication receiver still runs (it may acknowledge writes)"
	default:
		held := in.SQL.holds()
		need = held.Subtract(held.Subtract(primary.SQL.Executed)) // errant transactions are not the cluster's
	}
	for _, r := range d.o.Instances {
		if r.Ordinal >= d.o.Spec.Replicas || r.Ordinal == primary.Ordinal || r.SQL == nil || r.Cloning || d.recordedErrant(r.Ordinal) != nil {
			continue
		}
		if r.SQL.holds().Contains(need) {
			return ""
		}
	}
	return fmt.Sprintf("no replica that stays holds %s yet", need)
}

// fmtDuration prints a duration rounded for humans.
func fmtDuration(t time.Duration) string {
	if t >= time.Second {
		return t.Round(100 * time.Millisecond).String()
	}
	return t.Round(time.Millisecond).String()
}
