package agent

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
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
