package engine

import (
	"strings"
	"testing"

	"github.com/kura-db/kura/internal/gtid"
)

func TestParseBackupInfo(t *testing.T) {
	cases := map[string]string{
		"mysql-bin.000003\t1234\t0-1000-42\n":          "0-1000-42",
		"mysql-bin.000003\t1234\t0-1000-42,1-1001-7\n": "0-1000-42,1-1001-7",
		"mysql-bin.000001\t329\t\n":                    "",
		"mysql-bin.000001\t329\n":                      "",
		"mysql-bin.000003 1234 0-1000-42,1-1001-7":     "0-1000-42,1-1001-7",
	}
	for in, want := range cases {
		got, err := ParseBackupInfo(in)
		if err != nil || got.String() != want {
			t.Errorf("ParseBackupInfo(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "garbage", "mysql-bin.000001\t4\tnot-a-gtid"} {
		if _, err := ParseBackupInfo(bad); err == nil {
			t.Errorf("ParseBackupInfo(%q) accepted", bad)
		}
	}
}

func TestStateAtCopyPoint(t *testing.T) {
	m := func(s string) gtid.Set { return gtid.MustParse(gtid.MariaDB, s) }
	cases := []struct {
		name               string
		before, after, pos string
		want, err          string
	}{
		{name: "idle donor: the state is kept whole, older streams included",
			before: "0-1005-9,0-1000-40", after: "0-1005-9,0-1000-40", pos: "0-1000-40", want: "0-1000-40,0-1005-9"},
		{name: "writes during the copy: the writer's stream is cut back to the position",
			before: "0-1005-9,0-1000-40", after: "0-1005-9,0-1000-55", pos: "0-1000-47", want: "0-1000-47,0-1005-9"},
		{name: "two domains, one moving",
			before: "0-1000-40,1-1002-3", after: "0-1000-50,1-1002-3", pos: "0-1000-45,1-1002-3", want: "0-1000-45,1-1002-3"},
		{name: "empty donor", before: "", after: "", pos: "", want: ""},
		{name: "a domain born after the copy point is left out",
			before: "0-1000-40", after: "0-1000-41,2-1000-1", pos: "0-1000-41", want: "0-1000-41"},
		{name: "a change of primary during the copy cannot be placed",
			before: "0-1000-40", after: "0-1000-42,0-1001-50", pos: "0-1000-42", err: "both wrote into domain 0"},
		{name: "a position that lost a domain the donor had is refused",
			before: "0-1000-40,1-1002-3", after: "0-1000-40,1-1002-3", pos: "0-1000-40", err: "missing from the copy's position"},
		{name: "a position behind the state read before the copy is refused",
			before: "0-1000-40", after: "0-1000-40", pos: "0-1000-30", err: "lacks"},
	}
	for _, c := range cases {
		got, err := StateAtCopyPoint(m(c.before), m(c.after), m(c.pos))
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: got %q, %v; want error %q", c.name, got, err, c.err)
			}
			continue
		}
		if err != nil || got.String() != c.want {
			t.Errorf("%s: got %q, %v; want %q", c.name, got, err, c.want)
		}
	}
}
