package e2eutil

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/internal/builder"
	"github.com/kura-db/kura/internal/contract"
	"github.com/kura-db/kura/test/localcluster"
)

// OperatorPod is the running operator Pod.
func OperatorPod(ctx context.Context, c client.Client) (*corev1.Pod, error) {
	var l corev1.PodList
	if err := c.List(ctx, &l, client.InNamespace(OperatorNamespace)); err != nil {
		return nil, err
	}
	for i := range l.Items {
		if l.Items[i].DeletionTimestamp == nil && len(l.Items[i].Spec.Containers) > 0 && l.Items[i].Spec.Containers[0].Name == "operator" {
			return &l.Items[i], nil
		}
	}
	return nil, fmt.Errorf("no operator Pod in %s", OperatorNamespace)
}

// Events lists a namespace's Events, oldest first.
func Events(ctx context.Context, c client.Client, ns string) []corev1.Event {
	var l corev1.EventList
	if err := c.List(ctx, &l, client.InNamespace(ns)); err != nil {
		return nil
	}
	sort.Slice(l.Items, func(i, j int) bool { return EventTime(&l.Items[i]).Before(EventTime(&l.Items[j])) })
	return l.Items
}

// EventTime is when an Event last happened.
func EventTime(e *corev1.Event) time.Time {
	switch {
	case e.Series != nil:
		return e.Series.LastObservedTime.Time
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	}
	return e.CreationTimestamp.Time
}

// Stamp formats a time of day for evidence.
func Stamp(t time.Time) string { return t.UTC().Format("15:04:05.000") }

// PodReady reports whether a Pod's Ready condition is True.
func PodReady(p *corev1.Pod) bool {
	for _, cond := range p.Status.Conditions {
		if cond.Type == corev1.PodReady {
			return cond.Status == corev1.ConditionTrue
		}
	}
	return false
}

// Evidence is what explains a cluster that did not do what a test awaited: its status, the
// namespace's last Events, its Pods and containers, and the operator's log tail.
func Evidence(ctx context.Context, c client.Client, lc *localcluster.Config, ns, name string) string {
	var b strings.Builder
	mc := &kurav1alpha1.MySQLCluster{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, mc); err == nil {
		st, _ := json.MarshalIndent(mc.Status, "  ", "  ")
		fmt.Fprintf(&b, "status of %s/%s:\n  %s\n", ns, name, st)
	}
	b.WriteString("events (last 40):\n")
	evs := Events(ctx, c, ns)
	if len(evs) > 40 {
		evs = evs[len(evs)-40:]
	}
	for _, e := range evs {
		fmt.Fprintf(&b, "  %s %s %s %s: %s\n", Stamp(EventTime(&e)), e.Type, e.Reason, e.InvolvedObject.Name, e.Message)
	}
	var pods corev1.PodList
	sel := builder.SelectorLabels(&kurav1alpha1.MySQLCluster{ObjectMeta: metav1.ObjectMeta{Name: name}})
	if err := c.List(ctx, &pods, client.InNamespace(ns), client.MatchingLabels(sel)); err == nil {
		b.WriteString("pods:\n")
		for _, p := range pods.Items {
			fmt.Fprintf(&b, "  %s ip=%s ready=%t role=%s deleting=%t", p.Name, p.Status.PodIP, PodReady(&p), p.Labels[contract.LabelRole], p.DeletionTimestamp != nil)
			for _, s := range append(p.Status.InitContainerStatuses, p.Status.ContainerStatuses...) {
				state := "running"
				switch {
				case s.State.Waiting != nil:
					state = "waiting:" + s.State.Waiting.Reason
				case s.State.Terminated != nil:
					state = "terminated:" + s.State.Terminated.Reason
				}
				fmt.Fprintf(&b, " %s=%s/restarts=%d", s.Name, state, s.RestartCount)
			}
			b.WriteString("\n")
		}
		// The containers of Pods that are not ready say why: a crash loop, a clone retried, a
		// replication error.
		for _, p := range pods.Items {
			if PodReady(&p) {
				continue
			}
			for _, s := range append(p.Status.InitContainerStatuses, p.Status.ContainerStatuses...) {
				fmt.Fprintf(&b, "log tail of %s/%s:\n%s", p.Name, s.Name, Tail(lc.PodLogPath(ns, p.Name, s.Name), 25))
			}
		}
	}
	if op, err := OperatorPod(ctx, c); err == nil {
		fmt.Fprintf(&b, "operator log tail (%s):\n%s", op.Name, Tail(lc.PodLogPath(op.Namespace, op.Name, "operator"), 80))
	}
	return b.String()
}

// Tail returns the last n lines of a file, indented.
func Tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return "  (" + err.Error() + ")\n"
	}
	defer func() { _ = f.Close() }()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return "  " + strings.Join(lines, "\n  ") + "\n"
}
