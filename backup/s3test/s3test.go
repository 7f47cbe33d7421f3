// Package s3test starts a real S3 server for tests: versitygw (github.com/versity/versitygw,
// built from the Go module proxy by hack/build-versitygw.sh into bin/) with its posix backend
// on a loopback port, serving a temporary directory. Each test gets its own server.
package s3test

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// Credentials of the test server's root account.
const (
	AccessKey = "kura-test-access"
	SecretKey = "kura-test-secret-key"
)

// Server is a running versitygw.
type Server struct {
	Endpoint string
	// Dir is the posix backend's root: each top-level directory is a bucket.
	Dir string
}

// Binary returns bin/versitygw of this repository, or an error saying how to build it.
func Binary() (string, error) {
	_, file, _, _ := runtime.Caller(0)
	p := filepath.Join(filepath.Dir(file), "..", "..", "bin", "versitygw")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("versitygw not found at %s: run make deps (hack/build-versitygw.sh)", p)
	}
	return p, nil
}

// Start starts a server on loopback with the given buckets. It is an engine-tier helper:
// -short skips.
func Start(t testing.TB, buckets ...string) *Server {
	t.Helper()
	return StartAt(t, "127.0.0.1", buckets...)
}

// StartAt starts a server listening on host (e.g. the local cluster's bridge address, which
// its Pods reach) with the given buckets.
func StartAt(t testing.TB, host string, buckets ...string) *Server {
	t.Helper()
	if testing.Short() {
		t.Skip("needs a real S3 server (versitygw); not run with -short")
	}
	bin, err := Binary()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, b := range buckets {
		if err := os.Mkdir(filepath.Join(dir, b), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	var log strings.Builder
	cmd := exec.Command(bin, "--access", AccessKey, "--secret", SecretKey, "--port", addr, "posix", dir)
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	s := &Server{Endpoint: "http://" + addr, Dir: dir}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(s.Endpoint)
		if err == nil {
			_ = resp.Body.Close()
			return s
		}
		select {
		case <-exited:
			t.Fatalf("versitygw exited: %s", log.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("versitygw did not answer on %s: %v; %s", addr, err, log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
