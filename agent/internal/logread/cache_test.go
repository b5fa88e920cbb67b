package logread

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/floe-io/floe/internal/kafkatest"
	"github.com/floe-io/floe/metadata"
	"github.com/floe-io/floe/segments"
)

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// The read-ahead budget: extents read ahead count until asked for, a read
// ahead is refused past half of the cache, and one evicted unread counts
// as wasted.
func TestExtentCacheReadAheadBudget(t *testing.T) {
	m := newReaderMetrics(nil)
	c := newExtentCache(4000, m)
	ctx := context.Background()
	ext := func(n int) func(context.Context) (*cachedExtent, error) {
		return func(context.Context) (*cachedExtent, error) { return &cachedExtent{arena: make([]byte, n)}, nil }
	}
	k := func(i int) extentKey { return extentKey{object: "o", offset: int64(i)} }
	size := func(n int) int64 { return (&cachedExtent{arena: make([]byte, n)}).size() }
	// one reads keys ahead with one load, each decoding to size bytes.
	one := func(key extentKey, size int, reserved int64) {
		c.readAhead(ctx, []extentKey{key}, &aheadReservation{left: reserved}, func(_ context.Context, want []bool) ([]*cachedExtent, error) {
			v, err := ext(size)(ctx)
			return []*cachedExtent{v}, err
		})
	}

	if !c.reserveAhead(600) {
		t.Fatal("600 of a 1000-byte budget refused")
	}
	one(k(1), 500, 600) // decodes to 500: the reservation becomes 500
	if c.ahead != size(500) {
		t.Fatalf("ahead = %d after reading 500 bytes ahead, want %d", c.ahead, size(500))
	}
	if c.reserveAhead(1500) {
		t.Fatal("a read ahead past half of the cache was allowed")
	}
	if v, err := c.get(ctx, k(1), ext(999)); err != nil || len(v.arena) != 500 {
		t.Fatalf("get after read ahead: %v, %v; want the 500 bytes read ahead", v, err)
	}
	if c.ahead != 0 || counterValue(t, m.cacheHits) != 1 {
		t.Fatalf("ahead = %d, hits = %v after the extent was asked for; want 0, 1", c.ahead, counterValue(t, m.cacheHits))
	}

	// Read ahead, then reads that fill the cache: the extents already
	// served go first, the one read ahead stays.
	if !c.reserveAhead(900) {
		t.Fatal("reserve refused")
	}
	one(k(2), 900, 900)
	for i := 10; i < 15; i++ {
		c.get(ctx, k(i), ext(900))
	}
	if !c.has(k(2)) || c.ahead != size(900) || counterValue(t, m.prefetchWasted) != 0 {
		t.Fatalf("after reads: read-ahead extent cached %v, ahead = %d, wasted = %v; want true, %d, 0", c.has(k(2)), c.ahead, counterValue(t, m.prefetchWasted), size(900))
	}
	// Reads ahead past the budget are refused.
	if taken, full := c.offer(k(20), &cachedExtent{arena: make([]byte, 900)}, nil); !taken || full {
		t.Fatalf("an offer within the budget: taken %v, full %v", taken, full)
	}
	if taken, full := c.offer(k(21), &cachedExtent{arena: make([]byte, 900)}, nil); taken || !full {
		t.Fatalf("an offer past the budget: taken %v, full %v", taken, full)
	}
	// What nobody asks for within the TTL stops holding the budget, and is
	// evicted like what was served.
	c.aheadTTL = 0
	if free := c.aheadFree(); free != c.aheadMax() || c.ahead != 0 {
		t.Fatalf("after the TTL: ahead %d, free %d", c.ahead, free)
	}
	c.aheadTTL = defaultAheadTTL
	for i := 20; i < 25; i++ {
		c.get(ctx, k(i), ext(900))
	}
	if c.ahead != 0 {
		t.Fatalf("ahead = %d after every extent read ahead was asked for or evicted, want 0", c.ahead)
	}

	// A read ahead of something already cached gives its reservation back.
	c.reserveAhead(100)
	one(k(24), 900, 100)
	if c.ahead != 0 {
		t.Fatalf("ahead = %d after reading ahead a cached extent, want 0", c.ahead)
	}
}

// Several extents read with one load: only those neither cached nor
// loading are decoded and cached, and a fetch waiting for one of them
// gets it from that load.
func TestExtentCacheReadAheadSpan(t *testing.T) {
	m := newReaderMetrics(nil)
	c := newExtentCache(1<<20, m)
	ctx := context.Background()
	k := func(i int) extentKey { return extentKey{object: "o", offset: int64(i)} }
	c.get(ctx, k(1), func(context.Context) (*cachedExtent, error) { return &cachedExtent{arena: make([]byte, 10)}, nil })

	release := make(chan struct{})
	var got []bool
	done := make(chan struct{})
	c.reserveAhead(300)
	go func() {
		defer close(done)
		c.readAhead(ctx, []extentKey{k(0), k(1), k(2)}, &aheadReservation{left: 300}, func(_ context.Context, want []bool) ([]*cachedExtent, error) {
			got = want
			<-release
			out := make([]*cachedExtent, len(want))
			for i, w := range want {
				if w {
					out[i] = &cachedExtent{arena: make([]byte, 100+i)}
				}
			}
			return out, nil
		})
	}()
	for !c.has(k(2)) {
		time.Sleep(time.Millisecond)
	}
	waited := make(chan *cachedExtent)
	go func() {
		v, _ := c.get(ctx, k(2), func(context.Context) (*cachedExtent, error) {
			t.Error("a second load of an extent being read ahead")
			return nil, nil
		})
		waited <- v
	}()
	time.Sleep(10 * time.Millisecond)
	close(release)
	if v := <-waited; v == nil || len(v.arena) != 102 {
		t.Fatalf("the fetch got %v, want the extent read ahead", v)
	}
	<-done
	if len(got) != 3 || !got[0] || got[1] || !got[2] {
		t.Fatalf("want = %v, want [true false true] (k(1) was cached)", got)
	}
	if !c.has(k(0)) || c.ahead != (&cachedExtent{arena: make([]byte, 100)}).size() || counterValue(t, m.cacheMisses) != 3 {
		t.Fatalf("after the read ahead: k(0) cached %v, ahead %d (want 100: k(0) unread), misses %v (want 3)", c.has(k(0)), c.ahead, counterValue(t, m.cacheMisses))
	}
}

// An object is read in chunks: whole when small, else aligned ranges,
// and an extent across a chunk boundary needs both chunks.
func TestChunksOf(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		name                  string
		size, off, len, chunk int64
		want                  string
	}{
		{"small object whole", 9 * mib, 5 * mib, 100, 8 * mib, "[{{o 0 9437184} 0 9437184}]"},
		{"unknown size", 0, 100, 10, 8 * mib, "[{{o 0 8388608} 0 8388608}]"},
		{"inside a chunk", 40 * mib, 9 * mib, 100, 8 * mib, "[{{o 8388608 16777216} 8388608 16777216}]"},
		{"across a boundary", 40 * mib, 16*mib - 10, 20, 8 * mib, "[{{o 8388608 16777216} 8388608 16777216} {{o 16777216 25165824} 16777216 25165824}]"},
		{"last chunk clipped", 20 * mib, 17 * mib, 10, 8 * mib, "[{{o 16777216 20971520} 16777216 20971520}]"},
		{"a small remainder joins the last chunk", 32*mib + 300<<10, 32 * mib, 100, 8 * mib, "[{{o 25165824 33861632} 25165824 33861632}]"},
		{"the last chunk from its start", 32*mib + 300<<10, 25 * mib, 100, 8 * mib, "[{{o 25165824 33861632} 25165824 33861632}]"},
		{"across into the last chunk", 32*mib + 300<<10, 24*mib - 10, 8*mib + 20, 8 * mib, "[{{o 16777216 25165824} 16777216 25165824} {{o 25165824 33861632} 25165824 33861632}]"},
		{"half a chunk stays apart", 36 * mib, 33 * mib, 100, 8 * mib, "[{{o 33554432 37748736} 33554432 37748736}]"},
	} {
		if got := fmt.Sprint(chunksOf(nil, "o", tc.size, tc.off, tc.len, tc.chunk)); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}

// putObject writes an object of 3 batches ("p<partition>-<i>") for each
// of parts partitions, and returns an index entry per partition with
// offsets from 0.
func putObject(t *testing.T, bucket segments.Bucket, key string, parts int) []metadata.IndexEntry {
	t.Helper()
	b := segments.NewBuilder(segments.CodecZstd)
	for p := range parts {
		for i := range 3 {
			raw := kafkatest.RecordBatch(kafkatest.NoProducer, time.UnixMilli(1000), fmt.Sprintf("p%d-%d", p, i))
			batch, err := segments.ParseBatch(raw)
			if err != nil {
				t.Fatal(err)
			}
			b.Append(segments.PartitionKey{Partition: int32(p)}, batch)
		}
	}
	object, extents, err := b.Finish()
	if err != nil {
		t.Fatal(err)
	}
	if err := bucket.Put(context.Background(), key, object); err != nil {
		t.Fatal(err)
	}
	out := make([]metadata.IndexEntry, len(extents))
	for p, x := range extents {
		out[p] = metadata.IndexEntry{Object: key, ObjectSize: int64(len(object)), Offset: x.Offset, Length: x.Length, First: 0, Last: x.Records - 1, Batches: x.Batches}
	}
	return out
}

// countingBucket counts GETs.
type countingBucket struct {
	segments.Bucket
	gets atomic.Int64
}

func (b *countingBucket) GetRange(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	b.gets.Add(1)
	return b.Bucket.GetRange(ctx, key, off, n)
}

// Every partition's extent in an object is served from one GET of the
// object, each with its own records and offsets.
func TestExtentsOfAnObjectShareOneGet(t *testing.T) {
	ctx := context.Background()
	dir := dirBucket(t)
	bucket := &countingBucket{Bucket: dir}
	const parts = 64
	entries := putObject(t, bucket, "obj", parts)
	entry := func(p int, first int64) metadata.IndexEntry {
		e := entries[p]
		e.First, e.Last = first, first+e.Last
		return e
	}
	r := New(ctx, nil, bucket, Config{CacheBytes: 64 << 20}, slog.New(slog.DiscardHandler), nil)
	for p := range parts {
		e := entry(p, int64(10*p))
		ext, err := r.extent(ctx, e)
		if err != nil {
			t.Fatal(err)
		}
		if len(ext.bases) != 3 || ext.bases[0] != e.First || ext.lasts[2] != e.Last {
			t.Fatalf("partition %d: bases %v lasts %v, want 3 batches from offset %d", p, ext.bases, ext.lasts, e.First)
		}
		for j := range 3 {
			batch, err := segments.ParseBatch(ext.arena[ext.starts[j]:ext.batchEnd(j)])
			if err != nil {
				t.Fatal(err)
			}
			want := fmt.Sprintf("p%d-%d", p, j)
			if batch.BaseOffset != e.First+int64(j) || !strings.Contains(string(batch.Raw), want) {
				t.Fatalf("partition %d batch %d: base offset %d, holds %q: want %d and %q", p, j, batch.BaseOffset, batch.Raw, e.First+int64(j), want)
			}
		}
	}
	if n := bucket.gets.Load(); n != 1 {
		t.Fatalf("%d GETs for %d extents of one object, want 1", n, parts)
	}
}

// TestExtentCacheReservationCoversNeighbours: the extents a read ahead's
// chunk brings in for other partitions count against the bytes the read
// reserved for them, instead of being refused because the reservation
// already holds the budget; past the reservation the budget decides, and
// what is left of the reservation is given back.
func TestExtentCacheReservationCoversNeighbours(t *testing.T) {
	m := newReaderMetrics(nil)
	c := newExtentCache(4000, m) // read-ahead budget: 2000
	ctx := context.Background()
	k := func(i int) extentKey { return extentKey{object: "o", offset: int64(i)} }
	size := func(n int) int64 { return (&cachedExtent{arena: make([]byte, n)}).size() }
	reserve := size(100) + 3*size(400)
	filler := c.aheadMax() - reserve
	if !c.reserveAhead(filler) || !c.reserveAhead(reserve) {
		t.Fatal("reservations within the budget refused")
	}
	res := &aheadReservation{left: reserve}
	c.readAhead(ctx, []extentKey{k(0)}, res, func(_ context.Context, want []bool) ([]*cachedExtent, error) {
		for i := 1; i <= 3; i++ {
			if taken, full := c.offer(k(i), &cachedExtent{arena: make([]byte, 400)}, res); !taken || full {
				t.Errorf("neighbour %d within the reservation: taken %v, full %v", i, taken, full)
			}
		}
		if taken, full := c.offer(k(4), &cachedExtent{arena: make([]byte, 400)}, res); taken || !full {
			t.Errorf("a neighbour past the reservation, the budget spent: taken %v, full %v", taken, full)
		}
		return []*cachedExtent{{arena: make([]byte, 100)}}, nil
	})
	if want := filler + size(100) + 3*size(400); c.ahead != want {
		t.Fatalf("ahead = %d after the read, want %d (the filler and what was decoded)", c.ahead, want)
	}
	for i := 0; i <= 3; i++ {
		if !c.has(k(i)) {
			t.Errorf("extent %d not cached", i)
		}
	}
	if res.left != 0 {
		t.Fatalf("reservation left %d after the read, want 0", res.left)
	}
}

// An extent a plan found (peek) and the cache evicted before the read
// (use) is still served, and its use does not bring it back into the
// cache uncounted.
func TestExtentCachePeekedThenEvicted(t *testing.T) {
	m := newReaderMetrics(nil)
	c := newExtentCache(4000, m)
	ctx := context.Background()
	k := func(i int) extentKey { return extentKey{object: "o", offset: int64(i)} }
	ext := func(n int) *cachedExtent { return &cachedExtent{arena: make([]byte, n)} }
	if taken, _ := c.offer(k(1), ext(500), nil); !taken {
		t.Fatal("offer of a first extent refused")
	}
	it, loading := c.peek(k(1))
	if !it.ok() || loading {
		t.Fatalf("peek of a cached extent: %v, loading %v", it, loading)
	}
	if c.ahead == 0 {
		t.Fatal("an extent read ahead and only peeked at no longer counts as read ahead")
	}
	// Unasked for too long, it counts as served and is evicted like one.
	c.aheadTTL = 0
	c.aheadFree()
	for i := 2; i < 12; i++ { // push k(1) out
		if _, err := c.get(ctx, k(i), func(context.Context) (*cachedExtent, error) { return ext(900), nil }); err != nil {
			t.Fatal(err)
		}
	}
	if got, _ := c.peek(k(1)); got.ok() {
		t.Fatal("the extent was not evicted; the test needs a smaller cache")
	}
	bytes, ahead, items := c.bytes, c.ahead, len(c.items)
	c.useAll([]extentRef{it})
	if v := it.get(nil); len(v.arena) != 500 {
		t.Fatalf("an evicted extent used has %d bytes, want its 500", len(v.arena))
	}
	if c.bytes != bytes || c.ahead != ahead || len(c.items) != items || c.lru.Len()+c.aheadLRU.Len() != items {
		t.Fatalf("after using an evicted extent: %d bytes, %d ahead, %d items, %d listed; want %d, %d, %d", c.bytes, c.ahead, len(c.items), c.lru.Len()+c.aheadLRU.Len(), bytes, ahead, items)
	}
}

// A partition's readers are followed one by one: a reader that moves on
// stops holding the lowest position down at once (chunks read for others
// then skip the extents it passed), a second group behind it holds it
// down while it reads, and a reader not seen for lowFor no longer does.
func TestReadersAreFollowedEachOnItsOwn(t *testing.T) {
	ctx := t.Context()
	r := New(ctx, nil, nil, Config{CacheBytes: 64 << 20}, slog.New(slog.DiscardHandler), nil)
	id := metadata.PartitionID{Partition: 3}
	low := func(want int64) {
		t.Helper()
		got, ok := r.readingAt(id)
		if !ok || got != want {
			t.Fatalf("readingAt = %d, %v; want %d", got, ok, want)
		}
	}
	if _, ok := r.readingAt(id); ok {
		t.Fatal("a partition nobody read is being read")
	}
	r.noteRead(id, 10, 10) // a plan from 10
	low(10)
	r.noteRead(id, 10, 50) // its read returned up to 50
	low(50)
	r.noteRead(id, 50, 90)
	low(90)
	r.noteRead(id, 20, 20) // a second group, behind
	low(20)
	r.noteRead(id, 90, 130) // the first moves on: the second still holds it
	low(20)
	r.noteRead(id, 20, 60)
	low(60)
	// The second group stops: once it has not been seen for lowFor, the
	// first one's position is the lowest.
	r.posMu.Lock()
	p := r.reading[id]
	for i := range p.readers {
		if p.readers[i].off == 60 {
			p.readers[i].at -= int64(lowFor + time.Second)
		}
	}
	r.reading[id] = p
	r.posMu.Unlock()
	low(130)
	// More readers than are followed: the one seen least recently gives
	// way.
	for i := range int64(maxReaders + 2) {
		r.noteRead(id, 1000+i, 1000+i)
	}
	low(1000 + 2)
}

// The extents of a chunk decoded together serve each partition's batches
// with its offsets, count against the read-ahead budget until every one
// was used, and are evicted as one item, giving back everything they
// held.
func TestChunkExtentsServedAndCounted(t *testing.T) {
	ctx := context.Background()
	dir := dirBucket(t)
	const parts = 64
	entries := putObject(t, dir, "obj", parts)
	for p := range entries {
		entries[p].First, entries[p].Last = int64(10*p), int64(10*p)+entries[p].Last
	}
	size := entries[0].ObjectSize
	r := &Reader{bucket: dir, metrics: newReaderMetrics(nil)}
	data, err := r.readRange(ctx, "obj", 0, size, nil)
	if err != nil {
		t.Fatal(err)
	}
	span := chunkSpan{key: chunkKey{"obj", 0, size}, start: 0, end: size}

	// Within little room, only the first extents are decoded.
	if ch, rest := decodeChunkExtents(span, data, slices.Clone(entries), 2048); ch == nil || len(ch.ext) == 0 || len(ch.ext)+len(rest) != parts || ch.size > 2048 || rest[0].Offset <= ch.ext[len(ch.ext)-1].offset {
		t.Fatalf("decoded within 2048 bytes: %+v, %d left", ch, len(rest))
	}
	shuffled := slices.Clone(entries)
	slices.Reverse(shuffled)
	ch, _ := decodeChunkExtents(span, data, shuffled, 64<<20)
	if ch == nil || len(ch.ext) != parts {
		t.Fatalf("decoded %v extents of %d", ch, parts)
	}
	for p, e := range entries {
		i, ok := ch.find(keyOf(e))
		if !ok {
			t.Fatalf("partition %d's extent not found", p)
		}
		got := ch.view(i)
		want, err := r.decodeEntry(e, data[e.Offset:e.Offset+e.Length])
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.arena, want.arena) || !slices.Equal(got.starts, want.starts) || !slices.Equal(got.bases, want.bases) || !slices.Equal(got.lasts, want.lasts) {
			t.Fatalf("partition %d: decoded together %v %v %v, alone %v %v %v", p, got.starts, got.bases, got.lasts, want.starts, want.bases, want.lasts)
		}
	}
	if _, ok := ch.find(extentKey{"obj", entries[3].Offset, entries[3].First + 1}); ok {
		t.Fatal("an extent found under another first offset")
	}

	m := newReaderMetrics(nil)
	c := newExtentCache(32*ch.size, m)
	room := c.takeAheadRoom(nil)
	if room < ch.size || c.ahead != room {
		t.Fatalf("room taken %d (ahead %d) for an item of %d", room, c.ahead, ch.size)
	}
	if n := c.offerChunk(ch, room, nil); n != parts {
		t.Fatalf("offered %d extents, want %d", n, parts)
	}
	if c.ahead != ch.size || c.bytes != ch.size || c.aheadLRU.Len() != 1 {
		t.Fatalf("after the offer: ahead %d, bytes %d, %d items read ahead; want %d, %d, 1", c.ahead, c.bytes, c.aheadLRU.Len(), ch.size, ch.size)
	}
	// A second decode of the same chunk adds nothing to read ahead.
	room = c.takeAheadRoom(nil)
	again, _ := decodeChunkExtents(span, data, slices.Clone(entries), room)
	if n := c.offerChunk(again, room, nil); n != 0 || c.ahead != ch.size {
		t.Fatalf("a second offer of the same extents took %d", n)
	}
	refs := make([]extentRef, parts)
	loading := make([]bool, parts)
	keys := make([]extentKey, parts)
	for p, e := range entries {
		keys[p] = keyOf(e)
	}
	c.peekAll(keys, refs, loading)
	c.useAll(refs[:parts/2])
	c.useAll(refs[:parts/2]) // used twice: counted once
	if c.ahead != ch.size || c.aheadLRU.Len() != 1 || ch.unused != parts/2 {
		t.Fatalf("half used: ahead %d, %d items read ahead, %d unused; want %d, 1, %d", c.ahead, c.aheadLRU.Len(), ch.unused, ch.size, parts/2)
	}
	c.useAll(refs[parts/2:])
	if c.ahead != 0 || c.aheadLRU.Len() != 0 || c.lru.Len() != 1 {
		t.Fatalf("all used: ahead %d, %d items read ahead, %d served; want 0, 0, 1", c.ahead, c.aheadLRU.Len(), c.lru.Len())
	}
	// Served extents of other objects push the item out.
	for i := range 33 {
		if _, err := c.get(ctx, extentKey{object: "other", offset: int64(i)}, func(context.Context) (*cachedExtent, error) {
			return &cachedExtent{arena: make([]byte, ch.size)}, nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	if len(c.chunkItems) != 0 || c.has(keys[0]) || c.bytes > 32*ch.size {
		t.Fatalf("the chunk's item was not evicted: %d items, %d bytes", len(c.chunkItems), c.bytes)
	}
	// What the plan found stays valid after the eviction.
	var buf cachedExtent
	if v := refs[5].get(&buf); !slices.Equal(v.bases, []int64{50, 51, 52}) {
		t.Fatalf("an evicted chunk's extent has bases %v", v.bases)
	}
}

// A fetch held back for read-ahead room waits for it (waitRoom): the
// channel closes once enough room is given back, not before, and a
// waiter that stops waiting is forgotten.
func TestExtentCacheWaitRoom(t *testing.T) {
	m := newReaderMetrics(nil)
	c := newExtentCache(4000, m) // read-ahead budget: 2000
	k := func(i int) extentKey { return extentKey{object: "o", offset: int64(i)} }
	ext := func(n int) *cachedExtent { return &cachedExtent{arena: make([]byte, n)} }
	closed := func(ch <-chan struct{}) bool {
		select {
		case <-ch:
			return true
		default:
			return false
		}
	}
	if ch, stop := c.waitRoom(1000); !closed(ch) {
		t.Fatal("with the budget free, waitRoom's channel is open")
	} else {
		stop()
	}
	for i := range 3 {
		if taken, _ := c.offer(k(i), ext(500), nil); !taken {
			t.Fatalf("offer %d refused", i)
		}
	}
	free := c.aheadMax() - c.ahead
	if free >= 1000 {
		t.Fatalf("%d bytes of read-ahead room left, want less than 1000", free)
	}
	ch, _ := c.waitRoom(1000)
	gone, stopGone := c.waitRoom(1000)
	stopGone()
	if closed(ch) {
		t.Fatal("waitRoom's channel closed with too little room")
	}
	if len(c.roomWaiters) != 1 {
		t.Fatalf("%d waiters, want 1 (the other stopped)", len(c.roomWaiters))
	}
	// Using one extent gives back less than the room asked for.
	ref, _ := c.peek(k(0))
	c.useAll([]extentRef{ref})
	if c.aheadMax()-c.ahead < 1000 && closed(ch) {
		t.Fatal("waitRoom's channel closed before its room was free")
	}
	ref, _ = c.peek(k(1))
	c.useAll([]extentRef{ref})
	if c.aheadMax()-c.ahead < 1000 {
		t.Fatalf("only %d bytes free after two uses", c.aheadMax()-c.ahead)
	}
	if !closed(ch) {
		t.Fatal("waitRoom's channel open with its room free")
	}
	if closed(gone) || len(c.roomWaiters) != 0 {
		t.Fatalf("a stopped waiter was woken, or waiters are left: %d", len(c.roomWaiters))
	}
}

// An extent asked for only if ready (load without a loader) is served
// from the cache or from a load in flight, and otherwise not read at all.
func TestExtentCacheLoadIfReady(t *testing.T) {
	c := newExtentCache(1<<20, newReaderMetrics(nil))
	ctx := context.Background()
	k := func(i int) extentKey { return extentKey{object: "o", offset: int64(i)} }
	if ext, err := c.load(ctx, k(1), nil, nil); ext != nil || !errors.Is(err, errNotReady) {
		t.Fatalf("an extent neither cached nor loading: %v, %v; want errNotReady", ext, err)
	}
	if c.has(k(1)) {
		t.Fatal("asking for an extent only if ready started a load of it")
	}
	// One being loaded: the caller waits for that load.
	release := make(chan struct{})
	loaded := make(chan struct{})
	go func() {
		defer close(loaded)
		c.get(ctx, k(2), func(context.Context) (*cachedExtent, error) {
			<-release
			return &cachedExtent{arena: make([]byte, 100)}, nil
		})
	}()
	for !c.has(k(2)) {
		time.Sleep(time.Millisecond)
	}
	got := make(chan *cachedExtent, 1)
	go func() {
		ext, _ := c.load(ctx, k(2), nil, nil)
		got <- ext
	}()
	close(release)
	if ext := <-got; ext == nil || len(ext.arena) != 100 {
		t.Fatalf("the extent being loaded: %v", ext)
	}
	<-loaded
	// One cached.
	if ext, err := c.load(ctx, k(2), nil, nil); err != nil || ext == nil {
		t.Fatalf("a cached extent: %v, %v", ext, err)
	}
}

// A chunk's extents decoded as its bytes arrive: each piece that holds
// enough whole extents becomes an item answering for its own extents, the
// rest are decoded once the chunk is read, every extent is served as a
// decode of it alone serves it, and the room taken for the chunk that no
// item took is given back.
func TestNeighboursDecodedAsTheyArrive(t *testing.T) {
	ctx := context.Background()
	dir := dirBucket(t)
	const parts = 3*minChunkExtents + 5
	entries := putObject(t, dir, "obj", parts)
	for p := range entries {
		entries[p].First, entries[p].Last = int64(10*p), int64(10*p)+entries[p].Last
	}
	size := entries[0].ObjectSize
	r := &Reader{bucket: dir, metrics: newReaderMetrics(nil), cache: newExtentCache(64<<20, newReaderMetrics(nil))}
	data, err := r.readRange(ctx, "obj", 0, size, nil)
	if err != nil {
		t.Fatal(err)
	}
	span := chunkSpan{key: chunkKey{"obj", 0, size}, start: 0, end: size}
	todo := slices.Clone(entries)
	slices.Reverse(todo)
	nb := &neighbours{r: r, s: span, todo: todo, together: true}
	slices.SortFunc(nb.todo, func(a, b metadata.IndexEntry) int { return cmp.Compare(a.Offset, b.Offset) })

	// Too few whole extents: nothing yet.
	cut := func(n int) []byte { return data[:entries[n].Offset+entries[n].Length-1] }
	nb.arrived(cut(minChunkExtents-1), false)
	if r.cache.bytes != 0 || nb.next != 0 {
		t.Fatalf("decoded %d bytes (%d extents) from %d whole extents", r.cache.bytes, nb.next, minChunkExtents-2)
	}
	// Enough: the whole ones, into one item.
	nb.arrived(cut(minChunkExtents+3), false)
	if nb.next != minChunkExtents+3 || len(r.cache.chunkItems["obj"]) != 1 {
		t.Fatalf("after %d whole extents: %d decoded, %d items", minChunkExtents+3, nb.next, len(r.cache.chunkItems["obj"]))
	}
	first := r.cache.chunkItems["obj"][0].chunk
	if first.start != entries[0].Offset || first.end != entries[minChunkExtents+2].Offset+1 {
		t.Fatalf("the first item answers for [%d, %d), its extents span [%d, %d]", first.start, first.end, entries[0].Offset, entries[minChunkExtents+2].Offset)
	}
	if _, ok := first.find(keyOf(entries[minChunkExtents+3])); ok {
		t.Fatal("the first item answers for an extent it does not hold")
	}
	nb.finish(data)
	if nb.next != parts || len(r.cache.chunkItems["obj"]) != 2 {
		t.Fatalf("once read: %d decoded, %d items", nb.next, len(r.cache.chunkItems["obj"]))
	}
	var ahead int64
	for _, it := range r.cache.chunkItems["obj"] {
		ahead += it.chunk.size
	}
	if r.cache.ahead != ahead {
		t.Fatalf("read ahead counts %d bytes, its items hold %d", r.cache.ahead, ahead)
	}
	for p, e := range entries {
		ref := r.cache.findLocked(keyOf(e))
		if !ref.ok() {
			t.Fatalf("partition %d's extent not cached", p)
		}
		var buf cachedExtent
		got := ref.get(&buf)
		want, err := r.decodeEntry(e, data[e.Offset:e.Offset+e.Length])
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.arena, want.arena) || !slices.Equal(got.bases, want.bases) || !slices.Equal(got.lasts, want.lasts) {
			t.Fatalf("partition %d: decoded as it arrived %v %v, alone %v %v", p, got.bases, got.lasts, want.bases, want.lasts)
		}
	}

	// Within a room for the first piece only, the rest is offered one by
	// one once the chunk is read, while the budget has room.
	r.cache = newExtentCache(64<<20, newReaderMetrics(nil))
	nb = &neighbours{r: r, s: span, todo: slices.Clone(entries), together: true, room: first.size, roomTaken: true}
	r.cache.ahead = first.size // as takeAheadRoom would have counted it
	nb.arrived(cut(minChunkExtents+3), false)
	nb.arrived(data[:entries[parts-1].Offset], false)
	if len(r.cache.chunkItems["obj"]) != 1 || len(nb.oneByOne) != parts-(minChunkExtents+3) {
		t.Fatalf("with room for one item: %d items, %d left one by one", len(r.cache.chunkItems["obj"]), len(nb.oneByOne))
	}
	nb.finish(data)
	for _, e := range entries {
		if !r.cache.findLocked(keyOf(e)).ok() {
			t.Fatalf("extent at %d not offered one by one", e.Offset)
		}
	}
}

// readPieces reads like io.ReadFull, and tells of every piece of at
// least readPiece bytes as it arrives, but not of the last.
func TestReadPieces(t *testing.T) {
	src := make([]byte, 3*readPiece+100)
	for i := range src {
		src[i] = byte(i * 7)
	}
	var told []int
	arrived := func(b []byte) {
		if !bytes.Equal(b, src[:len(b)]) {
			t.Fatalf("told of %d bytes that are not the source's", len(b))
		}
		told = append(told, len(b))
	}
	buf := make([]byte, len(src))
	n, err := readPieces(iotest.HalfReader(bytes.NewReader(src)), buf, arrived)
	if err != nil || n != len(src) || !bytes.Equal(buf, src) {
		t.Fatalf("read %d bytes, err %v", n, err)
	}
	if len(told) < 2 || told[len(told)-1] >= len(src) {
		t.Fatalf("told of %v of %d bytes", told, len(src))
	}
	prev := 0
	for _, n := range told {
		if n-prev < readPiece {
			t.Fatalf("told of %v: less than a piece apart", told)
		}
		prev = n
	}
	// Pieces that end where the buffer does: the last is not told of.
	told = nil
	if _, err := readPieces(pieceReader{bytes.NewReader(src[:2*readPiece])}, make([]byte, 2*readPiece), arrived); err != nil || !slices.Equal(told, []int{readPiece}) {
		t.Fatalf("two whole pieces: told of %v, err %v", told, err)
	}
	// Short: io.ErrUnexpectedEOF; nothing: io.EOF; as io.ReadFull.
	if n, err := readPieces(bytes.NewReader(src[:10]), make([]byte, 20), arrived); n != 10 || err != io.ErrUnexpectedEOF {
		t.Fatalf("short read: %d, %v", n, err)
	}
	if n, err := readPieces(bytes.NewReader(nil), make([]byte, 20), arrived); n != 0 || err != io.EOF {
		t.Fatalf("empty read: %d, %v", n, err)
	}
	if n, err := readPieces(iotest.DataErrReader(bytes.NewReader(src[:20])), make([]byte, 20), nil); n != 20 || err != nil {
		t.Fatalf("full read ending with EOF: %d, %v", n, err)
	}
}

// pieceReader reads at most readPiece bytes at a time.
type pieceReader struct{ r io.Reader }

func (p pieceReader) Read(b []byte) (int, error) { return p.r.Read(b[:min(len(b), readPiece)]) }

// dirBucket is a bucket in a directory of the test's, closed when it ends.
func dirBucket(t *testing.T) segments.Bucket {
	t.Helper()
	b, err := segments.OpenBucket(context.Background(), t.TempDir(), segments.BucketOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}
