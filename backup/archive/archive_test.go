package archive

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/kura-db/kura/backup/storage"
)

func piece(seq uint64, before, first, after string) Piece {
	return Piece{Seq: seq, Before: before, First: first, FirstGTID: first, After: after}
}

func TestCheckChain(t *testing.T) {
	cases := []struct {
		name   string
		pieces []Piece
		gaps   []string // reasons, in order
	}{
		{"a fresh archive from the first transaction",
			[]Piece{piece(1, "", "0-1000-1", "0-1000-40"), piece(2, "0-1000-40", "0-1000-41", "0-1000-90")}, nil},
		{"a failover: the new primary continues the domain's sequence",
			[]Piece{piece(1, "0-1000-5", "0-1000-6", "0-1000-40"), piece(2, "0-1000-40", "0-1001-41", "0-1001-50")}, nil},
		{"a second domain starts at 1",
			[]Piece{piece(1, "0-1000-5", "0-1000-6", "0-1000-40"), piece(2, "0-1000-40", "1-1000-1,0-1000-41", "0-1000-41,1-1000-1")}, nil},
		{"purged binlogs: the next piece skips sequence numbers",
			[]Piece{piece(1, "", "0-1000-1", "0-1000-40"), piece(2, "0-1000-40", "0-1000-61", "0-1000-70")},
			[]string{"domain 0 continues at 61, the archive expects 41"}},
		{"a deleted piece",
			[]Piece{piece(1, "", "0-1000-1", "0-1000-40"), piece(3, "0-1000-50", "0-1000-51", "0-1000-60"), piece(4, "0-1000-60", "0-1000-61", "0-1000-70")},
			[]string{"pieces 2 to 2 are missing"}},
		{"a domain first seen in the middle of its history",
			[]Piece{piece(1, "0-1000-5", "0-1000-6", "0-1000-40"), piece(2, "0-1000-40", "1-1000-7", "0-1000-40,1-1000-7")},
			[]string{"domain 1 continues at 7, the archive expects 1"}},
		{"a piece streamed from another position than the archive's end",
			[]Piece{piece(1, "", "0-1000-1", "0-1000-40"), piece(2, "0-1000-40,1-1000-3", "0-1000-41", "0-1000-41,1-1000-3")},
			[]string{`the piece was streamed from "0-1000-40,1-1000-3", the archive ends at "0-1000-40"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			gaps, err := CheckChain(tc.pieces)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, g := range gaps {
				got = append(got, g.Reason)
			}
			if strings.Join(got, "|") != strings.Join(tc.gaps, "|") {
				t.Errorf("gaps %q, want %q", got, tc.gaps)
			}
		})
	}
}

func TestLease(t *testing.T) {
	ctx := context.Background()
	st := &storage.Dir{Root: t.TempDir()}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	a := newLease(st, testLayout, "a", 10*time.Second)
	b := newLease(st, testLayout, "b", 10*time.Second)
	a.now, b.now = clock, clock

	if ok, _, err := a.tryAcquire(ctx); !ok || err != nil {
		t.Fatalf("a free lease was not taken: %v", err)
	}
	if ok, cur, err := b.tryAcquire(ctx); ok || err != nil || cur.Holder != "a" {
		t.Fatalf("b took a held lease (ok %v, holder %q, %v)", ok, cur.Holder, err)
	}
	now = now.Add(8 * time.Second)
	if err := a.renew(ctx); err != nil {
		t.Fatal(err)
	}
	now = now.Add(8 * time.Second) // 16 s after taking, 8 s after renewing: still held
	if ok, _, _ := b.tryAcquire(ctx); ok {
		t.Fatal("b took a renewed lease")
	}
	now = now.Add(3 * time.Second) // expired
	if ok, _, err := b.tryAcquire(ctx); !ok || err != nil {
		t.Fatalf("b did not take an expired lease: %v", err)
	}
	if err := a.renew(ctx); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("a renewed a lease b holds: %v", err)
	}
	if err := a.release(ctx); err != nil {
		t.Fatal(err)
	}
	if ok, cur, _ := a.tryAcquire(ctx); ok || cur.Holder != "b" {
		t.Fatal("a's release gave away b's lease")
	}
	if err := b.release(ctx); err != nil {
		t.Fatal(err)
	}
	if ok, _, err := a.tryAcquire(ctx); !ok || err != nil {
		t.Fatalf("a released lease was not free: %v", err)
	}
}

func TestParseDataRefusesDamage(t *testing.T) {
	if _, err := ParseData([]byte("not a binlog")); err == nil {
		t.Error("no magic number was accepted")
	}
	if _, err := ParseData(append(append([]byte{}, binlogMagic...), make([]byte, 10)...)); err == nil {
		t.Error("a truncated event was accepted")
	}
}

func TestExpiryWarning(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	s := Status{ExpireSeconds: 3600, CaughtUp: now.Add(-10 * time.Minute)}
	if w := s.ExpiryWarning(now); w != "" {
		t.Errorf("10 minutes behind with a 1 hour expiry: %q", w)
	}
	s.CaughtUp = now.Add(-40 * time.Minute)
	if w := s.ExpiryWarning(now); !strings.Contains(w, "lost in 20m0s") {
		t.Errorf("40 minutes behind with a 1 hour expiry: %q", w)
	}
}

// TestPieceNumberIsTheFence: a writer whose piece number another writer already stored
// stops (errFenced) and leaves no data object behind; its own retried create is accepted.
func TestPieceNumberIsTheFence(t *testing.T) {
	ctx := context.Background()
	st := &storage.Dir{Root: t.TempDir()}
	a, err := New(Config{Layout: testLayout, Storage: st, Sources: []string{"127.0.0.1:1"}, User: "u", ServerID: 7, Holder: "late"})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Create(ctx, MetaKey(testLayout, 5), []byte(`{"format":1,"seq":5,"object":"0000000005-other.binlog.zst"}`)); err != nil {
		t.Fatal(err)
	}
	u := newUploader(ctx, a)
	defer u.close()
	err = u.store(upload{p: Piece{Seq: 5}, data: []byte("x")})
	if !errors.Is(err, errFenced) {
		t.Fatalf("storing a taken piece number: %v, want errFenced", err)
	}
	objs, _ := st.List(ctx, Prefix(testLayout))
	if len(objs) != 1 {
		t.Errorf("objects after the refused piece: %v", objs)
	}
	if err := u.store(upload{p: Piece{Seq: 6}, data: []byte("y")}); err != nil {
		t.Fatalf("a free piece number: %v", err)
	}
	p, err := readPiece(ctx, st, MetaKey(testLayout, 6))
	if err != nil || p.Writer != "late" || !strings.HasPrefix(p.Object, "0000000006-") {
		t.Fatalf("piece 6: %+v, %v", p, err)
	}
}
