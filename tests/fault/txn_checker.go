package fault

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
)

// The transactional checker judges the transactional workload's history:
// what each transactional producer sent in which transaction and how
// ending it went, what read_committed consumers read (during the run, and
// from the start of each topic once the faults are over), and what the
// consume-transform-produce stage read, wrote and committed. Like Check,
// it is pure; checker_test.go builds histories that must fail.

// TxnOutcome is what ending a transaction told its producer.
type TxnOutcome int

const (
	// TxnAborted: the transaction was aborted, or its commit was never
	// sent (a record failed, the client refused to try). It must never
	// be read committed.
	TxnAborted TxnOutcome = iota
	// TxnCommitted: EndTransaction with commit succeeded. It must be
	// read whole.
	TxnCommitted
	// TxnUnknown: a commit was sent and did not succeed (an error, a
	// timeout): it may have committed or not, but all or nothing.
	TxnUnknown
)

func (o TxnOutcome) String() string {
	switch o {
	case TxnAborted:
		return "aborted"
	case TxnCommitted:
		return "committed"
	case TxnUnknown:
		return "unknown"
	}
	return fmt.Sprintf("TxnOutcome(%d)", int(o))
}

// TxnRecord is one record sent in a transaction.
type TxnRecord struct {
	ID        string
	Partition int32
	Offset    int64 // where it was acknowledged; -1 if it was not
}

// Txn is one transaction of a transactional producer.
type Txn struct {
	ID       string
	Producer int
	Seq      int64       // the producer's own counter: its transactions run one after another in this order
	Records  []TxnRecord // in send order
	Outcome  TxnOutcome
	End      string // what ending it said ("ok" or the error), for the report
}

// TxnRead is a record read from a transactional topic; Marker is
// "commit" or "abort" for a control record (a transaction marker), which
// has no ID.
type TxnRead struct {
	Partition int32
	Offset    int64
	ID        string
	Marker    string
}

// CTPTxn is one transaction of the consume-transform-produce stage: the
// input records (read committed) it wrote to the output, with its
// consumer offsets.
type CTPTxn struct {
	ID      string
	Inputs  []Record
	Outcome TxnOutcome
	End     string
}

// OutRecord is a record of the output topic: the stage's transaction that
// wrote it and the input record it copies.
type OutRecord struct {
	Partition int32
	Offset    int64
	Txn       string
	Input     Record
}

// TxnHistory is everything the transactional workload observed.
type TxnHistory struct {
	Txns []Txn
	// In is the transactional topic read read_committed, markers kept,
	// from its start to its end once no transaction was open, per
	// partition in the order read; InAll is the same read
	// read_uncommitted. InStart and InEnd are the log start and the end
	// (the last stable offset, which was the high watermark) read to.
	In, InAll      map[int32][]TxnRead
	InStart, InEnd map[int32]int64
	// Live is what read_committed consumers read during the run (the
	// consume-transform-produce stage's consumer, including what it read
	// for transactions it then aborted).
	Live []Record
	// CTP is the consume-transform-produce stage's transactions; Out its
	// output topic read read_committed from the start once the stage had
	// stopped; Committed its group's committed offsets on the
	// transactional topic then (a partition without one is absent).
	CTP       []CTPTxn
	Out       map[int32][]OutRecord
	Committed map[int32]int64
}

// TxnResult counts what CheckTxns found. Only the counts under "must be
// zero" are failures.
type TxnResult struct {
	Txns, Committed, Aborted, Unknown int
	UnknownCommitted                  int // unknown outcomes read whole: they committed
	Read                              int // records read committed at the end
	Markers                           int // transaction markers in the read_committed read
	AbortedInLog                      int // records of aborted transactions the log holds (read_uncommitted), which read_committed skipped
	CTPTxns, CTPCommitted, CTPAborted int
	CTPUnknown                        int
	CTPOut                            int // records in the output

	// Must be zero.
	Torn          int // committed or unknown transactions read in part (input and output)
	TxnLost       int // committed transactions none of whose records is read
	AbortedRead   int // records of aborted transactions read by read_committed: at the end, during the run, or in the output
	Duplicated    int // extra copies of a record in the read_committed read
	Misplaced     int // read at another partition or offset than acknowledged, or than the final read holds it
	Phantom       int // read but never sent
	OutOfOrder    int // offsets not increasing in a read; a producer's committed records not in its send order
	Gaps          int // the read_uncommitted read (markers kept) skipping or repeating an offset, or short of the end
	CTPMissing    int // inputs below the group's committed offset not in the output
	CTPDuplicated int // extra copies of an input in the output
	CTPBeyond     int // inputs at or past the group's committed offset in the output
	CTPMismatch   int // output records naming an input the transactional topic does not hold there
	CTPLag        int // inputs past the group's committed offset at the end: never processed

	Problems []string
}

func (r *TxnResult) problem(format string, args ...any) {
	if len(r.Problems) < maxProblems {
		r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
	}
}

// OK reports whether the history is correct.
func (r TxnResult) OK() bool {
	return r.Torn+r.TxnLost+r.AbortedRead+r.Duplicated+r.Misplaced+r.Phantom+r.OutOfOrder+r.Gaps+
		r.CTPMissing+r.CTPDuplicated+r.CTPBeyond+r.CTPMismatch+r.CTPLag == 0
}

// String is the counts on one line.
func (r TxnResult) String() string {
	return fmt.Sprintf("txns=%d committed=%d aborted=%d unknown=%d unknown_committed=%d txn_read=%d markers=%d aborted_in_log=%d "+
		"torn=%d txn_lost=%d aborted_read=%d txn_duplicated=%d txn_misplaced=%d txn_phantom=%d txn_out_of_order=%d txn_gaps=%d "+
		"ctp_txns=%d ctp_committed=%d ctp_aborted=%d ctp_unknown=%d ctp_out=%d ctp_missing=%d ctp_duplicated=%d ctp_beyond=%d ctp_mismatch=%d ctp_lag=%d",
		r.Txns, r.Committed, r.Aborted, r.Unknown, r.UnknownCommitted, r.Read, r.Markers, r.AbortedInLog,
		r.Torn, r.TxnLost, r.AbortedRead, r.Duplicated, r.Misplaced, r.Phantom, r.OutOfOrder, r.Gaps,
		r.CTPTxns, r.CTPCommitted, r.CTPAborted, r.CTPUnknown, r.CTPOut, r.CTPMissing, r.CTPDuplicated, r.CTPBeyond, r.CTPMismatch, r.CTPLag)
}

func sortedParts[V any](m map[int32]V) []int32 {
	ps := make([]int32, 0, len(m))
	for p := range m {
		ps = append(ps, p)
	}
	slices.Sort(ps)
	return ps
}

// CheckTxns judges h.
func CheckTxns(h *TxnHistory) TxnResult {
	var r TxnResult

	// What was sent.
	type sentRec struct {
		txn *Txn
		idx int
	}
	sent := map[string]sentRec{}
	for i := range h.Txns {
		t := &h.Txns[i]
		r.Txns++
		switch t.Outcome {
		case TxnCommitted:
			r.Committed++
		case TxnAborted:
			r.Aborted++
		default:
			r.Unknown++
		}
		for j, rec := range t.Records {
			sent[rec.ID] = sentRec{t, j}
		}
	}

	// The read_committed read: offsets increasing, each record once,
	// where it was acknowledged.
	found := map[string][]place{}
	inAt := map[place]string{}
	for _, p := range sortedParts(h.In) {
		last := int64(-1)
		for _, rd := range h.In[p] {
			if rd.Offset <= last {
				r.OutOfOrder++
				r.problem("read_committed, partition %d: offset %d read after %d", p, rd.Offset, last)
			}
			last = max(last, rd.Offset)
			if rd.Marker != "" {
				r.Markers++
				continue
			}
			r.Read++
			pl := place{p, rd.Offset}
			inAt[pl] = rd.ID
			found[rd.ID] = append(found[rd.ID], pl)
		}
		if end, ok := h.InEnd[p]; ok && last >= end {
			r.OutOfOrder++
			r.problem("read_committed, partition %d: offset %d read past the end %d", p, last, end)
		}
	}
	for _, id := range slices.Sorted(maps.Keys(found)) {
		pls := found[id]
		s, ok := sent[id]
		if !ok {
			r.Phantom += len(pls)
			r.problem("read_committed read %q at %d/%d, which was never sent", id, pls[0].partition, pls[0].offset)
			continue
		}
		if len(pls) > 1 {
			r.Duplicated += len(pls) - 1
			r.problem("read_committed read %s of transaction %s %d times: %v", id, s.txn.ID, len(pls), pls)
		}
		rec := s.txn.Records[s.idx]
		if rec.Partition != pls[0].partition || rec.Offset >= 0 && rec.Offset != pls[0].offset {
			r.Misplaced++
			r.problem("%s of transaction %s was acknowledged at %d/%d, read committed at %d/%d", id, s.txn.ID, rec.Partition, rec.Offset, pls[0].partition, pls[0].offset)
		}
	}

	// Each transaction is read whole or not at all: whole if committed,
	// not at all if aborted.
	visible := map[string]bool{} // transactions whose records are read committed
	for i := range h.Txns {
		t := &h.Txns[i]
		n := 0
		var missing []string
		for _, rec := range t.Records {
			if len(found[rec.ID]) > 0 {
				n++
			} else {
				missing = append(missing, rec.ID)
			}
		}
		visible[t.ID] = n > 0
		switch {
		case t.Outcome == TxnAborted && n > 0:
			r.AbortedRead += n
			r.problem("transaction %s was aborted (%s), yet read_committed read %d of its %d records", t.ID, t.End, n, len(t.Records))
		case t.Outcome == TxnAborted:
		case n == len(t.Records):
			if t.Outcome == TxnUnknown {
				r.UnknownCommitted++
			}
		case n > 0:
			r.Torn++
			r.problem("transaction %s (%s: %s) is torn: read_committed read %d of its %d records; missing %v", t.ID, t.Outcome, t.End, n, len(t.Records), missing)
		case t.Outcome == TxnCommitted:
			r.TxnLost++
			r.problem("transaction %s was committed, yet read_committed read none of its %d records", t.ID, len(t.Records))
		}
	}

	// A producer's committed records keep its order in each partition:
	// within a transaction, and transaction after transaction.
	type stream struct {
		producer  int
		partition int32
	}
	type sentAt struct {
		seq    int64
		idx    int
		offset int64
		id     string
	}
	streams := map[stream][]sentAt{}
	for _, t := range h.Txns {
		if !visible[t.ID] || t.Outcome == TxnAborted {
			continue
		}
		for j, rec := range t.Records {
			if pls := found[rec.ID]; len(pls) > 0 {
				k := stream{t.Producer, pls[0].partition}
				streams[k] = append(streams[k], sentAt{t.Seq, j, pls[0].offset, rec.ID})
			}
		}
	}
	for _, k := range slices.SortedFunc(maps.Keys(streams), func(a, b stream) int {
		return cmp.Or(cmp.Compare(a.producer, b.producer), cmp.Compare(a.partition, b.partition))
	}) {
		as := streams[k]
		slices.SortFunc(as, func(a, b sentAt) int { return cmp.Or(cmp.Compare(a.seq, b.seq), cmp.Compare(a.idx, b.idx)) })
		for i := 1; i < len(as); i++ {
			if as[i].offset <= as[i-1].offset {
				r.OutOfOrder++
				r.problem("transactional producer %d, partition %d: %s (sent after %s) is at offset %d, not after %d", k.producer, k.partition, as[i].id, as[i-1].id, as[i].offset, as[i-1].offset)
			}
		}
	}

	// The read_uncommitted read holds every offset, and what
	// read_committed read where it read it.
	for _, p := range sortedParts(h.InAll) {
		next := h.InStart[p]
		for _, rd := range h.InAll[p] {
			if rd.Offset != next {
				r.Gaps++
				r.problem("read_uncommitted, partition %d: offset %d read where %d was expected", p, rd.Offset, next)
			}
			next = rd.Offset + 1
			if rd.Marker != "" {
				continue
			}
			if s, ok := sent[rd.ID]; ok && s.txn.Outcome == TxnAborted {
				r.AbortedInLog++
			}
			if id, ok := inAt[place{p, rd.Offset}]; ok && id != rd.ID {
				r.Misplaced++
				r.problem("partition %d offset %d: read_committed read %s, read_uncommitted %s", p, rd.Offset, id, rd.ID)
			}
		}
		if end, ok := h.InEnd[p]; ok && next != end {
			r.Gaps++
			r.problem("read_uncommitted, partition %d: read up to offset %d, the end is %d", p, next, end)
		}
	}

	// What read_committed consumers read during the run was committed,
	// and is where the final read has it.
	for _, c := range h.Live {
		s, ok := sent[c.ID]
		switch {
		case !ok:
			r.Phantom++
			r.problem("a read_committed consumer read %q at %d/%d, which was never sent", c.ID, c.Partition, c.Offset)
		case s.txn.Outcome == TxnAborted || s.txn.Outcome == TxnUnknown && !visible[s.txn.ID]:
			r.AbortedRead++
			r.problem("a read_committed consumer read %s at %d/%d, of transaction %s (%s: %s), which is not committed", c.ID, c.Partition, c.Offset, s.txn.ID, s.txn.Outcome, s.txn.End)
		case inAt[place{c.Partition, c.Offset}] != c.ID:
			r.Misplaced++
			r.problem("a read_committed consumer read %s at %d/%d; the final read has %q there", c.ID, c.Partition, c.Offset, inAt[place{c.Partition, c.Offset}])
		}
	}

	// The consume-transform-produce stage: its transactions read whole
	// or not at all in the output, every input once, exactly the inputs
	// below the group's committed offsets.
	ctp := map[string]*CTPTxn{}
	for i := range h.CTP {
		t := &h.CTP[i]
		ctp[t.ID] = t
		r.CTPTxns++
		switch t.Outcome {
		case TxnCommitted:
			r.CTPCommitted++
		case TxnAborted:
			r.CTPAborted++
		default:
			r.CTPUnknown++
		}
	}
	outOf := map[string]map[string]bool{} // inputs in the output per stage transaction
	outIn := map[string]int{}             // output records per input ID
	outInAt := map[place]int{}            // output records per input place
	for _, p := range sortedParts(h.Out) {
		last := int64(-1)
		for _, o := range h.Out[p] {
			r.CTPOut++
			if o.Offset <= last {
				r.OutOfOrder++
				r.problem("output, partition %d: offset %d read after %d", p, o.Offset, last)
			}
			last = max(last, o.Offset)
			t, ok := ctp[o.Txn]
			if !ok {
				r.Phantom++
				r.problem("the output holds %s at %d/%d from transaction %q, which the stage never ran", o.Input.ID, p, o.Offset, o.Txn)
				continue
			}
			if outOf[o.Txn] == nil {
				outOf[o.Txn] = map[string]bool{}
			}
			outOf[o.Txn][o.Input.ID] = true
			outIn[o.Input.ID]++
			outInAt[place{o.Input.Partition, o.Input.Offset}]++
			if t.Outcome == TxnAborted {
				r.AbortedRead++
				r.problem("the output holds %s at %d/%d from the stage's transaction %s, which was aborted (%s)", o.Input.ID, p, o.Offset, t.ID, t.End)
			}
			if o.Input.Partition != p {
				r.Misplaced++
				r.problem("the output holds %s (input %d/%d) in partition %d, not in the input's", o.Input.ID, o.Input.Partition, o.Input.Offset, p)
			}
			if got := inAt[place{o.Input.Partition, o.Input.Offset}]; got != o.Input.ID {
				r.CTPMismatch++
				r.problem("the output at %d/%d copies %s from %d/%d, where the transactional topic holds %q read committed", p, o.Offset, o.Input.ID, o.Input.Partition, o.Input.Offset, got)
			}
		}
	}
	for _, t := range h.CTP {
		n := len(outOf[t.ID])
		switch {
		case t.Outcome == TxnAborted || n == len(t.Inputs):
		case n > 0:
			r.Torn++
			r.problem("the stage's transaction %s (%s: %s) is torn: the output holds %d of its %d records", t.ID, t.Outcome, t.End, n, len(t.Inputs))
		case t.Outcome == TxnCommitted:
			r.TxnLost++
			r.problem("the stage's transaction %s was committed, yet the output holds none of its %d records", t.ID, len(t.Inputs))
		}
	}
	for _, id := range slices.Sorted(maps.Keys(outIn)) {
		if n := outIn[id]; n > 1 {
			r.CTPDuplicated += n - 1
			r.problem("the output holds input %s %d times", id, n)
		}
	}
	for _, p := range sortedParts(h.In) {
		committed, ok := h.Committed[p]
		if !ok {
			committed = 0
		}
		var missing, beyond, lag []int64
		for _, rd := range h.In[p] {
			if rd.Marker != "" {
				continue
			}
			in := outInAt[place{p, rd.Offset}] > 0
			switch {
			case rd.Offset < committed && !in:
				r.CTPMissing++
				missing = append(missing, rd.Offset)
			case rd.Offset >= committed && in:
				r.CTPBeyond++
				beyond = append(beyond, rd.Offset)
			case rd.Offset >= committed:
				r.CTPLag++
				lag = append(lag, rd.Offset)
			}
		}
		if len(missing) > 0 {
			r.problem("partition %d: the group committed offset %d, but the output lacks the inputs at %s", p, committed, offsetList(missing))
		}
		if len(beyond) > 0 {
			r.problem("partition %d: the group committed offset %d, but the output holds the inputs at %s", p, committed, offsetList(beyond))
		}
		if len(lag) > 0 {
			r.problem("partition %d: the group committed offset %d; the inputs at %s were never processed", p, committed, offsetList(lag))
		}
	}
	return r
}

// offsetList is offsets for a problem line, shortened.
func offsetList(os []int64) string {
	if len(os) > 8 {
		return fmt.Sprintf("%v ... (%d offsets)", os[:8], len(os))
	}
	return fmt.Sprint(os)
}
