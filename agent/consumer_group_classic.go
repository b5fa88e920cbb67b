package agent

// Classic-protocol members in consumer-protocol groups, and moving live
// groups between the protocols (KIP-848's online migration), as Kafka's
// coordinator does them:
//
//   - A classic member (JoinGroup, SyncGroup, Heartbeat, LeaveGroup) may
//     be in a consumer-protocol group. Its subscription and owned
//     partitions come from its JoinGroup metadata; the server assigns to
//     it like to any member. JoinGroup is answered at once with its
//     member epoch as the generation and no leader, SyncGroup with its
//     assignment, and a heartbeat with REBALANCE_IN_PROGRESS while it has
//     partitions to revoke or receive, so it rejoins; a cooperative client
//     rejoins owning what it kept (which acknowledges the revocation), an
//     eager one owning nothing.
//   - Upgrade: a consumer-protocol member joining a Stable classic group
//     of consumers turns it into a consumer-protocol group whose classic
//     members keep their assignments at the generation as member epoch.
//   - Downgrade: when the last consumer-protocol member leaves a group
//     whose other members are classic, it becomes a classic group again,
//     at the generation most members' epochs are at, and rebalances.
//
// group.consumer.migration.policy (--group-consumer-migration-policy)
// allows upgrades, downgrades, both (bidirectional, the default) or
// neither (disabled). Empty groups change protocol whatever the policy.

import (
	"maps"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/metadata"
)

// Migration policies (group.consumer.migration.policy).
const (
	MigrationBidirectional = "bidirectional"
	MigrationUpgrade       = "upgrade"
	MigrationDowngrade     = "downgrade"
	MigrationDisabled      = "disabled"
)

func (c *GroupConfig) upgradeAllowed() bool {
	return c.ConsumerMigrationPolicy == MigrationBidirectional || c.ConsumerMigrationPolicy == MigrationUpgrade
}

func (c *GroupConfig) downgradeAllowed() bool {
	return c.ConsumerMigrationPolicy == MigrationBidirectional || c.ConsumerMigrationPolicy == MigrationDowngrade
}

// classicMembership is what a classic member of a consumer-protocol group
// joined with.
type classicMembership struct {
	session   time.Duration
	protocols []metadata.GroupProtocol
}

func (c *classicMembership) persisted() *metadata.ClassicMembership {
	if c == nil {
		return nil
	}
	return &metadata.ClassicMembership{SessionTimeoutMs: int32(c.session.Milliseconds()), Protocols: c.protocols}
}

func loadClassicMembership(c *metadata.ClassicMembership) *classicMembership {
	if c == nil {
		return nil
	}
	return &classicMembership{session: millis(c.SessionTimeoutMs), protocols: c.Protocols}
}

// consumerSubscription decodes the consumer protocol metadata of the
// first of protocols that has any.
func consumerSubscription(protocols []metadata.GroupProtocol) (kmsg.ConsumerMemberMetadata, bool) {
	for _, p := range protocols {
		var md kmsg.ConsumerMemberMetadata
		if md.ReadFrom(p.Metadata) == nil {
			return md, true
		}
	}
	return kmsg.ConsumerMemberMetadata{}, false
}

// ownedByName turns partitions named by topic name into a set by topic
// ID; topics the view does not know are left out.
func (g *group) ownedByName(topics []kmsg.ConsumerMemberMetadataOwnedPartition) partitionSet {
	s := partitionSet{}
	for _, t := range topics {
		tp, ok := g.gc.a.view.Topic(t.Topic)
		if !ok {
			continue
		}
		for _, p := range t.Partitions {
			s[idPartition{tp.ID, p}] = struct{}{}
		}
	}
	return s
}

// classicAssignment encodes s as the consumer protocol's assignment.
func (g *group) classicAssignment(s partitionSet) []byte {
	var a kmsg.ConsumerMemberAssignment
	byTopic := s.assignment()
	ids := slices.SortedFunc(maps.Keys(byTopic), func(a, b uuid.UUID) int { return slices.Compare(a[:], b[:]) })
	for _, id := range ids {
		t, ok := g.gc.a.view.TopicByID(id)
		if !ok {
			continue
		}
		at := kmsg.NewConsumerMemberAssignmentTopic()
		at.Topic = t.Name
		at.Partitions = byTopic[id]
		a.Topics = append(a.Topics, at)
	}
	return a.AppendTo(nil)
}

// consumerClassicJoinLocked serves a JoinGroup to a consumer-protocol
// group with members.
func (g *group) consumerClassicJoinLocked(rq *request, req *kmsg.JoinGroupRequest, resp *kmsg.JoinGroupResponse, session, rebalance time.Duration) error {
	cg := g.consumer
	protocols := joinProtocols(req)
	sub, ok := consumerSubscription(protocols)
	if req.ProtocolType != consumerProtocolType || !ok {
		return kafkaErrorf(kerr.InconsistentGroupProtocol, "group %q is a consumer-protocol group; classic members must join with protocol type %q and consumer subscriptions", g.name, consumerProtocolType)
	}
	for _, o := range cg.members {
		if o.classic == nil || o.id == req.MemberID {
			continue
		}
		if !slices.ContainsFunc(protocols, func(p metadata.GroupProtocol) bool {
			return slices.ContainsFunc(o.classic.protocols, func(q metadata.GroupProtocol) bool { return q.Name == p.Name })
		}) {
			return kafkaErrorf(kerr.InconsistentGroupProtocol, "protocols %v share none with the group's classic members", protocolNames(req))
		}
	}
	id := req.MemberID
	if id == "" {
		id = newMemberID(rq.clientID, req.InstanceID)
		if req.InstanceID == nil && req.Version >= 4 {
			resp.MemberID = id
			return kafkaErrorf(kerr.MemberIDRequired, "join again with member ID %q", id)
		}
	}
	m, known := cg.members[id]
	if known && m.classic == nil {
		return kafkaErrorf(kerr.InconsistentGroupProtocol, "member %q of group %q speaks the consumer protocol", id, g.name)
	}
	created := false
	if !known {
		if req.InstanceID != nil {
			if prevID, ok := cg.static[*req.InstanceID]; ok {
				// A new incarnation of a static member takes its place.
				m = g.replaceStaticConsumerLocked(cg.members[prevID], id)
				known = true
			}
		}
		if !known {
			if err := g.consumerRoomLocked(); err != nil {
				return err
			}
			m = &consumerMember{id: id, state: metadata.MemberStable, assigned: partitionSet{}, revoking: partitionSet{}, target: partitionSet{}}
			cg.members[id] = m
			if req.InstanceID != nil {
				m.instanceID = kmsg.StringPtr(*req.InstanceID)
				cg.static[*req.InstanceID] = id
			}
			created = true
		}
	} else if req.InstanceID != nil && !sameInstance(m.instanceID, req.InstanceID) {
		return kafkaErrorf(kerr.FencedInstanceID, "member %q of group %q has another instance ID", id, g.name)
	}

	topics := slices.Clone(sub.Topics)
	slices.Sort(topics)
	topics = slices.Compact(topics)
	subscription := created || !slices.Equal(topics, m.topics) || m.regex != ""
	m.topics, m.regex, m.compiled, m.assignorName = topics, "", nil, ""
	if sub.Rack != nil {
		m.rackID = kmsg.StringPtr(*sub.Rack)
	}
	m.clientID, m.clientHost = rq.clientID, clientHost(rq.conn.remote)
	m.rebalance = rebalance
	m.classic = &classicMembership{session: session, protocols: protocols}
	g.armConsumerSessionLocked(m)
	if subscription {
		g.bumpLocked()
	} else {
		g.refreshTopicsLocked()
	}
	// The metadata's owned partitions say what a cooperative member kept;
	// an eager member has given up everything before it rejoins.
	g.reconcileLocked(m, g.ownedByName(sub.OwnedPartitions))
	if err := g.persistConsumerLocked(); err != nil {
		return err
	}
	resp.MemberID = id
	resp.Generation = m.epoch
	resp.ProtocolType = kmsg.StringPtr(consumerProtocolType)
	resp.Protocol = kmsg.StringPtr(protocols[0].Name)
	resp.LeaderID = ""
	return nil
}

// consumerClassicMemberLocked returns the classic member a SyncGroup or
// Heartbeat names, checking its instance and generation (its epoch).
func (g *group) consumerClassicMemberLocked(memberID string, instanceID *string, generation int32) (*consumerMember, error) {
	m, ok := g.consumer.members[memberID]
	switch {
	case !ok || m.classic == nil:
		return nil, kafkaErrorf(kerr.UnknownMemberID, "member %q is not a classic member of group %q", memberID, g.name)
	case instanceID != nil && !sameInstance(m.instanceID, instanceID):
		return nil, kerr.FencedInstanceID
	case generation != m.epoch:
		return nil, kafkaErrorf(kerr.IllegalGeneration, "generation %d is not member %q's epoch %d", generation, memberID, m.epoch)
	}
	return m, nil
}

// consumerClassicSyncLocked serves a SyncGroup to a consumer-protocol
// group: the member's current assignment.
func (g *group) consumerClassicSyncLocked(req *kmsg.SyncGroupRequest, resp *kmsg.SyncGroupResponse) error {
	m, err := g.consumerClassicMemberLocked(req.MemberID, req.InstanceID, req.Generation)
	if err != nil {
		return err
	}
	if req.ProtocolType != nil && *req.ProtocolType != consumerProtocolType ||
		req.Protocol != nil && !slices.ContainsFunc(m.classic.protocols, func(p metadata.GroupProtocol) bool { return p.Name == *req.Protocol }) {
		return kafkaErrorf(kerr.InconsistentGroupProtocol, "member %q did not join with that protocol", req.MemberID)
	}
	g.armConsumerSessionLocked(m)
	resp.ProtocolType = kmsg.StringPtr(consumerProtocolType)
	resp.Protocol = kmsg.StringPtr(m.classic.protocols[0].Name)
	if req.Protocol != nil {
		resp.Protocol = kmsg.StringPtr(*req.Protocol)
	}
	resp.MemberAssignment = g.classicAssignment(m.assigned)
	return nil
}

// consumerClassicHeartbeatLocked serves a classic Heartbeat to a
// consumer-protocol group: REBALANCE_IN_PROGRESS while the member has
// partitions to revoke or receive, so it rejoins.
func (g *group) consumerClassicHeartbeatLocked(req *kmsg.HeartbeatRequest) error {
	m, err := g.consumerClassicMemberLocked(req.MemberID, req.InstanceID, req.Generation)
	if err != nil {
		return err
	}
	g.armConsumerSessionLocked(m)
	if g.refreshTopicsLocked() {
		if err := g.persistConsumerLocked(); err != nil {
			return err
		}
	}
	if m.state != metadata.MemberStable || m.epoch != g.consumer.assignmentEpoch {
		return kerr.RebalanceInProgress
	}
	return nil
}

// consumerClassicLeaveLocked removes one member a LeaveGroup names (by
// member or instance ID) from a consumer-protocol group.
func (g *group) consumerClassicLeaveLocked(rm kmsg.LeaveGroupRequestMember) *kerr.Error {
	cg := g.consumer
	id := rm.MemberID
	if rm.InstanceID != nil {
		known, ok := cg.static[*rm.InstanceID]
		switch {
		case !ok:
			return kerr.UnknownMemberID
		case id != "" && id != known:
			return kerr.FencedInstanceID
		}
		id = known
	}
	m, ok := cg.members[id]
	if !ok {
		return kerr.UnknownMemberID
	}
	g.gc.log.Info("group member left", "group", g.name, "member", id)
	g.removeConsumerMemberLocked(m)
	return nil
}

// persistAfterRemovalLocked writes the group after members were removed,
// first making it a classic group again if only classic members are left
// and the policy allows it.
func (g *group) persistAfterRemovalLocked() error {
	if g.maybeDowngradeLocked() {
		return nil // the rebalance it started wrote the group
	}
	return g.persistConsumerLocked()
}

// maybeDowngradeLocked makes the group a classic group when every member
// left is a classic member and the policy allows downgrades, and starts a
// rebalance. It reports whether it did.
func (g *group) maybeDowngradeLocked() bool {
	cg := g.consumer
	if cg == nil || len(cg.members) == 0 || !g.gc.cfg.downgradeAllowed() {
		return false
	}
	for _, m := range cg.members {
		if m.classic == nil {
			return false
		}
	}
	// The generation is the epoch most members are at, so their
	// heartbeats match it and they are asked to rejoin, keeping what
	// they own, rather than told they are out of date.
	votes := map[int32]int{}
	for _, m := range cg.members {
		votes[m.epoch]++
	}
	generation := int32(-1)
	for e, n := range votes {
		if generation < 0 || n > votes[generation] || n == votes[generation] && e > generation {
			generation = e
		}
	}
	g.consumer = nil
	g.members = map[string]*member{}
	g.static = map[string]string{}
	g.generation = max(generation, 0)
	g.protocolType = consumerProtocolType
	for _, id := range slices.Sorted(maps.Keys(cg.members)) {
		cm := cg.members[id]
		g.stopConsumerTimersLocked(cm)
		m := &member{
			id:         cm.id,
			instanceID: cm.instanceID,
			clientID:   cm.clientID,
			clientHost: cm.clientHost,
			session:    cm.classic.session,
			rebalance:  cm.rebalance,
			protocols:  cm.classic.protocols,
			assignment: g.classicAssignment(cm.assigned),
			order:      g.nextOrder,
		}
		g.nextOrder++
		g.members[m.id] = m
		if m.instanceID != nil {
			g.static[*m.instanceID] = m.id
		}
		g.armSessionLocked(m)
	}
	g.protocol = g.selectProtocolLocked()
	g.leader = g.sortedMembersLocked()[0].id
	g.setStateLocked(metadata.GroupStable)
	g.gc.log.Info("consumer-protocol group downgraded to a classic group: only classic members are left", "group", g.name, "members", len(g.members), "generation", g.generation)
	g.prepareRebalanceLocked("the group became a classic group")
	return true
}

// upgradeLocked makes a Stable classic group of consumers a
// consumer-protocol group whose members keep their assignments, with the
// generation as group and member epoch.
func (g *group) upgradeLocked() error {
	switch {
	case !g.gc.cfg.upgradeAllowed():
		return kafkaErrorf(kerr.GroupIDNotFound, "group %q is a classic group with members and the migration policy (%s) does not upgrade live groups", g.name, g.gc.cfg.ConsumerMigrationPolicy)
	case g.protocolType != consumerProtocolType:
		return kafkaErrorf(kerr.GroupIDNotFound, "group %q has protocol type %q; only consumer groups move to the consumer protocol", g.name, g.protocolType)
	case g.state != metadata.GroupStable:
		return kafkaErrorf(kerr.GroupIDNotFound, "group %q is %s; a classic group moves to the consumer protocol only while Stable", g.name, g.state)
	case len(g.pending) > 0:
		return kafkaErrorf(kerr.GroupIDNotFound, "group %q has members joining", g.name)
	case g.gc.cfg.ConsumerMaxSize > 0 && len(g.members) >= g.gc.cfg.ConsumerMaxSize:
		return kafkaErrorf(kerr.GroupMaxSizeReached, "group %q has %d members, the most group.consumer.max.size allows", g.name, len(g.members))
	}
	cg := newConsumerGroup()
	cg.epoch, cg.assignmentEpoch = g.generation, g.generation
	for _, old := range g.sortedMembersLocked() {
		md, _ := old.metadataFor(g.protocol)
		var sub kmsg.ConsumerMemberMetadata
		_ = sub.ReadFrom(md)
		var asg kmsg.ConsumerMemberAssignment
		_ = asg.ReadFrom(old.assignment)
		owned := partitionSet{}
		for _, t := range asg.Topics {
			if tp, ok := g.gc.a.view.Topic(t.Topic); ok {
				for _, p := range t.Partitions {
					if cg.owners[idPartition{tp.ID, p}] == "" {
						owned[idPartition{tp.ID, p}] = struct{}{}
						cg.owners[idPartition{tp.ID, p}] = old.id
					}
				}
			}
		}
		topics := slices.Clone(sub.Topics)
		slices.Sort(topics)
		m := &consumerMember{
			id: old.id, instanceID: old.instanceID, clientID: old.clientID, clientHost: old.clientHost,
			rebalance: old.rebalance, topics: slices.Compact(topics), rackID: sub.Rack,
			epoch: g.generation, prevEpoch: g.generation, state: metadata.MemberStable,
			assigned: owned, revoking: partitionSet{}, target: maps.Clone(owned),
			classic: &classicMembership{session: old.session, protocols: old.protocols},
		}
		if old.timer != nil {
			old.timer.Stop()
		}
		old.timerSeq++
		cg.members[m.id] = m
		if m.instanceID != nil {
			cg.static[*m.instanceID] = m.id
		}
	}
	g.stopJoinTimerLocked()
	g.stopSyncTimerLocked()
	g.members, g.static = map[string]*member{}, map[string]string{}
	g.generation, g.protocol, g.leader = 0, "", ""
	g.consumer = cg
	cg.topics, _ = g.resolveTopicsLocked()
	for _, m := range cg.members {
		g.armConsumerSessionLocked(m)
	}
	g.gc.log.Info("classic group upgraded to a consumer-protocol group", "group", g.name, "members", len(cg.members), "epoch", cg.epoch)
	return nil
}
