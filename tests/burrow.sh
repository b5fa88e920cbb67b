#!/usr/bin/env bash
# The real Burrow (Debian's burrow, 1.2) reads a consumer group's lag from
# floe's __consumer_offsets, and agrees with floe's own lag API
# (/v1/groups/{group}) and `floe lag`: a group that consumed half of a
# topic is behind by the other half, on every partition. It runs against
# `floe dev`, as a user would try it.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

need_pkg Burrow burrow
need_pkg curl curl

k=$(free_port) h=$(free_port) bport=$(free_port)
tmp=$FLOE_TEST_TMPDIR
trap stop_all EXIT
start_dev a1 "$k" "$h" --num-partitions 3 \
	--flush-interval 50ms --offsets-topic-linger 100ms
broker="127.0.0.1:$k"

topic=burrowed group=burrow-watched n=3000 half=1500
seq 1 "$n" | awk '{printf "key-%d:value-%06d\n", $1 % 23, $1}' |
	"$FLOE_BIN" produce "$topic" -b "$broker" --key-separator : -q
# Consume half as a group member; on exit it commits exactly what it
# printed, and every partition assigned to it gets a commit.
got=$("$FLOE_BIN" consume "$topic" -b "$broker" --group "$group" --from-beginning -n "$half" --timeout 30s | wc -l)
if [[ $got -ne $half ]]; then
	echo "the group consumed $got records, expected $half" >&2
	exit 1
fi

# Burrow will not start without a ZooKeeper for its own coordination
# (floe has none); a stand-in on loopback serves it.
"$SYSPY" "$(dirname "$0")/burrow_zookeeper.py" "$tmp/zk.port" >"$tmp/zk.log" 2>&1 &
echo $! >"$tmp/zk.pid"
for _ in $(seq 1 50); do [[ -s $tmp/zk.port ]] && break; sleep 0.1; done
zport=$(cat "$tmp/zk.port")

mkdir -p "$tmp/burrow"
cat >"$tmp/burrow/burrow.toml" <<EOF
[general]
pidfile="$tmp/burrow/burrow.pid"

[logging]
level="info"

[zookeeper]
servers=["127.0.0.1:$zport"]
timeout=6
root-path="/burrow"

[client-profile.floe]
client-id="burrow-test"
kafka-version="0.11.0"

[cluster.local]
class-name="kafka"
servers=["$broker"]
client-profile="floe"
topic-refresh=5
offset-refresh=2

[consumer.local]
class-name="kafka"
cluster="local"
servers=["$broker"]
client-profile="floe"
offsets-topic="__consumer_offsets"

[evaluator.default]
class-name="caching"
expire-cache=1

[httpserver.default]
address="127.0.0.1:$bport"

[storage.default]
class-name="inmemory"
workers=4
intervals=10
expire-group=604800
min-distance=1
EOF
(cd "$tmp/burrow" && exec Burrow -config-dir "$tmp/burrow") >"$tmp/burrow.log" 2>&1 &
echo $! >"$tmp/burrow-process.pid"

# Wait until Burrow reports the group's lag with every partition.
burrow_json=""
for _ in $(seq 1 120); do
	if burrow_json=$(curl -fsS "http://127.0.0.1:$bport/v3/kafka/local/consumer/$group/lag" 2>/dev/null) &&
		"$SYSPY" -c 'import json,sys; s=json.load(sys.stdin)["status"]; sys.exit(0 if s["partition_count"] == 3 and s["totallag"] == int(sys.argv[1]) else 1)' "$half" <<<"$burrow_json"; then
		break
	fi
	sleep 0.5
done
# Burrow's STOP rule compares the last commit's time in milliseconds with
# the evaluation's time in whole seconds, so within the second of the
# commit it says STALL where floe (milliseconds on both sides) says STOP.
# Ask again two seconds later, past its one-second evaluation cache.
sleep 2
burrow_json=$(curl -fsS "http://127.0.0.1:$bport/v3/kafka/local/consumer/$group/lag" 2>/dev/null || echo "$burrow_json")
floe_json=$(curl -fsS "http://127.0.0.1:$h/v1/groups/$group")
lag_json=$("$FLOE_BIN" lag "$group" -b "$broker" -o json)

"$SYSPY" - "$half" "$burrow_json" "$floe_json" "$lag_json" "$tmp/burrow.log" <<'PY'
import json, sys
half = int(sys.argv[1])
def load(name, text):
    try:
        return json.loads(text)
    except ValueError:
        sys.exit(f"{name} answered {text!r}, not JSON")
try:
    burrow = load("Burrow", sys.argv[2])["status"]
except (KeyError, TypeError):
    tail = open(sys.argv[5]).read()[-2000:]
    sys.exit(f"Burrow never reported the group's lag; last answer {sys.argv[2]!r}; its log ends:\n{tail}")
floe = load("floe's /v1/groups", sys.argv[3])
lag = load("floe lag", sys.argv[4])["groups"][0]

totals = {"Burrow": burrow["totallag"], "/v1/groups": floe["total_lag"], "floe lag": lag["total_lag"]}
if set(totals.values()) != {half}:
    sys.exit(f"total lag differs or is not {half} (the unconsumed half): {totals}")
per = {
    "Burrow": {(p["topic"], p["partition"]): p["current_lag"] for p in burrow["partitions"]},
    "/v1/groups": {(p["topic"], p["partition"]): p["lag"] for p in floe["partitions"]},
    "floe lag": {(p["topic"], p["partition"]): p["lag"] for p in lag["partitions"]},
}
if not (per["Burrow"] == per["/v1/groups"] == per["floe lag"]) or len(per["Burrow"]) != 3:
    sys.exit(f"per-partition lag differs: {per}")
maxlag = max(per["Burrow"].values())
if floe["max_lag"] != maxlag or burrow["maxlag"]["current_lag"] != maxlag:
    sys.exit(f"max lag differs: floe {floe['max_lag']}, Burrow {burrow['maxlag']['current_lag']}, want {maxlag}")
# The same rules over the same single commit per partition: the same
# statuses (a partition behind with commits stopped is STOP, the group ERR).
bstat = {(p["topic"], p["partition"]): p["status"] for p in burrow["partitions"]}
fstat = {(p["topic"], p["partition"]): p["status"] for p in floe["partitions"]}
if bstat != fstat or burrow["status"] != floe["status"]:
    sys.exit(f"statuses differ: Burrow {burrow['status']} {bstat}, floe {floe['status']} {fstat}")
print(f"ok: Burrow, /v1/groups and floe lag agree: total lag {half}, per partition {sorted(per['Burrow'].values())}; "
      f"status Burrow {burrow['status']}, floe {floe['status']}")
PY
