package clustering

import (
	"context"
	"fmt"
	"regexp"
	"sync"
	"time"
)

// DefaultObserveTimeout bounds the query of one instance in one pass: a frozen (SIGSTOPped)
// or overloaded server costs the pass this long and no more.
const DefaultObserveTimeout = time.Second

// Observe queries every target concurrently, each bounded by timeout, and returns the
// instances in the targets' order (rule 4). Then it reads the recorded primary's executed set
// once more: replicas were read before it, so a replica is never judged errant because the
// primary's set was read a moment earlier than the replica's. If that second read fails the
// primary counts as unreachable in this pass.
func Observe(ctx context.Context, snap Snapshot, timeout time.Duration) []Instance {
	return observe(ctx, snap, timeout, nil)
}

// FailingObserveTimeout bounds the query of an instance whose previous probe already failed:
// it is unreachable until it answers, and a frozen or cut-off primary would otherwise cost
// every pass of a failover the full timeout.
const FailingObserveTimeout = 500 * time.Millisecond

// observe is Observe with a shorter bound for the instances named in failing.
func observe(ctx context.Context, snap Snapshot, timeout time.Duration, failing map[string]bool) []Instance {
	if timeout <= 0 {
		timeout = DefaultObserveTimeout
	}
	out := make([]Instance, len(snap.Targets))
	var wg sync.WaitGroup
	for i, t := range snap.Targets {
		out[i] = Instance{Ordinal: t.Ordinal, Name: t.Name, Host: t.Host, Port: t.Port, Pod: t.Pod,
			Cloning: t.Cloning, Revision: t.Revision, DesiredRevision: t.DesiredRevision}
		if !t.Pod.Exists {
			out[i].Error = "Pod does not exist"
			continue
		}
		wg.Add(1)
		go func(i int, t Target) {
			defer wg.Done()
			bound := timeout
			if failing[t.Name] {
				bound = min(timeout, FailingObserveTimeout)
			}
			deadline := time.Now().Add(bound)
			facts, err := query(ctx, snap, t, bound)
			if err != nil {
				out[i].Error = err.Error()
				return
			}
			out[i].SQL = facts
			out[i].Variables, out[i].VariablesError = variables(ctx, snap, t, deadline)
		}(i, t)
	}
	wg.Wait()
	for i := range out {
		if out[i].Ordinal != snap.Recorded.Primary || out[i].SQL == nil {
			continue
		}
		c, err := snap.Connect(snap.Targets[i])
		if err == nil {
			qctx, cancel := context.WithTimeout(ctx, timeout)
			set, rerr := c.Executed(qctx)
			cancel()
			if err = rerr; err == nil {
				facts := *out[i].SQL
				facts.Executed = set
				out[i].SQL = &facts
			}
		}
		if err != nil {
			out[i].SQL, out[i].Error = nil, fmt.Sprintf("failed to read the executed GTID set: %v", err)
		}
	}
	return out
}

func query(ctx context.Context, snap Snapshot, t Target, timeout time.Duration) (*SQLFacts, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c, err := snap.Connect(t)
	if err != nil {
		return nil, fmt.Errorf("failed to connect: %w", err)
	}
	type answer struct {
		f   *SQLFacts
		err error
	}
	// The driver honours ctx, but a server that accepted the TCP connection and then froze
	// can hold a handshake; the select makes the bound hard whatever the driver does.
	ch := make(chan answer, 1)
	go func() {
		f, err := c.Facts(ctx)
		ch <- answer{f, err}
	}()
	select {
	case a := <-ch:
		if a.err != nil {
			return nil, a.err
		}
		return a.f, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("no answer within %s: %w", timeout, ctx.Err())
	}
}

// variables reads the global values of the variables spec.mysqld.config names, within the
// bound of the instance's facts (deadline), so a pass takes no longer than before. A failure
// leaves the instance reachable: its options are then neither applied nor judged in this pass.
func variables(ctx context.Context, snap Snapshot, t Target, deadline time.Time) (map[string]string, string) {
	if len(snap.Spec.Config) == 0 {
		return nil, ""
	}
	names := make([]string, 0, len(snap.Spec.Config))
	for _, s := range snap.Spec.Config {
		if variableName.MatchString(s.Name) {
			names = append(names, s.Name)
		}
	}
	c, err := snap.Connect(t)
	if err != nil {
		return nil, err.Error()
	}
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	vars, err := c.Variables(ctx, names)
	if err != nil {
		return nil, err.Error()
	}
	if vars == nil {
		vars = map[string]string{}
	}
	return vars, ""
}

// variableName is what a server variable's name looks like; other options of
// spec.mysqld.config (behind modifiers, plugin options) are not asked for.
var variableName = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// probes remembers, per instance, since when the operator's own probes have failed, so a
// pass can tell how long an instance has been unreachable (the failover grace period counts
// this, not Pod readiness).
//
// The count starts at the last probe that got an answer (the start of that pass), not at the
// first that did not: the instance went silent somewhere between the two, and counting from
// the first failure would add up to a pass interval to every failover. The credit is at
// most one interval, so a pass delayed for long (a slow step, an operator busy elsewhere)
// never fails over on a single unanswered probe after an old success.
type probes struct {
	mu        sync.Mutex
	failingAt map[string]time.Time
	// answeredAt is the start of the last pass whose probe of an instance was answered.
	answeredAt map[string]time.Time
	// interval bounds the credit given to answeredAt (the loop's pass interval).
	interval time.Duration
}

// failing names the instances whose last probe failed.
func (p *probes) failing() map[string]bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]bool, len(p.failingAt))
	for name := range p.failingAt {
		out[name] = true
	}
	return out
}

// track sets UnreachableFor on every instance, given the time the pass started.
func (p *probes) track(ins []Instance, passStart time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.failingAt == nil {
		p.failingAt, p.answeredAt = map[string]time.Time{}, map[string]time.Time{}
	}
	seen := map[string]bool{}
	for i := range ins {
		name := ins[i].Name
		seen[name] = true
		if ins[i].SQL != nil {
			delete(p.failingAt, name)
			p.answeredAt[name] = passStart
			continue
		}
		since, ok := p.failingAt[name]
		if !ok {
			since = passStart
			if last, ok := p.answeredAt[name]; ok {
				since = maxTime(last, passStart.Add(-p.interval))
			}
			p.failingAt[name] = since
		}
		ins[i].UnreachableFor = passStart.Sub(since)
	}
	for _, m := range []map[string]time.Time{p.failingAt, p.answeredAt} {
		for name := range m {
			if !seen[name] {
				delete(m, name)
			}
		}
	}
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
