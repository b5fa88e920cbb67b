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
	"slices"
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
	topic  metadata.Topic
	part   int32
	offset int64
	max    int32 // partition max bytes
	ok     bool  // resolved; read it
	next   int64 // after a read that returned batches: the offset after them
	hw     int64 // the high watermark that read saw
	plan   []metadata.IndexEntry
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
	var shards []metadata.ShardID
	seenShard := map[metadata.ShardID]bool{}
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
			fp.topic, fp.part, fp.ok = t, rp.Partition, true
			if sh := t.Shard(rp.Partition); !seenShard[sh] {
				seenShard[sh] = true
				shards = append(shards, sh)
			}
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
		woken, unsubscribe := a.marks.Subscribe(shards)
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
//
// Reads are planned across the request's partitions before any is read:
// each partition's next index entries are found, and of the entries whose
// object chunks are neither cached nor being read, only those in the
// oldest chunks, up to about the response's size, are read now (all at
// once, in the background). A partition whose next entry is in a later
// chunk returns nothing this time (Kafka allows a broker to return less
// than a partition's maximum). A consumer of many partitions therefore
// moves through objects in the order they were written, reading each
// chunk once for all its partitions, instead of reading every object once
// per partition.
func (a *Agent) readParts(ctx context.Context, parts []*fetchPart, maxBytes int32) (int64, bool) {
	allowed := a.planParts(ctx, parts, int64(maxBytes))
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
		n, err := a.readPart(ctx, fp, budget, total == 0, allowed)
		if err != nil {
			anyErr = true
		}
		total += n
	}
	a.reader.metrics.fetchBytes.Add(float64(total))
	a.readAhead(parts)
	return total, anyErr
}

// planParts finds each partition's next entries (fp.plan) and starts
// reading the chunks the response will use. It returns the entries that
// may be read from the bucket for this response: the others must be
// ready (reader.ready).
func (a *Agent) planParts(ctx context.Context, parts []*fetchPart, maxBytes int64) map[extentKey]bool {
	var cold []metadata.IndexEntry
	for _, fp := range parts {
		fp.plan = nil
		if !fp.ok {
			continue
		}
		marks, err := a.marks.Get(ctx, fp.topic, fp.part)
		if err != nil || fp.offset < marks.Start || fp.offset >= marks.Next {
			continue
		}
		entries, _, err := a.reader.entries(ctx, fp.topic, fp.part, fp.offset, marks.Next)
		if err != nil {
			continue // the read reports it
		}
		want := int64(fp.max)
		for _, e := range entries {
			if want <= 0 {
				break
			}
			// Stored bytes stand in for decoded ones, which are at least
			// as many: the estimate errs toward one entry more.
			want -= e.Length
			fp.plan = append(fp.plan, e)
			if !a.reader.ready(e) {
				cold = append(cold, e)
			}
		}
	}
	if len(cold) == 0 {
		return nil
	}
	slices.SortFunc(cold, chunkOrder)
	// Read the oldest chunks, about a response's worth (within the chunk
	// cache), and always at least one.
	_, chunkBudget, _ := readerBudget(a.cfg.CacheBytes)
	budget := min(max(maxBytes, 16<<20), chunkBudget/2)
	allowed := map[extentKey]bool{}
	chunks := map[chunkKey]bool{}
	var (
		read  int64
		start []metadata.IndexEntry
	)
	for _, e := range cold {
		var add int64
		spans := a.reader.chunksOf(e)
		for _, s := range spans {
			if !chunks[s.key] && !a.reader.chunks.cached(s.key) {
				add += s.end - s.start
			}
		}
		if len(spans) == 0 {
			add = e.Length
		}
		if len(allowed) > 0 && read+add > budget {
			continue
		}
		read += add
		for _, s := range spans {
			chunks[s.key] = true
		}
		allowed[keyOf(e)] = true
		start = append(start, e)
	}
	if !a.draining.Load() {
		a.reader.prefetch(a.ctx, &a.wg, start)
	}
	return allowed
}

// readAhead starts reading the entries each partition that returned
// batches will need next, so those reads overlap the client's processing
// of this response.
func (a *Agent) readAhead(parts []*fetchPart) {
	if a.draining.Load() {
		return
	}
	var next []metadata.IndexEntry
	for _, fp := range parts {
		if !fp.ok || fp.next <= 0 {
			continue
		}
		entries, _, err := a.reader.entries(a.ctx, fp.topic, fp.part, fp.next, fp.hw)
		fp.next = 0
		if err != nil {
			continue
		}
		want := int64(fp.max)
		for _, e := range entries {
			if want <= 0 {
				break
			}
			want -= e.Length
			if !a.reader.ready(e) {
				next = append(next, e)
			}
		}
	}
	slices.SortFunc(next, chunkOrder)
	a.reader.prefetch(a.ctx, &a.wg, next)
}

// readPart reads one partition from fp.offset. budget bounds the bytes
// taken across the response; first says no earlier partition returned
// data, so one whole batch is returned even if it exceeds the limits.
// Entries that are not ready are read only if allowed.
func (a *Agent) readPart(ctx context.Context, fp *fetchPart, budget int64, first bool, allowed map[extentKey]bool) (int64, error) {
	sp := fp.resp
	sp.ErrorCode = 0
	sp.RecordBatches = []byte{}
	marks, err := a.marks.Get(ctx, fp.topic, fp.part)
	if err != nil {
		sp.ErrorCode = kerr.RequestTimedOut.Code
		return 0, err
	}
	if fp.offset < marks.Start || fp.offset > marks.Next {
		// The watch may lag: confirm with etcd before sending the client to
		// auto.offset.reset.
		if marks, err = a.reloadMarks(ctx, fp.topic, fp.part); err != nil {
			sp.ErrorCode = kerr.RequestTimedOut.Code
			return 0, err
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
			a.reader.noteRead(metadata.PartitionID{Topic: fp.topic.ID, Partition: fp.part}, out.next)
		}
	}()
	offset := fp.offset
	retried := false
	entries := fp.plan
	// An entry not ready is read only if the plan allows it, or when the
	// plan read nothing from the bucket and this partition has nothing yet.
	mayRead := func(e metadata.IndexEntry) bool {
		return allowed[keyOf(e)] || len(allowed) == 0 && out.n == 0 || a.reader.ready(e)
	}
	for iter := 0; offset < marks.Next && iter < 64; iter++ {
		reload := false
		if len(entries) == 0 || entries[len(entries)-1].Last < offset {
			var ok bool
			entries, ok, err = a.reader.entries(ctx, fp.topic, fp.part, offset, marks.Next)
			if err != nil {
				sp.ErrorCode = kerr.RequestTimedOut.Code
				a.log.Warn("reading index failed", "topic", fp.topic.Name, "partition", fp.part, "err", err)
				return out.finish(sp), err
			}
			if !ok && out.n == 0 {
				// No entry holds the offset any more: retention removed it
				// since the log start was read.
				sp.ErrorCode = kerr.OffsetOutOfRange.Code
				return 0, kerr.OffsetOutOfRange
			}
			if len(entries) == 0 {
				break
			}
		}
		progressed := false
		for len(entries) > 0 {
			e := entries[0]
			if e.Last < offset {
				entries = entries[1:]
				continue
			}
			if !mayRead(e) {
				return out.finish(sp), nil // a later chunk: another response
			}
			ext, err := a.reader.extent(ctx, e)
			if err != nil {
				if errors.Is(err, errMissingObject) && !retried {
					// The index may be stale (a merge replaced the entry):
					// reload it once before calling the object missing.
					retried, reload = true, true
					a.reader.invalidate(fp.topic, fp.part)
					entries = nil
					break
				}
				ke, _ := kafkaError(err)
				sp.ErrorCode = ke.Code
				a.log.Error("fetch failed reading segment", "topic", fp.topic.Name, "partition", fp.part, "offset", offset, "object", e.Object, "err", err)
				return out.finish(sp), err
			}
			entries = entries[1:]
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
		if !progressed && !reload {
			break
		}
	}
	return out.finish(sp), nil
}

// reloadMarks reads a partition's watermarks from etcd into the watcher.
func (a *Agent) reloadMarks(ctx context.Context, t metadata.Topic, p int32) (metadata.Watermarks, error) {
	if err := a.marks.Reload(ctx, t.Shard(p)); err != nil {
		return metadata.Watermarks{}, err
	}
	m, _ := a.marks.Cached(t, p)
	return m, nil
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
