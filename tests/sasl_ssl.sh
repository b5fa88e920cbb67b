#!/usr/bin/env bash
# Security end to end with real clients: an agent on the localstack etcd and
# MinIO with a SASL_SSL listener; kcat (librdkafka) and `floe` authenticate
# with SCRAM over TLS. Checks that bad credentials are refused, that a user
# without ACLs can do nothing, that WRITE on a topic prefix allows exactly
# that prefix, that a group's READ ACL gates consuming in it, and that the
# HTTP listener wants credentials.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

need_pkg kcat kcat
need_pkg openssl openssl

dir=$FLOE_TEST_TMPDIR/pki
mkdir -p "$dir"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj "/CN=floe test CA" \
	-keyout "$dir/ca.key" -out "$dir/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=127.0.0.1" \
	-keyout "$dir/server.key" -out "$dir/server.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\n' >"$dir/ext.cnf"
openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial \
	-days 1 -extfile "$dir/ext.cnf" -out "$dir/server.pem" 2>/dev/null

cluster="test-sasl-$$-$RANDOM"
k=$(free_port) h=$(free_port)
trap stop_all EXIT
start_agent a1 "$k" "$h" "$cluster" \
	--listener "SASL_SSL://127.0.0.1:$k" --tls-cert "$dir/server.pem" --tls-key "$dir/server.key" \
	--sasl-bootstrap-user admin:admin-secret --super-users User:admin --http-token t0ken \
	--flush-interval 50ms

kc() { # kcat as USER PASSWORD, then kcat arguments
	local user=$1 pass=$2
	shift 2
	kcat -b "127.0.0.1:$k" -X security.protocol=SASL_SSL -X sasl.mechanisms=SCRAM-SHA-512 \
		-X sasl.username="$user" -X sasl.password="$pass" -X ssl.ca.location="$dir/ca.pem" -m 5 "$@"
}
fl() { # floe as admin
	FLOE_SASL_PASSWORD=admin-secret "$FLOE_BIN" "$@" -b "127.0.0.1:$k" --tls-ca "$dir/ca.pem" --sasl-user admin
}
fail() {
	echo "FAIL: $*" >&2
	exit 1
}

# Wrong password, unknown user: refused.
kc admin wrong -L >/dev/null 2>&1 && fail "kcat with a wrong password was served"
kc mallory x -L >/dev/null 2>&1 && fail "kcat as an unknown user was served"
kcat -b "127.0.0.1:$k" -m 5 -L >/dev/null 2>&1 && fail "kcat without TLS and SASL was served"

# The admin creates a user and topics.
echo alice-pw | fl user create alice --password-stdin >/dev/null
fl topic create alice-orders -p 2 >/dev/null
fl topic create bob-orders -p 1 >/dev/null

# Alice, authenticated but without ACLs, can do nothing.
if echo x | kc alice alice-pw -t alice-orders -P 2>/dev/null; then
	got=$(kc admin admin-secret -t alice-orders -C -e -q -f '%s\n' | wc -l)
	[[ $got -eq 0 ]] || fail "alice produced without an ACL"
fi

# WRITE (and DESCRIBE) on the prefix alice- lets her produce there only.
fl acl create --allow User:alice --operation write,describe --topic alice- --prefixed >/dev/null
seq 1 100 | kc alice alice-pw -t alice-orders -P
echo x | kc alice alice-pw -t bob-orders -P 2>/dev/null || true
[[ $(kc admin admin-secret -t alice-orders -C -e -q -f '%s\n' | wc -l) -eq 100 ]] || fail "alice's 100 records are not in alice-orders"
[[ $(kc admin admin-secret -t bob-orders -C -e -q -f '%s\n' | wc -l) -eq 0 ]] || fail "alice wrote to bob-orders"

# Consuming in a group needs READ on the topic and on the group.
fl acl create --allow User:alice --operation read --topic alice-orders >/dev/null
if kc alice alice-pw -G billing -c 1 -q -X auto.offset.reset=earliest alice-orders >/dev/null 2>&1; then
	fail "alice consumed in group billing without READ on it"
fi
fl acl create --allow User:alice --operation read --group billing >/dev/null
got=$(kc alice alice-pw -G billing -c 100 -q -f '%s\n' -X auto.offset.reset=earliest alice-orders | wc -l)
[[ $got -eq 100 ]] || fail "alice read $got of 100 records in group billing"

# The HTTP listener: health open, metrics need the token or a SCRAM user.
[[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$h/healthz") == 200 ]] || fail "/healthz not open"
[[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$h/metrics") == 401 ]] || fail "/metrics served without credentials"
[[ $(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer t0ken' "http://127.0.0.1:$h/metrics") == 200 ]] || fail "/metrics refused the token"
[[ $(curl -s -o /dev/null -w '%{http_code}' -u alice:alice-pw "http://127.0.0.1:$h/metrics") == 200 ]] || fail "/metrics refused a SCRAM user"

# Credentials never reach the log.
if grep -q -e admin-secret -e alice-pw "$FLOE_TEST_TMPDIR/a1.log"; then
	fail "a password appears in the agent's log"
fi
echo "ok: SASL_SSL with kcat and floe: authentication, prefix WRITE, group READ, HTTP credentials"
