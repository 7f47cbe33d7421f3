package controllers

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/internal/builder"
)

var updateDocs = flag.Bool("update-docs", false, "rewrite docs/validation.md from the validation table")

// A refused manifest: create base (if any) then apply bad, which must fail with want in the
// API server's message.
type refusal struct {
	what string
	base string // created first; empty when bad is a create
	bad  string
	want string
}

const cluster = `apiVersion: kura.dev/v1alpha1
kind: MySQLCluster
metadata: {name: shop}
spec:
  storage: {size: 10Gi}
`

const backup = `apiVersion: kura.dev/v1alpha1
kind: Backup
metadata: {name: nightly}
spec:
  cluster: shop
  storage:
    s3: {bucket: backups, endpoint: "https://s3.example", credentialsSecret: {name: s3}}
`

const restore = `apiVersion: kura.dev/v1alpha1
kind: Restore
metadata: {name: back}
spec:
  backup: nightly
  target: {newCluster: shop-restored}
`

const schedule = `apiVersion: kura.dev/v1alpha1
kind: BackupSchedule
metadata: {name: daily}
spec:
  cluster: shop
  schedule: "0 3 * * *"
  storage: {pvc: {claimName: x}}
`

func with(base, extra string) string { return base + extra }

var refusals = []refusal{
	{"replicas below 1", "", with(cluster, "  replicas: 0\n"), "spec.replicas: Invalid value: 0: spec.replicas in body should be greater than or equal to 1"},
	{"replicas above 9", "", with(cluster, "  replicas: 10\n"), "spec.replicas: Invalid value: 10: spec.replicas in body should be less than or equal to 9"},
	{"unknown engine", "", with(cluster, "  engine: postgres\n"), `spec.engine: Unsupported value: "postgres": supported values: "mariadb", "mysql"`},
	{"unknown mariadb version", "", with(cluster, "  version: \"10.6\"\n"), "spec.version: mariadb supports 10.11 or 11.4 and mysql supports 8.4; set spec.image to run another build"},
	{"mysql with a mariadb version", "", with(cluster, "  engine: mysql\n  version: \"11.4\"\n"), "spec.version: mariadb supports 10.11 or 11.4 and mysql supports 8.4"},
	{"missing storage", "", "apiVersion: kura.dev/v1alpha1\nkind: MySQLCluster\nmetadata: {name: shop}\nspec: {replicas: 3}\n", "spec.storage: Required value"},
	{"zero storage", "", "apiVersion: kura.dev/v1alpha1\nkind: MySQLCluster\nmetadata: {name: shop}\nspec: {storage: {size: \"0\"}}\n", "spec.storage.size must be positive"},
	{"operator-owned my.cnf key", "", with(cluster, "  mysqld: {config: {sync_binlog: \"0\"}}\n"), "spec.mysqld.config: sync_binlog is owned by Kura and cannot be overridden (every commit must be on disk before it is acknowledged); remove it"},
	{"operator-owned key written with dashes", "", with(cluster, "  mysqld: {config: {server-id: \"7\"}}\n"), "spec.mysqld.config: server_id is owned by Kura and cannot be overridden"},
	{"semi-sync wait point override", "", with(cluster, "  mysqld: {config: {rpl_semi_sync_master_wait_point: AFTER_COMMIT}}\n"), "spec.mysqld.config: rpl_semi_sync_master_* is owned by Kura and cannot be overridden (semi-sync must never acknowledge a commit that no replica has received)"},
	{"semi-sync without a replica allowed", "", with(cluster, "  mysqld: {config: {rpl_semi_sync_master_wait_no_slave: \"OFF\"}}\n"), "spec.mysqld.config: rpl_semi_sync_master_* is owned by Kura"},
	{"semi-sync family in MySQL spelling", "", with(cluster, "  mysqld: {config: {rpl-semi-sync-source-wait-for-replica-count: \"0\"}}\n"), "spec.mysqld.config: rpl_semi_sync_source_* is owned by Kura"},
	{"redo log flushed once a second", "", with(cluster, "  mysqld: {config: {innodb_flush_log_at_trx_commit: \"2\"}}\n"), "spec.mysqld.config: innodb_flush_log_at_trx_commit is owned by Kura and cannot be overridden (every commit must be on disk before it is acknowledged)"},
	{"binlog filter", "", with(cluster, "  mysqld: {config: {binlog_ignore_db: shop}}\n"), "spec.mysqld.config: binlog_ignore_db is owned by Kura and cannot be overridden (every instance must log and apply every transaction with GTIDs, so that any replica can take over)"},
	{"replication filter behind a connection name", "", with(cluster, "  mysqld: {config: {main.replicate-do-db: shop}}\n"), "spec.mysqld.config: replicate_* is owned by Kura"},
	{"replication errors skipped", "", with(cluster, "  mysqld: {config: {slave_skip_errors: all}}\n"), "spec.mysqld.config: slave_skip_errors is owned by Kura"},
	{"binary log turned off with skip-", "", with(cluster, "  mysqld: {config: {skip-log-bin: \"ON\"}}\n"), "spec.mysqld.config: log_bin* is owned by Kura"},
	{"grant tables skipped behind loose-", "", with(cluster, "  mysqld: {config: {loose-skip-grant-tables: \"ON\"}}\n"), "spec.mysqld.config: skip_grant_tables is owned by Kura and cannot be overridden (it would bypass authentication, cut off the operator or run code at startup)"},
	{"SQL file run at startup", "", with(cluster, "  mysqld: {config: {init_file: /tmp/x.sql}}\n"), "spec.mysqld.config: init_file is owned by Kura"},
	{"plugin loaded at startup", "", with(cluster, "  mysqld: {config: {plugin-load-add: x.so}}\n"), "spec.mysqld.config: plugin_load* is owned by Kura"},
	{"my.cnf value longer than 1 KiB", "", with(cluster, "  mysqld: {config: {init_connect: \""+strings.Repeat("x", 1025)+"\"}}\n"), "spec.mysqld.config.init_connect: values are limited to 1024 characters (mysqld reads option files in 4 KiB pieces"},
	{"my.cnf value with a newline", "", with(cluster, "  mysqld: {config: {init_connect: \"SET @a=1\\nskip-grant-tables\"}}\n"), "spec.mysqld.config: a value must be one line without '#'"},
	{"my.cnf value with a carriage return", "", with(cluster, "  mysqld: {config: {init_connect: \"SET @a=1\\rskip-grant-tables\"}}\n"), "spec.mysqld.config: a value must be one line without '#'"},
	{"my.cnf value with #", "", with(cluster, "  mysqld: {config: {ft_boolean_syntax: \"+ -><()~*:#&|\"}}\n"), "spec.mysqld.config: a value must be one line without '#'"},
	{"my.cnf option name with a space", "", with(cluster, "  mysqld: {config: {\"max connections\": \"10\"}}\n"), "spec.mysqld.config: option names are letters, digits, '_', '-' and '.'"},
	{"failover grace period not a duration", "", with(cluster, "  replication: {failoverGracePeriod: 3 seconds}\n"), "spec.replication.failoverGracePeriod: must be a duration of at least 1s with a unit"},
	{"failover grace period zero", "", with(cluster, "  replication: {failoverGracePeriod: 0s}\n"), "spec.replication.failoverGracePeriod: must be a duration of at least 1s"},
	{"failover grace period below 1s", "", with(cluster, "  replication: {failoverGracePeriod: 500ms}\n"), "spec.replication.failoverGracePeriod: must be a duration of at least 1s"},
	{"server-down grace period below 1s", "", with(cluster, "  replication: {serverDownGracePeriod: 200ms}\n"), "spec.replication.serverDownGracePeriod: must be a duration of at least 1s"},
	{"server-down grace period not a duration", "", with(cluster, "  replication: {serverDownGracePeriod: one}\n"), "spec.replication.serverDownGracePeriod: must be a duration of at least 1s with a unit"},
	{"max lag not a duration", "", with(cluster, "  replication: {maxLag: abc}\n"), "spec.replication.maxLag: must be a duration of at least 1s with a unit"},
	{"max lag without a unit", "", with(cluster, "  replication: {maxLag: \"30\"}\n"), "spec.replication.maxLag: must be a duration of at least 1s with a unit"},
	{"max lag negative", "", with(cluster, "  replication: {maxLag: -1s}\n"), "spec.replication.maxLag: must be a duration of at least 1s"},
	{"apply timeout zero", "", with(cluster, "  replication: {applyTimeout: 0s}\n"), "spec.replication.applyTimeout: must be a duration of at least 1s"},
	{"apply timeout not a duration", "", with(cluster, "  replication: {applyTimeout: 1 minute}\n"), "spec.replication.applyTimeout: must be a duration of at least 1s with a unit"},
	{"binlog archive piece interval zero", "", with(cluster, "  binlogArchive: {pieceInterval: 0s, storage: {pvc: {claimName: x}}}\n"), "spec.binlogArchive.pieceInterval: must be a duration of at least 1s"},
	{"name of 53 characters", "", strings.Replace(cluster, "{name: shop}", "{name: "+strings.Repeat("a", 53)+"}", 1), "metadata.name: a MySQLCluster name is at most 52 characters"},
	{"name of 60 characters", "", strings.Replace(cluster, "{name: shop}", "{name: "+strings.Repeat("a", 60)+"}", 1), "metadata.name: a MySQLCluster name is at most 52 characters"},
	{"switchover target out of range", "", with(cluster, "  replicas: 3\n  switchover: {target: 3, id: a}\n"), "spec.switchover.target: must be an instance ordinal below spec.replicas"},
	{"bad errant policy", "", with(cluster, "  replication: {errantReplicaPolicy: Merge}\n"), `spec.replication.errantReplicaPolicy: Unsupported value: "Merge"`},
	{"bad deletion policy", "", with(cluster, "  deletionPolicy: Wipe\n"), `spec.deletionPolicy: Unsupported value: "Wipe"`},
	{"clear text refused without TLS", "", with(cluster, "  tls: {enabled: false, requireSecureTransport: true}\n"), "spec.tls.requireSecureTransport needs spec.tls.enabled: true"},
	{"own certificate and an issuer", "", with(cluster, "  tls: {secretName: mine, issuerRef: {name: ca-issuer}}\n"), "spec.tls.secretName and spec.tls.issuerRef are mutually exclusive"},
	{"issuer without TLS", "", with(cluster, "  tls: {enabled: false, issuerRef: {name: ca-issuer}}\n"), "spec.tls.issuerRef needs spec.tls.enabled: true"},
	{"issuer of another kind", "", with(cluster, "  tls: {issuerRef: {name: ca-issuer, kind: Vault}}\n"), `spec.tls.issuerRef.kind: Unsupported value: "Vault"`},
	{"engine changed", cluster, with(cluster, "  engine: mysql\n  version: \"8.4\"\n"), "spec.engine is immutable; restore a backup into a new cluster to change engines"},
	{"version downgraded", with(cluster, "  version: \"11.4\"\n"), with(cluster, "  version: \"10.11\"\n"), "spec.version: downgrades and unsupported upgrade paths are refused; only 10.11 -> 11.4 is allowed"},
	{"version set below the default it ran without one", cluster, with(cluster, "  version: \"10.11\"\n"), "spec.version: the cluster runs its engine's default version (11.4 for mariadb, 8.4 for mysql) while spec.version is unset, so only that version may be set; downgrades are refused"},
	{"storage shrunk", cluster, "apiVersion: kura.dev/v1alpha1\nkind: MySQLCluster\nmetadata: {name: shop}\nspec: {storage: {size: 5Gi}}\n", "spec.storage.size cannot shrink; volumes can only grow"},
	{"storage class changed", strings.Replace(cluster, "{size: 10Gi}", "{size: 10Gi, storageClassName: fast}", 1), strings.Replace(cluster, "{size: 10Gi}", "{size: 10Gi, storageClassName: slow}", 1), "spec.storage.storageClassName is immutable"},
	{"bootstrap changed", with(cluster, "  bootstrap: {backup: a}\n"), with(cluster, "  bootstrap: {backup: b}\n"), "spec.bootstrap is immutable"},
	{"backup storage with both s3 and pvc", "", with(backup, "    pvc: {claimName: x}\n"), "storage: set exactly one of s3 or pvc"},
	{"backup storage with neither", "", "apiVersion: kura.dev/v1alpha1\nkind: Backup\nmetadata: {name: nightly}\nspec: {cluster: shop, storage: {}}\n", "storage: set exactly one of s3 or pvc"},
	{"backup s3 endpoint not a URL", "", strings.Replace(backup, `"https://s3.example"`, "s3.example", 1), "endpoint must be an http:// or https:// URL"},
	{"physical backup limited to databases", "", with(backup, "  method: physical\n  databases: [shop]\n"), "spec.databases: only logical backups can be limited to some databases"},
	{"backup of a system schema", "", with(backup, "  databases: [mysql]\n"), "databases: system schemas cannot be listed"},
	{"backup pvc subPath escapes", "", "apiVersion: kura.dev/v1alpha1\nkind: Backup\nmetadata: {name: nightly}\nspec: {cluster: shop, storage: {pvc: {claimName: x, subPath: ../etc}}}\n", "subPath must be relative and must not contain '..'"},
	{"backup spec changed", backup, with(backup, "  method: physical\n"), "spec is immutable; create a new Backup instead"},
	{"restore to two targets", "", strings.Replace(restore, "{newCluster: shop-restored}", "{newCluster: a, existingCluster: b}", 1), "spec.target: set exactly one of newCluster or existingCluster"},
	{"restore point in time with time and gtid", "", with(restore, "  pointInTime: {time: \"2026-11-23T14:05:00Z\", gtid: \"0-1001-5\"}\n"), "pointInTime: set exactly one of time (an RFC 3339 moment such as 2026-11-23T14:05:00Z) or gtid (a GTID position such as 0-1-42); remove the other"},
	{"restore point in time with neither time nor gtid", "", with(restore, "  pointInTime: {}\n"), "pointInTime: set exactly one of time"},
	{"bootstrap point in time with time and gtid", "", with(cluster, "  bootstrap: {backup: nightly, pointInTime: {time: \"2026-11-23T14:05:00Z\", gtid: \"0-1001-5\"}}\n"), "pointInTime: set exactly one of time"},
	{"MariaDB GTID without its sequence", "", with(restore, "  pointInTime: {gtid: \"0-1001\"}\n"), "pointInTime.gtid: not a GTID position; write MariaDB's domain-server-sequence list (0-1-42 or 0-1-42,1-2-7) or MySQL's uuid:interval set (3e11fa47-71ca-11e1-9e33-c80aa9429562:1-42)"},
	{"MariaDB GTID list with a stray separator", "", with(restore, "  pointInTime: {gtid: \"0-1-42;1-2-7\"}\n"), "pointInTime.gtid: not a GTID position"},
	{"MySQL GTID without an interval", "", with(restore, "  pointInTime: {gtid: \"3e11fa47-71ca-11e1-9e33-c80aa9429562\"}\n"), "pointInTime.gtid: not a GTID position"},
	{"MySQL GTID with an open interval", "", with(cluster, "  bootstrap: {backup: nightly, pointInTime: {gtid: \"3e11fa47-71ca-11e1-9e33-c80aa9429562:1-\"}}\n"), "pointInTime.gtid: not a GTID position"},
	{"restore without a target", "", strings.Replace(restore, "{newCluster: shop-restored}", "{}", 1), "spec.target: set exactly one of newCluster or existingCluster"},
	{"restore spec changed", restore, strings.Replace(restore, "backup: nightly", "backup: other", 1), "spec is immutable; create a new Restore instead"},
	{"backup schedule without schedule", "", "apiVersion: kura.dev/v1alpha1\nkind: BackupSchedule\nmetadata: {name: n}\nspec: {cluster: shop, storage: {pvc: {claimName: x}}}\n", "spec.schedule: Required value"},
	{"retention age not a duration", "", with(schedule, "  retention: {maxAge: 7 days}\n"), "spec.retention.maxAge: must be a duration of at least 1m with a unit"},
	{"backup name of 57 characters", "", strings.Replace(backup, "{name: nightly}", "{name: "+strings.Repeat("b", 57)+"}", 1), "metadata.name: a Backup name is at most 56 characters"},
	{"schedule name of 40 characters", "", strings.Replace(schedule, "{name: daily}", "{name: "+strings.Repeat("s", 40)+"}", 1), "metadata.name: a BackupSchedule name is at most 39 characters"},
	{"retention age zero", "", with(schedule, "  retention: {maxAge: 0s}\n"), "spec.retention.maxAge: must be a duration of at least 1m"},
	{"verify every on a Backup", "", with(backup, "  verify: {every: 2}\n"), "spec.verify.every: only a BackupSchedule verifies one backup in N"},
	{"verify every zero", "", with(schedule, "  verify: {every: 0}\n"), "spec.verify.every in body should be greater than or equal to 1"},
	{"verify deadline under a minute", "", with(backup, "  verify: {activeDeadlineSeconds: 10}\n"), "spec.verify.activeDeadlineSeconds in body should be greater than or equal to 60"},
}

func decode(t *testing.T, ns, text string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(text), &u.Object); err != nil {
		t.Fatalf("bad test manifest: %v\n%s", err, text)
	}
	u.SetNamespace(ns)
	return u
}

func TestValidationRefusesBadManifests(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	for i, r := range refusals {
		t.Run(r.what, func(t *testing.T) {
			name := fmt.Sprintf("case-%d", i)
			if r.base != "" {
				b := decode(t, ns, r.base)
				b.SetName(name)
				if err := k8s.Create(ctx, b); err != nil {
					t.Fatalf("base manifest refused: %v", err)
				}
				bad := decode(t, ns, r.bad)
				bad.SetName(name)
				bad.SetResourceVersion(b.GetResourceVersion())
				err := k8s.Update(ctx, bad)
				// A controller may have written the object meanwhile (a finalizer): update
				// the latest version, so the refusal tested is the validation's.
				for tries := 0; apierrors.IsConflict(err) && tries < 10; tries++ {
					cur := decode(t, ns, r.base)
					if gerr := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, cur); gerr != nil {
						t.Fatal(gerr)
					}
					bad.SetResourceVersion(cur.GetResourceVersion())
					err = k8s.Update(ctx, bad)
				}
				assertRefused(t, err, r.want)
				return
			}
			bad := decode(t, ns, r.bad)
			if !strings.Contains(r.what, "name of") { // the cases about name lengths keep theirs
				bad.SetName(name)
			}
			assertRefused(t, k8s.Create(ctx, bad), r.want)
		})
	}
}

func assertRefused(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("accepted; want refusal %q", want)
	}
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("refused with\n  %v\nwant a message containing\n  %s", err, want)
	}
}

// The API server refuses every setting of OperatorOwnedConfig, in '_' and '-' spelling and behind
// an option modifier, with the reason in the message; and accepts the exceptions.
func TestValidationRefusesEveryOwnedKey(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	for _, o := range kurav1alpha1.OperatorOwnedConfig {
		name := o.Name
		if o.Prefix {
			name += "x"
		}
		for _, k := range []string{name, strings.ReplaceAll(name, "_", "-"), "loose-" + name, "skip_" + name} {
			c := decode(t, ns, with(cluster, fmt.Sprintf("  mysqld: {config: {%q: \"1\"}}\n", k)))
			err := k8s.Create(ctx, c, client.DryRunAll)
			if err == nil || !strings.Contains(err.Error(), "is owned by Kura") || !strings.Contains(err.Error(), o.Why) {
				t.Errorf("%s: want a refusal saying why Kura owns it, got %v", k, err)
			}
		}
		for _, k := range o.Except {
			c := decode(t, ns, with(cluster, fmt.Sprintf("  mysqld: {config: {%q: \"1\"}}\n", k)))
			if err := k8s.Create(ctx, c, client.DryRunAll); err != nil {
				t.Errorf("%s must be accepted: %v", k, err)
			}
		}
	}
}

// Good input near each limit is accepted (a dry-run create, or an update for the version rule).
func TestValidationAcceptsGoodInput(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	long := strings.Repeat("x", 1024)
	many := "  mysqld:\n    config:\n"
	for i := 0; i < 200; i++ {
		many += fmt.Sprintf("      opt_%d: \"%s\"\n", i, strings.Repeat("x", 64))
	}
	for what, m := range map[string]string{
		"durations":                      with(cluster, "  replication: {failoverGracePeriod: 1s, serverDownGracePeriod: 1s, maxLag: 1m30s, applyTimeout: 1.5s}\n  binlogArchive: {pieceInterval: 1h, storage: {pvc: {claimName: x}}}\n"),
		"ordinary my.cnf":                with(cluster, "  mysqld: {config: {max-connections: \"10\", log_bin_trust_function_creators: \"ON\", skip-name-resolve: \"ON\", hot_cache.key_buffer_size: 8M, init_connect: \""+long+"\"}}\n"),
		"200 my.cnf settings":            with(cluster, many),
		"name of 52 characters":          strings.Replace(cluster, "{name: shop}", "{name: "+strings.Repeat("a", 52)+"}", 1),
		"retention age":                  with(schedule, "  retention: {maxAge: 168h}\n"),
		"backup name of 56 characters":   strings.Replace(backup, "{name: nightly}", "{name: "+strings.Repeat("b", 56)+"}", 1),
		"schedule name of 39 characters": strings.Replace(schedule, "{name: daily}", "{name: "+strings.Repeat("s", 39)+"}", 1),
		"MariaDB GTID list":              with(restore, "  pointInTime: {gtid: \"0-1-42,1-2-7\"}\n"),
		"MySQL GTID set":                 with(restore, "  pointInTime: {gtid: \"3e11fa47-71ca-11e1-9e33-c80aa9429562:1-42:50,\\n 4f22ab58-71ca-11e1-9e33-c80aa9429562:7\"}\n"),
		"bootstrap to a time":            with(cluster, "  bootstrap: {backup: nightly, pointInTime: {time: \"2026-11-23T14:05:00Z\"}}\n"),
		"verified backup":                with(backup, "  verify: {activeDeadlineSeconds: 3600, scratchSizeLimit: 20Gi, resources: {limits: {memory: 1Gi}}}\n"),
		"schedule verifying one in 7":    with(schedule, "  verify: {every: 7}\n"),
	} {
		if err := k8s.Create(ctx, decode(t, ns, m), client.DryRunAll); err != nil {
			t.Errorf("%s refused: %v", what, err)
		}
	}
}

// A cluster created without spec.version runs builder.DefaultVersion; setting exactly that
// version later is accepted (the CRD's rule spells the defaults out).
func TestValidationVersionDefaultsMatchBuilder(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	for engine, version := range builder.DefaultVersion {
		base := decode(t, ns, with(cluster, fmt.Sprintf("  engine: %s\n", engine)))
		base.SetName("v-" + string(engine))
		if err := k8s.Create(ctx, base); err != nil {
			t.Fatal(err)
		}
		set := decode(t, ns, with(cluster, fmt.Sprintf("  engine: %s\n  version: %q\n", engine, version)))
		set.SetName(base.GetName())
		set.SetResourceVersion(base.GetResourceVersion())
		if err := k8s.Update(ctx, set, client.DryRunAll); err != nil {
			t.Errorf("%s: setting the default version %s refused: %v", engine, version, err)
		}
	}
}

// docs/validation.md is generated from the table above, so every documented refusal is
// backed by a test case.
func TestValidationDocMatchesTable(t *testing.T) {
	var b strings.Builder
	b.WriteString("# Refused manifests\n\n")
	b.WriteString("The API server refuses these manifests at `kubectl apply` time, with the message shown (the\n")
	b.WriteString("schema's defaults and CEL rules; nothing reaches the operator). Each row is a test case in\n")
	b.WriteString("`controllers/validation_test.go`, and this file is generated from that table\n")
	b.WriteString("(`go test ./controllers -run TestValidationDocMatchesTable -update-docs`).\n\n")
	b.WriteString("Problems only the operator can see are reported in status instead: see\n")
	b.WriteString("[Status-reported problems](#status-reported-problems).\n\n")
	b.WriteString("| bad input | on | message contains |\n| --- | --- | --- |\n")
	for _, r := range refusals {
		on := "create"
		if r.base != "" {
			on = "update"
		}
		kind := strings.TrimSpace(strings.SplitN(strings.SplitN(r.bad, "kind: ", 2)[1], "\n", 2)[0])
		fmt.Fprintf(&b, "| %s: %s | %s | `%s` |\n", kind, r.what, on, strings.ReplaceAll(r.want, "|", "\\|"))
	}
	b.WriteString(limitsDoc)
	b.WriteString(statusProblemsDoc)
	path := filepath.Join("..", "docs", "validation.md")
	if *updateDocs {
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(path)
	if err != nil || string(got) != b.String() {
		t.Fatalf("docs/validation.md is stale: run go test ./controllers -run TestValidationDocMatchesTable -update-docs")
	}
}

const limitsDoc = `
## Limits and why

- **Durations** (` + "`spec.replication.maxLag`, `failoverGracePeriod`, `serverDownGracePeriod`, `applyTimeout`, `spec.binlogArchive.pieceInterval`" + `,
  BackupSchedule ` + "`spec.retention.maxAge`" + `) are numbers with a unit (` + "`h`, `m`, `s`, `ms`, `us`, `ns`" + `,
  combined as in ` + "`1h30m`" + `), at most 32 characters. A malformed one is not only wrong for its cluster: the
  operator reads every MySQLCluster in one list, and one value it cannot parse makes the whole list
  fail, so no cluster anywhere would be reconciled. Zero and negative values are refused, and so are
  values that would switch a safeguard off: ` + "`failoverGracePeriod`" + ` (fail over only after the primary has been
  unreachable this long), ` + "`serverDownGracePeriod`" + ` (the same for a primary whose server refuses connections), ` + "`applyTimeout`" + ` (a candidate's time to apply what it received before promotion),
  ` + "`maxLag`" + ` (a replica further behind leaves the read Service) and ` + "`pieceInterval`" + ` are at least ` + "`1s`" + `;
  ` + "`maxAge`" + ` is at least ` + "`1m`" + `.
- **MySQLCluster names** are at most 52 characters. Kubernetes labels every instance Pod with
  ` + "`controller-revision-hash: <name>-<hash>`" + `, the hash having up to 10 characters, and a label value is at
  most 63 characters: with a longer name the StatefulSet cannot create any Pod. The other names Kura
  derives (` + "`<name>-instances`" + `, 62 characters at most, and ` + "`<name>-8`" + ` for the last Pod) fit.
  ` + "`spec.target.newCluster`" + ` of a Restore has the same limit.
- **Backup names** are at most 56 characters: a Backup runs the Jobs ` + "`<name>-backup`" + ` and ` + "`<name>-delete`" + `,
  and a Job name is at most 63 characters (cut short, two long names could share a Job).
  **BackupSchedule names** are at most 39 characters: the schedule's CronJob ` + "`<name>-backups`" + ` creates a
  Backup per run named like its Job, ` + "`<name>-backups-<minute>`" + ` (8 digits), and that Backup's Job adds
  ` + "`-backup`" + `. Restore names derive nothing yet and have only Kubernetes' own limits.
- **` + "`spec.mysqld.config`" + `**: option names are letters, digits, ` + "`_`, `-` and `.`" + ` (at most 128 characters);
  values are one line of at most 1024 characters without ` + "`#`" + `: mysqld reads option files in 4 KiB pieces,
  so the rest of a longer line would be read as a separate, unchecked setting (such as
  ` + "`skip-grant-tables`" + `), and a newline or carriage return would start one. Settings Kura owns are refused with
  the reason (the list is in [configuration.md](configuration.md#settings-kura-owns)), in ` + "`_`" + ` or ` + "`-`" + `
  spelling, behind the option modifiers mysqld accepts (` + "`loose-`, `skip-`, `disable-`, `enable-`, `maximum-`" + `,
  ` + "`autoset-`" + `) and behind a ` + "`name.`" + ` prefix (connection names, key caches). The API server matches
  lower case only; the operator refuses any other case in status (below). The check walks each value
  character by character, so a config of more than about 100 values of 1 KiB each exceeds the API
  server's cost limit and is refused too.
- **` + "`spec.version`" + `** only moves from 10.11 to 11.4. A cluster created without a version runs its engine's
  default (11.4 for mariadb, 8.4 for mysql), so setting a version later may only name that default.

## Objects stored before these rules

An object stored before a rule existed is not checked again until it is changed (and the API
server lets an update through when it leaves the invalid field as it was). A stored duration the
operator cannot parse stops it from reading any MySQLCluster (its log shows ` + "`time: unknown unit`" + ` or
` + "`time: invalid duration`" + `); this cannot be fixed on the operator's side without changing the field types.
Find the object and fix the field, for example:

` + "```" + `
kubectl get mysqlclusters -A -o custom-columns=NS:.metadata.namespace,NAME:.metadata.name,LAG:.spec.replication.maxLag,GRACE:.spec.replication.failoverGracePeriod,APPLY:.spec.replication.applyTimeout,PIECE:.spec.binlogArchive.pieceInterval
kubectl -n <ns> patch mysqlcluster <name> --type merge -p '{"spec":{"replication":{"maxLag":"30s"}}}'
` + "```" + `
`

const statusProblemsDoc = `
## Status-reported problems

Some problems depend on other objects, so the schema cannot see them. The operator reports
each in a condition (and a Warning event) and waits; it never crash-loops and never applies
half a change. Each is pinned by a test.

| problem | where it shows | test |
| --- | --- | --- |
| ` + "`spec.credentialsSecret`" + ` names a Secret that does not exist | MySQLCluster ` + "`Reconciled=False`" + `, reason ` + "`CredentialsSecretNotFound`" + `, message names the Secret and the keys it needs | ` + "`TestMySQLClusterUserSecretNotFound`" + ` |
| the credentials Secret lacks a key (or holds it empty) | ` + "`Reconciled=False`" + `, reason ` + "`CredentialsSecretInvalid`" + `, message names the Secret and each missing key; nothing that runs the database is created until it is fixed, and fixing the Secret unblocks the cluster at once | ` + "`TestMySQLClusterUserSecretMissingKey`" + ` |
| ` + "`spec.tls.secretName`" + ` names a Secret that does not exist, or one lacking ` + "`tls.crt`, `tls.key` or `ca.crt`" + ` | ` + "`Reconciled=False`" + `, reason ` + "`TLSSecretNotFound`" + ` or ` + "`TLSSecretInvalid`" + ` (with a ` + "`TLSInvalid`" + ` event for a missing key), message names ` + "`spec.tls.secretName`" + `, the Secret and each missing key; the Secret is re-read every 10 s and adding the key unblocks the cluster | ` + "`TestMySQLClusterUserTLSSecretMissingKey`" + ` |
| ` + "`" + `spec.tls.secretName` + "`" + ` names a Secret whose certificate is expired or not valid yet, whose ` + "`" + `tls.key` + "`" + ` does not match ` + "`" + `tls.crt` + "`" + `, whose ` + "`" + `ca.crt` + "`" + ` does not verify it, or that does not cover an instance's DNS name (` + "`" + `<cluster>-N.<cluster>-instances.<namespace>.svc.cluster.local` + "`" + `) or ` + "`" + `127.0.0.1` + "`" + ` | ` + "`" + `Reconciled=False` + "`" + `, reason ` + "`" + `TLSCertificateInvalid` + "`" + `, a ` + "`" + `TLSInvalid` + "`" + ` event; the message names ` + "`" + `spec.tls.secretName` + "`" + `, the Secret and the problem (e.g. ` + "`" + `the certificate in tls.crt expired at ...` + "`" + `). The StatefulSet is not changed, so no instance is rolled onto it; fixing the Secret unblocks the cluster | ` + "`" + `TestMySQLClusterUserCertificateUnfit` + "`" + ` |
| ` + "`" + `spec.tls.issuerRef` + "`" + ` names an Issuer or ClusterIssuer that does not exist | ` + "`" + `Reconciled=False` + "`" + `, reason ` + "`" + `TLSIssuerNotFound` + "`" + `, message ` + "`" + `spec.tls.issuerRef: Issuer "<name>" not found in namespace "<ns>"; create it or name an existing one` + "`" + ` (ClusterIssuer: ` + "`" + `in the Kubernetes cluster` + "`" + `); re-checked every 10 s; nothing that runs the database is created | ` + "`" + `TestMySQLClusterCertManagerIssuer` + "`" + ` |
| ` + "`" + `spec.tls.issuerRef` + "`" + ` set but cert-manager's CRDs are not installed | ` + "`" + `Reconciled=False` + "`" + `, reason ` + "`" + `CertManagerNotInstalled` + "`" + `, message names the missing kind and says to install cert-manager or remove ` + "`" + `spec.tls.issuerRef` + "`" + ` | ` + "`" + `TestCertManagerNotInstalledIsReported` + "`" + ` |
| cert-manager has not yet written the Secret ` + "`" + `<cluster>-tls` + "`" + ` of the Certificate | ` + "`" + `Reconciled=False` + "`" + `, reason ` + "`" + `TLSCertificatePending` + "`" + `, message says to ` + "`" + `kubectl describe certificate <cluster>-tls` + "`" + `; no instance starts until the Secret exists; an issued Secret without ` + "`" + `ca.crt` + "`" + ` or with an unfit certificate gives ` + "`" + `TLSSecretInvalid` + "`" + ` / ` + "`" + `TLSCertificateInvalid` + "`" + ` as above, naming ` + "`" + `spec.tls.issuerRef` + "`" + ` | ` + "`" + `TestMySQLClusterCertManagerIssuer` + "`" + ` |
| an operator-owned my.cnf key spelled in another case (` + "`Sync_Binlog`" + `) | ` + "`Reconciled=False`" + `, reason ` + "`InvalidConfig`" + ` | ` + "`TestMySQLClusterRefusesOwnedKeyInAnyCase`" + ` |
| storage growth on a StorageClass without expansion | ` + "`Reconciled=False`" + `, reason ` + "`VolumeExpansionRefused`" + ` | ` + "`internal/mycnf`" + `, ` + "`TestMySQLClusterStorageGrows`" + ` |
| ` + "`spec.bootstrap.backup`" + ` names a Backup that is missing, failed, of another engine or limited to some databases | MySQLCluster ` + "`Reconciled=False`" + ` (reasons ` + "`BootstrapBackupNotFound`, `BootstrapBackupFailed`, `BootstrapEngineMismatch`, `BootstrapBackupPartial`" + `), ` + "`status.bootstrap.phase: Failed`" + ` and a ` + "`BootstrapInvalid`" + ` event, each naming the field and the fix; no object is created until it resolves | ` + "`TestBootstrapRefusesBackupsThatCannotSeedIt`" + ` |
| ` + "`spec.bootstrap.backup`" + ` names a Backup that has not completed yet | ` + "`Reconciled=False`" + `, reason ` + "`BootstrapBackupNotCompleted`" + `, ` + "`status.bootstrap.phase: Pending`" + `; the cluster is created when the Backup completes | ` + "`TestBootstrapWaitsForItsBackupThenFollowsTheFirstInstance`" + ` |
| a Restore into a name in use (a cluster, volumes a former cluster left, its credentials Secret), of a Backup missing, not completed or of another engine, or whose source cluster is gone | Restore ` + "`phase: Failed`" + `, condition ` + "`Failed`" + ` with the reason, ` + "`status.message`" + ` and a ` + "`RestoreFailed`" + ` event naming the field and the fix; nothing is created | ` + "`TestRestoreRefusals`" + `, ` + "`TestCheckBootstrapBackup`" + ` |
| a Restore in place (` + "`spec.target.existingCluster`" + `) into a cluster missing, being deleted or paused, or that another in-place Restore is restoring or still keeps volumes of; of a Backup missing, not completed, of another cluster or engine; a ` + "`spec.pointInTime`" + ` without an archive, across a gap, before the backup or after the newest recoverable moment | Restore ` + "`phase: Failed`" + `, condition ` + "`Failed`" + ` (reasons ` + "`ClusterNotFound`" + `, ` + "`ClusterDeleting`" + `, ` + "`ClusterPaused`" + `, ` + "`RestoreInProgress`" + `, ` + "`BackupNotFound`" + `, ` + "`BackupNotCompleted`" + `, ` + "`BackupOfAnotherCluster`" + `, ` + "`BootstrapEngineMismatch`" + `, ` + "`TargetNotRecoverable`" + `), one message naming the field and the fix (docs/backup.md, "In-place restore"); the cluster is not touched | ` + "`TestRestoreRefusals`" + `, ` + "`TestCheckRecoverable`" + ` |
| a cluster whose ` + "`kura.dev/bootstrap`" + ` annotation (written by in-place Restores only) is unreadable | ` + "`Reconciled=False`" + `, reason ` + "`InvalidBootstrapAnnotation`" + ` | — |
| a BackupSchedule with a bad cron expression or time zone | BackupSchedule ` + "`Ready=False`" + `, reason ` + "`InvalidSchedule`" + `, message names ` + "`spec.schedule`" + ` or ` + "`spec.timeZone`" + ` and shows a valid example | ` + "`TestBackupScheduleReportsBadCron`" + ` |
| a Backup that does not restore (altered stored bytes, a table that does not open, row counts that differ from the backup's) | Backup ` + "`Verified=False`" + `, reason ` + "`VerificationFailed`" + `, ` + "`status.verification`" + ` Failed with the object, table or counts named; the Backup stays Completed | ` + "`TestBackupVerificationByRestore`" + ` |
`

// Every sample in docs/samples is accepted by the API server.
func TestSamplesAreAccepted(t *testing.T) {
	ns := newNamespace(t)
	files, err := filepath.Glob(filepath.Join("..", "docs", "samples", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no samples: %v", err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, doc := range strings.Split(string(b), "\n---\n") {
			if strings.TrimSpace(doc) == "" {
				continue
			}
			if err := k8s.Create(context.Background(), decode(t, ns, doc)); err != nil {
				t.Errorf("%s refused: %v", f, err)
			}
		}
	}
}
