package compactor

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/floe-io/floe/internal/node"
	"github.com/floe-io/floe/metadata"
	"github.com/floe-io/floe/segments"
)

// Deps are the components the compactor runs on (shared with the other roles).
type Deps = node.Deps

// Compactor enforces retention, merges small objects and collects
// unreferenced ones while it holds the cluster's compactor election.
type Compactor struct {
	cfg     Config
	store   *metadata.Store
	bucket  segments.Bucket
	log     *slog.Logger
	metrics *metrics

	leading atomic.Bool

	// latePast remembers the agents (ID → max commit delay) already warned
	// about a commit delay past the grace; used by the pass loop only.
	latePast map[string]time.Duration

	statsMu sync.Mutex
	passes  int
	last    PassStats

	// cleanMu serializes cleans, which share one key map (keys, made
	// at the first clean).
	cleanMu sync.Mutex
	keys    *keyMap

	// gauged are the compacted partitions ([topic, partition]) whose
	// cleaner gauges the last pass set, and gauging those this pass sets:
	// the gauges of partitions no pass looks at any more (a deleted topic,
	// one no longer compacted) are removed.
	gaugeMu         sync.Mutex
	gauged, gauging map[[2]string]bool

	// editShard writes a shard edit: the store's, or in tests one that
	// fails after applying.
	editShard func(context.Context, metadata.Fence, metadata.ShardEdit) (int64, error)
}

// PassStats says what one pass did.
type PassStats struct {
	Started  time.Time
	Duration time.Duration
	// Compacting is the time retention and merges took, Collecting the
	// time garbage collection took (both within Duration).
	Compacting, Collecting time.Duration

	// Shards is how many shards with log entries were looked at,
	// Partitions how many partitions with data they have; Behind how
	// many of those were past their retention.
	Shards, Partitions, Behind int
	// RetentionExtents partition extents (RetentionBytes stored bytes)
	// were removed by retention, RetentionEntries log entries left empty
	// by it were deleted; TrimmedPartitions had their log start moved.
	RetentionEntries, RetentionExtents, TrimmedPartitions int
	RetentionBytes                                        int64
	// Merges merged entries replaced MergedEntries entries holding
	// MergedBytes stored bytes; ObjectsWritten objects (BytesWritten
	// bytes) were written for them.
	Merges, MergedEntries, ObjectsWritten int
	MergedBytes, BytesWritten             int64
	// CleanedPartitions of compacted topics were cleaned (some more than
	// once); the cleaner read CleanerBytesRead stored bytes to rewrite
	// them and removed CleanerRecordsRemoved records.
	CleanedPartitions                       int
	CleanerBytesRead, CleanerRecordsRemoved int64
	// Objects were listed in the bucket, Entries log entries read from
	// etcd; Unreferenced objects were referenced by none of them, of
	// which Deleted (DeletedBytes) were past their grace and deleted.
	Objects, Entries, Unreferenced, Deleted int
	DeletedBytes                            int64
	// Errors is how many shards or merges failed (each logged); the pass
	// went on with the rest.
	Errors int
}

// New checks the configuration and returns a compactor ready to Run.
func New(cfg Config, deps Deps) (*Compactor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Store == nil || deps.Bucket == nil {
		return nil, errors.New("compactor: a metadata store and a bucket are required")
	}
	log := deps.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Compactor{
		cfg:       cfg,
		store:     deps.Store,
		bucket:    deps.Bucket,
		log:       log.With("compactor", cfg.ID),
		metrics:   newMetrics(deps.Registry),
		editShard: deps.Store.EditShard,
	}, nil
}

// Leading reports whether this compactor holds the election now.
func (c *Compactor) Leading() bool { return c.leading.Load() }

// Stats returns how many passes completed and what the last one did.
func (c *Compactor) Stats() (passes int, last PassStats) {
	c.statsMu.Lock()
	defer c.statsMu.Unlock()
	return c.passes, c.last
}

// Run campaigns for the compactor election and, while it leads, runs a
// pass every RetentionCheckInterval. Losing the election cancels the pass
// in progress at once; Run then campaigns again. It returns nil when ctx
// ends, after resigning, having started no goroutine that outlives it.
func (c *Compactor) Run(ctx context.Context) error {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		l, err := c.store.CampaignCompactor(ctx, c.cfg.ID, c.cfg.LeaseTTL)
		if ctx.Err() != nil {
			break
		}
		if err != nil {
			c.metrics.errors.WithLabelValues("election").Inc()
			c.log.Warn("compactor election failed; retrying", "err", err, "in", backoff)
			sleep(ctx, backoff)
			backoff = min(2*backoff, 5*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		c.log.Info("compactor elected; acting", "interval", c.cfg.RetentionCheckInterval, "gc_grace", c.cfg.GCGrace)
		c.lead(ctx, l, func(lctx context.Context, f metadata.Fence) bool {
			ticker := time.NewTicker(c.cfg.RetentionCheckInterval)
			defer ticker.Stop()
			for {
				if _, err := c.pass(lctx, f); err != nil {
					if lctx.Err() != nil || errors.Is(err, metadata.ErrNotLeader) {
						return false
					}
					c.log.Error("compaction pass failed", "err", err)
				}
				select {
				case <-lctx.Done():
					return false
				case <-ticker.C:
				}
			}
		})
		if ctx.Err() == nil {
			c.log.Warn("compactor leadership lost; campaigning again")
		}
	}
	return nil
}

// RunOnce runs a single pass as the elected compactor and resigns. If
// another compactor leads (or wins the election within a lease TTL), it
// returns ErrLeaderElsewhere without acting.
func (c *Compactor) RunOnce(ctx context.Context) (PassStats, error) {
	if id, ok, err := c.store.CompactorLeader(ctx); err != nil {
		return PassStats{}, err
	} else if ok {
		return PassStats{}, fmt.Errorf("%w: %s holds the election; --once does nothing while a compactor runs", ErrLeaderElsewhere, id)
	}
	cctx, cancel := context.WithTimeout(ctx, c.cfg.LeaseTTL)
	l, err := c.store.CampaignCompactor(cctx, c.cfg.ID, c.cfg.LeaseTTL)
	cancel()
	if err != nil {
		if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			id, _, _ := c.store.CompactorLeader(ctx)
			return PassStats{}, fmt.Errorf("%w: %s won the election first", ErrLeaderElsewhere, id)
		}
		return PassStats{}, err
	}
	var (
		stats   PassStats
		passErr error
	)
	c.lead(ctx, l, func(lctx context.Context, f metadata.Fence) bool {
		stats, passErr = c.pass(lctx, f)
		if passErr == nil && lctx.Err() != nil {
			passErr = fmt.Errorf("compactor: leadership lost during the pass: %w", metadata.ErrNotLeader)
		}
		return false
	})
	return stats, passErr
}

// lead runs work while l holds. work gets a context cancelled the moment
// the session behind l ends (or ctx ends) and the fence of its writes.
// lead resigns before returning.
func (c *Compactor) lead(ctx context.Context, l *metadata.CompactorLeadership, work func(context.Context, metadata.Fence) bool) {
	lctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		select {
		case <-l.Done():
			cancel()
		case <-lctx.Done():
		}
	}()
	c.leading.Store(true)
	c.metrics.leader.Set(1)
	defer func() {
		c.leading.Store(false)
		c.metrics.leader.Set(0)
		cancel()
		wg.Wait()
		rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		if err := l.Resign(rctx); err != nil {
			c.log.Debug("resigning the compactor election", "err", err)
		}
		rcancel()
	}()
	work(lctx, l.Fence())
}

// shardWork is one shard a pass looks at.
type shardWork struct {
	id       metadata.ShardID
	topic    metadata.Topic
	settings metadata.TopicSettings
}

// pass runs retention, merging and garbage collection once. Errors of one
// partition are logged and counted and the pass goes on; a lost fence or
// a cancelled ctx ends it with that error.
func (c *Compactor) pass(ctx context.Context, f metadata.Fence) (PassStats, error) {
	st := PassStats{Started: time.Now()}
	err := c.runPass(ctx, f, &st)
	st.Duration = time.Since(st.Started)
	c.metrics.passDuration.Observe(st.Duration.Seconds())
	if err != nil {
		return st, err
	}
	c.metrics.passes.Inc()
	c.statsMu.Lock()
	c.passes++
	c.last = st
	c.statsMu.Unlock()
	logf := c.log.Info
	if st.RetentionExtents+st.RetentionEntries+st.Merges+st.CleanedPartitions+st.Deleted+st.Errors == 0 {
		logf = c.log.Debug // an idle pass every interval is not news
	}
	logf("compaction pass done", "took", st.Duration.Round(time.Millisecond),
		"shards", st.Shards, "partitions", st.Partitions, "behind", st.Behind,
		"retention_extents", st.RetentionExtents, "retention_entries", st.RetentionEntries,
		"merges", st.Merges, "merged_entries", st.MergedEntries, "merged_bytes", st.MergedBytes,
		"objects_written", st.ObjectsWritten, "bytes_written", st.BytesWritten,
		"cleaned_partitions", st.CleanedPartitions, "cleaner_records_removed", st.CleanerRecordsRemoved,
		"objects", st.Objects, "entries", st.Entries, "unreferenced", st.Unreferenced,
		"deleted", st.Deleted, "errors", st.Errors)
	return st, nil
}

func (c *Compactor) runPass(ctx context.Context, f metadata.Fence, st *PassStats) error {
	// 1. List the bucket first: the referenced set (read in gc, later)
	// must be at least as new as the listing.
	listStart := time.Now()
	objects, err := c.listObjects(ctx)
	if err != nil {
		c.metrics.errors.WithLabelValues("list").Inc()
		return fmt.Errorf("listing the bucket: %w", err)
	}
	st.Objects = len(objects)
	c.metrics.objects.Set(float64(len(objects)))

	// 2 and 3. Retention and merges, shard by shard.
	work, err := c.shards(ctx)
	if err != nil {
		c.metrics.errors.WithLabelValues("retention").Inc()
		return err
	}
	compactStart := time.Now()
	sizes := make(map[string]int64, len(objects))
	for _, o := range objects {
		sizes[o.Key] = o.Size
	}
	if err := c.compactShards(ctx, f, work, sizes, st); err != nil {
		return err
	}
	c.metrics.behind.Set(float64(st.Behind))
	c.dropStaleGauges()
	st.Compacting = time.Since(compactStart)

	// 4. Garbage collection.
	collectStart := time.Now()
	err = c.collect(ctx, f, objects, listStart, st)
	st.Collecting = time.Since(collectStart)
	if err != nil {
		if ctx.Err() == nil && !errors.Is(err, metadata.ErrNotLeader) {
			c.metrics.errors.WithLabelValues("gc").Inc()
		}
		return err
	}

	return nil
}

// shards lists every shard of every topic with its topic's effective
// settings, ordered so that topics of the same retention are next to
// each other: merges pack the runs of consecutive shards into shared
// objects, and an object is deleted only once all of its data is gone.
func (c *Compactor) shards(ctx context.Context) ([]shardWork, error) {
	topics, _, err := c.store.ListTopics(ctx)
	if err != nil {
		return nil, err
	}
	var work []shardWork
	for _, t := range topics {
		s := c.cfg.Broker.Settings(t.Configs)
		for i := range t.Shards() {
			work = append(work, shardWork{id: metadata.ShardID{Topic: t.ID, Shard: i}, topic: t, settings: s})
		}
	}
	lifetime := func(s metadata.TopicSettings) int64 {
		if !s.RetentionApplies() || s.RetentionMs < 0 {
			return math.MaxInt64
		}
		return s.RetentionMs
	}
	slices.SortFunc(work, func(a, b shardWork) int {
		return cmp.Or(
			cmp.Compare(lifetime(a.settings), lifetime(b.settings)),
			cmp.Compare(a.topic.Name, b.topic.Name),
			cmp.Compare(a.id.Shard, b.id.Shard))
	})
	return work, nil
}

// fatal reports whether err ends the pass: the leadership is lost or
// ctx ended.
func fatal(ctx context.Context, err error) bool {
	return ctx.Err() != nil || errors.Is(err, metadata.ErrNotLeader)
}

// compactShards applies retention to every shard and merges what is left.
// Concurrency workers read and retain shards and plan their runs; one
// packer groups the runs into jobs, and Concurrency workers write each
// job's objects and swap its runs in. The stages are joined by unbuffered
// channels, so a pass holds at most about Concurrency shard logs and
// Concurrency jobs' data at a time. A lost fence or a cancelled ctx stops
// every worker and is returned; other failures are counted in st.Errors.
func (c *Compactor) compactShards(ctx context.Context, f metadata.Fence, work []shardWork, sizes map[string]int64, st *PassStats) error {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu       sync.Mutex
		fatalErr error
		shardWG  sync.WaitGroup
		mergeWG  sync.WaitGroup
		next     = make(chan shardWork)
		runs     = make(chan []*mergeRun)
		jobs     = make(chan *mergeJob)
		workers  = min(c.cfg.Concurrency, max(1, len(work)))
		policy   = c.mergePolicy()
		finish   = func(ps PassStats, err error) {
			mu.Lock()
			defer mu.Unlock()
			st.add(ps)
			if err == nil {
				return
			}
			if fatal(wctx, err) {
				if fatalErr == nil {
					fatalErr = err
				}
				cancel()
				return
			}
			st.Errors++
		}
	)
	for range workers {
		shardWG.Add(1)
		go func() {
			defer shardWG.Done()
			for w := range next {
				var ps PassStats
				rs, err := c.compactShard(wctx, f, w, policy, sizes, &ps)
				finish(ps, err)
				if len(rs) == 0 {
					continue
				}
				select {
				case runs <- rs:
				case <-wctx.Done():
				}
			}
		}()
	}
	for range workers {
		mergeWG.Add(1)
		go func() {
			defer mergeWG.Done()
			for j := range jobs {
				var ps PassStats
				err := c.runJob(wctx, f, j, &ps)
				finish(ps, err)
			}
		}()
	}
	go func() {
		defer close(next)
		for _, w := range work {
			select {
			case next <- w:
			case <-wctx.Done():
				return
			}
		}
	}()
	go func() {
		shardWG.Wait()
		close(runs)
	}()
	// The packer: this goroutine.
	pk := packer{target: c.cfg.TargetBytes}
	send := func(j *mergeJob) {
		if j == nil || wctx.Err() != nil {
			return
		}
		select {
		case jobs <- j:
		case <-wctx.Done():
		}
	}
	for rs := range runs {
		for _, r := range rs {
			for _, j := range pk.add(r) {
				send(j)
			}
		}
	}
	send(pk.flush())
	close(jobs)
	mergeWG.Wait()
	if fatalErr == nil {
		fatalErr = ctx.Err()
	}
	return fatalErr
}

// add accumulates the retention and merge counters of o.
func (st *PassStats) add(o PassStats) {
	st.Shards += o.Shards
	st.Partitions += o.Partitions
	st.Behind += o.Behind
	st.RetentionEntries += o.RetentionEntries
	st.RetentionExtents += o.RetentionExtents
	st.TrimmedPartitions += o.TrimmedPartitions
	st.RetentionBytes += o.RetentionBytes
	st.Merges += o.Merges
	st.MergedEntries += o.MergedEntries
	st.MergedBytes += o.MergedBytes
	st.ObjectsWritten += o.ObjectsWritten
	st.BytesWritten += o.BytesWritten
	st.CleanedPartitions += o.CleanedPartitions
	st.CleanerBytesRead += o.CleanerBytesRead
	st.CleanerRecordsRemoved += o.CleanerRecordsRemoved
	st.Errors += o.Errors
}

// compactShard enforces retention on one shard, then plans the runs of
// its entries to merge.
func (c *Compactor) compactShard(ctx context.Context, f metadata.Fence, w shardWork, policy mergePolicy, sizes map[string]int64, ps *PassStats) ([]*mergeRun, error) {
	lg, err := c.retain(ctx, f, w, ps)
	if err != nil {
		if !fatal(ctx, err) {
			c.metrics.errors.WithLabelValues("retention").Inc()
			c.log.Error("retention failed", "topic", w.topic.Name, "shard", w.id.Shard, "err", err)
		}
		return nil, err
	}
	if len(lg.Entries) == 0 {
		return nil, nil
	}
	if w.settings.Compact {
		if err := c.clean(ctx, f, w, &lg, ps); err != nil {
			return nil, err
		}
	}
	ps.Shards++
	for _, n := range lg.State.Nexts {
		if n > 0 {
			ps.Partitions++
		}
	}
	now := time.Now()
	planned := planMerges(lg, math.MaxInt64, policy, sizes, now)
	if slices.ContainsFunc(planned, func(run []metadata.StoredLogEntry) bool { return run[len(run)-1].SeqLast > lg.ProducerFloor }) {
		// Entries are ready but their producer deltas are not all in
		// snapshots yet.
		if floor, err := c.refreshFloor(ctx, w); err == nil {
			lg.ProducerFloor = max(lg.ProducerFloor, floor)
		}
		planned = planMerges(lg, lg.ProducerFloor, policy, sizes, now)
	}
	out := make([]*mergeRun, len(planned))
	for i, run := range planned {
		out[i] = newMergeRun(w, run, c.cfg.PartitionObjectBytes)
	}
	return out, ctx.Err()
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
