package segments

import (
	"errors"
	"reflect"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// compactedBatch is a batch as a log cleaner leaves it: two records at
// offset deltas 0 and 4, so it spans five offsets with two records.
func compactedBatch(t *testing.T) Batch {
	t.Helper()
	body := AppendRecord(nil, 0, 0, []byte("a"), []byte("kept"))
	body = AppendRecord(body, 3, 4, []byte("b"), nil)
	raw := AppendBatch(nil, BatchHeader{
		BaseTimestamp: 1_700_000_000_000, MaxTimestamp: 1_700_000_000_003,
		ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1,
		LastOffsetDelta: 4, RecordCount: 2,
	}, body)
	b, err := ParseBatch(raw)
	if err != nil {
		t.Fatalf("a compacted batch: %v", err)
	}
	if b.OffsetSpan() != 5 || b.NumRecords() != 2 {
		t.Fatalf("span %d, records %d", b.OffsetSpan(), b.NumRecords())
	}
	return b
}

// A batch whose record count is below its offset span takes its whole
// span: the batches after it start after its last offset, in the extent's
// record count (the offsets a commit assigns) and when read back.
func TestReadExtentAssignsOffsetSpans(t *testing.T) {
	produced := func(n int) Batch {
		b, err := ParseBatch(makeBatch(t, batchSpec{records: n, valueSize: 10, seed: uint64(n)}))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	k := PartitionKey{Partition: 3}
	for _, codec := range []Codec{CodecNone, CodecZstd} {
		bld := NewBuilder(codec)
		bld.Append(k, produced(3))       // offsets 100-102
		bld.Append(k, compactedBatch(t)) // 103-107, records at 103 and 107
		bld.Append(k, produced(2))       // 108-109
		obj, extents, err := bld.Finish()
		if err != nil {
			t.Fatal(err)
		}
		x := extents[0]
		if x.Records != 10 {
			t.Fatalf("extent spans %d offsets, want 10", x.Records)
		}
		data := obj[x.Offset : x.Offset+x.Length]

		type span struct{ base, last int64 }
		var got []span
		arena, next, err := ReadExtent(data, 100, nil, nil, func(b AssignedBatch) error {
			got = append(got, span{b.Base, b.Last})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		want := []span{{100, 102}, {103, 107}, {108, 109}}
		if next != 110 || len(got) != 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
			t.Fatalf("codec %v: batches at %v, next %d; want %v, next 110", codec, got, next, want)
		}

		// A consumer reads the records at their offsets.
		rp := kmsg.FetchResponseTopicPartition{HighWatermark: next, LastStableOffset: next, RecordBatches: arena}
		fp, _ := kgo.ProcessFetchPartition(kgo.ProcessFetchPartitionOpts{Topic: "t", Offset: 100}, &rp, kgo.DefaultDecompressor(), nil)
		if fp.Err != nil {
			t.Fatal(fp.Err)
		}
		var offsets []int64
		for _, r := range fp.Records {
			offsets = append(offsets, r.Offset)
		}
		wantOffsets := []int64{100, 101, 102, 103, 107, 108, 109}
		if len(offsets) != len(wantOffsets) {
			t.Fatalf("codec %v: records at %v, want %v", codec, offsets, wantOffsets)
		}
		for i := range offsets {
			if offsets[i] != wantOffsets[i] {
				t.Fatalf("codec %v: records at %v, want %v", codec, offsets, wantOffsets)
			}
		}
		if r := fp.Records[4]; string(r.Key) != "b" || r.Value != nil {
			t.Fatalf("the tombstone reads back as key %q value %q", r.Key, r.Value)
		}

		// Skipped batches take no offsets.
		_, next, err = ReadExtent(data, 100, []int32{1}, nil, func(b AssignedBatch) error {
			if b.Ordinal == 1 {
				t.Fatal("a skipped batch was read")
			}
			return nil
		})
		if err != nil || next != 105 {
			t.Fatalf("skipping the compacted batch: next %d, %v; want 105", next, err)
		}
	}
}

// Producers write one offset per record: ParseBatches, which checks what
// a produce request holds, refuses a batch with holes that ParseBatch (for
// what the log holds) accepts.
func TestProducedBatchesHaveNoHoles(t *testing.T) {
	b := compactedBatch(t)
	if _, err := ParseBatches(b.Raw); !errors.Is(err, ErrInvalidBatch) {
		t.Fatalf("a produced batch with holes: %v, want ErrInvalidBatch", err)
	}
}

// SetLogAppendTime on a parsed batch keeps its fields in step with its
// bytes.
func TestBatchSetLogAppendTime(t *testing.T) {
	b := compactedBatch(t)
	b.SetLogAppendTime(1_800_000_000_000)
	again, err := ParseBatch(b.Raw)
	if err != nil {
		t.Fatal(err)
	}
	again.Raw, b.Raw = nil, nil
	if !reflect.DeepEqual(again, b) || !b.LogAppendTime() || b.MaxTimestamp != 1_800_000_000_000 {
		t.Fatalf("after SetLogAppendTime: fields %+v, bytes say %+v", b, again)
	}
}
