package agent

import (
	"context"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/floe-io/floe/internal/testenv"
	"github.com/floe-io/floe/metadata"
)

// The aborted-transaction cache answers as the index in etcd does, reads
// etcd once per topic, learns later aborts from the log entries it is
// shown, and reads again after a reset.
func TestAbortedCache(t *testing.T) {
	store, err := metadata.NewStore(testenv.Etcd(t), testenv.Cluster(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tp, err := store.CreateTopic(ctx, metadata.TopicSpec{Name: "ab", Partitions: 1, ReplicationFactor: 1})
	if err != nil {
		t.Fatal(err)
	}
	var entries []*metadata.LogEntry
	cm := store.NewCommitter(metadata.CommitConfig{OnCommit: func(_ metadata.ShardID, e *metadata.LogEntry) { entries = append(entries, e) }})
	commit := func(b metadata.BatchMeta) {
		t.Helper()
		res, err := cm.Commit(ctx, []metadata.Append{{Topic: tp, Partition: 0, Object: "o", Length: 1, Batches: []metadata.BatchMeta{b}}})
		if err != nil || res[0].Batches[0].Err != nil {
			t.Fatalf("commit: %v %+v", err, res)
		}
	}
	data := func(pid int64, seq int32) metadata.BatchMeta {
		return metadata.BatchMeta{Records: 2, ProducerID: pid, BaseSequence: seq, Transactional: true}
	}
	abort := func(pid int64) metadata.BatchMeta {
		return metadata.BatchMeta{Records: 1, ProducerID: pid, BaseSequence: -1, Transactional: true, Marker: metadata.MarkerAbort}
	}
	commit(data(1, 0)) // 0-1
	commit(abort(1))   // 2
	commit(data(2, 0)) // 3-4
	commit(abort(2))   // 5

	c := newAbortedCache(store, nil)
	check := func(from, upper int64, wantFirsts ...int64) {
		t.Helper()
		got, err := c.between(ctx, tp, 0, from, upper)
		if err != nil {
			t.Fatal(err)
		}
		want, err := store.AbortedTxns(ctx, tp.ID, 0, from, upper)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(wantFirsts) || len(want) != len(wantFirsts) {
			t.Fatalf("[%d, %d): cache %+v, etcd %+v; want firsts %v", from, upper, got, want, wantFirsts)
		}
		for i := range got {
			if got[i] != want[i] || got[i].First != wantFirsts[i] {
				t.Fatalf("[%d, %d): cache %+v, etcd %+v; want firsts %v", from, upper, got, want, wantFirsts)
			}
		}
	}
	check(0, 6, 0, 3)
	check(3, 6, 3)
	check(0, 2, 0)
	if n := loads(c); n != 1 {
		t.Fatalf("%v loads from etcd, want 1", n)
	}

	// A later abort, learned from its entry.
	commit(data(1, 2)) // 6-7
	commit(abort(1))   // 8
	for _, e := range entries {
		c.observe(tp.Shard(0), e)
	}
	check(0, 9, 0, 3, 6)
	if n := loads(c); n != 1 {
		t.Fatalf("%v loads from etcd after the watch delivered the abort, want 1", n)
	}
	c.reset()
	check(6, 9, 6)
	if n := loads(c); n != 2 {
		t.Fatalf("%v loads from etcd after a reset, want 2", n)
	}
	if c.total != 3 {
		t.Fatalf("the cache counts %d transactions, holds 3", c.total)
	}

	// An abort the watch has not delivered, under watermarks read from
	// etcd: the topic is forgotten and read again.
	commit(data(2, 2)) // 9-10
	commit(abort(2))   // 11
	c.forget(tp.ID)
	if c.total != 0 {
		t.Fatalf("the cache counts %d transactions after forgetting its one topic", c.total)
	}
	check(0, 12, 0, 3, 6, 9)
	if n := loads(c); n != 3 {
		t.Fatalf("%v loads from etcd after the topic was forgotten, want 3", n)
	}
}

func loads(c *abortedCache) float64 {
	var m dto.Metric
	if err := c.loads.Write(&m); err != nil {
		return -1
	}
	return m.GetCounter().GetValue()
}
