package metadata

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// PartitionID names one partition of one topic incarnation.
type PartitionID struct {
	Topic     uuid.UUID
	Partition int32
}

func (p PartitionID) String() string { return fmt.Sprintf("%s/%d", p.Topic, p.Partition) }

// PartitionState is a partition's committed state.
type PartitionState struct {
	// Next is the offset the next record gets: the high watermark.
	Next int64
	// Start is the log start offset: the earliest offset still readable.
	Start int64
	// Producers holds idempotent producers' recent sequences, by
	// producer ID.
	Producers map[int64]*ProducerState
	// ModRevision of the state's key; 0 when the key does not exist yet
	// (a partition nothing was ever written to).
	ModRevision int64
}

// ProducerState is what a partition remembers of one idempotent producer:
// its epoch and its last batches, so retries are answered with their
// original offsets instead of being written twice.
type ProducerState struct {
	Epoch   int16      `json:"epoch"`
	Batches []SeqEntry `json:"batches"`
	// LastWrite is the commit time (Unix ms) of its last batch; producers
	// idle longer than the expiry are forgotten.
	LastWrite int64 `json:"last_write"`
}

// SeqEntry is one committed batch of an idempotent producer.
type SeqEntry struct {
	FirstSeq   int32 `json:"first_seq"`
	LastSeq    int32 `json:"last_seq"`
	BaseOffset int64 `json:"base_offset"`
}

// MaxProducerBatches is how many recent batches per producer a partition
// remembers, matching Kafka's limit of five in-flight requests for
// idempotent producers.
const MaxProducerBatches = 5

type partitionValue struct {
	V         int                       `json:"v"`
	Next      int64                     `json:"next"`
	Start     int64                     `json:"start"`
	Producers map[string]*ProducerState `json:"producers,omitempty"`
}

func (st *PartitionState) value() string {
	v := partitionValue{V: 1, Next: st.Next, Start: st.Start}
	if len(st.Producers) > 0 {
		v.Producers = make(map[string]*ProducerState, len(st.Producers))
		for id, p := range st.Producers {
			v.Producers[strconv.FormatInt(id, 10)] = p
		}
	}
	return encode(v)
}

// DecodePartitionState decodes a partition state value. It never panics;
// inconsistent values give ErrCorruptValue.
func DecodePartitionState(key string, data []byte) (PartitionState, error) {
	var v partitionValue
	if err := decode(key, data, &v); err != nil {
		return PartitionState{}, err
	}
	if v.Next < 0 || v.Start < 0 || v.Start > v.Next {
		return PartitionState{}, fmt.Errorf("%w: %s: start %d, next %d", ErrCorruptValue, key, v.Start, v.Next)
	}
	st := PartitionState{Next: v.Next, Start: v.Start}
	if len(v.Producers) > 0 {
		st.Producers = make(map[int64]*ProducerState, len(v.Producers))
		for k, p := range v.Producers {
			id, err := strconv.ParseInt(k, 10, 64)
			if err != nil || p == nil {
				return PartitionState{}, fmt.Errorf("%w: %s: producer %q", ErrCorruptValue, key, k)
			}
			st.Producers[id] = p
		}
	}
	return st, nil
}

func (st PartitionState) clone() PartitionState {
	out := st
	if st.Producers != nil {
		out.Producers = make(map[int64]*ProducerState, len(st.Producers))
		for id, p := range st.Producers {
			cp := *p
			cp.Batches = append([]SeqEntry(nil), p.Batches...)
			out.Producers[id] = &cp
		}
	}
	return out
}

// IndexEntry locates a run of a partition's records in a segment object:
// one extent, fetched with one ranged GET.
type IndexEntry struct {
	// Object is the segment object's key in the bucket.
	Object string `json:"o"`
	// Offset and Length are the extent's byte range in the object.
	Offset int64 `json:"off"`
	Length int64 `json:"len"`
	// First and Last are the first and last offsets of the records this
	// entry holds (inclusive).
	First int64 `json:"first"`
	Last  int64 `json:"last"`
	// Batches is how many batches of the extent are part of the log.
	Batches int32 `json:"batches"`
	// Skip lists ordinals of batches in the extent that are not part of
	// the log (duplicates and rejected batches that were written before
	// the commit decided); readers pass over them.
	Skip []int32 `json:"skip,omitempty"`
	// MinTimestamp and MaxTimestamp bound the records' timestamps (Unix
	// ms).
	MinTimestamp int64 `json:"min_ts"`
	MaxTimestamp int64 `json:"max_ts"`
	// Committed is when the entry was committed (Unix ms).
	Committed int64 `json:"committed"`
}

// Records is the number of records the entry holds.
func (e IndexEntry) Records() int64 { return e.Last - e.First + 1 }

// DecodeIndexEntry decodes an index entry value. It never panics.
func DecodeIndexEntry(key string, data []byte) (IndexEntry, error) {
	var e IndexEntry
	if err := decode(key, data, &e); err != nil {
		return IndexEntry{}, err
	}
	if e.Object == "" || e.Offset < 0 || e.Length <= 0 || e.First < 0 || e.Last < e.First || e.Batches <= 0 {
		return IndexEntry{}, fmt.Errorf("%w: %s: inconsistent index entry", ErrCorruptValue, key)
	}
	if len(e.Skip) == 0 {
		e.Skip = nil // "skip":[] and no skip are the same entry
	}
	return e, nil
}

func (s *Store) partitionKey(p PartitionID) string {
	return s.key(prefixPartitions, p.Topic.String(), "/", fmt.Sprintf("%010d", p.Partition))
}

func (s *Store) indexPrefix(p PartitionID) string {
	return s.key(prefixIndex, p.Topic.String(), "/", fmt.Sprintf("%010d", p.Partition), "/")
}

func (s *Store) indexKey(p PartitionID, first int64) string {
	return s.indexPrefix(p) + fmt.Sprintf("%020d", first)
}

// parsePartitionKey parses the part of a partition key after the
// partitions prefix: "<topic id>/<partition>".
func parsePartitionKey(rest string) (PartitionID, bool) {
	t, p, ok := strings.Cut(rest, "/")
	if !ok {
		return PartitionID{}, false
	}
	id, err := uuid.Parse(t)
	if err != nil {
		return PartitionID{}, false
	}
	n, err := strconv.ParseInt(p, 10, 32)
	if err != nil || n < 0 {
		return PartitionID{}, false
	}
	return PartitionID{Topic: id, Partition: int32(n)}, true
}

// GetPartitionState reads a partition's state (linearizable). A partition
// nothing was written to has the zero state.
func (s *Store) GetPartitionState(ctx context.Context, p PartitionID) (PartitionState, error) {
	key := s.partitionKey(p)
	resp, err := s.cli.Get(ctx, key)
	if err != nil {
		return PartitionState{}, fmt.Errorf("reading partition %s: %w", p, err)
	}
	if len(resp.Kvs) == 0 {
		return PartitionState{}, nil
	}
	st, err := DecodePartitionState(key, resp.Kvs[0].Value)
	st.ModRevision = resp.Kvs[0].ModRevision
	return st, err
}

// IndexEntries returns a partition's index entries whose first offset is
// at least from (use 0 for all), in offset order, at most limit (0: no
// limit).
func (s *Store) IndexEntries(ctx context.Context, p PartitionID, from int64, limit int64) ([]IndexEntry, error) {
	prefix := s.indexPrefix(p)
	opts := []clientv3.OpOption{clientv3.WithRange(clientv3.GetPrefixRangeEnd(prefix))}
	if limit > 0 {
		opts = append(opts, clientv3.WithLimit(limit))
	}
	resp, err := s.cli.Get(ctx, s.indexKey(p, from), opts...)
	if err != nil {
		return nil, fmt.Errorf("reading index of %s: %w", p, err)
	}
	out := make([]IndexEntry, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		e, err := DecodeIndexEntry(string(kv.Key), kv.Value)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// IndexEntryBefore returns the entry with the greatest first offset at or
// below offset, if any.
func (s *Store) IndexEntryBefore(ctx context.Context, p PartitionID, offset int64) (IndexEntry, bool, error) {
	resp, err := s.cli.Get(ctx, s.indexPrefix(p),
		clientv3.WithRange(s.indexKey(p, offset)+"\x00"),
		clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend),
		clientv3.WithLimit(1))
	if err != nil {
		return IndexEntry{}, false, fmt.Errorf("reading index of %s: %w", p, err)
	}
	if len(resp.Kvs) == 0 {
		return IndexEntry{}, false, nil
	}
	e, err := DecodeIndexEntry(string(resp.Kvs[0].Key), resp.Kvs[0].Value)
	return e, err == nil, err
}

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
	// deletion (it was unreferenced for longer than the grace period), so
	// it may no longer be committed; the producer retries.
	ErrObjectDoomed = errors.New("metadata: segment object is being garbage-collected; it can no longer be committed")
)

// BatchMeta describes one RecordBatch offered for commit.
type BatchMeta struct {
	// Ordinal is the batch's position in its extent of the segment object.
	Ordinal       int32
	Records       int32
	ProducerID    int64 // -1: not idempotent
	ProducerEpoch int16
	BaseSequence  int32
	MinTimestamp  int64
	MaxTimestamp  int64
}

// lastSeq is the sequence of the batch's last record; sequences wrap from
// MaxInt32 to 0.
func (b BatchMeta) lastSeq() int32 {
	return int32((int64(b.BaseSequence) + int64(b.Records) - 1) % (math.MaxInt32 + 1))
}

// Append is one partition's share of a segment object, to be committed.
type Append struct {
	Topic     Topic // name, ID and CreateRevision are used
	Partition int32
	Object    string
	Offset    int64 // extent byte offset in the object
	Length    int64
	Batches   []BatchMeta
}

func (a Append) id() PartitionID { return PartitionID{Topic: a.Topic.ID, Partition: a.Partition} }

// BatchOutcome is what a committed batch got.
type BatchOutcome struct {
	// BaseOffset is the batch's first offset (for a duplicate, the one it
	// got the first time).
	BaseOffset int64
	// LogStart is the partition's log start offset after the commit.
	LogStart int64
	// Duplicate is set for a retried batch that was already committed.
	Duplicate bool
	// Err is ErrOutOfOrderSequence, ErrInvalidProducerEpoch or
	// ErrUnknownPartition; the batch is not part of the log.
	Err error
}

// CommitConfig tunes a Committer.
type CommitConfig struct {
	// MaxTxnOps is etcd's per-transaction op limit (--max-txn-ops).
	// Default 128, etcd's default.
	MaxTxnOps int
	// ProducerExpiry is how long an idle producer's sequences are kept.
	// Default 24h (Kafka's producer.id.expiration.ms).
	ProducerExpiry time.Duration
	// Now returns the commit time; tests may replace it.
	Now func() time.Time
	// Observer, if set, is told about every transaction the committer
	// runs.
	Observer CommitObserver
}

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
	// TxnConflict: a compare failed (another agent committed the
	// partition, or the topic changed); the commit is recomputed.
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

// Committer commits segment objects' partition shares to etcd: for each
// partition it compares the state it last saw, assigns the next offsets,
// applies idempotent-producer rules, advances the high watermark and adds
// the index entry, all in one transaction. It remembers the states it saw
// so the common case is one etcd round trip; when another agent wrote a
// partition meanwhile, the transaction's else branch returns the fresh
// state and the commit is recomputed.
//
// Commit calls must not overlap for the same partition; the agent
// commits its flushes one at a time, in order, which also keeps each
// producer's batches in order.
type Committer struct {
	store *Store
	cfg   CommitConfig
	known map[PartitionID]PartitionState // last state seen per partition
}

// NewCommitter returns a Committer.
func (s *Store) NewCommitter(cfg CommitConfig) *Committer {
	if cfg.MaxTxnOps <= 0 {
		cfg.MaxTxnOps = 128
	}
	if cfg.MaxTxnOps < 4 {
		cfg.MaxTxnOps = 4
	}
	if cfg.ProducerExpiry == 0 {
		cfg.ProducerExpiry = 24 * time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Committer{store: s, cfg: cfg, known: map[PartitionID]PartitionState{}}
}

// CommitResult is the outcome of one Append.
type CommitResult struct {
	Batches []BatchOutcome
	// State is the partition's state after the commit.
	State PartitionState
	// Entry is the index entry written, if any batch was accepted.
	Entry *IndexEntry
	// Revision is the etcd revision of the commit (0 if nothing was
	// written).
	Revision int64
}

// Commit commits appends, splitting them into as many transactions as
// etcd's op limit needs; each partition's commit is atomic. It returns one
// result per append. An error means etcd could not be reached; appends in
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
	for lo := 0; lo < len(appends); {
		hi := c.chunkEnd(appends, lo)
		if err := c.commitChunk(ctx, appends[lo:hi], results[lo:hi]); err != nil {
			return results, err
		}
		lo = hi
	}
	return results, nil
}

// chunkEnd returns the end of the largest chunk starting at lo whose
// transaction fits the op limit: each partition needs a compare, two puts
// and a get; each distinct topic a compare and a get; each distinct object
// (one per flush) a compare and a get of its doom mark.
func (c *Committer) chunkEnd(appends []Append, lo int) int {
	topics := map[uuid.UUID]bool{}
	objects := map[string]bool{}
	parts := 0
	for i := lo; i < len(appends); i++ {
		nt := len(topics)
		if !topics[appends[i].Topic.ID] {
			nt++
		}
		no := len(objects)
		if !objects[appends[i].Object] {
			no++
		}
		np := parts + 1
		if np+nt+no > c.cfg.MaxTxnOps || 2*np > c.cfg.MaxTxnOps {
			if i == lo {
				return lo + 1
			}
			return i
		}
		topics[appends[i].Topic.ID] = true
		objects[appends[i].Object] = true
		parts = np
	}
	return len(appends)
}

func (c *Committer) commitChunk(ctx context.Context, appends []Append, results []CommitResult) (err error) {
	live := make([]bool, len(appends)) // still to commit
	for i := range live {
		live[i] = true
	}
	defer func() {
		if err == nil {
			return
		}
		// Outcomes computed for a transaction that did not commit are
		// not the log's: drop them, keeping only definite failures.
		for i := range appends {
			if live[i] {
				results[i] = CommitResult{}
			}
		}
	}()
	for attempt := 0; ; attempt++ {
		var (
			cmps       []clientv3.Cmp
			puts, gets []clientv3.Op
			topicSeen  = map[uuid.UUID]bool{}
			order      []int // appends in this attempt
			newStates  = map[int]PartitionState{}
		)
		now := c.cfg.Now()
		for i, a := range appends {
			if !live[i] {
				continue
			}
			order = append(order, i)
			id := a.id()
			key := c.store.partitionKey(id)
			if !topicSeen[a.Topic.ID] {
				topicSeen[a.Topic.ID] = true
				tkey := c.store.topicKey(a.Topic.Name)
				cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(tkey), "=", a.Topic.CreateRevision))
				gets = append(gets, clientv3.OpGet(tkey))
			}
			cur := c.known[id]
			cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(key), "=", cur.ModRevision))
			gets = append(gets, clientv3.OpGet(key))

			next, res := applyAppend(cur, a, now, c.cfg.ProducerExpiry)
			results[i] = res
			newStates[i] = next
			if res.Entry != nil {
				puts = append(puts,
					clientv3.OpPut(key, next.value()),
					clientv3.OpPut(c.store.indexKey(id, res.Entry.First), encode(res.Entry)))
			}
		}
		if len(order) == 0 {
			return nil
		}
		// The object must not have been marked for deletion by the
		// compactor: once marked, it is deleted unless already referenced,
		// so committing it now would acknowledge records it is about to
		// lose. The marks' gets come after the partitions' in the else
		// branch.
		objects := c.objectsOf(appends, order)
		for _, o := range objects {
			dk := c.store.doomKey(o)
			cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(dk), "=", 0))
			gets = append(gets, clientv3.OpGet(dk))
		}
		if len(puts) == 0 {
			// Every batch was a duplicate or rejected against the state we
			// know. Confirm that state is current before answering.
			start := time.Now()
			resp, err := c.store.cli.Txn(ctx).If(cmps...).Else(gets...).Commit()
			c.observe(start, resp, err)
			if err != nil {
				return fmt.Errorf("committing: %w", err)
			}
			if resp.Succeeded {
				return nil
			}
			c.absorb(appends, live, order, resp.Responses, results)
			continue
		}
		start := time.Now()
		resp, err := c.store.cli.Txn(ctx).If(cmps...).Then(puts...).Else(gets...).Commit()
		c.observe(start, resp, err)
		if err != nil {
			return fmt.Errorf("committing: %w", err)
		}
		if resp.Succeeded {
			for _, i := range order {
				st := newStates[i]
				if results[i].Entry != nil {
					st.ModRevision = resp.Header.Revision
					results[i].Revision = resp.Header.Revision
				}
				results[i].State = st
				c.known[appends[i].id()] = st
			}
			return nil
		}
		c.absorb(appends, live, order, resp.Responses, results)
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

// objectsOf returns the distinct objects of the appends in order.
func (c *Committer) objectsOf(appends []Append, order []int) []string {
	var out []string
	for _, i := range order {
		if !slices.Contains(out, appends[i].Object) {
			out = append(out, appends[i].Object)
		}
	}
	return out
}

// absorb reads a failed transaction's else branch: fresh partition states,
// topics that no longer match, and doom marks (their appends fail).
func (c *Committer) absorb(appends []Append, live []bool, order []int, responses []*etcdserverpb.ResponseOp, results []CommitResult) {
	objects := c.objectsOf(appends, order)
	defer func() {
		doomResp := responses[len(responses)-len(objects):]
		for oi, o := range objects {
			if len(doomResp[oi].GetResponseRange().Kvs) == 0 {
				continue
			}
			for _, i := range order {
				if appends[i].Object == o && live[i] {
					live[i] = false
					results[i] = failAll(appends[i], fmt.Errorf("%w: %s", ErrObjectDoomed, o))
				}
			}
		}
	}()
	ri := 0
	topicGone := map[uuid.UUID]bool{}
	topicSeen := map[uuid.UUID]bool{}
	for _, i := range order {
		a := appends[i]
		if !topicSeen[a.Topic.ID] {
			topicSeen[a.Topic.ID] = true
			kvs := responses[ri].GetResponseRange().Kvs
			ri++
			if len(kvs) == 0 || kvs[0].CreateRevision != a.Topic.CreateRevision {
				topicGone[a.Topic.ID] = true
			}
		}
		kvs := responses[ri].GetResponseRange().Kvs
		ri++
		id := a.id()
		if topicGone[a.Topic.ID] {
			live[i] = false
			delete(c.known, id)
			results[i] = failAll(a, ErrUnknownPartition)
			continue
		}
		if len(kvs) == 0 {
			c.known[id] = PartitionState{}
			continue
		}
		key := string(kvs[0].Key)
		st, err := DecodePartitionState(key, kvs[0].Value)
		if err != nil {
			// A corrupt state cannot be committed on top of; fail the
			// append rather than guess.
			live[i] = false
			results[i] = failAll(a, err)
			continue
		}
		st.ModRevision = kvs[0].ModRevision
		c.known[id] = st
	}
}

// Forget drops what the committer remembers of a partition, so its next
// commit starts from etcd.
func (c *Committer) Forget(id PartitionID) { delete(c.known, id) }

func failAll(a Append, err error) CommitResult {
	r := CommitResult{Batches: make([]BatchOutcome, len(a.Batches))}
	for i := range r.Batches {
		r.Batches[i] = BatchOutcome{BaseOffset: -1, LogStart: -1, Err: err}
	}
	return r
}

// applyAppend computes a partition's next state from cur after offering
// a's batches in order, and the outcome of each.
func applyAppend(cur PartitionState, a Append, now time.Time, expiry time.Duration) (PartitionState, CommitResult) {
	next := cur.clone()
	nowMs := now.UnixMilli()
	res := CommitResult{Batches: make([]BatchOutcome, len(a.Batches))}
	var (
		entry    IndexEntry
		accepted int32
	)
	entry.MinTimestamp = math.MaxInt64
	entry.MaxTimestamp = math.MinInt64
	for i, b := range a.Batches {
		out := applyBatch(&next, b, nowMs)
		if out.Err != nil || out.Duplicate {
			entry.Skip = append(entry.Skip, b.Ordinal)
			res.Batches[i] = out
			continue
		}
		if accepted == 0 {
			entry.First = out.BaseOffset
		}
		accepted++
		entry.Last = out.BaseOffset + int64(b.Records) - 1
		entry.MinTimestamp = min(entry.MinTimestamp, b.MinTimestamp)
		entry.MaxTimestamp = max(entry.MaxTimestamp, b.MaxTimestamp)
		res.Batches[i] = out
	}
	for i := range res.Batches {
		res.Batches[i].LogStart = next.Start
	}
	if accepted > 0 {
		for id, p := range next.Producers {
			if nowMs-p.LastWrite > expiry.Milliseconds() {
				delete(next.Producers, id)
			}
		}
		entry.Object = a.Object
		entry.Offset = a.Offset
		entry.Length = a.Length
		entry.Batches = accepted
		entry.Committed = nowMs
		res.Entry = &entry
	} else {
		next = cur
	}
	return next, res
}

// applyBatch offers one batch to the state, following Kafka's idempotent
// producer rules.
func applyBatch(st *PartitionState, b BatchMeta, nowMs int64) BatchOutcome {
	if b.ProducerID >= 0 {
		p := st.Producers[b.ProducerID]
		if p != nil {
			switch {
			case b.ProducerEpoch < p.Epoch:
				return BatchOutcome{BaseOffset: -1, Err: ErrInvalidProducerEpoch}
			case b.ProducerEpoch == p.Epoch:
				for _, e := range p.Batches {
					if e.FirstSeq == b.BaseSequence && e.LastSeq == b.lastSeq() {
						return BatchOutcome{BaseOffset: e.BaseOffset, Duplicate: true}
					}
				}
				if len(p.Batches) > 0 {
					want := int32((int64(p.Batches[len(p.Batches)-1].LastSeq) + 1) % (math.MaxInt32 + 1))
					if b.BaseSequence != want {
						return BatchOutcome{BaseOffset: -1, Err: fmt.Errorf("%w: expected sequence %d, got %d", ErrOutOfOrderSequence, want, b.BaseSequence)}
					}
				}
			default: // a newer epoch starts its sequences again at 0
				if b.BaseSequence != 0 {
					return BatchOutcome{BaseOffset: -1, Err: fmt.Errorf("%w: a new producer epoch must start at sequence 0, got %d", ErrOutOfOrderSequence, b.BaseSequence)}
				}
				p = nil
			}
		}
		if p == nil {
			p = &ProducerState{Epoch: b.ProducerEpoch}
			if st.Producers == nil {
				st.Producers = map[int64]*ProducerState{}
			}
			st.Producers[b.ProducerID] = p
		}
		p.Batches = append(p.Batches, SeqEntry{FirstSeq: b.BaseSequence, LastSeq: b.lastSeq(), BaseOffset: st.Next})
		if len(p.Batches) > MaxProducerBatches {
			p.Batches = p.Batches[len(p.Batches)-MaxProducerBatches:]
		}
		p.LastWrite = nowMs
	}
	base := st.Next
	st.Next += int64(b.Records)
	return BatchOutcome{BaseOffset: base}
}
