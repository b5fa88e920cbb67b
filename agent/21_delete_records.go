package agent

// DeleteRecords, v0–v2.
//
// Advances each partition's log start offset to the requested offset, as
// Kafka's AdminClient.deleteRecords does, with one compare-and-swap on the
// shard's log starts in etcd (metadata.Store.AdvanceLogStart): -1 means the
// high watermark; an offset at or below the current log start changes
// nothing; one beyond the high watermark, or another negative one, is
// OFFSET_OUT_OF_RANGE. The response's low watermark is the log start after
// the call. Topics whose cleanup.policy is compact without delete answer
// POLICY_VIOLATION, as Kafka does.
//
// Records below the new start are unreadable at once: fetches below it get
// OFFSET_OUT_OF_RANGE and ListOffsets earliest answers it. A batch that
// straddles the start is served whole, and clients skip its leading
// records (Kafka behaves the same). Index entries wholly below the start,
// and then their objects, are removed by the compactor's next pass.
//
// With ACLs enforced it needs DELETE on the topic
// (TOPIC_AUTHORIZATION_FAILED otherwise). Any agent serves any partition;
// TimeoutMillis is not needed, since the change is durable in etcd when the
// call returns.

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/metadata"
)

func init() {
	register(apiSpec{key: 21, min: 0, max: 2, serve: handleSync((*Agent).handleDeleteRecords)})
}

func (a *Agent) handleDeleteRecords(ctx context.Context, rq *request, req *kmsg.DeleteRecordsRequest) (*kmsg.DeleteRecordsResponse, error) {
	resp := req.ResponseKind().(*kmsg.DeleteRecordsResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewDeleteRecordsResponseTopic()
		st.Topic = rt.Topic
		t, terr := a.lookupTopic(ctx, rt.Topic)
		if terr == nil && !a.authorizedTopic(rq.conn, metadata.ACLOpDelete, t.Name) {
			terr = kerr.TopicAuthorizationFailed
		}
		if terr == nil && !a.cfg.Broker.Settings(t.Configs).RetentionApplies() {
			terr = kafkaErrorf(kerr.PolicyViolation, "records of topic %s cannot be deleted: its cleanup.policy is compact without delete", rt.Topic)
		}
		for _, rp := range rt.Partitions {
			sp := kmsg.NewDeleteRecordsResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.LowWatermark = -1
			err := terr
			if err == nil && (rp.Partition < 0 || rp.Partition >= t.Partitions) {
				err = kerr.UnknownTopicOrPartition
			}
			if err == nil {
				sp.LowWatermark, err = a.deleteRecords(ctx, t, rp.Partition, rp.Offset)
			}
			if err != nil {
				ke, msg := kafkaError(err)
				sp.ErrorCode = ke.Code
				a.log.Debug("delete records failed", "topic", rt.Topic, "partition", rp.Partition, "offset", rp.Offset, "err", msg)
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}

// deleteRecords advances one partition's log start and returns it.
func (a *Agent) deleteRecords(ctx context.Context, t metadata.Topic, p int32, offset int64) (int64, error) {
	st, err := a.store.AdvanceLogStart(ctx, t, p, offset)
	if err != nil {
		if errors.Is(err, metadata.ErrOffsetOutOfRange) {
			// Only this API gives the metadata error to a client.
			return -1, kafkaErrorf(kerr.OffsetOutOfRange, "%v", err)
		}
		return -1, err
	}
	// Fetches on this agent see the new start at once, not when the watch
	// delivers it.
	a.marks.ObserveStart(t, p, st.Start)
	a.log.Info("records deleted", "topic", t.Name, "partition", p, "log_start", st.Start)
	return st.Start, nil
}
