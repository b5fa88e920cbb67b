package agent

// Consumer lag: how far each group's committed offsets are behind the
// high watermarks, and a status evaluated over a sliding window of
// commits as Burrow evaluates it.
//
// Every agent follows every group's committed offsets through one etcd
// watch (metadata.FollowOffsets) and keeps, per group and partition, the
// last LagWindow commits (10) with the lag each had when it was seen
// (the high watermark this agent knew then, minus the offset). A commit
// less than LagMinDistance (1s) after the previous one replaces it. So
// any agent answers for any group, the window survives a coordinator
// failover, and nothing is read from the object store. An agent that
// starts knows one commit per partition (the current one) and the window
// fills as commits arrive ("complete" says how full it is). Classic and
// consumer-protocol (KIP-848) groups are followed alike: windows,
// statuses and metrics read commits and watermarks only, never a group's
// type, state or members.
//
// Status of a partition, as Burrow's evaluator decides it, in its order
// (lag is the current lag: high watermark minus the last committed
// offset; Burrow's allowed-lag is 0):
//
//  1. OK if the current lag is 0.
//  2. STOP if the time since the last commit is longer than the window
//     spans (last commit minus first): the consumer stopped committing.
//     Not while the consumer was caught up recently: Burrow looks for a
//     high watermark at or below the last commit among its recent
//     samples of them (intervals × offset-refresh, 10 × 10s); floe
//     looks for a commit at that offset seen with lag 0 within as long.
//  3. REWIND if the committed offset went backwards within the window and
//     has not since come back to where it was.
//  4. OK if any commit in the window had lag 0.
//  5. STALL if every commit in the window is at the same offset.
//  6. WARN if the lag never decreased from one commit to the next.
//  7. OK otherwise.
//
// A partition with no commit in the window is OK. A group is ERR if any
// partition is STOP, STALL or REWIND, else WARN if any is WARN, else OK.
//
// Metrics. Every LagMetricsInterval (30s) each agent sets, for the groups
// it coordinates (so each series comes from one agent):
//
//	floe_group_lag{group,topic,partition}  lag of each committed partition
//	floe_group_total_lag{group}            sum over the group's partitions
//	floe_group_max_lag{group}              the largest (records-lag-max)
//	floe_group_status{group}               0 OK, 1 WARN, 2 ERR
//	floe_group_lag_partitions_omitted      partitions left out of floe_group_lag
//
// Series cost: one floe_group_lag series per committed partition of
// every group; past LagMetricsMaxPartitions (10000) per agent, groups (in
// name order) get only their per-group series. The metrics count
// committed partitions only; GET /v1/groups/{group} also counts
// partitions assigned to a member that have no commit yet.

import (
	"context"
	"maps"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/floe-io/floe/internal/lagapi"
	"github.com/floe-io/floe/metadata"
)

// Partition statuses, Burrow's names.
const (
	statusOK     = "OK"
	statusWarn   = "WARN"
	statusErr    = "ERR"
	statusStop   = "STOP"
	statusStall  = "STALL"
	statusRewind = "REWIND"
)

// commitWindow is one partition's recent commits, oldest first.
type commitWindow struct {
	latest  metadata.CommittedOffset
	samples []lagapi.Sample
}

type topicPartition struct {
	topic     string
	partition int32
}

// lagTracker keeps every group's commit windows.
type lagTracker struct {
	cfg   GroupConfig
	a     *Agent
	mu    sync.Mutex
	byGrp map[string]map[topicPartition]*commitWindow
}

// startLagTracker loads every committed offset and follows them.
func (a *Agent) startLagTracker() error {
	lt := &lagTracker{cfg: a.cfg.Groups, a: a, byGrp: map[string]map[topicPartition]*commitWindow{}}
	f, err := a.store.FollowOffsets(a.ctx, a.log, lt.apply)
	if err != nil {
		return err
	}
	a.lag = lt
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		f.Wait()
	}()
	return nil
}

// apply takes changes from the follower.
func (lt *lagTracker) apply(changes []metadata.OffsetChange, full bool) {
	lt.mu.Lock()
	defer lt.mu.Unlock()
	if full {
		old := lt.byGrp
		lt.byGrp = map[string]map[topicPartition]*commitWindow{}
		for _, ch := range changes {
			tp := topicPartition{ch.Offset.Topic, ch.Offset.Partition}
			if w := old[ch.Group][tp]; w != nil {
				lt.windowsLocked(ch.Group)[tp] = w
			}
			lt.addLocked(ch.Group, tp, ch.Offset)
		}
		return
	}
	for _, ch := range changes {
		tp := topicPartition{ch.Offset.Topic, ch.Offset.Partition}
		if ch.Deleted {
			if ws := lt.byGrp[ch.Group]; ws != nil {
				delete(ws, tp)
				if len(ws) == 0 {
					delete(lt.byGrp, ch.Group)
				}
			}
			continue
		}
		lt.addLocked(ch.Group, tp, ch.Offset)
	}
}

func (lt *lagTracker) windowsLocked(group string) map[topicPartition]*commitWindow {
	ws := lt.byGrp[group]
	if ws == nil {
		ws = map[topicPartition]*commitWindow{}
		lt.byGrp[group] = ws
	}
	return ws
}

// addLocked records a commit in its partition's window.
func (lt *lagTracker) addLocked(group string, tp topicPartition, o metadata.CommittedOffset) {
	ws := lt.windowsLocked(group)
	w := ws[tp]
	if w == nil {
		w = &commitWindow{}
		ws[tp] = w
	}
	if n := len(w.samples); n > 0 && w.samples[n-1].Offset == o.Offset && w.samples[n-1].Timestamp == o.Committed {
		w.latest = o
		return // the same commit seen again (a reload)
	}
	w.latest = o
	s := lagapi.Sample{Offset: o.Offset, Timestamp: o.Committed, Lag: -1}
	if end, ok := lt.a.endOffset(o); ok {
		s.Lag = max(0, end-o.Offset)
	}
	if n := len(w.samples); n > 0 && s.Timestamp-w.samples[n-1].Timestamp < lt.cfg.LagMinDistance.Milliseconds() {
		w.samples[n-1] = s
		return
	}
	w.samples = append(w.samples, s)
	if len(w.samples) > lt.cfg.LagWindow {
		w.samples = slices.Delete(w.samples, 0, len(w.samples)-lt.cfg.LagWindow)
	}
}

// groupWindows returns copies of a group's windows.
func (lt *lagTracker) groupWindows(group string) map[topicPartition]commitWindow {
	lt.mu.Lock()
	defer lt.mu.Unlock()
	out := make(map[topicPartition]commitWindow, len(lt.byGrp[group]))
	for tp, w := range lt.byGrp[group] {
		out[tp] = commitWindow{latest: w.latest, samples: slices.Clone(w.samples)}
	}
	return out
}

// groups returns the names of groups with committed offsets.
func (lt *lagTracker) groups() []string {
	lt.mu.Lock()
	defer lt.mu.Unlock()
	return slices.Sorted(maps.Keys(lt.byGrp))
}

// currentTopic returns the topic an offset was committed to if it still
// exists (the same incarnation).
func (a *Agent) currentTopic(o metadata.CommittedOffset) (metadata.Topic, bool) {
	t, ok := a.view.Topic(o.Topic)
	if !ok || o.TopicID != uuid.Nil && o.TopicID != t.ID || o.Partition < 0 || o.Partition >= t.Partitions {
		return metadata.Topic{}, false
	}
	return t, true
}

// endOffset is the high watermark of the partition o was committed to,
// as this agent knows it.
func (a *Agent) endOffset(o metadata.CommittedOffset) (int64, bool) {
	t, ok := a.currentTopic(o)
	if !ok {
		return 0, false
	}
	return a.watermarks(t, o.Partition).Next, true
}

// watermarks returns a partition's watermarks as this agent follows them,
// reading its shard from etcd the first time; zero if etcd cannot be
// read (lag reports are best effort).
func (a *Agent) watermarks(t metadata.Topic, p int32) metadata.Watermarks {
	ctx, cancel := context.WithTimeout(a.ctx, 5*time.Second)
	defer cancel()
	m, err := a.marks.Get(ctx, t, p)
	if err != nil {
		a.log.Debug("reading watermarks failed", "topic", t.Name, "partition", p, "err", err)
	}
	return m
}

// partitionStatus evaluates one partition as Burrow does (see the file
// comment). lag is the current lag.
func partitionStatus(samples []lagapi.Sample, lag int64, now time.Time) string {
	if len(samples) == 0 || lag <= 0 {
		return statusOK
	}
	last := samples[len(samples)-1]
	if now.UnixMilli()-last.Timestamp > last.Timestamp-samples[0].Timestamp && !recentlyCaughtUp(samples, now) {
		return statusStop
	}
	if i := rewindAt(samples); i > 0 && !rewindRecovered(samples, i) {
		return statusRewind
	}
	for _, s := range samples {
		if s.Lag == 0 {
			return statusOK
		}
	}
	stalled := true
	for i := 1; i < len(samples); i++ {
		if samples[i].Offset != samples[i-1].Offset {
			stalled = false
		}
	}
	if stalled {
		return statusStall
	}
	prev := int64(-1) // commits whose lag is unknown (-1) are skipped, as Burrow's nil lags
	for _, s := range samples {
		if s.Lag < 0 {
			continue
		}
		if prev >= 0 && s.Lag < prev {
			return statusOK
		}
		prev = s.Lag
	}
	return statusWarn
}

// caughtUpWithin is how far back a consumer caught up keeps a partition
// from STOP: Burrow's broker offset history, 10 intervals of its 10s
// offset refresh.
const caughtUpWithin = 100 * time.Second

// recentlyCaughtUp reports whether a commit at the last committed offset
// was seen with lag 0 within caughtUpWithin: the high watermark was then
// at the consumer's position, as Burrow finds in its recent samples of it.
func recentlyCaughtUp(samples []lagapi.Sample, now time.Time) bool {
	last := samples[len(samples)-1].Offset
	for _, s := range samples {
		if s.Offset == last && s.Lag == 0 && now.UnixMilli()-s.Timestamp <= caughtUpWithin.Milliseconds() {
			return true
		}
	}
	return false
}

// rewindAt is the index of the first commit below the one before it, or
// -1.
func rewindAt(samples []lagapi.Sample) int {
	for i := 1; i < len(samples); i++ {
		if samples[i].Offset < samples[i-1].Offset {
			return i
		}
	}
	return -1
}

// rewindRecovered reports whether, after the rewind at i, a commit came
// back to the offset committed before it.
func rewindRecovered(samples []lagapi.Sample, i int) bool {
	for _, s := range samples[i:] {
		if s.Offset >= samples[i-1].Offset {
			return true
		}
	}
	return false
}

// groupStatus folds partition statuses into the group's: ERR if any
// partition stopped, stalled or rewound, WARN if any warns, else OK.
func groupStatus(partitions []string) string {
	status := statusOK
	for _, s := range partitions {
		switch s {
		case statusStop, statusStall, statusRewind:
			return statusErr
		case statusWarn:
			status = statusWarn
		}
	}
	return status
}

func statusValue(s string) float64 {
	switch s {
	case statusWarn:
		return 1
	case statusErr:
		return 2
	}
	return 0
}

// lagMetrics are the floe_group_* gauges.
type lagMetrics struct {
	lag     *prometheus.GaugeVec
	total   *prometheus.GaugeVec
	maxLag  *prometheus.GaugeVec
	status  *prometheus.GaugeVec
	omitted prometheus.Gauge

	// Label sets set in the last update, to delete those that go away.
	partSeries  map[[3]string]bool
	groupSeries map[string]bool
}

func newLagMetrics(reg prometheus.Registerer) *lagMetrics {
	m := &lagMetrics{
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "floe", Subsystem: "group", Name: "lag",
			Help: "Records between a group's committed offset and the high watermark, per committed partition; set by the group's coordinator.",
		}, []string{"group", "topic", "partition"}),
		total: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "floe", Subsystem: "group", Name: "total_lag",
			Help: "Sum of a group's lag over its committed partitions.",
		}, []string{"group"}),
		maxLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "floe", Subsystem: "group", Name: "max_lag",
			Help: "Largest lag of any of a group's partitions (the server-side records-lag-max).",
		}, []string{"group"}),
		status: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "floe", Subsystem: "group", Name: "status",
			Help: "A group's lag status evaluated over its window of commits: 0 OK, 1 WARN, 2 ERR.",
		}, []string{"group"}),
		omitted: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "floe", Subsystem: "group", Name: "lag_partitions_omitted",
			Help: "Committed partitions left out of floe_group_lag on this agent because of --group-lag-metrics-max-partitions.",
		}),
		partSeries:  map[[3]string]bool{},
		groupSeries: map[string]bool{},
	}
	if reg != nil {
		reg.MustRegister(m.lag, m.total, m.maxLag, m.status, m.omitted)
	}
	return m
}

// updateLagMetrics sets the floe_group_* gauges for the groups this
// agent coordinates. It reads only memory: the tracker and the
// watermarks.
func (gc *groupCoordinator) updateLagMetrics() {
	a := gc.a
	m := gc.lagMetrics
	now := time.Now()
	parts := map[[3]string]bool{}
	groups := map[string]bool{}
	omitted := 0
	for _, name := range a.lag.groups() {
		if !gc.isCoordinator(name) {
			continue
		}
		ws := a.lag.groupWindows(name)
		tps := slices.SortedFunc(maps.Keys(ws), func(x, y topicPartition) int {
			if x.topic != y.topic {
				if x.topic < y.topic {
					return -1
				}
				return 1
			}
			return int(x.partition - y.partition)
		})
		var total, maxLag int64
		var statuses []string
		var lags []int64
		var kept []topicPartition
		for _, tp := range tps {
			w := ws[tp]
			end, ok := a.endOffset(w.latest)
			if !ok {
				continue
			}
			lag := max(0, end-w.latest.Offset)
			total += lag
			maxLag = max(maxLag, lag)
			statuses = append(statuses, partitionStatus(w.samples, lag, now))
			kept = append(kept, tp)
			lags = append(lags, lag)
		}
		if len(kept) == 0 {
			continue
		}
		if len(parts)+len(kept) > gc.cfg.LagMetricsMaxPartitions {
			omitted += len(kept)
		} else {
			for i, tp := range kept {
				key := [3]string{name, tp.topic, strconv.Itoa(int(tp.partition))}
				m.lag.WithLabelValues(key[:]...).Set(float64(lags[i]))
				parts[key] = true
			}
		}
		m.total.WithLabelValues(name).Set(float64(total))
		m.maxLag.WithLabelValues(name).Set(float64(maxLag))
		m.status.WithLabelValues(name).Set(statusValue(groupStatus(statuses)))
		groups[name] = true
	}
	for key := range m.partSeries {
		if !parts[key] {
			m.lag.DeleteLabelValues(key[:]...)
		}
	}
	for name := range m.groupSeries {
		if !groups[name] {
			m.total.DeleteLabelValues(name)
			m.maxLag.DeleteLabelValues(name)
			m.status.DeleteLabelValues(name)
		}
	}
	m.partSeries, m.groupSeries = parts, groups
	m.omitted.Set(float64(omitted))
}

// sortPartitions orders partition reports by topic and partition.
func sortPartitions(ps []lagapi.PartitionReport) {
	sort.Slice(ps, func(i, j int) bool {
		if ps[i].Topic != ps[j].Topic {
			return ps[i].Topic < ps[j].Topic
		}
		return ps[i].Partition < ps[j].Partition
	})
}
