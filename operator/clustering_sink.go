package operator

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/internal/agent"
	"github.com/kura-db/kura/internal/apply"
	"github.com/kura-db/kura/internal/builder"
	"github.com/kura-db/kura/internal/clustering"
	"github.com/kura-db/kura/internal/contract"
	"github.com/kura-db/kura/internal/engine"
	"github.com/kura-db/kura/internal/events"
	"github.com/kura-db/kura/internal/metrics"
)

// Field owners of the status parts the clustering loop writes. Each write applies every field
// its owner owns, so they are split by how often they change.
const (
	ownerTopology   = "kura-clustering-topology"   // currentPrimary, term, history
	ownerSwitchover = "kura-clustering-switchover" // switchover
	ownerObserved   = "kura-clustering"            // state, instances, Available/Healthy/Degraded
	ownerKeptAside  = "kura-clustering-kept-aside" // keptAside
	ownerReclones   = "kura-clustering-reclones"   // reclones
	historyLimit    = 20
)

// kubeSink carries one cluster's clustering decisions to Kubernetes.
type kubeSink struct {
	client client.Client
	// reader reads straight from the API server: topology records must build on the latest
	// history, not on a cache that may lag.
	reader client.Reader
	key    types.NamespacedName
	rec    events.Recorder
	// memo keeps the executed sets of the last pass for the source (see executedMemo).
	memo *executedMemo
	// lastWrite is when Publish last wrote status; clock replaces time.Now in tests.
	lastWrite time.Time
	clock     func() time.Time
}

func (s *kubeSink) fresh(ctx context.Context) (*kurav1alpha1.MySQLCluster, error) {
	c := &kurav1alpha1.MySQLCluster{}
	if err := s.reader.Get(ctx, s.key, c); err != nil {
		return nil, fmt.Errorf("failed to get MySQLCluster: %w", err)
	}
	return c, nil
}

// RecordTopologyChange persists the new primary and term before the new primary is made
// writable. The term is a fencing token: the record is a compare-and-swap on the previous term
// (read from the API server, written with its resourceVersion as a precondition), so a pass
// that decided on a stale view, or a paused former leader, can never overwrite a newer record,
// and its plan stops before the promoted instance becomes writable. Recording a term that is
// already recorded with the same primary is a no-op.
func (s *kubeSink) RecordTopologyChange(ctx context.Context, ch clustering.TopologyChange) error {
	// A write by anyone else between the read and the write (a status pass, the reconciler, a
	// spec change) fails the precondition too; read again and re-check the term, which is what
	// the swap is about.
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		if err = s.recordTopologyChange(ctx, ch); !apierrors.IsConflict(err) {
			return err
		}
	}
	return err
}

func (s *kubeSink) recordTopologyChange(ctx context.Context, ch clustering.TopologyChange) error {
	c, err := s.fresh(ctx)
	if err != nil {
		return err
	}
	if c.Status.Term >= ch.Term && c.Status.CurrentPrimaryIndex != nil && int(*c.Status.CurrentPrimaryIndex) == ch.To {
		return nil
	}
	if c.Status.Term != ch.Term-1 {
		return fmt.Errorf("failed to record term %d: status holds term %d (primary %s), not %d; this pass decided on a stale view",
			ch.Term, c.Status.Term, c.Status.CurrentPrimary, ch.Term-1)
	}
	history := append([]kurav1alpha1.TopologyChange(nil), c.Status.History...)
	acked := "AllKept"
	if ch.MayLoseAcknowledged {
		acked = "MayBeLost"
	}
	history = append(history, kurav1alpha1.TopologyChange{
		Term: ch.Term, Kind: ch.Kind, From: ch.FromName, To: ch.ToName, Reason: ch.Reason,
		Time: metav1.NewTime(ch.Time), AcknowledgedWrites: acked,
	})
	if len(history) > historyLimit {
		history = history[len(history)-historyLimit:]
	}
	st := struct {
		CurrentPrimary      string                        `json:"currentPrimary"`
		CurrentPrimaryIndex *int32                        `json:"currentPrimaryIndex"`
		Term                int64                         `json:"term"`
		History             []kurav1alpha1.TopologyChange `json:"history"`
	}{ch.ToName, ptr.To(int32(ch.To)), ch.Term, history}
	if err := apply.StatusIfUnchanged(ctx, s.client, c, st, ownerTopology); err != nil {
		return err
	}
	metrics.TopologyChanges.WithLabelValues(s.key.Namespace, s.key.Name, ch.Kind).Inc()
	metrics.Term.WithLabelValues(s.key.Namespace, s.key.Name).Set(float64(ch.Term))
	return nil
}

// RecordSwitchover persists the outcome of a switchover request.
func (s *kubeSink) RecordSwitchover(ctx context.Context, r clustering.RecordSwitchover) error {
	c, err := s.fresh(ctx)
	if err != nil {
		return err
	}
	st := struct {
		Switchover kurav1alpha1.SwitchoverStatus `json:"switchover"`
	}{kurav1alpha1.SwitchoverStatus{ID: r.ID, Target: int32(r.Target), Phase: r.Phase, Message: r.Message}}
	return apply.Status(ctx, s.client, c, st, ownerSwitchover)
}

// SetRoleLabel sets kura.dev/role on the instance's Pod; the primary and replicas Services
// select on it.
func (s *kubeSink) SetRoleLabel(ctx context.Context, t clustering.Target, role string) error {
	pod := &corev1.Pod{}
	if err := s.client.Get(ctx, types.NamespacedName{Namespace: s.key.Namespace, Name: t.Name}, pod); err != nil {
		return fmt.Errorf("failed to get Pod %s: %w", t.Name, err)
	}
	if pod.Labels[contract.LabelRole] == role {
		return nil
	}
	patch := client.MergeFrom(pod.DeepCopy())
	if pod.Labels == nil {
		pod.Labels = map[string]string{}
	}
	pod.Labels[contract.LabelRole] = role
	if err := s.client.Patch(ctx, pod, patch); err != nil {
		return fmt.Errorf("failed to label Pod %s: %w", t.Name, err)
	}
	return nil
}

// RestartInstance deletes the Pod; the StatefulSet re-creates it from the current template.
func (s *kubeSink) RestartInstance(ctx context.Context, t clustering.Target, reason string) error {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: s.key.Namespace, Name: t.Name}}
	if err := s.client.Delete(ctx, pod); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("failed to delete Pod %s: %w", t.Name, err)
	}
	if c, err := s.fresh(ctx); err == nil {
		s.rec.EmitRelated(c, pod, events.Normal, events.InstanceRestarted, "restarted %s: %s", t.Name, reason)
	}
	return nil
}

// RecloneInstance asks the instance's agent to keep its data aside and clone afresh from
// donor at its next start (a marker on the data volume), then deletes the Pod; its `kura init`
// does the rest (docs/cloning.md).
func (s *kubeSink) RecloneInstance(ctx context.Context, t, donor clustering.Target, reason string, record clustering.Reclone) error {
	c, err := s.fresh(ctx)
	if err != nil {
		return err
	}
	pod := &corev1.Pod{}
	if err := s.client.Get(ctx, types.NamespacedName{Namespace: s.key.Namespace, Name: t.Name}, pod); err != nil {
		return fmt.Errorf("failed to get Pod %s: %w", t.Name, err)
	}
	if pod.DeletionTimestamp != nil {
		return nil
	}
	cl, err := s.agentOf(ctx, c, pod)
	if err != nil {
		return fmt.Errorf("failed to re-clone %s: %w", t.Name, err)
	}
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := cl.RequestReclone(rctx, donor.Name, reason); err != nil {
		return fmt.Errorf("failed to request the re-clone of %s: %w", t.Name, err)
	}
	// The re-clone counts from here on (the marker is on the volume): it is recorded before the
	// Pod goes, so a restart of the operator keeps the backoff.
	if err := s.recordReclones(ctx, map[int]clustering.Reclone{t.Ordinal: record}, false); err != nil {
		return fmt.Errorf("failed to record the re-clone of %s: %w", t.Name, err)
	}
	// Only the Pod that holds the marker: never a replacement created meanwhile.
	if err := s.client.Delete(ctx, pod, client.Preconditions{UID: &pod.UID}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("failed to delete Pod %s: %w", t.Name, err)
	}
	s.rec.Emit(c, events.Normal, events.InstanceCloneStarted, "re-cloning %s from %s (data kept aside): %s", t.Name, donor.Name, reason)
	return nil
}

// agentOf returns a client for the agent of a Pod.
func (s *kubeSink) agentOf(ctx context.Context, c *kurav1alpha1.MySQLCluster, pod *corev1.Pod) (*agent.Client, error) {
	if pod.Status.PodIP == "" {
		return nil, fmt.Errorf("the Pod %s has no IP yet", pod.Name)
	}
	secret := &corev1.Secret{}
	if err := s.reader.Get(ctx, types.NamespacedName{Namespace: s.key.Namespace, Name: builder.CredentialsSecretName(c)}, secret); err != nil {
		return nil, fmt.Errorf("failed to get the credentials Secret: %w", err)
	}
	token := &corev1.Secret{}
	if err := s.reader.Get(ctx, types.NamespacedName{Namespace: s.key.Namespace, Name: builder.AgentTokenSecretName(c)}, token); err != nil {
		return nil, fmt.Errorf("failed to get the agent token Secret: %w", err)
	}
	var caPEM []byte
	if builder.AgentServesTLS(pod) {
		cm := &corev1.ConfigMap{}
		if err := s.reader.Get(ctx, types.NamespacedName{Namespace: s.key.Namespace, Name: builder.CAConfigMapName(c)}, cm); err != nil {
			return nil, fmt.Errorf("failed to get the CA ConfigMap to verify the agent of %s: %w", pod.Name, err)
		}
		caPEM = []byte(cm.Data[contract.TLSCAKey])
	}
	return agentClient(c, pod, string(token.Data[contract.KeyAgentToken]), string(secret.Data[contract.KeyAgentPassword]), caPEM)
}

// agentClient is the operator's client for a Pod's agent: at the Pod IP with the token,
// falling back to the agent password (legacy) for an agent of an earlier version. An agent
// that serves HTTPS (builder.AgentServesTLS) is verified against caPEM for the instance's DNS
// name; one that serves plain HTTP is asked over plain HTTP, never the other way round
// (docs/security.md, "The agent API").
func agentClient(c *kurav1alpha1.MySQLCluster, pod *corev1.Pod, token, legacy string, caPEM []byte) (*agent.Client, error) {
	cl := agent.NewClient(pod.Status.PodIP, contract.AgentPort, token)
	cl.Legacy = legacy
	if builder.AgentServesTLS(pod) {
		cfg, err := engine.ClientTLS(caPEM, builder.PodHost(c, pod.Name))
		if err != nil {
			return nil, fmt.Errorf("the agent of %s serves HTTPS; ConfigMap %s, key %s: %w", pod.Name, builder.CAConfigMapName(c), contract.TLSCAKey, err)
		}
		cl.UseTLS(cfg)
	}
	return cl, nil
}

// FenceThroughAgent asks the instance's agent to fence its server, or to kill it when it is
// frozen (rule 3c). A cut-off agent costs at most its connect timeout (half a second).
func (s *kubeSink) FenceThroughAgent(ctx context.Context, t clustering.Target) (string, error) {
	c, err := s.fresh(ctx)
	if err != nil {
		return "", err
	}
	pod := &corev1.Pod{}
	if err := s.client.Get(ctx, types.NamespacedName{Namespace: s.key.Namespace, Name: t.Name}, pod); err != nil {
		return "", fmt.Errorf("failed to get Pod %s: %w", t.Name, err)
	}
	cl, err := s.agentOf(ctx, c, pod)
	if err != nil {
		return "", err
	}
	res, err := cl.FenceOrStop(ctx)
	if err != nil {
		return "", fmt.Errorf("the agent of %s could not fence it: %w", t.Name, err)
	}
	if res.Outcome == agent.FenceOutcomeStopped {
		s.rec.EmitRelated(c, pod, events.Warning, clustering.EventFrozenPrimaryStopped,
			"%s stopped answering as the primary and was killed by its agent before another instance was promoted: %s", t.Name, res.Message)
	}
	return res.Outcome, nil
}

// Event emits one Event about the cluster.
func (s *kubeSink) Event(ctx context.Context, e clustering.EmitEvent) {
	c := &kurav1alpha1.MySQLCluster{}
	if err := s.client.Get(ctx, s.key, c); err != nil {
		return
	}
	typ := events.Normal
	if e.Warning {
		typ = events.Warning
	}
	s.rec.Emit(c, typ, e.Reason, "%s", e.Message)
}

// publishedStatus is the part of status each pass publishes.
type publishedStatus struct {
	State              kurav1alpha1.ClusterState         `json:"state"`
	Conditions         []metav1.Condition                `json:"conditions"`
	Instances          []kurav1alpha1.InstanceStatus     `json:"instances"`
	KeepInstances      int32                             `json:"keepInstances"`
	AsynchronousWindow *kurav1alpha1.AsynchronousWindow  `json:"asynchronousWindow,omitempty"`
	Config             []kurav1alpha1.ConfigOptionStatus `json:"config,omitempty"`
}

func (s *kubeSink) now() time.Time {
	if s.clock != nil {
		return s.clock()
	}
	return time.Now()
}

// Publish writes the pass's state, instances and conditions: at once when anything but the
// instances' executed GTID sets and lag changed, else at most every volatileRefresh.
func (s *kubeSink) Publish(ctx context.Context, r clustering.Report) error {
	c := &kurav1alpha1.MySQLCluster{}
	if err := s.client.Get(ctx, s.key, c); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("failed to get MySQLCluster: %w", err)
	}
	p := r.Plan
	conds := append([]metav1.Condition(nil), c.Status.Conditions...)
	var mine []metav1.Condition
	for _, pc := range p.Conditions {
		meta.SetStatusCondition(&conds, metav1.Condition{
			Type: pc.Type, Status: metav1.ConditionStatus(pc.Status), Reason: pc.Reason,
			Message: pc.Message, ObservedGeneration: c.Generation,
		})
		mine = append(mine, *meta.FindStatusCondition(conds, pc.Type))
	}
	instances := make([]kurav1alpha1.InstanceStatus, 0, len(p.Instances))
	for _, in := range p.Instances {
		is := kurav1alpha1.InstanceStatus{
			Name: in.Name, Role: kurav1alpha1.InstanceRole(in.Role), Reachable: in.Reachable,
			Healthy: in.Healthy, ReadOnly: in.ReadOnly, Reason: in.Reason,
		}
		if !in.Executed.IsEmpty() {
			is.GTIDExecuted = in.Executed.String()
		}
		if !in.Errant.IsEmpty() {
			is.ErrantGTIDs = in.Errant.String()
		}
		if in.Lag != nil {
			is.LagSeconds = ptr.To(int64(in.Lag.Round(time.Second) / time.Second))
		}
		instances = append(instances, is)
	}
	publishMetrics(s.key, p)
	outcome := "ok"
	if r.Result.Err != nil {
		outcome = "error"
	}
	metrics.Passes.WithLabelValues(s.key.Namespace, s.key.Name, outcome).Inc()
	var window *kurav1alpha1.AsynchronousWindow
	if w := p.Async; w != nil {
		window = &kurav1alpha1.AsynchronousWindow{Since: w.Since.String(), Until: w.Until.String(), StartTime: metav1.Now()}
		if old := c.Status.AsynchronousWindow; old != nil && old.Since == window.Since {
			window.StartTime = old.StartTime
		}
	}
	st := publishedStatus{kurav1alpha1.ClusterState(p.State), mine, instances, int32(p.MinInstances), window, configStatus(p.Config)}
	s.memo.remember(p.Instances)
	owned := []string{"state", "conditions", "instances", "keepInstances", "asynchronousWindow", "config"}
	now := s.now()
	if !statusHolds(c, st, owned) && (now.Sub(s.lastWrite) >= volatileRefresh || !onlyVolatile(c, st, owned)) {
		if err := apply.Status(ctx, s.client, c, st, ownerObserved); err != nil {
			return err
		}
		s.lastWrite = now
	}
	if !statusHolds(c, struct {
		Reclones []kurav1alpha1.RecloneRecord `json:"reclones,omitempty"`
	}{recloneRecords(c, p.Reclones)}, []string{"reclones"}) {
		if err := s.recordReclones(ctx, p.Reclones, true); err != nil {
			return err
		}
	}
	if len(p.KeptAside) > 0 && r.Result.Err == nil {
		return s.recordKeptAside(ctx, p.KeptAside)
	}
	return nil
}

// recordReclones writes re-clone records to status.reclones: all of them (the plan's, every
// instance's; an instance absent has none), or, when !all, only those given, over the others.
func (s *kubeSink) recordReclones(ctx context.Context, records map[int]clustering.Reclone, all bool) error {
	c, err := s.fresh(ctx)
	if err != nil {
		return err
	}
	merged := records
	if !all {
		merged = reclonesOf(c)
		for o, r := range records {
			merged[o] = r
		}
	}
	st := struct {
		Reclones []kurav1alpha1.RecloneRecord `json:"reclones"`
	}{recloneRecords(c, merged)}
	return apply.Status(ctx, s.client, c, st, ownerReclones)
}

// recloneRecords maps re-clone records to status.reclones, in ordinal order.
func recloneRecords(c *kurav1alpha1.MySQLCluster, records map[int]clustering.Reclone) []kurav1alpha1.RecloneRecord {
	out := []kurav1alpha1.RecloneRecord{}
	for _, o := range slices.Sorted(maps.Keys(records)) {
		r := records[o]
		rec := kurav1alpha1.RecloneRecord{Instance: builder.PodName(c, int32(o)), Count: int32(r.Count), FirstTime: metav1.NewTime(r.First),
			LastTime: metav1.NewTime(r.Last), Reason: r.Reason, PodUID: r.Pod, FinishedTime: metaTime(r.Finished), HealthySince: metaTime(r.HealthySince)}
		if r.Donor >= 0 {
			rec.Donor = builder.PodName(c, int32(r.Donor))
		}
		out = append(out, rec)
	}
	return out
}

func metaTime(t time.Time) *metav1.Time {
	if t.IsZero() {
		return nil
	}
	mt := metav1.NewTime(t)
	return &mt
}

// configStatus maps the state of spec.mysqld.config's options to status.config.
func configStatus(cfg []clustering.ConfigStatus) []kurav1alpha1.ConfigOptionStatus {
	var out []kurav1alpha1.ConfigOptionStatus
	for _, c := range cfg {
		out = append(out, kurav1alpha1.ConfigOptionStatus{Name: c.Name, Value: c.Value, Dynamic: c.Dynamic, State: c.State,
			Instances: c.Instances, Message: c.Message})
	}
	return out
}

// recordKeptAside appends what a plan set aside to status.keptAside (rule 15b), once per
// instance and set of transactions, keeping the newest historyLimit records.
func (s *kubeSink) recordKeptAside(ctx context.Context, kept []clustering.KeptAside) error {
	c, err := s.fresh(ctx)
	if err != nil {
		return err
	}
	list := append([]kurav1alpha1.KeptAsideRecord(nil), c.Status.KeptAside...)
	for _, k := range kept {
		rec := kurav1alpha1.KeptAsideRecord{Instance: k.Name, GTIDs: k.GTIDs.String(), Reason: k.Reason, Time: metav1.Now()}
		if !slices.ContainsFunc(list, func(o kurav1alpha1.KeptAsideRecord) bool { return o.Instance == rec.Instance && o.GTIDs == rec.GTIDs }) {
			list = append(list, rec)
		}
	}
	if len(list) > historyLimit {
		list = list[len(list)-historyLimit:]
	}
	st := struct {
		KeptAside []kurav1alpha1.KeptAsideRecord `json:"keptAside"`
	}{list}
	return apply.Status(ctx, s.client, c, st, ownerKeptAside)
}

func publishMetrics(key types.NamespacedName, p clustering.Plan) {
	ns, name := key.Namespace, key.Name
	metrics.SetState(ns, name, string(p.State))
	avail := 0.0
	if c, ok := p.Condition(clustering.ConditionAvailable); ok && c.Status == clustering.ConditionTrue {
		avail = 1
	}
	metrics.ClusterAvailable.WithLabelValues(ns, name).Set(avail)
	metrics.Term.WithLabelValues(ns, name).Set(float64(p.Term))
	metrics.ResetInstances(ns, name)
	for _, in := range p.Instances {
		metrics.Instances.WithLabelValues(ns, name, string(in.Role), fmt.Sprint(in.Healthy)).Add(1)
		if in.Lag != nil {
			metrics.ReplicaLag.WithLabelValues(ns, name, in.Name).Set(in.Lag.Seconds())
		}
	}
}
