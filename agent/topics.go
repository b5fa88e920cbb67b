package agent

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/floe-io/floe/metadata"
)

// lookupTopic finds a topic in the view, falling back to etcd when the
// view has not seen it yet (another agent may have just created it).
func (a *Agent) lookupTopic(ctx context.Context, name string) (metadata.Topic, error) {
	if t, ok := a.view.Topic(name); ok {
		return t, nil
	}
	return a.store.GetTopic(ctx, name)
}

// lookupTopicByID finds a topic by ID in the view, falling back to etcd
// when the view has not seen it yet. Topics are keyed by name, so the
// fallback lists them all: it runs at most once per idScanInterval for the
// whole agent (misses meanwhile use its result), so requests naming
// unknown IDs cannot make each one cost a scan of every topic.
func (a *Agent) lookupTopicByID(ctx context.Context, id uuid.UUID) (metadata.Topic, error) {
	if t, ok := a.view.TopicByID(id); ok {
		return t, nil
	}
	byID, err := a.idScan.topics(ctx, a.store)
	if err != nil {
		return metadata.Topic{}, err
	}
	if t, ok := byID[id]; ok {
		return t, nil
	}
	return metadata.Topic{}, fmt.Errorf("%w: no topic has ID %s", metadata.ErrUnknownTopic, id)
}

// idScanInterval is how often lookupTopicByID may list every topic.
const idScanInterval = time.Second

// topicScan is the latest listing of every topic by ID, for lookups the
// view cannot answer yet.
type topicScan struct {
	mu   sync.Mutex
	at   time.Time
	byID map[uuid.UUID]metadata.Topic
	// scans counts the listings made.
	scans prometheus.Counter
}

// topics returns the topics by ID as etcd has them: listed again when the
// last listing is older than idScanInterval, one caller at a time.
func (s *topicScan) topics(ctx context.Context, store *metadata.Store) (map[uuid.UUID]metadata.Topic, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byID != nil && time.Since(s.at) < idScanInterval {
		return s.byID, nil
	}
	topics, _, err := store.ListTopics(ctx)
	if err != nil {
		return nil, err
	}
	s.byID = make(map[uuid.UUID]metadata.Topic, len(topics))
	for _, t := range topics {
		s.byID[t.ID] = t
	}
	s.at = time.Now()
	if s.scans != nil {
		s.scans.Inc()
	}
	return s.byID, nil
}

// createTopic creates a topic and waits until this agent's view has it, so
// the topic is usable the moment the caller answers the client.
func (a *Agent) createTopic(ctx context.Context, spec metadata.TopicSpec) (metadata.Topic, error) {
	if err := a.checkTopicCollision(spec.Name); err != nil {
		return metadata.Topic{}, err
	}
	t, err := a.store.CreateTopic(ctx, spec)
	if err != nil {
		return metadata.Topic{}, err
	}
	if err := a.view.WaitTopicsRevision(ctx, t.ModRevision); err != nil {
		return metadata.Topic{}, fmt.Errorf("waiting for topic %s to be visible: %w", spec.Name, err)
	}
	a.log.Info("topic created", "topic", t.Name, "id", t.ID, "partitions", t.Partitions)
	return t, nil
}

// checkTopicCollision rejects a name that differs from an existing topic's
// only by '.' versus '_', as Kafka does, since metric names would clash.
func (a *Agent) checkTopicCollision(name string) error {
	norm := func(s string) string {
		b := []byte(s)
		for i, c := range b {
			if c == '.' {
				b[i] = '_'
			}
		}
		return string(b)
	}
	n := norm(name)
	for _, t := range a.view.Topics() {
		if t.Name != name && norm(t.Name) == n {
			return fmt.Errorf("%w: topic %q collides with existing topic %q ('.' and '_' are treated alike)", metadata.ErrInvalidTopic, name, t.Name)
		}
	}
	return nil
}

// autoCreateTopic creates a topic with the default settings if automatic
// creation is on. A concurrent creation by another client is not an
// error.
func (a *Agent) autoCreateTopic(ctx context.Context, name string) (metadata.Topic, error) {
	t, err := a.createTopic(ctx, metadata.TopicSpec{
		Name:              name,
		Partitions:        a.cfg.DefaultPartitions,
		ReplicationFactor: a.cfg.DefaultReplicationFactor,
	})
	if errors.Is(err, metadata.ErrTopicExists) {
		return a.store.GetTopic(ctx, name)
	}
	return t, err
}
