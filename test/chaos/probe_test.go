package chaos

import (
	"database/sql"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/kura-db/kura/test/e2eutil"
)

// probeTimeouts keep one probe of a frozen or cut-off instance short.
var probeTimeouts = e2eutil.Timeouts{Dial: 250 * time.Millisecond, IO: 250 * time.Millisecond}

// probeInterval is the pause between two probes of one instance (about 15 samples a second
// per instance with loopback round trips).
const probeInterval = 50 * time.Millisecond

// sample is one answer of an instance: between Sent and Got it had read_only OFF (or the
// writer's account ignores read_only).
type sample struct {
	Pod       string
	IP        string
	Sent, Got time.Time
}

// dualMoment is evidence of two instances accepting writes at overlapping moments.
type dualMoment struct {
	A, B sample
}

func (d dualMoment) String() string {
	return fmt.Sprintf("%s (%s) writable %s–%s and %s (%s) writable %s–%s",
		d.A.Pod, d.A.IP, stamp(d.A.Sent), stamp(d.A.Got), d.B.Pod, d.B.IP, stamp(d.B.Sent), stamp(d.B.Got))
}

func stamp(t time.Time) string { return e2eutil.Stamp(t) }

// probe asks every instance, by its Pod IP, whether it accepts writes, many times a second,
// each instance on its own so a frozen one does not slow the others down. ignoresReadOnly
// says the writer's account is not stopped by read_only (MariaDB's READ ONLY ADMIN): then
// every instance that answers accepts its writes.
type probe struct {
	user, password  string
	ignoresReadOnly bool
	pods            func() map[string]string // Pod name → IP, refreshed every second

	mu       sync.Mutex
	writable map[string][]sample // per Pod
	answers  map[string]int
	failures map[string]int
	latest   map[string]bool // last answer: read_only OFF

	stop chan struct{}
	wg   sync.WaitGroup
}

func startProbe(user, password string, ignoresReadOnly bool, pods func() map[string]string) *probe {
	p := &probe{user: user, password: password, ignoresReadOnly: ignoresReadOnly, pods: pods,
		writable: map[string][]sample{}, answers: map[string]int{}, failures: map[string]int{},
		latest: map[string]bool{}, stop: make(chan struct{})}
	p.wg.Add(1)
	go p.run()
	return p
}

// run keeps one prober per Pod IP; a Pod whose IP changed gets a new one.
func (p *probe) run() {
	defer p.wg.Done()
	running := map[string]chan struct{}{} // "pod/ip" → stop
	refresh := func() {
		want := map[string]bool{}
		for pod, ip := range p.pods() {
			if ip == "" {
				continue
			}
			key := pod + "/" + ip
			want[key] = true
			if running[key] == nil {
				stop := make(chan struct{})
				running[key] = stop
				p.wg.Add(1)
				go p.probeOne(pod, ip, stop)
			}
		}
		for key, stop := range running {
			if !want[key] {
				close(stop)
				delete(running, key)
			}
		}
	}
	refresh()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-p.stop:
			for _, stop := range running {
				close(stop)
			}
			return
		case <-tick.C:
			refresh()
		}
	}
}

func (p *probe) probeOne(pod, ip string, stop chan struct{}) {
	defer p.wg.Done()
	var db *sql.DB
	defer func() {
		if db != nil {
			_ = db.Close()
		}
	}()
	for {
		select {
		case <-stop:
			return
		default:
		}
		if db == nil {
			db = e2eutil.OpenDB(ip, p.user, p.password, probeTimeouts)
		}
		sent := time.Now()
		var readOnly int
		err := db.QueryRow("SELECT @@global.read_only").Scan(&readOnly)
		got := time.Now()
		p.mu.Lock()
		if err != nil {
			p.failures[pod]++
			p.latest[pod] = false
		} else {
			p.answers[pod]++
			p.latest[pod] = readOnly == 0
			if readOnly == 0 || p.ignoresReadOnly {
				p.writable[pod] = append(p.writable[pod], sample{Pod: pod, IP: ip, Sent: sent, Got: got})
			}
		}
		p.mu.Unlock()
		if err != nil {
			_ = db.Close()
			db = nil
		}
		select {
		case <-stop:
			return
		case <-time.After(probeInterval):
		}
	}
}

// writableNow names the instances whose last answer was read_only OFF.
func (p *probe) writableNow() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for pod, w := range p.latest {
		if w {
			out = append(out, pod)
		}
	}
	sort.Strings(out)
	return out
}

// probeResult is what a probe saw over a round.
type probeResult struct {
	Samples  int // answers, all instances together
	Failures int
	// Dual counts writable samples of one instance that overlap a writable sample of another.
	Dual     int
	Evidence []dualMoment // the first few
}

func (r probeResult) perSecond(d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(r.Samples) / d.Seconds()
}

// halt stops the probe and compares the instances' writable windows pairwise.
func (p *probe) halt() probeResult {
	close(p.stop)
	p.wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	var r probeResult
	for _, n := range p.answers {
		r.Samples += n
	}
	for _, n := range p.failures {
		r.Failures += n
	}
	pods := make([]string, 0, len(p.writable))
	for pod := range p.writable {
		pods = append(pods, pod)
	}
	sort.Strings(pods)
	counted := map[string]map[int]bool{}
	for i, a := range pods {
		for _, b := range pods[i+1:] {
			for ia, sa := range p.writable[a] {
				for ib, sb := range p.writable[b] {
					if sa.Sent.After(sb.Got) || sb.Sent.After(sa.Got) {
						continue
					}
					for _, k := range []struct {
						pod string
						i   int
					}{{a, ia}, {b, ib}} {
						if counted[k.pod] == nil {
							counted[k.pod] = map[int]bool{}
						}
						if !counted[k.pod][k.i] {
							counted[k.pod][k.i] = true
							r.Dual++
						}
					}
					if len(r.Evidence) < 10 {
						r.Evidence = append(r.Evidence, dualMoment{A: sa, B: sb})
					}
				}
			}
		}
	}
	return r
}

func (r probeResult) evidence() string {
	var b strings.Builder
	for _, e := range r.Evidence {
		b.WriteString("\n    ")
		b.WriteString(e.String())
	}
	return b.String()
}
