package agent

// OffsetDelete, v0.
//
// Served by the group's coordinator. Deletes committed offsets of an
// empty group; in a consumer group with members, offsets of topics no
// member subscribes to (GROUP_SUBSCRIBED_TO_TOPIC for the others, and for
// all when the subscriptions cannot be read); in any other non-empty group
// nothing (NON_EMPTY_GROUP). A group that does not exist gets
// GROUP_ID_NOT_FOUND, a topic that does not exist
// UNKNOWN_TOPIC_OR_PARTITION. Deleted offsets get tombstones in
// __consumer_offsets.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/metadata"
)

func init() {
	register(apiSpec{key: 47, min: 0, max: 0, serve: handleSync((*Agent).handleOffsetDelete)})
}

func (a *Agent) handleOffsetDelete(ctx context.Context, rq *request, req *kmsg.OffsetDeleteRequest) (*kmsg.OffsetDeleteResponse, error) {
	resp := req.ResponseKind().(*kmsg.OffsetDeleteResponse)
	fail := func(err error) (*kmsg.OffsetDeleteResponse, error) {
		ke, _ := kafkaError(err)
		resp.ErrorCode = ke.Code
		return resp, nil
	}
	if !a.authorizedGroup(rq.conn, metadata.ACLOpDelete, req.Group) {
		return fail(kerr.GroupAuthorizationFailed)
	}
	g, err := a.groups.acquire(ctx, req.Group)
	if err != nil {
		return fail(err)
	}
	defer g.unlockReleasingIdle()
	if !g.persisted {
		return fail(kerr.GroupIDNotFound)
	}
	var subscribed map[string]bool
	allSubscribed := false
	if g.state != metadata.GroupEmpty {
		if g.protocolType != consumerProtocolType {
			return fail(kerr.NonEmptyGroup)
		}
		subscribed = g.subscribedTopicsLocked()
		allSubscribed = subscribed == nil
	}
	var (
		del   []metadata.TopicPartition
		codes []*int16
	)
	resp.Topics = make([]kmsg.OffsetDeleteResponseTopic, len(req.Topics))
	for i, rt := range req.Topics {
		st := &resp.Topics[i]
		*st = kmsg.NewOffsetDeleteResponseTopic()
		st.Topic = rt.Topic
		st.Partitions = make([]kmsg.OffsetDeleteResponseTopicPartition, len(rt.Partitions))
		_, terr := a.lookupTopic(ctx, rt.Topic)
		for j, rp := range rt.Partitions {
			sp := &st.Partitions[j]
			*sp = kmsg.NewOffsetDeleteResponseTopicPartition()
			sp.Partition = rp.Partition
			switch {
			case terr != nil:
				ke, _ := kafkaError(terr)
				sp.ErrorCode = ke.Code
			case allSubscribed || subscribed[rt.Topic]:
				sp.ErrorCode = kerr.GroupSubscribedToTopic.Code
			default:
				del = append(del, metadata.TopicPartition{Topic: rt.Topic, Partition: rp.Partition})
				codes = append(codes, &sp.ErrorCode)
			}
		}
	}
	wctx, cancel := g.gc.etcdCtx()
	defer cancel()
	if err := a.store.DeleteOffsets(wctx, g.claim, del, a.cfg.EtcdMaxTxnOps); err != nil {
		ke, _ := kafkaError(g.failLocked(err))
		for _, c := range codes {
			*c = ke.Code
		}
	} else {
		a.feed.offsetsDeleted(g.name, del)
	}
	return resp, nil
}
