package segments

import "errors"

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
