package agent

// ListOffsets, v0–v11.
//
// -2 (earliest), and -4/-5 (earliest local/tiered, which floe does not
// distinguish) answer the log start offset; -1 (latest) the high
// watermark (which is also the last stable offset: floe has no open
// transactions), both as the agent's etcd watch last saw them; -3 (max timestamp, v7+) the last offset of the batch
// holding the newest timestamp; a timestamp answers the first offset of
// the first batch whose max timestamp is at or after it, found through the
// index entries' timestamp bounds, then the batch headers. Offsets are
// batch-precise: a consumer starting there may first see a few records
// older than the timestamp, never miss a newer one. No such batch answers
// offset -1, as Kafka does. v0 answers in its old array form (Burrow
// uses it).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/metadata"
	"github.com/floe-io/floe/segments"
)

func init() {
	register(apiSpec{key: 2, min: 0, max: 11, serve: handleSync((*Agent).handleListOffsets)})
}

func (a *Agent) handleListOffsets(ctx context.Context, rq *request, req *kmsg.ListOffsetsRequest) (*kmsg.ListOffsetsResponse, error) {
	resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewListOffsetsResponseTopic()
		st.Topic = rt.Topic
		t, terr := a.lookupTopic(ctx, rt.Topic)
		if terr == nil && !a.authorizedTopic(rq.conn, metadata.ACLOpDescribe, t.Name) {
			terr = kerr.TopicAuthorizationFailed
		}
		for _, rp := range rt.Partitions {
			sp := kmsg.NewListOffsetsResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.Timestamp = -1
			sp.Offset = -1
			sp.LeaderEpoch = -1
			err := terr
			if err == nil && (rp.Partition < 0 || rp.Partition >= t.Partitions) {
				err = kerr.UnknownTopicOrPartition
			}
			if err == nil {
				sp.Offset, sp.Timestamp, err = a.listOffset(ctx, t, rp.Partition, rp.Timestamp)
			}
			if err != nil {
				ke, _ := kafkaError(err)
				sp.ErrorCode = ke.Code
			} else if req.Version == 0 {
				sp.OldStyleOffsets = []int64{sp.Offset}
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}

// listOffset resolves one ListOffsets query against a partition.
func (a *Agent) listOffset(ctx context.Context, t metadata.Topic, p int32, ts int64) (offset, timestamp int64, err error) {
	if ts == -1 || ts == -2 || ts == -4 || ts == -5 {
		// Earliest and latest come from the watched watermarks (lag tools
		// ask often); a shard the watch does not follow yet is read from
		// etcd.
		m, err := a.marks.Get(ctx, t, p)
		if err != nil {
			return -1, -1, err
		}
		if ts == -1 {
			return m.Next, -1, nil
		}
		return m.Start, -1, nil
	}
	st, err := a.store.GetPartitionState(ctx, t, p)
	if err != nil {
		return -1, -1, err
	}
	switch ts {
	case -3:
		return a.maxTimestampOffset(ctx, t, p, st)
	}
	if ts < 0 {
		return -1, -1, kafkaErrorf(kerr.InvalidRequest, "timestamp %d is not a time or a special value (-1, -2, -3)", ts)
	}
	return a.offsetForTime(ctx, t, p, st, ts)
}

// scanIndex calls fn for the partition's index entries from the log
// start, a window at a time, until fn returns false.
func (a *Agent) scanIndex(ctx context.Context, t metadata.Topic, p int32, st metadata.PartitionState, fn func(metadata.IndexEntry) bool) error {
	from := st.Start
	for from < st.Next {
		entries, err := a.store.PartitionEntries(ctx, t, p, from, 256)
		if err != nil {
			return err
		}
		if len(entries) == 0 {
			return nil
		}
		for _, e := range entries {
			if e.Last < st.Start {
				continue
			}
			if !fn(e) {
				return nil
			}
		}
		from = entries[len(entries)-1].Last + 1
	}
	return nil
}

func (a *Agent) offsetForTime(ctx context.Context, t metadata.Topic, p int32, st metadata.PartitionState, ts int64) (int64, int64, error) {
	var found *metadata.IndexEntry
	err := a.scanIndex(ctx, t, p, st, func(e metadata.IndexEntry) bool {
		if e.MaxTimestamp >= ts {
			found = &e
			return false
		}
		return true
	})
	if err != nil || found == nil {
		return -1, -1, err
	}
	off, at := int64(-1), int64(-1)
	err = a.reader.Batches(ctx, *found, func(base, last int64, raw []byte) bool {
		if last < st.Start {
			return true
		}
		first, maxTS := segments.BatchTimestamps(raw)
		if maxTS >= ts {
			off, at = max(base, st.Start), max(first, ts)
			return false
		}
		return true
	})
	if err != nil {
		return -1, -1, err
	}
	return off, at, nil
}

func (a *Agent) maxTimestampOffset(ctx context.Context, t metadata.Topic, p int32, st metadata.PartitionState) (int64, int64, error) {
	var best *metadata.IndexEntry
	err := a.scanIndex(ctx, t, p, st, func(e metadata.IndexEntry) bool {
		if best == nil || e.MaxTimestamp >= best.MaxTimestamp {
			best = &e
		}
		return true
	})
	if err != nil || best == nil {
		return -1, -1, err
	}
	off, ts := int64(-1), int64(-1)
	err = a.reader.Batches(ctx, *best, func(_, last int64, raw []byte) bool {
		if _, maxTS := segments.BatchTimestamps(raw); maxTS >= ts && last >= st.Start {
			off, ts = last, maxTS
		}
		return true
	})
	if err != nil {
		return -1, -1, err
	}
	return off, ts, nil
}
