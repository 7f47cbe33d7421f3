package agent

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/kura-db/kura/test/localcluster"
)

// startProbes runs the container's startup, liveness and readiness probes until the returned
// function is called. A failed startup or liveness probe stops the process (the restart policy
// then applies); readiness sets the container's ready flag.
func (w *podWorker) startProbes(cs *ctrState, p *process) func() {
	ctx, cancel := context.WithCancel(w.ctx)
	var wg sync.WaitGroup
	c := cs.spec
	if cs.init {
		return cancel
	}
	select {
	case <-p.done:
		return cancel // an adopted run that ended while the agent was down
	default:
	}
	cs.mu.Lock()
	alreadyStarted := cs.started // an adopted run passed its startup probe before
	cs.mu.Unlock()
	startedCh := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		if c.StartupProbe != nil && !alreadyStarted {
			if !w.probeLoop(ctx, cs, p, c.StartupProbe, "Startup", true) {
				return
			}
		}
		cs.setStarted()
		w.markDirty()
		close(startedCh)
	}()
	if c.LivenessProbe != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case <-startedCh:
			case <-ctx.Done():
				return
			}
			w.probeLoop(ctx, cs, p, c.LivenessProbe, "Liveness", false)
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		select {
		case <-startedCh:
		case <-ctx.Done():
			return
		}
		if c.ReadinessProbe == nil {
			if cs.setReady(true) {
				w.markDirty()
			}
			return
		}
		w.readinessLoop(ctx, cs, p, c.ReadinessProbe)
	}()
	return func() {
		cancel()
		wg.Wait()
	}
}

func probeTimings(pr *corev1.Probe) (initial, period, timeout time.Duration, success, failure int32) {
	period, timeout, success, failure = 10*time.Second, time.Second, 1, 3
	if pr.PeriodSeconds > 0 {
		period = time.Duration(pr.PeriodSeconds) * time.Second
	}
	if pr.TimeoutSeconds > 0 {
		timeout = time.Duration(pr.TimeoutSeconds) * time.Second
	}
	if pr.SuccessThreshold > 0 {
		success = pr.SuccessThreshold
	}
	if pr.FailureThreshold > 0 {
		failure = pr.FailureThreshold
	}
	return time.Duration(pr.InitialDelaySeconds) * time.Second, period, timeout, success, failure
}

func wait(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

// probeLoop runs a startup probe until it succeeds (returns true) or a liveness probe until it
// fails; on failureThreshold consecutive failures it stops the process and returns false.
func (w *podWorker) probeLoop(ctx context.Context, cs *ctrState, p *process, pr *corev1.Probe, kind string, untilSuccess bool) bool {
	initial, period, timeout, _, failure := probeTimings(pr)
	if !wait(ctx, initial-time.Since(p.started)) {
		return false
	}
	fails := int32(0)
	for {
		err := w.probeOnce(cs, p, pr, timeout)
		if err == nil {
			fails = 0
			if untilSuccess {
				return true
			}
		} else {
			fails++
			w.event(corev1.EventTypeWarning, "Unhealthy", "%s probe failed: %v", kind, err)
			if fails >= failure {
				w.event(corev1.EventTypeNormal, "Killing", "Container %s failed %s probe, will be restarted", cs.spec.Name, strings.ToLower(kind))
				grace := w.gracePeriod()
				if pr.TerminationGracePeriodSeconds != nil {
					grace = time.Duration(*pr.TerminationGracePeriodSeconds) * time.Second
				}
				go w.stopContainer(cs, p, grace)
				return false
			}
		}
		if !wait(ctx, period) {
			return false
		}
	}
}

func (w *podWorker) readinessLoop(ctx context.Context, cs *ctrState, p *process, pr *corev1.Probe) {
	initial, period, timeout, success, failure := probeTimings(pr)
	if !wait(ctx, initial-time.Since(p.started)) {
		return
	}
	var oks, fails int32
	for {
		err := w.probeOnce(cs, p, pr, timeout)
		if err == nil {
			oks, fails = oks+1, 0
			if oks >= success && cs.setReady(true) {
				w.markDirty()
			}
		} else {
			oks, fails = 0, fails+1
			if fails >= failure && cs.setReady(false) {
				w.event(corev1.EventTypeWarning, "Unhealthy", "Readiness probe failed: %v", err)
				w.markDirty()
			}
		}
		if !wait(ctx, period) {
			return
		}
	}
}

// probeOnce runs one probe: exec inside the container's namespaces, TCP or HTTP to the Pod IP.
func (w *podWorker) probeOnce(cs *ctrState, p *process, pr *corev1.Probe, timeout time.Duration) error {
	pod := w.latest()
	w.mu.Lock()
	ip := w.sb.ip
	w.mu.Unlock()
	switch {
	case pr.Exec != nil:
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		out, err := w.execInContainer(ctx, pod, cs.spec, p.pid, pr.Exec.Command)
		if ctx.Err() != nil {
			return fmt.Errorf("command timed out after %s", timeout)
		}
		if err != nil {
			return fmt.Errorf("command %v failed: %w: %s", pr.Exec.Command, err, strings.TrimSpace(string(out)))
		}
		return nil
	case pr.TCPSocket != nil:
		port, err := resolvePort(pr.TCPSocket.Port, cs.spec)
		if err != nil {
			return err
		}
		host := ip
		if pr.TCPSocket.Host != "" {
			host = pr.TCPSocket.Host
		}
		conn, err := net.DialTimeout("tcp", net.JoinHostPort(host, strconv.Itoa(port)), timeout)
		if err != nil {
			return err
		}
		return conn.Close()
	case pr.HTTPGet != nil:
		g := pr.HTTPGet
		port, err := resolvePort(g.Port, cs.spec)
		if err != nil {
			return err
		}
		host := ip
		if g.Host != "" {
			host = g.Host
		}
		scheme := "http"
		if g.Scheme == corev1.URISchemeHTTPS {
			scheme = "https"
		}
		path := g.Path
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		req, err := http.NewRequest(http.MethodGet, fmt.Sprintf("%s://%s%s", scheme, net.JoinHostPort(host, strconv.Itoa(port)), path), nil)
		if err != nil {
			return err
		}
		req.Header.Set("User-Agent", "kube-probe/1.37")
		for _, h := range g.HTTPHeaders {
			req.Header.Set(h.Name, h.Value)
		}
		client := &http.Client{Timeout: timeout, Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // probes skip verification like the kubelet
			DisableKeepAlives: true,
		}, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode < 200 || resp.StatusCode >= 400 {
			return fmt.Errorf("HTTP probe failed with statuscode: %d", resp.StatusCode)
		}
		return nil
	case pr.GRPC != nil:
		return fmt.Errorf("gRPC probes are not supported by the local cluster")
	}
	return fmt.Errorf("probe has no handler")
}

func resolvePort(port intstr.IntOrString, c *corev1.Container) (int, error) {
	if port.Type == intstr.Int {
		return port.IntValue(), nil
	}
	for _, p := range c.Ports {
		if p.Name == port.StrVal {
			return int(p.ContainerPort), nil
		}
	}
	if n, err := strconv.Atoi(port.StrVal); err == nil {
		return n, nil
	}
	return 0, fmt.Errorf("port %q not found in container %s", port.StrVal, c.Name)
}

// execInContainer runs argv inside the namespaces of the container whose main process is pid,
// with the container's user and environment.
func (w *podWorker) execInContainer(ctx context.Context, pod *corev1.Pod, c *corev1.Container, pid int, argv []string) ([]byte, error) {
	w.mu.Lock()
	ip := w.sb.ip
	w.mu.Unlock()
	env, err := w.buildEnv(pod, c, ip)
	if err != nil {
		return nil, err
	}
	uid, gid, groups, err := credentials(pod, c)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, "nsenter", localcluster.NsenterArgs(pid, uid, gid, groups, argv)...)
	cmd.Env = env
	cmd.WaitDelay = time.Second
	return cmd.CombinedOutput()
}
