#!/usr/bin/env bash
# Stops the etcd and MinIO that localstack/start.sh started and removes the
# env file. Data in .cache/localstack/ is kept unless --clean is given.
#
#   localstack/stop.sh           stop, keep data
#   localstack/stop.sh --clean   stop and delete etcd's and MinIO's data
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

# stop_pid NAME PID: SIGTERM, then SIGKILL if it has not exited in time.
stop_pid() {
	local name="$1" pid="$2" deadline
	kill -TERM "$pid" 2>/dev/null || return 0
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

# strays DIR: pids of processes whose command line names DIR (a data
# directory only localstack uses), for services whose pid file was lost.
strays() {
	local dir="$1" f pid
	for f in /proc/[0-9]*/cmdline; do
		pid="${f#/proc/}"
		pid="${pid%/cmdline}"
		[[ $pid == "$$" ]] && continue
		if tr '\0' '\n' 2>/dev/null <"$f" | grep -qxF -e "$dir" -e "--data-dir=$dir"; then
			echo "$pid"
		fi
	done
}

stopped=0
for svc in etcd minio; do
	if [[ $svc == etcd ]]; then
		name=etcd pidfile="$LS_ETCD_PID" data="$LS_ETCD_DATA"
	else
		name=MinIO pidfile="$LS_MINIO_PID" data="$LS_MINIO_DATA"
	fi
	if ls_pid_alive "$pidfile"; then
		stop_pid "$name" "$(cat "$pidfile")"
		stopped=1
	fi
	rm -f "$pidfile"
	for pid in $(strays "$data"); do
		ls_warn "found $name (pid $pid) without a pid file; stopping it"
		stop_pid "$name" "$pid"
		stopped=1
	done
done

rm -f "$LS_ENV_FILE" "$LS_DIR/etcd.url" "$LS_DIR/minio.addr" "$LS_DIR/etcd.kind"
if ((clean)); then
	rm -rf "$LS_ETCD_DATA" "$LS_MINIO_DATA"
	ls_say "deleted data in $LS_ETCD_DATA and $LS_MINIO_DATA"
fi
if ((stopped == 0)); then
	ls_say "nothing was running"
fi
