package agent

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/floe-io/floe/agent/internal/logread"
	"github.com/floe-io/floe/agent/internal/logwrite"
	"github.com/floe-io/floe/metadata"
	"github.com/floe-io/floe/segments"
)

// kafkaError maps an error from floe's packages to the Kafka error a
// client should see, with a message a person can act on. This is the one
// place such mappings live.
func kafkaError(err error) (*kerr.Error, string) {
	if err == nil {
		return nil, ""
	}
	msg := strings.TrimPrefix(err.Error(), "metadata: ")
	var ke *kerr.Error
	switch {
	case errors.As(err, &ke):
		return ke, msg
	case errors.Is(err, logread.ErrIndex):
		// etcd is slow or unreachable: the client retries.
		return kerr.RequestTimedOut, msg
	case errors.Is(err, logread.ErrOffsetGone):
		return kerr.OffsetOutOfRange, msg
	case errors.Is(err, metadata.ErrTopicExists):
		return kerr.TopicAlreadyExists, msg
	case errors.Is(err, metadata.ErrUnknownTopic):
		return kerr.UnknownTopicOrPartition, msg
	case errors.Is(err, metadata.ErrInvalidTopic):
		return kerr.InvalidTopicException, msg
	case errors.Is(err, metadata.ErrInvalidPartitions):
		return kerr.InvalidPartitions, msg
	case errors.Is(err, metadata.ErrInvalidReplicationFactor):
		return kerr.InvalidReplicationFactor, msg
	case errors.Is(err, metadata.ErrInvalidConfig):
		return kerr.InvalidConfig, msg
	case errors.Is(err, segments.ErrCorruptBatch), errors.Is(err, segments.ErrInvalidBatch):
		return kerr.CorruptMessage, msg
	case errors.Is(err, segments.ErrUnsupportedMagic):
		return kerr.UnsupportedForMessageFormat, msg
	case errors.Is(err, metadata.ErrOutOfOrderSequence):
		return kerr.OutOfOrderSequenceNumber, msg
	case errors.Is(err, metadata.ErrInvalidProducerEpoch):
		return kerr.InvalidProducerEpoch, msg
	case errors.Is(err, metadata.ErrTxnEnded):
		return kerr.InvalidTxnState, msg
	case errors.Is(err, metadata.ErrObjectDoomed):
		return kerr.KafkaStorageError, msg
	case errors.Is(err, metadata.ErrUnknownPartition):
		return kerr.UnknownTopicOrPartition, msg
	case errors.Is(err, logwrite.ErrUpload):
		return kerr.KafkaStorageError, msg
	case errors.Is(err, logwrite.ErrCommit):
		return kerr.RequestTimedOut, msg
	case errors.Is(err, logwrite.ErrClosed):
		return kerr.NotLeaderForPartition, msg
	case errors.Is(err, logread.ErrCorruptObject):
		return kerr.CorruptMessage, msg
	case errors.Is(err, logread.ErrMissingObject):
		return kerr.KafkaStorageError, msg
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return kerr.RequestTimedOut, "timed out waiting for etcd: " + msg
	default:
		return kerr.UnknownServerError, msg
	}
}

func isUnknownTopic(err error) bool {
	return errors.Is(err, metadata.ErrUnknownTopic)
}

// codedError is an error that carries the Kafka code clients should see
// and a message for them.
type codedError struct {
	code *kerr.Error
	msg  string
}

func (e *codedError) Error() string { return e.msg }
func (e *codedError) Unwrap() error { return e.code }

// recordError refuses a batch for one of its records: the produce
// response names the record (its index in the batch) as Kafka's does.
type recordError struct {
	err   error // a codedError
	index int32
}

func (e *recordError) Error() string { return e.err.Error() }
func (e *recordError) Unwrap() error { return e.err }

// kafkaErrorf returns an error answered to clients as code, with a
// message.
func kafkaErrorf(code *kerr.Error, format string, args ...any) error {
	return &codedError{code: code, msg: fmt.Sprintf(format, args...)}
}
