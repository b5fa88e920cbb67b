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
// the log holds at the end and what each consumer group consumed and
// committed meanwhile, and counts every way those disagree. It is pure, so
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

// Record is a record read back: from the final read of the log or by a
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
	// Groups are the consumer groups that read the topic, each judged
	// alike whatever protocol its members speak.
	Groups []*GroupHistory
}

// GroupHistory is what one consumer group did during the run.
type GroupHistory struct {
	Group    string // the group ID
	Protocol string // its members' group protocol: classic, or consumer (KIP-848)
	// Consumed is what the group's members read, in the order read.
	Consumed []Record
	// Commits are the group's committed offsets per partition, sampled
	// during the run in time order; -1 is a sample that had none. The
	// last sample is taken after the members stopped.
	Commits map[int32][]int64
}

// String names the group and its protocol, as every problem found in it
// does.
func (g *GroupHistory) String() string {
	return fmt.Sprintf("group %s (%s protocol)", g.Group, g.Protocol)
}

// Result counts what the checker found. Every count but Acked, Read,
// Failed, FailedPresent and Unresolved must be zero.
type Result struct {
	Acked         int // distinct records acknowledged
	Read          int // records in the final log
	Failed        int // records the client gave up on
	FailedPresent int // of those, how many are in the log anyway (allowed: at most once)
	Unresolved    int // sent, neither acknowledged nor failed

	Lost         int // acknowledged, not in the log
	Duplicated   int // extra copies of one record in the log
	Misplaced    int // acknowledged at one offset, found at another
	Phantom      int // in the log (or consumed) but never sent
	Gaps         int // offsets missing, repeated or out of order in a partition's log
	Reordered    int // one producer's acknowledged records out of send order in a partition
	AckConflicts int // one record acknowledged twice differently, or two records at one offset

	// Summed over the groups (Groups has them one by one):
	ConsumedMismatch int // consumed at an offset where the log holds another record
	Unconsumed       int // in the log below a committed offset, never consumed by the group
	CommitsBackwards int // a committed offset lower than one sampled before it
	CommitsBeyondEnd int // a committed offset past the high watermark

	Groups []GroupResult

	// Problems describes the first problems found, for the failure
	// message.
	Problems []string
}

// GroupResult is what the checker found in one group.
type GroupResult struct {
	Name       string // as GroupHistory.String
	Consumed   int    // records its members read
	Reconsumed int    // of those, offsets the group had read before (allowed: at least once)
	Committed  int64  // the highest committed offsets, summed over partitions

	ConsumedMismatch int
	Unconsumed       int
	CommitsBackwards int
	CommitsBeyondEnd int
}

// String is the group's counts on one line.
func (g GroupResult) String() string {
	return fmt.Sprintf("%s: consumed=%d reconsumed=%d committed=%d consumed_mismatch=%d unconsumed=%d commits_backwards=%d commits_beyond_end=%d",
		g.Name, g.Consumed, g.Reconsumed, g.Committed, g.ConsumedMismatch, g.Unconsumed, g.CommitsBackwards, g.CommitsBeyondEnd)
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
		r.ConsumedMismatch+r.Unconsumed+r.CommitsBackwards+r.CommitsBeyondEnd == 0
}

// String is the counts on one line, the groups' summed.
func (r Result) String() string {
	return fmt.Sprintf("acked=%d read=%d lost=%d duplicated=%d misplaced=%d phantom=%d gaps=%d reordered=%d ack_conflicts=%d consumed_mismatch=%d unconsumed=%d commits_backwards=%d commits_beyond_end=%d failed=%d failed_present=%d unresolved=%d",
		r.Acked, r.Read, r.Lost, r.Duplicated, r.Misplaced, r.Phantom, r.Gaps, r.Reordered, r.AckConflicts,
		r.ConsumedMismatch, r.Unconsumed, r.CommitsBackwards, r.CommitsBeyondEnd, r.Failed, r.FailedPresent, r.Unresolved)
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

	for _, g := range h.Groups {
		r.Groups = append(r.Groups, r.checkGroup(h, g, logAt))
	}
	return r
}

// checkGroup judges one group: what it consumed is what the log holds
// there; its committed offsets only move forward and never past the end;
// and it consumed every record the log holds below the highest offset it
// committed (at least once: a member commits only what it has read, and
// starts from the group's committed offset). Its counts are added to r's.
func (r *Result) checkGroup(h *History, g *GroupHistory, logAt map[place]string) GroupResult {
	gr := GroupResult{Name: g.String(), Consumed: len(g.Consumed)}
	consumed := map[place]bool{}
	for _, c := range g.Consumed {
		pl := place{c.Partition, c.Offset}
		if consumed[pl] {
			gr.Reconsumed++
		}
		consumed[pl] = true
		if _, ok := h.Sent[c.ID]; !ok {
			r.Phantom++
			r.problem("%s: a member read %q at %d/%d, which was never sent", g, c.ID, c.Partition, c.Offset)
			continue
		}
		if got, ok := logAt[pl]; !ok || got != c.ID {
			gr.ConsumedMismatch++
			r.problem("%s: a member read %s at %d/%d; the log has %q there", g, c.ID, c.Partition, c.Offset, got)
		}
	}

	parts := make([]int32, 0, len(g.Commits))
	for p := range g.Commits {
		parts = append(parts, p)
	}
	slices.Sort(parts)
	for _, p := range parts {
		high := int64(-1)
		for i, o := range g.Commits[p] {
			if o < high {
				gr.CommitsBackwards++
				r.problem("%s: partition %d: committed offset went from %d to %d (sample %d)", g, p, high, o, i)
			}
			high = max(high, o)
		}
		if high < 0 {
			continue
		}
		gr.Committed += high
		if end, ok := h.End[p]; ok && high > end {
			gr.CommitsBeyondEnd++
			r.problem("%s: partition %d: committed offset %d is past the high watermark %d", g, p, high, end)
		}
		var missed []int64
		for _, rec := range h.Log[p] {
			if rec.Offset < high && !consumed[place{p, rec.Offset}] {
				missed = append(missed, rec.Offset)
			}
		}
		if len(missed) > 0 {
			gr.Unconsumed += len(missed)
			r.problem("%s: partition %d: committed offset %d, but no member read the records at %s", g, p, high, offsetList(missed))
		}
	}
	r.ConsumedMismatch += gr.ConsumedMismatch
	r.Unconsumed += gr.Unconsumed
	r.CommitsBackwards += gr.CommitsBackwards
	r.CommitsBeyondEnd += gr.CommitsBeyondEnd
	return gr
}

// payloadID is a record value's ID: the value up to its first space.
func payloadID(value []byte) string {
	s := string(value)
	if i := strings.IndexByte(s, ' '); i >= 0 {
		return s[:i]
	}
	return s
}
