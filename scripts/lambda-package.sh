#!/usr/bin/env bash
# Adds the example plugins and their precompiled compilation cache to a Lambda
# package directory that already holds its bootstrap.
#   lambda-package.sh DIR ARCH HOST_ARCH
# Plugins go to DIR/plugins/<name>.wasm. The compilation cache (DIR/plugin-cache)
# is made by the package's own bootstrap (`bootstrap compile-plugins`), so it
# matches the bootstrap's wazero version. wazero compiles for the machine it
# runs on: for another ARCH the bootstrap runs under qemu user-mode emulation
# (qemu-aarch64-static or qemu-aarch64 for arm64, qemu-x86_64[-static] for
# amd64; Debian: apt-get install qemu-user-static). Without qemu the package
# is made without a cache, with a warning, and the function compiles its
# plugins into /tmp at cold start.
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
else
	case $arch in
	arm64) qarch=aarch64 ;;
	amd64) qarch=x86_64 ;;
	*) qarch=$arch ;;
	esac
	qemu=$(command -v "qemu-$qarch-static" || command -v "qemu-$qarch" || true)
	if [ -n "$qemu" ]; then
		"$qemu" "$dir/bootstrap" compile-plugins "$dir/plugin-cache" "$dir"/plugins/*.wasm
	else
		echo "WARNING: qemu-$qarch-static / qemu-$qarch not found: the $arch package ships no plugin" \
			"compilation cache and compiles its plugins at cold start (2-4 s)." \
			"Install qemu user-mode emulation (Debian: apt-get install qemu-user-static) to precompile them." >&2
	fi
fi
# Lambda runs the function as another user than the one who unpacked it:
# everything must be readable by all (wazero writes its cache owner-only).
chmod -R a+rX "$dir"
