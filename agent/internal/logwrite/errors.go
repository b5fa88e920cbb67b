package logwrite

import "errors"

// Errors a Result or Append gives. Their messages reach Kafka clients.
var (
	// ErrClosed: the Writer is closing or closed; the batches were not
	// written (an Append) or not committed (a Result).
	ErrClosed = errors.New("agent is shutting down")
	// ErrUpload: the flush's segment object could not be written.
	ErrUpload = errors.New("writing the segment object failed")
	// ErrCommit: the flush's commit to etcd failed or came too late.
	ErrCommit = errors.New("committing the segment to etcd failed")
)
