package agent

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"os/exec"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"

	"github.com/kura-db/kura/test/localcluster"
)

// serviceProxy keeps an nftables table that DNATs ClusterIP traffic (from Pods and from the
// host) to the ready endpoints of each Service, like kube-proxy's nftables mode. The whole table
// is replaced in one atomic nft transaction on every change.
type serviceProxy struct {
	a       *Agent
	changed chan struct{}
	last    string
}

func newServiceProxy(a *Agent) *serviceProxy {
	return &serviceProxy{a: a, changed: make(chan struct{}, 1)}
}

func (p *serviceProxy) register(f informers.SharedInformerFactory) {
	h := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { p.poke() },
		UpdateFunc: func(any, any) { p.poke() },
		DeleteFunc: func(any) { p.poke() },
	}
	_, _ = f.Core().V1().Services().Informer().AddEventHandler(h)
	_, _ = f.Discovery().V1().EndpointSlices().Informer().AddEventHandler(h)
}

func (p *serviceProxy) poke() {
	select {
	case p.changed <- struct{}{}:
	default:
	}
}

func (p *serviceProxy) run(ctx context.Context) {
	resync := time.NewTicker(30 * time.Second)
	defer resync.Stop()
	for {
		if err := p.sync(); err != nil {
			log.Printf("service proxy: %v", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-p.changed:
			// Coalesce bursts of events.
			time.Sleep(20 * time.Millisecond)
		case <-resync.C:
			p.last = ""
		}
	}
}

type backend struct {
	ip   string
	port int32
}

func (p *serviceProxy) sync() error {
	rules := p.render()
	if rules == p.last {
		return nil
	}
	cmd := exec.Command("nft", "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("failed to apply nftables rules: %s: %w", bytes.TrimSpace(out), err)
	}
	p.last = rules
	return nil
}

// render builds the nft script for the current Services and EndpointSlices.
func (p *serviceProxy) render() string {
	svcs, _ := p.a.services.List(labels.Everything())
	sort.Slice(svcs, func(i, j int) bool {
		return svcs[i].Namespace+"/"+svcs[i].Name < svcs[j].Namespace+"/"+svcs[j].Name
	})
	var dispatch, chains, noEndpoints []string
	n := 0
	for _, svc := range svcs {
		ip := svc.Spec.ClusterIP
		if ip == "" || ip == corev1.ClusterIPNone {
			continue
		}
		for _, sp := range svc.Spec.Ports {
			proto := strings.ToLower(string(sp.Protocol))
			if proto == "" {
				proto = "tcp"
			}
			if proto != "tcp" && proto != "udp" {
				continue
			}
			backends := p.backends(svc, sp)
			if len(backends) == 0 {
				noEndpoints = append(noEndpoints, fmt.Sprintf("%s . %s . %d", ip, proto, sp.Port))
				continue
			}
			n++
			chain := fmt.Sprintf("svc-%d", n)
			dispatch = append(dispatch, fmt.Sprintf("\t\tip daddr %s %s dport %d jump %s # %s/%s:%s", ip, proto, sp.Port, chain, svc.Namespace, svc.Name, sp.Name))
			if len(backends) == 1 {
				chains = append(chains, fmt.Sprintf("\tchain %s {\n\t\tmeta l4proto %s dnat to %s:%d\n\t}", chain, proto, backends[0].ip, backends[0].port))
				continue
			}
			var arms []string
			for i, b := range backends {
				ep := fmt.Sprintf("%s-%d", chain, i)
				arms = append(arms, fmt.Sprintf("%d : jump %s", i, ep))
				chains = append(chains, fmt.Sprintf("\tchain %s {\n\t\tmeta l4proto %s dnat to %s:%d\n\t}", ep, proto, b.ip, b.port))
			}
			chains = append(chains, fmt.Sprintf("\tchain %s {\n\t\tnumgen random mod %d vmap { %s }\n\t}", chain, len(backends), strings.Join(arms, ", ")))
		}
	}
	var b strings.Builder
	t := localcluster.NFTable
	fmt.Fprintf(&b, "table ip %s\ndelete table ip %s\ntable ip %s {\n", t, t, t)
	b.WriteString("\tset no-endpoints {\n\t\ttype ipv4_addr . inet_proto . inet_service\n")
	if len(noEndpoints) > 0 {
		fmt.Fprintf(&b, "\t\telements = { %s }\n", strings.Join(noEndpoints, ", "))
	}
	b.WriteString("\t}\n")
	fmt.Fprintf(&b, "\tchain services {\n%s\n\t}\n", strings.Join(dispatch, "\n"))
	b.WriteString(strings.Join(chains, "\n"))
	b.WriteString("\n\tchain prerouting {\n\t\ttype nat hook prerouting priority -100; policy accept;\n\t\tjump services\n\t}\n")
	b.WriteString("\tchain output {\n\t\ttype nat hook output priority -100; policy accept;\n\t\tjump services\n\t}\n")
	fmt.Fprintf(&b, "\tchain postrouting {\n\t\ttype nat hook postrouting priority 100; policy accept;\n\t\tip saddr %s ct status dnat masquerade\n\t}\n", localcluster.PodCIDR)
	// Connections to a Service without ready endpoints are refused at once, as with kube-proxy.
	// TCP gets a reset (an ICMP error for forwarded Pod traffic is not delivered back).
	reject := "\t\tmeta l4proto tcp ip daddr . meta l4proto . th dport @no-endpoints reject with tcp reset\n" +
		"\t\tip daddr . meta l4proto . th dport @no-endpoints reject\n"
	b.WriteString("\tchain filter-output {\n\t\ttype filter hook output priority 0; policy accept;\n" + reject + "\t}\n")
	b.WriteString("\tchain filter-forward {\n\t\ttype filter hook forward priority 0; policy accept;\n" + reject + "\t}\n")
	b.WriteString("}\n")
	return b.String()
}

// backends are the ready endpoints of a Service port, in a stable order.
func (p *serviceProxy) backends(svc *corev1.Service, sp corev1.ServicePort) []backend {
	sel := labels.SelectorFromSet(labels.Set{discoveryv1.LabelServiceName: svc.Name})
	slices, _ := p.a.slices.EndpointSlices(svc.Namespace).List(sel)
	seen := map[string]bool{}
	var out []backend
	for _, s := range slices {
		if s.AddressType != discoveryv1.AddressTypeIPv4 {
			continue
		}
		var port int32 = -1
		for _, ep := range s.Ports {
			name := ""
			if ep.Name != nil {
				name = *ep.Name
			}
			if name == sp.Name && ep.Port != nil {
				port = *ep.Port
			}
		}
		if port < 0 {
			continue
		}
		for _, e := range s.Endpoints {
			if e.Conditions.Ready != nil && !*e.Conditions.Ready {
				continue
			}
			for _, addr := range e.Addresses {
				key := fmt.Sprintf("%s:%d", addr, port)
				if !seen[key] {
					seen[key] = true
					out = append(out, backend{ip: addr, port: port})
				}
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ip < out[j].ip })
	return out
}
