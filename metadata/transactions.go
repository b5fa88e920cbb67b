package metadata

// The transaction coordinator's state in etcd (Kafka transactions, KIP-98,
// with KIP-890's transaction version 2).
//
// One key per transactional ID, escaped with url.PathEscape as group names
// are (groups.go), so an ID may hold any character and no ID's key is a
// prefix of another's:
//
//	txns/<transactional id>   TxnState
//
// Any agent can act as an ID's coordinator: everything the coordinator
// knows is in the record, so its death loses nothing. There is no claim as
// for groups; instead every write is a compare-and-swap on the key's mod
// revision (PutTxn, DeleteTxn), so of two agents acting on one ID only the
// one that read the latest state writes, and the other gets
// ErrTxnConflict, re-reads and decides again.
//
// The value, version 1 (Unix ms times; empty lists are left out; readers
// reject other versions as corrupt):
//
//	{"v":1, "producer_id":4000, "epoch":3,
//	 "last_producer_id":-1, "last_epoch":2,
//	 "status":"Ongoing", "timeout_ms":60000,
//	 "partitions":[{"topic":"orders","topic_id":"<uuid>","partition":0}],
//	 "groups":["billing"],
//	 "offsets":[{"group":"billing","topic":"orders","topic_id":"<uuid>",
//	             "partition":0,"offset":42,"leader_epoch":-1,"metadata":""}],
//	 "started":1767225600000, "updated":1767225600500}
//
// Partitions are sorted by topic then partition, groups by name, offsets
// by group, topic and partition, none twice; decoding checks it, and
// PutTxn sorts what it is given. A transaction's pending offsets become
// the groups' committed offsets (offsets/<group>/<topic>/<part>, in the
// format CommitOffsets writes) when it commits: CommitTxnOffsets and
// CommitPendingOffsets.

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// TxnStatus is a transaction's state, as Kafka's TransactionState names
// them.
type TxnStatus string

// Transaction states.
const (
	// TxnEmpty: the ID has a producer and no transaction under way.
	TxnEmpty TxnStatus = "Empty"
	// TxnOngoing: partitions or groups were added to a transaction.
	TxnOngoing TxnStatus = "Ongoing"
	// TxnPrepareCommit: EndTxn asked to commit; the markers are being
	// written.
	TxnPrepareCommit TxnStatus = "PrepareCommit"
	// TxnPrepareAbort: EndTxn asked to abort, or the transaction timed out
	// or was fenced; the markers are being written.
	TxnPrepareAbort TxnStatus = "PrepareAbort"
	// TxnCompleteCommit: the commit markers are written.
	TxnCompleteCommit TxnStatus = "CompleteCommit"
	// TxnCompleteAbort: the abort markers are written.
	TxnCompleteAbort TxnStatus = "CompleteAbort"
	// TxnDead: the ID expired and its record is being removed.
	TxnDead TxnStatus = "Dead"
)

func (s TxnStatus) known() bool {
	switch s {
	case TxnEmpty, TxnOngoing, TxnPrepareCommit, TxnPrepareAbort, TxnCompleteCommit, TxnCompleteAbort, TxnDead:
		return true
	}
	return false
}

// MaxTransactionalIDLength bounds transactional IDs. Kafka sets no limit;
// this one keeps keys reasonable, as MaxGroupNameLength does for groups.
const MaxTransactionalIDLength = 4096

// MaxTxnPartitions bounds the partitions, the groups and the pending
// offsets of one transaction, each. A record that large would not fit
// etcd's request limit anyway (about 50 bytes a partition against 1.5 MiB
// by default); PutTxn then fails with etcd's error.
const MaxTxnPartitions = 1 << 20

// TxnPartition is a partition in a transaction.
type TxnPartition struct {
	Topic string `json:"topic"`
	// TopicID is the topic incarnation written to; uuid.Nil when unknown.
	TopicID   uuid.UUID `json:"topic_id"`
	Partition int32     `json:"partition"`
}

// TxnOffset is an offset committed by TxnOffsetCommit, pending until the
// transaction commits.
type TxnOffset struct {
	Group string `json:"group"`
	Topic string `json:"topic"`
	// TopicID is the topic incarnation committed to; uuid.Nil when
	// unknown (CommittedOffset.TopicID).
	TopicID   uuid.UUID `json:"topic_id"`
	Partition int32     `json:"partition"`
	Offset    int64     `json:"offset"`
	// LeaderEpoch is the client's leader epoch of the record at Offset-1,
	// or -1.
	LeaderEpoch int32 `json:"leader_epoch"`
	// Metadata is the client's metadata string; nil when the client sent
	// null.
	Metadata *string `json:"metadata,omitempty"`
}

// TxnState is one transactional ID's record.
type TxnState struct {
	TransactionalID string `json:"-"`
	// ProducerID and Epoch are the ID's current producer; -1 and -1 in
	// the state GetTxn returns for an ID with no record, never stored.
	ProducerID int64 `json:"producer_id"`
	Epoch      int16 `json:"epoch"`
	// LastProducerID and LastEpoch are the producer ID and epoch before
	// the last InitProducerId or epoch bump, so a client retrying with
	// them (KIP-360, KIP-890) is recognised; -1 when none.
	LastProducerID int64     `json:"last_producer_id"`
	LastEpoch      int16     `json:"last_epoch"`
	Status         TxnStatus `json:"status"`
	// TimeoutMs is the producer's transaction.timeout.ms.
	TimeoutMs int32 `json:"timeout_ms"`
	// Partitions are the transaction's partitions, sorted by topic then
	// partition, none twice.
	Partitions []TxnPartition `json:"partitions,omitempty"`
	// Groups are the consumer groups added by AddOffsetsToTxn, sorted,
	// none twice.
	Groups []string `json:"groups,omitempty"`
	// Offsets are the pending TxnOffsetCommit offsets, sorted by group,
	// topic and partition, one per partition of a group (the last
	// written).
	Offsets []TxnOffset `json:"offsets,omitempty"`
	// Started is when the current transaction began (Unix ms; its first
	// partition or group added), 0 when none. A coordinator completing a
	// transaction resets it, with Partitions, Groups and Offsets.
	Started int64 `json:"started"`
	// Updated is when the last transition was made (Unix ms).
	Updated int64 `json:"updated"`
	// ModRevision is the etcd revision the state was read at (not
	// stored), which PutTxn and DeleteTxn compare; 0: the record does not
	// exist.
	ModRevision int64 `json:"-"`
}

type txnValue struct {
	V int `json:"v"`
	TxnState
}

func comparePartitions(a, b TxnPartition) int {
	if c := strings.Compare(a.Topic, b.Topic); c != 0 {
		return c
	}
	return cmp.Compare(a.Partition, b.Partition)
}

func compareTxnOffsets(a, b TxnOffset) int {
	if c := strings.Compare(a.Group, b.Group); c != 0 {
		return c
	}
	if c := strings.Compare(a.Topic, b.Topic); c != 0 {
		return c
	}
	return cmp.Compare(a.Partition, b.Partition)
}

// sortLastWins sorts s in place, stably, and keeps the last of each run
// of equal elements. It returns nil for an empty s.
func sortLastWins[T any](s []T, compare func(a, b T) int) []T {
	if len(s) == 0 {
		return nil
	}
	slices.SortStableFunc(s, compare)
	n := 0
	for i := range s {
		if i+1 < len(s) && compare(s[i], s[i+1]) == 0 {
			continue
		}
		s[n] = s[i]
		n++
	}
	clear(s[n:])
	return s[:n:n]
}

// begin marks a transaction under way at now: Ongoing, Started set if it
// was 0.
func (st *TxnState) begin(now int64) {
	if st.Started == 0 {
		st.Started = now
	}
	st.Status = TxnOngoing
	st.Updated = now
}

// AddPartitions adds parts to the transaction (the sorted union; of a
// partition named twice the last is kept, so a new topic ID replaces an
// old one), sets Started to now if it was 0, and the status to Ongoing.
// It builds new slices, so copies of st made before are unchanged (a
// failed compare-and-swap leaves the state read intact). The caller
// checks that the transition is allowed.
func (st *TxnState) AddPartitions(parts []TxnPartition, now int64) {
	st.Partitions = sortLastWins(slices.Concat(st.Partitions, parts), comparePartitions)
	st.begin(now)
}

// AddGroup adds a consumer group to the transaction (AddOffsetsToTxn), as
// AddPartitions adds partitions.
func (st *TxnState) AddGroup(group string, now int64) {
	st.Groups = sortLastWins(slices.Concat(st.Groups, []string{group}), strings.Compare)
	st.begin(now)
}

// AddOffsets adds pending offsets (TxnOffsetCommit); of offsets for the
// same partition of a group, the last one (offs after st.Offsets) wins.
// Like AddPartitions it builds a new slice. It changes nothing else: the
// group was added by AddGroup.
func (st *TxnState) AddOffsets(offs []TxnOffset) {
	st.Offsets = sortLastWins(slices.Concat(st.Offsets, offs), compareTxnOffsets)
}

// HasPartition reports whether the transaction holds the partition.
func (st TxnState) HasPartition(topic string, partition int32) bool {
	_, found := slices.BinarySearchFunc(st.Partitions, TxnPartition{Topic: topic, Partition: partition}, comparePartitions)
	return found
}

// Expired reports whether the transaction is Ongoing and older than its
// timeout at now (Unix ms), so the coordinator aborts it.
func (st TxnState) Expired(now int64) bool {
	if st.Status != TxnOngoing {
		return false
	}
	timeout := max(int64(st.TimeoutMs), 0)
	if st.Started > math.MaxInt64-timeout {
		return false
	}
	return now > st.Started+timeout
}

// normalized returns st with its lists sorted and deduplicated in fresh
// slices (nil when empty), as stored.
func (st TxnState) normalized() TxnState {
	st.Partitions = sortLastWins(slices.Clone(st.Partitions), comparePartitions)
	st.Groups = sortLastWins(slices.Clone(st.Groups), strings.Compare)
	st.Offsets = sortLastWins(slices.Clone(st.Offsets), compareTxnOffsets)
	return st
}

// check reports what makes st unfit to store: what DecodeTxnState
// refuses.
func (st TxnState) check() error {
	switch {
	case !st.Status.known():
		return fmt.Errorf("status %q", st.Status)
	case st.ProducerID < 0:
		return fmt.Errorf("producer ID %d", st.ProducerID)
	case st.Epoch < 0:
		return fmt.Errorf("epoch %d", st.Epoch)
	case st.LastProducerID < -1:
		return fmt.Errorf("last producer ID %d", st.LastProducerID)
	case st.LastEpoch < -1:
		return fmt.Errorf("last epoch %d", st.LastEpoch)
	case st.TimeoutMs < 0:
		return fmt.Errorf("timeout %d ms", st.TimeoutMs)
	case st.Started < 0 || st.Updated < 0:
		return fmt.Errorf("times started %d, updated %d", st.Started, st.Updated)
	case len(st.Partitions) > MaxTxnPartitions || len(st.Groups) > MaxTxnPartitions || len(st.Offsets) > MaxTxnPartitions:
		return fmt.Errorf("%d partitions, %d groups, %d offsets (the limit is %d each)", len(st.Partitions), len(st.Groups), len(st.Offsets), MaxTxnPartitions)
	}
	for i, p := range st.Partitions {
		if err := checkTxnPartition(p.Topic, p.Partition); err != nil {
			return err
		}
		if i > 0 && comparePartitions(st.Partitions[i-1], p) >= 0 {
			return fmt.Errorf("partition %s/%d out of order or twice", p.Topic, p.Partition)
		}
	}
	for i, g := range st.Groups {
		if err := ValidateGroupName(g); err != nil {
			return err
		}
		if i > 0 && st.Groups[i-1] >= g {
			return fmt.Errorf("group %q out of order or twice", g)
		}
	}
	for i, o := range st.Offsets {
		if err := checkTxnOffset(o); err != nil {
			return err
		}
		if i > 0 && compareTxnOffsets(st.Offsets[i-1], o) >= 0 {
			return fmt.Errorf("offset of group %q for %s/%d out of order or twice", o.Group, o.Topic, o.Partition)
		}
	}
	return nil
}

func checkTxnPartition(topic string, partition int32) error {
	if err := ValidateTopicName(topic); err != nil {
		return err
	}
	if partition < 0 {
		return fmt.Errorf("partition %s/%d", topic, partition)
	}
	return nil
}

func checkTxnOffset(o TxnOffset) error {
	if err := ValidateGroupName(o.Group); err != nil {
		return err
	}
	return checkTxnPartition(o.Topic, o.Partition)
}

// ValidateTransactionalID checks that a transactional ID can be stored.
func ValidateTransactionalID(id string) error {
	switch {
	case id == "":
		return fmt.Errorf("%w: the transactional ID is empty", ErrInvalidTransactionalID)
	case len(id) > MaxTransactionalIDLength:
		return fmt.Errorf("%w: the transactional ID is %d bytes long; the limit is %d", ErrInvalidTransactionalID, len(id), MaxTransactionalIDLength)
	}
	return nil
}

func (s *Store) txnKey(id string) string { return s.key(prefixTxns, url.PathEscape(id)) }

// DecodeTxnState decodes the value of transactional ID id's key. It never
// panics; inconsistent values give ErrCorruptValue.
func DecodeTxnState(key, id string, data []byte) (TxnState, error) {
	var v txnValue
	if err := decode(key, data, &v); err != nil {
		return TxnState{}, err
	}
	if v.V != 1 {
		return TxnState{}, fmt.Errorf("%w: %s: version %d (this agent reads version 1)", ErrCorruptValue, key, v.V)
	}
	if err := v.TxnState.check(); err != nil {
		return TxnState{}, fmt.Errorf("%w: %s: %v", ErrCorruptValue, key, err)
	}
	st := v.TxnState
	st.TransactionalID = id
	// Empty lists are nil, as PutTxn returns them.
	if len(st.Partitions) == 0 {
		st.Partitions = nil
	}
	if len(st.Groups) == 0 {
		st.Groups = nil
	}
	if len(st.Offsets) == 0 {
		st.Offsets = nil
	}
	return st, nil
}

// GetTxn reads a transactional ID's record. When there is none, found is
// false and st is ready to fill in and create with PutTxn: the ID, status
// Empty, producer IDs and epochs -1, ModRevision 0.
func (s *Store) GetTxn(ctx context.Context, id string) (st TxnState, found bool, err error) {
	if err := ValidateTransactionalID(id); err != nil {
		return TxnState{}, false, err
	}
	key := s.txnKey(id)
	resp, err := s.cli.Get(ctx, key)
	if err != nil {
		return TxnState{}, false, fmt.Errorf("reading transactional ID %q: %w", id, err)
	}
	if len(resp.Kvs) == 0 {
		return TxnState{TransactionalID: id, ProducerID: -1, Epoch: -1, LastProducerID: -1, LastEpoch: -1, Status: TxnEmpty}, false, nil
	}
	st, err = DecodeTxnState(key, id, resp.Kvs[0].Value)
	if err != nil {
		return TxnState{}, false, err
	}
	st.ModRevision = resp.Kvs[0].ModRevision
	return st, true, nil
}

// PutTxn writes st if the record's ModRevision is still st.ModRevision
// (0: the record must not exist), else fails with ErrTxnConflict. It
// returns the state as written (lists sorted and deduplicated) with its
// new ModRevision.
//
// If etcd's answer is lost (an error other than ErrTxnConflict), the
// write may or may not have been made: re-read before acting on either.
func (s *Store) PutTxn(ctx context.Context, st TxnState) (TxnState, error) {
	if err := ValidateTransactionalID(st.TransactionalID); err != nil {
		return TxnState{}, err
	}
	st = st.normalized()
	if err := st.check(); err != nil {
		return TxnState{}, fmt.Errorf("writing transactional ID %q: invalid state: %w", st.TransactionalID, err)
	}
	key := s.txnKey(st.TransactionalID)
	resp, err := s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(key), "=", st.ModRevision)).
		Then(clientv3.OpPut(key, encode(txnValue{V: 1, TxnState: st}))).
		Commit()
	if err != nil {
		return TxnState{}, fmt.Errorf("writing transactional ID %q: %w", st.TransactionalID, err)
	}
	if !resp.Succeeded {
		return TxnState{}, fmt.Errorf("writing transactional ID %q: %w", st.TransactionalID, ErrTxnConflict)
	}
	st.ModRevision = resp.Header.Revision
	return st, nil
}

// DeleteTxn removes the record if unchanged since st was read, else fails
// with ErrTxnConflict. A record read as absent (ModRevision 0) and still
// absent is not an error.
func (s *Store) DeleteTxn(ctx context.Context, st TxnState) error {
	if err := ValidateTransactionalID(st.TransactionalID); err != nil {
		return err
	}
	key := s.txnKey(st.TransactionalID)
	resp, err := s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(key), "=", st.ModRevision)).
		Then(clientv3.OpDelete(key)).
		Commit()
	if err != nil {
		return fmt.Errorf("deleting transactional ID %q: %w", st.TransactionalID, err)
	}
	if !resp.Succeeded {
		return fmt.Errorf("deleting transactional ID %q: %w", st.TransactionalID, ErrTxnConflict)
	}
	return nil
}

// ListTxns reads every transactional ID's record, in ID order, in pages
// (each record's ModRevision is its own; the listing is not one
// snapshot). Undecodable records are returned in bad so callers can log
// them; they do not fail the listing.
func (s *Store) ListTxns(ctx context.Context) (txns []TxnState, bad []error, err error) {
	prefix := s.key(prefixTxns)
	err = s.rangePages(ctx, prefix, clientv3.GetPrefixRangeEnd(prefix), func(key string, value []byte, modRev int64) error {
		id, err := url.PathUnescape(strings.TrimPrefix(key, prefix))
		if err == nil {
			err = ValidateTransactionalID(id)
		}
		if err != nil {
			bad = append(bad, fmt.Errorf("%w: %s: %v", ErrCorruptValue, key, err))
			return nil
		}
		st, err := DecodeTxnState(key, id, value)
		if err != nil {
			bad = append(bad, err)
			return nil
		}
		st.ModRevision = modRev
		txns = append(txns, st)
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("listing transactional IDs: %w", err)
	}
	// Keys sort by escaped ID, which is not the IDs' order.
	slices.SortFunc(txns, func(a, b TxnState) int { return strings.Compare(a.TransactionalID, b.TransactionalID) })
	return txns, bad, nil
}

// CommitTxnOffsets writes pending offsets as their groups' committed
// offsets (the keys and values CommitOffsets writes, committed at
// committed), of offsets for the same partition of a group the last. It
// takes no group claim: the transaction coordinator is not the groups'
// coordinator. Nothing is fenced either; CommitPendingOffsets is the
// fenced form a coordinator should use. The offsets go in as few etcd
// transactions as maxOps allows, in group, topic and partition order, so
// the commit is atomic only if it fits one. If it fails part way, some
// offsets are written: writing them all again with the same committed
// time gives the same result.
//
// Group coordinators and FollowOffsets see these writes as they see
// OffsetCommit's: they watch the offsets/ prefix, whoever writes it.
func (s *Store) CommitTxnOffsets(ctx context.Context, offsets []TxnOffset, committed time.Time, maxOps int) error {
	return s.commitTxnOffsets(ctx, "committing transactional offsets", nil, offsets, committed, maxOps)
}

// CommitPendingOffsets writes st.Offsets as CommitTxnOffsets does, each
// etcd transaction comparing that st's record is unchanged since st was
// read (ErrTxnConflict if not). A coordinator writes PrepareCommit, calls
// this with the state PutTxn returned, then writes CompleteCommit: a
// coordinator that lost the record to another (paused past its takeover
// and a later transaction of the same ID) cannot overwrite newer offsets
// with older ones.
func (s *Store) CommitPendingOffsets(ctx context.Context, st TxnState, committed time.Time, maxOps int) error {
	if err := ValidateTransactionalID(st.TransactionalID); err != nil {
		return err
	}
	what := fmt.Sprintf("committing the offsets of transactional ID %q", st.TransactionalID)
	if st.ModRevision <= 0 {
		return fmt.Errorf("%s: the state was not read from etcd", what)
	}
	fence := clientv3.Compare(clientv3.ModRevision(s.txnKey(st.TransactionalID)), "=", st.ModRevision)
	return s.commitTxnOffsets(ctx, what, []clientv3.Cmp{fence}, st.Offsets, committed, maxOps)
}

func (s *Store) commitTxnOffsets(ctx context.Context, what string, fence []clientv3.Cmp, offsets []TxnOffset, committed time.Time, maxOps int) error {
	offs := sortLastWins(slices.Clone(offsets), compareTxnOffsets)
	for _, o := range offs {
		if err := checkTxnOffset(o); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
	}
	ms := committed.UnixMilli()
	step := txnOps(maxOps, 0) // the fence is a compare, not an operation
	for lo := 0; lo < len(offs); lo += step {
		hi := min(len(offs), lo+step)
		ops := make([]clientv3.Op, 0, hi-lo)
		for _, o := range offs[lo:hi] {
			v := CommittedOffset{TopicID: o.TopicID, Offset: o.Offset, LeaderEpoch: o.LeaderEpoch, Metadata: o.Metadata, Committed: ms}
			ops = append(ops, clientv3.OpPut(s.offsetKey(o.Group, o.Topic, o.Partition), v.value()))
		}
		resp, err := s.cli.Txn(ctx).If(fence...).Then(ops...).Commit()
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if !resp.Succeeded {
			return fmt.Errorf("%s: %w", what, ErrTxnConflict)
		}
	}
	return nil
}
