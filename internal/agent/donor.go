package agent

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
	"github.com/kura-db/kura/internal/engine"
	"github.com/kura-db/kura/internal/gtid"
)

// MaxPeers is how many ordinals `kura init` asks for a donor (0..MaxPeers-1).
const MaxPeers = 9

// Peer is another instance of the cluster, reached through its agent.
type Peer struct {
	Name string
	// Host is the instance's stable DNS name (MySQL clones connect to its SQL port).
	Host   string
	Client *Client
}

// PeersOf returns the other instances' agents at their stable names.
func PeersOf(e Env, port int) []Peer {
	var out []Peer
	for n := int32(0); n < MaxPeers; n++ {
		if n == e.Ordinal {
			continue
		}
		name := fmt.Sprintf("%s-%d", e.Cluster, n)
		host := fmt.Sprintf("%s.%s.%s.svc.cluster.local", name, e.InstancesService, e.Namespace)
		out = append(out, Peer{Name: name, Host: host, Client: e.agentClient(host, port)})
	}
	return out
}

// PeerState is one peer's answer.
type PeerState struct {
	Peer  Peer
	State State
	// Err is set when the peer did not answer usefully.
	Err error
}

// Answered reports whether the peer's agent answered, with a working server or not.
func (p PeerState) Answered() bool {
	var se *StatusError
	return p.Err == nil || (errors.As(p.Err, &se) && se.Code == 503)
}

// AskPeers queries every peer concurrently, each bounded by timeout.
func AskPeers(ctx context.Context, peers []Peer, timeout time.Duration) []PeerState {
	out := make([]PeerState, len(peers))
	var wg sync.WaitGroup
	for i, p := range peers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			st, err := p.Client.State(cctx)
			out[i] = PeerState{Peer: p, State: st, Err: err}
		}()
	}
	wg.Wait()
	return out
}

// hasData: the peer serves an initialised data directory with transactions in it.
func hasData(p PeerState) bool {
	return p.Err == nil && p.State.Reachable && p.State.Initialized && p.State.Executed != ""
}

// ChooseDonor picks the peer to clone from (docs/cloning.md): the preferred peer if it holds
// data; else a read-only replica whose executed set is contained in the writable primary's
// (so never an errant one) and contains the most other replicas' sets, lowest ordinal first;
// else the writable primary. ok is false when no peer holds data.
func ChooseDonor(kind kurav1alpha1.Engine, states []PeerState, prefer string) (PeerState, bool) {
	flavor := engine.FlavorOf(kind)
	type cand struct {
		PeerState
		set gtid.Set
	}
	var replicas, primaries []cand
	for _, p := range states {
		if !hasData(p) {
			continue
		}
		set, err := gtid.Parse(flavor, p.State.Executed)
		if err != nil || set.IsEmpty() {
			continue
		}
		if prefer != "" && p.Peer.Name == prefer {
			return p, true
		}
		if p.State.ReadOnly {
			replicas = append(replicas, cand{p, set})
		} else {
			primaries = append(primaries, cand{p, set})
		}
	}
	if len(primaries) == 1 {
		kept := replicas[:0]
		for _, r := range replicas {
			if primaries[0].set.Contains(r.set) {
				kept = append(kept, r)
			}
		}
		replicas = kept
	}
	best, bestScore := -1, -1
	for i, r := range replicas {
		score := 0
		for _, o := range replicas {
			if r.set.Contains(o.set) {
				score++
			}
		}
		if score > bestScore {
			best, bestScore = i, score
		}
	}
	if best >= 0 {
		return replicas[best].PeerState, true
	}
	if len(primaries) > 0 {
		return primaries[0].PeerState, true
	}
	return PeerState{}, false
}

// agentClient is a client for a peer's agent with the cluster's agent token, falling back to
// the agent password for a peer of an earlier version. With the cluster's CA it speaks HTTPS
// verified for the peer's DNS name, and plain HTTP to a peer of an earlier version that
// answers in clear text (docs/security.md, "The agent API").
func (e Env) agentClient(host string, port int) *Client {
	c := NewClient(host, port, e.AgentToken)
	c.Legacy = e.AgentPassword
	if len(e.CA) > 0 {
		if cfg, err := engine.ClientTLS(e.CA, host); err == nil { // LoadEnv checked the CA
			c.UseTLS(cfg)
			c.PlainFallback = true
		}
	}
	return c
}
