package operator

import (
	"encoding/json"
	"reflect"
	"sync"
	"time"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/internal/clustering"
	"github.com/kura-db/kura/internal/gtid"
)

// statusHolds reports whether c's status already holds every field of want (the status part
// one writer applies) among owned, the JSON names of the fields that writer owns: a field
// owned but absent from want must be absent from the status too, and conditions compare by
// type. The clustering loop publishes after every pass; when nothing changed the write is
// skipped, so an idle fleet costs the API server no writes. c comes from the cache and may
// lag a write of this process: then the write happens, which is only one write too many.
func statusHolds(c *kurav1alpha1.MySQLCluster, want any, owned []string) bool {
	cur, err1 := asMap(c.Status)
	w, err2 := asMap(want)
	if err1 != nil || err2 != nil {
		return false
	}
	for _, k := range owned {
		if k == "conditions" {
			if !conditionsHeld(cur[k], w[k]) {
				return false
			}
			continue
		}
		if !reflect.DeepEqual(cur[k], w[k]) {
			return false
		}
	}
	return true
}

func asMap(v any) (map[string]any, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	m := map[string]any{}
	return m, json.Unmarshal(raw, &m)
}

// conditionsHeld: every wanted condition is in cur, equal in every field.
func conditionsHeld(cur, want any) bool {
	byType := map[any]any{}
	if l, ok := cur.([]any); ok {
		for _, c := range l {
			if m, ok := c.(map[string]any); ok {
				byType[m["type"]] = m
			}
		}
	}
	l, _ := want.([]any)
	for _, c := range l {
		m, ok := c.(map[string]any)
		if !ok || !reflect.DeepEqual(byType[m["type"]], m) {
			return false
		}
	}
	return true
}

// volatileRefresh is how often a status whose only change is in the instances' executed GTID
// sets and lag is written. Those change with every transaction the databases commit; written
// on every pass, a fleet under writes would cost the API server a write per cluster per pass.
// A change of anything else (role, health, reachability, reason, state, conditions) is
// written at once.
const volatileRefresh = 10 * time.Second

// onlyVolatile reports whether want differs from c's status in the instances' gtidExecuted
// and lagSeconds only, the other owned fields held.
func onlyVolatile(c *kurav1alpha1.MySQLCluster, want publishedStatus, owned []string) bool {
	cur := map[string]kurav1alpha1.InstanceStatus{}
	for _, in := range c.Status.Instances {
		cur[in.Name] = in
	}
	masked := want
	masked.Instances = make([]kurav1alpha1.InstanceStatus, len(want.Instances))
	for i, in := range want.Instances {
		old, ok := cur[in.Name]
		if !ok {
			return false
		}
		in.GTIDExecuted, in.LagSeconds = old.GTIDExecuted, old.LagSeconds
		masked.Instances[i] = in
	}
	return statusHolds(c, masked, owned)
}

// executedMemo is the executed GTID set of each instance as the last pass saw it. The loop
// reads what an instance last reported (Recorded.Executed, to recognise a primary that comes
// back with less than it had) from status; since status holds it up to volatileRefresh late,
// the sink remembers the latest and the source reads it over status. After a restart of the
// operator, status is all there is.
type executedMemo struct {
	mu   sync.Mutex
	sets map[int]gtid.Set
}

func (m *executedMemo) remember(instances []clustering.InstanceStatus) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sets = map[int]gtid.Set{}
	for _, in := range instances {
		if !in.Executed.IsEmpty() {
			m.sets[in.Ordinal] = in.Executed
		}
	}
}

// overlay puts the remembered sets over those read from status.
func (m *executedMemo) overlay(rec *clustering.Recorded) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for n, set := range m.sets {
		rec.Executed[n] = set
	}
}
