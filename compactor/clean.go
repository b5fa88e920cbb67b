package compactor

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"maps"
	"math"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/floe-io/floe/metadata"
	"github.com/floe-io/floe/segments"
)

// Cleaning: key-based compaction of topics with cleanup.policy=compact.
//
// Kafka's guarantees: offsets never change; a consumer that keeps up sees
// every record; one reading from the start sees at least the latest value
// of every key; a tombstone (null value) stays for delete.retention.ms
// after it was first cleaned; records newer than min.compaction.lag.ms
// are never cleaned, and none stays uncleaned past max.compaction.lag.ms.
//
// A partition's cleanable part is its extents from the log start up to the
// first that is too new (min.compaction.lag.ms), at or above its last
// stable offset, in the shard's latest entry or above its producer floor.
// The cleaner state (metadata.CleanerState) splits it: below CleanedTo is
// the clean part, every record of which was compared with later records
// at least once; from it on the dirty part. A partition is cleaned when
// its dirty part is at least min.cleanable.dirty.ratio of its cleanable
// bytes, its oldest dirty record is older than max.compaction.lag.ms, or
// tombstones it cleaned have outlived delete.retention.ms since its last
// clean.
//
// A clean, one partition at a time:
//
//  1. Reads the dirty part in offset order into the key map (a hash of
//     each key to its latest offset, keyMap) until the map is full: the
//     records mapped end at X (the end of the cleanable part when they
//     all fit).
//  2. Rewrites the partition's extents from the log start to X, a group
//     of consecutive extents at a time (as many as one etcd transaction
//     may edit): a record below X goes if a later record of its key is
//     mapped, if it is a tombstone first cleaned delete.retention.ms ago,
//     or if it has no key (Kafka's cleaner drops those too), and the
//     records of aborted transactions (metadata.AbortedTxns) go; records
//     from X on stay. Committed transactional records are mapped and
//     kept like any other. A transaction marker goes once none of its
//     transaction's records is left and it is below a horizon past
//     delete.retention.ms, as Kafka's cleaner treats it.
//     A group's kept batches keep their records' offsets and cover the
//     group's offsets without gaps (segments.AppendCleaned): where whole
//     batches went, the batch kept before them ends later; where the
//     group's first batches went, the first kept starts earlier. A group
//     left with no record takes in the next group (or the first extent
//     from X on); should that keep none either, it keeps its last record
//     (as a tombstone if its key's latest is one), so every offset stays
//     served by some extent.
//  3. Writes the group's batches as one extent of a new object and, in
//     one fenced edit, puts that extent in the group's last entry and
//     removes the partition's extents from the group's other entries
//     (deleting those left with none). Readers see the old extents or
//     the new one: lookups skip entries without the partition's extent,
//     and the last entry's extent holds every offset of the group.
//  4. Records CleanedTo = X and the pass's horizon (for tombstones) in
//     etcd, after the edits.
//
// Memory: the key map is one fixed allocation (KeyMapBytes) shared by
// every clean, which run one at a time; a group holds up to TargetBytes
// of stored data while it is rewritten.

// minKeyMapBytes and maxKeyMapBytes bound Config.KeyMapBytes.
const (
	minKeyMapBytes = 16 * 24
	maxKeyMapBytes = 1 << 40
)

// keyMap maps 128-bit hashes of keys to their latest offsets in fixed
// memory, by open addressing, filled to at most 90% (Kafka's cleaner
// keeps 24 bytes per key too: 16 of hash, 8 of offset). Two keys share a
// slot only if both 64-bit halves of their hashes collide.
type keyMap struct {
	seeds [2]maphash.Seed
	slots []keySlot
	used  int
	limit int
}

// keySlot is one key's hash and latest offset plus one, negated when
// that record is a tombstone (0: empty).
type keySlot struct {
	h1, h2 uint64
	next   int64
}

func newKeyMap(bytes int64) *keyMap {
	n := max(int(bytes/24), 16)
	return &keyMap{seeds: [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()}, slots: make([]keySlot, n), limit: n * 9 / 10}
}

// reset empties the map for another partition.
func (m *keyMap) reset() {
	clear(m.slots)
	m.used = 0
	m.seeds = [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()}
}

// find returns key's slot, or the empty one where it would go, and its
// hashes.
func (m *keyMap) find(key []byte) (s *keySlot, h1, h2 uint64) {
	h1, h2 = maphash.Bytes(m.seeds[0], key), maphash.Bytes(m.seeds[1], key)
	for i := h1 % uint64(len(m.slots)); ; i = (i + 1) % uint64(len(m.slots)) {
		s = &m.slots[i]
		if s.next == 0 || (s.h1 == h1 && s.h2 == h2) {
			return s, h1, h2
		}
	}
}

// put records offset as key's latest if it is later than the one mapped
// (tomb: a tombstone); false when key is new and the map is full.
func (m *keyMap) put(key []byte, offset int64, tomb bool) bool {
	s, h1, h2 := m.find(key)
	if s.next == 0 {
		if m.used >= m.limit {
			return false
		}
		m.used++
		s.h1, s.h2 = h1, h2
	} else if prev, _ := s.latest(); offset <= prev {
		return true
	}
	s.next = offset + 1
	if tomb {
		s.next = -s.next
	}
	return true
}

// latest returns key's latest mapped offset, and whether it is a
// tombstone.
func (m *keyMap) latest(key []byte) (offset int64, tomb, ok bool) {
	s, _, _ := m.find(key)
	if s.next == 0 {
		return 0, false, false
	}
	offset, tomb = s.latest()
	return offset, tomb, true
}

// latest decodes next: offset plus one, negated for a tombstone.
func (s *keySlot) latest() (int64, bool) {
	if s.next < 0 {
		return -s.next - 1, true
	}
	return s.next - 1, false
}

// cleanRef is one extent of a partition, in the shard log's entry of
// sequence numbers seq to seqLast.
type cleanRef struct {
	seq, seqLast int64
	x            metadata.Extent
}

// entryOf returns the entry of sequence number seq in lg.
func entryOf(lg *metadata.ShardLog, seq int64) (metadata.StoredLogEntry, error) {
	i, ok := slices.BinarySearchFunc(lg.Entries, seq, func(e metadata.StoredLogEntry, seq int64) int { return cmp.Compare(e.Seq, seq) })
	if !ok {
		return metadata.StoredLogEntry{}, fmt.Errorf("%w: entry %d of the shard's log is gone", metadata.ErrConflict, seq)
	}
	return lg.Entries[i], nil
}

// cleanPlan is what cleaning one partition looks at.
type cleanPlan struct {
	partition int32
	// refs are the partition's cleanable extents, from its log start;
	// dirty is the index of the first with records at or above the
	// cleaner's checkpoint.
	refs  []cleanRef
	dirty int
	// dirtyBytes of totalBytes stored bytes are dirty; oldestDirty is the
	// smallest timestamp of the dirty part (ms).
	dirtyBytes, totalBytes int64
	oldestDirty            int64
	// due: worth cleaning now.
	due bool
}

// planCleans returns the partitions of a compacted shard worth cleaning,
// or not (for their metrics), by partition.
func planCleans(lg metadata.ShardLog, states map[int32]metadata.CleanerState, s metadata.TopicSettings, now time.Time) []cleanPlan {
	n := len(lg.Entries)
	if n < 2 {
		return nil
	}
	last := &lg.Entries[n-1].LogEntry
	byPartition := map[int32][]cleanRef{}
	for i := range n - 1 {
		e := &lg.Entries[i]
		for _, x := range e.Extents {
			byPartition[x.Partition] = append(byPartition[x.Partition], cleanRef{e.Seq, e.SeqLast, x})
		}
	}
	newest := now.UnixMilli() - s.MinCompactionLagMs
	var out []cleanPlan
	for _, p := range slices.Sorted(mapKeys(byPartition)) {
		start := lg.State.Partition(p - last.Base).Start
		stable := last.Stable(p)
		var refs []cleanRef
		for _, r := range byPartition[p] {
			if r.x.Last < start {
				continue // retention's to remove
			}
			if r.seqLast > lg.ProducerFloor || r.x.MaxTimestamp > newest || r.x.Last >= stable {
				break
			}
			refs = append(refs, r)
		}
		if len(refs) == 0 {
			continue
		}
		pl := cleanPlan{partition: p, refs: refs, dirty: len(refs), oldestDirty: math.MaxInt64}
		cleanedTo := states[p].CleanedTo
		for i, r := range refs {
			pl.totalBytes += r.x.Length
			if r.x.Last >= cleanedTo {
				pl.dirty = min(pl.dirty, i)
				pl.dirtyBytes += r.x.Length
				pl.oldestDirty = min(pl.oldestDirty, r.x.MinTimestamp)
			}
		}
		if pl.dirtyBytes > 0 {
			ratio := float64(pl.dirtyBytes) / float64(pl.totalBytes)
			overdue := s.MaxCompactionLagMs < math.MaxInt64 && now.UnixMilli()-pl.oldestDirty > s.MaxCompactionLagMs
			pl.due = ratio >= s.MinCleanableDirtyRatio || overdue
		}
		// Tombstones whose delete.retention.ms has passed since the last
		// clean go even if nothing is dirty.
		st := states[p]
		pl.due = pl.due || min(st.TombstonesBelow(s.DeleteRetentionMs, now.UnixMilli()), refs[len(refs)-1].x.Last+1) > st.TombstonesCleared
		out = append(out, pl)
	}
	return out
}

// clean cleans the partitions of a compacted topic's shard that are due,
// keeping lg what the log is after its edits.
func (c *Compactor) clean(ctx context.Context, f metadata.Fence, w shardWork, lg *metadata.ShardLog, ps *PassStats) error {
	if n := len(lg.Entries); n >= 2 && lg.Entries[n-2].SeqLast > lg.ProducerFloor {
		// Entries above the floor are not cleaned: raise it first.
		if floor, err := c.refreshFloor(ctx, w); err == nil {
			lg.ProducerFloor = max(lg.ProducerFloor, floor)
		}
	}
	first, end := w.topic.ShardPartitions(w.id.Shard)
	states, err := c.store.CleanerStates(ctx, w.id.Topic, first, end)
	if err != nil {
		return err
	}
	now := time.Now()
	for _, pl := range planCleans(*lg, states, w.settings, now) {
		labels := []string{w.topic.Name, strconv.Itoa(int(pl.partition))}
		c.gauge(labels)
		c.metrics.dirtyBytes.WithLabelValues(labels...).Set(float64(pl.dirtyBytes))
		c.metrics.dirtyRatio.WithLabelValues(labels...).Set(float64(pl.dirtyBytes) / float64(pl.totalBytes))
		age := 0.0
		if pl.dirtyBytes > 0 {
			age = max(0, float64(now.UnixMilli()-pl.oldestDirty)/1000)
		}
		c.metrics.oldestDirty.WithLabelValues(labels...).Set(age)
		if !pl.due {
			continue
		}
		if err := c.cleanRounds(ctx, f, w, lg, pl, states[pl.partition], now, ps); err != nil {
			if fatal(ctx, err) {
				return err
			}
			c.metrics.errors.WithLabelValues("clean").Inc()
			c.log.Error("cleaning failed", "topic", w.topic.Name, "partition", pl.partition, "err", err)
			ps.Errors++
			if errors.Is(err, metadata.ErrConflict) {
				return nil // the log changed: the next pass plans again
			}
		}
	}
	return nil
}

// maxCleanRounds bounds the cleans of one partition in one pass: a
// partition with more keys in its dirty part than the key map holds is
// cleaned once per map's worth, each clean rewriting it from its log
// start, until its dirty part is clean or this many cleans were made.
const maxCleanRounds = 16

// gauge records that this pass sets the cleaner gauges of labels.
func (c *Compactor) gauge(labels []string) {
	c.gaugeMu.Lock()
	defer c.gaugeMu.Unlock()
	if c.gauging == nil {
		c.gauging = map[[2]string]bool{}
	}
	c.gauging[[2]string{labels[0], labels[1]}] = true
}

// dropStaleGauges removes the cleaner gauges of the partitions the last
// pass set and this one did not, at the end of a pass's cleaning.
func (c *Compactor) dropStaleGauges() {
	c.gaugeMu.Lock()
	defer c.gaugeMu.Unlock()
	for l := range c.gauged {
		if !c.gauging[l] {
			c.metrics.dirtyBytes.DeleteLabelValues(l[0], l[1])
			c.metrics.dirtyRatio.DeleteLabelValues(l[0], l[1])
			c.metrics.oldestDirty.DeleteLabelValues(l[0], l[1])
		}
	}
	c.gauged, c.gauging = c.gauging, nil
}

// cleanRounds cleans one partition, again while its key map filled up.
func (c *Compactor) cleanRounds(ctx context.Context, f metadata.Fence, w shardWork, lg *metadata.ShardLog, pl cleanPlan, st metadata.CleanerState, now time.Time, ps *PassStats) error {
	for round := 1; ; round++ {
		next, full, err := c.cleanPartition(ctx, f, w, lg, pl, st, now, ps)
		if err != nil || !full || round == maxCleanRounds {
			return err
		}
		st = next
		again := planCleans(*lg, map[int32]metadata.CleanerState{pl.partition: st}, w.settings, now)
		i := slices.IndexFunc(again, func(q cleanPlan) bool { return q.partition == pl.partition })
		if i < 0 || again[i].dirtyBytes == 0 {
			return nil
		}
		pl = again[i]
	}
}

// cleanPartition cleans one partition (see the top of this file) and
// returns its cleaner state after, and whether the key map filled before
// the end of the dirty part.
func (c *Compactor) cleanPartition(ctx context.Context, f metadata.Fence, w shardWork, lg *metadata.ShardLog, pl cleanPlan, st metadata.CleanerState, now time.Time, ps *PassStats) (next metadata.CleanerState, full bool, err error) {
	c.cleanMu.Lock()
	defer c.cleanMu.Unlock()
	if c.keys == nil {
		c.keys = newKeyMap(c.cfg.KeyMapBytes)
	}
	m := c.keys
	m.reset()

	// The aborted transactions of the part to clean: their records are
	// neither mapped nor kept.
	end := pl.refs[len(pl.refs)-1].x.Last + 1
	aborted, err := c.store.AbortedTxns(ctx, w.id.Topic, pl.partition, pl.refs[0].x.First, end)
	if err != nil {
		return st, false, err
	}
	rules := &cleanRules{keys: m, aborted: map[int64][]metadata.AbortedTxn{}, live: map[int64]bool{}}
	for _, a := range aborted {
		rules.aborted[a.ProducerID] = append(rules.aborted[a.ProducerID], a)
	}

	// 1. The key map, from the dirty part.
	err = c.eachBatch(ctx, lg, pl.refs[pl.dirty:], func(b *segments.Batch, base int64) error {
		if b.Control() || rules.abortedBatch(b, base) {
			return nil
		}
		err := b.Records(func(rec segments.Record) bool {
			o := base + int64(rec.OffsetDelta)
			if o < st.CleanedTo || rec.Key == nil {
				return true
			}
			if !m.put(rec.Key, o, rec.Value == nil) {
				full, end = true, o
				return false
			}
			return true
		})
		if err == nil && full {
			return errMapFull
		}
		return err
	})
	if err != nil && !errors.Is(err, errMapFull) {
		return st, false, err
	}
	if end <= st.CleanedTo && pl.dirty < len(pl.refs) {
		return st, false, fmt.Errorf("the key map (%d bytes) holds no key of the dirty part: raise --compaction-key-map-bytes", c.cfg.KeyMapBytes)
	}
	rules.end = end
	rules.tombstonesBelow = min(st.TombstonesBelow(w.settings.DeleteRetentionMs, now.UnixMilli()), end)

	// 2 and 3. The rewrite, group by group, of the extents below end. A
	// group that would keep no record takes in the next group (or the
	// first extent from end on) rather than keep one it should not.
	k := slices.IndexFunc(pl.refs, func(r cleanRef) bool { return r.x.First >= end })
	if k < 0 {
		k = len(pl.refs)
	}
	for i := 0; i < k; {
		n := c.cleanGroup(lg, pl.refs[i:k])
		live := maps.Clone(rules.live)
		err := c.rewriteGroup(ctx, f, w, lg, pl.partition, pl.refs[i:i+n], rules, false, ps)
		if errors.Is(err, errEmptyGroup) {
			rules.live = live // read again, with the next group
			if i+n < k {
				n += c.cleanGroup(lg, pl.refs[i+n:k])
			} else if i+n < len(pl.refs) {
				n++
			}
			err = c.rewriteGroup(ctx, f, w, lg, pl.partition, pl.refs[i:i+n], rules, true, ps)
		}
		if err != nil {
			return st, false, err
		}
		i += n
	}

	// 4. The checkpoint.
	next = st.Cleaned(end, rules.tombstonesBelow, now.UnixMilli())
	if err := c.store.PutCleanerState(ctx, f, w.id.Topic, pl.partition, next); err != nil {
		return st, false, err
	}
	c.metrics.cleanedPartitions.Inc()
	ps.CleanedPartitions++
	c.log.Debug("cleaned", "topic", w.topic.Name, "partition", pl.partition, "to", end, "map_full", full)
	return next, full, nil
}

// cleanRules decide what a clean keeps of the records below end: a
// record goes if a later record of its key is mapped, if it is a
// tombstone below tombstonesBelow, if it has no key, or if its
// transaction was aborted; a marker goes below tombstonesBelow once its
// transaction kept nothing. Records from end on stay.
type cleanRules struct {
	keys            *keyMap
	end             int64
	tombstonesBelow int64
	// aborted are the partition's aborted transactions, by producer.
	aborted map[int64][]metadata.AbortedTxn
	// live are the producers whose current transaction (since their
	// last marker, in the order the rewrite reads) has a record kept: its
	// marker stays. A marker whose transaction kept nothing goes once it
	// is below tombstonesBelow, as Kafka's cleaner removes it.
	live map[int64]bool
}

// kept records that the rewrite kept n records of b.
func (cr *cleanRules) kept(b *segments.Batch, n int32) {
	switch {
	case b.Control():
		delete(cr.live, b.ProducerID) // the transaction ended
	case b.Transactional() && n > 0:
		cr.live[b.ProducerID] = true
	}
}

// abortedBatch reports whether b, at base, holds records of an aborted
// transaction.
func (cr *cleanRules) abortedBatch(b *segments.Batch, base int64) bool {
	if !b.Transactional() || b.Control() {
		return false
	}
	for _, a := range cr.aborted[b.ProducerID] {
		if a.First <= base && base < a.Last {
			return true
		}
	}
	return false
}

// batch returns which records of b, at base, to keep.
func (cr *cleanRules) batch(b *segments.Batch, base int64) func(segments.Record) bool {
	switch {
	case b.Control():
		drop := base < cr.tombstonesBelow && !cr.live[b.ProducerID]
		return func(segments.Record) bool { return !drop }
	case base < cr.end && cr.abortedBatch(b, base):
		return func(segments.Record) bool { return false }
	}
	return func(rec segments.Record) bool {
		o := base + int64(rec.OffsetDelta)
		switch {
		case o >= cr.end:
			return true
		case rec.Key == nil:
			return false
		}
		if latest, _, ok := cr.keys.latest(rec.Key); ok && latest > o {
			return false
		}
		return rec.Value != nil || o >= cr.tombstonesBelow
	}
}

// cleanGroup returns how many of refs one edit rewrites: up to
// TargetBytes of stored data, within half of etcd's op and request
// limits (a group left empty takes in the next one).
func (c *Compactor) cleanGroup(lg *metadata.ShardLog, refs []cleanRef) int {
	var bytes, size int64
	ops := 2 // the fence and the new object's mark slack
	for i, r := range refs {
		e, err := entryOf(lg, r.seq)
		if err != nil {
			return max(i, 1)
		}
		esize := int64(e.SizeBound()) + 512
		// An entry put or deleted, and its object's mark.
		if i > 0 && (bytes+r.x.Length > c.cfg.TargetBytes || ops+2 > c.cfg.EtcdMaxTxnOps/2 || size+esize > editBytes/2) {
			return i
		}
		bytes += r.x.Length
		size += esize
		ops += 2
	}
	return len(refs)
}

// rewriteGroup rewrites one group of a partition's extents (the first
// group's first extent at its log start) as one extent, swaps it in, and
// keeps lg what the log is after. A group none of whose records go is
// left as it is.
func (c *Compactor) rewriteGroup(ctx context.Context, f metadata.Fence, w shardWork, lg *metadata.ShardLog, p int32, refs []cleanRef, rules *cleanRules, keepOne bool, ps *PassStats) error {
	first, last := refs[0].x.First, refs[len(refs)-1].x.Last
	var (
		out       []byte
		lastStart = -1
		starts    []int // of the kept batches in out
		covered   = first - 1
		removed   int64
		lastData  *segments.Batch // the group's last batch with records to keep, should none be kept
		lastBase  int64
		readBytes int64
	)
	for _, r := range refs {
		readBytes += r.x.Length
	}
	err := c.eachBatch(ctx, lg, refs, func(b *segments.Batch, base int64) error {
		var shift int64
		if lastStart < 0 {
			shift = base - first
		}
		if shift > math.MaxInt32 || int64(b.LastOffsetDelta)+shift > math.MaxInt32 {
			return fmt.Errorf("%w: a kept batch would span %d offsets", ErrExtentMismatch, int64(b.LastOffsetDelta)+shift+1)
		}
		start := len(out)
		var kept int32
		var err error
		out, kept, err = segments.AppendCleaned(out, b, segments.CleanedBatch{
			Shift:           int32(shift),
			LastOffsetDelta: b.LastOffsetDelta + int32(shift),
			Keep:            rules.batch(b, base),
		})
		if err != nil {
			return err
		}
		removed += int64(b.RecordCount - kept)
		rules.kept(b, kept)
		if !b.Control() {
			cp := *b // its bytes stay valid: they are the extent's decoded copy
			lastData, lastBase = &cp, base
		}
		if kept == 0 {
			return nil
		}
		if lastStart >= 0 && base > covered+1 {
			if err := segments.ExtendLastOffset(out[lastStart:start], base-1-covered); err != nil {
				return err
			}
		}
		lastStart, covered = start, base+int64(b.LastOffsetDelta)
		starts = append(starts, start)
		return nil
	})
	if err != nil {
		return err
	}
	if removed == 0 {
		return nil
	}
	if lastStart < 0 && !keepOne {
		return errEmptyGroup
	}
	if lastStart < 0 {
		// Nothing kept, even with the next group: keep the group's last
		// record, so its offsets stay served. It is superseded (or an expired tombstone, or keyless):
		// when its key's latest record is a tombstone, it is kept as a
		// tombstone, so a key deleted is never seen again once that
		// tombstone goes.
		if lastData == nil {
			return fmt.Errorf("%w: a group of partition %d holds no records", ErrExtentMismatch, p)
		}
		lastOD := int32(-1)
		if err := lastData.Records(func(rec segments.Record) bool { lastOD = max(lastOD, rec.OffsetDelta); return true }); err != nil {
			return err
		}
		shift := lastBase - first
		var kept int32
		var err error
		out, kept, err = segments.AppendCleaned(out, lastData, segments.CleanedBatch{
			Shift:           int32(shift),
			LastOffsetDelta: lastData.LastOffsetDelta + int32(shift),
			Keep:            func(rec segments.Record) bool { return rec.OffsetDelta == lastOD },
			Null: func(rec segments.Record) bool {
				_, tomb, ok := rules.keys.latest(rec.Key)
				return rec.Key != nil && ok && tomb
			},
		})
		if err != nil {
			return err
		}
		removed -= int64(kept)
		lastStart, covered = 0, lastBase+int64(lastData.LastOffsetDelta)
		starts = append(starts, 0)
	}
	if covered < last {
		if err := segments.ExtendLastOffset(out[lastStart:], last-covered); err != nil {
			return err
		}
	}

	// The new extent, in an object of its own.
	b := segments.NewBuilder(c.cfg.codec)
	defer b.Reset()
	key := segments.PartitionKey{TopicID: w.id.Topic, Partition: p}
	for i, start := range starts {
		end := len(out)
		if i+1 < len(starts) {
			end = starts[i+1]
		}
		bt, err := segments.ParseBatch(out[start:end])
		if err != nil {
			return fmt.Errorf("cleaned batch of partition %d: %w", p, err)
		}
		if b.Append(key, bt) < 0 {
			return fmt.Errorf("%w: a cleaned batch of partition %d is not appendable", ErrExtentMismatch, p)
		}
	}
	o, extents, err := b.FinishObject()
	if err != nil {
		return fmt.Errorf("encoding cleaned object: %w", err)
	}
	defer o.Release()
	if len(extents) != 1 || extents[0].Records != last-first+1 {
		return fmt.Errorf("%w: cleaned extent of partition %d does not cover offsets %d-%d", ErrExtentMismatch, p, first, last)
	}
	ox := extents[0]
	objKey := segments.NewObjectKey(time.Now(), segments.KindCleaned)
	if err := c.bucket.Put(ctx, objKey, o.Bytes); err != nil {
		return fmt.Errorf("writing cleaned object %s: %w", objKey, err)
	}
	ref := metadata.ObjectRef{Key: objKey, Size: int64(len(o.Bytes))}
	nx := metadata.Extent{
		Partition: p, Offset: ox.Offset, Length: ox.Length, First: first, Last: last,
		Batches: int32(len(starts)), MinTimestamp: ox.MinTimestamp, MaxTimestamp: ox.MaxTimestamp,
	}

	// The edit: the new extent in the group's last entry, the partition's
	// other extents of the group removed.
	edit := metadata.ShardEdit{Shard: w.id}
	for i, r := range refs {
		old, err := entryOf(lg, r.seq)
		if err != nil {
			c.deleteObjects(ctx, objKey)
			return err
		}
		var (
			e    metadata.LogEntry
			lost []string
		)
		if i == len(refs)-1 {
			e, lost = withExtent(old.LogEntry, nx, ref)
		} else {
			e, lost = withoutExtents(old.LogEntry, map[int32]bool{p: true})
		}
		edit.Unreferenced = append(edit.Unreferenced, lost...)
		if len(e.Extents) == 0 {
			edit.Delete = append(edit.Delete, old)
		} else {
			edit.Put = append(edit.Put, metadata.StoredLogEntry{LogEntry: e, ModRevision: old.ModRevision})
		}
	}
	rev, err := c.editShard(ctx, f, edit)
	if err != nil {
		if errors.Is(err, metadata.ErrConflict) || errors.Is(err, metadata.ErrNotLeader) {
			// The edit was refused: nothing references the object.
			c.deleteObjects(ctx, objKey)
		}
		// Otherwise etcd did not answer and the edit may have applied:
		// the object stays, for the collector to delete if nothing
		// references it.
		return fmt.Errorf("cleaning partition %d of %s: %w", p, w.topic.Name, err)
	}
	// What the edit wrote is now the log as known, for the next groups
	// and the merges.
	applyEdit(lg, edit, rev)
	ps.CleanerRecordsRemoved += removed
	ps.CleanerBytesRead += readBytes
	ps.ObjectsWritten++
	ps.BytesWritten += ref.Size
	c.metrics.recordsRemoved.Add(float64(removed))
	c.metrics.cleanedBytes.Add(float64(readBytes))
	c.metrics.objectsWritten.Inc()
	c.metrics.bytesWritten.Add(float64(ref.Size))
	return nil
}

// withExtent returns e with partition x.Partition's extent replaced by x,
// in object ref, and the objects it no longer references.
func withExtent(e metadata.LogEntry, x metadata.Extent, ref metadata.ObjectRef) (metadata.LogEntry, []string) {
	out, lost := withoutExtents(e, map[int32]bool{x.Partition: true})
	out.Objects = append(slices.Clip(out.Objects), ref)
	x.Object = int32(len(out.Objects) - 1)
	i, _ := slices.BinarySearchFunc(out.Extents, x.Partition, func(y metadata.Extent, p int32) int { return int(y.Partition - p) })
	out.Extents = slices.Insert(slices.Clip(out.Extents), i, x)
	return out, lost
}

// errMapFull stops reading the dirty part once the key map is full.
var errMapFull = errors.New("key map full")

// errEmptyGroup: a group would keep no record.
var errEmptyGroup = errors.New("a cleaned group keeps no record")

// eachBatch reads the extents refs of the shard log, a window of up to
// readWindowBytes at a time with readParallel GETs at once, and calls fn
// with each of their batches that is part of the log, parsed, with its
// base offset, in order, until fn fails.
func (c *Compactor) eachBatch(ctx context.Context, lg *metadata.ShardLog, refs []cleanRef, fn func(b *segments.Batch, base int64) error) error {
	for i := 0; i < len(refs); {
		j, bytes := i, int64(0)
		for ; j < len(refs) && j-i < readWindowSpans && (j == i || bytes+refs[j].x.Length <= readWindowBytes); j++ {
			bytes += refs[j].x.Length
		}
		objects := make([]string, j-i)
		for k := range objects {
			e, err := entryOf(lg, refs[i+k].seq)
			if err != nil {
				return err
			}
			objects[k] = e.Objects[refs[i+k].x.Object].Key
		}
		data := make([][]byte, j-i)
		errs := make([]error, j-i)
		var wg sync.WaitGroup
		sem := make(chan struct{}, readParallel)
		for k := range data {
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				x := refs[i+k].x
				data[k], errs[k] = c.getRange(ctx, objects[k], x.Offset, x.Length)
			}()
		}
		wg.Wait()
		for k, x := range refs[i:j] {
			if errs[k] != nil {
				return errs[k]
			}
			if err := eachBatchOf(objects[k], x.x, data[k], fn); err != nil {
				return err
			}
		}
		i = j
	}
	return nil
}

// eachBatchOf calls fn with each batch of extent x of object, read as
// data, that is part of the log, with its base offset.
func eachBatchOf(object string, x metadata.Extent, data []byte, fn func(b *segments.Batch, base int64) error) error {
	_, next, err := segments.ReadExtent(data, x.First, x.Skip, nil, func(ab segments.AssignedBatch) error {
		b, err := segments.ParseBatch(ab.Raw)
		if err != nil {
			return fmt.Errorf("batch %d of %s at %d: %w", ab.Ordinal, object, x.Offset, err)
		}
		return fn(&b, ab.Base)
	})
	switch {
	case errors.Is(err, errMapFull):
		return err
	case err != nil:
		return fmt.Errorf("decoding extent of %s at %d: %w", object, x.Offset, err)
	case next != x.Last+1:
		return fmt.Errorf("%w: %s at %d holds offsets %d-%d, the entry says %d-%d", ErrExtentMismatch, object, x.Offset, x.First, next-1, x.First, x.Last)
	}
	return nil
}

// deleteObjects deletes objects no entry references (written for an edit
// that failed); should that fail, the collector deletes them later.
func (c *Compactor) deleteObjects(ctx context.Context, keys ...string) {
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := c.bucket.Delete(dctx, keys); err != nil {
		c.log.Warn("deleting an unused cleaned object; the collector will", "objects", len(keys), "err", err)
	}
}
