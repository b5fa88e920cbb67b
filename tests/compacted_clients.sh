#!/usr/bin/env bash
# A compacted topic (cleanup.policy=compact) read from the start by
# clients floe did not write, after `floe compactor --once` cleaned it:
# kcat (librdkafka), confluent-kafka-python (librdkafka's consumer) and
# kafka-python (its own protocol code) each read the same records, at the
# offsets they were produced at, in order, with every key's latest value,
# and fewer records than were written.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

need_pkg kcat kcat
need_pkg curl curl
need_pkg kafka python3-kafka
need_pkg confluent_kafka python3-confluent-kafka

cluster="test-compacted-$$-$RANDOM"
bucket="minio://$FLOE_TEST_MINIO_ENDPOINT/$FLOE_TEST_MINIO_BUCKET/$cluster?secure=false"
k=$(free_port) h=$(free_port)
trap stop_all EXIT
start_agent a1 "$k" "$h" "$cluster" --flush-interval 20ms
broker="127.0.0.1:$k"
tmp=$FLOE_TEST_TMPDIR

"$FLOE_BIN" topic create changelog -p 2 -b "$broker" \
	-c cleanup.policy=compact -c min.cleanable.dirty.ratio=0.01 >/dev/null

# Rounds of updates of 40 keys, some deleted (kcat -Z writes an empty
# value as null), each round a produce of its own, then one more round so
# the others are below the latest log entries.
for round in $(seq 1 12); do
	seq 0 39 | awk -v r="$round" '{ if (($1 + r) % 7 == 0) printf "key-%02d:\n", $1; else printf "key-%02d:v%02d-%02d\n", $1, r, $1 }' |
		kcat -b "$broker" -t changelog -P -K: -Z -z lz4 -X acks=all
done

# Everything as produced: partition, offset, key, value (or NULL).
read_all() {
	kcat -b "$broker" -t changelog -C -e -o beginning -q -Z -f '%p %o %k %s\n' | sort -k1,1n -k2,2n
}
read_all >"$tmp/before.txt"
written=$(wc -l <"$tmp/before.txt")
if [[ $written -ne 480 ]]; then
	echo "kcat read $written records before cleaning, expected 480" >&2
	exit 1
fi

MINIO_ACCESS_KEY=$FLOE_TEST_MINIO_ACCESS_KEY MINIO_SECRET_KEY=$FLOE_TEST_MINIO_SECRET_KEY \
	"$FLOE_BIN" compactor --once --etcd-endpoints "$FLOE_TEST_ETCD_ENDPOINTS" --bucket "$bucket" \
	--cluster "$cluster" --http-addr "" >"$tmp/compactor.log" 2>&1 || {
	echo "floe compactor --once failed; its log:" >&2
	cat "$tmp/compactor.log" >&2
	exit 1
}

read_all >"$tmp/kcat.txt"
read=$(wc -l <"$tmp/kcat.txt")
# Every record read is one produced at that offset; offsets ascend per
# partition; every key's latest record is there; fewer than written.
awk '
	NR == FNR { rec[$1 " " $2] = $0; latest[$3] = $1 " " $2; next }
	{
		if (!(($1 " " $2) in rec) || rec[$1 " " $2] != $0) { print "read " $0 ", which was not produced at that offset"; bad = 1 }
		if (($1 in last) && $2 <= last[$1]) { print "partition " $1 ": offset " $2 " after " last[$1]; bad = 1 }
		last[$1] = $2; seen[$1 " " $2] = 1
	}
	END {
		for (k in latest) if (!(latest[k] in seen)) { print "the latest record of " k " (" latest[k] ") is gone"; bad = 1 }
		exit bad
	}' "$tmp/before.txt" "$tmp/kcat.txt" >&2
if [[ $read -ge $written ]]; then
	echo "kcat read $read of the $written records written: nothing was cleaned (compactor log: $(tail -n 3 "$tmp/compactor.log"))" >&2
	exit 1
fi

# The Python clients read the same partitions and offsets from the start.
"$SYSPY" - "$broker" "$tmp/kcat.txt" <<'PY'
import sys
broker, path = sys.argv[1], sys.argv[2]
want = []
for line in open(path):
    p, o = line.split()[:2]
    want.append((int(p), int(o)))
want.sort()
n = len(want)

from confluent_kafka import Consumer, TopicPartition, OFFSET_BEGINNING
c = Consumer({"bootstrap.servers": broker, "group.id": "compacted-rdkafka", "enable.auto.commit": False})
c.assign([TopicPartition("changelog", p, OFFSET_BEGINNING) for p in (0, 1)])
got, idle = [], 0
while len(got) < n and idle < 20:
    m = c.poll(0.5)
    if m is None:
        idle += 1
        continue
    if m.error():
        sys.exit(f"FAIL: confluent-kafka: {m.error()}")
    got.append((m.partition(), m.offset()))
c.close()
if sorted(got) != want:
    sys.exit(f"FAIL: confluent-kafka read {len(got)} records, kcat {n}; first difference {next((a, b) for a, b in zip(sorted(got) + [None] * n, want) if a != b)}")

from kafka import KafkaConsumer, TopicPartition as KTP
k = KafkaConsumer(bootstrap_servers=broker, auto_offset_reset="earliest", enable_auto_commit=False, consumer_timeout_ms=10000)
k.assign([KTP("changelog", p) for p in (0, 1)])
k.seek_to_beginning()
got = []
for m in k:
    got.append((m.partition, m.offset))
    if len(got) == n:
        break
k.close()
if sorted(got) != want:
    sys.exit(f"FAIL: kafka-python read {len(got)} records, kcat {n}")
print(f"confluent-kafka and kafka-python read the {n} records kcat read")
PY

echo "ok: kcat, confluent-kafka-python and kafka-python read $read of $written records of a compacted topic, every key's latest among them"
