#!/usr/bin/env bash
# Starts the services floe's tests run against, on loopback, without Docker:
#
#   etcd    http://127.0.0.1:23790   (peer port 23800)
#   MinIO   127.0.0.1:19100          (S3 API; console on 19101), bucket floe-test
#
# waits until both are healthy, creates the test bucket, and writes
# .cache/localstack/env, which exports the FLOE_TEST_* variables tests read:
#
#   . .cache/localstack/env && go test ./...
#
# Idempotent: services already running (pid files in .cache/localstack/) are
# reused. Stop them with localstack/stop.sh. Ports and credentials can be
# changed with FLOE_LOCALSTACK_* variables (see localstack/lib.sh).
#
# What it installs when missing, into places it owns or via apt:
#   MinIO  go install github.com/minio/minio@<pinned> into .cache/localstack/bin
#          (about 3 minutes the first time; MinIO is AGPL and only ever run
#          as a separate program)
#   etcd   `etcd` from PATH, else Debian's etcd-server package, else floe's
#          embedded etcd (`floe etcd`)
set -euo pipefail

# shellcheck source=localstack/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ETCD_START_TIMEOUT="${FLOE_LOCALSTACK_ETCD_TIMEOUT:-60}"
MINIO_START_TIMEOUT="${FLOE_LOCALSTACK_MINIO_TIMEOUT:-120}"
MINIO="$LS_BIN/minio"
MINIO_STAMP="$LS_BIN/minio.version"

mkdir -p "$LS_DIR" "$LS_BIN"

# One start.sh at a time. The lock's descriptor is closed for the services
# (9>&- below), so it is released when this script exits.
if command -v flock >/dev/null 2>&1; then
	exec 9>"$LS_DIR/lock"
	if ! flock -w 600 9; then
		ls_die "another localstack/start.sh has held $LS_DIR/lock for 10 minutes"
	fi
fi

started_at=$SECONDS

# wait_healthy NAME PIDFILE LOG TIMEOUT CHECK: polls CHECK until it succeeds;
# fails with the log's tail when the process dies or the time runs out.
wait_healthy() {
	local name="$1" pidfile="$2" log="$3" timeout="$4" check="$5"
	local deadline=$((SECONDS + timeout))
	until "$check"; do
		if ! ls_pid_alive "$pidfile"; then
			ls_tail_log "$log"
			ls_die "$name exited during startup (log: $log)"
		fi
		if ((SECONDS >= deadline)); then
			ls_tail_log "$log"
			ls_die "$name did not become healthy within ${timeout}s (log: $log; stop with localstack/stop.sh)"
		fi
		sleep 0.25
	done
}

# launch PIDFILE LOG CMD...: starts CMD detached (own session, no stdin, no
# lock descriptor), logging to LOG, and records its pid.
launch() {
	local pidfile="$1" log="$2"
	shift 2
	(cd "$LS_DIR" && exec setsid nohup "$@") </dev/null >"$log" 2>&1 9>&- &
	echo $! >"$pidfile"
}

# check_port PORT WHAT VAR: fails when a foreign process holds PORT.
check_port() {
	if ls_port_in_use "$1"; then
		ls_die "port $LS_HOST:$1 ($2) is already in use by a process localstack did not start; stop it or set $3 to another port"
	fi
}

# ---- etcd -------------------------------------------------------------

ETCD_KIND=""
ETCD_VERSION=""
ETCD_CMD=()

# pick_etcd sets ETCD_KIND and ETCD_CMD: etcd from PATH, else Debian's
# etcd-server, else floe's embedded etcd.
pick_etcd() {
	local etcd=""
	case "$LS_ETCD_MODE" in
	auto | system)
		etcd="$(command -v etcd || true)"
		if [[ -z $etcd ]]; then
			ls_say "etcd not found on PATH; installing Debian's etcd-server with apt-get (log: $LS_DIR/etcd-install.log)"
			: >"$LS_DIR/etcd-install.log"
			if LS_APT_LOG="$LS_DIR/etcd-install.log" ls_apt_install etcd-server; then
				etcd="$(command -v etcd || true)"
				if [[ -z $etcd && -x /usr/bin/etcd ]]; then
					etcd=/usr/bin/etcd
				fi
			fi
			if [[ -z $etcd ]]; then
				if [[ $LS_ETCD_MODE == system ]]; then
					ls_tail_log "$LS_DIR/etcd-install.log"
					ls_die "could not install etcd-server with apt-get (FLOE_LOCALSTACK_ETCD=system)"
				fi
				ls_warn "could not install etcd-server with apt-get; falling back to floe's embedded etcd"
			fi
		fi
		;;
	embedded) ;;
	*) ls_die "FLOE_LOCALSTACK_ETCD must be auto, system or embedded, not '$LS_ETCD_MODE'" ;;
	esac

	if [[ -n $etcd ]]; then
		ETCD_KIND="system"
		ETCD_VERSION="$("$etcd" --version 2>/dev/null | sed -n 's/^etcd Version: *//p' | head -n 1)"
		ETCD_CMD=(
			"$etcd"
			--name=floe-localstack
			--data-dir="$LS_ETCD_DATA"
			--listen-client-urls="$LS_ETCD_URL"
			--advertise-client-urls="$LS_ETCD_URL"
			--listen-peer-urls="$LS_ETCD_PEER_URL"
			--initial-advertise-peer-urls="$LS_ETCD_PEER_URL"
			--initial-cluster="floe-localstack=$LS_ETCD_PEER_URL"
			--initial-cluster-state=new
			--max-txn-ops=2048
			--max-request-bytes=8388608
			--quota-backend-bytes=8589934592
			--auto-compaction-mode=periodic
			--auto-compaction-retention=5m
			--unsafe-no-fsync
			--log-level=error
		)
		# etcd 3.4 (Debian bookworm) logs with capnslog unless told
		# otherwise, and capnslog ignores --log-level.
		if [[ $ETCD_VERSION == 3.4.* || $ETCD_VERSION == 3.3.* ]]; then
			ETCD_CMD+=(--logger=zap)
		fi
		return
	fi

	# Fallback: floe's own embedded etcd (go.etcd.io/etcd/server/v3/embed),
	# built once into the cache so the pid file names the real server.
	if [[ ! -d $LS_ROOT/cmd/floe ]]; then
		ls_die "no etcd: not on PATH, apt-get could not install etcd-server, and $LS_ROOT/cmd/floe does not exist for the embedded fallback"
	fi
	ls_say "building floe for its embedded etcd (go build ./cmd/floe)"
	if ! (cd "$LS_ROOT" && GOFLAGS=-buildvcs=false go build -o "$LS_BIN/floe-etcd" ./cmd/floe) >"$LS_DIR/etcd-install.log" 2>&1; then
		ls_tail_log "$LS_DIR/etcd-install.log"
		ls_die "could not build ./cmd/floe for the embedded etcd fallback"
	fi
	ETCD_KIND="embedded"
	ETCD_VERSION="floe etcd"
	ETCD_CMD=("$LS_BIN/floe-etcd" etcd --data-dir "$LS_ETCD_DATA" --listen "$LS_HOST:$LS_ETCD_PORT")
}

start_etcd() {
	if ls_pid_alive "$LS_ETCD_PID"; then
		local url
		url="$(cat "$LS_DIR/etcd.url" 2>/dev/null || true)"
		if [[ $url != "$LS_ETCD_URL" ]]; then
			ls_die "etcd is already running (pid $(cat "$LS_ETCD_PID")) at ${url:-an unknown address}, not $LS_ETCD_URL; run localstack/stop.sh first"
		fi
		wait_healthy etcd "$LS_ETCD_PID" "$LS_ETCD_LOG" "$ETCD_START_TIMEOUT" ls_etcd_healthy
		ls_say "etcd already running (pid $(cat "$LS_ETCD_PID")); reusing it"
		return
	fi
	check_port "$LS_ETCD_PORT" "etcd client" FLOE_LOCALSTACK_ETCD_PORT
	pick_etcd
	if [[ $ETCD_KIND == system ]]; then
		check_port "$LS_ETCD_PEER_PORT" "etcd peer" FLOE_LOCALSTACK_ETCD_PEER_PORT
	fi
	mkdir -p "$LS_ETCD_DATA"
	chmod 700 "$LS_ETCD_DATA"
	printf '%s\n' "$ETCD_KIND ${ETCD_VERSION:-unknown version}" >"$LS_DIR/etcd.kind"
	printf '%s\n' "$LS_ETCD_URL" >"$LS_DIR/etcd.url"
	ls_say "starting etcd ($ETCD_KIND, ${ETCD_VERSION:-unknown version}) on $LS_ETCD_URL (log: $LS_ETCD_LOG)"
	# Variables named ETCD_* would clash with the flags; drop them.
	local -a unset=()
	local v
	while IFS= read -r v; do
		unset+=(-u "$v")
	done < <(compgen -e | grep '^ETCD_' || true)
	launch "$LS_ETCD_PID" "$LS_ETCD_LOG" env "${unset[@]}" "${ETCD_CMD[@]}"
	wait_healthy etcd "$LS_ETCD_PID" "$LS_ETCD_LOG" "$ETCD_START_TIMEOUT" ls_etcd_healthy
}

# ---- MinIO ------------------------------------------------------------

install_minio() {
	if [[ -x $MINIO && "$(cat "$MINIO_STAMP" 2>/dev/null || true)" == "$LS_MINIO_VERSION" ]]; then
		return
	fi
	command -v go >/dev/null 2>&1 || ls_die "go is not on PATH; it is needed to install MinIO"
	local log="$LS_DIR/minio-install.log" tmp t0=$SECONDS
	ls_say "installing MinIO ($LS_MINIO_MODULE@$LS_MINIO_VERSION) with go install; about 3 minutes the first time (log: $log)"
	tmp="$(mktemp -d "$LS_BIN/.minio-install.XXXXXX")"
	# Outside the repo, so floe's go.mod plays no part.
	if ! (cd "$tmp" && GOBIN="$tmp" GOFLAGS=-buildvcs=false GOWORK=off CGO_ENABLED=0 \
		go install "$LS_MINIO_MODULE@$LS_MINIO_VERSION") >"$log" 2>&1; then
		rm -rf "$tmp"
		ls_tail_log "$log"
		ls_die "go install $LS_MINIO_MODULE@$LS_MINIO_VERSION failed (log: $log)"
	fi
	mv -f "$tmp/minio" "$MINIO"
	rm -rf "$tmp"
	printf '%s\n' "$LS_MINIO_VERSION" >"$MINIO_STAMP"
	ls_say "installed MinIO into $MINIO in $((SECONDS - t0))s"
}

start_minio() {
	if ls_pid_alive "$LS_MINIO_PID"; then
		local addr
		addr="$(cat "$LS_DIR/minio.addr" 2>/dev/null || true)"
		if [[ $addr != "$LS_MINIO_ADDR" ]]; then
			ls_die "MinIO is already running (pid $(cat "$LS_MINIO_PID")) at ${addr:-an unknown address}, not $LS_MINIO_ADDR; run localstack/stop.sh first"
		fi
		wait_healthy MinIO "$LS_MINIO_PID" "$LS_MINIO_LOG" "$MINIO_START_TIMEOUT" ls_minio_healthy
		ls_say "MinIO already running (pid $(cat "$LS_MINIO_PID")); reusing it"
		return
	fi
	check_port "$LS_MINIO_PORT" "MinIO API" FLOE_LOCALSTACK_MINIO_PORT
	check_port "$LS_MINIO_CONSOLE_PORT" "MinIO console" FLOE_LOCALSTACK_MINIO_CONSOLE_PORT
	install_minio
	mkdir -p "$LS_MINIO_DATA"
	printf '%s\n' "$LS_MINIO_ADDR" >"$LS_DIR/minio.addr"
	ls_say "starting MinIO on $LS_MINIO_ADDR (log: $LS_MINIO_LOG)"
	launch "$LS_MINIO_PID" "$LS_MINIO_LOG" env \
		MINIO_ROOT_USER="$LS_MINIO_ACCESS_KEY" \
		MINIO_ROOT_PASSWORD="$LS_MINIO_SECRET_KEY" \
		MINIO_UPDATE=off \
		MINIO_CI_CD=1 \
		"$MINIO" server \
		--address "$LS_MINIO_ADDR" \
		--console-address "$LS_HOST:$LS_MINIO_CONSOLE_PORT" \
		"$LS_MINIO_DATA"
	wait_healthy MinIO "$LS_MINIO_PID" "$LS_MINIO_LOG" "$MINIO_START_TIMEOUT" ls_minio_healthy
}

make_bucket() {
	local log="$LS_DIR/mkbucket.log"
	if ! (cd "$LS_ROOT" && GOFLAGS=-buildvcs=false go run ./localstack/mkbucket \
		-endpoint "$LS_MINIO_ADDR" \
		-access-key "$LS_MINIO_ACCESS_KEY" \
		-secret-key "$LS_MINIO_SECRET_KEY" \
		-bucket "$LS_BUCKET") >"$log" 2>&1; then
		ls_tail_log "$log"
		ls_tail_log "$LS_MINIO_LOG"
		ls_die "could not create or use bucket $LS_BUCKET in MinIO at $LS_MINIO_ADDR (log: $log)"
	fi
}

write_env() {
	local tmp="$LS_ENV_FILE.tmp.$$"
	{
		printf '# Written by localstack/start.sh; source it: . %s\n' "$LS_ENV_FILE"
		printf '# Removed by localstack/stop.sh.\n'
		printf 'export FLOE_TEST_ETCD_ENDPOINTS=%q\n' "$LS_ETCD_URL"
		printf 'export FLOE_TEST_MINIO_ENDPOINT=%q\n' "$LS_MINIO_ADDR"
		printf 'export FLOE_TEST_MINIO_ACCESS_KEY=%q\n' "$LS_MINIO_ACCESS_KEY"
		printf 'export FLOE_TEST_MINIO_SECRET_KEY=%q\n' "$LS_MINIO_SECRET_KEY"
		printf 'export FLOE_TEST_MINIO_BUCKET=%q\n' "$LS_BUCKET"
	} >"$tmp"
	mv -f "$tmp" "$LS_ENV_FILE"
}

start_etcd
start_minio
make_bucket
write_env

rel() { printf '%s' "${1#"$LS_ROOT"/}"; }
cat <<EOF
localstack: ready in $((SECONDS - started_at))s
  etcd   $LS_ETCD_URL  ($(cat "$LS_DIR/etcd.kind" 2>/dev/null || echo etcd), pid $(cat "$LS_ETCD_PID"), log $(rel "$LS_ETCD_LOG"))
  MinIO  http://$LS_MINIO_ADDR  (console http://$LS_HOST:$LS_MINIO_CONSOLE_PORT, pid $(cat "$LS_MINIO_PID"), log $(rel "$LS_MINIO_LOG"))
         access key $LS_MINIO_ACCESS_KEY, secret key $LS_MINIO_SECRET_KEY, bucket $LS_BUCKET
  env    . $(rel "$LS_ENV_FILE")
  stop   localstack/stop.sh
EOF
