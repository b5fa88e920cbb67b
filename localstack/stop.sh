#!/usr/bin/env bash
# Stops the etcd, MinIO and PostgreSQL that localstack/start.sh started and
# removes the env file. Data in .cache/localstack/ is kept unless --clean.
#
#   localstack/stop.sh           stop, keep data
#   localstack/stop.sh --clean   stop and delete etcd's, MinIO's and PostgreSQL's data
set -euo pipefail

# shellcheck source=localstack/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

clean=0
for arg in "$@"; do
	case "$arg" in
	--clean) clean=1 ;;
	-h | --help)
		sed -n '2,6p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	*) ls_die "unknown argument '$arg' (usage: localstack/stop.sh [--clean])" ;;
	esac
done

STOP_TIMEOUT="${FLOE_LOCALSTACK_STOP_TIMEOUT:-20}"

# stop_pid NAME PID [SIGNAL]: SIGNAL (default TERM), then SIGKILL if it has
# not exited in time.
stop_pid() {
	local name="$1" pid="$2" sig="${3:-TERM}" deadline
	kill -"$sig" "$pid" 2>/dev/null || return 0
	deadline=$((SECONDS + STOP_TIMEOUT))
	while kill -0 "$pid" 2>/dev/null; do
		if [[ -r /proc/$pid/stat ]] && [[ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" == Z ]]; then
			break
		fi
		if ((SECONDS >= deadline)); then
			ls_warn "$name (pid $pid) did not stop within ${STOP_TIMEOUT}s; killing it"
			kill -KILL "$pid" 2>/dev/null || true
			sleep 0.5
			break
		fi
		sleep 0.1
	done
	ls_say "stopped $name (pid $pid)"
}

# strays DIR [COMM]: pids of processes whose command line names DIR (a data
# directory only localstack uses), and whose name is COMM if given, for
# services whose pid file was lost.
strays() {
	local dir="$1" comm="${2:-}" f pid name
	for f in /proc/[0-9]*/cmdline; do
		pid="${f#/proc/}"
		pid="${pid%/cmdline}"
		[[ $pid == "$$" ]] && continue
		if [[ -n $comm ]]; then
			name=""
			read -r name 2>/dev/null <"/proc/$pid/comm" || true
			[[ $name == "$comm" ]] || continue
		fi
		if tr '\0' '\n' 2>/dev/null <"$f" | grep -qxF -e "$dir" -e "--data-dir=$dir"; then
			echo "$pid"
		fi
	done
}

# PostgreSQL's data directory: the one start.sh chose, which is not in
# .cache/localstack/ when the server's user could not reach it.
pg_data="$(cat "$LS_PG_DATADIR_FILE" 2>/dev/null || true)"
pg_data="${pg_data:-$LS_PG_DATA}"

stopped=0
for svc in etcd minio postgres; do
	# PostgreSQL's fast shutdown is SIGINT; its SIGTERM waits for every
	# client to disconnect.
	sig=TERM comm=""
	case "$svc" in
	etcd) name=etcd pidfile="$LS_ETCD_PID" data="$LS_ETCD_DATA" ;;
	minio) name=MinIO pidfile="$LS_MINIO_PID" data="$LS_MINIO_DATA" ;;
	postgres) name=PostgreSQL pidfile="$LS_PG_PID" data="$pg_data" sig=INT comm=postgres ;;
	esac
	if ls_pid_alive "$pidfile"; then
		stop_pid "$name" "$(cat "$pidfile")" "$sig"
		stopped=1
	fi
	rm -f "$pidfile"
	for pid in $(strays "$data" "$comm"); do
		ls_warn "found $name (pid $pid) without a pid file; stopping it"
		stop_pid "$name" "$pid" "$sig"
		stopped=1
	done
done

rm -f "$LS_ENV_FILE" "$LS_DIR/etcd.url" "$LS_DIR/minio.addr" "$LS_DIR/etcd.kind" \
	"$LS_DIR/postgres.url" "$LS_DIR/postgres.kind"
if ((clean)); then
	rm -rf "$LS_ETCD_DATA" "$LS_MINIO_DATA" "$pg_data"
	rm -f "$LS_PG_DATADIR_FILE"
	ls_say "deleted data in $LS_ETCD_DATA, $LS_MINIO_DATA and $pg_data"
fi
if ((stopped == 0)); then
	ls_say "nothing was running"
fi
