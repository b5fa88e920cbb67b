package metadata

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Exports of topics to Iceberg tables (package exporter): the exporter's
// election, and what it last committed of each topic. The table's own
// snapshots are the truth of what was exported (each records the offsets
// it reached); the state here repeats the last one for reports and lag,
// and is written after the table's commit, so it may trail the table but
// never lead it.

const (
	// keyExporterLeader is the exporter's election prefix.
	keyExporterLeader = "exporter/leader"
	// prefixExports holds each exported topic's ExportState, by topic ID.
	prefixExports = "exports/"
)

// ExportState is what the exporter last committed of a topic's table.
type ExportState struct {
	V     int    `json:"v"`
	Topic string `json:"topic"`
	Table string `json:"table"`
	// Offsets is, by partition, the first offset not yet in the table.
	Offsets map[int32]int64 `json:"offsets"`
	// SnapshotID is the table's snapshot of the last commit, Committed
	// when it was made.
	SnapshotID int64     `json:"snapshot_id,omitempty"`
	Committed  time.Time `json:"committed,omitzero"`
	// Rows and DeadLetters count the rows the leading exporter has
	// written since it started, and of them the records whose values did
	// not match the schema.
	Rows        int64 `json:"rows"`
	DeadLetters int64 `json:"dead_letters,omitempty"`
	// Error is the last pass's failure for this topic, at ErrorAt (the
	// exporter's log and floe_exporter_commits_total{result="failed"}
	// report it too).
	Error   string    `json:"error,omitempty"`
	ErrorAt time.Time `json:"error_at,omitzero"`
}

// CampaignExporter joins the exporter election, as CampaignCompactor does
// the compactor's.
func (s *Store) CampaignExporter(ctx context.Context, id string, ttl time.Duration) (*Leadership, error) {
	return s.campaign(ctx, keyExporterLeader, "exporter", id, ttl)
}

// ExporterLeader returns the ID of the active exporter, if any.
func (s *Store) ExporterLeader(ctx context.Context) (id string, ok bool, err error) {
	return s.leader(ctx, keyExporterLeader, "exporter")
}

func (s *Store) exportKey(topic uuid.UUID) string { return s.key(prefixExports, topic.String()) }

// PutExportState records a topic's export state, fenced by the exporter's
// leadership.
func (s *Store) PutExportState(ctx context.Context, f Fence, topic uuid.UUID, st ExportState) error {
	st.V = 1
	_, err := s.compactorTxn(ctx, f, "recording the export of "+st.Topic, nil, []clientv3.Op{clientv3.OpPut(s.exportKey(topic), encode(st))})
	return err
}

// ExportGroup is the consumer group whose committed offsets mirror a
// topic's export, as a Kafka Connect sink's do: OffsetFetch answers them
// (floe topic describe reads the export's lag there; so can any tool that
// fetches a group's offsets by name). The group has no members and is
// listed as Empty, as a group that only commits offsets is. Its offsets
// are written by the exporter alone; the table is what counts, so
// resetting them changes nothing.
func ExportGroup(topic string) string { return "floe-iceberg." + topic }

// ExportOffsetMetadata is the metadata string of the export group's
// committed offsets.
type ExportOffsetMetadata struct {
	Table      string    `json:"table"`
	SnapshotID int64     `json:"snapshot_id"`
	Committed  time.Time `json:"committed"`
	// Error is why the topic's last export failed, at ErrorAt; on the
	// lowest partition's offset only, and cleared by the next commit.
	Error   string     `json:"error,omitempty"`
	ErrorAt *time.Time `json:"error_at,omitempty"`
}

// PutExportOffsets commits the export group's offsets of the partitions
// given (those the export moved), fenced by the exporter's leadership, in
// transactions of at most maxOps operations.
func (s *Store) PutExportOffsets(ctx context.Context, f Fence, t Topic, offsets map[int32]int64, meta ExportOffsetMetadata, maxOps int) error {
	group := ExportGroup(t.Name)
	md := encode(meta)
	now := time.Now().UnixMilli()
	parts := make([]int32, 0, len(offsets))
	for p := range offsets {
		parts = append(parts, p)
	}
	slices.Sort(parts)
	// The group is stored as an Empty group of no protocol, as a group
	// that only commits offsets is, so group listings show it; a group
	// state already there (a coordinator's) is left as it is.
	key := s.groupKey(group)
	empty := GroupState{Name: group, State: GroupEmpty, StateSince: now}
	if _, err := s.cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).Then(clientv3.OpPut(key, empty.value())).Commit(); err != nil {
		return fmt.Errorf("storing the export group %s: %w", group, err)
	}
	step := txnOps(maxOps, 1)
	for lo := 0; lo < len(parts); lo += step {
		var ops []clientv3.Op
		for _, p := range parts[lo:min(lo+step, len(parts))] {
			o := CommittedOffset{TopicID: t.ID, Offset: offsets[p], LeaderEpoch: -1, Metadata: &md, Committed: now}
			ops = append(ops, clientv3.OpPut(s.offsetKey(group, t.Name, p), o.value()))
		}
		if _, err := s.compactorTxn(ctx, f, "committing the export group's offsets of "+t.Name, nil, ops); err != nil {
			return err
		}
	}
	return nil
}

// ExportStateOf returns a topic's export state, if it has one.
func (s *Store) ExportStateOf(ctx context.Context, topic uuid.UUID) (ExportState, bool, error) {
	key := s.exportKey(topic)
	resp, err := s.cli.Get(ctx, key)
	if err != nil {
		return ExportState{}, false, fmt.Errorf("reading the export state of %s: %w", topic, err)
	}
	if len(resp.Kvs) == 0 {
		return ExportState{}, false, nil
	}
	var st ExportState
	if err := decode(key, resp.Kvs[0].Value, &st); err != nil {
		return ExportState{}, false, err
	}
	return st, true, nil
}

// ExportStates returns every topic's export state, by topic ID.
func (s *Store) ExportStates(ctx context.Context) (map[uuid.UUID]ExportState, error) {
	prefix := s.key(prefixExports)
	out := map[uuid.UUID]ExportState{}
	err := s.rangePages(ctx, prefix, clientv3.GetPrefixRangeEnd(prefix), func(key string, value []byte, _ int64) error {
		id, err := uuid.Parse(strings.TrimPrefix(key, prefix))
		if err != nil {
			return fmt.Errorf("%w: %s: not a topic ID", ErrCorruptValue, key)
		}
		var st ExportState
		if err := decode(key, value, &st); err != nil {
			return err
		}
		out[id] = st
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading export states: %w", err)
	}
	return out, nil
}

// DeleteExportState forgets a topic's export (its topic was deleted, or
// no longer exports), fenced by the exporter's leadership.
func (s *Store) DeleteExportState(ctx context.Context, f Fence, topic uuid.UUID) error {
	_, err := s.compactorTxn(ctx, f, "forgetting the export of "+topic.String(), nil, []clientv3.Op{clientv3.OpDelete(s.exportKey(topic))})
	return err
}
