package segments

import (
	"errors"
	"fmt"
)

// ErrNotFound is returned (wrapped) when an object does not exist.
var ErrNotFound = errors.New("segments: object not found")

// ErrInvalidKey is returned (wrapped) when an object key or list prefix is
// not one every backend can store: empty, absolute, containing "..", ".", an
// empty path segment, a backslash or NUL, longer than MaxKeyLen, or using a
// name reserved by the directory backend.
var ErrInvalidKey = errors.New("segments: invalid object key")

// ErrInvalidRange is returned (wrapped) by GetRange for a negative offset or
// a length below -1.
var ErrInvalidRange = errors.New("segments: invalid byte range")

// ErrBucketNotFound is returned (wrapped) by OpenBucket when the bucket or
// directory named by the URL does not exist.
var ErrBucketNotFound = errors.New("segments: bucket does not exist")

// ErrBucketUnreachable is returned (wrapped, together with the cause) by
// OpenBucket when the object store could not be reached or refused access.
var ErrBucketUnreachable = errors.New("segments: bucket unreachable")

// ErrInvalidBucketURL is returned (wrapped) by OpenBucket for a URL it
// cannot parse: unknown scheme, unknown query parameter, missing bucket name.
var ErrInvalidBucketURL = errors.New("segments: invalid bucket URL")

// Segment object and record batch errors. The batch errors are distinct so
// the agent can map them to Kafka error codes in one place.
var (
	// ErrCorruptSegment is returned (wrapped, with what was wrong and
	// where) when a segment object, or part of one, fails a CRC, is
	// truncated, or has lengths or counts that do not add up. The data must
	// not be used.
	ErrCorruptSegment = errors.New("segments: corrupt segment object")

	// ErrUnsupportedVersion is returned (wrapped, with the version found and
	// the range this reader accepts) when a segment object was written in a
	// format version this reader does not understand. Readers check a
	// version before the CRC that covers it, so a corrupted version field
	// shows as this too.
	ErrUnsupportedVersion = errors.New("segments: unsupported segment format version")

	// ErrCorruptBatch is returned (wrapped) by ParseBatches when a record
	// batch fails its CRC or its header is malformed (length below the
	// minimum, unknown magic), and by Records when its records do not
	// decompress or decode. Kafka: CORRUPT_MESSAGE.
	ErrCorruptBatch = errors.New("segments: corrupt record batch")

	// ErrInvalidBatch is returned (wrapped) by ParseBatches when a record
	// batch is well formed but not acceptable: truncated, no records, a
	// lastOffsetDelta that disagrees with the record count, an unknown
	// compression codec; and by Records for records that decompress
	// to more than MaxRecordsSize. Kafka: INVALID_RECORD.
	ErrInvalidBatch = errors.New("segments: invalid record batch")

	// errRecordsTooLarge is the ErrInvalidBatch of Records for records
	// that decompress to more than MaxRecordsSize.
	errRecordsTooLarge = fmt.Errorf("%w: records decompress to more than %d bytes", ErrInvalidBatch, MaxRecordsSize)

	// ErrUnsupportedMagic is returned (wrapped) by ParseBatches for a
	// message set in the pre-0.11 formats (magic 0 or 1); floe only stores
	// RecordBatch v2. (Kafka brokers answer INVALID_RECORD for these on
	// Produce v3 and later; the agent owns the mapping.)
	ErrUnsupportedMagic = errors.New("segments: unsupported record batch magic (only v2 is accepted)")
)
