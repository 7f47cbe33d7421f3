package operator

import (
	"encoding/json"
	"reflect"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
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
