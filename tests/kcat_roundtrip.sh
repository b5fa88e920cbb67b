#!/usr/bin/env bash
# Two real clients against floe agents on real etcd and MinIO: kcat
# (librdkafka) produces keyed and compressed records, then kcat and
# kafka-python read them all back in order, through the other agent.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

need_pkg kcat kcat
need_pkg kafka python3-kafka

cluster="test-kcat-$$-$RANDOM"
k1=$(free_port) h1=$(free_port) k2=$(free_port) h2=$(free_port)
trap stop_all EXIT
start_agent a1 "$k1" "$h1" "$cluster" --auto-create-topics --num-partitions 3 --flush-interval 50ms
start_agent a2 "$k2" "$h2" "$cluster" --auto-create-topics --num-partitions 3 --flush-interval 50ms

n=3000
seq 1 "$n" | awk '{printf "key-%d:value-%06d\n", $1 % 17, $1}' >"$FLOE_TEST_TMPDIR/in.txt"
kcat -b "127.0.0.1:$k1" -t rt -P -K: -z zstd -X enable.idempotence=true -X acks=all <"$FLOE_TEST_TMPDIR/in.txt"

# kcat reads everything back through the second agent.
kcat -b "127.0.0.1:$k2" -t rt -C -e -o beginning -q -f '%p %o %k:%s\n' >"$FLOE_TEST_TMPDIR/kcat.txt"
got=$(wc -l <"$FLOE_TEST_TMPDIR/kcat.txt")
if [[ $got -ne $n ]]; then
	echo "kcat read $got records, expected $n" >&2
	exit 1
fi
# Every key stays on one partition, and per partition offsets are 0,1,2,...
awk '{ if (($1 SUBSEP $3) in seen) {} ; split($3, kv, ":"); if ((kv[1]) in part && part[kv[1]] != $1) { print "key " kv[1] " on two partitions"; bad=1 } part[kv[1]]=$1; if ($2 != next_off[$1]+0) { print "partition " $1 " offset " $2 " expected " next_off[$1]+0; bad=1 } next_off[$1]=$2+1 } END { exit bad }' "$FLOE_TEST_TMPDIR/kcat.txt"
# The same lines came back (order within a key is kept).
cut -d' ' -f3- "$FLOE_TEST_TMPDIR/kcat.txt" | sort >"$FLOE_TEST_TMPDIR/kcat.sorted"
sort "$FLOE_TEST_TMPDIR/in.txt" >"$FLOE_TEST_TMPDIR/in.sorted"
if ! cmp -s "$FLOE_TEST_TMPDIR/in.sorted" "$FLOE_TEST_TMPDIR/kcat.sorted"; then
	echo "kcat read different records than were produced" >&2
	diff "$FLOE_TEST_TMPDIR/in.sorted" "$FLOE_TEST_TMPDIR/kcat.sorted" | head >&2
	exit 1
fi
for k in $(seq 0 16); do
	grep "^key-$k:" "$FLOE_TEST_TMPDIR/in.txt" >"$FLOE_TEST_TMPDIR/want.$k"
	cut -d' ' -f3- "$FLOE_TEST_TMPDIR/kcat.txt" | grep "^key-$k:" >"$FLOE_TEST_TMPDIR/got.$k" || true
	if ! cmp -s "$FLOE_TEST_TMPDIR/want.$k" "$FLOE_TEST_TMPDIR/got.$k"; then
		echo "records of key-$k came back out of order" >&2
		exit 1
	fi
done

# kafka-python, a client with its own protocol implementation: it
# produces (gzip) through one agent and reads back through the other, and
# kcat reads what it wrote.
"$SYSPY" - "$k1" "$k2" "$n" <<'PY'
import sys
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
p1, p2, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
prod = KafkaProducer(bootstrap_servers=f"127.0.0.1:{p1}", acks="all", compression_type="gzip", linger_ms=5)
futures = [prod.send("py", key=f"k{i % 5}".encode(), value=f"py-{i:06d}".encode()) for i in range(n)]
prod.flush()
acked = [f.get(timeout=30) for f in futures]
c = KafkaConsumer(bootstrap_servers=f"127.0.0.1:{p2}", auto_offset_reset="earliest",
                  enable_auto_commit=False, consumer_timeout_ms=10000)
parts = [TopicPartition("py", p) for p in sorted(c.partitions_for_topic("py"))]
c.assign(parts)
c.seek_to_beginning()
got = {}
for m in c:
    got[(m.partition, m.offset)] = m.value
    if len(got) == n:
        break
for i, md in enumerate(acked):
    v = got.get((md.partition, md.offset))
    if v != f"py-{i:06d}".encode():
        sys.exit(f"kafka-python: record {i} acknowledged at {md.partition}/{md.offset} reads back as {v!r}")
print(f"kafka-python produced and read back {n} records")
PY
got=$(kcat -b "127.0.0.1:$k1" -t py -C -e -o beginning -q -f '%s\n' | grep -c '^py-')
if [[ $got -ne $n ]]; then
	echo "kcat read $got of kafka-python's $n records" >&2
	exit 1
fi

echo "ok: kcat and kafka-python each produced $n records through one agent and read them back through the other"
