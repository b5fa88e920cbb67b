package logread

import "errors"

// Errors a Reader gives fetches. The agent maps them to Kafka error codes.
var (
	// ErrCorruptObject: a segment object failed its checksums or does not
	// match its index entry.
	ErrCorruptObject = errors.New("segment object is corrupt")
	// ErrMissingObject: an index entry names an object the bucket does not
	// have.
	ErrMissingObject = errors.New("segment object is missing")
	// ErrIndex: the partition's index could not be read from etcd.
	ErrIndex = errors.New("reading the index failed")
	// ErrOffsetGone: no index entry holds the offset any more (retention
	// removed it since the log start was read).
	ErrOffsetGone = errors.New("the records at the offset are gone")
)
