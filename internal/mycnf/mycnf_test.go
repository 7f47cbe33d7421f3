package mycnf

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

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
	for _, k := range []string{"sync_binlog", "Sync-Binlog", "READ_ONLY", "server-id", "rpl_semi_sync_master_wait_point", "plugin-load-add", "user", "init_file"} {
		err := ValidateOverrides(map[string]string{k: "1"})
		if err == nil || !strings.Contains(err.Error(), k) || !strings.Contains(err.Error(), "managed by Kura") {
			t.Errorf("%s: want a refusal naming the key, got %v", k, err)
		}
	}
	if err := ValidateOverrides(map[string]string{"max_connections": "10\n[client]"}); err == nil {
		t.Error("a multi-line value must be refused")
	}
	if err := ValidateOverrides(map[string]string{"bad key": "1"}); err == nil {
		t.Error("an option name with a space must be refused")
	}
	if err := ValidateOverrides(map[string]string{"max_connections": "10", "long-query-time": "1"}); err != nil {
		t.Errorf("ordinary settings must be accepted: %v", err)
	}
}

// Every owned key the CRD refuses is also known to the renderer, and vice versa.
func TestCRDRefusesEveryOwnedKey(t *testing.T) {
	crd, err := os.ReadFile(filepath.Join("..", "..", "charts", "kura", "crds", "kura.dev_mysqlclusters.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	flat := strings.Join(strings.Fields(string(crd)), " ")
	for _, k := range kurav1alpha1.OperatorOwnedConfigKeys {
		if !strings.Contains(flat, "spec.mysqld.config: "+k+" is managed by Kura") {
			t.Errorf("the CRD does not refuse %s", k)
		}
	}
	for _, s := range owned(kurav1alpha1.EngineMariaDB, true) {
		if err := ValidateOverrides(map[string]string{s.key: "x"}); err == nil {
			t.Errorf("owned MariaDB setting %s is not refused as an override", s.key)
		}
	}
	for _, s := range owned(kurav1alpha1.EngineMySQL, true) {
		if err := ValidateOverrides(map[string]string{s.key: "x"}); err == nil {
			t.Errorf("owned MySQL setting %s is not refused as an override", s.key)
		}
	}
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
