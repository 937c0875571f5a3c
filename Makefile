# shardwork — the two commands are `make demo` and `make test`.
GO        ?= go
NPM       ?= npm
KINESALITE_DIR := tests/kinesalite
KINESALITE := $(KINESALITE_DIR)/node_modules/.bin/kinesalite
FUZZTIME  ?= 5s
GOTEST_FLAGS ?= -race -count=1 -timeout 20m

.PHONY: all build deps test unit e2e fuzz bench demo plugins vet clean worker

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)

all: build

build:
	$(GO) build ./...

# The worker as a static binary (bin/worker), as the Dockerfile builds it.
worker:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w -X main.version=$(VERSION)" -o bin/worker ./cmd/worker

# The example plugins: plugins/examples/<name>/<name>.wasm.
plugins:
	@for d in plugins/examples/*/; do n=$$(basename $$d); \
		echo "GOOS=wasip1 GOARCH=wasm $(GO) build -buildmode=c-shared -o $$d$$n.wasm ./$$d"; \
		GOOS=wasip1 GOARCH=wasm $(GO) build -trimpath -buildmode=c-shared -o $$d$$n.wasm ./$$d || exit 1; \
	done

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
