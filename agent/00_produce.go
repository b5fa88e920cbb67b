package agent

// Produce, v3–v13 (RecordBatch v2 only; v0–v2 carry older message
// formats and are not served; v13 names topics by ID).
//
// Each partition's records are validated (topic and partition exist, else
// UNKNOWN_TOPIC_OR_PARTITION; magic 2, framing and CRC, else
// CORRUPT_MESSAGE / UNSUPPORTED_FOR_MESSAGE_FORMAT; each batch within the
// topic's max.message.bytes, else MESSAGE_TOO_LARGE; no client control or
// transactional batches; with CreateTime, every record's timestamp within
// message.timestamp.before.max.ms and after.max.ms of the agent's clock,
// else INVALID_TIMESTAMP, checked only when one is set, as it decompresses
// the records) and handed to the writer, which batches all partitions of
// all clients into one segment object. The request is answered only after
// that object is in the bucket and committed in etcd, with each
// partition's real base offset: acks=1 and acks=all both
// mean "durable in the object store", stronger than Kafka's acks=1.
// acks=0 gets no response at all. Admission happens in request order on
// the connection's read goroutine, so pipelined requests keep their order;
// the wait for the commit happens on a goroutine, so pipelining works.
//
// Idempotent producers are de-duplicated at commit against the last five
// batches per producer and partition kept in etcd (see
// metadata.Committer), across agents and restarts: a retried batch gets
// its original offset and is not written twice. A producer ID no agent of
// the cluster ever allocated gets UNKNOWN_PRODUCER_ID.

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/agent/internal/logwrite"
	"github.com/floe-io/floe/metadata"
	"github.com/floe-io/floe/segments"
)

func init() {
	register(apiSpec{key: 0, min: 3, max: 13, serve: (*Agent).serveProduce})
}

// producePart is one partition of a produce request on its way.
type producePart struct {
	resp *kmsg.ProduceResponseTopicPartition
	res  *logwrite.Result // nil when the partition failed validation
}

func (a *Agent) serveProduce(ctx context.Context, rq *request) {
	req := rq.req.(*kmsg.ProduceRequest)
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	acks := req.Acks
	validAcks := acks == 0 || acks == 1 || acks == -1
	now := time.Now().UnixMilli()

	var txnCheck *txnProduceCheck
	if req.TransactionID != nil {
		txnCheck = a.txns.produceCheck(*req.TransactionID, req.Version)
	}
	var parts []producePart
	for _, rt := range req.Topics {
		st := kmsg.NewProduceResponseTopic()
		st.Topic = rt.Topic
		st.TopicID = rt.TopicID
		st.Partitions = make([]kmsg.ProduceResponseTopicPartition, len(rt.Partitions))
		resp.Topics = append(resp.Topics, st)
	}
	for ti, rt := range req.Topics {
		st := &resp.Topics[ti]
		t, terr := a.produceTopic(ctx, rq.conn, req.Version, rt)
		if terr == nil {
			st.Topic = t.Name
			st.TopicID = t.ID
			if !a.authorizedTopic(rq.conn, metadata.ACLOpWrite, t.Name) {
				terr = kafkaErrorf(kerr.TopicAuthorizationFailed, "%s may not write to topic %s", rq.conn.auth.principal, t.Name)
			}
		}
		settings := a.cfg.Broker.Settings(t.Configs)
		for pi, rp := range rt.Partitions {
			sp := &st.Partitions[pi]
			*sp = kmsg.NewProduceResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.BaseOffset = -1
			sp.LogAppendTime = -1
			sp.LogStartOffset = -1
			part := producePart{resp: sp}
			err := terr
			if err == nil && !validAcks {
				err = kafkaErrorf(kerr.InvalidRequiredAcks, "acks must be -1 (all), 0 or 1; got %d", acks)
			}
			if err == nil && (rp.Partition < 0 || rp.Partition >= t.Partitions) {
				err = kafkaErrorf(kerr.UnknownTopicOrPartition, "topic %s has %d partitions; partition %d does not exist", t.Name, t.Partitions, rp.Partition)
			}
			var batches []segments.Batch
			if err == nil {
				batches, err = a.validateBatches(req.TransactionID, t.Name, rp.Partition, rp.Records, settings, now)
			}
			for i := 0; err == nil && i < len(batches); i++ {
				if pid := batches[i].ProducerID; pid >= 0 && (i == 0 || pid != batches[i-1].ProducerID) {
					err = a.checkProducerID(ctx, pid)
				}
			}
			var txnStarted int64
			if err == nil && txnCheck != nil && len(batches) > 0 {
				txnStarted, err = txnCheck.allow(ctx, rq, t, rp.Partition, batches)
			}
			if err == nil {
				part.res, err = a.writer.AppendTxn(ctx, t, rp.Partition, batches, txnStarted)
				if errors.Is(err, logwrite.ErrClosed) {
					err = kafkaErrorf(kerr.NotLeaderForPartition, "agent is shutting down; retry on another agent")
				}
			}
			if err != nil {
				ke, msg := kafkaError(err)
				sp.ErrorCode = ke.Code
				sp.ErrorMessage = errMessage(msg)
				if re := (*recordError)(nil); errors.As(err, &re) && req.Version >= 8 {
					er := kmsg.NewProduceResponseTopicPartitionErrorRecord()
					er.RelativeOffset, er.ErrorMessage = re.index, errMessage(msg)
					sp.ErrorRecords = append(sp.ErrorRecords, er)
				}
			} else {
				var n int64
				var recs int64
				for _, b := range batches {
					n += int64(len(b.Raw))
					recs += int64(b.RecordCount)
				}
				a.writer.CountProduced(n, recs)
				if settings.LogAppendTime {
					sp.LogAppendTime = now
				}
			}
			parts = append(parts, part)
		}
	}

	if acks == 0 {
		// The client expects no response; the batches are still written,
		// and until they are the request body they point into stays in
		// the request memory it counts against.
		held := rq.held
		rq.held = 0
		rq.noReply()
		rq.conn.goAsync(func() {
			defer a.requestMem.give(held)
			for _, p := range parts {
				if p.res != nil {
					<-p.res.Done()
				}
			}
		})
		return
	}
	timeout := time.Duration(req.TimeoutMillis) * time.Millisecond
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	rq.conn.goAsync(func() {
		timer := time.NewTimer(timeout)
		defer timer.Stop()
		// The appended batches point into the request's body, and the
		// segment being built refers to them until it is written: the
		// body is free for reuse once every append was committed (a
		// committed flush was written). A part that was never appended
		// holds nothing; one that failed or was not waited for may still
		// be referred to, and its body is left to the collector.
		free := true
		for _, p := range parts {
			if p.res == nil {
				continue
			}
			select {
			case <-p.res.Done():
				a.finishProducePart(p)
				free = free && p.res.Err == nil
			case <-timer.C:
				free = false
				p.resp.ErrorCode = kerr.RequestTimedOut.Code
				p.resp.ErrorMessage = errMessage("the segment holding these records was not committed within the request timeout; retry (an idempotent producer's retry is de-duplicated)")
			case <-ctx.Done():
				free = false
				p.resp.ErrorCode = kerr.RequestTimedOut.Code
				p.resp.ErrorMessage = errMessage("agent is shutting down")
			}
		}
		rq.frameFree.Store(free)
		rq.reply(resp)
	})
}

// finishProducePart copies a resolved append into the response.
func (a *Agent) finishProducePart(p producePart) {
	r := p.res
	if r.Err != nil {
		ke, msg := kafkaError(r.Err)
		p.resp.ErrorCode = ke.Code
		p.resp.ErrorMessage = errMessage(msg)
		p.resp.LogAppendTime = -1
		return
	}
	p.resp.BaseOffset = r.BaseOffset
	p.resp.LogStartOffset = r.LogStart
}

// produceTopic resolves a produce request's topic, by name or (v13) ID,
// creating it when auto-creation is on.
func (a *Agent) produceTopic(ctx context.Context, c *conn, version int16, rt kmsg.ProduceRequestTopic) (metadata.Topic, error) {
	t, err := a.lookupProduceTopic(ctx, c, version, rt)
	if err == nil && t.Internal() {
		return t, kafkaErrorf(kerr.TopicAuthorizationFailed, "topic %s is internal to floe; clients cannot produce to it", t.Name)
	}
	return t, err
}

func (a *Agent) lookupProduceTopic(ctx context.Context, c *conn, version int16, rt kmsg.ProduceRequestTopic) (metadata.Topic, error) {
	if version >= 13 {
		t, err := a.lookupTopicByID(ctx, uuid.UUID(rt.TopicID))
		if isUnknownTopic(err) {
			return t, kafkaErrorf(kerr.UnknownTopicID, "no topic has ID %s", uuid.UUID(rt.TopicID))
		}
		return t, err
	}
	t, err := a.lookupTopic(ctx, rt.Topic)
	if isUnknownTopic(err) {
		if verr := metadata.ValidateTopicName(rt.Topic); verr != nil {
			return t, verr
		}
		if a.cfg.AutoCreateTopics && a.mayCreateTopic(c, rt.Topic) {
			return a.autoCreateTopic(ctx, rt.Topic)
		}
	}
	return t, err
}

// validateBatches parses and checks one partition's records field.
func (a *Agent) validateBatches(txnID *string, topic string, partition int32, records []byte, s metadata.TopicSettings, now int64) ([]segments.Batch, error) {
	batches, err := segments.ParseBatches(records)
	if err != nil {
		return nil, err
	}
	for i := range batches {
		b := &batches[i]
		if int64(len(b.Raw)) > int64(s.MaxMessageBytes) {
			return nil, kafkaErrorf(kerr.MessageTooLarge, "a record batch of %d bytes exceeds max.message.bytes (%d)", len(b.Raw), s.MaxMessageBytes)
		}
		if b.Control() {
			return nil, kafkaErrorf(kerr.InvalidRecord, "clients may not produce control batches")
		}
		switch {
		case b.Transactional() && txnID == nil:
			return nil, kafkaErrorf(kerr.InvalidTxnState, "a transactional batch in a produce request without a transactional ID")
		case txnID != nil && (!b.Transactional() || b.ProducerID < 0):
			return nil, kafkaErrorf(kerr.InvalidRecord, "a produce request with transactional ID %q holds a batch that is not transactional", *txnID)
		}
		if s.LogAppendTime {
			b.SetLogAppendTime(now)
		}
		if s.BoundsTimestamps() || s.Compact {
			if err := checkRecords(b, i, s, now, topic, partition); err != nil {
				return nil, err
			}
		}
	}
	return batches, nil
}

// checkRecords reads a batch's records once (decompressing them) when the
// topic's settings need it, and refuses the batch for a record whose
// timestamp is outside what message.timestamp.before.max.ms and
// after.max.ms allow or, on a compacted topic, for a record without a key:
// compaction keeps the latest record of each key, and a record without one
// has no place in it (Kafka's message and code). A timestamp refusal comes
// first.
func checkRecords(b *segments.Batch, index int, s metadata.TopicSettings, now int64, topic string, partition int32) error {
	var (
		badTime, noKey error
		n              int32
	)
	err := b.Records(func(r segments.Record) bool {
		if badTime == nil && s.BoundsTimestamps() && !s.TimestampAllowed(r.Timestamp, now) {
			lo, hi := s.TimestampRange(now)
			badTime = kafkaErrorf(kerr.InvalidTimestamp, "record at offset delta %d of batch %d has timestamp %d, outside [%d, %d] (message.timestamp.before.max.ms=%d and after.max.ms=%d from the agent's time %d)",
				r.OffsetDelta, index, r.Timestamp, lo, hi, s.TimestampBeforeMaxMs, s.TimestampAfterMaxMs, now)
		}
		if noKey == nil && s.Compact && r.Key == nil {
			noKey = &recordError{index: n, err: kafkaErrorf(kerr.InvalidRecord, "Compacted topic cannot accept message without key in topic partition %s-%d.", topic, partition)}
		}
		n++
		// Read on only while a later record could still be refused for
		// its timestamp, which is reported first.
		return badTime == nil && (noKey == nil || s.BoundsTimestamps())
	})
	switch {
	case err != nil:
		return err
	case badTime != nil:
		return badTime
	}
	return noKey
}
