package agent

// The group coordinator: which agent coordinates a consumer group, how it
// takes and gives up ownership, and the background work it does for the
// groups it owns.
//
// Placement. The coordinator of a group is metadata.Leader of the live
// agents for metadata.GroupKey(group); FindCoordinator names it, and any
// other agent answers group requests with NOT_COORDINATOR.
//
// Ownership. Placement is computed from each agent's view, which may lag,
// so it alone cannot stop two agents from coordinating one group. Before
// serving a group, its coordinator claims it in etcd (metadata.ClaimGroup)
// with a key bound to the agent's registration lease, and every write
// compares that claim in the same transaction. When the coordinator dies
// its lease lapses, and the claim and the agent's registration vanish in
// the same etcd revision, so the agent that placement picks next can claim
// the group as soon as it sees the old one gone. While another agent still
// holds the claim, requests get COORDINATOR_LOAD_IN_PROGRESS and clients
// retry. When placement moves a group away from a live agent (another
// agent joined), that agent drops the group from memory and deletes its
// claim, answering parked requests with NOT_COORDINATOR.
//
// Loading. A claimed group is loaded from its persisted state
// (generation, protocol, leader, members with their subscriptions and
// assignments), and every member gets a fresh session timeout, so members
// that keep heartbeating carry on without a rebalance.
//
// Offsets are read straight from etcd (OffsetFetch needs no claim) and
// written through the claim.
//
// Concurrency. Each group has a mutex held across its etcd writes, so a
// group's transitions are persisted in the order they happen. Lock order:
// a group's mu, then the coordinator's mu. Timers run their callbacks
// through afterFunc, which refuses to start them once the coordinator is
// shutting down and lets shutdown wait for running ones.

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/floe-io/floe/metadata"
)

type groupCoordinator struct {
	a       *Agent
	cfg     GroupConfig
	log     *slog.Logger
	metrics *groupMetrics

	lagMetrics *lagMetrics // touched only by the run loop

	ctx    context.Context // cancelled at shutdown
	cancel context.CancelFunc

	// beforeRelease, when set (tests only), runs just before a moved
	// group's claim is released.
	beforeRelease atomic.Pointer[func(metadata.GroupClaim)]

	mu     sync.Mutex
	groups map[string]*group // loaded (or loading) groups
	closed bool
	wg     sync.WaitGroup // the run loop, timer callbacks, background releases
}

// startGroups starts the group coordinator. It needs the agent's
// registration.
func (a *Agent) startGroups() {
	gc := &groupCoordinator{
		a:       a,
		cfg:     a.cfg.Groups,
		log:     a.log.With("component", "groups"),
		metrics: newGroupMetrics(a.registry),
		groups:  map[string]*group{},

		lagMetrics: newLagMetrics(a.registry),
	}
	gc.ctx, gc.cancel = context.WithCancel(a.ctx)
	a.groups = gc
	gc.wg.Add(1)
	go func() {
		defer gc.wg.Done()
		gc.run()
	}()
}

// stopGroups answers every parked group request with NOT_COORDINATOR,
// stops the coordinator's timers and background work, and waits for them.
// Group requests arriving later are answered NOT_COORDINATOR. Claims are
// left to vanish with the agent's lease.
func (a *Agent) stopGroups() {
	if a.groups != nil {
		a.groups.shutdown()
	}
}

func (gc *groupCoordinator) shutdown() {
	gc.mu.Lock()
	gc.closed = true
	groups := slices.Collect(maps.Values(gc.groups))
	gc.mu.Unlock()
	gc.cancel()
	for _, g := range groups {
		g.mu.Lock()
		g.dropLocked("the agent is shutting down")
		g.mu.Unlock()
	}
	gc.wg.Wait()
}

// enter registers one unit of background work, or reports false once the
// coordinator is shutting down.
func (gc *groupCoordinator) enter() bool {
	gc.mu.Lock()
	defer gc.mu.Unlock()
	if gc.closed {
		return false
	}
	gc.wg.Add(1)
	return true
}

// afterFunc runs fn after d unless the coordinator has shut down by then.
func (gc *groupCoordinator) afterFunc(d time.Duration, fn func()) *time.Timer {
	return time.AfterFunc(d, func() {
		if !gc.enter() {
			return
		}
		defer gc.wg.Done()
		fn()
	})
}

// goBackground runs fn on a goroutine the coordinator owns.
func (gc *groupCoordinator) goBackground(fn func()) {
	if !gc.enter() {
		return
	}
	go func() {
		defer gc.wg.Done()
		fn()
	}()
}

// etcdCtx bounds one etcd operation done on behalf of a group.
func (gc *groupCoordinator) etcdCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(gc.ctx, max(gc.a.cfg.LeaseTTL, 5*time.Second))
}

func (gc *groupCoordinator) registration() *metadata.Registration {
	gc.a.regMu.Lock()
	defer gc.a.regMu.Unlock()
	return gc.a.reg
}

// coordinatorOf returns the agent that coordinates group by placement.
func (gc *groupCoordinator) coordinatorOf(group string) metadata.AgentInfo {
	leader, _ := metadata.Leader(gc.a.liveAgents(), metadata.GroupKey(group))
	return leader
}

func (gc *groupCoordinator) isCoordinator(group string) bool {
	return gc.coordinatorOf(group).NodeID == gc.a.NodeID()
}

// checkCoordinator returns NOT_COORDINATOR unless this agent coordinates
// group, and INVALID_GROUP_ID for names that cannot be stored.
func (gc *groupCoordinator) checkCoordinator(group string) error {
	if err := metadata.ValidateGroupName(group); err != nil {
		return kafkaErrorf(kerr.InvalidGroupID, "%s", err)
	}
	if c := gc.coordinatorOf(group); c.NodeID != gc.a.NodeID() {
		return kafkaErrorf(kerr.NotCoordinator, "node %d does not coordinate group %q; node %d does", gc.a.NodeID(), group, c.NodeID)
	}
	return nil
}

// acquire returns the named group, claimed and loaded, with its mu held.
// The caller unlocks it.
func (gc *groupCoordinator) acquire(ctx context.Context, name string) (*group, error) {
	for range 3 {
		if err := gc.checkCoordinator(name); err != nil {
			return nil, err
		}
		reg := gc.registration()
		gc.mu.Lock()
		if gc.closed {
			gc.mu.Unlock()
			return nil, kafkaErrorf(kerr.NotCoordinator, "node %d is shutting down", gc.a.NodeID())
		}
		g, ok := gc.groups[name]
		if !ok {
			g = newGroup(gc, name)
			// Nobody else has g yet, so this never blocks; it makes
			// others wait for the load below.
			g.mu.Lock()
			gc.groups[name] = g
			gc.mu.Unlock()
			if err := g.loadLocked(ctx, reg); err != nil {
				g.dropLocked("loading failed")
				g.mu.Unlock()
				return nil, err
			}
			return g, nil
		}
		gc.mu.Unlock()
		g.mu.Lock()
		if !g.gone && g.claim.Lease != reg.Lease() {
			// Claimed under a lease this agent no longer holds: the
			// claim vanished with it.
			g.dropLocked("the agent's lease changed")
		}
		if g.gone {
			g.mu.Unlock()
			continue
		}
		return g, nil
	}
	return nil, kafkaErrorf(kerr.CoordinatorLoadInProgress, "group %q is being loaded; retry", name)
}

// loaded returns the group if this agent has it in memory.
func (gc *groupCoordinator) loaded(name string) *group {
	gc.mu.Lock()
	defer gc.mu.Unlock()
	return gc.groups[name]
}

func (gc *groupCoordinator) forget(g *group) {
	gc.mu.Lock()
	defer gc.mu.Unlock()
	if gc.groups[g.name] == g {
		delete(gc.groups, g.name)
	}
}

// run releases groups whose placement moved away, drops everything when
// the agent's lease is lost, sweeps expired offsets, and updates the lag
// metrics of the groups this agent coordinates.
func (gc *groupCoordinator) run() {
	ticker := time.NewTicker(gc.cfg.OffsetsRetentionCheckInterval)
	defer ticker.Stop()
	lagTicker := time.NewTicker(gc.cfg.LagMetricsInterval)
	defer lagTicker.Stop()
	var handled *metadata.Registration
	for {
		changed := gc.a.view.Changed()
		reg := gc.registration()
		var lost <-chan struct{}
		if reg != handled {
			lost = reg.Done()
		}
		gc.releaseMoved()
		select {
		case <-gc.ctx.Done():
			return
		case <-changed:
		case <-lost:
			handled = reg
			gc.dropAll("the agent's lease was lost")
		case <-ticker.C:
			gc.sweep()
		case <-lagTicker.C:
			gc.updateLagMetrics()
		}
	}
}

func (gc *groupCoordinator) snapshot() []*group {
	gc.mu.Lock()
	defer gc.mu.Unlock()
	return slices.Collect(maps.Values(gc.groups))
}

func (gc *groupCoordinator) dropAll(reason string) {
	for _, g := range gc.snapshot() {
		g.mu.Lock()
		g.dropLocked(reason)
		g.mu.Unlock()
	}
}

// releaseMoved gives up groups that placement now puts on another agent.
// Each claim is released before its group is dropped, under the group's
// lock: a request for the group meanwhile (placement may move back) waits,
// finds the group gone and claims afresh, instead of adopting the claim
// being released and then losing it.
func (gc *groupCoordinator) releaseMoved() {
	for _, g := range gc.snapshot() {
		if gc.isCoordinator(g.name) {
			continue
		}
		g.mu.Lock()
		if !g.gone {
			if hook := gc.beforeRelease.Load(); hook != nil {
				(*hook)(g.claim)
			}
			gc.release(g.claim)
			g.dropLocked("coordination moved to another agent")
		}
		g.mu.Unlock()
	}
}

func (gc *groupCoordinator) release(c metadata.GroupClaim) {
	ctx, cancel := gc.etcdCtx()
	defer cancel()
	if err := gc.a.store.ReleaseGroup(ctx, c); err != nil && gc.ctx.Err() == nil {
		gc.log.Warn("releasing group failed; it is released when the agent's lease lapses", "group", c.Group, "err", err)
	}
}

// sweep expires committed offsets and forgets idle groups, for every group
// this agent coordinates.
func (gc *groupCoordinator) sweep() {
	ctx, cancel := gc.etcdCtx()
	names, err := gc.a.store.ListGroupNames(ctx)
	cancel()
	if err != nil {
		gc.log.Warn("listing groups for offset expiry failed", "err", err)
		return
	}
	for _, g := range gc.snapshot() {
		names = append(names, g.name)
	}
	slices.Sort(names)
	for _, name := range slices.Compact(names) {
		if gc.ctx.Err() != nil {
			return
		}
		if !gc.isCoordinator(name) {
			continue
		}
		ctx, cancel := gc.etcdCtx()
		g, err := gc.acquire(ctx, name)
		if err != nil {
			cancel()
			if !errors.Is(err, kerr.CoordinatorLoadInProgress) && !errors.Is(err, kerr.NotCoordinator) {
				gc.log.Warn("loading group for offset expiry failed", "group", name, "err", err)
			}
			continue
		}
		g.expireLocked(ctx, time.Now())
		g.reemitIfDueLocked(ctx)
		g.mu.Unlock()
		cancel()
	}
}

// expireLocked removes committed offsets past retention, as Kafka does
// (KIP-211): all offsets of an empty group once retention has passed since
// the later of the commit and the group becoming empty; offsets of topics
// no member subscribes to in a consumer group once retention has passed
// since the commit. Offsets of deleted topics are removed at once. A group
// left empty with no offsets is deleted.
func (g *group) expireLocked(ctx context.Context, now time.Time) {
	gc := g.gc
	if g.gone {
		return
	}
	offsets, bad, err := gc.a.store.FetchOffsets(ctx, g.name)
	if err != nil {
		gc.log.Warn("reading offsets for expiry failed", "group", g.name, "err", err)
		return
	}
	for _, e := range bad {
		gc.log.Error("ignoring undecodable committed offset", "group", g.name, "err", e)
	}
	retention := gc.cfg.OffsetsRetention.Milliseconds()
	subscribed := g.subscribedTopicsLocked()
	var expired []metadata.CommittedOffset
	topicIDs := map[string]uuid.UUID{} // uuid.Nil: the topic is gone
	for _, o := range offsets {
		id, ok := topicIDs[o.Topic]
		if !ok {
			t, err := gc.a.lookupTopic(ctx, o.Topic)
			switch {
			case err == nil:
				id = t.ID
			case isUnknownTopic(err):
			default:
				gc.log.Warn("looking up topic for offset expiry failed", "topic", o.Topic, "err", err)
				return
			}
			topicIDs[o.Topic] = id
		}
		if id == uuid.Nil || o.TopicID != uuid.Nil && o.TopicID != id {
			expired = append(expired, o)
			continue
		}
		base := o.Committed
		switch {
		case g.state == metadata.GroupEmpty:
			if g.protocolType != "" {
				base = max(base, g.stateSince.UnixMilli())
			}
		case g.protocolType == consumerProtocolType && subscribed != nil && !subscribed[o.Topic]:
		default:
			continue
		}
		if base+retention <= now.UnixMilli() {
			expired = append(expired, o)
		}
	}
	if len(expired) > 0 {
		// Each only if unchanged: a transaction may commit an offset of
		// the group meanwhile, without its claim.
		if err := gc.a.store.ExpireOffsets(ctx, g.claim, expired, gc.a.cfg.EtcdMaxTxnOps); err != nil {
			g.failLocked(err)
			return
		}
		parts := make([]metadata.TopicPartition, len(expired))
		for i, o := range expired {
			parts[i] = metadata.TopicPartition{Topic: o.Topic, Partition: o.Partition}
		}
		gc.log.Info("expired committed offsets", "group", g.name, "partitions", len(expired))
		gc.a.feed.offsetsDeleted(g.name, parts)
	}
	if g.state != metadata.GroupEmpty || len(g.pending) > 0 || len(offsets) > len(expired) {
		return
	}
	if g.persisted {
		if err := gc.a.store.DeleteGroup(ctx, g.claim); err != nil {
			g.failLocked(err)
			return
		}
		gc.log.Info("deleted empty group with no offsets left", "group", g.name)
		gc.a.feed.groupDeleted(g.name, nil)
		g.persisted = false
		g.dropLocked("the group was deleted")
		return
	}
	g.releaseIfIdleLocked()
}

// releaseIfIdleLocked forgets a group that exists only in memory and has
// nobody in it (it was loaded for a request about a group that does not
// exist), and releases its claim. The claim is released before the group
// leaves the coordinator's map, so a request for it waiting meanwhile
// claims afresh instead of adopting the claim being released.
func (g *group) releaseIfIdleLocked() {
	if g.gone || g.persisted || g.memberCountLocked() > 0 || len(g.pending) > 0 {
		return
	}
	g.gc.release(g.claim)
	g.dropLocked("the group does not exist")
}

// unlockReleasingIdle releases the group if it is idle, then unlocks it.
// Handlers defer it after acquire, so asking about a group that does not
// exist leaves no claim behind.
func (g *group) unlockReleasingIdle() {
	g.releaseIfIdleLocked()
	g.mu.Unlock()
}
