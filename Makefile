# Kura — build, generate and test. `make test` is what CI runs.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -eu -o pipefail -c

BIN := $(CURDIR)/bin
CONTROLLER_GEN := $(BIN)/controller-gen
GOLANGCI_LINT := $(BIN)/golangci-lint
ETCD := /usr/bin/etcd
# envtest finds kube-apiserver and etcd in one folder.
ASSETS := $(BIN)/envtest-assets
GO_TEST_FLAGS ?=
# One version for everything: the chart's appVersion is stamped into the binary, tags the image
# and is the image the chart deploys and passes as --kura-image (checked by the chart tests).
VERSION := $(shell sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\} *$$/\1/p' charts/kura/Chart.yaml)
IMAGE_REPOSITORY := $(shell sed -n 's/^  repository: *//p' charts/kura/values.yaml)
IMAGE_DIR ?= $(BIN)/image
IMAGE_SOURCE := https://github.com/kura-db/kura
LDFLAGS := -X main.version=$(VERSION)

.PHONY: plugin plugin-dist image image-push image-deps image-test print-version print-image demo demo-down all build generate verify-generated lint unit test envtest-assets deps e2e bench-e2e bench-archive bench-fleet chaos chaos-sample clean fmt vet

all: build

# The README's first command: the product on the built-in local cluster.
demo:
	hack/demo.sh

demo-down:
	hack/local-down.sh

build:
	CGO_ENABLED=0 go build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN)/kura ./cmd/kura

# The operator image, built from bin/kura alone (no container engine, no base image):
# $(IMAGE_DIR)/oci (OCI layout, to push) and $(IMAGE_DIR)/kura.tar (docker archive, to load).
# Time stamps come from the commit (or SOURCE_DATE_EPOCH), so a rebuild gives the same digest.
image: build
	go run ./hack/image build --binary $(BIN)/kura --out $(IMAGE_DIR) \
	  --repository $(IMAGE_REPOSITORY) --version $(VERSION) --source $(IMAGE_SOURCE) \
	  --revision "$$(git rev-parse HEAD)$$(git diff --quiet HEAD -- . || echo -dirty)" \
	  --created "$${SOURCE_DATE_EPOCH:-$$(git log -1 --format=%ct)}"

# Pushes the image `make image` wrote: make image-push IMAGE=registry.example.com/kura:0.1.0
image-push:
	@[[ -n "$${IMAGE:-}" ]] || { echo "set IMAGE=<registry>/<repository>:<tag>" >&2; exit 1; }
	go run ./hack/image push --layout $(IMAGE_DIR)/oci --to "$(IMAGE)" $(if $(INSECURE),--insecure)

# skopeo and umoci, which the image test opens the image with.
image-deps:
	hack/image-tools.sh

# Builds the image with `make image` and checks it with skopeo, umoci and a loopback registry.
image-test: image-deps
	go test $(GO_TEST_FLAGS) -count=1 -timeout 10m ./internal/image/

# The kubectl plugin: bin/kubectl-kura (kubectl finds it on PATH as `kubectl kura`).
plugin:
	CGO_ENABLED=0 go build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN)/kubectl-kura ./cmd/kubectl-kura

# Release archives of the plugin for krew (bin/plugin/) and their sums in plugins/kura.yaml.
plugin-dist:
	hack/plugin-dist.sh

print-version:
	@echo $(VERSION)

print-image:
	@echo $(IMAGE_REPOSITORY):$(VERSION)

deps:
	hack/install-deps.sh
	hack/tools.sh controller-gen golangci-lint
	hack/build-versitygw.sh

generate:
	go mod tidy
	hack/tools.sh controller-gen
	$(CONTROLLER_GEN) object:headerFile=hack/boilerplate.go.txt paths=./api/...
	$(CONTROLLER_GEN) crd paths=./api/... output:crd:dir=charts/kura/crds
	$(CONTROLLER_GEN) rbac:roleName=kura-operator paths=./controllers/... paths=./internal/... output:rbac:dir=hack/generated
	go test ./charts/kura/charttest -count=1 -run TestRBACRulesMatchMarkers -update >/dev/null
	go run ./hack/gendocs > docs/api.md

# Fails when generated files differ from what the markers produce.
verify-generated: generate
	@if ! git diff --quiet -- go.mod go.sum api charts/kura/crds charts/kura/files hack/generated docs/api.md; then \
	  git --no-pager diff --stat -- go.mod go.sum api charts/kura/crds charts/kura/files hack/generated docs/api.md; \
	  echo "generated files are stale: run 'make generate' and commit the result" >&2; exit 1; fi

fmt:
	gofmt -w $$(git ls-files '*.go')

vet:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [[ -n "$$out" ]]; then echo "gofmt needed: $$out" >&2; exit 1; fi
	go vet ./...

lint: vet
	hack/tools.sh golangci-lint
	$(GOLANGCI_LINT) run --allow-serial-runners ./...

envtest-assets:
	@k8s=$$(hack/build-k8s.sh kube-apiserver | tail -1); mkdir -p $(ASSETS); \
	  ln -sf $$k8s/kube-apiserver $(ASSETS)/kube-apiserver; ln -sf $(ETCD) $(ASSETS)/etcd

# Pure tests only: no servers.
unit:
	go test $(GO_TEST_FLAGS) -short ./...

# Every tier that fits the CI budget: unit, envtest (real kube-apiserver + etcd) and engine
# (real mariadbd processes), after static checks and a check that generated code is current;
# then the local cluster's own tests and the end-to-end suite, one at a time (one local cluster
# per machine).
test: deps image-deps verify-generated lint envtest-assets
	KUBEBUILDER_ASSETS=$(ASSETS) go test $(GO_TEST_FLAGS) -count=1 -timeout 40m $$(go list ./... | grep -v -e /test/e2e -e /test/localcluster -e /test/chaos)
	hack/build-k8s.sh >/dev/null
	go test $(GO_TEST_FLAGS) -count=1 -p 1 -timeout 30m ./test/localcluster/...
	$(MAKE) e2e
	$(MAKE) chaos-sample

# The end-to-end suite on the local cluster (needs root).
e2e:
	hack/build-k8s.sh >/dev/null
	go test $(GO_TEST_FLAGS) -count=1 -timeout 45m -v ./test/e2e/

# The chaos suite on the local cluster (docs/chaos.md): KURA_CHAOS_ROUNDS faults (default 104),
# KURA_CHAOS_SEED for the order; the summary goes to bin/chaos-summary.md.
chaos:
	hack/build-k8s.sh >/dev/null
	KURA_CHAOS_ROUNDS=$${KURA_CHAOS_ROUNDS:-104} go test $(GO_TEST_FLAGS) -count=1 -timeout 300m -v ./test/chaos/

# Its sample in `make test`: one round of each fault kind, as many as fit in 10 minutes.
chaos-sample:
	hack/build-k8s.sh >/dev/null
	KURA_CHAOS_ROUNDS=0 KURA_CHAOS_BUDGET=$${KURA_CHAOS_BUDGET:-10m} go test $(GO_TEST_FLAGS) -count=1 -timeout 40m -v ./test/chaos/

# End-to-end benchmarks (docs/benchmarks.md).
bench-e2e:
	hack/build-k8s.sh >/dev/null
	go test -count=1 -timeout 90m -run '^$$' -bench . -benchtime 1x -v ./test/e2e/

# The binary log archive's recovery point under a steady write load (docs/benchmarks.md):
# real mariadbd and versitygw, ARCHIVE_BENCH_SECONDS of writes (default 30).
bench-archive:
	go test -count=1 -timeout 10m -run '^$$' -bench ArchiveRPO -benchtime 1x -v ./backup/archive/

# The operator holding a fleet of MySQLClusters on envtest's API server (docs/benchmarks.md,
# "Fleet"): KURA_FLEET_CLUSTERS (default 1000), KURA_FLEET_FOREIGN foreign Pods, Secrets and
# ConfigMaps (2000 each), KURA_FLEET_CHANGES spec changes (300), KURA_FLEET_IDLE_SECONDS (60).
bench-fleet: envtest-assets
	KUBEBUILDER_ASSETS=$(ASSETS) go test -count=1 -timeout 60m -run '^$$' -bench BenchmarkFleet -benchtime 1x -v ./test/fleet/

clean:
	rm -rf $(BIN)/kura $(ASSETS)
