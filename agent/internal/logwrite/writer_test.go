package logwrite_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/floe-io/floe/agent/internal/logwrite"
	"github.com/floe-io/floe/internal/testenv"
	"github.com/floe-io/floe/metadata"
	"github.com/floe-io/floe/segments"
)

// hang bounds every wait for the writer, so a bug fails the test instead
// of hanging it. It is not a latency expectation.
const hang = time.Minute

// env is what a Writer runs on in an agent: a metadata store, a bucket (the
// localstack MinIO when configured, else a directory), a watermark watcher
// and a committer feeding it.
type env struct {
	t         *testing.T
	store     *metadata.Store
	bucket    segments.Bucket
	marks     *metadata.WatermarkWatcher
	committer *metadata.Committer
	reg       *prometheus.Registry
}

func newEnv(t *testing.T) *env {
	t.Helper()
	cluster := testenv.Cluster(t)
	store, err := metadata.NewStore(testenv.Etcd(t), cluster)
	if err != nil {
		t.Fatal(err)
	}
	bucket := testenv.Bucket(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := store.EnsureCluster(ctx); err != nil {
		t.Fatal(err)
	}

	wctx, stop := context.WithCancel(context.Background())
	marks, err := store.StartWatermarkWatcher(wctx, testenv.Logger(t), metadata.WatermarkHooks{})
	if err != nil {
		stop()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stop()
		marks.Wait()
	})
	return &env{
		t:         t,
		store:     store,
		bucket:    bucket,
		marks:     marks,
		committer: store.NewCommitter(metadata.CommitConfig{OnCommit: marks.Observe}),
		reg:       prometheus.NewRegistry(),
	}
}

// writer starts a Writer closed when the test ends (before the watcher
// stops).
func (e *env) writer(cfg logwrite.Config) *logwrite.Writer {
	e.t.Helper()
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		e.t.Fatal(err)
	}
	w := logwrite.New(context.Background(), cfg, e.bucket, e.committer, e.marks, testenv.Logger(e.t), e.reg)
	e.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), hang)
		defer cancel()
		w.Close(ctx)
	})
	return w
}

func (e *env) topic(name string, partitions int32) metadata.Topic {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	t, err := e.store.CreateTopic(ctx, metadata.TopicSpec{Name: name, Partitions: partitions, ReplicationFactor: 1})
	if err != nil {
		e.t.Fatal(err)
	}
	return t
}

// metric is the value of the counter or gauge name in the env's registry.
func (e *env) metric(name string) float64 {
	e.t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		e.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name || len(mf.GetMetric()) == 0 {
			continue
		}
		m := mf.GetMetric()[0]
		if m.GetCounter() != nil {
			return m.GetCounter().GetValue()
		}
		return m.GetGauge().GetValue()
	}
	e.t.Fatalf("no metric %s", name)
	return 0
}

// waitBackpressure returns once n appends have waited for room in the
// buffer.
func (e *env) waitBackpressure(n float64) {
	e.t.Helper()
	deadline := time.Now().Add(hang)
	for e.metric("floe_produce_backpressure_waits_total") < n {
		if time.Now().After(deadline) {
			e.t.Fatalf("no append waited for room within %s", hang)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// batch is one uncompressed RecordBatch v2 holding values, as a client
// without an idempotent producer sends it.
func batch(t *testing.T, values ...string) segments.Batch {
	t.Helper()
	var body []byte
	for i, v := range values {
		body = segments.AppendRecord(body, 0, int32(i), nil, []byte(v))
	}
	raw := segments.AppendBatch(nil, segments.BatchHeader{
		BaseTimestamp: 1_700_000_000_000, MaxTimestamp: 1_700_000_000_000,
		ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1,
		LastOffsetDelta: int32(len(values) - 1), RecordCount: int32(len(values)),
	}, body)
	b, err := segments.ParseBatch(raw)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func wait(t *testing.T, r *logwrite.Result) {
	t.Helper()
	select {
	case <-r.Done():
	case <-time.After(hang):
		t.Fatalf("append not resolved within %s", hang)
	}
}

func isDone(r *logwrite.Result) bool {
	select {
	case <-r.Done():
		return true
	default:
		return false
	}
}

// Appends from concurrent callers to two partitions become one segment
// object with one extent per partition, and each partition's batches get
// consecutive offsets from 0, each caller's in the order it appended them.
// The object holds the batches as appended, at those offsets.
func TestConcurrentAppendsShareOneObject(t *testing.T) {
	e := newEnv(t)
	top := e.topic("shared", 2)
	// Only FlushNow seals: everything lands in one flush.
	w := e.writer(logwrite.Config{FlushInterval: time.Hour, SegmentTargetBytes: 64 << 20, MaxBufferBytes: 64 << 20, Compression: segments.CodecZstd})

	type appended struct {
		caller  int
		part    int32
		batches []segments.Batch
		records int64
		res     *logwrite.Result
	}
	const callers, perCaller = 8, 10
	byCaller := make([][]appended, callers)
	var wg sync.WaitGroup
	for c := range callers {
		wg.Go(func() {
			for i := range perCaller {
				a := appended{caller: c, part: int32(c % 2)}
				// One or two batches of one to three records.
				for j := range 1 + i%2 {
					var values []string
					for k := range 1 + (i+j)%3 {
						values = append(values, fmt.Sprintf("caller %d append %d batch %d record %d", c, i, j, k))
					}
					a.batches = append(a.batches, batch(t, values...))
					a.records += int64(len(values))
				}
				res, err := w.Append(context.Background(), top, a.part, a.batches)
				if err != nil {
					t.Errorf("caller %d append %d: %v", c, i, err)
					return
				}
				a.res = res
				byCaller[c] = append(byCaller[c], a)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	w.FlushNow()

	byPart := map[int32][]appended{}
	for _, as := range byCaller {
		prev := int64(-1)
		for _, a := range as {
			wait(t, a.res)
			if a.res.Err != nil {
				t.Fatalf("caller %d: %v", a.caller, a.res.Err)
			}
			if a.res.BaseOffset <= prev {
				t.Fatalf("caller %d: an append got offset %d after one at %d", a.caller, a.res.BaseOffset, prev)
			}
			if a.res.LogStart != 0 {
				t.Fatalf("caller %d: log start %d, want 0", a.caller, a.res.LogStart)
			}
			prev = a.res.BaseOffset
			byPart[a.part] = append(byPart[a.part], a)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), hang)
	defer cancel()
	var objects []string
	if err := e.bucket.List(ctx, "", func(o segments.ObjectInfo) error {
		objects = append(objects, o.Key)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(objects) != 1 {
		t.Fatalf("the flush wrote objects %v, want one", objects)
	}

	for p := range int32(2) {
		as := byPart[p]
		sort.Slice(as, func(i, j int) bool { return as[i].res.BaseOffset < as[j].res.BaseOffset })
		// The batches as the log should hold them, with their offsets.
		var want [][]byte
		next := int64(0)
		for _, a := range as {
			if a.res.BaseOffset != next {
				t.Fatalf("partition %d: an append of caller %d got offset %d, want %d (offsets must be consecutive)", p, a.caller, a.res.BaseOffset, next)
			}
			for _, b := range a.batches {
				raw := bytes.Clone(b.Raw)
				segments.SetBaseOffset(raw, next)
				want = append(want, raw)
				next += int64(b.RecordCount)
			}
		}

		ent, batches := e.onlyEntry(ctx, top, p)
		if ent.Object != objects[0] || ent.First != 0 || ent.Last != next-1 {
			t.Fatalf("partition %d: entry %s offsets %d-%d, want %s offsets 0-%d", p, ent.Object, ent.First, ent.Last, objects[0], next-1)
		}
		var got [][]byte
		for _, b := range batches {
			got = append(got, b.Raw)
		}
		if len(got) != len(want) {
			t.Fatalf("partition %d: the object holds %d batches, want %d", p, len(got), len(want))
		}
		for i := range want {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("partition %d: batch %d in the object differs from the one appended at its offset", p, i)
			}
		}
	}
}

// bufferConfig holds one flush of up to 1 MiB, sealed only by FlushNow or
// Close, so two 600 KiB appends cannot both be held.
var bufferConfig = logwrite.Config{FlushInterval: time.Hour, SegmentTargetBytes: 1 << 20, MaxBufferBytes: 1 << 20}

func bigBatch(t *testing.T, name string) segments.Batch {
	t.Helper()
	return batch(t, name+string(bytes.Repeat([]byte{'v'}, 600<<10)))
}

type appendOutcome struct {
	res *logwrite.Result
	err error
}

// An append beyond MaxBufferBytes waits until a commit frees room: it is
// admitted only after the flush holding the earlier batch has committed.
func TestAppendBeyondBufferWaitsForCommit(t *testing.T) {
	e := newEnv(t)
	top := e.topic("full", 1)
	w := e.writer(bufferConfig)

	firstBatch := bigBatch(t, "first")
	first, err := w.Append(context.Background(), top, 0, []segments.Batch{firstBatch})
	if err != nil {
		t.Fatal(err)
	}
	second := bigBatch(t, "second")
	admitted := make(chan appendOutcome, 1)
	go func() {
		res, err := w.Append(context.Background(), top, 0, []segments.Batch{second})
		admitted <- appendOutcome{res, err}
	}()
	e.waitBackpressure(1)
	// Nothing seals the first flush yet, so nothing can free room.
	select {
	case out := <-admitted:
		t.Fatalf("an append beyond the buffer was admitted while the buffer was full (err %v)", out.err)
	default:
	}
	if held := e.metric("floe_produce_buffered_bytes"); held != float64(len(firstBatch.Raw)) {
		t.Fatalf("buffered bytes %v, want the first batch's %d", held, len(firstBatch.Raw))
	}

	w.FlushNow()
	var out appendOutcome
	select {
	case out = <-admitted:
	case <-time.After(hang):
		t.Fatalf("the waiting append was not admitted within %s of the flush", hang)
	}
	if out.err != nil {
		t.Fatal(out.err)
	}
	if !isDone(first) {
		t.Fatal("the waiting append was admitted before the flush holding the first batch committed")
	}
	if first.Err != nil || first.BaseOffset != 0 {
		t.Fatalf("first append: offset %d, err %v; want 0, nil", first.BaseOffset, first.Err)
	}
	w.FlushNow()
	wait(t, out.res)
	if out.res.Err != nil || out.res.BaseOffset != 1 {
		t.Fatalf("second append: offset %d, err %v; want 1, nil", out.res.BaseOffset, out.res.Err)
	}
}

// Close turns away the appends waiting for room and any later one with
// ErrClosed, commits what it had admitted before it returns, and leaves no
// goroutine of the Writer behind.
func TestCloseTurnsAwayWaitingAppendsAndCommitsAdmitted(t *testing.T) {
	e := newEnv(t)
	top := e.topic("closing", 1)
	w := e.writer(bufferConfig)

	admittedRes, err := w.Append(context.Background(), top, 0, []segments.Batch{bigBatch(t, "admitted")})
	if err != nil {
		t.Fatal(err)
	}
	waitingBatch := bigBatch(t, "waiting")
	waiting := make(chan error, 1)
	go func() {
		_, err := w.Append(context.Background(), top, 0, []segments.Batch{waitingBatch})
		waiting <- err
	}()
	e.waitBackpressure(1)

	ctx, cancel := context.WithTimeout(context.Background(), hang)
	defer cancel()
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-waiting:
		if !errors.Is(err, logwrite.ErrClosed) {
			t.Fatalf("append waiting for room when the writer closed: err %v, want ErrClosed", err)
		}
	case <-time.After(hang):
		t.Fatalf("append waiting for room still waiting %s after Close returned", hang)
	}
	if _, err := w.Append(context.Background(), top, 0, []segments.Batch{batch(t, "late")}); !errors.Is(err, logwrite.ErrClosed) {
		t.Fatalf("append after Close: err %v, want ErrClosed", err)
	}
	if !isDone(admittedRes) {
		t.Fatal("Close returned before the admitted append was resolved")
	}
	if admittedRes.Err != nil || admittedRes.BaseOffset != 0 {
		t.Fatalf("admitted append: offset %d, err %v; want 0, nil", admittedRes.BaseOffset, admittedRes.Err)
	}
	st, err := e.store.GetPartitionState(ctx, top, 0)
	if err != nil {
		t.Fatal(err)
	}
	if st.Next != 1 {
		t.Fatalf("high watermark %d after Close, want 1 (only the admitted record)", st.Next)
	}
	// A goroutine that has just called wg.Done may not have exited yet.
	deadline := time.Now().Add(hang)
	for left := writerGoroutines(); len(left) > 0; left = writerGoroutines() {
		if time.Now().After(deadline) {
			t.Fatalf("goroutines of the Writer left after Close:\n\n%s", strings.Join(left, "\n\n"))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// writerGoroutines returns the stacks of goroutines running logwrite's
// code (the env's etcd watches and HTTP connections are not the
// Writer's, so goleak's whole-process view does not fit here).
func writerGoroutines() []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "floe/agent/internal/logwrite.") {
			out = append(out, g)
		}
	}
	return out
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*logwrite.Config)
		ok   bool
	}{
		{"defaults", func(*logwrite.Config) {}, true},
		{"segment target below 1 KiB", func(c *logwrite.Config) { c.SegmentTargetBytes = 1000 }, false},
		{"flush interval below 1ms", func(c *logwrite.Config) { c.FlushInterval = time.Millisecond / 2 }, false},
		{"buffer smaller than a segment", func(c *logwrite.Config) { c.MaxBufferBytes = int64(c.SegmentTargetBytes) - 1 }, false},
		{"buffer of one segment", func(c *logwrite.Config) { c.MaxBufferBytes = int64(c.SegmentTargetBytes) }, true},
		{"no uploads", func(c *logwrite.Config) { c.MaxUploads = -1 }, false},
		{"flush max below the segment target", func(c *logwrite.Config) { c.FlushMaxBytes = c.SegmentTargetBytes - 1 }, false},
		{"flush max of one segment", func(c *logwrite.Config) { c.FlushMaxBytes = c.SegmentTargetBytes }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c logwrite.Config
			c.SetDefaults()
			tc.edit(&c)
			if err := c.Validate(); (err == nil) != tc.ok {
				t.Fatalf("Validate: %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

// SetDefaults fills only what is unset.
func TestConfigSetDefaultsKeepsSetFields(t *testing.T) {
	c := logwrite.Config{SegmentTargetBytes: 2 << 20, FlushInterval: time.Second, MaxCommitBytes: 1000}
	c.SetDefaults()
	if c.SegmentTargetBytes != 2<<20 || c.FlushInterval != time.Second || c.MaxCommitBytes != 1000 {
		t.Fatalf("SetDefaults changed set fields: %+v", c)
	}
	if c.MaxBufferBytes == 0 || c.MaxUploads == 0 || c.UploadTimeout == 0 || c.CommitTimeout == 0 || c.MaxCommitDelay == 0 {
		t.Fatalf("SetDefaults left fields zero: %+v", c)
	}
}

// idemBatch is a one-record batch of an idempotent producer at seq.
func idemBatch(t *testing.T, producer int64, seq int32, value string) segments.Batch {
	t.Helper()
	raw := segments.AppendBatch(nil, segments.BatchHeader{
		BaseTimestamp: 1_700_000_000_000, MaxTimestamp: 1_700_000_000_000,
		ProducerID: producer, ProducerEpoch: 0, BaseSequence: seq,
		LastOffsetDelta: 0, RecordCount: 1,
	}, segments.AppendRecord(nil, 0, 0, nil, []byte(value)))
	b, err := segments.ParseBatch(raw)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// appendFlushed appends producer's batch at seq to partition 0 of tp,
// flushes, and waits for its result.
func appendFlushed(t *testing.T, w *logwrite.Writer, tp metadata.Topic, producer int64, seq int32) *logwrite.Result {
	t.Helper()
	r, err := w.Append(context.Background(), tp, 0, []segments.Batch{idemBatch(t, producer, seq, fmt.Sprint("seq ", seq))})
	if err != nil {
		t.Fatal(err)
	}
	w.FlushNow()
	wait(t, r)
	return r
}

// failingPuts fails every PUT while failing is set.
type failingPuts struct {
	segments.Bucket
	failing atomic.Bool
}

func (b *failingPuts) Put(ctx context.Context, key string, data []byte) error {
	if b.failing.Load() {
		return errors.New("the bucket is unavailable")
	}
	return b.Bucket.Put(ctx, key, data)
}

// When a flush fails outright, a later flush does not commit the same
// idempotent producer's later batches: they are refused (retriably) until
// the failed batch is retried, so the producer's sequences never have a
// gap (which would make its retry of the first batch out of order while
// later ones were acknowledged).
func TestFailedFlushHoldsBackItsProducersLaterBatches(t *testing.T) {
	e := newEnv(t)
	bucket := &failingPuts{Bucket: e.bucket}
	e.bucket = bucket
	w := e.writer(logwrite.Config{FlushInterval: time.Hour, UploadTimeout: 200 * time.Millisecond})
	tp := e.topic("gapless", 1)
	appendOne := func(seq int32) *logwrite.Result { return appendFlushed(t, w, tp, 1000, seq) }

	bucket.failing.Store(true)
	if r := appendOne(0); !errors.Is(r.Err, logwrite.ErrUpload) {
		t.Fatalf("the first batch, whose PUT fails: %v, want ErrUpload", r.Err)
	}
	bucket.failing.Store(false)
	if r := appendOne(1); r.Err == nil {
		t.Fatalf("the second batch committed at offset %d while the first had failed", r.BaseOffset)
	}
	// The client retries in order: the first, then the second.
	if r := appendOne(0); r.Err != nil || r.BaseOffset != 0 {
		t.Fatalf("the first batch retried: offset %d, %v; want 0", r.BaseOffset, r.Err)
	}
	if r := appendOne(1); r.Err != nil || r.BaseOffset != 1 {
		t.Fatalf("the second batch retried: offset %d, %v; want 1", r.BaseOffset, r.Err)
	}
}

// When the failed batch is retried through another agent, the partition
// knows the producer from then on and this agent's refusals end: its
// later batches are checked as usual, not held back until the retry
// reaches this agent (which may never happen).
func TestFailedBatchRetriedElsewhere(t *testing.T) {
	e := newEnv(t)
	bucket := &failingPuts{Bucket: e.bucket}
	e.bucket = bucket
	here := e.writer(logwrite.Config{FlushInterval: time.Hour, UploadTimeout: 200 * time.Millisecond})
	// Another agent: its own bucket client, committer and metrics.
	e.bucket = bucket.Bucket
	e.committer = e.store.NewCommitter(metadata.CommitConfig{OnCommit: e.marks.Observe})
	e.reg = prometheus.NewRegistry()
	elsewhere := e.writer(logwrite.Config{FlushInterval: time.Hour})
	tp := e.topic("moved", 1)
	appendOne := func(w *logwrite.Writer, seq int32) *logwrite.Result { return appendFlushed(t, w, tp, 2000, seq) }
	bucket.failing.Store(true)
	if r := appendOne(here, 0); r.Err == nil {
		t.Fatal("the first batch committed though its PUT failed")
	}
	bucket.failing.Store(false)
	if r := appendOne(elsewhere, 0); r.Err != nil || r.BaseOffset != 0 {
		t.Fatalf("the first batch retried through another agent: offset %d, %v", r.BaseOffset, r.Err)
	}
	if r := appendOne(here, 1); r.Err != nil || r.BaseOffset != 1 {
		t.Fatalf("the second batch, after the first was committed elsewhere: offset %d, %v; want 1", r.BaseOffset, r.Err)
	}
}

// onlyEntry returns partition p's one index entry and the batches its
// extent holds, read back from the bucket with their offsets.
func (e *env) onlyEntry(ctx context.Context, top metadata.Topic, p int32) (metadata.IndexEntry, []segments.AssignedBatch) {
	e.t.Helper()
	entries, err := e.store.PartitionEntries(ctx, top, p, 0, 0)
	if err != nil {
		e.t.Fatal(err)
	}
	if len(entries) != 1 {
		e.t.Fatalf("partition %d has %d index entries, want 1", p, len(entries))
	}
	ent := entries[0]
	rc, err := e.bucket.GetRange(ctx, ent.Object, ent.Offset, ent.Length)
	if err != nil {
		e.t.Fatal(err)
	}
	data, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		e.t.Fatal(err)
	}
	var got []segments.AssignedBatch
	if _, _, err := segments.ReadExtent(data, ent.First, ent.Skip, nil, func(b segments.AssignedBatch) error {
		b.Raw = bytes.Clone(b.Raw)
		got = append(got, b)
		return nil
	}); err != nil {
		e.t.Fatal(err)
	}
	return ent, got
}

// listObjects returns the bucket's objects by key.
func (e *env) listObjects() map[string]int64 {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hang)
	defer cancel()
	objects := map[string]int64{}
	if err := e.bucket.List(ctx, "", func(o segments.ObjectInfo) error {
		objects[o.Key] = o.Size
		return nil
	}); err != nil {
		e.t.Fatal(err)
	}
	return objects
}

// A flush over few partitions is sealed at the segment target and is one
// object. One over many partitions, whose extents would be small there,
// fills up to FlushMaxBytes and is cut into objects of about the target,
// each holding a run of partitions; every partition still has one extent,
// and reads back at its offsets.
func TestWideFlushIsCutIntoObjects(t *testing.T) {
	e := newEnv(t)
	const target = 64 << 10
	w := e.writer(logwrite.Config{FlushInterval: time.Hour, SegmentTargetBytes: target, MaxBufferBytes: 16 << 20, Compression: segments.CodecNone})
	narrow := e.topic("narrow", 2)
	wide := e.topic("wide", 256)
	value := func(n int, tag string) string { return tag + strings.Repeat("v", n) }

	// Few partitions: 20 KiB batches, sealed by the fourth (80 KiB).
	var first []*logwrite.Result
	for i := range 4 {
		r, err := w.Append(context.Background(), narrow, int32(i%2), []segments.Batch{batch(t, value(20<<10, fmt.Sprint(i)))})
		if err != nil {
			t.Fatal(err)
		}
		first = append(first, r)
	}
	for _, r := range first {
		wait(t, r)
		if r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	if got := e.listObjects(); len(got) != 1 {
		t.Fatalf("a flush over 2 partitions wrote %d objects, want 1", len(got))
	}

	// Many partitions: 1 KiB batches, one per partition, sealed at 4 ×
	// the target (after some 240 of them), not at the target.
	res := make([]*logwrite.Result, 256)
	for p := range int32(256) {
		r, err := w.Append(context.Background(), wide, p, []segments.Batch{batch(t, value(1<<10, fmt.Sprint("partition ", p)))})
		if err != nil {
			t.Fatal(err)
		}
		res[p] = r
	}
	// The first append's flush is committed, its objects PUT before.
	wait(t, res[0])
	sealed := e.listObjects()
	if len(sealed)-1 != 4 {
		t.Fatalf("the wide flush wrote %d objects, want 4", len(sealed)-1)
	}
	w.FlushNow()
	for p, r := range res {
		wait(t, r)
		if r.Err != nil || r.BaseOffset != 0 {
			t.Fatalf("partition %d: offset %d, %v", p, r.BaseOffset, r.Err)
		}
	}

	objects := e.listObjects()
	ctx, cancel := context.WithTimeout(context.Background(), hang)
	defer cancel()
	parts := map[string][]int32{}
	for p := range int32(256) {
		ent, got := e.onlyEntry(ctx, wide, p)
		if size, ok := objects[ent.Object]; !ok || size != ent.ObjectSize {
			t.Fatalf("partition %d: entry names object %s of %d bytes; the bucket has it: %v, %d bytes", p, ent.Object, ent.ObjectSize, ok, size)
		}
		parts[ent.Object] = append(parts[ent.Object], p)
		want := value(1<<10, fmt.Sprint("partition ", p))
		if len(got) != 1 || got[0].Base != 0 || !bytes.Contains(got[0].Raw, []byte(want)) {
			t.Fatalf("partition %d: the extent holds %d batches, not the one appended at offset 0", p, len(got))
		}
	}
	if len(parts) != 5 {
		t.Fatalf("the wide topic's partitions are in %d objects, want 5", len(parts))
	}
	inSealed := 0
	for key, ps := range parts {
		if _, ok := sealed[key]; ok {
			inSealed += len(ps)
		}
	}
	if inSealed < 200 || inSealed == 256 {
		t.Fatalf("the flush sealed before FlushNow held %d of the 256 partitions; want it sealed at 4 × the target", inSealed)
	}
	for key, ps := range parts {
		// Runs of partitions: each object holds consecutive ones.
		if int(ps[len(ps)-1]-ps[0])+1 != len(ps) {
			t.Fatalf("object %s holds partitions %v: not a run", key, ps)
		}
		if size := objects[key]; len(ps) > 32 && (size < target*3/4 || size > target*3/2+8<<10) {
			t.Fatalf("object %s of the wide flush holds %d bytes for a target of %d", key, size, target)
		}
	}
}
