package fleet

import (
	"context"
	"net/http"
)

// How the bench reads the operator's metrics endpoint.

func (f *fleet) metricsArgs() []string { return nil }

func (f *fleet) grantExtra(context.Context) {}

func (f *fleet) metricsClient() *http.Client { return http.DefaultClient }

func (f *fleet) metricsURL() string { return "http://" + f.mAddr + "/metrics" }
