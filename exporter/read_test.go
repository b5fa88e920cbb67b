package exporter

import (
	"context"
	"fmt"
	"io"
	"sync/atomic"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floe-io/floe/segments"
)

// countingBucket counts the GETs made through it.
type countingBucket struct {
	segments.BucketReader
	gets atomic.Int64
}

func (b *countingBucket) GetRange(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	b.gets.Add(1)
	return b.BucketReader.GetRange(ctx, key, offset, length)
}

// A commit reads each flush object once for all the partitions it holds
// extents of, not once per partition: at 256 partitions, GETs follow the
// objects, however many partitions each holds.
func TestExportReadsEachObjectOnceForAllPartitions(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	adm := kadm.NewClient(e.client())
	const partitions, perPartition = 256, 20
	resp, err := adm.CreateTopic(ctx, partitions, 1, map[string]*string{cfgEnabled: kadm.StringPtr("true")}, "wide")
	if err != nil || resp.Err != nil {
		t.Fatalf("creating the topic: %v %v", err, resp.Err)
	}
	cl := e.client(kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.DefaultProduceTopic("wide"))
	for round := range perPartition {
		var rs []*kgo.Record
		for p := range int32(partitions) {
			rs = append(rs, &kgo.Record{Partition: p, Value: fmt.Appendf(nil, "%d-%d", p, round)})
		}
		if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	topic, err := e.store.GetTopic(ctx, "wide")
	if err != nil {
		t.Fatal(err)
	}
	objects, extents := map[string]bool{}, 0
	for p := range int32(partitions) {
		entries, err := e.store.PartitionEntries(ctx, topic, p, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, ie := range entries {
			objects[ie.Object] = true
		}
		extents += len(entries)
	}

	x, l := e.exporter(Config{})
	counting := &countingBucket{BucketReader: x.bucket}
	x.bucket = counting
	st, err := x.Pass(ctx, l.Fence(), true)
	if err != nil {
		t.Fatal(err)
	}
	if st.Rows != partitions*perPartition {
		t.Fatalf("%d rows exported, want %d", st.Rows, partitions*perPartition)
	}
	gets := counting.gets.Load()
	t.Logf("%d extents in %d objects, read with %d GETs", extents, len(objects), gets)
	if gets > int64(len(objects))+2 {
		t.Errorf("%d GETs for %d objects holding %d extents: reads are not by object", gets, len(objects), extents)
	}
	rows, _ := e.readTable(e.loadTable("floe.wide"))
	seen := map[string]bool{}
	for _, r := range rows {
		seen[r.value] = true
	}
	if len(rows) != partitions*perPartition || len(seen) != len(rows) {
		t.Errorf("the table holds %d rows, %d distinct, want %d", len(rows), len(seen), partitions*perPartition)
	}
}
