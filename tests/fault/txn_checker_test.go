package fault

import (
	"fmt"
	"maps"
	"slices"
	"testing"
)

// txnLog builds a transactional history's log: transactions one after
// another, each record and then a marker in every partition it touched.
type txnLog struct {
	h   *TxnHistory
	off map[int32]int64
}

func (l *txnLog) add(id string, producer int, seq int64, outcome TxnOutcome, committed bool, parts ...int32) {
	h := l.h
	t := Txn{ID: id, Producer: producer, Seq: seq, Outcome: outcome, End: "ok"}
	if outcome == TxnUnknown {
		t.End = "timed out"
	}
	touched := map[int32]bool{}
	for i, p := range parts {
		rd := TxnRead{Partition: p, Offset: l.off[p], ID: fmt.Sprintf("%s-%d", id, i)}
		l.off[p]++
		t.Records = append(t.Records, TxnRecord{ID: rd.ID, Partition: p, Offset: rd.Offset})
		h.InAll[p] = append(h.InAll[p], rd)
		if committed {
			h.In[p] = append(h.In[p], rd)
		}
		touched[p] = true
	}
	marker := "abort"
	if committed {
		marker = "commit"
	}
	for _, p := range slices.Sorted(maps.Keys(touched)) {
		m := TxnRead{Partition: p, Offset: l.off[p], Marker: marker}
		l.off[p]++
		h.InAll[p] = append(h.InAll[p], m)
		h.In[p] = append(h.In[p], m)
	}
	h.InEnd = maps.Clone(l.off)
	h.Txns = append(h.Txns, t)
}

// stage adds a transaction of the consume-transform-produce stage that
// read inputs (and, unless aborted, wrote them to the output).
func (l *txnLog) stage(id string, outcome TxnOutcome, committed bool, inputs []Record) {
	h := l.h
	h.Live = append(h.Live, inputs...)
	h.CTP = append(h.CTP, CTPTxn{ID: id, Inputs: inputs, Outcome: outcome, End: "ok"})
	if !committed {
		return
	}
	for _, in := range inputs {
		out := h.Out[in.Partition]
		o := int64(0)
		if len(out) > 0 {
			o = out[len(out)-1].Offset + 2 // a marker in between
		}
		h.Out[in.Partition] = append(out, OutRecord{Partition: in.Partition, Offset: o, Txn: id, Input: in})
		h.Committed[in.Partition] = in.Offset + 1
	}
}

// committedInputs is the data records of h.In at or after from[p] in
// each partition, up to n in all.
func committedInputs(h *TxnHistory, from map[int32]int64, n int) []Record {
	var out []Record
	for _, p := range sortedParts(h.In) {
		for _, rd := range h.In[p] {
			if rd.Marker == "" && rd.Offset >= from[p] && len(out) < n {
				out = append(out, Record{Partition: p, Offset: rd.Offset, ID: rd.ID})
			}
		}
	}
	return out
}

// goodTxnHistory is a correct run: two producers on two partitions, a
// committed, an aborted and two unknown transactions (one committed, one
// not); the stage copies everything committed in three transactions, the
// second aborted.
func goodTxnHistory() (*TxnHistory, *txnLog) {
	h := &TxnHistory{
		In: map[int32][]TxnRead{}, InAll: map[int32][]TxnRead{},
		InStart: map[int32]int64{0: 0, 1: 0}, InEnd: map[int32]int64{},
		Out: map[int32][]OutRecord{}, Committed: map[int32]int64{},
	}
	l := &txnLog{h: h, off: map[int32]int64{}}
	l.add("t0-0", 0, 0, TxnCommitted, true, 0, 1, 0)
	l.add("t1-0", 1, 0, TxnUnknown, true, 1, 0)
	l.add("t0-1", 0, 1, TxnAborted, false, 0, 1)
	l.add("t1-1", 1, 1, TxnUnknown, false, 0)
	l.add("t0-2", 0, 2, TxnCommitted, true, 1)
	first := committedInputs(h, nil, 4)
	l.stage("c0", TxnCommitted, true, first)
	rest := committedInputs(h, h.Committed, 100)
	l.stage("c1", TxnAborted, false, rest)
	l.stage("c2", TxnCommitted, true, rest)
	return h, l
}

func TestTxnCheckerAcceptsACorrectHistory(t *testing.T) {
	h, _ := goodTxnHistory()
	r := CheckTxns(h)
	if !r.OK() {
		t.Fatalf("%s\n%v", r, r.Problems)
	}
	if r.Txns != 5 || r.Committed != 2 || r.Aborted != 1 || r.Unknown != 2 || r.UnknownCommitted != 1 ||
		r.Read != 6 || r.AbortedInLog != 2 || r.CTPTxns != 3 || r.CTPCommitted != 2 || r.CTPAborted != 1 || r.CTPOut != 6 {
		t.Fatalf("counts: %s", r)
	}
}

// findRead returns the index of id in h.In[p] (or InAll with all).
func findRead(reads []TxnRead, id string) int {
	return slices.IndexFunc(reads, func(rd TxnRead) bool { return rd.ID == id })
}

// insertRead puts rd into reads in offset order.
func insertRead(reads []TxnRead, rd TxnRead) []TxnRead {
	i, _ := slices.BinarySearchFunc(reads, rd.Offset, func(r TxnRead, o int64) int { return int(r.Offset - o) })
	return slices.Insert(reads, i, rd)
}

func readOf(h *TxnHistory, id string) TxnRead {
	for _, reads := range h.InAll {
		if i := findRead(reads, id); i >= 0 {
			return reads[i]
		}
	}
	panic("no record " + id)
}

func TestTxnCheckerCatchesEachViolation(t *testing.T) {
	for _, tc := range []struct {
		name    string
		breakIt func(h *TxnHistory, l *txnLog)
		count   func(r TxnResult) int
	}{
		{"an aborted record read committed", func(h *TxnHistory, _ *txnLog) {
			rd := readOf(h, "t0-1-0")
			h.In[0] = insertRead(h.In[0], rd)
		}, func(r TxnResult) int { return r.AbortedRead }},
		{"a record of an unknown transaction read, the rest not", func(h *TxnHistory, _ *txnLog) {
			rd := readOf(h, "t1-1-0")
			h.In[0] = insertRead(h.In[0], rd)
			// Only one record: it is whole. Give it a second, unread.
			h.Txns[3].Records = append(h.Txns[3].Records, TxnRecord{ID: "t1-1-1", Partition: 1, Offset: -1})
		}, func(r TxnResult) int { return r.Torn }},
		{"an aborted record read during the run", func(h *TxnHistory, _ *txnLog) {
			rd := readOf(h, "t0-1-1")
			h.Live = append(h.Live, Record{Partition: rd.Partition, Offset: rd.Offset, ID: rd.ID})
		}, func(r TxnResult) int { return r.AbortedRead }},
		{"a record of an unknown transaction that did not commit read during the run", func(h *TxnHistory, _ *txnLog) {
			rd := readOf(h, "t1-1-0")
			h.Live = append(h.Live, Record{Partition: rd.Partition, Offset: rd.Offset, ID: rd.ID})
		}, func(r TxnResult) int { return r.AbortedRead }},
		{"a committed transaction torn", func(h *TxnHistory, _ *txnLog) {
			i := findRead(h.In[1], "t0-0-1")
			h.In[1] = slices.Delete(h.In[1], i, i+1)
		}, func(r TxnResult) int { return r.Torn }},
		{"an unknown transaction torn", func(h *TxnHistory, _ *txnLog) {
			i := findRead(h.In[0], "t1-0-1")
			h.In[0] = slices.Delete(h.In[0], i, i+1)
		}, func(r TxnResult) int { return r.Torn }},
		{"a committed transaction missing its records", func(h *TxnHistory, _ *txnLog) {
			i := findRead(h.In[1], "t0-2-0")
			h.In[1] = slices.Delete(h.In[1], i, i+1)
		}, func(r TxnResult) int { return r.TxnLost }},
		{"a record read twice", func(h *TxnHistory, l *txnLog) {
			rd := readOf(h, "t0-0-0")
			rd.Offset = l.off[0]
			h.In[0] = append(h.In[0], rd)
			h.InEnd[0]++
		}, func(r TxnResult) int { return r.Duplicated }},
		{"offsets not increasing", func(h *TxnHistory, _ *txnLog) {
			h.In[0][0], h.In[0][1] = h.In[0][1], h.In[0][0]
		}, func(r TxnResult) int { return r.OutOfOrder }},
		{"a producer's transactions out of order", func(h *TxnHistory, _ *txnLog) {
			// t0-0's record in partition 1 and t0-2's swap places, as
			// acknowledged and as read.
			a, b := readOf(h, "t0-0-1"), readOf(h, "t0-2-0")
			for _, reads := range [][]TxnRead{h.In[1], h.InAll[1]} {
				reads[findRead(reads, a.ID)].ID, reads[findRead(reads, b.ID)].ID = b.ID, a.ID
			}
			h.Txns[0].Records[1].Offset, h.Txns[4].Records[0].Offset = b.Offset, a.Offset
			h.Live, h.CTP, h.Out, h.Committed = nil, nil, nil, map[int32]int64{0: 100, 1: 100}
		}, func(r TxnResult) int { return r.OutOfOrder }},
		{"read committed elsewhere than acknowledged", func(h *TxnHistory, _ *txnLog) {
			h.Txns[0].Records[0].Offset = 7
		}, func(r TxnResult) int { return r.Misplaced }},
		{"read committed and uncommitted disagree", func(h *TxnHistory, _ *txnLog) {
			h.InAll[0][findRead(h.InAll[0], "t0-0-0")].ID = "t0-0-2"
		}, func(r TxnResult) int { return r.Misplaced }},
		{"a phantom record", func(h *TxnHistory, l *txnLog) {
			h.In[1] = append(h.In[1], TxnRead{Partition: 1, Offset: l.off[1] - 1, ID: "never-sent"})
			h.In[1] = slices.DeleteFunc(h.In[1], func(rd TxnRead) bool { return rd.Marker != "" && rd.Offset == l.off[1]-1 })
		}, func(r TxnResult) int { return r.Phantom }},
		{"a marker missing from read_uncommitted", func(h *TxnHistory, _ *txnLog) {
			i := slices.IndexFunc(h.InAll[0], func(rd TxnRead) bool { return rd.Marker != "" })
			h.InAll[0] = slices.Delete(h.InAll[0], i, i+1)
		}, func(r TxnResult) int { return r.Gaps }},
		{"read_uncommitted short of the end", func(h *TxnHistory, _ *txnLog) {
			h.InEnd[1]++
		}, func(r TxnResult) int { return r.Gaps }},
		{"the committed offset behind the output", func(h *TxnHistory, _ *txnLog) {
			h.Committed[0] -= 2
		}, func(r TxnResult) int { return r.CTPBeyond }},
		{"the committed offset past what the output holds", func(h *TxnHistory, l *txnLog) {
			l.add("t0-3", 0, 3, TxnCommitted, true, 0)
			h.Committed[0] = l.off[0]
		}, func(r TxnResult) int { return r.CTPMissing }},
		{"no committed offset, yet an output", func(h *TxnHistory, _ *txnLog) {
			delete(h.Committed, 1)
		}, func(r TxnResult) int { return r.CTPBeyond }},
		{"an input never processed", func(h *TxnHistory, l *txnLog) {
			l.add("t0-3", 0, 3, TxnCommitted, true, 0)
		}, func(r TxnResult) int { return r.CTPLag }},
		{"an input in the output twice", func(h *TxnHistory, _ *txnLog) {
			o := h.Out[0][0]
			o.Offset = h.Out[0][len(h.Out[0])-1].Offset + 2
			h.Out[0] = append(h.Out[0], o)
		}, func(r TxnResult) int { return r.CTPDuplicated }},
		{"an input in the output twice, from two transactions", func(h *TxnHistory, _ *txnLog) {
			o := h.Out[0][0]
			o.Offset = h.Out[0][len(h.Out[0])-1].Offset + 2
			o.Txn = "c3"
			h.Out[0] = append(h.Out[0], o)
			h.CTP = append(h.CTP, CTPTxn{ID: "c3", Inputs: []Record{o.Input}, Outcome: TxnUnknown})
		}, func(r TxnResult) int { return r.CTPDuplicated }},
		{"an aborted stage transaction in the output", func(h *TxnHistory, _ *txnLog) {
			for i := range h.Out[1] {
				if h.Out[1][i].Txn == "c2" {
					h.Out[1][i].Txn = "c1"
				}
			}
		}, func(r TxnResult) int { return r.AbortedRead }},
		{"a stage transaction torn", func(h *TxnHistory, _ *txnLog) {
			i := slices.IndexFunc(h.Out[0], func(o OutRecord) bool { return o.Txn == "c0" })
			h.Out[0] = slices.Delete(h.Out[0], i, i+1)
		}, func(r TxnResult) int { return r.Torn }},
		{"a committed stage transaction missing from the output", func(h *TxnHistory, _ *txnLog) {
			for p := range h.Out {
				h.Out[p] = slices.DeleteFunc(h.Out[p], func(o OutRecord) bool { return o.Txn == "c2" })
			}
		}, func(r TxnResult) int { return r.TxnLost }},
		{"the output copying an input from elsewhere", func(h *TxnHistory, _ *txnLog) {
			h.Out[0][0].Input.Offset++
		}, func(r TxnResult) int { return r.CTPMismatch }},
		{"the output in the wrong partition", func(h *TxnHistory, _ *txnLog) {
			h.Out[1] = append(h.Out[1], h.Out[0][0])
			h.Out[1][len(h.Out[1])-1].Offset = 100
			h.Out[0] = h.Out[0][1:]
		}, func(r TxnResult) int { return r.Misplaced }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, l := goodTxnHistory()
			tc.breakIt(h, l)
			r := CheckTxns(h)
			if r.OK() || tc.count(r) == 0 {
				t.Fatalf("not caught: %s\n%v", r, r.Problems)
			}
			if len(r.Problems) == 0 {
				t.Fatal("no problem described")
			}
			t.Logf("%s", r.Problems[0])
		})
	}
}
