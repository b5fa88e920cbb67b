package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/procfs"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floe-io/floe/internal/kafkaopt"
)

// FleetSize is one fleet phase: Producers idempotent producers writing
// keyed records over all Partitions partitions of a fresh topic.
type FleetSize struct {
	Producers  int   `json:"producers"`
	Partitions int32 `json:"partitions"`
}

func (f FleetSize) String() string { return fmt.Sprintf("%dx%d", f.Producers, f.Partitions) }

// ParseFleetSize reads "NxP" (or "N×P"): N producers over P partitions.
func ParseFleetSize(s string) (FleetSize, error) {
	t := strings.ReplaceAll(strings.ToLower(strings.TrimSpace(s)), "×", "x")
	n, p, ok := strings.Cut(t, "x")
	producers, err1 := strconv.Atoi(n)
	partitions, err2 := strconv.ParseInt(p, 10, 32)
	if !ok || err1 != nil || err2 != nil || producers < 1 || partitions < 1 {
		return FleetSize{}, fmt.Errorf("fleet %q: use PRODUCERSxPARTITIONS, for example 2000x256", s)
	}
	return FleetSize{Producers: producers, Partitions: int32(partitions)}, nil
}

// Fleet clients are many, so each holds little: a few records buffered
// (a producer sends about one record per second), and a delivery timeout
// after which a record counts as failed.
const (
	fleetBufferedRecords = 64
	fleetDeliveryTimeout = 2 * time.Minute
	// fleetStartEvery is the gap between two producers' starts, so their
	// first metadata and producer ID requests do not arrive at once; the
	// starts take at most a third of the phase.
	fleetStartEvery = 10 * time.Millisecond
	// fleetParallel bounds the clients flushed or closed at once.
	fleetParallel = 256
)

// FleetResult is one fleet phase. It passes when every record sent was
// acknowledged and the topic holds exactly the acknowledged records.
type FleetResult struct {
	Producers  int   `json:"producers"`
	Partitions int32 `json:"partitions"`
	// RatePerS is the records per second of all producers together.
	RatePerS int `json:"rate_per_s"`
	// Seconds is how long records were sent; the producers were started
	// one after another over the first RampSeconds of it.
	Seconds     float64 `json:"seconds"`
	RampSeconds float64 `json:"ramp_seconds"`
	// Sent records were given to the clients: Acked were acknowledged,
	// Failed failed for good (after the clients' retries, by error in
	// FailedBy), Unanswered had neither when the clients were closed.
	Sent       int64            `json:"records_sent"`
	Acked      int64            `json:"records_acknowledged"`
	Failed     int64            `json:"records_failed"`
	Unanswered int64            `json:"records_unanswered,omitempty"`
	FailedBy   map[string]int64 `json:"failed_by_error,omitempty"`
	// Retried counts the errors the clients logged and went on from
	// (errored produce responses, failed requests, producer ID loads),
	// by error: what the producers saw without losing records.
	Retried map[string]int64 `json:"retried_errors,omitempty"`
	// Offsets is the sum over the topic's partitions of the latest offset
	// minus the earliest: the records the topic holds.
	Offsets int64   `json:"end_minus_start_offsets"`
	Latency Latency `json:"latency"`
	// Agents are the agents' failure counters over the phase (nil:
	// no metrics).
	Agents *FleetAgents `json:"agents,omitempty"`
	// PeakRSS is the highest RSS of any agent during the phase,
	// MemoryLimit their Go memory limit (0: none).
	PeakRSS     int64 `json:"agent_peak_rss"`
	MemoryLimit int64 `json:"agent_memory_limit,omitempty"`
	// BenchRSS is the bench's own RSS with every client open.
	BenchRSS int64              `json:"bench_rss,omitempty"`
	CPU      map[string]float64 `json:"cpu_cores,omitempty"`
	Passed   bool               `json:"passed"`
	Failures []string           `json:"failures,omitempty"`
}

// FleetAgents are what the agents counted of their commits during a
// fleet phase.
type FleetAgents struct {
	// CommitErrors are flushes whose commit failed
	// (floe_produce_commit_errors_total); TxnsFailed etcd transactions
	// that failed and TxnConflicts those whose compare failed and were
	// retried (floe_etcd_commit_txn_duration_seconds by outcome).
	CommitErrors float64 `json:"commit_errors"`
	TxnsFailed   float64 `json:"commit_txns_failed"`
	TxnConflicts float64 `json:"commit_txn_conflicts"`
	PutErrors    float64 `json:"put_errors"`
	Flushes      float64 `json:"flushes"`
	// LogRead says whether the agents' logs were read; ErrorLines is how
	// many lines they logged at level ERROR during the phase, the first
	// of them in FirstErrors.
	LogRead     bool     `json:"log_read"`
	ErrorLines  int      `json:"error_lines"`
	FirstErrors []string `json:"first_error_lines,omitempty"`
}

// CommitFailures is the commit errors, failed commit transactions and
// error lines in the agents' logs: none is what the fleet wants.
func (a *FleetAgents) CommitFailures() float64 {
	return a.CommitErrors + a.TxnsFailed + float64(a.ErrorLines)
}

// runFleet runs one fleet phase: f.Producers separate clients, started a
// few milliseconds apart, send cfg.FleetRate keyed records per second
// together, round robin, for cfg.FleetDuration; then every record must be
// answered and the topic must hold exactly the acknowledged ones.
func (r *runner) runFleet(ctx context.Context, i int, f FleetSize) error {
	if want := r.cfg.Agent.FlushInterval; r.flush != want {
		r.obs.Logf("restarting the agents with a %s flush interval for the fleet", want)
		if err := r.restart(ctx, want); errors.Is(err, ErrNoRestart) {
			r.noteOnce("fleet: the agents could not be restarted with a %s flush interval; they ran at %s", want, r.flush)
		} else if err != nil {
			return fmt.Errorf("restarting agents: %w", err)
		} else {
			r.flush = want
		}
	}
	topic := r.fleetTopic(i, f)
	if err := r.createTopic(ctx, topic, f.Partitions); err != nil {
		return err
	}
	before := r.scrape(ctx)
	logBefore, logRead := r.agentErrors()
	r.mem.resetWindow()

	d := r.cfg.FleetDuration
	res := &FleetResult{
		Producers: f.Producers, Partitions: f.Partitions, RatePerS: r.cfg.FleetRate,
		RampSeconds: min(d/3, time.Duration(f.Producers)*fleetStartEvery).Seconds(),
	}
	p, end := r.phase("fleet "+f.String(), "records", int64(float64(r.cfg.FleetRate)*d.Seconds()), d)
	cpu := r.cpuNow()
	fl := &fleet{r: r, topic: topic, size: f, prog: p, log: &clientLog{}}
	err := fl.run(ctx, d, time.Duration(res.RampSeconds*float64(time.Second)), res)
	res.CPU = r.cpuSince(cpu)
	end()
	if err != nil {
		return err
	}
	res.Acked, res.Failed = fl.acked.Load(), fl.failed.Load()
	res.Unanswered = res.Sent - res.Acked - res.Failed
	res.FailedBy = fl.failedBy.snapshot()
	res.Retried = fl.log.counts.snapshot()
	res.Latency = fl.latency.Summary()

	start, hw, err := r.endOffsets(ctx, topic)
	if err != nil {
		return err
	}
	for p, e := range hw {
		res.Offsets += e - start[p]
	}
	if after := r.scrape(ctx); before != nil && after != nil {
		delta := func(name string, match ...string) float64 {
			return after.Sum(name, match...) - before.Sum(name, match...)
		}
		res.Agents = &FleetAgents{
			CommitErrors: delta("floe_produce_commit_errors_total"),
			TxnsFailed:   delta("floe_etcd_commit_txn_duration_seconds_count", "outcome", "failed"),
			TxnConflicts: delta("floe_etcd_commit_txn_duration_seconds_count", "outcome", "conflict"),
			PutErrors:    delta("floe_produce_put_errors_total"),
			Flushes:      delta("floe_produce_commit_duration_seconds_count"),
		}
		if logAfter, ok := r.agentErrors(); ok && logRead {
			res.Agents.LogRead = true
			if len(logAfter) >= len(logBefore) {
				lines := logAfter[len(logBefore):]
				res.Agents.ErrorLines = len(lines)
				res.Agents.FirstErrors = lines[:min(len(lines), 5)]
			}
		}
	}
	res.PeakRSS, res.MemoryLimit = r.mem.windowPeak(ctx)
	res.judge()
	r.rep.Fleet = append(r.rep.Fleet, res)
	return nil
}

// judge decides whether the fleet passed: every record acknowledged, and
// the topic holding exactly those.
func (res *FleetResult) judge() {
	res.Failures = nil
	if res.Sent == 0 {
		res.Failures = append(res.Failures, "no record was sent")
	}
	if res.Acked != res.Sent {
		res.Failures = append(res.Failures, fmt.Sprintf("%d of %d records not acknowledged (%d failed, %d unanswered)", res.Sent-res.Acked, res.Sent, res.Failed, res.Unanswered))
	}
	if res.Offsets != res.Acked {
		res.Failures = append(res.Failures, fmt.Sprintf("the topic's end minus start offsets sum to %d, but %d records were acknowledged", res.Offsets, res.Acked))
	}
	res.Passed = len(res.Failures) == 0
}

// agentErrors reads the agents' ERROR lines, when the cluster can.
func (r *runner) agentErrors() ([]string, bool) {
	l, ok := r.cl.(AgentLogs)
	if !ok {
		return nil, false
	}
	lines, err := l.AgentErrors()
	if err != nil {
		r.noteOnce("the agents' logs could not be read: %v", err)
		return nil, false
	}
	return lines, true
}

// fleet is one fleet phase's clients and what they measured. The clients
// share everything a client can share: options, the logger, the promise,
// the record values (cut from the run's payload buffer) and keys.
type fleet struct {
	r     *runner
	topic string
	size  FleetSize
	prog  *Phase
	log   *clientLog

	clients  []*kgo.Client
	acked    atomic.Int64
	failed   atomic.Int64
	failedBy errorCounts
	latency  Histogram
}

// run starts the clients over ramp and sends for d, then waits for every
// record's answer and closes the clients. res gets the records sent,
// how long they were sent, and the bench's RSS.
func (fl *fleet) run(ctx context.Context, d, ramp time.Duration, res *FleetResult) error {
	defer fl.closeAll()
	codec, _ := kafkaopt.Compression(fl.r.cfg.Compression)
	shared := []kgo.Opt{
		kgo.DefaultProduceTopic(fl.topic),
		kgo.RequiredAcks(kgo.AllISRAcks()), // and idempotence, kgo's default
		kgo.ProducerBatchCompression(codec),
		kgo.MaxBufferedRecords(fleetBufferedRecords),
		kgo.RecordDeliveryTimeout(fleetDeliveryTimeout),
		kgo.WithLogger(fl.log),
	}
	promise := func(rec *kgo.Record, err error) {
		if err != nil {
			fl.failed.Add(1)
			fl.failedBy.add(errorName(err))
			return
		}
		fl.latency.Record(time.Since(rec.Timestamp))
		fl.acked.Add(1)
		fl.prog.Add(1)
	}
	add := func() error {
		opts := append(fl.r.clientOpts(fmt.Sprintf("fleet-%d", len(fl.clients)+1)), shared...)
		cl, err := kgo.NewClient(opts...)
		if err != nil {
			return fmt.Errorf("fleet producer: %w", err)
		}
		fl.clients = append(fl.clients, cl)
		return nil
	}
	if err := add(); err != nil {
		return err
	}
	g := fl.r.work.genKeys(uint64(fl.size.Producers)<<32|uint64(fl.size.Partitions), "uniform")
	rate := float64(fl.r.cfg.FleetRate)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	start := time.Now()
	var sent int64
	for {
		var now time.Time
		select {
		case <-ctx.Done():
			return ctx.Err()
		case now = <-tick.C:
		}
		el := now.Sub(start)
		if el >= d {
			break
		}
		want := fl.size.Producers
		if el < ramp {
			want = max(1, int(float64(want)*el.Seconds()/ramp.Seconds()))
		}
		for len(fl.clients) < want {
			if err := add(); err != nil {
				return err
			}
		}
		for due := int64(rate*el.Seconds()) - sent; due > 0; due-- {
			cl := fl.clients[sent%int64(len(fl.clients))]
			cl.Produce(ctx, &kgo.Record{Key: g.key(), Value: g.value(), Timestamp: time.Now()}, promise)
			sent++
		}
	}
	res.Sent = sent
	res.Seconds = time.Since(start).Seconds()
	res.BenchRSS = selfRSS()

	// Every record is answered within the delivery timeout; flush all
	// clients at once and give them that long.
	fctx, cancel := context.WithTimeout(ctx, fleetDeliveryTimeout+30*time.Second)
	defer cancel()
	eachClient(fl.clients, func(cl *kgo.Client) { cl.Flush(fctx) })
	if err := ctx.Err(); err != nil {
		return err
	}
	// Promises may run just after Flush returns.
	for wait := time.Now().Add(10 * time.Second); fl.acked.Load()+fl.failed.Load() < sent && time.Now().Before(wait); {
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}

// closeAll closes every client; what they log from here on is their
// closing, not the run.
func (fl *fleet) closeAll() {
	fl.log.closing.Store(true)
	eachClient(fl.clients, (*kgo.Client).Close)
	fl.clients = nil
}

// eachClient calls fn for every client, fleetParallel at a time, and
// returns when all calls have.
func eachClient(clients []*kgo.Client, fn func(*kgo.Client)) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, fleetParallel)
	for _, cl := range clients {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			fn(cl)
		}()
	}
	wg.Wait()
}

// clientLog is the fleet clients' shared kgo.Logger: it keeps nothing but
// a count, by error, of the errors franz-go logs (it logs every errored
// produce response and failed request it retries).
type clientLog struct {
	counts  errorCounts
	closing atomic.Bool
}

func (l *clientLog) Level() kgo.LogLevel { return kgo.LogLevelInfo }

func (l *clientLog) Log(_ kgo.LogLevel, _ string, keyvals ...any) {
	if l.closing.Load() {
		return
	}
	for i := 0; i+1 < len(keyvals); i += 2 {
		if k, _ := keyvals[i].(string); k != "err" {
			continue
		}
		if err, ok := keyvals[i+1].(error); ok && err != nil {
			l.counts.add(errorName(err))
		}
	}
}

// errorCounts counts errors by name, safe for concurrent use; past
// maxErrorNames distinct names the rest count as "other".
type errorCounts struct {
	mu sync.Mutex
	m  map[string]int64
}

const maxErrorNames = 32

func (c *errorCounts) add(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]int64{}
	}
	if _, ok := c.m[name]; !ok && len(c.m) >= maxErrorNames {
		name = "other"
	}
	c.m[name]++
}

func (c *errorCounts) snapshot() map[string]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) == 0 {
		return nil
	}
	out := make(map[string]int64, len(c.m))
	for k, v := range c.m {
		out[k] = v
	}
	return out
}

var digits = regexp.MustCompile(`[0-9]+`)

// errorName names an error for counting: a Kafka error by its code name,
// a client or network error by its kind, anything else by its text with
// numbers (addresses, ports, IDs) elided.
func errorName(err error) string {
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Message
	}
	for _, known := range []error{kgo.ErrRecordTimeout, kgo.ErrRecordRetries, kgo.ErrClientClosed, kgo.ErrMaxBuffered,
		context.DeadlineExceeded, context.Canceled, io.ErrUnexpectedEOF, io.EOF} {
		if errors.Is(err, known) {
			return known.Error()
		}
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "network timeout"
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return "network " + oe.Op + ": " + digits.ReplaceAllString(oe.Err.Error(), "N")
	}
	s := digits.ReplaceAllString(err.Error(), "N")
	if len(s) > 80 {
		s = s[:80] + "…"
	}
	return s
}

// sortedCounts renders counts by error, most frequent first:
// "NOT_LEADER_FOR_PARTITION 3, EOF 1".
func sortedCounts(m map[string]int64) string {
	if len(m) == 0 {
		return "none"
	}
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Slice(names, func(i, j int) bool {
		if m[names[i]] != m[names[j]] {
			return m[names[i]] > m[names[j]]
		}
		return names[i] < names[j]
	})
	parts := make([]string, len(names))
	for i, k := range names {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}

// selfRSS is this process's resident set (Linux; 0 elsewhere).
func selfRSS() int64 {
	p, err := procfs.Self()
	if err != nil {
		return 0
	}
	st, err := p.NewStatus()
	if err != nil {
		return 0
	}
	return int64(st.VmRSS)
}
