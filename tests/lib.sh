# Helpers for shell tests; source it. See tests/README.md.

# free_port prints a TCP port nothing listens on right now.
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# SYSPY is Debian's python, where python3-* packages install (a python3
# earlier on PATH, such as pyenv's, does not see them).
SYSPY=/usr/bin/python3
[[ -x $SYSPY ]] || SYSPY=python3

# need_pkg CMD PACKAGE installs a Debian package when CMD (a command, or a
# module of Debian's python) is missing.
need_pkg() {
	local cmd=$1 pkg=$2
	if ! command -v "$cmd" >/dev/null 2>&1 && ! "$SYSPY" -c "import $cmd" >/dev/null 2>&1; then
		echo "installing $pkg" >&2
		local sudo=""
		[[ $(id -u) == 0 ]] || sudo=sudo
		$sudo apt-get install -y -q "$pkg" >/dev/null 2>&1 || { $sudo apt-get update -q >/dev/null 2>&1 && $sudo apt-get install -y -q "$pkg" >/dev/null; }
	fi
}

# start_agent NAME KAFKA_PORT HTTP_PORT CLUSTER [extra flags...] starts a
# floe agent against the localstack etcd and MinIO, in the background, and
# waits until it is ready. Its pid goes to $FLOE_TEST_TMPDIR/NAME.pid.
start_agent() {
	local name=$1 kport=$2 hport=$3 cluster=$4
	shift 4
	MINIO_ACCESS_KEY=$FLOE_TEST_MINIO_ACCESS_KEY MINIO_SECRET_KEY=$FLOE_TEST_MINIO_SECRET_KEY \
		"$FLOE_BIN" agent \
		--etcd-endpoints "$FLOE_TEST_ETCD_ENDPOINTS" \
		--bucket "minio://$FLOE_TEST_MINIO_ENDPOINT/$FLOE_TEST_MINIO_BUCKET/$cluster?secure=false" \
		--cluster "$cluster" \
		--kafka-addr "127.0.0.1:$kport" --http-addr "127.0.0.1:$hport" \
		"$@" >"$FLOE_TEST_TMPDIR/$name.log" 2>&1 &
	echo $! >"$FLOE_TEST_TMPDIR/$name.pid"
	for _ in $(seq 1 100); do
		if curl -fsS "http://127.0.0.1:$hport/readyz" >/dev/null 2>&1; then
			return 0
		fi
		sleep 0.1
	done
	echo "agent $name did not become ready; its log:" >&2
	cat "$FLOE_TEST_TMPDIR/$name.log" >&2
	return 1
}

# stop_all kills every agent this test started.
stop_all() {
	local f
	for f in "$FLOE_TEST_TMPDIR"/*.pid; do
		[[ -e $f ]] || continue
		kill "$(cat "$f")" 2>/dev/null || true
	done
	wait 2>/dev/null || true
}

# start_dev NAME KAFKA_PORT HTTP_PORT [extra flags...] starts `floe dev`
# (embedded etcd, a bucket in $FLOE_TEST_TMPDIR) in the background on the
# given ports (its schema registry on a free one: pass
# --schema-registry-addr to choose) and waits until it is ready. Its pid goes to
# $FLOE_TEST_TMPDIR/NAME.pid, its log to $FLOE_TEST_TMPDIR/NAME.log.
start_dev() {
	local name=$1 kport=$2 hport=$3
	shift 3
	"$FLOE_BIN" dev --data-dir "$FLOE_TEST_TMPDIR/$name-data" \
		--kafka-addr "127.0.0.1:$kport" --http-addr "127.0.0.1:$hport" --etcd-addr 127.0.0.1:0 \
		--schema-registry-addr 127.0.0.1:0 "$@" >"$FLOE_TEST_TMPDIR/$name.log" 2>&1 &
	echo $! >"$FLOE_TEST_TMPDIR/$name.pid"
	for _ in $(seq 1 150); do
		if curl -fsS "http://127.0.0.1:$hport/readyz" >/dev/null 2>&1; then
			return 0
		fi
		sleep 0.1
	done
	echo "floe dev ($name) did not become ready; its log:" >&2
	cat "$FLOE_TEST_TMPDIR/$name.log" >&2
	return 1
}
