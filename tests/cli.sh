#!/usr/bin/env bash
# floe's command line end to end against `floe dev`: create a topic with
# `floe topic create`, produce N keyed lines with `floe produce`, consume
# half of them as a group with `floe consume --group -n`, and check that
# `floe lag` and `floe group describe` report the other half; then consume
# the rest and check every line came back exactly once and the lag is 0.
#
# Other views of the same lag (floe's HTTP API, Burrow) plug in as more
# lag_* functions: each prints the group's total lag, and check_lag asks
# every function listed in lag_sources.
set -euo pipefail
# shellcheck source=tests/lib.sh
source "$(dirname "$0")/lib.sh"

owned=0
if [[ -z ${FLOE_TEST_TMPDIR:-} ]]; then # by hand: FLOE_BIN=bin/floe tests/cli.sh
	FLOE_TEST_TMPDIR=$(mktemp -d)
	owned=1
fi
cleanup() {
	stop_all
	if ((owned)); then rm -rf "$FLOE_TEST_TMPDIR"; fi
}
trap cleanup EXIT
dir=$FLOE_TEST_TMPDIR/cli
mkdir -p "$dir"

fail() {
	echo "cli.sh: $*" >&2
	exit 1
}

# json EXPR evaluates a Python expression over the JSON document on stdin,
# bound to d.
json() {
	python3 -c 'import json, sys; d = json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"
}

# ---- floe dev on free ports ------------------------------------------------

kafka=127.0.0.1:$(free_port)
http=127.0.0.1:$(free_port)
"$FLOE_BIN" dev --data-dir "$dir/dev" --kafka-addr "$kafka" --http-addr "$http" --etcd-addr 127.0.0.1:0 \
	--flush-interval 50ms --group-initial-rebalance-delay 100ms >"$dir/dev.log" 2>&1 &
echo $! >"$FLOE_TEST_TMPDIR/dev.pid"
ready=0
for _ in $(seq 1 150); do
	if "$FLOE_BIN" health --url "http://$http/readyz" >/dev/null 2>&1; then
		ready=1
		break
	fi
	sleep 0.1
done
if ((!ready)); then
	cat "$dir/dev.log" >&2
	fail "floe dev did not become ready on $http within 15s (its log is above)"
fi
export FLOE_BROKERS=$kafka

floe() { "$FLOE_BIN" "$@"; }

# ---- produce ---------------------------------------------------------------

topic=cli-orders
group=cli-group
n=3000
half=$((n / 2))

floe topic create "$topic" -p 3 -c retention.ms=86400000 >/dev/null
got=$(floe topic list -o json | json '[t["partitions"] for t in d["topics"] if t["name"] == "'"$topic"'"]')
[[ $got == "[3]" ]] || fail "floe topic list: $topic has partitions $got, want [3]"

seq 1 "$n" | awk '{printf "key-%d:value-%06d\n", $1 % 17, $1}' >"$dir/in.txt"
floe produce "$topic" --key-separator : --acks all <"$dir/in.txt" 2>"$dir/produce.txt"
grep -q "produced $n of $n records to $topic" "$dir/produce.txt" ||
	fail "floe produce said: $(cat "$dir/produce.txt"), want $n of $n records produced"
got=$(floe topic describe "$topic" -o json | json 'sum(p["end_offset"] - p["start_offset"] for p in d["topics"][0]["partitions"])')
[[ $got == "$n" ]] || fail "floe topic describe counts $got records in $topic, want $n"

# ---- consume half as a group -----------------------------------------------

floe consume "$topic" --group "$group" --from-beginning -n "$half" --format '%k:%v' >"$dir/first.txt"
got=$(wc -l <"$dir/first.txt")
[[ $got == "$half" ]] || fail "floe consume -n $half printed $got records"

# lag_* GROUP print the group's total lag as one number.
lag_cli() {
	floe lag "$1" -o json | json 'd["total_lag"]'
}
lag_describe() {
	floe group describe "$1" -o json | json 'd["groups"][0]["total_lag"]'
}
# lag_partitions recomputes it from the per-partition offsets floe lag
# reports, each of which must be committed.
lag_partitions() {
	floe lag "$1" -o json | json 'sum(p["end_offset"] - p["committed_offset"] for g in d["groups"] for p in g["partitions"])'
}
lag_sources=(lag_cli lag_describe lag_partitions)

# check_lag GROUP WANT: every source reports WANT.
check_lag() {
	local src got
	for src in "${lag_sources[@]}"; do
		got=$("$src" "$1")
		[[ $got == "$2" ]] || fail "$src reports a lag of $got for group $1, want $2"
	done
}

check_lag "$group" $((n - half))
state=$(floe group describe "$group" -o json | json 'd["groups"][0]["state"]')
[[ $state == Empty ]] || fail "group $group is $state after its consumer exited, want Empty"

# ---- the rest, exactly once ------------------------------------------------

floe consume "$topic" --group "$group" -e --format '%k:%v' >"$dir/rest.txt"
got=$(wc -l <"$dir/rest.txt")
[[ $got == $((n - half)) ]] || fail "the second consume printed $got records, want $((n - half))"
sort "$dir/in.txt" >"$dir/in.sorted"
sort "$dir/first.txt" "$dir/rest.txt" >"$dir/out.sorted"
cmp -s "$dir/in.sorted" "$dir/out.sorted" || fail "the two consumes did not return each produced line exactly once: $(diff "$dir/in.sorted" "$dir/out.sorted" | head -5)"
check_lag "$group" 0

# ---- exit codes scripts rely on ----------------------------------------------

set +e
floe topic describe no-such-topic >/dev/null 2>"$dir/err.txt"
code=$?
floe consume "$topic" --no-such-flag >/dev/null 2>>"$dir/err.txt"
code2=$?
set -e
if [[ $code != 1 ]] || ! grep -q 'topic "no-such-topic" does not exist' "$dir/err.txt"; then
	fail "an unknown topic should exit 1 saying so; got $code: $(cat "$dir/err.txt")"
fi
[[ $code2 == 2 ]] || fail "an unknown flag should exit 2, got $code2"

echo "ok: floe produce wrote $n records, floe consume --group read $half, floe lag and floe group describe reported $((n - half)), then 0 after the rest"
