package compactor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/floe-io/floe/metadata"
	"github.com/floe-io/floe/segments"
)

// Deps are what a compactor runs on.
type Deps struct {
	Store    *metadata.Store
	Bucket   segments.Bucket
	Log      *slog.Logger
	Registry prometheus.Registerer // may be nil
}

// Compactor enforces retention, merges small objects and collects
// unreferenced ones while it holds the cluster's compactor election.
type Compactor struct {
	cfg     Config
	store   *metadata.Store
	bucket  segments.Bucket
	log     *slog.Logger
	metrics *metrics

	leading atomic.Bool

	statsMu sync.Mutex
	passes  int
	last    PassStats
}

// PassStats says what one pass did.
type PassStats struct {
	Started  time.Time
	Duration time.Duration
	// Compacting is the time retention and merges took, Collecting the
	// time garbage collection took (both within Duration).
	Compacting, Collecting time.Duration

	// Partitions is how many partitions with data were looked at;
	// Behind how many of them were past their retention.
	Partitions, Behind int
	// RetentionEntries index entries (RetentionBytes stored bytes) were
	// removed by retention; TrimmedPartitions had their log start moved.
	RetentionEntries, TrimmedPartitions int
	RetentionBytes                      int64
	// Merges objects were written, replacing MergedEntries entries of
	// MergedBytes stored bytes.
	Merges, MergedEntries int
	MergedBytes           int64
	// Objects were listed in the bucket, IndexEntries read from etcd;
	// Unreferenced objects were referenced by none of them, of which
	// Deleted (DeletedBytes) were past their grace and deleted.
	Objects, IndexEntries, Unreferenced, Deleted int
	DeletedBytes                                 int64
	// Errors is how many partitions or batches failed (each logged); the
	// pass went on with the rest.
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
		cfg:     cfg,
		store:   deps.Store,
		bucket:  deps.Bucket,
		log:     log.With("compactor", cfg.ID),
		metrics: newMetrics(deps.Registry),
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

// partitionWork is one partition a pass looks at.
type partitionWork struct {
	id       metadata.PartitionID
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
	if st.RetentionEntries+st.Merges+st.Deleted+st.Errors == 0 {
		logf = c.log.Debug // an idle pass every interval is not news
	}
	logf("compaction pass done", "took", st.Duration.Round(time.Millisecond),
		"partitions", st.Partitions, "behind", st.Behind,
		"retention_entries", st.RetentionEntries, "merges", st.Merges, "merged_entries", st.MergedEntries,
		"objects", st.Objects, "index_entries", st.IndexEntries, "unreferenced", st.Unreferenced,
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

	// 2 and 3. Retention and merges, partition by partition.
	work, err := c.partitions(ctx)
	if err != nil {
		c.metrics.errors.WithLabelValues("retention").Inc()
		return err
	}
	st.Partitions = len(work)
	compactStart := time.Now()
	sizes := make(map[string]int64, len(objects))
	for _, o := range objects {
		sizes[o.Key] = o.Size
	}
	if err := c.compactPartitions(ctx, f, work, sizes, st); err != nil {
		return err
	}
	c.metrics.behind.Set(float64(st.Behind))
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

// partitions lists every partition that holds state, with its topic's
// effective settings, in a stable order.
func (c *Compactor) partitions(ctx context.Context) ([]partitionWork, error) {
	topics, _, err := c.store.ListTopics(ctx)
	if err != nil {
		return nil, err
	}
	byID := make(map[uuid.UUID]metadata.Topic, len(topics))
	for _, t := range topics {
		byID[t.ID] = t
	}
	var work []partitionWork
	err = c.store.ForEachPartitionState(ctx, func(id metadata.PartitionID, _ metadata.PartitionState) error {
		t, ok := byID[id.Topic]
		if !ok {
			return nil // created after the topic list was read; next pass
		}
		work = append(work, partitionWork{id: id, topic: t, settings: c.cfg.Broker.Settings(t.Configs)})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing partitions: %w", err)
	}
	slices.SortFunc(work, func(a, b partitionWork) int {
		if a.topic.Name != b.topic.Name {
			if a.topic.Name < b.topic.Name {
				return -1
			}
			return 1
		}
		return int(a.id.Partition - b.id.Partition)
	})
	return work, nil
}

// compactPartitions runs compactPartition over work with Concurrency
// workers, adding what each did to st. A lost fence or a cancelled ctx
// stops every worker and is returned; other failures are counted in
// st.Errors.
func (c *Compactor) compactPartitions(ctx context.Context, f metadata.Fence, work []partitionWork, sizes map[string]int64, st *PassStats) error {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu    sync.Mutex
		fatal error
		wg    sync.WaitGroup
		next  = make(chan partitionWork)
	)
	for range min(c.cfg.Concurrency, max(1, len(work))) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for w := range next {
				var ps PassStats
				err := c.compactPartition(wctx, f, w, sizes, &ps)
				mu.Lock()
				st.add(ps)
				if err != nil {
					if wctx.Err() != nil || errors.Is(err, metadata.ErrNotLeader) {
						if fatal == nil {
							fatal = err
						}
						cancel()
					} else {
						st.Errors++
					}
				}
				mu.Unlock()
			}
		}()
	}
feed:
	for _, w := range work {
		select {
		case next <- w:
		case <-wctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if fatal == nil {
		fatal = ctx.Err()
	}
	return fatal
}

// add accumulates the retention and merge counters of o.
func (st *PassStats) add(o PassStats) {
	st.Behind += o.Behind
	st.RetentionEntries += o.RetentionEntries
	st.TrimmedPartitions += o.TrimmedPartitions
	st.RetentionBytes += o.RetentionBytes
	st.Merges += o.Merges
	st.MergedEntries += o.MergedEntries
	st.MergedBytes += o.MergedBytes
	st.Errors += o.Errors
}

// compactPartition enforces retention on one partition, then merges what
// is left.
func (c *Compactor) compactPartition(ctx context.Context, f metadata.Fence, w partitionWork, sizes map[string]int64, st *PassStats) error {
	state, entries, err := c.retain(ctx, f, w, st)
	if err != nil {
		if ctx.Err() == nil && !errors.Is(err, metadata.ErrNotLeader) {
			c.metrics.errors.WithLabelValues("retention").Inc()
			c.log.Error("retention failed", "topic", w.topic.Name, "partition", w.id.Partition, "err", err)
		}
		return err
	}
	runs := planMerges(state, entries, c.mergePolicy(), sizes, time.Now())
	var firstErr error
	for _, run := range runs {
		if err := c.merge(ctx, f, w, run, st); err != nil {
			if ctx.Err() != nil || errors.Is(err, metadata.ErrNotLeader) {
				return err
			}
			c.metrics.errors.WithLabelValues("merge").Inc()
			c.log.Error("merge failed", "topic", w.topic.Name, "partition", w.id.Partition,
				"first", run[0].First, "last", run[len(run)-1].Last, "entries", len(run), "err", err)
			if firstErr == nil {
				firstErr = err
			}
		}
	}
	return firstErr
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
