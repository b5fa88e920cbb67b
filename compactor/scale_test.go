package compactor

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/kafkatest"
	"github.com/floe-io/floe/internal/testenv"
	"github.com/floe-io/floe/metadata"
	"github.com/floe-io/floe/segments"
)

// countingBucket counts PUTs.
type countingBucket struct {
	segments.Bucket
	puts, putBytes atomic.Int64
}

func (b *countingBucket) Put(ctx context.Context, key string, data []byte) error {
	b.puts.Add(1)
	b.putBytes.Add(int64(len(data)))
	return b.Bucket.Put(ctx, key, data)
}

// keyedWrites writes flushes as agents do for keyed records spread over
// every partition of a topic: each flush is one object holding one batch
// per partition, committed as one log entry per shard. It remembers every
// batch, to check reads against.
type keyedWrites struct {
	t         *testing.T
	store     *metadata.Store
	bucket    segments.Bucket
	tp        metadata.Topic
	committer *metadata.Committer
	rng       *rand.Rand
	words     []string

	// batches[p] are partition p's batches in offset order.
	batches [][]writtenBatch
	flushes int
	bytes   int64 // of the flush objects
}

type writtenBatch struct {
	base    int64
	records int
	sum     [32]byte // of the batch from its length field on (all but the base offset)
}

func newKeyedWrites(t *testing.T, store *metadata.Store, bucket segments.Bucket, tp metadata.Topic) *keyedWrites {
	w := &keyedWrites{t: t, store: store, bucket: bucket, tp: tp, committer: store.NewCommitter(metadata.CommitConfig{}),
		rng: rand.New(rand.NewPCG(1, 2)), batches: make([][]writtenBatch, tp.Partitions)}
	for i := range 1000 {
		w.words = append(w.words, fmt.Sprintf("w%x%s", i*7919%4093, strings.Repeat("aeiou"[i%5:i%5+1], 1+i%7)))
	}
	return w
}

// flush writes one flush of about perPartition bytes of record values per
// partition (hot gets factor times as much).
func (w *keyedWrites) flush(perPartition int, hot int32, factor int) {
	t := w.t
	b := segments.NewBuilder(segments.CodecZstd)
	now := time.Now()
	raws := make([][]byte, w.tp.Partitions)
	counts := make([]int, w.tp.Partitions)
	for p := range w.tp.Partitions {
		want := perPartition
		if p == hot {
			want *= factor
		}
		var values []string
		for n := 0; n < want; {
			var v strings.Builder
			for v.Len() < 120 {
				v.WriteString(w.words[w.rng.IntN(len(w.words))])
				v.WriteByte(' ')
			}
			values = append(values, v.String())
			n += v.Len()
		}
		raw := kafkatest.RecordBatch(kafkatest.NoProducer, now, values...)
		batch, err := segments.ParseBatch(raw)
		if err != nil {
			t.Fatal(err)
		}
		b.Append(segments.PartitionKey{TopicID: w.tp.ID, Partition: p}, batch)
		raws[p], counts[p] = raw, len(values)
	}
	obj, extents, err := b.Finish()
	if err != nil {
		t.Fatal(err)
	}
	key := segments.NewObjectKey(now, segments.KindFlush)
	if err := w.bucket.Put(context.Background(), key, obj); err != nil {
		t.Fatal(err)
	}
	apps := make([]metadata.Append, len(extents))
	for i, x := range extents {
		apps[i] = metadata.Append{
			Topic: w.tp, Partition: x.Key.Partition, Object: key, ObjectSize: int64(len(obj)), Offset: x.Offset, Length: x.Length,
			Batches: []metadata.BatchMeta{{Records: int32(x.Records), ProducerID: -1, MinTimestamp: x.MinTimestamp, MaxTimestamp: x.MaxTimestamp}},
		}
	}
	res, err := w.committer.Commit(context.Background(), apps)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		p := apps[i].Partition
		if r.Batches[0].Err != nil {
			t.Fatalf("partition %d: %v", p, r.Batches[0].Err)
		}
		w.batches[p] = append(w.batches[p], writtenBatch{base: r.Batches[0].BaseOffset, records: counts[p], sum: sha256.Sum256(raws[p][8:])})
	}
	w.flushes++
	w.bytes += int64(len(obj))
}

// check reads every partition from its log start through its shard's
// log, as an agent would, and compares every batch with what was written.
func (w *keyedWrites) check(ctx context.Context) {
	t := w.t
	for p := range w.tp.Partitions {
		st, err := w.store.GetPartitionState(ctx, w.tp, p)
		if err != nil {
			t.Fatal(err)
		}
		idx, err := w.store.PartitionEntries(ctx, w.tp, p, st.Start, 0)
		if err != nil {
			t.Fatal(err)
		}
		want := w.batches[p]
		k := 0
		var next int64
		if len(idx) > 0 {
			next = idx[0].First
			if next > st.Start {
				t.Fatalf("partition %d: entries start at %d, its log at %d", p, next, st.Start)
			}
			for k < len(want) && want[k].base < next {
				k++
			}
		}
		for _, ie := range idx {
			rc, err := w.bucket.GetRange(ctx, ie.Object, ie.Offset, ie.Length)
			if err != nil {
				t.Fatalf("partition %d: %v", p, err)
			}
			data, err := io.ReadAll(rc)
			rc.Close()
			if err != nil {
				t.Fatal(err)
			}
			_, kind, _ := segments.ParseObjectKey(ie.Object)
			if ie.First != next {
				t.Fatalf("partition %d: an entry starts at %d, the previous ended at %d", p, ie.First, next-1)
			}
			err = segments.DecodeExtent(data, func(ord int, raw []byte) error {
				if _, skip := slices.BinarySearch(ie.Skip, int32(ord)); skip {
					return nil
				}
				if k >= len(want) {
					return fmt.Errorf("more batches than written")
				}
				wb := want[k]
				k++
				if wb.base != next || sha256.Sum256(raw[8:]) != wb.sum {
					return fmt.Errorf("batch at %d in %s differs from the one written at %d", next, ie.Object, wb.base)
				}
				if stored := int64(be64(raw)); kind == segments.KindMerged && stored != next {
					return fmt.Errorf("merged batch at %d stores base offset %d", next, stored)
				}
				next += int64(wb.records)
				return nil
			})
			if err != nil {
				t.Fatalf("partition %d: %v", p, err)
			}
			if next != ie.Last+1 {
				t.Fatalf("partition %d: entry %d-%d held offsets to %d", p, ie.First, ie.Last, next-1)
			}
		}
		if k != len(want) {
			t.Fatalf("partition %d: read %d batches of %d", p, k, len(want))
		}
	}
}

func be64(b []byte) uint64 {
	var v uint64
	for _, c := range b[:8] {
		v = v<<8 | uint64(c)
	}
	return v
}

// A compaction pass over a topic of keyed records spread over every
// partition writes a few shared objects, not one per partition: at most
// twice the objects the agents would write at 8 MiB per flush, for the
// bytes merged. A partition with much more data than the rest gets an
// object of its own. Every offset stays readable with its bytes, through
// a second round of writes whose merge joins the first merged entries.
//
// It runs over 256 partitions; FLOE_COMPACTOR_SCALE_PARTITIONS=4096 runs
// it at the width of the measurement in docs/design.md (40 flushes of
// about 5.5 MiB), and logs PUTs per GiB and the pass's duration.
func TestMergeKeyedPartitionsBoundsPuts(t *testing.T) {
	partitions := int32(256)
	if n, _ := strconv.Atoi(os.Getenv("FLOE_COMPACTOR_SCALE_PARTITIONS")); n > 0 {
		partitions = int32(n)
	}
	const (
		flushes      = 40
		perPartition = 2000 // bytes of values: flushes of ~5.5 MiB stored over 4096 partitions
		hotFactor    = 16
	)
	store, err := metadata.NewStore(testenv.Etcd(t), testenv.Cluster(t))
	if err != nil {
		t.Fatal(err)
	}
	bucket := &countingBucket{Bucket: testenv.Bucket(t)}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	tp, err := store.CreateTopic(ctx, metadata.TopicSpec{Name: "keyed", Partitions: partitions, ReplicationFactor: 1, Configs: map[string]string{"retention.ms": "-1"}})
	if err != nil {
		t.Fatal(err)
	}
	w := newKeyedWrites(t, store, bucket, tp)
	c, err := New(Config{ID: "scale", MergeSettle: time.Millisecond, GCGrace: time.Hour, PartitionObjectBytes: 256 << 10},
		Deps{Store: store, Bucket: bucket, Log: testenv.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	const gib = 1 << 30
	for round := range 2 {
		start := time.Now()
		putsBefore, bytesBefore := bucket.puts.Load(), bucket.putBytes.Load()
		for range flushes {
			w.flush(perPartition, 0, hotFactor)
		}
		wrote := time.Since(start)
		agentPuts, agentBytes := bucket.puts.Load(), bucket.putBytes.Load()-bytesBefore
		if agentPuts-putsBefore != flushes {
			t.Fatalf("%d PUTs for %d flushes", agentPuts-putsBefore, flushes)
		}
		time.Sleep(5 * time.Millisecond) // settled
		st, err := c.RunOnce(ctx)
		if err != nil {
			t.Fatal(err)
		}
		puts := bucket.puts.Load() - agentPuts
		if puts != int64(st.ObjectsWritten) {
			t.Fatalf("%d PUTs, the pass counted %d", puts, st.ObjectsWritten)
		}
		t.Logf("round %d: %d partitions in %d shards; agents: %d flushes, %.1f MiB (%.1f MiB each) in %v = %.0f PUTs per GiB",
			round, partitions, tp.Shards(), flushes, float64(agentBytes)/(1<<20), float64(agentBytes)/flushes/(1<<20), wrote.Round(time.Millisecond), flushes*gib/float64(agentBytes))
		t.Logf("round %d: compactor: %d entries (%.1f MiB) into %d merged entries in %d objects (%.1f MiB) = %.1f PUTs per GiB merged; pass %v (compacting %v)",
			round, st.MergedEntries, float64(st.MergedBytes)/(1<<20), st.Merges, st.ObjectsWritten, float64(st.BytesWritten)/(1<<20),
			float64(st.ObjectsWritten)*gib/float64(st.MergedBytes), st.Duration.Round(time.Millisecond), st.Compacting.Round(time.Millisecond))
		if st.Errors != 0 || st.Merges != int(tp.Shards()) {
			t.Fatalf("pass %+v: want one merge per shard", st)
		}
		// At most twice what agents would PUT for those bytes with 8 MiB
		// flushes (one object per partition would be hundreds).
		if limit := 2 * ((st.MergedBytes + 8<<20 - 1) >> 23); int64(st.ObjectsWritten) > limit {
			t.Fatalf("%d objects written for %d bytes merged; at most %d", st.ObjectsWritten, st.MergedBytes, limit)
		}
		// Each shard: its merged entry and its latest; the hot partition's
		// data is in an object of its own.
		for s := range tp.Shards() {
			lg, err := store.ReadShardLog(ctx, metadata.ShardID{Topic: tp.ID, Shard: s})
			if err != nil {
				t.Fatal(err)
			}
			if len(lg.Entries) != 2 || lg.Entries[0].Flags&metadata.EntryMerged == 0 || lg.Entries[1].SeqLast != lg.State.Seq {
				t.Fatalf("shard %d: %d entries", s, len(lg.Entries))
			}
			m := lg.Entries[0]
			if s == 0 {
				x, _ := m.ExtentOf(0)
				if len(m.Objects) != 2 || m.Objects[x.Object].Size > x.Length+1<<10 {
					t.Fatalf("shard 0: the hot partition's extent of %d bytes is in %+v", x.Length, m.Objects)
				}
			} else if len(m.Objects) != 1 {
				t.Fatalf("shard %d: merged entry in %d objects", s, len(m.Objects))
			}
		}
		checkStart := time.Now()
		w.check(ctx)
		t.Logf("round %d: every offset of %d partitions read back in %v", round, partitions, time.Since(checkStart).Round(time.Millisecond))
	}
}
