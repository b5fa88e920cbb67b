package metadata

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
)

// LogEntry is one entry of a shard's log: what one commit (or one merge of
// consecutive entries) added to the shard. FORMAT.md specifies its bytes.
type LogEntry struct {
	// Seq is the entry's sequence number in its shard (its key); SeqLast
	// is the last sequence number it covers (above Seq once the compactor
	// merged entries Seq..SeqLast into it).
	Seq, SeqLast int64
	// Committed is when the entry was committed (Unix ms); for a merged
	// entry, when its last constituent was.
	Committed int64
	// Base is the shard's first partition; Nexts[i] is the high watermark
	// of partition Base+i after this entry. Nexts covers the partitions the
	// shard had when the entry was written.
	Base  int32
	Nexts []int64
	// Objects are the segment objects the extents are in.
	Objects []ObjectRef
	// Extents are the partitions' records this entry added, at most one
	// per partition, in partition order. Partition p's extent holds
	// exactly the offsets [previous entry's Nexts[p], Nexts[p]).
	Extents []Extent
	// Producers are the idempotent producers' batches accepted by this
	// entry, per partition, in commit order; a merged entry has none
	// (Flags&EntryMerged), its producers' state lives in the snapshots.
	Producers []ProducerDelta
	// Stables are the last stable offsets of the shard's partitions
	// whose LSO is below their high watermark after this entry (a
	// transaction is open there), in slot order; every other
	// partition's LSO is its high watermark.
	Stables []StableMark
	// Aborted are the transactions this entry's abort markers ended, in
	// partition and marker order (also kept in the aborted-transaction
	// index, aborted.go, which outlives the entry); a merged entry has
	// none.
	Aborted []AbortedTxn
	Flags   uint32

	// extentAt[p-Base] is 1 + the index of partition p's extent in
	// Extents, 0 where p has none: set by indexExtents for an entry of a
	// wide shard that misses some of its partitions, where ExtentOf would
	// otherwise search. A copy whose Extents change keeps it; ExtentOf
	// checks what it finds there.
	extentAt []int32
}

// indexExtentsMin is the fewest partitions a shard has for its decoded
// entries to index their extents (indexExtents).
const indexExtentsMin = 32

// indexExtents sets e.extentAt when e's shard is wide, e has an extent of
// at least a quarter of its partitions, and not of all (then p's extent is
// at p's place). A keyed flush over thousands of partitions misses about
// one in eight (a flush of 8000 records over 4096 partitions), and each
// partition after the first it misses is then found by a binary search,
// each step a cache miss: a read of such a topic looks up every extent it
// serves, some several times. The index costs 4 bytes per partition,
// against about 100 of each extent.
func (e *LogEntry) indexExtents() {
	e.extentAt = nil
	span := len(e.Nexts)
	if span < indexExtentsMin || len(e.Extents) == span || len(e.Extents)*4 < span {
		return
	}
	at := make([]int32, span)
	for i, x := range e.Extents {
		k := int(x.Partition - e.Base)
		if k < 0 || k >= span {
			return // not a decoded entry's: ExtentOf searches
		}
		at[k] = int32(i + 1)
	}
	e.extentAt = at
}

// StableOffsets returns every slot's last stable offset after e.
func (e *LogEntry) StableOffsets() []int64 {
	out := slices.Clone(e.Nexts)
	for _, m := range e.Stables {
		if i := m.Partition - e.Base; i >= 0 && int(i) < len(out) {
			out[i] = min(out[i], m.Offset)
		}
	}
	return out
}

// StableMark is a partition's last stable offset: the first offset of its
// oldest open transaction.
type StableMark struct {
	Partition int32
	Offset    int64
}

// Stable returns partition p's last stable offset after e.
func (e *LogEntry) Stable(p int32) int64 {
	next, _ := e.Next(p)
	i, ok := slices.BinarySearchFunc(e.Stables, p, func(m StableMark, p int32) int { return cmp.Compare(m.Partition, p) })
	if ok {
		return min(e.Stables[i].Offset, next)
	}
	return next
}

// Entry flags.
const (
	// EntryMerged: written by the compactor; carries no producer deltas.
	EntryMerged uint32 = 1 << iota
)

const entryKnownFlags = EntryMerged

// ObjectRef names a segment object and its size.
type ObjectRef struct {
	Key  string
	Size int64
}

// Extent is one partition's run of batches in one object.
type Extent struct {
	Partition int32
	Object    int32 // index into LogEntry.Objects
	// Offset and Length are the extent's byte range in the object.
	Offset, Length int64
	// First and Last are the first and last offsets it holds (inclusive).
	First, Last int64
	// Batches is how many of the extent's batches are part of the log;
	// Skip lists the ordinals of those that are not (duplicates and
	// rejected batches written before the commit decided), ascending.
	Batches int32
	Skip    []int32
	// MinTimestamp and MaxTimestamp bound the records' timestamps (ms).
	MinTimestamp, MaxTimestamp int64
}

// ProducerDelta is one idempotent producer's batches accepted on one
// partition by one entry.
type ProducerDelta struct {
	Partition  int32
	ProducerID int64
	Epoch      int16
	Batches    []SeqEntry
	// InTxn and TxnFirst are the producer's transaction on the partition
	// after the entry: open, from that offset, or not. TxnEnded is the
	// start time of the last transaction a marker ended there.
	InTxn    bool
	TxnFirst int64
	TxnEnded int64
}

// Next returns partition p's high watermark after e, and whether e knows
// p (a partition added to the topic after e was written has 0).
func (e *LogEntry) Next(p int32) (int64, bool) {
	i := p - e.Base
	if i < 0 || int(i) >= len(e.Nexts) {
		return 0, false
	}
	return e.Nexts[i], true
}

// ExtentOf returns partition p's extent in e.
func (e *LogEntry) ExtentOf(p int32) (Extent, bool) {
	// An entry of a flush with keyed records has an extent of every
	// partition of its shard: p's is then at p's place.
	k := int(p - e.Base)
	if k >= 0 && k < len(e.Extents) && e.Extents[k].Partition == p {
		return e.Extents[k], true
	}
	// The index's place for p is checked, not trusted: a copy of a decoded
	// entry whose extents were changed (the compactor's rewrites) keeps
	// the index of the entry it copied.
	if k >= 0 && k < len(e.extentAt) {
		if i := int(e.extentAt[k]) - 1; i >= 0 && i < len(e.Extents) && e.Extents[i].Partition == p {
			return e.Extents[i], true
		}
	}
	// Otherwise p's extent is at most k places in (one per partition
	// before it) and at most as many places short of that as partitions
	// of the shard have no extent here: search only there. (A keyed flush
	// over thousands of partitions misses a few of them: this is a
	// fraction of the whole.)
	lo, hi := 0, len(e.Extents)
	if span := len(e.Nexts); k >= 0 && k < span && len(e.Extents) <= span {
		lo = max(0, k-(span-len(e.Extents)))
		hi = min(hi, k+1)
	}
	i, ok := slices.BinarySearchFunc(e.Extents[lo:hi], p, func(x Extent, p int32) int { return int(x.Partition - p) })
	if !ok {
		return Extent{}, false
	}
	return e.Extents[lo+i], true
}

// IndexEntry returns x as a self-contained index entry of e.
func (e *LogEntry) IndexEntry(x Extent) IndexEntry {
	o := e.Objects[x.Object]
	return IndexEntry{
		Object: o.Key, ObjectSize: o.Size,
		Offset: x.Offset, Length: x.Length,
		First: x.First, Last: x.Last,
		Batches: x.Batches, Skip: x.Skip,
		MinTimestamp: x.MinTimestamp, MaxTimestamp: x.MaxTimestamp,
		Committed: e.Committed,
		Seq:       e.Seq,
	}
}

// Log entry encodings (FORMAT.md). Version 3 writes the extents' and
// producer batches' fields relative to what the entry already says (the
// slot's high watermark, the previous extent's end, the commit time), so
// a flush over thousands of partitions puts about a third fewer bytes in
// etcd, and in every agent's watch, than version 2. The decoder reads 1
// to 3; a cluster writes the version its record names (ClusterInfo).
const (
	entryVersionTxn     = 2 // per-delta transactions, stable offsets, aborted transactions
	entryVersionCompact = 3 // relative extents and producer batches
	entryVersion        = entryVersionCompact
)

// Bounds a decoded entry must keep, against corrupt or foreign values.
const (
	maxEntryObjects = 1 << 16
	maxObjectKeyLen = 1024
)

// Encode returns the entry's bytes in the newest encoding (FORMAT.md).
func (e *LogEntry) Encode() []byte { return e.EncodeVersion(entryVersion) }

// EncodeVersion returns the entry's bytes in encoding version v (2 or
// 3; any other writes 3).
func (e *LogEntry) EncodeVersion(v int) []byte {
	if v != entryVersionTxn {
		v = entryVersionCompact
	}
	b := make([]byte, 0, 64+len(e.Nexts)*6+len(e.Extents)*24+len(e.Producers)*16)
	b = append(b, byte(v))
	b = binary.AppendUvarint(b, uint64(e.Flags))
	b = binary.AppendUvarint(b, uint64(e.Seq))
	b = binary.AppendUvarint(b, uint64(e.SeqLast-e.Seq))
	b = binary.AppendVarint(b, e.Committed)
	b = binary.AppendUvarint(b, uint64(e.Base))
	b = binary.AppendUvarint(b, uint64(len(e.Nexts)))
	for _, n := range e.Nexts {
		b = binary.AppendUvarint(b, uint64(n))
	}
	b = binary.AppendUvarint(b, uint64(len(e.Objects)))
	for _, o := range e.Objects {
		b = binary.AppendUvarint(b, uint64(len(o.Key)))
		b = append(b, o.Key...)
		b = binary.AppendUvarint(b, uint64(o.Size))
	}
	b = binary.AppendUvarint(b, uint64(len(e.Extents)))
	prevObject, prevEnd := int32(-1), int64(0)
	for _, x := range e.Extents {
		b = binary.AppendUvarint(b, uint64(x.Partition-e.Base))
		b = binary.AppendUvarint(b, uint64(x.Object))
		if v == entryVersionTxn {
			b = binary.AppendUvarint(b, uint64(x.Offset))
			b = binary.AppendUvarint(b, uint64(x.Length))
			b = binary.AppendUvarint(b, uint64(x.First))
			b = binary.AppendUvarint(b, uint64(x.Last-x.First))
		} else {
			// Extents of one object follow each other: the offset is
			// written as its distance from the previous one's end.
			expect := int64(0)
			if x.Object == prevObject {
				expect = prevEnd
			}
			next, _ := e.Next(x.Partition)
			b = binary.AppendVarint(b, x.Offset-expect)
			b = binary.AppendUvarint(b, uint64(x.Length))
			b = binary.AppendUvarint(b, uint64(next-1-x.Last))
			b = binary.AppendUvarint(b, uint64(x.Last-x.First))
			prevObject, prevEnd = x.Object, x.Offset+x.Length
		}
		b = binary.AppendUvarint(b, uint64(x.Batches))
		b = binary.AppendUvarint(b, uint64(len(x.Skip)))
		prev := int32(-1)
		for _, s := range x.Skip {
			b = binary.AppendUvarint(b, uint64(s-prev-1))
			prev = s
		}
		if v == entryVersionTxn {
			b = binary.AppendVarint(b, x.MinTimestamp)
			b = binary.AppendVarint(b, x.MaxTimestamp)
		} else {
			b = binary.AppendVarint(b, x.MinTimestamp-e.Committed)
			b = binary.AppendVarint(b, x.MaxTimestamp-x.MinTimestamp)
		}
	}
	b = binary.AppendUvarint(b, uint64(len(e.Producers)))
	prevID := int64(0)
	for _, d := range e.Producers {
		b = binary.AppendUvarint(b, uint64(d.Partition-e.Base))
		if v == entryVersionTxn {
			b = appendProducerBatches(b, d.ProducerID, d.Epoch, d.Batches)
		} else {
			next, _ := e.Next(d.Partition)
			b = appendProducerBatchesCompact(b, d.ProducerID-prevID, d.Epoch, d.Batches, next)
			prevID = d.ProducerID
		}
		b = appendTxn(b, d.InTxn, d.TxnFirst, d.TxnEnded)
	}
	b = binary.AppendUvarint(b, uint64(len(e.Stables)))
	for _, m := range e.Stables {
		b = binary.AppendUvarint(b, uint64(m.Partition-e.Base))
		b = binary.AppendUvarint(b, uint64(m.Offset))
	}
	b = binary.AppendUvarint(b, uint64(len(e.Aborted)))
	for _, a := range e.Aborted {
		b = binary.AppendUvarint(b, uint64(a.Partition-e.Base))
		b = binary.AppendUvarint(b, uint64(a.ProducerID))
		b = binary.AppendUvarint(b, uint64(a.First))
		b = binary.AppendUvarint(b, uint64(a.Last-a.First))
		b = binary.AppendUvarint(b, uint64(a.Stable))
	}
	return b
}

// SizeBound is at least the entry's size in any encoding a cluster may
// write, for callers that bound requests before they know which.
func (e *LogEntry) SizeBound() int {
	return max(len(e.EncodeVersion(entryVersionTxn)), len(e.EncodeVersion(entryVersionCompact)))
}

// appendProducerBatchesCompact encodes a delta's producer batches as
// version 3 does: the producer ID as its difference from the previous
// delta's (idDelta), each batch's last sequence as its distance from its
// first (modulo 2^32, as sequences wrap), and its base offset as its
// distance below the slot's high watermark next.
func appendProducerBatchesCompact(b []byte, idDelta int64, epoch int16, batches []SeqEntry, next int64) []byte {
	b = binary.AppendVarint(b, idDelta)
	b = binary.AppendUvarint(b, uint64(uint16(epoch)))
	b = binary.AppendUvarint(b, uint64(len(batches)))
	for _, s := range batches {
		b = binary.AppendUvarint(b, uint64(uint32(s.FirstSeq)))
		b = binary.AppendUvarint(b, uint64(uint32(s.LastSeq)-uint32(s.FirstSeq)))
		b = binary.AppendVarint(b, next-s.BaseOffset)
	}
	return b
}

// appendTxn encodes a producer's transaction state on a partition: its
// open transaction (0 for none, else its first offset plus one), then the
// start time of the last transaction a marker ended.
func appendTxn(b []byte, open bool, first, ended int64) []byte {
	if !open {
		b = binary.AppendUvarint(b, 0)
	} else {
		b = binary.AppendUvarint(b, uint64(first)+1)
	}
	return binary.AppendUvarint(b, uint64(max(ended, 0)))
}

// txn decodes what appendTxn wrote.
func (r *valueReader) txn() (open bool, first, ended int64) {
	v := r.uvarint(math.MaxInt64)
	ended = int64(r.uvarint(math.MaxInt64))
	if v == 0 {
		return false, 0, ended
	}
	return true, int64(v - 1), ended
}

// appendProducerBatches encodes a producer's ID, epoch and batches, as
// entries' deltas and snapshots both hold them.
func appendProducerBatches(b []byte, pid int64, epoch int16, batches []SeqEntry) []byte {
	b = binary.AppendUvarint(b, uint64(pid))
	b = binary.AppendUvarint(b, uint64(uint16(epoch)))
	b = binary.AppendUvarint(b, uint64(len(batches)))
	for _, s := range batches {
		b = binary.AppendUvarint(b, uint64(uint32(s.FirstSeq)))
		b = binary.AppendUvarint(b, uint64(uint32(s.LastSeq)))
		b = binary.AppendUvarint(b, uint64(s.BaseOffset))
	}
	return b
}

// errShortValue: a binary value ended early or held an out-of-range field.
var errShortValue = errors.New("truncated or out of range")

// reader decodes the varints of a binary value; the first failure sticks.
type valueReader struct {
	b   []byte
	err error
}

func (r *valueReader) uvarint(limit uint64) uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 || v > limit {
		r.err = errShortValue
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *valueReader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err = errShortValue
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *valueReader) bytes(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n > len(r.b) {
		r.err = errShortValue
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

// count reads a count of items each taking at least minBytes, so a corrupt
// count cannot make the decoder allocate more than the value could hold.
//
// minBytes must be the smallest encoding of one item (one byte per
// varint), or a value re-encoded with minimal varints can be refused.
func (r *valueReader) count(minBytes int) int {
	return int(r.uvarint(uint64(len(r.b) / max(minBytes, 1))))
}

// readProducerBatches decodes what appendProducerBatches wrote.
func (r *valueReader) producerBatches() (pid int64, epoch int16, batches []SeqEntry) {
	pid = int64(r.uvarint(math.MaxInt64))
	epoch = int16(uint16(r.uvarint(math.MaxUint16)))
	n := r.count(3)
	if n > 0 {
		batches = make([]SeqEntry, 0, n)
	}
	for range n {
		first := int32(uint32(r.uvarint(math.MaxUint32)))
		last := int32(uint32(r.uvarint(math.MaxUint32)))
		base := int64(r.uvarint(math.MaxInt64))
		batches = append(batches, SeqEntry{FirstSeq: first, LastSeq: last, BaseOffset: base})
	}
	return pid, epoch, batches
}

// producerBatchesCompact decodes what appendProducerBatchesCompact wrote,
// given the previous delta's producer ID and the slot's high watermark.
func (r *valueReader) producerBatchesCompact(prevID, next int64) (pid int64, epoch int16, batches []SeqEntry) {
	pid = prevID + r.varint()
	epoch = int16(uint16(r.uvarint(math.MaxUint16)))
	n := r.count(3)
	if n > 0 {
		batches = make([]SeqEntry, 0, n)
	}
	for range n {
		first := uint32(r.uvarint(math.MaxUint32))
		last := first + uint32(r.uvarint(math.MaxUint32))
		base := next - r.varint()
		batches = append(batches, SeqEntry{FirstSeq: int32(first), LastSeq: int32(last), BaseOffset: base})
	}
	return pid, epoch, batches
}

// DecodeLogEntry decodes a log entry value; key names it in errors and
// gives its sequence number (checked against the value's). It never
// panics and never allocates much more than the value's size; an
// inconsistent entry gives ErrCorruptValue.
func DecodeLogEntry(key string, seq int64, data []byte) (LogEntry, error) {
	bad := func(format string, args ...any) (LogEntry, error) {
		return LogEntry{}, fmt.Errorf("%w: %s: log entry: %s", ErrCorruptValue, key, fmt.Sprintf(format, args...))
	}
	if len(data) == 0 {
		return bad("empty")
	}
	version := data[0]
	if version < 1 || version > entryVersion {
		return bad("version %d, this floe reads 1 to %d", data[0], entryVersion)
	}
	compact := version >= entryVersionCompact
	r := &valueReader{b: data[1:]}
	var e LogEntry
	e.Flags = uint32(r.uvarint(math.MaxUint32))
	e.Seq = int64(r.uvarint(math.MaxInt64))
	e.SeqLast = e.Seq + int64(r.uvarint(uint64(math.MaxInt64-e.Seq)))
	e.Committed = r.varint()
	e.Base = int32(r.uvarint(MaxPartitions))
	nn := r.count(1)
	if nn > MaxShardSize {
		return bad("%d partitions", nn)
	}
	e.Nexts = make([]int64, nn)
	for i := range e.Nexts {
		e.Nexts[i] = int64(r.uvarint(math.MaxInt64))
	}
	no := r.count(2)
	if no > maxEntryObjects {
		return bad("%d objects", no)
	}
	e.Objects = make([]ObjectRef, no)
	for i := range e.Objects {
		k := r.bytes(int(r.uvarint(maxObjectKeyLen)))
		e.Objects[i] = ObjectRef{Key: string(k), Size: int64(r.uvarint(math.MaxInt64))}
	}
	nx := r.count(10)
	if nx > len(e.Nexts) {
		return bad("%d extents for %d partitions", nx, len(e.Nexts))
	}
	if nx > 0 && no == 0 {
		return bad("%d extents in no object", nx)
	}
	e.Extents = make([]Extent, nx)
	for i := range e.Extents {
		x := &e.Extents[i]
		x.Partition = e.Base + int32(r.uvarint(uint64(max(len(e.Nexts)-1, 0))))
		x.Object = int32(r.uvarint(uint64(max(no-1, 0))))
		if !compact {
			x.Offset = int64(r.uvarint(math.MaxInt64))
			x.Length = int64(r.uvarint(math.MaxInt64))
			x.First = int64(r.uvarint(math.MaxInt64))
			x.Last = x.First + int64(r.uvarint(uint64(math.MaxInt64-x.First)))
		} else {
			expect := int64(0)
			if i > 0 && e.Extents[i-1].Object == x.Object {
				expect = e.Extents[i-1].Offset + e.Extents[i-1].Length
			}
			x.Offset = expect + r.varint()
			x.Length = int64(r.uvarint(math.MaxInt64))
			next, _ := e.Next(x.Partition)
			if next < 1 {
				return bad("extent of partition %d, whose high watermark is %d", x.Partition, next)
			}
			x.Last = next - 1 - int64(r.uvarint(uint64(next-1)))
			x.First = x.Last - int64(r.uvarint(uint64(x.Last)))
			if x.Offset < 0 {
				return bad("extent of partition %d at byte %d", x.Partition, x.Offset)
			}
		}
		x.Batches = int32(r.uvarint(math.MaxInt32))
		ns := r.count(1)
		if ns > 0 {
			x.Skip = make([]int32, ns)
		}
		prev := int64(-1)
		for j := range x.Skip {
			prev += 1 + int64(r.uvarint(math.MaxInt32))
			if prev > math.MaxInt32 {
				return bad("skip ordinal out of range")
			}
			x.Skip[j] = int32(prev)
		}
		if !compact {
			x.MinTimestamp = r.varint()
			x.MaxTimestamp = r.varint()
		} else {
			x.MinTimestamp = e.Committed + r.varint()
			x.MaxTimestamp = x.MinTimestamp + r.varint()
		}
	}
	np := r.count(4)
	if np > 0 {
		e.Producers = make([]ProducerDelta, np)
	}
	for i := range e.Producers {
		d := &e.Producers[i]
		d.Partition = e.Base + int32(r.uvarint(uint64(max(len(e.Nexts)-1, 0))))
		if !compact {
			d.ProducerID, d.Epoch, d.Batches = r.producerBatches()
		} else {
			next, _ := e.Next(d.Partition)
			prevID := int64(0)
			if i > 0 {
				prevID = e.Producers[i-1].ProducerID
			}
			d.ProducerID, d.Epoch, d.Batches = r.producerBatchesCompact(prevID, next)
			if d.ProducerID < 0 {
				return bad("producer ID %d", d.ProducerID)
			}
			for _, s := range d.Batches {
				if s.BaseOffset < 0 {
					return bad("producer %d's batch at offset %d", d.ProducerID, s.BaseOffset)
				}
			}
		}
		if version >= 2 {
			d.InTxn, d.TxnFirst, d.TxnEnded = r.txn()
		}
	}
	if version >= 2 {
		ns := r.count(2)
		if ns > len(e.Nexts) {
			return bad("%d stable offsets for %d partitions", ns, len(e.Nexts))
		}
		if ns > 0 {
			e.Stables = make([]StableMark, ns)
		}
		for i := range e.Stables {
			e.Stables[i] = StableMark{Partition: e.Base + int32(r.uvarint(uint64(max(len(e.Nexts)-1, 0)))), Offset: int64(r.uvarint(math.MaxInt64))}
		}
		na := r.count(5)
		if na > 0 {
			e.Aborted = make([]AbortedTxn, na)
		}
		for i := range e.Aborted {
			a := &e.Aborted[i]
			a.Partition = e.Base + int32(r.uvarint(uint64(max(len(e.Nexts)-1, 0))))
			a.ProducerID = int64(r.uvarint(math.MaxInt64))
			a.First = int64(r.uvarint(math.MaxInt64))
			a.Last = a.First + int64(r.uvarint(uint64(math.MaxInt64-a.First)))
			a.Stable = int64(r.uvarint(math.MaxInt64))
		}
	}
	if r.err != nil {
		return bad("%v", r.err)
	}
	if len(r.b) != 0 {
		return bad("%d bytes after the end", len(r.b))
	}
	if e.Flags&^entryKnownFlags != 0 {
		return bad("unknown flags %#x", e.Flags)
	}
	if seq > 0 && e.Seq != seq {
		return bad("holds sequence %d under key %d", e.Seq, seq)
	}
	if e.Seq <= 0 || len(e.Nexts) == 0 && len(e.Extents) > 0 {
		return bad("sequence %d with %d partitions", e.Seq, len(e.Nexts))
	}
	for i, a := range e.Aborted {
		if i > 0 && (a.Partition < e.Aborted[i-1].Partition || a.Partition == e.Aborted[i-1].Partition && a.Last <= e.Aborted[i-1].Last) {
			return bad("aborted transactions out of order")
		}
		if next, _ := e.Next(a.Partition); a.Last >= next {
			return bad("aborted transaction of partition %d ends at %d, its high watermark is %d", a.Partition, a.Last, next)
		}
	}
	for i, m := range e.Stables {
		if i > 0 && m.Partition <= e.Stables[i-1].Partition {
			return bad("stable offsets out of partition order")
		}
		if next, _ := e.Next(m.Partition); m.Offset >= next {
			return bad("stable offset %d of partition %d is not below its high watermark %d", m.Offset, m.Partition, next)
		}
	}
	for i, x := range e.Extents {
		if i > 0 && x.Partition <= e.Extents[i-1].Partition {
			return bad("extents out of partition order")
		}
		if x.Length <= 0 || x.Batches <= 0 || int64(x.Batches) > x.Last-x.First+1 {
			return bad("extent of partition %d: %d bytes, %d batches, offsets %d-%d", x.Partition, x.Length, x.Batches, x.First, x.Last)
		}
		if next, _ := e.Next(x.Partition); x.Last >= next {
			return bad("extent of partition %d ends at %d, its high watermark is %d", x.Partition, x.Last, next)
		}
	}
	e.indexExtents()
	return e, nil
}
