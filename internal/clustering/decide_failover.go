package clustering

import (
	"fmt"
	"strings"
	"time"

	"github.com/kura-db/kura/internal/gtid"
)

// primaryUnreachable handles a recorded primary the operator cannot reach: wait out the grace
// period, then Failed (fail over, rules 7-9) or Lost (too few instances observable).
func (d *decider) primaryUnreachable(primary Instance, known bool) {
	old := d.o.Recorded.Primary
	down := primary.UnreachableFor
	why := unreachableReason(primary)
	if !known {
		down, why = d.o.Spec.FailoverGrace, "has no instance"
	}
	d.assessWithoutPrimary(old, why)
	d.fenceWritable(old)

	if known && accessDenied(primary) {
		// The server answers but refuses the operator's password: the Secret was changed by
		// hand. The primary is not down, so this is never a reason to fail over.
		d.state(StateDegraded, "CredentialsRejected", "%s refuses the operator's account (%s): the password in the cluster's credentials Secret (key operator-password) no longer matches the servers; put the original password back in the Secret (the servers keep theirs), nothing is changed meanwhile",
			d.name(old), primary.Error)
		d.labelsSet = true
		for i := range d.p.Instances {
			if in, ok := d.o.instance(d.p.Instances[i].Ordinal); ok && in.Pod.RoleLabel != "" {
				d.p.Instances[i].Label = in.Pod.RoleLabel
			}
		}
		return
	}

	grace, graceWhy := d.o.Spec.FailoverGrace, "failoverGracePeriod"
	if dg := d.o.Spec.DownGrace; known && dg > 0 && dg < grace && serverDown(primary) {
		grace, graceWhy = dg, "serverDownGracePeriod: the Pod's address answers but no server listens"
	}
	if down < grace {
		d.state(StateDegraded, "PrimaryUnreachable", "primary %s %s; failing over after %s (%s)",
			d.name(old), why, grace, graceWhy)
		d.p.RequeueAfter = max(grace-down, 50*time.Millisecond)
		// Keep the labels as they are until the grace period is over.
		d.labelsSet = true
		for i := range d.p.Instances {
			if in, ok := d.o.instance(d.p.Instances[i].Ordinal); ok && in.Pod.RoleLabel != "" {
				d.p.Instances[i].Label = in.Pod.RoleLabel
			}
		}
		return
	}
	d.replacePrimary(old, why)
}

// replacePrimary fails over from the recorded primary old, which is unreachable past the grace
// period or must not serve again (why says which): refuse when that is unsafe or not allowed,
// else stop every receiver (stage 1) and promote the replica holding everything (stage 2).
func (d *decider) replacePrimary(old int, why string) {
	if d.o.Spec.Replicas <= 1 {
		d.state(StateFailed, "SingleInstance", "primary %s %s; a single-instance cluster has no replica to fail over to", d.name(old), why)
		d.labelsSet = true
		return
	}
	if missing := d.unobservableReplicas(old); len(missing) >= max(d.desiredAcks(), 1) {
		d.state(StateLost, "TooFewInstances", "primary %s %s and %s cannot be observed: a replica holding acknowledged writes may be among them, so nothing is changed",
			d.name(old), why, strings.Join(missing, ", "))
		d.event(true, EventClusterLost, "%s", d.p.Message)
		d.labelsSet = true
		return
	}
	req := d.o.Spec.Switchover
	if req != nil && req.ID == d.o.Recorded.SwitchoverHandled {
		req = nil
	}
	async := d.o.Recorded.Async != nil || !d.o.Spec.SemiSync
	if async && req == nil {
		since := "unknown"
		if w := d.o.Recorded.Async; w != nil {
			since = fmt.Sprintf("%q", w.Since.String())
		}
		d.state(StateFailed, "AsynchronousWindow", "primary %s %s; writes after %s were acknowledged without waiting for a replica (semi-synchronous replication off), so no replica provably holds them all: automatic failover is refused; request a switchover to a replica to fail over by hand and accept the loss",
			d.name(old), why, since)
		d.event(true, EventFailoverRefused, "%s", d.p.Message)
		d.labelsSet = true
		return
	}
	if !d.o.Spec.AutoFailover && req == nil {
		d.state(StateFailed, "AutoFailoverDisabled", "primary %s %s; automatic failover is off: request a switchover to a replica to fail over by hand",
			d.name(old), why)
		d.labelsSet = true
		return
	}
	reason := fmt.Sprintf("primary %s %s", d.name(old), why)
	if req != nil {
		reason = fmt.Sprintf("%s; requested by spec.switchover (id %s)", reason, req.ID)
	}
	// Stage 1 (rule 7): stop every receiver so the old primary, if only cut off from us, can
	// collect no acknowledgement and so commit nothing more. The candidate is chosen on the
	// next pass, from sets that can no longer grow.
	var fences []Step
	for _, in := range d.o.Instances {
		if in.Ordinal != old && in.SQL != nil && in.SQL.Replica != nil && (in.SQL.Replica.IORunning || in.SQL.Replica.IOConnecting) {
			fences = append(fences, FenceIOThreads{Instance: in.Ordinal})
		}
	}
	if len(fences) > 0 {
		d.state(StateFailed, "Fencing", "%s: stopping the replicas' receivers before choosing a new primary", reason)
		d.event(true, EventFailoverStarted, "failing over: %s", reason)
		d.add(Optional{SetRoleLabel{Instance: old, Role: LabelNone}})
		// Rule 3c: at the same time, the old primary's agent fences it, or kills it when it
		// is frozen, so it never answers as writable after the promotion (best effort: a
		// primary cut off with its agent fences itself, rule 15a).
		if in, ok := d.o.instance(old); ok && in.Pod.Exists && !in.Pod.Terminating {
			d.add(Optional{FenceThroughAgent{Instance: old}})
		}
		d.add(fences...)
		d.p.Continue, d.labelsSet = true, true
		return
	}
	d.failover(old, reason, req, async)
}

// serverDown reports whether an instance's last probe was refused: its host answered, its
// server did not listen. The failover grace period rides out network blips and stalls, in
// which a server may still hold connections and come back; a refused connection is no blip
// (crashed, killed, out of memory, shutting down), so Spec.DownGrace applies. Waiting longer
// would only wait for a restart and its crash recovery, which the reopen guard (rule 15a) may
// refuse anyway.
func serverDown(in Instance) bool {
	return in.SQL == nil && in.Pod.Exists && strings.Contains(in.Error, "connection refused")
}

// accessDenied reports whether an instance answered but refused the operator's credentials
// (MySQL/MariaDB error 1045).
func accessDenied(in Instance) bool {
	return in.SQL == nil && strings.Contains(in.Error, "Error 1045") && strings.Contains(in.Error, "Access denied")
}

// unobservableReplicas names the replicas the operator cannot reach: every ordinal below
// spec.replicas and every instance beyond it whose Pod still exists (a replica being scaled
// away may have acknowledged writes, so lowering spec.replicas never drops it from this
// check). A failover, or reopening a restarted primary, is safe only when fewer of them are
// missing than the primary waits acknowledgements for: then every acknowledged write is on a
// replica that can be observed (docs/clustering.md, "Failover").
func (d *decider) unobservableReplicas(old int) []string {
	var missing []string
	for i := 0; i < d.o.Spec.Replicas; i++ {
		if in, ok := d.o.instance(i); i != old && (!ok || in.SQL == nil) {
			missing = append(missing, d.name(i))
		}
	}
	for _, in := range d.o.Instances {
		if in.Ordinal >= d.o.Spec.Replicas && in.Ordinal != old && in.Pod.Exists && in.SQL == nil {
			missing = append(missing, in.Name)
		}
	}
	return missing
}

// assessWithoutPrimary fills the status of every instance while the primary cannot be asked.
func (d *decider) assessWithoutPrimary(old int, why string) {
	for _, in := range d.o.Instances {
		st := baseStatus(in)
		switch {
		case in.Ordinal == old:
			st.Role, st.Reason = RolePrimary, why
		case in.SQL == nil:
			st.Reason = unreachableReason(in)
		case d.recordedErrant(in.Ordinal) != nil:
			st.Role, st.Errant = RoleErrant, *d.recordedErrant(in.Ordinal)
			st.Reason = fmt.Sprintf("errant: has transactions the primary lacks (%s)", st.Errant)
		case in.Cloning:
			st.Role, st.Reason = RoleCloning, "being cloned from a donor"
		default:
			st.Role, st.Reason = RoleReplica, "the primary cannot be reached"
		}
		d.p.Instances = append(d.p.Instances, st)
	}
}

func (d *decider) recordedErrant(ordinal int) *gtid.Set {
	if s, ok := d.o.Recorded.Errant[ordinal]; ok && !s.IsEmpty() {
		return &s
	}
	return nil
}

// failover is stage 2 (rules 8 and 9): every reachable replica's receiver is stopped, so
// their sets are final. Pick the replica holding every transaction any of them holds, let it
// apply them, promote it, record the new term, repoint the rest.
func (d *decider) failover(old int, reason string, req *SwitchoverRequest, async bool) {
	var required gtid.Set
	var holdings []string
	for _, in := range d.o.Instances {
		if in.Ordinal == old || in.SQL == nil {
			continue
		}
		h := in.SQL.holds()
		if e := d.recordedErrant(in.Ordinal); e != nil {
			h = h.Subtract(*e) // an errant replica's own transactions are not the primary's
		}
		required = required.Union(h)
		holdings = append(holdings, fmt.Sprintf("%s has %q", in.Name, in.SQL.holds().String()))
	}
	cand, why := d.candidate(old, required, req)
	if cand < 0 {
		d.state(StateFailed, "NoSafeCandidate", "%s; %s (%s): waiting rather than guessing", reason, why, strings.Join(holdings, ", "))
		d.event(true, EventFailoverRefused, "%s", d.p.Message)
		d.labelsSet = true
		return
	}
	c, _ := d.o.instance(cand)
	term := d.o.Recorded.Term + 1
	// The candidate is promoted only once it has applied everything it holds (WaitApplied
	// before RecordTopologyChange), often moments after this observation. Status records
	// that set for it, so a new primary that loses part of it in a crash right after the
	// promotion is not reopened with less (primaryBehind: "it had … before").
	for i := range d.p.Instances {
		if d.p.Instances[i].Ordinal == cand {
			d.p.Instances[i].Executed = c.SQL.Executed.Union(c.SQL.holds())
		}
	}
	d.state(StateFailed, "FailingOver", "%s: promoting %s, which holds every transaction the replicas received", reason, c.Name)
	d.p.Primary, d.p.Term, d.labelsSet = cand, term, true

	var repoint []Step
	for _, in := range d.o.Instances {
		if in.Ordinal == old || in.Ordinal == cand || in.SQL == nil || in.Cloning || d.recordedErrant(in.Ordinal) != nil {
			continue
		}
		repoint = append(repoint, Optional{ConfigureReplica{Instance: in.Ordinal, Source: cand, SemiSync: d.o.Spec.SemiSync}})
	}
	d.add(
		Optional{SetRoleLabel{Instance: old, Role: LabelNone}},
		WaitApplied{Instance: cand, GTIDs: c.SQL.holds(), Timeout: d.o.Spec.ApplyTimeout},
		Promote{Instance: cand},
		RecordTopologyChange{Term: term, Kind: KindFailover, From: old, To: cand, Reason: reason, MayLoseAcknowledged: async},
	)
	if req != nil {
		d.add(RecordSwitchover{ID: req.ID, Target: req.Target, Phase: SwitchoverCompleted,
			Message: fmt.Sprintf("failed over to %s (term %d): the primary was unreachable", c.Name, term)})
	}
	d.add(repoint...)
	d.add(d.configureSemiSync(c, d.desiredAcks(), true),
		SetReadOnly{Instance: cand, ReadOnly: false},
		Optional{SetRoleLabel{Instance: cand, Role: LabelPrimary}})
	d.event(true, EventFailoverCompleted, "%s is the primary (term %d): %s", c.Name, term, reason)
}

// candidate picks the replica to promote: it must hold required (every transaction any
// reachable replica received), apply cleanly and not be errant, cloning, terminating or
// leaving. Ties: fully applied first, then the lowest lag, then the lowest ordinal. A
// requested target must itself qualify. It returns -1 and why when no replica qualifies.
func (d *decider) candidate(old int, required gtid.Set, req *SwitchoverRequest) (int, string) {
	best, bestApplied, bestLag := -1, false, time.Duration(0)
	var rejected []string
	for _, in := range d.o.Instances {
		if in.Ordinal == old || in.SQL == nil {
			continue
		}
		if req != nil && in.Ordinal != req.Target {
			continue
		}
		var problem string
		switch r := in.SQL.Replica; {
		case d.recordedErrant(in.Ordinal) != nil:
			problem = "is errant"
		case in.Cloning:
			problem = "is being cloned"
		case in.Pod.Terminating:
			problem = "is being deleted"
		case in.Ordinal >= d.o.Spec.Replicas:
			problem = "is leaving the cluster"
		case r != nil && (r.SQLErrno != 0 || r.SQLError != ""):
			problem = fmt.Sprintf("cannot apply (error %d: %s)", r.SQLErrno, r.SQLError)
		case !in.SQL.holds().Contains(required):
			problem = fmt.Sprintf("lacks %s", required.Subtract(in.SQL.holds()))
		}
		if problem != "" {
			rejected = append(rejected, in.Name+" "+problem)
			continue
		}
		applied := in.SQL.Executed.Contains(in.SQL.holds())
		lag := time.Duration(0)
		if in.SQL.Replica != nil && in.SQL.Replica.Lag != nil {
			lag = *in.SQL.Replica.Lag
		}
		if best < 0 || (applied && !bestApplied) || (applied == bestApplied && lag < bestLag) {
			best, bestApplied, bestLag = in.Ordinal, applied, lag
		}
	}
	if best >= 0 {
		return best, ""
	}
	if req != nil && len(rejected) == 0 {
		return -1, fmt.Sprintf("the requested target %s cannot be reached", d.name(req.Target))
	}
	return -1, "no replica holds every transaction the others received: " + strings.Join(rejected, "; ")
}

// bootstrap makes instance 0 the first primary of a fresh cluster (state Bootstrapping).
func (d *decider) bootstrap() {
	first, ok := d.o.instance(0)
	for _, in := range d.o.Instances {
		st := baseStatus(in)
		if in.SQL == nil {
			st.Reason = unreachableReason(in)
		}
		d.p.Instances = append(d.p.Instances, st)
	}
	d.labelsSet = true
	if !ok || first.SQL == nil {
		d.state(StateBootstrapping, "WaitingForFirstInstance", "waiting for %s to be reachable: %s", d.name(0), unreachableReason(first))
		return
	}
	// Never make instance 0 the primary over data it does not have (a cluster whose status was
	// lost, a restore that went to another ordinal).
	var ahead []string
	for _, in := range d.o.Instances {
		if in.Ordinal != 0 && in.SQL != nil {
			if extra := in.SQL.Executed.Subtract(first.SQL.Executed); !extra.IsEmpty() {
				ahead = append(ahead, fmt.Sprintf("%s has %s", in.Name, extra))
			}
		}
	}
	if len(ahead) > 0 {
		d.state(StateBootstrapping, "DataOutsideFirstInstance", "refusing to make %s the first primary: %s; a human must choose",
			first.Name, strings.Join(ahead, "; "))
		return
	}
	d.state(StateBootstrapping, "Bootstrapping", "making %s the first primary", first.Name)
	d.p.Primary, d.p.Term = 0, d.o.Recorded.Term+1
	if first.SQL.Replica != nil {
		d.add(Promote{Instance: 0})
	}
	d.add(RecordTopologyChange{Term: d.p.Term, Kind: KindBootstrap, From: NoPrimary, To: 0, Reason: "first primary of a new cluster"})
	for _, in := range d.o.Instances {
		if in.Ordinal == 0 || in.SQL == nil || in.Cloning {
			continue
		}
		d.add(Optional{ConfigureReplica{Instance: in.Ordinal, Source: 0, SemiSync: d.o.Spec.SemiSync}})
	}
	d.add(d.configureSemiSync(first, d.desiredAcks(), true),
		SetReadOnly{Instance: 0, ReadOnly: false},
		Optional{SetRoleLabel{Instance: 0, Role: LabelPrimary}})
	d.event(false, EventBootstrapped, "%s is the first primary (term %d)", first.Name, d.p.Term)
	d.p.Continue = true
}
