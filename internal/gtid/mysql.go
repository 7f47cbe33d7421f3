package gtid

import (
	"fmt"
	"math"
	"sort"
	"strings"
)

// maxGNO is the largest transaction number MySQL assigns (GNO is a signed 64-bit value).
const maxGNO = math.MaxInt64 - 1

func parseMySQL(s string) (Set, error) {
	entries, err := splitEntries(s)
	if err != nil {
		return Set{}, err
	}
	m := map[Source][]Interval{}
	for _, e := range entries {
		if err := parseMySQLEntry(e, m); err != nil {
			return Set{}, err
		}
	}
	for k, ivs := range m {
		m[k] = normalize(ivs)
	}
	if len(m) == 0 {
		return Empty(MySQL), nil
	}
	return Set{flavor: MySQL, mysql: m}, nil
}

// parseMySQLEntry reads "uuid(:tag|:interval)+" where a tag applies to the intervals after it.
func parseMySQLEntry(e string, m map[Source][]Interval) error {
	parts := strings.Split(e, ":")
	uuid, err := parseUUID(strings.TrimSpace(parts[0]))
	if err != nil {
		return fmt.Errorf("failed to parse MySQL GTID set entry %q: %w", e, err)
	}
	if len(parts) < 2 {
		return fmt.Errorf("failed to parse MySQL GTID set entry %q: no interval after the UUID", e)
	}
	src := Source{UUID: uuid}
	pending := false // a tag was read and no interval followed it yet
	for _, p := range parts[1:] {
		p = strings.TrimSpace(p)
		if p == "" {
			return fmt.Errorf("failed to parse MySQL GTID set entry %q: empty element", e)
		}
		if c := p[0]; c == '_' || (c|0x20 >= 'a' && c|0x20 <= 'z') {
			if pending {
				return fmt.Errorf("failed to parse MySQL GTID set entry %q: tag %q has no interval", e, src.Tag)
			}
			tag, err := parseTag(p)
			if err != nil {
				return fmt.Errorf("failed to parse MySQL GTID set entry %q: %w", e, err)
			}
			src.Tag, pending = tag, true
			continue
		}
		iv, err := parseInterval(p)
		if err != nil {
			return fmt.Errorf("failed to parse MySQL GTID set entry %q: %w", e, err)
		}
		m[src] = append(m[src], iv)
		pending = false
	}
	if pending {
		return fmt.Errorf("failed to parse MySQL GTID set entry %q: tag %q has no interval", e, src.Tag)
	}
	return nil
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c|0x20 >= 'a' && c|0x20 <= 'f')
}

// parseUUID accepts the 36-character hyphenated form and the 32-digit form; it returns the
// lower-case hyphenated form.
func parseUUID(s string) (string, error) {
	var hex string
	switch len(s) {
	case 36:
		for _, i := range []int{8, 13, 18, 23} {
			if s[i] != '-' {
				return "", fmt.Errorf("%q is not a UUID", s)
			}
		}
		hex = s[0:8] + s[9:13] + s[14:18] + s[19:23] + s[24:]
	case 32:
		hex = s
	default:
		return "", fmt.Errorf("%q is not a UUID", s)
	}
	for i := 0; i < len(hex); i++ {
		if !isHex(hex[i]) {
			return "", fmt.Errorf("%q is not a UUID", s)
		}
	}
	h := strings.ToLower(hex)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:], nil
}

// parseTag checks a MySQL 8.4 GTID tag: a letter or '_' then up to 31 letters, digits or
// '_'. Tags are case-insensitive; the lower-case form is returned.
func parseTag(s string) (string, error) {
	if len(s) > 32 {
		return "", fmt.Errorf("tag %q is longer than 32 characters", s)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c == '_' || (c|0x20 >= 'a' && c|0x20 <= 'z') || (i > 0 && c >= '0' && c <= '9')
		if !ok {
			return "", fmt.Errorf("%q is not a valid tag", s)
		}
	}
	return strings.ToLower(s), nil
}

func parseInterval(s string) (Interval, error) {
	lo, hi, isRange := strings.Cut(s, "-")
	start, err := parseUint(strings.TrimSpace(lo), 64)
	if err != nil {
		return Interval{}, fmt.Errorf("interval %q: %w", s, err)
	}
	end := start
	if isRange {
		if end, err = parseUint(strings.TrimSpace(hi), 64); err != nil {
			return Interval{}, fmt.Errorf("interval %q: %w", s, err)
		}
	}
	switch {
	case start == 0:
		return Interval{}, fmt.Errorf("interval %q: transaction numbers start at 1", s)
	case end < start:
		return Interval{}, fmt.Errorf("interval %q: end is before start", s)
	case end > maxGNO:
		return Interval{}, fmt.Errorf("interval %q: above the largest transaction number %d", s, uint64(maxGNO))
	}
	return Interval{Start: start, End: end}, nil
}

// normalize sorts intervals and merges overlapping and adjacent ones. It does not modify in.
func normalize(in []Interval) []Interval {
	if len(in) == 0 {
		return nil
	}
	ivs := append([]Interval(nil), in...)
	sort.Slice(ivs, func(i, j int) bool { return ivs[i].Start < ivs[j].Start })
	out := ivs[:1]
	for _, iv := range ivs[1:] {
		last := &out[len(out)-1]
		if iv.Start <= last.End+1 {
			if iv.End > last.End {
				last.End = iv.End
			}
			continue
		}
		out = append(out, iv)
	}
	return out
}

// subtractIntervals returns a minus b; both sorted and merged.
func subtractIntervals(a, b []Interval) []Interval {
	var out []Interval
	j := 0
	for _, iv := range a {
		start := iv.Start
		for j < len(b) && b[j].End < start {
			j++
		}
		k := j
		for k < len(b) && b[k].Start <= iv.End {
			if b[k].Start > start {
				out = append(out, Interval{Start: start, End: b[k].Start - 1})
			}
			if b[k].End >= iv.End {
				start = iv.End + 1
				break
			}
			start = b[k].End + 1
			k++
		}
		if start <= iv.End {
			out = append(out, Interval{Start: start, End: iv.End})
		}
	}
	return out
}

// containsIntervals reports whether a covers b; both sorted and merged.
func containsIntervals(a, b []Interval) bool {
	i := 0
	for _, iv := range b {
		for i < len(a) && a[i].End < iv.Start {
			i++
		}
		// a is merged, so one interval must cover iv entirely.
		if i == len(a) || a[i].Start > iv.Start || a[i].End < iv.End {
			return false
		}
	}
	return true
}

func mysqlContains(a, b map[Source][]Interval) bool {
	for k, ivs := range b {
		if !containsIntervals(a[k], ivs) {
			return false
		}
	}
	return true
}

func mysqlSubtract(a, b map[Source][]Interval) map[Source][]Interval {
	out := map[Source][]Interval{}
	for k, ivs := range a {
		if d := subtractIntervals(ivs, b[k]); len(d) > 0 {
			out[k] = d
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func mysqlUnion(a, b map[Source][]Interval) map[Source][]Interval {
	out := make(map[Source][]Interval, len(a)+len(b))
	for k, ivs := range a {
		out[k] = ivs
	}
	for k, ivs := range b {
		out[k] = normalize(append(append([]Interval(nil), out[k]...), ivs...))
	}
	return out
}

func mysqlSources(m map[Source][]Interval) []Source {
	keys := make([]Source, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].UUID != keys[j].UUID {
			return keys[i].UUID < keys[j].UUID
		}
		return keys[i].Tag < keys[j].Tag // untagged ("") first
	})
	return keys
}

func mysqlString(m map[Source][]Interval) string {
	var b strings.Builder
	prev := ""
	for _, k := range mysqlSources(m) {
		if k.UUID != prev {
			if prev != "" {
				b.WriteByte(',')
			}
			b.WriteString(k.UUID)
			prev = k.UUID
		}
		if k.Tag != "" {
			b.WriteString(":" + k.Tag)
		}
		for _, iv := range m[k] {
			if iv.Start == iv.End {
				fmt.Fprintf(&b, ":%d", iv.Start)
			} else {
				fmt.Fprintf(&b, ":%d-%d", iv.Start, iv.End)
			}
		}
	}
	return b.String()
}

// Intervals returns the intervals of one MySQL source (nil when absent), sorted and merged.
func (s Set) Intervals(src Source) []Interval {
	return append([]Interval(nil), s.mysql[src]...)
}

// Sources returns the MySQL sources of a set in canonical order; nil for MariaDB sets.
func (s Set) Sources() []Source {
	if len(s.mysql) == 0 {
		return nil
	}
	return mysqlSources(s.mysql)
}
