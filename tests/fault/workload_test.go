package fault

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
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
// unique IDs, consumer groups reading them, and a sampler of the groups'
// committed offsets. Everything they see goes into a recorder, which
// becomes the History the checker judges.

const (
	topic      = "fault"
	partitions = 6
)

// groupSpec is one consumer group of the workload.
type groupSpec struct {
	id       string
	protocol string // the members' group protocol: classic, or consumer (KIP-848)
}

// consumerGroups read the topic side by side, membersPerGroup members
// each, one group per protocol; every check applies to both. The consumer-protocol group's
// members ask for the uniform server assignor (a cooperative-sticky
// balancer with kgo.ServerSideBalancer); the classic group's balance
// cooperative-sticky themselves.
var consumerGroups = []groupSpec{
	{id: "fault-group", protocol: "classic"},
	{id: "fault-group-kip848", protocol: "consumer"},
}

const membersPerGroup = 2

func (g groupSpec) String() string { return fmt.Sprintf("group %s (%s protocol)", g.id, g.protocol) }

// groupRecord is what one group did.
type groupRecord struct {
	consumed []Record
	commits  map[int32][]int64
	// Partition changes its members saw, counted per change: partitions
	// assigned, and lost (a member fenced or removed). Revocations are not
	// counted: a member's OnPartitionsRevoked would replace the commit
	// autocommit makes on revoke.
	assigned, lost int
}

// recorder collects the history while the workload runs.
type recorder struct {
	mu     sync.Mutex
	sent   map[string]Sent
	acks   []Ack
	failed map[string]error
	groups map[string]*groupRecord // by group ID

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
	r := &recorder{
		sent: map[string]Sent{}, failed: map[string]error{}, groups: map[string]*groupRecord{},
		clientErrs: map[string]int{}, failedErrs: map[string]int{}, probes: map[string]int{},
	}
	for _, g := range consumerGroups {
		r.groups[g.id] = &groupRecord{commits: map[int32][]int64{}}
	}
	return r
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

func (r *recorder) consume(group string, recs []Record) {
	r.mu.Lock()
	defer r.mu.Unlock()
	g := r.groups[group]
	g.consumed = append(g.consumed, recs...)
}

// partitionsChanged counts a change of a group member's partitions:
// assigned or lost.
func (r *recorder) partitionsChanged(group string, lost bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	g := r.groups[group]
	if lost {
		g.lost++
	} else {
		g.assigned++
	}
}

// groupProgress is how many records each group has consumed and how many
// partition changes its members have seen, in consumerGroups' order.
func (r *recorder) groupProgress() (consumed, changes []int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, spec := range consumerGroups {
		g := r.groups[spec.id]
		consumed = append(consumed, len(g.consumed))
		changes = append(changes, g.assigned+g.lost)
	}
	return consumed, changes
}

// commitSample records a group's committed offset of p, keeping only
// changes.
func (r *recorder) commitSample(group string, p int32, offset int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	g := r.groups[group]
	s := g.commits[p]
	if len(s) == 0 || s[len(s)-1] != offset {
		g.commits[p] = append(s, offset)
	}
}

func (r *recorder) history() *History {
	r.mu.Lock()
	defer r.mu.Unlock()
	h := &History{
		Sent:   r.sent,
		Acks:   slices.Clone(r.acks),
		Failed: r.failed,
	}
	for _, spec := range consumerGroups {
		g := r.groups[spec.id]
		commits := make(map[int32][]int64, len(g.commits))
		for p, s := range g.commits {
			commits[p] = slices.Clone(s)
		}
		h.Groups = append(h.Groups, &GroupHistory{Group: spec.id, Protocol: spec.protocol, Consumed: slices.Clone(g.consumed), Commits: commits})
	}
	return h
}

// groupSummary is the partition changes each group's members saw, for
// the log.
func (r *recorder) groupSummary() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var parts []string
	for _, spec := range consumerGroups {
		g := r.groups[spec.id]
		parts = append(parts, fmt.Sprintf("%s: its members were assigned partitions %d times and lost them %d times", spec, g.assigned, g.lost))
	}
	return strings.Join(parts, "; ")
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

// clientID is a group member's client ID: the consumer-protocol group's
// members are in zone a, so their agents forward to coordinators in zone b
// (agents 0 and 1 are in zone a, agent 2 in zone b).
func clientID(g groupSpec, name string) string {
	if g.protocol == "consumer" {
		return name + "," + zoneA
	}
	return name
}

// zoneA, in a client ID, places a client in zone a.
const zoneA = "floe_az=a"

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

// consume runs member n of group g until ctx ends, committing what it
// read every second (autocommit) and as it leaves. Its client logs to
// logTo.
func consume(ctx context.Context, seeds []string, rec *recorder, g groupSpec, n int, logTo io.Writer) error {
	name := memberName(g, n)
	changed := func(lost bool) func(context.Context, *kgo.Client, map[string][]int32) {
		return func(context.Context, *kgo.Client, map[string][]int32) { rec.partitionsChanged(g.id, lost) }
	}
	opts := append(baseOpts(seeds),
		kgo.ConsumerGroup(g.id),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(500*time.Millisecond),
		kgo.AutoCommitInterval(time.Second),
		kgo.ClientID(clientID(g, name)),
		kgo.OnPartitionsAssigned(changed(false)),
		kgo.OnPartitionsLost(changed(true)), // as the default, commits nothing
		kgo.WithLogger(kgo.BasicLogger(logTo, kgo.LogLevelInfo, func() string {
			return time.Now().Format("15:04:05.000 ") + name + " "
		})),
	)
	if g.protocol == "consumer" {
		opts = append(opts, kgo.ServerSideBalancer(), kgo.Balancers(kgo.CooperativeStickyBalancer()))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return err
	}
	defer cl.Close()
	for {
		fs := cl.PollFetches(ctx)
		// Record before looking at ctx: what a poll returned counts as
		// read, and Close commits it.
		var recs []Record
		fs.EachRecord(func(r *kgo.Record) {
			recs = append(recs, Record{Partition: r.Partition, Offset: r.Offset, ID: payloadID(r.Value)})
		})
		rec.consume(g.id, recs)
		if ctx.Err() != nil {
			return nil
		}
	}
}

// groupMembers runs the groups' members, membersPerGroup of each, and
// replaces them: a replaced member leaves the group as it closes
// (committing what it read) and a new one joins, owning nothing, so each
// group rebalances (the consumer protocol's revoke-then-assign
// reconciliation, the classic protocol's cooperative rebalance) while the
// fault it is replaced in goes on. Only the test's goroutine calls it, or
// one goroutine it waits for.
type groupMembers struct {
	// start runs member n of g until the returned function is called.
	start func(g groupSpec, n int) context.CancelFunc

	stop    [][]context.CancelFunc // per group, per place: the member there
	names   [][]int                // per group, per place: its member number
	started []int                  // per group: members started so far
}

func (m *groupMembers) startAll() {
	for gi, g := range consumerGroups {
		m.stop = append(m.stop, make([]context.CancelFunc, membersPerGroup))
		m.names = append(m.names, make([]int, membersPerGroup))
		m.started = append(m.started, 0)
		for place := range membersPerGroup {
			m.startAt(gi, g, place)
		}
	}
}

func (m *groupMembers) startAt(gi int, g groupSpec, place int) {
	n := m.started[gi]
	m.started[gi]++
	m.names[gi][place] = n
	m.stop[gi][place] = m.start(g, n)
}

// draw picks the place of the member to replace in each group.
func (m *groupMembers) draw(rng *rand.Rand) []int {
	places := make([]int, len(consumerGroups))
	for gi := range places {
		places[gi] = rng.IntN(membersPerGroup)
	}
	return places
}

// replace replaces the member at places[i] of each group i and says
// which.
func (m *groupMembers) replace(places []int) string {
	var done []string
	for gi, g := range consumerGroups {
		place := places[gi]
		old := m.names[gi][place]
		m.stop[gi][place]()
		m.startAt(gi, g, place)
		done = append(done, fmt.Sprintf("%s replaced by %s", memberName(g, old), memberName(g, m.names[gi][place])))
	}
	return strings.Join(done, ", ")
}

// memberName is member n of g's client ID.
func memberName(g groupSpec, n int) string { return fmt.Sprintf("%s-%d", g.id, n) }

// groupOffsets reads every group's committed offsets of the topic; ok
// says, per group, whether its read succeeded.
func groupOffsets(ctx context.Context, adm *kadm.Client) (offsets []map[int32]int64, ok []bool) {
	for _, g := range consumerGroups {
		rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		resp, err := adm.FetchOffsets(rctx, g.id)
		cancel()
		if err == nil {
			err = resp.Error()
		}
		got := map[int32]int64{}
		if err == nil {
			for p := range int32(partitions) {
				if o, found := resp.Lookup(topic, p); found {
					got[p] = o.At
				}
			}
		}
		offsets, ok = append(offsets, got), append(ok, err == nil)
	}
	return offsets, ok
}

// commitSampler samples the groups' committed offsets into a recorder.
type commitSampler struct {
	adm  *kadm.Client
	rec  *recorder
	seen []map[int32]bool // per group: the partitions that had a committed offset
}

func newCommitSampler(adm *kadm.Client, rec *recorder) *commitSampler {
	s := &commitSampler{adm: adm, rec: rec}
	for range consumerGroups {
		s.seen = append(s.seen, map[int32]bool{})
	}
	return s
}

// sample reads every group's committed offsets once and records those it
// could read; it reports whether it read every group's.
func (s *commitSampler) sample(ctx context.Context) bool {
	offsets, ok := groupOffsets(ctx, s.adm)
	for i, g := range consumerGroups {
		if !ok[i] {
			continue // the coordinator is moving or etcd is down: no sample
		}
		for p := range int32(partitions) {
			o, found := offsets[i][p]
			switch {
			case found:
				s.rec.commitSample(g.id, p, o)
				s.seen[i][p] = true
			case s.seen[i][p]:
				// Had a committed offset, now has none: that went
				// backwards too.
				s.rec.commitSample(g.id, p, -1)
			}
		}
	}
	return !slices.Contains(ok, false)
}

// run samples every interval until ctx ends.
func (s *commitSampler) run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.sample(ctx)
	}
}

// final takes the last sample, once the members have stopped: every
// group's offsets, retried for up to timeout.
func (s *commitSampler) final(timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for !s.sample(ctx) {
		if ctx.Err() != nil {
			return fmt.Errorf("the groups' committed offsets could not all be read for %v after their members stopped", timeout)
		}
		time.Sleep(200 * time.Millisecond)
	}
	return nil
}

// waitCaughtUp waits until every group has committed every partition's
// high watermark, once the producers have stopped, and logs how long each
// took. A group that has not within timeout is an error naming it.
func waitCaughtUp(adm *kadm.Client, timeout time.Duration, logf func(string, ...any)) error {
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	done := make([]bool, len(consumerGroups))
	behind := make([]string, len(consumerGroups))
	for i := range behind {
		behind[i] = "never read"
	}
	for {
		ends, err := adm.ListEndOffsets(ctx, topic)
		if err == nil {
			err = ends.Error()
		}
		if err == nil {
			offsets, ok := groupOffsets(ctx, adm)
			for i, g := range consumerGroups {
				if done[i] || !ok[i] {
					continue
				}
				var lag []string
				for p := range int32(partitions) {
					e, _ := ends.Lookup(topic, p)
					if o, found := offsets[i][p]; !found {
						lag = append(lag, fmt.Sprintf("%d: none of %d", p, e.Offset))
					} else if o < e.Offset {
						lag = append(lag, fmt.Sprintf("%d: %d of %d", p, o, e.Offset))
					}
				}
				if behind[i] = strings.Join(lag, ", "); len(lag) == 0 {
					done[i] = true
					logf("%s has committed the end of every partition (waited %v)", g, time.Since(start).Round(100*time.Millisecond))
				}
			}
		}
		if !slices.Contains(done, false) {
			return nil
		}
		if ctx.Err() != nil {
			var errs []error
			for i, g := range consumerGroups {
				if !done[i] {
					errs = append(errs, fmt.Errorf("%s did not commit the end of every partition within %v (partition: committed of high watermark: %s)", g, timeout, behind[i]))
				}
			}
			return errors.Join(errs...)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// checkProtocols checks, while the members run, that each group is
// served by the protocol it is meant for, with all its members in and
// every partition assigned (retried for up to timeout): a client that fell
// back to the classic protocol must not pass for a consumer-protocol group.
func checkProtocols(adm *kadm.Client, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var errs []error
	for _, g := range consumerGroups {
		for {
			err := describeGroup(ctx, adm, g)
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				errs = append(errs, fmt.Errorf("%s: %w", g, err))
				break
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
	return errors.Join(errs...)
}

// describeGroup checks g as checkProtocols does, once.
func describeGroup(ctx context.Context, adm *kadm.Client, g groupSpec) error {
	var members, assigned int
	if g.protocol == "consumer" {
		ds, err := adm.DescribeConsumerGroups(ctx, g.id)
		if err != nil {
			return fmt.Errorf("ConsumerGroupDescribe: %w", err)
		}
		d := ds[g.id]
		if d.Err != nil {
			return fmt.Errorf("ConsumerGroupDescribe: %w", d.Err)
		}
		if d.AssignorName != "uniform" {
			return fmt.Errorf("ConsumerGroupDescribe: assignor %q, want uniform", d.AssignorName)
		}
		members, assigned = len(d.Members), len(d.AssignedPartitions()[topic])
	} else {
		ds, err := adm.DescribeGroups(ctx, g.id)
		if err != nil {
			return fmt.Errorf("DescribeGroups: %w", err)
		}
		d := ds[g.id]
		if d.Err != nil {
			return fmt.Errorf("DescribeGroups: %w", d.Err)
		}
		if d.ProtocolType != "consumer" {
			return fmt.Errorf("DescribeGroups: protocol type %q, want consumer", d.ProtocolType)
		}
		members, assigned = len(d.Members), len(d.AssignedPartitions()[topic])
	}
	if members != membersPerGroup || assigned != partitions {
		return fmt.Errorf("%d members with %d partitions assigned, want %d with %d", members, assigned, membersPerGroup, partitions)
	}
	return nil
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
