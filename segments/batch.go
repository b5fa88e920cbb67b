package segments

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
)

// Kafka RecordBatch v2 ("magic 2") header layout. All fields are big-endian.
// The CRC is CRC-32C (Castagnoli) over everything from the attributes field
// to the end of the batch, so baseOffset, batchLength and
// partitionLeaderEpoch may be rewritten without recomputing it.
const (
	// BatchHeaderSize is the size of a RecordBatch v2 header: the smallest
	// possible batch.
	BatchHeaderSize = 61

	// batchLengthOverhead is the number of bytes before and including the
	// batchLength field, which are not counted by it.
	batchLengthOverhead = 12

	// minBatchLength is the smallest valid batchLength value.
	minBatchLength = BatchHeaderSize - batchLengthOverhead

	// BatchMagic is the only RecordBatch magic floe accepts.
	BatchMagic = 2

	offBaseOffset      = 0
	offBatchLength     = 8
	offLeaderEpoch     = 12
	offMagic           = 16
	offCRC             = 17
	offAttributes      = 21
	offLastOffsetDelta = 23
	offBaseTimestamp   = 27
	offMaxTimestamp    = 35
	offProducerID      = 43
	offProducerEpoch   = 51
	offBaseSequence    = 53
	offRecordCount     = 57

	attrCompressionMask = 0x07
	attrLogAppendTime   = 0x08
	attrTransactional   = 0x10
	attrControl         = 0x20
	// attrDeleteHorizon is set by a Kafka cleaner that repurposed
	// baseTimestamp as the time to remove tombstones.
	attrDeleteHorizon = 0x40
)

// castagnoli is the CRC-32C table used by Kafka batches and by every CRC in
// the segment object format.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// BatchCompression is the compression codec a Kafka client applied to the
// records of a batch (attributes bits 0-2). It is distinct from Codec, the
// compression of a segment chunk.
type BatchCompression int8

// Kafka batch compression codecs.
const (
	CompressionNone   BatchCompression = 0
	CompressionGzip   BatchCompression = 1
	CompressionSnappy BatchCompression = 2
	CompressionLZ4    BatchCompression = 3
	CompressionZstd   BatchCompression = 4
)

func (c BatchCompression) String() string {
	switch c {
	case CompressionNone:
		return "none"
	case CompressionGzip:
		return "gzip"
	case CompressionSnappy:
		return "snappy"
	case CompressionLZ4:
		return "lz4"
	case CompressionZstd:
		return "zstd"
	}
	return fmt.Sprintf("BatchCompression(%d)", int8(c))
}

// Batch is one Kafka RecordBatch v2: the raw bytes and its parsed header.
//
// Raw aliases the buffer the batch was parsed from; nothing is copied. The
// header fields are a snapshot taken when the batch was parsed: functions
// that edit Raw in place (SetBaseOffset, SetLogAppendTime,
// SetPartitionLeaderEpoch) do not update them.
type Batch struct {
	// Raw is the whole batch, from baseOffset to the end of the records.
	Raw []byte

	BaseOffset           int64
	BatchLength          int32 // bytes after the batchLength field
	PartitionLeaderEpoch int32
	Magic                int8
	CRC                  uint32
	Attributes           int16
	LastOffsetDelta      int32
	BaseTimestamp        int64
	MaxTimestamp         int64
	ProducerID           int64
	ProducerEpoch        int16
	BaseSequence         int32
	RecordCount          int32
}

// Compression returns the codec the client compressed the records with.
func (b *Batch) Compression() BatchCompression {
	return BatchCompression(b.Attributes & attrCompressionMask)
}

// IsCompressed reports whether the client compressed the records. Such
// batches are stored as they are, never recompressed.
func (b *Batch) IsCompressed() bool { return b.Attributes&attrCompressionMask != 0 }

// NumRecords returns the number of records in the batch.
func (b *Batch) NumRecords() int32 { return b.RecordCount }

// OffsetSpan returns the number of offsets the batch spans: its records
// are at base offset to base offset + lastOffsetDelta. A produced batch
// spans one offset per record; a batch a cleaner compacted keeps its
// offsets and spans more offsets than it has records.
func (b *Batch) OffsetSpan() int64 { return int64(b.LastOffsetDelta) + 1 }

// Transactional reports whether the batch is part of a transaction.
func (b *Batch) Transactional() bool { return b.Attributes&attrTransactional != 0 }

// Control reports whether the batch holds control records (transaction
// markers).
func (b *Batch) Control() bool { return b.Attributes&attrControl != 0 }

// LogAppendTime reports whether the batch's timestamp type is LogAppendTime,
// in which case MaxTimestamp is the timestamp of every record.
func (b *Batch) LogAppendTime() bool { return b.Attributes&attrLogAppendTime != 0 }

// ParseBatches splits the records field of a produce request (one or more
// concatenated RecordBatch v2) into batches. The returned batches alias
// records; nothing is copied.
//
// Every batch is checked with ParseBatch, and its records must have
// consecutive offset deltas (lastOffsetDelta is recordCount-1), as a
// producer writes them. The first failure is returned,
// wrapped with the batch's index and byte position, and matches one of
// ErrCorruptBatch, ErrInvalidBatch or ErrUnsupportedMagic. An empty records
// field is ErrInvalidBatch.
//
// ParseBatches validates the framing Kafka defines for a batch; it does not
// decode individual records, and produce policy (baseOffset 0, no control
// batches from clients, idempotence) is the caller's.
func ParseBatches(records []byte) ([]Batch, error) {
	if len(records) == 0 {
		return nil, fmt.Errorf("%w: no record batches", ErrInvalidBatch)
	}
	// Most produce requests carry one batch per partition.
	batches := make([]Batch, 0, 1)
	for pos := 0; pos < len(records); {
		rest := records[pos:]
		n, err := batchSize(rest)
		if err != nil {
			return nil, fmt.Errorf("batch %d at byte %d: %w", len(batches), pos, err)
		}
		b, err := ParseBatch(rest[:n:n])
		if err == nil && b.LastOffsetDelta != b.RecordCount-1 {
			err = fmt.Errorf("%w: lastOffsetDelta %d with %d records: a produced batch has one offset per record", ErrInvalidBatch, b.LastOffsetDelta, b.RecordCount)
		}
		if err != nil {
			return nil, fmt.Errorf("batch %d at byte %d: %w", len(batches), pos, err)
		}
		batches = append(batches, b)
		pos += n
	}
	return batches, nil
}

// batchSize returns the total size of the batch at the start of data, as
// declared by its batchLength field, after checking the declared size is
// plausible and present.
func batchSize(data []byte) (int, error) {
	if len(data) < batchLengthOverhead {
		return 0, fmt.Errorf("%w: truncated: %d bytes left, a batch header needs %d",
			ErrInvalidBatch, len(data), BatchHeaderSize)
	}
	length := int32(binary.BigEndian.Uint32(data[offBatchLength:]))
	if length < 0 {
		return 0, fmt.Errorf("%w: negative batch length %d", ErrCorruptBatch, length)
	}
	// Report an old message format before complaining that it is shorter
	// than a v2 header: v0 and v1 messages can be.
	if len(data) > offMagic {
		if err := checkMagic(int8(data[offMagic])); err != nil {
			return 0, err
		}
	}
	if length < minBatchLength {
		return 0, fmt.Errorf("%w: batch length %d below the minimum %d", ErrCorruptBatch, length, minBatchLength)
	}
	size := int64(length) + batchLengthOverhead
	if size > int64(len(data)) {
		return 0, fmt.Errorf("%w: truncated: batch length %d needs %d bytes, %d left",
			ErrInvalidBatch, length, size, len(data))
	}
	return int(size), nil
}

func checkMagic(magic int8) error {
	switch {
	case magic == BatchMagic:
		return nil
	case magic == 0 || magic == 1:
		return fmt.Errorf("%w: magic %d", ErrUnsupportedMagic, magic)
	default:
		return fmt.Errorf("%w: unknown magic %d", ErrCorruptBatch, magic)
	}
}

// ParseBatch parses and validates raw, which must be exactly one RecordBatch
// v2. It checks the length, magic and CRC, that the batch has records, that
// it spans at least one offset per record (lastOffsetDelta at least
// recordCount-1; more in a compacted batch), and that the compression codec
// is known. The returned Batch aliases raw.
func ParseBatch(raw []byte) (Batch, error) {
	n, err := batchSize(raw)
	if err != nil {
		return Batch{}, err
	}
	if n != len(raw) {
		return Batch{}, fmt.Errorf("%w: batch length %d does not match the %d bytes given",
			ErrInvalidBatch, n-batchLengthOverhead, len(raw))
	}
	b := parseHeader(raw)
	if got := crc32.Checksum(raw[offAttributes:], castagnoli); got != b.CRC {
		return Batch{}, fmt.Errorf("%w: CRC mismatch: header says %08x, content has %08x", ErrCorruptBatch, b.CRC, got)
	}
	if b.RecordCount <= 0 {
		return Batch{}, fmt.Errorf("%w: record count %d", ErrInvalidBatch, b.RecordCount)
	}
	if b.LastOffsetDelta < b.RecordCount-1 {
		return Batch{}, fmt.Errorf("%w: lastOffsetDelta %d with %d records", ErrInvalidBatch, b.LastOffsetDelta, b.RecordCount)
	}
	if c := b.Compression(); c > CompressionZstd {
		return Batch{}, fmt.Errorf("%w: unknown compression codec %d", ErrInvalidBatch, c)
	}
	return b, nil
}

// parseHeader reads the header fields of raw, which must be at least
// BatchHeaderSize bytes.
func parseHeader(raw []byte) Batch {
	be := binary.BigEndian
	return Batch{
		Raw:                  raw,
		BaseOffset:           int64(be.Uint64(raw[offBaseOffset:])),
		BatchLength:          int32(be.Uint32(raw[offBatchLength:])),
		PartitionLeaderEpoch: int32(be.Uint32(raw[offLeaderEpoch:])),
		Magic:                int8(raw[offMagic]),
		CRC:                  be.Uint32(raw[offCRC:]),
		Attributes:           int16(be.Uint16(raw[offAttributes:])),
		LastOffsetDelta:      int32(be.Uint32(raw[offLastOffsetDelta:])),
		BaseTimestamp:        int64(be.Uint64(raw[offBaseTimestamp:])),
		MaxTimestamp:         int64(be.Uint64(raw[offMaxTimestamp:])),
		ProducerID:           int64(be.Uint64(raw[offProducerID:])),
		ProducerEpoch:        int16(be.Uint16(raw[offProducerEpoch:])),
		BaseSequence:         int32(be.Uint32(raw[offBaseSequence:])),
		RecordCount:          int32(be.Uint32(raw[offRecordCount:])),
	}
}

// BatchTimestamps returns the base and max timestamps of the batch in raw,
// which must be at least BatchHeaderSize bytes (a batch ParseBatch
// accepted, or one a decoded extent holds).
func BatchTimestamps(raw []byte) (base, max int64) {
	be := binary.BigEndian
	return int64(be.Uint64(raw[offBaseTimestamp:])), int64(be.Uint64(raw[offMaxTimestamp:]))
}

// SetBaseOffset sets the baseOffset of the batch in raw. The CRC does not
// cover it, so the batch stays valid. raw must be a batch accepted by
// ParseBatches or returned by DecodeExtent; SetBaseOffset panics if raw is
// shorter than a batch header.
func SetBaseOffset(raw []byte, offset int64) {
	_ = raw[BatchHeaderSize-1]
	binary.BigEndian.PutUint64(raw[offBaseOffset:], uint64(offset))
}

// SetPartitionLeaderEpoch sets the partitionLeaderEpoch of the batch in raw.
// The CRC does not cover it. It panics if raw is shorter than a batch header.
func SetPartitionLeaderEpoch(raw []byte, epoch int32) {
	_ = raw[BatchHeaderSize-1]
	binary.BigEndian.PutUint32(raw[offLeaderEpoch:], uint32(epoch))
}

// SetLogAppendTime stamps the batch in raw with the broker's append time, as
// a Kafka broker does for topics with message.timestamp.type=LogAppendTime:
// it sets the timestamp-type attribute bit and maxTimestamp to ts, then
// recomputes the CRC. (baseTimestamp is left alone; consumers use
// maxTimestamp for every record of such a batch.) It panics if raw is
// shorter than a batch header.
func SetLogAppendTime(raw []byte, ts int64) {
	_ = raw[BatchHeaderSize-1]
	be := binary.BigEndian
	attrs := be.Uint16(raw[offAttributes:])
	be.PutUint16(raw[offAttributes:], attrs|attrLogAppendTime)
	be.PutUint64(raw[offMaxTimestamp:], uint64(ts))
	be.PutUint32(raw[offCRC:], crc32.Checksum(raw[offAttributes:], castagnoli))
}

// SetLogAppendTime stamps b (SetLogAppendTime of b.Raw) and updates its
// parsed fields to match: the timestamp type, maxTimestamp (every
// record's timestamp from now on) and the CRC.
func (b *Batch) SetLogAppendTime(ts int64) {
	SetLogAppendTime(b.Raw, ts)
	b.Attributes |= attrLogAppendTime
	b.CRC = binary.BigEndian.Uint32(b.Raw[offCRC:])
	b.MaxTimestamp = ts
}

// BatchHeader is what a new batch's header says of its records
// (AppendBatch).
type BatchHeader struct {
	// Attributes: the compression codec of Records and flags; a new
	// batch's records are usually uncompressed (0).
	Attributes    int16
	BaseTimestamp int64
	MaxTimestamp  int64
	// ProducerID, ProducerEpoch and BaseSequence: -1, -1, -1 for a batch
	// without a producer (NoProducer).
	ProducerID    int64
	ProducerEpoch int16
	BaseSequence  int32
	// LastOffsetDelta is the offset delta of the last record; RecordCount
	// the number of records.
	LastOffsetDelta int32
	RecordCount     int32
}

// AppendBatch appends a RecordBatch v2 with header h and records (Records
// encoded as AppendRecord writes them, compressed as h.Attributes says) to
// dst: base offset 0 (assigned at commit), partition leader epoch -1, its
// length and CRC filled in.
func AppendBatch(dst []byte, h BatchHeader, records []byte) []byte {
	start := len(dst)
	dst = append(dst, make([]byte, BatchHeaderSize)...)
	dst = append(dst, records...)
	raw := dst[start:]
	be := binary.BigEndian
	be.PutUint64(raw[offBaseOffset:], 0)
	be.PutUint32(raw[offBatchLength:], uint32(len(raw)-batchLengthOverhead))
	be.PutUint32(raw[offLeaderEpoch:], math.MaxUint32)
	raw[offMagic] = BatchMagic
	be.PutUint16(raw[offAttributes:], uint16(h.Attributes))
	be.PutUint32(raw[offLastOffsetDelta:], uint32(h.LastOffsetDelta))
	be.PutUint64(raw[offBaseTimestamp:], uint64(h.BaseTimestamp))
	be.PutUint64(raw[offMaxTimestamp:], uint64(h.MaxTimestamp))
	be.PutUint64(raw[offProducerID:], uint64(h.ProducerID))
	be.PutUint16(raw[offProducerEpoch:], uint16(h.ProducerEpoch))
	be.PutUint32(raw[offBaseSequence:], uint32(h.BaseSequence))
	be.PutUint32(raw[offRecordCount:], uint32(h.RecordCount))
	be.PutUint32(raw[offCRC:], crc32.Checksum(raw[offAttributes:], castagnoli))
	return dst
}

// AppendRecord appends one record in Kafka's v2 record format, without
// headers, to dst: its timestamp and offset deltas from the batch's base
// timestamp and offset, its key and its value (nil: null; a null value is
// a tombstone).
func AppendRecord(dst []byte, tsDelta int64, offsetDelta int32, key, value []byte) []byte {
	n := 1 + varintLen(tsDelta) + varintLen(int64(offsetDelta)) + bytesLen(key) + bytesLen(value) + 1
	dst = binary.AppendVarint(dst, int64(n))
	dst = append(dst, 0) // attributes
	dst = binary.AppendVarint(dst, tsDelta)
	dst = binary.AppendVarint(dst, int64(offsetDelta))
	dst = appendBytes(dst, key)
	dst = appendBytes(dst, value)
	return binary.AppendVarint(dst, 0) // headers
}

// appendBytes appends b as a record field: its length as a varint (-1
// for nil), then b.
func appendBytes(dst, b []byte) []byte {
	if b == nil {
		return binary.AppendVarint(dst, -1)
	}
	dst = binary.AppendVarint(dst, int64(len(b)))
	return append(dst, b...)
}

// bytesLen is the length of b as appendBytes writes it.
func bytesLen(b []byte) int {
	if b == nil {
		return varintLen(-1)
	}
	return varintLen(int64(len(b))) + len(b)
}

// varintLen is the length of v as a zigzag varint.
func varintLen(v int64) int {
	var b [binary.MaxVarintLen64]byte
	return binary.PutVarint(b[:], v)
}
