package engine

import (
	"crypto/sha1" //nolint:gosec // mysql_native_password is SHA1(SHA1(password)) by definition
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
)

// AccountRole decides an account's privileges (see dialect.grants).
type AccountRole string

const (
	// RoleOperator is the operator's own account: all privileges, including READ ONLY ADMIN
	// (MariaDB) and SUPER, which let it act on a read-only instance. It is never handed out.
	RoleOperator AccountRole = "operator"
	// RoleAdmin is the users' administrator: every privilege except those that bypass
	// read-only or can break replication (rule 3, docs/engines.md "Accounts").
	RoleAdmin AccountRole = "admin"
	// RoleApp is the application account: all privileges on one database (Account.Database).
	RoleApp AccountRole = "app"
	// RoleReplication is what replicas connect with.
	RoleReplication AccountRole = "replication"
	// RoleAgent is the in-Pod agent's account: backups, clones, binlog archiving.
	RoleAgent AccountRole = "agent"
	// RoleRoot is root@localhost.
	RoleRoot AccountRole = "root"
)

// Account names of the product (docs/engines.md, "Accounts").
const (
	// OperatorUser is the operator's own account, never handed out (rule 3).
	OperatorUser    = "kura-operator"
	ReplicationUser = "kura-repl"
	AgentUser       = "kura-agent"
	RootUser        = "root"
	// AdminUser and AppUser are the users' accounts (docs/engines.md, "Accounts").
	AdminUser = "admin"
	AppUser   = "app"
)

// Account is a database account Kura owns.
type Account struct {
	User     string
	Host     string
	Password string
	Role     AccountRole
	// Database is the database a RoleApp account owns; it is created with the account.
	Database string
}

// Credentials are the passwords of the cluster Secret and the application database.
type Credentials struct {
	Operator, Replication, Agent, Root string
	// Admin and App are the users' accounts; Database is the application account's database.
	Admin, App, Database string
}

// StandardAccounts returns the accounts every instance has.
func StandardAccounts(c Credentials) []Account {
	return []Account{
		{User: OperatorUser, Host: "%", Password: c.Operator, Role: RoleOperator},
		{User: ReplicationUser, Host: "%", Password: c.Replication, Role: RoleReplication},
		{User: AgentUser, Host: "%", Password: c.Agent, Role: RoleAgent},
		{User: RootUser, Host: "localhost", Password: c.Root, Role: RoleRoot},
		{User: AdminUser, Host: "%", Password: c.Admin, Role: RoleAdmin},
		{User: AppUser, Host: "%", Password: c.App, Role: RoleApp, Database: c.Database},
	}
}

// validDatabase is what Kura accepts as the application database's name: it is quoted with
// backticks in statements, so backticks, quotes and control characters are refused.
var validDatabase = regexp.MustCompile(`^[A-Za-z0-9_$-]{1,64}$`)

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
	case RoleApp:
		if !validDatabase.MatchString(a.Database) {
			return fmt.Errorf("account %s: database %q must be 1-64 letters, digits, '_', '$' or '-'", a.name(), a.Database)
		}
		return nil
	case RoleOperator, RoleAdmin, RoleReplication, RoleAgent, RoleRoot:
		return nil
	}
	return fmt.Errorf("account %s: unknown role %q", a.name(), a.Role)
}

func (a Account) name() string { return "'" + a.User + "'@'" + a.Host + "'" }

// on is the object an account's privileges are granted on.
func (a Account) on() string {
	if a.Role == RoleApp {
		return "`" + a.Database + "`.*"
	}
	return "*.*"
}

// accountStatements creates or repairs one account: idempotent, safe to run again.
func accountStatements(d dialect, a Account) []stmt {
	privs, grantOption := d.grants(a.Role)
	grant := "GRANT " + strings.Join(privs, ", ") + " ON " + a.on() + " TO " + a.name()
	if grantOption {
		grant += " WITH GRANT OPTION"
	}
	var out []stmt
	if a.Role == RoleApp {
		out = append(out, stmt{Query: "CREATE DATABASE IF NOT EXISTS " + a.on()[:len(a.on())-2]})
	}
	return append(out,
		stmt{Query: "CREATE USER IF NOT EXISTS " + a.name() + " IDENTIFIED BY ?", Args: []any{a.Password}},
		stmt{Query: "ALTER USER " + a.name() + " IDENTIFIED BY ?", Args: []any{a.Password}},
		stmt{Query: grant},
	)
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
	return hasPrivilegeOn(grants, privilege, "*.*")
}

// hasPrivilegeOn is hasPrivilege for the object on ("*.*" or "`db`.*").
func hasPrivilegeOn(grants []string, privilege, on string) bool {
	norm := func(s string) string {
		s = strings.ToUpper(s)
		s = strings.ReplaceAll(s, "REPLICATION REPLICA", "REPLICATION SLAVE")
		s = strings.ReplaceAll(s, "REPLICA MONITOR", "SLAVE MONITOR")
		return strings.ReplaceAll(s, "REPLICATION CLIENT", "BINLOG MONITOR")
	}
	want := norm(privilege)
	for _, g := range grants {
		g = norm(g)
		at := strings.Index(g, " ON "+strings.ToUpper(on)+" TO ")
		if !strings.HasPrefix(g, "GRANT ") || at < 0 {
			continue
		}
		list := g[len("GRANT "):at]
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

// AccountsScript is the SQL that creates or repairs accounts with binary logging off (the
// script InitDataDir runs): a restore passes it as the server's --init-file, so the restored
// data gets the cluster's accounts without a transaction of its own.
func AccountsScript(kind kurav1alpha1.Engine, accounts []Account) (string, error) {
	d, err := dialectFor(kind)
	if err != nil {
		return "", err
	}
	return bootstrapSQL(d, accounts)
}
