// Package mycnf renders the my.cnf each instance runs with. The settings that durability and
// replication safety depend on (docs/clustering.md, "Durability") are owned here; users may set
// anything else through spec.mysqld.config.
package mycnf

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/internal/contract"
)

// The paths inside an instance Pod and the port are in internal/contract.
const (
	ServerIDBase    = 1000
	includeLine     = "!include " + contract.InstanceFile
	semiSyncTimeout = "4294967295" // milliseconds; about 49 days: the primary never falls back to async
)

// setting is one rendered line.
type setting struct{ key, value string }

// owned returns the settings Kura enforces for an engine.
func owned(engine kurav1alpha1.Engine, semiSync bool) []setting {
	common := []setting{
		{"datadir", contract.DataDir},
		{"socket", contract.Socket},
		{"pid_file", contract.PidFile},
		{"port", fmt.Sprint(contract.MySQLPort)},
		{"bind_address", "*"},
		// Durability: every commit is on disk in the binlog and the redo log before it is acknowledged.
		{"sync_binlog", "1"},
		{"innodb_flush_log_at_trx_commit", "1"},
		{"binlog_format", "ROW"},
		{"log_bin", "mysql-bin"},
		{"log_bin_index", "mysql-bin.index"},
		{"relay_log", "relay-bin"},
		{"relay_log_index", "relay-bin.index"},
		// Everything starts read-only with replication stopped; only the operator changes that.
		{"read_only", "ON"},
		{"skip_slave_start", "ON"},
	}
	switch engine {
	case kurav1alpha1.EngineMySQL:
		common = replace(common, "skip_slave_start", setting{"skip_replica_start", "ON"})
		s := append(common,
			setting{"super_read_only", "ON"},
			setting{"gtid_mode", "ON"},
			setting{"enforce_gtid_consistency", "ON"},
			setting{"log_replica_updates", "ON"},
			// relay_log_recovery=ON would discard received-but-unapplied relay logs at startup and
			// re-fetch them from the source; after a primary crash those transactions may exist
			// nowhere else, so they are kept (dba rule 1).
			setting{"relay_log_recovery", "OFF"},
			setting{"relay_log_purge", "ON"},
			setting{"plugin_load_add", "semisync_source.so;semisync_replica.so"},
			setting{"rpl_semi_sync_source_enabled", "OFF"},
			setting{"rpl_semi_sync_replica_enabled", onOff(semiSync)},
			setting{"rpl_semi_sync_source_wait_point", "AFTER_SYNC"},
			setting{"rpl_semi_sync_source_timeout", semiSyncTimeout},
		)
		return s
	default:
		return append(common,
			setting{"gtid_strict_mode", "ON"},
			setting{"gtid_domain_id", "0"},
			setting{"log_slave_updates", "ON"},
			// Keep received relay logs across restarts (see the MySQL branch).
			setting{"relay_log_recovery", "OFF"},
			// Semi-sync is built into MariaDB. The primary role is switched on at runtime by the
			// operator; every instance is configured as a semi-sync replica from the start.
			setting{"rpl_semi_sync_master_enabled", "OFF"},
			setting{"rpl_semi_sync_slave_enabled", onOff(semiSync)},
			setting{"rpl_semi_sync_master_wait_point", "AFTER_SYNC"},
			setting{"rpl_semi_sync_master_timeout", semiSyncTimeout},
			// Crash recovery as a semi-sync replica: a transaction in the binary log that was
			// not committed in the engine (so never acknowledged to its client) is rolled back
			// and cut from the binary log, instead of committed. A primary killed while waiting
			// for an acknowledgement then restarts without it and rejoins the new primary
			// instead of being errant. Only with semi-sync (a lone instance keeps what it logged).
			setting{"init_rpl_role", map[bool]string{true: "SLAVE", false: "MASTER"}[semiSync]},
		)
	}
}

// defaults are Kura's recommended settings; users may override them.
func defaults(engine kurav1alpha1.Engine) []setting {
	d := []setting{
		{"character_set_server", "utf8mb4"},
		{"collation_server", "utf8mb4_unicode_ci"},
		{"skip_name_resolve", "ON"},
		{"max_connections", "500"},
		{"innodb_buffer_pool_size", "128M"},
		{"innodb_log_file_size", "128M"},
		{"max_allowed_packet", "64M"},
		{"binlog_expire_logs_seconds", "604800"},
		{"slave_net_timeout", "10"},
		{"thread_cache_size", "32"},
	}
	if engine == kurav1alpha1.EngineMySQL {
		d = replace(d, "slave_net_timeout", setting{"replica_net_timeout", "10"})
	}
	return d
}

func replace(in []setting, key string, with setting) []setting {
	out := make([]setting, 0, len(in))
	for _, s := range in {
		if s.key == key {
			out = append(out, with)
			continue
		}
		out = append(out, s)
	}
	return out
}

func onOff(b bool) string {
	if b {
		return "ON"
	}
	return "OFF"
}

// NormalizeKey returns the canonical spelling of an option name: lower case with '_'.
func NormalizeKey(k string) string {
	return strings.ReplaceAll(strings.ToLower(strings.TrimSpace(k)), "-", "_")
}

// Limits of spec.mysqld.config, the same as the CRD's rules.
const (
	// MaxValueLength bounds a value: mysqld reads option files in 4 KiB pieces, so the rest of a
	// longer line would be read as another, unchecked setting.
	MaxValueLength = 1024
	// MaxNameLength bounds an option name.
	MaxNameLength = 128
)

var optionName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

// optionModifiers are the prefixes mysqld accepts before an option name ("loose-sync-binlog",
// "skip-log-bin"); a name behind them is the same option.
var optionModifiers = []string{"loose_", "skip_", "disable_", "enable_", "maximum_", "autoset_"}

// Owned returns the entry of OperatorOwnedConfig that covers an option name written in any case,
// with '-' or '_', behind option modifiers or behind a structured-variable or connection-name
// prefix ("name."): the same names the CRD refuses, plus every other case.
func Owned(key string) (kurav1alpha1.OwnedConfigKey, bool) {
	k := NormalizeKey(key)
	for {
		if o, ok := ownedExactly(k); ok {
			return o, true
		}
		rest := k
		for _, m := range optionModifiers {
			if strings.HasPrefix(k, m) {
				rest = k[len(m):]
				break
			}
		}
		if rest == k {
			if i := strings.IndexByte(k, '.'); i >= 0 {
				rest = k[i+1:]
			}
		}
		if rest == k {
			return kurav1alpha1.OwnedConfigKey{}, false
		}
		k = rest
	}
}

func ownedExactly(k string) (kurav1alpha1.OwnedConfigKey, bool) {
	for _, o := range kurav1alpha1.OperatorOwnedConfig {
		if k == o.Name || (o.Prefix && strings.HasPrefix(k, o.Name) && !slices.Contains(o.Except, k)) {
			return o, true
		}
	}
	return kurav1alpha1.OwnedConfigKey{}, false
}

// ValidateOverrides checks spec.mysqld.config as the CRD does, and beyond: owned keys written in
// any case are refused too.
func ValidateOverrides(cfg map[string]string) error {
	keys := make([]string, 0, len(cfg))
	for k := range cfg {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var owned []string
	for _, k := range keys {
		v := cfg[k]
		switch {
		case len(k) > MaxNameLength || !optionName.MatchString(k):
			return fmt.Errorf("spec.mysqld.config: %q is not a valid option name: option names are letters, digits, '_', '-' and '.', at most %d characters", k, MaxNameLength)
		case len(v) > MaxValueLength:
			return fmt.Errorf("spec.mysqld.config.%s: values are limited to %d characters (mysqld reads option files in 4 KiB pieces, so the rest of a longer line would be read as another, unchecked setting)", k, MaxValueLength)
		case strings.ContainsAny(v, "\n\r#"):
			return fmt.Errorf("spec.mysqld.config.%s: a value must be one line without '#' (a newline or carriage return would start another, unchecked setting; '#' starts a comment)", k)
		}
		if o, ok := Owned(k); ok {
			owned = append(owned, fmt.Sprintf("%s is owned by Kura and cannot be overridden (%s)", k, o.Why))
		}
	}
	if len(owned) > 0 {
		return fmt.Errorf("spec.mysqld.config: %s; remove it", strings.Join(owned, "; "))
	}
	return nil
}

// SemiSyncEnabled reports whether spec.replication.semiSync is on (the default).
func SemiSyncEnabled(c *kurav1alpha1.MySQLCluster) bool {
	return c.Spec.Replication.SemiSync == nil || *c.Spec.Replication.SemiSync
}

// Render returns the my.cnf text for a cluster: Kura's defaults, then the user's overrides,
// then the settings Kura owns, then the per-instance include. Later lines win in MySQL option
// files, so the owned settings cannot be overridden even if validation were bypassed.
func Render(c *kurav1alpha1.MySQLCluster) (string, error) {
	if err := ValidateOverrides(c.Spec.MySQLD.Config); err != nil {
		return "", err
	}
	engine := c.Spec.Engine
	if engine == "" {
		engine = kurav1alpha1.EngineMariaDB
	}
	var b strings.Builder
	b.WriteString("# Rendered by Kura for MySQLCluster " + c.Namespace + "/" + c.Name + ". Do not edit: changes are overwritten.\n")
	b.WriteString("[mysqld]\n")
	b.WriteString("# Defaults (override through spec.mysqld.config)\n")
	userSet := map[string]bool{}
	for k := range c.Spec.MySQLD.Config {
		userSet[NormalizeKey(k)] = true
	}
	for _, s := range defaults(engine) {
		if !userSet[s.key] {
			fmt.Fprintf(&b, "%s = %s\n", s.key, s.value)
		}
	}
	if len(c.Spec.MySQLD.Config) > 0 {
		b.WriteString("# spec.mysqld.config\n")
		keys := make([]string, 0, len(c.Spec.MySQLD.Config))
		for k := range c.Spec.MySQLD.Config {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(&b, "%s = %s\n", NormalizeKey(k), c.Spec.MySQLD.Config[k])
		}
	}
	b.WriteString("# Owned by Kura (replication safety and durability)\n")
	for _, s := range append(owned(engine, SemiSyncEnabled(c)), tlsSettings(c)...) {
		fmt.Fprintf(&b, "%s = %s\n", s.key, s.value)
	}
	b.WriteString(includeLine + "\n")
	return b.String(), nil
}

// tlsSettings make the server serve TLS with the certificate files of contract.TLSDir when
// spec.tls.enabled (the default), and refuse clear-text TCP clients when
// spec.tls.requireSecureTransport.
func tlsSettings(c *kurav1alpha1.MySQLCluster) []setting {
	if c.Spec.TLS.Enabled != nil && !*c.Spec.TLS.Enabled {
		return nil
	}
	s := []setting{
		{"ssl_cert", contract.TLSCertFile},
		{"ssl_key", contract.TLSKeyFile},
		{"ssl_ca", contract.TLSCAFile},
	}
	if c.Spec.TLS.RequireSecureTransport {
		s = append(s, setting{"require_secure_transport", "ON"})
	}
	return s
}

// IncludeLine is the last line of a rendered my.cnf; tests that run mysqld outside a Pod
// replace it with their own per-instance settings.
func IncludeLine() string { return includeLine }

// Instance returns the per-instance settings written by `kura init` to contract.InstanceFile.
func Instance(engine kurav1alpha1.Engine, ordinal int32, reportHost string) string {
	return fmt.Sprintf("[mysqld]\nserver_id = %d\nreport_host = %s\nreport_port = %d\n", ServerIDBase+int(ordinal), reportHost, contract.MySQLPort)
}

// Hash returns a short stable hash of a rendered config; Pods carry it in an annotation so a
// change rolls them.
func Hash(text string) string {
	sum := sha256.Sum256([]byte(text))
	return hex.EncodeToString(sum[:8])
}
