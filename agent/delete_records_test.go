package agent_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

func deleteRecords(t *testing.T, adm *kadm.Client, topic string, partition int32, at int64) kadm.DeleteRecordsResponse {
	t.Helper()
	rs, err := adm.DeleteRecords(testCtx(t), kadm.OffsetsList{{Topic: topic, Partition: partition, At: at}}.Offsets())
	if err != nil {
		t.Fatalf("delete records %s/%d at %d: %v", topic, partition, at, err)
	}
	r, ok := rs.Lookup(topic, partition)
	if !ok {
		t.Fatalf("delete records %s/%d: no response", topic, partition)
	}
	return r
}

func TestDeleteRecordsAdvancesLogStart(t *testing.T) {
	c := newTestCluster(t)
	c.addAgent(fastFlush)
	c.addAgent(fastFlush)
	createTopic(t, c, "dr", 2, nil)
	compact := "compact"
	createTopic(t, c, "kept", 1, map[string]*string{"cleanup.policy": &compact})
	cl := c.client()
	adm := kadm.NewClient(cl)
	// Ten batches of two records each: offsets 0-19.
	for i := range 10 {
		if r := produceRaw(t, cl, "dr", 0, recordBatch(-1, -1, -1, fmt.Sprintf("a%d", i), fmt.Sprintf("b%d", i))); r.ErrorCode != 0 {
			t.Fatal(kerr.ErrorForCode(r.ErrorCode))
		}
	}

	// Into the middle of a batch: the low watermark is exactly 7.
	if r := deleteRecords(t, adm, "dr", 0, 7); r.Err != nil || r.LowWatermark != 7 {
		t.Fatalf("delete to 7: %+v", r)
	}
	starts, err := adm.ListStartOffsets(testCtx(t), "dr")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := starts.Lookup("dr", 0); o.Offset != 7 {
		t.Fatalf("earliest after delete: %+v", o)
	}
	if r := fetchRaw(t, cl, "dr", 0, 6, 0); !errors.Is(kerr.ErrorForCode(r.ErrorCode), kerr.OffsetOutOfRange) || r.LogStartOffset != 7 {
		t.Fatalf("fetch below the start: %v, log start %d", kerr.ErrorForCode(r.ErrorCode), r.LogStartOffset)
	}
	if r := fetchRaw(t, cl, "dr", 0, 7, 0); r.ErrorCode != 0 || len(r.RecordBatches) == 0 || r.LogStartOffset != 7 {
		t.Fatalf("fetch at the start: %v, %d bytes", kerr.ErrorForCode(r.ErrorCode), len(r.RecordBatches))
	}
	// Below the start changes nothing; beyond the high watermark is out of
	// range; so is a negative offset other than -1.
	if r := deleteRecords(t, adm, "dr", 0, 3); r.Err != nil || r.LowWatermark != 7 {
		t.Fatalf("delete to 3: %+v", r)
	}
	if r := deleteRecords(t, adm, "dr", 0, 21); !errors.Is(r.Err, kerr.OffsetOutOfRange) {
		t.Fatalf("delete beyond the high watermark: %+v", r)
	}
	if r := deleteRecords(t, adm, "dr", 0, -5); !errors.Is(r.Err, kerr.OffsetOutOfRange) {
		t.Fatalf("delete to -5: %+v", r)
	}
	// A partition never written to: 0 is its high watermark.
	if r := deleteRecords(t, adm, "dr", 1, 0); r.Err != nil || r.LowWatermark != 0 {
		t.Fatalf("empty partition: %+v", r)
	}
	if r := deleteRecords(t, adm, "kept", 0, 0); !errors.Is(r.Err, kerr.PolicyViolation) {
		t.Fatalf("compacted topic: %+v", r)
	}

	// A consumer from the earliest offset reads what is kept, from
	// offset 7 (the straddling batch's leading record is skipped by the
	// client).
	got := consumeAll(t, c, "dr", 13)
	if recs := got[0]; len(recs) != 13 || recs[0].Offset != 7 || string(recs[0].Value) != "b3" {
		t.Fatalf("consumed %d records, first %+v", len(recs), recs[0])
	}

	// -1: everything up to the high watermark.
	if r := deleteRecords(t, adm, "dr", 0, -1); r.Err != nil || r.LowWatermark != 20 {
		t.Fatalf("delete to the high watermark: %+v", r)
	}
	produceRaw(t, cl, "dr", 0, recordBatch(-1, -1, -1, "after"))
	cons := c.client(kgo.ConsumeTopics("dr"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	fs := cons.PollFetches(testCtx(t))
	if err := fs.Err(); err != nil {
		t.Fatal(err)
	}
	recs := fs.Records()
	if len(recs) != 1 || recs[0].Offset != 20 || string(recs[0].Value) != "after" {
		t.Fatalf("after deleting everything, read %d records: %+v", len(recs), recs)
	}
}
