#!/usr/bin/env bash
# Starts the services floe's tests run against, on loopback, without Docker:
#
#   etcd        http://127.0.0.1:23790   (peer port 23800)
#   MinIO       127.0.0.1:19100          (S3 API; console on 19101), bucket floe-test
#   PostgreSQL  127.0.0.1:25432          (superuser postgres, trust auth), for
#                                        the exporter's Iceberg catalog tests
#
# waits until they are healthy, creates the test bucket, and writes
# .cache/localstack/env, which exports the FLOE_TEST_* variables tests read:
#
#   . .cache/localstack/env && go test ./...
#
# Idempotent: services already running (pid files in .cache/localstack/) are
# reused. Stop them with localstack/stop.sh. Ports and credentials can be
# changed with FLOE_LOCALSTACK_* variables (see localstack/lib.sh).
#
# etcd and MinIO are required. PostgreSQL is not: when it cannot be installed
# or started, start.sh warns and leaves FLOE_TEST_POSTGRES_URL out of the env
# file, and the tests that need it skip (FLOE_LOCALSTACK_POSTGRES=required
# makes that a failure, =off skips PostgreSQL).
#
# What it installs when missing, into places it owns or via apt:
#   MinIO       go install github.com/minio/minio@<pinned> into .cache/localstack/bin
#               (about 3 minutes the first time; MinIO is AGPL and only ever
#               run as a separate program)
#   etcd        `etcd` from PATH, else Debian's etcd-server package, else
#               floe's embedded etcd (`floe etcd`)
#   PostgreSQL  the newest /usr/lib/postgresql/*/bin, else initdb and postgres
#               from PATH, else Debian's postgresql package. initdb and the
#               server refuse to run as root: as root they run as the
#               `postgres` user, on a data directory it owns.
set -euo pipefail

# shellcheck source=localstack/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ETCD_START_TIMEOUT="${FLOE_LOCALSTACK_ETCD_TIMEOUT:-60}"
PG_START_TIMEOUT="${FLOE_LOCALSTACK_POSTGRES_TIMEOUT:-60}"
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

# ---- PostgreSQL -------------------------------------------------------

PG_OK=0
PG_RUN_AS=""  # the server's user when start.sh runs as root
PG_AS=()      # the command prefix that runs a program as PG_RUN_AS
PG_DATA=""    # the data directory in use
PG_VERSION="" # the server's version, e.g. 15.14

# find_postgres_bin prints the newest /usr/lib/postgresql/*/bin (Debian's
# layout) with initdb and postgres, else the directory of initdb on PATH
# when postgres is beside it.
find_postgres_bin() {
	local d best="" initdb
	while IFS= read -r d; do
		if [[ -x $d/initdb && -x $d/postgres ]]; then
			best="$d"
		fi
	done < <(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V)
	if [[ -z $best ]]; then
		initdb="$(command -v initdb || true)"
		if [[ -n $initdb && -x "$(dirname "$initdb")/postgres" ]]; then
			best="$(dirname "$initdb")"
		fi
	fi
	printf '%s' "$best"
}

# pick_postgres sets LS_PG_BIN, installing Debian's postgresql when no
# server binaries are found.
pick_postgres() {
	if [[ -n $LS_PG_BIN ]]; then
		if [[ ! -x $LS_PG_BIN/initdb || ! -x $LS_PG_BIN/postgres ]]; then
			ls_die "FLOE_LOCALSTACK_POSTGRES_BIN=$LS_PG_BIN has no initdb and postgres"
		fi
		return
	fi
	LS_PG_BIN="$(find_postgres_bin)"
	if [[ -n $LS_PG_BIN ]]; then
		return
	fi
	local log="$LS_DIR/postgres-install.log"
	ls_say "PostgreSQL's initdb not found; installing Debian's postgresql with apt-get (log: $log)"
	: >"$log"
	if ! LS_APT_LOG="$log" ls_apt_install postgresql; then
		ls_tail_log "$log"
		ls_die "could not install postgresql with apt-get (log: $log)"
	fi
	LS_PG_BIN="$(find_postgres_bin)"
	if [[ -z $LS_PG_BIN ]]; then
		ls_die "installed postgresql, but found no initdb and postgres in /usr/lib/postgresql/*/bin or on PATH"
	fi
}

# pick_postgres_user sets PG_RUN_AS and PG_AS: as root, the postgres user
# (initdb and the server refuse root), through runuser or else su; otherwise
# the current user.
pick_postgres_user() {
	PG_RUN_AS=""
	PG_AS=()
	if [[ $(id -u) -ne 0 ]]; then
		return
	fi
	id postgres >/dev/null 2>&1 || ls_die "running as root, and there is no postgres user to run PostgreSQL as"
	PG_RUN_AS=postgres
	if command -v runuser >/dev/null 2>&1; then
		PG_AS=(runuser -u "$PG_RUN_AS" --)
	else
		# su hands the arguments after the user to the shell as $0 and $@.
		# shellcheck disable=SC2016 # expanded by that shell
		PG_AS=(su -s /bin/bash -c 'exec "$0" "$@"' "$PG_RUN_AS")
	fi
}

# pick_postgres_data sets PG_DATA: postgres-data in the localstack dir,
# unless PG_RUN_AS cannot reach that dir (a repository under a private home
# directory), then a directory of its own in /tmp.
pick_postgres_data() {
	PG_DATA="$LS_PG_DATA"
	if [[ -n $PG_RUN_AS ]] && ! (cd / && "${PG_AS[@]}" test -x "$LS_DIR") 2>/dev/null; then
		PG_DATA="/tmp/floe-localstack-postgres-$(printf '%s' "$LS_DIR" | cksum | cut -d ' ' -f 1)"
		ls_say "user $PG_RUN_AS cannot reach $LS_DIR; PostgreSQL's data goes in $PG_DATA"
		if [[ -L $PG_DATA ]] || { [[ -e $PG_DATA ]] && [[ ! -d $PG_DATA ]]; }; then
			ls_die "$PG_DATA exists and is not a directory"
		fi
	fi
	printf '%s\n' "$PG_DATA" >"$LS_PG_DATADIR_FILE"
}

# init_postgres_data creates the cluster in PG_DATA with initdb, unless it
# holds one of the server's major version already (one of another version
# is test data: it is replaced).
init_postgres_data() {
	local major="${PG_VERSION%%.*}" have="" log="$LS_DIR/postgres-initdb.log"
	if [[ -f $PG_DATA/PG_VERSION ]]; then
		have="$(cat "$PG_DATA/PG_VERSION")"
		if [[ $have == "$major" ]]; then
			if [[ -n $PG_RUN_AS ]]; then
				chown -R "$PG_RUN_AS:" "$PG_DATA"
			fi
			return
		fi
		ls_say "PostgreSQL's data in $PG_DATA is of version $have, the server is $PG_VERSION; initializing it anew"
	fi
	rm -rf "$PG_DATA"
	mkdir -p "$PG_DATA"
	chmod 700 "$PG_DATA"
	if [[ -n $PG_RUN_AS ]]; then
		chown "$PG_RUN_AS:" "$PG_DATA"
	fi
	ls_say "initializing PostgreSQL's data in $PG_DATA (log: $log)"
	if ! (cd / && "${PG_AS[@]}" "$LS_PG_BIN/initdb" -D "$PG_DATA" -U "$LS_PG_USER" \
		--auth=trust --encoding=UTF8 --no-locale --no-sync) >"$log" 2>&1; then
		ls_tail_log "$log"
		ls_die "initdb failed (log: $log)"
	fi
}

# write_postgres_hba lets anyone on loopback in as any user without a
# password, and nothing else (the server listens on LS_HOST only and has
# no Unix socket). Overwriting keeps the file's owner.
write_postgres_hba() {
	cat >"$PG_DATA/pg_hba.conf" <<'EOF'
# Written by localstack/start.sh at every start: trust on loopback, for tests only.
# TYPE  DATABASE  USER  ADDRESS       METHOD
host    all       all   127.0.0.0/8   trust
EOF
}

start_postgres() {
	if ls_pid_alive "$LS_PG_PID"; then
		local url
		url="$(cat "$LS_DIR/postgres.url" 2>/dev/null || true)"
		if [[ $url != "$LS_PG_URL" ]]; then
			ls_die "PostgreSQL is already running (pid $(cat "$LS_PG_PID")) at ${url:-an unknown address}, not $LS_PG_URL; run localstack/stop.sh first"
		fi
		LS_PG_BIN="${LS_PG_BIN:-$(find_postgres_bin)}"
		wait_healthy PostgreSQL "$LS_PG_PID" "$LS_PG_LOG" "$PG_START_TIMEOUT" ls_postgres_healthy
		ls_say "PostgreSQL already running (pid $(cat "$LS_PG_PID")); reusing it"
		return
	fi
	check_port "$LS_PG_PORT" PostgreSQL FLOE_LOCALSTACK_POSTGRES_PORT
	pick_postgres
	pick_postgres_user
	PG_VERSION="$("$LS_PG_BIN/postgres" --version | awk '{print $3}')"
	[[ -n $PG_VERSION ]] || ls_die "$LS_PG_BIN/postgres --version printed no version"
	pick_postgres_data
	init_postgres_data
	write_postgres_hba
	printf '%s\n' "PostgreSQL $PG_VERSION${PG_RUN_AS:+, as user $PG_RUN_AS}" >"$LS_DIR/postgres.kind"
	printf '%s\n' "$LS_PG_URL" >"$LS_DIR/postgres.url"
	ls_say "starting PostgreSQL $PG_VERSION on $LS_HOST:$LS_PG_PORT (log: $LS_PG_LOG)"
	# Durability is off: the data is the tests', and a crash may lose it.
	launch "$LS_PG_PID" "$LS_PG_LOG" "${PG_AS[@]}" "$LS_PG_BIN/postgres" \
		-D "$PG_DATA" \
		-p "$LS_PG_PORT" \
		-c listen_addresses="$LS_HOST" \
		-c unix_socket_directories= \
		-c max_connections=300 \
		-c shared_buffers=64MB \
		-c fsync=off \
		-c synchronous_commit=off \
		-c full_page_writes=off \
		-c log_min_messages=warning
	wait_healthy PostgreSQL "$LS_PG_PID" "$LS_PG_LOG" "$PG_START_TIMEOUT" ls_postgres_healthy
	# From here the pid file names the server itself (the postmaster), not
	# runuser or su, so stop.sh signals it directly.
	local pm
	pm="$(head -n 1 "$PG_DATA/postmaster.pid" 2>/dev/null || true)"
	if [[ $pm =~ ^[0-9]+$ ]] && kill -0 "$pm" 2>/dev/null; then
		printf '%s\n' "$pm" >"$LS_PG_PID"
	fi
}

# start_postgres_or_warn starts PostgreSQL and sets PG_OK; a failure only
# warns, unless FLOE_LOCALSTACK_POSTGRES=required.
start_postgres_or_warn() {
	case "$LS_PG_MODE" in
	off)
		ls_say "not starting PostgreSQL (FLOE_LOCALSTACK_POSTGRES=off)"
		return
		;;
	auto | required) ;;
	*) ls_die "FLOE_LOCALSTACK_POSTGRES must be auto, required or off, not '$LS_PG_MODE'" ;;
	esac
	# In a subshell, so that ls_die ends only this service's start.
	local rc=0
	set +e
	(
		set -e
		start_postgres
	)
	rc=$?
	set -e
	if ((rc == 0)); then
		PG_OK=1
		return
	fi
	if [[ $LS_PG_MODE == required ]]; then
		ls_die "PostgreSQL could not be started (FLOE_LOCALSTACK_POSTGRES=required)"
	fi
	ls_warn "PostgreSQL could not be started (see above); FLOE_TEST_POSTGRES_URL is left out of $LS_ENV_FILE, so the tests that need it skip"
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
		if ((PG_OK)); then
			printf 'export FLOE_TEST_POSTGRES_URL=%q\n' "$LS_PG_URL"
		fi
	} >"$tmp"
	mv -f "$tmp" "$LS_ENV_FILE"
}

start_etcd
start_minio
make_bucket
start_postgres_or_warn
write_env

rel() { printf '%s' "${1#"$LS_ROOT"/}"; }
if ((PG_OK)); then
	pg_line="$LS_PG_URL  ($(cat "$LS_DIR/postgres.kind" 2>/dev/null || echo PostgreSQL), pid $(cat "$LS_PG_PID"), log $(rel "$LS_PG_LOG"))"
else
	pg_line="not running: the tests that need it skip"
fi
cat <<EOF
localstack: ready in $((SECONDS - started_at))s
  etcd        $LS_ETCD_URL  ($(cat "$LS_DIR/etcd.kind" 2>/dev/null || echo etcd), pid $(cat "$LS_ETCD_PID"), log $(rel "$LS_ETCD_LOG"))
  MinIO       http://$LS_MINIO_ADDR  (console http://$LS_HOST:$LS_MINIO_CONSOLE_PORT, pid $(cat "$LS_MINIO_PID"), log $(rel "$LS_MINIO_LOG"))
              access key $LS_MINIO_ACCESS_KEY, secret key $LS_MINIO_SECRET_KEY, bucket $LS_BUCKET
  PostgreSQL  $pg_line
  env         . $(rel "$LS_ENV_FILE")
  stop        localstack/stop.sh
EOF
