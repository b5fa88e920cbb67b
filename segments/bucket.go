package segments

import (
	"context"
	"fmt"
	"io"
	"time"
)

// ObjectInfo describes one stored object, as returned by List.
type ObjectInfo struct {
	Key          string
	Size         int64
	LastModified time.Time
}

// BucketReader is the read half of a Bucket. Readers (fetch paths, tools)
// take this, not the whole Bucket.
type BucketReader interface {
	// GetRange returns length bytes of the object at key starting at byte
	// offset. A length of -1 reads to the end of the object. Reading a
	// range that extends past the end of the object returns what exists
	// (possibly nothing) without error; callers check the length. A key
	// that does not exist gives an error matching ErrNotFound.
	GetRange(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error)
}

// Bucket is the object store floe keeps segments in. Implementations:
//
//   - are strongly consistent for read-after-write and for list-after-write
//     (S3, MinIO and the local directory all are);
//   - make Put atomic: a reader sees the whole object or none of it, never a
//     partial write;
//   - make Put idempotent: writing the same key with the same bytes twice is
//     not an error;
//   - make Delete idempotent: deleting a key that does not exist is not an
//     error;
//   - are safe for concurrent use.
type Bucket interface {
	BucketReader

	// Put stores data under key, replacing any object already there. It
	// does not use data after it returns (callers reuse the buffer).
	Put(ctx context.Context, key string, data []byte) error

	// Delete removes the given keys. At most MaxDeleteBatch keys are passed
	// per call; callers batch larger sets.
	Delete(ctx context.Context, keys []string) error

	// List calls fn for every object whose key starts with prefix, in
	// lexical key order. Returning an error from fn stops the listing and
	// List returns that error.
	List(ctx context.Context, prefix string, fn func(ObjectInfo) error) error

	// Close releases resources held by the bucket.
	Close() error
}

// MaxDeleteBatch is the largest number of keys passed to one Bucket.Delete
// call, matching S3's DeleteObjects limit.
const MaxDeleteBatch = 1000

// DeletePrefix removes every object whose key starts with prefix ("" for
// all of them), MaxDeleteBatch keys per Delete.
func DeletePrefix(ctx context.Context, b Bucket, prefix string) error {
	var keys []string
	if err := b.List(ctx, prefix, func(o ObjectInfo) error {
		keys = append(keys, o.Key)
		return nil
	}); err != nil {
		return fmt.Errorf("listing %q: %w", prefix, err)
	}
	for len(keys) > 0 {
		n := min(len(keys), MaxDeleteBatch)
		if err := b.Delete(ctx, keys[:n]); err != nil {
			return fmt.Errorf("deleting under %q: %w", prefix, err)
		}
		keys = keys[n:]
	}
	return nil
}
