package exporter

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/table"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/floe-io/floe/internal/certs"
	"github.com/floe-io/floe/internal/schemaregistry"
	"github.com/floe-io/floe/metadata"
	"github.com/floe-io/floe/segments"
)

// Snapshot summary properties of the exporter's commits.
const (
	// propOffsets is, as a JSON object by partition, the first offset of
	// each partition not in the table after the snapshot.
	propOffsets = "floe.offsets"
	// propTopicID is the topic's ID: a topic deleted and created again
	// under its name starts from offset 0.
	propTopicID = "floe.topic-id"
)

// Config configures an exporter.
type Config struct {
	// Catalog is the Iceberg catalog's URL (OpenCatalog).
	Catalog string
	// Warehouse is where tables' files go: an s3:// or file:// location;
	// a table is at Warehouse/<namespace>/<table>.
	Warehouse string
	// IOProps are the table IO's properties: the warehouse's S3 endpoint,
	// region and credentials.
	IOProps iceberg.Properties
	// ID names this exporter in its election. Default: a random one.
	ID string
	// LeaseTTL bounds how long a dead exporter's leadership outlives it.
	// Default 10s.
	LeaseTTL time.Duration
	// Tick is how often topics are checked for being due a commit.
	// Default 1s.
	Tick time.Duration
	// MaxCommitBytes bounds the record bytes one commit of a topic takes
	// (the rows are in memory until written). A topic with more waiting
	// commits again at once. Default 128 MiB.
	MaxCommitBytes int64
	// TargetFileBytes is the Parquet file size tables are written toward.
	// Default 128 MiB.
	TargetFileBytes int64
	// EtcdMaxTxnOps is etcd's --max-txn-ops. Default 128.
	EtcdMaxTxnOps int
	// Parallelism is how many topics are exported at once, each holding
	// up to MaxCommitBytes of records while it commits. Default 2.
	Parallelism int
	// SchemaRegistryURL is the Confluent-compatible schema registry whose
	// schemas decode values of the formats avro and protobuf (and json
	// without an inline schema). Empty: none; such topics fail to export.
	SchemaRegistryURL string
	// SchemaRegistryUserInfo is "user:password" for the registry's HTTP
	// Basic authentication (Confluent's basic.auth.user.info).
	SchemaRegistryUserInfo string
	// SchemaRegistryToken is a bearer token for the registry, sent when
	// SchemaRegistryUserInfo is empty.
	SchemaRegistryToken string
	// SchemaRegistryCAFile is a PEM file of the CAs an https registry's
	// certificate is checked against. Empty: the system's.
	SchemaRegistryCAFile string
}

func (c *Config) setDefaults() {
	if c.ID == "" {
		c.ID = "exporter-" + uuid.NewString()[:8]
	}
	if c.LeaseTTL <= 0 {
		c.LeaseTTL = 10 * time.Second
	}
	if c.Tick <= 0 {
		c.Tick = time.Second
	}
	if c.MaxCommitBytes <= 0 {
		c.MaxCommitBytes = 128 << 20
	}
	if c.TargetFileBytes <= 0 {
		c.TargetFileBytes = 128 << 20
	}
	if c.EtcdMaxTxnOps <= 0 {
		c.EtcdMaxTxnOps = 128
	}
	if c.Parallelism <= 0 {
		c.Parallelism = 2
	}
}

// Deps are an exporter's collaborators.
type Deps struct {
	Store    *metadata.Store
	Bucket   segments.BucketReader
	Catalog  catalog.Catalog
	Log      *slog.Logger
	Registry prometheus.Registerer
}

// Exporter exports topics that ask for it to Iceberg tables while it
// leads.
type Exporter struct {
	cfg     Config
	store   *metadata.Store
	bucket  segments.BucketReader
	cat     catalog.Catalog
	log     *slog.Logger
	metrics *metrics
	mem     memory.Allocator
	// registry is the schema registry's client, nil without one.
	registry *schemaregistry.Client

	leading atomic.Bool

	mu     sync.Mutex
	topics map[uuid.UUID]*topicExport // by topic ID; the run loop's

	// afterTableCommit, when set (tests), runs after a table commit and
	// before its export state is recorded; an error it returns ends the
	// pass there, as a crash would.
	afterTableCommit func(topic string) error
}

// topicExport is what the exporter holds of one topic between passes.
type topicExport struct {
	name        string
	settingsRev int64 // the topic's ModRevision its layout was built at
	settings    TopicSettings
	lay         *layout
	// values decodes values by the registry's schemas (nil for other
	// formats), for the subject's latest schema the layout was built of.
	values      *registryValues
	lastCommit  time.Time
	lastExpiry  time.Time
	lastCompact time.Time
	rows, dead  int64
	// grouped is what the export group's offsets were last set to (nil:
	// unknown, all are written), at groupedAt, with groupedMeta.
	grouped     map[int32]int64
	groupedAt   time.Time
	groupedMeta metadata.ExportOffsetMetadata
	// errored is set while the export group's lowest offset carries an
	// error (recordError), to be written again without it.
	errored bool
	// skippedTo is, by partition, the log start up to which offsets
	// retention removed before their export were counted.
	skippedTo map[int32]int64
}

// New returns an exporter.
func New(cfg Config, deps Deps) (*Exporter, error) {
	cfg.setDefaults()
	if deps.Store == nil || deps.Bucket == nil || deps.Catalog == nil {
		return nil, errors.New("exporter: a store, a bucket and a catalog are required")
	}
	if cfg.Warehouse == "" {
		return nil, errors.New("exporter: no warehouse location")
	}
	log := deps.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var reg *schemaregistry.Client
	if cfg.SchemaRegistryURL != "" {
		var err error
		rc := schemaregistry.Config{URL: cfg.SchemaRegistryURL, UserInfo: cfg.SchemaRegistryUserInfo, BearerToken: cfg.SchemaRegistryToken}
		if cfg.SchemaRegistryCAFile != "" {
			pool, err := certs.Pool(cfg.SchemaRegistryCAFile)
			if err != nil {
				return nil, fmt.Errorf("exporter: the schema registry's CAs: %w", err)
			}
			tr := http.DefaultTransport.(*http.Transport).Clone()
			tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
			rc.HTTPClient = &http.Client{Transport: tr}
		}
		reg, err = schemaregistry.New(rc)
		if err != nil {
			return nil, fmt.Errorf("exporter: %w", err)
		}
	}
	return &Exporter{
		registry: reg,
		cfg:      cfg,
		store:    deps.Store,
		bucket:   deps.Bucket,
		cat:      deps.Catalog,
		log:      log.With("component", "exporter"),
		metrics:  newMetrics(deps.Registry),
		mem:      memory.DefaultAllocator,
		topics:   map[uuid.UUID]*topicExport{},
	}, nil
}

// Run campaigns for the exporter's leadership and exports while it leads,
// until ctx ends. Leadership lost is campaigned for again.
func (e *Exporter) Run(ctx context.Context) error {
	for ctx.Err() == nil {
		l, err := e.store.CampaignExporter(ctx, e.cfg.ID, e.cfg.LeaseTTL)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			e.log.Warn("campaigning for the exporter's leadership failed; retrying", "err", err)
			select {
			case <-time.After(time.Second):
			case <-ctx.Done():
			}
			continue
		}
		e.log.Info("exporter leading", "id", e.cfg.ID)
		e.setLeading(true)
		e.lead(ctx, l)
		e.setLeading(false)
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		l.Resign(rctx)
		cancel()
	}
	return nil
}

// ID is the exporter's name in its election.
func (e *Exporter) ID() string { return e.cfg.ID }

// Leading reports whether the exporter leads.
func (e *Exporter) Leading() bool { return e.leading.Load() }

func (e *Exporter) setLeading(on bool) {
	e.leading.Store(on)
	e.metrics.leading.Set(map[bool]float64{true: 1}[on])
}

// ErrAnotherExporter: RunOnce found another exporter leading.
var ErrAnotherExporter = errors.New("another exporter is active")

// RunOnce exports every exporting topic once as the leader, and resigns.
// It fails with ErrAnotherExporter when another exporter leads.
func (e *Exporter) RunOnce(ctx context.Context) (PassStats, error) {
	if id, ok, err := e.store.ExporterLeader(ctx); err != nil {
		return PassStats{}, err
	} else if ok {
		return PassStats{}, fmt.Errorf("%w (%s)", ErrAnotherExporter, id)
	}
	cctx, cancel := context.WithTimeout(ctx, 2*e.cfg.LeaseTTL)
	l, err := e.store.CampaignExporter(cctx, e.cfg.ID, e.cfg.LeaseTTL)
	cancel()
	if err != nil {
		return PassStats{}, err
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		l.Resign(rctx)
		cancel()
	}()
	e.setLeading(true)
	defer e.setLeading(false)
	return e.Pass(ctx, l.Fence(), true)
}

// lead exports until the leadership ends or ctx does.
func (e *Exporter) lead(ctx context.Context, l *metadata.Leadership) {
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-l.Done():
			cancel()
		case <-lctx.Done():
		}
	}()
	t := time.NewTicker(e.cfg.Tick)
	defer t.Stop()
	for {
		if _, err := e.Pass(lctx, l.Fence(), false); err != nil && lctx.Err() == nil {
			e.log.Warn("export pass failed", "err", err)
		}
		select {
		case <-lctx.Done():
			return
		case <-t.C:
		}
	}
}

// PassStats counts what a pass did.
type PassStats struct {
	Commits     int
	Rows        int64
	DeadLetters int64
}

// Pass exports every topic due a commit (every exporting topic, when all
// is set), fenced by f, up to Parallelism topics at once. A topic's
// failure is logged, counted and recorded in its export state; the others
// go on.
func (e *Exporter) Pass(ctx context.Context, f metadata.Fence, all bool) (PassStats, error) {
	var st PassStats
	topics, _, err := e.store.ListTopics(ctx)
	if err != nil {
		return st, err
	}
	live := map[uuid.UUID]bool{}
	var (
		mu   sync.Mutex // st, errs
		errs []error
		wg   sync.WaitGroup
		sem  = make(chan struct{}, e.cfg.Parallelism)
	)
	for _, t := range topics {
		if t.Internal() {
			continue
		}
		s, err := settingsOf(t)
		if err == nil && !s.Enabled {
			continue
		}
		live[t.ID] = true
		te := e.topic(t)
		if err == nil && !all && time.Since(te.lastCommit) < s.CommitInterval {
			continue
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		settingsErr := err
		wg.Go(func() {
			defer func() { <-sem }()
			var ts PassStats
			err := settingsErr
			if err == nil {
				err = e.exportTopic(ctx, f, t, s, te, &ts)
			}
			if err != nil && ctx.Err() == nil {
				e.metrics.commits.WithLabelValues("failed").Inc()
				e.recordError(ctx, f, t, te, err)
				// Try again after an interval, not at every tick.
				te.lastCommit = time.Now()
			}
			mu.Lock()
			defer mu.Unlock()
			st.Commits += ts.Commits
			st.Rows += ts.Rows
			st.DeadLetters += ts.DeadLetters
			if err != nil && ctx.Err() == nil {
				errs = append(errs, fmt.Errorf("topic %s: %w", t.Name, err))
			}
		})
	}
	wg.Wait()
	if ctx.Err() != nil {
		return st, ctx.Err()
	}
	e.forget(ctx, f, live)
	return st, errors.Join(errs...)
}

// topic returns what the exporter holds of t.
func (e *Exporter) topic(t metadata.Topic) *topicExport {
	e.mu.Lock()
	defer e.mu.Unlock()
	te := e.topics[t.ID]
	if te == nil {
		te = &topicExport{name: t.Name}
		e.topics[t.ID] = te
	}
	return te
}

// forget drops what the exporter holds of topics that no longer export
// (deleted, or export turned off), and their export state. Their tables
// stay.
func (e *Exporter) forget(ctx context.Context, f metadata.Fence, live map[uuid.UUID]bool) {
	e.mu.Lock()
	var gone []uuid.UUID
	for id, te := range e.topics {
		if !live[id] {
			delete(e.topics, id)
			e.metrics.forget(te.name)
			gone = append(gone, id)
		}
	}
	e.mu.Unlock()
	for _, id := range gone {
		if err := e.store.DeleteExportState(ctx, f, id); err != nil {
			e.log.Warn("forgetting a topic's export state failed", "topic_id", id, "err", err)
		}
	}
}

// exportTopic commits what t has below its last stable offsets beyond
// what its table holds, in commits of at most MaxCommitBytes, until
// nothing is left.
func (e *Exporter) exportTopic(ctx context.Context, f metadata.Fence, t metadata.Topic, s TopicSettings, te *topicExport, st *PassStats) error {
	err := e.exportTopicFrom(ctx, f, t, s, te, st, false)
	if errors.Is(err, errNewerSchema) {
		// Values of a schema registered since the latest was read: read
		// it again, evolve the table, and commit them as its.
		err = e.exportTopicFrom(ctx, f, t, s, te, st, true)
	}
	return err
}

// exportTopicFrom is exportTopic with the layout of the topic's settings
// (and the registry subject's latest schema); with again, a value of a
// schema newer than it is read as it rather than refused.
func (e *Exporter) exportTopicFrom(ctx context.Context, f metadata.Fence, t metadata.Topic, s TopicSettings, te *topicExport, st *PassStats, again bool) error {
	if s.usesRegistry() {
		latest, err := latestSchema(ctx, e.registry, s)
		if errors.Is(err, schemaregistry.ErrNotFound) && te.values == nil {
			// A new topic's producers register its subject with their
			// first record: until a record is there to export, there is
			// nothing to wait for.
			if has, herr := e.hasStableRecords(ctx, t); herr == nil && !has {
				return nil
			}
		}
		if err != nil {
			return err
		}
		if te.values == nil || te.values.latest.ID != latest.ID || te.values.subject != s.ValueSubject || te.settingsRev != t.ModRevision {
			rv, err := newRegistryValues(ctx, e.registry, s, latest)
			if err != nil {
				return err
			}
			lay, err := newLayout(s, rv.root)
			if err != nil {
				return fmt.Errorf("the latest schema of subject %s: %w", rv.subject, err)
			}
			if te.values != nil && te.values.latest.ID != rv.latest.ID {
				e.log.Info("the value subject has a new latest schema", "topic", t.Name, "schema", rv.describe())
			}
			te.lay, te.values, te.settings, te.settingsRev = lay, rv, s, t.ModRevision
		}
		te.values.allowNewer = again
	} else if te.lay == nil || te.settingsRev != t.ModRevision {
		lay, err := newLayout(s, s.ValueSchema)
		if err != nil {
			return err
		}
		te.lay, te.values, te.settings, te.settingsRev = lay, nil, s, t.ModRevision
	}
	tbl, ws, err := e.table(ctx, t, s, te.lay)
	if err != nil {
		return err
	}
	for {
		offsets, err := resumeOffsets(tbl, t.ID)
		if err != nil {
			return err
		}
		committed, more, err := e.commit(ctx, f, t, te, tbl, ws, offsets, st)
		if err != nil {
			return err
		}
		if committed != nil {
			tbl = committed
		}
		if !more {
			te.lastCommit = time.Now()
			break
		}
	}
	if time.Since(te.lastCompact) >= compactEvery {
		te.lastCompact = time.Now()
		start := time.Now()
		_, cs, err := e.compactTable(ctx, tbl, t.ID, compactMinFiles)
		if err != nil {
			e.metrics.compactions.WithLabelValues("failed").Inc()
			e.log.Warn("compacting the table's small files failed", "topic", t.Name, "err", err)
		} else if cs.Groups > 0 {
			e.metrics.compactions.WithLabelValues("ok").Inc()
			e.metrics.compactedFiles.Add(float64(cs.FilesRemoved))
			e.log.Info("compacted the table's small files", "topic", t.Name, "files", cs.FilesRemoved, "into", cs.FilesAdded, "took", time.Since(start))
		}
	}
	return nil
}

// hasStableRecords reports whether any partition of t holds records
// below its last stable offset.
func (e *Exporter) hasStableRecords(ctx context.Context, t metadata.Topic) (bool, error) {
	for s := range t.Shards() {
		state, err := e.store.GetShardState(ctx, metadata.ShardID{Topic: t.ID, Shard: s})
		if err != nil {
			return false, err
		}
		for slot := range state.Stables {
			if ps := state.Partition(int32(slot)); ps.Stable > ps.Start {
				return true, nil
			}
		}
	}
	return false, nil
}

// table loads the topic's table, creating it (and its namespace) when
// missing, and checks that it has the layout's shape, evolving the
// topic's own table toward it (evolve.go). It returns the table and the
// schema rows are written with.
func (e *Exporter) table(ctx context.Context, t metadata.Topic, s TopicSettings, lay *layout) (*table.Table, *iceberg.Schema, error) {
	name := strings.Join(s.Table, ".")
	tbl, err := e.cat.LoadTable(ctx, s.Table)
	if errors.Is(err, catalog.ErrNoSuchTable) {
		tbl, err = e.createTable(ctx, t, s, lay)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("loading table %s: %w", name, err)
	}
	if err := samePartitioning(tbl, lay); err != nil {
		return nil, nil, fmt.Errorf("table %s is not partitioned as floe.iceberg.partition.by says (%v): export it to another table (floe.iceberg.table)", name, err)
	}
	if sameShape(tbl.Schema().Fields(), lay.schema.Fields()) == nil {
		return tbl, tbl.Schema(), nil
	}
	if owner := tbl.Properties()[propTopicID]; owner != t.ID.String() {
		err := sameShape(tbl.Schema().Fields(), lay.schema.Fields())
		return nil, nil, fmt.Errorf("table %s does not have the columns the topic's settings give (%v), and it is not the topic's own table to evolve: export it to another table (floe.iceberg.table)", name, err)
	}
	if tbl, err = e.evolve(ctx, t.Name, tbl, lay); err != nil {
		return nil, nil, err
	}
	ws, err := writeSchema(tbl.Schema(), lay.schema)
	if err != nil {
		return nil, nil, fmt.Errorf("table %s: %w", name, err)
	}
	return tbl, ws, nil
}

func (e *Exporter) createTable(ctx context.Context, t metadata.Topic, s TopicSettings, lay *layout) (*table.Table, error) {
	ns := s.Table[:len(s.Table)-1]
	if err := e.cat.CreateNamespace(ctx, ns, nil); err != nil && !errors.Is(err, catalog.ErrNamespaceAlreadyExists) {
		return nil, fmt.Errorf("creating namespace %s: %w", strings.Join(ns, "."), err)
	}
	props := iceberg.Properties{
		"write.parquet.compression-codec":    "zstd",
		"write.target-file-size-bytes":       strconv.FormatInt(e.cfg.TargetFileBytes, 10),
		"commit.retry.num-retries":           "0",
		"history.expire.max-snapshot-age-ms": strconv.FormatInt(s.SnapshotRetention.Milliseconds(), 10),
		"floe.topic":                         t.Name,
		propTopicID:                          t.ID.String(),
	}
	loc := strings.TrimSuffix(e.cfg.Warehouse, "/") + "/" + strings.Join(s.Table, "/")
	tbl, err := e.cat.CreateTable(ctx, s.Table, lay.schema,
		catalog.WithPartitionSpec(&lay.spec), catalog.WithProperties(props), catalog.WithLocation(loc))
	if errors.Is(err, catalog.ErrTableAlreadyExists) {
		return e.cat.LoadTable(ctx, s.Table)
	}
	if err == nil {
		e.log.Info("created table", "topic", t.Name, "table", strings.Join(s.Table, "."), "location", loc)
	}
	return tbl, err
}

// resumeOffsets returns where the table's rows of the topic end: the
// offsets of its latest snapshot that records them, if of this topic.
func resumeOffsets(tbl *table.Table, topic uuid.UUID) (map[int32]int64, error) {
	meta := tbl.Metadata()
	for snap := tbl.CurrentSnapshot(); snap != nil; {
		if snap.Summary != nil {
			if raw, ok := snap.Summary.Properties[propOffsets]; ok {
				if snap.Summary.Properties[propTopicID] != topic.String() {
					return map[int32]int64{}, nil // another topic of the name
				}
				var byPart map[string]int64
				if err := json.Unmarshal([]byte(raw), &byPart); err != nil {
					return nil, fmt.Errorf("snapshot %d: %s: %w", snap.SnapshotID, propOffsets, err)
				}
				out := make(map[int32]int64, len(byPart))
				for k, v := range byPart {
					p, err := strconv.ParseInt(k, 10, 32)
					if err != nil || v < 0 {
						return nil, fmt.Errorf("snapshot %d: %s: bad entry %q: %d", snap.SnapshotID, propOffsets, k, v)
					}
					out[int32(p)] = v
				}
				return out, nil
			}
		}
		if snap.ParentSnapshotID == nil {
			break
		}
		snap = meta.SnapshotByID(*snap.ParentSnapshotID)
	}
	return map[int32]int64{}, nil
}

// commit appends the topic's next records to the table, from offsets,
// and records the export in etcd. It returns the table after the commit
// (nil when there was nothing to commit), and whether more records wait
// (the commit took its most).
func (e *Exporter) commit(ctx context.Context, f metadata.Fence, t metadata.Topic, te *topicExport, tbl *table.Table, ws *iceberg.Schema, offsets map[int32]int64, st *PassStats) (*table.Table, bool, error) {
	start := time.Now()
	schema, err := table.SchemaToArrowSchema(ws, nil, true, false)
	if err != nil {
		return nil, false, fmt.Errorf("the table's Arrow schema: %w", err)
	}
	rb, err := newRowBuilder(e.mem, schema, te.lay, t.Name)
	if err != nil {
		return nil, false, err
	}
	defer rb.release()
	if rv := te.values; rv != nil {
		rb.decode = func(value []byte) ([]any, error) { return rv.decode(ctx, value) }
	}

	// Partitions by shard: one read of each shard's state.
	next := maps.Clone(offsets)
	var (
		lagRecords, skipped int64
		parts               []*partRead
		stable              = make([]int64, t.Partitions)
	)
	states := map[metadata.ShardID]metadata.ShardState{}
	for p := int32(0); p < t.Partitions; p++ {
		sh, slot := metadata.ShardOf(t.ID, t.ShardSize, p)
		state, ok := states[sh]
		if !ok {
			if state, err = e.store.GetShardState(ctx, sh); err != nil {
				return nil, false, err
			}
			states[sh] = state
		}
		ps := state.Partition(slot)
		from := next[p]
		if from < ps.Start {
			// Retention removed records before they were exported:
			// counted and logged once.
			if counted := max(from, te.skippedTo[p]); counted < ps.Start {
				skipped += ps.Start - counted
				e.log.Warn("records were deleted by retention before they were exported", "topic", t.Name, "partition", p, "from", counted, "log_start", ps.Start)
				if te.skippedTo == nil {
					te.skippedTo = map[int32]int64{}
				}
				te.skippedTo[p] = ps.Start
			}
			from = ps.Start
		}
		next[p] = from
		stable[p] = ps.Stable
		if from < ps.Stable {
			parts = append(parts, &partRead{p: p, next: from, upto: ps.Stable})
		}
	}
	err = e.readCommitted(ctx, t, parts, e.cfg.MaxCommitBytes, func() int64 { return rb.approxBytes }, rb.add)
	if err != nil {
		return nil, false, err
	}
	more := false
	for _, pr := range parts {
		next[pr.p] = pr.next
		more = more || !pr.done
	}
	for p := int32(0); p < t.Partitions; p++ {
		lagRecords += max(stable[p]-next[p], 0)
	}
	for p := t.Partitions; p < int32(len(next)); p++ {
		delete(next, p) // partitions never shrink; an entry past the count is not ours
	}
	e.metrics.skipped.WithLabelValues(t.Name).Add(float64(skipped))
	rows, dead := rb.rows, rb.deadLetters
	if rows == 0 {
		e.metrics.lag(t.Name, lagRecords, te.lastCommit)
		if te.grouped == nil {
			// First look at the topic in this process: an exporter that
			// died between a table commit and recording it left the
			// export state and group behind the table.
			return nil, false, e.catchUp(ctx, f, t, te, tbl, offsets)
		}
		// A quiet topic's export group keeps its offsets from expiring.
		if time.Since(te.groupedAt) > groupRefresh {
			if err := e.mirror(ctx, f, t, te, tbl, offsets, true); err != nil {
				return nil, false, err
			}
		}
		return nil, false, nil
	}
	rec := rb.build()
	defer rec.Release()
	rdr, err := array.NewRecordReader(schema, []arrow.RecordBatch{rec})
	if err != nil {
		return nil, false, err
	}
	defer rdr.Release()
	byPart := make(map[string]int64, len(next))
	for p, o := range next {
		byPart[strconv.Itoa(int(p))] = o
	}
	offJSON, _ := json.Marshal(byPart)
	props := iceberg.Properties{propOffsets: string(offJSON), propTopicID: t.ID.String()}
	txn := tbl.NewTransaction()
	if err := txn.Append(ctx, rdr, props); err != nil {
		return nil, false, fmt.Errorf("writing %d rows: %w", rows, err)
	}
	committed, err := txn.Commit(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("committing %d rows to %s: %w", rows, strings.Join(te.settings.Table, "."), err)
	}
	e.metrics.commits.WithLabelValues("ok").Inc()
	e.metrics.rows.WithLabelValues(t.Name).Add(float64(rows))
	e.metrics.deadLetters.WithLabelValues(t.Name).Add(float64(dead))
	e.metrics.commitSeconds.Observe(time.Since(start).Seconds())
	if snap := committed.CurrentSnapshot(); snap != nil && snap.Summary != nil {
		if n, err := strconv.ParseInt(snap.Summary.Properties["added-files-size"], 10, 64); err == nil {
			e.metrics.bytes.WithLabelValues(t.Name).Add(float64(n))
		}
	}
	st.Commits++
	st.Rows += rows
	st.DeadLetters += dead
	te.rows += rows
	te.dead += dead
	te.lastCommit = time.Now()
	if e.afterTableCommit != nil {
		if err := e.afterTableCommit(t.Name); err != nil {
			return nil, false, err
		}
	}
	e.metrics.lag(t.Name, lagRecords, te.lastCommit)
	snapID := int64(0)
	if snap := committed.CurrentSnapshot(); snap != nil {
		snapID = snap.SnapshotID
	}
	if err := e.store.PutExportState(ctx, f, t.ID, metadata.ExportState{
		Topic: t.Name, Table: strings.Join(te.settings.Table, "."), Offsets: next,
		SnapshotID: snapID, Committed: te.lastCommit.UTC(), Rows: te.rows, DeadLetters: te.dead,
	}); err != nil {
		return nil, false, fmt.Errorf("recording the export: %w", err)
	}
	if err := e.mirror(ctx, f, t, te, committed, next, time.Since(te.groupedAt) > groupRefresh); err != nil {
		return nil, false, err
	}
	if err := e.expire(ctx, committed, te); err != nil {
		e.log.Warn("expiring old snapshots failed", "topic", t.Name, "err", err)
	}
	e.log.Debug("exported", "topic", t.Name, "rows", rows, "dead_letters", dead, "snapshot", snapID, "took", time.Since(start))
	return committed, more, nil
}

// catchUp records where the table's rows end (offsets, from tbl) in the
// export state, when it says otherwise, and in the export group.
func (e *Exporter) catchUp(ctx context.Context, f metadata.Fence, t metadata.Topic, te *topicExport, tbl *table.Table, offsets map[int32]int64) error {
	st, ok, err := e.store.ExportStateOf(ctx, t.ID)
	if err != nil {
		return err
	}
	if ok && maps.Equal(st.Offsets, offsets) {
		return e.mirror(ctx, f, t, te, tbl, offsets, true)
	}
	st.Topic, st.Table, st.Offsets = t.Name, strings.Join(te.settings.Table, "."), offsets
	if snap := tbl.CurrentSnapshot(); snap != nil {
		st.SnapshotID, st.Committed = snap.SnapshotID, time.UnixMilli(snap.TimestampMs).UTC()
	}
	if err := e.store.PutExportState(ctx, f, t.ID, st); err != nil {
		return fmt.Errorf("recording the export: %w", err)
	}
	return e.mirror(ctx, f, t, te, tbl, offsets, true)
}

// groupRefresh is how often every offset of an export group is written
// again, moved or not, so that a quiet topic's do not expire
// (offsets.retention.minutes is 7 days by default).
const groupRefresh = 6 * time.Hour

// mirror sets the export group's offsets to the table's (tbl's, at
// offsets): those that moved since last time, or all of them.
func (e *Exporter) mirror(ctx context.Context, f metadata.Fence, t metadata.Topic, te *topicExport, tbl *table.Table, offsets map[int32]int64, all bool) error {
	md := metadata.ExportOffsetMetadata{Table: strings.Join(te.settings.Table, ".")}
	if snap := tbl.CurrentSnapshot(); snap != nil {
		md.SnapshotID, md.Committed = snap.SnapshotID, time.UnixMilli(snap.TimestampMs).UTC()
	}
	moved := map[int32]int64{}
	for p, o := range offsets {
		if prev, ok := te.grouped[p]; all || !ok || prev != o || te.errored && p == 0 {
			moved[p] = o
		}
	}
	if err := e.store.PutExportOffsets(ctx, f, t, moved, md, e.cfg.EtcdMaxTxnOps); err != nil {
		return fmt.Errorf("committing the export group's offsets: %w", err)
	}
	te.grouped, te.groupedMeta, te.errored = maps.Clone(offsets), md, false
	if all || te.groupedAt.IsZero() {
		te.groupedAt = time.Now()
	}
	return nil
}

// expireEvery is how often a table's old snapshots are expired.
const expireEvery = time.Hour

// expire removes the table's snapshots older than the topic's snapshot
// retention (keeping the current one), at most once an hour.
func (e *Exporter) expire(ctx context.Context, tbl *table.Table, te *topicExport) error {
	if time.Since(te.lastExpiry) < expireEvery {
		return nil
	}
	te.lastExpiry = time.Now()
	txn := tbl.NewTransaction()
	if err := txn.ExpireSnapshots(table.WithOlderThan(te.settings.SnapshotRetention), table.WithRetainLast(1)); err != nil {
		return err
	}
	_, err := txn.Commit(ctx)
	return err
}

// recordError notes a topic's failure in its export state (keeping what
// it last committed) and in the metadata of its export group's offset of
// partition 0 (keeping the offset), for floe topic describe.
func (e *Exporter) recordError(ctx context.Context, f metadata.Fence, t metadata.Topic, te *topicExport, cause error) {
	e.log.Warn("export failed", "topic", t.Name, "err", cause)
	now := time.Now().UTC()
	st, _, err := e.store.ExportStateOf(ctx, t.ID)
	if err != nil {
		return
	}
	st.Topic = t.Name
	st.Error, st.ErrorAt = cause.Error(), now
	if st.Offsets == nil {
		st.Offsets = map[int32]int64{}
	}
	if err := e.store.PutExportState(ctx, f, t.ID, st); err != nil {
		return
	}
	md := te.groupedMeta
	offset, ok := te.grouped[0]
	if !ok {
		// Not written by this exporter yet: what the group holds, else
		// what the export state says the table holds.
		offs, _, err := e.store.FetchOffsetsOf(ctx, metadata.ExportGroup(t.Name), map[metadata.TopicPartition]bool{{Topic: t.Name, Partition: 0}: true})
		if err != nil {
			return
		}
		offset = st.Offsets[0]
		for _, o := range offs {
			if o.TopicID == t.ID {
				offset = o.Offset
				if o.Metadata != nil {
					_ = json.Unmarshal([]byte(*o.Metadata), &md)
				}
			}
		}
	}
	if md.Table == "" && te.settings.Table != nil {
		md.Table = strings.Join(te.settings.Table, ".")
	}
	md.Error, md.ErrorAt = cause.Error(), &now
	if err := e.store.PutExportOffsets(ctx, f, t, map[int32]int64{0: offset}, md, e.cfg.EtcdMaxTxnOps); err == nil {
		te.errored = true
	}
}
