package chaos

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/internal/testenv"
	"github.com/kura-db/kura/test/e2eutil"
)

// Deliberately unsafe configurations (KURA_CHAOS_UNSAFE), to show the suite catches what it
// claims to catch.
const (
	unsafeSemiSyncOff = "semisync-off" // spec.replication.semiSync false
	// the writer uses the operator's own account, which holds READ ONLY ADMIN (as the
	// user-facing kura-admin account did before the accounts were split)
	unsafePrivilegedWriter = "privileged-writer"
)

// settings come from the environment (docs/chaos.md).
type settings struct {
	rounds   int // 0: the sample, one round of each kind
	seed     int64
	kinds    map[string]bool
	unsafe   string
	converge time.Duration
	budget   time.Duration // no round starts after this much time (0: no limit)
	summary  string
}

func loadSettings(t *testing.T) settings {
	s := settings{seed: time.Now().UnixNano(), converge: 5 * time.Minute, unsafe: os.Getenv("KURA_CHAOS_UNSAFE"),
		summary: filepath.Join(testenv.RepoRoot(), "bin", "chaos-summary.md")}
	if v := os.Getenv("KURA_CHAOS_ROUNDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			t.Fatalf("KURA_CHAOS_ROUNDS=%q: want a count", v)
		}
		s.rounds = n
	}
	if v := os.Getenv("KURA_CHAOS_SEED"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			t.Fatalf("KURA_CHAOS_SEED=%q: want an integer", v)
		}
		s.seed = n
	}
	if v := os.Getenv("KURA_CHAOS_KINDS"); v != "" {
		s.kinds = map[string]bool{}
		for _, k := range strings.Split(v, ",") {
			if kindIndex(k) < 0 {
				t.Fatalf("KURA_CHAOS_KINDS: unknown fault kind %q", k)
			}
			s.kinds[k] = true
		}
	}
	if v := os.Getenv("KURA_CHAOS_CONVERGE_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("KURA_CHAOS_CONVERGE_TIMEOUT=%q: %v", v, err)
		}
		s.converge = d
	}
	if v := os.Getenv("KURA_CHAOS_BUDGET"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("KURA_CHAOS_BUDGET=%q: %v", v, err)
		}
		s.budget = d
	}
	if v := os.Getenv("KURA_CHAOS_SUMMARY"); v != "" {
		s.summary = v
	}
	if s.unsafe != "" && s.unsafe != unsafeSemiSyncOff && s.unsafe != unsafePrivilegedWriter {
		t.Fatalf("KURA_CHAOS_UNSAFE=%q: want %s or %s", s.unsafe, unsafeSemiSyncOff, unsafePrivilegedWriter)
	}
	return s
}

func kindIndex(kind string) int {
	for i, f := range faults {
		if f.kind == kind {
			return i
		}
	}
	return -1
}

// plan is the order of the rounds: the sample runs each kind once in the listed order; a
// longer run goes through every kind in a shuffled order, again and again.
func (s settings) plan(rng *rand.Rand) []fault {
	var kinds []fault
	for _, f := range faults {
		if s.kinds == nil || s.kinds[f.kind] {
			kinds = append(kinds, f)
		}
	}
	if s.rounds == 0 {
		return kinds
	}
	var out []fault
	for len(out) < s.rounds {
		perm := rng.Perm(len(kinds))
		for _, i := range perm {
			if len(out) < s.rounds {
				out = append(out, kinds[i])
			}
		}
	}
	return out
}

// TestChaos runs the rounds one after another against one cluster; a round that leaves the
// cluster unhealthy fails, and the next round starts on a new cluster.
func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos suite: not run with -short")
	}
	s := loadSettings(t)
	rng := rand.New(rand.NewSource(s.seed))
	plan := s.plan(rng)
	t.Logf("seed %d (KURA_CHAOS_SEED), %d rounds%s", s.seed, len(plan), map[bool]string{true: ", UNSAFE: " + s.unsafe, false: ""}[s.unsafe != ""])
	ctx := context.Background()
	var c *cluster
	var results []result
	began := time.Now()
	for i, f := range plan {
		if s.budget > 0 && time.Since(began) > s.budget {
			t.Logf("time budget %s (KURA_CHAOS_BUDGET) spent after %d of %d rounds", s.budget, i, len(plan))
			break
		}
		if c == nil {
			start := time.Now()
			var err error
			if c, err = newCluster(ctx, s.unsafe); err != nil {
				t.Fatalf("a new cluster: %v", err)
			}
			t.Logf("cluster %s/%s healthy in %s (writer %s, database %s, writer ignores read_only: %t)",
				c.ns, c.name, time.Since(start).Round(time.Second), c.user, c.database, c.writerIgnoresReadOnly)
		}
		var res result
		t.Run(fmt.Sprintf("%03d-%s", i+1, f.kind), func(t *testing.T) {
			res = runRound(ctx, t, c, i+1, f, rng, s)
		})
		results = append(results, res)
		writeSummary(t, results, s, false)
		if !res.Converged {
			t.Logf("round %d left %s/%s unhealthy: the next round starts on a new cluster", i+1, c.ns, c.name)
			_ = env.Client.Delete(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: c.ns}})
			c = nil
		}
	}
	writeSummary(t, results, s, true)
}

// writeSummary writes the summary and the rounds' JSON (after every round, so an interrupted
// run keeps what it found), and at the end prints the summary.
func writeSummary(t *testing.T, results []result, s settings, final bool) {
	sum := summarize(results, s)
	if final {
		t.Log("\n" + sum)
	}
	if err := os.MkdirAll(filepath.Dir(s.summary), 0o755); err != nil {
		t.Logf("failed to write the summary: %v", err)
		return
	}
	if err := os.WriteFile(s.summary, []byte(sum), 0o644); err != nil {
		t.Logf("failed to write the summary: %v", err)
	}
	if data, err := json.MarshalIndent(results, "", "  "); err == nil {
		_ = os.WriteFile(strings.TrimSuffix(s.summary, filepath.Ext(s.summary))+".json", data, 0o644)
	}
}

// round is one fault and what was seen around it.
type round struct {
	n      int
	c      *cluster
	rng    *rand.Rand
	before *kurav1alpha1.MySQLCluster
	w      *writer
	p      *probe
	t      *testing.T
	res    *result

	faultStart, faultEnd time.Time
	cleanups             []func()
}

// result is a round's outcome, as the summary and the JSON evidence file record it.
type result struct {
	Round            int
	Kind             string
	Start            time.Time
	Acked            int
	Ambiguous        int
	AmbiguousPresent int
	Refused          int
	Lost             []int64 `json:",omitempty"`
	Dual             int
	ProbeSamples     int
	ProbePerSecond   float64
	Unavailable      time.Duration // longest gap between acknowledged writes around the fault
	Converge         time.Duration // fault start → healthy with every instance ready
	Converged        bool
	Failures         []string `json:",omitempty"`
	Notes            []string `json:",omitempty"`
}

func (r *round) note(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	r.res.Notes = append(r.res.Notes, msg)
	r.t.Log(msg)
}

// fail records a failed check; the round goes on so every check reports.
func (r *round) fail(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	r.res.Failures = append(r.res.Failures, msg)
	r.t.Error(msg)
}

func runRound(ctx context.Context, t *testing.T, c *cluster, n int, f fault, rng *rand.Rand, s settings) result {
	res := result{Round: n, Kind: f.kind, Start: time.Now()}
	r := &round{n: n, c: c, rng: rng, t: t, res: &res}
	defer func() {
		for i := len(r.cleanups) - 1; i >= 0; i-- {
			r.cleanups[i]()
		}
	}()
	if err := e2eutil.Await(3*time.Minute, 250*time.Millisecond, func() error { return c.converged(ctx, nil) }); err != nil {
		r.fail("the cluster is not healthy before the fault: %v\n%s", err, c.dump(ctx))
		return res
	}
	var err error
	if r.before, err = c.get(ctx); err != nil {
		r.fail("%v", err)
		return res
	}
	first := int64(n) * 100_000_000
	r.w = startWriter(c.primaryIP, c.user, c.password, c.table(), n, first)
	r.p = startProbe(c.user, c.password, c.writerIgnoresReadOnly, func() map[string]string { return c.podIPs(ctx) })
	stopped := false
	stop := func() ([]ack, []ambiguous, int, probeResult) {
		stopped = true
		acked, amb, refused := r.w.halt()
		return acked, amb, refused, r.p.halt()
	}
	defer func() {
		if !stopped {
			stop()
		}
	}()
	if err := e2eutil.Await(time.Minute, 50*time.Millisecond, func() error {
		if n := r.w.count(); n < 20 {
			return fmt.Errorf("%d writes acknowledged (last error: %s)", n, r.w.lastError())
		}
		if err := c.converged(ctx, r.p); err != nil {
			return err
		}
		return nil
	}); err != nil {
		r.fail("writes never flowed before the fault: %v\n%s", err, c.dump(ctx))
		return res
	}
	r.note("primary %s, term %d; %d writes acknowledged before the fault", r.primary(), r.before.Status.Term, r.w.count())

	if err := f.inject(ctx, r); err != nil {
		r.fail("injecting %s: %v", f.kind, err)
	}
	r.mark()
	r.faultEnd = time.Now()
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		r.cleanups[i]()
	}
	r.cleanups = nil

	// Converged: healthy, every instance ready, the probe agreeing on the one primary and a
	// write acknowledged since the fault ended, held for stable in a row.
	const stable = 2 * time.Second
	var since time.Time
	var last error
	deadline := r.faultEnd.Add(s.converge)
	for time.Now().Before(deadline) {
		err := c.converged(ctx, r.p)
		if err == nil && !r.w.ackedSince(r.faultEnd) {
			err = fmt.Errorf("no write acknowledged since the fault ended (last error: %s)", r.w.lastError())
		}
		switch {
		case err != nil:
			since, last = time.Time{}, err
		case since.IsZero():
			since = time.Now()
		case time.Since(since) >= stable:
			res.Converged = true
		}
		if res.Converged {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	end := time.Now()
	if res.Converged {
		res.Converge = since.Sub(r.faultStart)
		end = since
	} else {
		r.fail("did not converge within %s of the fault's end: %v\n%s", s.converge, last, c.dump(ctx))
	}
	acked, amb, refused, pr := stop()
	res.Acked, res.Ambiguous, res.Refused = len(acked), len(amb), refused
	res.ProbeSamples, res.Dual = pr.Samples, pr.Dual
	res.ProbePerSecond = pr.perSecond(time.Since(res.Start))
	gap, gapAt := longestGap(acked, r.faultStart, end)
	res.Unavailable = gap
	r.note("fault at %s, ended +%s; converged %t after %s; %d acknowledged, %d ambiguous, %d refused; longest gap %s from %s; probe %d samples (%.0f/s), %d failed",
		stamp(r.faultStart), r.faultEnd.Sub(r.faultStart).Round(time.Millisecond), res.Converged, res.Converge.Round(time.Millisecond),
		len(acked), len(amb), refused, gap.Round(time.Millisecond), stamp(gapAt), pr.Samples, res.ProbePerSecond, pr.Failures)
	if pr.Dual > 0 {
		r.fail("two instances accepted writes at once: %d samples; first moments:%s", pr.Dual, pr.evidence())
	}
	r.checkData(ctx, acked, amb, first, res.Converged)
	return res
}

// checkData reads the round's rows back from the primary (nothing acknowledged may be missing)
// and, once converged, compares a checksum of the ledger on every instance after each has
// executed the primary's GTID set.
func (r *round) checkData(ctx context.Context, acked []ack, amb []ambiguous, first int64, converged bool) {
	c := r.c
	mc, err := c.get(ctx)
	if err != nil {
		r.fail("%v", err)
		return
	}
	ips := c.podIPs(ctx)
	primary := mc.Status.CurrentPrimary
	last := first + 100_000_000 - 1
	var have map[int64]bool
	if err := e2eutil.Await(30*time.Second, 250*time.Millisecond, func() error {
		db := e2eutil.OpenDB(ips[primary], c.user, c.password, e2eutil.DefaultTimeouts)
		defer func() { _ = db.Close() }()
		have, err = rowsIn(db, c.table(), first, last)
		return err
	}); err != nil {
		r.fail("could not read the ledger back from the primary %s: %v", primary, err)
		return
	}
	var lost []ack
	for _, a := range acked {
		if !have[a.ID] {
			lost = append(lost, a)
		}
	}
	for _, a := range amb {
		if have[a.ID] {
			r.res.AmbiguousPresent++
		}
	}
	if len(lost) > 0 {
		for _, a := range lost {
			r.res.Lost = append(r.res.Lost, a.ID)
		}
		r.fail("%d of %d acknowledged writes are missing on the primary %s:%s", len(lost), len(acked), primary, r.whereAre(ctx, lost, ips))
	}
	if !converged {
		return
	}
	r.checkIdentical(ctx, primary, ips)
}

// whereAre lists lost writes with their acknowledgement times and the instances that do hold
// them.
func (r *round) whereAre(ctx context.Context, lost []ack, ips map[string]string) string {
	holders := map[string]map[int64]bool{}
	for pod, ip := range ips {
		db := e2eutil.OpenDB(ip, r.c.user, r.c.password, e2eutil.DefaultTimeouts)
		if h, err := rowsIn(db, r.c.table(), lost[0].ID, lost[len(lost)-1].ID); err == nil {
			holders[pod] = h
		}
		_ = db.Close()
	}
	var b strings.Builder
	for i, a := range lost {
		if i == 20 {
			fmt.Fprintf(&b, "\n    … and %d more", len(lost)-20)
			break
		}
		var on []string
		for pod, h := range holders {
			if h[a.ID] {
				on = append(on, pod)
			}
		}
		sort.Strings(on)
		fmt.Fprintf(&b, "\n    id %d acknowledged at %s, present on %v", a.ID, stamp(a.At), on)
	}
	return b.String()
}

// checkIdentical waits until every instance executed the primary's GTID set, then compares
// CHECKSUM TABLE of the ledger across instances.
func (r *round) checkIdentical(ctx context.Context, primary string, ips map[string]string) {
	c := r.c
	conns := map[string]*sql.DB{}
	for pod, ip := range ips {
		conns[pod] = e2eutil.OpenDB(ip, c.user, c.password, e2eutil.Timeouts{Dial: 2 * time.Second, IO: 70 * time.Second})
	}
	defer func() {
		for _, db := range conns {
			_ = db.Close()
		}
	}()
	var pos string
	if err := conns[primary].QueryRowContext(ctx, "SELECT @@global.gtid_binlog_pos").Scan(&pos); err != nil {
		r.fail("reading the primary's GTID position: %v", err)
		return
	}
	sums := map[string]int64{}
	for pod, db := range conns {
		if pod != primary {
			var rc sql.NullInt64
			if err := db.QueryRowContext(ctx, "SELECT MASTER_GTID_WAIT(?, 60)", pos).Scan(&rc); err != nil || rc.Int64 != 0 {
				r.fail("%s did not execute the primary's GTID position %s within 60 s (%v, %v)", pod, pos, rc, err)
				continue
			}
		}
		var table string
		var sum sql.NullInt64
		if err := db.QueryRowContext(ctx, "CHECKSUM TABLE "+c.table()).Scan(&table, &sum); err != nil {
			r.fail("CHECKSUM TABLE on %s: %v", pod, err)
			continue
		}
		sums[pod] = sum.Int64
	}
	seen := map[int64]bool{}
	for _, sum := range sums {
		seen[sum] = true
	}
	if len(seen) > 1 {
		var counts []string
		for pod, db := range conns {
			var n int64
			_ = db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+c.table()).Scan(&n)
			counts = append(counts, fmt.Sprintf("%s: %d rows", pod, n))
		}
		sort.Strings(counts)
		r.fail("the instances' data differ at GTID position %s: checksums %v, %s", pos, sums, strings.Join(counts, ", "))
		return
	}
	r.note("data identical on %d instances at GTID position %s (checksum %v)", len(sums), pos, sums[primary])
}

// summarize renders the per-kind and total figures as Markdown (docs/benchmarks.md).
func summarize(results []result, s settings) string {
	type agg struct {
		rounds, failed, lost, dual int
		gaps, conv                 []time.Duration
	}
	byKind := map[string]*agg{}
	var total agg
	var acked, amb, samples int
	for _, r := range results {
		a := byKind[r.Kind]
		if a == nil {
			a = &agg{}
			byKind[r.Kind] = a
		}
		for _, x := range []*agg{a, &total} {
			x.rounds++
			if len(r.Failures) > 0 {
				x.failed++
			}
			x.lost += len(r.Lost)
			x.dual += r.Dual
			if r.Converged {
				x.gaps = append(x.gaps, r.Unavailable)
				x.conv = append(x.conv, r.Converge)
			}
		}
		acked += r.Acked
		amb += r.Ambiguous
		samples += r.ProbeSamples
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Chaos run: %d faults, seed %d", len(results), s.seed)
	if s.unsafe != "" {
		fmt.Fprintf(&b, ", UNSAFE configuration %s", s.unsafe)
	}
	b.WriteString("\n\n| fault | rounds | failed | lost writes | dual-writable samples | write unavailability p50 / max | convergence p50 / max |\n")
	b.WriteString("| --- | --- | --- | --- | --- | --- | --- |\n")
	for _, f := range faults {
		a := byKind[f.kind]
		if a == nil {
			continue
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %s | %s |\n", f.kind, a.rounds, a.failed, a.lost, a.dual, p50max(a.gaps), p50max(a.conv))
	}
	fmt.Fprintf(&b, "\nTotals: %d faults, %d failed rounds, %d acknowledged writes, %d lost, %d ambiguous (not acknowledged), %d dual-writable samples of %d probe samples.\n",
		total.rounds, total.failed, acked, total.lost, amb, total.dual, samples)
	b.WriteString("Write unavailability and convergence count converged rounds only.\n")
	return b.String()
}

func p50max(ds []time.Duration) string {
	if len(ds) == 0 {
		return "–"
	}
	sorted := append([]time.Duration(nil), ds...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	return fmt.Sprintf("%.1f s / %.1f s", sorted[len(sorted)/2].Seconds(), sorted[len(sorted)-1].Seconds())
}
