package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/floe-io/floe/segments"
)

// runner is one run: its configuration, what it drives, and the report
// it fills in phase by phase.
type runner struct {
	cfg   Config
	cl    Cluster
	obs   Observer
	scr   *scraper
	work  *workload
	admin *kgo.Client
	id    string
	rep   *Report
	mem   *memSampler
	flush time.Duration // the agents' current flush interval
	// pt is the partition count being measured; points are those done.
	pt     *SweepPoint
	points []*SweepPoint
}

// Options are how the bench reaches what it measures, beyond the
// Cluster.
type Options struct {
	// MetricsHeader is sent with every scrape (a bearer token).
	MetricsHeader http.Header
}

// Run runs every phase against the cluster and returns the report. obs
// may be nil.
func Run(ctx context.Context, cfg Config, cl Cluster, obs Observer, opts Options) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if obs == nil {
		obs = nopObserver{}
	}
	var idb [4]byte
	rand.Read(idb[:])
	r := &runner{
		cfg:   cfg,
		cl:    cl,
		obs:   obs,
		scr:   &scraper{client: &http.Client{Timeout: 90 * time.Second}, header: opts.MetricsHeader},
		id:    hex.EncodeToString(idb[:]),
		flush: cfg.Agent.FlushInterval,
	}
	r.rep = &Report{
		Started:    time.Now().UTC(),
		Cluster:    cl.Describe(),
		CPUs:       runtime.NumCPU(),
		Workload:   workloadOf(cfg),
		Agent:      cfg.Agent,
		MetricsSrc: map[string]string{},
	}
	admin, err := kgo.NewClient(r.clientOpts("admin")...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	r.admin = admin
	defer func() { r.admin.Close() }() // restart replaces it
	pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	err = admin.Ping(pctx)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("cannot reach %s: %w", strings.Join(cl.Brokers(), ","), err)
	}
	r.work = newWorkload(cfg)
	r.settingsFromMetrics(ctx)
	if n := len(cl.MetricsURLs()); n > 1 {
		r.rep.Agents = n
	}
	var zones []Zone
	if z, ok := cl.(Zoned); ok {
		zones = z.Zones()
	}
	if len(zones) >= 2 {
		if cfg.KeySpace < minKeysPerPartition*int(cfg.ZonePartitions) {
			return nil, fmt.Errorf("key space %d: the zone phase writes %d partitions and needs at least %d keys (%d per partition)", cfg.KeySpace, cfg.ZonePartitions, minKeysPerPartition*int(cfg.ZonePartitions), minKeysPerPartition)
		}
		r.work.makeKeys(cfg.KeySpace)
	}

	r.mem = &memSampler{r: r}
	r.mem.start(ctx)
	defer r.mem.stop()

	var topics []string
	defer func() {
		r.cleanup(context.WithoutCancel(ctx), topics)
	}()

	type step struct {
		name string
		fn   func(context.Context) error
	}
	steps := []step{{"limits", r.runLimits}}
	if cfg.Sweep() {
		r.rep.Sweep = &Sweep{Partitions: cfg.Partitions, Keys: cfg.Keys, KeySpace: cfg.KeySpace}
	}
	// Each partition count: produce, read cold and warm; the first also
	// fans out; in a sweep each ends with a compaction pass.
	for i, n := range cfg.Partitions {
		pt := &SweepPoint{Partitions: n, topic: r.mainTopic()}
		if i > 0 {
			pt.topic = r.sweepTopic(n)
		}
		at := r.atCount(n)
		steps = append(steps,
			step{"produce" + at, func(ctx context.Context) error {
				r.pt = pt
				topics = append(topics, pt.topic)
				r.mem.resetWindow()
				return r.runProduce(ctx)
			}},
			step{"cold read" + at, r.runCold},
			step{"warm read" + at, r.runWarm},
			step{"agent memory" + at, r.countMemory})
		if i == 0 {
			steps = append(steps, step{"group fan-out", r.runFanOut})
		}
		if cfg.Sweep() {
			steps = append(steps, step{"compaction" + at, r.runCompaction})
		}
		steps = append(steps, step{"partition count" + at, r.endCount})
	}
	if len(zones) >= 2 {
		steps = append(steps, step{"zones", func(ctx context.Context) error {
			topics = append(topics, r.zoneTopic())
			return r.runZones(ctx, zones)
		}})
	}
	steps = append(steps, step{"latency", func(ctx context.Context) error {
		for _, f := range r.cfg.FlushIntervals {
			topics = append(topics, r.latencyTopic(f))
		}
		return r.runLatency(ctx)
	}})
	for i, f := range cfg.Fleet {
		steps = append(steps, step{"fleet " + f.String(), func(ctx context.Context) error {
			topics = append(topics, r.fleetTopic(i, f))
			return r.runFleet(ctx, i, f)
		}})
	}
	start := time.Now()
	for _, s := range steps {
		if err := s.fn(ctx); err != nil {
			return nil, fmt.Errorf("%s: %w", s.name, err)
		}
	}
	r.rep.Seconds = time.Since(start).Seconds()
	r.mem.stop()
	r.rep.Memory = r.mem.result(r.cfg.Agent)
	r.rep.evaluate()
	return r.rep, nil
}

// restart restarts the agents (Cluster.Restart) and gives the run a new
// admin client: restarted agents may take each other's node IDs, so the
// old client's broker IDs and pooled connections lead to the stopped
// agents or the wrong ones, and its next request can fail with EOF
// rather than being retried.
func (r *runner) restart(ctx context.Context, flush time.Duration) error {
	if err := r.cl.Restart(ctx, flush); err != nil {
		return err
	}
	admin, err := kgo.NewClient(r.clientOpts("admin")...)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	r.admin.Close()
	r.admin = admin
	return nil
}

// settingsFromMetrics takes the buffer and cache sizes from the agents'
// metrics when they export them (the report's memory bounds and the warm
// read's window then follow the real settings).
func (r *runner) settingsFromMetrics(ctx context.Context) {
	m := r.scrape(ctx)
	if m == nil {
		return
	}
	n := float64(len(r.cl.MetricsURLs()))
	if m.Has("floe_produce_buffer_limit_bytes") {
		r.cfg.Agent.MaxBufferBytes = int64(m.Sum("floe_produce_buffer_limit_bytes") / n)
	}
	if m.Has("floe_fetch_cache_limit_bytes") {
		r.cfg.Agent.CacheBytes = int64(m.Sum("floe_fetch_cache_limit_bytes") / n)
	}
	r.rep.Agent = r.cfg.Agent
}

func (r *runner) clientOpts(name string) []kgo.Opt {
	return append([]kgo.Opt{
		kgo.SeedBrokers(r.cl.Brokers()...),
		kgo.ClientID(zoneClientID(name, "")),
	}, r.cl.ClientOpts()...)
}

func (r *runner) mainTopic() string { return fmt.Sprintf("%s-%s", r.cfg.Topic, r.id) }

// sweepTopic is the topic of a sweep's partition count after the first.
func (r *runner) sweepTopic(partitions int32) string {
	return fmt.Sprintf("%s-%s-p%d", r.cfg.Topic, r.id, partitions)
}

func (r *runner) fleetTopic(i int, f FleetSize) string {
	return fmt.Sprintf("%s-%s-fleet%d-%s", r.cfg.Topic, r.id, i+1, f)
}

// atCount names a partition count in phase names, in a sweep only (a
// single count's phases keep their plain names).
func (r *runner) atCount(partitions int32) string {
	if !r.cfg.Sweep() {
		return ""
	}
	return fmt.Sprintf(" at %d partitions", partitions)
}

// profileName names the profiles of a phase of the current partition
// count: the first count's phases by the phase alone.
func (r *runner) profileName(phase string) string {
	if r.pt == nil || r.pt.Partitions == r.cfg.Partitions[0] {
		return phase
	}
	return fmt.Sprintf("%s-p%d", phase, r.pt.Partitions)
}

func (r *runner) latencyTopic(f time.Duration) string {
	return fmt.Sprintf("%s-%s-latency-%s", r.cfg.Topic, r.id, f)
}

func (r *runner) note(format string, args ...any) {
	r.rep.Notes = append(r.rep.Notes, fmt.Sprintf(format, args...))
}

// noteOnce adds a note unless the report has it already.
func (r *runner) noteOnce(format string, args ...any) {
	n := fmt.Sprintf(format, args...)
	if !slices.Contains(r.rep.Notes, n) {
		r.rep.Notes = append(r.rep.Notes, n)
	}
}

// scrape reads the agents' metrics; nil when there are none to read.
func (r *runner) scrape(ctx context.Context) Metrics {
	r.scr.urls = r.cl.MetricsURLs()
	if len(r.scr.urls) == 0 {
		return nil
	}
	m, err := r.scr.scrape(ctx)
	if err != nil {
		r.note("metrics: %v", err)
		return nil
	}
	return m
}

func (r *runner) createTopic(ctx context.Context, name string, partitions int32) error {
	adm := kadm.NewClient(r.admin)
	resp, err := adm.CreateTopic(ctx, partitions, -1, nil, name)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		return fmt.Errorf("creating topic %s: %w", name, err)
	}
	// Wait until every partition has a leader, so the first produce does
	// not measure metadata propagation.
	deadline := time.Now().Add(30 * time.Second)
	for {
		md, err := adm.Metadata(ctx, name)
		if err == nil {
			if t, ok := md.Topics[name]; ok && t.Err == nil && len(t.Partitions) == int(partitions) {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("topic %s has no leaders after 30s", name)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// runLimits measures the raw object store and etcd, and the machine's
// page faults.
func (r *runner) runLimits(ctx context.Context) error {
	lim := &r.rep.Limits
	switch pf, ok, err := measurePageFaults(); {
	case err != nil:
		return err
	case !ok:
		lim.Missing = append(lim.Missing, "page faults: the bench cannot map memory of its own on this platform")
	default:
		lim.PageFault = pf
	}
	seg := r.cfg.Agent.SegmentTargetBytes
	conc := r.cfg.LimitConcurrency
	d := r.cfg.LimitDuration
	if b := r.cl.Bucket(); b == nil {
		lim.Missing = append(lim.Missing, "raw PUT and GET: the bench does not know the bucket (pass --bucket)")
	} else {
		prefix := "floe-bench/" + r.id + "/"
		defer func() {
			if err := segments.DeletePrefix(context.WithoutCancel(ctx), b, prefix); err != nil {
				r.note("removing the raw PUT objects under %s: %v", prefix, err)
			}
		}()
		p, end := r.phase("limit: raw PUT", "bytes", 0, d)
		cpu := r.cpuNow()
		put, keys, err := measurePuts(ctx, b, prefix, seg, conc, d, p)
		end()
		if err != nil {
			return err
		}
		put.CPU = r.cpuSince(cpu)
		lim.Put = put
		p, end = r.phase("limit: raw GET", "bytes", 0, d)
		cpu = r.cpuNow()
		get, err := measureGets(ctx, b, keys, seg, conc, d, p)
		end()
		if err != nil {
			return err
		}
		get.CPU = r.cpuSince(cpu)
		lim.Get = get
	}
	if cli := r.cl.Etcd(); cli == nil {
		lim.Missing = append(lim.Missing, "etcd transaction: the bench does not know etcd (pass --etcd-endpoints)")
	} else {
		prefix := "/floe-bench/" + r.id + "/"
		defer func() {
			if _, err := cli.Delete(context.WithoutCancel(ctx), prefix, clientv3.WithPrefix()); err != nil {
				r.note("removing etcd keys under %s: %v", prefix, err)
			}
		}()
		parts := min(int(r.cfg.Partitions[0]), 63) // as a commit splits at etcd's default 128 ops
		p, end := r.phase("limit: etcd txn", "txns", 0, d)
		cpu := r.cpuNow()
		e, err := measureEtcd(ctx, cli, prefix, parts, d, p)
		end()
		if err != nil {
			return err
		}
		e.CPU = r.cpuSince(cpu)
		lim.Etcd = e
	}
	return nil
}

// runProduce is the throughput phase of the current partition count.
func (r *runner) runProduce(ctx context.Context) error {
	topic := r.pt.topic
	if err := r.createTopic(ctx, topic, r.pt.Partitions); err != nil {
		return err
	}
	before := r.scrape(ctx)
	p, end := r.phase("produce"+r.atCount(r.pt.Partitions), "bytes", r.cfg.Bytes, r.cfg.Duration)
	stopProfile := r.profile(ctx, r.profileName("produce"))
	cpu := r.cpuNow()
	st, elapsed, err := r.produceMax(ctx, topic, p)
	cpuUsed, faults := r.usageSince(cpu)
	r.heapProfile(ctx, r.profileName("produce"))
	stopProfile()
	end()
	if err != nil {
		return err
	}
	after := r.scrape(ctx)
	res := &ProduceResult{
		Records:    st.records.Load(),
		Bytes:      st.bytes.Load(),
		Seconds:    elapsed.Seconds(),
		Latency:    st.latency.Summary(),
		Errors:     st.errors.Load(),
		FirstError: st.firstError(),
		CPU:        cpuUsed,
		Faults:     faults,
	}
	if res.Records == 0 {
		return fmt.Errorf("no record was acknowledged (first error: %s)", res.FirstError)
	}
	res.RecordsPerS = float64(res.Records) / elapsed.Seconds()
	res.MiBps = mibps(res.Bytes, elapsed)
	if before != nil && after != nil {
		res.Store = r.storeDelta(before, after)
		// One commit per flush, split into transactions by etcd's op
		// limit: count transactions where the agent reports them.
		commits := "floe_produce_commit_duration_seconds"
		if after.Has("floe_etcd_commit_txn_duration_seconds_count") {
			commits = "floe_etcd_commit_txn_duration_seconds"
		}
		r.rep.MetricsSrc["etcd_commits"] = commits
		res.Commits = after.Sum(commits+"_count") - before.Sum(commits+"_count")
		if res.Commits > 0 {
			res.CommitMeanMs = 1000 * (after.Sum(commits+"_sum") - before.Sum(commits+"_sum")) / res.Commits
		}
		res.CommitsPerS = res.Commits / elapsed.Seconds()
		res.Backpressure = after.Sum("floe_produce_backpressure_waits_total") - before.Sum("floe_produce_backpressure_waits_total")
		if res.Bytes > 0 {
			res.PutsPerGiB = res.Store.Puts / (float64(res.Bytes) / (1 << 30))
		}
		// A flush is committed once, in as many transactions as
		// etcd's op limit needs.
		r.pt.Flushes = after.Sum("floe_produce_commit_duration_seconds_count") - before.Sum("floe_produce_commit_duration_seconds_count")
		if after.Has("floe_etcd_commit_txn_duration_seconds_count") && r.pt.Flushes > 0 {
			r.pt.TxnsPerFlush = res.Commits / r.pt.Flushes
		}
	}
	r.pt.Produce = res
	return nil
}

// runCold reads everything produced once, with one group, from agents
// that never served it: the agent's writes do not fill its fetch cache,
// and nothing has read the topic yet.
//
// In a sweep the agents are restarted first when the bench owns them, so
// no count reads what an earlier one left in their memory.
func (r *runner) runCold(ctx context.Context) error {
	at := r.atCount(r.pt.Partitions)
	if r.cfg.Sweep() {
		r.obs.Logf("restarting the agents before the cold read%s", at)
		if err := r.restart(ctx, 0); errors.Is(err, ErrNoRestart) {
			r.noteOnce("cold reads: the agents could not be restarted before each partition count's cold read")
		} else if err != nil {
			return fmt.Errorf("restarting agents: %w", err)
		}
	}
	res, err := r.readPhase(ctx, "cold read"+at, []string{r.groupName("cold")}, nil, 1)
	if err != nil {
		return err
	}
	r.pt.Cold = res
	return nil
}

// runWarm reads a window at the tail of the topic from the agents'
// caches: as many record bytes as half the cache's share for decoded
// batches (docs/design.md: at least three quarters of --cache-bytes),
// first once untimed, then timed. Decoded batches take more room than
// their records (1.4 times at 4096 partitions, where a batch holds a
// record or two), and a window that fills the share is partly read from
// the bucket again on every pass: each miss reads a chunk whose other
// missing extents push out those the pass reads next. The untimed pass
// puts the whole window in the cache: the cold read's consumers finish
// their partitions at different times, so what it leaves cached is the
// data each read last, not the topic's tail.
func (r *runner) runWarm(ctx context.Context) error {
	if r.cfg.Agent.CacheBytes <= 0 {
		r.note("warm read skipped: the agents have no fetch cache")
		return nil
	}
	start, end, err := r.endOffsets(ctx, r.pt.topic)
	if err != nil {
		return err
	}
	total := r.pt.Produce.Bytes
	window := min(total, r.cfg.Agent.CacheBytes*3/8)
	from := map[int32]int64{}
	for p, e := range end {
		n := e - start[p]
		from[p] = e - int64(math.Ceil(float64(n)*float64(window)/float64(total)))
		from[p] = max(from[p], start[p])
	}
	// A window that is read in a fraction of a second measures mostly
	// the group's start: one group reads it several times over, up to
	// 1 GiB, each consumer seeking back to the window's start as it
	// reaches a partition's end, so the reading is timed once from its
	// first records to its last.
	passes := int(min(max((1<<30+window-1)/max(window, 1), 1), 16))
	if _, err := r.readPhase(ctx, "cache fill"+r.atCount(r.pt.Partitions), []string{r.groupName("warm-0")}, from, 1); err != nil {
		return err
	}
	res, err := r.readPhase(ctx, "warm read"+r.atCount(r.pt.Partitions), []string{r.groupName("warm-1")}, from, passes)
	if err != nil {
		return err
	}
	res.WindowBytes = window
	res.Passes = passes
	r.pt.Warm = res
	return nil
}

// groupName names a read phase's group, by partition count in a sweep
// after the first.
func (r *runner) groupName(phase string) string {
	if r.pt.Partitions == r.cfg.Partitions[0] {
		return phase
	}
	return fmt.Sprintf("p%d-%s", r.pt.Partitions, phase)
}

// runFanOut reads everything with several groups at once, from agents
// restarted with empty caches when the bench owns them.
func (r *runner) runFanOut(ctx context.Context) error {
	cold := true
	r.obs.Logf("restarting the agents so the groups read from the object store")
	if err := r.restart(ctx, 0); errors.Is(err, ErrNoRestart) {
		cold = false
		r.note("group fan-out: the agents could not be restarted; their caches may hold part of the data (see the hit ratio)")
	} else if err != nil {
		return fmt.Errorf("restarting agents: %w", err)
	}
	names := make([]string, r.cfg.Groups)
	for i := range names {
		names[i] = fmt.Sprintf("fanout-%d", i+1)
	}
	res, err := r.readPhase(ctx, fmt.Sprintf("%d groups", r.cfg.Groups), names, nil, 1)
	if err != nil {
		return err
	}
	res.Restarted = cold
	r.rep.FanOut = res
	r.heapProfile(ctx, "fan-out")
	return nil
}

// readPhase reads the main topic with the named groups at once, from
// from (nil: the start) to the end, laps times over (from from, which
// must then be set), and measures it.
func (r *runner) readPhase(ctx context.Context, name string, groups []string, from map[int32]int64, laps int) (*ConsumeResult, error) {
	topic := r.pt.topic
	start, end, err := r.endOffsets(ctx, topic)
	if err != nil {
		return nil, err
	}
	commit := from != nil
	if from == nil {
		from = start
	}
	var want int64
	for p, e := range end {
		want += e - from[p]
	}
	var reads []*groupRead
	for _, g := range groups {
		gr := newGroupRead(fmt.Sprintf("floe-bench-%s-%s", r.id, g), topic)
		gr.laps = max(laps, 1)
		gr.setEnd(from, end)
		if commit {
			if err := r.commitStart(ctx, gr.group, topic, from); err != nil {
				return nil, err
			}
		}
		reads = append(reads, gr)
	}
	approx := int64(float64(want) * float64(r.cfg.RecordSize+recordKeyBytes(r.cfg)) * float64(len(groups)*max(laps, 1)))
	before := r.scrape(ctx)
	p, endPhase := r.phase(name, "bytes", approx, 0)
	stopProfile := r.profile(ctx, r.profileName(strings.ReplaceAll(strings.TrimSuffix(name, r.atCount(r.pt.Partitions)), " ", "-")))
	// CPU is counted from the first assignment: joining the group is idle
	// time.
	cpuc := make(chan *cpuSnap, 1)
	go func() {
		for ctx.Err() == nil {
			for _, g := range reads {
				if g.assigned.Load() != 0 {
					cpuc <- r.cpuNow()
					return
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
		cpuc <- nil
	}()
	err = r.readGroups(ctx, reads, kgo.NewOffset().AtStart(), p)
	var cpuUsed, faults map[string]float64
	if snap := <-cpuc; snap != nil {
		cpuUsed, faults = r.usageSince(snap)
	}
	stopProfile()
	endPhase()
	if err != nil {
		return nil, err
	}
	after := r.scrape(ctx)
	res := &ConsumeResult{Groups: len(groups), Consumers: r.cfg.Consumers, CPU: cpuUsed, Faults: faults}
	for _, g := range reads {
		res.Records += g.records.Load()
	}
	var elapsed time.Duration
	res.Bytes, elapsed = readSpan(reads)
	res.Seconds = elapsed.Seconds()
	res.MiBps = mibps(res.Bytes, elapsed)
	if before != nil && after != nil {
		res.Store = r.storeDelta(before, after)
		res.CacheHits = after.Sum("floe_fetch_cache_hits_total") - before.Sum("floe_fetch_cache_hits_total")
		res.CacheMisses = after.Sum("floe_fetch_cache_misses_total") - before.Sum("floe_fetch_cache_misses_total")
		res.Coalesced = after.Sum("floe_fetch_cache_coalesced_total") - before.Sum("floe_fetch_cache_coalesced_total")
		res.Prefetched = after.Sum("floe_fetch_prefetches_total") - before.Sum("floe_fetch_prefetches_total")
		res.PrefetchWasted = after.Sum("floe_fetch_prefetches_wasted_total") - before.Sum("floe_fetch_prefetches_wasted_total")
		if n := res.CacheHits + res.CacheMisses + res.Coalesced; n > 0 {
			res.HitRatio = (res.CacheHits + res.Coalesced) / n
		}
		if res.Bytes > 0 {
			res.GetsPerGiB = res.Store.Gets / (float64(res.Bytes) / (1 << 30))
		}
	}
	return res, nil
}

func recordKeyBytes(c Config) int {
	if c.Keys == "none" {
		return 0
	}
	return len("key-00000000")
}

// runLatency produces at a fixed rate, below saturation, with one group
// tailing the topic, once per flush interval.
func (r *runner) runLatency(ctx context.Context) error {
	if r.cfg.LatencyDuration == 0 {
		return nil
	}
	rate := r.cfg.LatencyRate
	if rate <= 0 {
		rate = int(min(max(r.rep.Produce.RecordsPerS/20, 100), 20000))
	}
	for _, f := range r.cfg.FlushIntervals {
		if f != r.flush {
			r.obs.Logf("restarting the agents with a %s flush interval", f)
			if err := r.restart(ctx, f); errors.Is(err, ErrNoRestart) {
				r.note("latency at a %s flush interval skipped: the agents could not be restarted with it", f)
				continue
			} else if err != nil {
				return fmt.Errorf("restarting agents: %w", err)
			}
			r.flush = f
		}
		res, err := r.latencyOnce(ctx, r.latencyTopic(f), rate)
		if err != nil {
			return fmt.Errorf("at a %s flush: %w", f, err)
		}
		res.FlushInterval = f.String()
		res.FlushMs = ms(f)
		r.rep.Latency = append(r.rep.Latency, res)
	}
	return nil
}

func (r *runner) latencyOnce(ctx context.Context, topic string, rate int) (*LatencyResult, error) {
	if err := r.createTopic(ctx, topic, r.cfg.Partitions[0]); err != nil {
		return nil, err
	}
	var e2e Histogram
	g := newGroupRead(fmt.Sprintf("floe-bench-%s-tail-%s", r.id, topic[strings.LastIndexByte(topic, '-')+1:]), topic)
	g.onRecord = func(rec *kgo.Record, now time.Time) {
		if t, ok := sentAt(rec.Value); ok {
			e2e.Record(now.Sub(t))
		}
	}
	gctx, cancel := context.WithCancel(ctx)
	defer cancel()
	readErr := make(chan error, 1)
	go func() { readErr <- r.readGroups(gctx, []*groupRead{g}, kgo.NewOffset().AtStart(), nil) }()
	// The topic is new and empty, so the group loses nothing by joining
	// first; producing starts once it fetches.
	wait := time.Now().Add(60 * time.Second)
	for g.assigned.Load() == 0 {
		select {
		case err := <-readErr:
			return nil, fmt.Errorf("tailing group: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(wait) {
			return nil, errors.New("the tailing group got no partitions within 60s")
		}
	}
	time.Sleep(time.Second)
	p, end := r.phase(fmt.Sprintf("latency (%s)", r.flush), "records", int64(float64(rate)*r.cfg.LatencyDuration.Seconds()), r.cfg.LatencyDuration)
	cpu := r.cpuNow()
	st, err := r.producePaced(ctx, topic, rate, r.cfg.LatencyDuration, p)
	cpuUsed := r.cpuSince(cpu)
	end()
	if err != nil {
		return nil, err
	}
	_, hw, err := r.endOffsets(ctx, topic)
	if err != nil {
		return nil, err
	}
	g.setEnd(nil, hw)
	if err := <-readErr; err != nil {
		return nil, fmt.Errorf("tailing group: %w", err)
	}
	return &LatencyResult{
		RatePerS: rate, Records: st.records.Load(), Errors: st.errors.Load(), FirstError: st.firstError(),
		Produce: st.latency.Summary(), EndToEnd: e2e.Summary(), CPU: cpuUsed,
	}, nil
}

// storeDelta is the object-store requests between two scrapes: from
// floe_objstore_* when the agent has them, else from the agent's flush
// and fetch-cache counters.
func (r *runner) storeDelta(before, after Metrics) StoreRequests {
	d := func(name string, match ...string) float64 {
		return after.Sum(name, match...) - before.Sum(name, match...)
	}
	var s StoreRequests
	if after.Has("floe_objstore_requests_total") {
		s.Source = "floe_objstore_requests_total"
		s.Puts = d("floe_objstore_requests_total", "operation", "put")
		s.Gets = d("floe_objstore_requests_total", "operation", "get")
		s.PutBytes = d("floe_objstore_bytes_total", "operation", "put")
		s.GetBytes = d("floe_objstore_bytes_total", "operation", "get")
	} else {
		s.Source = "floe_produce_segment_bytes, floe_fetch_cache_misses_total"
		s.Puts = d("floe_produce_segment_bytes_count") + d("floe_produce_put_errors_total")
		s.PutBytes = d("floe_produce_segment_bytes_sum")
		s.Gets = d("floe_fetch_cache_misses_total")
		s.GetBytes = d("floe_fetch_get_bytes_total")
	}
	if n := d("floe_produce_put_duration_seconds_count"); n > 0 {
		s.PutMeanMs = 1000 * d("floe_produce_put_duration_seconds_sum") / n
	}
	if n := d("floe_fetch_get_duration_seconds_count"); n > 0 {
		s.GetMeanMs = 1000 * d("floe_fetch_get_duration_seconds_sum") / n
	}
	r.rep.MetricsSrc["store_requests"] = s.Source
	return s
}

// profile takes CPU profiles of every agent through /debug/pprof, in
// slices of profileSlice, into the profile directory, until the returned
// function is called (which waits for the slice being taken). `go tool
// pprof` merges the slices when given them all.
func (r *runner) profile(ctx context.Context, name string) func() {
	if r.cfg.ProfileDir == "" {
		return func() {}
	}
	// The bench's own CPU profile too: the clients' share of the work.
	var self *os.File
	if err := os.MkdirAll(r.cfg.ProfileDir, 0o755); err == nil {
		if f, err := os.Create(filepath.Join(r.cfg.ProfileDir, name+"-bench.pprof")); err == nil {
			if pprof.StartCPUProfile(f) == nil {
				self = f
			} else {
				f.Close()
			}
		}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i, u := range r.cl.MetricsURLs() {
		base := strings.TrimSuffix(u, "/metrics")
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 1; ; n++ {
				path := filepath.Join(r.cfg.ProfileDir, fmt.Sprintf("%s-agent%d-%02d.pprof", name, i, n))
				url := fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", base, int(profileSlice.Seconds()))
				if err := r.fetchTo(ctx, url, path); err != nil {
					r.obs.Logf("profile %s: %v", path, err)
					return
				}
				select {
				case <-stop:
					return
				default:
				}
			}
		}()
	}
	return func() {
		close(stop)
		wg.Wait()
		if self != nil {
			pprof.StopCPUProfile()
			self.Close()
		}
	}
}

// profileSlice is how long one CPU profile of a phase runs.
const profileSlice = 2 * time.Second

// heapProfile saves every agent's heap profile.
func (r *runner) heapProfile(ctx context.Context, name string) {
	if r.cfg.ProfileDir == "" {
		return
	}
	for i, u := range r.cl.MetricsURLs() {
		r.agentHeapProfile(ctx, i, u, name)
	}
}

// agentHeapProfile saves the heap profile of agent i (metrics at u).
func (r *runner) agentHeapProfile(ctx context.Context, i int, u, name string) {
	path := filepath.Join(r.cfg.ProfileDir, fmt.Sprintf("%s-agent%d.heap.pprof", name, i))
	if err := r.fetchTo(ctx, strings.TrimSuffix(u, "/metrics")+"/debug/pprof/heap", path); err != nil {
		r.obs.Logf("heap profile %s: %v", path, err)
	}
}

func (r *runner) fetchTo(ctx context.Context, url, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	for k, v := range r.scr.header {
		req.Header[k] = v
	}
	resp, err := r.scr.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s (is the agent running with --pprof?)", url, resp.Status)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// cleanup deletes the run's topics unless asked to keep them.
func (r *runner) cleanup(ctx context.Context, topics []string) {
	if r.cfg.Keep || len(topics) == 0 || r.admin == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := kadm.NewClient(r.admin).DeleteTopics(ctx, topics...); err != nil {
		r.note("deleting the bench's topics: %v", err)
	}
}
