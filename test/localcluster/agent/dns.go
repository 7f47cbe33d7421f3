package agent

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log"
	"net"
	"net/netip"
	"sort"
	"strings"
	"time"

	"golang.org/x/net/dns/dnsmessage"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/kura-db/kura/test/localcluster"
)

// dnsServer answers cluster.local names on the bridge address (UDP and TCP port 53) from the
// informer caches: Service names (ClusterIP, or the ready endpoints of a headless Service), Pod
// host names under their Service (<host>.<svc>.<ns>.svc.cluster.local) and
// <a-b-c-d>.<ns>.pod.cluster.local. Other names get NXDOMAIN: Pods have no outside DNS.
type dnsServer struct {
	a *Agent
}

const dnsTTL = 5

func newDNSServer(a *Agent) *dnsServer { return &dnsServer{a: a} }

func (d *dnsServer) start(ctx context.Context) error {
	addr := net.JoinHostPort(localcluster.HostIP, "53")
	pc, err := net.ListenPacket("udp4", addr)
	if err != nil {
		return fmt.Errorf("failed to listen for DNS on %s/udp: %w", addr, err)
	}
	ln, err := net.Listen("tcp4", addr)
	if err != nil {
		_ = pc.Close()
		return fmt.Errorf("failed to listen for DNS on %s/tcp: %w", addr, err)
	}
	go func() {
		<-ctx.Done()
		_ = pc.Close()
		_ = ln.Close()
	}()
	go d.serveUDP(pc)
	go d.serveTCP(ln)
	return nil
}

func (d *dnsServer) serveUDP(pc net.PacketConn) {
	buf := make([]byte, 1500)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		resp := d.answer(buf[:n])
		if resp != nil {
			_, _ = pc.WriteTo(resp, from)
		}
	}
}

func (d *dnsServer) serveTCP(ln net.Listener) {
	for {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer conn.Close()
			for {
				_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
				var l [2]byte
				if _, err := io.ReadFull(conn, l[:]); err != nil {
					return
				}
				msg := make([]byte, binary.BigEndian.Uint16(l[:]))
				if _, err := io.ReadFull(conn, msg); err != nil {
					return
				}
				resp := d.answer(msg)
				if resp == nil {
					return
				}
				out := binary.BigEndian.AppendUint16(nil, uint16(len(resp)))
				if _, err := conn.Write(append(out, resp...)); err != nil {
					return
				}
			}
		}()
	}
}

func (d *dnsServer) answer(req []byte) []byte {
	var p dnsmessage.Parser
	h, err := p.Start(req)
	if err != nil {
		return nil
	}
	q, err := p.Question()
	if err != nil {
		return nil
	}
	rh := dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired}
	name := strings.ToLower(q.Name.String())
	ips, known := d.lookup(strings.TrimSuffix(name, "."))
	if !known {
		rh.RCode = dnsmessage.RCodeNameError
	}
	b := dnsmessage.NewBuilder(nil, rh)
	b.EnableCompression()
	_ = b.StartQuestions()
	_ = b.Question(q)
	_ = b.StartAnswers()
	if q.Type == dnsmessage.TypeA || q.Type == dnsmessage.TypeALL {
		for _, ip := range ips {
			_ = b.AResource(dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: dnsTTL}, dnsmessage.AResource{A: ip.As4()})
		}
	}
	out, err := b.Finish()
	if err != nil {
		log.Printf("dns: failed to build answer for %s: %v", name, err)
		return nil
	}
	return out
}

// lookup resolves a cluster name; known is false when the name does not exist.
func (d *dnsServer) lookup(name string) ([]netip.Addr, bool) {
	suffix := "." + localcluster.ClusterDomain
	if !strings.HasSuffix(name, suffix) {
		return nil, false
	}
	labelsOf := strings.Split(strings.TrimSuffix(name, suffix), ".")
	switch {
	case len(labelsOf) == 3 && labelsOf[2] == "svc":
		return d.service(labelsOf[1], labelsOf[0])
	case len(labelsOf) == 4 && labelsOf[3] == "svc":
		return d.endpointHost(labelsOf[2], labelsOf[1], labelsOf[0])
	case len(labelsOf) == 3 && labelsOf[2] == "pod":
		ip, err := netip.ParseAddr(strings.ReplaceAll(labelsOf[0], "-", "."))
		if err != nil || !ip.Is4() {
			return nil, false
		}
		return []netip.Addr{ip}, true
	}
	return nil, false
}

func (d *dnsServer) service(ns, name string) ([]netip.Addr, bool) {
	svc, err := d.a.services.Services(ns).Get(name)
	if err != nil {
		return nil, false
	}
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		return nil, true
	}
	if svc.Spec.ClusterIP != corev1.ClusterIPNone && svc.Spec.ClusterIP != "" {
		ip, err := netip.ParseAddr(svc.Spec.ClusterIP)
		if err != nil {
			return nil, true
		}
		return []netip.Addr{ip}, true
	}
	var out []netip.Addr
	d.eachReadyEndpoint(ns, name, func(e discoveryv1.Endpoint) {
		for _, a := range e.Addresses {
			if ip, err := netip.ParseAddr(a); err == nil {
				out = append(out, ip)
			}
		}
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Less(out[j]) })
	return out, true
}

func (d *dnsServer) endpointHost(ns, svcName, host string) ([]netip.Addr, bool) {
	if _, err := d.a.services.Services(ns).Get(svcName); err != nil {
		return nil, false
	}
	var out []netip.Addr
	d.eachReadyEndpoint(ns, svcName, func(e discoveryv1.Endpoint) {
		if e.Hostname == nil || *e.Hostname != host {
			return
		}
		for _, a := range e.Addresses {
			if ip, err := netip.ParseAddr(a); err == nil {
				out = append(out, ip)
			}
		}
	})
	return out, len(out) > 0
}

func (d *dnsServer) eachReadyEndpoint(ns, svc string, fn func(discoveryv1.Endpoint)) {
	sel := labels.SelectorFromSet(labels.Set{discoveryv1.LabelServiceName: svc})
	slices, _ := d.a.slices.EndpointSlices(ns).List(sel)
	for _, s := range slices {
		for _, e := range s.Endpoints {
			if e.Conditions.Ready != nil && !*e.Conditions.Ready {
				continue
			}
			fn(e)
		}
	}
}
