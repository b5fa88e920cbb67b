#!/usr/bin/env bash
# librdkafka's transactional API (Debian's python3-confluent-kafka) against
# a floe agent on the localstack etcd and MinIO: commits and aborts,
# consume-transform-produce with send_offsets_to_transaction, fencing, and
# read_committed / read_uncommitted consumers reading exactly what they
# should. The checks are in tests/transactions_librdkafka.py.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

need_pkg confluent_kafka python3-confluent-kafka
need_pkg curl curl

cluster="test-txn-rdkafka-$$-$RANDOM"
k=$(free_port) h=$(free_port)
trap stop_all EXIT
start_agent a1 "$k" "$h" "$cluster" --flush-interval 20ms --offsets-topic-linger 50ms
broker="127.0.0.1:$k"

"$FLOE_BIN" topic create rdk-in rdk-out -p 3 -b "$broker" >/dev/null

out="$FLOE_TEST_TMPDIR/py.out"
if ! "$SYSPY" "$(dirname "$0")/transactions_librdkafka.py" "$broker" 2>&1 | tee "$out"; then
	echo "floe's log ends:" >&2
	tail -n 40 "$FLOE_TEST_TMPDIR/a1.log" >&2
	# The script's own FAIL line (what was expected, what happened) last.
	grep -m1 '^FAIL: ' "$out" >&2 || echo "transactions_librdkafka.py failed without a FAIL line (output above)" >&2
	exit 1
fi
