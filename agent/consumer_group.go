package agent

// Consumer-protocol (KIP-848) groups: the server assigns partitions and
// members reconcile to the assignment one heartbeat at a time, so no
// member ever stops for another's join or leave.
//
// Epochs. The group epoch is bumped whenever a member joins or leaves, a
// subscription changes, or a subscribed topic appears, disappears or
// grows. The target assignment is computed by the group's server assignor
// (agent/internal/assignor) right away, at the group epoch. Each member
// then moves to the target through its heartbeats, as Kafka's
// CurrentAssignmentBuilder moves it:
//
//   - A member that owns partitions its target does not give it is told
//     to revoke them (its assignment shrinks, its epoch stays). It stays
//     in unrevoked_partitions until a heartbeat's owned partitions show
//     them gone, or it is fenced (removed) when its rebalance timeout
//     passes first.
//   - A member with nothing to revoke moves to the target's epoch and is
//     given the partitions of its target no other member still owns; the
//     others follow once their owners release them
//     (unreleased_partitions), so a partition never has two owners.
//
// A member's epoch in a heartbeat must be its current one, or the one
// before when the member's owned partitions show it missed the last
// response (FENCED_MEMBER_EPOCH otherwise). A member that misses its
// session timeout is removed. Static members (instance IDs) that leave
// with epoch -2 keep their assignment until their session timeout passes
// or the same instance joins again and takes it over.
//
// State. The group's epochs, targets and every member's assignment are
// persisted (metadata.ConsumerGroupState, fenced by the group's claim)
// before a member hears of a change; heartbeats that change nothing write
// nothing. A coordinator that takes the group over loads it and gives
// every member a fresh session timeout, so no member notices the move.

import (
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/agent/internal/assignor"
	"github.com/floe-io/floe/metadata"
)

// Member epochs with a meaning of their own in ConsumerGroupHeartbeat.
const (
	memberEpochJoin        = 0
	memberEpochLeave       = -1
	memberEpochStaticLeave = -2
)

// idPartition names one partition by topic ID.
type idPartition struct {
	topic     uuid.UUID
	partition int32
}

// partitionSet is a set of partitions.
type partitionSet map[idPartition]struct{}

func partitionSetOf[T any](tps []T, topic func(T) uuid.UUID, partitions func(T) []int32) partitionSet {
	s := partitionSet{}
	for _, tp := range tps {
		id := topic(tp)
		for _, p := range partitions(tp) {
			s[idPartition{id, p}] = struct{}{}
		}
	}
	return s
}

func setOfPersisted(tps []metadata.TopicPartitions) partitionSet {
	return partitionSetOf(tps, func(tp metadata.TopicPartitions) uuid.UUID { return tp.Topic },
		func(tp metadata.TopicPartitions) []int32 { return tp.Partitions })
}

func setOfAssignment(a assignor.Assignment) partitionSet {
	s := partitionSet{}
	for id, ps := range a {
		for _, p := range ps {
			s[idPartition{id, p}] = struct{}{}
		}
	}
	return s
}

func (s partitionSet) has(tp idPartition) bool { _, ok := s[tp]; return ok }

// minus returns the partitions of s not in o.
func (s partitionSet) minus(o partitionSet) partitionSet {
	out := partitionSet{}
	for tp := range s {
		if !o.has(tp) {
			out[tp] = struct{}{}
		}
	}
	return out
}

func (s partitionSet) overlaps(o partitionSet) bool {
	for tp := range s {
		if o.has(tp) {
			return true
		}
	}
	return false
}

func (s partitionSet) subsetOf(o partitionSet) bool {
	for tp := range s {
		if !o.has(tp) {
			return false
		}
	}
	return true
}

func (s partitionSet) equal(o partitionSet) bool { return len(s) == len(o) && s.subsetOf(o) }

// assignment returns s by topic, partitions sorted.
func (s partitionSet) assignment() assignor.Assignment {
	a := assignor.Assignment{}
	for tp := range s {
		a[tp.topic] = append(a[tp.topic], tp.partition)
	}
	for _, ps := range a {
		slices.Sort(ps)
	}
	return a
}

func (s partitionSet) persisted() []metadata.TopicPartitions {
	a := s.assignment()
	out := make([]metadata.TopicPartitions, 0, len(a))
	for id, ps := range a {
		out = append(out, metadata.TopicPartitions{Topic: id, Partitions: ps})
	}
	return metadata.SortTopicPartitions(out)
}

// consumerMember is one member of a consumer-protocol group.
type consumerMember struct {
	id         string
	instanceID *string
	rackID     *string
	clientID   string
	clientHost string
	rebalance  time.Duration

	topics       []string // subscribed topic names, sorted
	regex        string   // subscribed regular expression, "" for none
	compiled     *regexp.Regexp
	assignorName string // the server assignor the member asked for

	epoch     int32
	prevEpoch int32
	state     string
	assigned  partitionSet // owned now
	revoking  partitionSet // to be given up, not yet acknowledged
	target    partitionSet

	// classic is set for a member speaking the classic protocol
	// (consumer_group_classic.go).
	classic *classicMembership

	sessionTimer *time.Timer
	sessionSeq   uint64
	revokeTimer  *time.Timer
	revokeSeq    uint64
}

func (m *consumerMember) persisted() metadata.ConsumerMember {
	return metadata.ConsumerMember{
		MemberID:           m.id,
		InstanceID:         m.instanceID,
		RackID:             m.rackID,
		ClientID:           m.clientID,
		ClientHost:         m.clientHost,
		RebalanceTimeoutMs: int32(m.rebalance.Milliseconds()),
		SubscribedTopics:   m.topics,
		SubscribedRegex:    m.regex,
		ServerAssignor:     m.assignorName,
		Epoch:              m.epoch,
		PreviousEpoch:      m.prevEpoch,
		State:              m.state,
		Assigned:           m.assigned.persisted(),
		Revoking:           m.revoking.persisted(),
		Target:             m.target.persisted(),
		Classic:            m.classic.persisted(),
	}
}

// compileSubscription compiles a KIP-848 subscription regex. Kafka matches
// the whole topic name (RE2/J); Go's RE2 takes the same syntax.
func compileSubscription(expr string) (*regexp.Regexp, error) {
	return regexp.Compile(`^(?:` + expr + `)$`)
}

// consumerGroup is the consumer-protocol state of a group (group.consumer).
type consumerGroup struct {
	epoch           int32
	assignmentEpoch int32
	assignor        string
	topics          []metadata.SubscribedTopic // the target was computed from these
	members         map[string]*consumerMember
	static          map[string]string      // instance ID -> member ID
	owners          map[idPartition]string // member that owns or is revoking each partition
	// resolvedView is the view's change channel when subscriptions were
	// last resolved; until it closes, they resolve the same.
	resolvedView <-chan struct{}
}

func newConsumerGroup() *consumerGroup {
	return &consumerGroup{
		members: map[string]*consumerMember{},
		static:  map[string]string{},
		owners:  map[idPartition]string{},
	}
}

// loadConsumerGroup restores a persisted consumer-protocol group.
func loadConsumerGroup(st *metadata.ConsumerGroupState) *consumerGroup {
	cg := newConsumerGroup()
	cg.epoch, cg.assignmentEpoch, cg.assignor = st.Epoch, st.AssignmentEpoch, st.Assignor
	cg.topics = st.Topics
	for _, pm := range st.Members {
		m := &consumerMember{
			id:           pm.MemberID,
			instanceID:   pm.InstanceID,
			rackID:       pm.RackID,
			clientID:     pm.ClientID,
			clientHost:   pm.ClientHost,
			rebalance:    millis(pm.RebalanceTimeoutMs),
			topics:       pm.SubscribedTopics,
			regex:        pm.SubscribedRegex,
			assignorName: pm.ServerAssignor,
			epoch:        pm.Epoch,
			prevEpoch:    pm.PreviousEpoch,
			state:        pm.State,
			assigned:     setOfPersisted(pm.Assigned),
			revoking:     setOfPersisted(pm.Revoking),
			target:       setOfPersisted(pm.Target),
			classic:      loadClassicMembership(pm.Classic),
		}
		if m.regex != "" {
			// A regex that no longer compiles subscribes to nothing.
			m.compiled, _ = compileSubscription(m.regex)
		}
		cg.members[m.id] = m
		if m.instanceID != nil {
			cg.static[*m.instanceID] = m.id
		}
		for tp := range m.assigned {
			cg.owners[tp] = m.id
		}
		for tp := range m.revoking {
			cg.owners[tp] = m.id
		}
	}
	return cg
}

func (cg *consumerGroup) persisted() *metadata.ConsumerGroupState {
	st := &metadata.ConsumerGroupState{
		Epoch:           cg.epoch,
		AssignmentEpoch: cg.assignmentEpoch,
		Assignor:        cg.assignor,
		Topics:          cg.topics,
	}
	for _, id := range slices.Sorted(maps.Keys(cg.members)) {
		st.Members = append(st.Members, cg.members[id].persisted())
	}
	return st
}

// stateName is the group's state as Kafka derives it.
func (cg *consumerGroup) stateName() string {
	if len(cg.members) == 0 {
		return metadata.ConsumerGroupEmpty
	}
	if cg.epoch > cg.assignmentEpoch {
		return metadata.ConsumerGroupAssigning
	}
	for _, m := range cg.members {
		if m.epoch == memberEpochStaticLeave {
			continue
		}
		if m.epoch != cg.assignmentEpoch || m.state != metadata.MemberStable {
			return metadata.ConsumerGroupReconciling
		}
	}
	return metadata.ConsumerGroupStable
}

// release forgets that m owns the partitions in s.
func (cg *consumerGroup) release(m *consumerMember, s partitionSet) {
	for tp := range s {
		if cg.owners[tp] == m.id {
			delete(cg.owners, tp)
		}
	}
}

// resolveTopics returns the existing topics some member subscribes to,
// sorted by name, with every member's subscribed topic IDs.
func (g *group) resolveTopicsLocked() ([]metadata.SubscribedTopic, map[string][]uuid.UUID) {
	cg := g.consumer
	view := g.gc.a.view
	// Taken before resolving, so a change during it is not missed.
	cg.resolvedView = view.Changed()
	byName := map[string]metadata.SubscribedTopic{}
	perMember := make(map[string][]uuid.UUID, len(cg.members))
	var all []metadata.Topic // listed once, when some member has a regex
	for _, id := range slices.Sorted(maps.Keys(cg.members)) {
		m := cg.members[id]
		var ids []uuid.UUID
		seen := map[uuid.UUID]bool{}
		add := func(t metadata.Topic) {
			if seen[t.ID] {
				return
			}
			seen[t.ID] = true
			ids = append(ids, t.ID)
			byName[t.Name] = metadata.SubscribedTopic{ID: t.ID, Name: t.Name, Partitions: t.Partitions}
		}
		for _, name := range m.topics {
			if t, ok := view.Topic(name); ok {
				add(t)
			}
		}
		if m.compiled != nil {
			if all == nil {
				all = view.Topics()
			}
			for _, t := range all {
				if !t.Internal() && m.compiled.MatchString(t.Name) {
					add(t)
				}
			}
		}
		perMember[id] = ids
	}
	topics := make([]metadata.SubscribedTopic, 0, len(byName))
	for _, name := range slices.Sorted(maps.Keys(byName)) {
		topics = append(topics, byName[name])
	}
	return topics, perMember
}

// chooseAssignorLocked picks the group's server assignor: the one most of
// its members ask for, ties going to the earlier in the configured list;
// the first configured when nobody asks.
func (g *group) chooseAssignorLocked() assignor.Assignor {
	counts := map[string]int{}
	for _, m := range g.consumer.members {
		if m.assignorName != "" {
			counts[m.assignorName]++
		}
	}
	names := g.gc.cfg.ConsumerAssignors
	best := names[0]
	for _, name := range names {
		if counts[name] > counts[best] {
			best = name
		}
	}
	a, _ := assignor.Lookup(best)
	return a
}

// computeTargetLocked computes the target assignment at the group epoch.
func (g *group) computeTargetLocked(topics []metadata.SubscribedTopic, perMember map[string][]uuid.UUID) {
	cg := g.consumer
	asg := g.chooseAssignorLocked()
	shapes := make(map[uuid.UUID]assignor.Topic, len(topics))
	for _, t := range topics {
		shapes[t.ID] = assignor.Topic{ID: t.ID, Name: t.Name, Partitions: t.Partitions}
	}
	members := make([]assignor.Member, 0, len(cg.members))
	for _, id := range slices.Sorted(maps.Keys(cg.members)) {
		m := cg.members[id]
		am := assignor.Member{ID: id, Topics: perMember[id], Current: m.target.assignment()}
		if m.instanceID != nil {
			am.InstanceID = *m.instanceID
		}
		if m.rackID != nil {
			am.Rack = *m.rackID
		}
		members = append(members, am)
	}
	started := time.Now()
	result := asg.Assign(members, shapes)
	g.gc.metrics.assignmentSeconds.Observe(time.Since(started).Seconds())
	for id, m := range cg.members {
		m.target = setOfAssignment(result[id])
	}
	cg.assignor = asg.Name()
	cg.topics = topics
	cg.assignmentEpoch = cg.epoch
}

// bumpLocked starts a new group epoch and computes its target.
func (g *group) bumpLocked() {
	cg := g.consumer
	cg.epoch++
	g.gc.metrics.epochs.Inc()
	topics, perMember := g.resolveTopicsLocked()
	g.computeTargetLocked(topics, perMember)
}

// refreshTopicsLocked bumps the group epoch when a subscribed topic was
// created, deleted or grew since the target was computed.
func (g *group) refreshTopicsLocked() bool {
	if cg := g.consumer; cg.resolvedView != nil {
		select {
		case <-cg.resolvedView:
		default:
			return false // no topic changed since the last resolution
		}
	}
	topics, perMember := g.resolveTopicsLocked()
	if slices.Equal(topics, g.consumer.topics) {
		return false
	}
	g.consumer.epoch++
	g.gc.metrics.epochs.Inc()
	g.computeTargetLocked(topics, perMember)
	return true
}

// reconcileLocked moves m toward its target as far as it may go now,
// given the partitions it says it owns (nil: not said). It reports whether
// m changed.
func (g *group) reconcileLocked(m *consumerMember, owned partitionSet) bool {
	cg := g.consumer
	changed := false
	if m.state == metadata.MemberUnrevokedPartitions {
		if owned == nil || owned.overlaps(m.revoking) {
			return false
		}
		cg.release(m, m.revoking)
		m.revoking = partitionSet{}
		m.state = metadata.MemberStable
		g.stopRevokeTimerLocked(m)
		changed = true
	}
	if m.epoch == cg.assignmentEpoch && m.state == metadata.MemberStable {
		return changed
	}
	if revoke := m.assigned.minus(m.target); len(revoke) > 0 {
		m.assigned = m.assigned.minus(revoke)
		m.revoking = revoke
		m.state = metadata.MemberUnrevokedPartitions
		g.armRevokeTimerLocked(m)
		return true
	}
	unreleased := false
	for tp := range m.target {
		if m.assigned.has(tp) {
			continue
		}
		if owner, held := cg.owners[tp]; held && owner != m.id {
			unreleased = true
			continue
		}
		m.assigned[tp] = struct{}{}
		cg.owners[tp] = m.id
		changed = true
	}
	if m.epoch != cg.assignmentEpoch {
		m.prevEpoch, m.epoch = m.epoch, cg.assignmentEpoch
		changed = true
	}
	state := metadata.MemberStable
	if unreleased {
		state = metadata.MemberUnreleasedPartitions
	}
	if m.state != state {
		m.state = state
		changed = true
	}
	return changed
}

// removeConsumerMemberLocked takes m out of the group, frees what it owns
// and starts a new epoch without it.
func (g *group) removeConsumerMemberLocked(m *consumerMember) {
	cg := g.consumer
	g.stopConsumerTimersLocked(m)
	cg.release(m, m.assigned)
	cg.release(m, m.revoking)
	delete(cg.members, m.id)
	if m.instanceID != nil && cg.static[*m.instanceID] == m.id {
		delete(cg.static, *m.instanceID)
	}
	g.bumpLocked()
}

// persistConsumerLocked derives the group's state and writes it.
func (g *group) persistConsumerLocked() error {
	g.setStateLocked(g.consumer.stateName())
	return g.persistLocked()
}

// Timers.

func (g *group) armConsumerSessionLocked(m *consumerMember) {
	if m.sessionTimer != nil {
		m.sessionTimer.Stop()
	}
	m.sessionSeq++
	seq := m.sessionSeq
	m.sessionTimer = g.gc.afterFunc(g.consumerSessionTimeout(m), func() { g.consumerSessionExpired(m, seq) })
}

func (g *group) consumerSessionExpired(m *consumerMember, seq uint64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.gone || g.consumer == nil || g.consumer.members[m.id] != m || m.sessionSeq != seq {
		return
	}
	g.gc.log.Info("consumer group member session expired", "group", g.name, "member", m.id, "session_timeout", g.consumerSessionTimeout(m))
	g.removeConsumerMemberLocked(m)
	_ = g.persistAfterRemovalLocked()
}

func (g *group) armRevokeTimerLocked(m *consumerMember) {
	g.stopRevokeTimerLocked(m)
	seq := m.revokeSeq
	m.revokeTimer = g.gc.afterFunc(max(m.rebalance, time.Millisecond), func() { g.revokeDeadline(m, seq) })
}

func (g *group) stopRevokeTimerLocked(m *consumerMember) {
	if m.revokeTimer != nil {
		m.revokeTimer.Stop()
		m.revokeTimer = nil
	}
	m.revokeSeq++
}

func (g *group) revokeDeadline(m *consumerMember, seq uint64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.gone || g.consumer == nil || g.consumer.members[m.id] != m || m.revokeSeq != seq || m.state != metadata.MemberUnrevokedPartitions {
		return
	}
	g.gc.log.Info("consumer group member fenced: it did not revoke partitions within its rebalance timeout", "group", g.name, "member", m.id, "rebalance_timeout", m.rebalance)
	g.removeConsumerMemberLocked(m)
	_ = g.persistAfterRemovalLocked()
}

func (g *group) stopConsumerTimersLocked(m *consumerMember) {
	if m.sessionTimer != nil {
		m.sessionTimer.Stop()
	}
	m.sessionSeq++
	g.stopRevokeTimerLocked(m)
}

// restoreConsumerTimersLocked starts every member's session afresh after
// a load, and the revocation deadline of those still revoking.
func (g *group) restoreConsumerTimersLocked() {
	for _, m := range g.consumer.members {
		g.armConsumerSessionLocked(m)
		if m.state == metadata.MemberUnrevokedPartitions {
			g.armRevokeTimerLocked(m)
		}
	}
}

// memberCountLocked counts the group's members of either protocol.
func (g *group) memberCountLocked() int {
	n := len(g.members)
	if g.consumer != nil {
		n += len(g.consumer.members)
	}
	return n
}

// toConsumerProtocolLocked makes a classic group a consumer-protocol group
// (in memory; the next write persists it): an empty one always, one with
// members as the migration policy allows (upgradeLocked).
func (g *group) toConsumerProtocolLocked() error {
	if g.consumer != nil {
		return nil
	}
	if len(g.members) > 0 || len(g.pending) > 0 {
		return g.upgradeLocked()
	}
	g.stopJoinTimerLocked()
	g.stopSyncTimerLocked()
	g.consumer = newConsumerGroup()
	g.generation, g.protocol, g.leader = 0, "", ""
	g.protocolType = consumerProtocolType
	g.setStateLocked(metadata.ConsumerGroupEmpty)
	return nil
}

// toClassicLocked makes an empty consumer-protocol group a classic group
// (in memory), so classic members may join it.
func (g *group) toClassicLocked() error {
	if g.consumer == nil {
		return nil
	}
	if n := len(g.consumer.members); n > 0 {
		return kafkaErrorf(kerr.InconsistentGroupProtocol, "group %q is a consumer-protocol group with %d members; classic members may join once it is empty", g.name, n)
	}
	g.consumer = nil
	g.setStateLocked(metadata.GroupEmpty)
	return nil
}

// consumerHeartbeat serves one ConsumerGroupHeartbeat.
func (gc *groupCoordinator) consumerHeartbeat(g *group, rq *request, req *kmsg.ConsumerGroupHeartbeatRequest, resp *kmsg.ConsumerGroupHeartbeatResponse) error {
	if err := g.toConsumerProtocolLocked(); err != nil {
		return err
	}
	cg := g.consumer
	resp.HeartbeatIntervalMillis = int32(g.consumerTimeoutsLocked().heartbeat.Milliseconds())
	if req.MemberEpoch < 0 {
		return g.consumerLeaveLocked(req, resp)
	}

	var (
		m       *consumerMember
		dirty   bool // something persisted changed
		created bool // a new member
		joining = req.MemberEpoch == memberEpochJoin
	)
	if joining {
		if req.InstanceID != nil {
			if prevID, ok := cg.static[*req.InstanceID]; ok && prevID != req.MemberID {
				prev := cg.members[prevID]
				if prev.epoch != memberEpochStaticLeave {
					return kafkaErrorf(kerr.UnreleasedInstanceID, "instance %q of group %q is held by member %q, which has not left", *req.InstanceID, g.name, prevID)
				}
				// The instance is back: the new member takes over its
				// predecessor's assignment and epoch.
				m = g.replaceStaticConsumerLocked(prev, req.MemberID)
				dirty = true
			}
		}
		if m == nil {
			if prev, ok := cg.members[req.MemberID]; ok {
				if !sameInstance(prev.instanceID, req.InstanceID) {
					return kafkaErrorf(kerr.FencedInstanceID, "member %q of group %q has another instance ID", req.MemberID, g.name)
				}
				// A member joining again gives up what it owned.
				cg.release(prev, prev.assigned)
				cg.release(prev, prev.revoking)
				g.stopRevokeTimerLocked(prev)
				prev.assigned, prev.revoking = partitionSet{}, partitionSet{}
				prev.prevEpoch, prev.epoch, prev.state = prev.epoch, 0, metadata.MemberStable
				m = prev
				dirty = true
			}
		}
		if m == nil {
			if err := g.consumerRoomLocked(); err != nil {
				return err
			}
			m = &consumerMember{
				id:       req.MemberID,
				state:    metadata.MemberStable,
				assigned: partitionSet{},
				revoking: partitionSet{},
				target:   partitionSet{},
			}
			cg.members[m.id] = m
			if req.InstanceID != nil {
				m.instanceID = kmsg.StringPtr(*req.InstanceID)
				cg.static[*req.InstanceID] = m.id
			}
			created, dirty = true, true
		}
	} else {
		var ok bool
		m, ok = cg.members[req.MemberID]
		if !ok {
			return kafkaErrorf(kerr.UnknownMemberID, "member %q is not in group %q", req.MemberID, g.name)
		}
		if req.InstanceID != nil && !sameInstance(m.instanceID, req.InstanceID) {
			return kafkaErrorf(kerr.FencedInstanceID, "member %q of group %q has another instance ID", req.MemberID, g.name)
		}
		if req.MemberEpoch != m.epoch {
			owned := ownedPartitions(req)
			if req.MemberEpoch != m.prevEpoch || m.epoch == memberEpochStaticLeave || owned == nil || !owned.subsetOf(m.assigned) {
				return kafkaErrorf(kerr.FencedMemberEpoch, "member %q of group %q sent epoch %d; its epoch is %d", req.MemberID, g.name, req.MemberEpoch, m.epoch)
			}
		}
	}

	// The member's fields; null fields are unchanged.
	subscription := false
	if host := clientHost(rq.conn.remote); m.clientID != rq.clientID || m.clientHost != host {
		m.clientID, m.clientHost = rq.clientID, host
		dirty = true
	}
	if req.RackID != nil && (m.rackID == nil || *m.rackID != *req.RackID) {
		m.rackID = kmsg.StringPtr(*req.RackID)
		dirty = true
	}
	if req.RebalanceTimeoutMillis > 0 && millis(req.RebalanceTimeoutMillis) != m.rebalance {
		m.rebalance = millis(req.RebalanceTimeoutMillis)
		dirty = true
	}
	if req.SubscribedTopicNames != nil {
		names := slices.Clone(req.SubscribedTopicNames)
		slices.Sort(names)
		names = slices.Compact(names)
		if !slices.Equal(names, m.topics) {
			m.topics = names
			subscription = true
		}
	}
	if req.SubscribedTopicRegex != nil && *req.SubscribedTopicRegex != m.regex {
		m.regex, m.compiled = *req.SubscribedTopicRegex, nil
		if m.regex != "" {
			m.compiled, _ = compileSubscription(m.regex) // validated by the handler
		}
		subscription = true
	}
	if req.ServerAssignor != nil && *req.ServerAssignor != m.assignorName {
		m.assignorName = *req.ServerAssignor
		subscription = true
	}
	g.armConsumerSessionLocked(m)

	if created || subscription {
		// A new member or a changed subscription: a new epoch.
		g.bumpLocked()
		dirty = true
	} else if g.refreshTopicsLocked() {
		dirty = true
	}
	assignedBefore := maps.Clone(m.assigned)
	if g.reconcileLocked(m, ownedPartitions(req)) {
		dirty = true
	}
	if dirty || g.state != cg.stateName() || !g.persisted {
		if err := g.persistConsumerLocked(); err != nil {
			return err
		}
	}

	resp.MemberID = &m.id
	resp.MemberEpoch = m.epoch
	// As Kafka: the assignment goes to a joining member, to a full
	// request (a member recovering from an error), and when it changed.
	full := req.RebalanceTimeoutMillis > 0 && (req.SubscribedTopicNames != nil || req.SubscribedTopicRegex != nil) && req.Topics != nil
	if joining || full || !assignedBefore.equal(m.assigned) {
		resp.Assignment = heartbeatAssignment(m.assigned)
	}
	return nil
}

// replaceStaticConsumerLocked hands a static member's place to a new member ID.
func (g *group) replaceStaticConsumerLocked(prev *consumerMember, id string) *consumerMember {
	cg := g.consumer
	g.stopConsumerTimersLocked(prev)
	delete(cg.members, prev.id)
	m := &consumerMember{
		id: id, instanceID: prev.instanceID, rackID: prev.rackID, rebalance: prev.rebalance,
		topics: prev.topics, regex: prev.regex, compiled: prev.compiled, assignorName: prev.assignorName,
		epoch: prev.epoch, prevEpoch: prev.prevEpoch, state: prev.state,
		assigned: prev.assigned, revoking: prev.revoking, target: prev.target,
	}
	if m.epoch == memberEpochStaticLeave {
		m.epoch = prev.prevEpoch
	}
	cg.members[id] = m
	cg.static[*m.instanceID] = id
	for tp := range m.assigned {
		cg.owners[tp] = id
	}
	for tp := range m.revoking {
		cg.owners[tp] = id
	}
	if m.state == metadata.MemberUnrevokedPartitions {
		g.armRevokeTimerLocked(m)
	}
	return m
}

// consumerLeaveLocked serves a heartbeat with epoch -1 (leave) or -2
// (static leave: keep the assignment for the instance to come back to).
// Kafka wants the instance ID in a static leave; floe takes the member's
// own, since some clients (franz-go) leave without it. A member with no
// instance ID that leaves with -2 just leaves.
func (g *group) consumerLeaveLocked(req *kmsg.ConsumerGroupHeartbeatRequest, resp *kmsg.ConsumerGroupHeartbeatResponse) error {
	cg := g.consumer
	m, ok := cg.members[req.MemberID]
	if !ok {
		return kafkaErrorf(kerr.UnknownMemberID, "member %q is not in group %q", req.MemberID, g.name)
	}
	if req.InstanceID != nil && !sameInstance(m.instanceID, req.InstanceID) {
		return kafkaErrorf(kerr.FencedInstanceID, "member %q of group %q has another instance ID", req.MemberID, g.name)
	}
	resp.MemberID = &m.id
	resp.MemberEpoch = req.MemberEpoch
	if req.MemberEpoch == memberEpochStaticLeave && m.instanceID != nil {
		if m.epoch != memberEpochStaticLeave {
			m.prevEpoch, m.epoch = m.epoch, memberEpochStaticLeave
			g.stopRevokeTimerLocked(m)
		}
		return g.persistConsumerLocked()
	}
	g.gc.log.Debug("consumer group member left", "group", g.name, "member", m.id)
	g.removeConsumerMemberLocked(m)
	return g.persistAfterRemovalLocked()
}

func sameInstance(a, b *string) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return *a == *b
}

// ownedPartitions returns the partitions a heartbeat says its member owns,
// nil when it does not say.
func ownedPartitions(req *kmsg.ConsumerGroupHeartbeatRequest) partitionSet {
	if req.Topics == nil {
		return nil
	}
	return partitionSetOf(req.Topics, func(t kmsg.ConsumerGroupHeartbeatRequestTopic) uuid.UUID { return t.TopicID },
		func(t kmsg.ConsumerGroupHeartbeatRequestTopic) []int32 { return t.Partitions })
}

func heartbeatAssignment(s partitionSet) *kmsg.ConsumerGroupHeartbeatResponseAssignment {
	a := kmsg.NewConsumerGroupHeartbeatResponseAssignment()
	byTopic := s.assignment()
	for _, id := range slices.SortedFunc(maps.Keys(byTopic), func(a, b uuid.UUID) int { return slices.Compare(a[:], b[:]) }) {
		t := kmsg.NewConsumerGroupHeartbeatResponseAssignmentTopic()
		t.TopicID = id
		t.Partitions = byTopic[id]
		a.Topics = append(a.Topics, t)
	}
	if a.Topics == nil {
		a.Topics = []kmsg.ConsumerGroupHeartbeatResponseAssignmentTopic{}
	}
	return &a
}

// validateConsumerHeartbeat checks a ConsumerGroupHeartbeat as Kafka does
// before it reaches the group.
func validateConsumerHeartbeat(req *kmsg.ConsumerGroupHeartbeatRequest, assignors []string) error {
	invalid := func(format string, args ...any) error {
		return kafkaErrorf(kerr.InvalidRequest, format, args...)
	}
	switch {
	case req.Group == "":
		return invalid("the group ID is empty")
	case req.MemberID == "" && (req.Version >= 1 || req.MemberEpoch != memberEpochJoin):
		return invalid("the member ID is empty")
	case len(req.MemberID) > 1024:
		return invalid("the member ID is %d bytes long; the limit is 1024", len(req.MemberID))
	case req.InstanceID != nil && *req.InstanceID == "":
		return invalid("the instance ID is empty")
	case req.MemberEpoch < memberEpochStaticLeave:
		return invalid("member epoch %d is not valid", req.MemberEpoch)
	}
	if req.MemberEpoch == memberEpochJoin {
		switch {
		case req.RebalanceTimeoutMillis <= 0:
			return invalid("the rebalance timeout must be given when joining")
		case req.SubscribedTopicNames == nil && req.SubscribedTopicRegex == nil:
			return invalid("the subscribed topic names or regex must be given when joining")
		case len(req.Topics) > 0:
			return invalid("owned partitions must be empty when joining")
		}
	}
	if req.ServerAssignor != nil && !slices.Contains(assignors, *req.ServerAssignor) {
		return kafkaErrorf(kerr.UnsupportedAssignor, "server assignor %q is not one of %s", *req.ServerAssignor, strings.Join(assignors, ", "))
	}
	if req.SubscribedTopicRegex != nil && *req.SubscribedTopicRegex != "" {
		if _, err := compileSubscription(*req.SubscribedTopicRegex); err != nil {
			return kafkaErrorf(kerr.InvalidRegularExpression, "subscribed topic regex %q: %v", *req.SubscribedTopicRegex, err)
		}
	}
	return nil
}

// consumerSessionTimeout is how long m may go without a heartbeat.
func (g *group) consumerSessionTimeout(m *consumerMember) time.Duration {
	if m.classic != nil {
		return m.classic.session
	}
	return g.consumerTimeoutsLocked().session
}

// consumerRoomLocked refuses a new member when the group is full: it has
// group.consumer.max.size members, or its state in etcd (every member
// with its subscription and partitions) would outgrow what one etcd
// request may carry, half of --etcd-max-request-bytes
// (GROUP_MAX_SIZE_REACHED, as Kafka answers a full group). The size is
// estimated generously from what the JSON value holds.
func (g *group) consumerRoomLocked() error {
	cg := g.consumer
	if max := g.gc.cfg.ConsumerMaxSize; max > 0 && len(cg.members) >= max {
		return kafkaErrorf(kerr.GroupMaxSizeReached, "group %q has %d members, the most group.consumer.max.size allows", g.name, len(cg.members))
	}
	// Per member: the JSON keys and small fields; per partition: its
	// number and a comma; per topic in a partition list: the topic ID and
	// keys; per subscribed topic: its ID, name and count.
	const perMember, perPartition, perListedTopic, perTopic = 240, 7, 60, 100
	size := perMember + 1024 // the newcomer, with room for its IDs and subscription
	for _, m := range cg.members {
		size += perMember + len(m.id) + len(m.clientID) + len(m.clientHost) + len(m.regex) + len(m.assignorName)
		if m.instanceID != nil {
			size += len(*m.instanceID)
		}
		if m.rackID != nil {
			size += len(*m.rackID)
		}
		for _, t := range m.topics {
			size += len(t) + 3
		}
		for _, set := range []partitionSet{m.assigned, m.revoking, m.target} {
			topics := map[uuid.UUID]bool{}
			for tp := range set {
				topics[tp.topic] = true
			}
			size += perPartition*len(set) + perListedTopic*len(topics)
		}
		if m.classic != nil {
			for _, p := range m.classic.protocols {
				size += len(p.Name) + len(p.Metadata)*4/3 + 32
			}
		}
	}
	size += perTopic * len(cg.topics)
	if limit := g.gc.a.cfg.EtcdMaxRequestBytes / 2; size > limit {
		return kafkaErrorf(kerr.GroupMaxSizeReached, "group %q's state would take about %d bytes in etcd, more than the %d one value may hold; raise --etcd-max-request-bytes (and etcd's own limit) for larger groups", g.name, size, limit)
	}
	return nil
}
