"""librdkafka's transactional API (through confluent-kafka-python) against floe.

Run by tests/transactions_librdkafka.sh: python3 transactions_librdkafka.py BROKER,
with the topics rdk-in and rdk-out (3 partitions each) already created.

1. A transactional producer commits a transaction, aborts one, commits another.
2. Consume-transform-produce: a read_committed group consumer reads the input,
   a second transactional producer writes transformed records to the output
   and commits the consumer's positions with send_offsets_to_transaction;
   the group's committed offsets are then the end of the input. One more
   round aborts, and the committed offsets do not move.
3. Fencing: a new producer with the first one's transactional.id calls
   init_transactions; the first one's commit fails as fenced.
4. read_committed consumers read exactly the committed records, by offset;
   read_uncommitted consumers read the aborted ones too.

Every failed check exits with one line: what was expected, what happened.
Timeouts are generous (a shared, sometimes slow machine) and nothing is
asserted about timing.
"""

import os
import sys
import time

from confluent_kafka import (OFFSET_BEGINNING, Consumer, KafkaError,
                             KafkaException, Producer, TopicPartition,
                             libversion)

from checks import fail

BROKER = sys.argv[1]
IN, OUT = "rdk-in", "rdk-out"
PARTITIONS = 3
GROUP = "rdk-eos"
# librdkafka's debug contexts (e.g. RDKAFKA_DEBUG=protocol,eos), to see what it sends.
DEBUG = {"debug": os.environ["RDKAFKA_DEBUG"]} if os.environ.get("RDKAFKA_DEBUG") else {}
OP_TIMEOUT = 60.0   # seconds, for every blocking transactional call
READ_TIMEOUT = 90.0  # seconds, to read a topic up to its end


def step(msg):
    print(f"-- {msg}", flush=True)


def producer(txn_id):
    return Producer({
        "bootstrap.servers": BROKER,
        "transactional.id": txn_id,
        "transaction.timeout.ms": 60000,
        "linger.ms": 5,
        "error_cb": lambda err: print(f"producer {txn_id}: error callback: {err}", flush=True),
        **DEBUG,
    })


def consumer(group, isolation, **extra):
    conf = {
        "bootstrap.servers": BROKER,
        "group.id": group,
        "isolation.level": isolation,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "error_cb": lambda err: print(f"consumer {group}: error callback: {err}", flush=True),
        **DEBUG,
    }
    conf.update(extra)
    return Consumer(conf)


def call(what, fn, *args):
    """Runs a blocking client call; a KafkaException fails the test."""
    try:
        return fn(*args)
    except KafkaException as e:
        err = e.args[0]
        fail(f"{what}: expected success, got {err.name()} ({err.code()}): {err.str()} "
             f"(fatal={err.fatal()}, retriable={err.retriable()}, txn_requires_abort={err.txn_requires_abort()})")


class Log:
    """What the producers' delivery reports said landed where: (topic,
    partition, offset) -> value, split by what should become of it."""

    def __init__(self):
        self.committed = {}
        self.aborted = {}
        self.errors = []

    def send(self, p, topic, partition, value, committed):
        dest = self.committed if committed else self.aborted

        def report(err, msg):
            if err is not None:
                self.errors.append(f"{topic}/{partition} {value}: {err}")
            else:
                dest[(msg.topic(), msg.partition(), msg.offset())] = msg.value().decode()

        p.produce(topic, key=value.split("-")[0].encode(), value=value.encode(),
                  partition=partition, on_delivery=report)

    def check_delivered(self, n, what):
        if self.errors:
            fail(f"{what}: expected every record delivered, got delivery errors: {self.errors[:3]}")
        got = len(self.committed) + len(self.aborted)
        if got != n:
            fail(f"{what}: expected {n} delivery reports in all, got {got}")


def records(topic, log, which):
    return {k: v for k, v in getattr(log, which).items() if k[0] == topic}


def write_txn(p, log, topic, label, n, commit):
    """One transaction of n records over every partition of topic."""
    call(f"{label}: begin_transaction", p.begin_transaction)
    for i in range(n):
        log.send(p, topic, i % PARTITIONS, f"{label}-{i:03d}", commit)
    if commit:
        call(f"{label}: commit_transaction", p.commit_transaction, OP_TIMEOUT)
    else:
        # Flush first, so the records are in the log when the abort comes
        # (abort_transaction would otherwise purge what is still queued).
        left = p.flush(OP_TIMEOUT)
        if left:
            fail(f"{label}: expected flush to deliver everything, {left} records still queued")
        call(f"{label}: abort_transaction", p.abort_transaction, OP_TIMEOUT)


def end_offsets(c, topic):
    """The end of every partition as c's isolation level sees it."""
    ends = {}
    for part in range(PARTITIONS):
        wm = call(f"watermarks of {topic}/{part}", c.get_watermark_offsets,
                  TopicPartition(topic, part), OP_TIMEOUT, False)
        if wm is None:
            fail(f"watermarks of {topic}/{part}: expected an answer, got a timeout")
        ends[part] = wm[1]
    return ends


def read_to_end(c, topic, what):
    """Polls c (assigned or subscribed to topic) until its position is the
    end of every partition; returns (topic, partition, offset) -> value,
    failing on a record read twice."""
    got = {}
    ends = end_offsets(c, topic)
    deadline = time.monotonic() + READ_TIMEOUT
    tps = [TopicPartition(topic, part) for part in range(PARTITIONS)]
    pos = {}
    while True:
        msg = c.poll(0.5)
        if msg is not None:
            if msg.error():
                if msg.error().code() != KafkaError._PARTITION_EOF:
                    fail(f"{what}: expected records, got error {msg.error()}")
            else:
                key = (msg.topic(), msg.partition(), msg.offset())
                if key in got:
                    fail(f"{what}: expected each record once, read {key} twice")
                got[key] = msg.value().decode()
        try:
            pos = {tp.partition: tp.offset for tp in c.position(tps)}
        except KafkaException:
            pos = {}  # not assigned yet
        if all(pos.get(part, -1) >= end for part, end in ends.items()):
            return got
        if time.monotonic() > deadline:
            fail(f"{what}: expected to reach the end {ends} of {topic} within {READ_TIMEOUT:.0f}s, "
                 f"position {pos} after reading {len(got)} records")


def read_all(topic, isolation, what):
    c = consumer(f"rdk-verify-{isolation}", isolation, **{"enable.partition.eof": True})
    c.assign([TopicPartition(topic, part, OFFSET_BEGINNING) for part in range(PARTITIONS)])
    try:
        return read_to_end(c, topic, what)
    finally:
        c.close()


def same(what, want, got):
    if want != got:
        missing = sorted(set(want.items()) - set(got.items()))
        extra = sorted(set(got.items()) - set(want.items()))
        fail(f"{what}: expected {len(want)} records, read {len(got)}; "
             f"missing {missing[:5]}{'...' if len(missing) > 5 else ''}, "
             f"unexpected {extra[:5]}{'...' if len(extra) > 5 else ''}")


def committed_offsets(c):
    tps = [TopicPartition(IN, part) for part in range(PARTITIONS)]
    res = call(f"committed offsets of {GROUP}", c.committed, tps, OP_TIMEOUT)
    for tp in res:
        if tp.error:
            fail(f"committed offset of {GROUP} on {IN}/{tp.partition}: expected an offset, got {tp.error}")
    return {tp.partition: tp.offset for tp in res}


def main():
    log = Log()

    step("init_transactions, then commit, abort, commit")
    p1 = producer("rdk-writer")
    call("init_transactions (rdk-writer)", p1.init_transactions, OP_TIMEOUT)
    write_txn(p1, log, IN, "c1", 30, commit=True)
    write_txn(p1, log, IN, "a1", 15, commit=False)
    write_txn(p1, log, IN, "c2", 30, commit=True)
    log.check_delivered(75, "first three transactions")

    step("consume-transform-produce, committed")
    c = consumer(GROUP, "read_committed")
    c.subscribe([IN])
    got = read_to_end(c, IN, f"group {GROUP} (read_committed) reading {IN}")
    same(f"group {GROUP} (read_committed) reading {IN}", records(IN, log, "committed"), got)
    p2 = producer("rdk-transformer")
    call("init_transactions (rdk-transformer)", p2.init_transactions, OP_TIMEOUT)

    def transform(label, got, commit):
        call(f"{label}: begin_transaction", p2.begin_transaction)
        for (_, part, _), value in sorted(got.items()):
            log.send(p2, OUT, part, f"{label}-{value.upper()}", commit)
        positions = call("consumer position", c.position, c.assignment())
        call(f"{label}: send_offsets_to_transaction", p2.send_offsets_to_transaction,
             positions, c.consumer_group_metadata(), OP_TIMEOUT)
        if commit:
            call(f"{label}: commit_transaction", p2.commit_transaction, OP_TIMEOUT)
        else:
            left = p2.flush(OP_TIMEOUT)
            if left:
                fail(f"{label}: expected flush to deliver everything, {left} records still queued")
            call(f"{label}: abort_transaction", p2.abort_transaction, OP_TIMEOUT)
        return {tp.partition: tp.offset for tp in positions}

    ends = end_offsets(c, IN)
    positions = transform("t1", got, commit=True)
    if positions != ends:
        fail(f"consumer position after reading {IN}: expected its end {ends}, got {positions}")
    committed = committed_offsets(c)
    if committed != ends:
        fail(f"group {GROUP}'s committed offsets after the committed transaction: "
             f"expected the end of {IN} {ends}, got {committed}")

    step("consume-transform-produce, aborted")
    before = set(log.committed)
    write_txn(p1, log, IN, "c3", 9, commit=True)
    want = {k: v for k, v in log.committed.items() if k not in before}
    got = read_to_end(c, IN, f"group {GROUP} reading the new records of {IN}")
    same(f"group {GROUP} reading the new records of {IN}", want, got)
    transform("t2", got, commit=False)
    after = committed_offsets(c)
    if after != committed:
        fail(f"group {GROUP}'s committed offsets after an aborted transaction: "
             f"expected them unchanged at {committed}, got {after}")
    c.close()

    step("fencing (librdkafka logs the first producer's fencing as a fatal error: expected)")
    call("rdk-writer: begin_transaction", p1.begin_transaction)
    for i in range(6):
        log.send(p1, IN, i % PARTITIONS, f"f1-{i:03d}", committed=False)
    left = p1.flush(OP_TIMEOUT)
    if left:
        fail(f"fenced transaction: expected flush to deliver everything, {left} records still queued")
    p3 = producer("rdk-writer")
    call("init_transactions (second rdk-writer)", p3.init_transactions, OP_TIMEOUT)
    fenced = (KafkaError._FENCED, KafkaError.PRODUCER_FENCED, KafkaError.INVALID_PRODUCER_EPOCH)
    try:
        p1.commit_transaction(OP_TIMEOUT)
        fail("first rdk-writer's commit after a second one's init_transactions: "
             "expected a fenced error, it succeeded")
    except KafkaException as e:
        err = e.args[0]
        if err.code() not in fenced:
            fail("first rdk-writer's commit after a second one's init_transactions: "
                 f"expected _FENCED, PRODUCER_FENCED or INVALID_PRODUCER_EPOCH, "
                 f"got {err.name()} ({err.code()}): {err.str()} (fatal={err.fatal()})")
        print(f"fenced as expected: {err.name()}: {err.str()} (fatal={err.fatal()})", flush=True)
    write_txn(p3, log, IN, "c4", 6, commit=True)
    log.check_delivered(75 + 60 + 9 + 9 + 6 + 6, "all transactions")

    step("read_committed and read_uncommitted readers")
    for topic in (IN, OUT):
        committed_recs = records(topic, log, "committed")
        all_recs = {**committed_recs, **records(topic, log, "aborted")}
        same(f"read_committed consumer of {topic} (only committed records)",
             committed_recs, read_all(topic, "read_committed", f"read_committed consumer of {topic}"))
        same(f"read_uncommitted consumer of {topic} (committed and aborted records)",
             all_recs, read_all(topic, "read_uncommitted", f"read_uncommitted consumer of {topic}"))

    print(f"ok: librdkafka {libversion()[0]} transactions: {len(log.committed)} committed and {len(log.aborted)} aborted records "
          f"read back as they should; group offsets committed with the transaction and not with the aborted one; "
          f"the old producer fenced", flush=True)


if __name__ == "__main__":
    main()
