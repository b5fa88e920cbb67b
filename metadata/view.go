package metadata

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/google/uuid"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// View is an agent's in-memory copy of the cluster's topics and live
// agents, kept fresh by etcd watches. Reads never touch etcd.
//
// A View may lag etcd by the watch delay. Callers that just wrote a topic
// and must see it call WaitTopicsRevision with the write's revision;
// callers that miss a topic another agent may have just created fall back
// to Store.GetTopic.
type View struct {
	store *Store
	log   *slog.Logger

	mu        sync.RWMutex
	topics    map[string]Topic
	byID      map[uuid.UUID]Topic
	agents    map[int32]AgentInfo
	acls      map[string]ACL
	aclList   []ACL // acls as a slice, rebuilt on change
	topicsRev int64
	agentsRev int64
	aclsRev   int64
	changed   chan struct{} // closed and replaced on every change

	wg sync.WaitGroup
}

// StartView loads topics and agents and keeps them fresh until ctx is
// done. It returns once the first load has completed.
func (s *Store) StartView(ctx context.Context, log *slog.Logger) (*View, error) {
	v := &View{
		store:   s,
		log:     log,
		topics:  map[string]Topic{},
		byID:    map[uuid.UUID]Topic{},
		agents:  map[int32]AgentInfo{},
		acls:    map[string]ACL{},
		changed: make(chan struct{}),
	}
	topicsRev, err := v.loadTopics(ctx)
	if err != nil {
		return nil, err
	}
	agentsRev, err := v.loadAgents(ctx)
	if err != nil {
		return nil, err
	}
	aclsRev, err := v.loadACLs(ctx)
	if err != nil {
		return nil, err
	}
	v.wg.Add(3)
	go func() {
		defer v.wg.Done()
		v.watch(ctx, s.key("acls/"), aclsRev, v.loadACLs, v.applyACL)
	}()
	go func() {
		defer v.wg.Done()
		v.watch(ctx, s.key(prefixTopics), topicsRev, v.loadTopics, v.applyTopic)
	}()
	go func() {
		defer v.wg.Done()
		v.watch(ctx, s.key(prefixAgents), agentsRev, v.loadAgents, v.applyAgent)
	}()
	return v, nil
}

// Wait blocks until the view's watches have stopped (after ctx is done).
func (v *View) Wait() { v.wg.Wait() }

// watch follows prefix from rev+1, reloading it with load when the watch
// breaks.
func (v *View) watch(ctx context.Context, prefix string, rev int64, load func(context.Context) (int64, error), apply func(*clientv3.Event)) {
	v.store.follow(ctx, v.log, "metadata", prefix, rev, func(events []*clientv3.Event, seen int64) {
		v.mu.Lock()
		defer v.mu.Unlock()
		for _, ev := range events {
			apply(ev)
		}
		v.setRevLocked(prefix, seen)
		v.notifyLocked()
	}, load)
}

func (v *View) setRevLocked(prefix string, rev int64) {
	switch prefix {
	case v.store.key(prefixTopics):
		v.topicsRev = max(v.topicsRev, rev)
	case v.store.key(prefixAgents):
		v.agentsRev = max(v.agentsRev, rev)
	default:
		v.aclsRev = max(v.aclsRev, rev)
		v.aclList = slices.Collect(maps.Values(v.acls))
	}
}

func (v *View) loadACLs(ctx context.Context) (int64, error) {
	prefix := v.store.key("acls/")
	resp, err := v.store.cli.Get(ctx, prefix, clientv3.WithPrefix())
	if err != nil {
		return 0, fmt.Errorf("listing ACLs: %w", err)
	}
	acls := make(map[string]ACL, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		var a ACL
		if err := decode(string(kv.Key), kv.Value, &a); err != nil {
			v.log.Error("ignoring undecodable ACL", "err", err)
			continue
		}
		acls[string(kv.Key)] = a
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.acls = acls
	v.aclList = slices.Collect(maps.Values(acls))
	v.aclsRev = max(v.aclsRev, resp.Header.Revision)
	v.notifyLocked()
	return resp.Header.Revision, nil
}

func (v *View) applyACL(ev *clientv3.Event) {
	key := string(ev.Kv.Key)
	if ev.Type == mvccpb.DELETE {
		delete(v.acls, key)
		return
	}
	var a ACL
	if err := decode(key, ev.Kv.Value, &a); err != nil {
		v.log.Error("ignoring undecodable ACL", "err", err)
		return
	}
	v.acls[key] = a
}

// ACLs returns every ACL binding as last seen. The slice is shared: do
// not modify it.
func (v *View) ACLs() []ACL {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.aclList
}

// WaitACLsRevision blocks until the view has applied every ACL change up
// to rev.
func (v *View) WaitACLsRevision(ctx context.Context, rev int64) error {
	return v.waitRev(ctx, func() bool { return v.aclsRev >= rev })
}

func (v *View) notifyLocked() {
	close(v.changed)
	v.changed = make(chan struct{})
}

func (v *View) loadTopics(ctx context.Context) (int64, error) {
	topics, rev, err := v.store.ListTopics(ctx)
	if err != nil {
		return 0, err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.topics = make(map[string]Topic, len(topics))
	v.byID = make(map[uuid.UUID]Topic, len(topics))
	for _, t := range topics {
		v.topics[t.Name] = t
		v.byID[t.ID] = t
	}
	v.topicsRev = max(v.topicsRev, rev)
	v.notifyLocked()
	return rev, nil
}

func (v *View) applyTopic(ev *clientv3.Event) {
	key := string(ev.Kv.Key)
	name := strings.TrimPrefix(key, v.store.key(prefixTopics))
	if old, ok := v.topics[name]; ok {
		delete(v.byID, old.ID)
		delete(v.topics, name)
	}
	if ev.Type == mvccpb.DELETE {
		return
	}
	t, err := decodeTopic(key, name, ev.Kv.Value, ev.Kv.CreateRevision, ev.Kv.ModRevision)
	if err != nil {
		v.log.Error("ignoring undecodable topic", "err", err)
		return
	}
	v.topics[name] = t
	v.byID[t.ID] = t
}

func (v *View) loadAgents(ctx context.Context) (int64, error) {
	agents, rev, err := v.store.listAgents(ctx, v.badAgent)
	if err != nil {
		return 0, err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.agents = agents
	v.agentsRev = max(v.agentsRev, rev)
	v.notifyLocked()
	return rev, nil
}

func (v *View) badAgent(err error) { v.log.Error("ignoring agent registration", "err", err) }

func (v *View) applyAgent(ev *clientv3.Event) {
	id, ok := parseNodeID(strings.TrimPrefix(string(ev.Kv.Key), v.store.key(prefixAgents)))
	if !ok {
		return
	}
	if ev.Type == mvccpb.DELETE {
		delete(v.agents, id)
		return
	}
	if a, err := v.store.decodeAgent(ev.Kv); err == nil {
		v.agents[id] = a
	} else {
		v.badAgent(err)
	}
}

// Topic returns the named topic as last seen.
func (v *View) Topic(name string) (Topic, bool) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	t, ok := v.topics[name]
	return t, ok
}

// TopicByID returns the topic with that ID as last seen.
func (v *View) TopicByID(id uuid.UUID) (Topic, bool) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	t, ok := v.byID[id]
	return t, ok
}

// Topics returns every topic, sorted by name.
func (v *View) Topics() []Topic {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return slices.SortedFunc(maps.Values(v.topics), func(a, b Topic) int { return cmp.Compare(a.Name, b.Name) })
}

// Agents returns the live agents, sorted by node ID.
func (v *View) Agents() []AgentInfo {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return slices.SortedFunc(maps.Values(v.agents), func(a, b AgentInfo) int { return cmp.Compare(a.NodeID, b.NodeID) })
}

// Agent returns the live agent with that node ID.
func (v *View) Agent(id int32) (AgentInfo, bool) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	a, ok := v.agents[id]
	return a, ok
}

// Changed returns a channel closed at the next change to topics or agents.
func (v *View) Changed() <-chan struct{} {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.changed
}

// WaitTopicsRevision blocks until the view has applied every topic change
// up to rev, so a caller sees its own write.
func (v *View) WaitTopicsRevision(ctx context.Context, rev int64) error {
	return v.waitRev(ctx, func() bool { return v.topicsRev >= rev })
}

// WaitAgentsRevision blocks until the view has applied every agent change
// up to rev.
func (v *View) WaitAgentsRevision(ctx context.Context, rev int64) error {
	return v.waitRev(ctx, func() bool { return v.agentsRev >= rev })
}

func (v *View) waitRev(ctx context.Context, done func() bool) error {
	for {
		v.mu.RLock()
		ok, ch := done(), v.changed
		v.mu.RUnlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
