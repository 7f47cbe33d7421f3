package clustering

import (
	"fmt"
	"sort"
	"strings"

	"github.com/kura-db/kura/internal/mycnf"
)

// Configuration states reported per option of spec.mysqld.config (status.config).
const (
	// ConfigApplied: every observed instance runs with the value.
	ConfigApplied = "Applied"
	// ConfigApplying: a dynamic value is being set with SET GLOBAL on the instances named.
	ConfigApplying = "Applying"
	// ConfigPendingRestart: a static value takes effect when the instances named restart
	// (the rolling change restarts them one at a time, replicas first).
	ConfigPendingRestart = "PendingRestart"
	// ConfigRefused: the server refused SET GLOBAL; the message carries its words. The value is
	// in the config file, so the next start reads it.
	ConfigRefused = "Refused"
)

// ConfigStatus is the state of one option of spec.mysqld.config.
type ConfigStatus struct {
	Name    string
	Value   string
	Dynamic bool
	State   string
	// Instances are the instances the state is about (those not applied yet, refusing, or
	// waiting for a restart); empty when Applied.
	Instances []string
	// Message explains the state: the server's refusal, a value the server rounded.
	Message string
}

// config derives the state of every option of spec.mysqld.config and, when apply is set (the
// primary is reachable and no change of primary is under way), the SET GLOBAL steps that bring
// dynamic ones to the running instances. A value is set at most once per instance: the server
// may round it (buffer pool chunks) or refuse it, and either is reported rather than retried.
func (d *decider) config(apply bool) {
	d.configDone = true
	for _, s := range d.o.Spec.Config {
		st := ConfigStatus{Name: s.Name, Value: s.Value, Dynamic: s.Dynamic, State: ConfigApplied}
		var applying, pending, refused, notes []string
		for _, in := range d.o.Instances {
			if in.SQL == nil || in.Variables == nil || in.Cloning || in.Pod.Terminating {
				continue
			}
			got, known := in.Variables[s.Name]
			if known && mycnf.SameValue(s.Value, got) {
				continue
			}
			if !s.Dynamic {
				if in.outdated() {
					pending = append(pending, in.Name)
				} else if known {
					notes = append(notes, fmt.Sprintf("%s holds %s", in.Name, got))
				}
				continue
			}
			if !known {
				refused = append(refused, in.Name)
				notes = append(notes, fmt.Sprintf("%s: the server has no variable %s", in.Name, s.Name))
				continue
			}
			a, tried := d.o.Attempts[in.Name][s.Name]
			switch {
			case !tried || a.Value != s.Value:
				applying = append(applying, in.Name)
				if apply {
					d.add(Optional{SetGlobal{Instance: in.Ordinal, Name: s.Name, Value: s.Value}})
				}
			case a.Refused != "":
				refused = append(refused, in.Name)
				notes = append(notes, fmt.Sprintf("%s: %s", in.Name, a.Refused))
			default:
				notes = append(notes, fmt.Sprintf("%s holds %s (adjusted by the server)", in.Name, got))
			}
		}
		switch {
		case len(refused) > 0:
			st.State, st.Instances = ConfigRefused, refused
		case len(applying) > 0:
			st.State, st.Instances = ConfigApplying, applying
		case len(pending) > 0:
			st.State, st.Instances = ConfigPendingRestart, pending
		}
		st.Message = strings.Join(notes, "; ")
		d.p.Config = append(d.p.Config, st)
	}
	sort.Slice(d.p.Config, func(i, j int) bool { return d.p.Config[i].Name < d.p.Config[j].Name })
}

// pendingStatic names the static options waiting for instances to restart, for the events of a
// rolling change.
func (d *decider) pendingStatic() string {
	var names []string
	for _, c := range d.p.Config {
		if c.State == ConfigPendingRestart {
			names = append(names, c.Name)
		}
	}
	if len(names) == 0 {
		return ""
	}
	return " (static settings: " + strings.Join(names, ", ") + ")"
}
