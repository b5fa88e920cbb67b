package fault

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"
)

// The checker judges a run's history the way Jepsen's queue checkers do:
// it knows what was sent, what was acknowledged where, what failed, what
// the log holds at the end and what the group consumed and committed
// meanwhile, and counts every way those disagree. It is pure, so
// checker_test.go proves each count can go up.

// Sent is a record a producer handed to its client. ID is unique in the
// run and is the record's value up to its first space.
type Sent struct {
	ID       string
	Producer int
	Seq      int64     // the producer's own counter: its send order
	At       time.Time // when it was handed to the client
}

// Ack is an acknowledgement: the agent said the record is at Offset of
// Partition.
type Ack struct {
	ID        string
	Partition int32
	Offset    int64
	// For the failure report: when, and the producer ID and epoch the
	// client wrote it with.
	At            time.Time
	ProducerID    int64
	ProducerEpoch int16
}

func (a Ack) String() string {
	return fmt.Sprintf("%s at %d/%d (producer id %d epoch %d, acknowledged %s)", a.ID, a.Partition, a.Offset, a.ProducerID, a.ProducerEpoch, a.At.Format("15:04:05.000"))
}

// Record is a record read back: from the final read of the log or by the
// group's consumers.
type Record struct {
	Partition int32
	Offset    int64
	ID        string
}

// History is everything a run observed.
type History struct {
	Sent   map[string]Sent
	Acks   []Ack
	Failed map[string]error // the producer's client gave up on these: indeterminate
	// Log is every partition read from its log start to its high
	// watermark at the end, in the order read.
	Log map[int32][]Record
	// Start and End are each partition's log start offset and high
	// watermark when the log was read.
	Start, End map[int32]int64
	// Consumed is what the group's members read during the run.
	Consumed []Record
	// Commits are the group's committed offsets per partition, sampled
	// during the run in time order; -1 is a sample that had none.
	Commits map[int32][]int64
}

// Result counts what the checker found. Every count but Acked, Read,
// Failed, FailedPresent and Unresolved must be zero.
type Result struct {
	Acked         int // distinct records acknowledged
	Read          int // records in the final log
	Failed        int // records the client gave up on
	FailedPresent int // of those, how many are in the log anyway (allowed: at most once)
	Unresolved    int // sent, neither acknowledged nor failed

	Lost             int // acknowledged, not in the log
	Duplicated       int // extra copies of one record in the log
	Misplaced        int // acknowledged at one offset, found at another
	Phantom          int // in the log (or consumed) but never sent
	Gaps             int // offsets missing, repeated or out of order in a partition's log
	Reordered        int // one producer's acknowledged records out of send order in a partition
	AckConflicts     int // one record acknowledged twice differently, or two records at one offset
	ConsumedMismatch int // consumed at an offset where the log holds another record
	CommitsBackwards int // a committed offset lower than one sampled before it
	CommitsBeyondEnd int // a committed offset past the high watermark

	// Problems describes the first problems found, for the failure
	// message.
	Problems []string
}

const maxProblems = 20

func (r *Result) problem(format string, args ...any) {
	if len(r.Problems) < maxProblems {
		r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
	}
}

// OK reports whether the history is correct.
func (r Result) OK() bool {
	return r.Lost+r.Duplicated+r.Misplaced+r.Phantom+r.Gaps+r.Reordered+r.AckConflicts+
		r.ConsumedMismatch+r.CommitsBackwards+r.CommitsBeyondEnd == 0
}

// String is the counts on one line.
func (r Result) String() string {
	return fmt.Sprintf("acked=%d read=%d lost=%d duplicated=%d misplaced=%d phantom=%d gaps=%d reordered=%d ack_conflicts=%d consumed_mismatch=%d commits_backwards=%d commits_beyond_end=%d failed=%d failed_present=%d unresolved=%d",
		r.Acked, r.Read, r.Lost, r.Duplicated, r.Misplaced, r.Phantom, r.Gaps, r.Reordered, r.AckConflicts,
		r.ConsumedMismatch, r.CommitsBackwards, r.CommitsBeyondEnd, r.Failed, r.FailedPresent, r.Unresolved)
}

type place struct {
	partition int32
	offset    int64
}

// Check judges h.
func Check(h *History) Result {
	var r Result

	// Acknowledgements: one place per record, one record per place.
	ackAt := map[string]place{}
	ackOf := map[string]Ack{}
	ackedBy := map[place]Ack{}
	for _, a := range h.Acks {
		pl := place{a.Partition, a.Offset}
		if prev, ok := ackOf[a.ID]; ok {
			if ackAt[a.ID] != pl {
				r.AckConflicts++
				r.problem("acknowledged twice: %v, then %v", prev, a)
			}
			continue
		}
		if other, ok := ackedBy[pl]; ok {
			r.AckConflicts++
			r.problem("two records acknowledged at one offset: %v, and %v", other, a)
		} else {
			ackedBy[pl] = a
		}
		if _, ok := h.Sent[a.ID]; !ok {
			r.AckConflicts++
			r.problem("acknowledged but never sent: %v", a)
		}
		ackAt[a.ID] = pl
		ackOf[a.ID] = a
	}
	r.Acked = len(ackAt)

	// The log: contiguous offsets, and where each record is.
	found := map[string][]place{}
	logAt := map[place]string{}
	parts := make([]int32, 0, len(h.Log))
	for p := range h.Log {
		parts = append(parts, p)
	}
	for p := range h.End {
		if _, ok := h.Log[p]; !ok {
			parts = append(parts, p)
		}
	}
	slices.Sort(parts)
	for _, p := range parts {
		recs := h.Log[p]
		next := h.Start[p]
		for _, rec := range recs {
			r.Read++
			if rec.Offset != next {
				r.Gaps++
				r.problem("partition %d: offset %d read where %d was expected", p, rec.Offset, next)
			}
			next = rec.Offset + 1
			pl := place{p, rec.Offset}
			logAt[pl] = rec.ID
			found[rec.ID] = append(found[rec.ID], pl)
		}
		if end, ok := h.End[p]; ok && next != end {
			r.Gaps++
			r.problem("partition %d: read up to offset %d, high watermark %d", p, next, end)
		}
	}
	for id, pls := range found {
		if _, ok := h.Sent[id]; !ok {
			r.Phantom += len(pls)
			r.problem("%q at %d/%d was never sent", id, pls[0].partition, pls[0].offset)
			continue
		}
		if len(pls) > 1 {
			r.Duplicated += len(pls) - 1
			r.problem("%s is in the log %d times: %v", id, len(pls), pls)
		}
	}
	for id, pl := range ackAt {
		pls := found[id]
		switch {
		case len(pls) == 0:
			r.Lost++
			r.problem("lost: %v is not in the log (the log has %q there)", ackOf[id], logAt[pl])
		case !slices.Contains(pls, pl):
			r.Misplaced++
			r.problem("misplaced: %v is at %d/%d", ackOf[id], pls[0].partition, pls[0].offset)
		}
	}

	// Each producer's acknowledged records keep its send order within a
	// partition.
	type stream struct {
		producer  int
		partition int32
	}
	type acked struct {
		seq    int64
		offset int64
		id     string
	}
	streams := map[stream][]acked{}
	for id, pl := range ackAt {
		s, ok := h.Sent[id]
		if !ok {
			continue
		}
		k := stream{s.Producer, pl.partition}
		streams[k] = append(streams[k], acked{s.Seq, pl.offset, id})
	}
	for k, as := range streams {
		slices.SortFunc(as, func(a, b acked) int { return cmp.Compare(a.seq, b.seq) })
		for i := 1; i < len(as); i++ {
			if as[i].offset <= as[i-1].offset {
				r.Reordered++
				r.problem("producer %d, partition %d: %s (sent after %s) acknowledged at offset %d, not after %d", k.producer, k.partition, as[i].id, as[i-1].id, as[i].offset, as[i-1].offset)
			}
		}
	}

	// Outcomes of what was sent.
	for id := range h.Sent {
		_, ok := ackAt[id]
		switch {
		case ok:
		case h.Failed[id] != nil:
			r.Failed++
			if len(found[id]) > 0 {
				r.FailedPresent++
			}
		default:
			r.Unresolved++
		}
	}

	// What the group consumed is what the log holds there.
	for _, c := range h.Consumed {
		if _, ok := h.Sent[c.ID]; !ok {
			r.Phantom++
			r.problem("consumer read %q at %d/%d, which was never sent", c.ID, c.Partition, c.Offset)
			continue
		}
		if got, ok := logAt[place{c.Partition, c.Offset}]; !ok || got != c.ID {
			r.ConsumedMismatch++
			r.problem("consumer read %s at %d/%d; the log has %q there", c.ID, c.Partition, c.Offset, got)
		}
	}

	// Committed offsets only move forward, and never past the end.
	cparts := make([]int32, 0, len(h.Commits))
	for p := range h.Commits {
		cparts = append(cparts, p)
	}
	slices.Sort(cparts)
	for _, p := range cparts {
		high := int64(-1)
		for i, o := range h.Commits[p] {
			if o < high {
				r.CommitsBackwards++
				r.problem("partition %d: committed offset went from %d to %d (sample %d)", p, high, o, i)
			}
			high = max(high, o)
		}
		if end, ok := h.End[p]; ok && high > end {
			r.CommitsBeyondEnd++
			r.problem("partition %d: committed offset %d is past the high watermark %d", p, high, end)
		}
	}
	return r
}

// payloadID is a record value's ID: the value up to its first space.
func payloadID(value []byte) string {
	s := string(value)
	if i := strings.IndexByte(s, ' '); i >= 0 {
		return s[:i]
	}
	return s
}
