package compactor_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/floe-io/floe/compactor"
	"github.com/floe-io/floe/metadata"
	"github.com/floe-io/floe/segments"
)

// TestIngestVersusCompaction measures, on this machine, how fast agents
// create log entries and objects at full produce rate, how fast the
// compactor removes them (retention) and merges them, and what is left in
// the bucket and etcd afterwards. It produces FLOE_COMPACTOR_BENCH_BYTES
// bytes of record values (e.g. 1073741824) and is skipped without it:
//
//	FLOE_COMPACTOR_BENCH_BYTES=1073741824 go test -run TestIngestVersusCompaction -v -timeout 1h ./compactor/
//
// Agents run with their production defaults (8 MiB or 250 ms flushes),
// the compactor with its defaults except the settle time and grace.
func TestIngestVersusCompaction(t *testing.T) {
	total, _ := strconv.ParseInt(os.Getenv("FLOE_COMPACTOR_BENCH_BYTES"), 10, 64)
	if total <= 0 {
		t.Skip("set FLOE_COMPACTOR_BENCH_BYTES to run")
	}
	const partitions, valueSize = 16, 1024
	e := newEnv(t)
	cfg := agentDefaults()
	a := e.addAgentWith(cfg)
	keep := e.createTopic("bench", partitions, map[string]string{"retention.ms": "-1"})
	expire := e.createTopic("expire", partitions, map[string]string{"retention.ms": "-1"})
	prod := e.clientAt([]string{a.Addr()}, kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerBatchMaxBytes(1<<20), kgo.MaxBufferedRecords(100_000))

	countKeys := func() (all, logs int64) {
		cli := e.store.Client()
		r1, err := cli.Get(ctx(t), e.store.Root(), clientv3.WithPrefix(), clientv3.WithCountOnly())
		if err != nil {
			t.Fatal(err)
		}
		r2, err := cli.Get(ctx(t), e.store.Root()+"log/", clientv3.WithPrefix(), clientv3.WithCountOnly())
		if err != nil {
			t.Fatal(err)
		}
		return r1.Count, r2.Count
	}
	countObjects := func() (n int, bytes int64) {
		e.bucket.List(ctx(t), "", func(o segments.ObjectInfo) error {
			n++
			bytes += o.Size
			return nil
		})
		return n, bytes
	}
	produceBytes := func(topic string, bytes int64) time.Duration {
		raw := make([]byte, valueSize*3/4)
		start := time.Now()
		var wg sync.WaitGroup
		var errOnce sync.Once
		var perr error
		for sent := int64(0); sent < bytes; sent += valueSize {
			rand.Read(raw)
			wg.Add(1)
			prod.Produce(context.Background(), &kgo.Record{Topic: topic, Value: []byte(base64.StdEncoding.EncodeToString(raw))}, func(_ *kgo.Record, err error) {
				defer wg.Done()
				if err != nil {
					errOnce.Do(func() { perr = err })
				}
			})
		}
		wg.Wait()
		if perr != nil {
			t.Fatal(perr)
		}
		return time.Since(start)
	}
	entries := func(tp metadata.Topic) int {
		n := 0
		for p := range int32(partitions) {
			n += len(e.index(tp, p))
		}
		return n
	}

	// Ingest.
	took := produceBytes("bench", total)
	objs, objBytes := countObjects()
	keys, idx := countKeys()
	t.Logf("ingest: %d MiB in %v = %.1f MiB/s; created %d objects (%.1f/s, %d MiB stored) and %d log entries (%.1f/s); etcd keys %d",
		total>>20, took.Round(time.Millisecond), float64(total)/(1<<20)/took.Seconds(),
		objs, float64(objs)/took.Seconds(), objBytes>>20, idx, float64(idx)/took.Seconds(), keys)

	// Retention of raw flush entries, the worst case: a quarter of the
	// volume into another topic, then expire it all.
	tookE := produceBytes("expire", total/4)
	objsE, _ := countObjects()
	objsE -= objs
	entE := entries(expire)
	t.Logf("ingest of the expiring topic: %d MiB in %v; %d objects, %d partition extents", total>>22, tookE.Round(time.Millisecond), objsE, entE)
	if _, err := e.store.UpdateTopicConfigs(ctx(t), "expire", func(m map[string]string) (map[string]string, error) {
		m["retention.ms"] = "0"
		return m, nil
	}); err != nil {
		t.Fatal(err)
	}
	ret := e.newCompactor(compactor.Config{GCGrace: time.Second, MergeSettle: time.Hour, EtcdMaxTxnOps: 128})
	st, err := ret.RunOnce(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("retention (etcd --max-txn-ops 128): removed %d extents and %d log entries in %v = %.0f extents/s (pass %v)",
		st.RetentionExtents, st.RetentionEntries, st.Compacting.Round(time.Millisecond), float64(st.RetentionExtents)/st.Compacting.Seconds(), st.Duration.Round(time.Millisecond))
	// Past the grace: one pass marks the objects doomed, the next deletes
	// them.
	collect := func(c *compactor.Compactor) compactor.PassStats {
		time.Sleep(1100 * time.Millisecond)
		if _, err := c.RunOnce(ctx(t)); err != nil {
			t.Fatal(err)
		}
		st, err := c.RunOnce(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	st = collect(ret)
	t.Logf("collection: deleted %d objects (%d MiB) in %v = %.0f objects/s (listed %d, read %d log entries; pass %v)",
		st.Deleted, st.DeletedBytes>>20, st.Collecting.Round(time.Millisecond), float64(st.Deleted)/st.Collecting.Seconds(), st.Objects, st.Entries, st.Duration.Round(time.Millisecond))

	// Merging the kept topic until nothing more merges, then collection.
	merger := e.newCompactor(compactor.Config{GCGrace: time.Second, MergeSettle: time.Millisecond})
	var merged, mergedEntries, written int
	var mergedBytes int64
	var mergeTime time.Duration
	for {
		st, err := merger.RunOnce(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		if st.Merges == 0 {
			break
		}
		merged += st.Merges
		written += st.ObjectsWritten
		mergedEntries += st.MergedEntries
		mergedBytes += st.MergedBytes
		mergeTime += st.Compacting
	}
	st = collect(merger)
	objsAfter, objBytesAfter := countObjects()
	keysAfter, idxAfter := countKeys()
	t.Logf("merge: %d entries (%d MiB) into %d merged entries in %d objects in %v = %.1f MiB/s, %.0f entries/s; then deleted %d objects",
		mergedEntries, mergedBytes>>20, merged, written, mergeTime.Round(time.Millisecond), float64(mergedBytes)/(1<<20)/mergeTime.Seconds(),
		float64(mergedEntries)/mergeTime.Seconds(), st.Deleted)
	t.Logf("after compaction: %d objects (%d MiB), %d log entries (%d extents for %d partitions of bench), %d etcd keys in all",
		objsAfter, objBytesAfter>>20, idxAfter, entries(keep), partitions, keysAfter)
}
