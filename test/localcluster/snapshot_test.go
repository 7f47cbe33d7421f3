package localcluster_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// snapshot is the host state the local cluster touches.
type snapshot struct {
	netns      []string
	links      []string
	mounts     []string
	routes     []string
	nftables   string
	ipForward  string
	foreignNet map[int]string // pid -> cmdline of processes outside the host's network namespace
}

func itoa(i int) string { return strconv.Itoa(i) }

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v: %s", name, args, err, out)
	}
	return string(out)
}

func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	sort.Strings(out)
	return out
}

func takeSnapshot(t *testing.T) snapshot {
	t.Helper()
	var s snapshot
	s.netns = lines(run(t, "ip", "netns", "list"))
	for _, l := range lines(run(t, "ip", "-o", "link", "show")) {
		f := strings.Fields(l)
		s.links = append(s.links, strings.SplitN(strings.TrimSuffix(f[1], ":"), "@", 2)[0])
	}
	sort.Strings(s.links)
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range lines(string(data)) {
		s.mounts = append(s.mounts, strings.Fields(l)[4])
	}
	sort.Strings(s.mounts)
	s.routes = lines(run(t, "ip", "route", "show"))
	s.nftables = run(t, "nft", "list", "ruleset")
	fwd, _ := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
	s.ipForward = strings.TrimSpace(string(fwd))
	host, _ := os.Readlink("/proc/self/ns/net")
	s.foreignNet = map[int]string{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		ns, err := os.Readlink(filepath.Join("/proc", e.Name(), "ns", "net"))
		if err != nil || ns == host {
			continue
		}
		cmd, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		s.foreignNet[pid] = strings.ReplaceAll(string(cmd), "\x00", " ")
	}
	return s
}

// reporter is the part of testing.T that compare uses.
type reporter interface {
	Helper()
	Errorf(format string, args ...any)
}

// recorder counts reported problems.
type recorder struct{ problems []string }

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.problems = append(r.problems, fmt.Sprintf(format, args...))
}

func (s snapshot) compare(t reporter, after snapshot) {
	t.Helper()
	diff := func(what string, a, b []string) {
		if strings.Join(a, "\n") != strings.Join(b, "\n") {
			t.Errorf("%s differ after teardown:\nbefore: %v\nafter:  %v", what, a, b)
		}
	}
	diff("network namespaces", s.netns, after.netns)
	diff("links", s.links, after.links)
	diff("mounts", s.mounts, after.mounts)
	diff("routes", s.routes, after.routes)
	if s.nftables != after.nftables {
		t.Errorf("nftables ruleset differs after teardown:\nbefore:\n%s\nafter:\n%s", s.nftables, after.nftables)
	}
	if s.ipForward != after.ipForward {
		t.Errorf("ip_forward was %s, is %s after teardown", s.ipForward, after.ipForward)
	}
	for pid, cmd := range after.foreignNet {
		if _, ok := s.foreignNet[pid]; !ok {
			t.Errorf("process %d (%s) in a non-host network namespace is left after teardown", pid, cmd)
		}
	}
}

// TestSnapshotCompareReportsLeftovers checks the teardown comparison itself can fail.
func TestSnapshotCompareReportsLeftovers(t *testing.T) {
	before := snapshot{links: []string{"eth0", "lo"}, ipForward: "0", foreignNet: map[int]string{}}
	after := before
	after.links = []string{"eth0", "kura0", "lo"}
	after.netns = []string{"kl-1234"}
	after.nftables = "table ip kura_local {}"
	after.ipForward = "1"
	after.foreignNet = map[int]string{42: "sleep 100"}
	rec := &recorder{}
	before.compare(rec, after)
	if len(rec.problems) != 5 {
		t.Errorf("compare reported %d problems, want 5 (link, netns, rules, ip_forward, process): %q", len(rec.problems), rec.problems)
	}
	clean := &recorder{}
	before.compare(clean, before)
	if len(clean.problems) != 0 {
		t.Errorf("compare reported leftovers between identical snapshots: %q", clean.problems)
	}
}
