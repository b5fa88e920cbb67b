package agent

import (
	"context"
	"testing"

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

	if !c.reserveAhead(600) {
		t.Fatal("600 of a 1000-byte budget refused")
	}
	c.readAhead(ctx, k(1), ext(500), 600) // decodes to 500: the reservation becomes 500
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
	c.readAhead(ctx, k(2), ext(900), 900)
	for i := 10; i < 15; i++ {
		c.get(ctx, k(i), ext(900))
	}
	if c.ahead != 0 || counterValue(t, m.prefetchWasted) != 1 {
		t.Fatalf("ahead = %d, wasted = %v after eviction; want 0, 1", c.ahead, counterValue(t, m.prefetchWasted))
	}

	// A read ahead of something already cached gives its reservation back.
	c.reserveAhead(100)
	c.readAhead(ctx, k(14), ext(900), 100)
	if c.ahead != 0 {
		t.Fatalf("ahead = %d after reading ahead a cached extent, want 0", c.ahead)
	}
}
