#!/usr/bin/env bash
# Runs every Fuzz* target in the module briefly. $1 is the budget per target
# (default 20000x: a count of executions, which unlike a duration has no
# wall-clock deadline for Go's fuzzing coordinator to race on a loaded
# machine). A failure that writes a failing input fails the run at once; a
# failure that writes none (a coordinator shutdown race, not a finding) is
# retried once.
set -euo pipefail
budget=${1:-20000x}
cd "$(dirname "$0")/.."
found=0
run_target() { # pkg fn
	go test -run '^$' -fuzz "^$2\$" -fuzztime "$budget" -fuzzminimizetime 2000x "$1"
}
count_inputs() { # pkg fn
	{ find "$1/testdata/fuzz/$2" -type f 2>/dev/null || true; } | wc -l
}
while IFS= read -r file; do
	pkg="./$(dirname "$file")"
	while IFS= read -r fn; do
		found=$((found + 1))
		echo "fuzz $pkg $fn ($budget)"
		before=$(count_inputs "$pkg" "$fn")
		if run_target "$pkg" "$fn"; then
			continue
		fi
		if [ "$(count_inputs "$pkg" "$fn")" != "$before" ]; then
			echo "fuzz: $pkg $fn found a failing input (in $pkg/testdata/fuzz/$fn)" >&2
			exit 1
		fi
		echo "fuzz: $pkg $fn failed without a failing input; running it again" >&2
		run_target "$pkg" "$fn"
	done < <(grep -oE '^func (Fuzz[A-Za-z0-9_]+)\(' "$file" | sed -E 's/^func (Fuzz[A-Za-z0-9_]+)\(/\1/')
done < <(git ls-files '*_test.go' 2>/dev/null || find . -name '*_test.go')
echo "fuzz: $found targets run"
