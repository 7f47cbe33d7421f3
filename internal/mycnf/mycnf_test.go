package mycnf

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/internal/golden"
)

func cluster(engine kurav1alpha1.Engine, cfg map[string]string) *kurav1alpha1.MySQLCluster {
	return &kurav1alpha1.MySQLCluster{
		ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: "prod"},
		Spec: kurav1alpha1.MySQLClusterSpec{
			Engine: engine,
			MySQLD: kurav1alpha1.MySQLDSpec{Config: cfg},
		},
	}
}

func TestRenderGolden(t *testing.T) {
	cases := map[string]*kurav1alpha1.MySQLCluster{
		"mariadb-defaults.cnf":  cluster(kurav1alpha1.EngineMariaDB, nil),
		"mariadb-overrides.cnf": cluster(kurav1alpha1.EngineMariaDB, map[string]string{"max_connections": "1000", "innodb-buffer-pool-size": "1G", "long_query_time": "2"}),
		"mysql-defaults.cnf":    cluster(kurav1alpha1.EngineMySQL, nil),
	}
	off := false
	nosemi := cluster(kurav1alpha1.EngineMariaDB, nil)
	nosemi.Spec.Replication.SemiSync = &off
	cases["mariadb-no-semisync.cnf"] = nosemi
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := Render(c)
			if err != nil {
				t.Fatal(err)
			}
			golden.Assert(t, name, []byte(got))
		})
	}
}

// The owned settings come after the user's, so a later line can never weaken them.
func TestOwnedSettingsComeLast(t *testing.T) {
	got, err := Render(cluster(kurav1alpha1.EngineMariaDB, map[string]string{"max_connections": "7"}))
	if err != nil {
		t.Fatal(err)
	}
	user := strings.Index(got, "max_connections = 7")
	owned := strings.Index(got, "sync_binlog = 1")
	if user < 0 || owned < 0 || user > owned {
		t.Fatalf("user overrides must precede owned settings:\n%s", got)
	}
	if strings.Count(got, "max_connections") != 1 {
		t.Fatalf("an overridden default must be rendered once:\n%s", got)
	}
	if !strings.HasSuffix(got, IncludeLine()+"\n") {
		t.Fatalf("the per-instance include must be the last line:\n%s", got)
	}
}

func TestValidateOverridesRefusesOwnedKeysInAnySpelling(t *testing.T) {
	for _, k := range []string{"sync_binlog", "Sync-Binlog", "READ_ONLY", "server-id", "rpl_semi_sync_master_wait_point",
		"rpl_semi_sync_master_wait_no_slave", "skip-rpl-semi-sync-master-wait-no-slave", "plugin-load-add", "user", "init_file",
		"loose-skip-grant-tables", "skip-log-bin", "disable-log-bin", "main.replicate-do-db", "binlog_ignore_db",
		"slave-skip-errors", "relay_log_space_limit", "report-port", "Loose-Init-File"} {
		err := ValidateOverrides(map[string]string{k: "1"})
		if err == nil || !strings.Contains(err.Error(), k) || !strings.Contains(err.Error(), "owned by Kura") {
			t.Errorf("%s: want a refusal naming the key, got %v", k, err)
		}
	}
	for _, v := range []string{"10\n[client]", "10\r", "10 # comment", strings.Repeat("1", MaxValueLength+1)} {
		if err := ValidateOverrides(map[string]string{"max_connections": v}); err == nil {
			t.Errorf("value %q must be refused", v)
		}
	}
	for _, k := range []string{"bad key", "a=b", "[client]", "#x", "", strings.Repeat("a", MaxNameLength+1)} {
		if err := ValidateOverrides(map[string]string{k: "1"}); err == nil {
			t.Errorf("option name %q must be refused", k)
		}
	}
	ok := map[string]string{"max_connections": "10", "long-query-time": "1", "log_bin_trust_function_creators": "ON",
		"skip-name-resolve": "ON", "hot_cache.key_buffer_size": "8M", "innodb_buffer_pool_size": strings.Repeat("1", MaxValueLength)}
	if err := ValidateOverrides(ok); err != nil {
		t.Errorf("ordinary settings must be accepted: %v", err)
	}
}

// crdRule is the CRD rule that refuses an owned setting: the markers on MySQLDSpec.Config are
// written this way, one per entry of OperatorOwnedConfig.
func crdRule(o kurav1alpha1.OwnedConfigKey) string {
	const modifiers = "^(([a-z0-9_]*[.])|((loose|skip|disable|enable|maximum|autoset)_))*"
	end := "$"
	if o.Prefix {
		end = ""
	}
	r := "!self.exists(k, k.replace('-', '_').matches('" + modifiers + o.Name + end + "')"
	for _, e := range o.Except {
		r += " && !k.replace('-', '_').matches('" + modifiers + e + "$')"
	}
	return r + ")"
}

func crdMessage(o kurav1alpha1.OwnedConfigKey) string {
	name := o.Name
	if o.Prefix {
		name += "*"
	}
	return "spec.mysqld.config: " + name + " is owned by Kura and cannot be overridden (" + o.Why + "); remove it"
}

// The CRD refuses exactly the settings of OperatorOwnedConfig, and the renderer refuses every
// setting it owns (the API server's own behaviour is checked in controllers/validation_test.go).
func TestCRDRefusesEveryOwnedKey(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "charts", "kura", "crds", "kura.dev_mysqlclusters.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var crd apiextensionsv1.CustomResourceDefinition
	if err := yaml.Unmarshal(raw, &crd); err != nil {
		t.Fatal(err)
	}
	config := crd.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"].Properties["mysqld"].Properties["config"]
	rules := map[string]string{}
	for _, r := range config.XValidations {
		if strings.Contains(r.Message, "is owned by Kura") {
			rules[r.Rule] = r.Message
		}
	}
	for _, o := range kurav1alpha1.OperatorOwnedConfig {
		msg, ok := rules[crdRule(o)]
		switch {
		case !ok:
			t.Errorf("the CRD has no rule %s", crdRule(o))
		case msg != crdMessage(o):
			t.Errorf("the CRD refuses %s with %q, want %q", o.Name, msg, crdMessage(o))
		}
		delete(rules, crdRule(o))
	}
	for r := range rules {
		t.Errorf("the CRD rule %s is not in OperatorOwnedConfig", r)
	}
	for _, s := range append(owned(kurav1alpha1.EngineMariaDB, true), owned(kurav1alpha1.EngineMySQL, true)...) {
		if err := ValidateOverrides(map[string]string{s.key: "x"}); err == nil {
			t.Errorf("owned setting %s is not refused as an override", s.key)
		}
	}
	for _, line := range strings.Split(Instance(kurav1alpha1.EngineMariaDB, 0, "h"), "\n") {
		if k, _, ok := strings.Cut(line, " = "); ok {
			if _, owned := Owned(k); !owned {
				t.Errorf("per-instance setting %s is not owned", k)
			}
		}
	}
}

// Owned (Go) and the CRD's rules (RE2 in CEL) agree on every lower-case spelling: the CRD's
// rules are evaluated here with Go's regexp, which has the same syntax and semantics.
func TestOwnedMatchesCRDRules(t *testing.T) {
	var names []string
	for _, o := range kurav1alpha1.OperatorOwnedConfig {
		n := o.Name
		if o.Prefix {
			n += "x"
		}
		names = append(names, n, strings.TrimSuffix(n, "x")+"_y", n[:len(n)-1])
		names = append(names, o.Except...)
	}
	names = append(names, "max_connections", "skip_name_resolve", "log_error", "binlog_row_image", "gtid_cleanup_batch_size", "portx", "xport")
	var keys []string
	for _, n := range names {
		for _, p := range []string{"", "loose_", "skip_", "loose_skip_", "enable_", "maximum_", "autoset_", "disable_", "conn.", "loose_conn.", "a.b."} {
			keys = append(keys, p+n, strings.ReplaceAll(p+n, "_", "-"))
		}
	}
	for _, k := range keys {
		byCRD := false
		for _, o := range kurav1alpha1.OperatorOwnedConfig {
			if crdMatches(crdRule(o), k) {
				byCRD = true
			}
		}
		if _, byGo := Owned(k); byGo != byCRD {
			t.Errorf("%s: owned by the CRD %v, by Owned %v", k, byCRD, byGo)
		}
	}
}

var (
	crdPattern = regexp.MustCompile(`matches\('([^']*)'\)`)
	compiled   = map[string]*regexp.Regexp{}
)

// crdMatches evaluates a rule built by crdRule for a map holding the single key k.
func crdMatches(rule, k string) bool {
	n := strings.ReplaceAll(k, "-", "_")
	match := func(re string) bool {
		if compiled[re] == nil {
			compiled[re] = regexp.MustCompile(re)
		}
		return compiled[re].MatchString(n)
	}
	m := crdPattern.FindAllStringSubmatch(rule, -1)
	owned := match(m[0][1])
	for _, e := range m[1:] {
		owned = owned && !match(e[1])
	}
	return owned
}

// The rendered file is accepted by the real server: mariadbd --help --verbose fails on an
// unknown option or a bad value.
func TestMariaDBAcceptsRenderedConfig(t *testing.T) {
	if testing.Short() {
		t.Skip("engine tier: needs mariadbd")
	}
	mariadbd, err := exec.LookPath("mariadbd")
	if err != nil {
		mariadbd = "/usr/sbin/mariadbd"
		if _, err := os.Stat(mariadbd); err != nil {
			t.Fatal("mariadbd not found: run make deps")
		}
	}
	text, err := Render(cluster(kurav1alpha1.EngineMariaDB, map[string]string{"long_query_time": "2"}))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	inst := filepath.Join(dir, "instance.cnf")
	if err := os.WriteFile(inst, []byte(Instance(kurav1alpha1.EngineMariaDB, 2, "shop-2.shop-instances.prod.svc.cluster.local")), 0o644); err != nil {
		t.Fatal(err)
	}
	text = strings.Replace(text, IncludeLine(), "!include "+inst, 1)
	cnf := filepath.Join(dir, "my.cnf")
	if err := os.WriteFile(cnf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(mariadbd, "--defaults-file="+cnf, "--user=root", "--help", "--verbose").CombinedOutput()
	if err != nil {
		t.Fatalf("mariadbd refused the rendered config: %v\n%s", err, out)
	}
	for _, want := range []string{"rpl-semi-sync-master-wait-point", "AFTER_SYNC", "server-id", "1002"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("mariadbd's effective options lack %q", want)
		}
	}
}
