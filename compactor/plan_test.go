package compactor

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/floe-io/floe/metadata"
	"github.com/floe-io/floe/segments"
)

var planNow = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// ext is one partition's extent of an entry: records offsets, length
// stored bytes, newest timestamp maxAgo before planNow.
type ext struct {
	p       int32
	records int64
	length  int64
	maxAgo  time.Duration
}

// logBuilder builds a shard log (partitions from 0) entry by entry, each
// entry in a new flush object of objectSize bytes (0: the entry's own
// bytes), committed an hour before planNow.
type logBuilder struct {
	lg    metadata.ShardLog
	nexts []int64
}

func newLog(partitions int) *logBuilder {
	return &logBuilder{lg: metadata.ShardLog{Shard: metadata.ShardID{Topic: uuid.New()}}, nexts: make([]int64, partitions)}
}

func (b *logBuilder) add(objectSize int64, xs ...ext) *logBuilder {
	seq := int64(1)
	if n := len(b.lg.Entries); n > 0 {
		seq = b.lg.Entries[n-1].SeqLast + 1
	}
	e := metadata.LogEntry{Seq: seq, SeqLast: seq, Committed: planNow.Add(-time.Hour).UnixMilli()}
	var bytes int64
	for _, x := range xs {
		ts := planNow.Add(-x.maxAgo).UnixMilli()
		e.Extents = append(e.Extents, metadata.Extent{
			Partition: x.p, Offset: 16 + bytes, Length: x.length,
			First: b.nexts[x.p], Last: b.nexts[x.p] + x.records - 1, Batches: 1,
			MinTimestamp: ts - 10, MaxTimestamp: ts,
		})
		b.nexts[x.p] += x.records
		bytes += x.length
	}
	if objectSize == 0 {
		objectSize = bytes
	}
	e.Objects = []metadata.ObjectRef{{Key: segments.NewObjectKey(planNow, segments.KindFlush), Size: objectSize}}
	e.Nexts = append([]int64(nil), b.nexts...)
	b.lg.Entries = append(b.lg.Entries, metadata.StoredLogEntry{LogEntry: e, ModRevision: seq})
	return b
}

// merged adds a merged entry standing for n entries.
func (b *logBuilder) merged(n int64, xs ...ext) *logBuilder {
	b.add(0, xs...)
	e := &b.lg.Entries[len(b.lg.Entries)-1]
	e.SeqLast = e.Seq + n - 1
	e.Flags = metadata.EntryMerged
	e.Objects[0].Key = segments.NewObjectKey(planNow, segments.KindMerged)
	return b
}

// log returns the built log with the given log starts and producer floor
// (-1: every entry).
func (b *logBuilder) log(floor int64, starts ...int64) metadata.ShardLog {
	lg := b.lg
	if n := len(lg.Entries); n > 0 {
		lg.State.Seq = lg.Entries[n-1].SeqLast
	}
	lg.State.Nexts = append([]int64(nil), b.nexts...)
	lg.State.Starts = starts
	lg.State.StartsRev = 7
	lg.ProducerFloor = floor
	if floor < 0 {
		lg.ProducerFloor = lg.State.Seq
	}
	return lg
}

// single is a one-partition log of entries of 10 records with the given
// ages (newest timestamp) and lengths.
func single(ages []time.Duration, lengths []int64) *logBuilder {
	b := newLog(1)
	for i := range ages {
		b.add(0, ext{0, 10, lengths[i], ages[i]})
	}
	return b
}

// describe summarizes a retention plan's entry changes: "-3" deletes
// entry 3, "~3[0 2]" rewrites it keeping partitions 0 and 2.
func describe(p retentionPlan) string {
	var out []string
	for _, ch := range p.changes {
		if ch.put == nil {
			out = append(out, fmt.Sprintf("-%d", ch.old.Seq))
			continue
		}
		var parts []int32
		for _, x := range ch.put.Extents {
			parts = append(parts, x.Partition)
		}
		out = append(out, fmt.Sprintf("~%d%v", ch.old.Seq, parts))
	}
	return strings.Join(out, " ")
}

func settings(ms, bytes int64, policy string) metadata.TopicSettings {
	return metadata.BrokerConfig{}.Settings(map[string]string{
		"retention.ms": fmt.Sprint(ms), "retention.bytes": fmt.Sprint(bytes), "cleanup.policy": policy,
	})
}

func TestPlanRetention(t *testing.T) {
	h := time.Hour
	ms := func(d time.Duration) int64 { return int64(d / time.Millisecond) }
	three := []time.Duration{3 * h, 2 * h, h}
	ones := []int64{1, 1, 1}
	for _, tc := range []struct {
		name     string
		lg       metadata.ShardLog
		settings metadata.TopicSettings
		changes  string
		starts   string // map[slot:start]
		behind   int
		extents  int
	}{
		{"nothing expired", single(three, ones).log(-1), settings(ms(4*h), -1, "delete"), "", "map[]", 0, 0},
		{"oldest expired", single(three, ones).log(-1), settings(ms(150*time.Minute), -1, "delete"), "-1", "map[0:10]", 1, 1},
		{"everything expired: the latest entry is emptied, not deleted", single(three, ones).log(-1), settings(1000, -1, "delete"), "-1 -2 ~3[]", "map[0:30]", 1, 3},
		{"expiry stops at the first kept extent", single([]time.Duration{3 * h, h, 3 * h}, ones).log(-1), settings(ms(2*h), -1, "delete"), "-1", "map[0:10]", 1, 1},
		{"forever", single([]time.Duration{300 * h}, []int64{1}).log(-1), settings(-1, -1, "delete"), "", "map[]", 0, 0},
		{"compact is exempt", single([]time.Duration{300 * h}, []int64{1}).log(-1), settings(1000, 0, "compact"), "", "map[]", 0, 0},
		{"compact,delete is not", single([]time.Duration{300 * h}, []int64{1}).log(-1), settings(1000, -1, "compact,delete"), "~1[]", "map[0:10]", 1, 1},
		{"bytes: fits", single([]time.Duration{h, h, h}, []int64{10, 10, 10}).log(-1), settings(-1, 30, "delete"), "", "map[]", 0, 0},
		{"bytes: oldest go until it fits", single([]time.Duration{h, h, h}, []int64{10, 10, 10}).log(-1), settings(-1, 25, "delete"), "-1", "map[0:10]", 1, 1},
		{"bytes: a cap below one extent removes all", single([]time.Duration{h, h}, []int64{10, 10}).log(-1), settings(-1, 5, "delete"), "-1 ~2[]", "map[0:20]", 1, 2},
		{"below a DeleteRecords start, even compact", single(three, ones).log(-1, 25), settings(-1, -1, "compact"), "-1 -2", "map[]", 0, 2},
		{"straddling extent stays, start kept", single(three, ones).log(-1, 25), settings(ms(150*time.Minute), -1, "delete"), "-1 -2", "map[]", 0, 2},
		{"straddling extent expires", single([]time.Duration{3 * h, 3 * h, 3 * h, h}, []int64{1, 1, 1, 1}).log(-1, 25), settings(ms(2*h), -1, "delete"), "-1 -2 -3", "map[0:30]", 1, 3},
		{"entries above the producer floor are emptied, not deleted", single(three, ones).log(1), settings(1000, -1, "delete"), "-1 ~2[] ~3[]", "map[0:30]", 1, 3},
		{
			"an entry keeps the live extents of other partitions",
			newLog(3).add(0, ext{0, 5, 100, h}, ext{1, 5, 1, h}, ext{2, 5, 1, 3 * h}).add(0, ext{0, 5, 100, h}, ext{1, 5, 1, h}).log(-1),
			settings(ms(2*h), 150, "delete"), "~1[1]", "map[0:5 2:5]", 2, 2,
		},
		{
			"each partition by its own bytes",
			newLog(2).add(0, ext{0, 5, 10, h}, ext{1, 5, 10, h}).add(0, ext{0, 5, 10, h}).add(0, ext{0, 5, 10, h}, ext{1, 5, 10, h}).log(-1),
			settings(-1, 20, "delete"), "~1[1]", "map[0:5]", 1, 1,
		},
		{
			"empty entries left by earlier rewrites go once below the floor",
			newLog(2).add(0).add(0, ext{1, 5, 10, h}).add(0).add(0, ext{1, 5, 10, h}).log(-1),
			settings(-1, -1, "delete"), "-1 -3", "map[]", 0, 0,
		},
		{"no entries", newLog(1).log(-1), settings(1000, 0, "delete"), "", "map[]", 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := planRetention(tc.lg, tc.lg.ProducerFloor, tc.settings, planNow)
			if got := describe(p); got != tc.changes {
				t.Errorf("changes %q, want %q", got, tc.changes)
			}
			if got := fmt.Sprint(p.starts); got != tc.starts {
				t.Errorf("starts %s, want %s", got, tc.starts)
			}
			if p.behind != tc.behind || p.extents != tc.extents {
				t.Errorf("behind %d, %d extents removed; want %d, %d", p.behind, p.extents, tc.behind, tc.extents)
			}
			// No extent at or above a partition's new start is removed,
			// and rewritten entries keep their objects consistent.
			newStart := func(slot int32) int64 {
				if s, ok := p.starts[slot]; ok {
					return s
				}
				return tc.lg.State.Partition(slot).Start
			}
			for _, ch := range p.changes {
				kept := map[int32]bool{}
				if ch.put != nil {
					for _, x := range ch.put.Extents {
						kept[x.Partition] = true
						if int(x.Object) >= len(ch.put.Objects) {
							t.Fatalf("entry %d: extent of partition %d names object %d of %d", ch.old.Seq, x.Partition, x.Object, len(ch.put.Objects))
						}
					}
					if fmt.Sprint(ch.put.Nexts) != fmt.Sprint(ch.old.Nexts) || ch.put.Seq != ch.old.Seq {
						t.Fatalf("entry %d rewritten with another sequence or watermarks", ch.old.Seq)
					}
				}
				for _, x := range ch.old.Extents {
					if !kept[x.Partition] && x.Last >= newStart(x.Partition) {
						t.Fatalf("entry %d loses partition %d's extent %d-%d, at or above its new start %d", ch.old.Seq, x.Partition, x.First, x.Last, newStart(x.Partition))
					}
				}
				if ch.put == nil && ch.old.Seq == tc.lg.Entries[len(tc.lg.Entries)-1].Seq {
					t.Fatal("the latest entry is deleted")
				}
			}
		})
	}
	// Entries above the floor name the floor they wait for.
	if p := planRetention(single(three, ones).log(1), 1, settings(1000, -1, "delete"), planNow); p.needFloor != 2 {
		t.Fatalf("needs floor %d, want 2", p.needFloor)
	}
}

// shape describes runs by the sequence numbers they cover.
func shape(runs [][]metadata.StoredLogEntry) string {
	var s []string
	for _, r := range runs {
		s = append(s, fmt.Sprintf("%d-%d", r[0].Seq, r[len(r)-1].SeqLast))
	}
	return fmt.Sprint(s)
}

func TestPlanMerges(t *testing.T) {
	policy := mergePolicy{target: 100, settle: 30 * time.Second, minEntries: 4, maxTxnOps: 128}
	// flushes is a one-partition log of n entries of length bytes each,
	// alone in their objects.
	flushes := func(n int, length int64) *logBuilder {
		b := newLog(1)
		for range n {
			b.add(0, ext{0, 10, length, 0})
		}
		return b
	}
	for _, tc := range []struct {
		name   string
		lg     metadata.ShardLog
		policy mergePolicy
		want   string
	}{
		{"five small flushes and the latest", flushes(6, 10).log(-1), policy, "[1-5]"},
		{"the latest entry never merges", flushes(2, 10).merged(1, ext{0, 10, 10, 0}).log(-1), policy, "[]"},
		{"three are not enough", flushes(4, 10).log(-1), policy, "[]"},
		{"split at the target", flushes(13, 20).log(-1), policy, "[1-5 6-10]"},
		{"big entries stay", flushes(6, 100).log(-1), policy, "[]"},
		{"not above the producer floor", flushes(9, 10).log(6), policy, "[1-6]"},
		{"extents wholly below the start stay", flushes(7, 10).log(-1, 15), policy, "[2-6]"},
		{"thin entries in shared objects", newLog(1).add(1000, ext{0, 10, 10, 0}).add(1000, ext{0, 10, 10, 0}).add(0, ext{0, 1, 1, 0}).log(-1), policy, "[1-2]"},
		{"entries alone in their objects are not thin", newLog(1).add(0, ext{0, 10, 10, 0}).add(0, ext{0, 10, 10, 0}).add(0, ext{0, 1, 1, 0}).log(-1), policy, "[]"},
		{"a small merged head joins equal followers", newLog(1).merged(3, ext{0, 30, 30, 0}).add(0, ext{0, 10, 10, 0}).add(0, ext{0, 10, 10, 0}).add(0, ext{0, 10, 10, 0}).add(0, ext{0, 1, 1, 0}).log(-1), policy, "[1-6]"},
		{"a large merged head waits, the run starts after it", newLog(1).merged(6, ext{0, 60, 60, 0}).add(0, ext{0, 10, 10, 0}).add(0, ext{0, 10, 10, 0}).add(0, ext{0, 10, 10, 0}).add(0, ext{0, 10, 10, 0}).add(0, ext{0, 1, 1, 0}).log(-1), policy, "[7-10]"},
		{"two equal merged entries tier up", newLog(1).merged(3, ext{0, 30, 30, 0}).merged(3, ext{0, 30, 30, 0}).add(0, ext{0, 1, 1, 0}).log(-1), policy, "[1-6]"},
		{"op limit splits runs", flushes(9, 1).log(-1), mergePolicy{target: 100, minEntries: 4, maxTxnOps: 9}, "[1-4 5-8]"},
		{
			"many partitions: bytes are the shard's",
			newLog(3).add(0, ext{0, 1, 20, 0}, ext{1, 1, 20, 0}).add(0, ext{2, 1, 20, 0}).add(0, ext{0, 1, 20, 0}, ext{2, 1, 20, 0}).add(0, ext{1, 1, 30, 0}).add(0, ext{1, 1, 1, 0}).log(-1),
			mergePolicy{target: 100, minEntries: 2, maxTxnOps: 128}, "[1-3]",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runs := planMerges(tc.lg, tc.lg.ProducerFloor, tc.policy, nil, planNow)
			if got := shape(runs); got != tc.want {
				t.Fatalf("runs %s, want %s", got, tc.want)
			}
			last := tc.lg.Entries[len(tc.lg.Entries)-1].Seq
			for _, r := range runs {
				objs := map[string]bool{}
				var bytes int64
				for _, e := range r {
					if e.Seq == last || e.SeqLast > tc.lg.ProducerFloor {
						t.Fatalf("run holds entry %d: the latest, or above the floor", e.Seq)
					}
					for _, o := range e.Objects {
						objs[o.Key] = true
					}
					bytes += entryBytes(&e.LogEntry)
				}
				if ops := len(r) + len(objs) + 1; ops > tc.policy.maxTxnOps || bytes > tc.policy.target {
					t.Fatalf("run of %d entries: %d ops, %d bytes", len(r), ops, bytes)
				}
			}
		})
	}

	// Unsettled entries are not merged yet.
	fresh := flushes(6, 10).log(-1)
	for i := range fresh.Entries {
		fresh.Entries[i].Committed = planNow.Add(-time.Second).UnixMilli()
	}
	if runs := planMerges(fresh, fresh.ProducerFloor, policy, nil, planNow); len(runs) != 0 {
		t.Fatalf("merged unsettled entries: %s", shape(runs))
	}
}

// A slowly written shard is rewritten about log2(target/increment) times,
// not once per pass: simulate passes that each add four small entries
// over 64 partitions.
func TestMergeTieringBoundsRewrites(t *testing.T) {
	policy := mergePolicy{target: 1 << 20, settle: 0, minEntries: 4, maxTxnOps: 1024}
	b := newLog(64)
	var rewritten, written int64
	flush := func() {
		var xs []ext
		for p := range int32(64) {
			xs = append(xs, ext{p, 2, 16, 0})
		}
		b.add(0, xs...)
		written += 64 * 16
	}
	flush() // the latest entry
	for range 400 {
		for range 4 {
			flush()
		}
		lg := b.log(-1)
		runs := planMerges(lg, lg.ProducerFloor, policy, nil, planNow)
		for _, r := range runs {
			var bytes int64
			for _, e := range r {
				bytes += entryBytes(&e.LogEntry)
			}
			rewritten += bytes
			// The merged entry: one extent per partition.
			m := r[len(r)-1].LogEntry
			m.Seq, m.Flags, m.Extents = r[0].Seq, metadata.EntryMerged, nil
			for p := range int32(64) {
				var first, last int64 = -1, 0
				var length int64
				for _, e := range r {
					if x, ok := e.ExtentOf(p); ok {
						if first < 0 {
							first = x.First
						}
						last, length = x.Last, length+x.Length
					}
				}
				m.Extents = append(m.Extents, metadata.Extent{Partition: p, First: first, Last: last, Length: length, Batches: 1})
			}
			i := 0
			for b.lg.Entries[i].Seq != r[0].Seq {
				i++
			}
			b.lg.Entries = append(append(b.lg.Entries[:i:i], metadata.StoredLogEntry{LogEntry: m}), b.lg.Entries[i+len(r):]...)
		}
	}
	amp := float64(rewritten) / float64(written)
	t.Logf("rewrote %.2fx, %d entries left for %d KiB", amp, len(b.lg.Entries), written>>10)
	if amp > 12 {
		t.Fatalf("rewrote %.1f times the data written", amp)
	}
	if len(b.lg.Entries) > 30 {
		t.Fatalf("%d entries left for %d bytes", len(b.lg.Entries), written)
	}
}

// Runs are packed into jobs whose shared object holds up to the target,
// one run per shard; partitions with a large share get their own object
// and do not count.
func TestPacker(t *testing.T) {
	shard := func(n int32) shardWork { return shardWork{id: metadata.ShardID{Shard: n}} }
	run := func(n int32, shares ...int64) *mergeRun {
		b := newLog(len(shares))
		var xs []ext
		for p, s := range shares {
			xs = append(xs, ext{int32(p), 1, s, 0})
		}
		b.add(0, xs...).add(0, xs...)
		return newMergeRun(shard(n), b.lg.Entries, 50)
	}
	r := run(0, 10, 30, 5)
	if r.bytes != 90 || fmt.Sprint(r.own) != "[1]" || r.shared != 30 || r.parts != 2 {
		t.Fatalf("run: %d bytes, own %v, %d shared in %d partitions", r.bytes, r.own, r.shared, r.parts)
	}
	pk := packer{target: 100}
	var jobs []*mergeJob
	// Each run's entries hold the shares twice.
	for _, r := range []*mergeRun{run(0, 20, 10), run(1, 20), run(2, 10, 100), run(2, 5), run(3, 20, 20, 20), run(4, 1), run(5, 60, 1)} {
		jobs = append(jobs, pk.add(r)...)
	}
	if j := pk.flush(); j != nil {
		jobs = append(jobs, j)
	}
	var got []string
	for _, j := range jobs {
		var shards []int32
		for _, r := range j.runs {
			shards = append(shards, r.w.id.Shard)
		}
		got = append(got, fmt.Sprintf("%v:%d", shards, j.shared))
	}
	// Shards 0 and 1 fill a job; shard 2's second run opens a new one,
	// and shard 3's 100 shared bytes would take that over the target;
	// shard 5's large partition has an object of its own.
	if fmt.Sprint(got) != "[[0 1]:100 [2]:20 [2]:10 [3]:120 [4 5]:4]" {
		t.Fatalf("jobs %v", got)
	}
}
