package clustering

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/kura-db/kura/internal/gtid"
)

// fx builds an Observation one readable call at a time, so each table case is one line that
// reads like the topology: cluster(3).primary(0).lagging(2, 45*time.Second).errant(1, "0-1002-5").
//
// Defaults: every Pod exists and is ready, every instance is reachable, read-only, has executed
// base (MariaDB flavor) and no replication; the spec is the API's defaults (semi-sync on, maxLag
// 30s, failover grace 3s, apply timeout 60s, Manual errant policy, automatic failover on).
type fx struct{ o Observation }

const base = "0-1000-100"

func set(s string) gtid.Set { return gtid.MustParse(gtid.MariaDB, s) }

func cluster(n int) *fx {
	f := &fx{o: Observation{
		Cluster: "db",
		Spec: Spec{Replicas: n, SemiSync: true, MaxLag: 30 * time.Second, FailoverGrace: 3 * time.Second, DownGrace: time.Second,
			ApplyTimeout: 60 * time.Second, ErrantPolicy: ErrantManual, AutoFailover: true},
		Recorded: Recorded{Primary: NoPrimary},
		Engine:   EngineTraits{MaxAckCount: 1},
		Now:      now,
	}}
	for i := 0; i < n; i++ {
		f.o.Instances = append(f.o.Instances, Instance{
			Ordinal: i, Name: fmt.Sprintf("db-%d", i), Host: fmt.Sprintf("db-%d.db-instances", i), Port: 3306,
			Pod: PodFacts{Exists: true, Phase: "Running", Ready: true, UID: fmt.Sprintf("pod-%d", i)},
			SQL: &SQLFacts{ServerID: uint32(1000 + i), ReadOnly: true, Executed: set(base),
				SemiSync: SemiSyncFacts{ReplicaEnabled: true, AfterSync: true, WaitCount: 1}},
		})
	}
	return f
}

// now is the time of every fixture's observation.
var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// recloned records that i was re-cloned count times, the first 30 minutes ago, the latest from
// a Pod other than the one it has now; finished and healthy are how long ago the latest
// finished and since when i is healthy (negative: not yet).
func (f *fx) recloned(i, count int, finished, healthy time.Duration) *fx {
	r := Reclone{Count: count, First: now.Add(-30 * time.Minute), Last: now.Add(-5 * time.Minute),
		Reason: "the primary no longer has the binary logs this replica needs", Donor: 1, Pod: "old-pod"}
	if finished >= 0 {
		r.Finished = now.Add(-finished)
	}
	if healthy >= 0 {
		r.HealthySince = now.Add(-healthy)
	}
	if f.o.Recorded.Reclones == nil {
		f.o.Recorded.Reclones = map[int]Reclone{}
	}
	f.o.Recorded.Reclones[i] = r
	return f
}

// samePod makes i's Pod the one its latest re-clone was asked of (it has not gone yet).
func (f *fx) samePod(i int) *fx { f.in(i).Pod.UID = f.o.Recorded.Reclones[i].Pod; return f }

// fresh makes every instance empty, as after initialisation.
func (f *fx) fresh() *fx {
	for i := range f.o.Instances {
		if s := f.o.Instances[i].SQL; s != nil {
			s.Executed = gtid.Set{}
		}
	}
	return f
}

func (f *fx) in(i int) *Instance {
	for k := range f.o.Instances {
		if f.o.Instances[k].Ordinal == i {
			return &f.o.Instances[k]
		}
	}
	panic(fmt.Sprintf("fixture has no instance %d", i))
}

// primary records i as the primary (term 1 unless set), writable with semi-sync on, and makes
// every other instance a healthy replica of it.
func (f *fx) primary(i int) *fx {
	f.o.Recorded.Primary = i
	if f.o.Recorded.Term == 0 {
		f.o.Recorded.Term = 1
	}
	p := f.in(i)
	p.SQL.ReadOnly, p.SQL.Replica = false, nil
	p.SQL.SemiSync.SourceEnabled = f.o.Spec.SemiSync && f.o.Spec.Replicas > 1
	p.Pod.RoleLabel = LabelPrimary
	for _, in := range f.o.Instances {
		if in.Ordinal != i {
			f.replica(in.Ordinal)
		}
	}
	return f
}

// replica makes i a healthy replica of the recorded primary.
func (f *fx) replica(i int) *fx { return f.source(i, f.o.Recorded.Primary) }

// source makes i replicate from ordinal src, threads running, no lag.
func (f *fx) source(i, src int) *fx {
	in := f.in(i)
	if in.SQL == nil {
		panic("source on an unreachable instance")
	}
	lag := time.Duration(0)
	in.SQL.Replica = &ReplicaFacts{SourceHost: fmt.Sprintf("db-%d.db-instances", src), SourcePort: 3306,
		IORunning: true, SQLRunning: true, Lag: &lag}
	in.SQL.Retrieved = in.SQL.Executed
	in.Pod.RoleLabel = LabelReplica
	return f
}

func (f *fx) term(t int64) *fx { f.o.Recorded.Term = t; return f }

func (f *fx) lagging(i int, lag time.Duration) *fx { f.in(i).SQL.Replica.Lag = &lag; return f }

// errant adds transactions to i's executed set that the primary does not have.
func (f *fx) errant(i int, gtids string) *fx {
	s := f.in(i).SQL
	s.Executed = s.Executed.Union(set(gtids))
	return f
}

// has sets i's executed and retrieved sets.
func (f *fx) has(i int, executed, retrieved string) *fx {
	s := f.in(i).SQL
	s.Executed, s.Retrieved = set(executed), set(retrieved)
	return f
}

// down makes i unreachable for d with err.
func (f *fx) down(i int, d time.Duration, err string) *fx {
	in := f.in(i)
	in.SQL, in.UnreachableFor, in.Error = nil, d, err
	return f
}

func (f *fx) podGone(i int) *fx         { f.in(i).Pod.Exists = false; return f }
func (f *fx) writable(i int) *fx        { f.in(i).SQL.ReadOnly = false; return f }
func (f *fx) readOnly(i int) *fx        { f.in(i).SQL.ReadOnly = true; return f }
func (f *fx) terminating(i int) *fx     { f.in(i).Pod.Terminating = true; return f }
func (f *fx) cloning(i int) *fx         { f.in(i).Cloning = true; return f }
func (f *fx) label(i int, l string) *fx { f.in(i).Pod.RoleLabel = l; return f }

func (f *fx) sqlError(i, errno int, msg string) *fx {
	r := f.in(i).SQL.Replica
	r.SQLRunning, r.SQLErrno, r.SQLError, r.Lag = false, errno, msg, nil
	return f
}

func (f *fx) ioError(i, errno int, msg string) *fx {
	r := f.in(i).SQL.Replica
	r.IORunning, r.IOErrno, r.IOError = false, errno, msg
	return f
}

// stopped stops both replication threads of i without an error.
func (f *fx) stopped(i int) *fx {
	r := f.in(i).SQL.Replica
	r.IORunning, r.SQLRunning, r.Lag = false, false, nil
	return f
}

// fenced stops i's receiver, as the first stage of a failover does.
func (f *fx) fenced(i int) *fx {
	r := f.in(i).SQL.Replica
	r.IORunning, r.Lag = false, nil
	return f
}

func (f *fx) unconfigured(i int) *fx { f.in(i).SQL.Replica = nil; return f }

func (f *fx) semiSyncOff(i int) *fx {
	f.in(i).SQL.SemiSync.SourceEnabled = false
	return f
}

func (f *fx) paused() *fx              { f.o.Spec.Paused = true; return f }
func (f *fx) autoFailover(on bool) *fx { f.o.Spec.AutoFailover = on; return f }
func (f *fx) replicas(n int) *fx       { f.o.Spec.Replicas = n; return f }
func (f *fx) reclonePolicy() *fx       { f.o.Spec.ErrantPolicy = ErrantReclone; return f }
func (f *fx) specSemiSync(on bool) *fx { f.o.Spec.SemiSync = on; return f }
func (f *fx) handled(id string) *fx    { f.o.Recorded.SwitchoverHandled = id; return f }
func (f *fx) mysqlAcks() *fx           { f.o.Engine.MaxAckCount = 0; return f }
func (f *fx) async(since, until string) *fx {
	w := &AsyncWindow{Since: set(since)}
	if until != "" {
		w.Until = set(until)
	}
	f.o.Recorded.Async = w
	return f
}
func (f *fx) formerPrimary(i int) *fx {
	if f.o.Recorded.FormerPrimaries == nil {
		f.o.Recorded.FormerPrimaries = map[int]bool{}
	}
	f.o.Recorded.FormerPrimaries[i] = true
	return f
}
func (f *fx) recordedExecuted(i int, s string) *fx {
	if f.o.Recorded.Executed == nil {
		f.o.Recorded.Executed = map[int]gtid.Set{}
	}
	f.o.Recorded.Executed[i] = set(s)
	return f
}
func (f *fx) recordedErrant(i int, s string) *fx {
	if f.o.Recorded.Errant == nil {
		f.o.Recorded.Errant = map[int]gtid.Set{}
	}
	f.o.Recorded.Errant[i] = set(s)
	return f
}

func (f *fx) switchover(id string, target int) *fx {
	f.o.Spec.Switchover = &SwitchoverRequest{ID: id, Target: target}
	return f
}

// revision makes every instance want rev and run it, except the listed ordinals, which run "old".
func (f *fx) revision(rev string, outdated ...int) *fx {
	for k := range f.o.Instances {
		f.o.Instances[k].Revision, f.o.Instances[k].DesiredRevision = rev, rev
	}
	for _, i := range outdated {
		f.in(i).Revision = "old"
	}
	return f
}

func (f *fx) obs() Observation { return f.o }

// deepCopy copies an Observation so that no pointer, map or GTID set is shared with it.
func deepCopy(o Observation) Observation {
	cp := func(s gtid.Set) gtid.Set {
		if s.Flavor() == "" {
			return gtid.Set{}
		}
		return gtid.MustParse(s.Flavor(), s.String())
	}
	c := o
	if o.Spec.Switchover != nil {
		r := *o.Spec.Switchover
		c.Spec.Switchover = &r
	}
	if o.Recorded.Errant != nil {
		c.Recorded.Errant = map[int]gtid.Set{}
		for k, v := range o.Recorded.Errant {
			c.Recorded.Errant[k] = cp(v)
		}
	}
	if o.Recorded.Reclones != nil {
		c.Recorded.Reclones = maps.Clone(o.Recorded.Reclones)
	}
	c.Instances = nil
	for _, in := range o.Instances {
		ci := in
		if in.SQL != nil {
			sq := *in.SQL
			sq.Executed, sq.Retrieved = cp(in.SQL.Executed), cp(in.SQL.Retrieved)
			if in.SQL.Replica != nil {
				r := *in.SQL.Replica
				if r.Lag != nil {
					l := *r.Lag
					r.Lag = &l
				}
				sq.Replica = &r
			}
			ci.SQL = &sq
		}
		if in.Variables != nil {
			ci.Variables = maps.Clone(in.Variables)
		}
		c.Instances = append(c.Instances, ci)
	}
	c.Spec.Config = slices.Clone(o.Spec.Config)
	if o.Attempts != nil {
		c.Attempts = map[string]map[string]Attempt{}
		for k, v := range o.Attempts {
			c.Attempts[k] = maps.Clone(v)
		}
	}
	return c
}
