package agent_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floe-io/floe/segments"
)

// ListOffsets by timestamp and MAX_TIMESTAMP answer a record inside a
// batch, with its own offset and timestamp, as Kafka does, whether or not
// the producer compressed the batch.
func TestListOffsetsAnswersRecordsInsideABatch(t *testing.T) {
	c := newTestCluster(t)
	c.addAgent(fastFlush)
	base := time.Now().Add(-2 * time.Hour).Truncate(time.Minute)
	for _, tc := range []struct {
		name  string
		codec kgo.CompressionCodec
		want  segments.BatchCompression
	}{
		{"none", kgo.NoCompression(), segments.CompressionNone},
		{"zstd", kgo.ZstdCompression(), segments.CompressionZstd},
		{"snappy", kgo.SnappyCompression(), segments.CompressionSnappy},
	} {
		t.Run(tc.name, func(t *testing.T) {
			topic := "times-" + tc.name
			createTopic(t, c, topic, 1, nil)
			cl := c.client(kgo.ProducerLinger(time.Second), kgo.ProducerBatchCompression(tc.codec),
				kgo.RecordPartitioner(kgo.ManualPartitioner()))
			ctx := testCtx(t)

			// An older record first, so the batch does not start at 0.
			if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("older"), Timestamp: base.Add(-time.Hour)}).FirstErr(); err != nil {
				t.Fatal(err)
			}
			// 50 records one minute apart, except that records 30 and 45
			// share the largest timestamp, an hour after the first.
			stamp := func(i int) time.Time {
				if i == 30 || i == 45 {
					return base.Add(time.Hour)
				}
				return base.Add(time.Duration(i) * time.Minute)
			}
			recs := make([]*kgo.Record, 50)
			for i := range recs {
				recs[i] = &kgo.Record{Topic: topic, Timestamp: stamp(i),
					Value: fmt.Appendf(nil, "record %d %s", i, strings.Repeat("compressible ", 20))}
			}
			res := cl.ProduceSync(ctx, recs...)
			if err := res.FirstErr(); err != nil {
				t.Fatal(err)
			}
			b := recs[0].Offset
			if b != 1 || recs[49].Offset != b+49 {
				t.Fatalf("records at %d..%d, want 1..50", b, recs[49].Offset)
			}

			// The records are one batch, compressed as asked.
			fetched := fetchRaw(t, cl, topic, 0, b, 0)
			batches, err := segments.ParseBatches(fetched.RecordBatches)
			if err != nil {
				t.Fatal(err)
			}
			if len(batches) != 1 || batches[0].BaseOffset != b || batches[0].NumRecords() != 50 || batches[0].Compression() != tc.want {
				t.Fatalf("fetched %d batches, the first at %d with %d records, %v; want one at %d with 50, %v",
					len(batches), batches[0].BaseOffset, batches[0].NumRecords(), batches[0].Compression(), b, tc.want)
			}

			adm := kadm.NewClient(cl)
			for _, q := range []struct {
				after time.Time
				i     int
			}{
				{base.Add(10*time.Minute + time.Second), 11},
				{base, 0},
				{base.Add(-30 * time.Minute), 0},
				// Records 31 to 44 are older than 55 minutes: the first
				// record at or after it is 30.
				{base.Add(55 * time.Minute), 30},
			} {
				got, err := adm.ListOffsetsAfterMilli(ctx, q.after.UnixMilli(), topic)
				if err != nil {
					t.Fatal(err)
				}
				o, _ := got.Lookup(topic, 0)
				if o.Err != nil || o.Offset != b+int64(q.i) || o.Timestamp != stamp(q.i).UnixMilli() {
					t.Errorf("after %v: offset %d at %d (%v), want %d at %d", q.after.Sub(base), o.Offset, o.Timestamp, o.Err, b+int64(q.i), stamp(q.i).UnixMilli())
				}
			}
			// No record answers -1, which kadm lists as the end offset.
			got, err := adm.ListOffsetsAfterMilli(ctx, base.Add(2*time.Hour).UnixMilli(), topic)
			if o, _ := got.Lookup(topic, 0); err != nil || o.Err != nil || o.Offset != b+50 {
				t.Errorf("after every record: %+v, %v", o, err)
			}

			got, err = adm.ListMaxTimestampOffsets(ctx, topic)
			if err != nil {
				t.Fatal(err)
			}
			if o, _ := got.Lookup(topic, 0); o.Err != nil || o.Offset != b+30 || o.Timestamp != stamp(30).UnixMilli() {
				t.Errorf("max timestamp: offset %d at %d (%v), want %d at %d", o.Offset, o.Timestamp, o.Err, b+30, stamp(30).UnixMilli())
			}

			// Records before a log start inside the batch do not count.
			for _, q := range []struct {
				start       int
				after, maxi int
			}{
				{20, 20, 30},
				{35, 35, 45},
				{46, 46, 49},
			} {
				deleteRecords(t, adm, topic, 0, b+int64(q.start))
				got, err := adm.ListOffsetsAfterMilli(ctx, base.Add(10*time.Minute+time.Second).UnixMilli(), topic)
				if o, _ := got.Lookup(topic, 0); err != nil || o.Err != nil || o.Offset != b+int64(q.after) || o.Timestamp != stamp(q.after).UnixMilli() {
					t.Errorf("log start %d: after 10m1s: %+v, %v; want record %d", b+int64(q.start), o, err, q.after)
				}
				got, err = adm.ListMaxTimestampOffsets(ctx, topic)
				if o, _ := got.Lookup(topic, 0); err != nil || o.Err != nil || o.Offset != b+int64(q.maxi) || o.Timestamp != stamp(q.maxi).UnixMilli() {
					t.Errorf("log start %d: max timestamp: %+v, %v; want record %d", b+int64(q.start), o, err, q.maxi)
				}
			}
			// The batch's largest timestamp is before the log start, so a
			// later record older than it is the newest.
			later := &kgo.Record{Topic: topic, Value: []byte("later"), Timestamp: base.Add(50 * time.Minute)}
			if err := cl.ProduceSync(ctx, later).FirstErr(); err != nil {
				t.Fatal(err)
			}
			got, err = adm.ListMaxTimestampOffsets(ctx, topic)
			if o, _ := got.Lookup(topic, 0); err != nil || o.Err != nil || o.Offset != later.Offset || o.Timestamp != later.Timestamp.UnixMilli() {
				t.Errorf("max timestamp after a later record: %+v, %v; want %d", o, err, later.Offset)
			}
		})
	}
}

// With LogAppendTime every record of a batch has the time the agent
// accepted it: the batch's first record answers.
func TestListOffsetsLogAppendTime(t *testing.T) {
	c := newTestCluster(t)
	c.addAgent(fastFlush)
	lat := "LogAppendTime"
	createTopic(t, c, "appended", 1, map[string]*string{"message.timestamp.type": &lat})
	cl := c.client(kgo.ProducerLinger(time.Second), kgo.ProducerBatchCompression(kgo.ZstdCompression()),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	ctx := testCtx(t)
	recs := make([]*kgo.Record, 20)
	for i := range recs {
		recs[i] = &kgo.Record{Topic: "appended", Value: fmt.Appendf(nil, "record %d", i), Timestamp: time.UnixMilli(int64(i))}
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	batches, err := segments.ParseBatches(fetchRaw(t, cl, "appended", 0, 0, 0).RecordBatches)
	if err != nil || len(batches) != 1 || !batches[0].LogAppendTime() {
		t.Fatalf("fetched %d batches (%v), want one LogAppendTime batch", len(batches), err)
	}
	appended := batches[0].MaxTimestamp
	before := appended - 1000
	adm := kadm.NewClient(cl)
	byTime, err := adm.ListOffsetsAfterMilli(ctx, before, "appended")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := byTime.Lookup("appended", 0); o.Err != nil || o.Offset != 0 || o.Timestamp != appended {
		t.Errorf("after %d: %+v, want offset 0 at %d", before, o, appended)
	}
	maxTS, err := adm.ListMaxTimestampOffsets(ctx, "appended")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := maxTS.Lookup("appended", 0); o.Err != nil || o.Offset != 0 || o.Timestamp != appended {
		t.Errorf("max timestamp: %+v, want offset 0 at %d", o, appended)
	}
}
