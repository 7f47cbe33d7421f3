package agent

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/internal/engine"
	"github.com/kura-db/kura/internal/seed"
)

// The wire adds gzip (or nothing) around seed's copy stream (framing is tested in internal/seed): a
// round trip, and a cut anywhere is a truncation.
func TestWireRoundTripAndTruncation(t *testing.T) {
	for _, enc := range []string{EncodingGzip, EncodingIdentity} {
		data := make([]byte, 2*seed.MaxFrame+777)
		_, _ = rand.Read(data[:len(data)/2])
		var buf bytes.Buffer
		ww, err := newWireWriter(&buf, enc)
		if err != nil {
			t.Fatal(enc, err)
		}
		sw, err := seed.NewWriter(ww, CloneHeader{Engine: "mariadb", Donor: "shop-0"})
		if err != nil {
			t.Fatal(enc, err)
		}
		if _, err := sw.Write(data); err != nil {
			t.Fatal(enc, err)
		}
		if err := sw.Close(CloneTrailer{ExecutedAfter: "0-1000-9"}); err != nil {
			t.Fatal(enc, err)
		}
		if err := ww.Close(); err != nil {
			t.Fatal(enc, err)
		}
		b := buf.Bytes()
		r, err := newWireReader(bytes.NewReader(b), enc)
		if err != nil {
			t.Fatal(enc, err)
		}
		out, err := io.ReadAll(r)
		if err != nil || !bytes.Equal(out, data) || r.Trailer == nil || r.Trailer.ExecutedAfter != "0-1000-9" {
			t.Fatalf("%s round trip: %d bytes, %v, %+v", enc, len(out), err, r.Trailer)
		}
		for _, cut := range []int{0, 5, len(b) / 2, len(b) - 1} {
			r, err := newWireReader(bytes.NewReader(b[:cut]), enc)
			if err == nil {
				_, err = io.ReadAll(r)
			}
			if !errors.Is(err, ErrTruncated) {
				t.Errorf("%s: cut at %d of %d: %v", enc, cut, len(b), err)
			}
		}
	}
}

func TestAgentAuthentication(t *testing.T) {
	srv := httptest.NewServer((&Server{Instance: pingFails{}, Token: "s3cret"}).Handler())
	defer srv.Close()
	cases := []struct {
		method, path, auth string
		want               int
	}{
		{"GET", "/v1/state", "", http.StatusUnauthorized},
		{"GET", "/v1/state", "Bearer wrong", http.StatusUnauthorized},
		{"GET", "/v1/state", "Basic s3cret", http.StatusUnauthorized},
		{"GET", "/v1/clone", "Bearer s3cre", http.StatusUnauthorized},
		{"POST", "/v1/reclone", "Bearer s3cret!", http.StatusUnauthorized},
		{"GET", "/healthz", "", http.StatusOK},
	}
	for _, c := range cases {
		req, _ := http.NewRequest(c.method, srv.URL+c.path, nil)
		if c.auth != "" {
			req.Header.Set("Authorization", c.auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("%s %s with %q: %d, want %d", c.method, c.path, c.auth, resp.StatusCode, c.want)
		}
	}
	// An agent without a configured token refuses everyone.
	open := httptest.NewServer((&Server{Instance: pingFails{}}).Handler())
	defer open.Close()
	if _, err := (&Client{BaseURL: open.URL, Token: ""}).State(context.Background()); err == nil {
		t.Error("an agent without a token must refuse /v1/state")
	}
}

// fixedStatus reports a fixed status (the agent's view of its server).
type fixedStatus struct {
	engine.Instance
	st engine.Status
}

func (f fixedStatus) Status(context.Context) engine.Status { return f.st }

func TestRecloneRefusesAWritableInstance(t *testing.T) {
	dir := t.TempDir()
	writable := fixedStatus{st: engine.Status{Reachable: true, ReadOnly: false}}
	srv := httptest.NewServer((&Server{Instance: writable, Token: "t", DataDir: dir, Log: io.Discard}).Handler())
	defer srv.Close()
	err := (&Client{BaseURL: srv.URL, Token: "t"}).RequestReclone(context.Background(), "shop-0", "errant")
	var se *StatusError
	if !errors.As(err, &se) || se.Code != http.StatusConflict {
		t.Fatalf("re-clone of a writable instance: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, RecloneMarker)); !os.IsNotExist(err) {
		t.Fatalf("marker written for a writable instance: %v", err)
	}
	readOnly := fixedStatus{st: engine.Status{Reachable: true, ReadOnly: true}}
	srv2 := httptest.NewServer((&Server{Instance: readOnly, Token: "t", DataDir: dir, Log: io.Discard}).Handler())
	defer srv2.Close()
	if err := (&Client{BaseURL: srv2.URL, Token: "t"}).RequestReclone(context.Background(), "shop-0", "errant"); err != nil {
		t.Fatal(err)
	}
	var req RecloneRequest
	if ok, err := readMarker(dir, RecloneMarker, &req); !ok || err != nil || req.Donor != "shop-0" || req.Reason != "errant" {
		t.Fatalf("marker: %+v %v %v", req, ok, err)
	}
}

func TestChooseDonor(t *testing.T) {
	p := func(name string, ro bool, executed string) PeerState {
		return PeerState{Peer: Peer{Name: name}, State: State{Reachable: true, Initialized: true, ReadOnly: ro, Executed: executed}}
	}
	down := PeerState{Peer: Peer{Name: "shop-4"}, Err: errors.New("connection refused")}
	empty := p("shop-5", true, "")
	cases := []struct {
		name   string
		states []PeerState
		prefer string
		want   string
	}{
		{"no peer holds data", []PeerState{down, empty}, "", ""},
		{"only the primary holds data", []PeerState{p("shop-0", false, "0-1000-10"), empty, down}, "", "shop-0"},
		{"a replica is preferred to the primary", []PeerState{p("shop-0", false, "0-1000-10"), p("shop-1", true, "0-1000-9")}, "", "shop-1"},
		{"the most complete replica wins", []PeerState{p("shop-0", false, "0-1000-10"), p("shop-1", true, "0-1000-8"), p("shop-2", true, "0-1000-10")}, "", "shop-2"},
		{"ties go to the lowest ordinal", []PeerState{p("shop-0", false, "0-1000-10"), p("shop-1", true, "0-1000-10"), p("shop-2", true, "0-1000-10")}, "", "shop-1"},
		{"an errant replica is never chosen", []PeerState{p("shop-0", false, "0-1000-10"), p("shop-1", true, "0-1000-10,0-1001-1"), p("shop-2", true, "0-1000-5")}, "", "shop-2"},
		{"the requested donor first", []PeerState{p("shop-0", false, "0-1000-10"), p("shop-1", true, "0-1000-10")}, "shop-0", "shop-0"},
		{"a requested donor without data is passed over", []PeerState{p("shop-0", false, "0-1000-10"), empty}, "shop-5", "shop-0"},
		{"an uninitialised peer is not a donor", []PeerState{{Peer: Peer{Name: "shop-1"}, State: State{Reachable: true, ReadOnly: true, Executed: "0-1000-3"}}}, "", ""},
	}
	for _, c := range cases {
		got, ok := ChooseDonor(kurav1alpha1.EngineMariaDB, c.states, c.prefer)
		if (c.want == "") == ok || (ok && got.Peer.Name != c.want) {
			t.Errorf("%s: got %q (%v), want %q", c.name, got.Peer.Name, ok, c.want)
		}
	}
}

func TestMoveAsideKeepsOnlyTheNewest(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"ibdata1", engine.InitMarker, "lost+found/x", "app/t.ibd", RecloneMarker} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, f)), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), []byte(f), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, AsideDir, "20200101T000000Z"), 0o750); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2030, 5, 6, 7, 8, 9, 0, time.UTC)
	if err := moveAside(dir, now, io.Discard); err != nil {
		t.Fatal(err)
	}
	aside := filepath.Join(dir, AsideDir, "20300506T070809Z")
	for _, f := range []string{"ibdata1", engine.InitMarker, "app/t.ibd"} {
		if _, err := os.Stat(filepath.Join(aside, f)); err != nil {
			t.Errorf("%s not kept aside: %v", f, err)
		}
	}
	for _, f := range []string{"lost+found/x", RecloneMarker} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("%s must stay in place: %v", f, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, AsideDir, "20200101T000000Z")); !os.IsNotExist(err) {
		t.Errorf("the older aside copy must go: %v", err)
	}
	// Nothing left to move: the aside copy is not touched.
	if err := moveAside(dir, now.Add(time.Hour), io.Discard); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(aside, "ibdata1")); err != nil {
		t.Errorf("an empty move removed the aside copy: %v", err)
	}
}

func TestEmptyClusterNeedsAWritableEmptyPrimary(t *testing.T) {
	primary := PeerState{State: State{Reachable: true, Initialized: true, ReadOnly: false}}
	replica := PeerState{State: State{Reachable: true, Initialized: true, ReadOnly: true}}
	withData := PeerState{State: State{Reachable: true, Initialized: true, ReadOnly: false, Executed: "0-1000-5"}}
	cases := []struct {
		states []PeerState
		want   bool
	}{
		{[]PeerState{primary, replica}, true},
		{[]PeerState{replica, replica}, false}, // no primary answered: its data is unknown
		{[]PeerState{withData, replica}, false},
		{[]PeerState{{Err: errors.New("down")}}, false},
	}
	for i, c := range cases {
		if got := emptyCluster(c.states); got != c.want {
			t.Errorf("case %d: %v, want %v", i, got, c.want)
		}
	}
}
