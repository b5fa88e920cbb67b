package bench

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestHistogramQuantilesWithinOnePercent(t *testing.T) {
	var h Histogram
	r := rand.New(rand.NewPCG(1, 2))
	var all []time.Duration
	for range 100000 {
		d := time.Duration(r.ExpFloat64() * float64(20*time.Millisecond))
		all = append(all, d)
		h.Record(d)
	}
	slices.Sort(all)
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		want := all[int(q*float64(len(all)))-1]
		got := h.Quantile(q)
		if diff := float64(got-want) / float64(want); diff > 0.01 || diff < -0.01 {
			t.Errorf("q%.3f = %v, want %v (±1%%)", q, got, want)
		}
	}
	if h.Max() != all[len(all)-1].Truncate(time.Microsecond) {
		t.Errorf("max %v, want %v", h.Max(), all[len(all)-1])
	}
	if h.Count() != uint64(len(all)) {
		t.Errorf("count %d", h.Count())
	}
}

func TestHistogramIndexIsMonotonic(t *testing.T) {
	prev := -1
	for us := uint64(0); us < 1<<24; us = us*21/20 + 1 {
		i := histIndex(us)
		if i < prev {
			t.Fatalf("index(%d) = %d < %d", us, i, prev)
		}
		if v := histValue(i); float64(v) < float64(us)*0.99 || float64(v) > float64(us)*1.01+1 {
			t.Fatalf("value(index(%d)) = %d", us, v)
		}
		prev = i
	}
	var h Histogram
	if h.Quantile(0.99) != 0 || h.Summary().Count != 0 {
		t.Fatal("empty histogram is not zero")
	}
}
