package agent

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
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
// ahead is refused past a quarter of the cache, and one evicted unread
// counts as wasted.
func TestExtentCacheReadAheadBudget(t *testing.T) {
	m := newReaderMetrics(nil)
	c := newExtentCache(4000, m)
	ctx := context.Background()
	ext := func(n int) func(context.Context) (*cachedExtent, error) {
		return func(context.Context) (*cachedExtent, error) { return &cachedExtent{arena: make([]byte, n)}, nil }
	}
	k := func(i int) extentKey { return extentKey{object: "o", offset: int64(i)} }
	// one reads keys ahead with one load, each decoding to size bytes.
	one := func(key extentKey, size int, reserved int64) {
		c.readAhead(ctx, []extentKey{key}, reserved, func(_ context.Context, want []bool) ([]*cachedExtent, error) {
			v, err := ext(size)(ctx)
			return []*cachedExtent{v}, err
		})
	}

	if !c.reserveAhead(600) {
		t.Fatal("600 of a 1000-byte budget refused")
	}
	one(k(1), 500, 600) // decodes to 500: the reservation becomes 500
	if c.ahead != 500 {
		t.Fatalf("ahead = %d after reading 500 bytes ahead, want 500", c.ahead)
	}
	if c.reserveAhead(600) {
		t.Fatal("a read ahead past a quarter of the cache was allowed")
	}
	if v, err := c.get(ctx, k(1), ext(999)); err != nil || len(v.arena) != 500 {
		t.Fatalf("get after read ahead: %v, %v; want the 500 bytes read ahead", v, err)
	}
	if c.ahead != 0 || counterValue(t, m.cacheHits) != 1 {
		t.Fatalf("ahead = %d, hits = %v after the extent was asked for; want 0, 1", c.ahead, counterValue(t, m.cacheHits))
	}

	// Read ahead, then evicted by reads before anyone asks: wasted.
	if !c.reserveAhead(900) {
		t.Fatal("reserve refused")
	}
	one(k(2), 900, 900)
	for i := 10; i < 15; i++ {
		c.get(ctx, k(i), ext(900))
	}
	if c.ahead != 0 || counterValue(t, m.prefetchWasted) != 1 {
		t.Fatalf("ahead = %d, wasted = %v after eviction; want 0, 1", c.ahead, counterValue(t, m.prefetchWasted))
	}

	// A read ahead of something already cached gives its reservation back.
	c.reserveAhead(100)
	one(k(14), 900, 100)
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
		c.readAhead(ctx, []extentKey{k(0), k(1), k(2)}, 300, func(_ context.Context, want []bool) ([]*cachedExtent, error) {
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
	if !c.has(k(0)) || c.ahead != 100 || counterValue(t, m.cacheMisses) != 3 {
		t.Fatalf("after the read ahead: k(0) cached %v, ahead %d (want 100: k(0) unread), misses %v (want 3)", c.has(k(0)), c.ahead, counterValue(t, m.cacheMisses))
	}
}

// Extents of one object are read together across gaps of up to maxGap,
// and never past maxSpan bytes or into another object.
func TestNextSpan(t *testing.T) {
	const mib = 1 << 20
	e := func(object string, offset, length int64) metadata.IndexEntry {
		return metadata.IndexEntry{Object: object, Offset: offset, Length: length}
	}
	for _, tc := range []struct {
		name    string
		entries []metadata.IndexEntry
		n       int
		size    int64
	}{
		{"one", []metadata.IndexEntry{e("a", 100, 10)}, 1, 10},
		{"adjacent", []metadata.IndexEntry{e("a", 0, mib), e("a", mib, mib), e("a", 2*mib, 5)}, 3, 2*mib + 5},
		{"gap within maxGap", []metadata.IndexEntry{e("a", 0, 10), e("a", 10+maxGap, 10)}, 2, 20 + maxGap},
		{"gap past maxGap", []metadata.IndexEntry{e("a", 0, 10), e("a", 11+maxGap, 10)}, 1, 10},
		{"other object", []metadata.IndexEntry{e("a", 0, 10), e("b", 10, 10)}, 1, 10},
		{"up to maxSpan", []metadata.IndexEntry{e("a", 0, maxSpan/2), e("a", maxSpan/2, maxSpan/2), e("a", maxSpan, 1)}, 2, maxSpan},
		{"a first entry over maxSpan alone", []metadata.IndexEntry{e("a", 0, 2*maxSpan), e("a", 2*maxSpan, 1)}, 1, 2 * maxSpan},
	} {
		if n, size := nextSpan(tc.entries); n != tc.n || size != tc.size {
			t.Errorf("%s: nextSpan = %d entries, %d bytes; want %d, %d", tc.name, n, size, tc.n, tc.size)
		}
	}
}

// A span read across a gap decodes each wanted extent from its own bytes:
// the second and fourth of four partitions, read with one GET over the
// third, come back with their own records and offsets.
func TestLoadSpanAcrossAGap(t *testing.T) {
	ctx := context.Background()
	bucket, err := segments.OpenBucket(ctx, t.TempDir(), segments.BucketOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer bucket.Close()
	b := segments.NewBuilder(segments.CodecNone)
	for p := range 4 {
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
	if err := bucket.Put(ctx, "obj", object); err != nil {
		t.Fatal(err)
	}
	entry := func(x segments.Extent, first int64) metadata.IndexEntry {
		return metadata.IndexEntry{Object: "obj", Offset: x.Offset, Length: x.Length, First: first, Last: first + x.Records - 1, Batches: x.Batches}
	}
	span := []metadata.IndexEntry{entry(extents[1], 10), entry(extents[3], 20)}
	if n, _ := nextSpan(span); n != 2 {
		t.Fatalf("the two extents %d bytes apart are not one span", extents[3].Offset-extents[1].Offset-extents[1].Length)
	}
	r := newReader(nil, bucket, 1<<20, slog.New(slog.DiscardHandler), newReaderMetrics(nil))
	got, err := r.loadSpan(ctx, span, []bool{true, true})
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range []int{1, 3} {
		ext := got[i]
		if len(ext.bases) != 3 || ext.bases[0] != span[i].First || ext.lasts[2] != span[i].Last {
			t.Fatalf("partition %d: bases %v lasts %v, want 3 batches from offset %d", p, ext.bases, ext.lasts, span[i].First)
		}
		for j := range 3 {
			batch, err := segments.ParseBatch(ext.arena[ext.starts[j]:ext.batchEnd(j)])
			if err != nil {
				t.Fatal(err)
			}
			want := fmt.Sprintf("p%d-%d", p, j)
			if batch.BaseOffset != span[i].First+int64(j) || !strings.Contains(string(batch.Raw), want) {
				t.Fatalf("partition %d batch %d: base offset %d, holds %q: want %d and %q", p, j, batch.BaseOffset, batch.Raw, span[i].First+int64(j), want)
			}
		}
	}
}
