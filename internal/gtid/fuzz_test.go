package gtid

import "testing"

// FuzzRoundTrip: whatever parses prints canonically, and the canonical text parses back to an
// equal set that prints the same.
func FuzzRoundTrip(f *testing.F) {
	for _, s := range []string{"", "0-1001-42,1-1002-7", " 0-1-1 ,\n0-1-9", u1 + ":1-5:7", u1 + ":1-3,\n" + u2 + ":4:tag:1-2"} {
		f.Add(true, s)
		f.Add(false, s)
	}
	f.Fuzz(func(t *testing.T, mysql bool, s string) {
		fl := MariaDB
		if mysql {
			fl = MySQL
		}
		set, err := Parse(fl, s)
		if err != nil {
			return
		}
		text := set.String()
		again, err := Parse(fl, text)
		if err != nil {
			t.Fatalf("canonical text %q of %q does not parse: %v", text, s, err)
		}
		if !again.Equal(set) || again.String() != text {
			t.Fatalf("round trip of %q: %q became %q", s, text, again)
		}
	})
}

// FuzzContainsSubtract: a contains b exactly when b minus a is empty; a minus b shares nothing
// with b and together with b covers a; union contains both.
func FuzzContainsSubtract(f *testing.F) {
	f.Add(false, "0-1001-42,0-1002-43", "0-1001-42")
	f.Add(false, "0-1001-40", "0-1001-42,1-5-5")
	f.Add(true, u1+":1-10", u1+":3-5")
	f.Add(true, u1+":1-3:5-9", u1+":2-6,"+u2+":1")
	f.Add(true, u1+":1-5:web:1-5", u1+":web:2")
	f.Fuzz(func(t *testing.T, mysql bool, as, bs string) {
		fl := MariaDB
		if mysql {
			fl = MySQL
		}
		a, errA := Parse(fl, as)
		b, errB := Parse(fl, bs)
		if errA != nil || errB != nil {
			return
		}
		if a.Contains(b) != b.Subtract(a).IsEmpty() {
			t.Fatalf("%q.Contains(%q) = %v but %q - %q = %q", a, b, a.Contains(b), b, a, b.Subtract(a))
		}
		d := a.Subtract(b)
		if !a.Contains(d) {
			t.Fatalf("%q - %q = %q is not within a", a, b, d)
		}
		if !d.Union(b).Contains(a) {
			t.Fatalf("(%q - %q) + b does not cover a", a, b)
		}
		if fl == MySQL && !d.Subtract(d.Subtract(b)).IsEmpty() {
			t.Fatalf("%q - %q = %q shares transactions with b", a, b, d)
		}
		u := a.Union(b)
		if !u.Contains(a) || !u.Contains(b) || !u.Equal(b.Union(a)) {
			t.Fatalf("union of %q and %q = %q", a, b, u)
		}
		if a.Contains(b) && b.Contains(a) && !a.Equal(b) {
			t.Fatalf("%q and %q contain each other but differ", a, b)
		}
	})
}

// setFromBytes builds a MySQL set over two UUIDs and one tag with small transaction numbers,
// two bytes per interval, so the fuzzer explores interval arithmetic instead of UUID syntax.
func setFromBytes(data []byte) (Set, map[Source]map[uint64]bool) {
	srcs := []Source{{UUID: u1}, {UUID: u2}, {UUID: u1, Tag: "t"}}
	members := map[Source]map[uint64]bool{}
	set := Empty(MySQL)
	for i := 0; i+1 < len(data); i += 2 {
		src := srcs[int(data[i]>>6)%len(srcs)]
		start := uint64(data[i]&0x3f) + 1
		end := start + uint64(data[i+1]&0x07)
		text := src.UUID
		if src.Tag != "" {
			text += ":" + src.Tag
		}
		set = set.Union(MustParse(MySQL, text+":"+itoa(start)+"-"+itoa(end)))
		if members[src] == nil {
			members[src] = map[uint64]bool{}
		}
		for n := start; n <= end; n++ {
			members[src][n] = true
		}
	}
	return set, members
}

func itoa(n uint64) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

// FuzzIntervalAlgebra checks MySQL Contains, Subtract and Union against a brute-force model
// of the same sets as plain sets of transaction numbers.
func FuzzIntervalAlgebra(f *testing.F) {
	f.Add([]byte{1, 3, 9, 2}, []byte{2, 1})
	f.Add([]byte{0x41, 7, 0x81, 0}, []byte{0x41, 2, 3, 3})
	f.Fuzz(func(t *testing.T, ab, bb []byte) {
		a, am := setFromBytes(ab)
		b, bm := setFromBytes(bb)
		wantContains := true
		for src, ns := range bm {
			for n := range ns {
				if !am[src][n] {
					wantContains = false
				}
			}
		}
		if a.Contains(b) != wantContains {
			t.Fatalf("%q.Contains(%q) = %v, want %v", a, b, a.Contains(b), wantContains)
		}
		d := a.Subtract(b)
		for src, ns := range am {
			for n := range ns {
				in := d.Contains(MustParse(MySQL, srcText(src)+":"+itoa(n)))
				if in == bm[src][n] {
					t.Fatalf("%q - %q = %q: transaction %s:%d wrongly placed", a, b, d, srcText(src), n)
				}
			}
		}
		u := a.Union(b)
		count := 0
		for _, src := range u.Sources() {
			for _, iv := range u.Intervals(src) {
				count += int(iv.End - iv.Start + 1)
			}
		}
		want := 0
		for src, ns := range am {
			want += len(ns)
			for n := range bm[src] {
				if !ns[n] {
					want++
				}
			}
		}
		for src, ns := range bm {
			if am[src] == nil {
				want += len(ns)
			}
		}
		if count != want {
			t.Fatalf("union of %q and %q = %q holds %d transactions, want %d", a, b, u, count, want)
		}
	})
}

func srcText(s Source) string {
	if s.Tag == "" {
		return s.UUID
	}
	return s.UUID + ":" + s.Tag
}
