// Package kafkatest builds Kafka wire structures for tests that need what
// real clients rarely send: a RecordBatch with chosen producer IDs and
// sequences, or a Fetch at a chosen offset. Requests are kmsg's; batches
// are segments' encoding (the one owner of the RecordBatch layout), which
// the tests that send them to an agent check against real Kafka clients
// reading them back.
//
// kafkatest is for tests only.
package kafkatest

import (
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/segments"
)

// Producer identifies a batch's producer: ID -1, epoch -1 and sequence -1
// for a non-idempotent producer (NoProducer).
type Producer struct {
	ID       int64
	Epoch    int16
	Sequence int32
}

// NoProducer is a producer without idempotence.
var NoProducer = Producer{ID: -1, Epoch: -1, Sequence: -1}

// RecordBatch encodes an uncompressed RecordBatch v2 holding values, as a
// producer sends it: base offset 0, timestamps at, and a valid CRC.
func RecordBatch(p Producer, at time.Time, values ...string) []byte {
	var recs []byte
	for i, v := range values {
		recs = segments.AppendRecord(recs, 0, int32(i), nil, []byte(v))
	}
	return segments.AppendBatch(nil, segments.BatchHeader{
		BaseTimestamp: at.UnixMilli(), MaxTimestamp: at.UnixMilli(),
		ProducerID: p.ID, ProducerEpoch: p.Epoch, BaseSequence: p.Sequence,
		LastOffsetDelta: int32(len(values) - 1), RecordCount: int32(len(values)),
	}, recs)
}

// FetchRequest is a one-partition Fetch of up to 1 MiB from offset,
// naming the topic both by name and by ID (clients send the highest
// version both sides speak; from v13 topics are named by ID).
func FetchRequest(topic string, topicID [16]byte, partition int32, offset int64, maxWait time.Duration) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.Version = 11
	req.ReplicaID = -1
	req.MaxWaitMillis = int32(maxWait / time.Millisecond)
	req.MinBytes = 1
	req.MaxBytes = 1 << 20
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	rt.TopicID = topicID
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition = partition
	rp.FetchOffset = offset
	rp.PartitionMaxBytes = 1 << 20
	rp.CurrentLeaderEpoch = -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}
