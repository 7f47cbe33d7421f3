package clustering

import (
	"fmt"
	"time"
)

// switchoverRequested handles a pending spec.switchover request (rule 11). It reports whether
// the plan is now a switchover; a refused or trivial request leaves the rest of the pass to the
// usual maintenance.
func (d *decider) switchoverRequested(primary Instance, verdicts map[int]replicaVerdict) bool {
	req := d.o.Spec.Switchover
	if req == nil || req.ID == d.o.Recorded.SwitchoverHandled {
		return false
	}
	if req.Target == primary.Ordinal {
		msg := fmt.Sprintf("%s is already the primary", primary.Name)
		d.add(RecordSwitchover{ID: req.ID, Target: req.Target, Phase: SwitchoverCompleted, Message: msg})
		d.event(false, EventSwitchoverCompleted, "switchover %s: %s", req.ID, msg)
		return false
	}
	if problem := d.targetProblem(req.Target, verdicts); problem != "" {
		msg := fmt.Sprintf("refused: target %s %s", d.name(req.Target), problem)
		d.add(RecordSwitchover{ID: req.ID, Target: req.Target, Phase: SwitchoverRefused, Message: msg})
		d.event(true, EventSwitchoverRefused, "switchover %s %s", req.ID, msg)
		return false
	}
	d.switchover(primary, req.Target, fmt.Sprintf("requested by spec.switchover (id %s)", req.ID), verdicts, req)
	return true
}

// targetProblem says why an ordinal cannot become the primary by switchover, or "".
func (d *decider) targetProblem(target int, verdicts map[int]replicaVerdict) string {
	v, ok := verdicts[target]
	switch {
	case target >= d.o.Spec.Replicas || target < 0:
		return fmt.Sprintf("is not an instance of the cluster (spec.replicas %d)", d.o.Spec.Replicas)
	case !ok:
		return "does not exist"
	case !v.status.Healthy:
		return "is not a healthy replica: " + v.status.Reason
	}
	return ""
}

// plannedSwitchover moves the primary away when its Pod is being deleted or its ordinal is
// being scaled away (rules 11 and 15).
func (d *decider) plannedSwitchover(primary Instance, verdicts map[int]replicaVerdict) bool {
	var reason string
	switch {
	case primary.Pod.Terminating:
		reason = "the primary's Pod is being deleted"
	case primary.Ordinal >= d.o.Spec.Replicas:
		reason = fmt.Sprintf("scale-down to %d instances removes the primary's ordinal", d.o.Spec.Replicas)
	default:
		return false
	}
	t := d.bestTarget(verdicts, false)
	if t < 0 {
		d.problems = append(d.problems, reason+", but no healthy replica can take over")
		return false
	}
	d.switchover(primary, t, reason, verdicts, nil)
	return true
}

// rollPrimary switches over from an outdated primary once every replica runs the desired
// revision (rule 14); the old primary is restarted as a replica in a later pass.
func (d *decider) rollPrimary(primary Instance, verdicts map[int]replicaVerdict) {
	if !primary.outdated() {
		return
	}
	t := d.bestTarget(verdicts, true)
	if t < 0 {
		d.state(StateDegraded, "RollingChange", "primary %s runs an outdated revision and no up-to-date healthy replica can take over", primary.Name)
		return
	}
	d.switchover(primary, t, fmt.Sprintf("rolling change to revision %s", primary.DesiredRevision), verdicts, nil)
}

// bestTarget picks the healthy replica with the lowest lag, then the lowest ordinal; with
// upToDate, only replicas running their desired revision. -1 when there is none.
func (d *decider) bestTarget(verdicts map[int]replicaVerdict, upToDate bool) int {
	best, bestLag := -1, time.Duration(0)
	for _, in := range d.o.Instances {
		v, ok := verdicts[in.Ordinal]
		if !ok || d.targetProblem(in.Ordinal, verdicts) != "" || in.Pod.Terminating || (upToDate && in.outdated()) {
			continue
		}
		lag := time.Duration(0)
		if v.status.Lag != nil {
			lag = *v.status.Lag
		}
		if best < 0 || lag < bestLag {
			best, bestLag = in.Ordinal, lag
		}
	}
	return best
}

// switchover plans rule 11: fence the primary, let the target catch up, promote it, record
// the new term, repoint the others, the old primary last, and only then accept writes.
func (d *decider) switchover(primary Instance, target int, reason string, verdicts map[int]replicaVerdict, req *SwitchoverRequest) {
	old, term := primary.Ordinal, d.o.Recorded.Term+1
	d.state(StateSwitching, "Switchover", "switching over from %s to %s: %s", primary.Name, d.name(target), reason)
	d.p.Primary, d.p.Term, d.labelsSet = target, term, true

	var repoint []Step
	for _, in := range d.o.Instances {
		v, ok := verdicts[in.Ordinal]
		if !ok || in.Ordinal == target || in.SQL == nil || v.status.Role == RoleErrant || v.status.Role == RoleCloning {
			continue
		}
		repoint = append(repoint, Optional{ConfigureReplica{Instance: in.Ordinal, Source: target, SemiSync: d.o.Spec.SemiSync}})
	}
	d.event(false, EventSwitchoverStarted, "switching over from %s to %s: %s", primary.Name, d.name(target), reason)
	d.add(
		Optional{SetRoleLabel{Instance: old, Role: LabelNone}},
		Fence{Instance: old},
		WaitCaughtUp{Instance: target, Source: old, Timeout: d.o.Spec.ApplyTimeout},
		Promote{Instance: target},
		RecordTopologyChange{Term: term, Kind: KindSwitchover, From: old, To: target, Reason: reason},
	)
	if req != nil {
		d.add(RecordSwitchover{ID: req.ID, Target: req.Target, Phase: SwitchoverCompleted,
			Message: fmt.Sprintf("%s is the primary (term %d)", d.name(target), term)})
	}
	d.add(repoint...)
	d.add(Optional{ConfigureReplica{Instance: old, Source: target, SemiSync: d.o.Spec.SemiSync}})
	tgt, _ := d.o.instance(target)
	d.add(d.configureSemiSync(tgt, d.desiredAcks(), true),
		SetReadOnly{Instance: target, ReadOnly: false},
		Optional{SetRoleLabel{Instance: target, Role: LabelPrimary}})
	d.event(false, EventSwitchoverCompleted, "%s is the primary (term %d), was %s: %s", d.name(target), term, primary.Name, reason)

	d.p.OnFailure = []Step{SetReadOnly{Instance: old, ReadOnly: false}, Optional{SetRoleLabel{Instance: old, Role: LabelPrimary}}}
	if req != nil {
		d.p.OnFailure = append(d.p.OnFailure, RecordSwitchover{ID: req.ID, Target: req.Target, Phase: SwitchoverRefused,
			Message: fmt.Sprintf("switchover to %s did not complete; %s stays the primary", d.name(target), primary.Name)})
	}
	d.p.OnFailure = append(d.p.OnFailure, EmitEvent{Warning: true, Reason: EventSwitchoverRefused,
		Message: fmt.Sprintf("switchover to %s did not complete; %s stays the primary", d.name(target), primary.Name)})
}
