package mycnf

import (
	"testing"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
)

func TestSameValue(t *testing.T) {
	for _, tc := range []struct {
		want, got string
		same      bool
	}{
		{"500", "500", true},
		{"500", "501", false},
		{"64M", "67108864", true},
		{"1G", "1073741824", true},
		{"1g", "1073741824", true},
		{"129M", "134217728", false}, // rounded by the server: not the same value
		{"2", "2.000000", true},
		{"0.5", "0.500000", true},
		{"0.5", "0.600000", false},
		{"ON", "ON", true},
		{"on", "ON", true},
		{"1", "ON", true},
		{"true", "ON", true},
		{"OFF", "0", true},
		{"OFF", "ON", false},
		{"STRICT_TRANS_TABLES,NO_ENGINE_SUBSTITUTION", "NO_ENGINE_SUBSTITUTION,STRICT_TRANS_TABLES", true},
		{"strict_trans_tables, no_engine_substitution", "NO_ENGINE_SUBSTITUTION,STRICT_TRANS_TABLES", true},
		{"STRICT_TRANS_TABLES", "NO_ENGINE_SUBSTITUTION,STRICT_TRANS_TABLES", false},
		{"", "", true},
		{"utf8mb4", "latin1", false},
	} {
		if got := SameValue(tc.want, tc.got); got != tc.same {
			t.Errorf("SameValue(%q, %q) = %t, want %t", tc.want, tc.got, got, tc.same)
		}
	}
}

func TestIsDynamic(t *testing.T) {
	for _, tc := range []struct {
		engine kurav1alpha1.Engine
		key    string
		want   bool
	}{
		{kurav1alpha1.EngineMariaDB, "max_connections", true},
		{kurav1alpha1.EngineMariaDB, "Max-Connections", true},
		{kurav1alpha1.EngineMariaDB, "loose_max_connections", false}, // behind a modifier: static
		{kurav1alpha1.EngineMariaDB, "back_log", false},
		{kurav1alpha1.EngineMariaDB, "no_such_option", false},
		{kurav1alpha1.EngineMariaDB, "max_statement_time", true},
		{kurav1alpha1.EngineMySQL, "max_statement_time", false},
		{kurav1alpha1.EngineMySQL, "max_execution_time", true},
		{kurav1alpha1.EngineMariaDB, "sync_binlog", false}, // owned: never through this path
	} {
		if got := IsDynamic(tc.engine, tc.key); got != tc.want {
			t.Errorf("IsDynamic(%s, %q) = %t, want %t", tc.engine, tc.key, got, tc.want)
		}
	}
}

// No dynamic variable is one Kura owns: a spec change can never SET GLOBAL a safety setting.
func TestDynamicTableOwnsNothing(t *testing.T) {
	for _, e := range []kurav1alpha1.Engine{kurav1alpha1.EngineMariaDB, kurav1alpha1.EngineMySQL} {
		for _, name := range DynamicVariables(e) {
			if o, owned := Owned(name); owned {
				t.Errorf("%s: %s is owned by Kura (%s) but in the dynamic table", e, name, o.Name)
			}
			if NormalizeKey(name) != name {
				t.Errorf("%s: %q is not in canonical spelling", e, name)
			}
		}
	}
}

// The Pod template's hash changes with static settings only; without dynamic options it is
// the hash of the whole rendered file, so clusters that set none do not roll at an upgrade.
func TestStaticHash(t *testing.T) {
	hash := func(cfg map[string]string) string {
		t.Helper()
		h, err := StaticHash(cluster(kurav1alpha1.EngineMariaDB, cfg))
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	base := hash(map[string]string{"back_log": "100"})
	text, err := Render(cluster(kurav1alpha1.EngineMariaDB, map[string]string{"back_log": "100"}))
	if err != nil {
		t.Fatal(err)
	}
	if base != Hash(text) {
		t.Errorf("without dynamic options the static hash %s differs from the rendered file's %s", base, Hash(text))
	}
	for name, cfg := range map[string]map[string]string{
		"a dynamic option added":          {"back_log": "100", "max_connections": "900"},
		"a dynamic option in dashes":      {"back_log": "100", "long-query-time": "3"},
		"two dynamic options":             {"back_log": "100", "max_connections": "10", "sql_mode": "ANSI"},
		"a Kura default overridden":       {"back_log": "100", "innodb_buffer_pool_size": "1G"},
		"a dynamic option in upper case":  {"back_log": "100", "WAIT_TIMEOUT": "60"},
		"dynamic options only, redundant": {"back_log": "100", "max_connections": "500"},
	} {
		if got := hash(cfg); got != base {
			t.Errorf("%s: the static hash changed (%s, was %s): the instances would roll", name, got, base)
		}
	}
	for name, cfg := range map[string]map[string]string{
		"a static option changed":        {"back_log": "101"},
		"a static option added":          {"back_log": "100", "innodb_log_buffer_size": "32M"},
		"a dynamic name behind loose_":   {"back_log": "100", "loose_max_connections": "900"},
		"a static option removed":        {},
		"a static option with a dynamic": {"back_log": "102", "max_connections": "900"},
	} {
		if got := hash(cfg); got == base {
			t.Errorf("%s: the static hash did not change: the instances would not restart", name)
		}
	}
}

func TestSettingsTakeTheValueRenderUses(t *testing.T) {
	c := cluster(kurav1alpha1.EngineMariaDB, map[string]string{"max-connections": "10", "max_connections": "20", "back_log": " 7 "})
	got := Settings(c)
	want := []Setting{{Name: "back_log", Value: "7"}, {Name: "max_connections", Value: "20", Dynamic: true}}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("setting %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
}
