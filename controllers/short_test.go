package controllers

import (
	"flag"
	"os"
	"testing"
)

// testingShort reads -short before testing.Init has parsed flags in TestMain.
func testingShort() bool {
	if !flag.Parsed() {
		testing.Init()
		flag.Parse()
	}
	return testing.Short()
}

func zapLevel() int8 {
	if os.Getenv("KURA_TEST_VERBOSE") != "" {
		return -1
	}
	return 1 // errors only
}
