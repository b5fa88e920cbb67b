package agent

// Fetch, v4–v18 (RecordBatch v2; v13+ names topics by ID).
//
// Any agent serves any partition. For each partition the agent checks the
// offset against the log start and high watermark it follows through etcd
// (re-reading etcd before answering OFFSET_OUT_OF_RANGE, so a lagging
// watch never sends a consumer to auto.offset.reset), finds the index
// entries from the fetch offset, and reads their extents through the
// agent's cache, which coalesces concurrent reads of the same extent and
// keeps batches with their offsets already assigned. A batch that
// straddles the fetch offset is returned whole (clients skip the leading
// records). MaxBytes and per-partition MaxBytes are honoured, except that
// the first batch of the first non-empty partition is always returned
// whole, as Kafka does, so a batch larger than MaxBytes never stalls a
// consumer.
//
// MaxWaitMs/MinBytes is a real long poll: the request waits on the
// watermark watcher and wakes when a commit moves one of its partitions,
// not on a timer.
//
// Fetch sessions (KIP-227) are answered without caching: the response's
// session ID is 0, so clients keep sending full fetch requests. A request
// for an existing incremental session gets FETCH_SESSION_ID_NOT_FOUND.
//
// A corrupt or missing segment object fails only the partitions that need
// it (CORRUPT_MESSAGE or KAFKA_STORAGE_ERROR), with a log line naming the
// object; other partitions are served.

import (
	"bytes"
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/metadata"
)

func init() {
	register(apiSpec{key: 1, min: 4, max: 18, serve: (*Agent).serveFetch})
}

// maxFetchWait bounds a long poll whatever the client asks.
const maxFetchWait = 30 * time.Second

// fetchPart is one partition of a fetch request.
type fetchPart struct {
	resp   *kmsg.FetchResponseTopicPartition
	id     metadata.PartitionID
	offset int64
	max    int32 // partition max bytes
	ok     bool  // resolved; read it
	next   int64 // after a read that returned batches: the offset after them
	hw     int64 // the high watermark that read saw
}

func (a *Agent) serveFetch(ctx context.Context, rq *request) {
	req := rq.req.(*kmsg.FetchRequest)
	rq.conn.goAsync(func() {
		rq.reply(a.fetch(ctx, rq.conn, req))
	})
}

func (a *Agent) fetch(ctx context.Context, c *conn, req *kmsg.FetchRequest) *kmsg.FetchResponse {
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	if req.Version >= 7 && req.SessionID != 0 {
		resp.ErrorCode = kerr.FetchSessionIDNotFound.Code
		return resp
	}
	var parts []*fetchPart
	var ids []metadata.PartitionID
	failed := false
	for _, rt := range req.Topics {
		st := kmsg.NewFetchResponseTopic()
		st.Topic = rt.Topic
		st.TopicID = rt.TopicID
		st.Partitions = make([]kmsg.FetchResponseTopicPartition, len(rt.Partitions))
		resp.Topics = append(resp.Topics, st)
	}
	for ti, rt := range req.Topics {
		st := &resp.Topics[ti]
		t, terr := a.fetchTopic(ctx, req.Version, rt)
		if terr == nil && !a.authorizedTopic(c, metadata.ACLOpRead, t.Name) {
			terr = kerr.TopicAuthorizationFailed
		}
		for pi, rp := range rt.Partitions {
			sp := &st.Partitions[pi]
			*sp = kmsg.NewFetchResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.HighWatermark = -1
			sp.LastStableOffset = -1
			sp.LogStartOffset = -1
			// Empty, not null: librdkafka rejects a null record set.
			sp.RecordBatches = []byte{}
			fp := &fetchPart{resp: sp, offset: rp.FetchOffset, max: rp.PartitionMaxBytes}
			parts = append(parts, fp)
			err := terr
			if err == nil && (rp.Partition < 0 || rp.Partition >= t.Partitions) {
				err = kerr.UnknownTopicOrPartition
			}
			if err != nil {
				ke, _ := kafkaError(err)
				sp.ErrorCode = ke.Code
				failed = true
				continue
			}
			fp.id = metadata.PartitionID{Topic: t.ID, Partition: rp.Partition}
			fp.ok = true
			ids = append(ids, fp.id)
		}
	}

	wait := min(time.Duration(req.MaxWaitMillis)*time.Millisecond, maxFetchWait)
	deadline := time.Now().Add(wait)
	maxBytes := req.MaxBytes
	if req.Version < 3 || maxBytes <= 0 {
		maxBytes = 1<<31 - 1
	}
	for {
		// Subscribe before reading, so a commit between the read and the
		// wait is not missed.
		woken, unsubscribe := a.marks.Subscribe(ids)
		n, errs := a.readParts(ctx, parts, maxBytes)
		if n >= int64(req.MinBytes) || errs || failed || wait <= 0 || ctx.Err() != nil {
			unsubscribe()
			return resp
		}
		remaining := time.Until(deadline)
		if remaining <= 0 {
			unsubscribe()
			return resp
		}
		timer := time.NewTimer(remaining)
		select {
		case <-woken:
		case <-timer.C:
		case <-ctx.Done():
		}
		timer.Stop()
		unsubscribe()
		if time.Now().After(deadline) {
			// Read once more: a commit may have landed right at the end.
			a.readParts(ctx, parts, maxBytes)
			return resp
		}
	}
}

// fetchTopic resolves a fetch request's topic by name or (v13+) ID.
func (a *Agent) fetchTopic(ctx context.Context, version int16, rt kmsg.FetchRequestTopic) (metadata.Topic, error) {
	if version >= 13 {
		t, err := a.lookupTopicByID(ctx, uuid.UUID(rt.TopicID))
		if isUnknownTopic(err) {
			return t, kerr.UnknownTopicID
		}
		return t, err
	}
	return a.lookupTopic(ctx, rt.Topic)
}

// readParts fills every resolved partition's response from its current
// state. It returns the bytes of records gathered and whether any
// partition got an error.
func (a *Agent) readParts(ctx context.Context, parts []*fetchPart, maxBytes int32) (int64, bool) {
	a.prefetchParts(parts, int64(maxBytes))
	var total int64
	anyErr := false
	for _, fp := range parts {
		if !fp.ok {
			continue
		}
		budget := int64(maxBytes) - total
		if budget < 0 {
			budget = 0
		}
		n, err := a.readPart(ctx, fp, budget, total == 0)
		if err != nil {
			anyErr = true
		}
		total += n
	}
	a.reader.metrics.fetchBytes.Add(float64(total))
	a.readAhead(parts)
	return total, anyErr
}

// readAhead starts reading the extent each partition that returned
// batches will need next, so those GETs overlap the client's processing
// of this response (the next fetch's prefetchParts starts the rest).
func (a *Agent) readAhead(parts []*fetchPart) {
	if a.draining.Load() {
		return
	}
	var next []metadata.IndexEntry
	for _, fp := range parts {
		if fp.ok && fp.next > 0 {
			next = append(next, a.reader.planPrefetch(a.ctx, fp.id, fp.next, fp.hw, int64(fp.max), 1)...)
			fp.next = 0
		}
	}
	a.reader.prefetch(a.ctx, &a.wg, next)
}

// prefetchParts starts reading the extents every partition will need, in
// parallel, before readPart takes them in turn: a cold fetch then waits
// for about one GET instead of one per extent.
func (a *Agent) prefetchParts(parts []*fetchPart, budget int64) {
	if a.draining.Load() {
		return
	}
	var need []metadata.IndexEntry
	for _, fp := range parts {
		if !fp.ok || budget <= 0 {
			continue
		}
		marks := a.marks.Get(fp.id)
		if fp.offset < marks.Start || fp.offset >= marks.Next {
			continue
		}
		want := min(int64(fp.max), budget)
		need = append(need, a.reader.planPrefetch(a.ctx, fp.id, fp.offset, marks.Next, want, 0)...)
		budget -= want
	}
	a.reader.prefetch(a.ctx, &a.wg, need)
}

// readPart reads one partition from fp.offset. budget bounds the bytes
// taken across the response; first says no earlier partition returned
// data, so one whole batch is returned even if it exceeds the limits.
func (a *Agent) readPart(ctx context.Context, fp *fetchPart, budget int64, first bool) (int64, error) {
	sp := fp.resp
	sp.ErrorCode = 0
	sp.RecordBatches = []byte{}
	marks := a.marks.Get(fp.id)
	if fp.offset < marks.Start || fp.offset > marks.Next {
		// The watch may lag: confirm with etcd before sending the client to
		// auto.offset.reset.
		st, err := a.store.GetPartitionState(ctx, fp.id)
		if err != nil {
			sp.ErrorCode = kerr.RequestTimedOut.Code
			return 0, err
		}
		marks = metadata.Watermarks{Start: st.Start, Next: st.Next, Revision: st.ModRevision}
		if st.ModRevision > 0 {
			a.marks.Observe(fp.id, marks)
		}
	}
	sp.HighWatermark = marks.Next
	sp.LastStableOffset = marks.Next
	sp.LogStartOffset = marks.Start
	if fp.offset < marks.Start || fp.offset > marks.Next {
		sp.ErrorCode = kerr.OffsetOutOfRange.Code
		return 0, kerr.OffsetOutOfRange
	}
	if fp.offset == marks.Next {
		return 0, nil
	}
	limit := min(int64(fp.max), budget)
	if limit <= 0 && !first {
		return 0, nil
	}
	var out gathered
	defer func() {
		if out.n > 0 {
			fp.next, fp.hw = out.next, marks.Next // for readAhead
			a.reader.noteRead(fp.id, out.next)
		}
	}()
	offset := fp.offset
	retried := false
	for iter := 0; offset < marks.Next && iter < 64; iter++ {
		entries, err := a.reader.entries(ctx, fp.id, offset, marks.Next)
		if err != nil {
			sp.ErrorCode = kerr.RequestTimedOut.Code
			a.log.Warn("reading index failed", "partition", fp.id, "err", err)
			return out.n, err
		}
		if len(entries) == 0 {
			break
		}
		progressed := false
		for _, e := range entries {
			ext, err := a.reader.extent(ctx, e)
			if err != nil {
				if errors.Is(err, errMissingObject) && !retried {
					// The index may be stale (a merge replaced the entry):
					// reload it once before calling the object missing.
					retried = true
					a.reader.invalidate(fp.id)
					break
				}
				ke, _ := kafkaError(err)
				sp.ErrorCode = ke.Code
				a.log.Error("fetch failed reading segment", "partition", fp.id, "offset", offset, "object", e.Object, "err", err)
				return out.finish(sp), err
			}
			data, nb := ext.from(offset)
			if nb == 0 {
				continue
			}
			room := limit - out.n
			if int64(len(data)) <= room {
				out.add(data, ext.lasts[len(ext.lasts)-1]+1)
			} else {
				// Take whole batches that fit; the first batch of the
				// response always goes in.
				start := len(ext.arena) - len(data)
				i := len(ext.starts) - nb
				end := start
				for ; i < len(ext.starts); i++ {
					be := ext.batchEnd(i)
					if int64(be-start) > room && !(first && out.n == 0 && end == start) {
						break
					}
					end = be
				}
				if end > start {
					out.add(ext.arena[start:end], ext.lasts[i-1]+1)
				}
				return out.finish(sp), nil
			}
			offset = ext.lasts[len(ext.lasts)-1] + 1
			progressed = true
			if out.n >= limit {
				return out.finish(sp), nil
			}
		}
		if !progressed && retried {
			continue
		}
		if !progressed {
			break
		}
	}
	return out.finish(sp), nil
}

// gathered is a partition's record batches for a response: slices of
// cached extents, which are immutable once loaded.
type gathered struct {
	parts [][]byte
	n     int64
	next  int64 // the offset after the last batch
}

func (g *gathered) add(b []byte, next int64) {
	if len(b) > 0 {
		g.parts = append(g.parts, b)
		g.n += int64(len(b))
		g.next = next
	}
}

// finish puts the batches in the response and returns their size. Batches
// from one extent are referenced, not copied (the response is encoded
// from them once, when it is written); several are joined into one
// buffer of their exact size.
func (g *gathered) finish(sp *kmsg.FetchResponseTopicPartition) int64 {
	switch len(g.parts) {
	case 0:
		sp.RecordBatches = []byte{}
	case 1:
		sp.RecordBatches = g.parts[0]
	default:
		sp.RecordBatches = bytes.Join(g.parts, nil) // not zeroed first, unlike make
	}
	return g.n
}
