# Unified Customer Service. `make run` starts the whole local stack with demo
# data; `make test` runs every test. See README.md.

GO            ?= go
# Lambda's target; the local tool overrides GOARCH to build host binaries
# through these same targets.
GOOS          ?= linux
GOARCH        ?= arm64
ARTIFACTS_DIR ?= $(CURDIR)/dist/$@
GOFLAGS_BUILD := -trimpath -ldflags "-s -w" -tags lambda.norpc
FUNCTIONS     := LookupFunction SyncFunction ReconcileFunction CaptureAFunction CaptureBWebhookFunction CaptureBPollFunction SyncWorkerFunction
CFN_LINT      ?= cfn-lint
# This machine, for the bootstraps the tests run (dist/host/<LogicalId>/).
HOST_GOOS      = $(shell $(GO) env GOHOSTOS)
HOST_GOARCH    = $(shell $(GO) env GOHOSTARCH)
HOST_DIST     := $(CURDIR)/dist/host
# Vet and the tests build as the bootstraps do (CGO_ENABLED=0, -trimpath):
# one compile of each package (the AWS SDK and SQLite are most of a cold
# build) serves them all, and the tests test what ships.
TEST_ENV       = CGO_ENABLED=0 GOFLAGS="-trimpath $(GOFLAGS)"

.PHONY: all build build-host $(addprefix build-,$(FUNCTIONS)) test test-go lint lint-template lint-go \
        run invoke bench bench-e2e fuzz load soak sizes clean

all: build

# SAM's makefile build contract: `sam build` runs build-<LogicalId> with
# ARTIFACTS_DIR set and packages $(ARTIFACTS_DIR)/bootstrap.
define build_function
	mkdir -p "$(ARTIFACTS_DIR)"
	GOOS=$(GOOS) GOARCH=$(GOARCH) CGO_ENABLED=0 $(GO) build $(GOFLAGS_BUILD) -o "$(ARTIFACTS_DIR)/bootstrap" ./functions/$(1)
endef

build-LookupFunction:
	$(call build_function,lookup)
build-SyncFunction:
	$(call build_function,sync)
build-ReconcileFunction:
	$(call build_function,reconcile)
build-CaptureAFunction:
	$(call build_function,capturea)
# System B's capture: one binary, two functions (CAPTURE_B_MODE in template.yaml).
build-CaptureBWebhookFunction:
	$(call build_function,captureb)
build-CaptureBPollFunction:
	$(call build_function,captureb)
build-SyncWorkerFunction:
	$(call build_function,syncworker)

## build: the bootstraps for Lambda (linux/arm64) under dist/<LogicalId>/
build:
	@for fn in $(FUNCTIONS); do $(MAKE) --no-print-directory build-$$fn ARTIFACTS_DIR=$(CURDIR)/dist/$$fn || exit 1; done
	@ls -l dist/*/bootstrap

## build-host: the bootstraps for this machine under dist/host/<LogicalId>/, through the same
## build-<LogicalId> targets; make test builds them once and every test package that runs the real
## functions uses them (UCS_BOOTSTRAP_DIR; without it each such package builds them itself)
build-host:
	@for fn in $(FUNCTIONS); do $(TEST_ENV) $(MAKE) --no-print-directory build-$$fn GOOS=$(HOST_GOOS) GOARCH=$(HOST_GOARCH) ARTIFACTS_DIR=$(HOST_DIST)/$$fn || exit 1; done
	@# go build leaves an up-to-date bootstrap as it was: its time says when it was last checked
	@touch $(addsuffix /bootstrap,$(addprefix $(HOST_DIST)/,$(FUNCTIONS)))

## sizes: bootstrap sizes in bytes
sizes: build
	@for fn in $(FUNCTIONS); do printf '%-20s %s\n' $$fn $$(stat -c %s dist/$$fn/bootstrap); done

## run: the whole local stack (S3, System B simulator, demo data, start-api :3000, start-lambda :3001)
run:
	$(GO) run ./cmd/local up

## invoke: one function with one event, e.g. make invoke FN=LookupFunction EVENT=events/lookup-found.json
invoke:
	@test -n "$(FN)" -a -n "$(EVENT)" || { echo 'usage: make invoke FN=<LogicalId> EVENT=<events/file.json>'; exit 2; }
	$(GO) run ./cmd/local invoke $(FN) -e $(EVENT)

## test: lint plus every Go test (unit, fuzz seeds, adapters on real protocols, the local loop end to end)
test: lint test-go

test-go: build-host
	@# shared/dedup tests its DynamoDB store against moto's server mode
	@python3 -c 'import moto.server' 2>/dev/null || python3 -m pip install --quiet 'moto[server]'
	UCS_BOOTSTRAP_DIR=$(HOST_DIST) $(TEST_ENV) $(GO) test -timeout 9m ./...

lint: lint-template lint-go

lint-template:
	@command -v $(CFN_LINT) >/dev/null 2>&1 || python3 -m pip install --quiet cfn-lint
	$(CFN_LINT) template.yaml

lint-go:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "not gofmt-formatted:"; echo "$$out"; exit 1; fi
	$(TEST_ENV) $(GO) vet ./...

## bench: the benchmark suite (see docs/benchmarks.md)
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

## bench-e2e: end-to-end benchmarks on the real bootstraps: reconciliation of 100k and 1M customers, capture of 1M with 1% changed
## (duration, peak RSS), lookup cold start and warm p50/p99 through start-api, bootstrap sizes; and the
## range mode on a 10M-customer snapshot behind a counting S3 proxy (TestE2ERangeSnapshot; ~4 GB of disk)
bench-e2e: build-host
	UCS_BOOTSTRAP_DIR=$(HOST_DIST) $(GO) test -tags bench -run 'TestE2E' -v -count=1 -timeout 30m ./cmd/local/internal/benchmarks/

## soak: the fault matrix's long variants (template settings, long outage, delivery storm)
soak:
	$(GO) test -tags soak -count=1 -timeout 10m ./cmd/local/internal/faults/

## fuzz: longer fuzzing of every fuzz target (FUZZTIME each, default 30s)
FUZZTIME ?= 30s
FUZZFLAGS ?= -fuzzminimizetime 5s
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $(FUZZFLAGS) $$pkg || exit 1; \
	  done; done

## load: bounded load run; starts its own local stack: 32 clients x 30 s, healthy then System B at 20% errors (LOADFLAGS to change)
LOADFLAGS ?= -c 32 -d 30s
load:
	$(GO) run ./cmd/loadgen -stack $(LOADFLAGS)

clean:
	rm -rf dist .aws-sam
