package mycnf

import (
	"math"
	"sort"
	"strconv"
	"strings"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
)

// Dynamic variables are applied to running instances with SET GLOBAL; every other setting of
// spec.mysqld.config takes effect when an instance restarts, and changing it rolls the
// instances (docs/configuration.md, "Changing settings"). The tables name the variables whose
// global value the server lets an administrator change at run time; the engine tier checks
// every entry against the real server's information_schema.SYSTEM_VARIABLES
// (TestDynamicTableMatchesTheServer). A name missing from the table is static, which is the
// safe side: it rolls. None of them is owned by Kura (TestDynamicTableOwnsNothing).
var dynamicCommon = []string{
	"binlog_expire_logs_seconds",
	"character_set_server",
	"collation_server",
	"connect_timeout",
	"general_log",
	"innodb_adaptive_hash_index",
	"innodb_buffer_pool_size",
	"innodb_io_capacity",
	"innodb_io_capacity_max",
	"innodb_lock_wait_timeout",
	"innodb_max_dirty_pages_pct",
	"innodb_print_all_deadlocks",
	"innodb_stats_on_metadata",
	"interactive_timeout",
	"join_buffer_size",
	"key_buffer_size",
	"lock_wait_timeout",
	"log_bin_trust_function_creators",
	"log_queries_not_using_indexes",
	"long_query_time",
	"max_allowed_packet",
	"max_connect_errors",
	"max_connections",
	"max_heap_table_size",
	"max_prepared_stmt_count",
	"max_user_connections",
	"net_read_timeout",
	"net_write_timeout",
	"read_buffer_size",
	"read_rnd_buffer_size",
	"slow_query_log",
	"sort_buffer_size",
	"sql_mode",
	"table_definition_cache",
	"table_open_cache",
	"thread_cache_size",
	"tmp_table_size",
	"wait_timeout",
}

// dynamicMariaDB are MariaDB's own dynamic variables (10.11 and later).
var dynamicMariaDB = []string{
	"innodb_log_file_size", // resizable at run time since 10.9
	"log_slow_verbosity",
	"max_statement_time",
	"slave_net_timeout",
}

// dynamicMySQL are MySQL 8.4's. No MySQL server runs in this project's engine tier, so this
// list holds only variables the MySQL reference manual documents as dynamic.
var dynamicMySQL = []string{
	"innodb_redo_log_capacity",
	"max_execution_time",
	"replica_net_timeout",
}

// DynamicVariables returns the dynamic variables Kura applies with SET GLOBAL on an engine, in
// lexical order.
func DynamicVariables(engine kurav1alpha1.Engine) []string {
	own := dynamicMariaDB
	if engine == kurav1alpha1.EngineMySQL {
		own = dynamicMySQL
	}
	out := append(append([]string(nil), dynamicCommon...), own...)
	sort.Strings(out)
	return out
}

// IsDynamic reports whether an option of spec.mysqld.config, as written there, is applied
// with SET GLOBAL on engine. Only the plain variable name counts: an option behind a modifier
// ("loose-", "skip-") or a "name." prefix is static.
func IsDynamic(engine kurav1alpha1.Engine, key string) bool {
	k := NormalizeKey(key)
	if _, owned := Owned(k); owned {
		return false
	}
	for _, d := range DynamicVariables(engine) {
		if d == k {
			return true
		}
	}
	return false
}

// Setting is one option of spec.mysqld.config as the server knows it: the normalised name and
// the value, and whether it is dynamic.
type Setting struct {
	Name    string
	Value   string
	Dynamic bool
}

// Settings returns the options of spec.mysqld.config in name order, normalised, each marked
// dynamic or static for the cluster's engine.
func Settings(c *kurav1alpha1.MySQLCluster) []Setting {
	engine := engineOf(c)
	keys := make([]string, 0, len(c.Spec.MySQLD.Config))
	for k := range c.Spec.MySQLD.Config {
		keys = append(keys, k)
	}
	// Render writes the keys in this order and the last line of a name wins, so a name
	// spelt twice ("max-connections", "max_connections") takes the later value here too.
	sort.Strings(keys)
	byName := map[string]Setting{}
	for _, k := range keys {
		n := NormalizeKey(k)
		byName[n] = Setting{Name: n, Value: strings.TrimSpace(c.Spec.MySQLD.Config[k]), Dynamic: IsDynamic(engine, k)}
	}
	out := make([]Setting, 0, len(byName))
	for _, s := range byName {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func engineOf(c *kurav1alpha1.MySQLCluster) kurav1alpha1.Engine {
	if c.Spec.Engine == "" {
		return kurav1alpha1.EngineMariaDB
	}
	return c.Spec.Engine
}

// StaticHash returns the hash of the config a restart would change: the rendered text with
// the dynamic options of spec.mysqld.config left out. The Pod template carries it, so a change
// of dynamic options alone does not change the template and nothing restarts; the ConfigMap
// keeps the full text, which the next start reads. For a cluster without dynamic options it
// is Hash(Render(c)).
func StaticHash(c *kurav1alpha1.MySQLCluster) (string, error) {
	engine := engineOf(c)
	static := c.DeepCopy()
	static.Spec.MySQLD.Config = nil
	for k, v := range c.Spec.MySQLD.Config {
		if IsDynamic(engine, k) {
			continue
		}
		if static.Spec.MySQLD.Config == nil {
			static.Spec.MySQLD.Config = map[string]string{}
		}
		static.Spec.MySQLD.Config[k] = v
	}
	text, err := Render(static)
	if err != nil {
		return "", err
	}
	return Hash(text), nil
}

// SameValue reports whether a value written in my.cnf (want) is the value the server reports
// (got): names and keywords compare without case, ON/OFF/TRUE/FALSE/YES/NO/1/0 as booleans,
// sizes with a K, M, G or T suffix as bytes, decimals as numbers, and comma-separated lists
// (sql_mode) as sets.
func SameValue(want, got string) bool {
	w, g := strings.TrimSpace(want), strings.TrimSpace(got)
	if strings.EqualFold(w, g) {
		return true
	}
	if wb, ok := boolValue(w); ok {
		if gb, ok := boolValue(g); ok {
			return wb == gb
		}
	}
	if wn, ok := numberValue(w); ok {
		if gn, ok := numberValue(g); ok {
			return math.Abs(wn-gn) <= 1e-6*math.Max(1, math.Abs(wn))
		}
	}
	if strings.Contains(w, ",") || strings.Contains(g, ",") {
		return sameSet(w, g)
	}
	return false
}

func boolValue(s string) (bool, bool) {
	switch strings.ToUpper(s) {
	case "ON", "TRUE", "YES", "1":
		return true, true
	case "OFF", "FALSE", "NO", "0":
		return false, true
	}
	return false, false
}

// numberValue parses an integer or decimal with an optional size suffix.
func numberValue(s string) (float64, bool) {
	if s == "" {
		return 0, false
	}
	mult := 1.0
	switch s[len(s)-1] {
	case 'k', 'K':
		mult = 1 << 10
	case 'm', 'M':
		mult = 1 << 20
	case 'g', 'G':
		mult = 1 << 30
	case 't', 'T':
		mult = 1 << 40
	}
	if mult != 1 {
		s = s[:len(s)-1]
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, false
	}
	return f * mult, true
}

func sameSet(a, b string) bool {
	set := func(s string) map[string]bool {
		m := map[string]bool{}
		for _, p := range strings.Split(s, ",") {
			if p = strings.ToUpper(strings.TrimSpace(p)); p != "" {
				m[p] = true
			}
		}
		return m
	}
	sa, sb := set(a), set(b)
	if len(sa) != len(sb) {
		return false
	}
	for k := range sa {
		if !sb[k] {
			return false
		}
	}
	return true
}
