package clustering

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kura-db/kura/internal/gtid"
)

// want is what a case expects of a plan. steps lists the plan's steps as String() gives them,
// leaving out events and role labels (checked through events and labels).
type want struct {
	state   State
	reason  string
	steps   []string
	events  []string
	primary *int
	term    int64
	cont    bool
	// labels maps ordinals to the label status must give them.
	labels map[int]string
	// check runs extra assertions.
	check func(t *testing.T, p Plan)
}

func ord(i int) *int { return &i }

const s = time.Second

var decideCases = []struct {
	name string
	f    *fx
	w    want
}{
	// Bootstrapping (docs/clustering.md, "Bootstrap").
	{"bootstrap: instance 0 becomes primary, replicas follow", cluster(3).fresh(), want{state: StateBootstrapping, reason: "Bootstrapping", primary: ord(0), term: 1, cont: true,
		steps:  []string{"record-Bootstrap(term 1, -1 -> 0: first primary of a new cluster)", "optional configure-replica(1, source 0, semi-sync true)", "optional configure-replica(2, source 0, semi-sync true)", "configure-semi-sync(0, true, wait 1)", "set-read-only(0, false)"},
		events: []string{EventBootstrapped}}},
	{"bootstrap waits for instance 0", cluster(3).fresh().down(0, 2*s, "connection refused"), want{state: StateBootstrapping, reason: "WaitingForFirstInstance", primary: ord(NoPrimary)}},
	{"bootstrap refuses when another instance has data instance 0 lacks", cluster(3).fresh().errant(2, "0-1002-7"), want{state: StateBootstrapping, reason: "DataOutsideFirstInstance", primary: ord(NoPrimary)}},
	{"bootstrap of a single-instance cluster waits for no acknowledgement", cluster(1).fresh(), want{state: StateBootstrapping, reason: "Bootstrapping", primary: ord(0), term: 1, cont: true,
		steps: []string{"record-Bootstrap(term 1, -1 -> 0: first primary of a new cluster)", "configure-semi-sync(0, false, wait 0)", "set-read-only(0, false)"}, events: []string{EventBootstrapped}}},
	{"bootstrap with replicas not up yet: writes wait for the first acknowledgement", cluster(3).fresh().down(1, s, "refused").down(2, s, "refused"), want{state: StateBootstrapping, reason: "Bootstrapping", primary: ord(0), term: 1, cont: true,
		steps: []string{"record-Bootstrap(term 1, -1 -> 0: first primary of a new cluster)", "configure-semi-sync(0, true, wait 1)", "set-read-only(0, false)"}, events: []string{EventBootstrapped}}},

	// Healthy.
	{"healthy three", cluster(3).primary(0), want{state: StateHealthy, reason: "AllInstancesHealthy", primary: ord(0), term: 1, labels: map[int]string{0: LabelPrimary, 1: LabelReplica, 2: LabelReplica}}},
	{"healthy single instance", cluster(1).primary(0), want{state: StateHealthy, reason: "AllInstancesHealthy", primary: ord(0), term: 1}},
	{"MySQL five waits for two acknowledgements", cluster(5).mysqlAcks().primary(0), want{state: StateHealthy, reason: "AllInstancesHealthy", primary: ord(0), term: 1,
		steps: []string{"configure-semi-sync(0, true, wait 2)"}}},
	{"MariaDB five waits for one acknowledgement", cluster(5).primary(0), want{state: StateHealthy, reason: "AllInstancesHealthy", primary: ord(0), term: 1}},
	{"missing labels are set", cluster(3).primary(0).label(1, "").label(0, LabelReplica), want{state: StateHealthy, reason: "AllInstancesHealthy", primary: ord(0), term: 1,
		check: func(t *testing.T, p Plan) {
			if got := labelSteps(p); got != "optional set-role-label(0, primary),optional set-role-label(1, replica)" {
				t.Errorf("label steps: %s", got)
			}
		}}},

	// Degraded: repair what is repairable, keep the read set to replicas within maxLag.
	{"lagging replica leaves the read set", cluster(3).primary(0).lagging(2, 45*s), want{state: StateDegraded, reason: "InstancesUnhealthy", primary: ord(0), term: 1,
		labels: map[int]string{1: LabelReplica, 2: LabelNone}, check: reasonHas(2, "lags 45s")}},
	{"replica down", cluster(3).primary(0).down(2, 10*s, "dial tcp: connection refused"), want{state: StateDegraded, reason: "InstancesUnhealthy", primary: ord(0), term: 1,
		labels: map[int]string{2: LabelNone}, check: reasonHas(2, "connection refused")}},
	{"replica with an applier error is re-cloned, never skipped", cluster(3).primary(0).sqlError(1, 1133, "Can't find any matching row in the user table"), want{state: StateDegraded, reason: "InstancesUnhealthy", primary: ord(0), term: 1,
		steps:  []string{"reclone(1 from 2: replication applier error 1133: its data differs from the primary's, and it holds nothing the primary lacks)"},
		events: []string{EventInstanceCloneStarted}, labels: map[int]string{1: LabelNone}, check: reasonHas(1, "applier error 1133: Can't find any matching row")}},
	{"replica with an applier error holding what the primary lacks: reported, never re-cloned (rule 15a)", cluster(3).primary(0).has(1, "0-1000-100", "0-1000-101").sqlError(1, 1062, "Duplicate entry '7' for key 'PRIMARY'"),
		want{state: StateDegraded, reason: "InstancesUnhealthy", primary: ord(0), term: 1,
			labels: map[int]string{1: LabelNone}, check: both(reasonHas(1, "applier error 1062"), reasonHas(1, "holds 0-1000-101, which the primary lacks"))}},
	{"stopped replica is restarted", cluster(3).primary(0).stopped(2), want{state: StateDegraded, reason: "InstancesUnhealthy", primary: ord(0), term: 1,
		steps: []string{"optional configure-replica(2, source 0, semi-sync true)"}, events: []string{EventReplicaConfigured}}},
	{"replica of the wrong source is repointed", cluster(3).primary(0).source(2, 1), want{state: StateDegraded, reason: "InstancesUnhealthy", primary: ord(0), term: 1,
		steps: []string{"optional configure-replica(2, source 0, semi-sync true)"}, events: []string{EventReplicaConfigured}}},
	{"unconfigured replica is configured", cluster(3).primary(0).unconfigured(1), want{state: StateDegraded, reason: "InstancesUnhealthy", primary: ord(0), term: 1,
		steps: []string{"optional configure-replica(1, source 0, semi-sync true)"}, events: []string{EventReplicaConfigured}}},
	{"errant replica, Manual: out of the read set, reported with its GTIDs", cluster(3).primary(0).errant(1, "0-1002-5"), want{state: StateDegraded, reason: "InstancesUnhealthy", primary: ord(0), term: 1,
		events: []string{EventErrantReplicaDetected}, labels: map[int]string{1: LabelNone},
		check: func(t *testing.T, p Plan) {
			st, _ := p.InstanceStatus(1)
			if st.Role != RoleErrant || st.Errant.String() != "0-1002-5" {
				t.Errorf("instance 1: role %s errant %q", st.Role, st.Errant)
			}
		}}},
	{"errant replica, Reclone: cloned from a healthy replica", cluster(3).primary(0).errant(1, "0-1002-5").reclonePolicy(), want{state: StateDegraded, reason: "InstancesUnhealthy", primary: ord(0), term: 1,
		steps:  []string{"reclone(1 from 2: errant: has transactions the primary lacks (0-1002-5))"},
		events: []string{EventInstanceCloneStarted, EventErrantReplicaDetected}}},
	{"replica whose binlogs are gone is recloned", cluster(3).primary(0).ioError(2, 1236, "Could not find GTID state requested by slave in any binlog files"), want{state: StateDegraded, reason: "InstancesUnhealthy", primary: ord(0), term: 1,
		steps: []string{"reclone(2 from 1: the primary no longer has the binary logs this replica needs)"}, events: []string{EventInstanceCloneStarted},
		check: recloneRecord(2, Reclone{Count: 1, First: now, Last: now, Reason: binlogsGone, Donor: 1, Pod: "pod-2"})}},

	// Re-cloning backs off (docs/clustering.md, "Re-cloning").
	{"re-cloned replica back with the same fault within the backoff: not re-cloned, and said so", cluster(3).primary(0).recloned(2, 1, 10*s, -1).ioError(2, 1236, gtidGone),
		want{state: StateDegraded, reason: "InstancesUnhealthy", primary: ord(0), term: 1, events: []string{EventRecloneBackedOff}, labels: map[int]string{2: LabelNone},
			check: both(reasonHas(2, "re-cloned 1 time since 2026-03-01T11:30:00Z; the same fault came back (the primary no longer has the binary logs this replica needs); next attempt after 2026-03-01T12:00:20Z"),
				messageHas("db-2: replication receiver error 1236"), messageHas("next attempt after 2026-03-01T12:00:20Z"))}},
	{"re-cloned replica seen back for the first time: the backoff runs from now", cluster(3).primary(0).recloned(2, 1, -1, -1).ioError(2, 1236, gtidGone),
		want{state: StateDegraded, reason: "InstancesUnhealthy", primary: ord(0), term: 1, events: []string{EventRecloneBackedOff},
			check: both(reasonHas(2, "next attempt after 2026-03-01T12:00:30Z"), func(t *testing.T, p Plan) {
				if r := p.Reclones[2]; !r.Finished.Equal(now) || r.Count != 1 {
					t.Errorf("record %+v, want finished now, count 1", r)
				}
			})}},
	{"re-clone whose Pod has not gone yet: asked again, not counted again", cluster(3).primary(0).recloned(2, 1, -1, -1).samePod(2).ioError(2, 1236, gtidGone),
		want{state: StateDegraded, reason: "InstancesUnhealthy", primary: ord(0), term: 1, events: []string{EventInstanceCloneStarted},
			steps: []string{"reclone(2 from 1: the primary no longer has the binary logs this replica needs)"},
			check: recloneRecord(2, Reclone{Count: 1, First: now.Add(-30 * time.Minute), Last: now.Add(-5 * time.Minute), Reason: binlogsGone, Donor: 1, Pod: "old-pod"})}},
	{"after the backoff the fault is re-cloned again, and counted", cluster(3).primary(0).recloned(2, 2, 70*s, -1).ioError(2, 1236, gtidGone),
		want{state: StateDegraded, reason: "InstancesUnhealthy", primary: ord(0), term: 1, events: []string{EventInstanceCloneStarted},
			steps: []string{"reclone(2 from 1: the primary no longer has the binary logs this replica needs)"},
			check: both(recloneRecord(2, Reclone{Count: 3, First: now.Add(-30 * time.Minute), Last: now, Reason: binlogsGone, Donor: 1, Pod: "pod-2"}),
				eventHas(EventInstanceCloneStarted, "(re-clone 3 since 2026-03-01T11:30:00Z)"))}},
	{"the third re-clone waits twice as long as the second", cluster(3).primary(0).recloned(2, 2, 50*s, -1).ioError(2, 1236, gtidGone),
		want{state: StateDegraded, reason: "InstancesUnhealthy", primary: ord(0), term: 1, events: []string{EventRecloneBackedOff},
			check: both(reasonHas(2, "re-cloned 2 times since"), reasonHas(2, "next attempt after 2026-03-01T12:00:10Z"))}},
	{"the wait stops growing at ten minutes", cluster(3).primary(0).recloned(2, 9, 9*time.Minute, -1).ioError(2, 1236, gtidGone),
		want{state: StateDegraded, reason: "InstancesUnhealthy", primary: ord(0), term: 1, events: []string{EventRecloneBackedOff},
			check: reasonHas(2, "next attempt after 2026-03-01T12:01:00Z")}},
	{"a re-cloned replica healthy for ten minutes: its record is forgotten", cluster(3).primary(0).recloned(2, 3, 20*time.Minute, 10*time.Minute),
		want{state: StateHealthy, reason: "AllInstancesHealthy", primary: ord(0), term: 1, check: func(t *testing.T, p Plan) {
			if r, ok := p.Reclones[2]; ok {
				t.Errorf("record kept: %+v", r)
			}
		}}},
	{"a re-cloned replica healthy for five minutes: its record stays", cluster(3).primary(0).recloned(2, 3, 20*time.Minute, 5*time.Minute),
		want{state: StateHealthy, reason: "AllInstancesHealthy", primary: ord(0), term: 1, check: func(t *testing.T, p Plan) {
			if r := p.Reclones[2]; r.Count != 3 || !r.HealthySince.Equal(now.Add(-5*time.Minute)) {
				t.Errorf("record %+v", r)
			}
		}}},
	{"errant replica, Reclone, within the backoff: not re-cloned", cluster(3).primary(0).errant(1, "0-1002-5").reclonePolicy().recloned(1, 1, 10*s, -1),
		want{state: StateDegraded, reason: "InstancesUnhealthy", primary: ord(0), term: 1, events: []string{EventRecloneBackedOff, EventErrantReplicaDetected},
			check: reasonHas(1, "the same fault came back (errant: has transactions the primary lacks (0-1002-5))")}},
	{"replica whose binlogs are gone holding what the primary lacks: never re-cloned, whatever its record (rule 15a)", cluster(3).primary(0).recloned(2, 1, 10*time.Minute, -1).has(2, "0-1000-100", "0-1000-101").ioError(2, 1236, gtidGone),
		want{state: StateDegraded, reason: "InstancesUnhealthy", primary: ord(0), term: 1, check: both(reasonHas(2, "which the primary lacks, so it is not re-cloned"), func(t *testing.T, p Plan) {
			if st, _ := p.InstanceStatus(2); strings.Contains(st.Reason, "next attempt") {
				t.Errorf("reason %q speaks of a re-clone", st.Reason)
			}
		})}},
	{"replica whose binlogs are gone but which received what the primary lacks: never re-cloned (rule 15a)", cluster(3).primary(0).has(2, "0-1000-100", "0-1000-101").ioError(2, 1236, "Could not find GTID state requested by slave in any binlog files"),
		want{state: StateDegraded, reason: "InstancesUnhealthy", primary: ord(0), term: 1, check: reasonHas(2, "holds 0-1000-101, which the primary lacks")}},
	{"cloning replica is not waited for", cluster(3).mysqlAcks().primary(0).cloning(2), want{state: StateDegraded, reason: "InstancesUnhealthy", primary: ord(0), term: 1,
		labels: map[int]string{2: LabelNone}}},
	{"MySQL five with two replicas down still waits for two", cluster(5).mysqlAcks().primary(0).down(3, s, "x").down(4, s, "x"), want{state: StateDegraded, reason: "InstancesUnhealthy", primary: ord(0), term: 1,
		steps: []string{"configure-semi-sync(0, true, wait 2)"}}},
	{"MySQL five with three replicas down still waits for two: writes wait, never fewer acknowledgements", cluster(5).mysqlAcks().primary(0).down(2, s, "x").down(3, s, "x").down(4, s, "x"), want{state: StateDegraded, reason: "InstancesUnhealthy", primary: ord(0), term: 1,
		steps: []string{"configure-semi-sync(0, true, wait 2)"}, check: messageHas("1 of the 2 replica acknowledgements")}},
	{"MySQL five with a replica cloning waits for a majority of the other three (1, already in force)", cluster(5).mysqlAcks().primary(0).cloning(4), want{state: StateDegraded, reason: "InstancesUnhealthy", primary: ord(0), term: 1}},
	{"no replica can acknowledge: writes wait, semi-sync stays on (rule 15)", cluster(3).primary(0).down(1, 9*s, "refused").down(2, 9*s, "refused"), want{state: StateDegraded, reason: "InstancesUnhealthy", primary: ord(0), term: 1,
		check: messageHas("0 of the 1 replica acknowledgements")}},
	{"semi-sync switched off behind the loop's back is turned on again", cluster(3).primary(0).semiSyncOff(0).down(1, 9*s, "refused").down(2, 9*s, "refused"), want{state: StateDegraded, reason: "InstancesUnhealthy", primary: ord(0), term: 1,
		steps: []string{"configure-semi-sync(0, true, wait 1)"}}},
	{"semi-sync is turned back on when a replica returns", cluster(3).primary(0).semiSyncOff(0), want{state: StateHealthy, reason: "AllInstancesHealthy", primary: ord(0), term: 1,
		steps: []string{"configure-semi-sync(0, true, wait 1)"}}},
	{"semi-sync off in the spec switches the replica side off and opens an asynchronous window", cluster(2).specSemiSync(false).primary(0), want{state: StateDegraded, reason: "InstancesUnhealthy", primary: ord(0), term: 1,
		steps: []string{"optional configure-replica(1, source 0, semi-sync false)"}, events: []string{EventReplicaConfigured},
		check: func(t *testing.T, p Plan) {
			if p.Async == nil || p.Async.Since.String() != "0-1000-100" {
				t.Errorf("asynchronous window %+v, want one since 0-1000-100", p.Async)
			}
		}}},
	{"semi-sync on again: the window closes once a semi-sync replica holds what the primary had", cluster(3).primary(0).async("0-1000-50", ""), want{state: StateHealthy, reason: "AllInstancesHealthy", primary: ord(0), term: 1,
		check: func(t *testing.T, p Plan) {
			if p.Async != nil {
				t.Errorf("window still open: %+v", p.Async)
			}
		}}},
	{"semi-sync on again: the window stays open while no semi-sync replica holds it", cluster(3).primary(0).async("0-1000-50", "0-1000-120"), want{state: StateDegraded, reason: "InstancesUnhealthy", primary: ord(0), term: 1,
		check: messageHas("closing the asynchronous window")}},

	// Fencing (rule 3).
	{"writable non-primary is fenced first", cluster(3).primary(0).writable(2), want{state: StateDegraded, reason: "InstanceFenced", primary: ord(0), term: 1, cont: true,
		steps: []string{"fence(2, or stop it)"}, events: []string{EventInstanceFenced}}},
	{"primary reachable but read-only is made writable", cluster(3).primary(0).readOnly(0), want{state: StateDegraded, reason: "InstancesUnhealthy", primary: ord(0), term: 1,
		steps: []string{"set-read-only(0, false)"}}},
	// A primary that restarted without transactions a replica holds is not reopened (rule 3b).
	{"read-only primary behind a replica: not made writable, failover stage 1", cluster(3).primary(0).readOnly(0).has(1, "0-1000-101", "0-1000-101"),
		want{state: StateFailed, reason: "Fencing", primary: ord(0), term: 1, cont: true,
			steps: []string{"optional fence-through-agent(0)", "fence-io-threads(1)", "fence-io-threads(2)"}, events: []string{EventFailoverStarted}, labels: map[int]string{0: LabelNone},
			check: messageHas("came back without transactions it had committed (db-1 has 0-1000-101)")}},
	{"read-only primary behind a replica: the replica holding its transactions is promoted", cluster(3).primary(0).readOnly(0).has(1, "0-1000-100", "0-1000-101").fenced(1).fenced(2),
		want{state: StateFailed, reason: "FailingOver", primary: ord(1), term: 2, events: []string{EventFailoverCompleted},
			steps: []string{"wait-applied(1, \"0-1000-101\", 1m0s)", "promote(1)", "record-Failover(term 2, 0 -> 1: primary db-0 came back without transactions it had committed (db-1 has 0-1000-101))", "optional configure-replica(2, source 1, semi-sync true)", "configure-semi-sync(1, true, wait 1)", "set-read-only(1, false)"}}},
	// A restarted primary is reopened only when every replica that may hold an acknowledged
	// write was seen (rule 15a), and never with less than status recorded for it (rule 3b).
	{"read-only primary with a replica unobservable: not reopened, nothing changed", cluster(3).primary(0).readOnly(0).down(2, 2*s, "connection refused"),
		want{state: StateDegraded, reason: "PrimaryRestarted", primary: ord(0), term: 1, check: messageHas("db-2 cannot be observed")}},
	{"read-only primary with every replica seen and nothing lost: reopened", cluster(3).primary(0).readOnly(0).recordedExecuted(0, "0-1000-100"),
		want{state: StateDegraded, reason: "InstancesUnhealthy", primary: ord(0), term: 1, steps: []string{"set-read-only(0, false)"}}},
	{"read-only primary with less than status recorded (emptied volume): failover stage 1", cluster(3).primary(0).readOnly(0).recordedExecuted(0, "0-1000-120"),
		want{state: StateFailed, reason: "Fencing", primary: ord(0), term: 1, cont: true,
			steps: []string{"optional fence-through-agent(0)", "fence-io-threads(1)", "fence-io-threads(2)"}, events: []string{EventFailoverStarted}, labels: map[int]string{0: LabelNone},
			check: messageHas("it had 0-1000-120 before")}},
	{"read-only primary and a replica with its own (errant) writes: the primary is reopened", cluster(3).primary(0).readOnly(0).errant(1, "0-1001-5"),
		want{state: StateDegraded, reason: "InstancesUnhealthy", primary: ord(0), term: 1, events: []string{EventErrantReplicaDetected},
			steps: []string{"set-read-only(0, false)"}}},
	// A primary promoted holding a former primary's transaction and killed moments later came
	// back without it (MariaDB's crash recovery cut it); both replicas hold it and a client was
	// told it committed. Found by the chaos suite's double fault: the transaction, written by
	// db-1, was counted as errant and the primary reopened.
	{"read-only primary lacking a former primary's transaction the replicas hold: failover stage 1", cluster(3).primary(0).readOnly(0).has(1, "0-1000-100,0-1001-50", "0-1000-100,0-1001-50").has(2, "0-1000-100,0-1001-50", "0-1000-100,0-1001-50"),
		want{state: StateFailed, reason: "Fencing", primary: ord(0), term: 1, cont: true,
			steps: []string{"optional fence-through-agent(0)", "fence-io-threads(1)", "fence-io-threads(2)"}, events: []string{EventFailoverStarted}, labels: map[int]string{0: LabelNone},
			check: messageHas("came back without transactions it had committed (db-2 has 0-1001-50)")}},
	// The chaos suite's second double fault: the only copy of the old primary's last
	// acknowledged write was on db-2, which the pass that found the primary restarted (and held
	// it read-only) had reported errant; the next pass left it out and reopened the primary.
	{"read-only primary lacking a former primary's transaction a replica holds, already reported errant: failover stage 1", cluster(3).primary(0).readOnly(0).has(2, "0-1000-100,0-1001-50", "0-1000-100,0-1001-50").recordedErrant(2, "0-1001-50"),
		want{state: StateFailed, reason: "Fencing", primary: ord(0), term: 1, cont: true,
			steps: []string{"optional fence-through-agent(0)", "fence-io-threads(1)", "fence-io-threads(2)"}, events: []string{EventFailoverStarted}, labels: map[int]string{0: LabelNone},
			check: messageHas("came back without transactions it had committed (db-2 has 0-1001-50)")}},
	{"read-only primary held while a replica is unobservable: status keeps the set recorded for it", cluster(3).primary(0).readOnly(0).down(2, 2*s, "connection refused").recordedExecuted(0, "0-1000-120"),
		want{state: StateDegraded, reason: "PrimaryRestarted", primary: ord(0), term: 1, check: func(t *testing.T, p Plan) {
			st, _ := p.InstanceStatus(0)
			if !st.Executed.Contains(set("0-1000-120")) {
				t.Errorf("status of the held primary: executed %s, want it to keep 0-1000-120", st.Executed)
			}
		}}},
	{"read-only primary held while a replica is unobservable: a replica holding more is not reported errant yet", cluster(3).primary(0).readOnly(0).down(2, 2*s, "connection refused").has(1, "0-1000-100,0-1001-50", "0-1000-100,0-1001-50"),
		want{state: StateDegraded, reason: "PrimaryRestarted", primary: ord(0), term: 1, check: func(t *testing.T, p Plan) {
			st, _ := p.InstanceStatus(1)
			if st.Role == RoleErrant || !st.Errant.IsEmpty() {
				t.Errorf("db-1 reported %s with errant %q while the primary is held", st.Role, st.Errant)
			}
		}}},
	{"read-only primary lacking what it was promoted holding: failover stage 1", cluster(3).primary(0).readOnly(0).recordedExecuted(0, "0-1000-100,0-1001-50"),
		want{state: StateFailed, reason: "Fencing", primary: ord(0), term: 1, cont: true,
			steps: []string{"optional fence-through-agent(0)", "fence-io-threads(1)", "fence-io-threads(2)"}, events: []string{EventFailoverStarted}, labels: map[int]string{0: LabelNone},
			check: messageHas("it had 0-1001-50 before")}},
	{"primary configured as a replica stops replicating", cluster(3).primary(0).source(0, 2).label(0, LabelPrimary), want{state: StateDegraded, reason: "InstancesUnhealthy", primary: ord(0), term: 1,
		steps: []string{"promote(0)"}}},

	// Failed and Lost (rules 7-9).
	{"primary unreachable for less than the grace period: wait", cluster(3).primary(0).down(0, time.Second, "i/o timeout"), want{state: StateDegraded, reason: "PrimaryUnreachable", primary: ord(0), term: 1,
		check: func(t *testing.T, p Plan) {
			if p.RequeueAfter != 2*time.Second {
				t.Errorf("RequeueAfter %s, want 2s", p.RequeueAfter)
			}
		}}},
	{"primary refusing connections: its server is down, failing over after 1s, not the grace period", cluster(3).primary(0).down(0, 300*time.Millisecond, "dial tcp 10.0.0.1:3306: connect: connection refused"), want{state: StateDegraded, reason: "PrimaryUnreachable", primary: ord(0), term: 1,
		check: func(t *testing.T, p Plan) {
			if p.RequeueAfter != 700*time.Millisecond {
				t.Errorf("RequeueAfter %s, want 700ms", p.RequeueAfter)
			}
		}}},
	{"primary refusing connections for 1s: failover stage 1", cluster(3).primary(0).down(0, time.Second, "dial tcp 10.0.0.1:3306: connect: connection refused"), want{state: StateFailed, reason: "Fencing", primary: ord(0), term: 1, cont: true,
		steps: []string{"optional fence-through-agent(0)", "fence-io-threads(1)", "fence-io-threads(2)"}, events: []string{EventFailoverStarted}, labels: map[int]string{0: LabelNone}}},
	{"primary refusing connections but its Pod is gone: the grace period", cluster(3).primary(0).down(0, time.Second, "connection refused").podGone(0), want{state: StateDegraded, reason: "PrimaryUnreachable", primary: ord(0), term: 1}},
	{"failover stage 1: fence every receiver", cluster(3).primary(0).down(0, 4*s, "connection refused"), want{state: StateFailed, reason: "Fencing", primary: ord(0), term: 1, cont: true,
		steps: []string{"optional fence-through-agent(0)", "fence-io-threads(1)", "fence-io-threads(2)"}, events: []string{EventFailoverStarted}, labels: map[int]string{0: LabelNone}}},
	{"failover stage 2: the replica holding everything is promoted", cluster(3).primary(0).down(0, 4*s, "connection refused").has(1, "0-1000-100", "0-1000-105").has(2, "0-1000-103", "0-1000-103").fenced(1).fenced(2),
		want{state: StateFailed, reason: "FailingOver", primary: ord(1), term: 2, events: []string{EventFailoverCompleted},
			steps: []string{"wait-applied(1, \"0-1000-105\", 1m0s)", "promote(1)", "record-Failover(term 2, 0 -> 1: primary db-0 unreachable for 4s: connection refused)", "optional configure-replica(2, source 1, semi-sync true)", "configure-semi-sync(1, true, wait 1)", "set-read-only(1, false)"}}},
	{"failover stage 2: status records the set the candidate is promoted holding", cluster(3).primary(0).down(0, 4*s, "connection refused").has(1, "0-1000-100", "0-1000-105").has(2, "0-1000-103", "0-1000-103").fenced(1).fenced(2),
		want{state: StateFailed, reason: "FailingOver", primary: ord(1), term: 2, events: []string{EventFailoverCompleted},
			steps: []string{"wait-applied(1, \"0-1000-105\", 1m0s)", "promote(1)", "record-Failover(term 2, 0 -> 1: primary db-0 unreachable for 4s: connection refused)", "optional configure-replica(2, source 1, semi-sync true)", "configure-semi-sync(1, true, wait 1)", "set-read-only(1, false)"},
			check: func(t *testing.T, p Plan) {
				for _, st := range p.Instances {
					if want := map[int]string{1: "0-1000-105", 2: "0-1000-103"}[st.Ordinal]; want != "" && st.Executed.String() != want {
						t.Errorf("%s executed %s in status, want %s", st.Name, st.Executed, want)
					}
				}
			}}},
	{"failover tie: the fully applied replica wins", cluster(3).primary(0).down(0, 4*s, "x").has(1, "0-1000-100", "0-1000-105").has(2, "0-1000-105", "0-1000-105").fenced(1).fenced(2), want{state: StateFailed, reason: "FailingOver", primary: ord(2), term: 2, events: []string{EventFailoverCompleted},
		steps: []string{"wait-applied(2, \"0-1000-105\", 1m0s)", "promote(2)", "record-Failover(term 2, 0 -> 2: primary db-0 unreachable for 4s: x)", "optional configure-replica(1, source 2, semi-sync true)", "configure-semi-sync(2, true, wait 1)", "set-read-only(2, false)"}}},
	{"failover tie: the lowest ordinal wins", cluster(3).primary(0).down(0, 4*s, "x").fenced(1).fenced(2), want{state: StateFailed, reason: "FailingOver", primary: ord(1), term: 2, events: []string{EventFailoverCompleted},
		steps: []string{"wait-applied(1, \"0-1000-100\", 1m0s)", "promote(1)", "record-Failover(term 2, 0 -> 1: primary db-0 unreachable for 4s: x)", "optional configure-replica(2, source 1, semi-sync true)", "configure-semi-sync(1, true, wait 1)", "set-read-only(1, false)"}}},
	{"failover refused: incomparable replica sets", cluster(3).primary(0).down(0, 4*s, "x").has(1, "0-1000-105", "0-1000-105").has(2, "0-1000-103,1-1000-7", "0-1000-103,1-1000-7").fenced(1).fenced(2),
		want{state: StateFailed, reason: "NoSafeCandidate", primary: ord(0), term: 1, events: []string{EventFailoverRefused}, check: messageHas("lacks")}},
	{"failover skips the errant replica even when it is the most advanced", cluster(3).primary(0).down(0, 4*s, "x").recordedErrant(1, "0-1002-5").has(1, "0-1000-105,0-1002-5", "0-1000-105").has(2, "0-1000-105", "0-1000-105").fenced(1).fenced(2),
		want{state: StateFailed, reason: "FailingOver", primary: ord(2), term: 2, events: []string{EventFailoverCompleted},
			steps: []string{"wait-applied(2, \"0-1000-105\", 1m0s)", "promote(2)", "record-Failover(term 2, 0 -> 2: primary db-0 unreachable for 4s: x)", "configure-semi-sync(2, true, wait 1)", "set-read-only(2, false)"}}},
	{"failover refused: only the errant replica has some acknowledged writes", cluster(3).primary(0).down(0, 4*s, "x").recordedErrant(1, "0-1002-5").has(1, "0-1000-107,0-1002-5", "0-1000-107").has(2, "0-1000-105", "0-1000-105").fenced(1).fenced(2),
		want{state: StateFailed, reason: "NoSafeCandidate", primary: ord(0), term: 1, events: []string{EventFailoverRefused}}},
	{"failover refused: the most advanced replica cannot apply", cluster(3).primary(0).down(0, 4*s, "x").has(1, "0-1000-100", "0-1000-105").has(2, "0-1000-103", "0-1000-103").sqlError(1, 1062, "Duplicate entry").fenced(1).fenced(2),
		want{state: StateFailed, reason: "NoSafeCandidate", primary: ord(0), term: 1, events: []string{EventFailoverRefused}, check: messageHas("cannot apply")}},
	{"two-instance cluster fails over to its only replica", cluster(2).primary(0).down(0, 5*s, "x").fenced(1), want{state: StateFailed, reason: "FailingOver", primary: ord(1), term: 2, events: []string{EventFailoverCompleted},
		steps: []string{"wait-applied(1, \"0-1000-100\", 1m0s)", "promote(1)", "record-Failover(term 2, 0 -> 1: primary db-0 unreachable for 5s: x)", "configure-semi-sync(1, true, wait 1)", "set-read-only(1, false)"}}},
	{"majority unobservable: Lost, nothing destructive", cluster(3).primary(0).down(0, 10*s, "x").down(2, 10*s, "no route to host"), want{state: StateLost, reason: "TooFewInstances", primary: ord(0), term: 1,
		events: []string{EventClusterLost}, check: messageHas("db-2")}},
	{"Lost stays Lost when spec.replicas is lowered: the replica being removed still counts", cluster(3).primary(0).down(0, 10*s, "x").down(2, 10*s, "no route to host").replicas(2),
		want{state: StateLost, reason: "TooFewInstances", primary: ord(0), term: 1, events: []string{EventClusterLost}, check: messageHas("db-2")}},
	{"MariaDB five with one replica unobservable is Lost (one ack may be on it)", cluster(5).primary(0).down(0, 10*s, "x").down(4, 10*s, "x"), want{state: StateLost, reason: "TooFewInstances", primary: ord(0), term: 1, events: []string{EventClusterLost}}},
	{"MySQL five with one replica unobservable fails over (two acks)", cluster(5).mysqlAcks().primary(0).down(0, 10*s, "x").down(4, 10*s, "x"), want{state: StateFailed, reason: "Fencing", primary: ord(0), term: 1, cont: true,
		steps: []string{"optional fence-through-agent(0)", "fence-io-threads(1)", "fence-io-threads(2)", "fence-io-threads(3)"}, events: []string{EventFailoverStarted}}},
	{"wrong credentials everywhere: no failover, the condition says how to fix the Secret", cluster(3).primary(0).down(0, 10*s, "Error 1045: Access denied for user 'kura-operator'").down(1, 10*s, "Error 1045: Access denied").down(2, 10*s, "Error 1045: Access denied"),
		want{state: StateDegraded, reason: "CredentialsRejected", primary: ord(0), term: 1, check: messageHas("operator-password")}},
	{"the primary alone refuses the password: no failover", cluster(3).primary(0).down(0, 10*s, "Error 1045 (28000): Access denied for user 'kura-operator'@'10.0.0.9'"),
		want{state: StateDegraded, reason: "CredentialsRejected", primary: ord(0), term: 1, labels: map[int]string{0: LabelPrimary}}},
	{"auto-failover off: report, do nothing", cluster(3).primary(0).down(0, 10*s, "x").autoFailover(false), want{state: StateFailed, reason: "AutoFailoverDisabled", primary: ord(0), term: 1}},
	{"auto-failover off: a switchover request fails over by hand to a safe target", cluster(3).primary(0).down(0, 10*s, "x").autoFailover(false).switchover("m1", 2).fenced(1).fenced(2),
		want{state: StateFailed, reason: "FailingOver", primary: ord(2), term: 2, events: []string{EventFailoverCompleted},
			steps: []string{"wait-applied(2, \"0-1000-100\", 1m0s)", "promote(2)", "record-Failover(term 2, 0 -> 2: primary db-0 unreachable for 10s: x; requested by spec.switchover (id m1))",
				"record-switchover(m1, target 2, Completed: failed over to db-2 (term 2): the primary was unreachable)", "optional configure-replica(1, source 2, semi-sync true)", "configure-semi-sync(2, true, wait 1)", "set-read-only(2, false)"}}},
	// Rule 15: automatic failover never crosses an asynchronous window.
	{"semi-sync off: automatic failover refused", cluster(3).specSemiSync(false).primary(0).down(0, 10*s, "x"),
		want{state: StateFailed, reason: "AsynchronousWindow", primary: ord(0), term: 1, events: []string{EventFailoverRefused}}},
	{"recorded asynchronous window: automatic failover refused even with semi-sync on again", cluster(3).primary(0).async("0-1000-50", "0-1000-100").down(0, 10*s, "x"),
		want{state: StateFailed, reason: "AsynchronousWindow", primary: ord(0), term: 1, events: []string{EventFailoverRefused}, check: messageHas(`"0-1000-50"`)}},
	{"asynchronous window: a switchover request fails over by hand, recorded as possibly losing writes", cluster(3).specSemiSync(false).primary(0).down(0, 10*s, "x").switchover("m1", 2).fenced(1).fenced(2),
		want{state: StateFailed, reason: "FailingOver", primary: ord(2), term: 2, events: []string{EventFailoverCompleted},
			steps: []string{"wait-applied(2, \"0-1000-100\", 1m0s)", "promote(2)", "record-Failover(term 2, 0 -> 2: primary db-0 unreachable for 10s: x; requested by spec.switchover (id m1))",
				"record-switchover(m1, target 2, Completed: failed over to db-2 (term 2): the primary was unreachable)", "optional configure-replica(1, source 2, semi-sync false)", "configure-semi-sync(2, false, wait 0)", "set-read-only(2, false)"},
			check: func(t *testing.T, p Plan) {
				for _, s := range p.Steps {
					if r, ok := s.(RecordTopologyChange); ok && !r.MayLoseAcknowledged {
						t.Errorf("%s must say acknowledged writes may be lost", r)
					}
				}
			}}},
	{"single-instance primary down: nothing to fail over to", cluster(1).primary(0).down(0, 10*s, "x"), want{state: StateFailed, reason: "SingleInstance", primary: ord(0), term: 1}},
	{"writable replica is fenced even while the primary is down", cluster(3).primary(0).down(0, time.Second, "x").writable(1), want{state: StateDegraded, reason: "PrimaryUnreachable", primary: ord(0), term: 1,
		steps: []string{"fence(1, or stop it)"}, events: []string{EventInstanceFenced}}},

	// The old primary returns (rule 10).
	{"returning old primary, writable: fenced first", cluster(3).primary(1).term(2).unconfigured(0).writable(0), want{state: StateDegraded, reason: "InstanceFenced", primary: ord(1), term: 2, cont: true,
		steps: []string{"fence(0, or stop it)"}, events: []string{EventInstanceFenced}}},
	{"returning old primary, clean: rejoins as a replica", cluster(3).primary(1).term(2).unconfigured(0), want{state: StateDegraded, reason: "InstancesUnhealthy", primary: ord(1), term: 2,
		steps: []string{"optional configure-replica(0, source 1, semi-sync true)"}, events: []string{EventReplicaConfigured}}},
	{"errant instance that was never a primary: left to the policy", cluster(3).primary(1).term(2).unconfigured(0).errant(0, "0-1000-101"), want{state: StateDegraded, reason: "InstancesUnhealthy", primary: ord(1), term: 2,
		events: []string{EventErrantReplicaDetected}, labels: map[int]string{0: LabelNone}, check: reasonHas(0, "0-1000-101")}},
	// Rule 15b: an old primary whose extra transactions reached no replica heals by itself.
	{"returning old primary with writes nobody received: kept aside, re-cloned, whatever the policy", cluster(3).primary(1).term(2).formerPrimary(0).unconfigured(0).errant(0, "0-1000-101"),
		want{state: StateDegraded, reason: "InstancesUnhealthy", primary: ord(1), term: 2,
			steps:  []string{"reclone(0 from 2: kept unacknowledged transactions aside: 0-1000-101 (written by db-0, received by no other instance, so never acknowledged))"},
			events: []string{EventInstanceCloneStarted, EventKeptAside, EventErrantReplicaDetected}, labels: map[int]string{0: LabelNone},
			check: func(t *testing.T, p Plan) {
				if len(p.KeptAside) != 1 || p.KeptAside[0].Ordinal != 0 || p.KeptAside[0].GTIDs.String() != "0-1000-101" {
					t.Errorf("kept aside: %+v", p.KeptAside)
				}
			}}},
	{"returning old primary whose extra writes another instance received: errant, left to the policy", cluster(3).primary(1).term(2).formerPrimary(0).unconfigured(0).errant(0, "0-1000-101").has(2, "0-1000-100", "0-1000-101"),
		want{state: StateDegraded, reason: "InstancesUnhealthy", primary: ord(1), term: 2, events: []string{EventErrantReplicaDetected}}},
	{"returning old primary while a replica cannot be observed: errant, left to the policy", cluster(3).primary(1).term(2).formerPrimary(0).unconfigured(0).errant(0, "0-1000-101").down(2, s, "x"),
		want{state: StateDegraded, reason: "InstancesUnhealthy", primary: ord(1), term: 2, events: []string{EventErrantReplicaDetected}}},
	{"returning old primary with semi-sync off: errant, left to the policy", cluster(3).specSemiSync(false).primary(1).term(2).formerPrimary(0).unconfigured(0).errant(0, "0-1000-101"),
		want{state: StateDegraded, reason: "InstancesUnhealthy", primary: ord(1), term: 2, events: []string{EventErrantReplicaDetected, EventReplicaConfigured},
			steps: []string{"optional configure-replica(2, source 1, semi-sync false)"}}},
	{"returning old primary with writes nobody received, re-cloned moments ago: nothing kept aside until the backoff ends", cluster(3).primary(1).term(2).formerPrimary(0).unconfigured(0).errant(0, "0-1000-101").recloned(0, 1, 10*s, -1),
		want{state: StateDegraded, reason: "InstancesUnhealthy", primary: ord(1), term: 2, events: []string{EventRecloneBackedOff, EventErrantReplicaDetected},
			check: func(t *testing.T, p Plan) {
				if len(p.KeptAside) != 0 {
					t.Errorf("kept aside while the re-clone waits: %+v", p.KeptAside)
				}
			}}},

	// Switchover (rule 11).
	{"switchover by request", cluster(3).primary(0).switchover("s1", 1), want{state: StateSwitching, reason: "Switchover", primary: ord(1), term: 2,
		steps: []string{"fence(0)", "wait-caught-up(1, source 0, 1m0s)", "promote(1)", "record-Switchover(term 2, 0 -> 1: requested by spec.switchover (id s1))",
			"record-switchover(s1, target 1, Completed: db-1 is the primary (term 2))", "optional configure-replica(2, source 1, semi-sync true)", "optional configure-replica(0, source 1, semi-sync true)", "configure-semi-sync(1, true, wait 1)", "set-read-only(1, false)"},
		events: []string{EventSwitchoverStarted, EventSwitchoverCompleted},
		check: func(t *testing.T, p Plan) {
			if len(p.OnFailure) == 0 || p.OnFailure[0].String() != "set-read-only(0, false)" {
				t.Errorf("OnFailure must make the old primary writable again: %v", p.OnFailure)
			}
		}}},
	{"switchover to a lagging target is refused", cluster(3).primary(0).lagging(1, 45*s).switchover("s1", 1), want{state: StateDegraded, reason: "InstancesUnhealthy", primary: ord(0), term: 1,
		steps: []string{"record-switchover(s1, target 1, Refused: refused: target db-1 is not a healthy replica: lags 45s behind the primary (maxLag 30s))"}, events: []string{EventSwitchoverRefused}}},
	{"switchover to an errant target is refused", cluster(3).primary(0).errant(2, "0-1002-1").switchover("s1", 2), want{state: StateDegraded, reason: "InstancesUnhealthy", primary: ord(0), term: 1,
		events: []string{EventSwitchoverRefused, EventErrantReplicaDetected}, steps: []string{"record-switchover(s1, target 2, Refused: refused: target db-2 is not a healthy replica: errant: has transactions the primary lacks (0-1002-1))"}}},
	{"switchover to an unreachable target is refused", cluster(3).primary(0).down(2, 5*s, "refused").switchover("s1", 2), want{state: StateDegraded, reason: "InstancesUnhealthy", primary: ord(0), term: 1,
		events: []string{EventSwitchoverRefused}, steps: []string{"record-switchover(s1, target 2, Refused: refused: target db-2 is not a healthy replica: unreachable for 5s: refused)"}}},
	{"switchover to an absent ordinal is refused", cluster(3).primary(0).switchover("s1", 5), want{state: StateHealthy, reason: "AllInstancesHealthy", primary: ord(0), term: 1,
		events: []string{EventSwitchoverRefused}, steps: []string{"record-switchover(s1, target 5, Refused: refused: target db-5 is not an instance of the cluster (spec.replicas 3))"}}},
	{"switchover to self completes at once", cluster(3).primary(0).switchover("s1", 0), want{state: StateHealthy, reason: "AllInstancesHealthy", primary: ord(0), term: 1,
		steps: []string{"record-switchover(s1, target 0, Completed: db-0 is already the primary)"}, events: []string{EventSwitchoverCompleted}}},
	{"handled switchover request is not repeated", cluster(3).primary(1).term(2).switchover("s1", 1).handled("s1"), want{state: StateHealthy, reason: "AllInstancesHealthy", primary: ord(1), term: 2}},
	{"primary Pod terminating: switch over to the least lagging replica", cluster(3).primary(0).terminating(0).lagging(1, 10*s), want{state: StateSwitching, reason: "Switchover", primary: ord(2), term: 2,
		events: []string{EventSwitchoverStarted, EventSwitchoverCompleted},
		steps: []string{"fence(0)", "wait-caught-up(2, source 0, 1m0s)", "promote(2)", "record-Switchover(term 2, 0 -> 2: the primary's Pod is being deleted)",
			"optional configure-replica(1, source 2, semi-sync true)", "optional configure-replica(0, source 2, semi-sync true)", "configure-semi-sync(2, true, wait 1)", "set-read-only(2, false)"}}},
	{"primary Pod terminating with no healthy replica: Degraded, no switchover", cluster(3).primary(0).terminating(0).down(1, s, "x").down(2, s, "x"), want{state: StateDegraded, reason: "InstancesUnhealthy", primary: ord(0), term: 1,
		check: messageHas("no healthy replica can take over")}},
	{"scale-down of the primary's ordinal switches over first", cluster(3).primary(2).replicas(2), want{state: StateSwitching, reason: "Switchover", primary: ord(0), term: 2,
		events: []string{EventSwitchoverStarted, EventSwitchoverCompleted},
		steps: []string{"fence(2)", "wait-caught-up(0, source 2, 1m0s)", "promote(0)", "record-Switchover(term 2, 2 -> 0: scale-down to 2 instances removes the primary's ordinal)",
			"optional configure-replica(1, source 0, semi-sync true)", "optional configure-replica(2, source 0, semi-sync true)", "configure-semi-sync(0, true, wait 1)", "set-read-only(0, false)"},
		check: func(t *testing.T, p Plan) {
			if p.MinInstances != 3 {
				t.Errorf("MinInstances %d, want 3 until the primary has moved", p.MinInstances)
			}
		}}},
	{"scale-down of a replica: it leaves the read set and stops receiving before it may go", cluster(3).primary(0).replicas(2), want{state: StateHealthy, reason: "AllInstancesHealthy", primary: ord(0), term: 1,
		labels: map[int]string{2: LabelNone}, steps: []string{"optional fence-io-threads(2)"}, check: func(t *testing.T, p Plan) {
			if p.MinInstances != 3 {
				t.Errorf("MinInstances %d, want 3 while its receiver runs", p.MinInstances)
			}
		}}},
	{"scale-down of a stopped replica whose writes a staying replica holds: it goes", cluster(3).primary(0).replicas(2).fenced(2), want{state: StateHealthy, reason: "AllInstancesHealthy", primary: ord(0), term: 1,
		labels: map[int]string{2: LabelNone}, check: func(t *testing.T, p Plan) {
			if p.MinInstances != 2 {
				t.Errorf("MinInstances %d, want 2", p.MinInstances)
			}
		}}},
	{"scale-down of a replica holding writes no staying replica has: kept", cluster(3).primary(0).has(0, "0-1000-105", "0-1000-105").has(1, "0-1000-103", "0-1000-103").has(2, "0-1000-104", "0-1000-105").replicas(2).fenced(2),
		want{state: StateHealthy, reason: "AllInstancesHealthy", primary: ord(0), term: 1, check: func(t *testing.T, p Plan) {
			if p.MinInstances != 3 {
				t.Errorf("MinInstances %d, want 3 until replica 1 holds 0-1000-105", p.MinInstances)
			}
			if st, _ := p.InstanceStatus(2); !strings.Contains(st.Reason, "no replica that stays holds 0-1000-105") {
				t.Errorf("reason %q", st.Reason)
			}
		}}},

	// Rolling changes (rule 14).
	{"rolling: replicas first, the highest ordinal first", cluster(3).primary(0).revision("r2", 0, 1, 2), want{state: StateDegraded, reason: "RollingChange", primary: ord(0), term: 1,
		steps: []string{"restart(2: run revision r2)"}, events: []string{EventInstanceRestarted}, labels: map[int]string{2: LabelNone}}},
	{"rolling: one at a time, waiting until the last one caught up", cluster(3).primary(0).revision("r2", 0, 1).lagging(2, 40*s), want{state: StateDegraded, reason: "InstancesUnhealthy", primary: ord(0), term: 1}},
	{"rolling: replicas done, then switch over from the primary", cluster(3).primary(0).revision("r2", 0), want{state: StateSwitching, reason: "Switchover", primary: ord(1), term: 2,
		events: []string{EventSwitchoverStarted, EventSwitchoverCompleted},
		steps: []string{"fence(0)", "wait-caught-up(1, source 0, 1m0s)", "promote(1)", "record-Switchover(term 2, 0 -> 1: rolling change to revision r2)",
			"optional configure-replica(2, source 1, semi-sync true)", "optional configure-replica(0, source 1, semi-sync true)", "configure-semi-sync(1, true, wait 1)", "set-read-only(1, false)"}}},
	{"rolling: the old primary is restarted as a replica last", cluster(3).primary(1).term(2).revision("r2", 0), want{state: StateDegraded, reason: "RollingChange", primary: ord(1), term: 2,
		steps: []string{"restart(0: run revision r2)"}, events: []string{EventInstanceRestarted}}},

	// Paused.
	{"paused: observe only, even with a failed primary", cluster(3).primary(0).down(0, 30*s, "x").paused(), want{state: StatePaused, reason: "Paused", primary: ord(0), term: 1,
		check: messageHas("fence-through-agent(0), fence-io-threads(1), fence-io-threads(2)")}},
	{"paused: a re-clone due is not recorded as started", cluster(3).primary(0).recloned(2, 2, 10*time.Minute, -1).ioError(2, 1236, gtidGone).paused(),
		want{state: StatePaused, reason: "Paused", primary: ord(0), term: 1, check: both(messageHas("reclone(2 from 1"), recloneRecord(2, Reclone{Count: 2,
			First: now.Add(-30 * time.Minute), Last: now.Add(-5 * time.Minute), Reason: binlogsGone, Donor: 1, Pod: "old-pod", Finished: now.Add(-10 * time.Minute)}))}},
	{"paused: a switchover request waits", cluster(3).primary(0).switchover("s1", 1).paused(), want{state: StatePaused, reason: "Paused", primary: ord(0), term: 1}},
}

func TestDecide(t *testing.T) {
	for _, c := range decideCases {
		t.Run(c.name, func(t *testing.T) {
			obs := c.f.obs()
			p := Decide(obs)
			w := c.w
			if p.State != w.state || p.Reason != w.reason {
				t.Fatalf("state %s/%s, want %s/%s\nmessage: %s\nsteps: %s", p.State, p.Reason, w.state, w.reason, p.Message, actionSteps(p))
			}
			if p.Message == "" {
				t.Errorf("plan has no message")
			}
			if got, want := actionSteps(p), strings.Join(w.steps, "\n"); got != want {
				t.Errorf("steps:\n%s\nwant:\n%s", got, want)
			}
			if got, want := strings.Join(eventReasons(p), ","), strings.Join(w.events, ","); got != want {
				t.Errorf("events %q, want %q", got, want)
			}
			if w.primary != nil && p.Primary != *w.primary {
				t.Errorf("primary %d, want %d", p.Primary, *w.primary)
			}
			if w.term != 0 && p.Term != w.term {
				t.Errorf("term %d, want %d", p.Term, w.term)
			}
			if p.Continue != w.cont {
				t.Errorf("continue %t, want %t", p.Continue, w.cont)
			}
			for o, l := range w.labels {
				st, ok := p.InstanceStatus(o)
				if !ok || st.Label != l {
					t.Errorf("instance %d label %q, want %q (reason %q)", o, st.Label, l, st.Reason)
				}
			}
			if len(p.Instances) != len(obs.Instances) {
				t.Errorf("%d instance statuses for %d instances", len(p.Instances), len(obs.Instances))
			}
			checkConditions(t, p)
			if w.check != nil {
				w.check(t, p)
			}
		})
	}
}

// TestDecideDoesNotMutate runs every case on a deep copy and compares it with the input.
func TestDecideDoesNotMutate(t *testing.T) {
	for _, c := range decideCases {
		in := c.f.obs()
		before := deepCopy(in)
		Decide(in)
		if !reflect.DeepEqual(before, in) {
			t.Errorf("%s: Decide changed its input", c.name)
		}
		// Deciding twice on the same observation gives the same plan (no hidden state).
		if a, b := Decide(in), Decide(in); !reflect.DeepEqual(a, b) {
			t.Errorf("%s: Decide is not deterministic", c.name)
		}
	}
}

// TestEveryStateHasACase keeps the table honest against the state table of docs/clustering.md.
func TestEveryStateHasACase(t *testing.T) {
	seen := map[State]bool{}
	for _, c := range decideCases {
		seen[c.w.state] = true
	}
	for _, s := range []State{StateBootstrapping, StateHealthy, StateDegraded, StateFailed, StateLost, StateSwitching, StatePaused} {
		if !seen[s] {
			t.Errorf("no case ends in state %s", s)
		}
	}
	if len(decideCases) < 30 {
		t.Errorf("%d cases; the table must cover at least 30", len(decideCases))
	}
}

func checkConditions(t *testing.T, p Plan) {
	t.Helper()
	for _, ct := range []string{ConditionAvailable, ConditionHealthy, ConditionDegraded} {
		c, ok := p.Condition(ct)
		if !ok || c.Reason == "" || c.Message == "" {
			t.Errorf("condition %s missing or without reason/message: %+v", ct, c)
		}
	}
	h, _ := p.Condition(ConditionHealthy)
	if (h.Status == ConditionTrue) != (p.State == StateHealthy) {
		t.Errorf("Healthy=%s in state %s", h.Status, p.State)
	}
}

func actionSteps(p Plan) string {
	var out []string
	for _, s := range p.Steps {
		inner := s
		if o, ok := s.(Optional); ok {
			inner = o.Step
		}
		switch inner.(type) {
		case EmitEvent, SetRoleLabel:
			continue
		}
		out = append(out, s.String())
	}
	return strings.Join(out, "\n")
}

func labelSteps(p Plan) string {
	var out []string
	for _, s := range p.Steps {
		if o, ok := s.(Optional); ok {
			if _, ok := o.Step.(SetRoleLabel); ok {
				out = append(out, s.String())
			}
		}
	}
	return strings.Join(out, ",")
}

func eventReasons(p Plan) []string {
	var out []string
	for _, s := range p.Steps {
		if e, ok := s.(EmitEvent); ok {
			out = append(out, e.Reason)
		}
	}
	return out
}

const (
	gtidGone    = "Could not find GTID state requested by slave in any binlog files"
	binlogsGone = "the primary no longer has the binary logs this replica needs"
)

// both runs every check.
func both(checks ...func(*testing.T, Plan)) func(*testing.T, Plan) {
	return func(t *testing.T, p Plan) {
		t.Helper()
		for _, c := range checks {
			c(t, p)
		}
	}
}

// recloneRecord checks the re-clone record the plan leaves for an ordinal.
func recloneRecord(ordinal int, want Reclone) func(*testing.T, Plan) {
	return func(t *testing.T, p Plan) {
		t.Helper()
		if got := p.Reclones[ordinal]; !reflect.DeepEqual(got, want) {
			t.Errorf("re-clone record of %d:\n got %+v\nwant %+v", ordinal, got, want)
		}
	}
}

// eventHas checks that an event of the reason says sub.
func eventHas(reason, sub string) func(*testing.T, Plan) {
	return func(t *testing.T, p Plan) {
		t.Helper()
		for _, s := range p.Steps {
			if e, ok := s.(EmitEvent); ok && e.Reason == reason && strings.Contains(e.Message, sub) {
				return
			}
		}
		t.Errorf("no %s event says %q", reason, sub)
	}
}

func messageHas(sub string) func(*testing.T, Plan) {
	return func(t *testing.T, p Plan) {
		t.Helper()
		if !strings.Contains(p.Message, sub) {
			t.Errorf("message %q lacks %q", p.Message, sub)
		}
	}
}

func reasonHas(ordinal int, sub string) func(*testing.T, Plan) {
	return func(t *testing.T, p Plan) {
		t.Helper()
		st, _ := p.InstanceStatus(ordinal)
		if !strings.Contains(st.Reason, sub) {
			t.Errorf("instance %d reason %q lacks %q", ordinal, st.Reason, sub)
		}
	}
}

// TestDecideMySQLPrimaryBehindIsNotReopened: MySQL GTIDs carry the server's UUID, not its
// server_id, so a read-only MySQL primary lacking what a replica received is caught by the
// whole difference (errant transactions status reported are set aside).
func TestDecideMySQLPrimaryBehindIsNotReopened(t *testing.T) {
	const uuid = "3e11fa47-71ca-11e1-9e33-c80aa9429562"
	mset := func(s string) gtid.Set { return gtid.MustParse(gtid.MySQL, s) }
	f := cluster(3).mysqlAcks().primary(0).readOnly(0)
	for i := range f.o.Instances {
		f.o.Instances[i].SQL.Executed = mset(uuid + ":1-100")
		f.o.Instances[i].SQL.Retrieved = mset(uuid + ":1-100")
	}
	f.in(1).SQL.Retrieved = mset(uuid + ":1-101")
	p := Decide(f.obs())
	if p.State != StateFailed || p.Reason != "Fencing" || !strings.Contains(p.Message, "db-1 has "+uuid+":101") {
		t.Fatalf("state %s/%s: %s", p.State, p.Reason, p.Message)
	}
	f.in(1).SQL.Retrieved = mset(uuid + ":1-100")
	if p := Decide(f.obs()); actionSteps(p) != "set-read-only(0, false)" {
		t.Fatalf("a primary holding everything must be reopened: %s", actionSteps(p))
	}
}
