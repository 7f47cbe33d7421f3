package clustering

import (
	"fmt"
	"strings"

	"github.com/kura-db/kura/internal/gtid"
)

// errnoBinlogGone is the receiver error a replica reports when its source no longer has the
// binary logs it needs (ER_MASTER_FATAL_ERROR_READING_BINLOG); only a clone repairs it.
const errnoBinlogGone = 1236

// replicaVerdict is the assessment of one non-primary instance against a reachable primary.
type replicaVerdict struct {
	status InstanceStatus
	// repair is true when pointing it at the primary again may fix it.
	repair bool
	// reclone is the reason to clone it afresh, or empty.
	reclone string
	// ackable is true when it can acknowledge the primary's commits now.
	ackable bool
	// keptAside is true when the re-clone sets aside transactions that were provably never
	// acknowledged (rule 15b).
	keptAside bool
}

// neverAcknowledged says why an instance's extra transactions were provably never
// acknowledged to a client, or "" (rule 15b): with semi-synchronous replication a commit is
// acknowledged only after a replica received it, and failover promotes a replica holding
// everything any replica received; so transactions an instance wrote itself that no other
// instance holds reached no replica and were never acknowledged. This needs semi-sync on,
// every other instance observed, and (MariaDB) GTIDs naming the server that wrote them; MySQL
// instances are left to errantReplicaPolicy, and so is anything written on an instance that was
// never the primary (a commit there did not wait for a replica).
func (d *decider) neverAcknowledged(in Instance, extra gtid.Set) string {
	if !d.o.Recorded.FormerPrimaries[in.Ordinal] || !d.o.Spec.SemiSync || extra.Flavor() != gtid.MariaDB ||
		!extra.FromServer(in.SQL.ServerID).Equal(extra) {
		return "" // only a former primary's commits waited for an acknowledgement
	}
	if len(d.unobservableReplicas(in.Ordinal)) > 0 {
		return ""
	}
	for _, o := range d.o.Instances {
		if o.Ordinal == in.Ordinal || o.SQL == nil {
			continue
		}
		if !extra.Subtract(o.SQL.holds()).Equal(extra) {
			return "" // another instance received part of them
		}
	}
	return fmt.Sprintf("kept unacknowledged transactions aside: %s (written by %s, received by no other instance, so never acknowledged)", extra, in.Name)
}

// baseStatus is the status every instance starts from.
func baseStatus(in Instance) InstanceStatus {
	st := InstanceStatus{Ordinal: in.Ordinal, Name: in.Name, Role: RoleUnknown, Label: LabelNone, Reachable: in.SQL != nil}
	if in.SQL != nil {
		st.ReadOnly, st.Executed = in.SQL.ReadOnly, in.SQL.Executed
		if in.SQL.Replica != nil {
			st.Lag = in.SQL.Replica.Lag
		}
	}
	return st
}

// unreachableReason explains an instance without SQL facts.
func unreachableReason(in Instance) string {
	switch {
	case !in.Pod.Exists:
		return "Pod does not exist"
	case in.Error != "":
		return fmt.Sprintf("unreachable for %s: %s", fmtDuration(in.UnreachableFor), in.Error)
	default:
		return fmt.Sprintf("unreachable for %s", fmtDuration(in.UnreachableFor))
	}
}

// assessReplica judges a non-primary instance against a reachable primary (rules 12, 13, 15).
func (d *decider) assessReplica(primary, in Instance) replicaVerdict {
	v := replicaVerdict{status: baseStatus(in)}
	st := &v.status
	st.Role = RoleReplica
	if in.SQL == nil {
		st.Reason = unreachableReason(in)
		return v
	}
	if extra := in.SQL.Executed.Subtract(primary.SQL.Executed); !extra.IsEmpty() {
		st.Role, st.Errant = RoleErrant, extra
		st.Reason = fmt.Sprintf("errant: has transactions the primary lacks (%s)", extra)
		switch why := d.neverAcknowledged(in, extra); {
		case in.Cloning:
		case why != "":
			v.reclone, v.keptAside = why, true
			st.Reason += "; " + why
		case d.o.Spec.ErrantPolicy == ErrantReclone:
			v.reclone = st.Reason
		}
		return v
	}
	if in.Cloning {
		st.Role, st.Reason = RoleCloning, "being cloned from a donor"
		return v
	}
	r := in.SQL.Replica
	switch {
	case in.Ordinal >= d.o.Spec.Replicas:
		st.Reason = "beyond spec.replicas: leaving the cluster"
		return v
	case in.Pod.Terminating:
		st.Reason = "Pod is being deleted"
		return v
	case r == nil:
		st.Reason, v.repair = "not configured as a replica", true
		return v
	case r.SourceHost != primary.Host || r.SourcePort != primary.Port:
		st.Reason, v.repair = fmt.Sprintf("replicates from %s:%d, not the primary", r.SourceHost, r.SourcePort), true
		return v
	}
	v.ackable = r.IORunning && in.SQL.SemiSync.ReplicaEnabled
	switch {
	case r.IOErrno == errnoBinlogGone:
		st.Reason = fmt.Sprintf("replication receiver error %d: %s", r.IOErrno, r.IOError)
		if extra := in.SQL.holds().Subtract(primary.SQL.Executed); !extra.IsEmpty() {
			// Rule 15a: it received transactions the primary lacks; a re-clone from an instance
			// lacking them would drop what may be the only copy of acknowledged writes.
			st.Reason += fmt.Sprintf("; it holds %s, which the primary lacks, so it is not re-cloned", extra)
			break
		}
		v.reclone = "the primary no longer has the binary logs this replica needs"
	case r.SQLErrno != 0 || r.SQLError != "":
		st.Reason = fmt.Sprintf("replication applier error %d: %s", r.SQLErrno, r.SQLError)
		if extra := in.SQL.holds().Subtract(primary.SQL.Executed); !extra.IsEmpty() {
			// Rule 15a, as for a receiver error.
			st.Reason += fmt.Sprintf("; it holds %s, which the primary lacks, so it is not re-cloned", extra)
			break
		}
		// The server already retried the transaction (slave_transaction_retries): the replica's
		// data differs from the primary's (a statement outside replication, or system tables
		// that lost a change in a crash). Skipping the transaction would leave it silently
		// different; a clone makes it the primary's again, and it holds nothing the primary
		// lacks, so nothing is lost.
		v.reclone = fmt.Sprintf("replication applier error %d: its data differs from the primary's, and it holds nothing the primary lacks", r.SQLErrno)
	case r.IOConnecting:
		st.Reason = "replication receiver is connecting to the primary"
		if r.IOError != "" {
			st.Reason += fmt.Sprintf(" (error %d: %s)", r.IOErrno, r.IOError)
		}
	case !r.IORunning || !r.SQLRunning:
		st.Reason, v.repair = "replication is stopped", true
		if r.IOError != "" {
			st.Reason += fmt.Sprintf(" (receiver error %d: %s)", r.IOErrno, r.IOError)
		}
	case r.Lag != nil && d.o.Spec.MaxLag > 0 && *r.Lag > d.o.Spec.MaxLag:
		st.Reason = fmt.Sprintf("lags %s behind the primary (maxLag %s)", fmtDuration(*r.Lag), d.o.Spec.MaxLag)
	default:
		st.Healthy, st.Label = true, LabelReplica
		if in.SQL.SemiSync.ReplicaEnabled != d.o.Spec.SemiSync {
			v.repair = true
		}
	}
	return v
}

// primaryReachable handles every state with a reachable recorded primary: Healthy, Degraded,
// Switching, and the fencing of instances that must not accept writes.
func (d *decider) primaryReachable(primary Instance) {
	pst := baseStatus(primary)
	pst.Role, pst.Label = RolePrimary, LabelPrimary
	pst.Healthy = !primary.SQL.ReadOnly && primary.SQL.Replica == nil
	verdicts := map[int]replicaVerdict{}
	for _, in := range d.o.Instances {
		if in.Ordinal != primary.Ordinal {
			verdicts[in.Ordinal] = d.assessReplica(primary, in)
		}
	}

	// Rule 3: anything writable besides the primary is fenced before anything else happens.
	if d.fenceWritable(primary.Ordinal) {
		d.setStatuses(pst, verdicts)
		d.state(StateDegraded, "InstanceFenced", "%s", strings.Join(d.problems, "; "))
		d.p.Continue = true
		return
	}
	if why := d.primaryUnsafeToReopen(primary); why != "" {
		// Rule 15a: a restarted primary is reopened only once every replica that may hold an
		// acknowledged write has been seen. Nothing is changed meanwhile, and status keeps
		// what it recorded the primary held, so primaryBehind still sees what it lost when
		// the replicas answer.
		if rec, ok := d.o.Recorded.Executed[primary.Ordinal]; ok {
			pst.Executed = pst.Executed.Union(rec)
		}
		// Nor is a replica holding what the primary lacks reported errant yet: the primary
		// may be the one that lost it, and a replica recorded errant is never a failover
		// candidate (a double fault in the chaos suite was left waiting for a person so).
		for o, v := range verdicts {
			if v.status.Role != RoleErrant {
				continue
			}
			if rec := d.recordedErrant(o); rec != nil && rec.Contains(v.status.Errant) {
				continue // known before the restart
			}
			v.status.Role, v.status.Errant = RoleReplica, gtid.Set{}
			if rec := d.recordedErrant(o); rec != nil {
				v.status.Errant = *rec
			}
			v.status.Reason = "holds transactions the restarted primary lacks; judged once every replica answers"
			verdicts[o] = v
		}
		d.setStatuses(pst, verdicts)
		d.state(StateDegraded, "PrimaryRestarted", "%s", why)
		return
	}
	if why := d.primaryBehind(primary); why != "" {
		// Rule 3b: making it writable would reuse GTIDs a replica already holds with other
		// contents. Fail over to the replica holding them instead; the old primary then
		// rejoins it as a replica (its set is contained in the new primary's).
		d.p.Instances = nil
		d.assessWithoutPrimary(primary.Ordinal, why)
		d.replacePrimary(primary.Ordinal, why)
		return
	}
	if d.switchoverRequested(primary, verdicts) || d.plannedSwitchover(primary, verdicts) {
		d.setStatuses(pst, verdicts)
		return
	}
	d.maintain(primary, verdicts)
	d.config(true)
	d.setStatuses(pst, verdicts)
	if len(d.problems) > 0 {
		d.state(StateDegraded, "InstancesUnhealthy", "%s", strings.Join(d.problems, "; "))
		return
	}
	d.state(StateHealthy, "AllInstancesHealthy", "%s is the primary and every replica replicates from it within maxLag", primary.Name)
	if !d.rollReplica(primary) {
		d.rollPrimary(primary, verdicts)
	}
}

// primaryUnsafeToReopen says why a read-only primary must wait before it may be made writable
// again, or "": a replica that may hold an acknowledged write the primary lost in its restart
// cannot be observed, so primaryBehind cannot rule that out.
func (d *decider) primaryUnsafeToReopen(primary Instance) string {
	if !primary.SQL.ReadOnly {
		return ""
	}
	missing := d.unobservableReplicas(primary.Ordinal)
	if len(missing) == 0 || len(missing) < d.desiredAcks() {
		return ""
	}
	return fmt.Sprintf("primary %s is read-only (restarted?) and %s cannot be observed: one of them may hold acknowledged writes the primary no longer has, so it is not made writable until they answer",
		primary.Name, strings.Join(missing, ", "))
}

// primaryBehind says why a read-only primary must not be made writable, or "" (rules 3b, 15a):
// it lacks part of the executed set status recorded for it (an emptied or older volume, or
// what it was promoted holding), or a replica holds (applied or only received) transactions
// that came from a primary and that this one no longer has — crash recovery cut transactions
// a replica had already received (MariaDB with init_rpl_role=SLAVE), or its data was rolled
// back. Making it writable would commit new transactions under GTIDs the replicas already
// hold with other contents, or drop acknowledged writes. On MariaDB a replica's own writes
// (its server_id) are errant, not the primary's loss; MySQL's GTIDs name the server by UUID,
// so there any transaction a replica holds beyond the primary's set counts. Errant
// transactions status already reported are left out on both.
func (d *decider) primaryBehind(primary Instance) string {
	if !primary.SQL.ReadOnly {
		return ""
	}
	var ahead []string
	if rec, ok := d.o.Recorded.Executed[primary.Ordinal]; ok {
		if lost := rec.Subtract(primary.SQL.Executed); !lost.IsEmpty() {
			ahead = append(ahead, fmt.Sprintf("it had %s before", lost))
		}
	}
	for _, in := range d.o.Instances {
		if in.Ordinal == primary.Ordinal || in.SQL == nil {
			continue
		}
		var lost gtid.Set
		if primary.SQL.Executed.Flavor() == gtid.MySQL {
			lost = in.SQL.holds().Subtract(primary.SQL.Executed)
			if e := d.recordedErrant(in.Ordinal); e != nil {
				lost = lost.Subtract(*e)
			}
		} else {
			// Every transaction it holds that it did not write itself came from a primary:
			// this one, or a former one whose writes this primary had applied before it was
			// promoted (the failover waited for them) and lost in its restart. Its own writes
			// the primary lacks are errant, reported as such.
			// What status recorded as errant is not left out: a replica flagged errant for a
			// former primary's transaction while this primary was held read-only (the pass
			// that found it restarted) would otherwise hide the very write it lost.
			lost = in.SQL.holds().Subtract(in.SQL.holds().FromServer(in.SQL.ServerID)).Subtract(primary.SQL.Executed)
		}
		if !lost.IsEmpty() {
			ahead = append(ahead, fmt.Sprintf("%s has %s", in.Name, lost))
		}
	}
	if len(ahead) == 0 {
		return ""
	}
	return fmt.Sprintf("came back without transactions it had committed (%s)", strings.Join(ahead, "; "))
}

func (d *decider) setStatuses(primary InstanceStatus, verdicts map[int]replicaVerdict) {
	d.p.Instances = append(d.p.Instances[:0], primary)
	for _, v := range verdicts {
		d.p.Instances = append(d.p.Instances, v.status)
	}
}

// maintain keeps a healthy topology so and repairs what is repairable (Degraded).
func (d *decider) maintain(primary Instance, verdicts map[int]replicaVerdict) {
	if primary.SQL.Replica != nil {
		d.add(Promote{Instance: primary.Ordinal})
		d.problems = append(d.problems, fmt.Sprintf("primary %s was configured as a replica of %s:%d (replication stopped)",
			primary.Name, primary.SQL.Replica.SourceHost, primary.SQL.Replica.SourcePort))
	}
	ackable := 0
	for _, in := range d.o.Instances {
		v, ok := verdicts[in.Ordinal]
		if !ok {
			d.trackReclone(in, in.Ordinal == primary.Ordinal && !primary.SQL.ReadOnly && primary.SQL.Replica == nil)
			continue
		}
		d.trackReclone(in, v.status.Healthy)
		if v.ackable {
			ackable++
		}
		switch {
		case v.reclone != "":
			if !d.reclone(in, d.donor(primary, in.Ordinal, verdicts), v.reclone, &v.status) {
				verdicts[in.Ordinal] = v
				break
			}
			if v.keptAside {
				d.p.KeptAside = append(d.p.KeptAside, KeptAside{Ordinal: in.Ordinal, Name: in.Name, GTIDs: v.status.Errant, Reason: v.reclone})
				d.event(true, EventKeptAside, "%s %s; it rejoins as a replica", in.Name, v.reclone)
			}
		case v.repair:
			d.add(Optional{ConfigureReplica{Instance: in.Ordinal, Source: primary.Ordinal, SemiSync: d.o.Spec.SemiSync}})
			d.event(false, EventReplicaConfigured, "pointed %s at the primary %s (%s)", in.Name, primary.Name, v.status.Reason)
		}
		if v.status.Role == RoleErrant {
			d.event(true, EventErrantReplicaDetected, "%s %s; policy %s", in.Name, v.status.Reason, d.o.Spec.ErrantPolicy)
		}
		if !v.status.Healthy && in.Ordinal < d.o.Spec.Replicas {
			d.problems = append(d.problems, in.Name+": "+v.status.Reason)
		}
	}
	// An instance being scaled away stops receiving first, so it acknowledges nothing that
	// only it would hold when it goes (rule 15).
	for _, in := range d.o.Instances {
		if in.Ordinal >= d.o.Spec.Replicas && in.Ordinal != primary.Ordinal && in.SQL != nil && in.SQL.Replica != nil &&
			(in.SQL.Replica.IORunning || in.SQL.Replica.IOConnecting) {
			d.add(Optional{FenceIOThreads{Instance: in.Ordinal}})
		}
	}
	k := d.desiredAcks()
	if s := d.configureSemiSync(primary, k, false); s != nil {
		d.add(s)
	}
	if ackable < k {
		d.problems = append(d.problems, fmt.Sprintf("%d of the %d replica acknowledgements each commit needs can be given now: writes wait until enough replicas replicate again (never asynchronous)", ackable, k))
	}
	d.trackAsyncWindow(primary, verdicts)
	if primary.SQL.ReadOnly {
		d.add(SetReadOnly{Instance: primary.Ordinal, ReadOnly: false})
		d.problems = append(d.problems, fmt.Sprintf("primary %s was read-only (made writable)", primary.Name))
	}
}

// trackAsyncWindow opens, keeps or closes the asynchronous window (rule 15): it opens when the
// spec turns semi-sync off on a cluster with replicas, and closes once semi-sync is on again
// and a semi-synchronous replica holds everything the primary had executed when it was.
func (d *decider) trackAsyncWindow(primary Instance, verdicts map[int]replicaVerdict) {
	w := d.p.Async
	switch {
	case !d.o.Spec.SemiSync && d.o.Spec.Replicas > 1:
		if w == nil {
			w = &AsyncWindow{Since: primary.SQL.Executed}
		}
		w.Until = gtid.Set{}
		d.problems = append(d.problems, fmt.Sprintf("semi-synchronous replication is off (spec.replication.semiSync): writes after %q may exist on the primary only, and automatic failover is refused until it is on again",
			w.Since.String()))
	case w != nil:
		if w.Until.IsEmpty() {
			w.Until = primary.SQL.Executed
		}
		for _, in := range d.o.Instances {
			if v, ok := verdicts[in.Ordinal]; ok && v.ackable && in.SQL.holds().Contains(w.Until) {
				w = nil
				break
			}
		}
		if w != nil {
			d.problems = append(d.problems, fmt.Sprintf("closing the asynchronous window: waiting until a semi-synchronous replica holds %q", w.Until.String()))
		}
	}
	d.p.Async = w
}

// donor picks the instance a clone copies from: a healthy replica when there is one (lowest
// ordinal), else the primary.
func (d *decider) donor(primary Instance, except int, verdicts map[int]replicaVerdict) int {
	for _, in := range d.o.Instances {
		if v, ok := verdicts[in.Ordinal]; ok && in.Ordinal != except && v.status.Healthy {
			return in.Ordinal
		}
	}
	return primary.Ordinal
}

// rollReplica restarts one outdated replica when every replica is healthy (rule 14). It reports
// whether a replica is outdated.
func (d *decider) rollReplica(primary Instance) bool {
	outdated := -1
	for _, in := range d.o.Instances {
		if in.Ordinal == primary.Ordinal || in.Ordinal >= d.o.Spec.Replicas || !in.outdated() {
			continue
		}
		if outdated < in.Ordinal {
			outdated = in.Ordinal // the highest ordinal first, as a StatefulSet would
		}
	}
	if outdated < 0 {
		return false
	}
	in, _ := d.o.instance(outdated)
	static := d.pendingStatic()
	d.state(StateDegraded, "RollingChange", "restarting replica %s to run revision %s%s", in.Name, in.DesiredRevision, static)
	d.add(RestartInstance{Instance: outdated, Reason: fmt.Sprintf("run revision %s%s", in.DesiredRevision, static)})
	d.event(false, EventInstanceRestarted, "restarting replica %s to run revision %s%s", in.Name, in.DesiredRevision, static)
	for i := range d.p.Instances {
		if d.p.Instances[i].Ordinal == outdated {
			d.p.Instances[i].Label, d.p.Instances[i].Reason = LabelNone, "restarting to run revision "+in.DesiredRevision
		}
	}
	return true
}

// outdated reports whether the instance runs another revision than it should.
func (i Instance) outdated() bool {
	return i.Revision != "" && i.DesiredRevision != "" && i.Revision != i.DesiredRevision
}
