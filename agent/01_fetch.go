package agent

// Fetch, v4–v18 (RecordBatch v2; v13+ names topics by ID).
//
// Any agent serves any partition. For each partition the agent checks the
// offset against the log start and high watermark it follows through etcd
// (re-reading etcd before answering OFFSET_OUT_OF_RANGE, so a lagging
// watch never sends a consumer to auto.offset.reset), finds the index
// entries from the fetch offset in its index windows, and serves their
// extents from its cache of decoded batches (offsets assigned), which
// object chunks read once for every partition in them fill (reader.go;
// readParts says how a request's reads are planned and flow-controlled).
// A batch that straddles the fetch offset is returned whole (clients skip
// the leading records). MaxBytes and per-partition MaxBytes are honoured,
// except that the first batch of the first non-empty partition is always
// returned whole, as Kafka does, so a batch larger than MaxBytes never
// stalls a consumer. The record batches of all responses held at once are
// bounded (fetchMemBytes): with many fetches at once, each gets less.
//
// MaxWaitMs/MinBytes is a real long poll: the request waits on the
// watermark watcher and wakes when a commit moves one of its shards, not
// on a timer.
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
	"sync"
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

// throttleRecheck is how soon a flow-controlled fetch looks again;
// throttleHold is the longest it waits with nothing to serve.
const (
	throttleRecheck = 10 * time.Millisecond
	throttleHold    = 250 * time.Millisecond
)

// Fetch memory: the record batches of the responses being assembled or
// written, across the agent. Each response is joined from cached extents
// (a copy, for partitions whose data spans several), then encoded (a
// second copy), so this bounds about twice as much.
const (
	fetchMemBytes = 64 << 20
	fetchMemFloor = 1 << 20
)

// byteBudget hands out bytes of a fixed budget.
type byteBudget struct {
	mu        sync.Mutex
	cap, used int64
}

// take reserves up to want bytes: what is free, but at least floor (so a
// request always makes progress, possibly over the budget).
func (b *byteBudget) take(want, floor int64) int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := min(want, max(b.cap-b.used, floor))
	b.used += n
	return n
}

// give returns bytes take reserved.
func (b *byteBudget) give(n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.used -= n
}

// fetchPart is one partition of a fetch request.
type fetchPart struct {
	resp   *kmsg.FetchResponseTopicPartition
	topic  metadata.Topic
	part   int32
	offset int64
	max    int32 // partition max bytes
	ok     bool  // resolved; read it
	next   int64 // after a read that returned batches: the offset after them
	got    int64 // and the bytes it returned
	hw     int64 // the high watermark that read saw
	plan   []metadata.IndexEntry
}

func (a *Agent) serveFetch(ctx context.Context, rq *request) {
	req := rq.req.(*kmsg.FetchRequest)
	rq.conn.goAsync(func() {
		var held int64
		resp := a.fetch(ctx, rq.conn, req, &held)
		rq.written = func() { a.fetchMem.give(held) }
		rq.reply(resp)
	})
}

// fetch serves a fetch request. held receives the bytes of record
// batches its response holds, taken from the agent's fetch memory budget
// (fetchMem) until the response is written.
func (a *Agent) fetch(ctx context.Context, c *conn, req *kmsg.FetchRequest, held *int64) *kmsg.FetchResponse {
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
	// The response's record batches come out of the agent's fetch memory
	// budget: with many fetches at once, each gets less than it asked for
	// (at least fetchMemFloor), never more than the agent can hold.
	reserved := a.fetchMem.take(int64(maxBytes), fetchMemFloor)
	maxBytes = int32(reserved)
	defer func() {
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				*held += int64(len(p.RecordBatches))
			}
		}
		a.fetchMem.give(reserved - *held)
	}()
	// A fetch held back with nothing to serve waits at most
	// throttleHold for slower readers to free the cache's read-ahead
	// share, then reads anyway.
	var heldSince time.Time
	for {
		// Subscribe before reading, so a commit between the read and the
		// wait is not missed.
		woken, unsubscribe := a.marks.Subscribe(shards)
		force := !heldSince.IsZero() && time.Since(heldSince) >= throttleHold
		n, errs, throttled := a.readParts(ctx, parts, maxBytes, force)
		if throttled && n == 0 && heldSince.IsZero() {
			heldSince = time.Now()
		} else if !throttled || n > 0 {
			heldSince = time.Time{}
		}
		if n >= int64(req.MinBytes) || errs || failed || wait <= 0 || ctx.Err() != nil {
			unsubscribe()
			return resp
		}
		remaining := time.Until(deadline)
		if remaining <= 0 {
			unsubscribe()
			return resp
		}
		if throttled {
			// Data is there, held back for the cache's room: look again
			// shortly rather than at the next commit.
			remaining = min(remaining, throttleRecheck)
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
			a.readParts(ctx, parts, maxBytes, true)
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
func (a *Agent) readParts(ctx context.Context, parts []*fetchPart, maxBytes int32, force bool) (n int64, errs, throttled bool) {
	allowed, throttled, pinned := a.planParts(ctx, parts, int64(maxBytes), force)
	defer a.reader.chunks.unpin(pinned)
	// When the plan found everything ready but an extent left the cache
	// since, one partition may read it again; the others wait for the
	// next response.
	spare := allowed == nil
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
		n, err := a.readPart(ctx, fp, budget, total == 0, allowed, &spare)
		if err != nil {
			anyErr = true
		}
		total += n
	}
	a.reader.metrics.fetchBytes.Add(float64(total))
	a.readAhead(parts)
	return total, anyErr, throttled
}

// planParts finds each partition's next entries (fp.plan) and starts
// reading the chunks the response will use. It returns the entries that
// may be read from the bucket for this response: the others must be
// ready (reader.ready).
//
// Reads are flow-controlled: what a chunk brings in for the partitions
// being read waits in the cache's read-ahead budget until they are read,
// so a chunk is read only while that budget has room for it. A fetch with
// no room reads nothing from the bucket (throttled: it serves what is
// ready, and its long poll looks again shortly, as slower readers, such as
// other consumer groups, read what was brought in for them and free the
// budget; what nobody asks for within aheadTTL stops counting). A fetch
// held back with nothing to serve for throttleHold (force) reads its oldest
// chunk anyway, so every reader makes progress.
//
// The chunks the plan allows reading from (cached, or to be read) are
// pinned in the chunk cache until the caller unpins them, so they are not
// evicted between the plan and the read.
func (a *Agent) planParts(ctx context.Context, parts []*fetchPart, maxBytes int64, force bool) (allowed map[extentKey]bool, throttled bool, pinned []chunkKey) {
	var cold []metadata.IndexEntry
	pinSeen := map[chunkKey]bool{}
	pin := func(e metadata.IndexEntry) {
		for _, s := range a.reader.chunksOf(e) {
			if !pinSeen[s.key] {
				pinSeen[s.key] = true
				pinned = append(pinned, s.key)
				a.reader.chunks.pin(s.key)
			}
		}
	}
	// The plan covers what the response can hold, partitions in the
	// request's order (as readParts fills it): with thousands of
	// partitions a response holds a few of each one's entries, and
	// planning more would cost lookups for nothing. A partition past that
	// still gives its next entry, so chunks are read oldest first for all
	// of them.
	room := maxBytes
	for _, fp := range parts {
		fp.plan = nil
		if !fp.ok {
			continue
		}
		marks, err := a.marks.Get(ctx, fp.topic, fp.part)
		if err != nil || fp.offset < marks.Start || fp.offset >= marks.Next {
			continue
		}
		// Being read from here: chunks read for any partition decode this
		// one's extents too.
		a.reader.noteRead(metadata.PartitionID{Topic: fp.topic.ID, Partition: fp.part}, fp.offset)
		want := min(int64(fp.max), room)
		entries, _, err := a.reader.entries(ctx, fp.topic, fp.part, fp.offset, marks.Next, max(want, 1))
		if err != nil {
			continue // the read reports it
		}
		if want <= 0 {
			if len(entries) > 0 && !a.reader.cache.has(keyOf(entries[0])) {
				cold = append(cold, entries[0])
			}
			continue
		}
		for _, e := range entries {
			if want <= 0 {
				break
			}
			// Stored bytes stand in for decoded ones, which are at least
			// as many: the estimate errs toward one entry more.
			want -= e.Length
			room -= e.Length
			fp.plan = append(fp.plan, e)
			// Entries to decode from chunks are planned like those to read:
			// a cached chunk costs nothing, and is pinned if it is used.
			if !a.reader.cache.has(keyOf(e)) {
				cold = append(cold, e)
			}
		}
	}
	if len(cold) == 0 {
		return nil, false, pinned
	}
	slices.SortFunc(cold, chunkOrder)
	// Read the oldest chunks, about a response's worth, within what the
	// cache can take of what they bring in (a chunk's other partitions
	// are decoded for their readers), and always at least one.
	budget := min(maxBytes, a.reader.cache.aheadFree())
	allowed = map[extentKey]bool{}
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
		if read+add > budget && (len(allowed) > 0 || !force) {
			throttled = true
			continue
		}
		read += add
		for _, s := range spans {
			chunks[s.key] = true
		}
		allowed[keyOf(e)] = true
		start = append(start, e)
		pin(e)
	}
	if !a.draining.Load() {
		a.reader.prefetch(a.ctx, &a.wg, start)
	}
	return allowed, throttled, pinned
}

// readAhead starts reading the entries each partition that returned
// batches will need next, so those reads overlap the client's processing
// of this response: about as much of each as it returned this time.
func (a *Agent) readAhead(parts []*fetchPart) {
	if a.draining.Load() {
		return
	}
	var next []metadata.IndexEntry
	for _, fp := range parts {
		if !fp.ok || fp.next <= 0 {
			continue
		}
		want := min(int64(fp.max), fp.got)
		entries, _, err := a.reader.entries(a.ctx, fp.topic, fp.part, fp.next, fp.hw, want)
		fp.next, fp.got = 0, 0
		if err != nil {
			continue
		}
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
func (a *Agent) readPart(ctx context.Context, fp *fetchPart, budget int64, first bool, allowed map[extentKey]bool, spare *bool) (int64, error) {
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
			fp.next, fp.got, fp.hw = out.next, out.n, marks.Next // for readAhead
			a.reader.noteRead(metadata.PartitionID{Topic: fp.topic.ID, Partition: fp.part}, out.next)
		}
	}()
	offset := fp.offset
	retried := false
	entries := fp.plan
	// An entry not ready is read only if the plan allows it, or with the
	// response's one spare read (readParts).
	mayRead := func(e metadata.IndexEntry) bool {
		if allowed[keyOf(e)] || a.reader.ready(e) {
			return true
		}
		if *spare && out.n == 0 {
			*spare = false
			return true
		}
		return false
	}
	for iter := 0; offset < marks.Next && iter < 64; iter++ {
		reload := false
		if len(entries) == 0 || entries[len(entries)-1].Last < offset {
			var ok bool
			entries, ok, err = a.reader.entries(ctx, fp.topic, fp.part, offset, marks.Next, max(limit-out.n, 1))
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
