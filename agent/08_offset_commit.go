package agent

// OffsetCommit, v0–v10.
//
// Served by the group's coordinator only. Offsets are stored per (group,
// topic, partition) in etcd with the client's metadata string, leader
// epoch (v6+; -1 before) and the commit time (v1's per-partition
// timestamp when the client sets one). All partitions of one request are
// written in as few etcd transactions as the op limit allows
// (Config.EtcdMaxTxnOps), each fenced by the group's claim; a request
// split across transactions can be partly committed if the claim is lost
// in between, and the partitions that were not get NOT_COORDINATOR.
//
// Checks as Kafka: generation -1 with no member ID is a "simple" commit,
// accepted while the group has no members (offsets-only use, e.g.
// kadm.CommitOffsets); otherwise the member must be in the group
// (UNKNOWN_MEMBER_ID) at the current generation (ILLEGAL_GENERATION), not
// while the group waits for SyncGroup (REBALANCE_IN_PROGRESS), and a
// static member must be the current one (FENCED_INSTANCE_ID, v7+).
// Commits during PreparingRebalance are accepted, so consumers can commit
// before they rejoin. Unknown topics or partitions get
// UNKNOWN_TOPIC_OR_PARTITION and metadata over 4096 bytes
// OFFSET_METADATA_TOO_LARGE (Kafka's offset.metadata.max.bytes). v2–v4's
// retention time is ignored: offsets expire by the agent's retention.
// Committed offsets are then written to __consumer_offsets
// (consumer_offsets.go); the response does not wait for that.
//
// Consumer-protocol (KIP-848) groups: the generation is the member epoch
// (checkConsumerCommitLocked); a wrong one is STALE_MEMBER_EPOCH from v9
// and ILLEGAL_GENERATION before. v10 addresses topics by ID
// (UNKNOWN_TOPIC_ID for IDs no topic has).

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/metadata"
)

func init() {
	register(apiSpec{key: 8, min: 0, max: 10, serve: handleSync((*Agent).handleOffsetCommit)})
}

// maxOffsetMetadata is Kafka's default offset.metadata.max.bytes.
const maxOffsetMetadata = 4096

func (a *Agent) handleOffsetCommit(ctx context.Context, rq *request, req *kmsg.OffsetCommitRequest) (*kmsg.OffsetCommitResponse, error) {
	resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
	groupDenied := !a.authorizedGroup(rq.conn, metadata.ACLOpRead, req.Group)
	now := time.Now().UnixMilli()
	var (
		offsets []metadata.CommittedOffset
		codes   []*int16 // response error codes of offsets, in order
	)
	for _, rt := range req.Topics {
		st := kmsg.NewOffsetCommitResponseTopic()
		st.Topic, st.TopicID = rt.Topic, rt.TopicID
		st.Partitions = make([]kmsg.OffsetCommitResponseTopicPartition, len(rt.Partitions))
		var (
			topic metadata.Topic
			terr  error
		)
		if req.Version >= 10 {
			topic, terr = a.lookupTopicByID(ctx, rt.TopicID)
			if isUnknownTopic(terr) {
				terr = kerr.UnknownTopicID
			}
		} else {
			topic, terr = a.lookupTopic(ctx, rt.Topic)
		}
		switch {
		case groupDenied:
			terr = kerr.GroupAuthorizationFailed
		case terr == nil && !a.authorizedTopic(rq.conn, metadata.ACLOpRead, topic.Name):
			terr = kerr.TopicAuthorizationFailed
		}
		for i, rp := range rt.Partitions {
			sp := &st.Partitions[i]
			*sp = kmsg.NewOffsetCommitResponseTopicPartition()
			sp.Partition = rp.Partition
			switch {
			case terr != nil:
				ke, _ := kafkaError(terr)
				sp.ErrorCode = ke.Code
			case rp.Partition < 0 || rp.Partition >= topic.Partitions:
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case rp.Metadata != nil && len(*rp.Metadata) > maxOffsetMetadata:
				sp.ErrorCode = kerr.OffsetMetadataTooLarge.Code
			default:
				o := metadata.CommittedOffset{
					Topic:       topic.Name,
					Partition:   rp.Partition,
					TopicID:     topic.ID,
					Offset:      rp.Offset,
					LeaderEpoch: -1,
					Metadata:    rp.Metadata,
					Committed:   now,
				}
				if req.Version >= 6 {
					o.LeaderEpoch = rp.LeaderEpoch
				}
				if req.Version == 1 && rp.Timestamp > 0 {
					o.Committed = rp.Timestamp
				}
				offsets = append(offsets, o)
			}
		}
		resp.Topics = append(resp.Topics, st)
	}
	// Partitions are addressed by pointer only after resp.Topics stops
	// growing.
	for ti := range resp.Topics {
		for pi := range resp.Topics[ti].Partitions {
			if resp.Topics[ti].Partitions[pi].ErrorCode == 0 {
				codes = append(codes, &resp.Topics[ti].Partitions[pi].ErrorCode)
			}
		}
	}
	setAll := func(from int, err error) {
		ke, _ := kafkaError(err)
		for _, c := range codes[from:] {
			*c = ke.Code
		}
	}

	generation, memberID := req.Generation, req.MemberID
	if req.Version == 0 {
		generation, memberID = -1, ""
	}
	g, err := a.groups.acquire(ctx, req.Group)
	if err != nil {
		setAll(0, err)
		return resp, nil
	}
	defer g.unlockReleasingIdle()
	parts := make([]idPartition, len(offsets))
	for i, o := range offsets {
		parts[i] = idPartition{o.TopicID, o.Partition}
	}
	stale := kerr.IllegalGeneration
	if req.Version >= 9 {
		stale = kerr.StaleMemberEpoch
	}
	m, err := g.checkCommitLocked(generation, memberID, req.InstanceID, parts, stale)
	if err != nil {
		setAll(0, err)
		return resp, nil
	}
	if m != nil {
		g.armSessionLocked(m)
	}
	var st *metadata.GroupState
	if !g.persisted {
		s := g.snapshotLocked()
		st = &s
	}
	wctx, cancel := g.gc.etcdCtx()
	defer cancel()
	n, err := a.store.CommitOffsets(wctx, g.claim, st, offsets, a.cfg.EtcdMaxTxnOps)
	if n > 0 || err == nil {
		g.persisted = true
	}
	a.feed.offsets(g.name, offsets[:n])
	if err != nil {
		setAll(n, g.failLocked(err))
	}
	return resp, nil
}

// checkCommitLocked validates a commit's generation and member as Kafka
// does, and returns the committing member, if any. parts are the
// committed partitions and stale the error for a consumer-protocol
// member's wrong epoch.
func (g *group) checkCommitLocked(generation int32, memberID string, instanceID *string, parts []idPartition, stale *kerr.Error) (*member, error) {
	if g.consumer != nil {
		return nil, g.checkConsumerCommitLocked(generation, memberID, instanceID, parts, stale)
	}
	if code := g.checkInstanceLocked(instanceID, memberID); code != nil {
		return nil, code
	}
	if generation < 0 && len(g.members) == 0 {
		return nil, nil
	}
	if g.state == metadata.GroupCompletingRebalance {
		return nil, kerr.RebalanceInProgress
	}
	m, ok := g.members[memberID]
	if !ok {
		return nil, kafkaErrorf(kerr.UnknownMemberID, "member %q is not in group %q", memberID, g.name)
	}
	if generation != g.generation {
		return nil, kafkaErrorf(kerr.IllegalGeneration, "generation %d is not group %q's current generation %d", generation, g.name, g.generation)
	}
	return m, nil
}

// checkConsumerCommitLocked validates a commit to a consumer-protocol
// group: one with epoch -1 and no member ID only while the group has no
// members; otherwise the member's current epoch, or the one before for
// partitions it still owns (a heartbeat response that moved it on may
// have crossed the commit), else stale.
func (g *group) checkConsumerCommitLocked(epoch int32, memberID string, instanceID *string, parts []idPartition, stale *kerr.Error) error {
	cg := g.consumer
	if epoch < 0 && memberID == "" {
		if len(cg.members) > 0 {
			return kafkaErrorf(kerr.UnknownMemberID, "group %q has %d members; commits without a member are taken only while it is empty", g.name, len(cg.members))
		}
		return nil
	}
	m, ok := cg.members[memberID]
	if !ok {
		return kafkaErrorf(kerr.UnknownMemberID, "member %q is not in group %q", memberID, g.name)
	}
	if instanceID != nil && !sameInstance(m.instanceID, instanceID) {
		return kafkaErrorf(kerr.FencedInstanceID, "member %q of group %q has another instance ID", memberID, g.name)
	}
	if m.classic != nil {
		// A classic member knows generations, not epochs.
		stale = kerr.IllegalGeneration
	}
	if epoch == m.epoch {
		return nil
	}
	if epoch == m.prevEpoch && epoch >= 0 {
		for _, tp := range parts {
			if !m.assigned.has(tp) && !m.revoking.has(tp) {
				return kafkaErrorf(stale, "member %q of group %q committed at epoch %d a partition it does not own; its epoch is %d", memberID, g.name, epoch, m.epoch)
			}
		}
		return nil
	}
	return kafkaErrorf(stale, "member %q of group %q committed at epoch %d; its epoch is %d", memberID, g.name, epoch, m.epoch)
}
