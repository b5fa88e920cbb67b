package logread

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/kafkatest"
	"github.com/floe-io/floe/internal/testenv"
	"github.com/floe-io/floe/metadata"
	"github.com/floe-io/floe/segments"
)

// take hands out whole batches from an offset within a byte budget.
func TestExtentTake(t *testing.T) {
	// Three batches of 10 bytes holding offsets 100-104, 105-109, 110.
	c := &cachedExtent{arena: make([]byte, 30), starts: []int64{0, 10, 20}, bases: []int64{100, 105, 110}, lasts: []int64{104, 109, 110}}
	for _, tc := range []struct {
		name         string
		offset, room int64
		whole        bool
		below        int64
		wantLen      int
		wantNext     int64
		wantRest     bool
	}{
		{"everything fits", 100, 30, false, 200, 30, 111, false},
		{"from a straddled batch", 107, 30, false, 200, 20, 111, false},
		{"two of three fit", 100, 25, false, 200, 20, 110, true},
		{"none fits", 100, 5, false, 200, 0, 100, true},
		{"none fits, but the first goes whole", 100, 5, true, 200, 10, 105, true},
		{"past the extent", 111, 30, false, 200, 0, 111, false},
		{"below a last stable offset", 100, 30, false, 110, 20, 110, false},
		{"below a last stable offset, room for one", 100, 15, false, 110, 10, 105, true},
		{"at the last stable offset", 110, 30, true, 110, 0, 110, false},
	} {
		data, next, rest := c.take(tc.offset, tc.below, tc.room, tc.whole)
		if len(data) != tc.wantLen || next != tc.wantNext || rest != tc.wantRest {
			t.Errorf("%s: take(%d, %d, %v) = %d bytes, next %d, rest %v; want %d, %d, %v",
				tc.name, tc.offset, tc.room, tc.whole, len(data), next, rest, tc.wantLen, tc.wantNext, tc.wantRest)
		}
	}
}

// logEnv is a topic whose partitions' batches are committed to etcd in
// segment objects in MinIO, as agents write them.
type logEnv struct {
	store  *metadata.Store
	bucket *countingBucket
	topic  metadata.Topic
	commit *metadata.Committer
}

func newLogEnv(t testing.TB, partitions int32) *logEnv {
	t.Helper()
	return newShardedLogEnv(t, partitions, 0)
}

// newShardedLogEnv is newLogEnv with a shard size (0: the default).
func newShardedLogEnv(t testing.TB, partitions, shardSize int32) *logEnv {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	store, err := metadata.NewStore(testenv.Etcd(t), testenv.Cluster(t))
	if err != nil {
		t.Fatal(err)
	}
	bucket := testenv.Bucket(t)
	topic, err := store.CreateTopic(ctx, metadata.TopicSpec{Name: "logread", Partitions: partitions, ReplicationFactor: 1, ShardSize: shardSize})
	if err != nil {
		t.Fatal(err)
	}
	return &logEnv{store: store, bucket: &countingBucket{Bucket: bucket}, topic: topic, commit: store.NewCommitter(metadata.CommitConfig{})}
}

// flush writes one object holding batches batches of every partition (the
// values name partition, flush and batch) and commits it.
func (e *logEnv) flush(t testing.TB, object string, n, batches int) {
	t.Helper()
	e.flushPadded(t, object, n, batches, 0)
}

// flushPadded is flush with each value padded to pad bytes of random
// data (which the segment's codec cannot shrink, as a bench's records).
func (e *logEnv) flushPadded(t testing.TB, object string, n, batches, pad int) {
	t.Helper()
	ctx := context.Background()
	rnd := rand.New(rand.NewPCG(uint64(n), uint64(pad)))
	padding := func(v string) string {
		b := make([]byte, max(pad-len(v), 0))
		for i := range b {
			b[i] = byte(rnd.Uint32())
		}
		return v + string(b)
	}
	b := segments.NewBuilder(segments.CodecZstd)
	for p := range e.topic.Partitions {
		for i := range batches {
			v := fmt.Sprintf("p%d-f%d-b%d", p, n, i)
			raw := kafkatest.RecordBatch(kafkatest.NoProducer, time.UnixMilli(1000), padding(v))
			batch, err := segments.ParseBatch(raw)
			if err != nil {
				t.Fatal(err)
			}
			b.Append(segments.PartitionKey{TopicID: e.topic.ID, Partition: p}, batch)
		}
	}
	data, extents, err := b.Finish()
	if err != nil {
		t.Fatal(err)
	}
	if err := e.bucket.Put(ctx, object, data); err != nil {
		t.Fatal(err)
	}
	var appends []metadata.Append
	for _, x := range extents {
		a := metadata.Append{Topic: e.topic, Partition: x.Key.Partition, Object: object, ObjectSize: int64(len(data)), Offset: x.Offset, Length: x.Length}
		for i := range x.Batches {
			a.Batches = append(a.Batches, metadata.BatchMeta{Ordinal: i, Records: 1, ProducerID: -1, MinTimestamp: 1000, MaxTimestamp: 1000})
		}
		appends = append(appends, a)
	}
	results, err := e.commit.Commit(ctx, appends)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range results {
		for _, b := range r.Batches {
			if b.Err != nil {
				t.Fatal(b.Err)
			}
		}
	}
}

// parts returns a fetch part per partition from offset, with the
// partitions' watermarks from etcd.
func (e *logEnv) parts(t testing.TB, offset, max int64) []*Part {
	t.Helper()
	var out []*Part
	for p := range e.topic.Partitions {
		st, err := e.store.GetPartitionState(context.Background(), e.topic, p)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, &Part{Topic: e.topic, Partition: p, Offset: offset, Max: max, Start: st.Start, HW: st.Next})
	}
	return out
}

// read runs one fetch over parts and returns each one's batches.
func read(t *testing.T, r *Reader, parts []*Part, maxBytes int64) ([]Batches, []error) {
	t.Helper()
	ctx := context.Background()
	f := r.Plan(ctx, parts, maxBytes, true)
	defer f.Done()
	out := make([]Batches, len(parts))
	errs := make([]error, len(parts))
	var total int64
	for i, p := range parts {
		out[i], errs[i] = f.Read(ctx, p, max(min(p.Max, maxBytes-total), 0), total == 0)
		total += out[i].Bytes
	}
	return out, errs
}

// A fetch of every partition of a wide topic is served from one GET of
// each object, with every partition's batches and offsets, and fetches
// that follow serve from memory.
func TestFetchReadsObjectsOnce(t *testing.T) {
	const partitions, flushes, batches = 64, 3, 2
	e := newLogEnv(t, partitions)
	for n := range flushes {
		e.flush(t, fmt.Sprintf("flush-%d", n), n, batches)
	}
	r := New(context.Background(), e.store, e.bucket, Config{CacheBytes: 64 << 20}, testenv.Logger(t), nil)
	defer r.Close()

	got, errs := read(t, r, e.parts(t, 0, 1<<20), 64<<20)
	for p := range partitions {
		if errs[p] != nil {
			t.Fatalf("partition %d: %v", p, errs[p])
		}
		var seen []string
		for _, data := range got[p].Parts {
			bs, err := segments.ParseBatches(data)
			if err != nil {
				t.Fatal(err)
			}
			for _, b := range bs {
				if b.BaseOffset != int64(len(seen)) {
					t.Fatalf("partition %d: batch %d has base offset %d", p, len(seen), b.BaseOffset)
				}
				seen = append(seen, string(b.Raw))
			}
		}
		if len(seen) != flushes*batches || got[p].Next != flushes*batches {
			t.Fatalf("partition %d: %d batches up to offset %d, want %d", p, len(seen), got[p].Next, flushes*batches)
		}
		for i, raw := range seen {
			if want := fmt.Sprintf("p%d-f%d-b%d", p, i/batches, i%batches); !strings.Contains(raw, want) {
				t.Fatalf("partition %d batch %d does not hold %q", p, i, want)
			}
		}
	}
	if n := e.bucket.gets.Load(); n != flushes {
		t.Fatalf("%d GETs for %d objects of %d partitions, want one per object", n, flushes, partitions)
	}
	// Again: served from the cache, without GETs.
	if _, errs := read(t, r, e.parts(t, 0, 1<<20), 64<<20); errors.Join(errs...) != nil {
		t.Fatal(errors.Join(errs...))
	}
	if n := e.bucket.gets.Load(); n != flushes {
		t.Fatalf("%d GETs after reading again, want %d", n, flushes)
	}
}

// A response bounded in bytes takes whole batches and leaves the rest
// for the next fetch; the first batch always goes in whole.
func TestFetchHonoursLimits(t *testing.T) {
	e := newLogEnv(t, 2)
	e.flush(t, "flush-0", 0, 4)
	r := New(context.Background(), e.store, e.bucket, Config{CacheBytes: 64 << 20}, testenv.Logger(t), nil)
	defer r.Close()

	got, errs := read(t, r, e.parts(t, 0, 1), 1)
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if got[0].Next != 1 || len(got[0].Parts) != 1 || got[1].Bytes != 0 {
		t.Fatalf("1-byte limits: partition 0 got %d bytes up to %d, partition 1 %d bytes; want one whole batch, then nothing", got[0].Bytes, got[0].Next, got[1].Bytes)
	}
	one := got[0].Bytes
	got, _ = read(t, r, e.parts(t, 1, 2*one), 1<<20)
	if got[0].Next != 3 || got[1].Next != 3 {
		t.Fatalf("room for two batches each from offset 1: next offsets %d and %d, want 3", got[0].Next, got[1].Next)
	}
}

// An index entry naming an object the bucket lost is reported as missing
// (after one reload of the index).
func TestFetchMissingObject(t *testing.T) {
	e := newLogEnv(t, 1)
	e.flush(t, "flush-0", 0, 2)
	if err := e.bucket.Delete(context.Background(), []string{"flush-0"}); err != nil {
		t.Fatal(err)
	}
	r := New(context.Background(), e.store, e.bucket, Config{CacheBytes: 64 << 20}, testenv.Logger(t), nil)
	defer r.Close()
	if _, errs := read(t, r, e.parts(t, 0, 1<<20), 1<<20); !errors.Is(errs[0], ErrMissingObject) {
		t.Fatalf("reading a deleted object: %v, want ErrMissingObject", errs[0])
	}
}

// A read whose first entry starts past the offset asked for reports the
// records gone (OFFSET_OUT_OF_RANGE to the client), never the later ones:
// here the plan holds only the second flush's entry, as a window loaded
// after retention removed the first would.
func TestFetchNeverSkipsGoneRecords(t *testing.T) {
	e := newLogEnv(t, 1)
	e.flush(t, "flush-0", 0, 2)
	e.flush(t, "flush-1", 1, 2)
	r := New(context.Background(), e.store, e.bucket, Config{CacheBytes: 64 << 20}, testenv.Logger(t), nil)
	defer r.Close()
	parts := e.parts(t, 0, 1<<20)
	f := r.Plan(context.Background(), parts, 1<<20, true)
	defer f.Done()
	if len(parts[0].plan) != 2 {
		t.Fatalf("plan of %d entries, want both flushes'", len(parts[0].plan))
	}
	parts[0].plan, parts[0].ready = parts[0].plan[1:], parts[0].ready[1:]
	got, err := f.Read(context.Background(), parts[0], 1<<20, true)
	if !errors.Is(err, ErrOffsetGone) || got.Bytes != 0 {
		t.Fatalf("reading offset 0 with only the entry from offset 2: %d bytes, %v; want none and ErrOffsetGone", got.Bytes, err)
	}
}

// A window that a merge makes stale between a lookup that found it short
// and its extension from etcd is loaded afresh: the entries committed
// after it are found, not answered as none (which left a long poll
// waiting out its whole MaxWait).
func TestWindowStaleWhileExtending(t *testing.T) {
	e := newLogEnv(t, 1)
	e.flush(t, "flush-0", 0, 2)
	r := New(context.Background(), e.store, e.bucket, Config{CacheBytes: 64 << 20}, testenv.Logger(t), nil)
	defer r.Close()
	ctx := context.Background()
	iw := r.windows
	if got, ok, err := iw.entries(ctx, e.topic, 0, 0, 2, 16, 1<<20); err != nil || !ok || len(got) != 1 {
		t.Fatalf("loading the window: %d entries, ok %v, %v; want the first flush's", len(got), ok, err)
	}
	e.flush(t, "flush-1", 1, 2) // committed; the window does not know it
	staled := 0
	iw.beforeExtend = func(w *shardWindow) {
		staled++
		iw.mu.Lock()
		w.stale = true // as observe does when a merge rewrites the window's entries
		iw.mu.Unlock()
	}
	got, ok, err := iw.entries(ctx, e.topic, 0, 2, 4, 16, 1<<20)
	if err != nil || !ok {
		t.Fatalf("entries from offset 2: ok %v, %v", ok, err)
	}
	if staled != 1 {
		t.Fatalf("the window was found short %d times, want once (the test no longer reaches the extension)", staled)
	}
	if len(got) != 1 || got[0].First != 2 {
		t.Fatalf("entries from offset 2 after the window went stale: %+v; want the second flush's, from offset 2", got)
	}
}

// The index windows of partitions read once stay within the reader's index
// budget, however many partitions are read: the least recently used go.
func TestIndexWindowsStayWithinBudget(t *testing.T) {
	e := newLogEnv(t, 256)
	e.flush(t, "flush-0", 0, 1)
	const budget = 8 << 10
	iw := newIndexWindows(e.store, budget, newReaderMetrics(nil))
	ctx := context.Background()
	for p := range e.topic.Partitions {
		if got, ok, err := iw.entries(ctx, e.topic, p, 0, 1, 16, 1<<20); err != nil || !ok || len(got) != 1 {
			t.Fatalf("partition %d: %d entries, ok %v, %v", p, len(got), ok, err)
		}
		iw.mu.Lock()
		bytes, windows := iw.bytes, iw.lru.Len()
		iw.mu.Unlock()
		if bytes > budget && windows > 1 {
			t.Fatalf("after reading %d partitions: %d windows of %d bytes, budget %d", p+1, windows, bytes, budget)
		}
	}
	iw.mu.Lock()
	defer iw.mu.Unlock()
	if shards := len(iw.byShard); shards >= int(e.topic.Partitions)/int(max(e.topic.ShardSize, 1)) {
		t.Fatalf("%d shards' windows kept after reading every partition once; the budget holds fewer", shards)
	}
}

// Past the index budget, the entries a window's readers have passed go
// before any window another reader still uses.
func TestIndexWindowsDropPassedEntriesFirst(t *testing.T) {
	e := newLogEnv(t, 32) // shards of 2 partitions
	for n := range 6 {
		e.flush(t, fmt.Sprintf("flush-%d", n), n, 1)
	}
	iw := newIndexWindows(e.store, 1<<30, newReaderMetrics(nil))
	iw.trimAfter = 0 // every lookup is a period: readers look all the time
	ctx := context.Background()
	lookup := func(p int32, offset, hw int64) {
		t.Helper()
		if got, ok, err := iw.entries(ctx, e.topic, p, offset, hw, 1, 1<<20); err != nil || !ok || len(got) != 1 || got[0].First != offset {
			t.Fatalf("partition %d offset %d: %+v, ok %v, %v", p, offset, got, ok, err)
		}
	}
	lookup(2, 0, 6) // a reader of shard 1, at its start
	iw.mu.Lock()
	other := iw.byShard[e.topic.Shard(2)][0]
	iw.mu.Unlock()
	lookup(0, 0, 6) // a reader of shard 0 that moves on
	iw.mu.Lock()
	perEntry := iw.bytes / 12
	iw.maxBytes = 14 * perEntry
	iw.mu.Unlock()
	for n := 6; n < 12; n++ {
		e.flush(t, fmt.Sprintf("flush-%d", n), n, 1)
	}
	for offset := int64(1); offset < 12; offset++ {
		lookup(0, offset, 12)
	}
	iw.mu.Lock()
	defer iw.mu.Unlock()
	if ws := iw.byShard[e.topic.Shard(2)]; len(ws) != 1 || ws[0] != other || len(other.entries) != 6 {
		t.Fatalf("shard 1's window was dropped or cut (%d windows) while shard 0's reader had passed entries to drop", len(ws))
	}
	if iw.bytes > iw.maxBytes {
		t.Fatalf("windows hold %d bytes, budget %d", iw.bytes, iw.maxBytes)
	}
	if w := iw.byShard[e.topic.Shard(0)][0]; w.first() < 6 {
		t.Fatalf("shard 0's window still starts at entry %d, which its reader passed", w.first())
	}
}

// A chunk read for a reader that is ahead decodes the extents in it of
// the partitions whose readers are behind, also when their shard's index
// window does not reach the object yet: the window is extended first,
// instead of the chunk being read again for them later.
func TestChunkReadsReachBehindReadersWindows(t *testing.T) {
	const shard, flushes = 64, 60 // a window load of 64-partition shards is about 40 entries
	e := newShardedLogEnv(t, 2*shard, shard)
	for n := range flushes {
		e.flush(t, fmt.Sprintf("flush-%02d", n), n, 1)
	}
	r := New(context.Background(), e.store, e.bucket, Config{CacheBytes: 64 << 20}, testenv.Logger(t), nil)
	defer r.Close()
	all := e.parts(t, 0, 1<<20)
	ahead, behind := all[:shard], all[shard:]
	// Both shards' readers start at 0; the one behind reads a little.
	if _, errs := read(t, r, ahead, 1<<10); errors.Join(errs...) != nil {
		t.Fatal(errors.Join(errs...))
	}
	if _, errs := read(t, r, behind, 1<<10); errors.Join(errs...) != nil {
		t.Fatal(errors.Join(errs...))
	}
	// The reader ahead jumps to the last flush, past the end of both
	// windows.
	for _, p := range ahead {
		p.Offset = flushes - 1
	}
	if _, errs := read(t, r, ahead, 64<<20); errors.Join(errs...) != nil {
		t.Fatal(errors.Join(errs...))
	}
	last := fmt.Sprintf("flush-%02d", flushes-1)
	if decoded := r.cache.cachedIn(last); decoded != 2*shard {
		t.Fatalf("%d extents of %s decoded, want %d: those of the shard behind too", decoded, last, 2*shard)
	}
}

// cachedIn counts the extents of object the cache holds, on their own or
// in a chunk's item.
func (c *extentCache) cachedIn(object string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for k := range c.items {
		if k.object == object {
			n++
		}
	}
	for _, it := range c.chunkItems[object] {
		n += len(it.chunk.ext)
	}
	return n
}

// newFlushedReader returns a logEnv of partitions with flushes objects of
// one batch of each, and a reader of it with 64 MiB of cache, closed
// with the test.
func newFlushedReader(t *testing.T, partitions int32, flushes int) (*logEnv, *Reader) {
	t.Helper()
	e := newLogEnv(t, partitions)
	for n := range flushes {
		e.flush(t, fmt.Sprintf("flush-%d", n), n, 1)
	}
	r := New(context.Background(), e.store, e.bucket, Config{CacheBytes: 64 << 20}, testenv.Logger(t), nil)
	t.Cleanup(r.Close)
	return e, r
}

// A partition plans no more entries still to be read than the response
// could read chunks for, however many objects it has entries in; entries
// already cached are planned as far as the response's room goes.
func TestPlanStopsAtTheChunksItCanRead(t *testing.T) {
	const partitions, flushes = 4, 12
	e, r := newFlushedReader(t, partitions, flushes)
	ctx := context.Background()

	coldMax := r.coldMax(64 << 20)
	if coldMax >= flushes {
		t.Fatalf("the test needs more objects (%d) than a plan reads chunks for (%d)", flushes, coldMax)
	}
	parts := e.parts(t, 0, 1<<20)
	f := r.Plan(ctx, parts, 64<<20, true)
	for _, p := range parts {
		if len(p.plan) == 0 || len(p.plan) > coldMax {
			t.Fatalf("cold: partition %d planned %d entries, want 1 to %d", p.Partition, len(p.plan), coldMax)
		}
	}
	f.Done()

	// Read everything, so all of it is cached; then a plan names every
	// entry, each found ready.
	for n := 0; n < flushes; n++ {
		got, errs := read(t, r, e.parts(t, 0, 1<<20), 64<<20)
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
		if got[0].Next == flushes {
			break
		}
	}
	parts = e.parts(t, 0, 1<<20)
	f = r.Plan(ctx, parts, 64<<20, true)
	defer f.Done()
	for _, p := range parts {
		if len(p.plan) != flushes {
			t.Fatalf("warm: partition %d planned %d entries, want all %d", p.Partition, len(p.plan), flushes)
		}
		for i, it := range p.ready {
			if !it.ok() {
				t.Fatalf("warm: partition %d entry %d planned as not cached", p.Partition, i)
			}
		}
	}
}

// A response's room goes to the entries it will serve: entries still to
// be read, most of which a plan leaves to later passes, do not take it
// from later partitions' cached entries.
func TestPlanRoomGoesToCachedEntries(t *testing.T) {
	const partitions, flushes, pad = 8, 12, 64 << 10
	e := newLogEnv(t, partitions)
	for n := range flushes {
		e.flushPadded(t, fmt.Sprintf("flush-%d", n), n, 1, pad)
	}
	r := New(context.Background(), e.store, e.bucket, Config{CacheBytes: 64 << 20}, testenv.Logger(t), nil)
	defer r.Close()
	ctx := context.Background()

	// The second half of the partitions is read to its end, so cached.
	warm := e.parts(t, 0, 1<<20)[partitions/2:]
	for range flushes {
		got, errs := read(t, r, warm, 64<<20)
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
		done := true
		for i, p := range warm {
			p.Offset = got[i].Next
			done = done && p.Offset == p.HW
		}
		if done {
			break
		}
	}

	// A response of room for two entries of half the partitions: the
	// first half's entries are all still to be read (each plans two, as
	// the plan reads up to two chunks), the second half's cached.
	const maxBytes = partitions / 2 * 2 * pad
	parts := e.parts(t, 0, 2*pad)
	f := r.Plan(ctx, parts, maxBytes, false)
	defer f.Done()
	for _, p := range parts[partitions/2:] {
		if len(p.plan) == 0 {
			t.Fatalf("partition %d planned nothing of its cached entries: the room went to entries still to be read", p.Partition)
		}
		for i, it := range p.ready {
			if !it.ok() {
				t.Fatalf("partition %d entry %d planned as not cached", p.Partition, i)
			}
		}
	}
}

// A partition whose first entries are cached and the rest still to be
// read is looked up no further than the entries still to be read that a
// plan may name (coldMax) and one past them.
func TestPlanLooksUpNoFurtherThanItPlans(t *testing.T) {
	const partitions, flushes = 16, 24
	e, r := newFlushedReader(t, partitions, flushes)
	ctx := context.Background()

	// Each partition's first entry is read (one batch each), so cached,
	// with what that read reads ahead; then reading ahead stops, so what
	// is cached stays as it is.
	if _, errs := read(t, r, e.parts(t, 0, 1), 64<<20); errors.Join(errs...) != nil {
		t.Fatal(errors.Join(errs...))
	}
	r.Close()

	coldMax := r.coldMax(64 << 20)
	if coldMax+2 >= flushes {
		t.Fatalf("the test needs more objects (%d) than a plan reads chunks for (%d)", flushes, coldMax)
	}
	var looked atomic.Int64
	r.windows.afterLookup = func(n int) { looked.Add(int64(n)) }
	parts := e.parts(t, 0, 1<<20)
	f := r.Plan(ctx, parts, 64<<20, false)
	defer f.Done()
	r.windows.afterLookup = nil
	most := int64(0)
	for _, p := range parts {
		cached := 0
		for cached < len(p.ready) && p.ready[cached].ok() {
			cached++
		}
		if cached == 0 || len(p.plan) != cached+coldMax {
			t.Fatalf("partition %d planned %d entries, %d of them cached first; want at least one cached, then %d to read", p.Partition, len(p.plan), cached, coldMax)
		}
		most += int64(cached + coldMax + 1)
	}
	if got := looked.Load(); got > most {
		t.Errorf("the plan looked up %d entries, want at most %d (each partition's cached entries, %d to read and one past)", got, most, coldMax)
	}
}

// chunkOrdered puts entries in the order of the chunks they are first
// read from, as sorting them all by chunkOrder would, keeping every one.
func TestChunkOrdered(t *testing.T) {
	r := &Reader{chunkSize: 8 << 20}
	rnd := rand.New(rand.NewPCG(1, 2))
	objects := []struct {
		name            string
		size, committed int64
	}{{"b", 20 << 20, 5}, {"a", 20 << 20, 5}, {"c", 4 << 20, 3}, {"d", 40 << 20, 9}}
	var entries []metadata.IndexEntry
	for i := range 2000 {
		o := objects[rnd.IntN(len(objects))]
		length := int64(1 + rnd.IntN(64<<10))
		if i%100 == 0 && o.size > 16<<20 {
			length = 9 << 20 // read on its own
		}
		offset := rnd.Int64N(o.size - length)
		entries = append(entries, metadata.IndexEntry{Object: o.name, ObjectSize: o.size, Offset: offset, Length: length, First: int64(i), Committed: o.committed})
	}
	// Where each entry is first read from: its chunk's start, or its own
	// offset.
	startOf := func(e metadata.IndexEntry) int64 {
		var buf [2]chunkSpan
		if spans := r.chunksOf(&buf, e); len(spans) > 0 {
			return spans[0].start
		}
		return e.Offset
	}
	got := r.chunkOrdered(nil, entries)
	if len(got) != len(entries) {
		t.Fatalf("%d entries out of %d", len(got), len(entries))
	}
	seen := map[int64]bool{}
	for i, e := range got {
		if seen[e.First] {
			t.Fatalf("entry %d twice", e.First)
		}
		seen[e.First] = true
		if i == 0 {
			continue
		}
		p := got[i-1]
		a := metadata.IndexEntry{Committed: p.Committed, Object: p.Object, Offset: startOf(p)}
		b := metadata.IndexEntry{Committed: e.Committed, Object: e.Object, Offset: startOf(e)}
		if chunkOrder(a, b) > 0 {
			t.Fatalf("entry %d (%s at %d) comes after entry %d (%s at %d)", i, e.Object, e.Offset, i-1, p.Object, p.Offset)
		}
	}
}
