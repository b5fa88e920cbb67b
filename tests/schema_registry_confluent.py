"""Confluent's own Python client against floe's schema registry.

Run by tests/schema_registry_confluent.sh:

    python3 schema_registry_confluent.py BROKER REGISTRY_A REGISTRY_B SECURE_REGISTRY USER PASSWORD

REGISTRY_A and REGISTRY_B are two agents of one cluster (BROKER is one of
them); SECURE_REGISTRY is an agent of another cluster whose Kafka listener
authenticates, with the SCRAM user USER:PASSWORD.

1. The legacy AvroProducer (confluent_kafka.avro) produces Avro keys and
   values, registering <topic>-key and <topic>-value in floe's registry
   through agent A; AvroConsumer, given agent B's registry, reads them
   back decoded: every agent serves the same registry.
2. Evolution: a value schema with a new field that has a default is
   version 2; records of both versions read back, each with its writer's
   fields. A schema that BACKWARD refuses fails to produce (409) and
   nothing is written with it.
3. Each record carries, in Confluent's wire format, the ID the registry
   gave its schema, as the REST API (requests) reports it.
4. The newer SchemaRegistryClient registers, looks up, tests
   compatibility, sets levels and deletes, and sees Confluent's error
   codes.
5. Credentials: both clients with basic.auth.user.info reach the secure
   registry; without them they are refused with 401.

Every failed check exits with one line: FAIL: what was expected, what
happened.
"""

import json
import struct
import sys
import time
import uuid

import requests
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka import avro as cavro
from confluent_kafka.avro import AvroConsumer, AvroProducer, CachedSchemaRegistryClient
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from checks import check, fail

BROKER, REG_A, REG_B, REG_SECURE, USER, PASSWORD = sys.argv[1:7]
TOPIC = "sr-orders-" + uuid.uuid4().hex[:8]
READ_TIMEOUT = 60.0


KEY_SCHEMA = cavro.loads(json.dumps({
    "type": "record", "name": "OrderKey", "namespace": "shop",
    "fields": [{"name": "id", "type": "long"}]}))
V1 = cavro.loads(json.dumps({
    "type": "record", "name": "Order", "namespace": "shop",
    "fields": [{"name": "id", "type": "long"}, {"name": "item", "type": "string"}]}))
V2 = cavro.loads(json.dumps({
    "type": "record", "name": "Order", "namespace": "shop",
    "fields": [{"name": "id", "type": "long"}, {"name": "item", "type": "string"},
               {"name": "qty", "type": "int", "default": 1}]}))
# BACKWARD refuses it: it cannot read v2's data (price has no default).
BAD = cavro.loads(json.dumps({
    "type": "record", "name": "Order", "namespace": "shop",
    "fields": [{"name": "id", "type": "long"}, {"name": "price", "type": "double"}]}))


def rest(base, path):
    r = requests.get(base + path, timeout=10)
    check(r.status_code == 200, "GET %s%s: %d %s" % (base, path, r.status_code, r.text))
    check(r.headers.get("Content-Type") == "application/vnd.schemaregistry.v1+json",
          "GET %s: content type %r" % (path, r.headers.get("Content-Type")))
    return r.json()


def produce_all():
    p = AvroProducer({"bootstrap.servers": BROKER, "schema.registry.url": REG_A},
                     default_key_schema=KEY_SCHEMA, default_value_schema=V1)
    for i in range(5):
        p.produce(topic=TOPIC, key={"id": i}, value={"id": i, "item": "tea-%d" % i})
    check(p.flush(30) == 0, "AvroProducer did not deliver the v1 records")
    for i in range(5, 10):
        p.produce(topic=TOPIC, key={"id": i}, value={"id": i, "item": "cake-%d" % i, "qty": i},
                  value_schema=V2)
    check(p.flush(30) == 0, "AvroProducer did not deliver the v2 records")
    try:
        p.produce(topic=TOPIC, key={"id": 99}, value={"id": 99, "price": 1.5}, value_schema=BAD)
        p.flush(30)
        fail("producing with a schema BACKWARD refuses succeeded")
    except Exception as e:  # SerializerError wrapping the registry's 409
        check("409" in str(e), "producing with an incompatible schema failed with %r, want the registry's 409" % e)
    print("produced 10 Avro records with two value schemas; the incompatible one was refused", flush=True)


def consume_all():
    c = AvroConsumer({"bootstrap.servers": BROKER, "schema.registry.url": REG_B,
                      "group.id": "sr-" + TOPIC, "auto.offset.reset": "earliest"})
    c.subscribe([TOPIC])
    got = {}
    deadline = time.time() + READ_TIMEOUT
    while len(got) < 10 and time.time() < deadline:
        msg = c.poll(1.0)
        if msg is None:
            continue
        check(msg.error() is None, "AvroConsumer: %s" % msg.error())
        got[msg.key()["id"]] = msg.value()
    c.close()
    check(len(got) == 10, "AvroConsumer read %d of 10 records" % len(got))
    for i in range(5):
        want = {"id": i, "item": "tea-%d" % i}
        check(got[i] == want, "record %d read back as %r, want %r" % (i, got[i], want))
    for i in range(5, 10):
        want = {"id": i, "item": "cake-%d" % i, "qty": i}
        check(got[i] == want, "record %d read back as %r, want %r" % (i, got[i], want))
    print("AvroConsumer read the 10 records back decoded, through another agent's registry", flush=True)


def check_wire_format():
    subjects = rest(REG_A, "/subjects")
    for s in (TOPIC + "-key", TOPIC + "-value"):
        check(s in subjects, "subject %s not in %r" % (s, subjects))
    versions = rest(REG_B, "/subjects/%s-value/versions" % TOPIC)
    check(versions == [1, 2], "value versions %r, want [1, 2]" % (versions,))
    ids = [rest(REG_B, "/subjects/%s-value/versions/%d" % (TOPIC, v))["id"] for v in (1, 2)]
    check(ids[0] != ids[1], "both value versions have ID %d" % ids[0])
    # Raw bytes: magic 0, then the schema ID, big-endian.
    c = Consumer({"bootstrap.servers": BROKER, "group.id": "raw-" + TOPIC, "enable.auto.commit": False})
    c.assign([TopicPartition(TOPIC, 0, 0)])
    seen = []
    deadline = time.time() + READ_TIMEOUT
    while len(seen) < 10 and time.time() < deadline:
        msg = c.poll(1.0)
        if msg is None or msg.error():
            continue
        magic, sid = struct.unpack(">bI", msg.value()[:5])
        check(magic == 0, "record %d starts with %d, not Confluent's magic byte 0" % (msg.offset(), magic))
        seen.append(sid)
    c.close()
    check(seen == [ids[0]] * 5 + [ids[1]] * 5,
          "the records carry schema IDs %r, want 5 of %d then 5 of %d" % (seen, ids[0], ids[1]))
    for sid in ids:
        got = rest(REG_A, "/schemas/ids/%d" % sid)
        check("schema" in got and "Order" in got["schema"], "schema %d = %r" % (sid, got))
    print("records carry the registry's IDs %r in Confluent's wire format" % ids, flush=True)


def check_new_client():
    sr = SchemaRegistryClient({"url": REG_B})
    subject = "api-" + TOPIC
    s1 = Schema(json.dumps({"type": "record", "name": "A", "fields": [{"name": "a", "type": "int"}]}), "AVRO")
    s2 = Schema(json.dumps({"type": "record", "name": "A", "fields": [
        {"name": "a", "type": "int"}, {"name": "b", "type": "string", "default": ""}]}), "AVRO")
    bad = Schema(json.dumps({"type": "record", "name": "A", "fields": [{"name": "a", "type": "string"}]}), "AVRO")
    id1 = sr.register_schema(subject, s1)
    check(sr.lookup_schema(subject, s1).schema_id == id1, "lookup of a registered schema")
    check(sr.test_compatibility(subject, s2), "a schema adding a field with a default is not BACKWARD compatible")
    check(not sr.test_compatibility(subject, bad), "a schema changing a field's type is BACKWARD compatible")
    try:
        sr.register_schema(subject, bad)
        fail("registering an incompatible schema succeeded")
    except SchemaRegistryError as e:
        check(e.http_status_code == 409 and e.error_code == 409, "incompatible schema: %s" % e)
    id2 = sr.register_schema(subject, s2)
    latest = sr.get_latest_version(subject)
    check(latest.version == 2 and latest.schema_id == id2, "latest version %d ID %d" % (latest.version, latest.schema_id))
    check(sr.get_versions(subject) == [1, 2], "versions %r" % sr.get_versions(subject))
    text = rest(REG_A, "/schemas/ids/%d/schema" % id1)
    check(text == json.loads(s1.schema_str), "schema %d's text %r, want %s" % (id1, text, s1.schema_str))
    sr.set_compatibility(subject_name=subject, level="NONE")
    check(sr.get_compatibility(subject) == "NONE", "subject level %r" % sr.get_compatibility(subject))
    id3 = sr.register_schema(subject, bad)
    check(id3 not in (id1, id2), "a new schema reused ID %d" % id3)
    json_id = sr.register_schema("json-" + TOPIC, Schema('{"type": "object"}', "JSON"))
    check(sr.get_schema(json_id).schema_type == "JSON", "JSON schema type %r" % sr.get_schema(json_id).schema_type)
    check(sr.delete_version(subject, 3) == 3, "deleting version 3")
    deleted = sr.delete_subject(subject, permanent=True)
    check(sorted(deleted) == [1, 2], "deleting the subject deleted %r" % (deleted,))
    for call, code in ((lambda: sr.get_latest_version(subject), 40401),
                       (lambda: sr.get_version("json-" + TOPIC, 7), 40402),
                       (lambda: sr.get_schema(987654), 40403)):
        try:
            call()
            fail("a read of what is not there succeeded")
        except SchemaRegistryError as e:
            check(e.error_code == code, "error %s, want code %d" % (e, code))
    print("SchemaRegistryClient: register, lookup, compatibility, levels, deletes and errors", flush=True)


def check_credentials():
    schema = Schema('"string"', "AVRO")
    try:
        SchemaRegistryClient({"url": REG_SECURE}).register_schema("auth-value", schema)
        fail("registering without credentials succeeded")
    except SchemaRegistryError as e:
        check(e.http_status_code == 401 and e.error_code == 401, "without credentials: %s, want 401" % e)
    try:
        SchemaRegistryClient({"url": REG_SECURE, "basic.auth.user.info": USER + ":wrong"}).register_schema("auth-value", schema)
        fail("registering with a wrong password succeeded")
    except SchemaRegistryError as e:
        check(e.http_status_code == 401, "with a wrong password: %s, want 401" % e)
    sid = SchemaRegistryClient({"url": REG_SECURE, "basic.auth.user.info": USER + ":" + PASSWORD}).register_schema("auth-value", schema)
    legacy = CachedSchemaRegistryClient({"url": REG_SECURE, "basic.auth.credentials.source": "USER_INFO",
                                         "basic.auth.user.info": USER + ":" + PASSWORD})
    check(legacy.register("auth-value", cavro.loads('"string"')) == sid, "the legacy client with credentials got another ID")
    print("basic.auth.user.info as a SCRAM user is accepted; no or wrong credentials are refused", flush=True)


produce_all()
consume_all()
check_wire_format()
check_new_client()
check_credentials()
print("OK", flush=True)
