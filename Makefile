# iocstream: `make run` runs the whole thing locally, `make test` tests it.
# Everything the targets need (ClickHouse, a nats-server binary) is
# installed and started by the targets themselves, idempotently.

SHELL := /bin/bash
GO ?= go
BIN := $(CURDIR)/bin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
NATS_SERVER_VERSION := $(shell $(GO) list -m -f '{{.Version}}' github.com/nats-io/nats-server/v2)

export IOC_CLICKHOUSE_ADDR ?= 127.0.0.1:9000

.PHONY: all build run test test-unit test-fuzz test-integration test-faults test-browser test-chdb test-monitoring monitoring-tools screenshots dashboard-pictures chromium bench clickhouse clickhouse-stop nats-server vet fmt clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/iocd ./cmd/iocd
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/iocsim ./cmd/iocsim
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/iocctl ./cmd/iocctl

# A local ClickHouse under ./data/clickhouse, unless IOC_CLICKHOUSE_ADDR
# already answers (deployments/scripts/clickhouse.sh decides).
clickhouse:
	@deployments/scripts/clickhouse.sh start

clickhouse-stop:
	@deployments/scripts/clickhouse.sh stop

# The current nats-server, built from the module version in go.mod (the
# Debian package is years older). Integration tests run it as a process.
nats-server: $(BIN)/nats-server
$(BIN)/nats-server: go.mod
	GOBIN=$(BIN) $(GO) install github.com/nats-io/nats-server/v2@$(NATS_SERVER_VERSION)

run: build
	@deployments/scripts/run.sh

vet:
	@test -z "$$(gofmt -l cmd internal schemas benchmarks test 2>/dev/null)" || { gofmt -l cmd internal schemas benchmarks test; echo "gofmt needed"; exit 1; }
	$(GO) vet ./...
	$(GO) vet -tags integration ./...
	$(GO) vet -tags 'integration browser' ./test/...
	$(GO) vet -tags chdb ./test/chdb/

test-unit:
	$(GO) test -count=1 ./...

# The dashboard test leaves the rows of its run in $(DASHBOARD_SAMPLE) for
# test-chdb, which runs the same panels on a modern engine.
DASHBOARD_SAMPLE := $(CURDIR)/data/dashboard-sample

test-integration: build nats-server clickhouse monitoring-tools
	rm -rf $(DASHBOARD_SAMPLE)
	IOC_TEST_IOCD_BIN=$(BIN)/iocd IOC_TEST_NATS_SERVER_BIN=$(BIN)/nats-server IOC_DASHBOARD_SAMPLE=$(DASHBOARD_SAMPLE) \
		$(GO) test -count=1 -tags integration -timeout 15m -v -skip '^TestFault' ./test/integration/

# The fault suite (test/integration/faults_test.go): SIGKILLs, a 60 s
# ClickHouse outage, NATS restarts and SIGTERMs during a seeded load, each
# compared with the ground truth. IOC_FAULT_SEED picks the seed.
test-faults: build nats-server clickhouse
	IOC_TEST_IOCD_BIN=$(BIN)/iocd IOC_TEST_NATS_SERVER_BIN=$(BIN)/nats-server \
		$(GO) test -count=1 -tags integration -timeout 15m -v -run '^TestFault' ./test/integration/

# The console in a real browser: Debian's chromium, driven over the
# DevTools protocol (test/integration/console_test.go, build tag browser).
chromium:
	@deployments/scripts/chromium.sh >/dev/null

test-browser: build nats-server clickhouse chromium
	IOC_TEST_IOCD_BIN=$(BIN)/iocd IOC_TEST_NATS_SERVER_BIN=$(BIN)/nats-server \
		$(GO) test -count=1 -tags 'integration browser' -timeout 10m -v -run '^TestConsole' ./test/integration/

# Every migration and every dashboard panel on ClickHouse 26.x, loaded as
# a library (chDB, fetched by deployments/scripts/chdb.sh), over the rows
# test-integration's dashboard test wrote. Build tag chdb: chdb-go panics
# in init without its library.
test-chdb:
	@test -s $(DASHBOARD_SAMPLE)/range.json || { echo "no dashboard sample: run make test-integration first"; exit 1; }
	@deployments/scripts/chdb.sh >/dev/null
	CHDB_LIB_PATH=$$(deployments/scripts/chdb.sh) IOC_DASHBOARD_SAMPLE=$(DASHBOARD_SAMPLE) \
		$(GO) test -count=1 -tags chdb -v ./test/chdb/

# The monitoring files: promtool check config / check rules / test rules,
# amtool check-config and the routes of an IOC's alerts (Debian's
# prometheus and prometheus-alertmanager, installed if missing).
test-monitoring:
	@deployments/scripts/monitoring-check.sh

# Debian's prometheus and prometheus-alertmanager, which integration tests
# and benchmarks run as processes.
monitoring-tools:
	@deployments/scripts/monitoring-check.sh install

# The README's pictures of the dashboards (docs/dashboards/*.png): each
# panel's query over the dashboard test's data, drawn as SVG and
# photographed by chromium; no Grafana needed.
dashboard-pictures: build nats-server clickhouse chromium
	IOC_TEST_IOCD_BIN=$(BIN)/iocd IOC_TEST_NATS_SERVER_BIN=$(BIN)/nats-server IOC_DASHBOARD_PICTURES=$(CURDIR)/docs/dashboards \
		$(GO) test -count=1 -tags integration -timeout 10m -run '^TestDashboardQueriesOn1816$$' ./test/integration/

# The README's pictures of the console (docs/console/*.png), from the
# browser test.
screenshots: build nats-server clickhouse chromium
	IOC_TEST_IOCD_BIN=$(BIN)/iocd IOC_TEST_NATS_SERVER_BIN=$(BIN)/nats-server IOC_CONSOLE_SCREENSHOTS=$(CURDIR)/docs/console \
		$(GO) test -count=1 -tags 'integration browser' -timeout 10m -run '^TestConsoleInBrowser$$' ./test/integration/

# Short fuzzes: no payload may panic the decoder and its JSON verdict
# must match encoding/json's; no rules file may panic the rules parser.
# Budgets are counts, not durations: Go 1.26's fuzz coordinator can fail
# a duration budget with "context deadline exceeded" on a loaded machine
# (golang/go#75804, fixed in 1.27). Interesting inputs are not minimised:
# minimising the ones grown from the 10 KB rule pack took the whole budget.
test-fuzz:
	$(GO) test -run '^$$' -fuzz FuzzDecode -fuzztime 300000x -fuzzminimizetime 0x ./internal/event/
	$(GO) test -run '^$$' -fuzz FuzzParseRules -fuzztime 100000x -fuzzminimizetime 0x ./internal/alert/
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime 300000x -fuzzminimizetime 0x ./internal/inbox/

test: vet test-unit test-fuzz test-monitoring test-integration test-chdb test-browser test-faults

bench: build nats-server clickhouse monitoring-tools
	IOC_TEST_IOCD_BIN=$(BIN)/iocd IOC_TEST_NATS_SERVER_BIN=$(BIN)/nats-server IOC_TEST_IOCSIM_BIN=$(BIN)/iocsim \
		$(GO) test -count=1 -tags integration -run '^$$' -bench . -benchtime 1x -timeout 60m ./benchmarks/
	$(GO) test -run '^$$' -bench . -benchmem ./internal/event/ ./internal/window/

clean:
	rm -rf $(BIN)
