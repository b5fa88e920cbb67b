// Package kafkatest builds Kafka wire structures by hand for tests that
// need what real clients rarely send: a RecordBatch with chosen producer
// IDs and sequences, or a Fetch at a chosen offset. Bodies are still
// encoded with kmsg; only the RecordBatch length and CRC, which kmsg
// leaves to the caller, are filled in here.
//
// kafkatest is for tests only; it imports nothing from floe.
package kafkatest

import (
	"encoding/binary"
	"hash/crc32"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

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
		r := kmsg.NewRecord()
		r.OffsetDelta = int32(i)
		r.Value = []byte(v)
		r.Length = int32(len(r.AppendTo(nil)) - 1)
		recs = r.AppendTo(recs)
	}
	b := kmsg.NewRecordBatch()
	b.PartitionLeaderEpoch = -1
	b.Magic = 2
	b.LastOffsetDelta = int32(len(values) - 1)
	b.FirstTimestamp = at.UnixMilli()
	b.MaxTimestamp = b.FirstTimestamp
	b.ProducerID = p.ID
	b.ProducerEpoch = p.Epoch
	b.FirstSequence = p.Sequence
	b.NumRecords = int32(len(values))
	b.Records = recs
	raw := b.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[8:12], uint32(len(raw)-12))
	binary.BigEndian.PutUint32(raw[17:21], crc32.Checksum(raw[21:], castagnoli))
	return raw
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
