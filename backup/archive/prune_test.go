package archive

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/kura-db/kura/backup/storage"
)

// storePieces writes metadata and data objects of pieces holding domain 0's transactions in
// runs of ten.
func storePieces(t *testing.T, st storage.Storage, n int) {
	t.Helper()
	ctx := context.Background()
	for i := 1; i <= n; i++ {
		from, to := (i-1)*10+1, i*10
		before := ""
		if from > 1 {
			before = fmt.Sprintf("0-1-%d", from-1)
		}
		p := Piece{Format: PieceFormat, Seq: uint64(i), Object: fmt.Sprintf("%010d-w.binlog.zst", i), Before: before, After: fmt.Sprintf("0-1-%d", to),
			FirstGTID: fmt.Sprintf("0-1-%d", from), LastGTID: fmt.Sprintf("0-1-%d", to), First: fmt.Sprintf("0-1-%d", from), Transactions: 10}
		b, _ := json.Marshal(p)
		if err := st.Create(ctx, MetaKey(testLayout, p.Seq), b); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Put(ctx, Prefix(testLayout)+p.Object, strings.NewReader("data"), 4); err != nil {
			t.Fatal(err)
		}
	}
}

func TestPruneDeletesOnlyAPrefixBelowTheOldestBackup(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		keep string
		want []uint64 // pieces left
	}{
		{"0-1-5", []uint64{1, 2, 3, 4}},
		{"0-1-10", []uint64{2, 3, 4}},
		{"0-1-25", []uint64{3, 4}},
		{"0-1-40", []uint64{4}}, // the newest piece always stays
		{"0-1-99,1-2-3", []uint64{4}},
		{"1-2-3", []uint64{1, 2, 3, 4}}, // another domain keeps domain 0's history
	} {
		st := &storage.Dir{Root: t.TempDir(), Claim: "test"}
		storePieces(t, st, 4)
		n, err := Prune(ctx, st, testLayout, tc.keep, nil)
		if err != nil {
			t.Fatal(err)
		}
		left, err := ListPieces(ctx, st, testLayout)
		if err != nil {
			t.Fatal(err)
		}
		var seqs []uint64
		for _, p := range left {
			seqs = append(seqs, p.Seq)
		}
		objs, _ := st.List(ctx, Prefix(testLayout))
		if fmt.Sprint(seqs) != fmt.Sprint(tc.want) || n != 4-len(tc.want) || len(objs) != 2*len(tc.want) {
			t.Errorf("keep %s: pieces %v left (%d pruned, %d objects), want %v", tc.keep, seqs, n, len(objs), tc.want)
		}
		if gaps, err := CheckChain(left); err != nil || len(gaps) > 0 {
			t.Errorf("keep %s: the pruned archive has gaps %v (%v)", tc.keep, gaps, err)
		}
	}
	st := &storage.Dir{Root: t.TempDir(), Claim: "test"}
	if _, err := Prune(ctx, st, testLayout, "0-1", nil); err == nil {
		t.Error("a malformed position was accepted")
	}
}
