package engine

import (
	"crypto/sha1" //nolint:gosec // mysql_native_password is SHA1(SHA1(password)) by definition
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"
)

// AccountRole decides an account's privileges (see dialect.grants).
type AccountRole string

const (
	// RoleAdmin is the operator's account: all privileges.
	RoleAdmin AccountRole = "admin"
	// RoleReplication is what replicas connect with.
	RoleReplication AccountRole = "replication"
	// RoleAgent is the in-Pod agent's account: backups, clones, binlog archiving.
	RoleAgent AccountRole = "agent"
	// RoleRoot is root@localhost.
	RoleRoot AccountRole = "root"
)

// Account names of the product (docs/engines.md, "Accounts").
const (
	AdminUser       = "kura-admin"
	ReplicationUser = "kura-repl"
	AgentUser       = "kura-agent"
	RootUser        = "root"
)

// Account is a database account Kura owns.
type Account struct {
	User     string
	Host     string
	Password string
	Role     AccountRole
}

// StandardAccounts returns the four accounts every instance has, with the passwords of the
// cluster Secret.
func StandardAccounts(adminPassword, replicationPassword, agentPassword, rootPassword string) []Account {
	return []Account{
		{User: AdminUser, Host: "%", Password: adminPassword, Role: RoleAdmin},
		{User: ReplicationUser, Host: "%", Password: replicationPassword, Role: RoleReplication},
		{User: AgentUser, Host: "%", Password: agentPassword, Role: RoleAgent},
		{User: RootUser, Host: "localhost", Password: rootPassword, Role: RoleRoot},
	}
}

func validateAccount(a Account) error {
	switch {
	case a.User == "" || a.Host == "":
		return fmt.Errorf("account %q@%q: user and host are required", a.User, a.Host)
	case a.Password == "":
		return fmt.Errorf("account %s: empty password", a.name())
	case strings.ContainsAny(a.User+a.Host, "`'\"\\\x00\n\r"):
		return fmt.Errorf("account %s: user and host must not contain quotes, backslashes or control characters", a.name())
	}
	switch a.Role {
	case RoleAdmin, RoleReplication, RoleAgent, RoleRoot:
		return nil
	}
	return fmt.Errorf("account %s: unknown role %q", a.name(), a.Role)
}

func (a Account) name() string { return "'" + a.User + "'@'" + a.Host + "'" }

// accountStatements creates or repairs one account: idempotent, safe to run again.
func accountStatements(d dialect, a Account) []stmt {
	privs, grantOption := d.grants(a.Role)
	grant := "GRANT " + strings.Join(privs, ", ") + " ON *.* TO " + a.name()
	if grantOption {
		grant += " WITH GRANT OPTION"
	}
	return []stmt{
		{Query: "CREATE USER IF NOT EXISTS " + a.name() + " IDENTIFIED BY ?", Args: []any{a.Password}},
		{Query: "ALTER USER " + a.name() + " IDENTIFIED BY ?", Args: []any{a.Password}},
		{Query: grant},
	}
}

// bootstrapSQL is the script InitDataDir runs on a new data directory, with binary logging
// off: it loads the grant tables, creates the accounts and drops the all-privilege socket
// account that the installer may create for the operating-system user.
func bootstrapSQL(d dialect, accounts []Account) (string, error) {
	stmts := []stmt{d.disableBinlog()}
	if d.engine() != "mysql" {
		// mariadbd --bootstrap starts without grant tables; loading them allows CREATE USER.
		stmts = append(stmts, stmt{Query: "FLUSH PRIVILEGES"})
	}
	for _, a := range accounts {
		if err := validateAccount(a); err != nil {
			return "", fmt.Errorf("failed to render account SQL: %w", err)
		}
		stmts = append(stmts, accountStatements(d, a)...)
	}
	if d.engine() != "mysql" {
		stmts = append(stmts, stmt{Query: "DROP USER IF EXISTS 'mysql'@'localhost'"})
	}
	var b strings.Builder
	for _, s := range stmts {
		b.WriteString(s.String())
		b.WriteString(";\n")
	}
	return b.String(), nil
}

// nativePasswordHash is the authentication string of mysql_native_password.
func nativePasswordHash(password string) string {
	first := sha1.Sum([]byte(password)) //nolint:gosec // see import
	second := sha1.Sum(first[:])        //nolint:gosec // see import
	return "*" + strings.ToUpper(hex.EncodeToString(second[:]))
}

// AccountsError lists what CheckAccounts found wrong.
type AccountsError struct {
	Problems []string
}

func (e *AccountsError) Error() string {
	return "accounts need repair: " + strings.Join(e.Problems, "; ")
}

// hasPrivilege reports whether SHOW GRANTS text grants privilege on *.*, reading the
// REPLICA/SLAVE spellings as one.
func hasPrivilege(grants []string, privilege string) bool {
	norm := func(s string) string {
		s = strings.ToUpper(s)
		s = strings.ReplaceAll(s, "REPLICATION REPLICA", "REPLICATION SLAVE")
		s = strings.ReplaceAll(s, "REPLICA MONITOR", "SLAVE MONITOR")
		return strings.ReplaceAll(s, "REPLICATION CLIENT", "BINLOG MONITOR")
	}
	want := norm(privilege)
	for _, g := range grants {
		g = norm(g)
		on := strings.Index(g, " ON *.* TO ")
		if !strings.HasPrefix(g, "GRANT ") || on < 0 {
			continue
		}
		list := g[len("GRANT "):on]
		if list == "ALL PRIVILEGES" || list == "ALL" {
			return true
		}
		// MySQL prints ALL as the full list of static privileges.
		if want == "ALL PRIVILEGES" && strings.Contains(list, "SHUTDOWN") && strings.Contains(list, "SUPER") {
			return true
		}
		for _, p := range strings.Split(list, ",") {
			if strings.TrimSpace(p) == want {
				return true
			}
		}
	}
	return false
}

func hasGrantOption(grants []string) bool {
	for _, g := range grants {
		if regexp.MustCompile(`(?i) ON \*\.\* TO .* WITH GRANT OPTION`).MatchString(g) {
			return true
		}
	}
	return false
}
