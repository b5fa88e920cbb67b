package fault

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/kafkatest"
)

// The workload: idempotent acks=all producers writing keyed records with
// unique IDs, a consumer group reading them, and a sampler of the group's
// committed offsets. Everything they see goes into a recorder, which
// becomes the History the checker judges.

const (
	topic      = "fault"
	partitions = 6
	group      = "fault-group"
)

// recorder collects the history while the workload runs.
type recorder struct {
	mu       sync.Mutex
	sent     map[string]Sent
	acks     []Ack
	failed   map[string]error
	consumed []Record
	commits  map[int32][]int64

	// Produce errors the clients saw and retried (from their logs), and
	// records they gave up on, by message.
	clientErrs   map[string]int
	failedErrs   map[string]int
	nonRetriable []string
	// The prober's answers by error (or "ok"), and per fault window.
	probes map[string]int

	ackCount atomic.Int64
	errCount atomic.Int64 // produce errors of either kind
}

func newRecorder() *recorder {
	return &recorder{
		sent: map[string]Sent{}, failed: map[string]error{}, commits: map[int32][]int64{},
		clientErrs: map[string]int{}, failedErrs: map[string]int{}, probes: map[string]int{},
	}
}

func (r *recorder) send(s Sent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sent[s.ID] = s
}

func (r *recorder) ack(a Ack) {
	r.mu.Lock()
	r.acks = append(r.acks, a)
	r.mu.Unlock()
	r.ackCount.Add(1)
}

func (r *recorder) fail(id string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failed[id] = err
	r.failedErrs[shortErr(err)]++
	r.errCount.Add(1)
	if !retriable(err) {
		r.nonRetriable = append(r.nonRetriable, fmt.Sprintf("record %s failed: %v", id, err))
	}
}

// probed records one answer the prober got; fail judges whether an
// error was retriable.
func (r *recorder) probed(answer string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.probes[answer]++
}

// probeCounts returns the prober's answers so far.
func (r *recorder) probeCounts() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.probes)
}

func (r *recorder) consume(rec Record) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.consumed = append(r.consumed, rec)
}

// commitSample records the group's committed offsets, keeping only
// changes.
func (r *recorder) commitSample(p int32, offset int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.commits[p]
	if len(s) == 0 || s[len(s)-1] != offset {
		r.commits[p] = append(s, offset)
	}
}

func (r *recorder) history() *History {
	r.mu.Lock()
	defer r.mu.Unlock()
	return &History{
		Sent:     r.sent,
		Acks:     slices.Clone(r.acks),
		Failed:   r.failed,
		Consumed: slices.Clone(r.consumed),
		Commits:  r.commits,
	}
}

// errSummary is the produce errors seen, most frequent first.
func (r *recorder) errSummary() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	type kv struct {
		k string
		n int
	}
	var all []kv
	for k, n := range r.clientErrs {
		all = append(all, kv{"retried: " + k, n})
	}
	for k, n := range r.failedErrs {
		all = append(all, kv{"gave up: " + k, n})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].n > all[j].n || all[i].n == all[j].n && all[i].k < all[j].k })
	var b strings.Builder
	for i, e := range all {
		if i == 12 {
			fmt.Fprintf(&b, "\n  ... %d more", len(all)-i)
			break
		}
		fmt.Fprintf(&b, "\n  %6d  %s", e.n, e.k)
	}
	return b.String()
}

// shortErr is an error message without the parts that make every
// occurrence unique (object keys, offsets).
func shortErr(err error) string {
	msg := err.Error()
	var ke *kerr.Error
	if errors.As(err, &ke) {
		msg = ke.Message
		if errors.Is(err, kgo.ErrRecordTimeout) {
			msg = "record timed out, last error " + ke.Message
		}
	}
	if len(msg) > 120 {
		msg = msg[:120] + "..."
	}
	return msg
}

// retriable reports whether a produce error is one a client may retry:
// Kafka's retriable codes, timeouts, and lost connections.
func retriable(err error) bool {
	var ke *kerr.Error
	switch {
	case errors.Is(err, kgo.ErrRecordTimeout), errors.Is(err, kgo.ErrRecordRetries),
		errors.Is(err, kgo.ErrClientClosed), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		kgo.IsRetryableBrokerErr(err): // the connection died; a new one may work
		return true
	case errors.As(err, &ke):
		return ke.Retriable
	}
	var ne net.Error
	return errors.As(err, &ne)
}

// clientLogger takes the franz-go clients' log lines about failed produce
// batches: the errors producers saw and retried.
type clientLogger struct{ r *recorder }

func (l clientLogger) Level() kgo.LogLevel { return kgo.LogLevelInfo }

func (l clientLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	var err error
	retry := true
	for i := 0; i+1 < len(keyvals); i += 2 {
		switch keyvals[i] {
		case "err":
			err, _ = keyvals[i+1].(error)
		case "err_is_retryable":
			retry, _ = keyvals[i+1].(bool)
		}
	}
	if err == nil {
		return
	}
	switch {
	case msg == "batch in a produce request failed",
		msg == "produce request failed, triggering metadata update",
		msg == "produce request failed with a retryable error, retrying without a metadata update",
		strings.HasPrefix(msg, "batch errored with"):
	default:
		return
	}
	l.r.mu.Lock()
	defer l.r.mu.Unlock()
	l.r.clientErrs[shortErr(err)]++
	l.r.errCount.Add(1)
	// OUT_OF_ORDER_SEQUENCE_NUMBER after an earlier batch of the same
	// producer failed is how Kafka itself answers; the client starts a
	// new epoch and resends. Anything else not retriable is a finding.
	if !retry && !retriable(err) && !errors.Is(err, kerr.OutOfOrderSequenceNumber) {
		l.r.nonRetriable = append(l.r.nonRetriable, fmt.Sprintf("%s: %v", msg, err))
	}
}

func baseOpts(seeds []string) []kgo.Opt {
	return []kgo.Opt{
		kgo.SeedBrokers(seeds...),
		kgo.MetadataMinAge(250 * time.Millisecond),
		kgo.MetadataMaxAge(5 * time.Second),
		kgo.DialTimeout(3 * time.Second),
		kgo.RetryTimeout(60 * time.Second),
	}
}

// produce runs one producer until ctx ends, at about rate records a
// second, then waits up to a minute for what it sent to resolve.
func produce(ctx context.Context, seeds []string, rec *recorder, id, rate int) error {
	cl, err := kgo.NewClient(append(baseOpts(seeds),
		kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordDeliveryTimeout(8*time.Second),
		kgo.ProducerLinger(5*time.Millisecond),
		kgo.WithLogger(clientLogger{rec}),
	)...)
	if err != nil {
		return err
	}
	defer cl.Close()
	padding := strings.Repeat("x", 64+id*16)
	var seq int64
	paced(ctx, rate, func(done func()) {
		rid := fmt.Sprintf("p%d-%d", id, seq)
		r := &kgo.Record{
			Key:   fmt.Appendf(nil, "k%d-%d", id, seq%13),
			Value: []byte(rid + " " + padding),
		}
		rec.send(Sent{ID: rid, Producer: id, Seq: seq, At: time.Now()})
		seq++
		cl.Produce(context.Background(), r, func(r *kgo.Record, err error) {
			done()
			if err != nil {
				rec.fail(rid, err)
				return
			}
			rec.ack(Ack{ID: rid, Partition: r.Partition, Offset: r.Offset, At: time.Now(), ProducerID: r.ProducerID, ProducerEpoch: r.ProducerEpoch})
		})
	})
	fctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := cl.Flush(fctx); err != nil {
		return fmt.Errorf("producer %d: flushing at the end: %w", id, err)
	}
	return nil
}

// paced calls send about rate times a second until ctx ends, with at
// most 256 records unresolved (what waits in the client during an
// outage): send gets done to call when its record resolves.
func paced(ctx context.Context, rate int, send func(done func())) {
	const tick = 20 * time.Millisecond
	perTick := max(1, rate*int(tick)/int(time.Second))
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
	inflight := make(chan struct{}, 256)
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		for range perTick {
			select {
			case inflight <- struct{}{}:
			case <-ctx.Done():
				return
			}
			send(func() { <-inflight })
		}
	}
}

// consume runs one member of the group until ctx ends.
func consume(ctx context.Context, seeds []string, rec *recorder, member int) error {
	cl, err := kgo.NewClient(append(baseOpts(seeds),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(500*time.Millisecond),
		kgo.AutoCommitInterval(time.Second),
		kgo.ClientID(fmt.Sprintf("fault-consumer-%d", member)),
	)...)
	if err != nil {
		return err
	}
	defer cl.Close()
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil
		}
		fs.EachRecord(func(r *kgo.Record) {
			rec.consume(Record{Partition: r.Partition, Offset: r.Offset, ID: payloadID(r.Value)})
		})
	}
}

// sampleCommits reads the group's committed offsets every interval until
// ctx ends.
func sampleCommits(ctx context.Context, seeds []string, rec *recorder, interval time.Duration) error {
	cl, err := kgo.NewClient(baseOpts(seeds)...)
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	t := time.NewTicker(interval)
	defer t.Stop()
	seen := map[int32]bool{}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		resp, err := adm.FetchOffsets(rctx, group)
		cancel()
		if err != nil {
			continue // the coordinator is moving or etcd is down: no sample
		}
		for p := range int32(partitions) {
			o, ok := resp.Lookup(topic, p)
			switch {
			case ok && o.Err == nil:
				rec.commitSample(p, o.At)
				seen[p] = true
			case !ok && seen[p]:
				// Had a committed offset, now has none: that went
				// backwards too.
				rec.commitSample(p, -1)
			}
		}
	}
}

// readAll reads every partition from its log start to its high
// watermark.
func readAll(seeds []string, h *History) error {
	cl, err := kgo.NewClient(baseOpts(seeds)...)
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return fmt.Errorf("listing start offsets: %w", err)
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return fmt.Errorf("listing end offsets: %w", err)
	}
	h.Start, h.End, h.Log = map[int32]int64{}, map[int32]int64{}, map[int32][]Record{}
	from := map[int32]kgo.Offset{}
	pending := 0
	for p := range int32(partitions) {
		s, _ := starts.Lookup(topic, p)
		e, _ := ends.Lookup(topic, p)
		h.Start[p], h.End[p] = s.Offset, e.Offset
		from[p] = kgo.NewOffset().At(s.Offset)
		if e.Offset > s.Offset {
			pending++
		}
	}
	rd, err := kgo.NewClient(append(baseOpts(seeds),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: from}),
		kgo.FetchMaxWait(200*time.Millisecond),
	)...)
	if err != nil {
		return err
	}
	defer rd.Close()
	done := map[int32]bool{}
	var lastErr error
	for pending > 0 {
		fs := rd.PollFetches(ctx)
		if ctx.Err() != nil {
			return fmt.Errorf("reading the log: %d partitions not read to their end (last fetch error: %v)", pending, lastErr)
		}
		fs.EachError(func(_ string, p int32, err error) { lastErr = fmt.Errorf("partition %d: %w", p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset >= h.End[r.Partition] {
				return
			}
			h.Log[r.Partition] = append(h.Log[r.Partition], Record{Partition: r.Partition, Offset: r.Offset, ID: payloadID(r.Value)})
			if r.Offset == h.End[r.Partition]-1 && !done[r.Partition] {
				done[r.Partition] = true
				pending--
			}
		})
	}
	return nil
}

// probeProducer is the Sent.Producer of the prober's records.
const probeProducer = 100

// probe sends one raw produce request (acks=all, not idempotent, never
// retried) every interval, round robin over the partitions, and records
// the answer's error code: what producers hear from the agents, which the
// franz-go producers retry without telling. Its records are part of the
// history like any other.
func probe(ctx context.Context, seeds []string, rec *recorder, interval time.Duration) error {
	cl, err := kgo.NewClient(append(baseOpts(seeds), kgo.RequestRetries(0))...)
	if err != nil {
		return err
	}
	defer cl.Close()
	// kgo sends the request at the newest version the agent serves, which
	// names the topic by ID.
	var topicID [16]byte
	for {
		mctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		md, err := kadm.NewClient(cl).Metadata(mctx, topic)
		cancel()
		if td, ok := md.Topics[topic]; err == nil && ok && td.Err == nil {
			topicID = td.ID
			break
		}
		if ctx.Err() != nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for seq := int64(0); ; seq++ {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		id := fmt.Sprintf("p%d-%d", probeProducer, seq)
		p := int32(seq % partitions)
		req := kmsg.NewPtrProduceRequest()
		req.Version = 9
		req.Acks = -1
		req.TimeoutMillis = 10_000
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = topic
		rt.TopicID = topicID
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition = p
		rp.Records = rawBatch([]byte(id + " probe"))
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		rec.send(Sent{ID: id, Producer: probeProducer, Seq: seq, At: time.Now()})
		// Not from ctx: the last request gets its answer after the run.
		rctx, cancel := context.WithTimeout(context.Background(), 25*time.Second)
		resp, err := req.RequestWith(rctx, cl)
		cancel()
		if err != nil {
			rec.probed("no answer: " + shortErr(err))
			rec.fail(id, err)
			continue
		}
		if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
			return fmt.Errorf("probe: a produce response without the partition asked for: %+v", resp)
		}
		r := resp.Topics[0].Partitions[0]
		if r.ErrorCode != 0 {
			ke := kerr.ErrorForCode(r.ErrorCode)
			rec.probed(ke.Error())
			rec.fail(id, ke)
			continue
		}
		rec.probed("ok")
		rec.ack(Ack{ID: id, Partition: p, Offset: r.BaseOffset, At: time.Now(), ProducerID: -1, ProducerEpoch: -1})
	}
}

// rawBatch is one RecordBatch v2 holding value, without a producer ID.
func rawBatch(value []byte) []byte {
	return kafkatest.RecordBatch(kafkatest.NoProducer, time.Now(), string(value))
}
