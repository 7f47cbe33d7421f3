package restore

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/backup"
	"github.com/kura-db/kura/backup/archive"
	"github.com/kura-db/kura/internal/gtid"
)

var t0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

func manifest(name string, set string, at time.Duration) backup.Manifest {
	return backup.Manifest{Name: name, Engine: kurav1alpha1.EngineMariaDB, Method: kurav1alpha1.BackupMethodPhysical,
		Consistent: backup.Point{GTIDSet: set, Time: t0.Add(at)}}
}

// piece holds domain 0's transactions from..to of server 1, committed one per second from
// t0+from seconds.
func piece(seq uint64, from, to uint64) archive.Piece {
	before := ""
	if from > 1 {
		before = fmt.Sprintf("0-1-%d", from-1)
	}
	return archive.Piece{Seq: seq, Before: before, After: fmt.Sprintf("0-1-%d", to),
		FirstGTID: fmt.Sprintf("0-1-%d", from), LastGTID: fmt.Sprintf("0-1-%d", to), First: fmt.Sprintf("0-1-%d", from),
		Transactions: int(to - from + 1), FirstEvent: t0.Add(time.Duration(from) * time.Second), LastEvent: t0.Add(time.Duration(to) * time.Second),
		Size: 100}
}

func at(s int) *time.Time { t := t0.Add(time.Duration(s) * time.Second); return &t }

func seqs(ps []archive.Piece) []uint64 {
	var out []uint64
	for _, p := range ps {
		out = append(out, p.Seq)
	}
	return out
}

func TestBuildChain(t *testing.T) {
	archiveOf := []archive.Piece{piece(1, 1, 10), piece(2, 11, 20), piece(3, 21, 30), piece(4, 31, 40)}
	base := manifest("b", "0-1-15", 15*time.Second)
	for _, tc := range []struct {
		name   string
		pieces []archive.Piece
		target Target
		want   []uint64
		err    string // "" when the chain is built
	}{
		{name: "the backup's point reads nothing", pieces: archiveOf, want: nil},
		{name: "a GTID inside the base's piece", pieces: archiveOf, target: Target{GTID: "0-1-18"}, want: []uint64{2}},
		{name: "a GTID two pieces on", pieces: archiveOf, target: Target{GTID: "0-1-25"}, want: []uint64{2, 3}},
		{name: "the last archived GTID", pieces: archiveOf, target: Target{GTID: "0-1-40"}, want: []uint64{2, 3, 4}},
		{name: "the base's own GTID", pieces: archiveOf, target: Target{GTID: "0-1-15"}, want: nil},
		{name: "a time inside a piece", pieces: archiveOf, target: Target{Time: at(23)}, want: []uint64{2, 3}},
		{name: "a time on a piece's first commit", pieces: archiveOf, target: Target{Time: at(31)}, want: []uint64{2, 3, 4}},
		{name: "the newest archived time", pieces: archiveOf, target: Target{Time: at(40)}, want: []uint64{2, 3, 4}},
		{name: "the backup's own time", pieces: archiveOf, target: Target{Time: at(15)}, want: []uint64{2}},
		{name: "unsorted metadata is put in order", pieces: []archive.Piece{archiveOf[3], archiveOf[1], archiveOf[0], archiveOf[2]}, target: Target{GTID: "0-1-40"}, want: []uint64{2, 3, 4}},
		{name: "a time before the backup", pieces: archiveOf, target: Target{Time: at(14)}, err: "before the backup's point"},
		{name: "a GTID before the backup", pieces: archiveOf, target: Target{GTID: "0-1-14"}, err: "before the backup's point"},
		{name: "a time after the archive", pieces: archiveOf, target: Target{Time: at(41)}, err: "after the newest archived transaction"},
		{name: "a GTID after the archive", pieces: archiveOf, target: Target{GTID: "0-1-41"}, err: "after the newest archived transaction"},
		{name: "nothing archived after the backup", pieces: archiveOf[:1], target: Target{GTID: "0-1-16"}, err: "after the newest archived transaction"},
		{name: "a missing piece", pieces: []archive.Piece{archiveOf[0], archiveOf[1], archiveOf[3]}, target: Target{GTID: "0-1-35"}, err: "gap before piece 4"},
		{name: "a missing piece after the target is no matter", pieces: []archive.Piece{archiveOf[0], archiveOf[1], archiveOf[3]}, target: Target{GTID: "0-1-19"}, want: []uint64{2}},
		{name: "an archive that starts after the backup", pieces: archiveOf[2:], target: Target{GTID: "0-1-25"}, err: "gap after the backup's point"},
		{name: "a domain the GTID does not name", pieces: []archive.Piece{archiveOf[0], archiveOf[1], {Seq: 3, Before: "0-1-20", After: "0-1-30,1-2-5", FirstGTID: "0-1-21", LastGTID: "1-2-5", First: "0-1-21,1-2-1",
			Transactions: 15, FirstEvent: t0.Add(21 * time.Second), LastEvent: t0.Add(30 * time.Second)}}, target: Target{GTID: "0-1-25"}, err: "domain 1"},
		{name: "both a time and a GTID", pieces: archiveOf, target: Target{Time: at(20), GTID: "0-1-20"}, err: "not both"},
		{name: "a malformed GTID", pieces: archiveOf, target: Target{GTID: "0-1"}, err: "target GTID"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := BuildChain(base, tc.pieces, tc.target)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("BuildChain = %v, %v; want an error saying %q", seqs(got), err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(seqs(got)) != fmt.Sprint(tc.want) {
				t.Fatalf("chain %v, want %v", seqs(got), tc.want)
			}
		})
	}
}

func TestUnreachableTargetsSayTheRange(t *testing.T) {
	_, err := BuildChain(manifest("b", "0-1-15", 15*time.Second), []archive.Piece{piece(1, 1, 10), piece(2, 11, 20)}, Target{Time: at(90)})
	if !errors.Is(err, ErrUnrecoverable) {
		t.Fatalf("%v is not ErrUnrecoverable", err)
	}
	for _, w := range []string{"2026-12-01T12:00:15Z (GTID 0-1-15)", "2026-12-01T12:00:20Z (GTID 0-1-20)"} {
		if !strings.Contains(err.Error(), w) {
			t.Fatalf("%q does not name %q", err, w)
		}
	}
}

func TestChooseBase(t *testing.T) {
	partial := manifest("partial", "0-1-25", 25*time.Second)
	partial.Databases = []string{"shop"}
	mysql := manifest("mysql", "0-1-26", 26*time.Second)
	mysql.Engine = kurav1alpha1.EngineMySQL
	all := []backup.Manifest{manifest("mon", "0-1-10", 10*time.Second), manifest("tue", "0-1-20", 20*time.Second), partial, mysql, manifest("wed", "0-1-30", 30*time.Second)}
	for _, tc := range []struct {
		target Target
		want   string
	}{
		{Target{}, "wed"},
		{Target{Time: at(29)}, "tue"},
		{Target{Time: at(30)}, "wed"},
		{Target{Time: at(10)}, "mon"},
		{Target{GTID: "0-1-19"}, "mon"},
		{Target{GTID: "0-1-20"}, "tue"},
		{Target{GTID: "0-1-99"}, "wed"},
		{Target{Time: at(9)}, ""},
		{Target{GTID: "0-1-9"}, ""},
	} {
		got, err := ChooseBase(all, kurav1alpha1.EngineMariaDB, tc.target)
		if tc.want == "" {
			if err == nil || !strings.Contains(err.Error(), "oldest backup's point is 2026-12-01T12:00:10Z") || !strings.Contains(err.Error(), "partial: it holds only the databases shop") {
				t.Errorf("%s: %s, %v; want a refusal naming the oldest point and why partial was refused", tc.target, got.Name, err)
			}
			continue
		}
		if err != nil || got.Name != tc.want {
			t.Errorf("%s: %s, %v; want %s", tc.target, got.Name, err, tc.want)
		}
	}
}

func tx(domain, server uint32, seq uint64, s int) archive.Transaction {
	return archive.Transaction{GTID: gtid.MariaDBGTID{Domain: domain, Server: server, Seq: seq}, Time: *at(s)}
}

func TestCutTakesWhatFollowsTheBaseUpToTheTarget(t *testing.T) {
	txns := []archive.Transaction{tx(0, 1, 14, 14), tx(0, 1, 15, 15), tx(0, 1, 16, 16), tx(0, 2, 17, 16), tx(0, 2, 18, 17), tx(0, 2, 19, 18)}
	for _, tc := range []struct {
		target  Target
		applied string
		planned string
	}{
		{Target{GTID: "0-2-18"}, "[0-1-16 0-2-17 0-2-18]", "0-1-16,0-2-18"},
		{Target{Time: at(16)}, "[0-1-16 0-2-17]", "0-1-16,0-2-17"},
		{Target{Time: at(99)}, "[0-1-16 0-2-17 0-2-18 0-2-19]", "0-1-16,0-2-19"},
	} {
		c, err := newCut("0-1-15", tc.target)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.take(txns); err != nil {
			t.Fatal(err)
		}
		planned, err := c.planned("0-1-15")
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(c.applied) != tc.applied || !planned.Equal(gtid.MustParse(gtid.MariaDB, tc.planned)) {
			t.Errorf("%s: applied %v planned %s; want %s and %s", tc.target, c.applied, planned, tc.applied, tc.planned)
		}
	}
	c, _ := newCut("0-1-15", Target{GTID: "0-1-30"})
	if _, err := c.take([]archive.Transaction{tx(0, 1, 16, 16), tx(0, 1, 18, 17)}); !errors.Is(err, ErrUnrecoverable) || !strings.Contains(err.Error(), "jumps from 0-16 to 0-1-18") {
		t.Errorf("a hole inside a piece: %v", err)
	}
}

func TestResultFitsATerminationMessage(t *testing.T) {
	r := Result{Plan: Plan{Backup: "b", Target: "GTID 0-1-5"}, Error: strings.Repeat("x", 5000)}
	for i := 0; i < 1000; i++ {
		r.Plan.Pieces = append(r.Plan.Pieces, uint64(i+1))
	}
	b := r.Encode()
	got, err := DecodeResult(b)
	if err != nil || len(b) > maxResult || fmt.Sprint(got.Plan.Pieces) != "[1 1000]" || !strings.HasPrefix(got.Error, "xxx") {
		t.Fatalf("%d bytes, %v: %+v", len(b), err, got.Plan)
	}
}

// A verification with many differing tables still fits: the first eight are named, and how
// many more.
func TestVerificationResultFitsATerminationMessage(t *testing.T) {
	v := &Verification{Tables: 500, Rows: 9, Compared: 500}
	for i := 0; i < 500; i++ {
		v.Mismatches = append(v.Mismatches, fmt.Sprintf("shop.table_%03d has %d rows, the manifest %d", i, i, i+1))
	}
	r := Result{Plan: Plan{Backup: "b"}, Verification: v, Error: "backup b restored, but 500 of 500 tables differ"}
	b := r.Encode()
	got, err := DecodeResult(b)
	if err != nil || len(b) > maxResult || got.Verification == nil || len(got.Verification.Mismatches) != 9 ||
		got.Verification.Mismatches[8] != "and 492 more" || got.Verification.Tables != 500 || len(v.Mismatches) != 500 {
		t.Fatalf("%d bytes, %v: %+v", len(b), err, got.Verification)
	}
}
