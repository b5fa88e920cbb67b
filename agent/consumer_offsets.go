package agent

// __consumer_offsets: every group's committed offsets and metadata as a
// Kafka topic, for tools that read it (Burrow, kafka-consumer-groups'
// older cousins, offset exporters).
//
// etcd stays the source of truth: OffsetCommit answers once its offsets
// are in etcd, and OffsetFetch reads etcd. The topic is a feed of that
// state, written by each group's coordinator through the agent's writer,
// after the etcd write and without waiting for the flush. It is a real
// topic: created by the first agent that starts (OffsetsTopicPartitions,
// 50 by default), listed in Metadata as internal, readable by any client,
// refused to producers (00_produce.go) and to DeleteTopics.
//
// Records are encoded exactly as Kafka encodes them (kmsg types):
//
//	offset commit    key   OffsetCommitKey v1: group, topic, partition
//	                 value OffsetCommitValue v3: offset, leader epoch,
//	                       metadata, commit timestamp
//	                 null value: the offset was deleted (OffsetDelete,
//	                       expiry, DeleteGroups)
//	group metadata   key   GroupMetadataKey v2: group
//	                 value GroupMetadataValue v1: protocol type,
//	                       generation, protocol, leader, members (ID,
//	                       client ID and host, timeouts, subscription,
//	                       assignment); v3 (adds the state timestamp and
//	                       group.instance.id) when a member is static
//	                 null value: the group was deleted
//
// Offset values are v3, what Kafka 2.1 and later write, with the leader
// epoch; group metadata is v1 unless static members need v3, because
// Burrow 1.2 decodes group metadata v0 and v1 only. Group metadata is
// written when a group becomes Stable (the leader's SyncGroup, with every
// assignment) or Empty, as Kafka writes it; groups that only commit
// offsets (no protocol type) get none. A group's records all go to
// partition abs(javaStringHashCode(group)) % partitions, Kafka's
// partitionFor, so tools that compute the partition agree.
//
// Bounded without compaction: the topic has cleanup.policy=delete and
// retention.ms = the larger of the offsets retention and twice the
// re-emit interval. Every coordinator writes its groups' latest metadata
// and committed offsets again when it loads a group (takeover, restart)
// and every OffsetsTopicReemitInterval (1h; checked at each offsets
// retention sweep), so every live group's latest state is always within
// the retention window.
//
// Loss. Records are gathered for OffsetsTopicLinger (1s) and appended to
// the writer; they are durable when that flush commits. An agent that
// dies before then loses them from the feed (never from etcd), and a
// feed that falls behind drops records beyond maxFeedPending (counted in
// floe_offsets_topic_records_total{outcome="dropped"}). The next commit,
// or the re-emission when another agent takes the group over, repairs
// the feed. Across a takeover a late flush of the old coordinator can
// land after the new one's re-emission; readers then see an older offset
// until the group's next commit.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"sync"
	"time"
	"unicode/utf16"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/agent/internal/logwrite"
	"github.com/floe-io/floe/metadata"
	"github.com/floe-io/floe/segments"
)

// offsetsTopicName is Kafka's name for the topic of committed offsets.
const offsetsTopicName = "__consumer_offsets"

// Record versions written to __consumer_offsets.
const (
	offsetKeyVersion          = 1 // OffsetCommitKey
	offsetValueVersion        = 3 // OffsetCommitValue
	groupKeyVersion           = 2 // GroupMetadataKey
	groupValueVersion         = 1 // GroupMetadataValue
	groupValueVersionInstance = 3 // GroupMetadataValue with static members
)

// maxFeedPending bounds the records waiting to be appended.
const maxFeedPending = 100_000

// javaStringHash is Java's String.hashCode: s[0]*31^(n-1) + ... + s[n-1]
// over UTF-16 code units, in 32-bit arithmetic. Bytes that are not UTF-8
// count as U+FFFD each.
func javaStringHash(s string) int32 {
	var h int32
	for _, u := range utf16.Encode([]rune(s)) {
		h = 31*h + int32(u)
	}
	return h
}

// offsetsPartition is Kafka's partitionFor(group): Utils.abs(hash) %
// partitions, where Utils.abs maps MinInt32 to 0.
func offsetsPartition(group string, partitions int32) int32 {
	h := javaStringHash(group)
	switch {
	case h == math.MinInt32:
		h = 0
	case h < 0:
		h = -h
	}
	return h % partitions
}

// offsetKey encodes the key of a committed offset's record.
func offsetKey(group, topic string, partition int32) []byte {
	k := kmsg.OffsetCommitKey{Version: offsetKeyVersion, Group: group, Topic: topic, Partition: partition}
	return k.AppendTo(nil)
}

// offsetValue encodes a committed offset's record value.
func offsetValue(o metadata.CommittedOffset) []byte {
	v := kmsg.NewOffsetCommitValue()
	v.Version = offsetValueVersion
	v.Offset = o.Offset
	v.LeaderEpoch = o.LeaderEpoch
	if o.Metadata != nil {
		v.Metadata = *o.Metadata
	}
	v.CommitTimestamp = o.Committed
	return v.AppendTo(nil)
}

// groupKey encodes the key of a group's metadata record.
func groupKey(group string) []byte {
	k := kmsg.GroupMetadataKey{Version: groupKeyVersion, Group: group}
	return k.AppendTo(nil)
}

// groupValue encodes a group's metadata record value.
func groupValue(st metadata.GroupState) []byte {
	v := kmsg.NewGroupMetadataValue()
	v.Version = groupValueVersion
	for _, m := range st.Members {
		if m.InstanceID != nil {
			v.Version = groupValueVersionInstance
		}
	}
	v.ProtocolType = st.ProtocolType
	v.Generation = st.Generation
	if st.Protocol != "" {
		v.Protocol = kmsg.StringPtr(st.Protocol)
	}
	if st.Leader != "" {
		v.Leader = kmsg.StringPtr(st.Leader)
	}
	v.CurrentStateTimestamp = st.StateSince
	for _, m := range st.Members {
		vm := kmsg.NewGroupMetadataValueMember()
		vm.MemberID = m.MemberID
		vm.InstanceID = m.InstanceID
		vm.ClientID = m.ClientID
		vm.ClientHost = m.ClientHost
		vm.RebalanceTimeoutMillis = m.RebalanceTimeoutMs
		vm.SessionTimeoutMillis = m.SessionTimeoutMs
		vm.Subscription = []byte{}
		for _, p := range m.Protocols {
			if p.Name == st.Protocol {
				vm.Subscription = p.Metadata
			}
		}
		vm.Assignment = m.Assignment
		if vm.Assignment == nil {
			vm.Assignment = []byte{}
		}
		v.Members = append(v.Members, vm)
	}
	return v.AppendTo(nil)
}

// feedRecord is one record on its way to __consumer_offsets.
type feedRecord struct {
	group      string
	key, value []byte // a nil value is a tombstone
	ts         int64  // Unix ms
}

// offsetsFeed gathers records for __consumer_offsets and appends them
// through the writer, one batch per partition per round, in the order
// they were emitted. Emitting never blocks: group coordinators call it
// with a group's mu held.
//
// Lock order: a group's mu, then feed.mu.
type offsetsFeed struct {
	a       *Agent
	log     *slog.Logger
	linger  time.Duration
	metrics *feedMetrics

	mu      sync.Mutex
	pending []feedRecord
	closed  bool

	wake chan struct{} // buffered; a record is pending
	stop chan struct{} // closed by close
	done chan struct{} // closed when run returns
}

type feedMetrics struct {
	records *prometheus.CounterVec
}

func newFeedMetrics(reg prometheus.Registerer) *feedMetrics {
	m := &feedMetrics{
		records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "floe", Subsystem: "offsets_topic", Name: "records_total",
			Help: "Records for __consumer_offsets by outcome: written (committed), failed (the flush failed), dropped (the feed was full or closed).",
		}, []string{"outcome"}),
	}
	for _, o := range []string{"written", "failed", "dropped"} {
		m.records.WithLabelValues(o)
	}
	if reg != nil {
		reg.MustRegister(m.records)
	}
	return m
}

// createOffsetsTopic creates __consumer_offsets unless it exists. Start
// calls it before loading the view, so the view loads it and no write
// lands between the view's load and its watches.
func (a *Agent) createOffsetsTopic(ctx context.Context) error {
	_, err := a.store.CreateTopic(ctx, a.offsetsTopicSpec())
	if err == nil {
		a.log.Info("topic created", "topic", offsetsTopicName, "partitions", a.cfg.Groups.OffsetsTopicPartitions)
	}
	if err == nil || errors.Is(err, metadata.ErrTopicExists) {
		return nil
	}
	return fmt.Errorf("creating %s: %w", offsetsTopicName, err)
}

// startOffsetsFeed starts the feed.
func (a *Agent) startOffsetsFeed() {
	f := &offsetsFeed{
		a:       a,
		log:     a.log.With("component", "offsets-topic"),
		linger:  a.cfg.Groups.OffsetsTopicLinger,
		metrics: newFeedMetrics(a.registry),
		wake:    make(chan struct{}, 1),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	a.feed = f
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		defer close(f.done)
		f.run()
	}()
}

func (a *Agent) offsetsTopicSpec() metadata.TopicSpec {
	g := a.cfg.Groups
	retention := max(g.OffsetsRetention, 2*g.OffsetsTopicReemitInterval)
	return metadata.TopicSpec{
		Name:              offsetsTopicName,
		Partitions:        g.OffsetsTopicPartitions,
		ReplicationFactor: a.cfg.DefaultReplicationFactor,
		Configs: map[string]string{
			"cleanup.policy": "delete",
			"retention.ms":   strconv.FormatInt(retention.Milliseconds(), 10),
		},
	}
}

// ensureOffsetsTopic returns __consumer_offsets, creating it again if it
// is gone.
func (a *Agent) ensureOffsetsTopic(ctx context.Context) (metadata.Topic, error) {
	if t, ok := a.view.Topic(offsetsTopicName); ok {
		return t, nil
	}
	t, err := a.createTopic(ctx, a.offsetsTopicSpec())
	if errors.Is(err, metadata.ErrTopicExists) {
		return a.store.GetTopic(ctx, offsetsTopicName)
	}
	return t, err
}

// close appends what is pending and stops the feed. Records emitted
// later are dropped.
func (f *offsetsFeed) close() {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return
	}
	f.closed = true
	f.mu.Unlock()
	close(f.stop)
	<-f.done
}

func (f *offsetsFeed) emit(recs ...feedRecord) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed || len(f.pending)+len(recs) > maxFeedPending {
		f.metrics.records.WithLabelValues("dropped").Add(float64(len(recs)))
		return
	}
	f.pending = append(f.pending, recs...)
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// offsets emits committed offsets of group.
func (f *offsetsFeed) offsets(group string, offsets []metadata.CommittedOffset) {
	if len(offsets) == 0 {
		return
	}
	now := time.Now().UnixMilli()
	recs := make([]feedRecord, len(offsets))
	for i, o := range offsets {
		recs[i] = feedRecord{group: group, key: offsetKey(group, o.Topic, o.Partition), value: offsetValue(o), ts: now}
	}
	f.emit(recs...)
}

// offsetsDeleted emits tombstones for deleted offsets of group.
func (f *offsetsFeed) offsetsDeleted(group string, parts []metadata.TopicPartition) {
	if len(parts) == 0 {
		return
	}
	now := time.Now().UnixMilli()
	recs := make([]feedRecord, len(parts))
	for i, p := range parts {
		recs[i] = feedRecord{group: group, key: offsetKey(group, p.Topic, p.Partition), ts: now}
	}
	f.emit(recs...)
}

// groupMetadata emits a group's metadata.
func (f *offsetsFeed) groupMetadata(st metadata.GroupState) {
	f.emit(feedRecord{group: st.Name, key: groupKey(st.Name), value: groupValue(st), ts: time.Now().UnixMilli()})
}

// groupDeleted emits tombstones for a deleted group's offsets and its
// metadata.
func (f *offsetsFeed) groupDeleted(group string, offsets []metadata.CommittedOffset) {
	parts := make([]metadata.TopicPartition, len(offsets))
	for i, o := range offsets {
		parts[i] = metadata.TopicPartition{Topic: o.Topic, Partition: o.Partition}
	}
	f.offsetsDeleted(group, parts)
	f.emit(feedRecord{group: group, key: groupKey(group), ts: time.Now().UnixMilli()})
}

func (f *offsetsFeed) run() {
	for {
		stopping := false
		select {
		case <-f.wake:
		case <-f.stop:
			stopping = true
		case <-f.a.ctx.Done():
			return
		}
		if !stopping && f.linger > 0 {
			t := time.NewTimer(f.linger)
			select {
			case <-t.C:
			case <-f.stop:
				stopping = true
			case <-f.a.ctx.Done():
				t.Stop()
				return
			}
			t.Stop()
		}
		f.mu.Lock()
		recs := f.pending
		f.pending = nil
		f.mu.Unlock()
		if len(recs) > 0 {
			f.write(recs)
		}
		if stopping {
			return
		}
	}
}

// write appends records, one batch per partition, and counts their
// outcome when their flush commits.
func (f *offsetsFeed) write(recs []feedRecord) {
	a := f.a
	t, err := a.ensureOffsetsTopic(a.ctx)
	if err != nil {
		f.log.Warn("__consumer_offsets is unavailable; dropping records", "records", len(recs), "err", err)
		f.metrics.records.WithLabelValues("dropped").Add(float64(len(recs)))
		return
	}
	byPart := map[int32][]feedRecord{}
	var order []int32
	for _, r := range recs {
		p := offsetsPartition(r.group, t.Partitions)
		if _, ok := byPart[p]; !ok {
			order = append(order, p)
		}
		byPart[p] = append(byPart[p], r)
	}
	type pending struct {
		res *logwrite.Result
		n   int
	}
	var results []pending
	for _, p := range order {
		prs := byPart[p]
		b, err := feedBatch(prs)
		if err == nil {
			var res *logwrite.Result
			res, err = a.writer.Append(a.ctx, t, p, []segments.Batch{b})
			if err == nil {
				results = append(results, pending{res, len(prs)})
				continue
			}
		}
		f.log.Warn("appending to __consumer_offsets failed", "partition", p, "records", len(prs), "err", err)
		f.metrics.records.WithLabelValues("failed").Add(float64(len(prs)))
	}
	if len(results) == 0 {
		return
	}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		for _, r := range results {
			select {
			case <-r.res.Done():
			case <-a.ctx.Done():
				return
			}
			outcome := "written"
			if r.res.Err != nil {
				outcome = "failed"
			}
			f.metrics.records.WithLabelValues(outcome).Add(float64(r.n))
		}
	}()
}

// feedBatch encodes records as one uncompressed RecordBatch v2 (the
// writer compresses it into the segment object).
func feedBatch(recs []feedRecord) (segments.Batch, error) {
	base, maxTS := recs[0].ts, recs[0].ts
	for _, r := range recs {
		base, maxTS = min(base, r.ts), max(maxTS, r.ts)
	}
	body := make([]byte, 0, 64*len(recs))
	for i, r := range recs {
		body = segments.AppendRecord(body, r.ts-base, int32(i), r.key, r.value)
	}
	raw := segments.AppendBatch(make([]byte, 0, segments.BatchHeaderSize+len(body)), segments.BatchHeader{
		BaseTimestamp: base, MaxTimestamp: maxTS,
		ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1,
		LastOffsetDelta: int32(len(recs) - 1), RecordCount: int32(len(recs)),
	}, body)
	return segments.ParseBatch(raw)
}

// Hooks for the group coordinator. Each is called with the group's mu
// held, after the etcd write it reports succeeded.

// feedMetadataLocked emits the group's metadata if Kafka would write it
// now: a group with a protocol type that is Stable or Empty.
//
// Consumer-protocol groups are not written: Kafka writes them as its
// consumer group record types, which floe does not emit yet.
func (g *group) feedMetadataLocked() {
	if g.consumer != nil || g.protocolType == "" || g.state != metadata.GroupStable && g.state != metadata.GroupEmpty {
		return
	}
	g.gc.a.feed.groupMetadata(g.snapshotLocked())
}

// reemitLocked writes the group's latest metadata and committed offsets
// to __consumer_offsets again.
func (g *group) reemitLocked(ctx context.Context) {
	offsets, _, err := g.gc.a.store.FetchOffsets(ctx, g.name)
	if err != nil {
		g.gc.log.Warn("reading offsets to write them to __consumer_offsets again failed", "group", g.name, "err", err)
		return
	}
	g.feedMetadataLocked()
	g.gc.a.feed.offsets(g.name, offsets)
	g.reemitted = time.Now()
}

// reemitIfDueLocked re-emits when the re-emit interval has passed.
func (g *group) reemitIfDueLocked(ctx context.Context) {
	if !g.gone && g.persisted && time.Since(g.reemitted) >= g.gc.cfg.OffsetsTopicReemitInterval {
		g.reemitLocked(ctx)
	}
}
