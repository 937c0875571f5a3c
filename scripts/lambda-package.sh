#!/usr/bin/env bash
# Adds the example plugins and their precompiled compilation cache to a Lambda
# package directory that already holds its bootstrap.
#   lambda-package.sh DIR ARCH HOST_ARCH
# Plugins go to DIR/plugins/<name>.wasm. The compilation cache (DIR/plugin-cache)
# is made by the package's own bootstrap (`bootstrap compile-plugins`), so it
# matches the bootstrap's wazero version; wazero compiles for the machine it
# runs on, so the cache is made only when ARCH is this machine's architecture.
# Without a cache the function compiles its plugins into /tmp at cold start.
set -euo pipefail
dir=$1 arch=$2 host=$3
cd "$(dirname "$0")/.."
if [ ! -d plugins/examples ] || [ ! -d plugins/host ]; then
	exit 0
fi
mkdir -p "$dir/plugins"
for p in plugins/examples/*/; do
	name=$(basename "$p")
	[ -f "$p/main.go" ] || continue
	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -o "$dir/plugins/$name.wasm" "./$p"
done
if [ "$arch" = "$host" ]; then
	"$dir/bootstrap" compile-plugins "$dir/plugin-cache" "$dir"/plugins/*.wasm
fi
# Lambda runs the function as another user than the one who unpacked it:
# everything must be readable by all (wazero writes its cache owner-only).
chmod -R a+rX "$dir"
