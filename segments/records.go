package segments

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// Reading a batch's records.
//
// A record (Kafka's v2 record format, as AppendRecord writes it) is:
//
//	length          varint  bytes after this field
//	attributes      int8    unused
//	timestampDelta  varlong from the batch's baseTimestamp
//	offsetDelta     varint  from the batch's baseOffset
//	key, value, headers
//
// All varints are zigzag encoded. A batch's records follow its header,
// compressed as a whole when the attributes name a codec: gzip, snappy
// (a raw block, or the Java client's xerial framing), lz4 (the frame
// format) or zstd.
//
// Kafka defines baseTimestamp as the first record's timestamp (producers
// write the first record with timestampDelta 0) and maxTimestamp as the
// largest. In a LogAppendTime batch every record's timestamp is the
// batch's maxTimestamp, whatever its delta says.

// MaxRecordsSize is the most a batch's compressed records may decompress
// to for RecordTimes to read them, which bounds the memory reading one
// batch takes: 64 times a batch of the default max.message.bytes (1 MiB).
const MaxRecordsSize = 64 << 20

// FirstTimestamp returns the timestamp of the batch's first record, at
// its base offset, when the header tells it without reading the records:
// the batch has a record at every offset it spans (as every produced
// batch does; one a cleaner compacted may not), and its first record's
// timestamp is the max timestamp of a LogAppendTime batch, else the base
// timestamp (unless the delete-horizon attribute repurposes it). ok is
// false when only the records tell.
func (b *Batch) FirstTimestamp() (ts int64, ok bool) {
	switch {
	case int64(b.RecordCount) != b.OffsetSpan():
		return 0, false
	case b.LogAppendTime():
		return b.MaxTimestamp, true
	case b.Attributes&attrDeleteHorizon != 0:
		return 0, false
	}
	return b.BaseTimestamp, true
}

// Record is one record of a batch, as Records reads it. Its slices point
// into the batch, or into the records Records decompressed: they are
// valid during the callback only.
type Record struct {
	// OffsetDelta is the record's offset less the batch's base offset.
	OffsetDelta int32
	// Timestamp is the record's timestamp (the batch's max timestamp in
	// a LogAppendTime batch).
	Timestamp int64
	// Key and Value are nil when null (a null value is a tombstone).
	Key, Value []byte
	// Headers is how many headers the record has.
	Headers int
	// Raw is the whole record, its length field first.
	Raw []byte
	// headers are the record's encoded headers, after their count.
	headers []byte
}

// EachHeader calls fn with each of the record's headers, in order, until
// fn returns false. The value is nil when null. The bytes alias the
// batch's and must not be kept beyond it.
func (r Record) EachHeader(fn func(key, value []byte) bool) {
	body := r.headers
	for range r.Headers {
		// readRecord checked every header: these cannot fail.
		k, rest, _ := readNullableBytes(body, "header key")
		v, rest, _ := readNullableBytes(rest, "header value")
		body = rest
		if !fn(k, v) {
			return
		}
	}
}

// Records calls fn with each record, in the order the batch holds them,
// until fn returns false.
//
// Records a client compressed are decompressed first, all of them, into
// memory Records allocates: at most MaxRecordsSize bytes, else
// ErrInvalidBatch. Records that do not decode (a length that does not
// match the fields, a key, value or header that does not fit), fewer or
// more than the record count, or an offset delta outside
// 0..lastOffsetDelta are ErrCorruptBatch. b must be a batch ParseBatch
// accepted.
func (b *Batch) Records(fn func(Record) bool) error {
	if len(b.Raw) < BatchHeaderSize {
		return fmt.Errorf("%w: %d bytes, a batch header needs %d", ErrCorruptBatch, len(b.Raw), BatchHeaderSize)
	}
	c := b.Compression()
	data, err := decompressRecords(c, b.Raw[BatchHeaderSize:])
	if err != nil {
		return err
	}
	for i := range b.RecordCount {
		r, err := readRecord(data)
		if err != nil {
			return fmt.Errorf("record %d of %d (%v): %w", i, b.RecordCount, c, err)
		}
		if r.OffsetDelta < 0 || r.OffsetDelta > b.LastOffsetDelta {
			return fmt.Errorf("%w: record %d has offset delta %d, the batch spans 0..%d", ErrCorruptBatch, i, r.OffsetDelta, b.LastOffsetDelta)
		}
		r.Timestamp += b.BaseTimestamp
		if b.LogAppendTime() {
			r.Timestamp = b.MaxTimestamp
		}
		if !fn(r) {
			return nil
		}
		data = data[len(r.Raw):]
	}
	if len(data) != 0 {
		return fmt.Errorf("%w: %d bytes after the batch's %d records (%v)", ErrCorruptBatch, len(data), b.RecordCount, c)
	}
	return nil
}

// RecordTimes calls fn with each record's offset delta (its offset less
// the batch's base offset) and timestamp, in the order the batch holds
// them, until fn returns false, as Records reads them.
func (b *Batch) RecordTimes(fn func(offsetDelta int32, timestamp int64) bool) error {
	return b.Records(func(r Record) bool { return fn(r.OffsetDelta, r.Timestamp) })
}

// readRecord reads the record at the start of data, its timestamp as a
// delta from the batch's base timestamp.
func readRecord(data []byte) (Record, error) {
	length, n := binary.Varint(data)
	if n <= 0 || length < 0 || length > int64(len(data)-n) {
		return Record{}, fmt.Errorf("%w: record length does not fit the %d bytes left", ErrCorruptBatch, len(data))
	}
	r := Record{Raw: data[:n+int(length)]}
	body := data[n : n+int(length)]
	if len(body) == 0 {
		return Record{}, fmt.Errorf("%w: empty record", ErrCorruptBatch)
	}
	body = body[1:] // attributes
	tsDelta, k := binary.Varint(body)
	if k <= 0 {
		return Record{}, fmt.Errorf("%w: record timestamp delta does not decode", ErrCorruptBatch)
	}
	body = body[k:]
	od, k := binary.Varint(body)
	if k <= 0 || od < math.MinInt32 || od > math.MaxInt32 {
		return Record{}, fmt.Errorf("%w: record offset delta does not decode", ErrCorruptBatch)
	}
	body = body[k:]
	r.Timestamp, r.OffsetDelta = tsDelta, int32(od)
	var err error
	if r.Key, body, err = readNullableBytes(body, "key"); err != nil {
		return Record{}, err
	}
	if r.Value, body, err = readNullableBytes(body, "value"); err != nil {
		return Record{}, err
	}
	headers, k := binary.Varint(body)
	if k <= 0 || headers < 0 || headers > int64(len(body)) {
		return Record{}, fmt.Errorf("%w: record header count does not decode", ErrCorruptBatch)
	}
	body = body[k:]
	r.Headers, r.headers = int(headers), body
	for range headers {
		var hk []byte
		if hk, body, err = readNullableBytes(body, "header key"); err != nil {
			return Record{}, err
		}
		if hk == nil {
			return Record{}, fmt.Errorf("%w: a record header has a null key", ErrCorruptBatch)
		}
		if _, body, err = readNullableBytes(body, "header value"); err != nil {
			return Record{}, err
		}
	}
	if len(body) != 0 {
		return Record{}, fmt.Errorf("%w: %d bytes after a record's fields, within its length", ErrCorruptBatch, len(body))
	}
	return r, nil
}

// readNullableBytes reads a varint length (-1: null) and that many bytes
// from the start of data, and returns them and what follows.
func readNullableBytes(data []byte, what string) (field, rest []byte, err error) {
	l, k := binary.Varint(data)
	switch {
	case k <= 0:
		return nil, nil, fmt.Errorf("%w: record %s length does not decode", ErrCorruptBatch, what)
	case l == -1:
		return nil, data[k:], nil
	case l < 0 || l > int64(len(data)-k):
		return nil, nil, fmt.Errorf("%w: record %s of %d bytes does not fit the %d left", ErrCorruptBatch, what, l, len(data)-k)
	}
	return data[k : k+int(l) : k+int(l)], data[k+int(l):], nil
}

// decompressRecords returns a batch's records field decompressed with c:
// data itself when c is CompressionNone.
func decompressRecords(c BatchCompression, data []byte) ([]byte, error) {
	var (
		out []byte
		err error
	)
	switch c {
	case CompressionNone:
		return data, nil
	case CompressionGzip:
		var zr *gzip.Reader
		if zr, err = gzip.NewReader(bytes.NewReader(data)); err == nil {
			out, err = readRecords(zr)
		}
	case CompressionSnappy:
		out, err = decodeSnappy(data)
	case CompressionLZ4:
		out, err = readRecords(lz4.NewReader(bytes.NewReader(data)))
	case CompressionZstd:
		var dec *zstd.Decoder
		if dec, err = batchZstdDecoder(); err == nil {
			out, err = dec.DecodeAll(data, nil)
			if errors.Is(err, zstd.ErrDecoderSizeExceeded) {
				return nil, errRecordsTooLarge
			}
		}
	default:
		return nil, fmt.Errorf("%w: unknown compression codec %d", ErrInvalidBatch, c)
	}
	switch {
	case errors.Is(err, errRecordsTooLarge):
		return nil, err
	case err != nil:
		return nil, fmt.Errorf("%w: decompressing %v records: %v", ErrCorruptBatch, c, err)
	}
	return out, nil
}

// readRecords reads r to its end: at most MaxRecordsSize bytes.
func readRecords(r io.Reader) ([]byte, error) {
	var buf bytes.Buffer
	n, err := buf.ReadFrom(io.LimitReader(r, MaxRecordsSize+1))
	if err != nil {
		return nil, err
	}
	if n > MaxRecordsSize {
		return nil, errRecordsTooLarge
	}
	return buf.Bytes(), nil
}

// xerialMagic starts snappy data in the framing of the Java client
// (snappy-java's SnappyOutputStream): the magic, a version and a minimum
// compatible version (4 bytes each, 16 in all), then blocks of a
// big-endian 4-byte length and a raw snappy block.
var xerialMagic = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

const xerialHeaderSize = 16

// decodeSnappy decodes a raw snappy block or xerial-framed blocks,
// checking the sizes they declare before allocating.
func decodeSnappy(data []byte) ([]byte, error) {
	if len(data) < xerialHeaderSize || !bytes.HasPrefix(data, xerialMagic) {
		n, err := s2.DecodedLen(data)
		if err != nil {
			return nil, err
		}
		if n > MaxRecordsSize {
			return nil, errRecordsTooLarge
		}
		return s2.Decode(make([]byte, n), data)
	}
	blocks := data[xerialHeaderSize:]
	total := 0
	for rest := blocks; len(rest) > 0; {
		block, next, err := xerialBlock(rest)
		if err != nil {
			return nil, err
		}
		n, err := s2.DecodedLen(block)
		if err != nil {
			return nil, err
		}
		if total += n; total > MaxRecordsSize {
			return nil, errRecordsTooLarge
		}
		rest = next
	}
	out := make([]byte, 0, total)
	for rest := blocks; len(rest) > 0; {
		block, next, _ := xerialBlock(rest)
		n, _ := s2.DecodedLen(block)
		if _, err := s2.Decode(out[len(out):len(out)+n], block); err != nil {
			return nil, err
		}
		out = out[:len(out)+n]
		rest = next
	}
	return out, nil
}

// xerialBlock splits the xerial block at the start of data from the rest.
func xerialBlock(data []byte) (block, rest []byte, err error) {
	if len(data) < 4 {
		return nil, nil, errors.New("truncated xerial block length")
	}
	n := binary.BigEndian.Uint32(data)
	if uint64(n) > uint64(len(data)-4) {
		return nil, nil, fmt.Errorf("xerial block of %d bytes, %d left", n, len(data)-4)
	}
	return data[4 : 4+n], data[4+n:], nil
}

var (
	batchZstdOnce sync.Once
	batchZstdDec  *zstd.Decoder
	batchZstdErr  error
)

// batchZstdDecoder returns the process-wide zstd decoder of client
// batches' records. Unlike the chunk decoder, which decodes into the
// capacity it is given, it grows its output as a frame needs (a client's
// frame need not declare its size), up to MaxRecordsSize.
func batchZstdDecoder() (*zstd.Decoder, error) {
	batchZstdOnce.Do(func() {
		batchZstdDec, batchZstdErr = zstd.NewReader(nil,
			zstd.WithDecoderMaxMemory(MaxRecordsSize),
			zstd.WithDecoderLowmem(true),
		)
		if batchZstdErr != nil {
			batchZstdErr = fmt.Errorf("creating zstd decoder: %w", batchZstdErr)
		}
	})
	return batchZstdDec, batchZstdErr
}
