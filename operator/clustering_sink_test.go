package operator

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/internal/apply"
	"github.com/kura-db/kura/internal/clustering"
	"github.com/kura-db/kura/internal/gtid"
)

// newSinkCluster creates a MySQLCluster "shop" in a new namespace.
func newSinkCluster(t *testing.T, cl client.Client) (*kurav1alpha1.MySQLCluster, types.NamespacedName) {
	t.Helper()
	ctx := context.Background()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "sink-"}}
	if err := cl.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	c := &kurav1alpha1.MySQLCluster{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: "shop"},
		Spec:       kurav1alpha1.MySQLClusterSpec{Storage: kurav1alpha1.StorageSpec{Size: resource.MustParse("1Gi")}},
	}
	if err := cl.Create(ctx, c); err != nil {
		t.Fatal(err)
	}
	return c, types.NamespacedName{Namespace: ns.Name, Name: "shop"}
}

// The reconciler and the clustering loop write status under separate field owners; no writer
// may erase another's fields, and a topology change is recorded once per term.
func TestStatusWritersDoNotClobberEachOther(t *testing.T) {
	env := testenv(t)
	ctx := context.Background()
	c, key := newSinkCluster(t, env.Client)
	sink := &kubeSink{client: env.Client, reader: env.Client, key: key}

	// The reconciler's part.
	rst := struct {
		Conditions []metav1.Condition `json:"conditions"`
		Ready      string             `json:"ready"`
	}{[]metav1.Condition{{Type: kurav1alpha1.ConditionReconciled, Status: metav1.ConditionTrue, Reason: "Reconciled", LastTransitionTime: metav1.Now()}}, "3/3"}
	if err := apply.Status(ctx, env.Client, c, rst, "kura-reconciler"); err != nil {
		t.Fatal(err)
	}
	change := clustering.TopologyChange{Term: 1, Kind: "Bootstrap", From: clustering.NoPrimary, To: 0, ToName: "shop-0", Reason: "fresh cluster", Time: time.Now()}
	if err := sink.RecordTopologyChange(ctx, change); err != nil {
		t.Fatal(err)
	}
	if err := sink.RecordTopologyChange(ctx, change); err != nil {
		t.Fatal(err)
	}
	// The term is a fencing token: a change built on a stale view (term 1 again, another
	// primary) or skipping a term is refused, and nothing is written.
	for _, bad := range []clustering.TopologyChange{
		{Term: 1, Kind: "Failover", From: 0, To: 1, FromName: "shop-0", ToName: "shop-1", Reason: "stale", Time: time.Now()},
		{Term: 3, Kind: "Failover", From: 0, To: 2, FromName: "shop-0", ToName: "shop-2", Reason: "skips term 2", Time: time.Now()},
	} {
		if err := sink.RecordTopologyChange(ctx, bad); err == nil {
			t.Errorf("term %d to %s was recorded over term 1", bad.Term, bad.ToName)
		}
	}
	report := clustering.Report{Plan: clustering.Plan{
		State:      clustering.StateHealthy,
		Conditions: []clustering.Condition{{Type: clustering.ConditionAvailable, Status: clustering.ConditionTrue, Reason: "PrimaryWritable", Message: "shop-0 accepts writes"}},
		Instances:  []clustering.InstanceStatus{{Ordinal: 0, Name: "shop-0", Role: clustering.RolePrimary, Reachable: true, Healthy: true}},
	}}
	if err := sink.Publish(ctx, report); err != nil {
		t.Fatal(err)
	}
	if err := sink.RecordSwitchover(ctx, clustering.RecordSwitchover{ID: "a", Target: 0, Phase: clustering.SwitchoverCompleted}); err != nil {
		t.Fatal(err)
	}

	got := &kurav1alpha1.MySQLCluster{}
	if err := env.Client.Get(ctx, key, got); err != nil {
		t.Fatal(err)
	}
	s := got.Status
	if s.Ready != "3/3" || meta.FindStatusCondition(s.Conditions, kurav1alpha1.ConditionReconciled) == nil {
		t.Errorf("the reconciler's fields were erased: %+v", s)
	}
	if s.CurrentPrimary != "shop-0" || s.CurrentPrimaryIndex == nil || *s.CurrentPrimaryIndex != 0 || s.Term != 1 || len(s.History) != 1 {
		t.Errorf("topology: primary %q term %d history %d", s.CurrentPrimary, s.Term, len(s.History))
	}
	if s.State != kurav1alpha1.StateHealthy || !meta.IsStatusConditionTrue(s.Conditions, kurav1alpha1.ConditionAvailable) || len(s.Instances) != 1 {
		t.Errorf("observed state: %+v", s)
	}
	if s.Switchover == nil || s.Switchover.ID != "a" {
		t.Errorf("switchover: %+v", s.Switchover)
	}
	rec := recordedOf(got)
	if rec.Primary != 0 || rec.Term != 1 || rec.SwitchoverHandled != "a" {
		t.Errorf("the loop's memory read back from status: %+v", rec)
	}
	if !rec.FormerPrimaries[0] || rec.Async != nil {
		t.Errorf("former primaries %v, asynchronous window %+v", rec.FormerPrimaries, rec.Async)
	}

	// An asynchronous window and kept-aside transactions are recorded and read back; a window
	// that closes disappears from status.
	since := gtid.MustParse(gtid.MariaDB, "0-1000-7")
	report.Plan.Async = &clustering.AsyncWindow{Since: since}
	report.Plan.KeptAside = []clustering.KeptAside{{Ordinal: 1, Name: "shop-1", GTIDs: gtid.MustParse(gtid.MariaDB, "0-1001-3"), Reason: "never acknowledged"}}
	if err := sink.Publish(ctx, report); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Get(ctx, key, got); err != nil {
		t.Fatal(err)
	}
	if rec := recordedOf(got); rec.Async == nil || !rec.Async.Since.Equal(since) {
		t.Errorf("asynchronous window read back: %+v", rec.Async)
	}
	if k := got.Status.KeptAside; len(k) != 1 || k[0].Instance != "shop-1" || k[0].GTIDs != "0-1001-3" {
		t.Errorf("kept aside: %+v", k)
	}
	report.Plan.Async, report.Plan.KeptAside = nil, nil
	if err := sink.Publish(ctx, report); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Get(ctx, key, got); err != nil {
		t.Fatal(err)
	}
	if got.Status.AsynchronousWindow != nil || len(got.Status.KeptAside) != 1 {
		t.Errorf("after the window closed: window %+v, kept aside %d", got.Status.AsynchronousWindow, len(got.Status.KeptAside))
	}
}

// racingReader reads through to the API server, then changes the object once right after the
// first read, as a spec change or another status write landing between the read and the write
// of a topology record does.
type racingReader struct {
	client.Client
	raced bool
}

func (r *racingReader) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if err := r.Client.Get(ctx, key, obj, opts...); err != nil {
		return err
	}
	if !r.raced {
		r.raced = true
		other := &kurav1alpha1.MySQLCluster{}
		if err := r.Client.Get(ctx, key, other); err != nil {
			return err
		}
		other.Spec.Switchover = &kurav1alpha1.SwitchoverRequest{ID: "raced", Target: 1}
		return r.Update(ctx, other)
	}
	return nil
}

// A write by someone else between the read and the compare-and-swap fails the precondition;
// the record reads again and succeeds, since the term itself did not move.
func TestTopologyRecordSurvivesAnUnrelatedWrite(t *testing.T) {
	env := testenv(t)
	ctx := context.Background()
	_, key := newSinkCluster(t, env.Client)
	reader := &racingReader{Client: env.Client}
	sink := &kubeSink{client: env.Client, reader: reader, key: key}
	change := clustering.TopologyChange{Term: 1, Kind: "Bootstrap", From: clustering.NoPrimary, To: 0, ToName: "shop-0", Reason: "fresh cluster", Time: time.Now()}
	if err := sink.RecordTopologyChange(ctx, change); err != nil {
		t.Fatalf("record after an unrelated write: %v", err)
	}
	if !reader.raced {
		t.Fatal("the race was not staged")
	}
	got := &kurav1alpha1.MySQLCluster{}
	if err := env.Client.Get(ctx, key, got); err != nil {
		t.Fatal(err)
	}
	if got.Status.Term != 1 || got.Spec.Switchover == nil {
		t.Errorf("term %d, switchover %+v", got.Status.Term, got.Spec.Switchover)
	}
}

// status.config carries the state of each option of spec.mysqld.config as the loop decided it,
// and an option removed from the spec leaves status; the source hands the options to the loop
// with dynamic and static told apart.
func TestConfigStatusIsPublishedAndReadBack(t *testing.T) {
	env := testenv(t)
	ctx := context.Background()
	c, key := newSinkCluster(t, env.Client)
	c.Spec.MySQLD.Config = map[string]string{"max-connections": "800", "back_log": "90"}
	if got := specOf(c).Config; len(got) != 2 || got[0] != (clustering.Setting{Name: "back_log", Value: "90"}) ||
		got[1] != (clustering.Setting{Name: "max_connections", Value: "800", Dynamic: true}) {
		t.Errorf("options handed to the loop: %+v", got)
	}
	sink := &kubeSink{client: env.Client, reader: env.Client, key: key}
	report := clustering.Report{Plan: clustering.Plan{State: clustering.StateHealthy,
		Conditions: []clustering.Condition{{Type: clustering.ConditionAvailable, Status: clustering.ConditionTrue, Reason: "PrimaryWritable", Message: "shop-0 accepts writes"}},
		Config: []clustering.ConfigStatus{
			{Name: "back_log", Value: "90", State: clustering.ConfigPendingRestart, Instances: []string{"shop-1", "shop-2"}},
			{Name: "max_connections", Value: "800", Dynamic: true, State: clustering.ConfigRefused, Instances: []string{"shop-0"}, Message: "shop-0: Error 1232"},
		}}}
	if err := sink.Publish(ctx, report); err != nil {
		t.Fatal(err)
	}
	got := &kurav1alpha1.MySQLCluster{}
	if err := env.Client.Get(ctx, key, got); err != nil {
		t.Fatal(err)
	}
	want := []kurav1alpha1.ConfigOptionStatus{
		{Name: "back_log", Value: "90", State: "PendingRestart", Instances: []string{"shop-1", "shop-2"}},
		{Name: "max_connections", Value: "800", Dynamic: true, State: "Refused", Instances: []string{"shop-0"}, Message: "shop-0: Error 1232"},
	}
	if !reflect.DeepEqual(got.Status.Config, want) {
		t.Errorf("status.config:\n got %+v\nwant %+v", got.Status.Config, want)
	}
	report.Plan.Config = report.Plan.Config[1:]
	if err := sink.Publish(ctx, report); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Get(ctx, key, got); err != nil {
		t.Fatal(err)
	}
	if len(got.Status.Config) != 1 || got.Status.Config[0].Name != "max_connections" {
		t.Errorf("after back_log left the spec: %+v", got.Status.Config)
	}
}

// A pass whose only news is the instances' executed GTID sets and lag (every commit changes
// them) writes status at most every volatileRefresh; any other change is written at once. The
// loop still reads the newest executed sets, from the sink's memory.
func TestVolatileStatusIsWrittenAtMostEveryRefresh(t *testing.T) {
	env := testenv(t)
	ctx := context.Background()
	_, key := newSinkCluster(t, env.Client)
	now := time.Now()
	memo := &executedMemo{}
	sink := &kubeSink{client: env.Client, reader: env.Client, key: key, memo: memo, clock: func() time.Time { return now }}
	source := &kubeSource{memo: memo}
	report := func(seq uint64, lag time.Duration, healthy bool) clustering.Report {
		return clustering.Report{Plan: clustering.Plan{
			State:        clustering.StateHealthy,
			MinInstances: 2,
			Conditions:   []clustering.Condition{{Type: clustering.ConditionAvailable, Status: clustering.ConditionTrue, Reason: "PrimaryWritable", Message: "shop-0 accepts writes"}},
			Instances: []clustering.InstanceStatus{
				{Ordinal: 0, Name: "shop-0", Role: clustering.RolePrimary, Reachable: true, Healthy: true,
					Executed: gtid.MustParse(gtid.MariaDB, fmt.Sprintf("0-1000-%d", seq))},
				{Ordinal: 1, Name: "shop-1", Role: clustering.RoleReplica, Reachable: true, Healthy: healthy, Lag: &lag,
					Executed: gtid.MustParse(gtid.MariaDB, fmt.Sprintf("0-1000-%d", seq))},
			},
		}}
	}
	published := func() (string, int64, bool) {
		t.Helper()
		got := &kurav1alpha1.MySQLCluster{}
		if err := env.Client.Get(ctx, key, got); err != nil {
			t.Fatal(err)
		}
		if len(got.Status.Instances) != 2 || got.Status.Instances[1].LagSeconds == nil {
			t.Fatalf("instances %+v", got.Status.Instances)
		}
		in := got.Status.Instances[1]
		return in.GTIDExecuted, *in.LagSeconds, in.Healthy
	}
	publish := func(r clustering.Report) {
		t.Helper()
		if err := sink.Publish(ctx, r); err != nil {
			t.Fatal(err)
		}
	}

	publish(report(5, 0, true))
	if g, lag, _ := published(); g != "0-1000-5" || lag != 0 {
		t.Fatalf("first pass: %s lag %d", g, lag)
	}
	// Commits and a second of lag, a second later: not written.
	now = now.Add(time.Second)
	publish(report(9, time.Second, true))
	if g, lag, _ := published(); g != "0-1000-5" || lag != 0 {
		t.Errorf("volatile change written before the refresh: %s lag %d", g, lag)
	}
	rec := recordedOf(&kurav1alpha1.MySQLCluster{ObjectMeta: metav1.ObjectMeta{Name: "shop"}})
	source.memo.overlay(&rec)
	if !rec.Executed[1].Equal(gtid.MustParse(gtid.MariaDB, "0-1000-9")) {
		t.Errorf("the loop reads %v; want the last pass's 0-1000-9", rec.Executed)
	}
	// Health changes: written at once, with the newest sets.
	now = now.Add(time.Second)
	publish(report(10, 2*time.Second, false))
	if g, lag, healthy := published(); g != "0-1000-10" || lag != 2 || healthy {
		t.Errorf("a change of health was not written at once: %s lag %d healthy %t", g, lag, healthy)
	}
	// After the refresh, volatile changes are written.
	now = now.Add(time.Second)
	publish(report(11, 2*time.Second, false))
	if g, _, _ := published(); g != "0-1000-10" {
		t.Errorf("volatile change written before the refresh: %s", g)
	}
	now = now.Add(volatileRefresh)
	publish(report(12, 2*time.Second, false))
	if g, _, _ := published(); g != "0-1000-12" {
		t.Errorf("volatile change not written after the refresh: %s", g)
	}
}

// Re-clone records go to status.reclones and are read back as the loop's memory: a new loop,
// as after a restart of the operator, decides from status alone and keeps the backoff. A
// record written as a re-clone starts joins the others; a plan without records empties the list.
func TestRecloneRecordsSurviveARestart(t *testing.T) {
	env := testenv(t)
	ctx := context.Background()
	_, key := newSinkCluster(t, env.Client)
	sink := &kubeSink{client: env.Client, reader: env.Client, key: key}
	finished := time.Now().Add(-10 * time.Second).Truncate(time.Second)
	first := finished.Add(-2 * time.Minute)
	want := map[int]clustering.Reclone{1: {Count: 2, First: first, Last: finished.Add(-20 * time.Second),
		Reason: "the primary no longer has the binary logs this replica needs", Donor: 2, Pod: "uid-a", Finished: finished}}
	report := clustering.Report{Plan: clustering.Plan{State: clustering.StateDegraded, Reclones: want,
		Conditions: []clustering.Condition{{Type: clustering.ConditionAvailable, Status: clustering.ConditionTrue, Reason: "PrimaryWritable", Message: "shop-0 accepts writes"}}}}
	if err := sink.Publish(ctx, report); err != nil {
		t.Fatal(err)
	}
	got := &kurav1alpha1.MySQLCluster{}
	if err := env.Client.Get(ctx, key, got); err != nil {
		t.Fatal(err)
	}
	if r := got.Status.Reclones; len(r) != 1 || r[0].Instance != "shop-1" || r[0].Donor != "shop-2" || r[0].Count != 2 || r[0].FinishedTime == nil || r[0].HealthySince != nil {
		t.Fatalf("status.reclones: %+v", r)
	}
	rec := recordedOf(got)
	if !reflect.DeepEqual(rec.Reclones, want) {
		t.Fatalf("read back:\n got %+v\nwant %+v", rec.Reclones, want)
	}

	// A new loop decides from status alone: the replica's fault is back 10 s after the second
	// re-clone finished, so the third waits a minute from then.
	obs := clustering.Observation{Cluster: "shop", Spec: specOf(got), Recorded: rec, Engine: clustering.EngineTraits{MaxAckCount: 1}, Now: finished.Add(10 * time.Second)}
	obs.Recorded.Primary, obs.Recorded.Term = 0, 1
	executed := gtid.MustParse(gtid.MariaDB, "0-1000-100")
	for i := 0; i < 3; i++ {
		in := clustering.Instance{Ordinal: i, Name: fmt.Sprintf("shop-%d", i), Host: fmt.Sprintf("shop-%d.shop-instances", i), Port: 3306,
			Pod: clustering.PodFacts{Exists: true, Phase: "Running", Ready: true, UID: fmt.Sprintf("uid-%d", i)},
			SQL: &clustering.SQLFacts{ServerID: uint32(1000 + i), ReadOnly: i != 0, Executed: executed, Retrieved: executed,
				SemiSync: clustering.SemiSyncFacts{SourceEnabled: i == 0, ReplicaEnabled: true, AfterSync: true, WaitCount: 1}}}
		if i != 0 {
			in.SQL.Replica = &clustering.ReplicaFacts{SourceHost: "shop-0.shop-instances", SourcePort: 3306, IORunning: true, SQLRunning: true}
		}
		obs.Instances = append(obs.Instances, in)
	}
	r := obs.Instances[1].SQL.Replica
	r.IORunning, r.IOErrno, r.IOError = false, 1236, "Could not find GTID state requested by slave in any binlog files"
	plan := clustering.Decide(obs)
	for _, s := range plan.Steps {
		if _, ok := s.(clustering.RecloneInstance); ok {
			t.Fatalf("re-cloned within the backoff after a restart: %v", plan.Steps)
		}
	}
	next := finished.Add(time.Minute).UTC().Format(time.RFC3339)
	if st, _ := plan.InstanceStatus(1); !strings.Contains(st.Reason, "re-cloned 2 times since "+first.UTC().Format(time.RFC3339)) || !strings.Contains(st.Reason, "next attempt after "+next) {
		t.Errorf("reason %q", st.Reason)
	}

	// The record a starting re-clone writes joins the list; a plan without records empties it.
	started := clustering.Reclone{Count: 1, First: finished, Last: finished, Reason: "errant", Donor: 0, Pod: "uid-2"}
	if err := sink.recordReclones(ctx, map[int]clustering.Reclone{2: started}, false); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Get(ctx, key, got); err != nil {
		t.Fatal(err)
	}
	if rec := recordedOf(got).Reclones; len(rec) != 2 || !reflect.DeepEqual(rec[2], started) || !reflect.DeepEqual(rec[1], want[1]) {
		t.Fatalf("after a re-clone started: %+v", rec)
	}
	report.Plan.Reclones = map[int]clustering.Reclone{}
	if err := sink.Publish(ctx, report); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Get(ctx, key, got); err != nil {
		t.Fatal(err)
	}
	if len(got.Status.Reclones) != 0 {
		t.Errorf("records left after the plan forgot them: %+v", got.Status.Reclones)
	}
}
