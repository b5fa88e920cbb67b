package agent

// OffsetFetch, v0–v9.
//
// Served by the group's coordinator only (per group; v8+ batches groups).
// Committed offsets are read straight from etcd, so no claim is needed.
// A partition with no commit gets offset -1 and no error, so clients
// apply auto.offset.reset (earliest, latest, or none: their error). A
// group that does not exist likewise answers -1 for everything. Without a
// topic list (v2+), every committed partition is returned.
//
// Deleted topics: committed offsets are not removed with the topic;
// instead each offset records the topic ID it was committed against, and
// offsets whose topic no longer exists (or was deleted and created again)
// are filtered out here and removed by the coordinator's periodic sweep.
//
// RequireStable (v7+, KIP-447; Java's read_committed consumers set it): a
// partition for which an ongoing transaction holds offsets of the group
// (TxnOffsetCommit, not yet committed or aborted) gets
// UNSTABLE_OFFSET_COMMIT, which the client retries, instead of an offset
// the transaction is about to replace. v9's member ID and epoch are
// checked for consumer-protocol (KIP-848) groups as Kafka checks them
// (UNKNOWN_MEMBER_ID, STALE_MEMBER_EPOCH) and ignored for classic groups.
// v10 addresses topics by ID and is not served.

import (
	"context"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/metadata"
)

func init() {
	register(apiSpec{key: 9, min: 0, max: 9, serve: handleSync((*Agent).handleOffsetFetch)})
}

func (a *Agent) handleOffsetFetch(ctx context.Context, rq *request, req *kmsg.OffsetFetchRequest) (*kmsg.OffsetFetchResponse, error) {
	resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
	if req.Version >= 8 {
		for _, rg := range req.Groups {
			if !a.authorizedGroup(rq.conn, metadata.ACLOpDescribe, rg.Group) {
				sg := kmsg.NewOffsetFetchResponseGroup()
				sg.Group = rg.Group
				sg.ErrorCode = kerr.GroupAuthorizationFailed.Code
				resp.Groups = append(resp.Groups, sg)
				continue
			}
			resp.Groups = append(resp.Groups, a.fetchGroupOffsets(ctx, rg, req.RequireStable))
		}
		return resp, nil
	}
	if !a.authorizedGroup(rq.conn, metadata.ACLOpDescribe, req.Group) {
		resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
		return resp, nil
	}
	rg := kmsg.NewOffsetFetchRequestGroup()
	rg.Group = req.Group
	if req.Topics != nil {
		rg.Topics = []kmsg.OffsetFetchRequestGroupTopic{}
		for _, t := range req.Topics {
			rt := kmsg.NewOffsetFetchRequestGroupTopic()
			rt.Topic = t.Topic
			rt.Partitions = t.Partitions
			rg.Topics = append(rg.Topics, rt)
		}
	}
	sg := a.fetchGroupOffsets(ctx, rg, req.Version >= 7 && req.RequireStable)
	resp.ErrorCode = sg.ErrorCode
	if sg.ErrorCode != 0 && req.Version < 2 {
		// v0 and v1 carry errors per partition only.
		for _, t := range req.Topics {
			st := kmsg.NewOffsetFetchResponseTopic()
			st.Topic = t.Topic
			for _, p := range t.Partitions {
				sp := kmsg.NewOffsetFetchResponseTopicPartition()
				sp.Partition = p
				sp.Offset = -1
				sp.ErrorCode = sg.ErrorCode
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil
	}
	for _, t := range sg.Topics {
		st := kmsg.NewOffsetFetchResponseTopic()
		st.Topic = t.Topic
		for _, p := range t.Partitions {
			sp := kmsg.NewOffsetFetchResponseTopicPartition()
			sp.Partition = p.Partition
			sp.Offset = p.Offset
			sp.LeaderEpoch = p.LeaderEpoch
			sp.Metadata = p.Metadata
			sp.ErrorCode = p.ErrorCode
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}

// fetchGroupOffsets answers one group's part of an OffsetFetch.
func (a *Agent) fetchGroupOffsets(ctx context.Context, rg kmsg.OffsetFetchRequestGroup, requireStable bool) kmsg.OffsetFetchResponseGroup {
	sg := kmsg.NewOffsetFetchResponseGroup()
	sg.Group = rg.Group
	if err := a.groups.checkCoordinator(rg.Group); err != nil {
		ke, _ := kafkaError(err)
		sg.ErrorCode = ke.Code
		return sg
	}
	if rg.MemberID != nil && *rg.MemberID != "" {
		if err := a.groups.checkFetchMember(ctx, rg.Group, *rg.MemberID, rg.MemberEpoch); err != nil {
			ke, _ := kafkaError(err)
			sg.ErrorCode = ke.Code
			return sg
		}
	}
	// A request naming its partitions reads and decodes only theirs.
	var want map[metadata.TopicPartition]bool
	if rg.Topics != nil {
		want = map[metadata.TopicPartition]bool{}
		for _, rt := range rg.Topics {
			for _, p := range rt.Partitions {
				want[metadata.TopicPartition{Topic: rt.Topic, Partition: p}] = true
			}
		}
	}
	var (
		offsets []metadata.CommittedOffset
		pending map[metadata.TopicPartition]bool
		bad     []error
		err     error
	)
	if requireStable {
		// Transactions first, then offsets (StableOffsetsOf says why).
		offsets, pending, bad, err = a.store.StableOffsetsOf(ctx, rg.Group, want)
	} else {
		offsets, bad, err = a.store.FetchOffsetsOf(ctx, rg.Group, want)
	}
	if err != nil {
		ke, _ := kafkaError(err)
		sg.ErrorCode = ke.Code
		return sg
	}
	for _, e := range bad {
		a.log.Error("ignoring undecodable committed offset", "group", rg.Group, "err", e)
	}
	if len(pending) > 0 {
		defer markUnstable(&sg, pending)
	}
	live := a.liveTopicFilter(ctx)
	if rg.Topics == nil {
		var cur *kmsg.OffsetFetchResponseGroupTopic
		for _, o := range offsets {
			if !live(o) {
				continue
			}
			if cur == nil || cur.Topic != o.Topic {
				sg.Topics = append(sg.Topics, kmsg.NewOffsetFetchResponseGroupTopic())
				cur = &sg.Topics[len(sg.Topics)-1]
				cur.Topic = o.Topic
			}
			cur.Partitions = append(cur.Partitions, fetchedPartition(o.Partition, &o))
		}
		return sg
	}
	byTP := make(map[metadata.TopicPartition]*metadata.CommittedOffset, len(offsets))
	for i := range offsets {
		o := &offsets[i]
		byTP[metadata.TopicPartition{Topic: o.Topic, Partition: o.Partition}] = o
	}
	for _, rt := range rg.Topics {
		st := kmsg.NewOffsetFetchResponseGroupTopic()
		st.Topic = rt.Topic
		for _, p := range rt.Partitions {
			o := byTP[metadata.TopicPartition{Topic: rt.Topic, Partition: p}]
			if o != nil && !live(*o) {
				o = nil
			}
			st.Partitions = append(st.Partitions, fetchedPartition(p, o))
		}
		sg.Topics = append(sg.Topics, st)
	}
	return sg
}

// markUnstable answers the partitions with offsets pending in a
// transaction UNSTABLE_OFFSET_COMMIT.
func markUnstable(sg *kmsg.OffsetFetchResponseGroup, pending map[metadata.TopicPartition]bool) {
	for ti := range sg.Topics {
		t := &sg.Topics[ti]
		for pi := range t.Partitions {
			if pending[metadata.TopicPartition{Topic: t.Topic, Partition: t.Partitions[pi].Partition}] {
				t.Partitions[pi].ErrorCode = kerr.UnstableOffsetCommit.Code
				t.Partitions[pi].Offset = -1
			}
		}
	}
}

func fetchedPartition(p int32, o *metadata.CommittedOffset) kmsg.OffsetFetchResponseGroupTopicPartition {
	sp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
	sp.Partition = p
	sp.Offset = -1
	sp.LeaderEpoch = -1
	sp.Metadata = kmsg.StringPtr("")
	if o != nil {
		sp.Offset = o.Offset
		sp.LeaderEpoch = o.LeaderEpoch
		if o.Metadata != nil {
			sp.Metadata = kmsg.StringPtr(*o.Metadata)
		}
	}
	return sp
}

// liveTopicFilter returns a function that reports whether a committed
// offset belongs to a topic that still exists in the incarnation it was
// committed to. Lookups are cached for the filter's lifetime; a failed
// lookup keeps the offset.
func (a *Agent) liveTopicFilter(ctx context.Context) func(metadata.CommittedOffset) bool {
	ids := map[string]uuid.UUID{}
	return func(o metadata.CommittedOffset) bool {
		id, ok := ids[o.Topic]
		if !ok {
			t, err := a.lookupTopic(ctx, o.Topic)
			switch {
			case err == nil:
				id = t.ID
			case isUnknownTopic(err):
				id = uuid.Nil
			default:
				return true
			}
			ids[o.Topic] = id
		}
		return id != uuid.Nil && (o.TopicID == uuid.Nil || o.TopicID == id)
	}
}

// checkFetchMember checks the member an OffsetFetch names, for
// consumer-protocol groups.
func (gc *groupCoordinator) checkFetchMember(ctx context.Context, group, memberID string, epoch int32) error {
	g, err := gc.acquire(ctx, group)
	if err != nil {
		return err
	}
	defer g.unlockReleasingIdle()
	if g.consumer == nil {
		return nil
	}
	m, ok := g.consumer.members[memberID]
	switch {
	case !ok:
		return kafkaErrorf(kerr.UnknownMemberID, "member %q is not in group %q", memberID, group)
	case epoch != m.epoch:
		return kafkaErrorf(kerr.StaleMemberEpoch, "member %q of group %q fetched offsets at epoch %d; its epoch is %d", memberID, group, epoch, m.epoch)
	}
	return nil
}
