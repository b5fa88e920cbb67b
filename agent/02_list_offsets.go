package agent

// ListOffsets, v0–v11.
//
// -2 (earliest), and -4/-5 (earliest local/tiered, which floe does not
// distinguish) answer the log start offset; -1 (latest) the high
// watermark, or for read_committed (isolation level 1, v2+) the last
// stable offset, all as the agent's etcd watch last saw them. -3 (max
// timestamp, v7+) answers the record with the largest timestamp (the
// first, if several share it) and a timestamp the first record at or
// after it, each with the record's own offset and timestamp, as Kafka
// does: the index entries' timestamp bounds, then the batch headers, find
// the batch, and its records are read (decompressed, one batch at a time)
// when its header does not settle the answer. Records before the log
// start do not count. No such record answers offset -1, as Kafka does. v0
// answers in its old array form (Burrow uses it).

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
				sp.Offset, sp.Timestamp, err = a.listOffset(ctx, t, rp.Partition, rp.Timestamp, req.Version >= 2 && req.IsolationLevel == 1)
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
func (a *Agent) listOffset(ctx context.Context, t metadata.Topic, p int32, ts int64, committed bool) (offset, timestamp int64, err error) {
	if ts == -1 || ts == -2 || ts == -4 || ts == -5 {
		// Earliest and latest come from the watched watermarks (lag tools
		// ask often); a shard the watch does not follow yet is read from
		// etcd.
		m, err := a.marks.Get(ctx, t, p)
		if err != nil {
			return -1, -1, err
		}
		if ts == -1 && committed {
			return m.Stable, -1, nil
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

// offsetForTime answers a timestamp as Kafka's
// LogSegment.findOffsetByTimestamp does: the batches whose max timestamp
// is at or after ts are searched in offset order, and the first record in
// them at or after ts, and at or after the log start, answers with its
// offset and timestamp. Records within a batch need not be in timestamp
// order, so a batch's records are read unless its header settles it
// (segments.Batch.FirstTimestamp). No such record answers -1.
func (a *Agent) offsetForTime(ctx context.Context, t metadata.Topic, p int32, st metadata.PartitionState, ts int64) (int64, int64, error) {
	var (
		off, at = int64(-1), int64(-1)
		found   bool
		rerr    error
	)
	err := a.scanIndex(ctx, t, p, st, func(e metadata.IndexEntry) bool {
		if e.MaxTimestamp < ts {
			return true
		}
		var berr error
		rerr = a.reader.Batches(ctx, e, func(base, last int64, raw []byte) bool {
			if _, maxTS := segments.BatchTimestamps(raw); last < st.Start || maxTS < ts {
				return true
			}
			off, at, found, berr = recordAtOrAfter(raw, base, st.Start, ts)
			return berr == nil && !found
		})
		if rerr == nil {
			rerr = berr
		}
		return rerr == nil && !found
	})
	if err == nil {
		err = rerr
	}
	if err != nil || !found {
		return -1, -1, err
	}
	return off, at, nil
}

// recordAtOrAfter returns the first record of the batch in raw (at base)
// at offset from or later whose timestamp is at or after ts.
func recordAtOrAfter(raw []byte, base, from, ts int64) (off, at int64, found bool, err error) {
	b, err := segments.ParseBatch(raw)
	if err != nil {
		return -1, -1, false, err
	}
	if first, ok := b.FirstTimestamp(); ok && base >= from && first >= ts {
		return base, first, true, nil
	}
	err = b.RecordTimes(func(delta int32, t int64) bool {
		if o := base + int64(delta); o >= from && t >= ts {
			off, at, found = o, t, true
		}
		return !found
	})
	if err != nil || !found {
		return -1, -1, false, err
	}
	return off, at, true, nil
}

// maxTimestampOffset answers MAX_TIMESTAMP as Kafka's UnifiedLog does:
// the first batch with the largest max timestamp answers with its first
// record holding that timestamp (RecordBatch.offsetOfMaxTimestamp).
// Records before the log start do not count: the index entry the log
// starts in is read for its largest timestamp after the start; every
// later entry's is in the index.
func (a *Agent) maxTimestampOffset(ctx context.Context, t metadata.Topic, p int32, st metadata.PartitionState) (int64, int64, error) {
	var (
		best    *metadata.IndexEntry // the entry to read, unless off and at answer already
		off, at = int64(-1), int64(-1)
		found   bool
		rerr    error
	)
	err := a.scanIndex(ctx, t, p, st, func(e metadata.IndexEntry) bool {
		if e.First < st.Start {
			off, at, found, rerr = a.maxRecordOf(ctx, e, st.Start)
			return rerr == nil
		}
		if !found || e.MaxTimestamp > at {
			best, at, found = &e, e.MaxTimestamp, true
		}
		return true
	})
	if err == nil {
		err = rerr
	}
	if err == nil && best != nil {
		off, at, found, err = a.maxRecordOf(ctx, *best, st.Start)
	}
	if err != nil || !found {
		return -1, -1, err
	}
	return off, at, nil
}

// maxRecordOf returns the record of index entry e that answers
// MAX_TIMESTAMP among those at offset from or later. The first batch with
// the largest timestamp is found from the headers (and from the records
// of the batch the log start cuts), then read again for its record.
func (a *Agent) maxRecordOf(ctx context.Context, e metadata.IndexEntry, from int64) (off, at int64, found bool, err error) {
	var (
		pick, i = -1, -1
		bestAt  int64
		berr    error
	)
	err = a.reader.Batches(ctx, e, func(base, last int64, raw []byte) bool {
		i++
		if last < from {
			return true
		}
		_, ts := segments.BatchTimestamps(raw)
		var o int64
		cut := base < from
		if cut {
			var ok bool
			if o, ts, ok, berr = maxRecord(raw, base, from); berr != nil || !ok {
				return berr == nil
			}
		}
		if pick < 0 || ts > bestAt {
			pick, bestAt = i, ts
			off, at, found = o, ts, cut
		}
		return true
	})
	if err == nil {
		err = berr
	}
	switch {
	case err != nil || pick < 0:
		return -1, -1, false, err
	case found:
		return off, at, true, nil
	}
	i = -1
	err = a.reader.Batches(ctx, e, func(base, _ int64, raw []byte) bool {
		if i++; i < pick {
			return true
		}
		off, at, found, berr = maxRecord(raw, base, from)
		return false
	})
	if err == nil {
		err = berr
	}
	if err != nil || !found {
		return -1, -1, false, err
	}
	return off, at, true, nil
}

// maxRecord returns the first record of the batch in raw (at base) at
// offset from or later with the largest timestamp.
func maxRecord(raw []byte, base, from int64) (off, at int64, found bool, err error) {
	b, err := segments.ParseBatch(raw)
	if err != nil {
		return -1, -1, false, err
	}
	if first, ok := b.FirstTimestamp(); ok && base >= from && first == b.MaxTimestamp {
		return base, first, true, nil
	}
	err = b.RecordTimes(func(delta int32, t int64) bool {
		if o := base + int64(delta); o >= from && (!found || t > at) {
			off, at, found = o, t, true
		}
		return true
	})
	if err != nil || !found {
		return -1, -1, false, err
	}
	return off, at, true, nil
}
