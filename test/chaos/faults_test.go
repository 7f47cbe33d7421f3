package chaos

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/internal/contract"
	"github.com/kura-db/kura/test/e2eutil"
)

// Durations of the timed faults. The failover grace period is 3 s by default.
const (
	freezeFor         = 10 * time.Second // SIGSTOP of the primary: well beyond the grace period
	shortPartitionFor = 2 * time.Second  // below the grace period: no failover expected
	longPartitionFor  = 20 * time.Second
	operatorCutFor    = 20 * time.Second
	// stageWait bounds the wait for a failover stage before the operator is killed anyway.
	stageWait = 30 * time.Second
	// stagePoll is how often a failover stage is looked for: fast, since a stage may last
	// only a few hundred milliseconds.
	stagePoll = 20 * time.Millisecond
)

// A fault injects one kind of failure into the round's cluster. It sets the round's fault start
// (the first harmful act) and returns once the fault is fully applied, and for a timed one,
// removed again.
type fault struct {
	kind   string
	inject func(ctx context.Context, r *round) error
}

// faults is every kind the suite knows, in the order of the sample.
var faults = []fault{
	{"primary-sigkill", func(ctx context.Context, r *round) error {
		return r.signal(ctx, r.primary(), contract.ContainerMySQLD, syscall.SIGKILL)
	}},
	{"primary-sigstop", func(ctx context.Context, r *round) error {
		return r.freeze(ctx, r.primary(), freezeFor)
	}},
	{"primary-partition-short", func(ctx context.Context, r *round) error {
		return r.partitionPod(ctx, r.primary(), nil, shortPartitionFor)
	}},
	{"primary-partition-long", func(ctx context.Context, r *round) error {
		return r.partitionPod(ctx, r.primary(), nil, longPartitionFor)
	}},
	{"operator-partition", func(ctx context.Context, r *round) error {
		op, err := e2eutil.OperatorPod(ctx, env.Client)
		if err != nil {
			return err
		}
		var ips []string
		for _, ip := range r.c.podIPs(ctx) {
			ips = append(ips, ip)
		}
		return r.partitionPodIn(ctx, op.Namespace, op.Name, ips, operatorCutFor)
	}},
	{"replica-sigkill", func(ctx context.Context, r *round) error {
		reps := r.replicas()
		return r.signal(ctx, reps[r.rng.Intn(len(reps))], contract.ContainerMySQLD, syscall.SIGKILL)
	}},
	{"operator-kill-before-fence", func(ctx context.Context, r *round) error {
		return r.killOperatorAt(ctx, stageBeforeFence)
	}},
	{"operator-kill-after-fence", func(ctx context.Context, r *round) error {
		return r.killOperatorAt(ctx, stageAfterFence)
	}},
	{"operator-kill-after-promotion", func(ctx context.Context, r *round) error {
		return r.killOperatorAt(ctx, stageAfterPromotion)
	}},
	{"operator-kill-mid-rejoin", func(ctx context.Context, r *round) error {
		return r.killOperatorAt(ctx, stageMidRejoin)
	}},
	{"operator-kill-mid-reclone", func(ctx context.Context, r *round) error { return r.killOperatorMidReclone(ctx) }},
	{"primary-and-operator-kill", func(ctx context.Context, r *round) error {
		op, err := e2eutil.OperatorPod(ctx, env.Client)
		if err != nil {
			return err
		}
		if err := r.signal(ctx, r.primary(), contract.ContainerMySQLD, syscall.SIGKILL); err != nil {
			return err
		}
		return r.killOperator(ctx, op)
	}},
	{"agent-crash", func(ctx context.Context, r *round) error {
		r.mark()
		return env.LC.RestartAgent(ctx, syscall.SIGKILL)
	}},
	{"switchover", func(ctx context.Context, r *round) error { return r.switchover(ctx) }},
	{"double-fault", func(ctx context.Context, r *round) error {
		// The primary crashes; as soon as a new one is recorded, before the cluster healed,
		// the new primary crashes too.
		if err := r.signal(ctx, r.primary(), contract.ContainerMySQLD, syscall.SIGKILL); err != nil {
			return err
		}
		mc, err := r.awaitTerm(ctx)
		if err != nil {
			r.note("no new term within %s (%v): the first primary is killed again", stageWait, err)
			return r.signal(ctx, r.primary(), contract.ContainerMySQLD, syscall.SIGKILL)
		}
		r.note("second fault at +%s: the new primary %s (term %d) killed", r.sinceFault(), mc.Status.CurrentPrimary, mc.Status.Term)
		return r.signal(ctx, mc.Status.CurrentPrimary, contract.ContainerMySQLD, syscall.SIGKILL)
	}},
}

func (r *round) primary() string { return r.before.Status.CurrentPrimary }

// replicas names the instances other than the primary.
func (r *round) replicas() []string {
	var out []string
	for i := 0; i < r.c.replicas; i++ {
		if name := fmt.Sprintf("%s-%d", r.c.name, i); name != r.primary() {
			out = append(out, name)
		}
	}
	return out
}

// mark records the start of the fault (once).
func (r *round) mark() {
	if r.faultStart.IsZero() {
		r.faultStart = time.Now()
	}
}

func (r *round) sinceFault() time.Duration { return time.Since(r.faultStart).Round(time.Millisecond) }

// signal sends sig to a container of an instance Pod (or of a Pod in namespace ns[0]).
func (r *round) signal(ctx context.Context, pod, container string, sig syscall.Signal, ns ...string) error {
	namespace := r.c.ns
	if len(ns) > 0 {
		namespace = ns[0]
	}
	r.mark()
	if err := env.SignalContainer(ctx, namespace, pod, container, sig); err != nil {
		return err
	}
	r.note("+%s %s → %s/%s", r.sinceFault(), sigNames[sig], pod, container)
	return nil
}

var sigNames = map[syscall.Signal]string{syscall.SIGKILL: "SIGKILL", syscall.SIGSTOP: "SIGSTOP", syscall.SIGCONT: "SIGCONT"}

// freeze stops every process of the Pod's server for d, then lets them go on.
func (r *round) freeze(ctx context.Context, pod string, d time.Duration) error {
	if err := r.signal(ctx, pod, contract.ContainerMySQLD, syscall.SIGSTOP); err != nil {
		return err
	}
	cont := func() {
		_ = env.SignalContainer(context.Background(), r.c.ns, pod, contract.ContainerMySQLD, syscall.SIGCONT)
	}
	r.cleanups = append(r.cleanups, cont)
	time.Sleep(d) // the fault itself: frozen for d
	return r.signal(ctx, pod, contract.ContainerMySQLD, syscall.SIGCONT)
}

func (r *round) partitionPod(ctx context.Context, pod string, peers []string, d time.Duration) error {
	return r.partitionPodIn(ctx, r.c.ns, pod, peers, d)
}

// partitionPodIn drops the traffic of a Pod's network namespace (to and from peers only, when
// given) for d.
func (r *round) partitionPodIn(ctx context.Context, ns, pod string, peers []string, d time.Duration) error {
	netns, err := podNetNS(ctx, ns, pod)
	if err != nil {
		return err
	}
	r.mark()
	heal, err := partition(netns, peers)
	if err != nil {
		return err
	}
	r.cleanups = append(r.cleanups, func() { _ = heal() })
	what := "all traffic"
	if len(peers) > 0 {
		what = "traffic with " + strings.Join(peers, ", ")
	}
	r.note("+%s partitioned %s/%s (%s, %s)", r.sinceFault(), ns, pod, netns, what)
	time.Sleep(d) // the fault itself: cut off for d
	if err := heal(); err != nil {
		return err
	}
	r.note("+%s healed the partition", r.sinceFault())
	return nil
}

// What the operator publishes (its event catalogue and switchover phases), as a user sees it.
const (
	eventFailoverStarted = "FailoverStarted"
	switchoverCompleted  = "Completed"
	switchoverRefused    = "Refused"
)

// Stages of a failover at which the operator is killed.
const (
	stageBeforeFence    = "before the fence"
	stageAfterFence     = "between fence and promotion"
	stageAfterPromotion = "between promotion and repointing"
	// stageMidRejoin: a new primary is recorded and the old one answers again after its
	// restart but is not yet a healthy replica.
	stageMidRejoin = "while the old primary rejoins"
)

// killOperatorAt kills the primary's server, waits until the failover reached stage as the
// operator publishes it (status, Events) and the instances show it, then kills the operator.
// What had actually happened when the operator died is noted.
func (r *round) killOperatorAt(ctx context.Context, stage string) error {
	op, err := e2eutil.OperatorPod(ctx, env.Client)
	if err != nil {
		return err
	}
	started := r.c.eventVersions(ctx, eventFailoverStarted)
	if err := r.signal(ctx, r.primary(), contract.ContainerMySQLD, syscall.SIGKILL); err != nil {
		return err
	}
	var waitErr error
	switch stage {
	case stageBeforeFence:
		// The operator has noticed (status says the primary is unreachable) and is counting
		// the grace period.
		waitErr = e2eutil.Await(stageWait, stagePoll, func() error {
			mc, err := r.c.get(ctx)
			if err != nil {
				return err
			}
			for _, in := range mc.Status.Instances {
				if in.Name == r.primary() && !in.Reachable {
					return nil
				}
			}
			return fmt.Errorf("status still finds %s reachable", r.primary())
		})
	case stageAfterFence:
		// FailoverStarted is emitted as the fence begins; the fence is done when no replica's
		// receiver runs.
		waitErr = e2eutil.Await(stageWait, stagePoll, func() error {
			if !r.newEvent(ctx, eventFailoverStarted, started) {
				return fmt.Errorf("no FailoverStarted event yet")
			}
			return r.receiversStopped(ctx)
		})
	case stageAfterPromotion:
		_, waitErr = r.awaitTerm(ctx)
	case stageMidRejoin:
		if _, waitErr = r.awaitTerm(ctx); waitErr != nil {
			break
		}
		waitErr = e2eutil.Await(stageWait, stagePoll, func() error {
			mc, err := r.c.get(ctx)
			if err != nil {
				return err
			}
			for _, in := range mc.Status.Instances {
				if in.Name == r.primary() && in.Reachable && !in.Healthy {
					return nil
				}
			}
			return fmt.Errorf("%s is not back yet, or has already rejoined", r.primary())
		})
	}
	if waitErr != nil {
		r.note("stage %q not seen within %s (%v): the operator is killed anyway", stage, stageWait, waitErr)
	}
	if err := r.killOperator(ctx, op); err != nil {
		return err
	}
	r.noteStage(ctx, started)
	return nil
}

// killOperator crashes the operator (SIGKILL), then deletes its Pod at once so its Deployment
// starts a new one, as if its node had died. Restarting the same container instead would
// collect crash-loop back-off over the rounds (doubling up to 5 minutes, reset only after 10
// minutes of running) and the suite would measure the back-off. Either way the new operator
// waits for the dead one's leader lease to expire.
func (r *round) killOperator(ctx context.Context, op *corev1.Pod) error {
	if err := r.signal(ctx, op.Name, "operator", syscall.SIGKILL, op.Namespace); err != nil {
		return err
	}
	return env.Client.Delete(ctx, op, client.GracePeriodSeconds(0))
}

// noteStage records what the failover had done when the operator died: fence event, new term,
// whether the new primary accepted writes.
func (r *round) noteStage(ctx context.Context, started map[string]string) {
	mc, err := r.c.get(ctx)
	if err != nil {
		return
	}
	r.note("at the kill: FailoverStarted seen %t, term %d → %d, primary %s → %s, writable per probe %v",
		r.newEvent(ctx, eventFailoverStarted, started), r.before.Status.Term, mc.Status.Term,
		r.primary(), mc.Status.CurrentPrimary, r.p.writableNow())
}

// awaitTerm waits until status records a term after the round's, and returns the cluster.
func (r *round) awaitTerm(ctx context.Context) (*kurav1alpha1.MySQLCluster, error) {
	var mc *kurav1alpha1.MySQLCluster
	err := e2eutil.Await(stageWait, stagePoll, func() error {
		var err error
		if mc, err = r.c.get(ctx); err != nil {
			return err
		}
		if mc.Status.Term <= r.before.Status.Term {
			return fmt.Errorf("term %d", mc.Status.Term)
		}
		return nil
	})
	return mc, err
}

func (r *round) newEvent(ctx context.Context, reason string, before map[string]string) bool {
	for name, rv := range r.c.eventVersions(ctx, reason) {
		if before[name] != rv {
			return true
		}
	}
	return false
}

// receiversStopped is nil when no replica's replication receiver runs (asked with the admin
// account, over each Pod's IP).
func (r *round) receiversStopped(ctx context.Context) error {
	ips := r.c.podIPs(ctx)
	for _, pod := range r.replicas() {
		running, err := receiverRunning(ctx, ips[pod], r.c.adminUser, r.c.adminPassword)
		if err != nil {
			return fmt.Errorf("%s: %w", pod, err)
		}
		if running {
			return fmt.Errorf("%s still receives", pod)
		}
	}
	return nil
}

func receiverRunning(ctx context.Context, ip, user, password string) (bool, error) {
	db := e2eutil.OpenDB(ip, user, password, probeTimeouts)
	defer func() { _ = db.Close() }()
	rows, err := db.QueryContext(ctx, "SHOW SLAVE STATUS")
	if err != nil {
		return false, err
	}
	defer func() { _ = rows.Close() }()
	cols, err := rows.Columns()
	if err != nil {
		return false, err
	}
	running := false
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return false, err
		}
		for i, c := range cols {
			if c == "Slave_IO_Running" && vals[i].String != "No" {
				running = true
			}
		}
	}
	return running, rows.Err()
}

// switchover asks for a planned switchover to a random replica and waits for its outcome.
func (r *round) switchover(ctx context.Context) error {
	reps := r.replicas()
	target := reps[r.rng.Intn(len(reps))]
	ordinal := int32(target[len(target)-1] - '0')
	id := fmt.Sprintf("chaos-%d-%d", r.n, time.Now().UnixNano())
	patch := fmt.Sprintf(`{"spec":{"switchover":{"target":%d,"id":%q}}}`, ordinal, id)
	r.mark()
	mc := &kurav1alpha1.MySQLCluster{}
	mc.Namespace, mc.Name = r.c.ns, r.c.name
	if err := env.Client.Patch(ctx, mc, client.RawPatch("application/merge-patch+json", []byte(patch))); err != nil {
		return err
	}
	r.note("+%s switchover %s requested to %s", r.sinceFault(), id, target)
	var sw *kurav1alpha1.SwitchoverStatus
	err := e2eutil.Await(2*time.Minute, stagePoll, func() error {
		got, err := r.c.get(ctx)
		if err != nil {
			return err
		}
		if sw = got.Status.Switchover; sw == nil || sw.ID != id || (sw.Phase != switchoverCompleted && sw.Phase != switchoverRefused) {
			return fmt.Errorf("switchover status %+v", sw)
		}
		return nil
	})
	if err != nil {
		return err
	}
	r.note("+%s switchover %s: %s %s", r.sinceFault(), id, sw.Phase, sw.Message)
	if sw.Phase != switchoverCompleted {
		r.fail("the switchover to the healthy replica %s was refused: %s", target, sw.Message)
	}
	return nil
}

// killOperatorMidReclone makes a replica errant (a transaction written on it with the
// operator's own account, which read_only does not stop), lets the operator re-clone it
// (errantReplicaPolicy Reclone for the round), and kills the operator while the replica's
// clone runs. The replica must come back as a healthy replica of the primary, its errant
// transaction kept aside.
func (r *round) killOperatorMidReclone(ctx context.Context) error {
	op, err := e2eutil.OperatorPod(ctx, env.Client)
	if err != nil {
		return err
	}
	mc, err := r.c.get(ctx)
	if err != nil {
		return err
	}
	before := mc.Spec.Replication.ErrantReplicaPolicy
	setPolicy := func(p kurav1alpha1.ErrantReplicaPolicy) error {
		patch := client.MergeFrom(mc.DeepCopy())
		mc.Spec.Replication.ErrantReplicaPolicy = p
		return env.Client.Patch(ctx, mc, patch)
	}
	if err := setPolicy(kurav1alpha1.ErrantReplicaReclone); err != nil {
		return err
	}
	defer func() {
		if mc, err = r.c.get(ctx); err == nil {
			_ = setPolicy(before)
		}
	}()
	reps := r.replicas()
	victim := reps[r.rng.Intn(len(reps))]
	pods, err := r.c.pods(ctx)
	if err != nil {
		return err
	}
	var uid string
	for _, p := range pods {
		if p.Name == victim {
			uid = string(p.UID)
		}
	}
	s := &corev1.Secret{}
	if err := env.Client.Get(ctx, types.NamespacedName{Namespace: r.c.ns, Name: r.c.name + "-credentials"}, s); err != nil {
		return err
	}
	db := e2eutil.OpenDB(r.c.podIPs(ctx)[victim], operatorUser, string(s.Data[contract.KeyOperatorPassword]), e2eutil.DefaultTimeouts)
	defer func() { _ = db.Close() }()
	r.mark()
	if _, err := db.ExecContext(ctx, "CREATE DATABASE IF NOT EXISTS kura_chaos_errant"); err != nil {
		return fmt.Errorf("failed to write an errant transaction on %s: %w", victim, err)
	}
	r.note("+%s errant transaction written on %s", r.sinceFault(), victim)
	// The clone runs in the new Pod's kura-init: the Pod was replaced and is not ready yet.
	waitErr := e2eutil.Await(stageWait, stagePoll, func() error {
		pods, err := r.c.pods(ctx)
		if err != nil {
			return err
		}
		for _, p := range pods {
			if p.Name == victim && string(p.UID) != uid && p.DeletionTimestamp == nil && !e2eutil.PodReady(&p) {
				return nil
			}
		}
		return fmt.Errorf("%s has not been replaced for its re-clone yet", victim)
	})
	if waitErr != nil {
		r.note("no re-clone of %s seen within %s (%v): the operator is killed anyway", victim, stageWait, waitErr)
	}
	if err := r.killOperator(ctx, op); err != nil {
		return err
	}
	r.note("+%s operator killed while %s is being re-cloned", r.sinceFault(), victim)
	return nil
}
