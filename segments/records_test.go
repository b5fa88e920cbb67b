package segments

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/klauspost/compress/s2"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// timestampBatch builds a batch whose records have the given timestamp
// deltas from base, compressed by franz-go as a client would.
func timestampBatch(t *testing.T, c BatchCompression, base int64, deltas ...int64) []byte {
	t.Helper()
	var recs []byte
	for i, d := range deltas {
		r := kmsg.Record{TimestampDelta64: d, OffsetDelta: int32(i), Key: fmt.Appendf(nil, "k%d", i), Value: bytes.Repeat([]byte("v"), 100*i)}
		r.Length = int32(len(r.AppendTo(nil)) - 1)
		recs = r.AppendTo(recs)
	}
	if c != CompressionNone {
		comp, err := kgo.DefaultCompressor(testCompressors[c])
		if err != nil {
			t.Fatal(err)
		}
		out, used := comp.Compress(new(bytes.Buffer), recs)
		if int8(used) != int8(c) {
			t.Fatalf("franz-go compressed with %d, want %v", used, c)
		}
		recs = bytes.Clone(out)
	}
	return rawBatch(recs, int16(c), int32(len(deltas)), base)
}

func recordTimestamps(t *testing.T, raw []byte) ([]int64, error) {
	t.Helper()
	b, err := ParseBatch(raw)
	if err != nil {
		t.Fatal(err)
	}
	var got []int64
	err = b.RecordTimestamps(func(i int, ts int64) error {
		if i != len(got) {
			t.Fatalf("record %d reported as %d", len(got), i)
		}
		got = append(got, ts)
		return nil
	})
	return got, err
}

func TestRecordTimestamps(t *testing.T) {
	deltas := []int64{0, 5, -3_600_000, 86_400_000, 1}
	var want []int64
	for _, d := range deltas {
		want = append(want, 1_700_000_000_000+d)
	}
	for _, c := range []BatchCompression{CompressionNone, CompressionGzip, CompressionSnappy, CompressionLZ4, CompressionZstd} {
		t.Run(c.String(), func(t *testing.T) {
			got, err := recordTimestamps(t, timestampBatch(t, c, 1_700_000_000_000, deltas...))
			if err != nil || !slices.Equal(got, want) {
				t.Fatalf("timestamps %v, %v; want %v", got, err, want)
			}
		})
	}

	t.Run("snappy-java framing", func(t *testing.T) {
		plain := timestampBatch(t, CompressionNone, 1_700_000_000_000, deltas...)
		recs := plain[BatchHeaderSize:]
		framed := append(bytes.Clone(xerialMagic), 0, 0, 0, 1, 0, 0, 0, 1)
		for _, part := range [][]byte{recs[:7], recs[7:]} {
			block := s2.EncodeSnappy(nil, part)
			framed = binary.BigEndian.AppendUint32(framed, uint32(len(block)))
			framed = append(framed, block...)
		}
		got, err := recordTimestamps(t, rawBatch(framed, int16(CompressionSnappy), int32(len(deltas)), 1_700_000_000_000))
		if err != nil || !slices.Equal(got, want) {
			t.Fatalf("timestamps %v, %v; want %v", got, err, want)
		}
	})

	t.Run("LogAppendTime", func(t *testing.T) {
		raw := timestampBatch(t, CompressionNone, 1000, 0, 1, 2)
		SetLogAppendTime(raw, 5000)
		got, err := recordTimestamps(t, raw)
		if err != nil || !slices.Equal(got, []int64{5000, 5000, 5000}) {
			t.Fatalf("timestamps %v, %v", got, err)
		}
	})

	t.Run("fn stops the walk", func(t *testing.T) {
		b, _ := ParseBatch(timestampBatch(t, CompressionLZ4, 0, deltas...))
		stop := errors.New("stop")
		calls := 0
		err := b.RecordTimestamps(func(i int, ts int64) error {
			calls++
			if i == 2 {
				return stop
			}
			return nil
		})
		if err != stop || calls != 3 {
			t.Fatalf("err %v after %d calls", err, calls)
		}
	})

	t.Run("corrupt", func(t *testing.T) {
		plain := timestampBatch(t, CompressionNone, 0, deltas...)
		for name, raw := range map[string][]byte{
			"one record too many":    rawBatch(plain[BatchHeaderSize:], 0, int32(len(deltas)+1), 0),
			"truncated record":       rawBatch(plain[BatchHeaderSize:len(plain)-3], 0, int32(len(deltas)), 0),
			"not gzip":               rawBatch(plain[BatchHeaderSize:], int16(CompressionGzip), int32(len(deltas)), 0),
			"not zstd":               rawBatch(plain[BatchHeaderSize:], int16(CompressionZstd), int32(len(deltas)), 0),
			"snappy claims too much": rawBatch(binary.AppendUvarint(nil, 1<<30), int16(CompressionSnappy), 1, 0),
		} {
			if _, err := recordTimestamps(t, raw); !errors.Is(err, ErrCorruptBatch) {
				t.Errorf("%s: %v, want ErrCorruptBatch", name, err)
			}
		}
	})
}

// FuzzRecordTimestamps feeds arbitrary records fields, under every codec,
// to the record walk: it reports a timestamp per record or
// ErrCorruptBatch, and never panics.
func FuzzRecordTimestamps(f *testing.F) {
	f.Add([]byte{}, uint8(0), int32(1))
	for _, it := range workload(f, 13, 1, 1, 4) {
		b, _ := ParseBatch(it.raw)
		f.Add(it.raw[BatchHeaderSize:], uint8(b.Compression()), b.RecordCount)
	}
	f.Fuzz(func(t *testing.T, body []byte, codec uint8, records int32) {
		if records <= 0 || records > 1000 {
			return
		}
		b, err := ParseBatch(rawBatch(body, int16(codec%5), records, 1000))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		err = b.RecordTimestamps(func(int, int64) error { n++; return nil })
		if err == nil && n != int(records) {
			t.Fatalf("%d timestamps for %d records", n, records)
		}
		if err != nil && !errors.Is(err, ErrCorruptBatch) {
			t.Fatalf("error without a sentinel: %v", err)
		}
	})
}
