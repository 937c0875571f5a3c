#!/usr/bin/env bash
# Runs the benchmarks and prints them as a table. Raw output goes to
# build/bench.txt (feed it to benchstat to compare runs).
#   BENCH=regexp   which benchmarks (default: all)
#   BENCHTIME=1s   go test -benchtime
#   PKGS="./..."   which packages
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p build
bench=${BENCH:-.}
benchtime=${BENCHTIME:-1s}
pkgs=${PKGS:-./...}
go test -run '^$' -bench "$bench" -benchtime "$benchtime" -benchmem -count 1 -timeout 60m $pkgs | tee build/bench.txt >/dev/null
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'); $(go version | cut -d' ' -f3); $(date -u +%Y-%m-%d)"
awk '
/^pkg:/ { pkg=$2; sub(/.*shardwork\/shardwork\//, "", pkg) }
/^Benchmark/ {
	name=$1; sub(/-[0-9]+$/, "", name)
	line=sprintf("%-14s %-58s", pkg, name)
	for (i = 3; i < NF; i += 2) {
		unit=$(i+1)
		if (unit == "ns/op" || unit == "B/op") continue
		line=line sprintf("  %s %s", $i, unit)
	}
	print line
}
/^(FAIL|panic:|--- FAIL)/ { print; failed=1 }
END { exit failed }
' build/bench.txt
