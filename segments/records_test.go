package segments

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// recordTime is what RecordTimes reports of a record.
type recordTime struct {
	offsetDelta int32
	ts          int64
}

// timedRecords encodes records with AppendRecord at the given offset
// deltas and timestamps (relative to base), and returns them with the
// batch header that describes them.
func timedRecords(base int64, recs []recordTime) ([]byte, BatchHeader) {
	h := BatchHeader{BaseTimestamp: base, MaxTimestamp: base, ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1, RecordCount: int32(len(recs))}
	var body []byte
	for i, r := range recs {
		body = AppendRecord(body, r.ts-base, r.offsetDelta, fmt.Appendf(nil, "k%d", i), bytes.Repeat([]byte("value "), i%7))
		h.MaxTimestamp = max(h.MaxTimestamp, r.ts)
		h.LastOffsetDelta = r.offsetDelta
	}
	return body, h
}

// compressors encode a records field as a client does, with each codec
// library (and both snappy framings, and zstd with and without the
// frame's content size).
var compressors = []struct {
	name  string
	codec BatchCompression
	fn    func(tb testing.TB, raw []byte) []byte
}{
	{"none", CompressionNone, func(_ testing.TB, raw []byte) []byte { return raw }},
	{"gzip", CompressionGzip, func(tb testing.TB, raw []byte) []byte {
		var buf bytes.Buffer
		w, err := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
		if err != nil {
			tb.Fatal(err)
		}
		writeAll(tb, w, raw)
		return buf.Bytes()
	}},
	{"snappy", CompressionSnappy, func(_ testing.TB, raw []byte) []byte { return s2.EncodeSnappy(nil, raw) }},
	{"snappy-xerial", CompressionSnappy, func(_ testing.TB, raw []byte) []byte { return xerial(raw, max(len(raw)/3, 1)) }},
	{"lz4", CompressionLZ4, func(tb testing.TB, raw []byte) []byte {
		var buf bytes.Buffer
		writeAll(tb, lz4.NewWriter(&buf), raw)
		return buf.Bytes()
	}},
	{"zstd", CompressionZstd, func(tb testing.TB, raw []byte) []byte {
		enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest))
		if err != nil {
			tb.Fatal(err)
		}
		return enc.EncodeAll(raw, nil)
	}},
	{"zstd-stream", CompressionZstd, func(tb testing.TB, raw []byte) []byte {
		var buf bytes.Buffer
		w, err := zstd.NewWriter(&buf, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
		if err != nil {
			tb.Fatal(err)
		}
		writeAll(tb, w, raw)
		return buf.Bytes()
	}},
}

func writeAll(tb testing.TB, w io.WriteCloser, raw []byte) {
	tb.Helper()
	if _, err := w.Write(raw); err != nil {
		tb.Fatal(err)
	}
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
}

// xerialStart returns the header of the Java client's snappy framing:
// the magic, version 1, compatible with version 1.
func xerialStart() []byte { return append(slices.Clone(xerialMagic), 0, 0, 0, 1, 0, 0, 0, 1) }

// xerial frames raw as the Java client does: the header, then raw snappy
// blocks of at most blockSize input bytes, each after its length.
func xerial(raw []byte, blockSize int) []byte {
	out := xerialStart()
	for chunk := range slices.Chunk(raw, blockSize) {
		block := s2.EncodeSnappy(nil, chunk)
		out = binary.BigEndian.AppendUint32(out, uint32(len(block)))
		out = append(out, block...)
	}
	return out
}

// compressedBatch builds a batch of the records encoded in body, as h
// describes them, compressed by c.
func compressedBatch(tb testing.TB, c BatchCompression, compress func(testing.TB, []byte) []byte, body []byte, h BatchHeader) Batch {
	tb.Helper()
	h.Attributes |= int16(c)
	b, err := ParseBatch(AppendBatch(nil, h, compress(tb, body)))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func collectTimes(b *Batch) ([]recordTime, error) {
	var got []recordTime
	err := b.RecordTimes(func(d int32, ts int64) bool {
		got = append(got, recordTime{d, ts})
		return true
	})
	return got, err
}

func TestRecordTimes(t *testing.T) {
	const base = 1_700_000_000_000
	// Records out of timestamp order, one before the base timestamp, and
	// offsets with gaps, as a cleaner leaves them.
	want := []recordTime{{0, base}, {1, base + 5000}, {2, base - 20}, {4, base + 5000}, {5, base + 90}, {9, base + 6000}, {10, base + 1}}
	body, h := timedRecords(base, want)
	for _, c := range compressors {
		t.Run(c.name, func(t *testing.T) {
			b := compressedBatch(t, c.codec, c.fn, body, h)
			got, err := collectTimes(&b)
			if err != nil || !slices.Equal(got, want) {
				t.Fatalf("RecordTimes: %v\n got %v\nwant %v", err, got, want)
			}

			// Stopping early.
			calls := 0
			if err := b.RecordTimes(func(int32, int64) bool { calls++; return calls < 3 }); err != nil || calls != 3 {
				t.Fatalf("stopping after 3 records: %d calls, %v", calls, err)
			}

			// In a LogAppendTime batch every record has its max timestamp.
			b.SetLogAppendTime(base + 99)
			got, err = collectTimes(&b)
			if err != nil || len(got) != len(want) {
				t.Fatalf("LogAppendTime: %v, %v", got, err)
			}
			for i, r := range got {
				if r != (recordTime{want[i].offsetDelta, base + 99}) {
					t.Fatalf("LogAppendTime record %d: %v", i, r)
				}
			}
		})
	}
}

// A batch as franz-go encodes and compresses it, with every codec.
func TestRecordTimesOfFranzGoBatches(t *testing.T) {
	for c := CompressionNone; c <= CompressionZstd; c++ {
		b, err := ParseBatch(makeBatch(t, batchSpec{compression: c, records: 300, valueSize: 500, baseTS: 1000, seed: 7}))
		if err != nil {
			t.Fatal(err)
		}
		got, err := collectTimes(&b)
		if err != nil || len(got) != 300 {
			t.Fatalf("%v: %d records, %v", c, len(got), err)
		}
		for i, r := range got {
			if r != (recordTime{int32(i), 1000 + int64(i)}) {
				t.Fatalf("%v: record %d: %v", c, i, r)
			}
		}
	}
}

func TestFirstTimestamp(t *testing.T) {
	body, h := timedRecords(100, []recordTime{{0, 100}, {1, 90}, {2, 300}})
	cases := []struct {
		name string
		edit func(*BatchHeader)
		ts   int64
		ok   bool
	}{
		{"produced", func(*BatchHeader) {}, 100, true},
		{"log append time", func(h *BatchHeader) { h.Attributes |= attrLogAppendTime; h.MaxTimestamp = 555 }, 555, true},
		{"gaps in its offsets", func(h *BatchHeader) { h.LastOffsetDelta = 7 }, 0, false},
		{"delete horizon", func(h *BatchHeader) { h.Attributes |= attrDeleteHorizon }, 0, false},
	}
	for _, tc := range cases {
		hh := h
		tc.edit(&hh)
		b := compressedBatch(t, CompressionNone, compressors[0].fn, body, hh)
		if ts, ok := b.FirstTimestamp(); ts != tc.ts || ok != tc.ok {
			t.Errorf("%s: FirstTimestamp %d, %v; want %d, %v", tc.name, ts, ok, tc.ts, tc.ok)
		}
	}
}

func TestRecordTimesErrors(t *testing.T) {
	recs := []recordTime{{0, 10}, {1, 11}, {2, 12}}
	body, h := timedRecords(10, recs)
	one := AppendRecord(nil, 0, 0, nil, []byte("v"))
	gap, _ := timedRecords(10, []recordTime{{0, 10}, {5, 11}})
	cases := []struct {
		name  string
		codec BatchCompression
		body  []byte
		edit  func(*BatchHeader)
		want  error
	}{
		{"more records declared than held", CompressionNone, body, func(h *BatchHeader) { h.RecordCount, h.LastOffsetDelta = 4, 3 }, ErrCorruptBatch},
		{"bytes after the last record", CompressionNone, body, func(h *BatchHeader) { h.RecordCount = 2 }, ErrCorruptBatch},
		{"offset delta past lastOffsetDelta", CompressionNone, gap, func(h *BatchHeader) { h.RecordCount, h.LastOffsetDelta = 2, 1 }, ErrCorruptBatch},
		{"negative offset delta", CompressionNone, AppendRecord(nil, 0, -1, nil, nil), func(h *BatchHeader) { h.RecordCount, h.LastOffsetDelta = 1, 0 }, ErrCorruptBatch},
		{"record longer than the batch", CompressionNone, one[:len(one)-1], func(h *BatchHeader) { h.RecordCount, h.LastOffsetDelta = 1, 0 }, ErrCorruptBatch},
		{"empty record", CompressionNone, []byte{0}, func(h *BatchHeader) { h.RecordCount, h.LastOffsetDelta = 1, 0 }, ErrCorruptBatch},
		{"record without its deltas", CompressionNone, []byte{2, 0, 0}, func(h *BatchHeader) { h.RecordCount, h.LastOffsetDelta = 1, 0 }, ErrCorruptBatch},
		{"gzip garbage", CompressionGzip, body, nil, ErrCorruptBatch},
		{"snappy garbage", CompressionSnappy, []byte{5, 0xff, 0xff, 0xff}, nil, ErrCorruptBatch},
		{"xerial block past the end", CompressionSnappy, append(xerial(body, 8), 0, 0, 1, 0, 1), nil, ErrCorruptBatch},
		{"xerial truncated length", CompressionSnappy, append(xerial(body, 8), 0, 0), nil, ErrCorruptBatch},
		{"lz4 garbage", CompressionLZ4, body, nil, ErrCorruptBatch},
		{"zstd garbage", CompressionZstd, body, nil, ErrCorruptBatch},
		{"snappy declaring too much", CompressionSnappy, binary.AppendUvarint(nil, MaxRecordsSize+1), nil, ErrInvalidBatch},
		{"xerial declaring too much", CompressionSnappy, xerialDeclaring(MaxRecordsSize/2 + 1), nil, ErrInvalidBatch},
	}
	for _, tc := range cases {
		hh := h
		if tc.edit != nil {
			tc.edit(&hh)
		}
		b := compressedBatch(t, tc.codec, compressors[0].fn, tc.body, hh)
		if _, err := collectTimes(&b); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}

// xerialDeclaring returns xerial framing of two snappy blocks that each
// declare n bytes (and hold none of them).
func xerialDeclaring(n int) []byte {
	out := xerialStart()
	block := binary.AppendUvarint(nil, uint64(n))
	for range 2 {
		out = binary.BigEndian.AppendUint32(out, uint32(len(block)))
		out = append(out, block...)
	}
	return out
}

// Records that decompress past MaxRecordsSize are refused, whether or
// not the compressed data declares its size.
func TestRecordTimesDecompressionLimit(t *testing.T) {
	zeros := make([]byte, MaxRecordsSize+1)
	for _, c := range compressors {
		if c.codec == CompressionNone {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			b := compressedBatch(t, c.codec, c.fn, zeros, BatchHeader{RecordCount: 1})
			if _, err := collectTimes(&b); !errors.Is(err, ErrInvalidBatch) {
				t.Fatalf("%d bytes of records: %v, want ErrInvalidBatch", len(zeros), err)
			}
		})
	}
}

func FuzzRecordTimes(f *testing.F) {
	body, _ := timedRecords(10, []recordTime{{0, 10}, {1, 5}, {3, 40}})
	for _, c := range compressors {
		f.Add(uint8(c.codec), int32(3), int32(3), c.fn(f, body))
	}
	f.Fuzz(func(t *testing.T, attrs uint8, count, lastDelta int32, records []byte) {
		h := BatchHeader{Attributes: int16(attrs), BaseTimestamp: 10, MaxTimestamp: 40, RecordCount: count, LastOffsetDelta: lastDelta}
		b, err := ParseBatch(AppendBatch(nil, h, records))
		if err != nil {
			return
		}
		calls := int32(0)
		err = b.RecordTimes(func(d int32, _ int64) bool {
			if d < 0 || d > b.LastOffsetDelta {
				t.Fatalf("offset delta %d outside 0..%d", d, b.LastOffsetDelta)
			}
			calls++
			return true
		})
		switch {
		case err != nil && !errors.Is(err, ErrCorruptBatch) && !errors.Is(err, ErrInvalidBatch):
			t.Fatalf("error without a sentinel: %v", err)
		case err == nil && calls != b.RecordCount:
			t.Fatalf("%d records reported, the batch has %d", calls, b.RecordCount)
		}
	})
}

// Records reads keys, values and headers as franz-go's kmsg encodes
// them, null keys and values (tombstones) included, through every codec.
func TestRecords(t *testing.T) {
	type rec struct {
		key, value []byte
		headers    int
	}
	want := []rec{
		{[]byte("k0"), []byte("v0"), 0},
		{nil, []byte("no key"), 1},
		{[]byte("tomb"), nil, 0},
		{[]byte{}, []byte{}, 3},
		{nil, nil, 2},
		{bytes.Repeat([]byte("K"), 300), bytes.Repeat([]byte("V"), 5000), 1},
	}
	var body []byte
	for i, r := range want {
		kr := kmsg.NewRecord()
		kr.TimestampDelta64, kr.OffsetDelta = int64(i*10), int32(i)
		kr.Key, kr.Value = r.key, r.value
		for h := range r.headers {
			kr.Headers = append(kr.Headers, kmsg.Header{Key: fmt.Sprintf("h%d", h), Value: map[bool][]byte{true: nil, false: []byte("hv")}[h == 1]})
		}
		kr.Length = int32(len(kr.AppendTo(nil)) - varintLen(int64(kr.Length)))
		body = kr.AppendTo(body)
	}
	h := BatchHeader{BaseTimestamp: 5000, MaxTimestamp: 5050, ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1, RecordCount: int32(len(want)), LastOffsetDelta: int32(len(want) - 1)}
	for _, c := range compressors {
		t.Run(c.name, func(t *testing.T) {
			b := compressedBatch(t, c.codec, c.fn, body, h)
			i := 0
			err := b.Records(func(r Record) bool {
				w := want[i]
				if r.OffsetDelta != int32(i) || r.Timestamp != 5000+int64(i*10) || !bytes.Equal(r.Key, w.key) || (r.Key == nil) != (w.key == nil) ||
					!bytes.Equal(r.Value, w.value) || (r.Value == nil) != (w.value == nil) || r.Headers != w.headers {
					t.Errorf("record %d: %+v, want key %q value %d bytes (null %v) headers %d", i, r, w.key, len(w.value), w.value == nil, w.headers)
				}
				if l, n := binary.Varint(r.Raw); n <= 0 || int(l)+n != len(r.Raw) {
					t.Errorf("record %d: Raw of %d bytes is not one whole record", i, len(r.Raw))
				}
				h := 0
				r.EachHeader(func(k, v []byte) bool {
					if string(k) != fmt.Sprintf("h%d", h) || (v == nil) != (h == 1) || v != nil && string(v) != "hv" {
						t.Errorf("record %d header %d: %q=%q", i, h, k, v)
					}
					h++
					return true
				})
				if h != w.headers {
					t.Errorf("record %d: %d headers seen, want %d", i, h, w.headers)
				}
				i++
				return true
			})
			if err != nil || i != len(want) {
				t.Fatalf("%d records, %v", i, err)
			}
		})
	}
}

// A record whose fields do not add up to its length is corrupt.
func TestRecordsCorrupt(t *testing.T) {
	good := AppendRecord(nil, 0, 0, []byte("key"), []byte("value"))
	for name, rec := range map[string][]byte{
		"key longer than the record":   append(binary.AppendVarint(nil, 5), 0, 0, 0, 40, 'k'),
		"bytes after the headers":      append(binary.AppendVarint(nil, int64(len(good))), append(slices.Clone(good[1:]), 0)...),
		"header count beyond the data": append(binary.AppendVarint(nil, 6), 0, 0, 0, 1, 1, 20),
		"null header key":              append(binary.AppendVarint(nil, 8), 0, 0, 0, 1, 1, 2, 1, 1),
	} {
		h := BatchHeader{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1, RecordCount: 1}
		b, err := ParseBatch(AppendBatch(nil, h, rec))
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Records(func(Record) bool { return true }); !errors.Is(err, ErrCorruptBatch) {
			t.Errorf("%s: %v, want ErrCorruptBatch", name, err)
		}
	}
}
