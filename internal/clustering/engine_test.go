package clustering

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/kura-db/kura/internal/engine"
)

// relayStub is an engine.Instance whose ApplyRelayLog and StopReplication return set
// errors; any other method panics (nil embedded interface). The real statements are run by
// the engine tier (TestEngineFailoverKeepsReceivedButUnappliedWrites); this covers the error
// paths a real server does not produce on demand.
type relayStub struct {
	engine.Instance
	applyErr, stopErr error
	stopped           []engine.Thread
}

func (s *relayStub) ApplyRelayLog(context.Context) error { return s.applyErr }
func (s *relayStub) StopReplication(_ context.Context, t engine.Thread) error {
	s.stopped = append(s.stopped, t)
	return s.stopErr
}

func TestStopReceiverErrors(t *testing.T) {
	applyFailed := errors.New("failed to apply the relay log on r1: Error 1372")
	stopFailed := errors.New("failed to stop replication on r1: connection refused")
	for _, tc := range []struct {
		name              string
		applyErr, stopErr error
		stops             int
		want              []string // substrings of the error; nil for success
	}{
		{name: "applied", stops: 0},
		{name: "nothing received", applyErr: engine.ErrNoRelayLog, stops: 1},
		{name: "nothing received, stop fails", applyErr: engine.ErrNoRelayLog, stopErr: stopFailed, stops: 1, want: []string{"connection refused"}},
		{name: "apply fails", applyErr: applyFailed, stops: 1, want: []string{"Error 1372"}},
		{name: "apply and stop fail", applyErr: applyFailed, stopErr: stopFailed, stops: 1, want: []string{"Error 1372", "connection refused"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stub := &relayStub{applyErr: tc.applyErr, stopErr: tc.stopErr}
			err := (&EngineSQL{Instance: stub}).StopReceiver(context.Background())
			if len(stub.stopped) != tc.stops {
				t.Fatalf("StopReplication called %d times, want %d", len(stub.stopped), tc.stops)
			}
			for _, th := range stub.stopped {
				if th != engine.IOThread {
					t.Fatalf("stopped %v, want only the I/O thread", th)
				}
			}
			if tc.want == nil {
				if err != nil {
					t.Fatalf("got %v, want success", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("got success, want an error naming %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Fatalf("error %q does not name %q", err, w)
				}
			}
		})
	}
}
