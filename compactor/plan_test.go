package compactor

import (
	"fmt"
	"testing"
	"time"

	"github.com/floe-io/floe/metadata"
	"github.com/floe-io/floe/segments"
)

var planNow = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// entry is an index entry of records offsets from first, length stored
// bytes, newest timestamp maxAgo before planNow, committed committedAgo
// before planNow, in a new object of kind.
func entry(first, records, length int64, maxAgo, committedAgo time.Duration, kind string) metadata.StoredIndexEntry {
	return metadata.StoredIndexEntry{
		IndexEntry: metadata.IndexEntry{
			Object: segments.NewObjectKey(planNow, kind), Offset: 16, Length: length,
			First: first, Last: first + records - 1, Batches: 1,
			MinTimestamp: planNow.Add(-maxAgo).UnixMilli() - 10, MaxTimestamp: planNow.Add(-maxAgo).UnixMilli(),
			Committed: planNow.Add(-committedAgo).UnixMilli(),
		},
		ModRevision: 1,
	}
}

// log builds consecutive entries of 10 records each with the given ages
// (newest timestamp) and lengths.
func log(ages []time.Duration, lengths []int64, kinds ...string) []metadata.StoredIndexEntry {
	var out []metadata.StoredIndexEntry
	for i := range ages {
		kind := segments.KindFlush
		if i < len(kinds) {
			kind = kinds[i]
		}
		out = append(out, entry(int64(i)*10, 10, lengths[i], ages[i], time.Hour, kind))
	}
	return out
}

func TestPlanRetention(t *testing.T) {
	h := time.Hour
	settings := func(ms, bytes int64, policy string) metadata.TopicSettings {
		return metadata.BrokerConfig{}.Settings(map[string]string{
			"retention.ms": fmt.Sprint(ms), "retention.bytes": fmt.Sprint(bytes), "cleanup.policy": policy,
		})
	}
	for _, tc := range []struct {
		name      string
		start     int64
		entries   []metadata.StoredIndexEntry
		settings  metadata.TopicSettings
		remove    int
		wantStart int64
		behind    bool
	}{
		{"nothing expired", 0, log([]time.Duration{3 * h, 2 * h, h}, []int64{1, 1, 1}), settings(int64(4*h/time.Millisecond), -1, "delete"), 0, 0, false},
		{"oldest expired", 0, log([]time.Duration{3 * h, 2 * h, h}, []int64{1, 1, 1}), settings(int64(150*time.Minute/time.Millisecond), -1, "delete"), 1, 10, true},
		{"everything expired", 0, log([]time.Duration{3 * h, 2 * h, h}, []int64{1, 1, 1}), settings(1000, -1, "delete"), 3, 30, true},
		{"expiry stops at the first kept entry", 0, log([]time.Duration{3 * h, h, 3 * h}, []int64{1, 1, 1}), settings(int64(2*h/time.Millisecond), -1, "delete"), 1, 10, true},
		{"forever", 0, log([]time.Duration{300 * h}, []int64{1}), settings(-1, -1, "delete"), 0, 0, false},
		{"compact is exempt", 0, log([]time.Duration{300 * h}, []int64{1}), settings(1000, 0, "compact"), 0, 0, false},
		{"compact,delete is not", 0, log([]time.Duration{300 * h}, []int64{1}), settings(1000, -1, "compact,delete"), 1, 10, true},
		{"bytes: fits", 0, log([]time.Duration{h, h, h}, []int64{10, 10, 10}), settings(-1, 30, "delete"), 0, 0, false},
		{"bytes: oldest go until it fits", 0, log([]time.Duration{h, h, h}, []int64{10, 10, 10}), settings(-1, 25, "delete"), 1, 10, true},
		{"bytes: a cap below one entry removes all", 0, log([]time.Duration{h, h}, []int64{10, 10}), settings(-1, 5, "delete"), 2, 20, true},
		{"below a DeleteRecords start, even compact", 25, log([]time.Duration{h, h, h}, []int64{1, 1, 1}), settings(-1, -1, "compact"), 2, 25, false},
		{"straddling entry stays, start kept", 25, log([]time.Duration{h, h, h}, []int64{1, 1, 1}), settings(int64(2*h/time.Millisecond), -1, "delete"), 2, 25, false},
		{"straddling entry expires", 25, log([]time.Duration{3 * h, 3 * h, 3 * h, h}, []int64{1, 1, 1, 1}), settings(int64(2*h/time.Millisecond), -1, "delete"), 3, 30, true},
		{"no entries", 0, nil, settings(1000, 0, "delete"), 0, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			next := int64(0)
			if n := len(tc.entries); n > 0 {
				next = tc.entries[n-1].Last + 1
			}
			st := metadata.PartitionState{Start: tc.start, Next: next, ModRevision: 5}
			p := planRetention(st, tc.entries, tc.settings, planNow)
			if len(p.remove) != tc.remove || p.start != tc.wantStart || p.behind != tc.behind {
				t.Fatalf("removes %d, start %d, behind %v; want %d, %d, %v", len(p.remove), p.start, p.behind, tc.remove, tc.wantStart, tc.behind)
			}
			for _, e := range p.remove {
				if e.Last >= p.start {
					t.Fatalf("removes entry %d-%d at or above the new start %d", e.First, e.Last, p.start)
				}
			}
		})
	}
}

func TestPlanMerges(t *testing.T) {
	m, f := segments.KindMerged, segments.KindFlush
	policy := mergePolicy{target: 100, settle: 30 * time.Second, minEntries: 4, maxTxnOps: 128}
	lengths := func(n int, l int64) []int64 {
		out := make([]int64, n)
		for i := range out {
			out[i] = l
		}
		return out
	}
	ages := func(n int) []time.Duration { return make([]time.Duration, n) }
	shape := func(runs [][]metadata.StoredIndexEntry) string {
		var s []string
		for _, r := range runs {
			s = append(s, fmt.Sprintf("%d-%d", r[0].First, r[len(r)-1].Last))
		}
		return fmt.Sprint(s)
	}
	for _, tc := range []struct {
		name    string
		entries []metadata.StoredIndexEntry
		sizes   map[string]int64
		policy  mergePolicy
		start   int64
		want    string
	}{
		{"five small flushes", log(ages(5), lengths(5, 10)), nil, policy, 0, "[0-49]"},
		{"three are not enough", log(ages(3), lengths(3, 10)), nil, policy, 0, "[]"},
		{"split at the target", log(ages(12), lengths(12, 20)), nil, policy, 0, "[0-49 50-99]"},
		{"big entries stay", log(ages(5), lengths(5, 100)), nil, policy, 0, "[]"},
		{"entries below the start stay", log(ages(6), lengths(6, 10)), nil, policy, 15, "[20-59]"},
		{"two thin entries in shared objects", log(ages(2), lengths(2, 10)), nil, policy, 0, "sparse"},
		{"small merged head joins equal followers", log(ages(5), []int64{30, 10, 10, 10, 10}, m), nil, policy, 0, "[0-49]"},
		{"large merged head waits", log(ages(5), []int64{60, 10, 10, 10, 10}, m), nil, policy, 0, "[10-49]"},
		{"two equal merged entries tier up", log(ages(2), []int64{30, 30}, m, m), nil, policy, 0, "[0-19]"},
		{"op limit splits runs", log(ages(8), lengths(8, 1)), nil, mergePolicy{target: 100, settle: 0, minEntries: 4, maxTxnOps: 9}, 0, "[0-39 40-79]"},
		{"kinds mixed", log(ages(4), lengths(4, 10), f, f, f, f), nil, policy, 0, "[0-39]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sizes := tc.sizes
			want := tc.want
			if want == "sparse" {
				sizes = map[string]int64{}
				for _, e := range tc.entries {
					sizes[e.Object] = 1000
				}
				want = "[0-19]"
				// Without sizes, the same two entries do not merge.
				st := metadata.PartitionState{Next: 20}
				if got := shape(planMerges(st, tc.entries, tc.policy, nil, planNow)); got != "[]" {
					t.Fatalf("without sizes: %s", got)
				}
			}
			st := metadata.PartitionState{Start: tc.start, Next: tc.entries[len(tc.entries)-1].Last + 1}
			runs := planMerges(st, tc.entries, tc.policy, sizes, planNow)
			if got := shape(runs); got != want {
				t.Fatalf("runs %s, want %s", got, want)
			}
			for _, r := range runs {
				if ops := metadata.SwapOps(r); ops > tc.policy.maxTxnOps || len(r)+1 > tc.policy.maxTxnOps {
					t.Fatalf("run of %d entries needs %d ops", len(r), ops)
				}
			}
		})
	}

	// Unsettled entries are not merged yet.
	fresh := log(ages(5), lengths(5, 10))
	for i := range fresh {
		fresh[i].Committed = planNow.Add(-time.Second).UnixMilli()
	}
	if runs := planMerges(metadata.PartitionState{Next: 50}, fresh, policy, nil, planNow); len(runs) != 0 {
		t.Fatalf("merged unsettled entries: %s", shape(runs))
	}
}

// A slowly written partition is rewritten about log2(target/flush) times,
// not once per pass: simulate passes that each add four small entries.
func TestMergeTieringBoundsRewrites(t *testing.T) {
	policy := mergePolicy{target: 1 << 20, settle: 0, minEntries: 4, maxTxnOps: 1024}
	var entries []metadata.StoredIndexEntry
	var next, rewritten, written int64
	for pass := 0; pass < 200; pass++ {
		for range 4 {
			entries = append(entries, entry(next, 10, 1000, 0, time.Hour, segments.KindFlush))
			next += 10
			written += 1000
		}
		runs := planMerges(metadata.PartitionState{Next: next}, entries, policy, nil, planNow)
		for _, r := range runs {
			var bytes int64
			for _, e := range r {
				bytes += e.Length
				rewritten += e.Length
			}
			m := entry(r[0].First, r[len(r)-1].Last-r[0].First+1, bytes, 0, time.Hour, segments.KindMerged)
			i := 0
			for entries[i].First != r[0].First {
				i++
			}
			entries = append(append(entries[:i:i], m), entries[i+len(r):]...)
		}
	}
	t.Logf("rewrote %.2fx, %d entries left", float64(rewritten)/float64(written), len(entries))
	if amp := float64(rewritten) / float64(written); amp > 10 {
		t.Fatalf("rewrote %.1f times the data written", amp)
	}
	if len(entries) > 20 {
		t.Fatalf("%d entries left for %d bytes", len(entries), written)
	}
}
