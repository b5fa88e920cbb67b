package agent

// CreatePartitions, v0–v3.
//
// Partitions are added, never removed: a count below the current one gets
// INVALID_PARTITIONS with the reason (keys would map elsewhere and
// records would be lost). Manual assignments are accepted and their broker
// IDs ignored. ValidateOnly checks without changing anything.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/metadata"
)

func init() {
	register(apiSpec{key: 37, min: 0, max: 3, serve: handleSync((*Agent).handleCreatePartitions)})
}

func (a *Agent) handleCreatePartitions(ctx context.Context, rq *request, req *kmsg.CreatePartitionsRequest) (*kmsg.CreatePartitionsResponse, error) {
	resp := req.ResponseKind().(*kmsg.CreatePartitionsResponse)
	seen := map[string]int{}
	for _, rt := range req.Topics {
		seen[rt.Topic]++
	}
	for _, rt := range req.Topics {
		st := kmsg.NewCreatePartitionsResponseTopic()
		st.Topic = rt.Topic
		err := func() error {
			if !a.authorizedTopic(rq.conn, metadata.ACLOpAlter, rt.Topic) {
				return kafkaErrorf(kerr.TopicAuthorizationFailed, "%s may not add partitions to topic %s", rq.conn.auth.principal, rt.Topic)
			}
			if seen[rt.Topic] > 1 {
				return kafkaErrorf(kerr.InvalidRequest, "topic %s appears more than once in the request", rt.Topic)
			}
			t, err := a.lookupTopic(ctx, rt.Topic)
			if err != nil {
				return err
			}
			if t.Internal() {
				return kafkaErrorf(kerr.InvalidRequest, "topic %s is internal to floe", rt.Topic)
			}
			if rt.Assignment != nil && len(rt.Assignment) != int(rt.Count-t.Partitions) {
				return kafkaErrorf(kerr.InvalidReplicaAssignment, "%d assignments given for %d new partitions", len(rt.Assignment), rt.Count-t.Partitions)
			}
			if req.ValidateOnly {
				return metadata.CheckPartitionCount(rt.Topic, t.Partitions, rt.Count)
			}
			updated, err := a.store.SetPartitionCount(ctx, rt.Topic, rt.Count)
			if err != nil {
				return err
			}
			if err := a.view.WaitTopicsRevision(ctx, updated.ModRevision); err != nil {
				return err
			}
			a.log.Info("partitions added", "topic", rt.Topic, "from", t.Partitions, "to", updated.Partitions)
			return nil
		}()
		if err != nil {
			ke, msg := kafkaError(err)
			st.ErrorCode = ke.Code
			st.ErrorMessage = errMessage(msg)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}
