package metadata

// Idempotent producers' state.
//
// For each partition, what it remembers of each idempotent producer: its
// epoch, its last MaxProducerBatches batches (sequence range and first
// offset), so a retry is answered with its original offset, and the time
// of its last write. The state is a pure function of the shard's log:
// every log entry lists the idempotent batches it accepted (its producer
// deltas), and the state after entry n is the state after entry n-1 with
// entry n's deltas applied, then producers idle past the expiry and those
// beyond the per-partition cap (least recently written first) removed.
// Every agent that replays the same entries therefore reaches the same
// state, and any agent can commit to any shard.
//
// Snapshots bound the replay: pstate/<topic>/<shard>/<partition> holds a
// partition's state as of some sequence number, and pstate/<topic>/<shard>
// the shard's floor: partitions without a snapshot of their own had no
// producers as of the floor. Agents write snapshots as the log grows; the
// compactor merges only entries at or below every snapshot of the shard
// (merged entries carry no deltas).

import (
	"cmp"
	"container/list"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
)

// ProducerState is what a partition remembers of one idempotent producer.
type ProducerState struct {
	Epoch   int16
	Batches []SeqEntry // oldest first, at most MaxProducerBatches
	// LastWrite is the commit time (Unix ms) of its last batch.
	LastWrite int64
	// InTxn is set while the producer has a transaction open on the
	// partition (a transactional batch committed, no marker yet);
	// TxnFirst is that transaction's first offset there.
	InTxn    bool
	TxnFirst int64
	// TxnEnded is the start time (Unix ms, from its coordinator's record)
	// of the last transaction a marker ended on the partition: a batch
	// admitted for that transaction or an earlier one that commits after
	// the marker (a produce delayed past the end) is refused rather than
	// opening a transaction nobody will end.
	TxnEnded int64
}

// SeqEntry is one committed batch of an idempotent producer.
type SeqEntry struct {
	FirstSeq   int32
	LastSeq    int32
	BaseOffset int64
}

// MaxProducerBatches is how many recent batches per producer a partition
// remembers, matching Kafka's limit of five in-flight requests for
// idempotent producers.
const MaxProducerBatches = 5

// DefaultMaxProducersPerPartition is how many idempotent producers a
// partition remembers by default. Kafka bounds producer state only by
// expiry; floe also caps it, so a partition's state (and its snapshot in
// etcd) stays bounded however many producers write it.
const DefaultMaxProducersPerPartition = 4096

// partitionProducers is one partition's producers in least recently
// written order (front: oldest).
type partitionProducers struct {
	byID idIndex[*list.Element] // elements of lru
	lru  list.List              // of *producerItem
	open int                    // producers with a transaction open
}

// idIndex finds values by producer ID: in a short array, scanned, while
// it holds few (a partition or an append has a handful of producers, and
// a map lookup for every batch of a wide flush misses the processor's
// caches more), in a map once it holds more.
type idIndex[V any] struct {
	few  []idRef[V]
	many map[int64]V // nil while few holds them all
}

type idRef[V any] struct {
	id int64
	v  V
}

// idsScanned is how many IDs an index scans before it keeps a map.
const idsScanned = 8

func (x *idIndex[V]) len() int {
	if x.many != nil {
		return len(x.many)
	}
	return len(x.few)
}

func (x *idIndex[V]) get(id int64) (V, bool) {
	if x.many != nil {
		v, ok := x.many[id]
		return v, ok
	}
	for i := range x.few {
		if x.few[i].id == id {
			return x.few[i].v, true
		}
	}
	var zero V
	return zero, false
}

// add indexes an ID the index does not hold.
func (x *idIndex[V]) add(id int64, v V) {
	switch {
	case x.many != nil:
		x.many[id] = v
	case len(x.few) < idsScanned:
		x.few = append(x.few, idRef[V]{id, v})
	default:
		x.many = make(map[int64]V, 2*idsScanned)
		for _, r := range x.few {
			x.many[r.id] = r.v
		}
		x.many[id] = v
		x.few = nil
	}
}

func (x *idIndex[V]) remove(id int64) {
	if x.many != nil {
		delete(x.many, id)
		return
	}
	for i := range x.few {
		if x.few[i].id == id {
			last := len(x.few) - 1
			x.few[i] = x.few[last]
			x.few = x.few[:last]
			return
		}
	}
}

// reset empties the index, keeping its memory.
func (x *idIndex[V]) reset() {
	x.few = x.few[:0]
	if x.many != nil {
		clear(x.many)
	}
}

type producerItem struct {
	id int64
	ProducerState
}

func newPartitionProducers() *partitionProducers {
	return &partitionProducers{}
}

func (pp *partitionProducers) len() int {
	if pp == nil {
		return 0
	}
	return pp.byID.len()
}

func (pp *partitionProducers) get(id int64) *producerItem {
	if pp == nil {
		return nil
	}
	if el, ok := pp.byID.get(id); ok {
		return el.Value.(*producerItem)
	}
	return nil
}

// set records a producer's new state as its most recent write.
func (pp *partitionProducers) set(id int64, st ProducerState) {
	el, _ := pp.byID.get(id)
	pp.put(el, id, st)
}

// put records producer id's new state as its most recent write, at el,
// its element of lru (nil if the partition does not know it).
func (pp *partitionProducers) put(el *list.Element, id int64, st ProducerState) {
	if st.InTxn {
		pp.open++
	}
	if el == nil {
		pp.byID.add(id, pp.lru.PushBack(&producerItem{id: id, ProducerState: st}))
		return
	}
	it := el.Value.(*producerItem)
	if it.InTxn {
		pp.open--
	}
	it.ProducerState = st
	pp.lru.MoveToBack(el)
}

// trim removes producers idle since before expiredBefore (Unix ms) and,
// beyond max, the least recently written. Producers with a transaction
// open are kept (as Kafka keeps them): their transaction holds the
// partition's last stable offset until its coordinator ends it.
func (pp *partitionProducers) trim(expiredBefore int64, max int) {
	for el := pp.lru.Front(); el != nil; {
		it := el.Value.(*producerItem)
		if it.LastWrite >= expiredBefore && pp.byID.len() <= max {
			return
		}
		next := el.Next()
		if !it.InTxn {
			pp.lru.Remove(el)
			pp.byID.remove(it.id)
		}
		el = next
	}
}

// stable returns the partition's last stable offset given its high
// watermark next: the first offset of its oldest open transaction, or
// next when none is open. Producers overridden reports (if set) are left
// out: the caller counts their tentative states itself.
func (pp *partitionProducers) stable(next int64, overridden func(id int64) bool) int64 {
	lso := next
	if pp != nil && pp.open > 0 {
		for el := pp.lru.Front(); el != nil; el = el.Next() {
			it := el.Value.(*producerItem)
			if overridden != nil && overridden(it.id) {
				continue
			}
			if it.InTxn {
				lso = min(lso, it.TxnFirst)
			}
		}
	}
	return lso
}

// applyDelta applies one entry's delta for a producer on the partition,
// as of the entry's commit time. A known producer's state is updated in
// place: its last MaxProducerBatches batches keep the array they had (the
// state owns it; prepare and snapshots copy what they keep), so the
// commit of a wide flush allocates nothing for producers it has seen.
func (pp *partitionProducers) applyDelta(d ProducerDelta, committed int64) {
	add := d.Batches[max(len(d.Batches)-MaxProducerBatches, 0):]
	el, _ := pp.byID.get(d.ProducerID)
	var prev, buf []SeqEntry
	if el != nil {
		it := el.Value.(*producerItem)
		if it.Epoch == d.Epoch {
			prev = it.Batches
		}
		buf = it.Batches[:0]
	}
	prev = prev[max(len(prev)+len(add)-MaxProducerBatches, 0):]
	if n := len(prev) + len(add); n > 0 {
		if cap(buf) < n {
			buf = make([]SeqEntry, 0, MaxProducerBatches)
		}
		// prev is the tail of buf's array when kept: copy moves it to
		// the front before add goes after it.
		buf = buf[:n]
		copy(buf, prev)
		copy(buf[len(prev):], add)
	} else {
		buf = nil
	}
	pp.put(el, d.ProducerID, ProducerState{Epoch: d.Epoch, Batches: buf, LastWrite: committed, InTxn: d.InTxn, TxnFirst: d.TxnFirst, TxnEnded: d.TxnEnded})
}

// BatchMeta describes one RecordBatch offered for commit.
type BatchMeta struct {
	// Ordinal is the batch's position in its extent of the segment object.
	Ordinal       int32
	Records       int32
	ProducerID    int64 // -1: not idempotent
	ProducerEpoch int16
	BaseSequence  int32
	MinTimestamp  int64
	MaxTimestamp  int64
	// Transactional: a batch of the producer's open transaction (or the
	// first of a new one). Marker, when set, makes the batch a control
	// batch ending the producer's transaction on the partition (written by
	// the transaction coordinator, with no sequence).
	Transactional bool
	Marker        Marker
	// TxnStarted is the start time of the transaction the batch belongs
	// to, as its coordinator's record said when the batch was admitted
	// (for a marker, the transaction it ends); 0 when unknown.
	TxnStarted int64
	// Refuse, when set, fails the batch with this error if the partition
	// does not know its producer (whose first batch may otherwise start
	// at any sequence): its writer knows an earlier batch of the producer
	// failed, and committing this one would leave a gap. When the
	// partition knows the producer (the failed batch was committed
	// through another agent, say), its sequences are checked as usual.
	Refuse error
}

// Marker is the kind of a transaction marker (a control batch).
type Marker int8

// Markers, as their control records' types say (Kafka's ControlRecordType:
// 0 abort, 1 commit).
const (
	MarkerNone Marker = iota
	MarkerAbort
	MarkerCommit
)

func (m Marker) String() string {
	switch m {
	case MarkerAbort:
		return "abort"
	case MarkerCommit:
		return "commit"
	}
	return "none"
}

// checkMarker decides a transaction marker against its producer's state:
// one from an epoch older than the partition has seen is fenced (a newer
// producer instance took over, and its own markers end what was open).
func checkMarker(cur *producerItem, b BatchMeta) BatchOutcome {
	if cur != nil && b.ProducerEpoch < cur.Epoch {
		return BatchOutcome{BaseOffset: -1, Err: fmt.Errorf("%w: marker of epoch %d, the partition has seen %d", ErrInvalidProducerEpoch, b.ProducerEpoch, cur.Epoch)}
	}
	return BatchOutcome{}
}

// lastSeq is the sequence of the batch's last record; sequences wrap from
// MaxInt32 to 0.
func (b BatchMeta) lastSeq() int32 {
	return int32((int64(b.BaseSequence) + int64(b.Records) - 1) % (math.MaxInt32 + 1))
}

// checkBatch decides an idempotent batch against its producer's state, as
// Kafka does: a retry of one of the last batches is a duplicate (answered
// with its original offset), a batch from an older epoch is fenced, one
// that does not follow the last sequence is out of order. A producer the
// partition does not know (new, expired or evicted) may start at any
// sequence, as Kafka accepts a producer whose state it no longer has.
func checkBatch(cur *producerItem, b BatchMeta) BatchOutcome {
	if cur == nil {
		return BatchOutcome{}
	}
	switch {
	case b.ProducerEpoch < cur.Epoch:
		return BatchOutcome{BaseOffset: -1, Err: ErrInvalidProducerEpoch}
	case b.ProducerEpoch == cur.Epoch:
		for _, e := range cur.Batches {
			if e.FirstSeq == b.BaseSequence && e.LastSeq == b.lastSeq() {
				return BatchOutcome{BaseOffset: e.BaseOffset, Duplicate: true}
			}
		}
		if n := len(cur.Batches); n > 0 {
			want := int32((int64(cur.Batches[n-1].LastSeq) + 1) % (math.MaxInt32 + 1))
			if b.BaseSequence != want {
				return BatchOutcome{BaseOffset: -1, Err: fmt.Errorf("%w: expected sequence %d, got %d", ErrOutOfOrderSequence, want, b.BaseSequence)}
			}
		}
	default: // a newer epoch starts its sequences again at 0
		if b.BaseSequence != 0 {
			return BatchOutcome{BaseOffset: -1, Err: fmt.Errorf("%w: a new producer epoch must start at sequence 0, got %d", ErrOutOfOrderSequence, b.BaseSequence)}
		}
	}
	return BatchOutcome{}
}

// snapshotVersion is the version of the producer snapshot encoding
// written; the decoder also reads version 1 (no transactions).
const snapshotVersion = 2

// encodeSnapshot encodes a partition's producers as of seq (FORMAT.md).
func encodeSnapshot(seq int64, pp *partitionProducers) []byte {
	b := make([]byte, 0, 16+pp.len()*32)
	b = append(b, snapshotVersion)
	b = binary.AppendUvarint(b, uint64(seq))
	b = binary.AppendUvarint(b, uint64(pp.len()))
	if pp == nil {
		return b
	}
	for el := pp.lru.Front(); el != nil; el = el.Next() {
		it := el.Value.(*producerItem)
		b = appendProducerBatches(b, it.id, it.Epoch, it.Batches)
		b = binary.AppendVarint(b, it.LastWrite)
		b = appendTxn(b, it.InTxn, it.TxnFirst, it.TxnEnded)
	}
	return b
}

// decodeSnapshot decodes a producer snapshot. It never panics.
func decodeSnapshot(key string, data []byte) (int64, *partitionProducers, error) {
	bad := func(format string, args ...any) (int64, *partitionProducers, error) {
		return 0, nil, fmt.Errorf("%w: %s: producer snapshot: %s", ErrCorruptValue, key, fmt.Sprintf(format, args...))
	}
	if len(data) == 0 || data[0] != 1 && data[0] != snapshotVersion {
		return bad("unknown version")
	}
	version := data[0]
	r := &valueReader{b: data[1:]}
	seq := int64(r.uvarint(math.MaxInt64))
	n := r.count(4)
	pp := newPartitionProducers()
	for range n {
		pid, epoch, batches := r.producerBatches()
		last := r.varint()
		var st ProducerState
		if version >= 2 {
			st.InTxn, st.TxnFirst, st.TxnEnded = r.txn()
		}
		if r.err != nil {
			break
		}
		if pp.get(pid) != nil || len(batches) > MaxProducerBatches {
			return bad("producer %d listed twice or with %d batches", pid, len(batches))
		}
		st.Epoch, st.Batches, st.LastWrite = epoch, batches, last
		pp.set(pid, st)
	}
	if r.err != nil {
		return bad("%v", r.err)
	}
	if len(r.b) != 0 {
		return bad("%d bytes after the end", len(r.b))
	}
	return seq, pp, nil
}

// ProducerInfo is one producer a partition remembers, as
// PartitionProducers reports it.
type ProducerInfo struct {
	ProducerID int64
	ProducerState
}

// LastSequence is the sequence of the last record of the producer's last
// batch the partition remembers, or -1 when it remembers none (a marker
// of a new epoch was its last write there).
func (pi ProducerInfo) LastSequence() int32 {
	if n := len(pi.Batches); n > 0 {
		return pi.Batches[n-1].LastSeq
	}
	return -1
}

// TxnStart is the first offset of the producer's open transaction on the
// partition, or -1 when it has none open.
func (pi ProducerInfo) TxnStart() int64 {
	if pi.InTxn {
		return pi.TxnFirst
	}
	return -1
}

// PartitionProducers returns the producers partition p of t remembers,
// sorted by producer ID: the state a committer loads (the shard's
// producer snapshots and the log entries since, replayed with cfg's
// rules; cfg's defaults apply as in NewCommitter), as of the latest
// entry. Producers idle past cfg.ProducerExpiry at cfg.Now and with no
// transaction open are left out: the next commit to the partition
// forgets them. A partition t does not have gives ErrUnknownPartition.
//
// It reads etcd every time (the shard's snapshots and the entries since
// its floor), for the administrative reads that need it (Kafka's
// DescribeProducers); the write path keeps its own state.
func (s *Store) PartitionProducers(ctx context.Context, t Topic, p int32, cfg CommitConfig) ([]ProducerInfo, error) {
	if p < 0 || p >= t.Partitions {
		return nil, fmt.Errorf("%w: %s has no partition %d (it has %d)", ErrUnknownPartition, t.Name, p, t.Partitions)
	}
	cfg.setDefaults()
	st, err := s.loadShardState(ctx, t.Shard(p), cfg)
	if err != nil {
		return nil, fmt.Errorf("reading the producers of %s/%d: %w", t.Name, p, err)
	}
	pp := st.producers[p]
	if pp == nil {
		return nil, nil
	}
	expiredBefore := cfg.Now().UnixMilli() - cfg.ProducerExpiry.Milliseconds()
	out := make([]ProducerInfo, 0, pp.len())
	for el := pp.lru.Front(); el != nil; el = el.Next() {
		it := el.Value.(*producerItem)
		if !it.InTxn && it.LastWrite < expiredBefore {
			continue
		}
		pi := ProducerInfo{ProducerID: it.id, ProducerState: it.ProducerState}
		pi.Batches = slices.Clone(it.Batches)
		out = append(out, pi)
	}
	slices.SortFunc(out, func(a, b ProducerInfo) int { return cmp.Compare(a.ProducerID, b.ProducerID) })
	return out, nil
}
