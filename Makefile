# shardwork — the two commands are `make demo` and `make test`.
GO        ?= go
NPM       ?= npm
KINESALITE_DIR := tests/kinesalite
KINESALITE := $(KINESALITE_DIR)/node_modules/.bin/kinesalite
FUZZTIME  ?= 20000x
GOTEST_FLAGS ?= -race -count=1 -timeout 20m

.PHONY: all build deps test unit e2e e2e-full fuzz bench demo demo-processors plugins vet clean lambda build-ConsumerFunction build-ProducerFunction worker

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)

all: build

build:
	$(GO) build ./...

# The worker as a static binary (bin/worker), as the Dockerfile builds it.
worker:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w -X main.version=$(VERSION)" -o bin/worker ./cmd/worker

# Local Kinesis (kinesalite, pinned by package-lock.json) for tests and the demo.
deps: $(KINESALITE)

$(KINESALITE): $(KINESALITE_DIR)/package.json $(KINESALITE_DIR)/package-lock.json
	cd $(KINESALITE_DIR) && $(NPM) ci --no-audit --no-fund
	@touch $(KINESALITE)

vet:
	$(GO) vet ./...

# The whole suite: unit, end-to-end (real kinesalite and Redis, started by the
# harness) and a short run of every fuzz target.
test: deps plugins vet
	$(GO) test $(GOTEST_FLAGS) ./...
	$(MAKE) e2e-full
	$(MAKE) fuzz

# The seed's full shape: 50,000 items of ~1 KB through every processor into a
# 1-shard stream, read back exactly once in order per key (the -race run
# above uses 10,000).
e2e-full: deps
	SHARDWORK_E2E_ITEMS=50000 $(GO) test -count=1 -timeout 20m -run '^TestProducerRoundTripEveryProcessor$$' ./tests/

# Runs each fuzz target for FUZZTIME (a count of executions, or a duration).
fuzz:
	@./scripts/fuzz.sh $(FUZZTIME)

bench: deps
	@./scripts/bench.sh

# WebAssembly example plugins into build/plugins: the Go ones with
# GOOS=wasip1, the Rust one with a rustc that has the wasm32 target
# (Debian: apt-get install -y rustc libstd-rust-dev-wasm32 lld).
RUSTC ?= $(shell [ -x /usr/bin/rustc ] && echo /usr/bin/rustc || echo rustc)
GO_PLUGINS := kpl msgpack enrich
plugins:
	@mkdir -p build/plugins
	@for p in $(GO_PLUGINS); do \
		echo "plugin $$p (go, wasip1)"; \
		GOOS=wasip1 GOARCH=wasm $(GO) build -buildmode=c-shared -trimpath -o build/plugins/$$p.wasm ./plugins/examples/$$p || exit 1; \
	done
	@[ -d "$$($(RUSTC) --print sysroot 2>/dev/null)/lib/rustlib/wasm32-unknown-unknown" ] || \
		{ echo "plugins: $(RUSTC) has no wasm32-unknown-unknown target; install it with: apt-get install -y rustc libstd-rust-dev-wasm32 lld" >&2; exit 1; }
	@echo "plugin upper (rust, wasm32-unknown-unknown)"
	@$(RUSTC) --target wasm32-unknown-unknown --crate-type cdylib --edition 2021 -C opt-level=s -C panic=abort -C strip=symbols \
		-o build/plugins/upper.wasm plugins/examples-rust/upper/upper.rs
	@ls -l build/plugins/*.wasm

# The worker end to end: builds it and the example plugins, starts
# kinesalite, produces through a WebAssembly serializer/aggregator, runs a
# pipeline with the enrich handler plugin into an output stream, prints a
# summary and cleans up.
demo: deps
	$(GO) run ./tests/worker/demo

# Every native processor: a sample data set into kinesalite and back.
demo-processors: deps
	$(GO) run ./tests/demo

# Lambda: one bootstrap (provided.al2023) per architecture, with the example
# plugins and their precompiled compilation cache (for another architecture
# than this machine's made under qemu user-mode emulation when installed),
# zipped for deployment into build/lambda/<arch>.zip.
LAMBDA_ARCHES ?= arm64 amd64
LAMBDA_ARCH   ?= arm64
LAMBDA_GOFLAGS := -tags lambda.norpc -trimpath -ldflags='-s -w'
HOST_ARCH := $(shell $(GO) env GOARCH)

lambda: $(addprefix lambda-,$(LAMBDA_ARCHES))

lambda-%:
	rm -rf build/lambda/$*
	mkdir -p build/lambda/$*
	CGO_ENABLED=0 GOOS=linux GOARCH=$* $(GO) build $(LAMBDA_GOFLAGS) -o build/lambda/$*/bootstrap ./cmd/lambda
	./scripts/lambda-package.sh build/lambda/$* $* $(HOST_ARCH)
	cd build/lambda/$* && rm -f ../$*.zip && zip -qr ../$*.zip .
	@echo "build/lambda/$*.zip"

# `sam build` runs these (BuildMethod: makefile) with ARTIFACTS_DIR set.
build-ConsumerFunction build-ProducerFunction:
	CGO_ENABLED=0 GOOS=linux GOARCH=$(LAMBDA_ARCH) $(GO) build $(LAMBDA_GOFLAGS) -o $(ARTIFACTS_DIR)/bootstrap ./cmd/lambda
	./scripts/lambda-package.sh $(ARTIFACTS_DIR) $(LAMBDA_ARCH) $(HOST_ARCH)

clean:
	rm -rf bin build
