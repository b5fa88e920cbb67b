package fault

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The transactional workload, beside the idempotent one and under the
// same faults: transactional producers writing transactions of several
// records across the partitions of their own topic, some aborted on
// purpose; a consume-transform-produce stage (a group consumer reading
// that topic read_committed and a transactional producer copying each
// record to an output topic in the transaction that commits its offsets);
// and, once the faults are over, read_committed and read_uncommitted reads
// of both topics from the start. The history goes to CheckTxns.

const (
	txnTopic      = "fault-txn"
	outTopic      = "fault-txn-out"
	txnPartitions = 4
	ctpGroup      = "fault-txn-group"
	// Short, so that a transaction a fault left open (its producer
	// gone, its abort lost) is aborted by the coordinator soon after.
	txnTimeout = 20 * time.Second
	// How long a transactional producer lets ending a transaction take
	// (kgo retries within it) before it gives up: the outcome is then
	// unknown. Shorter than the outages, so that some are.
	txnEndTimeout = 5 * time.Second
	// The same for the consume-transform-produce stage (see
	// ctpEndTimeout).
	ctpEndTimeoutDefault = 5 * time.Second
)

// ctpEndTimeout is how long the stage lets ending a transaction take:
// FLOE_FAULT_CTP_END_TIMEOUT (a duration), default ctpEndTimeoutDefault.
//
// A stage that gives up closes its session and joins again; the new
// session's OffsetFetch may come while the old transaction is still
// being committed. floe answers UNSTABLE_OFFSET_COMMIT to such a fetch
// (require_stable, which franz-go always sets) until the commit
// completes, as Kafka does; answering the offsets from before the
// transaction would make the stage copy those inputs again
// (ctp_duplicated). The short default puts that path under every outage.
func ctpEndTimeout() time.Duration {
	if v := os.Getenv("FLOE_FAULT_CTP_END_TIMEOUT"); v != "" {
		if d, err := time.ParseDuration(v); err == nil && d > 0 {
			return d
		}
	}
	return ctpEndTimeoutDefault
}

// txnRecorder collects the transactional history while the workload
// runs.
type txnRecorder struct {
	mu   sync.Mutex
	txns []Txn
	ctp  []CTPTxn
	live []Record
	errs map[string]int // errors the clients returned, by operation and message

	committed    atomic.Int64 // transactions committed, for progress
	ctpCommitted atomic.Int64
}

func newTxnRecorder() *txnRecorder { return &txnRecorder{errs: map[string]int{}} }

func (r *txnRecorder) txn(t Txn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.txns = append(r.txns, t)
	if t.Outcome == TxnCommitted {
		r.committed.Add(1)
	}
}

func (r *txnRecorder) ctpTxn(t CTPTxn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ctp = append(r.ctp, t)
	if t.Outcome == TxnCommitted {
		r.ctpCommitted.Add(1)
	}
}

func (r *txnRecorder) read(rec Record) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.live = append(r.live, rec)
}

func (r *txnRecorder) clientErr(op string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs[op+": "+shortErr(err)]++
}

func (r *txnRecorder) history() *TxnHistory {
	r.mu.Lock()
	defer r.mu.Unlock()
	return &TxnHistory{Txns: slices.Clone(r.txns), CTP: slices.Clone(r.ctp), Live: slices.Clone(r.live)}
}

// errSummary is the errors the transactional clients returned, most
// frequent first.
func (r *txnRecorder) errSummary() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	keys := slices.Collect(maps.Keys(r.errs))
	sort.Slice(keys, func(i, j int) bool {
		return r.errs[keys[i]] > r.errs[keys[j]] || r.errs[keys[i]] == r.errs[keys[j]] && keys[i] < keys[j]
	})
	if len(keys) == 0 {
		return " none"
	}
	var b strings.Builder
	for i, k := range keys {
		if i == 15 {
			fmt.Fprintf(&b, "\n  ... %d more", len(keys)-i)
			break
		}
		fmt.Fprintf(&b, "\n  %6d  %s", r.errs[k], k)
	}
	return b.String()
}

// lockedWriter serializes the clients' log lines into one file.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// txnOpts are the options of every transactional client; their log
// (franz-go's, at info: each transaction's begin and end, the producer
// IDs and epochs) goes to logTo with the client's name.
func txnOpts(seeds []string, name string, logTo io.Writer) []kgo.Opt {
	return append(baseOpts(seeds),
		kgo.TransactionTimeout(txnTimeout),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ClientID(name+","+zoneA),
		kgo.WithLogger(kgo.BasicLogger(logTo, kgo.LogLevelInfo, func() string {
			return time.Now().Format("15:04:05.000 ") + name + " "
		})),
	)
}

func endString(what string, err error) string {
	if err == nil {
		return what + " ok"
	}
	return what + ": " + shortErr(err)
}

// transact runs transactional producer id until ctx ends: transactions
// of one to six records on random partitions of txnTopic, one in five
// aborted on purpose, one after another. rng (seeded from the suite's
// seed) draws the partitions and the aborts.
func transact(ctx context.Context, seeds []string, rec *txnRecorder, id int, rng *rand.Rand, logTo io.Writer) error {
	name := fmt.Sprintf("txn-%d", id)
	newClient := func() (*kgo.Client, error) {
		return kgo.NewClient(append(txnOpts(seeds, name, logTo),
			kgo.TransactionalID("fault-"+name),
			kgo.DefaultProduceTopic(txnTopic),
			kgo.RecordDeliveryTimeout(8*time.Second),
		)...)
	}
	cl, err := newClient()
	if err != nil {
		return err
	}
	defer func() { cl.Close() }()
	// restart replaces a client that cannot go on (fenced, or ending a
	// transaction failed twice): the new instance's InitProducerId bumps
	// the epoch and aborts whatever the old one left open.
	restart := func() error {
		cl.Close()
		var err error
		cl, err = newClient()
		return err
	}
	for seq := int64(0); ctx.Err() == nil; seq++ {
		if err := cl.BeginTransaction(); err != nil {
			rec.clientErr("begin", err)
			if err := restart(); err != nil {
				return err
			}
			time.Sleep(100 * time.Millisecond)
			continue
		}
		txn := Txn{ID: fmt.Sprintf("t%d-%d", id, seq), Producer: id, Seq: seq}
		var rs []*kgo.Record
		for i := range 1 + rng.IntN(6) {
			rid := fmt.Sprintf("%s-%d", txn.ID, i)
			p := int32(rng.IntN(txnPartitions))
			txn.Records = append(txn.Records, TxnRecord{ID: rid, Partition: p, Offset: -1})
			rs = append(rs, &kgo.Record{Partition: p, Value: txnValue(rid)})
		}
		abort := rng.IntN(5) == 0
		failed := false
		// The results come in the order the partitions answered.
		for _, res := range cl.ProduceSync(context.Background(), rs...) {
			if res.Err != nil {
				// The transaction cannot commit: abort it.
				rec.clientErr("produce", res.Err)
				failed = true
				continue
			}
			txn.Records[slices.Index(rs, res.Record)].Offset = res.Record.Offset
		}

		end := func(try kgo.TransactionEndTry) error {
			ctx, cancel := context.WithTimeout(context.Background(), txnEndTimeout)
			defer cancel()
			return cl.EndTransaction(ctx, try)
		}
		var endErr error
		switch {
		case abort || failed:
			endErr = end(kgo.TryAbort)
			txn.Outcome, txn.End = TxnAborted, endString("abort", endErr)
			if failed {
				txn.End = "a record failed; " + txn.End
			}
			if endErr != nil {
				rec.clientErr("end abort", endErr)
			}
		default:
			err := end(kgo.TryCommit)
			switch {
			case err == nil:
				txn.Outcome, txn.End = TxnCommitted, "commit ok"
			case errors.Is(err, kerr.OperationNotAttempted):
				// Not sent: the producer ID failed. Abort.
				rec.clientErr("end commit", err)
				endErr = end(kgo.TryAbort)
				txn.Outcome, txn.End = TxnAborted, "commit not attempted; "+endString("abort", endErr)
			default:
				// Sent, no answer or an error: it may have committed.
				// kgo's documented recovery is an abort, which reloads
				// the producer ID (and so aborts it if it is open).
				rec.clientErr("end commit", err)
				endErr = end(kgo.TryAbort)
				txn.Outcome, txn.End = TxnUnknown, endString("commit", err)+"; "+endString("abort", endErr)
			}
			if endErr != nil {
				rec.clientErr("end abort", endErr)
			}
		}
		rec.txn(txn)
		if endErr != nil {
			if err := restart(); err != nil {
				return err
			}
		}
		time.Sleep(time.Duration(20+rng.IntN(40)) * time.Millisecond)
	}
	return nil
}

// txnValue is the value a transactional producer sends its record rid
// ("t<producer>-<seq>-<i>") with: the ID, then padding whose length
// depends on the producer.
func txnValue(rid string) []byte {
	head, _, _ := strings.Cut(rid, "-")
	producer, _ := strconv.Atoi(strings.TrimPrefix(head, "t"))
	return []byte(rid + " " + strings.Repeat("t", 48+producer*8))
}

// transform runs the consume-transform-produce stage until ctx ends: a
// group member reading txnTopic read_committed and, per poll, one
// transaction that copies what it read to the same partition of
// outTopic and commits its offsets; one in ten is aborted on purpose.
// An output record's value is the input's ID, the transaction, and the
// input's partition and offset. After an error ending a transaction the
// session is closed and a new one joins (kgo's errors from End are not
// retriable).
func transform(ctx context.Context, seeds []string, rec *txnRecorder, member int, rng *rand.Rand, logTo io.Writer) error {
	name := fmt.Sprintf("ctp-%d", member)
	endTimeout := ctpEndTimeout()
	newSession := func() (*kgo.GroupTransactSession, error) {
		return kgo.NewGroupTransactSession(append(txnOpts(seeds, name, logTo),
			kgo.TransactionalID("fault-"+name),
			kgo.DefaultProduceTopic(outTopic),
			kgo.ConsumerGroup(ctpGroup),
			kgo.ConsumeTopics(txnTopic),
			kgo.FetchIsolationLevel(kgo.ReadCommitted()),
			kgo.RequireStableFetchOffsets(),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.FetchMaxWait(500*time.Millisecond),
		)...)
	}
	s, err := newSession()
	if err != nil {
		return err
	}
	defer func() { s.Close() }()
	restart := func() error {
		s.Close()
		var err error
		s, err = newSession()
		return err
	}
	for seq := 0; ; seq++ {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		fs := s.PollFetches(pctx)
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		fs.EachError(func(_ string, _ int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) {
				rec.clientErr("stage poll", err)
			}
		})
		recs := fs.Records()
		if len(recs) == 0 {
			continue
		}
		if err := s.Begin(); err != nil {
			rec.clientErr("stage begin", err)
			if err := restart(); err != nil {
				return err
			}
			continue
		}
		txn := CTPTxn{ID: fmt.Sprintf("c%d-%d", member, seq)}
		for _, r := range recs {
			in := Record{Partition: r.Partition, Offset: r.Offset, ID: payloadID(r.Value)}
			rec.read(in)
			txn.Inputs = append(txn.Inputs, in)
			s.Produce(context.Background(), &kgo.Record{
				Partition: r.Partition,
				Value:     fmt.Appendf(nil, "%s %s %d %d", in.ID, txn.ID, in.Partition, in.Offset),
			}, func(_ *kgo.Record, err error) {
				if err != nil && !errors.Is(err, kgo.ErrAborting) {
					rec.clientErr("stage produce", err)
				}
			})
		}
		abort := rng.IntN(10) == 0
		ectx, cancel := context.WithTimeout(context.Background(), endTimeout)
		committed, err := s.End(ectx, kgo.TransactionEndTry(!abort))
		cancel()
		switch {
		case abort:
			txn.Outcome, txn.End = TxnAborted, endString("abort", err)
		case err == nil && committed:
			txn.Outcome, txn.End = TxnCommitted, "commit ok"
		case err == nil:
			// The session refused to commit (a rebalance, a failed
			// record or offset commit) and aborted.
			txn.Outcome, txn.End = TxnAborted, "commit refused, aborted"
		default:
			txn.Outcome, txn.End = TxnUnknown, endString("commit", err)
		}
		rec.ctpTxn(txn)
		if err != nil {
			rec.clientErr("stage end", err)
			if err := restart(); err != nil {
				return err
			}
		}
	}
}

// stableOffsets waits until no transaction is open in topic, every
// partition's last stable offset being its high watermark, and returns
// the partitions' log starts and ends.
func stableOffsets(ctx context.Context, adm *kadm.Client, topic string) (start, end map[int32]int64, err error) {
	var last string
	for {
		starts, err1 := adm.ListStartOffsets(ctx, topic)
		hws, err2 := adm.ListEndOffsets(ctx, topic)
		lsos, err3 := adm.ListCommittedOffsets(ctx, topic)
		err := errors.Join(err1, err2, err3)
		if err == nil {
			err = errors.Join(starts.Error(), hws.Error(), lsos.Error())
		}
		if err == nil {
			start, end = map[int32]int64{}, map[int32]int64{}
			var open []string
			for p := range int32(txnPartitions) {
				s, _ := starts.Lookup(topic, p)
				h, _ := hws.Lookup(topic, p)
				l, _ := lsos.Lookup(topic, p)
				start[p], end[p] = s.Offset, h.Offset
				if l.Offset != h.Offset {
					open = append(open, fmt.Sprintf("partition %d: last stable offset %d, high watermark %d", p, l.Offset, h.Offset))
				}
			}
			if len(open) == 0 {
				return start, end, nil
			}
			last = strings.Join(open, "; ")
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return nil, nil, fmt.Errorf("%s: transactions still open: %s", topic, last)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// readTxnTopic reads topic from start to end with the isolation level
// given, markers kept (they say where read_committed is up to: the last
// offset below the end is a record or a marker, never an aborted record).
// id makes a record's ID of its value.
func readTxnTopic(ctx context.Context, seeds []string, topic string, level kgo.IsolationLevel, start, end map[int32]int64, id func([]byte) string) (map[int32][]TxnRead, error) {
	from := map[int32]kgo.Offset{}
	pending := map[int32]bool{}
	for p := range int32(txnPartitions) {
		from[p] = kgo.NewOffset().At(start[p])
		if end[p] > start[p] {
			pending[p] = true
		}
	}
	cl, err := kgo.NewClient(append(baseOpts(seeds),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: from}),
		kgo.FetchIsolationLevel(level),
		kgo.KeepControlRecords(),
		kgo.FetchMaxWait(200*time.Millisecond),
	)...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	out := map[int32][]TxnRead{}
	var lastErr error
	for len(pending) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil, fmt.Errorf("reading %s: partitions %v not read to their end %v (last fetch error: %v)", topic, slices.Sorted(maps.Keys(pending)), end, lastErr)
		}
		fs.EachError(func(_ string, p int32, err error) { lastErr = fmt.Errorf("partition %d: %w", p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset >= end[r.Partition] {
				return
			}
			rd := TxnRead{Partition: r.Partition, Offset: r.Offset}
			if r.Attrs.IsControl() {
				rd.Marker = "abort"
				if len(r.Key) >= 4 && binary.BigEndian.Uint16(r.Key[2:4]) == 1 {
					rd.Marker = "commit"
				}
			} else {
				rd.ID = id(r.Value)
			}
			out[r.Partition] = append(out[r.Partition], rd)
			if r.Offset == end[r.Partition]-1 {
				delete(pending, r.Partition)
			}
		})
	}
	return out, nil
}

// ctpOffsets is the stage's group's committed offsets on txnTopic.
func ctpOffsets(ctx context.Context, adm *kadm.Client) (map[int32]int64, error) {
	resp, err := adm.FetchOffsets(ctx, ctpGroup)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		return nil, err
	}
	out := map[int32]int64{}
	for p := range int32(txnPartitions) {
		if o, ok := resp.Lookup(txnTopic, p); ok && o.Err == nil && o.At >= 0 {
			out[p] = o.At
		}
	}
	return out, nil
}

// waitDrained waits until the stage's committed offsets are past every
// record in (the transactional topic read read_committed).
func waitDrained(ctx context.Context, adm *kadm.Client, in map[int32][]TxnRead) error {
	want := map[int32]int64{}
	for p, reads := range in {
		for _, rd := range reads {
			if rd.Marker == "" {
				want[p] = rd.Offset + 1
			}
		}
	}
	var last string
	for {
		got, err := ctpOffsets(ctx, adm)
		if err == nil {
			var behind []string
			for _, p := range slices.Sorted(maps.Keys(want)) {
				if got[p] < want[p] {
					behind = append(behind, fmt.Sprintf("partition %d at %d of %d", p, got[p], want[p]))
				}
			}
			if len(behind) == 0 {
				return nil
			}
			last = strings.Join(behind, ", ")
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the consume-transform-produce stage did not commit past its input: %s", last)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// readTxnResults reads, once no transaction is open, both transactional
// topics and the stage's committed offsets into h.
func readTxnResults(seeds []string, h *TxnHistory) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cl, err := kgo.NewClient(baseOpts(seeds)...)
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if h.InStart, h.InEnd, err = stableOffsets(ctx, adm, txnTopic); err != nil {
		return err
	}
	if h.In, err = readTxnTopic(ctx, seeds, txnTopic, kgo.ReadCommitted(), h.InStart, h.InEnd, payloadID); err != nil {
		return err
	}
	if h.InAll, err = readTxnTopic(ctx, seeds, txnTopic, kgo.ReadUncommitted(), h.InStart, h.InEnd, payloadID); err != nil {
		return err
	}
	outStart, outEnd, err := stableOffsets(ctx, adm, outTopic)
	if err != nil {
		return err
	}
	out, err := readTxnTopic(ctx, seeds, outTopic, kgo.ReadCommitted(), outStart, outEnd, func(v []byte) string { return string(v) })
	if err != nil {
		return err
	}
	h.Out = map[int32][]OutRecord{}
	for p, reads := range out {
		for _, rd := range reads {
			if rd.Marker != "" {
				continue
			}
			o, err := parseOut(rd)
			if err != nil {
				return err
			}
			h.Out[p] = append(h.Out[p], o)
		}
	}
	h.Committed, err = ctpOffsets(ctx, adm)
	return err
}

// parseOut decodes an output record, read with its whole value as ID:
// the stage writes "input-ID txn partition offset".
func parseOut(rd TxnRead) (OutRecord, error) {
	f := strings.Fields(rd.ID)
	if len(f) != 4 {
		return OutRecord{}, fmt.Errorf("output %d/%d: value %q is not the stage's", rd.Partition, rd.Offset, rd.ID)
	}
	p, err1 := strconv.ParseInt(f[2], 10, 32)
	o, err2 := strconv.ParseInt(f[3], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return OutRecord{}, fmt.Errorf("output %d/%d: value %q: %w", rd.Partition, rd.Offset, rd.ID, err)
	}
	return OutRecord{Partition: rd.Partition, Offset: rd.Offset, Txn: f[1], Input: Record{Partition: int32(p), Offset: o, ID: f[0]}}, nil
}
