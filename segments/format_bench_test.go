package segments

import (
	"fmt"
	"sync"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// Benchmarks: an 8 MiB object of batches of 16 records of 1 KiB text-like
// values over 64 partitions, as an agent flushes it.
//
//	go test -run='^$' -bench=. -benchmem ./segments/

const (
	benchObjectSize = 8 << 20
	benchRecords    = 16
	benchValueSize  = 1 << 10
	benchPartitions = 64
)

var (
	benchOnce sync.Once
	benchData map[BatchCompression][]item
)

// benchItems returns the benchmark batches, uncompressed and compressed by
// the client with zstd, building them on first use.
func benchItems(tb testing.TB) map[BatchCompression][]item {
	benchOnce.Do(func() { benchData = makeBenchItems(tb) })
	return benchData
}

func makeBenchItems(tb testing.TB) map[BatchCompression][]item {
	m := map[BatchCompression][]item{}
	for _, c := range []BatchCompression{CompressionNone, CompressionZstd} {
		var items []item
		for size, i := 0, 0; size < benchObjectSize; i++ {
			s := batchSpec{compression: c, records: benchRecords, valueSize: benchValueSize, baseTS: int64(i), seed: uint64(i)}
			raw := makeBatch(tb, s)
			items = append(items, item{key: PartitionKey{TopicID: testTopic(byte(i % 3)), Partition: int32(i % benchPartitions)}, raw: raw})
			size += len(raw)
		}
		m[c] = items
	}
	return m
}

func BenchmarkBuilder(b *testing.B) {
	for _, tc := range []struct {
		name   string
		codec  Codec
		client BatchCompression
	}{
		{"zstd", CodecZstd, CompressionNone},
		{"s2", CodecS2, CompressionNone},
		{"none", CodecNone, CompressionNone},
		{"client-zstd", CodecZstd, CompressionZstd}, // stored as is
	} {
		b.Run(tc.name, func(b *testing.B) {
			items := benchItems(b)[tc.client]
			batches := make([]Batch, len(items))
			for i, it := range items {
				batches[i], _ = ParseBatch(it.raw)
			}
			builder := NewBuilder(tc.codec)
			var size int
			b.SetBytes(int64(totalRaw(items)))
			b.ReportAllocs()
			for b.Loop() {
				for i, it := range items {
					builder.Append(it.key, batches[i])
				}
				obj, _, err := builder.Finish()
				if err != nil {
					b.Fatal(err)
				}
				size = len(obj)
			}
			b.ReportMetric(float64(totalRaw(items))/float64(size), "ratio")
		})
	}
}

func BenchmarkDecodeExtent(b *testing.B) {
	for _, codec := range []Codec{CodecZstd, CodecS2, CodecNone} {
		b.Run(codec.String(), func(b *testing.B) {
			items := benchItems(b)[CompressionNone]
			builder := NewBuilder(codec)
			for _, it := range items {
				builder.Append(it.key, Batch{Raw: it.raw})
			}
			obj, extents, err := builder.Finish()
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(totalRaw(items)))
			b.ReportAllocs()
			for b.Loop() {
				for _, e := range extents {
					if err := DecodeExtent(obj[e.Offset:e.End()], func(int, []byte) error { return nil }); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

// BenchmarkZstdLevel compares the zstd levels on one 4 MiB chunk; FORMAT.md
// quotes it for the choice of SpeedFastest.
func BenchmarkZstdLevel(b *testing.B) {
	var chunk []byte
	for _, it := range benchItems(b)[CompressionNone] {
		if len(chunk)+len(it.raw) > ChunkTargetRawSize {
			break
		}
		chunk = append(chunk, it.raw...)
	}
	for _, level := range []zstd.EncoderLevel{zstd.SpeedFastest, zstd.SpeedDefault, zstd.SpeedBetterCompression} {
		b.Run(fmt.Sprint(level), func(b *testing.B) {
			enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(level), zstd.WithEncoderConcurrency(1))
			if err != nil {
				b.Fatal(err)
			}
			defer enc.Close()
			var out []byte
			b.SetBytes(int64(len(chunk)))
			for b.Loop() {
				out = enc.EncodeAll(chunk, out[:0])
			}
			b.ReportMetric(float64(len(chunk))/float64(len(out)), "ratio")
		})
	}
}
