#!/usr/bin/env bash
# Runs every floe test; `make test` calls it and so does CI (.ci/run).
#
#   1. localstack/start.sh: MinIO and etcd on loopback (installed if missing)
#   2. go vet ./...
#   3. go test -race -count=1 -timeout 30m ./...  (with FLOE_TEST_* from the
#      localstack env file and FLOE_TEST_REQUIRE_LOCALSTACK=1)
#   3b. go test ./agent/ again with every client over SASL_SSL
#   4. every tests/*.sh (see tests/README.md)
#   5. scripts/check-deploy.sh: the Dockerfile's build, the compose file and
#      the Kubernetes manifests (no Docker or cluster needed)
#   5b. scripts/fuzz.sh: every fuzz target for a short time
#   6. localstack/stop.sh --clean, also on failure or interrupt
#
# Every step runs even when an earlier one failed; the script exits non-zero
# if any failed and ends with one line: "summary: N passed, N failed, N skipped".
#
# Environment:
#   FLOE_TEST_LONG=1             long modes for tests that have them (passed
#                                through); go test timeout becomes 120m
#   FLOE_TEST_GO_TIMEOUT=DUR     go test -timeout (default 30m, 120m when long)
#   FLOE_TEST_SHELL_TIMEOUT=SEC  per shell test limit (default 900, 3600 when long)
#   FLOE_TEST_RACE=0             run go test without -race
#   FLOE_TEST_KEEP_LOCALSTACK=1  leave MinIO and etcd running afterwards
#   FLOE_TEST_PKGS="./x/..."     packages for go vet and go test (default ./...)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=localstack/lib.sh
source "$ROOT/localstack/lib.sh"

export FLOE_TEST_LONG="${FLOE_TEST_LONG:-0}"
if [[ $FLOE_TEST_LONG == 1 ]]; then
	GO_TIMEOUT="${FLOE_TEST_GO_TIMEOUT:-120m}"
	SHELL_TIMEOUT="${FLOE_TEST_SHELL_TIMEOUT:-3600}"
else
	GO_TIMEOUT="${FLOE_TEST_GO_TIMEOUT:-30m}"
	SHELL_TIMEOUT="${FLOE_TEST_SHELL_TIMEOUT:-900}"
fi
read -r -a PKGS <<<"${FLOE_TEST_PKGS:-./...}"
LOG_DIR="$ROOT/.cache/test"
mkdir -p "$LOG_DIR"

started_at=$SECONDS
passed=0
failed=0
skipped=0
failures=()

step() { printf '\n==> %s\n' "$*"; }
fail() {
	failures+=("$1")
	printf 'test: FAILED: %s\n' "$1" >&2
}
summary() {
	printf '\n'
	if ((${#failures[@]})); then
		printf 'test: failed steps:\n'
		printf '  - %s\n' "${failures[@]}"
	fi
	printf 'test: took %ss; logs in %s\n' "$((SECONDS - started_at))" "${LOG_DIR#"$ROOT"/}"
	printf 'summary: %d passed, %d failed, %d skipped\n' "$passed" "$failed" "$skipped"
}

# ---- localstack ---------------------------------------------------------

localstack_was_running=0
if ls_running; then
	localstack_was_running=1
fi
localstack_stopped=0
stop_localstack() {
	((localstack_stopped)) && return 0
	localstack_stopped=1
	if [[ ${FLOE_TEST_KEEP_LOCALSTACK:-0} == 1 ]]; then
		ls_say "leaving MinIO and etcd running (FLOE_TEST_KEEP_LOCALSTACK=1); stop with localstack/stop.sh"
	elif ((localstack_was_running)); then
		ls_say "leaving MinIO and etcd running: they were running before make test; stop with localstack/stop.sh"
	else
		"$ROOT/localstack/stop.sh" --clean || printf 'test: WARNING: localstack/stop.sh failed\n' >&2
	fi
}
trap stop_localstack EXIT
trap 'printf "\ntest: interrupted\n" >&2; exit 130' INT TERM

step "localstack: MinIO and etcd"
if ! "$ROOT/localstack/start.sh"; then
	fail "localstack/start.sh could not start MinIO and etcd (see its message above)"
	failed=$((failed + 1))
	stop_localstack
	summary
	exit 1
fi
# shellcheck source=/dev/null
source "$LS_ENV_FILE"
export FLOE_TEST_REQUIRE_LOCALSTACK=1

# ---- toolchain for -race ----------------------------------------------

RACE=(-race)
if [[ ${FLOE_TEST_RACE:-1} == 0 ]]; then
	RACE=()
elif ! command -v "$(go env CC)" >/dev/null 2>&1; then
	step "installing gcc (go test -race needs cgo)"
	if LS_APT_LOG="$LOG_DIR/apt.log" ls_apt_install gcc libc6-dev; then
		echo "installed gcc"
	else
		ls_tail_log "$LOG_DIR/apt.log"
		fail "no C compiler for go test -race and apt-get could not install gcc (set FLOE_TEST_RACE=0 to test without -race)"
		failed=$((failed + 1))
		summary
		exit 1
	fi
fi
if ((${#RACE[@]})); then
	export CGO_ENABLED=1
fi

# ---- kcat ---------------------------------------------------------------

# librdkafka's kcat: Go tests (agent/group_kcat_test.go) and shell tests
# run it, so it is installed before either.
if ! command -v kcat >/dev/null 2>&1; then
	step "installing kcat with apt-get"
	if LS_APT_LOG="$LOG_DIR/apt.log" ls_apt_install kcat; then
		echo "installed kcat"
	else
		ls_tail_log "$LOG_DIR/apt.log"
		fail "could not install kcat with apt-get"
		failed=$((failed + 1))
	fi
fi

# ---- go vet -------------------------------------------------------------

step "go vet ${PKGS[*]}"
if go vet "${PKGS[@]}"; then
	echo "ok"
else
	fail "go vet ${PKGS[*]}"
	failed=$((failed + 1))
fi

# ---- go test ------------------------------------------------------------

step "go test ${RACE[*]} -count=1 -timeout $GO_TIMEOUT ${PKGS[*]}"
gotest_log="$LOG_DIR/go-test.log"
# -v so every test's result is in the log and can be counted; the console
# shows what plain go test would, plus each test's output.
set +e
go test "${RACE[@]}" -count=1 -timeout "$GO_TIMEOUT" -v "${PKGS[@]}" 2>&1 |
	tee "$gotest_log" |
	grep --line-buffered -vE '^=== (RUN|PAUSE|CONT|NAME)|^ *--- PASS: '
gotest_rc=${PIPESTATUS[0]}
set -e
count() { grep -cE "$1" "$gotest_log" || true; }
go_passed=$(count '^ *--- PASS: ')
go_failed=$(count '^ *--- FAIL: ')
go_skipped=$(count '^ *--- SKIP: ')
if ((gotest_rc != 0 && go_failed == 0)); then
	# Build failures, panics and timeouts fail a package without a
	# "--- FAIL" line; count each failed package once.
	go_failed=$(count '^FAIL[[:space:]]')
	((go_failed > 0)) || go_failed=1
fi
passed=$((passed + go_passed))
failed=$((failed + go_failed))
skipped=$((skipped + go_skipped))
echo "go test: $go_passed passed, $go_failed failed, $go_skipped skipped (log: ${gotest_log#"$ROOT"/})"
if ((gotest_rc != 0)); then
	fail "go test (exit $gotest_rc; failing tests: grep -- '--- FAIL' ${gotest_log#"$ROOT"/})"
fi

# ---- the protocol suite over SASL_SSL -----------------------------------

# The agent's protocol tests again, every client over a SASL_SSL listener
# with SCRAM-SHA-512 and ACLs enforced (agent/agent_test.go: secureMode).
step "go test ${RACE[*]} ./agent/ over SASL_SSL (FLOE_TEST_SECURITY=sasl_ssl)"
securetest_log="$LOG_DIR/go-test-sasl-ssl.log"
set +e
FLOE_TEST_SECURITY=sasl_ssl go test "${RACE[@]}" -count=1 -timeout "$GO_TIMEOUT" -v ./agent/ 2>&1 |
	tee "$securetest_log" |
	grep --line-buffered -vE '^=== (RUN|PAUSE|CONT|NAME)|^ *--- PASS: '
securetest_rc=${PIPESTATUS[0]}
set -e
s_passed=$(grep -cE '^ *--- PASS: ' "$securetest_log" || true)
s_failed=$(grep -cE '^ *--- FAIL: ' "$securetest_log" || true)
s_skipped=$(grep -cE '^ *--- SKIP: ' "$securetest_log" || true)
if ((securetest_rc != 0 && s_failed == 0)); then
	s_failed=1
fi
passed=$((passed + s_passed))
failed=$((failed + s_failed))
skipped=$((skipped + s_skipped))
echo "go test over SASL_SSL: $s_passed passed, $s_failed failed, $s_skipped skipped (log: ${securetest_log#"$ROOT"/})"
if ((securetest_rc != 0)); then
	fail "go test ./agent/ over SASL_SSL (grep -- '--- FAIL' ${securetest_log#"$ROOT"/})"
fi

# ---- shell tests --------------------------------------------------------

shopt -s nullglob
shell_tests=()
for t in "$ROOT"/tests/*.sh; do
	# tests/lib.sh holds helpers the tests source; it is not a test.
	[[ $(basename "$t") == lib.sh ]] || shell_tests+=("$t")
done
shopt -u nullglob
step "shell tests: ${#shell_tests[@]} in tests/"
if ((${#shell_tests[@]})); then
	export FLOE_REPO_ROOT="$ROOT"
	if [[ -d $ROOT/cmd/floe ]]; then
		echo "building bin for shell tests: go build -o .cache/test/bin/floe ./cmd/floe"
		if go build -o "$LOG_DIR/bin/floe" ./cmd/floe; then
			export FLOE_BIN="$LOG_DIR/bin/floe"
		else
			fail "go build ./cmd/floe (needed by shell tests)"
			failed=$((failed + 1))
		fi
	fi
	for t in "${shell_tests[@]}"; do
		name="tests/$(basename "$t")"
		log="$LOG_DIR/$(basename "$t" .sh).log"
		if [[ ! -x $t ]]; then
			echo "--- FAIL: $name is not executable (chmod +x $name)"
			fail "$name is not executable"
			failed=$((failed + 1))
			continue
		fi
		echo "=== RUN   $name"
		tmp="$(mktemp -d "${TMPDIR:-/tmp}/floe-shell-test.XXXXXX")"
		t0=$SECONDS
		set +e
		(cd "$ROOT" && FLOE_TEST_TMPDIR="$tmp" timeout --kill-after=30 "$SHELL_TIMEOUT" "$t") </dev/null 2>&1 | tee "$log"
		rc=${PIPESTATUS[0]}
		set -e
		rm -rf "$tmp"
		if ((rc == 0)); then
			echo "--- PASS: $name ($((SECONDS - t0))s)"
			passed=$((passed + 1))
		else
			reason="exit $rc"
			((rc == 124 || rc == 137)) && reason="timed out after ${SHELL_TIMEOUT}s"
			echo "--- FAIL: $name ($reason, $((SECONDS - t0))s; log: ${log#"$ROOT"/})"
			fail "$name ($reason)"
			failed=$((failed + 1))
		fi
	done
else
	echo "none"
fi

# ---- deployment files ---------------------------------------------------

step "deployment files: scripts/check-deploy.sh"
if "$ROOT/scripts/check-deploy.sh"; then
	passed=$((passed + 1))
else
	fail "scripts/check-deploy.sh (Dockerfile, docker-compose.yml, deploy/kubernetes)"
	failed=$((failed + 1))
fi

# ---- fuzzing ------------------------------------------------------------

# Every fuzz target for a short time (10s each, 60s with FLOE_TEST_LONG=1).
step "fuzz targets: scripts/fuzz.sh"
# (pipefail: the step fails when fuzz.sh does.)
if "$ROOT/scripts/fuzz.sh" 2>&1 | tee "$LOG_DIR/fuzz.log"; then
	passed=$((passed + 1))
else
	fail "scripts/fuzz.sh (failing inputs in <pkg>/testdata/fuzz/; log: ${LOG_DIR#"$ROOT"/}/fuzz.log)"
	failed=$((failed + 1))
fi

# ---- done ---------------------------------------------------------------

step "stopping localstack"
stop_localstack
summary
((${#failures[@]} == 0))
