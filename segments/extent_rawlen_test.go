package segments

import (
	"errors"
	"testing"
)

func TestExtentRawLenMatchesTheFooter(t *testing.T) {
	for _, codec := range []Codec{CodecZstd, CodecS2, CodecNone} {
		b := NewBuilder(codec)
		for i := range 40 {
			s := batchSpec{records: 1 + i%7, valueSize: 100 + 997*i, seed: uint64(i), random: i%3 == 0}
			batch, err := ParseBatch(makeBatch(t, s))
			if err != nil {
				t.Fatal(err)
			}
			b.Append(PartitionKey{TopicID: testTopic(1), Partition: int32(i % 4)}, batch)
		}
		obj, extents, err := b.Finish()
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range extents {
			got, err := ExtentRawLen(obj[e.Offset:e.End()])
			if err != nil || int64(got) != e.RawBytes {
				t.Errorf("%v extent %v: ExtentRawLen = %d, %v; footer says %d", codec, e.Key, got, err, e.RawBytes)
			}
		}
		if _, err := ExtentRawLen(obj[extents[0].Offset : extents[0].Offset+10]); !errors.Is(err, ErrCorruptSegment) {
			t.Errorf("%v: truncated chunk header: %v, want ErrCorruptSegment", codec, err)
		}
	}
}
