package main

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kura-db/kura/internal/contract"
)

func TestCredentialsDirFlag(t *testing.T) {
	if dir, err := credentialsDirFlag("kura init", nil); err != nil || dir != contract.CredentialsDir {
		t.Errorf("default: %q, %v", dir, err)
	}
	if dir, err := credentialsDirFlag("kura agent", []string{"--credentials-dir=/x"}); err != nil || dir != "/x" {
		t.Errorf("override: %q, %v", dir, err)
	}
	if _, err := credentialsDirFlag("kura init", []string{"secret"}); err == nil || !strings.Contains(err.Error(), "no arguments") {
		t.Errorf("a stray argument must be refused: %v", err)
	}
}

func TestParseMySQLDArgs(t *testing.T) {
	hold, dir, server, err := parseMySQLDArgs([]string{"--hold-for=10s", "--credentials-dir=/c", "--", "mariadbd", "--defaults-file=/f"})
	if err != nil || hold != 10*time.Second || dir != "/c" || !slices.Equal(server, []string{"mariadbd", "--defaults-file=/f"}) {
		t.Errorf("got %s %q %v %v", hold, dir, server, err)
	}
	hold, dir, server, err = parseMySQLDArgs([]string{"--", "mariadbd"})
	if err != nil || hold != 45*time.Second || dir != contract.CredentialsDir || !slices.Equal(server, []string{"mariadbd"}) {
		t.Errorf("defaults: %s %q %v %v", hold, dir, server, err)
	}
	if _, _, _, err := parseMySQLDArgs([]string{"--password=x", "--", "mariadbd"}); err == nil {
		t.Error("an unknown flag must be refused")
	}
}
