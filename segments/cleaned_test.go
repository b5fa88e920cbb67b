package segments

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"
)

// recordWithHeader encodes a v2 record with one header.
func recordWithHeader(tsDelta int64, od int32, key, value []byte, hk, hv string) []byte {
	var body []byte
	body = append(body, 0)
	body = binary.AppendVarint(body, tsDelta)
	body = binary.AppendVarint(body, int64(od))
	body = appendBytes(body, key)
	body = appendBytes(body, value)
	body = binary.AppendVarint(body, 1)
	body = appendBytes(body, []byte(hk))
	body = appendBytes(body, []byte(hv))
	return append(binary.AppendVarint(nil, int64(len(body))), body...)
}

// A cleaned batch keeps its records' offsets, fields and headers, moves
// its base sequence with its base, and stays a valid batch; one with
// every record kept and no shift is the batch itself.
func TestAppendCleaned(t *testing.T) {
	var recs []byte
	for i := range 6 {
		var v []byte
		if i != 4 {
			v = fmt.Appendf(nil, "v%d", i)
		}
		recs = append(recs, recordWithHeader(int64(i*10), int32(i), fmt.Appendf(nil, "k%d", i), v, "h", fmt.Sprint(i))...)
	}
	h := BatchHeader{BaseTimestamp: 1000, MaxTimestamp: 1050, ProducerID: 7, ProducerEpoch: 1, BaseSequence: 100, LastOffsetDelta: 5, RecordCount: 6}
	b, err := ParseBatch(AppendBatch(nil, h, recs))
	if err != nil {
		t.Fatal(err)
	}

	same, kept, err := AppendCleaned(nil, &b, CleanedBatch{LastOffsetDelta: 5, Keep: func(Record) bool { return true }})
	if err != nil || kept != 6 || !bytes.Equal(same, b.Raw) {
		t.Fatalf("all kept: %d records, err %v, same bytes %v", kept, err, bytes.Equal(same, b.Raw))
	}

	// Keep records 2 and 4 (a tombstone); the base moves down 3 and the
	// batch ends 2 past its last record; record 2 becomes a tombstone.
	out, kept, err := AppendCleaned(nil, &b, CleanedBatch{
		Shift:           3,
		LastOffsetDelta: 3 + 5 + 2,
		Keep:            func(r Record) bool { return r.OffsetDelta == 2 || r.OffsetDelta == 4 },
		Null:            func(r Record) bool { return r.OffsetDelta == 2 },
	})
	if err != nil || kept != 2 {
		t.Fatalf("kept %d, err %v", kept, err)
	}
	if err := ExtendLastOffset(out, 0); err != nil {
		t.Fatal(err)
	}
	c, err := ParseBatch(out)
	if err != nil {
		t.Fatal(err)
	}
	if c.RecordCount != 2 || c.LastOffsetDelta != 10 || c.BaseSequence != 97 || c.MaxTimestamp != 1040 || c.BaseTimestamp != 1000 || c.ProducerID != 7 || c.IsCompressed() {
		t.Fatalf("cleaned batch header %+v", c)
	}
	var got []string
	if err := c.Records(func(r Record) bool {
		got = append(got, fmt.Sprintf("%d %s %v %d %d", r.OffsetDelta, r.Key, r.Value == nil, r.Timestamp, r.Headers))
		return true
	}); err != nil {
		t.Fatal(err)
	}
	want := []string{"5 k2 true 1020 1", "7 k4 true 1040 1"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("records %v, want %v", got, want)
	}

	if err := ExtendLastOffset(out, 5); err != nil {
		t.Fatal(err)
	}
	if c, err = ParseBatch(out); err != nil || c.LastOffsetDelta != 15 {
		t.Fatalf("extended: %+v, %v", c, err)
	}
	if _, _, err := AppendCleaned(nil, &b, CleanedBatch{LastOffsetDelta: 1, Keep: func(Record) bool { return true }}); err == nil {
		t.Fatal("a last offset delta below the last record's was accepted")
	}
	none, kept, err := AppendCleaned(nil, &b, CleanedBatch{LastOffsetDelta: 5, Keep: func(Record) bool { return false }})
	if err != nil || kept != 0 || len(none) != 0 {
		t.Fatalf("none kept: %d bytes, %d records, %v", len(none), kept, err)
	}
}
