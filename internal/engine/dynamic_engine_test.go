package engine_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/internal/engine"
	"github.com/kura-db/kura/internal/enginetest"
	"github.com/kura-db/kura/internal/mycnf"
)

// knownStatic are variables the server only reads at startup; Kura must roll for them.
var knownStatic = []string{"back_log", "innodb_page_size", "open_files_limit", "skip_name_resolve", "innodb_log_buffer_size", "performance_schema"}

// Every variable Kura applies with SET GLOBAL is dynamic on the real server, and a few known
// static ones are neither dynamic there nor in the table. The server is the authority:
// information_schema.SYSTEM_VARIABLES.READ_ONLY.
func TestDynamicTableMatchesTheServer(t *testing.T) {
	c := enginetest.Start(t, 1, enginetest.Options{})
	db := c.Instances[0].DB()
	readOnly := func(name string) (string, bool) {
		var ro, scope string
		err := db.QueryRow("SELECT READ_ONLY, VARIABLE_SCOPE FROM information_schema.SYSTEM_VARIABLES WHERE VARIABLE_NAME = ?", strings.ToUpper(name)).Scan(&ro, &scope)
		if err != nil {
			t.Errorf("%s: not a system variable of this server: %v", name, err)
			return "", false
		}
		if scope == "SESSION ONLY" {
			t.Errorf("%s has no global value (scope %s)", name, scope)
		}
		return ro, true
	}
	for _, name := range mycnf.DynamicVariables(kurav1alpha1.EngineMariaDB) {
		if ro, ok := readOnly(name); ok && ro != "NO" {
			t.Errorf("%s is in the dynamic table but the server says READ_ONLY=%s: a change would never take effect without a restart", name, ro)
		}
	}
	for _, name := range knownStatic {
		if ro, ok := readOnly(name); ok && ro != "YES" {
			t.Errorf("%s: the server says READ_ONLY=%s, the test expected a static variable", name, ro)
		}
		if mycnf.IsDynamic(kurav1alpha1.EngineMariaDB, name) {
			t.Errorf("%s is static on the server but in the dynamic table", name)
		}
	}
}

// SetGlobal sends sizes, decimals, booleans and sets as the server expects them; the values
// read back compare equal to what was written (mycnf.SameValue); a refusal wraps ErrRefused.
func TestMariaDBSetGlobalAndReadBack(t *testing.T) {
	c := enginetest.Start(t, 1, enginetest.Options{})
	inst := c.Instances[0].Open(engine.Options{})
	ctx := context.Background()
	want := map[string]string{
		"max_connections":      "321",
		"long_query_time":      "0.25",
		"max_allowed_packet":   "32M",
		"slow_query_log":       "ON",
		"sql_mode":             "NO_ENGINE_SUBSTITUTION,STRICT_TRANS_TABLES",
		"character_set_server": "latin1",
	}
	var names []string
	for k, v := range want {
		if err := inst.SetGlobal(ctx, k, v); err != nil {
			t.Fatalf("SET GLOBAL %s = %s: %v", k, v, err)
		}
		names = append(names, k)
	}
	got, err := inst.GlobalVariables(ctx, append(names, "no_such_variable"))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := got["no_such_variable"]; ok {
		t.Errorf("an unknown variable was reported: %v", got)
	}
	for k, v := range want {
		if !mycnf.SameValue(v, got[k]) {
			t.Errorf("%s: set %q, the server reports %q", k, v, got[k])
		}
	}
	err = inst.SetGlobal(ctx, "back_log", "77")
	if !errors.Is(err, engine.ErrRefused) {
		t.Fatalf("SET GLOBAL of a read-only variable: got %v, want ErrRefused", err)
	}
	if !strings.Contains(err.Error(), "read only") && !strings.Contains(err.Error(), "read-only") {
		t.Errorf("the refusal does not carry the server's words: %v", err)
	}
	if _, err := inst.GlobalVariables(ctx, []string{"max_connections' OR 1=1 -- "}); err == nil {
		t.Error("a malformed variable name was accepted")
	}
}
