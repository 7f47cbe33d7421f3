package agent

import (
	"compress/gzip"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/kura-db/kura/internal/seed"
)

// Client talks to one instance's agent.
type Client struct {
	// BaseURL is http://<host>:8080, or https://<host>:8080 after UseTLS.
	BaseURL string
	// Token is the cluster's agent token (contract.KeyAgentToken).
	Token string
	// Legacy, when set, is tried once after a 401: the agent password, which agents of
	// earlier versions took as their token (a cluster being rolled to this version).
	Legacy string
	// HTTP is used for every request; nil means a client with a 2 s connect timeout and a
	// 30 s response-header timeout (a clone's body may take hours), over TLS after UseTLS.
	HTTP *http.Client
	// PlainFallback, with UseTLS: an agent that answers the TLS handshake in clear text (one
	// of an earlier version, which serves plain HTTP) is asked again over plain HTTP. Only
	// for peers inside a cluster being rolled onto this version (docs/security.md, "The
	// agent API"); the operator and backup Jobs know each Pod's scheme and never fall back.
	PlainFallback bool

	// tlsHTTP and tlsFence are the HTTPS clients of UseTLS.
	tlsHTTP, tlsFence *http.Client
}

// NewClient returns a client for the agent at host (name or IP) and port, over plain HTTP
// until UseTLS.
func NewClient(host string, port int, token string) *Client {
	return &Client{BaseURL: "http://" + net.JoinHostPort(host, fmt.Sprint(port)), Token: token}
}

// UseTLS makes the client speak HTTPS, verifying the agent's certificate with cfg (the
// cluster's CA and the instance's DNS name: engine.ClientTLS).
func (c *Client) UseTLS(cfg *tls.Config) {
	c.BaseURL = "https://" + strings.TrimPrefix(c.BaseURL, "http://")
	c.tlsHTTP = &http.Client{Transport: agentTransport(2*time.Second, 30*time.Second, cfg, false)}
	c.tlsFence = &http.Client{Transport: agentTransport(fenceConnectTimeout, 0, cfg, true)}
}

// agentTransport is the transport of the agent clients: connect timeout dial, response
// header timeout header (0: none), TLS when cfg is set, without compression (the clone
// stream compresses itself). Idle connections close after a minute, so a transport dropped
// with its client leaves nothing behind.
func agentTransport(dial, header time.Duration, cfg *tls.Config, noKeepAlive bool) *http.Transport {
	return &http.Transport{
		DialContext:           (&net.Dialer{Timeout: dial, KeepAlive: 30 * time.Second}).DialContext,
		ResponseHeaderTimeout: header,
		TLSClientConfig:       cfg,
		DisableCompression:    true,
		DisableKeepAlives:     noKeepAlive,
		MaxIdleConnsPerHost:   2,
		IdleConnTimeout:       time.Minute,
	}
}

var defaultHTTP = &http.Client{Transport: agentTransport(2*time.Second, 30*time.Second, nil, false)}

// fenceConnectTimeout bounds the connect of a fence request: the agent of a cut-off primary
// must not hold up a failover, whose first stage waits for it. The connect is the kernels'
// handshake on the Pod network (no process needs to run for it), so half a second is ample
// for an agent that can be reached; one that cannot costs the failover that much.
const fenceConnectTimeout = 500 * time.Millisecond

var fenceHTTP = &http.Client{Transport: agentTransport(fenceConnectTimeout, 0, nil, true)}

func (c *Client) http(fence bool) *http.Client {
	switch {
	case c.HTTP != nil:
		return c.HTTP
	case c.tlsHTTP != nil && fence:
		return c.tlsFence
	case c.tlsHTTP != nil:
		return c.tlsHTTP
	case fence:
		return fenceHTTP
	}
	return defaultHTTP
}

func (c *Client) do(ctx context.Context, method, path string) (*http.Response, error) {
	return c.send(ctx, false, method, path)
}

// send makes a request with the token, and once more with the legacy token after a 401.
func (c *Client) send(ctx context.Context, fence bool, method, path string) (*http.Response, error) {
	var resp *http.Response
	for _, token := range []string{c.Token, c.Legacy} {
		if resp != nil {
			if token == "" || token == c.Token {
				break
			}
			_ = resp.Body.Close()
		}
		var err error
		if resp, err = c.request(ctx, fence, method, path, token); err != nil {
			return nil, err
		}
		if resp.StatusCode != http.StatusUnauthorized {
			break
		}
	}
	return resp, nil
}

// request makes one request; with PlainFallback, an agent answering in clear text is asked
// again over plain HTTP.
func (c *Client) request(ctx context.Context, fence bool, method, path, token string) (*http.Response, error) {
	base := strings.TrimSuffix(c.BaseURL, "/")
	hc := c.http(fence)
	for {
		req, err := http.NewRequestWithContext(ctx, method, base+path, nil)
		if err != nil {
			return nil, fmt.Errorf("failed to build request: %w", err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := hc.Do(req)
		if err == nil {
			return resp, nil
		}
		plain, ok := strings.CutPrefix(base, "https://")
		if !c.PlainFallback || !ok || !errors.Is(err, http.ErrSchemeMismatch) {
			return nil, fmt.Errorf("failed to call agent %s: %w", base, err)
		}
		base, hc = "http://"+plain, defaultHTTP
		if fence {
			hc = fenceHTTP
		}
	}
}

// Healthz asks the agent whether it runs (no token): nil when it answered 200.
func (c *Client) Healthz(ctx context.Context) error {
	resp, err := c.request(ctx, false, http.MethodGet, "/healthz", "")
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return statusError(resp)
	}
	return nil
}

// StatusError is a non-success answer of an agent.
type StatusError struct {
	Code    int
	Message string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("agent answered %d %s: %s", e.Code, http.StatusText(e.Code), e.Message)
}

func statusError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return &StatusError{Code: resp.StatusCode, Message: strings.TrimSpace(string(b))}
}

// State asks for the instance's state. An instance whose server is down answers with an
// error that still carries what the agent knows.
func (c *Client) State(ctx context.Context) (State, error) {
	resp, err := c.do(ctx, http.MethodGet, "/v1/state")
	if err != nil {
		return State{}, err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusServiceUnavailable {
		return State{}, statusError(resp)
	}
	var st State
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return State{}, fmt.Errorf("failed to read state from %s: %w", c.BaseURL, err)
	}
	if resp.StatusCode != http.StatusOK {
		return st, &StatusError{Code: resp.StatusCode, Message: st.Error}
	}
	return st, nil
}

// RequestReclone asks the agent to keep its data aside and clone afresh from donor (a Pod
// name, "" for the best donor) when its Pod next starts.
func (c *Client) RequestReclone(ctx context.Context, donor, reason string) error {
	q := url.Values{}
	if donor != "" {
		q.Set("donor", donor)
	}
	if reason != "" {
		q.Set("reason", reason)
	}
	resp, err := c.do(ctx, http.MethodPost, "/v1/reclone?"+q.Encode())
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusAccepted {
		return statusError(resp)
	}
	return nil
}

// CloneStream is an open clone: Read returns the engine's copy bytes and io.EOF only after
// the trailer was verified; anything else (a cut connection, a donor error, a checksum
// mismatch) is an error.
type CloneStream struct {
	*seed.Reader
	body io.Closer
}

// Close releases the connection.
func (s *CloneStream) Close() error { return s.body.Close() }

// Clone opens the donor's clone stream, gzip-compressed on the wire. A donor busy with other
// clones answers at once and starts this one when a slot frees; the stream's header arrives
// then.
func (c *Client) Clone(ctx context.Context) (*CloneStream, error) {
	return c.CloneEncoded(ctx, EncodingGzip)
}

// CloneEncoded opens the clone stream with the given wire encoding (EncodingIdentity for a
// client that compresses the copy itself).
func (c *Client) CloneEncoded(ctx context.Context, encoding string) (*CloneStream, error) {
	resp, err := c.do(ctx, http.MethodGet, "/v1/clone?encoding="+url.QueryEscape(encoding))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		defer func() { _ = resp.Body.Close() }()
		return nil, statusError(resp)
	}
	got := resp.Header.Get(EncodingHeader)
	if got == "" {
		got = EncodingGzip // an agent older than the encodings
	}
	sr, err := newWireReader(resp.Body, got)
	if err != nil {
		_ = resp.Body.Close()
		return nil, err
	}
	return &CloneStream{Reader: sr, body: resp.Body}, nil
}

// CloneFrames opens the clone stream and returns its frames undecoded (seed's copy stream as
// the donor wrote it, without the wire's compression), for a client that stores the stream
// itself and verifies it with seed.NewReader as it passes.
func (c *Client) CloneFrames(ctx context.Context) (io.ReadCloser, error) {
	resp, err := c.do(ctx, http.MethodGet, "/v1/clone?encoding="+EncodingIdentity)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		defer func() { _ = resp.Body.Close() }()
		return nil, statusError(resp)
	}
	if enc := resp.Header.Get(EncodingHeader); enc == EncodingIdentity {
		return resp.Body, nil
	}
	// An agent older than the encodings sends gzip.
	gz, err := gzip.NewReader(resp.Body)
	if err != nil {
		_ = resp.Body.Close()
		return nil, fmt.Errorf("failed to read clone stream: %w", seed.Truncation(err))
	}
	return struct {
		io.Reader
		io.Closer
	}{gz, resp.Body}, nil
}

// FenceOrStop asks the agent to fence its server, or to stop it when it no longer answers
// after it last answered as a writable primary (a frozen primary; docs/clustering.md, rule 3c).
func (c *Client) FenceOrStop(ctx context.Context) (FenceResult, error) {
	resp, err := c.send(ctx, true, http.MethodPost, "/v1/fence")
	if err != nil {
		return FenceResult{}, err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return FenceResult{}, statusError(resp)
	}
	var res FenceResult
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil {
		return FenceResult{}, fmt.Errorf("failed to read the fence result from %s: %w", c.BaseURL, err)
	}
	return res, nil
}
