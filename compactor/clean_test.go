package compactor_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floe-io/floe/compactor"
	"github.com/floe-io/floe/internal/testenv"
	"github.com/floe-io/floe/metadata"
)

// changelogRecord is one acknowledged record of a compacted topic.
type changelogRecord struct {
	offset     int64
	key, value []byte // value nil: a tombstone
}

// produceChangelog writes rounds of updates and tombstones of keys over
// partitions, each round its own produce (so its own log entries), and
// returns what was acknowledged by partition, in offset order.
func produceChangelog(t *testing.T, cl *kgo.Client, topic string, partitions int32, rounds, perRound, keys int, rng *rand.Rand) map[int32][]changelogRecord {
	t.Helper()
	out := map[int32][]changelogRecord{}
	for range rounds {
		recs := make([]*kgo.Record, perRound)
		for j := range recs {
			k := rng.IntN(keys)
			r := &kgo.Record{Topic: topic, Partition: int32(k) % partitions, Key: fmt.Appendf(nil, "key-%d", k)}
			if rng.IntN(8) != 0 {
				r.Value = fmt.Appendf(nil, "value-%d-%d", k, rng.Int64())
			}
			recs[j] = r
		}
		if err := cl.ProduceSync(ctx(t), recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			out[r.Partition] = append(out[r.Partition], changelogRecord{offset: r.Offset, key: r.Key, value: r.Value})
		}
	}
	for p := range out {
		rs := out[p]
		for i := 1; i < len(rs); i++ {
			if rs[i].offset <= rs[i-1].offset {
				t.Fatalf("partition %d: acknowledged offsets out of order", p)
			}
		}
	}
	return out
}

// readAll reads every partition of tp from the start up to its end
// offset, ends given, with Fetch requests, and the client's own parsing
// of the batches (kgo.ProcessFetchPartition), which also says where the
// next fetch starts: after a batch's last offset, which a cleaned batch
// may hold no record at.
func readAll(t *testing.T, e *env, tp metadata.Topic, ends map[int32]int64) map[int32][]*kgo.Record {
	t.Helper()
	return readAllWith(t, e, tp, ends, false)
}

// readAllWith is readAll, with the transaction markers among the records
// when keepControl is set.
func readAllWith(t *testing.T, e *env, tp metadata.Topic, ends map[int32]int64, keepControl bool) map[int32][]*kgo.Record {
	t.Helper()
	cl := e.client()
	got := map[int32][]*kgo.Record{}
	for p, end := range ends {
		for next := int64(0); next < end; {
			rp := fetchAt(t, cl, tp, p, next)
			fp, after := kgo.ProcessFetchPartition(kgo.ProcessFetchPartitionOpts{Offset: next, Topic: tp.Name, Partition: p, KeepControlRecords: keepControl}, &rp, kgo.DefaultDecompressor(), nil)
			if fp.Err != nil {
				t.Fatalf("fetching partition %d at %d: %v", p, next, fp.Err)
			}
			if after <= next {
				t.Fatalf("partition %d: a fetch at %d below the end %d returned nothing", p, next, end)
			}
			got[p] = append(got[p], fp.Records...)
			next = after
		}
	}
	return got
}

// checkCompacted checks Kafka's guarantees for a compacted partition read
// from the start: offsets in order, each record one that was acknowledged
// at that offset; the latest record of every key present (a tombstone
// may be gone when tombstonesGone); no value of a key whose latest record
// is a tombstone after one of that key's tombstones.
func checkCompacted(t *testing.T, p int32, acked []changelogRecord, got []*kgo.Record, tombstonesGone bool) {
	t.Helper()
	byOffset := map[int64]changelogRecord{}
	latest := map[string]changelogRecord{}
	for _, r := range acked {
		byOffset[r.offset] = r
		latest[string(r.key)] = r
	}
	seen := map[int64]bool{}
	prev := int64(-1)
	for _, r := range got {
		a, ok := byOffset[r.Offset]
		switch {
		case r.Offset <= prev:
			t.Fatalf("partition %d: offset %d after %d", p, r.Offset, prev)
		case !ok:
			t.Fatalf("partition %d: offset %d was never acknowledged", p, r.Offset)
		case !bytes.Equal(a.key, r.Key):
			t.Fatalf("partition %d offset %d: key %q, acknowledged %q", p, r.Offset, r.Key, a.key)
		case r.Value != nil && !bytes.Equal(a.value, r.Value):
			t.Fatalf("partition %d offset %d: value %q, acknowledged %q", p, r.Offset, r.Value, a.value)
		}
		prev = r.Offset
		seen[r.Offset] = true
	}
	final := map[string][]byte{}
	present := map[string]bool{}
	for _, r := range got {
		final[string(r.Key)] = r.Value
		present[string(r.Key)] = true
	}
	for k, l := range latest {
		if l.value == nil {
			if !tombstonesGone && !seen[l.offset] {
				t.Fatalf("partition %d: tombstone of %s at %d is gone", p, k, l.offset)
			}
			if present[k] && final[k] != nil {
				t.Fatalf("partition %d: %s was deleted at %d, a reader from the start ends with a value", p, k, l.offset)
			}
			continue
		}
		if !seen[l.offset] {
			t.Fatalf("partition %d: the latest value of %s, at %d, is gone", p, k, l.offset)
		}
	}
}

// A compacted topic keeps the latest value of every key: after a pass,
// reading from the start yields in-order acknowledged records holding
// every key's latest, fewer than were written; once delete.retention.ms
// is lowered below the time since, another pass removes the tombstones
// cleaned by the first. A key map too
// small for the keys cleans in several passes, and the guarantees hold
// after each.
func TestCompactedTopicKeepsLatestPerKey(t *testing.T) {
	for _, tc := range []struct {
		name    string
		keyMap  int64
		passes  int
		maxRead float64 // of the records written, after all passes
	}{
		{name: "map-fits", keyMap: 1 << 20, passes: 1, maxRead: 0.5},
		{name: "map-too-small", keyMap: 30 * 24, passes: 4, maxRead: 0.5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.addAgent()
			topic := "changelog-" + tc.name
			tp := e.createTopic(topic, 3, map[string]string{
				"cleanup.policy":            "compact",
				"min.cleanable.dirty.ratio": "0.01",
				"delete.retention.ms":       "60000",
			})
			rng := rand.New(rand.NewPCG(1, uint64(len(tc.name))))
			acked := produceChangelog(t, producer(e), topic, 3, 30, 40, 150, rng)
			written, ends := 0, map[int32]int64{}
			for p, rs := range acked {
				written += len(rs)
				ends[p] = rs[len(rs)-1].offset + 1
			}

			c := e.newCompactor(compactor.Config{GCGrace: time.Minute, KeyMapBytes: tc.keyMap})
			for range tc.passes {
				if _, err := c.RunOnce(ctx(t)); err != nil {
					t.Fatal(err)
				}
				got := readAll(t, e, tp, ends)
				for p := range acked {
					checkCompacted(t, p, acked[p], got[p], false)
				}
			}
			// Tombstones cleaned 500ms ago may go: the change applies at the
			// next pass.
			if _, err := e.store.UpdateTopicConfigs(ctx(t), topic, func(m map[string]string) (map[string]string, error) {
				m["delete.retention.ms"] = "500"
				return m, nil
			}); err != nil {
				t.Fatal(err)
			}
			time.Sleep(time.Second)
			if _, err := c.RunOnce(ctx(t)); err != nil {
				t.Fatal(err)
			}
			got := readAll(t, e, tp, ends)
			read := 0
			for p := range acked {
				checkCompacted(t, p, acked[p], got[p], true)
				read += len(got[p])
			}
			if float64(read) > tc.maxRead*float64(written) {
				t.Fatalf("read %d of the %d records written after cleaning", read, written)
			}
			t.Logf("read %d of %d records written", read, written)
		})
	}
}

// Cleaning drops the records of aborted transactions and keeps committed
// ones like any other: read from the start (read_uncommitted), a
// compacted partition holds no aborted record, every key's latest
// committed value, and the guarantees of checkCompacted over what was
// committed.
func TestCleaningDropsAbortedRecords(t *testing.T) {
	e := newEnv(t)
	e.addAgent()
	const topic = "changelog-txn"
	tp := e.createTopic(topic, 2, map[string]string{"cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0.01"})
	tx := e.client(kgo.TransactionalID("cleaner-tx"), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0))
	committed := map[int32][]changelogRecord{}
	aborted := map[int32]map[int64]bool{0: {}, 1: {}}
	for round := range 12 {
		if err := tx.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		// Every third transaction, the last among them, aborts; it also
		// writes keys of its own, which no committed record follows.
		commit := round%3 != 2
		var recs []*kgo.Record
		for k := range 8 {
			recs = append(recs, &kgo.Record{Topic: topic, Partition: int32(k % 2), Key: fmt.Appendf(nil, "key-%d", k), Value: fmt.Appendf(nil, "round-%d", round)})
			if !commit {
				recs = append(recs, &kgo.Record{Topic: topic, Partition: int32(k % 2), Key: fmt.Appendf(nil, "aborted-%d-%d", round, k), Value: []byte("never")})
			}
		}
		if err := tx.ProduceSync(ctx(t), recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if err := tx.EndTransaction(ctx(t), kgo.TransactionEndTry(commit)); err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			if commit {
				committed[r.Partition] = append(committed[r.Partition], changelogRecord{offset: r.Offset, key: r.Key, value: r.Value})
			} else {
				aborted[r.Partition][r.Offset] = true
			}
		}
	}
	// Later writes, so the transactions are below the shard's latest entry.
	rng := rand.New(rand.NewPCG(3, 4))
	plain := produceChangelog(t, producer(e), topic, 2, 3, 10, 100, rng)
	ends := map[int32]int64{}
	for p := range committed {
		committed[p] = append(committed[p], plain[p]...)
		ends[p] = committed[p][len(committed[p])-1].offset + 1
	}

	c := e.newCompactor(compactor.Config{GCGrace: time.Minute})
	if _, err := c.RunOnce(ctx(t)); err != nil {
		t.Fatal(err)
	}
	got := readAll(t, e, tp, ends)
	for p := range committed {
		var data []*kgo.Record
		for _, r := range got[p] {
			if aborted[p][r.Offset] {
				t.Fatalf("partition %d: the aborted record at %d is still there", p, r.Offset)
			}
			data = append(data, r)
		}
		checkCompacted(t, p, committed[p], data, false)
		if len(data) >= len(committed[p]) {
			t.Fatalf("partition %d: read %d records of %d committed: nothing was cleaned", p, len(data), len(committed[p]))
		}
	}

	// Markers: all 12 stay while delete.retention.ms has not passed since
	// they were first cleaned; then those whose transactions kept no
	// record go, and every transactional record left is still followed
	// by its marker.
	markers := func() map[int32]int {
		out := map[int32]int{}
		for p, rs := range readAllWith(t, e, tp, ends, true) {
			live := map[int64]bool{}
			for _, r := range rs {
				switch {
				case r.Attrs.IsControl():
					out[p]++
					delete(live, r.ProducerID)
				case r.Attrs.IsTransactional():
					live[r.ProducerID] = true
				}
			}
			if len(live) > 0 {
				t.Fatalf("partition %d: transactional records of producers %v are left without their marker", p, live)
			}
		}
		return out
	}
	if m := markers(); m[0] != 12 || m[1] != 12 {
		t.Fatalf("markers after the first clean: %v, want 12 a partition", m)
	}
	if _, err := e.store.UpdateTopicConfigs(ctx(t), topic, func(m map[string]string) (map[string]string, error) {
		m["delete.retention.ms"] = "100"
		return m, nil
	}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if _, err := c.RunOnce(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if m := markers(); m[0] >= 12 || m[1] >= 12 || m[0] == 0 || m[1] == 0 {
		t.Fatalf("markers once past delete.retention.ms: %v, want fewer than 12 a partition (and the last committed transaction's)", m)
	}
	got = readAll(t, e, tp, ends)
	for p := range committed {
		checkCompacted(t, p, committed[p], got[p], true)
	}
}

// A property test: rounds of random updates and tombstones interleaved
// with passes of compactors started afresh (a restart: the cleaner's
// state is etcd's) with key maps of random sizes, some too small for the
// keys. After every pass, reading from the start yields acknowledged
// records in offset order with every key's latest value and no deleted
// key ending with a value; at the end, once delete.retention.ms has
// passed since the last clean, no tombstone is left below the offsets the
// cleaner's horizons say may lose theirs.
func TestCleaningProperty(t *testing.T) {
	e := newEnv(t)
	e.addAgent()
	const topic = "changelog-property"
	tp := e.createTopic(topic, 2, map[string]string{
		"cleanup.policy":            "compact",
		"min.cleanable.dirty.ratio": "0.01",
		"delete.retention.ms":       "300",
	})
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 5))
	cl := producer(e)
	acked := map[int32][]changelogRecord{}
	check := func(tombstonesGone bool) map[int32][]*kgo.Record {
		ends := map[int32]int64{}
		for p, rs := range acked {
			ends[p] = rs[len(rs)-1].offset + 1
		}
		got := readAll(t, e, tp, ends)
		for p := range acked {
			checkCompacted(t, p, acked[p], got[p], tombstonesGone)
		}
		return got
	}
	passes := 0
	for range 12 {
		for p, rs := range produceChangelog(t, cl, topic, 2, 1+rng.IntN(3), 10+rng.IntN(40), 30+rng.IntN(60), rng) {
			acked[p] = append(acked[p], rs...)
		}
		if rng.IntN(2) == 0 {
			continue
		}
		keyMap := []int64{16 * 24, 40 * 24, 1 << 20}[rng.IntN(3)]
		c := e.newCompactor(compactor.Config{GCGrace: time.Minute, KeyMapBytes: keyMap})
		if _, err := c.RunOnce(ctx(t)); err != nil {
			t.Fatal(err)
		}
		passes++
		check(true)
	}
	// A pass cleans everything cleanable; past delete.retention.ms, the
	// next may remove the tombstones it cleaned.
	c := e.newCompactor(compactor.Config{GCGrace: time.Minute})
	if _, err := c.RunOnce(ctx(t)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	if _, err := c.RunOnce(ctx(t)); err != nil {
		t.Fatal(err)
	}
	got := check(true)
	states, err := e.store.CleanerStates(ctx(t), tp.ID, 0, tp.Partitions)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UnixMilli()
	for p, rs := range got {
		// The bound as the last pass saw it, give or take its own time.
		below := states[p].TombstonesBelow(300, now-200)
		for _, r := range rs {
			if r.Value == nil && r.Offset < below {
				t.Fatalf("partition %d: a tombstone at %d is left below %d, where tombstones were first cleaned over delete.retention.ms ago (%d passes before)", p, r.Offset, below, passes)
			}
		}
		if below == 0 {
			t.Fatalf("partition %d: no tombstone horizon past delete.retention.ms after the last passes (state %+v)", p, states[p])
		}
	}
}

// The cleaner's per-partition gauges follow the compacted partitions: a
// pass sets them, and once a topic is deleted the next pass removes them.
func TestCleanerGaugesFollowCompactedPartitions(t *testing.T) {
	e := newEnv(t)
	e.addAgent()
	const topic = "changelog-gauges"
	e.createTopic(topic, 2, map[string]string{"cleanup.policy": "compact"})
	produceChangelog(t, producer(e), topic, 2, 3, 20, 10, rand.New(rand.NewPCG(7, 8)))
	reg := prometheus.NewRegistry()
	c, err := compactor.New(compactor.Config{GCGrace: time.Minute, LeaseTTL: 2 * time.Second, EtcdMaxTxnOps: 2048},
		compactor.Deps{Store: e.store, Bucket: e.bucket, Log: testenv.Logger(t), Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	gauged := func() []string {
		t.Helper()
		families, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, f := range families {
			if f.GetName() != "floe_compactor_cleaner_dirty_ratio" {
				continue
			}
			for _, m := range f.GetMetric() {
				var l []string
				for _, lp := range m.GetLabel() {
					l = append(l, lp.GetValue())
				}
				out = append(out, fmt.Sprint(l))
			}
		}
		return out
	}
	if _, err := c.RunOnce(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if got := gauged(); len(got) == 0 {
		t.Fatal("no cleaner_dirty_ratio gauge after a pass over a compacted topic")
	}
	if _, err := e.store.DeleteTopic(ctx(t), topic); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RunOnce(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if got := gauged(); len(got) != 0 {
		t.Fatalf("gauges of a deleted topic's partitions are still exported: %v", got)
	}
}
