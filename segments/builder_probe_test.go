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

// A flush over many partitions holds a small chunk of each. A topic whose
// small chunks of random values have not shrunk once probeMinRaw of them
// were compressed has the rest stored without compressing them; a topic of
// text in the same object is compressed throughout; every batch reads back.
func TestSmallIncompressibleChunksStopBeingCompressed(t *testing.T) {
	const parts = 400 // about 2 KiB a chunk: 800 KiB a topic
	random, text := testTopic(1), testTopic(2)
	b := NewBuilder(CodecZstd)
	want := map[PartitionKey][]byte{}
	for p := range int32(parts) {
		for _, topic := range [][16]byte{random, text} {
			batch := makeBatch(t, batchSpec{records: 2, valueSize: 1000, seed: uint64(p)<<1 | uint64(topic[15]&1), random: topic == random})
			pb, err := ParseBatch(batch)
			if err != nil {
				t.Fatal(err)
			}
			k := PartitionKey{TopicID: topic, Partition: p}
			b.Append(k, pb)
			want[k] = batch
		}
	}
	obj, extents, err := b.Finish()
	if err != nil {
		t.Fatal(err)
	}
	compressed := map[[16]byte]int{}
	var chunkRaw int64
	for _, x := range extents {
		ext := obj[x.Offset:x.End()]
		if Codec(ext[6]) == CodecZstd {
			compressed[x.Key.TopicID]++
		}
		if x.Key.TopicID == random {
			chunkRaw = x.RawBytes
		}
		got, err := DecodeExtentBatches(ext)
		if err != nil || len(got) != 1 || string(got[0]) != string(want[x.Key]) {
			t.Fatalf("%v: decoded %d batches, %v", x.Key, len(got), err)
		}
	}
	if compressed[text] != parts || compressed[random] != 0 {
		t.Errorf("chunks stored compressed: %d of %d of text, %d of random values", compressed[text], parts, compressed[random])
	}
	// The random topic's chunks were compressed until probeMinRaw of them
	// had been; the others were not even tried.
	tried := int((probeMinRaw + chunkRaw - 1) / chunkRaw)
	if b.uncompressedSmall != parts-tried {
		t.Errorf("%d small chunks stored without compressing them, want %d (%d of %d bytes compressed first)", b.uncompressedSmall, parts-tried, tried, chunkRaw)
	}
}
