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
	}{{"text", false, false}, {"random", true, false}, {"text/pooled", false, true}, {"random/pooled", true, true}} {
		b.Run(tc.name, func(b *testing.B) {
			var batches []Batch
			var keys []PartitionKey
			raw := 0
			for i := 0; raw < benchObjectSize; i++ {
				s := batchSpec{records: benchRecords, valueSize: benchValueSize, baseTS: int64(i), seed: uint64(i), random: tc.random}
				batch, err := ParseBatch(makeBatch(b, s))
				if err != nil {
					b.Fatal(err)
				}
				batches = append(batches, batch)
				keys = append(keys, PartitionKey{TopicID: testTopic(1), Partition: int32(i % 16)})
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
