package clustering

import (
	"fmt"
	"time"
)

// The backoff of re-clones (docs/clustering.md, "Re-cloning"). A re-clone copies the whole
// database from a donor; when the fault that called for it comes back after it (the donor
// lacks what the replica needs, say), cloning again at once only repeats the copy. The first
// re-clone starts at once; each further one waits after the previous one finished, twice as
// long as the wait before it, from recloneBackoffFirst up to recloneBackoffMax. The record is
// forgotten once the instance has been healthy for recloneResetAfter.
const (
	recloneBackoffFirst = 30 * time.Second
	recloneBackoffMax   = 10 * time.Minute
	recloneResetAfter   = 10 * time.Minute
)

// recloneBackoff is the wait after the latest of count re-clones finished before the next may
// start: none before the first, then 30 s, 1 min, 2 min, ... at most 10 min.
func recloneBackoff(count int) time.Duration {
	if count <= 0 {
		return 0
	}
	b := recloneBackoffFirst
	for i := 1; i < count && b < recloneBackoffMax; i++ {
		b *= 2
	}
	return min(b, recloneBackoffMax)
}

// recloneDue applies the backoff policy to an instance's record at now: forget is true once the
// record no longer counts (no re-clone yet, or the instance has been healthy for
// recloneResetAfter); otherwise next is the earliest time the next re-clone may start, which
// is the zero time while the latest one has not finished (it is still under way).
func recloneDue(r Reclone, now time.Time) (forget bool, next time.Time) {
	switch {
	case r.Count <= 0:
		return true, time.Time{}
	case !r.HealthySince.IsZero() && now.Sub(r.HealthySince) >= recloneResetAfter:
		return true, time.Time{}
	case r.Finished.IsZero():
		return false, time.Time{}
	}
	return false, r.Finished.Add(recloneBackoff(r.Count))
}

// currentReclones copies the recorded re-clone records of the observed instances.
func (d *decider) currentReclones() map[int]Reclone {
	out := map[int]Reclone{}
	for o, r := range d.o.Recorded.Reclones {
		if _, ok := d.o.instance(o); ok {
			out[o] = r
		}
	}
	return out
}

// trackReclone brings an instance's re-clone record up to date with this observation: the
// latest re-clone finished once another Pod holds the instance and it answers; healthy time
// counts from the first healthy pass after it; the record goes once the policy forgets it.
func (d *decider) trackReclone(in Instance, healthy bool) {
	r, ok := d.p.Reclones[in.Ordinal]
	if !ok {
		return
	}
	now := d.o.Now
	if r.Finished.IsZero() && in.SQL != nil && !in.Cloning && !in.Pod.Terminating && (r.Pod == "" || in.Pod.UID != r.Pod) {
		r.Finished = now
	}
	switch {
	case r.Finished.IsZero() || !healthy:
		r.HealthySince = time.Time{}
	case r.HealthySince.IsZero():
		r.HealthySince = now
	}
	if forget, _ := recloneDue(r, now); forget {
		delete(d.p.Reclones, in.Ordinal)
		return
	}
	d.p.Reclones[in.Ordinal] = r
}

// reclone adds the steps that re-clone an instance from donor for reason, or, when an earlier
// re-clone of it finished less than the backoff ago, withholds it and says so (the status
// reason, the cluster's problems and a Warning event, which the loop emits once per wait). It
// reports whether the re-clone goes ahead.
func (d *decider) reclone(in Instance, donor int, reason string, st *InstanceStatus) bool {
	now := d.o.Now
	r, had := d.p.Reclones[in.Ordinal]
	// While the latest re-clone has not replaced the Pod (a deletion under way, or one that
	// failed), asking again is the same re-clone, not another one.
	if !had || !r.Finished.IsZero() {
		if _, next := recloneDue(r, now); had && now.Before(next) {
			why := fmt.Sprintf("re-cloned %s since %s; the same fault came back (%s); next attempt after %s",
				times(r.Count), stamp(r.First), reason, stamp(next))
			st.Reason += "; " + why
			d.event(true, EventRecloneBackedOff, "%s %s", in.Name, why)
			return false
		}
		if had {
			r.Count++
		} else {
			r = Reclone{Count: 1, First: now}
		}
		r.Last, r.Pod, r.Finished, r.HealthySince = now, in.Pod.UID, time.Time{}, time.Time{}
	}
	r.Reason, r.Donor = reason, donor
	d.p.Reclones[in.Ordinal] = r
	d.add(Optional{SetRoleLabel{Instance: in.Ordinal, Role: LabelNone}},
		RecloneInstance{Instance: in.Ordinal, Donor: donor, Reason: reason, Record: r})
	msg := fmt.Sprintf("cloning %s from %s: %s", in.Name, d.name(donor), reason)
	if r.Count > 1 {
		msg += fmt.Sprintf(" (re-clone %d since %s)", r.Count, stamp(r.First))
	}
	d.event(false, EventInstanceCloneStarted, "%s", msg)
	return true
}

// times says "1 time", "2 times".
func times(n int) string {
	if n == 1 {
		return "1 time"
	}
	return fmt.Sprintf("%d times", n)
}

// stamp prints a time for status and events (UTC, to the second).
func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }
