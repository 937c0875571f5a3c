# syntax=docker/dockerfile:1
# The shardwork worker: a static binary and the example plugins
# (precompiled into the plugin cache) on a distroless base, running as a
# non-root user.
#
#   docker build -t shardwork-worker .
#   docker run --rm -v $PWD/worker.yaml:/etc/shardwork/worker.yaml:ro -p 9090:9090 shardwork-worker

FROM golang:1.26-bookworm AS build
# rustc with the wasm32 target builds the Rust example plugin.
RUN apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends rustc libstd-rust-dev-wasm32 lld >/dev/null \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=
# The same make targets as CI and local builds.
RUN make worker plugins VERSION="${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo devel)}" \
 && mkdir -p /out/plugins /out/cache \
 && cp build/plugins/*.wasm /out/plugins/ \
 && bin/worker plugin compile --plugin-cache-dir /out/cache /out/plugins/*.wasm

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /src/bin/worker /usr/local/bin/worker
COPY --from=build /out/plugins/ /plugins/
COPY --from=build --chown=65532:65532 /out/cache/ /var/cache/shardwork/plugins/
ENV SHARDWORK_PLUGIN_CACHE_DIR=/var/cache/shardwork/plugins \
    SHARDWORK_LISTEN=:9090 \
    SHARDWORK_LOG_FORMAT=json
USER 65532:65532
EXPOSE 9090
ENTRYPOINT ["/usr/local/bin/worker"]
CMD ["run", "--config", "/etc/shardwork/worker.yaml"]
