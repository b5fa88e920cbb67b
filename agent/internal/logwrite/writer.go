package logwrite

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"

	"github.com/floe-io/floe/metadata"
	"github.com/floe-io/floe/segments"
)

// Config tunes how produced batches become segment objects. Zero values
// take the defaults noted (SetDefaults).
type Config struct {
	// SegmentTargetBytes is the size of the segment objects a flush
	// becomes, and seals the open flush once it holds this many bytes
	// and its partitions average at least minExtentBytes each. Default
	// 8 MiB.
	SegmentTargetBytes int
	// FlushMaxBytes seals the open flush once it holds this many bytes.
	// A flush over many partitions, whose extents would be small at
	// SegmentTargetBytes, keeps filling up to it (or to FlushInterval or
	// MaxCommitBytes), and is cut into objects of about
	// SegmentTargetBytes, each holding a range of its partitions, which
	// are uploaded in parallel and committed together. Default 4 ×
	// SegmentTargetBytes; at most a quarter of MaxBufferBytes is used.
	FlushMaxBytes int
	// FlushInterval seals the open flush when its oldest batch is this
	// old. Default 250ms.
	FlushInterval time.Duration
	// MaxBufferBytes bounds the bytes held in flushes that are open,
	// uploading or committing. Producers beyond it wait. Default 256 MiB.
	MaxBufferBytes int64
	// Compression compresses runs of uncompressed client batches. The
	// zero value is CodecNone; floe's --segment-compression flag defaults
	// to zstd.
	Compression segments.Codec
	// MaxUploads bounds concurrent object PUTs. Default 4.
	MaxUploads int
	// UploadTimeout bounds one flush's PUT, retries included. Default 10s.
	UploadTimeout time.Duration
	// CommitTimeout bounds one flush's etcd commit. Default 10s.
	CommitTimeout time.Duration
	// MaxCommitDelay fails a flush instead of committing it when its
	// object was written longer ago than this (etcd slow or down for a
	// long time). Keep it below the compactor's --gc-grace: agents publish
	// it in their registration and the compactor warns about those above
	// (their late commits are refused at the object's doom mark or the
	// collector's horizon, so nothing acknowledged is lost, but producers
	// see errors). Default 4m.
	MaxCommitDelay time.Duration
	// MaxCommitBytes seals the open flush once the index its commit
	// writes to etcd (extents, idempotent batches) would reach this many
	// bytes, so a flush of many small batches never needs a commit larger
	// than etcd accepts. Default: half of the agent's
	// EtcdMaxRequestBytes.
	MaxCommitBytes int
}

// SetDefaults fills in the defaults of fields left zero.
func (c *Config) SetDefaults() {
	if c.SegmentTargetBytes == 0 {
		c.SegmentTargetBytes = 8 << 20
	}
	if c.FlushMaxBytes == 0 {
		c.FlushMaxBytes = 4 * c.SegmentTargetBytes
	}
	if c.FlushInterval == 0 {
		c.FlushInterval = 250 * time.Millisecond
	}
	if c.MaxBufferBytes == 0 {
		c.MaxBufferBytes = 256 << 20
	}
	if c.MaxUploads == 0 {
		c.MaxUploads = 4
	}
	if c.UploadTimeout == 0 {
		c.UploadTimeout = 10 * time.Second
	}
	if c.CommitTimeout == 0 {
		c.CommitTimeout = 10 * time.Second
	}
	if c.MaxCommitDelay == 0 {
		c.MaxCommitDelay = 4 * time.Minute
	}
	if c.MaxCommitBytes == 0 {
		c.MaxCommitBytes = metadata.DefaultMaxRequestBytes / 2
	}
}

// RegisterFlags adds the write path's flags, with the defaults a zero
// Config takes; --segment-compression defaults to zstd.
func (c *Config) RegisterFlags(fs *pflag.FlagSet) {
	var d Config
	d.SetDefaults()
	fs.IntVar(&c.SegmentTargetBytes, "segment-target-bytes", d.SegmentTargetBytes, "size of segment objects: seal a flush once it holds this many bytes, unless its partitions' extents would be small")
	fs.IntVar(&c.FlushMaxBytes, "flush-max-bytes", 0, "seal a flush over many partitions once it holds this many bytes, cut into objects of --segment-target-bytes (0: 4 × --segment-target-bytes)")
	fs.DurationVar(&c.FlushInterval, "flush-interval", d.FlushInterval, "seal a segment object when its oldest batch is this old; the floor of produce latency")
	fs.Int64Var(&c.MaxBufferBytes, "max-buffer-bytes", d.MaxBufferBytes, "most bytes held in segments not yet committed; producers beyond it wait")
	c.Compression = segments.CodecZstd
	fs.Var(&c.Compression, "segment-compression", "compression of uncompressed client batches in segment objects: zstd, s2 or none")
	fs.IntVar(&c.MaxUploads, "max-uploads", d.MaxUploads, "segment object PUTs in flight at once")
	fs.DurationVar(&c.MaxCommitDelay, "max-commit-delay", d.MaxCommitDelay, "fail a flush rather than commit it this long after its object was written (etcd slow or down); keep it below the compactor's --gc-grace (floe dev: half of its 1m grace)")
}

// minExtentBytes is the average size of a flush's extents below which a
// flush of SegmentTargetBytes is not sealed yet (FlushMaxBytes). Every
// extent costs its partition an index entry in etcd, an update of its high
// watermark and, for every reader, a lookup and a place in a fetch
// response, whatever its size: at 4096 partitions, a flush of 8 MiB has
// extents of 2 KiB, and those costs outweighed the bytes'.
const minExtentBytes = 32 << 10

// Estimated bytes of a commit's log entries: per partition of a flush
// (its extent and high watermark) and per idempotent batch (its producer
// delta). Generous, so a flush sealed by them always fits.
const (
	commitBytesPerPartition = 64
	commitBytesPerIdemBatch = 24
)

// Validate checks the configuration once defaults are set.
func (c *Config) Validate() error {
	switch {
	case c.SegmentTargetBytes < 1<<10:
		return errors.New("segment target bytes must be at least 1 KiB")
	case c.FlushInterval < time.Millisecond:
		return errors.New("flush interval must be at least 1ms")
	case c.FlushMaxBytes < c.SegmentTargetBytes:
		return fmt.Errorf("flush max bytes (%d) must be at least the segment target (%d)", c.FlushMaxBytes, c.SegmentTargetBytes)
	case c.MaxBufferBytes < int64(c.SegmentTargetBytes):
		return fmt.Errorf("max buffer bytes (%d) must be at least the segment target (%d)", c.MaxBufferBytes, c.SegmentTargetBytes)
	case c.MaxUploads < 1:
		return errors.New("max uploads must be at least 1")
	case c.MaxCommitDelay < time.Second:
		return fmt.Errorf("max commit delay %v: must be at least 1s", c.MaxCommitDelay)
	}
	return nil
}

// Writer batches produced RecordBatches from every partition and client
// into segment objects. A batch travels:
//
//	Append → open flush → sealed (size or age) → uploaded (PUT, several
//	in parallel) → committed (etcd, one flush at a time, in seal order)
//	→ Results resolved (producers answered)
//
// Commits are serial and in order so each partition's batches keep the
// order they were appended in, which idempotent producers and Kafka's
// ordering guarantee need. Uploads overlap so a slow PUT does not stall
// the pipeline.
//
// Lock order: Writer.mu only; no other lock is taken while holding it.
type Writer struct {
	cfg       Config
	bucket    segments.Bucket
	committer *metadata.Committer
	marks     *metadata.WatermarkWatcher
	log       *slog.Logger
	metrics   *metrics

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	uploads  chan struct{} // semaphore of MaxUploads
	flushMax int64         // FlushMaxBytes, within a quarter of the buffer

	mu     sync.Mutex
	open   *flush
	queue  []*flush // sealed, not yet committed, in seal order
	queued chan struct{}
	held   int64         // bytes in open and queued flushes
	freed  chan struct{} // closed and replaced when held drops
	seq    uint64
	// broken are the idempotent producers (per partition and epoch) whose
	// batch failed, with that batch's base sequence: their later batches
	// are refused until it is retried, so their sequences have no gap.
	broken   map[brokenKey]brokenSeq
	closed   bool
	drained  chan struct{} // closed when the commit loop exits
	sealTime *time.Timer
}

// brokenKey is an idempotent producer's epoch on one partition.
type brokenKey struct {
	topic     uuid.UUID
	partition int32
	producer  int64
	epoch     int16
}

// brokenSeq is the base sequence of a producer's failed batch, and when it
// failed.
type brokenSeq struct {
	seq   int32
	since time.Time
}

// brokenTTL is how long a producer's later batches are refused while its
// failed batch is not retried: well past Kafka clients' delivery timeouts
// (two minutes by default), after which they give up on the batch or bump
// their epoch.
const brokenTTL = 10 * time.Minute

// flush is the batches of one commit: one segment object, or several
// holding ranges of its partitions (FlushMaxBytes).
type flush struct {
	seq      uint64
	builder  *segments.Builder
	parts    []*partAppend // in first-append order
	byKey    map[segments.PartitionKey]*partAppend
	bytes    int64
	index    int // estimated bytes of the commit's log entries
	opened   time.Time
	sealed   time.Time
	uploaded chan struct{}

	// Set by the upload, read after uploaded is closed.
	objects   []flushObject
	putAt     time.Time // when the first PUT started
	uploadErr error     // the first object's that failed
}

// flushObject is one segment object of a flush.
type flushObject struct {
	key     string
	size    int
	extents []segments.Extent
	putAt   time.Time // when its PUT started
	err     error
}

// keys names the flush's objects in a log line.
func (f *flush) keys() string {
	switch len(f.objects) {
	case 0:
		return ""
	case 1:
		return f.objects[0].key
	}
	return fmt.Sprintf("%s and %d more", f.objects[0].key, len(f.objects)-1)
}

// partAppend is one partition's batches in a flush.
type partAppend struct {
	topic     metadata.Topic
	partition int32
	batches   []pendingBatch
}

type pendingBatch struct {
	meta metadata.BatchMeta
	res  *Result
}

// Result is the outcome of one Append: one partition's batches of one
// request. Its fields are set once Done is closed and never change after;
// read them only then.
type Result struct {
	done      chan struct{}
	remaining int // batches not yet resolved; guarded by Writer.mu

	// BaseOffset is the offset of the first batch committed (a retried
	// idempotent batch's original offset), -1 when none was.
	BaseOffset int64
	// LogStart is the partition's log start offset as this agent follows
	// it, -1 when no batch was committed.
	LogStart int64
	// Err is the first failure among its batches: ErrUpload, ErrCommit,
	// ErrClosed or one of metadata's commit errors (BatchOutcome.Err).
	// Nil when every batch was committed.
	Err error
}

// Done is closed when every batch of the Append is committed or has
// failed.
func (r *Result) Done() <-chan struct{} { return r.done }

// New starts a Writer; Close stops it. ctx is the parent of every upload
// and commit: ending it before Close stops the Writer abruptly, failing
// the flushes queued with ErrClosed. cfg must have its defaults set and
// be valid (Config.SetDefaults, Config.Validate). committer commits the
// flushes; marks answers each committed partition's log start. The
// floe_produce_* metrics are registered with reg (none when nil).
func New(ctx context.Context, cfg Config, bucket segments.Bucket, committer *metadata.Committer, marks *metadata.WatermarkWatcher, log *slog.Logger, reg prometheus.Registerer) *Writer {
	w := &Writer{
		cfg:       cfg,
		bucket:    bucket,
		committer: committer,
		marks:     marks,
		log:       log,
		metrics:   newMetrics(reg),
		uploads:   make(chan struct{}, cfg.MaxUploads),
		flushMax:  min(int64(cfg.FlushMaxBytes), max(int64(cfg.SegmentTargetBytes), cfg.MaxBufferBytes/4)),
		queued:    make(chan struct{}, 1),
		broken:    map[brokenKey]brokenSeq{},
		freed:     make(chan struct{}),
		drained:   make(chan struct{}),
	}
	w.ctx, w.cancel = context.WithCancel(ctx)
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		defer close(w.drained)
		w.commitLoop()
	}()
	return w
}

// Append adds one partition's batches to the open flush, waiting while
// the buffer is full (MaxBufferBytes). Once admitted it returns at once;
// the Result resolves when the flush is committed or fails. The batches
// must be valid RecordBatches (segments.ParseBatches) and are not copied:
// the caller must not modify them afterwards. An Append that cannot be
// admitted returns ErrClosed, or ctx's error when ctx ends first.
func (w *Writer) Append(ctx context.Context, t metadata.Topic, partition int32, batches []segments.Batch) (*Result, error) {
	return w.AppendTxn(ctx, t, partition, batches, 0)
}

// AppendTxn is Append for the batches of a transaction (or its marker)
// that started at txnStarted (Unix ms, its coordinator's record): the
// commit refuses them if a marker already ended that transaction on the
// partition (metadata.ErrTxnEnded).
func (w *Writer) AppendTxn(ctx context.Context, t metadata.Topic, partition int32, batches []segments.Batch, txnStarted int64) (*Result, error) {
	var size int64
	markers := make([]metadata.Marker, len(batches))
	for i, b := range batches {
		size += int64(len(b.Raw))
		if b.Control() {
			typ, err := b.ControlType()
			switch {
			case err != nil:
				return nil, err
			case typ == segments.ControlAbort:
				markers[i] = metadata.MarkerAbort
			case typ == segments.ControlCommit:
				markers[i] = metadata.MarkerCommit
			default:
				return nil, fmt.Errorf("%w: control record type %d", segments.ErrInvalidBatch, typ)
			}
		}
	}
	w.mu.Lock()
	for {
		if w.closed {
			w.mu.Unlock()
			return nil, ErrClosed
		}
		// A request larger than the whole buffer still goes through when
		// nothing else is held, so it cannot wait forever.
		if w.held+size <= w.cfg.MaxBufferBytes || w.held == 0 {
			break
		}
		freed := w.freed
		w.mu.Unlock()
		w.metrics.backpressure.Inc()
		select {
		case <-freed:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-w.ctx.Done():
			return nil, ErrClosed
		}
		w.mu.Lock()
	}
	defer w.mu.Unlock()

	f := w.open
	if f == nil {
		w.seq++
		f = &flush{
			seq:      w.seq,
			builder:  segments.NewBuilder(w.cfg.Compression),
			byKey:    map[segments.PartitionKey]*partAppend{},
			opened:   time.Now(),
			uploaded: make(chan struct{}),
		}
		w.open = f
		seq := f.seq
		w.sealTime = time.AfterFunc(w.cfg.FlushInterval, func() { w.sealIf(seq) })
	}
	key := segments.PartitionKey{TopicID: t.ID, Partition: partition}
	pa := f.byKey[key]
	if pa == nil {
		pa = &partAppend{topic: t, partition: partition}
		f.byKey[key] = pa
		f.parts = append(f.parts, pa)
		f.index += commitBytesPerPartition
	}
	res := &Result{done: make(chan struct{}), remaining: len(batches), BaseOffset: -1, LogStart: -1}
	for i, b := range batches {
		ord := f.builder.Append(key, b)
		minTS, maxTS := b.BaseTimestamp, b.MaxTimestamp
		if b.LogAppendTime() {
			minTS = b.MaxTimestamp
		}
		pa.batches = append(pa.batches, pendingBatch{
			meta: metadata.BatchMeta{
				Ordinal:       int32(ord),
				Records:       b.RecordCount,
				ProducerID:    b.ProducerID,
				ProducerEpoch: b.ProducerEpoch,
				BaseSequence:  b.BaseSequence,
				MinTimestamp:  minTS,
				MaxTimestamp:  maxTS,
				Transactional: b.Transactional(),
				Marker:        markers[i],
				TxnStarted:    txnStarted,
			},
			res: res,
		})
		if b.ProducerID >= 0 {
			f.index += commitBytesPerIdemBatch
		}
	}
	f.bytes += size
	w.held += size
	w.metrics.buffered.Set(float64(w.held))
	if w.full(f) {
		w.sealLocked()
	}
	return res, nil
}

// full reports whether flush f is to be sealed for its size: at the
// segment target when its extents are large enough, else at flushMax, or
// when its commit's index reaches MaxCommitBytes.
func (w *Writer) full(f *flush) bool {
	switch {
	case f.bytes >= w.flushMax || f.index >= w.cfg.MaxCommitBytes:
		return true
	case f.bytes < int64(w.cfg.SegmentTargetBytes):
		return false
	}
	return f.bytes >= int64(len(f.parts))*minExtentBytes
}

// sealIf seals the open flush if it is still flush seq (its timer fired).
func (w *Writer) sealIf(seq uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.open != nil && w.open.seq == seq {
		w.sealLocked()
	}
}

// FlushNow seals the open flush at once rather than at the next interval
// (shutdown, tests).
func (w *Writer) FlushNow() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.open != nil {
		w.sealLocked()
	}
}

// sealLocked closes the open flush to new batches, starts its upload and
// queues it for commit.
func (w *Writer) sealLocked() {
	f := w.open
	w.open = nil
	if w.sealTime != nil {
		w.sealTime.Stop()
		w.sealTime = nil
	}
	f.sealed = time.Now()
	w.metrics.flushAge.Observe(f.sealed.Sub(f.opened).Seconds())
	w.queue = append(w.queue, f)
	select {
	case w.queued <- struct{}{}:
	default:
	}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		w.upload(f)
	}()
}

// upload cuts the flush into segment objects (Builder.Split), encodes
// them and PUTs them in parallel, each within the upload limit and
// retried within the upload timeout. The flush fails if any object does.
func (w *Writer) upload(f *flush) {
	defer close(f.uploaded)
	builders := f.builder.Split(w.cfg.SegmentTargetBytes)
	f.builder = nil
	f.objects = make([]flushObject, len(builders))
	var wg sync.WaitGroup
	for i, b := range builders {
		wg.Go(func() { w.uploadObject(&f.objects[i], b) })
	}
	wg.Wait()
	for _, o := range f.objects {
		if o.err != nil {
			f.uploadErr = o.err
			return
		}
		if f.putAt.IsZero() || o.putAt.Before(f.putAt) {
			f.putAt = o.putAt
		}
	}
}

// uploadObject encodes b into segment object o and PUTs it.
func (w *Writer) uploadObject(o *flushObject, b *segments.Builder) {
	select {
	case w.uploads <- struct{}{}:
		defer func() { <-w.uploads }()
	case <-w.ctx.Done():
		o.err = ErrClosed
		return
	}
	// The object stays in the builders' pooled buffer until its PUT is
	// done (not copied out, not left for the garbage collector).
	pooled, extents, err := b.FinishObject()
	if err != nil {
		// Batches were validated on append; this is a bug, not bad input.
		o.err = fmt.Errorf("encoding segment: %w", err)
		w.log.Error("encoding segment failed", "err", err)
		return
	}
	defer pooled.Release()
	obj := pooled.Bytes
	o.extents = extents
	o.size = len(obj)
	o.putAt = time.Now()
	o.key = segments.NewObjectKey(o.putAt, segments.KindFlush)

	ctx, cancel := context.WithTimeout(w.ctx, w.cfg.UploadTimeout)
	defer cancel()
	backoff := 50 * time.Millisecond
	for attempt := 1; ; attempt++ {
		start := time.Now()
		err = w.bucket.Put(ctx, o.key, obj)
		w.metrics.putLatency.Observe(time.Since(start).Seconds())
		if err == nil {
			w.metrics.flushBytes.Observe(float64(len(obj)))
			return
		}
		w.metrics.putErrors.Inc()
		if ctx.Err() != nil {
			break
		}
		w.log.Warn("segment upload failed; retrying", "object", o.key, "attempt", attempt, "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
	o.err = fmt.Errorf("%w: %s: %v", ErrUpload, o.key, err)
	w.log.Error("segment upload failed; failing its produce requests", "object", o.key, "err", err)
}

// commitLoop commits sealed flushes one at a time, in seal order.
func (w *Writer) commitLoop() {
	for {
		w.mu.Lock()
		if len(w.queue) == 0 {
			if w.closed && w.open == nil {
				w.mu.Unlock()
				return
			}
			w.mu.Unlock()
			select {
			case <-w.queued:
				continue
			case <-w.ctx.Done():
				w.failQueued(ErrClosed)
				return
			}
		}
		f := w.queue[0]
		w.mu.Unlock()

		select {
		case <-f.uploaded:
		case <-w.ctx.Done():
			w.failQueued(ErrClosed)
			return
		}
		w.commit(f)

		w.mu.Lock()
		w.queue = w.queue[1:]
		w.held -= f.bytes
		w.metrics.buffered.Set(float64(w.held))
		close(w.freed)
		w.freed = make(chan struct{})
		w.mu.Unlock()
	}
}

// commit commits one uploaded flush and resolves its batches.
func (w *Writer) commit(f *flush) {
	if f.uploadErr != nil {
		w.resolveAll(f, f.uploadErr)
		return
	}
	if age := time.Since(f.putAt); age > w.cfg.MaxCommitDelay {
		// The compactor may already count this object as garbage:
		// committing it now could acknowledge records whose object is
		// about to be deleted. Fail the flush; producers retry.
		w.log.Error("segment waited too long for its commit; failing its produce requests", "object", f.keys(), "waited", age.Round(time.Second))
		w.resolveAll(f, fmt.Errorf("%w: %s waited %s for etcd", ErrCommit, f.keys(), age.Round(time.Second)))
		return
	}
	type placed struct {
		object *flushObject
		extent segments.Extent
	}
	extentOf := make(map[segments.PartitionKey]placed, len(f.parts))
	for i := range f.objects {
		o := &f.objects[i]
		for _, e := range o.extents {
			extentOf[e.Key] = placed{o, e}
		}
	}
	appends := make([]metadata.Append, len(f.parts))
	w.mu.Lock()
	w.sweepBrokenLocked()
	for i, pa := range f.parts {
		at := extentOf[segments.PartitionKey{TopicID: pa.topic.ID, Partition: pa.partition}]
		metas := make([]metadata.BatchMeta, len(pa.batches))
		for j, b := range pa.batches {
			metas[j] = b.meta
			metas[j].Refuse = w.refusalLocked(pa, b.meta)
		}
		appends[i] = metadata.Append{Topic: pa.topic, Partition: pa.partition, Object: at.object.key, ObjectSize: int64(at.object.size), Offset: at.extent.Offset, Length: at.extent.Length, Batches: metas}
	}
	w.mu.Unlock()
	ctx, cancel := context.WithTimeout(w.ctx, w.cfg.CommitTimeout)
	start := time.Now()
	results, err := w.committer.Commit(ctx, appends)
	cancel()
	w.metrics.commitLatency.Observe(time.Since(start).Seconds())
	if err != nil {
		w.metrics.commitErrors.Inc()
		w.log.Error("segment commit failed; failing its uncommitted produce requests", "object", f.keys(), "err", err)
		for _, pa := range f.parts {
			w.committer.Forget(metadata.PartitionID{Topic: pa.topic.ID, Partition: pa.partition})
		}
	}
	w.metrics.flushLatency.Observe(time.Since(f.sealed).Seconds())
	w.mu.Lock()
	defer w.mu.Unlock()
	for i, pa := range f.parts {
		var r metadata.CommitResult
		if i < len(results) {
			r = results[i]
		}
		// The log start answered is the one this agent follows (the
		// commit itself never moves it).
		marks, _ := w.marks.Cached(pa.topic, pa.partition)
		for j, b := range pa.batches {
			var out metadata.BatchOutcome
			switch {
			case j < len(r.Batches):
				out = r.Batches[j]
			case err != nil:
				out = metadata.BatchOutcome{BaseOffset: -1, Err: fmt.Errorf("%w: %v", ErrCommit, err)}
			default:
				out = metadata.BatchOutcome{BaseOffset: -1, Err: ErrCommit}
			}
			logStart := int64(-1)
			if out.Err == nil {
				logStart = marks.Start
				w.mendLocked(pa, b.meta) // the partition knows the producer now
			} else {
				w.breakLocked(pa, b.meta)
			}
			resolveLocked(b.res, out, logStart)
		}
	}
}

// resolveLocked records one batch's outcome in its request's result and
// completes the result when it was the last batch.
func resolveLocked(res *Result, out metadata.BatchOutcome, logStart int64) {
	if out.Err != nil && res.Err == nil {
		res.Err = out.Err
	}
	if res.BaseOffset < 0 && out.Err == nil {
		res.BaseOffset = out.BaseOffset
	}
	if logStart >= 0 {
		res.LogStart = logStart
	}
	res.remaining--
	if res.remaining == 0 {
		close(res.done)
	}
}

func (w *Writer) resolveAll(f *flush, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, pa := range f.parts {
		for _, b := range pa.batches {
			w.breakLocked(pa, b.meta)
			resolveLocked(b.res, metadata.BatchOutcome{BaseOffset: -1, Err: err}, -1)
		}
	}
}

// breakLocked records that an idempotent producer's batch failed: its
// later batches on the partition are refused until this one is retried
// (refusalLocked). The first failure is the one kept.
func (w *Writer) breakLocked(pa *partAppend, b metadata.BatchMeta) {
	if b.ProducerID < 0 || b.Marker != metadata.MarkerNone {
		return
	}
	k := brokenKey{pa.topic.ID, pa.partition, b.ProducerID, b.ProducerEpoch}
	if _, ok := w.broken[k]; !ok {
		w.broken[k] = brokenSeq{seq: b.BaseSequence, since: time.Now()}
	}
}

// mendLocked forgets a producer's failed batch once one of its batches is
// committed: the partition knows the producer from then on, and checks its
// sequences itself.
func (w *Writer) mendLocked(pa *partAppend, b metadata.BatchMeta) {
	if b.ProducerID >= 0 {
		delete(w.broken, brokenKey{pa.topic.ID, pa.partition, b.ProducerID, b.ProducerEpoch})
	}
}

// refusalLocked returns the error to refuse an idempotent batch with when
// an earlier batch of its producer failed and has not been retried: a
// client retries the refused batches in order after the failed one, as it
// does for a Kafka broker's, so no gap opens in its sequences. The retry
// of the failed batch itself ends the refusals, and so does any commit of
// the producer's (mendLocked); the commit applies a refusal only to a
// producer the partition does not know (metadata.BatchMeta.Refuse).
func (w *Writer) refusalLocked(pa *partAppend, b metadata.BatchMeta) error {
	if b.ProducerID < 0 || b.Marker != metadata.MarkerNone {
		return nil
	}
	k := brokenKey{pa.topic.ID, pa.partition, b.ProducerID, b.ProducerEpoch}
	broken, ok := w.broken[k]
	switch {
	case !ok:
		return nil
	case b.BaseSequence == broken.seq:
		delete(w.broken, k)
		return nil
	}
	return fmt.Errorf("%w: producer %d's batch from sequence %d on %s/%d failed; retry from it", ErrCommit, b.ProducerID, broken.seq, pa.topic.Name, pa.partition)
}

// sweepBrokenLocked forgets failed batches never retried within brokenTTL.
func (w *Writer) sweepBrokenLocked() {
	for k, b := range w.broken {
		if time.Since(b.since) > brokenTTL {
			delete(w.broken, k)
		}
	}
}

// failQueued fails every flush that will not be committed (forced
// shutdown).
func (w *Writer) failQueued(err error) {
	w.mu.Lock()
	queue := w.queue
	w.queue = nil
	open := w.open
	w.open = nil
	w.mu.Unlock()
	if open != nil {
		queue = append(queue, open)
	}
	for _, f := range queue {
		w.resolveAll(f, err)
	}
}

// Close stops accepting batches (appends waiting for room fail with
// ErrClosed), seals the open flush and waits until everything queued is
// committed or ctx ends, after which remaining flushes fail. It returns
// ctx's error, wrapped, when ctx ended first. Every goroutine of the
// Writer has stopped when it returns.
func (w *Writer) Close(ctx context.Context) error {
	w.mu.Lock()
	w.closed = true
	if w.open != nil {
		w.sealLocked()
	}
	close(w.freed) // wake appenders so they see closed
	w.freed = make(chan struct{})
	select {
	case w.queued <- struct{}{}:
	default:
	}
	w.mu.Unlock()

	var err error
	select {
	case <-w.drained:
	case <-ctx.Done():
		err = fmt.Errorf("flushing buffered batches: %w", ctx.Err())
	}
	w.cancel()
	w.wg.Wait()
	return err
}

// CountProduced counts bytes and records accepted from producers
// (floe_produce_bytes_total, floe_produce_records_total). Append does not
// count them itself, since not every append comes from a producer.
func (w *Writer) CountProduced(bytes, records int64) {
	w.metrics.produceBytes.Add(float64(bytes))
	w.metrics.produceRecs.Add(float64(records))
}
