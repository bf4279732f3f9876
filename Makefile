# Responder build, test and tooling. `make test` is what CI runs (.ci/run);
# it installs what the tests need when it is missing.
GO        ?= go
GOBIN     := $(shell $(GO) env GOPATH)/bin
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.version=$(VERSION)
# make fuzz runs every Fuzz target for FUZZTIME; make test (fuzz-short) for
# FUZZSHORT. Either runs the targets one after another.
FUZZTIME  ?= 10m
FUZZSHORT ?= 5s
# Minimizing a large interesting input can eat a whole short run; bound it by count.
FUZZMINIMIZE ?= 200x
BENCHTIME ?= 1s
BENCHCOUNT ?= 1
GOLANGCI_LINT_VERSION := 2.15.0
GOLANGCI_LINT := $(GOBIN)/golangci-lint
ALERTMANAGER  := /usr/bin/prometheus-alertmanager
CHROMIUM      := /usr/bin/chromium

.PHONY: build test vet lint fmt-check fuzz fuzz-short bench bench-go bench-load check-config deps tools debian bbolt-cli crash-test clean

## build: the static binary at bin/responder (the Dockerfile runs the same command)
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/responder ./cmd/responder

## test: everything CI checks: formatting, vet, lint, race tests (including the
## real-Alertmanager end-to-end test, the web pages in headless Chromium, 5
## kill -9 cycles of the crash harness and the fsync order under strace), each
## fuzz target briefly, example config
test: deps fmt-check vet lint
	RESPONDER_BBOLT_CLI=$(GOBIN)/bbolt $(GO) test -race -count=1 ./...
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

## fuzz: every Fuzz target in the tree, FUZZTIME (10m) each; fuzz-short: FUZZSHORT (5s) each.
## A finding fails the run and is written to the package's testdata/fuzz/FuzzName/,
## where plain go test replays it: commit it with the fix.
fuzz-short:
	@$(MAKE) --no-print-directory fuzz FUZZTIME=$(FUZZSHORT)

fuzz:
	@FUZZTIME=$(FUZZTIME) FUZZMINIMIZE=$(FUZZMINIMIZE) GO=$(GO) bash .ci/fuzz

## bench: the Go benchmarks of the ingest path and the store, then the figures
## of docs/benchmarks.md measured on the real binary with cmd/responder-load
## (.ci/bench: BENCH_QUICK=1 for a short check, BENCH_OUT=DIR keeps the reports)
bench: bench-go bench-load

bench-go:
	$(GO) test -run='^$$' -bench=. -benchmem -benchtime=$(BENCHTIME) -count=$(BENCHCOUNT) ./store/bolt/ ./handlers/ ./integrations/outbox/

bench-load:
	@GO=$(GO) bash .ci/bench

## crash-test: the crash harness with 100 kill -9 cycles (RESPONDER_CRASH_CYCLES),
## the bbolt CLI's check of the file, and the fsync-before-2xx order under
## strace (docs/reliability.md); installs strace and the bbolt CLI if missing
crash-test: debian bbolt-cli
	RESPONDER_CRASH_CYCLES=$${RESPONDER_CRASH_CYCLES:-100} RESPONDER_BBOLT_CLI=$(GOBIN)/bbolt \
		$(GO) test -count=1 -timeout 30m -v -run 'TestCrashSafety|TestFsyncBeforeAnswerUnderStrace|TestAnswerWaitsForDurableCommit' ./cmd/responder/

bbolt-cli:
	@v=$$($(GO) list -m -f '{{.Version}}' go.etcd.io/bbolt); \
	if ! [ -x $(GOBIN)/bbolt ] || ! $(GO) version -m $(GOBIN)/bbolt | grep -q "go.etcd.io/bbolt.*$$v"; then \
		echo "installing the bbolt CLI $$v"; GOFLAGS= $(GO) install go.etcd.io/bbolt/cmd/bbolt@$$v; \
	fi

deps: tools bbolt-cli debian

tools:
	@if ! $(GOLANGCI_LINT) version 2>/dev/null | grep -q "$(GOLANGCI_LINT_VERSION)"; then \
		echo "installing golangci-lint v$(GOLANGCI_LINT_VERSION)"; \
		GOFLAGS= $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@v$(GOLANGCI_LINT_VERSION); \
	fi

## debian: the Debian packages the tests run: prometheus-alertmanager (the
## end-to-end test), prometheus (its promtool checks and unit-tests the rules
## in configs/prometheus; the tests never use its service), systemd (its
## systemd-analyze verifies the units in configs/systemd), strace
## (the fsync-before-answer order), chromium (the
## browser test of the web pages) and postgresql (the PostgreSQL store, run
## by the tests themselves, never as a service); one apt-get update, and
## only when one is missing
debian:
	@missing=; \
	{ [ -x $(ALERTMANAGER) ] && command -v amtool >/dev/null; } || missing="$$missing prometheus-alertmanager"; \
	command -v strace >/dev/null || missing="$$missing strace"; \
	command -v promtool >/dev/null || missing="$$missing prometheus"; \
	command -v systemd-analyze >/dev/null || missing="$$missing systemd"; \
	[ -x $(CHROMIUM) ] || missing="$$missing chromium"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	if [ -n "$$missing" ]; then \
		echo "installing from Debian:$$missing"; \
		SUDO=; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

clean:
	rm -rf bin
