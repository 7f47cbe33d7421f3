package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kura-db/kura/internal/contract"
	"github.com/kura-db/kura/internal/engine"
	"github.com/kura-db/kura/test/e2eutil"
)

// No process of a running cluster holds a password of the cluster's Secret in its environment
// or command line: every process of every running container of the cluster's Pods and of the
// operator's Pod is read from /proc (the local cluster runs containers as host processes; the
// node agent records each container's process group). The node agent's record of every
// container's spec, init containers included, holds none either: no password was ever in a
// container's environment or arguments. The cluster becoming healthy proves the containers
// read the password files they need.
func TestNoPasswordInProcessEnvironmentOrArguments(t *testing.T) {
	needCluster(t)
	ns := newNamespace(t, "secrets")
	const name = "shop"
	ctx := context.Background()
	if err := k8s.Create(ctx, newCluster(ns, name, 2)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "2 healthy instances", 5*time.Minute, healthy(t, ns, name, 2))
	// The operator installed by the chart may manage the cluster's NetworkPolicy (the local
	// cluster does not enforce it; docs/security.md says how to verify that elsewhere).
	np := &networkingv1.NetworkPolicy{}
	if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: name + "-instances"}, np); err != nil {
		t.Errorf("the cluster's NetworkPolicy: %v", err)
	}

	s := &corev1.Secret{}
	if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: name + "-credentials"}, s); err != nil {
		t.Fatal(err)
	}
	tok := &corev1.Secret{}
	if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: name + "-agent-token"}, tok); err != nil {
		t.Fatal(err)
	}
	passwords := map[string][]byte{}
	for _, sec := range []*corev1.Secret{s, tok} {
		for k, v := range sec.Data {
			if len(v) < 8 {
				t.Fatalf("key %s holds a value too short to search for", k)
			}
			passwords[k] = v
		}
	}

	// The agents' API is HTTPS with the instance's certificate, verified against the
	// cluster's CA for the Pod's DNS name; it takes the cluster's token, not a database
	// password (not even the agent account's), and answers nothing to a caller without it.
	cm := &corev1.ConfigMap{}
	if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: name + "-ca"}, cm); err != nil {
		t.Fatal(err)
	}
	tlsConfig, err := engine.ClientTLS([]byte(cm.Data[contract.TLSCAKey]), fmt.Sprintf("%s-0.%s-instances.%s.svc.cluster.local", name, name, ns))
	if err != nil {
		t.Fatal(err)
	}
	verifying := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsConfig}}
	agentURL := "https://" + net.JoinHostPort(podIP(t, ns, name+"-0"), fmt.Sprint(contract.AgentPort)) + "/v1/state"
	if resp, err := http.Get(agentURL); err == nil { //nolint:noctx // a client that does not trust the CA
		_ = resp.Body.Close()
		t.Error("a client that does not trust the cluster's CA reached the agent")
	}
	if resp, err := http.Get(strings.Replace(agentURL, "https:", "http:", 1)); err != nil || resp.StatusCode != http.StatusBadRequest { //nolint:noctx // plain HTTP
		t.Errorf("plain HTTP to the agent: %v, %v; want 400", resp, err)
	} else {
		_ = resp.Body.Close()
	}
	for _, tc := range []struct {
		token string
		want  int
	}{{string(tok.Data[contract.KeyAgentToken]), http.StatusOK}, {string(s.Data[contract.KeyAgentPassword]), http.StatusUnauthorized}, {"", http.StatusUnauthorized}} {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, agentURL, nil)
		req.Header.Set("Authorization", "Bearer "+tc.token)
		resp, err := verifying.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.want || (tc.want == http.StatusUnauthorized && bytes.Contains(body, []byte(name+"-0"))) {
			t.Errorf("GET /v1/state with a %d-byte token: %d %q, want %d", len(tc.token), resp.StatusCode, body, tc.want)
		}
	}

	var pods []corev1.Pod
	for _, n := range []string{ns, e2eutil.OperatorNamespace} {
		list := &corev1.PodList{}
		if err := k8s.List(ctx, list, client.InNamespace(n)); err != nil {
			t.Fatal(err)
		}
		pods = append(pods, list.Items...)
	}
	checked, specs := 0, 0
	for _, p := range pods {
		for _, c := range append(append([]corev1.Container(nil), p.Spec.InitContainers...), p.Spec.Containers...) {
			// The node agent's record of the container: its environment and argv as started.
			spec, err := os.ReadFile(lc.Path("pods", string(p.UID), "containers", c.Name+".json"))
			if err != nil {
				t.Errorf("%s/%s: no container record: %v", p.Name, c.Name, err)
				continue
			}
			specs++
			for k, v := range passwords {
				if bytes.Contains(spec, v) {
					t.Errorf("%s/%s: the container's spec holds %s", p.Name, c.Name, k)
				}
			}
		}
		for _, st := range p.Status.ContainerStatuses {
			if st.State.Running == nil {
				continue
			}
			pids, err := processGroup(lc.PodProcessGroupFile(string(p.UID), st.Name))
			if err != nil {
				t.Errorf("%s/%s: %v", p.Name, st.Name, err)
				continue
			}
			for _, pid := range pids {
				for _, f := range []string{"environ", "cmdline"} {
					b, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", pid, f))
					if err != nil {
						continue // the process ended meanwhile
					}
					checked++
					for k, v := range passwords {
						if bytes.Contains(b, v) {
							t.Errorf("%s/%s: process %d's %s holds %s", p.Name, st.Name, pid, f, k)
						}
					}
				}
			}
		}
	}
	// At least: per instance, the mysqld container's supervisor and server and the agent
	// (3 processes, 2 files each), and the operator (2 files); 4 containers per instance.
	if checked < 2*3*2+2 || specs < 2*4 {
		t.Fatalf("only %d process files and %d container records checked", checked, specs)
	}
	t.Logf("checked %d process files (environ, cmdline) and %d container records", checked, specs)
}

// processGroup lists the live processes of the process group recorded in file.
func processGroup(file string) ([]int, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("no process group record: %w", err)
	}
	pgid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, fmt.Errorf("process group record %s: %w", file, err)
	}
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	var out []int
	for _, st := range stats {
		b, err := os.ReadFile(st)
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses.
		i := bytes.LastIndexByte(b, ')')
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 3 {
			continue
		}
		if g, _ := strconv.Atoi(f[2]); g == pgid {
			pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(st)))
			out = append(out, pid)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("process group %d has no process", pgid)
	}
	return out, nil
}
