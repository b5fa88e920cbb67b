package metadata

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/google/uuid"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Limits on topics, as Kafka enforces them.
const (
	MaxTopicNameLength = 249
	// MaxPartitions bounds one topic's partition count. Kafka has no hard
	// limit; this one keeps a typo from creating millions of partitions.
	MaxPartitions = 100_000
	// MaxReplicationFactor bounds the accepted replication factor.
	MaxReplicationFactor = 32
)

// Topic is a topic as stored in etcd.
type Topic struct {
	Name       string
	ID         uuid.UUID
	Partitions int32
	// ShardSize is how many consecutive partitions share a shard (set at
	// creation, DefaultShardSize).
	ShardSize         int32
	ReplicationFactor int16
	// Configs holds the topic's overrides only; BrokerConfig.Resolve gives
	// effective values.
	Configs map[string]string
	Created time.Time
	// CreateRevision is the etcd revision that created the topic. Writes
	// of partition data compare it, so data is never committed to a topic
	// that was deleted (and perhaps recreated) meanwhile.
	CreateRevision int64
	// ModRevision is the etcd revision of the topic's last change.
	ModRevision int64
}

// Internal reports whether the topic is one of floe's internal topics.
func (t Topic) Internal() bool { return strings.HasPrefix(t.Name, "__") }

type topicValue struct {
	V                 int               `json:"v"`
	ID                uuid.UUID         `json:"id"`
	Partitions        int32             `json:"partitions"`
	ShardSize         int32             `json:"shard_size,omitempty"`
	ReplicationFactor int16             `json:"replication_factor"`
	Configs           map[string]string `json:"configs,omitempty"`
	Created           time.Time         `json:"created"`
}

func decodeTopic(key string, name string, data []byte, createRev, modRev int64) (Topic, error) {
	var v topicValue
	if err := decode(key, data, &v); err != nil {
		return Topic{}, err
	}
	if v.ShardSize == 0 {
		v.ShardSize = 1
	}
	if v.Partitions < 0 || v.ID == uuid.Nil || v.ShardSize < 0 || v.ShardSize > MaxShardSize {
		return Topic{}, fmt.Errorf("%w: %s: partitions %d, id %s", ErrCorruptValue, key, v.Partitions, v.ID)
	}
	return Topic{
		Name:              name,
		ID:                v.ID,
		Partitions:        v.Partitions,
		ShardSize:         v.ShardSize,
		ReplicationFactor: v.ReplicationFactor,
		Configs:           v.Configs,
		Created:           v.Created,
		CreateRevision:    createRev,
		ModRevision:       modRev,
	}, nil
}

func (t Topic) value() string {
	return encode(topicValue{V: 1, ID: t.ID, Partitions: t.Partitions, ShardSize: t.ShardSize, ReplicationFactor: t.ReplicationFactor, Configs: t.Configs, Created: t.Created})
}

// ValidateTopicName checks a topic name as Kafka does: 1 to 249 characters
// from [a-zA-Z0-9._-], and not "." or "..".
func ValidateTopicName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: the name is empty", ErrInvalidTopic)
	case name == "." || name == "..":
		return fmt.Errorf("%w: %q is not allowed", ErrInvalidTopic, name)
	case len(name) > MaxTopicNameLength:
		return fmt.Errorf("%w: the name is %d characters long; the limit is %d", ErrInvalidTopic, len(name), MaxTopicNameLength)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("%w: %q contains %q; only ASCII letters, digits, '.', '_' and '-' are allowed", ErrInvalidTopic, name, r)
		}
	}
	return nil
}

// TopicSpec is what CreateTopic needs.
type TopicSpec struct {
	Name              string
	Partitions        int32
	ReplicationFactor int16
	Configs           map[string]string
	// ShardSize overrides DefaultShardSize (0: the default).
	ShardSize int32
}

// Validate checks the spec without touching etcd.
func (spec TopicSpec) Validate() error {
	if err := ValidateTopicName(spec.Name); err != nil {
		return err
	}
	if spec.Partitions < 1 || spec.Partitions > MaxPartitions {
		return fmt.Errorf("%w: %d partitions requested; a topic has between 1 and %d", ErrInvalidPartitions, spec.Partitions, MaxPartitions)
	}
	if spec.ShardSize < 0 || spec.ShardSize > MaxShardSize {
		return fmt.Errorf("%w: shard size %d; it must be between 1 and %d", ErrInvalidPartitions, spec.ShardSize, MaxShardSize)
	}
	if spec.ReplicationFactor < 1 || spec.ReplicationFactor > MaxReplicationFactor {
		return fmt.Errorf("%w: %d requested; it must be between 1 and %d (floe's durability comes from the object store and etcd, so any value in range is accepted)", ErrInvalidReplicationFactor, spec.ReplicationFactor, MaxReplicationFactor)
	}
	return ValidateTopicConfigs(spec.Configs)
}

func (s *Store) topicKey(name string) string { return s.key(prefixTopics, name) }

// CreateTopic creates a topic. It fails with ErrTopicExists if the name is
// taken.
func (s *Store) CreateTopic(ctx context.Context, spec TopicSpec) (Topic, error) {
	if err := spec.Validate(); err != nil {
		return Topic{}, err
	}
	t := Topic{
		Name:              spec.Name,
		ID:                uuid.New(),
		Partitions:        spec.Partitions,
		ShardSize:         spec.ShardSize,
		ReplicationFactor: spec.ReplicationFactor,
		Configs:           normalizeConfigs(spec.Configs),
		Created:           time.Now().UTC().Truncate(time.Millisecond),
	}
	if t.ShardSize == 0 {
		t.ShardSize = DefaultShardSize(spec.Partitions)
	}
	key := s.topicKey(spec.Name)
	resp, err := s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, t.value())).
		Commit()
	if err != nil {
		return Topic{}, fmt.Errorf("creating topic %s: %w", spec.Name, err)
	}
	if !resp.Succeeded {
		return Topic{}, fmt.Errorf("%w: %s", ErrTopicExists, spec.Name)
	}
	t.CreateRevision = resp.Header.Revision
	t.ModRevision = resp.Header.Revision
	return t, nil
}

func normalizeConfigs(in map[string]string) map[string]string {
	if len(in) == 0 {
		return nil
	}
	out := make(map[string]string, len(in))
	for k, v := range in {
		out[k] = strings.TrimSpace(v)
	}
	return out
}

// GetTopic reads a topic straight from etcd (linearizable).
func (s *Store) GetTopic(ctx context.Context, name string) (Topic, error) {
	key := s.topicKey(name)
	resp, err := s.cli.Get(ctx, key)
	if err != nil {
		return Topic{}, fmt.Errorf("reading topic %s: %w", name, err)
	}
	if len(resp.Kvs) == 0 {
		return Topic{}, fmt.Errorf("%w: %s", ErrUnknownTopic, name)
	}
	kv := resp.Kvs[0]
	return decodeTopic(key, name, kv.Value, kv.CreateRevision, kv.ModRevision)
}

// ListTopics reads every topic straight from etcd.
func (s *Store) ListTopics(ctx context.Context) ([]Topic, int64, error) {
	prefix := s.key(prefixTopics)
	resp, err := s.cli.Get(ctx, prefix, clientv3.WithPrefix())
	if err != nil {
		return nil, 0, fmt.Errorf("listing topics: %w", err)
	}
	topics := make([]Topic, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		name := strings.TrimPrefix(string(kv.Key), prefix)
		t, err := decodeTopic(string(kv.Key), name, kv.Value, kv.CreateRevision, kv.ModRevision)
		if err != nil {
			return nil, 0, err
		}
		topics = append(topics, t)
	}
	return topics, resp.Header.Revision, nil
}

// DeleteTopic removes a topic and all of its shards' logs, log starts,
// producer snapshots and cleaner state in one transaction. The segment objects that held its data are
// then referenced by nothing and are collected by the compactor.
func (s *Store) DeleteTopic(ctx context.Context, name string) (Topic, error) {
	for {
		t, err := s.GetTopic(ctx, name)
		if err != nil {
			return Topic{}, err
		}
		key := s.topicKey(name)
		id := t.ID.String()
		resp, err := s.cli.Txn(ctx).
			If(clientv3.Compare(clientv3.ModRevision(key), "=", t.ModRevision)).
			Then(
				clientv3.OpDelete(key),
				clientv3.OpDelete(s.key(prefixLog, id, "/"), clientv3.WithPrefix()),
				clientv3.OpDelete(s.key(prefixStarts, id, "/"), clientv3.WithPrefix()),
				clientv3.OpDelete(s.key(prefixProducerState, id, "/"), clientv3.WithPrefix()),
				clientv3.OpDelete(s.key(prefixAborted, id, "/"), clientv3.WithPrefix()),
				clientv3.OpDelete(s.key(prefixCleaned, id, "/"), clientv3.WithPrefix()),
			).
			Commit()
		if err != nil {
			return Topic{}, fmt.Errorf("deleting topic %s: %w", name, err)
		}
		if resp.Succeeded {
			t.ModRevision = resp.Header.Revision
			return t, nil
		}
		// Changed meanwhile (configs or partitions): reload and retry.
	}
}

// updateTopic applies fn to the current topic and writes the result with a
// compare on the topic's mod revision, retrying on conflict.
func (s *Store) updateTopic(ctx context.Context, name string, fn func(*Topic) error) (Topic, error) {
	for {
		t, err := s.GetTopic(ctx, name)
		if err != nil {
			return Topic{}, err
		}
		t.Configs = maps.Clone(t.Configs)
		if err := fn(&t); err != nil {
			return Topic{}, err
		}
		key := s.topicKey(name)
		resp, err := s.cli.Txn(ctx).
			If(clientv3.Compare(clientv3.ModRevision(key), "=", t.ModRevision)).
			Then(clientv3.OpPut(key, t.value())).
			Commit()
		if err != nil {
			return Topic{}, fmt.Errorf("updating topic %s: %w", name, err)
		}
		if resp.Succeeded {
			t.ModRevision = resp.Header.Revision
			return t, nil
		}
	}
}

// CheckPartitionCount validates growing a topic from current to count
// partitions.
func CheckPartitionCount(name string, current, count int32) error {
	switch {
	case count < current:
		return fmt.Errorf("%w: topic %s has %d partitions and cannot shrink to %d; partitions can be added, never removed, because keys would map to other partitions and records would be lost", ErrInvalidPartitions, name, current, count)
	case count == current:
		return fmt.Errorf("%w: topic %s already has %d partitions", ErrInvalidPartitions, name, current)
	case count > MaxPartitions:
		return fmt.Errorf("%w: %d partitions requested; the limit is %d", ErrInvalidPartitions, count, MaxPartitions)
	}
	return nil
}

// SetPartitionCount grows a topic to count partitions. Shrinking, or
// asking for the current count, fails with ErrInvalidPartitions.
func (s *Store) SetPartitionCount(ctx context.Context, name string, count int32) (Topic, error) {
	return s.updateTopic(ctx, name, func(t *Topic) error {
		if err := CheckPartitionCount(name, t.Partitions, count); err != nil {
			return err
		}
		t.Partitions = count
		return nil
	})
}

// UpdateTopicConfigs replaces a topic's config overrides with what fn
// returns, validated, with a compare-and-swap retry loop. fn receives a
// copy of the current overrides and may modify and return it.
func (s *Store) UpdateTopicConfigs(ctx context.Context, name string, fn func(current map[string]string) (map[string]string, error)) (Topic, error) {
	return s.updateTopic(ctx, name, func(t *Topic) error {
		if t.Configs == nil {
			t.Configs = map[string]string{}
		}
		next, err := fn(t.Configs)
		if err != nil {
			return err
		}
		if err := ValidateTopicConfigs(next); err != nil {
			return err
		}
		t.Configs = normalizeConfigs(next)
		return nil
	})
}
