package gtid

import (
	"strings"
	"testing"
)

const (
	u1 = "3e11fa47-71ca-11e1-9e33-c80aa9429562"
	u2 = "8a94f357-aab4-11df-86ab-c80aa9429562"
)

func TestParseCanonical(t *testing.T) {
	cases := []struct {
		name   string
		flavor Flavor
		in     string
		want   string
	}{
		{"mariadb empty", MariaDB, "", ""},
		{"mariadb blank", MariaDB, " \n\t ", ""},
		{"mariadb one", MariaDB, "0-1001-42", "0-1001-42"},
		{"mariadb sorted by domain then server", MariaDB, "1-1002-7,0-1003-5,0-1001-42", "0-1001-42,0-1003-5,1-1002-7"},
		{"mariadb whitespace and newlines", MariaDB, " 0-1001-42 ,\n1-1002-7\n", "0-1001-42,1-1002-7"},
		{"mariadb duplicate keeps highest", MariaDB, "0-1001-42,0-1001-40,0-1001-43", "0-1001-43"},
		{"mariadb seq zero names nothing", MariaDB, "0-1001-0", ""},
		{"mariadb max values", MariaDB, "4294967295-4294967295-18446744073709551615", "4294967295-4294967295-18446744073709551615"},
		{"mysql empty", MySQL, "", ""},
		{"mysql one", MySQL, u1 + ":1-5", u1 + ":1-5"},
		{"mysql upper case uuid", MySQL, strings.ToUpper(u1) + ":1-5", u1 + ":1-5"},
		{"mysql uuid without hyphens", MySQL, strings.ReplaceAll(u1, "-", "") + ":3", u1 + ":3"},
		{"mysql single and ranges", MySQL, u1 + ":7:1-3:9-10", u1 + ":1-3:7:9-10"},
		{"mysql adjacent merged", MySQL, u1 + ":1-3:4-6:7", u1 + ":1-7"},
		{"mysql overlapping merged", MySQL, u1 + ":1-5:3-8:2", u1 + ":1-8"},
		{"mysql as printed with newlines", MySQL, u2 + ":1-10,\n" + u1 + ":1-5", u1 + ":1-5," + u2 + ":1-10"},
		{"mysql same uuid twice", MySQL, u1 + ":1-3," + u1 + ":5", u1 + ":1-3:5"},
		{"mysql point range", MySQL, u1 + ":4-4", u1 + ":4"},
		{"mysql tagged", MySQL, u1 + ":tag_b:4:Tag_A:1-2:3", u1 + ":tag_a:1-3:tag_b:4"},
		{"mysql untagged then tagged", MySQL, u1 + ":1-5:web:1-3", u1 + ":1-5:web:1-3"},
		{"mysql tag across entries", MySQL, u1 + ":web:1," + u1 + ":web:2", u1 + ":web:1-2"},
		{"mysql spaces inside", MySQL, " " + u1 + " : 1 - 3 : x : 2 ", u1 + ":1-3:x:2"},
		{"mysql largest number", MySQL, u1 + ":9223372036854775806", u1 + ":9223372036854775806"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := Parse(c.flavor, c.in)
			if err != nil {
				t.Fatalf("Parse(%q): %v", c.in, err)
			}
			if got := s.String(); got != c.want {
				t.Fatalf("String() = %q, want %q", got, c.want)
			}
			if s.IsEmpty() != (c.want == "") {
				t.Fatalf("IsEmpty() = %v for %q", s.IsEmpty(), c.want)
			}
			if s.Flavor() != c.flavor {
				t.Fatalf("Flavor() = %q, want %q", s.Flavor(), c.flavor)
			}
			again := MustParse(c.flavor, s.String())
			if !again.Equal(s) {
				t.Fatalf("round trip changed %q into %q", s, again)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct {
		name   string
		flavor Flavor
		in     string
		token  string // the error must name it
	}{
		{"unknown flavor", Flavor("oracle"), "x", "oracle"},
		{"mariadb two parts", MariaDB, "0-1001-42,0-1001", "0-1001"},
		{"mariadb four parts", MariaDB, "0-1-2-3", "0-1-2-3"},
		{"mariadb letters", MariaDB, "0-abc-5", "abc"},
		{"mariadb negative", MariaDB, "0--1-5", "0--1-5"},
		{"mariadb plus sign", MariaDB, "0-+1-5", "+1"},
		{"mariadb domain overflow", MariaDB, "4294967296-1-1", "4294967296"},
		{"mariadb seq overflow", MariaDB, "0-1-18446744073709551616", "18446744073709551616"},
		{"mariadb empty entry", MariaDB, "0-1-1,,0-2-2", "empty entry"},
		{"mariadb trailing comma", MariaDB, "0-1-1,", "empty entry"},
		{"mariadb mysql text", MariaDB, u1 + ":1-5", u1},
		{"mysql bad uuid", MySQL, "3e11fa47-71ca-11e1-9e33:1", "3e11fa47-71ca-11e1-9e33"},
		{"mysql non hex uuid", MySQL, "3e11fa47-71ca-11e1-9e33-c80aa942956z:1", "c80aa942956z"},
		{"mysql no interval", MySQL, u1, "no interval"},
		{"mysql empty element", MySQL, u1 + ":1::3", "empty element"},
		{"mysql zero", MySQL, u1 + ":0-5", "0-5"},
		{"mysql reversed", MySQL, u1 + ":5-1", "5-1"},
		{"mysql too big", MySQL, u1 + ":9223372036854775807", "9223372036854775807"},
		{"mysql junk interval", MySQL, u1 + ":1-2-3", "1-2-3"},
		{"mysql tag without interval", MySQL, u1 + ":1-3:web", "web"},
		{"mysql two tags in a row", MySQL, u1 + ":a:b:1", "\"a\""},
		{"mysql bad tag", MySQL, u1 + ":we-b:1", "we-b"},
		{"mysql long tag", MySQL, u1 + ":" + strings.Repeat("t", 33) + ":1", strings.Repeat("t", 33)},
		{"mysql mariadb text", MySQL, "0-1001-42", "0-1001-42"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := Parse(c.flavor, c.in)
			if err == nil {
				t.Fatalf("Parse(%q) = %q, want an error", c.in, s)
			}
			if !strings.Contains(err.Error(), c.token) {
				t.Fatalf("error %q does not name %q", err, c.token)
			}
		})
	}
}

func TestMustParsePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("MustParse did not panic on bad input")
		}
	}()
	MustParse(MariaDB, "nonsense")
}

func TestSetAlgebra(t *testing.T) {
	cases := []struct {
		name       string
		flavor     Flavor
		a, b       string
		aContainsB bool
		aMinusB    string
		union      string
	}{
		{"mariadb both empty", MariaDB, "", "", true, "", ""},
		{"mariadb contains empty", MariaDB, "0-1001-5", "", true, "0-1001-5", "0-1001-5"},
		{"mariadb empty lacks", MariaDB, "", "0-1001-5", false, "", "0-1001-5"},
		{"mariadb ahead", MariaDB, "0-1001-42", "0-1001-40", true, "0-1001-42", "0-1001-42"},
		{"mariadb behind", MariaDB, "0-1001-40", "0-1001-42", false, "", "0-1001-42"},
		{"mariadb equal", MariaDB, "0-1001-42", "0-1001-42", true, "", "0-1001-42"},
		// A replica with a local write (server 1002) has something the primary lacks: errant.
		{"mariadb errant", MariaDB, "0-1001-42,0-1002-43", "0-1001-42", true, "0-1002-43", "0-1001-42,0-1002-43"},
		{"mariadb diverged same seq", MariaDB, "0-1001-43", "0-1001-42,0-1002-43", false, "0-1001-43", "0-1001-43,0-1002-43"},
		{"mariadb after failover", MariaDB, "0-1001-42,0-1002-50", "0-1001-42", true, "0-1002-50", "0-1001-42,0-1002-50"},
		{"mariadb lagging old stream", MariaDB, "0-1001-40,0-1002-50", "0-1001-42", false, "0-1002-50", "0-1001-42,0-1002-50"},
		{"mariadb other domain", MariaDB, "0-1001-42", "1-1001-1", false, "0-1001-42", "0-1001-42,1-1001-1"},
		{"mysql both empty", MySQL, "", "", true, "", ""},
		{"mysql superset", MySQL, u1 + ":1-10", u1 + ":3-5", true, u1 + ":1-2:6-10", u1 + ":1-10"},
		{"mysql gap", MySQL, u1 + ":1-5:7-10", u1 + ":1-10", false, "", u1 + ":1-10"},
		{"mysql partial overlap", MySQL, u1 + ":1-5", u1 + ":4-8", false, u1 + ":1-3", u1 + ":1-8"},
		{"mysql other uuid", MySQL, u1 + ":1-5", u2 + ":1", false, u1 + ":1-5", u1 + ":1-5," + u2 + ":1"},
		{"mysql many holes", MySQL, u1 + ":1-20", u1 + ":2:4-5:8-9:20", true, u1 + ":1:3:6-7:10-19", u1 + ":1-20"},
		{"mysql b spans two of a", MySQL, u1 + ":1-3:5-9", u1 + ":2-6", false, u1 + ":1:7-9", u1 + ":1-9"},
		{"mysql tag is its own stream", MySQL, u1 + ":1-5", u1 + ":web:1-5", false, u1 + ":1-5", u1 + ":1-5:web:1-5"},
		{"mysql tagged contained", MySQL, u1 + ":1-5:web:1-5", u1 + ":web:2", true, u1 + ":1-5:web:1:3-5", u1 + ":1-5:web:1-5"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a, b := MustParse(c.flavor, c.a), MustParse(c.flavor, c.b)
			if got := a.Contains(b); got != c.aContainsB {
				t.Errorf("%q.Contains(%q) = %v, want %v", c.a, c.b, got, c.aContainsB)
			}
			if got := b.Subtract(a).IsEmpty(); got != c.aContainsB {
				t.Errorf("b.Subtract(a).IsEmpty() = %v, want %v", got, c.aContainsB)
			}
			if got := a.Subtract(b).String(); got != c.aMinusB {
				t.Errorf("%q.Subtract(%q) = %q, want %q", c.a, c.b, got, c.aMinusB)
			}
			u := a.Union(b)
			if got := u.String(); got != c.union {
				t.Errorf("Union = %q, want %q", got, c.union)
			}
			if !u.Contains(a) || !u.Contains(b) {
				t.Errorf("union %q does not contain both operands", u)
			}
			if got := b.Union(a); !got.Equal(u) {
				t.Errorf("union is not commutative: %q vs %q", got, u)
			}
		})
	}
}

func TestImmutable(t *testing.T) {
	a := MustParse(MySQL, u1+":1-5:9")
	b := MustParse(MySQL, u1+":6-8")
	_ = a.Union(b)
	_ = a.Subtract(b)
	_ = b.Subtract(a)
	if a.String() != u1+":1-5:9" || b.String() != u1+":6-8" {
		t.Fatalf("operands changed: %q %q", a, b)
	}
	ivs := a.Intervals(Source{UUID: u1})
	ivs[0].End = 100
	if a.String() != u1+":1-5:9" {
		t.Fatalf("Intervals exposes internal state: %q", a)
	}
	m := MustParse(MariaDB, "0-1-5")
	_ = m.Union(MustParse(MariaDB, "0-1-9"))
	if m.String() != "0-1-5" {
		t.Fatalf("MariaDB operand changed: %q", m)
	}
}

func TestMixedFlavors(t *testing.T) {
	m := MustParse(MariaDB, "0-1-5")
	y := MustParse(MySQL, u1+":1")
	if m.Contains(y) || y.Contains(m) {
		t.Fatal("sets of different flavors must not contain each other")
	}
	if !m.Subtract(y).Equal(m) {
		t.Fatal("Subtract across flavors must return the receiver")
	}
	if !m.Contains(Empty(MySQL)) || !m.Contains(Set{}) {
		t.Fatal("every set contains the empty set")
	}
	if got := (Set{}).Union(y); !got.Equal(y) || got.Flavor() != MySQL {
		t.Fatalf("zero Set union = %q (%s)", got, got.Flavor())
	}
	if !Empty(MariaDB).Equal(Empty(MySQL)) {
		t.Fatal("empty sets are equal")
	}
	if m.Equal(y) {
		t.Fatal("different flavors are not equal")
	}
	defer func() {
		if recover() == nil {
			t.Fatal("Union across flavors did not panic")
		}
	}()
	m.Union(y)
}

func TestPosition(t *testing.T) {
	cases := []struct{ in, want string }{
		{"", ""},
		{"0-1001-42", "0-1001-42"},
		{"0-1001-42,0-1002-50,1-1001-3", "0-1002-50,1-1001-3"},
		{"0-1002-10,0-1001-50", "0-1001-50"},
		{"0-1002-50,0-1001-50", "0-1001-50"},
	}
	for _, c := range cases {
		if got := MustParse(MariaDB, c.in).Position().String(); got != c.want {
			t.Errorf("Position(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	y := MustParse(MySQL, u1+":1-3")
	if !y.Position().Equal(y) {
		t.Error("Position of a MySQL set must be the set")
	}
}

// BinlogState puts each domain's Position last: the server reads the last entry of a domain
// in gtid_binlog_state as its newest transaction.
func TestBinlogState(t *testing.T) {
	cases := []struct{ in, want string }{
		{"", ""},
		{"0-1001-42", "0-1001-42"},
		{"0-1000-528,0-1001-527", "0-1001-527,0-1000-528"},
		{"1-1001-3,0-1002-50,0-1001-42", "0-1001-42,0-1002-50,1-1001-3"},
		{"0-1002-50,0-1001-50", "0-1002-50,0-1001-50"},
	}
	for _, c := range cases {
		set := MustParse(MariaDB, c.in)
		got := set.BinlogState()
		if got != c.want {
			t.Errorf("BinlogState(%q) = %q, want %q", c.in, got, c.want)
		}
		if back := MustParse(MariaDB, got); !back.Equal(set) {
			t.Errorf("BinlogState(%q) = %q parses as %q", c.in, got, back)
		}
		if gs := strings.Split(got, ","); got != "" && gs[len(gs)-1] != set.Position().String() && strings.Count(set.Position().String(), ",") == 0 {
			t.Errorf("BinlogState(%q) = %q does not end with the position %q", c.in, got, set.Position())
		}
	}
	y := MustParse(MySQL, u1+":1-3")
	if y.BinlogState() != y.String() {
		t.Error("BinlogState of a MySQL set must be its usual form")
	}
}

func TestAccessors(t *testing.T) {
	m := MustParse(MariaDB, "1-7-3,0-1001-42")
	gs := m.MariaDBGTIDs()
	if len(gs) != 2 || gs[0].String() != "0-1001-42" || gs[1] != (MariaDBGTID{Domain: 1, Server: 7, Seq: 3}) {
		t.Fatalf("MariaDBGTIDs = %v", gs)
	}
	y := MustParse(MySQL, u2+":1,"+u1+":x:2:4")
	src := y.Sources()
	if len(src) != 2 || src[0] != (Source{UUID: u1, Tag: "x"}) || src[1] != (Source{UUID: u2}) {
		t.Fatalf("Sources = %v", src)
	}
	if got := y.Intervals(src[0]); len(got) != 2 || got[1] != (Interval{4, 4}) {
		t.Fatalf("Intervals = %v", got)
	}
	if m.Sources() != nil || y.MariaDBGTIDs() != nil {
		t.Fatal("accessors of the other flavor must be nil")
	}
}

func TestFromServer(t *testing.T) {
	s := MustParse(MariaDB, "0-1000-7,0-1001-9,1-1000-3")
	for id, want := range map[uint32]string{1000: "0-1000-7,1-1000-3", 1001: "0-1001-9", 1002: ""} {
		if got := s.FromServer(id).String(); got != want {
			t.Errorf("FromServer(%d) = %q, want %q", id, got, want)
		}
	}
	if got := MustParse(MySQL, "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5").FromServer(1000); !got.IsEmpty() {
		t.Errorf("FromServer of a MySQL set = %q, want empty", got)
	}
}

func TestEarliest(t *testing.T) {
	for _, tc := range []struct {
		sets []string
		want string
	}{
		{[]string{"0-1-10"}, "0-1-10"},
		{[]string{"0-1-10", "0-1-7", "0-2-12"}, "0-1-7"},
		{[]string{"0-1-10,1-5-3", "0-1-12,1-5-9"}, "0-1-10,1-5-3"},
		{[]string{"0-1-10,1-5-3", "0-1-12"}, "0-1-10"},
		{[]string{"0-1-10,0-2-4", "0-3-11"}, "0-1-10"},
		{nil, ""},
	} {
		var sets []Set
		for _, s := range tc.sets {
			sets = append(sets, MustParse(MariaDB, s))
		}
		if got := Earliest(sets...); got.String() != tc.want {
			t.Errorf("Earliest(%v) = %q, want %q", tc.sets, got, tc.want)
		}
	}
}
