package metadata

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Errors a batch can get at commit.
var (
	// ErrOutOfOrderSequence: an idempotent producer's batch does not
	// follow its previous one.
	ErrOutOfOrderSequence = errors.New("metadata: out of order sequence number")
	// ErrInvalidProducerEpoch: the batch's producer epoch is older than
	// the partition has seen; a newer producer instance fenced it.
	ErrInvalidProducerEpoch = errors.New("metadata: producer epoch is older than the current one")
	// ErrUnknownPartition: the topic was deleted (or recreated) or the
	// partition does not exist.
	ErrUnknownPartition = errors.New("metadata: unknown topic or partition")
	// ErrObjectDoomed: the compactor has marked the segment object for
	// deletion (it was unreferenced for longer than the grace period), or
	// it is as old as the collector's horizon (object_marks.go), so it may
	// no longer be committed; the producer retries.
	ErrObjectDoomed = errors.New("metadata: segment object is being garbage-collected; it can no longer be committed")
	// ErrTxnEnded: a transactional batch arrived after the marker that
	// ended its transaction on the partition (delayed past the end).
	ErrTxnEnded = errors.New("metadata: the batch's transaction already ended on this partition")
	// ErrCommitTooLarge: one partition's share of a flush needs a log
	// entry larger than an etcd request may be. Writers bound their
	// flushes so this does not happen.
	ErrCommitTooLarge = errors.New("metadata: a partition's share of the flush is too large for one etcd request")
)

// Append is one partition's share of a segment object, to be committed.
type Append struct {
	Topic     Topic // name, ID, partitions, shard size and CreateRevision are used
	Partition int32
	Object    string
	// ObjectSize is the object's size in bytes (readers size their GETs
	// with it).
	ObjectSize int64
	Offset     int64 // extent byte offset in the object
	Length     int64
	Batches    []BatchMeta
}

func (a Append) id() PartitionID { return PartitionID{Topic: a.Topic.ID, Partition: a.Partition} }

// BatchOutcome is what a committed batch got.
type BatchOutcome struct {
	// BaseOffset is the batch's first offset (for a duplicate, the one it
	// got the first time).
	BaseOffset int64
	// Duplicate is set for a retried batch that was already committed.
	Duplicate bool
	// Err is ErrOutOfOrderSequence, ErrInvalidProducerEpoch,
	// ErrUnknownPartition, ErrObjectDoomed or ErrCommitTooLarge; the batch
	// is not part of the log.
	Err error
}

// CommitResult is the outcome of one Append.
type CommitResult struct {
	Batches []BatchOutcome
	// Next is the partition's high watermark after the commit.
	Next int64
	// Entry is the index entry written, if any batch was accepted.
	Entry *IndexEntry
	// Revision is the etcd revision of the commit (0 if nothing was
	// written).
	Revision int64
}

// CommitConfig tunes a Committer.
type CommitConfig struct {
	// MaxTxnOps is etcd's per-transaction op limit (--max-txn-ops).
	// Default 128, etcd's default.
	MaxTxnOps int
	// MaxRequestBytes is etcd's request size limit
	// (--max-request-bytes). Default 1.5 MiB, etcd's default.
	MaxRequestBytes int
	// ProducerExpiry is how long an idle producer's sequences are kept.
	// Default 24h (Kafka's producer.id.expiration.ms).
	ProducerExpiry time.Duration
	// MaxProducersPerPartition caps the idempotent producers a partition
	// remembers; beyond it the least recently written is forgotten.
	// Default DefaultMaxProducersPerPartition.
	MaxProducersPerPartition int
	// SnapshotEvery is how many entries a shard's log may grow past its
	// producer snapshots before the committer writes new ones. Default 64.
	SnapshotEvery int
	// IdleShardTTL is how long the committer keeps a shard's state after
	// its last commit there. Default 10m.
	IdleShardTTL time.Duration
	// Now returns the commit time; tests may replace it.
	Now func() time.Time
	// Observer, if set, is told about every transaction the committer
	// runs.
	Observer CommitObserver
	// OnCommit, if set, learns every log entry the committer wrote, once
	// its transaction committed, on the committing goroutine.
	OnCommit func(ShardID, *LogEntry)
}

// DefaultMaxRequestBytes is etcd's default --max-request-bytes.
const DefaultMaxRequestBytes = 1536 * 1024

// DefaultMaxTxnOps is etcd's default --max-txn-ops: the most operations
// one transaction may hold.
const DefaultMaxTxnOps = 128

func (c *CommitConfig) setDefaults() {
	if c.MaxTxnOps <= 0 {
		c.MaxTxnOps = DefaultMaxTxnOps
	}
	c.MaxTxnOps = max(c.MaxTxnOps, 8)
	if c.MaxRequestBytes <= 0 {
		c.MaxRequestBytes = DefaultMaxRequestBytes
	}
	c.MaxRequestBytes = max(c.MaxRequestBytes, 64<<10)
	if c.ProducerExpiry == 0 {
		c.ProducerExpiry = 24 * time.Hour
	}
	if c.MaxProducersPerPartition <= 0 {
		c.MaxProducersPerPartition = DefaultMaxProducersPerPartition
	}
	if c.SnapshotEvery <= 0 {
		c.SnapshotEvery = 64
	}
	if c.IdleShardTTL <= 0 {
		c.IdleShardTTL = 10 * time.Minute
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// txnBudget is the bytes of a commit transaction the committer aims at:
// the request limit less room for the request's framing.
func (c *CommitConfig) txnBudget() int { return c.MaxRequestBytes - 16<<10 }

// CommitObserver learns how a Committer's etcd transactions go, so the
// caller can measure them without metadata depending on a metrics
// library. It is called on the committing goroutine and must not block.
type CommitObserver interface {
	ObserveCommitTxn(d time.Duration, outcome TxnOutcome)
}

// TxnOutcome is how one commit transaction ended.
type TxnOutcome int

const (
	// TxnCommitted: the compares held and the writes were made (or, for a
	// commit with nothing to write, the state it checked was current).
	TxnCommitted TxnOutcome = iota
	// TxnConflict: a compare failed (another agent committed the shard,
	// or the topic changed); the commit is recomputed.
	TxnConflict
	// TxnFailed: etcd could not be reached or refused the request.
	TxnFailed
)

func (o TxnOutcome) String() string {
	switch o {
	case TxnCommitted:
		return "committed"
	case TxnConflict:
		return "conflict"
	}
	return "failed"
}

// Committer commits segment objects' partition shares to etcd. For each
// shard a flush touched it writes one log entry (next sequence number):
// the extents, the offsets they get, every partition's new high
// watermark and the idempotent batches accepted. The transaction compares
// that no entry was added to the shard since the one the committer last
// saw, so offsets are assigned exactly once whatever agents commit.
// It remembers each shard's state (high watermarks, producers), so the
// common case is one etcd round trip per flush; when another agent
// committed meanwhile the transaction's else branch returns the new
// entries and the commit is recomputed.
//
// A flush's shards are packed into as few transactions as etcd's op and
// request size limits allow; each shard's commit is atomic. Commit calls
// must not overlap (the agent commits its flushes one at a time, in
// order, which also keeps each producer's batches in order).
type Committer struct {
	store  *Store
	cfg    CommitConfig
	shards map[ShardID]*shardState
	swept  time.Time
	// entryVersion is the log entry encoding of the Commit under way.
	entryVersion int
	stats        struct {
		shards, producers   atomic.Int64
		entries, entryBytes atomic.Int64
	}
}

// CommitterStats says what a Committer holds and has written.
type CommitterStats struct {
	// Shards and Producers are the shards whose state it holds and the
	// idempotent producers in them (each at most the cap per partition).
	Shards, Producers int64
	// Entries and EntryBytes count the log entries it wrote and their
	// bytes.
	Entries, EntryBytes int64
}

// Stats returns the committer's figures. It is safe to call while a
// Commit runs.
func (c *Committer) Stats() CommitterStats {
	return CommitterStats{
		Shards: c.stats.shards.Load(), Producers: c.stats.producers.Load(),
		Entries: c.stats.entries.Load(), EntryBytes: c.stats.entryBytes.Load(),
	}
}

// count refreshes the held figures.
func (c *Committer) count() {
	var producers int64
	for _, st := range c.shards {
		for _, pp := range st.producers {
			producers += int64(pp.len())
		}
	}
	c.stats.shards.Store(int64(len(c.shards)))
	c.stats.producers.Store(producers)
}

// shardState is what the committer knows of a shard: the state after its
// entry seq.
type shardState struct {
	seq       int64
	nexts     []int64
	stables   []StableMark // the last entry's
	producers map[int32]*partitionProducers
	// Snapshots: the floor's sequence and mod revision, each partition's
	// snapshot sequence, the partitions changed since theirs, and the
	// entries applied since the floor.
	floor    int64
	floorRev int64
	snapSeq  map[int32]int64
	changed  map[int32]bool
	since    int
	used     time.Time
}

// NewCommitter returns a Committer.
func (s *Store) NewCommitter(cfg CommitConfig) *Committer {
	cfg.setDefaults()
	return &Committer{store: s, cfg: cfg, shards: map[ShardID]*shardState{}}
}

// Forget drops what the committer knows of a partition's shard, so its
// next commit there starts from etcd.
func (c *Committer) Forget(id PartitionID) {
	for sh := range c.shards {
		if sh.Topic == id.Topic {
			delete(c.shards, sh)
		}
	}
}

// unit is a part of a commit that becomes one log entry: appends of one
// shard, in partition order.
type unit struct {
	shard ShardID
	topic Topic
	idx   []int // into the appends
	// prep is the unit prepared against prepFor's state at prepSeq.
	prep    *prepared
	prepFor *shardState
	prepSeq int64
}

// Commit commits appends and returns one result per append. An error means
// etcd could not be reached or refused a transaction; appends of
// transactions that did not commit are then not part of the log (or, if
// etcd applied a transaction whose answer was lost, may be), and their
// results are zero: no batch outcomes, no entry. Callers must not answer
// producers with offsets from them.
func (c *Committer) Commit(ctx context.Context, appends []Append) ([]CommitResult, error) {
	results := make([]CommitResult, len(appends))
	seen := make(map[PartitionID]bool, len(appends))
	for _, a := range appends {
		if seen[a.id()] {
			return nil, fmt.Errorf("metadata: partition %s appears twice in one commit", a.id())
		}
		seen[a.id()] = true
	}
	c.sweep()
	c.entryVersion = c.store.logEntryVersion(ctx)
	units := c.units(appends)
	var load []*unit
	for _, u := range units {
		if c.shards[u.shard] == nil {
			load = append(load, u)
		}
	}
	if err := c.loadShards(ctx, load); err != nil {
		return results, err
	}
	units = c.splitUnits(appends, units, results)
	for len(units) > 0 {
		n := c.packTxn(appends, units)
		if err := c.commitUnits(ctx, appends, units[:n], results); err != nil {
			for _, u := range units {
				delete(c.shards, u.shard)
			}
			return results, err
		}
		units = units[n:]
	}
	c.snapshot(ctx)
	c.count()
	return results, nil
}

// units groups appends by shard, in the order shards first appear.
func (c *Committer) units(appends []Append) []*unit {
	var out []*unit
	at := map[ShardID]int{}
	for i, a := range appends {
		sh := a.Topic.Shard(a.Partition)
		j, ok := at[sh]
		if !ok {
			j = len(out)
			at[sh] = j
			out = append(out, &unit{shard: sh, topic: a.Topic})
		}
		out[j].idx = append(out[j].idx, i)
	}
	for _, u := range out {
		slices.SortFunc(u.idx, func(x, y int) int { return cmp.Compare(appends[x].Partition, appends[y].Partition) })
	}
	return out
}

// splitUnits splits units whose entry would exceed the request budget
// into several (consecutive entries of one shard), by partitions. A
// single partition too large for a request fails with ErrCommitTooLarge.
func (c *Committer) splitUnits(appends []Append, units []*unit, results []CommitResult) []*unit {
	out := make([]*unit, 0, len(units))
	var split func(u *unit)
	split = func(u *unit) {
		p := c.prepare(appends, u, c.cfg.Now())
		if p.bytes() <= c.cfg.txnBudget()/2 {
			out = append(out, u)
			return
		}
		if len(u.idx) == 1 {
			results[u.idx[0]] = failAll(appends[u.idx[0]], fmt.Errorf("%w: %d bytes of index for %s", ErrCommitTooLarge, p.bytes(), appends[u.idx[0]].id()))
			return
		}
		h := len(u.idx) / 2
		split(&unit{shard: u.shard, topic: u.topic, idx: u.idx[:h]})
		split(&unit{shard: u.shard, topic: u.topic, idx: u.idx[h:]})
	}
	for _, u := range units {
		split(u)
	}
	return out
}

// packTxn returns how many of units, from the first, one transaction
// takes: distinct shards within the op and byte limits.
func (c *Committer) packTxn(appends []Append, units []*unit) int {
	topics := map[uuid.UUID]bool{}
	objects := map[string]bool{}
	shards := map[ShardID]bool{}
	bytes, aborts := 0, 0
	now := c.cfg.Now()
	for i, u := range units {
		if shards[u.shard] {
			return i
		}
		nt, no := len(topics), len(objects)
		if !topics[u.topic.ID] {
			nt++
		}
		for _, j := range u.idx {
			if !objects[appends[j].Object] {
				no++
			}
		}
		prep := c.prepare(appends, u, now)
		ops := len(shards) + 1 + nt + no + aborts + len(prep.aborted)
		b := bytes + prep.bytes()
		if i > 0 && (ops > c.cfg.MaxTxnOps || b > c.cfg.txnBudget()) {
			return i
		}
		aborts += len(prep.aborted)
		shards[u.shard] = true
		topics[u.topic.ID] = true
		for _, j := range u.idx {
			objects[appends[j].Object] = true
		}
		bytes = b
	}
	return len(units)
}

// prepared is a unit's commit computed against the shard's known state.
type prepared struct {
	u       *unit
	key     string
	entry   *LogEntry // nil when no batch was accepted
	value   []byte
	results []unitResult // in the unit's order
	// aborted are the transactions the entry's abort markers end, for
	// the aborted-transaction index (aborted.go).
	aborted []AbortedTxn
}

// unitResult is the result of the append at index i of a commit.
type unitResult struct {
	i   int
	res CommitResult
	ext int // the append's extent in the entry's Extents, or -1
}

// bytes estimates what the unit adds to a transaction request.
func (p *prepared) bytes() int {
	return 3*len(p.key) + len(p.value) + 64 + len(p.aborted)*(abortedKeyLen+64)
}

// prepare computes a unit's entry and outcomes from the shard's known
// state, without changing it.
func (c *Committer) prepare(appends []Append, u *unit, now time.Time) *prepared {
	st := c.shards[u.shard]
	if u.prep != nil && u.prepFor == st && u.prepSeq == st.seq {
		return u.prep
	}
	p := c.prepareFresh(appends, u, st, now)
	u.prep, u.prepFor, u.prepSeq = p, st, st.seq
	return p
}

// prepareFresh is prepare without the cache.
func (c *Committer) prepareFresh(appends []Append, u *unit, st *shardState, now time.Time) *prepared {
	nowMs := now.UnixMilli()
	first, end := u.topic.ShardPartitions(u.shard.Shard)
	p := &prepared{u: u, key: c.store.logKey(u.shard, st.seq+1), results: make([]unitResult, 0, len(u.idx))}
	e := &LogEntry{Seq: st.seq + 1, SeqLast: st.seq + 1, Committed: nowMs, Base: first}
	e.Nexts = make([]int64, max(int(end-first), len(st.nexts)))
	copy(e.Nexts, st.nexts)
	// What the unit's appends can add, counted first so that the
	// outcomes, extents and producer deltas are each allocated once for
	// the unit rather than per partition: a wide flush has thousands.
	batches, deltas := 0, 0
	for _, i := range u.idx {
		bs := appends[i].Batches
		batches += len(bs)
		for k, b := range bs {
			if b.ProducerID >= 0 && (k == 0 || bs[k-1].ProducerID != b.ProducerID) {
				deltas++
			}
		}
	}
	outcomes := make([]BatchOutcome, batches)
	e.Extents = make([]Extent, 0, len(u.idx))
	e.Producers = make([]ProducerDelta, 0, deltas)
	var (
		over tentatives // this append's producers, over the known states
		news []newSeq   // this append's accepted batches, by delta
		db   deltaBatches
	)
	objects := map[string]int32{}
	stables := make(map[int32]int64, len(st.stables))
	for _, m := range st.stables {
		stables[m.Partition] = m.Offset
	}
	accepted := 0
	for _, i := range u.idx {
		a := appends[i]
		slot := a.Partition - first
		if a.Partition < first || a.Partition >= end || slot >= int32(len(e.Nexts)) {
			p.results = append(p.results, unitResult{i: i, res: failAll(a, ErrUnknownPartition), ext: -1})
			continue
		}
		pp := st.producers[a.Partition]
		over.reset()
		news = news[:0]
		firstDelta := len(e.Producers)
		var aborted []AbortedTxn
		res := CommitResult{Batches: outcomes[:len(a.Batches):len(a.Batches)]}
		outcomes = outcomes[len(a.Batches):]
		x := Extent{Partition: a.Partition, Offset: a.Offset, Length: a.Length, MinTimestamp: maxInt64, MaxTimestamp: minInt64}
		next := e.Nexts[slot]
		// The partition's last stable offset with the batches so far
		// (end is past them): its oldest open transaction's first offset,
		// over the tentative states.
		stableAt := func(end int64) int64 {
			lso := pp.stable(end, over.has)
			for k := range over.list {
				if t := &over.list[k]; t.st.InTxn {
					lso = min(lso, t.st.TxnFirst)
				}
			}
			return lso
		}
		for bi, b := range a.Batches {
			if b.ProducerID >= 0 {
				var (
					cur  *producerItem
					view producerItem
				)
				if t := over.get(b.ProducerID); t != nil {
					view = producerItem{id: b.ProducerID, ProducerState: t.state()}
					cur = &view
				} else if it := pp.get(b.ProducerID); it != nil && (it.InTxn || it.LastWrite >= nowMs-c.cfg.ProducerExpiry.Milliseconds()) {
					cur = it
				}
				var out BatchOutcome
				if b.Marker != MarkerNone {
					out = checkMarker(cur, b)
				} else {
					out = checkBatch(cur, b)
					switch {
					case cur == nil && b.Refuse != nil:
						// A producer the partition does not know may start
						// anywhere: its writer knows better.
						out = BatchOutcome{BaseOffset: -1, Err: b.Refuse}
					case out.Err == nil && !out.Duplicate && b.Transactional && b.TxnStarted > 0 && cur != nil && b.TxnStarted <= cur.TxnEnded:
						// Admitted for a transaction whose marker is
						// already here: committing it would open a
						// transaction its coordinator has ended.
						out = BatchOutcome{BaseOffset: -1, Err: fmt.Errorf("%w: producer %d's transaction started at %d ended here (last ended: %d)", ErrTxnEnded, b.ProducerID, b.TxnStarted, cur.TxnEnded)}
					}
				}
				if out.Err != nil || out.Duplicate {
					res.Batches[bi] = out
					x.Skip = append(x.Skip, b.Ordinal)
					continue
				}
				t := over.get(b.ProducerID)
				if t == nil || t.st.Epoch != b.ProducerEpoch {
					var prev []SeqEntry
					if cur != nil && cur.Epoch == b.ProducerEpoch {
						prev = cur.Batches
					}
					fresh := tentative{id: b.ProducerID, delta: len(e.Producers)}
					fresh.st.Epoch = b.ProducerEpoch
					for _, se := range prev {
						fresh.keep(se)
					}
					if cur != nil {
						// A transaction carries over an epoch bump; its
						// marker ends it.
						fresh.st.InTxn, fresh.st.TxnFirst, fresh.st.TxnEnded = cur.InTxn, cur.TxnFirst, cur.TxnEnded
					}
					t = over.put(fresh)
					e.Producers = append(e.Producers, ProducerDelta{Partition: a.Partition, ProducerID: b.ProducerID, Epoch: b.ProducerEpoch})
				}
				d := &e.Producers[t.delta]
				switch {
				case b.Marker != MarkerNone:
					wasOpen, first := t.st.InTxn, t.st.TxnFirst
					t.st.InTxn, t.st.TxnFirst = false, 0
					t.st.TxnEnded = max(t.st.TxnEnded, b.TxnStarted)
					if wasOpen && b.Marker == MarkerAbort {
						// The stable offset right after this marker, not
						// after the append: a later marker of the append
						// may end a transaction still open here, and the
						// index scan (AbortedTxns) stops at the first
						// entry whose stable offset reaches its end.
						aborted = append(aborted, AbortedTxn{Partition: a.Partition, ProducerID: b.ProducerID, First: first, Last: next, Stable: stableAt(next + int64(b.Records))})
					}
				default:
					se := SeqEntry{FirstSeq: b.BaseSequence, LastSeq: b.lastSeq(), BaseOffset: next}
					t.keep(se)
					news = append(news, newSeq{delta: t.delta, se: se})
					if b.Transactional && !t.st.InTxn {
						t.st.InTxn, t.st.TxnFirst = true, next
					}
				}
				t.st.LastWrite = nowMs
				d.InTxn, d.TxnFirst, d.TxnEnded = t.st.InTxn, t.st.TxnFirst, t.st.TxnEnded
			}
			res.Batches[bi] = BatchOutcome{BaseOffset: next}
			if x.Batches == 0 {
				x.First = next
			}
			x.Batches++
			next += int64(b.Records)
			x.Last = next - 1
			x.MinTimestamp = min(x.MinTimestamp, b.MinTimestamp)
			x.MaxTimestamp = max(x.MaxTimestamp, b.MaxTimestamp)
		}
		db.set(e.Producers[firstDelta:], firstDelta, news, batches)
		res.Next = next
		ext := -1
		if x.Batches > 0 {
			oi, ok := objects[a.Object]
			if !ok {
				oi = int32(len(e.Objects))
				objects[a.Object] = oi
				e.Objects = append(e.Objects, ObjectRef{Key: a.Object, Size: a.ObjectSize})
			}
			x.Object = oi
			ext = len(e.Extents)
			e.Extents = append(e.Extents, x)
			e.Nexts[slot] = next
			accepted++
			if lso := stableAt(next); lso < next {
				stables[a.Partition] = lso
			} else {
				delete(stables, a.Partition)
			}
			p.aborted = append(p.aborted, aborted...)
		}
		p.results = append(p.results, unitResult{i: i, res: res, ext: ext})
	}
	for part, off := range stables {
		e.Stables = append(e.Stables, StableMark{Partition: part, Offset: off})
	}
	e.Aborted = p.aborted // in partition order, as the unit's appends are
	slices.SortFunc(e.Stables, func(x, y StableMark) int { return cmp.Compare(x.Partition, y.Partition) })
	if accepted > 0 {
		p.entry = e
		p.value = e.EncodeVersion(c.entryVersion)
		// The appends' index entries, in one allocation.
		entries := make([]IndexEntry, 0, accepted)
		for k := range p.results {
			if r := &p.results[k]; r.ext >= 0 {
				entries = append(entries, e.IndexEntry(e.Extents[r.ext]))
				r.res.Entry = &entries[len(entries)-1]
			}
		}
	}
	return p
}

// tentative is a producer's state on a partition with the batches of
// the append being prepared, its last MaxProducerBatches held in place.
type tentative struct {
	id    int64
	st    ProducerState // Batches is left nil: buf[:n] holds them
	buf   [MaxProducerBatches]SeqEntry
	n     int
	delta int // index of its delta in the entry's Producers
}

// keep adds a batch, forgetting the oldest when MaxProducerBatches are
// held.
func (t *tentative) keep(se SeqEntry) {
	if t.n == len(t.buf) {
		copy(t.buf[:], t.buf[1:])
		t.n--
	}
	t.buf[t.n] = se
	t.n++
}

// state returns the tentative state, its Batches in t's array.
func (t *tentative) state() ProducerState {
	st := t.st
	st.Batches = t.buf[:t.n]
	return st
}

// tentatives are one append's producers' tentative states.
type tentatives struct {
	list  []tentative
	index idIndex[int] // into list
}

func (o *tentatives) reset() {
	o.list = o.list[:0]
	o.index.reset()
}

func (o *tentatives) get(id int64) *tentative {
	if k, ok := o.index.get(id); ok {
		return &o.list[k]
	}
	return nil
}

func (o *tentatives) has(id int64) bool {
	_, ok := o.index.get(id)
	return ok
}

// put sets t as its producer's state, replacing the one it had, and
// returns where it is held (until the next put).
func (o *tentatives) put(t tentative) *tentative {
	k, ok := o.index.get(t.id)
	if ok {
		o.list[k] = t
	} else {
		k = len(o.list)
		o.list = append(o.list, t)
		o.index.add(t.id, k)
	}
	return &o.list[k]
}

// newSeq is a batch an append's delta (by index in the entry's
// Producers) accepts.
type newSeq struct {
	delta int
	se    SeqEntry
}

// deltaBatches gives producer deltas their Batches out of one array per
// unit.
type deltaBatches struct {
	arena  []SeqEntry
	counts []int
}

// set fills the Batches of one append's deltas, ds (the first at index
// first of the entry's Producers), from news. Each delta's batches take
// one piece of the arena, which is allocated the first time for room
// entries (the unit's batches: no more can be accepted).
func (db *deltaBatches) set(ds []ProducerDelta, first int, news []newSeq, room int) {
	if len(news) == 0 {
		return
	}
	db.counts = slices.Grow(db.counts[:0], len(ds))[:len(ds)]
	clear(db.counts)
	for _, n := range news {
		db.counts[n.delta-first]++
	}
	if cap(db.arena)-len(db.arena) < len(news) {
		db.arena = make([]SeqEntry, 0, max(room, len(news)))
	}
	for k, c := range db.counts {
		if c > 0 {
			l := len(db.arena)
			ds[k].Batches = db.arena[l : l : l+c]
			db.arena = db.arena[:l+c]
		}
	}
	for _, n := range news {
		d := &ds[n.delta-first]
		d.Batches = append(d.Batches, n.se)
	}
}

const (
	maxInt64 = int64(^uint64(0) >> 1)
	minInt64 = -maxInt64 - 1
)

// commitUnits commits units (distinct shards) in one transaction,
// recomputing after conflicts.
func (c *Committer) commitUnits(ctx context.Context, appends []Append, units []*unit, results []CommitResult) error {
	live := slices.Clone(units)
	for attempt := 0; len(live) > 0; attempt++ {
		var (
			cmps      []clientv3.Cmp
			puts      []clientv3.Op
			reads     elseReads
			topics    []Topic
			objects   []string
			topicSeen = map[uuid.UUID]bool{}
			objSeen   = map[string]bool{}
			preps     = make([]*prepared, len(live))
		)
		now := c.cfg.Now()
		for i, u := range live {
			if !topicSeen[u.topic.ID] {
				topicSeen[u.topic.ID] = true
				topics = append(topics, u.topic)
			}
			preps[i] = c.prepare(appends, u, now)
			if preps[i].entry == nil {
				continue
			}
			for _, o := range preps[i].entry.Objects {
				if !objSeen[o.Key] {
					objSeen[o.Key] = true
					objects = append(objects, o.Key)
				}
			}
		}
		for _, t := range topics {
			tkey := c.store.topicKey(t.Name)
			cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(tkey), "=", t.CreateRevision))
			reads.add(&reads.topics, clientv3.OpGet(tkey))
		}
		// The objects must not have been marked for deletion by the
		// compactor: once marked, an object is deleted unless already
		// referenced, so committing it now would acknowledge records it is
		// about to lose.
		for _, o := range objects {
			dk := c.store.doomKey(o)
			cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(dk), "=", 0))
			reads.add(&reads.objects, clientv3.OpGet(dk))
		}
		// Nor be as old as the collector's horizon: it may have deleted
		// them, marks and all, while this commit was delayed.
		if cmp, read, ok := c.store.horizonCheck(objects); ok {
			cmps = append(cmps, cmp)
			reads.add(&reads.horizon, read)
		}
		// No entry may have been added to a shard since the one known.
		for _, p := range preps {
			st := c.shards[p.u.shard]
			from, end := c.store.logKey(p.u.shard, st.seq+1), clientv3.GetPrefixRangeEnd(c.store.logPrefix(p.u.shard))
			cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(from), "=", 0).WithRange(end))
			reads.add(&reads.shards, clientv3.OpGet(from, clientv3.WithRange(end)))
			if p.entry != nil {
				puts = append(puts, clientv3.OpPut(p.key, string(p.value)))
				for _, ab := range p.aborted {
					puts = append(puts, clientv3.OpPut(c.store.abortedKey(p.u.topic.ID, ab.Partition, ab.Last), ab.value()))
				}
			}
		}
		start := time.Now()
		txn := c.store.cli.Txn(ctx).If(cmps...)
		if len(puts) > 0 {
			txn = txn.Then(puts...)
		}
		resp, err := txn.Else(reads.ops...).Commit()
		c.observe(start, resp, err)
		if err != nil {
			return fmt.Errorf("committing: %w", err)
		}
		if resp.Succeeded {
			for _, p := range preps {
				c.applyPrepared(p, resp.Header.Revision, results)
			}
			return nil
		}
		var err2 error
		live, err2 = c.absorb(ctx, appends, live, topics, objects, &reads, resp.Responses, results)
		if err2 != nil {
			return err2
		}
		if attempt > 0 && attempt%16 == 0 {
			// Contention this heavy is unusual; let the other writer
			// through.
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Duration(attempt) * time.Millisecond):
			}
		}
	}
	return nil
}

// applyPrepared makes a committed unit the shard's known state and
// records its results.
func (c *Committer) applyPrepared(p *prepared, rev int64, results []CommitResult) {
	for _, r := range p.results {
		res := r.res
		if p.entry != nil && res.Entry != nil {
			res.Revision = rev
		}
		results[r.i] = res
	}
	if p.entry != nil {
		c.stats.entries.Add(1)
		c.stats.entryBytes.Add(int64(len(p.value)))
		c.applyEntry(c.shards[p.u.shard], p.entry)
		if c.cfg.OnCommit != nil {
			c.cfg.OnCommit(p.u.shard, p.entry)
		}
	}
	c.shards[p.u.shard].used = time.Now()
}

// applyEntry advances a shard's known state past e.
func (c *Committer) applyEntry(st *shardState, e *LogEntry) {
	st.seq = e.SeqLast
	st.nexts = slices.Clone(e.Nexts)
	st.stables = e.Stables
	st.applyProducers(e, c.cfg, nil)
}

// applyProducers applies e's producer deltas (but those of partitions
// skip names), then the producer rules to the partitions they touched.
func (st *shardState) applyProducers(e *LogEntry, cfg CommitConfig, skip func(int32) bool) {
	// A fresh entry's deltas come partition by partition: the partition
	// looked up last is kept, and touched lists each run of a partition
	// (a partition listed twice is trimmed twice, which changes nothing).
	var (
		touched []int32
		pp      *partitionProducers
		at      int32 = -1
	)
	for _, d := range e.Producers {
		if skip != nil && skip(d.Partition) {
			continue
		}
		if pp == nil || d.Partition != at {
			at = d.Partition
			if pp = st.producers[at]; pp == nil {
				pp = newPartitionProducers()
				st.producers[at] = pp
			}
			touched = append(touched, at)
		}
		pp.applyDelta(d, e.Committed)
	}
	for _, p := range touched {
		st.producers[p].trim(e.Committed-cfg.ProducerExpiry.Milliseconds(), cfg.MaxProducersPerPartition)
		st.changed[p] = true
	}
	st.since++
}

// elseReads are the reads a commit's transaction runs when a comparison
// fails, and where each kind is among them: topics[i] reads the key of the
// commit's i-th topic, objects[i] the doom mark of its i-th object,
// shards[i] the log of its i-th unit past the entry known, horizon[0] (if
// any) the collector's horizon.
type elseReads struct {
	ops                     []clientv3.Op
	topics, objects, shards []int
	horizon                 []int // the collector's horizon, when compared
}

// add appends op to the reads, its position to kind.
func (r *elseReads) add(kind *[]int, op clientv3.Op) {
	*kind = append(*kind, len(r.ops))
	r.ops = append(r.ops, op)
}

// absorb reads a failed transaction's else branch (reads, answered by
// responses): topics that no longer match and doomed objects fail their
// appends; shards that moved on learn their new entries. It returns the
// units still to commit.
func (c *Committer) absorb(ctx context.Context, appends []Append, live []*unit, topics []Topic, objects []string, reads *elseReads, responses []*etcdserverpb.ResponseOp, results []CommitResult) ([]*unit, error) {
	gone := map[uuid.UUID]bool{}
	for i, t := range topics {
		kvs := responses[reads.topics[i]].GetResponseRange().Kvs
		if len(kvs) == 0 || kvs[0].CreateRevision != t.CreateRevision {
			gone[t.ID] = true
		}
	}
	doomed := map[string]bool{}
	for i, o := range objects {
		if len(responses[reads.objects[i]].GetResponseRange().Kvs) > 0 {
			doomed[o] = true
		}
	}
	for _, at := range reads.horizon {
		for o := range c.store.pastHorizon(responses[at].GetResponseRange().Kvs, objects) {
			doomed[o] = true
		}
	}
	var reload []*unit
	out := live[:0:0]
	for i, u := range live {
		if gone[u.topic.ID] {
			for _, j := range u.idx {
				results[j] = failAll(appends[j], ErrUnknownPartition)
			}
			delete(c.shards, u.shard)
			continue
		}
		var keep []int
		for _, j := range u.idx {
			if doomed[appends[j].Object] {
				results[j] = failAll(appends[j], fmt.Errorf("%w: %s", ErrObjectDoomed, appends[j].Object))
				continue
			}
			keep = append(keep, j)
		}
		if len(keep) == 0 {
			continue
		}
		if len(keep) != len(u.idx) {
			u.prep = nil
		}
		u.idx = keep
		out = append(out, u)
		kvs := responses[reads.shards[i]].GetResponseRange().Kvs
		st := c.shards[u.shard]
		ok := true
		for _, kv := range kvs {
			_, seq, valid := parseLogKey(string(kv.Key)[len(c.store.key(prefixLog)):])
			if !valid {
				ok = false
				break
			}
			e, err := DecodeLogEntry(string(kv.Key), seq, kv.Value)
			if err != nil {
				return nil, err
			}
			if e.Seq != st.seq+1 || e.Flags&EntryMerged != 0 {
				ok = false // merged or missing entries: start again from etcd
				break
			}
			c.applyEntry(st, &e)
		}
		if !ok {
			delete(c.shards, u.shard)
			reload = append(reload, u)
		}
	}
	if err := c.loadShards(ctx, reload); err != nil {
		return nil, err
	}
	return out, nil
}

func failAll(a Append, err error) CommitResult {
	r := CommitResult{Batches: make([]BatchOutcome, len(a.Batches))}
	for i := range r.Batches {
		r.Batches[i] = BatchOutcome{BaseOffset: -1, Err: err}
	}
	return r
}

// observe reports one transaction to the observer, if any.
func (c *Committer) observe(start time.Time, resp *clientv3.TxnResponse, err error) {
	if c.cfg.Observer == nil {
		return
	}
	outcome := TxnCommitted
	switch {
	case err != nil:
		outcome = TxnFailed
	case !resp.Succeeded:
		outcome = TxnConflict
	}
	c.cfg.Observer.ObserveCommitTxn(time.Since(start), outcome)
}

// sweep forgets shards not committed to for IdleShardTTL, at most once a
// minute.
func (c *Committer) sweep() {
	now := time.Now()
	if now.Sub(c.swept) < time.Minute {
		return
	}
	c.swept = now
	for sh, st := range c.shards {
		if now.Sub(st.used) > c.cfg.IdleShardTTL {
			delete(c.shards, sh)
		}
	}
}

// loadShards reads the state of shards the committer does not know, in
// parallel: the latest entry, the producer snapshots, and the entries
// since them.
func (c *Committer) loadShards(ctx context.Context, units []*unit) error {
	if len(units) == 0 {
		return nil
	}
	var (
		mu     sync.Mutex
		first  error
		wg     sync.WaitGroup
		sem    = make(chan struct{}, 16)
		loaded = map[ShardID]*shardState{} // guarded by mu
		seen   = map[ShardID]bool{}
	)
	for _, u := range units {
		if c.shards[u.shard] != nil || seen[u.shard] {
			continue
		}
		seen[u.shard] = true
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			st, err := c.store.loadShardState(ctx, u.shard, c.cfg)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if first == nil {
					first = err
				}
				return
			}
			loaded[u.shard] = st
		}()
	}
	wg.Wait()
	maps.Copy(c.shards, loaded)
	return first
}

// loadShardState reads a shard's state from etcd: the latest entry's
// high watermarks, and its producers from their snapshots and the
// entries since.
func (s *Store) loadShardState(ctx context.Context, sh ShardID, cfg CommitConfig) (*shardState, error) {
	floorKey := s.pstateFloorKey(sh)
	last, rev, err := s.lastEntry(ctx, sh)
	if err != nil {
		return nil, fmt.Errorf("reading the state of shard %s: %w", sh, err)
	}
	resp, err := s.cli.Txn(ctx).Then(
		clientv3.OpGet(floorKey, clientv3.WithRev(rev)),
		clientv3.OpGet(floorKey+"/", clientv3.WithPrefix(), clientv3.WithRev(rev)),
	).Commit()
	if err != nil {
		return nil, readAtErr(err, "the state of shard "+sh.String(), rev)
	}
	st := &shardState{
		producers: map[int32]*partitionProducers{},
		snapSeq:   map[int32]int64{},
		changed:   map[int32]bool{},
		used:      time.Now(),
	}
	if last != nil {
		st.seq, st.nexts, st.stables = last.SeqLast, last.Nexts, last.Stables
	}
	if kvs := resp.Responses[0].GetResponseRange().Kvs; len(kvs) > 0 {
		var f floorValue
		if err := decode(floorKey, kvs[0].Value, &f); err != nil {
			return nil, err
		}
		st.floor, st.floorRev = f.Seq, kvs[0].ModRevision
	}
	for _, kv := range resp.Responses[1].GetResponseRange().Kvs {
		p, ok := parseTail10(string(kv.Key))
		if !ok {
			return nil, fmt.Errorf("%w: %s: not a producer snapshot key", ErrCorruptValue, kv.Key)
		}
		seq, pp, err := decodeSnapshot(string(kv.Key), kv.Value)
		if err != nil {
			return nil, err
		}
		st.producers[p], st.snapSeq[p] = pp, seq
	}
	// A snapshot holds its partition's state as of its own sequence or
	// the floor, whichever is later: the floor is written after every
	// partition that changed since its snapshot was written again.
	from := st.floor
	if from >= st.seq {
		return st, nil
	}
	startOf := func(p int32) int64 { return max(st.snapSeq[p], st.floor) }
	err = s.rangePages(ctx, s.logKey(sh, from+1), s.logKey(sh, st.seq+1), func(key string, value []byte, _ int64) error {
		_, seq, ok := parseLogKey(key[len(s.key(prefixLog)):])
		if !ok {
			return fmt.Errorf("%w: %s: not a log key", ErrCorruptValue, key)
		}
		e, err := DecodeLogEntry(key, seq, value)
		if err != nil {
			return err
		}
		if e.Flags&EntryMerged != 0 && e.SeqLast > from {
			for p := range st.producers {
				if e.SeqLast > startOf(p) {
					return fmt.Errorf("%w: %s: a merged entry above the producer snapshot of partition %d", ErrCorruptValue, key, p)
				}
			}
		}
		st.applyProducers(&e, cfg, func(p int32) bool { return e.Seq <= startOf(p) })
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("replaying the log of shard %s: %w", sh, err)
	}
	return st, nil
}

// floorValue is a shard's producer-state floor.
type floorValue struct {
	V   int   `json:"v"`
	Seq int64 `json:"seq"`
}

// parseTail10 parses the 10-digit number ending a key.
func parseTail10(key string) (int32, bool) {
	if len(key) < 11 || key[len(key)-11] != '/' {
		return 0, false
	}
	var n int64
	for _, ch := range key[len(key)-10:] {
		if ch < '0' || ch > '9' {
			return 0, false
		}
		n = n*10 + int64(ch-'0')
	}
	if n > MaxPartitions {
		return 0, false
	}
	return int32(n), true
}

// snapshot writes producer snapshots of shards whose logs grew
// SnapshotEvery entries past their floor, a few shards per call. A
// failure is not an error of the commit: the snapshot is written later,
// or by another agent.
func (c *Committer) snapshot(ctx context.Context) {
	done := 0
	for sh, st := range c.shards {
		if st.since < c.cfg.SnapshotEvery || done == 4 {
			continue
		}
		done++
		if err := c.store.writeSnapshots(ctx, sh, st, c.cfg.txnBudget()); err != nil {
			delete(c.shards, sh) // learn what another writer wrote
		}
	}
}

// writeSnapshots writes the snapshots of a shard's changed partitions as
// of st.seq and then its floor, each transaction compared with the floor
// the state was loaded with.
func (s *Store) writeSnapshots(ctx context.Context, sh ShardID, st *shardState, budget int) error {
	floorKey := s.pstateFloorKey(sh)
	fence := clientv3.Compare(clientv3.ModRevision(floorKey), "=", st.floorRev)
	var (
		ops   []clientv3.Op
		bytes int
		parts = slices.Sorted(func(yield func(int32) bool) {
			for p := range st.changed {
				if !yield(p) {
					return
				}
			}
		})
	)
	flush := func(final bool) error {
		if final {
			ops = append(ops, clientv3.OpPut(floorKey, encode(floorValue{V: 1, Seq: st.seq})))
		}
		resp, err := s.cli.Txn(ctx).If(fence).Then(ops...).Commit()
		if err != nil {
			return err
		}
		if !resp.Succeeded {
			return ErrConflict
		}
		if final {
			st.floorRev = resp.Header.Revision
		}
		ops, bytes = nil, 0
		return nil
	}
	var dropped []int32
	for _, p := range parts {
		pp := st.producers[p]
		key := s.pstateKey(sh, p)
		if pp.len() == 0 {
			// Deleted in the floor's transaction: a partition without a
			// snapshot must have had no producers as of the floor.
			dropped = append(dropped, p)
			continue
		}
		v := encodeSnapshot(st.seq, pp)
		if len(ops) > 0 && (bytes+len(v) > budget || len(ops) >= 100) {
			if err := flush(false); err != nil {
				return err
			}
		}
		ops = append(ops, clientv3.OpPut(key, string(v)))
		bytes += len(v) + len(key)
	}
	if len(ops)+len(dropped) >= 100 {
		if err := flush(false); err != nil {
			return err
		}
	}
	for _, p := range dropped {
		ops = append(ops, clientv3.OpDelete(s.pstateKey(sh, p)))
	}
	if err := flush(true); err != nil {
		return err
	}
	for _, p := range parts {
		st.snapSeq[p] = st.seq
		if st.producers[p].len() == 0 {
			delete(st.producers, p)
			delete(st.snapSeq, p)
		}
	}
	clear(st.changed)
	st.floor, st.since = st.seq, 0
	return nil
}
