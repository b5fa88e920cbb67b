package segments

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// batchSpec describes a RecordBatch for tests. makeBatch builds it with
// franz-go's own record encoding and compressors, so the batches are what a
// real client sends.
type batchSpec struct {
	compression BatchCompression
	records     int
	valueSize   int
	baseTS      int64
	seed        uint64
	attrs       int16 // extra attribute bits (transactional, control)
	random      bool  // incompressible values
}

var testCompressors = map[BatchCompression]kgo.CompressionCodec{
	CompressionGzip:   kgo.GzipCompression(),
	CompressionSnappy: kgo.SnappyCompression(),
	CompressionLZ4:    kgo.Lz4Compression(),
	CompressionZstd:   kgo.ZstdCompression(),
}

var words = strings.Fields(`floe kafka segment partition offset produce fetch
	agent etcd object bucket chunk extent footer trailer record batch zstd s2
	compactor consumer group topic leader epoch timestamp header value key`)

// testValue returns n bytes of text-like, compressible data (or random
// bytes), deterministic in rng.
func testValue(rng *rand.Rand, n int, random bool) []byte {
	v := make([]byte, 0, n+16)
	if random {
		for len(v) < n {
			v = binary.LittleEndian.AppendUint64(v, rng.Uint64())
		}
		return v[:n]
	}
	for len(v) < n {
		v = append(v, words[rng.IntN(len(words))]...)
		v = append(v, ' ')
		if rng.IntN(8) == 0 {
			v = fmt.Appendf(v, "%d ", rng.IntN(100000))
		}
	}
	return v[:n]
}

// recordValue is the value of record i of a batch built from spec s; tests
// compare what a consumer decodes with it.
func (s batchSpec) recordValue(i int) []byte {
	rng := rand.New(rand.NewPCG(s.seed, uint64(i)))
	return testValue(rng, s.valueSize, s.random)
}

func makeBatch(tb testing.TB, s batchSpec) []byte {
	tb.Helper()
	var recs []byte
	for i := range s.records {
		r := kmsg.Record{
			TimestampDelta64: int64(i),
			OffsetDelta:      int32(i),
			Key:              fmt.Appendf(nil, "key-%d", i),
			Value:            s.recordValue(i),
		}
		r.Length = int32(len(r.AppendTo(nil)) - 1) // a zero Length is one varint byte
		recs = r.AppendTo(recs)
	}
	if s.compression != CompressionNone {
		c, err := kgo.DefaultCompressor(testCompressors[s.compression])
		if err != nil {
			tb.Fatal(err)
		}
		var buf bytes.Buffer
		out, used := c.Compress(&buf, recs)
		if int8(used) != int8(s.compression) {
			tb.Fatalf("franz-go compressed with %d, want %v", used, s.compression)
		}
		recs = bytes.Clone(out)
	}
	rb := kmsg.RecordBatch{
		PartitionLeaderEpoch: -1,
		Magic:                2,
		Attributes:           int16(s.compression) | s.attrs,
		LastOffsetDelta:      int32(s.records - 1),
		FirstTimestamp:       s.baseTS,
		MaxTimestamp:         s.baseTS + int64(s.records-1),
		ProducerID:           -1,
		ProducerEpoch:        -1,
		FirstSequence:        -1,
		NumRecords:           int32(s.records),
		Records:              recs,
	}
	raw := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[offBatchLength:], uint32(len(raw)-batchLengthOverhead))
	fixCRC(raw)
	return raw
}

// rawBatch builds a batch without franz-go, quickly: its records field is
// body as is, which is fine for everything that does not decode records.
func rawBatch(body []byte, attrs int16, records int32, baseTS int64) []byte {
	raw := make([]byte, BatchHeaderSize, BatchHeaderSize+len(body))
	be := binary.BigEndian
	be.PutUint32(raw[offBatchLength:], uint32(BatchHeaderSize-batchLengthOverhead+len(body)))
	be.PutUint32(raw[offLeaderEpoch:], math.MaxUint32)
	raw[offMagic] = BatchMagic
	be.PutUint16(raw[offAttributes:], uint16(attrs))
	be.PutUint32(raw[offLastOffsetDelta:], uint32(records-1))
	be.PutUint64(raw[offBaseTimestamp:], uint64(baseTS))
	be.PutUint64(raw[offMaxTimestamp:], uint64(baseTS+int64(records)-1))
	be.PutUint64(raw[offProducerID:], math.MaxUint64)
	be.PutUint16(raw[offProducerEpoch:], math.MaxUint16)
	be.PutUint32(raw[offBaseSequence:], math.MaxUint32)
	be.PutUint32(raw[offRecordCount:], uint32(records))
	raw = append(raw, body...)
	fixCRC(raw)
	return raw
}

func fixCRC(raw []byte) {
	binary.BigEndian.PutUint32(raw[offCRC:], crc32.Checksum(raw[offAttributes:], castagnoli))
}

// consume decodes batches the way a Kafka consumer does, with franz-go,
// after giving them consecutive offsets from base, and returns the records.
func consume(tb testing.TB, base int64, batches [][]byte) []*kgo.Record {
	tb.Helper()
	var fetched []byte
	next := base
	for _, b := range batches {
		b = bytes.Clone(b)
		SetBaseOffset(b, next)
		next += int64(binary.BigEndian.Uint32(b[offRecordCount:]))
		fetched = append(fetched, b...)
	}
	rp := kmsg.FetchResponseTopicPartition{
		HighWatermark:    next,
		LastStableOffset: next,
		RecordBatches:    fetched,
	}
	fp, _ := kgo.ProcessFetchPartition(kgo.ProcessFetchPartitionOpts{Topic: "t", Offset: base}, &rp, kgo.DefaultDecompressor(), nil)
	if fp.Err != nil {
		tb.Fatalf("franz-go rejected the batches: %v", fp.Err)
	}
	return fp.Records
}

func TestParseBatches(t *testing.T) {
	specs := []batchSpec{
		{compression: CompressionNone, records: 3, valueSize: 100, baseTS: 1000, seed: 1},
		{compression: CompressionGzip, records: 5, valueSize: 300, baseTS: 2000, seed: 2},
		{compression: CompressionSnappy, records: 1, valueSize: 10, baseTS: 3000, seed: 3},
		{compression: CompressionLZ4, records: 7, valueSize: 500, baseTS: 4000, seed: 4, attrs: attrTransactional},
		{compression: CompressionZstd, records: 2, valueSize: 50, baseTS: 5000, seed: 5},
	}
	var records []byte
	var raws [][]byte
	for _, s := range specs {
		raw := makeBatch(t, s)
		raws = append(raws, raw)
		records = append(records, raw...)
	}
	batches, err := ParseBatches(records)
	if err != nil {
		t.Fatal(err)
	}
	if len(batches) != len(specs) {
		t.Fatalf("got %d batches, want %d", len(batches), len(specs))
	}
	pos := 0
	for i, b := range batches {
		s := specs[i]
		if !bytes.Equal(b.Raw, raws[i]) {
			t.Errorf("batch %d: raw differs", i)
		}
		if &b.Raw[0] != &records[pos] {
			t.Errorf("batch %d: Raw is a copy, want an alias of the input", i)
		}
		pos += len(b.Raw)
		if b.Compression() != s.compression || b.IsCompressed() != (s.compression != CompressionNone) {
			t.Errorf("batch %d: compression %v compressed %v, want %v", i, b.Compression(), b.IsCompressed(), s.compression)
		}
		if b.NumRecords() != int32(s.records) || b.LastOffsetDelta != int32(s.records-1) {
			t.Errorf("batch %d: %d records, lastOffsetDelta %d", i, b.NumRecords(), b.LastOffsetDelta)
		}
		if b.BaseTimestamp != s.baseTS || b.MaxTimestamp != s.baseTS+int64(s.records-1) {
			t.Errorf("batch %d: timestamps %d..%d", i, b.BaseTimestamp, b.MaxTimestamp)
		}
		if b.Magic != 2 || b.BatchLength != int32(len(b.Raw)-12) || b.PartitionLeaderEpoch != -1 ||
			b.ProducerID != -1 || b.ProducerEpoch != -1 || b.BaseSequence != -1 || b.BaseOffset != 0 {
			t.Errorf("batch %d: header %+v", i, b)
		}
		if b.Transactional() != (s.attrs&attrTransactional != 0) || b.Control() || b.LogAppendTime() {
			t.Errorf("batch %d: attributes %#x", i, b.Attributes)
		}
	}
}

func TestParseBatchesErrors(t *testing.T) {
	good := makeBatch(t, batchSpec{records: 4, valueSize: 64, baseTS: 1, seed: 9})
	edit := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	be := binary.BigEndian
	tests := []struct {
		name    string
		records []byte
		want    error
	}{
		{"empty", nil, ErrInvalidBatch},
		{"short header", good[:11], ErrInvalidBatch},
		{"truncated", good[:len(good)-1], ErrInvalidBatch},
		{"header only", good[:BatchHeaderSize], ErrInvalidBatch},
		{"trailing partial batch", append(bytes.Clone(good), good[:30]...), ErrInvalidBatch},
		{"trailing garbage", append(bytes.Clone(good), 0, 0, 0), ErrInvalidBatch},
		{"second batch truncated", append(bytes.Clone(good), good[:len(good)-5]...), ErrInvalidBatch},
		{"length overflow", edit(func(b []byte) []byte { be.PutUint32(b[offBatchLength:], math.MaxInt32); return b }), ErrInvalidBatch},
		{"negative length", edit(func(b []byte) []byte { be.PutUint32(b[offBatchLength:], 0xfffffff0); return b }), ErrCorruptBatch},
		{"length below header", edit(func(b []byte) []byte { be.PutUint32(b[offBatchLength:], 20); return b[:32] }), ErrCorruptBatch},
		{"zero length", edit(func(b []byte) []byte { be.PutUint32(b[offBatchLength:], 0); return b[:12] }), ErrCorruptBatch},
		{"bad CRC field", edit(func(b []byte) []byte { b[offCRC] ^= 1; return b }), ErrCorruptBatch},
		{"bad content", edit(func(b []byte) []byte { b[len(b)-1] ^= 0x40; return b }), ErrCorruptBatch},
		{"bad attributes", edit(func(b []byte) []byte { b[offAttributes+1] ^= attrTransactional; return b }), ErrCorruptBatch},
		{"magic 0", edit(func(b []byte) []byte { b[offMagic] = 0; return b }), ErrUnsupportedMagic},
		{"magic 1", edit(func(b []byte) []byte { b[offMagic] = 1; return b }), ErrUnsupportedMagic},
		{"short magic 1 message", edit(func(b []byte) []byte { be.PutUint32(b[offBatchLength:], 22); b[offMagic] = 1; return b[:34] }), ErrUnsupportedMagic},
		{"magic 3", edit(func(b []byte) []byte { b[offMagic] = 3; return b }), ErrCorruptBatch},
		{"magic -1", edit(func(b []byte) []byte { b[offMagic] = 0xff; return b }), ErrCorruptBatch},
		{"record count 0", edit(func(b []byte) []byte {
			be.PutUint32(b[offRecordCount:], 0)
			be.PutUint32(b[offLastOffsetDelta:], math.MaxUint32)
			fixCRC(b)
			return b
		}), ErrInvalidBatch},
		{"negative record count", edit(func(b []byte) []byte { be.PutUint32(b[offRecordCount:], 0xffffff00); fixCRC(b); return b }), ErrInvalidBatch},
		{"lastOffsetDelta too small", edit(func(b []byte) []byte { be.PutUint32(b[offLastOffsetDelta:], 2); fixCRC(b); return b }), ErrInvalidBatch},
		{"lastOffsetDelta too large", edit(func(b []byte) []byte { be.PutUint32(b[offLastOffsetDelta:], 4); fixCRC(b); return b }), ErrInvalidBatch},
		{"unknown compression", edit(func(b []byte) []byte { b[offAttributes+1] |= 5; fixCRC(b); return b }), ErrInvalidBatch},
		{"second batch corrupt", append(bytes.Clone(good), edit(func(b []byte) []byte { b[70] ^= 1; return b })...), ErrCorruptBatch},
	}
	sentinels := []error{ErrInvalidBatch, ErrCorruptBatch, ErrUnsupportedMagic}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			batches, err := ParseBatches(tt.records)
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v (%d batches), want %v", err, len(batches), tt.want)
			}
			for _, s := range sentinels {
				if s != tt.want && errors.Is(err, s) {
					t.Errorf("error %v also matches %v", err, s)
				}
			}
			if batches != nil {
				t.Errorf("got batches with an error")
			}
			if len(tt.records) > 0 && !strings.Contains(err.Error(), " at byte ") {
				t.Errorf("error %q does not say which batch", err)
			}
		})
	}
}

func TestParseBatchExact(t *testing.T) {
	good := makeBatch(t, batchSpec{records: 2, valueSize: 10, seed: 1})
	if _, err := ParseBatch(good); err != nil {
		t.Fatal(err)
	}
	if _, err := ParseBatch(append(bytes.Clone(good), 0)); !errors.Is(err, ErrInvalidBatch) {
		t.Fatalf("extra byte: got %v, want ErrInvalidBatch", err)
	}
}

func TestSetters(t *testing.T) {
	spec := batchSpec{compression: CompressionZstd, records: 5, valueSize: 40, baseTS: 1_700_000_000_000, seed: 4}
	raw := makeBatch(t, spec)

	SetBaseOffset(raw, 1234)
	SetPartitionLeaderEpoch(raw, 7)
	b, err := ParseBatch(raw)
	if err != nil {
		t.Fatalf("after SetBaseOffset and SetPartitionLeaderEpoch: %v", err)
	}
	if b.BaseOffset != 1234 || b.PartitionLeaderEpoch != 7 || b.LogAppendTime() {
		t.Fatalf("header %+v", b)
	}

	const appendTime = 1_800_000_000_000
	SetLogAppendTime(raw, appendTime)
	b, err = ParseBatch(raw)
	if err != nil {
		t.Fatalf("after SetLogAppendTime: %v", err)
	}
	if !b.LogAppendTime() || b.MaxTimestamp != appendTime || b.BaseTimestamp != spec.baseTS ||
		b.Compression() != CompressionZstd || b.BaseOffset != 1234 {
		t.Fatalf("header %+v", b)
	}

	// A consumer sees the append time on every record.
	recs := consume(t, 50, [][]byte{raw})
	if len(recs) != spec.records {
		t.Fatalf("consumer got %d records, want %d", len(recs), spec.records)
	}
	for i, r := range recs {
		if r.Timestamp.UnixMilli() != appendTime || r.Attrs.TimestampType() != 1 {
			t.Errorf("record %d: timestamp %d type %d", i, r.Timestamp.UnixMilli(), r.Attrs.TimestampType())
		}
		if r.Offset != int64(50+i) || !bytes.Equal(r.Value, spec.recordValue(i)) {
			t.Errorf("record %d: offset %d value %q", i, r.Offset, r.Value)
		}
	}

	for name, f := range map[string]func([]byte){
		"SetBaseOffset":           func(b []byte) { SetBaseOffset(b, 1) },
		"SetPartitionLeaderEpoch": func(b []byte) { SetPartitionLeaderEpoch(b, 1) },
		"SetLogAppendTime":        func(b []byte) { SetLogAppendTime(b, 1) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s on a short slice did not panic", name)
				}
			}()
			f(raw[:BatchHeaderSize-1])
		}()
	}
}

func TestBatchCompressionString(t *testing.T) {
	for c, want := range map[BatchCompression]string{
		CompressionNone: "none", CompressionGzip: "gzip", CompressionSnappy: "snappy",
		CompressionLZ4: "lz4", CompressionZstd: "zstd", 6: "BatchCompression(6)",
	} {
		if got := c.String(); got != want {
			t.Errorf("%d: got %q, want %q", c, got, want)
		}
	}
}
