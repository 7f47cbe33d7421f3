package main

import (
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

// httpServe serves a directory over HTTP: a dependency-free stand-in web server for Pods.
//
//	kura-local http-serve <dir> [addr]
func httpServe(args []string) error {
	if len(args) < 1 {
		return fmt.Errorf("usage: kura-local http-serve <dir> [addr]")
	}
	addr := ":8080"
	if len(args) > 1 {
		addr = args[1]
	}
	srv := &http.Server{Addr: addr, Handler: http.FileServer(http.Dir(args[0])), ReadHeaderTimeout: 5 * time.Second}
	return srv.ListenAndServe()
}

// httpGet fetches a URL and prints the body, or with -code the status code.
//
//	kura-local http-get [-code] [-cacert file] [-token-file file] [-timeout 3s] <url>
func httpGet(args []string) error {
	fs := flag.NewFlagSet("http-get", flag.ExitOnError)
	code := fs.Bool("code", false, "print the status code instead of the body")
	caFile := fs.String("cacert", "", "CA bundle to verify the server with")
	tokenFile := fs.String("token-file", "", "file holding a bearer token")
	timeout := fs.Duration("timeout", 3*time.Second, "request timeout")
	_ = fs.Parse(args)
	if fs.NArg() != 1 {
		return fmt.Errorf("usage: kura-local http-get [-code] [-cacert file] [-token-file file] <url>")
	}
	tr := &http.Transport{}
	if *caFile != "" {
		pem, err := os.ReadFile(*caFile)
		if err != nil {
			return fmt.Errorf("failed to read CA: %w", err)
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	req, err := http.NewRequest(http.MethodGet, fs.Arg(0), nil)
	if err != nil {
		return err
	}
	if *tokenFile != "" {
		tok, err := os.ReadFile(*tokenFile)
		if err != nil {
			return fmt.Errorf("failed to read token: %w", err)
		}
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	}
	resp, err := (&http.Client{Transport: tr, Timeout: *timeout}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if *code {
		fmt.Print(resp.StatusCode)
		return nil
	}
	_, err = io.Copy(os.Stdout, resp.Body)
	return err
}
