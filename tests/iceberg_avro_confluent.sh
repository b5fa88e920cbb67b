#!/usr/bin/env bash
# Avro values produced with Confluent's own Python client (Debian's
# python3-confluent-kafka, the legacy AvroProducer, with python3-avro)
# become typed Iceberg columns: on `floe dev`, whose exporter reads the
# value schemas from floe dev's registry, a topic with
# floe.iceberg.value.format=avro gets records of a value schema and of
# its compatible evolution, and one value that is not Avro; the table's
# schema, snapshot, offsets and column statistics, the export's lag and
# the exporter's metrics are checked. The checks are in
# tests/iceberg_avro_confluent.py.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

need_pkg confluent_kafka python3-confluent-kafka
need_pkg avro python3-avro
need_pkg requests python3-requests
need_pkg curl curl

k=$(free_port) h=$(free_port) r=$(free_port)
trap stop_all EXIT
start_dev dev "$k" "$h" --schema-registry-addr "127.0.0.1:$r"

topic="iceberg-avro-$$-$RANDOM"
"$FLOE_BIN" topic create "$topic" -b "127.0.0.1:$k" -p 3 \
	-c floe.iceberg.enabled=true \
	-c floe.iceberg.value.format=avro \
	-c floe.iceberg.commit.interval.ms=1000 >/dev/null

out="$FLOE_TEST_TMPDIR/py.out"
if ! "$SYSPY" "$(dirname "$0")/iceberg_avro_confluent.py" "$FLOE_BIN" "127.0.0.1:$k" \
	"http://127.0.0.1:$r" "127.0.0.1:$h" "$FLOE_TEST_TMPDIR/dev-data" "$topic" 2>&1 | tee "$out"; then
	echo "floe dev's log ends:" >&2
	tail -n 30 "$FLOE_TEST_TMPDIR/dev.log" >&2
	# The script's own FAIL line (what was expected, what was found) last.
	grep -m1 '^FAIL: ' "$out" >&2 || echo "iceberg_avro_confluent.py failed without a FAIL line (output above)" >&2
	exit 1
fi
