package segments

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
)

// Cleaned batches.
//
// Key-based compaction (cleanup.policy=compact) removes records a later
// record of the same key supersedes. As Kafka's cleaner does, the records
// kept stay in batches of their own that keep every record's offset: a
// kept batch may start with a record past its base offset and end with a
// record before its last offset (Kafka's cleaner keeps a batch's last
// offset however many of its records go, and every Kafka client reads
// such batches). Readers of a floe extent assign base offsets from the
// spans of the batches before (ReadExtent), so a cleaned extent's batches
// must still cover its offsets without gaps: where whole batches go, the
// next batch kept starts lower (its base moved down to cover them) and
// the last batch kept ends at the extent's last offset.

// CleanedBatch is how AppendCleaned rewrites a batch.
type CleanedBatch struct {
	// Shift moves the batch's base offset down by that many offsets;
	// every kept record keeps its offset (its offset delta grows by
	// Shift).
	Shift int32
	// LastOffsetDelta is the rewritten batch's, from its new base: at
	// least the delta of its last kept record.
	LastOffsetDelta int32
	// Keep says which records stay, in the batch's order.
	Keep func(Record) bool
	// Null, if set, says which kept records lose their value (become
	// tombstones).
	Null func(Record) bool
}

// AppendCleaned appends to dst b rewritten as c says, and returns it and
// how many records it kept. With every record kept, no shift and the same
// last offset delta, b is appended as it is. Otherwise the kept records
// are written uncompressed (a segment chunk compresses them) in a new
// batch with b's attributes but its codec, producer and base timestamp;
// its max timestamp is the largest kept (CreateTime), and its base
// sequence moves down with its base, so its last sequence stays b's. With
// no record kept nothing is appended. b must be a batch ParseBatch
// accepted.
func AppendCleaned(dst []byte, b *Batch, c CleanedBatch) ([]byte, int32, error) {
	if c.Shift < 0 || c.LastOffsetDelta < 0 || int64(c.LastOffsetDelta) > math.MaxInt32 {
		return dst, 0, fmt.Errorf("%w: shift %d, last offset delta %d", ErrInvalidBatch, c.Shift, c.LastOffsetDelta)
	}
	var (
		records []byte
		kept    int32
		all     = true
		lastOD  = int32(-1)
		maxTS   = int64(math.MinInt64)
	)
	err := b.Records(func(r Record) bool {
		if !c.Keep(r) {
			all = false
			return true
		}
		kept++
		lastOD = r.OffsetDelta + c.Shift
		maxTS = max(maxTS, r.Timestamp)
		null := c.Null != nil && r.Value != nil && c.Null(r)
		if null {
			all = false
		}
		records = appendShifted(records, r, c.Shift, null)
		return true
	})
	if err != nil {
		return dst, 0, err
	}
	if kept == 0 {
		return dst, 0, nil
	}
	if lastOD > c.LastOffsetDelta {
		return dst, 0, fmt.Errorf("%w: last offset delta %d below the last kept record's %d", ErrInvalidBatch, c.LastOffsetDelta, lastOD)
	}
	if all && c.Shift == 0 && c.LastOffsetDelta == b.LastOffsetDelta {
		return append(dst, b.Raw...), kept, nil
	}
	h := BatchHeader{
		Attributes:      b.Attributes &^ (attrCompressionMask | attrDeleteHorizon),
		BaseTimestamp:   b.BaseTimestamp,
		MaxTimestamp:    maxTS,
		ProducerID:      b.ProducerID,
		ProducerEpoch:   b.ProducerEpoch,
		BaseSequence:    b.BaseSequence,
		LastOffsetDelta: c.LastOffsetDelta,
		RecordCount:     kept,
	}
	if b.LogAppendTime() {
		h.MaxTimestamp = b.MaxTimestamp
	}
	if b.BaseSequence >= 0 {
		// Kafka's sequences wrap from MaxInt32 to 0.
		h.BaseSequence = int32((int64(b.BaseSequence) - int64(c.Shift) + math.MaxInt32 + 1) % (math.MaxInt32 + 1))
	}
	return AppendBatch(dst, h, records), kept, nil
}

// appendShifted appends record r with its offset delta grown by shift
// and, with null, its value null; its other fields byte for byte. r is a
// record Records read, so its fields decode.
func appendShifted(dst []byte, r Record, shift int32, null bool) []byte {
	if shift == 0 && !null {
		return append(dst, r.Raw...)
	}
	// Raw is length, attributes, timestamp delta, offset delta, key,
	// value, headers.
	_, n := binary.Varint(r.Raw)
	body := r.Raw[n:]
	_, k := binary.Varint(body[1:])
	_, m := binary.Varint(body[1+k:])
	rest := body[1+k+m:]
	if null {
		_, keyEnd, _ := readNullableBytes(rest, "key")
		_, headers, _ := readNullableBytes(keyEnd, "value")
		keyField := rest[:len(rest)-len(keyEnd)]
		rest = append(append(append([]byte(nil), keyField...), binary.AppendVarint(nil, -1)...), headers...)
	}
	od := int64(r.OffsetDelta) + int64(shift)
	length := 1 + k + varintLen(od) + len(rest)
	dst = binary.AppendVarint(dst, int64(length))
	dst = append(dst, body[:1+k]...)
	dst = binary.AppendVarint(dst, od)
	return append(dst, rest...)
}

// ExtendLastOffset moves the last offset of the batch in raw n offsets
// further (a cleaned batch covering the offsets of the batches removed
// after it), and recomputes its CRC. raw must be one whole batch.
func ExtendLastOffset(raw []byte, n int64) error {
	if len(raw) < BatchHeaderSize {
		return fmt.Errorf("%w: %d bytes, a batch header needs %d", ErrCorruptBatch, len(raw), BatchHeaderSize)
	}
	be := binary.BigEndian
	d := int64(int32(be.Uint32(raw[offLastOffsetDelta:]))) + n
	if n < 0 || d > math.MaxInt32 {
		return fmt.Errorf("%w: last offset delta %d", ErrInvalidBatch, d)
	}
	be.PutUint32(raw[offLastOffsetDelta:], uint32(d))
	be.PutUint32(raw[offCRC:], crc32.Checksum(raw[offAttributes:], castagnoli))
	return nil
}
