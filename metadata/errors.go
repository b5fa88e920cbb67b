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
	// The schema registry's (schemas.go).
	// ErrSubjectNotFound: the subject has no versions (or none that are
	// not deleted, where deleted ones do not count).
	ErrSubjectNotFound = errors.New("metadata: subject not found")
	// ErrSchemaVersionNotFound: the subject has no such version.
	ErrSchemaVersionNotFound = errors.New("metadata: schema version not found")
	// ErrSchemaNotFound: no schema has that ID, or the subject holds no
	// such schema.
	ErrSchemaNotFound = errors.New("metadata: schema not found")
	// ErrSubjectSoftDeleted: the subject was soft deleted already.
	ErrSubjectSoftDeleted = errors.New("metadata: subject was soft deleted")
	// ErrSubjectNotSoftDeleted: a permanent delete of a subject that was
	// not soft deleted first.
	ErrSubjectNotSoftDeleted = errors.New("metadata: subject was not soft deleted first")
	// ErrSchemaVersionSoftDeleted: the version was soft deleted already.
	ErrSchemaVersionSoftDeleted = errors.New("metadata: schema version was soft deleted")
	// ErrSchemaVersionNotSoftDeleted: a permanent delete of a version that
	// was not soft deleted first.
	ErrSchemaVersionNotSoftDeleted = errors.New("metadata: schema version was not soft deleted first")
	// ErrSubjectCompatibilityNotSet: the subject has no level of its own.
	ErrSubjectCompatibilityNotSet = errors.New("metadata: subject has no compatibility level of its own")
	// ErrInvalidSchema: a schema cannot be stored as given (a reference
	// to a missing version, too many references, an unknown type).
	ErrInvalidSchema = errors.New("metadata: invalid schema")
	// ErrSchemaTooLarge: a schema is larger than MaxSchemaBytes, or its
	// stored value than what one etcd request carries.
	ErrSchemaTooLarge = errors.New("metadata: schema too large")
	// ErrInvalidSubject: a subject name is empty, too long or holds
	// control characters.
	ErrInvalidSubject = errors.New("metadata: invalid subject")
	// ErrInvalidCompatibility: not one of CompatibilityLevels.
	ErrInvalidCompatibility = errors.New("metadata: invalid compatibility level")
	// ErrSchemaReferenced: a version other schemas reference cannot be
	// deleted.
	ErrSchemaReferenced = errors.New("metadata: schema version is referenced by other schemas")
	// ErrSchemaIDNotPermitted: a registration asked for an ID or version
	// other than the one the registry gives it.
	ErrSchemaIDNotPermitted = errors.New("metadata: schema IDs and versions are assigned by the registry")
)
