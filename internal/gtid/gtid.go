// Package gtid implements GTID-set arithmetic for MariaDB and MySQL in Go, so the clustering
// core can decide what one instance has that another lacks without asking a server.
//
// A Set is an immutable value. The two flavors have different models:
//
//   - MySQL: a set of transactions, uuid[:tag] -> list of closed intervals of transaction
//     numbers. Every operation is exact.
//   - MariaDB: per (domain, server_id), the highest sequence number seen. Fed with
//     @@gtid_binlog_state of a server that logs replicated transactions (log_slave_updates=ON,
//     gtid_strict_mode=ON), this is a complete summary of what the server has: see
//     docs/engines.md, "GTID semantics".
//
// Sets of different flavors are never mixed: Contains and Subtract treat a non-empty set of
// another flavor as incomparable, and Union panics on it (a programming error).
package gtid

import (
	"fmt"
	"strings"
)

// Flavor names a GTID format. The values match the engine names of the API.
type Flavor string

const (
	// MariaDB GTIDs are domain-server-seq triples.
	MariaDB Flavor = "mariadb"
	// MySQL GTIDs are uuid[:tag]:interval lists.
	MySQL Flavor = "mysql"
)

// Set is an immutable GTID set. The zero value is an empty set of no flavor, which combines
// with a set of either flavor.
type Set struct {
	flavor Flavor
	maria  map[DomainServer]uint64 // seq > 0 only
	mysql  map[Source][]Interval   // sorted, merged, non-empty lists only
}

// DomainServer identifies a MariaDB GTID stream: transactions of one server in one domain.
type DomainServer struct {
	Domain uint32
	Server uint32
}

// Source identifies a MySQL GTID stream: a server UUID (lower-case, with hyphens) and an
// optional tag (lower-case; empty when untagged).
type Source struct {
	UUID string
	Tag  string
}

// Interval is a closed range of MySQL transaction numbers, Start <= End.
type Interval struct {
	Start, End uint64
}

// Parse reads a GTID set in the text form the given flavor prints. Whitespace (including the
// newlines MySQL puts after commas) is ignored; an empty or blank string is the empty set.
func Parse(f Flavor, s string) (Set, error) {
	switch f {
	case MariaDB:
		return parseMariaDB(s)
	case MySQL:
		return parseMySQL(s)
	default:
		return Set{}, fmt.Errorf("failed to parse GTID set: unknown flavor %q", f)
	}
}

// MustParse is Parse for constants and tests; it panics on bad input.
func MustParse(f Flavor, s string) Set {
	set, err := Parse(f, s)
	if err != nil {
		panic(err)
	}
	return set
}

// Empty returns the empty set of a flavor.
func Empty(f Flavor) Set { return Set{flavor: f} }

// Flavor returns the set's flavor; empty for the zero Set.
func (s Set) Flavor() Flavor { return s.flavor }

// IsEmpty reports whether the set holds no transaction.
func (s Set) IsEmpty() bool { return len(s.maria) == 0 && len(s.mysql) == 0 }

// String returns the canonical text: MariaDB entries ordered by domain then server_id;
// MySQL entries ordered by UUID, untagged intervals first, then tags in order, intervals
// merged. Both are accepted by Parse and by the servers.
func (s Set) String() string {
	switch {
	case len(s.maria) > 0:
		return mariaString(s.maria)
	case len(s.mysql) > 0:
		return mysqlString(s.mysql)
	}
	return ""
}

// comparable reports whether two sets can be combined: same flavor, or one of them empty.
func (s Set) comparable(o Set) bool {
	return s.IsEmpty() || o.IsEmpty() || s.flavor == o.flavor
}

// Contains reports whether s holds every transaction of o. Every set contains the empty set.
func (s Set) Contains(o Set) bool {
	if o.IsEmpty() {
		return true
	}
	if !s.comparable(o) {
		return false
	}
	if o.flavor == MariaDB {
		return mariaContains(s.maria, o.maria)
	}
	return mysqlContains(s.mysql, o.mysql)
}

// Subtract returns what s has that o lacks. s.Subtract(o).IsEmpty() == o.Contains(s).
// For MariaDB the result holds, per (domain, server_id), s's highest sequence number where it
// exceeds o's: the transactions of that stream in the range (o's seq, s's seq] are the extra
// ones. This is how errant transactions are reported.
func (s Set) Subtract(o Set) Set {
	if s.IsEmpty() || o.IsEmpty() || !s.comparable(o) {
		return s
	}
	if s.flavor == MariaDB {
		return Set{flavor: MariaDB, maria: mariaSubtract(s.maria, o.maria)}
	}
	return Set{flavor: MySQL, mysql: mysqlSubtract(s.mysql, o.mysql)}
}

// Union returns every transaction of s and o. It panics when both are non-empty and of
// different flavors.
func (s Set) Union(o Set) Set {
	if o.IsEmpty() {
		if s.flavor == "" {
			s.flavor = o.flavor
		}
		return s
	}
	if s.IsEmpty() {
		return o
	}
	if s.flavor != o.flavor {
		panic(fmt.Sprintf("gtid: union of a %s set and a %s set", s.flavor, o.flavor))
	}
	if s.flavor == MariaDB {
		return Set{flavor: MariaDB, maria: mariaUnion(s.maria, o.maria)}
	}
	return Set{flavor: MySQL, mysql: mysqlUnion(s.mysql, o.mysql)}
}

// Equal reports whether two sets hold the same transactions. Empty sets are equal whatever
// their flavor.
func (s Set) Equal(o Set) bool {
	if s.IsEmpty() || o.IsEmpty() {
		return s.IsEmpty() && o.IsEmpty()
	}
	return s.flavor == o.flavor && s.String() == o.String()
}

// splitEntries splits a set's text on commas, dropping whitespace; blank input yields none.
func splitEntries(s string) ([]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	parts := strings.Split(s, ",")
	for i, p := range parts {
		parts[i] = strings.TrimSpace(p)
		if parts[i] == "" {
			return nil, fmt.Errorf("failed to parse GTID set %q: empty entry at position %d", s, i+1)
		}
	}
	return parts, nil
}
