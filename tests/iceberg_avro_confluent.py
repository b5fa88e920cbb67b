"""Avro values from Confluent's own Python client become typed Iceberg columns.

Run by tests/iceberg_avro_confluent.sh, against `floe dev`:

    python3 iceberg_avro_confluent.py FLOE_BIN BROKER REGISTRY HTTP DATA_DIR TOPIC

TOPIC exists, with floe.iceberg.enabled=true and
floe.iceberg.value.format=avro; HTTP is floe dev's HTTP address (its
/metrics has the exporter's), DATA_DIR its --data-dir (the SQLite catalog
and the bucket's directory are there).

1. The legacy AvroProducer (confluent_kafka.avro) registers the value
   schema v1 (string, long, double, boolean, a nested record, an array of
   strings, ["null", "string"], an enum, timestamp-millis) in floe's
   registry and produces N keyed records with it. Once they are exported
   (no lag in `floe topic describe -o json`, the exporter's rows counter
   at N, no dead letters), the table has v1's columns.
2. v2 adds an optional field with a default; M more records are produced
   with it, then a plain Producer writes one value that is not Avro. The
   export catches up again: no lag, N+M+1 rows, exactly one dead letter.
3. The table, from the catalog's current metadata file: the typed
   columns with their Iceberg types (v2's field, added by evolving the
   table, optional), the kafka, key and headers columns and
   _dead_letter, and no binary value column; the current snapshot's
   total-records is N+M+1 and its floe.offsets are the topic's end
   offsets.
4. The manifests (Avro files, read with python3-avro: no Parquet reader
   is packaged for Debian's python) list data files of N+M+1 records
   whose column statistics say the values were decoded: _dead_letter is
   null in all rows but one, device in all but it, v2's field null in
   the N v1 rows and the dead letter, the optional note in the records
   produced without one, and seq's and at's bounds are those produced.

Every failed check exits with one line: FAIL: what was expected, what was
found.
"""

import datetime
import json
import os
import re
import sqlite3
import struct
import subprocess
import sys
import time
import urllib.request
import warnings

from avro.datafile import DataFileReader
from avro.io import DatumReader
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka import avro as cavro
from confluent_kafka.avro import AvroProducer

from checks import check, fail

# python3-avro warns of the manifests' map logical types (lists of key and value).
warnings.filterwarnings("ignore", module="avro")

FLOE, BROKER, REGISTRY, HTTP, DATA_DIR, TOPIC = sys.argv[1:7]
N, M = 300, 120
TOTAL = N + M + 1
PARTITIONS = 3
EXPORT_DEADLINE = 60.0


V1_FIELDS = [
    {"name": "device", "type": "string"},
    {"name": "seq", "type": "long"},
    {"name": "temp", "type": "double"},
    {"name": "ok", "type": "boolean"},
    {"name": "site", "type": {"type": "record", "name": "Site", "fields": [
        {"name": "name", "type": "string"}, {"name": "floor", "type": "int"}]}},
    {"name": "tags", "type": {"type": "array", "items": "string"}},
    {"name": "note", "type": ["null", "string"], "default": None},
    {"name": "level", "type": {"type": "enum", "name": "Level", "symbols": ["LOW", "MID", "HIGH"]}},
    {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
]
V1 = {"type": "record", "name": "Reading", "namespace": "iot", "fields": V1_FIELDS}
# BACKWARD compatible: the added field has a default.
V2 = dict(V1, fields=V1_FIELDS + [{"name": "unit", "type": ["null", "string"], "default": None}])
KEY = cavro.loads('"string"')

T0 = datetime.datetime(2026, 3, 1, 9, 0, tzinfo=datetime.timezone.utc)


def reading(i, v2):
    r = {"device": "dev-%d" % (i % 17), "seq": i, "temp": 20.0 + i / 8.0, "ok": i % 3 != 0,
         "site": {"name": "hall-%d" % (i % 4), "floor": i % 5},
         "tags": ["t%d" % j for j in range(i % 4)],
         "note": None if i % 2 else "note %d" % i,
         "level": ("LOW", "MID", "HIGH")[i % 3],
         "at": T0 + datetime.timedelta(milliseconds=1500 * i)}
    if v2:
        r["unit"] = "celsius"
    return r


def produce_v1():
    p = AvroProducer({"bootstrap.servers": BROKER, "schema.registry.url": REGISTRY},
                     default_key_schema=KEY, default_value_schema=cavro.loads(json.dumps(V1)))
    for i in range(N):
        p.produce(topic=TOPIC, key="dev-%d" % (i % 17), value=reading(i, False),
                  headers=[("source", b"avro-v1")])
        p.poll(0)
    check(p.flush(30) == 0, "AvroProducer delivered the %d v1 records within 30s, some were left" % N)
    print("produced %d records with value schema v1" % N, flush=True)
    return p


def produce_v2(p):
    v2 = cavro.loads(json.dumps(V2))
    for i in range(N, N + M):
        p.produce(topic=TOPIC, key="dev-%d" % (i % 17), value=reading(i, True), value_schema=v2,
                  headers=[("source", b"avro-v2")])
        p.poll(0)
    check(p.flush(30) == 0, "AvroProducer delivered the %d v2 records within 30s, some were left" % M)
    raw = Producer({"bootstrap.servers": BROKER})
    raw.produce(TOPIC, value=b"not avro", key=b"raw")
    check(raw.flush(30) == 0, "the plain Producer delivered its record within 30s, it was left")
    versions = json.load(urllib.request.urlopen("%s/subjects/%s-value/versions" % (REGISTRY, TOPIC), timeout=10))
    check(versions == [1, 2], "subject %s-value has versions [1, 2], found %r" % (TOPIC, versions))
    print("produced %d records with value schema v2 and 1 that is not Avro" % M, flush=True)


def end_offsets(total):
    c = Consumer({"bootstrap.servers": BROKER, "group.id": "iceberg-avro-check", "enable.auto.commit": False})
    ends = {}
    for p in range(PARTITIONS):
        lo, hi = c.get_watermark_offsets(TopicPartition(TOPIC, p), timeout=10)
        ends[p] = hi
    c.close()
    check(sum(ends.values()) == total, "the topic's end offsets add up to %d records, found %r" % (total, ends))
    return ends


def describe():
    out = subprocess.run([FLOE, "topic", "describe", TOPIC, "-o", "json", "-b", BROKER],
                         capture_output=True, text=True, timeout=30)
    if out.returncode != 0:
        return None, out.stderr.strip()
    return json.loads(out.stdout)["topics"][0], ""


METRIC = re.compile(r'^(floe_exporter_\w+)\{([^}]*)\} (\S+)$')


def exporter_metrics():
    text = urllib.request.urlopen("http://%s/metrics" % HTTP, timeout=10).read().decode()
    got = {}
    for line in text.splitlines():
        m = METRIC.match(line)
        if m and 'topic="%s"' % TOPIC in m.group(2):
            got[m.group(1)] = float(m.group(3))
    return got


def wait_exported(rows):
    start = time.time()
    deadline = start + EXPORT_DEADLINE
    ice, err, mets = None, "", {}
    while time.time() < deadline:
        d, err = describe()
        ice = d and d.get("iceberg")
        mets = exporter_metrics()
        if ice and ice["lag_records"] == 0 and ice["committed"] and mets.get("floe_exporter_rows_total") == rows:
            print("%d rows exported in %.1fs: %s" % (rows, time.time() - start, json.dumps(ice)), flush=True)
            return mets
        time.sleep(0.5)
    fail("within %.0fs the export has no lag and floe_exporter_rows_total is %d; found iceberg %s%s, metrics %s"
         % (EXPORT_DEADLINE, rows, json.dumps(ice), " (describe: %s)" % err if err else "", json.dumps(mets)))


def table_metadata():
    table = re.sub(r"[^A-Za-z0-9_]", "_", TOPIC)
    db = sqlite3.connect(os.path.join(DATA_DIR, "iceberg-catalog.db"))
    rows = db.execute("select metadata_location from iceberg_tables where table_namespace = 'floe' and table_name = ?",
                      (table,)).fetchall()
    db.close()
    check(len(rows) == 1, "one catalog row for table floe.%s, found %r" % (table, rows))
    return local(rows[0][0])


def local(location):
    # floe dev's bucket is a directory: its warehouse is file:///<data-dir>/bucket/iceberg.
    check(location.startswith("file://"), "a file:// location under floe dev's bucket, found %s" % location)
    path = location[len("file://"):]
    warehouse = os.path.realpath(os.path.join(DATA_DIR, "bucket", "iceberg"))
    check(os.path.realpath(path).startswith(warehouse + "/"), "a location under %s, found %s" % (warehouse, location))
    check(os.path.exists(path), "the file %s exists, it does not" % path)
    return path


def simple(t):
    """An Iceberg type as a comparable value: primitives as their names,
    structs as ("struct", {name: (type, required)}), lists as ("list", type)."""
    if isinstance(t, str):
        return t
    if t["type"] == "struct":
        return ("struct", {f["name"]: (simple(f["type"]), f["required"]) for f in t["fields"]})
    if t["type"] == "list":
        return ("list", simple(t["element"]))
    return json.dumps(t)


def check_schema(meta):
    schema, _ = current(meta)
    cols = {f["name"]: (simple(f["type"]), f["required"]) for f in schema["fields"]}
    names = [f["name"] for f in schema["fields"]]
    want_types = {
        "kafka": ("struct", {"topic": ("string", True), "partition": ("int", True), "offset": ("long", True),
                             "timestamp": ("timestamptz", True), "timestamp_type": ("string", True)}),
        "key": "binary",
        "headers": ("list", ("struct", {"key": ("string", True), "value": ("binary", False)})),
        "device": "string", "seq": "long", "temp": "double", "ok": "boolean",
        # Nested fields are optional too (a dead letter has none).
        "site": ("struct", {"name": ("string", False), "floor": ("long", False)}),
        "tags": ("list", "string"),
        "note": "string", "level": "string", "at": "timestamptz", "unit": "string",
        "_dead_letter": ("struct", {"reason": ("string", True), "value": ("binary", False)}),
    }
    for name, want in want_types.items():
        check(name in cols, "a column %s in the current schema, found columns %s" % (name, names))
        check(cols[name][0] == want, "column %s of type %r, found %r" % (name, want, cols[name][0]))
    check("value" not in cols, "no binary value column with value.format=avro, found columns %s" % names)
    check(not cols["unit"][1], "v2's field unit optional, found it required")
    check(cols["kafka"][1], "the kafka column required, found it optional")
    check(names[-1] == "_dead_letter", "_dead_letter the last column, found the order %s" % names)
    check(names.index("unit") > names.index("at"), "v2's unit after v1's fields, found the order %s" % names)
    print("schema %d: %s" % (schema["schema-id"], ", ".join("%s %s" % (n, json.dumps(cols[n][0])) for n in names)),
          flush=True)
    return {f["name"]: f for f in schema["fields"]}


def current(meta):
    schema = next(s for s in meta["schemas"] if s["schema-id"] == meta["current-schema-id"])
    snap = next(s for s in meta["snapshots"] if s["snapshot-id"] == meta["current-snapshot-id"])
    return schema, snap


def check_v1_table(mets):
    check(mets.get("floe_exporter_dead_letters_total", 0) == 0,
          "no dead letters among the v1 records, found floe_exporter_dead_letters_total %r" % mets.get("floe_exporter_dead_letters_total"))
    with open(table_metadata()) as f:
        schema, snap = current(json.load(f))
    names = [f["name"] for f in schema["fields"]]
    check("seq" in names and "value" not in names and "unit" not in names,
          "the table of the v1 records has v1's columns (seq) and neither value nor v2's unit, found %s" % names)
    check(snap["summary"].get("total-records") == str(N),
          "the v1 snapshot's total-records %d, found %r" % (N, snap["summary"].get("total-records")))


def check_snapshot(meta, ends):
    _, snap = current(meta)
    summary = snap["summary"]
    check(summary.get("total-records") == str(TOTAL),
          "the current snapshot's total-records %d, found %r" % (TOTAL, summary.get("total-records")))
    offs = json.loads(summary.get("floe.offsets", "null") or "null")
    # floe.offsets is each partition's first offset not in the table: the
    # last exported offset plus one, the end offset when all are exported.
    want = {str(p): e for p, e in ends.items()}
    check(offs == want, "floe.offsets (each partition's last exported offset + 1) %s, the topic's end offsets; found %s"
          % (json.dumps(want), json.dumps(offs)))
    print("snapshot %d: total-records %s, floe.offsets %s (end offsets %s)"
          % (snap["snapshot-id"], summary["total-records"], summary["floe.offsets"], json.dumps(want)), flush=True)
    return snap


def avro_file(path):
    with open(path, "rb") as f:
        r = DataFileReader(f, DatumReader())
        try:
            return list(r)
        finally:
            r.close()


def field_id(fields, *path):
    f = fields[path[0]]
    for name in path[1:]:
        f = next(g for g in f["type"]["fields"] if g["name"] == name)
    return f["id"]


def check_manifests(snap, fields):
    files = []
    for m in avro_file(local(snap["manifest-list"])):
        for e in avro_file(local(m["manifest_path"])):
            if e["status"] != 2:  # not DELETED
                files.append(e["data_file"])
    records = sum(f["record_count"] for f in files)
    check(records == TOTAL, "data files of %d records in the current snapshot's manifests, found %d in %d files"
          % (TOTAL, records, len(files)))

    def nulls(fid, added_later=False):
        n = 0
        for f in files:
            counts = dict((kv["key"], kv["value"]) for kv in (f.get("null_value_counts") or []))
            if fid in counts:
                n += counts[fid]
            elif added_later and not any(kv["key"] == fid for kv in f.get("value_counts") or []):
                n += f["record_count"]  # a file written before the column: null in all its rows
            else:
                fail("null_value_counts of field %d in every data file, missing in %s" % (fid, f["file_path"]))
        return n

    def bound(stat, fid, pick):
        vals = []
        for f in files:
            for kv in f.get(stat) or []:
                if kv["key"] == fid:
                    vals.append(struct.unpack("<q", kv["value"])[0])
        check(vals, "%s of field %d in the data files, found none" % (stat, fid))
        return pick(vals)

    dl = field_id(fields, "_dead_letter", "reason")
    check(nulls(dl) == TOTAL - 1, "_dead_letter.reason null in %d rows (one dead letter), found %d" % (TOTAL - 1, nulls(dl)))
    for name, want in (("device", 1), ("unit", N + 1), ("note", (N + M) // 2 + 1)):
        # device: only the dead letter has none; unit: the v1 rows and the
        # dead letter; note: the odd i (null) and the dead letter.
        got = nulls(field_id(fields, name), added_later=name == "unit")
        check(got == want, "column %s null in %d rows, found %d" % (name, want, got))
    seq = field_id(fields, "seq")
    lo, hi = bound("lower_bounds", seq, min), bound("upper_bounds", seq, max)
    check((lo, hi) == (0, N + M - 1), "seq between 0 and %d, found bounds %d and %d" % (N + M - 1, lo, hi))
    at = field_id(fields, "at")
    lo, hi = bound("lower_bounds", at, min), bound("upper_bounds", at, max)
    t0 = int(T0.timestamp()) * 1000000
    want = (t0, t0 + 1500 * 1000 * (N + M - 1))
    check((lo, hi) == want, "at between %d and %d (microseconds), found %d and %d" % (want + (lo, hi)))
    print("manifests: %d data files, %d records; column statistics: 1 dead letter, unit null in the %d v1 rows, "
          "seq 0..%d, at from %s" % (len(files), records, N, N + M - 1, T0.isoformat()), flush=True)


p = produce_v1()
end_offsets(N)
check_v1_table(wait_exported(N))
produce_v2(p)
ends = end_offsets(TOTAL)
mets = wait_exported(TOTAL)
check(mets.get("floe_exporter_dead_letters_total") == 1,
      "floe_exporter_dead_letters_total 1 (the value that is not Avro), found %r" % mets.get("floe_exporter_dead_letters_total"))
check(mets.get("floe_exporter_skipped_records_total", 0) == 0,
      "floe_exporter_skipped_records_total 0, found %r" % mets.get("floe_exporter_skipped_records_total"))
with open(table_metadata()) as f:
    meta = json.load(f)
fields = check_schema(meta)
snap = check_snapshot(meta, ends)
check_manifests(snap, fields)
print("OK", flush=True)
