package segments

import "testing"

// A marker AppendControlBatch writes parses as a transactional control
// batch of one record whose type ControlType reads back.
func TestControlBatchRoundTrip(t *testing.T) {
	for _, commit := range []bool{true, false} {
		raw := AppendControlBatch(nil, 42, 3, commit, 7, 1000)
		b, err := ParseBatch(raw)
		if err != nil {
			t.Fatal(err)
		}
		if !b.Control() || !b.Transactional() || b.ProducerID != 42 || b.ProducerEpoch != 3 || b.BaseSequence != -1 || b.RecordCount != 1 {
			t.Fatalf("marker header: %+v", b)
		}
		typ, err := b.ControlType()
		want := ControlAbort
		if commit {
			want = ControlCommit
		}
		if err != nil || typ != want {
			t.Fatalf("ControlType() = %d, %v; want %d", typ, err, want)
		}
	}
	plain, err := ParseBatch(AppendBatch(nil, BatchHeader{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1, RecordCount: 1}, AppendRecord(nil, 0, 0, nil, []byte("v"))))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := plain.ControlType(); err == nil {
		t.Fatal("ControlType of a data batch: no error")
	}
}
