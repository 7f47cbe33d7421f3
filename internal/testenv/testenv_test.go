package testenv

import (
	"context"
	"testing"

	kurav1alpha1 "github.com/kura-db/kura/api/v1alpha1"
)

func TestStartServesCRDs(t *testing.T) {
	e := Start(t)
	var l kurav1alpha1.MySQLClusterList
	if err := e.Client.List(context.Background(), &l); err != nil {
		t.Fatalf("failed to list MySQLClusters: %v", err)
	}
}
