package gtid

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

func parseMariaDB(s string) (Set, error) {
	entries, err := splitEntries(s)
	if err != nil {
		return Set{}, err
	}
	m := map[DomainServer]uint64{}
	for _, e := range entries {
		parts := strings.Split(e, "-")
		if len(parts) != 3 {
			return Set{}, fmt.Errorf("failed to parse MariaDB GTID %q: want domain-server-seq", e)
		}
		domain, err := parseUint(parts[0], 32)
		if err != nil {
			return Set{}, fmt.Errorf("failed to parse MariaDB GTID %q: domain: %w", e, err)
		}
		server, err := parseUint(parts[1], 32)
		if err != nil {
			return Set{}, fmt.Errorf("failed to parse MariaDB GTID %q: server_id: %w", e, err)
		}
		seq, err := parseUint(parts[2], 64)
		if err != nil {
			return Set{}, fmt.Errorf("failed to parse MariaDB GTID %q: seq_no: %w", e, err)
		}
		if seq == 0 {
			continue // seq 0 names no transaction
		}
		k := DomainServer{Domain: uint32(domain), Server: uint32(server)}
		if seq > m[k] {
			m[k] = seq
		}
	}
	if len(m) == 0 {
		return Empty(MariaDB), nil
	}
	return Set{flavor: MariaDB, maria: m}, nil
}

// parseUint accepts decimal digits only: no sign, no spaces, no base prefix.
func parseUint(s string, bits int) (uint64, error) {
	if s == "" {
		return 0, fmt.Errorf("empty number")
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%q is not a decimal number", s)
		}
	}
	n, err := strconv.ParseUint(s, 10, bits)
	if err != nil {
		return 0, fmt.Errorf("%q is out of range", s)
	}
	return n, nil
}

func mariaKeys(m map[DomainServer]uint64) []DomainServer {
	keys := make([]DomainServer, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].Domain != keys[j].Domain {
			return keys[i].Domain < keys[j].Domain
		}
		return keys[i].Server < keys[j].Server
	})
	return keys
}

func mariaString(m map[DomainServer]uint64) string {
	var b strings.Builder
	for i, k := range mariaKeys(m) {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%d-%d-%d", k.Domain, k.Server, m[k])
	}
	return b.String()
}

func mariaContains(a, b map[DomainServer]uint64) bool {
	for k, seq := range b {
		if a[k] < seq {
			return false
		}
	}
	return true
}

func mariaSubtract(a, b map[DomainServer]uint64) map[DomainServer]uint64 {
	out := map[DomainServer]uint64{}
	for k, seq := range a {
		if seq > b[k] {
			out[k] = seq
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func mariaUnion(a, b map[DomainServer]uint64) map[DomainServer]uint64 {
	out := make(map[DomainServer]uint64, len(a)+len(b))
	for k, seq := range a {
		out[k] = seq
	}
	for k, seq := range b {
		if seq > out[k] {
			out[k] = seq
		}
	}
	return out
}

// MariaDBGTID is one domain-server-seq triple.
type MariaDBGTID struct {
	Domain, Server uint32
	Seq            uint64
}

// String returns the GTID in MariaDB's text form.
func (g MariaDBGTID) String() string { return fmt.Sprintf("%d-%d-%d", g.Domain, g.Server, g.Seq) }

// MariaDBGTIDs returns the entries of a MariaDB set in canonical order; nil for MySQL sets.
func (s Set) MariaDBGTIDs() []MariaDBGTID {
	if len(s.maria) == 0 {
		return nil
	}
	out := make([]MariaDBGTID, 0, len(s.maria))
	for _, k := range mariaKeys(s.maria) {
		out = append(out, MariaDBGTID{Domain: k.Domain, Server: k.Server, Seq: s.maria[k]})
	}
	return out
}

// BinlogState returns a MariaDB set in the form SET GLOBAL gtid_binlog_state takes. The order
// matters there: the server takes the last entry of each domain as the domain's most recent
// transaction (@@gtid_binlog_pos, the start of the binary log a replica asks for), whatever its
// seq_no. So each domain's entries go by ascending seq_no, its Position entry last; in the
// canonical order (by server_id) a newer primary with a lower server_id would come first, and
// a replica asking for that position gets error 1236 (not in any binary log). MySQL sets are
// returned in their usual form.
func (s Set) BinlogState() string {
	if s.flavor != MariaDB || len(s.maria) == 0 {
		return s.String()
	}
	gs := s.MariaDBGTIDs()
	sort.SliceStable(gs, func(i, j int) bool {
		if gs[i].Domain != gs[j].Domain {
			return gs[i].Domain < gs[j].Domain
		}
		if gs[i].Seq != gs[j].Seq {
			return gs[i].Seq < gs[j].Seq
		}
		return gs[i].Server > gs[j].Server // Position breaks ties to the lowest server_id
	})
	parts := make([]string, len(gs))
	for i, g := range gs {
		parts[i] = g.String()
	}
	return strings.Join(parts, ",")
}

// Position returns, for a MariaDB set, the entry with the highest seq_no of each domain: the
// per-domain position that gtid_slave_pos, MASTER_GTID_WAIT and CHANGE MASTER take (with
// gtid_strict_mode every earlier transaction of the domain precedes it). Ties, which only a
// diverged history can produce, go to the lowest server_id. MySQL sets are returned unchanged.
func (s Set) Position() Set {
	if s.flavor != MariaDB || len(s.maria) == 0 {
		return s
	}
	best := map[uint32]MariaDBGTID{}
	for _, g := range s.MariaDBGTIDs() {
		if cur, ok := best[g.Domain]; !ok || g.Seq > cur.Seq {
			best[g.Domain] = g
		}
	}
	out := make(map[DomainServer]uint64, len(best))
	for d, g := range best {
		out[DomainServer{Domain: d, Server: g.Server}] = g.Seq
	}
	return Set{flavor: MariaDB, maria: out}
}

// FromServer returns the part of a MariaDB set that the given server_id wrote (a transaction
// carries the id of the server where it was first committed). MySQL sets name servers by
// UUID, not by server_id: for them the result is empty.
func (s Set) FromServer(id uint32) Set {
	if s.flavor != MariaDB {
		return Set{flavor: s.flavor}
	}
	out := map[DomainServer]uint64{}
	for k, seq := range s.maria {
		if k.Server == id {
			out[k] = seq
		}
	}
	if len(out) == 0 {
		return Set{flavor: s.flavor}
	}
	return Set{flavor: s.flavor, maria: out}
}

// Earliest returns, for MariaDB sets, the position every one of them has reached: per domain
// the lowest of their positions' sequence numbers, and no entry for a domain some set lacks
// (nothing of it is common). With no sets it is empty.
func Earliest(sets ...Set) Set {
	out := Set{flavor: MariaDB, maria: map[DomainServer]uint64{}}
	if len(sets) == 0 {
		return out
	}
	low := map[uint32]MariaDBGTID{}
	for _, g := range sets[0].Position().MariaDBGTIDs() {
		low[g.Domain] = g
	}
	for _, s := range sets[1:] {
		pos := map[uint32]MariaDBGTID{}
		for _, g := range s.Position().MariaDBGTIDs() {
			pos[g.Domain] = g
		}
		for d, g := range low {
			o, ok := pos[d]
			switch {
			case !ok:
				delete(low, d)
			case o.Seq < g.Seq:
				low[d] = o
			}
		}
	}
	for _, g := range low {
		out.maria[DomainServer{Domain: g.Domain, Server: g.Server}] = g.Seq
	}
	return out
}
