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

// RecordTimes calls fn with each record's offset delta (its offset less
// the batch's base offset) and timestamp, in the order the batch holds
// them, until fn returns false. A LogAppendTime batch's records all have
// its max timestamp.
//
// Records a client compressed are decompressed first, all of them, into
// memory RecordTimes allocates: at most MaxRecordsSize bytes, else
// ErrInvalidBatch. Records that do not decode, fewer or more than the
// record count, or an offset delta outside 0..lastOffsetDelta are
// ErrCorruptBatch. b must be a batch ParseBatch accepted.
func (b *Batch) RecordTimes(fn func(offsetDelta int32, timestamp int64) bool) error {
	if len(b.Raw) < BatchHeaderSize {
		return fmt.Errorf("%w: %d bytes, a batch header needs %d", ErrCorruptBatch, len(b.Raw), BatchHeaderSize)
	}
	c := b.Compression()
	data, err := decompressRecords(c, b.Raw[BatchHeaderSize:])
	if err != nil {
		return err
	}
	for i := range b.RecordCount {
		tsDelta, offsetDelta, n, err := readRecordTime(data)
		if err != nil {
			return fmt.Errorf("record %d of %d (%v): %w", i, b.RecordCount, c, err)
		}
		if offsetDelta < 0 || offsetDelta > b.LastOffsetDelta {
			return fmt.Errorf("%w: record %d has offset delta %d, the batch spans 0..%d", ErrCorruptBatch, i, offsetDelta, b.LastOffsetDelta)
		}
		ts := b.BaseTimestamp + tsDelta
		if b.LogAppendTime() {
			ts = b.MaxTimestamp
		}
		if !fn(offsetDelta, ts) {
			return nil
		}
		data = data[n:]
	}
	if len(data) != 0 {
		return fmt.Errorf("%w: %d bytes after the batch's %d records (%v)", ErrCorruptBatch, len(data), b.RecordCount, c)
	}
	return nil
}

// readRecordTime reads the record at the start of data: its timestamp
// and offset deltas, and its size with its length field.
func readRecordTime(data []byte) (tsDelta int64, offsetDelta int32, size int, err error) {
	length, n := binary.Varint(data)
	if n <= 0 || length < 0 || length > int64(len(data)-n) {
		return 0, 0, 0, fmt.Errorf("%w: record length does not fit the %d bytes left", ErrCorruptBatch, len(data))
	}
	body := data[n : n+int(length)]
	if len(body) == 0 {
		return 0, 0, 0, fmt.Errorf("%w: empty record", ErrCorruptBatch)
	}
	body = body[1:] // attributes
	tsDelta, k := binary.Varint(body)
	if k <= 0 {
		return 0, 0, 0, fmt.Errorf("%w: record timestamp delta does not decode", ErrCorruptBatch)
	}
	od, k2 := binary.Varint(body[k:])
	if k2 <= 0 || od < math.MinInt32 || od > math.MaxInt32 {
		return 0, 0, 0, fmt.Errorf("%w: record offset delta does not decode", ErrCorruptBatch)
	}
	return tsDelta, int32(od), n + int(length), nil
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
