#!/usr/bin/env bash
# Confluent's own Python client (Debian's python3-confluent-kafka, with
# python3-avro) against floe's schema registry, on agents on the
# localstack etcd and MinIO: the legacy AvroProducer registers Avro
# schemas in floe's registry and produces, AvroConsumer reads the records
# back decoded through another agent's registry, the newer
# SchemaRegistryClient uses the rest of the API, and credentials
# (basic.auth.user.info as a SCRAM user) are checked on an agent whose
# Kafka listener authenticates. The checks are in
# tests/schema_registry_confluent.py.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

need_pkg confluent_kafka python3-confluent-kafka
need_pkg avro python3-avro
need_pkg requests python3-requests
need_pkg curl curl

cluster="test-sr-$$-$RANDOM"
k1=$(free_port) h1=$(free_port) r1=$(free_port)
k2=$(free_port) h2=$(free_port) r2=$(free_port)
k3=$(free_port) h3=$(free_port) r3=$(free_port)
trap stop_all EXIT
# Two agents of one cluster, each serving the registry.
start_agent a1 "$k1" "$h1" "$cluster" --schema-registry-addr "127.0.0.1:$r1" --flush-interval 20ms --auto-create-topics
start_agent a2 "$k2" "$h2" "$cluster" --schema-registry-addr "127.0.0.1:$r2" --flush-interval 20ms --auto-create-topics
# An agent of another cluster whose Kafka listener authenticates, so its
# registry wants credentials.
start_agent a3 "$k3" "$h3" "$cluster-secure" --schema-registry-addr "127.0.0.1:$r3" \
	--listener "SASL_PLAINTEXT://127.0.0.1:$k3" --sasl-bootstrap-user ann:ann-secret

out="$FLOE_TEST_TMPDIR/py.out"
if ! "$SYSPY" "$(dirname "$0")/schema_registry_confluent.py" "127.0.0.1:$k1" \
	"http://127.0.0.1:$r1" "http://127.0.0.1:$r2" "http://127.0.0.1:$r3" ann ann-secret 2>&1 | tee "$out"; then
	for a in a1 a2 a3; do
		echo "floe $a's log ends:" >&2
		tail -n 20 "$FLOE_TEST_TMPDIR/$a.log" >&2
	done
	# The script's own FAIL line (what was expected, what happened) last.
	grep -m1 '^FAIL: ' "$out" >&2 || echo "schema_registry_confluent.py failed without a FAIL line (output above)" >&2
	exit 1
fi
