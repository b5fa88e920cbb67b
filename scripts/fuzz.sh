#!/usr/bin/env bash
# Runs every Go fuzz target in the repository for a short time;
# scripts/test.sh runs it as one step.
#
# Targets are found by their declarations (func FuzzXxx(f *testing.F) in
# *_test.go files), so a new fuzz target runs without editing this script.
# `go test -fuzz` takes one target per invocation, so each gets its own,
# with its seed corpus plus the inputs cached in $(go env GOCACHE)/fuzz from
# earlier runs.
#
# A target that fails (a panic, or its own check) writes the input that did
# it to PKG/testdata/fuzz/TARGET/, which `go test` then replays as a
# regular test until the bug is fixed: commit that file with the fix.
#
# Environment:
#   FLOE_FUZZ_TIME=DUR     fuzzing time per target (default 10s; 60s with
#                          FLOE_TEST_LONG=1)
#   FLOE_FUZZ_MINIMIZE=DUR time to minimize a failing input (default 2s)
#   FLOE_FUZZ_MATCH=RE     only targets whose "pkg/dir.FuzzName" matches RE
#   FLOE_TEST_LONG=1       the longer default time
#
# Exits non-zero if any target failed; the last line is
# "fuzz: N targets, N passed, N failed".
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

if [[ ${FLOE_TEST_LONG:-0} == 1 ]]; then
	FUZZ_TIME="${FLOE_FUZZ_TIME:-60s}"
else
	FUZZ_TIME="${FLOE_FUZZ_TIME:-10s}"
fi
MINIMIZE="${FLOE_FUZZ_MINIMIZE:-2s}"
MATCH="${FLOE_FUZZ_MATCH:-.}"

# targets: "dir name" per line, sorted, skipping .cache and vendored code.
mapfile -t targets < <(
	grep -rE --include='*_test.go' --exclude-dir=.cache --exclude-dir=vendor --exclude-dir=testdata \
		'^func Fuzz[A-Za-z0-9_]*\(f \*testing\.F\)' . |
		sed -E 's|^\./(.*)/[^/]*_test\.go:func (Fuzz[A-Za-z0-9_]*)\(.*|\1 \2|' |
		sort -u |
		while read -r dir name; do
			if [[ "$dir.$name" =~ $MATCH ]]; then
				printf '%s %s\n' "$dir" "$name"
			fi
		done
)
if ((${#targets[@]} == 0)); then
	printf 'fuzz: FAILED: no fuzz targets found (FLOE_FUZZ_MATCH=%s)\n' "$MATCH" >&2
	exit 1
fi

printf 'fuzz: %d targets, %s each (-fuzzminimizetime=%s)\n' "${#targets[@]}" "$FUZZ_TIME" "$MINIMIZE"
passed=0
failed=0
failures=()
t_all=$SECONDS
# corpus DIR NAME: the files of a target's committed corpus, one per line.
corpus() { ls -1 "$1/testdata/fuzz/$2" 2>/dev/null || true; }

for t in "${targets[@]}"; do
	read -r dir name <<<"$t"
	log="$(mktemp "${TMPDIR:-/tmp}/floe-fuzz.XXXXXX")"
	before="$(corpus "$dir" "$name")"
	t0=$SECONDS
	# -run '^$': the package's other tests already ran in go test ./...
	if go test -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZ_TIME" -fuzzminimizetime "$MINIMIZE" \
		-timeout 30m "./$dir" >"$log" 2>&1; then
		rc=0
	else
		rc=$?
	fi
	execs="$(grep -oE 'execs: [0-9]+' "$log" | tail -n 1 | cut -d' ' -f2 || true)"
	if ((rc == 0)); then
		printf 'fuzz: ok   %s.%s (%ss, %s execs)\n' "$dir" "$name" "$((SECONDS - t0))" "${execs:-?}"
		passed=$((passed + 1))
	elif [[ "$(corpus "$dir" "$name")" == "$before" ]] && grep -q '^    context deadline exceeded$' "$log" &&
		! grep -qE 'Failing input written|panic:' "$log"; then
		# Go before 1.27 can report the end of -fuzztime itself as a
		# failure when a worker is mid-call (go.dev/issue/75804): no
		# input failed and none was written. The time was fuzzed.
		printf 'fuzz: ok   %s.%s (%ss, %s execs; go test reported its own -fuzztime deadline, go.dev/issue/75804, no failing input)\n' \
			"$dir" "$name" "$((SECONDS - t0))" "${execs:-?}"
		passed=$((passed + 1))
	else
		printf 'fuzz: FAIL %s.%s (%ss)\n' "$dir" "$name" "$((SECONDS - t0))"
		sed 's/^/    /' "$log" | tail -n 60
		failed=$((failed + 1))
		failures+=("$dir.$name")
	fi
	rm -f "$log"
done

if ((failed)); then
	printf 'fuzz: failing inputs are in <pkg>/testdata/fuzz/<target>/; go test -run <target>/<file> ./<pkg> replays one\n'
	printf 'fuzz: failed: %s\n' "${failures[*]}"
fi
printf 'fuzz: %d targets, %d passed, %d failed in %ss\n' "${#targets[@]}" "$passed" "$failed" "$((SECONDS - t_all))"
((failed == 0))
