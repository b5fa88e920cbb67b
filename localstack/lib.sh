# shellcheck shell=bash disable=SC2034  # variables are used by the scripts that source it
# Shared settings and helpers for localstack/start.sh, localstack/stop.sh and
# scripts/test.sh. Source it; it does nothing on its own.
#
# Every setting can be overridden from the environment:
#
#   FLOE_LOCALSTACK_DIR                 state dir (default <repo>/.cache/localstack)
#   FLOE_LOCALSTACK_HOST                loopback address to bind (default 127.0.0.1)
#   FLOE_LOCALSTACK_ETCD_PORT           etcd client port (default 23790)
#   FLOE_LOCALSTACK_ETCD_PEER_PORT      etcd peer port (default 23800)
#   FLOE_LOCALSTACK_ETCD                auto | system | embedded (default auto:
#                                       etcd from PATH, else apt-get install
#                                       etcd-server, else floe's embedded etcd)
#   FLOE_LOCALSTACK_MINIO_PORT          MinIO S3 API port (default 19100)
#   FLOE_LOCALSTACK_MINIO_CONSOLE_PORT  MinIO console port (default 19101)
#   FLOE_LOCALSTACK_MINIO_ACCESS_KEY    MinIO root user (default floe-test)
#   FLOE_LOCALSTACK_MINIO_SECRET_KEY    MinIO root password (default floe-test-secret)
#   FLOE_LOCALSTACK_BUCKET              bucket to create (default floe-test)
#   FLOE_LOCALSTACK_POSTGRES            auto | required | off (default auto:
#                                       start PostgreSQL, installing Debian's
#                                       postgresql with apt-get if missing, and
#                                       only warn when that fails)
#   FLOE_LOCALSTACK_POSTGRES_PORT       PostgreSQL port (default 25432)
#   FLOE_LOCALSTACK_POSTGRES_BIN        directory with initdb and postgres
#                                       (default: the newest
#                                       /usr/lib/postgresql/*/bin, else PATH)

LS_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LS_DIR="${FLOE_LOCALSTACK_DIR:-$LS_ROOT/.cache/localstack}"
LS_BIN="$LS_DIR/bin"
LS_ENV_FILE="$LS_DIR/env"
LS_HOST="${FLOE_LOCALSTACK_HOST:-127.0.0.1}"

LS_ETCD_PORT="${FLOE_LOCALSTACK_ETCD_PORT:-23790}"
LS_ETCD_PEER_PORT="${FLOE_LOCALSTACK_ETCD_PEER_PORT:-23800}"
LS_ETCD_MODE="${FLOE_LOCALSTACK_ETCD:-auto}"
LS_ETCD_URL="http://$LS_HOST:$LS_ETCD_PORT"
LS_ETCD_PEER_URL="http://$LS_HOST:$LS_ETCD_PEER_PORT"
LS_ETCD_DATA="$LS_DIR/etcd-data"
LS_ETCD_LOG="$LS_DIR/etcd.log"
LS_ETCD_PID="$LS_DIR/etcd.pid"

LS_MINIO_PORT="${FLOE_LOCALSTACK_MINIO_PORT:-19100}"
LS_MINIO_CONSOLE_PORT="${FLOE_LOCALSTACK_MINIO_CONSOLE_PORT:-19101}"
LS_MINIO_ADDR="$LS_HOST:$LS_MINIO_PORT"
LS_MINIO_ACCESS_KEY="${FLOE_LOCALSTACK_MINIO_ACCESS_KEY:-floe-test}"
LS_MINIO_SECRET_KEY="${FLOE_LOCALSTACK_MINIO_SECRET_KEY:-floe-test-secret}"
LS_BUCKET="${FLOE_LOCALSTACK_BUCKET:-floe-test}"
LS_MINIO_DATA="$LS_DIR/minio-data"
LS_MINIO_LOG="$LS_DIR/minio.log"
LS_MINIO_PID="$LS_DIR/minio.pid"
# MinIO is AGPL: it is only ever run as a separate program, never imported.
LS_MINIO_MODULE="github.com/minio/minio"
LS_MINIO_VERSION="v0.0.0-20260212201848-7aac2a2c5b7c"

LS_PG_MODE="${FLOE_LOCALSTACK_POSTGRES:-auto}"
LS_PG_PORT="${FLOE_LOCALSTACK_POSTGRES_PORT:-25432}"
LS_PG_BIN="${FLOE_LOCALSTACK_POSTGRES_BIN:-}"
# The superuser, with trust authentication on loopback: for tests only.
LS_PG_USER="postgres"
LS_PG_URL="postgres://$LS_PG_USER@$LS_HOST:$LS_PG_PORT/postgres?sslmode=disable"
# The data directory: postgres-data here, unless the server's user (postgres,
# when start.sh runs as root) cannot reach it; postgres.datadir names the one
# in use.
LS_PG_DATA="$LS_DIR/postgres-data"
LS_PG_DATADIR_FILE="$LS_DIR/postgres.datadir"
LS_PG_LOG="$LS_DIR/postgres.log"
LS_PG_PID="$LS_DIR/postgres.pid"

ls_say() { printf 'localstack: %s\n' "$*"; }
ls_warn() { printf 'localstack: WARNING: %s\n' "$*" >&2; }
ls_die() {
	printf 'localstack: FAILED: %s\n' "$*" >&2
	exit 1
}

# ls_tail_log FILE: prints the last lines of a log, for failure messages.
ls_tail_log() {
	local f="$1"
	if [[ -s $f ]]; then
		printf -- '---- last 40 lines of %s ----\n' "$f" >&2
		tail -n 40 "$f" >&2
		printf -- '---- end of %s ----\n' "$f" >&2
	fi
}

# ls_pid_alive PIDFILE: succeeds when the pid file names a live process.
# A stale pid file is removed.
ls_pid_alive() {
	local pidfile="$1" pid
	[[ -f $pidfile ]] || return 1
	pid="$(cat "$pidfile" 2>/dev/null || true)"
	if [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null; then
		# A zombie or a recycled pid is not ours.
		if [[ -r /proc/$pid/stat ]] && [[ "$(awk '{print $3}' "/proc/$pid/stat")" == Z ]]; then
			rm -f "$pidfile"
			return 1
		fi
		return 0
	fi
	rm -f "$pidfile"
	return 1
}

# ls_http_get URL: prints the body of an HTTP GET, failing on any error or
# non-2xx status. Uses curl when present, else bash's /dev/tcp (plain http
# only), so a machine without curl still works.
ls_http_get() {
	local url="$1"
	if command -v curl >/dev/null 2>&1; then
		curl -fsS --max-time 3 "$url"
		return
	fi
	local rest="${url#http://}" hostport path host port status line
	hostport="${rest%%/*}"
	path="/${rest#*/}"
	[[ $rest == */* ]] || path=/
	host="${hostport%:*}"
	port="${hostport##*:}"
	exec 3<>"/dev/tcp/$host/$port" || return 1
	printf 'GET %s HTTP/1.0\r\nHost: %s\r\nConnection: close\r\n\r\n' "$path" "$hostport" >&3
	IFS= read -r -t 3 status <&3 || {
		exec 3<&-
		return 1
	}
	while IFS= read -r -t 3 line <&3; do
		[[ $line == $'\r' || -z $line ]] && break
	done
	cat <&3 || true
	exec 3<&-
	[[ $status =~ ^HTTP/[0-9.]+\ 2[0-9][0-9] ]]
}

# ls_port_in_use PORT: succeeds when something accepts connections on
# LS_HOST:PORT.
ls_port_in_use() {
	(exec 3<>"/dev/tcp/$LS_HOST/$1") 2>/dev/null
}

# ls_etcd_healthy: succeeds when the localstack etcd answers health checks.
ls_etcd_healthy() {
	if command -v etcdctl >/dev/null 2>&1; then
		ETCDCTL_API=3 etcdctl --endpoints="$LS_ETCD_URL" --command-timeout=3s endpoint health >/dev/null 2>&1
		return
	fi
	local body
	body="$(ls_http_get "$LS_ETCD_URL/health" 2>/dev/null)" || return 1
	[[ $body == *'"health":"true"'* ]]
}

# ls_minio_healthy: succeeds when the localstack MinIO answers its liveness
# check.
ls_minio_healthy() {
	ls_http_get "http://$LS_MINIO_ADDR/minio/health/live" >/dev/null 2>&1
}

# ls_postgres_healthy: succeeds when the localstack PostgreSQL accepts the
# superuser's connections (psql, else pg_isready, from LS_PG_BIN or PATH).
ls_postgres_healthy() {
	local dir="${LS_PG_BIN:+$LS_PG_BIN/}"
	if command -v "${dir}psql" >/dev/null 2>&1; then
		PGCONNECT_TIMEOUT=3 "${dir}psql" -X -q -A -t -d "$LS_PG_URL" -c 'SELECT 1' >/dev/null 2>&1
		return
	fi
	if command -v "${dir}pg_isready" >/dev/null 2>&1; then
		"${dir}pg_isready" -q -t 3 -h "$LS_HOST" -p "$LS_PG_PORT" -U "$LS_PG_USER" -d postgres
		return
	fi
	ls_port_in_use "$LS_PG_PORT"
}

# ls_running: succeeds when etcd and MinIO run (by pid file). PostgreSQL is
# optional and not part of it.
ls_running() {
	ls_pid_alive "$LS_ETCD_PID" && ls_pid_alive "$LS_MINIO_PID"
}

# ls_apt_install PKG...: installs Debian packages, as root or via sudo,
# running apt-get update first when a plain install fails. Output goes to
# $LS_APT_LOG (default: stderr).
ls_apt_install() {
	command -v apt-get >/dev/null 2>&1 || return 1
	local -a sudo=()
	if [[ $(id -u) -ne 0 ]]; then
		command -v sudo >/dev/null 2>&1 || return 1
		sudo=(sudo)
	fi
	local log="${LS_APT_LOG:-/dev/stderr}"
	local -a apt=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -y -q)
	if "${apt[@]}" install --no-install-recommends "$@" >>"$log" 2>&1; then
		return 0
	fi
	"${apt[@]}" update >>"$log" 2>&1 || true
	"${apt[@]}" install --no-install-recommends "$@" >>"$log" 2>&1
}
