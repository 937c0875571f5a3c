# shardwork — the two commands are `make demo` and `make test`.
GO        ?= go
NPM       ?= npm
KINESALITE_DIR := tests/kinesalite
KINESALITE := $(KINESALITE_DIR)/node_modules/.bin/kinesalite
FUZZTIME  ?= 5s
GOTEST_FLAGS ?= -race -count=1 -timeout 20m

.PHONY: all build deps test unit e2e fuzz bench demo plugins vet clean

all: build

build:
	$(GO) build ./...

# Local Kinesis (kinesalite, pinned by package-lock.json) for tests and the demo.
deps: $(KINESALITE)

$(KINESALITE): $(KINESALITE_DIR)/package.json $(KINESALITE_DIR)/package-lock.json
	cd $(KINESALITE_DIR) && $(NPM) ci --no-audit --no-fund
	@touch $(KINESALITE)

vet:
	$(GO) vet ./...

# The whole suite: unit, end-to-end (real kinesalite and Redis, started by the
# harness) and a short run of every fuzz target.
test: deps vet
	$(GO) test $(GOTEST_FLAGS) ./...
	$(MAKE) fuzz

# Runs each fuzz target for FUZZTIME.
fuzz:
	@./scripts/fuzz.sh $(FUZZTIME)

bench: deps
	@./scripts/bench.sh

demo: deps
	$(GO) run ./tests/demo

clean:
	rm -rf bin build
