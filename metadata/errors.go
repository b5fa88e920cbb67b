package metadata

import (
	"errors"
	"fmt"
)

var (
	// ErrTopicExists: a topic of that name already exists.
	ErrTopicExists = errors.New("metadata: topic already exists")
	// ErrUnknownTopic: no topic of that name or ID exists.
	ErrUnknownTopic = errors.New("metadata: unknown topic")
	// ErrInvalidTopic: the topic name is not valid.
	ErrInvalidTopic = errors.New("metadata: invalid topic name")
	// ErrInvalidPartitions: a partition count is out of range or would
	// shrink the topic.
	ErrInvalidPartitions = errors.New("metadata: invalid partition count")
	// ErrInvalidReplicationFactor: the replication factor is out of range.
	ErrInvalidReplicationFactor = errors.New("metadata: invalid replication factor")
	// ErrInvalidConfig: a config key is unknown or its value is invalid.
	ErrInvalidConfig = errors.New("metadata: invalid config")
	// ErrConflict: a compare-and-swap lost to a concurrent writer and the
	// caller should reload and retry.
	ErrConflict = errors.New("metadata: concurrent update")
	// ErrCorruptValue: a value in etcd could not be decoded.
	ErrCorruptValue = errors.New("metadata: corrupt value")
	// ErrInvalidTransactionalID: the transactional ID cannot be stored.
	ErrInvalidTransactionalID = errors.New("metadata: invalid transactional ID")
	// ErrTxnConflict: a transactional ID's state changed since the caller
	// read it, so a compare-and-swap was not made; the caller re-reads and
	// retries. It wraps ErrConflict.
	ErrTxnConflict = fmt.Errorf("%w: the transactional ID's state changed since it was read", ErrConflict)
)
