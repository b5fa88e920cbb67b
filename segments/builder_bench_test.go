package segments

import (
	"testing"
)

// BenchmarkBuilderPerFlush builds an 8 MiB object of 16 partitions (512
// KiB extents) with a new Builder each time, as the agent does for every
// flush in floe bench's default run (BenchmarkBuilder reuses one, as the
// compactor does), from text-like and from incompressible values:
//
//	go test -run='^$' -bench=BuilderPerFlush -benchmem ./segments/
func BenchmarkBuilderPerFlush(b *testing.B) {
	for _, tc := range []struct {
		name   string
		random bool
		pooled bool // FinishObject and Release, as the agent, instead of Finish
		// partitions the batches are spread over (16 when 0); at 4096 a
		// batch holds two records, as keyed producers of that many
		// partitions send them, and each partition's chunk is a few KiB.
		partitions int
	}{{"text", false, false, 0}, {"random", true, false, 0}, {"text/pooled", false, true, 0}, {"random/pooled", true, true, 0},
		{"text/pooled-4096", false, true, 4096}, {"random/pooled-4096", true, true, 4096}} {
		b.Run(tc.name, func(b *testing.B) {
			var batches []Batch
			var keys []PartitionKey
			raw := 0
			parts, records := 16, benchRecords
			if tc.partitions > 0 {
				parts, records = tc.partitions, 2
			}
			for i := 0; raw < benchObjectSize; i++ {
				s := batchSpec{records: records, valueSize: benchValueSize, baseTS: int64(i), seed: uint64(i), random: tc.random}
				batch, err := ParseBatch(makeBatch(b, s))
				if err != nil {
					b.Fatal(err)
				}
				batches = append(batches, batch)
				keys = append(keys, PartitionKey{TopicID: testTopic(1), Partition: int32(i % parts)})
				raw += len(batch.Raw)
			}
			b.SetBytes(int64(raw))
			b.ReportAllocs()
			var size int
			for b.Loop() {
				builder := NewBuilder(CodecZstd)
				for i := range batches {
					builder.Append(keys[i], batches[i])
				}
				if tc.pooled {
					obj, _, err := builder.FinishObject()
					if err != nil {
						b.Fatal(err)
					}
					size = len(obj.Bytes)
					obj.Release()
					continue
				}
				obj, _, err := builder.Finish()
				if err != nil {
					b.Fatal(err)
				}
				size = len(obj)
			}
			b.ReportMetric(float64(raw)/float64(size), "ratio")
		})
	}
}
