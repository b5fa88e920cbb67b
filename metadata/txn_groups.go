package metadata

// Which transactions hold offsets for a group.
//
// A consumer that reads with require_stable (Java's read_committed
// consumers, KIP-447) must not be given a committed offset while a
// transaction holds a newer one for the same partition. The transaction's
// record holds its pending offsets; to find the transactions of a group
// without reading every record, TxnOffsetCommit first writes
//
//	txn-groups/<group>/<transactional id>   (empty value)
//
// and the end of the transaction removes it. The key is a hint: a reader
// confirms each one against the record (a key whose record no longer
// holds offsets for the group is stale, left by a coordinator that died
// before removing it, and is removed by the next end of that
// transactional ID or its expiry).

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
)

const prefixTxnGroups = "txn-groups/"

func (s *Store) txnGroupsPrefix(group string) string {
	return s.key(prefixTxnGroups, escapeGroup(group), "/")
}

// MarkTxnGroup records that transaction id holds (or is about to hold)
// offsets for group.
func (s *Store) MarkTxnGroup(ctx context.Context, group, id string) error {
	if _, err := s.cli.Put(ctx, s.txnGroupsPrefix(group)+url.PathEscape(id), ""); err != nil {
		return fmt.Errorf("marking group %q in transaction %q: %w", group, id, err)
	}
	return nil
}

// UnmarkTxnGroups removes transaction id's marks of groups.
func (s *Store) UnmarkTxnGroups(ctx context.Context, id string, groups []string) error {
	for len(groups) > 0 {
		n := min(len(groups), DefaultMaxTxnOps)
		ops := make([]clientv3.Op, 0, n)
		for _, g := range groups[:n] {
			ops = append(ops, clientv3.OpDelete(s.txnGroupsPrefix(g)+url.PathEscape(id)))
		}
		if _, err := s.cli.Txn(ctx).Then(ops...).Commit(); err != nil {
			return fmt.Errorf("unmarking the groups of transaction %q: %w", id, err)
		}
		groups = groups[n:]
	}
	return nil
}

// PendingTxnOffsets returns the partitions of group for which an ongoing
// or ending transaction holds offsets not yet committed.
func (s *Store) PendingTxnOffsets(ctx context.Context, group string) (map[TopicPartition]bool, error) {
	prefix := s.txnGroupsPrefix(group)
	resp, err := s.cli.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return nil, fmt.Errorf("reading the transactions of group %q: %w", group, err)
	}
	var pending map[TopicPartition]bool
	for _, kv := range resp.Kvs {
		id, err := url.PathUnescape(strings.TrimPrefix(string(kv.Key), prefix))
		if err != nil {
			continue
		}
		st, found, err := s.GetTxn(ctx, id)
		if err != nil {
			return nil, err
		}
		if !found || (st.Status != TxnOngoing && st.Status != TxnPrepareCommit && st.Status != TxnPrepareAbort) {
			continue
		}
		for _, o := range st.Offsets {
			if o.Group == group {
				if pending == nil {
					pending = map[TopicPartition]bool{}
				}
				pending[TopicPartition{Topic: o.Topic, Partition: o.Partition}] = true
			}
		}
	}
	return pending, nil
}

// StableOffsetsOf returns what FetchOffsetsOf returns for group and want,
// and the partitions of those for which an ongoing or ending transaction
// holds offsets (PendingTxnOffsets): what OffsetFetch with require_stable
// answers. The transactions are read before the offsets. A transaction
// writes its offsets while its record says it is ending and only then
// says it is complete, so a transaction found complete has its offsets in
// the read that follows, and one ending between the two reads is reported
// pending. Read the other way round, a transaction completing between the
// reads left the offsets it replaced looking stable, and a
// consume-transform-produce application restarting after a commit of
// unknown outcome read its input again.
func (s *Store) StableOffsetsOf(ctx context.Context, group string, want map[TopicPartition]bool) (offsets []CommittedOffset, pending map[TopicPartition]bool, bad []error, err error) {
	if pending, err = s.PendingTxnOffsets(ctx, group); err != nil {
		return nil, nil, nil, err
	}
	if betweenStableReads != nil {
		betweenStableReads()
	}
	offsets, bad, err = s.FetchOffsetsOf(ctx, group, want)
	return offsets, pending, bad, err
}

// betweenStableReads, when set (by tests), runs between StableOffsetsOf's
// two reads.
var betweenStableReads func()
