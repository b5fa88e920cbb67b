package agent

// Fetch, v4–v18 (RecordBatch v2; v13+ names topics by ID).
//
// Any agent serves any partition. For each partition the agent checks the
// offset against the log start and high watermark it follows through etcd
// (re-reading etcd before answering OFFSET_OUT_OF_RANGE, so a lagging
// watch never sends a consumer to auto.offset.reset), finds the index
// entries from the fetch offset in its index windows, and serves their
// extents from its cache of decoded batches (offsets assigned), which
// object chunks read once for every partition in them fill (the logread
// package, whose fetch.go says how a request's reads are planned and
// flow-controlled).
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
//
// A client in a zone other than this agent's (zones.go: its client ID, its
// rack ID, or its address) is answered, from v11, with no records and the
// preferred read replica (KIP-392) of each partition that has a replica
// in the client's zone (Metadata spreads replicas across zones). The
// client fetches from there, and no record crosses zones.

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/agent/internal/logread"
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
	fetchMemWait  = 25 * time.Millisecond
)

// fetchPart is one partition of a fetch request.
type fetchPart struct {
	resp      *kmsg.FetchResponseTopicPartition
	ok        bool // resolved; read it
	committed bool // read_committed: up to the last stable offset
	read      logread.Part
	// parts are the batches of the last read when they came in several
	// slices (cached extents), until joinRun copies them into the
	// response.
	parts [][]byte
}

// upper is where a fetch of the part stops: the high watermark, or for a
// read_committed fetch the last stable offset.
func (fp *fetchPart) upper(m metadata.Watermarks) int64 {
	if fp.committed {
		return m.Stable
	}
	return m.Next
}

func (a *Agent) serveFetch(ctx context.Context, rq *request) {
	req := rq.req.(*kmsg.FetchRequest)
	rq.conn.goAsync(func() {
		var held fetchHold
		resp := a.fetch(ctx, rq.conn, req, rq.zone, &held)
		rq.written = func() {
			a.fetchMem.give(held.bytes)
			if held.bytes > 0 {
				a.fetchHolding.Add(-1)
			}
			held.release(a.responseBufs) // never encoded (the connection closed)
		}
		// Once encoded, the response holds a copy of its batches: the
		// buffers they were joined into go back before it is written.
		rq.encoded = func() { held.release(a.responseBufs) }
		rq.reply(resp)
	})
}

// fetchHold is what a fetch's response holds: the bytes of its record
// batches, taken from the agent's fetch memory budget (fetchMem) until it
// is written, and the buffers batches were joined into (joinRun), given
// back to responseBufs once it is encoded.
type fetchHold struct {
	bytes int64
	mu    sync.Mutex // guards bufs: a fetch's partitions are read at once
	bufs  [][]byte
}

// keep adds a buffer the response's batches are in (the read pass's
// goroutines call it at once).
func (h *fetchHold) keep(b []byte) {
	if b == nil {
		return
	}
	h.mu.Lock()
	h.bufs = append(h.bufs, b)
	h.mu.Unlock()
}

// take returns the buffers kept and forgets them.
func (h *fetchHold) take() [][]byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	bufs := h.bufs
	h.bufs = nil
	return bufs
}

// release gives the buffers kept back to bufs.
func (h *fetchHold) release(bufs *bufPool) { bufs.putAll(h.take()) }

// fetch serves a fetch request. held receives what its response holds
// until it is written.
func (a *Agent) fetch(ctx context.Context, c *conn, req *kmsg.FetchRequest, zone string, held *fetchHold) *kmsg.FetchResponse {
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	if req.Version >= 7 && req.SessionID != 0 {
		resp.ErrorCode = kerr.FetchSessionIDNotFound.Code
		return resp
	}
	var parts []*fetchPart
	var shards []metadata.ShardID
	seenShard := map[metadata.ShardID]bool{}
	failed := false
	// A client in another zone is sent to a replica in its own, if the
	// partition has one (KIP-392's preferred read replica).
	var live []metadata.AgentInfo
	if zone != "" && zone != a.cfg.Zone && req.Version >= 11 {
		live = a.liveAgents()
	}
	redirected := false
	req.Topics = uniqueFetchTopics(req.Version, req.Topics)
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
			fp := &fetchPart{resp: sp, committed: req.IsolationLevel == 1, read: logread.Part{Offset: rp.FetchOffset, Max: int64(rp.PartitionMaxBytes)}}
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
			if live != nil {
				replicas := rankReplicas(live, metadata.PartitionKey(t.Name, rp.Partition/t.ShardSize), max(1, int(t.ReplicationFactor)))
				if i := slices.IndexFunc(replicas, func(ag metadata.AgentInfo) bool { return ag.Zone == zone }); i >= 0 {
					sp.PreferredReadReplica = replicas[i].NodeID
					redirected = true
					continue
				}
			}
			fp.read.Topic, fp.read.Partition, fp.ok = t, rp.Partition, true
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
	// The broker's fetch.max.bytes bounds every response, whatever the
	// client asks.
	maxBytes = min(maxBytes, a.cfg.FetchMaxBytes)
	// The response's record batches come out of the agent's fetch memory
	// budget: with many fetches at once, each gets less than it asked for
	// (at least fetchMemFloor), never more than the agent can hold. Each
	// read pass takes its room and gives back at once what the response
	// does not hold, so a long poll waiting for data holds nothing.
	//
	// A pass takes no more than an equal share of the budget among the
	// fetches holding some of it (reading, or with a response not yet
	// written) and the connections that received batches in the last
	// second (fetchReaders), so the first of several does not leave the
	// others a floor's worth each until its response is written: a
	// response costs per partition as well as per byte, and a thousand
	// partitions in a 1 MiB response cost nearly what they cost in a
	// 16 MiB one. A group's consumers send their fetches together; the
	// readers count gives each its share from the first, where counting
	// holders alone let the first take most of the budget. A fetch is
	// counted in holding while held.bytes > 0, and during its passes.
	//
	// A fetch of hundreds of partitions or more waits up to fetchMemWait
	// for its share to be free (responses being written give theirs back
	// within milliseconds) rather than read them all into what is left:
	// most of its cost is per partition, and a client reading a thousand
	// partitions 1 MiB at a time makes a round trip per MiB. Fetches of a
	// few partitions, such as tailing consumers', never wait.
	read := func(force bool) (int64, bool, bool) {
		if held.bytes == 0 {
			a.fetchHolding.Add(1)
		}
		now := time.Now()
		share := fetchMemBytes / int64(max(a.fetchHolding.Load(), int32(a.fetchReaders.count(c, now))))
		a.fetchMem.give(held.bytes) // this pass replaces the previous one's batches
		want := min(int64(maxBytes), share)
		var reserved int64
		if len(parts) >= readGroupParts {
			reserved = a.fetchMem.takeWithin(ctx, want, fetchMemFloor, fetchMemWait)
		} else {
			reserved = a.fetchMem.take(want, fetchMemFloor)
		}
		// The pass replaces the previous one's batches: the buffers they
		// were joined into go back once it has.
		prev := held.take()
		n, errs, throttled := a.readParts(ctx, parts, int32(reserved), force, held)
		a.responseBufs.putAll(prev)
		held.bytes = 0
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				held.bytes += int64(len(p.RecordBatches))
			}
		}
		a.fetchMem.give(reserved - held.bytes)
		if held.bytes == 0 {
			a.fetchHolding.Add(-1)
		}
		switch {
		case held.bytes > 0:
			a.fetchReaders.read(c, now)
		case !throttled && !errs:
			// Nothing to read: the connection's consumer has caught up
			// (it long-polls at the high watermark). Until it reads
			// again it shares nothing, and counting it would halve the
			// share of a group catching up beside it (such as the next
			// group reading a topic the last one finished).
			a.fetchReaders.forget(c)
		}
		return n, errs, throttled
	}
	// A fetch held back with nothing to serve waits at most
	// throttleHold for slower readers to free the cache's read-ahead
	// share, then reads anyway.
	var heldSince time.Time
	for {
		// Subscribe before reading, so a commit between the read and the
		// wait is not missed.
		woken, unsubscribe := a.marks.Subscribe(shards)
		force := !heldSince.IsZero() && time.Since(heldSince) >= throttleHold
		n, errs, throttled := read(force)
		if throttled && n == 0 && heldSince.IsZero() {
			heldSince = time.Now()
		} else if !throttled || n > 0 {
			heldSince = time.Time{}
		}
		if n >= int64(req.MinBytes) || errs || failed || redirected || wait <= 0 || ctx.Err() != nil {
			unsubscribe()
			return resp
		}
		remaining := time.Until(deadline)
		if remaining <= 0 {
			unsubscribe()
			return resp
		}
		var room <-chan struct{}
		stopRoom := func() {}
		if throttled && n == 0 {
			// Data is there, held back for the cache's read-ahead room:
			// look again once there is room for a chunk, or when the hold
			// ends (then read anyway).
			room, stopRoom = a.reader.RoomForChunk()
			select {
			case <-room:
				// There is room already: what held the pass back is not
				// room (another reader took it meanwhile, or a plan's
				// limit), so look again shortly.
				room = nil
				remaining = min(remaining, throttleRecheck)
			default:
				remaining = min(remaining, max(throttleHold-time.Since(heldSince), throttleRecheck))
			}
		} else if throttled {
			// Some data came, less than MinBytes: look again shortly
			// rather than at the next commit.
			remaining = min(remaining, throttleRecheck)
		}
		timer := time.NewTimer(remaining)
		select {
		case <-woken:
		case <-room:
		case <-timer.C:
		case <-ctx.Done():
		}
		timer.Stop()
		stopRoom()
		unsubscribe()
		if time.Now().After(deadline) {
			// Read once more: a commit may have landed right at the end.
			read(true)
			return resp
		}
	}
}

// uniqueFetchTopics returns a fetch request's topics with each partition
// once, as Kafka's broker reads a request into a map: a topic named twice
// (by name, or from v13 by ID) is one topic, and a partition named twice
// is answered once, with what the last naming asked, in the place of the
// first. One small request therefore never makes a response of many
// copies of one partition.
func uniqueFetchTopics(version int16, topics []kmsg.FetchRequestTopic) []kmsg.FetchRequestTopic {
	type topicKey struct {
		name string
		id   [16]byte
	}
	keyOf := func(rt kmsg.FetchRequestTopic) topicKey {
		if version >= 13 {
			return topicKey{id: rt.TopicID}
		}
		return topicKey{name: rt.Topic}
	}
	type partKey struct {
		topic     topicKey
		partition int32
	}
	total := 0
	for _, rt := range topics {
		total += len(rt.Partitions)
	}
	var (
		out     []kmsg.FetchRequestTopic
		topicAt = make(map[topicKey]int, len(topics))
		partAt  = make(map[partKey]int, total)
	)
	for _, rt := range topics {
		tk := keyOf(rt)
		ti, ok := topicAt[tk]
		if !ok {
			ti = len(out)
			topicAt[tk] = ti
			t := rt
			t.Partitions = nil
			out = append(out, t)
		}
		for _, rp := range rt.Partitions {
			pk := partKey{tk, rp.Partition}
			if pi, ok := partAt[pk]; ok {
				out[ti].Partitions[pi] = rp
				continue
			}
			partAt[pk] = len(out[ti].Partitions)
			out[ti].Partitions = append(out[ti].Partitions, rp)
		}
	}
	return out
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
// state, reading through one planned pass of the reader (logread.Fetch).
// It returns the bytes of records gathered, whether any partition got an
// error, and whether the plan was throttled (data is there, held back for
// the cache's room).
//
// When everything the plan covers is cached, the partitions of a fetch of
// thousands are read by several goroutines at once (GOMAXPROCS shared
// among the fetches reading at the time, each goroutine with a contiguous
// run of at least readGroupParts partitions), all
// taking from the response's one byte budget: serving such a fetch costs
// per partition and per extent, not only per byte, and the client waits
// for the whole response before it asks again. A plan that reads from the
// bucket is read in order, oldest chunks first, by one goroutine.
//
// Every resolved partition's batches are replaced, and the buffers they
// were joined into are added to held.
func (a *Agent) readParts(ctx context.Context, parts []*fetchPart, maxBytes int32, force bool, held *fetchHold) (n int64, errs, throttled bool) {
	var (
		live []*fetchPart
		plan []*logread.Part
	)
	for _, fp := range parts {
		if !fp.ok {
			continue
		}
		fp.read.Start, fp.read.HW = 0, 0
		if marks, err := a.marks.Get(ctx, fp.read.Topic, fp.read.Partition); err == nil {
			fp.read.Start, fp.read.HW = marks.Start, fp.upper(marks)
		}
		live = append(live, fp)
		plan = append(plan, &fp.read)
	}
	began := time.Now()
	f := a.reader.Plan(ctx, plan, int64(maxBytes), force)
	defer f.Done()
	budget := &responseBudget{left: int64(maxBytes)}
	readRun := func(run []*fetchPart) (n int64, errs bool) {
		for _, fp := range run {
			got, err := a.readPart(ctx, f, fp, began, budget)
			if err != nil {
				errs = true
			}
			n += got
		}
		held.keep(joinRun(run, a.responseBufs))
		return n, errs
	}
	busy := int(a.reading.Add(1))
	defer a.reading.Add(-1)
	groups := min(runtime.GOMAXPROCS(0)/busy, len(live)/readGroupParts)
	if groups <= 1 || !f.Ready() {
		n, errs = readRun(live)
		return n, errs, f.Throttled()
	}
	type result struct {
		n    int64
		errs bool
	}
	results := make([]result, groups)
	var wg sync.WaitGroup
	for g := range groups {
		run := live[len(live)*g/groups : len(live)*(g+1)/groups]
		wg.Go(func() { results[g].n, results[g].errs = readRun(run) })
	}
	wg.Wait()
	for _, r := range results {
		n += r.n
		errs = errs || r.errs
	}
	return n, errs, f.Throttled()
}

// readGroupParts is the fewest partitions of a fetch one goroutine reads.
const readGroupParts = 256

// joinRun gives each partition of run whose batches came in several
// slices one contiguous copy of them, all in one buffer for the run (a
// fetch of thousands of partitions, each a few small extents, then takes
// one buffer rather than one per partition), taken from bufs. It returns
// that buffer, to be given back once the response is encoded (nil if
// every partition's batches came in one slice).
func joinRun(run []*fetchPart, bufs *bufPool) []byte {
	n := 0
	for _, fp := range run {
		for _, p := range fp.parts {
			n += len(p)
		}
	}
	if n == 0 {
		return nil
	}
	// A pooled buffer: a new one of megabytes is zeroed by the runtime
	// before it is written over, and left to the collector.
	buf := bufs.get(n)
	for _, fp := range run {
		if fp.parts == nil {
			continue
		}
		start := len(buf)
		for _, p := range fp.parts {
			buf = append(buf, p...)
		}
		fp.resp.RecordBatches = buf[start:len(buf):len(buf)]
		fp.parts = nil
	}
	return buf
}

// responseBudget is what is left of a fetch response's bytes, shared by
// the goroutines reading its partitions.
type responseBudget struct {
	mu      sync.Mutex
	left    int64
	got     int64 // bytes returned so far
	reading int   // reads holding a reservation
}

// reserve takes bytes for one partition's read: up to want, and no more
// than an equal share of what is left with the reads under way, so that
// one partition's reservation (its maximum, mostly unused) does not leave
// the others of the response nothing. first reports that no partition
// has returned batches yet, so the read may return one whole batch beyond
// the limit, as Kafka does (with several readers at once, each may; the
// response then exceeds its maximum by those batches, as it may by one).
func (b *responseBudget) reserve(want int64) (limit int64, first bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	limit = min(want, max(b.left, 0)/int64(b.reading+1))
	b.left -= limit
	b.reading++
	return limit, b.got == 0
}

// settle ends a read that reserved limit bytes and returned used.
func (b *responseBudget) settle(limit, used int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.left += limit - used
	b.got += used
	b.reading--
}

// readPart reads one partition from its fetch offset, after checking the
// offset against the partition's watermarks (confirmed with etcd, by a
// read begun at or after began, when out of range). What it returns is
// taken from budget; when nothing has been returned yet, one whole batch
// is returned even if it exceeds the limits.
func (a *Agent) readPart(ctx context.Context, f *logread.Fetch, fp *fetchPart, began time.Time, budget *responseBudget) (int64, error) {
	sp := fp.resp
	p := &fp.read
	sp.ErrorCode = 0
	sp.RecordBatches = []byte{}
	fp.parts = nil
	marks, err := a.marks.Get(ctx, p.Topic, p.Partition)
	if err != nil {
		sp.ErrorCode = kerr.RequestTimedOut.Code
		return 0, err
	}
	if p.Offset < marks.Start || p.Offset > marks.Next {
		// The watch may lag: confirm with etcd before sending the client to
		// auto.offset.reset.
		if marks, err = a.reloadMarks(ctx, p.Topic, p.Partition, began); err != nil {
			sp.ErrorCode = kerr.RequestTimedOut.Code
			return 0, err
		}
	}
	sp.HighWatermark = marks.Next
	sp.LastStableOffset = marks.Stable
	sp.LogStartOffset = marks.Start
	if p.Offset < marks.Start || p.Offset > marks.Next {
		sp.ErrorCode = kerr.OffsetOutOfRange.Code
		return 0, kerr.OffsetOutOfRange
	}
	upper := fp.upper(marks)
	if p.Offset >= upper {
		return 0, nil
	}
	limit, first := budget.reserve(p.Max)
	var returned int64
	defer func() { budget.settle(limit, returned) }()
	if limit <= 0 && !first {
		return 0, nil
	}
	p.Start, p.HW = marks.Start, upper
	out, err := f.Read(ctx, p, limit, first)
	if fp.committed && out.Bytes > 0 {
		// The aborted transactions among what is returned, so the client
		// drops their records.
		aborted, aerr := a.aborted.between(ctx, p.Topic, p.Partition, p.Offset, out.Next)
		if aerr != nil {
			sp.ErrorCode = kerr.RequestTimedOut.Code
			sp.RecordBatches = []byte{}
			return 0, fmt.Errorf("%w: %w", logread.ErrIndex, aerr)
		}
		for _, ab := range aborted {
			t := kmsg.NewFetchResponseTopicPartitionAbortedTransaction()
			t.ProducerID, t.FirstOffset = ab.ProducerID, ab.First
			sp.AbortedTransactions = append(sp.AbortedTransactions, t)
		}
	}
	returned = out.Bytes
	switch len(out.Parts) {
	case 0:
	case 1:
		// Batches from one extent are referenced, not copied (the
		// response is encoded from them once, when it is written).
		sp.RecordBatches = out.Parts[0]
	default:
		fp.parts = out.Parts // joined with the run's others (joinRun)
	}
	if err != nil {
		ke, _ := kafkaError(err)
		sp.ErrorCode = ke.Code
	}
	return out.Bytes, err
}

// reloadMarks reads a partition's watermarks from etcd into the watcher,
// by a read begun at or after since (one read serves every partition of
// the shard asking meanwhile).
func (a *Agent) reloadMarks(ctx context.Context, t metadata.Topic, p int32, since time.Time) (metadata.Watermarks, error) {
	if err := a.marks.Refresh(ctx, t.Shard(p), since); err != nil {
		return metadata.Watermarks{}, err
	}
	m, _ := a.marks.Cached(t, p)
	return m, nil
}
