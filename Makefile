# Responder build, test and tooling. `make test` is what CI runs (.ci/run);
# it installs what the tests need when it is missing.
GO        ?= go
GOBIN     := $(shell $(GO) env GOPATH)/bin
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.version=$(VERSION)
FUZZTIME  ?= 5s
# Minimizing a large interesting input can eat a whole short run; bound it by count.
FUZZMINIMIZE ?= 200x
BENCHTIME ?= 1s
BENCHCOUNT ?= 1
GOLANGCI_LINT_VERSION := 2.15.0
GOLANGCI_LINT := $(GOBIN)/golangci-lint
ALERTMANAGER  := /usr/bin/prometheus-alertmanager

.PHONY: build test vet lint fmt-check fuzz fuzz-short bench bench-go bench-load check-config deps tools alertmanager clean

## build: the static binary at bin/responder (the Dockerfile runs the same command)
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/responder ./cmd/responder

## test: everything CI checks: formatting, vet, lint, race tests (including the
## real-Alertmanager end-to-end test), each fuzz target briefly, example config
test: deps fmt-check vet lint
	$(GO) test -race -count=1 ./...
	$(MAKE) --no-print-directory fuzz-short
	$(MAKE) --no-print-directory check-config

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

lint: tools
	$(GOLANGCI_LINT) run ./...

check-config:
	$(GO) run ./cmd/responder check-config configs/example.yml

## fuzz-short / fuzz: every Fuzz target in the tree, FUZZTIME each
fuzz-short:
	@$(MAKE) --no-print-directory fuzz FUZZTIME=$(FUZZTIME)

fuzz:
	@FUZZTIME=$(FUZZTIME) FUZZMINIMIZE=$(FUZZMINIMIZE) GO=$(GO) bash .ci/fuzz

## bench: the Go benchmarks of the ingest path and the store, then the figures
## of docs/benchmarks.md measured on the real binary with cmd/responder-load
## (.ci/bench: BENCH_QUICK=1 for a short check, BENCH_OUT=DIR keeps the reports)
bench: bench-go bench-load

bench-go:
	$(GO) test -run='^$$' -bench=. -benchmem -benchtime=$(BENCHTIME) -count=$(BENCHCOUNT) ./store/ ./handlers/

bench-load:
	@GO=$(GO) bash .ci/bench

deps: tools alertmanager

tools:
	@if ! $(GOLANGCI_LINT) version 2>/dev/null | grep -q "$(GOLANGCI_LINT_VERSION)"; then \
		echo "installing golangci-lint v$(GOLANGCI_LINT_VERSION)"; \
		GOFLAGS= $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@v$(GOLANGCI_LINT_VERSION); \
	fi

alertmanager:
	@if [ ! -x $(ALERTMANAGER) ] || ! command -v amtool >/dev/null; then \
		echo "installing prometheus-alertmanager from Debian"; \
		SUDO=; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq prometheus-alertmanager >/dev/null; \
	fi

clean:
	rm -rf bin
