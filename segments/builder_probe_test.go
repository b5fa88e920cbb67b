package segments

import "testing"

// A large chunk of random values is stored as is without compressing it
// all; one of text is compressed; either way the batches read back.
func TestLargeIncompressibleChunksAreStoredAsIs(t *testing.T) {
	for _, tc := range []struct {
		random bool
		want   Codec
	}{{true, CodecNone}, {false, CodecZstd}} {
		b := NewBuilder(CodecZstd)
		var want [][]byte
		raw := 0
		for i := 0; raw < 2*probeMinRaw; i++ {
			batch := makeBatch(t, batchSpec{records: 16, valueSize: 1000, seed: uint64(i), random: tc.random})
			p, err := ParseBatch(batch)
			if err != nil {
				t.Fatal(err)
			}
			b.Append(PartitionKey{TopicID: testTopic(1)}, p)
			want = append(want, batch)
			raw += len(batch)
		}
		obj, extents, err := b.Finish()
		if err != nil {
			t.Fatal(err)
		}
		ext := obj[extents[0].Offset:extents[0].End()]
		if got := Codec(ext[6]); got != tc.want {
			t.Errorf("random=%v: first chunk stored with %v, want %v", tc.random, got, tc.want)
		}
		got, err := DecodeExtentBatches(ext)
		if err != nil || len(got) != len(want) {
			t.Fatalf("random=%v: decoded %d batches, %v; want %d", tc.random, len(got), err, len(want))
		}
		for i := range want {
			if string(got[i]) != string(want[i]) {
				t.Fatalf("random=%v: batch %d differs", tc.random, i)
			}
		}
	}
}
