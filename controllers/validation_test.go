package controllers

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
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

func with(base, extra string) string { return base + extra }

var refusals = []refusal{
	{"replicas below 1", "", with(cluster, "  replicas: 0\n"), "spec.replicas: Invalid value: 0: spec.replicas in body should be greater than or equal to 1"},
	{"replicas above 9", "", with(cluster, "  replicas: 10\n"), "spec.replicas: Invalid value: 10: spec.replicas in body should be less than or equal to 9"},
	{"unknown engine", "", with(cluster, "  engine: postgres\n"), `spec.engine: Unsupported value: "postgres": supported values: "mariadb", "mysql"`},
	{"unknown mariadb version", "", with(cluster, "  version: \"10.6\"\n"), "spec.version: mariadb supports 10.11 or 11.4 and mysql supports 8.4; set spec.image to run another build"},
	{"mysql with a mariadb version", "", with(cluster, "  engine: mysql\n  version: \"11.4\"\n"), "spec.version: mariadb supports 10.11 or 11.4 and mysql supports 8.4"},
	{"missing storage", "", "apiVersion: kura.dev/v1alpha1\nkind: MySQLCluster\nmetadata: {name: shop}\nspec: {replicas: 3}\n", "spec.storage: Required value"},
	{"zero storage", "", "apiVersion: kura.dev/v1alpha1\nkind: MySQLCluster\nmetadata: {name: shop}\nspec: {storage: {size: \"0\"}}\n", "spec.storage.size must be positive"},
	{"operator-owned my.cnf key", "", with(cluster, "  mysqld: {config: {sync_binlog: \"0\"}}\n"), "spec.mysqld.config: sync_binlog is managed by Kura and cannot be overridden; remove it"},
	{"operator-owned key written with dashes", "", with(cluster, "  mysqld: {config: {server-id: \"7\"}}\n"), "spec.mysqld.config: server_id is managed by Kura and cannot be overridden; remove it"},
	{"semi-sync wait point override", "", with(cluster, "  mysqld: {config: {rpl_semi_sync_master_wait_point: AFTER_COMMIT}}\n"), "spec.mysqld.config: rpl_semi_sync_master_wait_point is managed by Kura"},
	{"switchover target out of range", "", with(cluster, "  replicas: 3\n  switchover: {target: 3, id: a}\n"), "spec.switchover.target: must be an instance ordinal below spec.replicas"},
	{"bad errant policy", "", with(cluster, "  replication: {errantReplicaPolicy: Merge}\n"), `spec.replication.errantReplicaPolicy: Unsupported value: "Merge"`},
	{"bad deletion policy", "", with(cluster, "  deletionPolicy: Wipe\n"), `spec.deletionPolicy: Unsupported value: "Wipe"`},
	{"engine changed", cluster, with(cluster, "  engine: mysql\n  version: \"8.4\"\n"), "spec.engine is immutable; restore a backup into a new cluster to change engines"},
	{"version downgraded", with(cluster, "  version: \"11.4\"\n"), with(cluster, "  version: \"10.11\"\n"), "spec.version: downgrades and unsupported upgrade paths are refused; only 10.11 -> 11.4 is allowed"},
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
	{"restore point in time with time and gtid", "", with(restore, "  pointInTime: {time: \"2026-11-23T14:05:00Z\", gtid: \"0-1001-5\"}\n"), "pointInTime: set exactly one of time or gtid"},
	{"restore spec changed", restore, strings.Replace(restore, "backup: nightly", "backup: other", 1), "spec is immutable; create a new Restore instead"},
	{"backup schedule without schedule", "", "apiVersion: kura.dev/v1alpha1\nkind: BackupSchedule\nmetadata: {name: n}\nspec: {cluster: shop, storage: {pvc: {claimName: x}}}\n", "spec.schedule: Required value"},
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
				assertRefused(t, err, r.want)
				return
			}
			bad := decode(t, ns, r.bad)
			bad.SetName(name)
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

const statusProblemsDoc = `
## Status-reported problems

Some problems depend on other objects, so the schema cannot see them. The operator reports
each in a condition (and a Warning event) and waits; it never crash-loops and never applies
half a change. Each is pinned by a test.

| problem | where it shows | test |
| --- | --- | --- |
| ` + "`spec.credentialsSecret`" + ` names a Secret that does not exist | MySQLCluster ` + "`Reconciled=False`" + `, reason ` + "`CredentialsSecretNotFound`" + `, message names the Secret and the keys it needs | ` + "`TestMySQLClusterUserSecretNotFound`" + ` |
| the credentials Secret lacks a key (or holds it empty) | ` + "`Reconciled=False`" + `, reason ` + "`CredentialsSecretInvalid`" + `, message names the Secret and each missing key; nothing that runs the database is created until it is fixed, and fixing the Secret unblocks the cluster at once | ` + "`TestMySQLClusterUserSecretMissingKey`" + ` |
| an operator-owned my.cnf key spelled in another case (` + "`Sync_Binlog`" + `) | ` + "`Reconciled=False`" + `, reason ` + "`InvalidConfig`" + ` | ` + "`TestMySQLClusterRefusesOwnedKeyInAnyCase`" + ` |
| storage growth on a StorageClass without expansion | ` + "`Reconciled=False`" + `, reason ` + "`VolumeExpansionRefused`" + ` | ` + "`internal/mycnf`" + `, ` + "`TestMySQLClusterStorageGrows`" + ` |
| a BackupSchedule with a bad cron expression or time zone | BackupSchedule ` + "`Ready=False`" + `, reason ` + "`InvalidSchedule`" + `, message names ` + "`spec.schedule`" + ` or ` + "`spec.timeZone`" + ` and shows a valid example | ` + "`TestBackupScheduleReportsBadCron`" + ` |
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
