package fault

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// goodHistory is a correct run: two producers, two partitions, every
// record acknowledged and read back, one failed record that made it in
// anyway, one that did not; and two groups, a classic one that read what
// was acknowledged and committed short of the failed record, and a
// consumer-protocol one that read everything, one record twice, and
// committed the end.
func goodHistory() *History {
	classic := &GroupHistory{Group: "g-classic", Protocol: "classic", Commits: map[int32][]int64{0: {-1, 0, 2, 2, 4}, 1: {1, 3}}}
	consumer := &GroupHistory{Group: "g-consumer", Protocol: "consumer", Commits: map[int32][]int64{0: {1, 4}, 1: {2, 4}}}
	h := &History{
		Sent:   map[string]Sent{},
		Failed: map[string]error{},
		Log:    map[int32][]Record{},
		Start:  map[int32]int64{0: 0, 1: 0},
		End:    map[int32]int64{},
		Groups: []*GroupHistory{classic, consumer},
	}
	off := map[int32]int64{}
	for prod := range 2 {
		for seq := range 4 {
			id := fmt.Sprintf("p%d-%d", prod, seq)
			p := int32(seq % 2)
			h.Sent[id] = Sent{ID: id, Producer: prod, Seq: int64(seq)}
			rec := Record{Partition: p, Offset: off[p], ID: id}
			off[p]++
			h.Log[p] = append(h.Log[p], rec)
			consumer.Consumed = append(consumer.Consumed, rec)
			if prod == 1 && seq == 3 {
				h.Failed[id] = errors.New("timed out") // failed, but written
				continue
			}
			h.Acks = append(h.Acks, Ack{ID: id, Partition: p, Offset: rec.Offset})
			classic.Consumed = append(classic.Consumed, rec)
		}
	}
	consumer.Consumed = append(consumer.Consumed, h.Log[0][0]) // read again after a rebalance
	h.Sent["p1-4"] = Sent{ID: "p1-4", Producer: 1, Seq: 4}
	h.Failed["p1-4"] = errors.New("timed out") // failed, not written
	h.End[0], h.End[1] = off[0], off[1]
	return h
}

func TestCheckerAcceptsACorrectHistory(t *testing.T) {
	r := Check(goodHistory())
	if !r.OK() {
		t.Fatalf("%s\n%v", r, r.Problems)
	}
	if r.Acked != 7 || r.Read != 8 || r.Failed != 2 || r.FailedPresent != 1 || r.Unresolved != 0 {
		t.Fatalf("counts: %s", r)
	}
	want := []GroupResult{
		{Name: "group g-classic (classic protocol)", Consumed: 7, Committed: 7},
		{Name: "group g-consumer (consumer protocol)", Consumed: 9, Reconsumed: 1, Committed: 8},
	}
	if !slices.Equal(r.Groups, want) {
		t.Fatalf("groups:\n%v\nwant\n%v", r.Groups, want)
	}
}

// noConsumers forgets what the groups read, for a broken log that no
// longer matches it.
func noConsumers(h *History) {
	for _, g := range h.Groups {
		g.Consumed = nil
	}
}

// Every kind of wrong history is caught, and counted where it belongs.
func TestCheckerCatchesEachViolation(t *testing.T) {
	for _, tc := range []struct {
		name    string
		breakIt func(h *History)
		count   func(r Result) int
	}{
		{"lost", func(h *History) {
			// An acknowledged record vanished and the rest moved up.
			h.Log[0] = h.Log[0][1:]
			for i := range h.Log[0] {
				h.Log[0][i].Offset--
			}
			h.End[0]--
			noConsumers(h)
		}, func(r Result) int { return r.Lost }},
		{"duplicated", func(h *History) {
			dup := h.Log[0][0]
			dup.Offset = h.End[0]
			h.Log[0] = append(h.Log[0], dup)
			h.End[0]++
		}, func(r Result) int { return r.Duplicated }},
		{"misplaced", func(h *History) {
			h.Log[0][0].ID, h.Log[0][1].ID = h.Log[0][1].ID, h.Log[0][0].ID
			noConsumers(h)
		}, func(r Result) int { return r.Misplaced }},
		{"phantom", func(h *History) {
			h.Log[1] = append(h.Log[1], Record{Partition: 1, Offset: h.End[1], ID: "never-sent"})
			h.End[1]++
		}, func(r Result) int { return r.Phantom }},
		{"gap", func(h *History) {
			h.Log[1] = append(h.Log[1][:1], h.Log[1][2:]...)
			noConsumers(h)
		}, func(r Result) int { return r.Gaps }},
		{"short of the high watermark", func(h *History) {
			h.End[1]++
		}, func(r Result) int { return r.Gaps }},
		{"reordered", func(h *History) {
			// Producer 0's seq 0 and seq 2 both went to partition 0:
			// acknowledge them the other way round, and log them so.
			var a, b int
			for i, ack := range h.Acks {
				switch ack.ID {
				case "p0-0":
					a = i
				case "p0-2":
					b = i
				}
			}
			h.Acks[a].Offset, h.Acks[b].Offset = h.Acks[b].Offset, h.Acks[a].Offset
			for i, rec := range h.Log[0] {
				switch rec.ID {
				case "p0-0":
					h.Log[0][i].ID = "p0-2"
				case "p0-2":
					h.Log[0][i].ID = "p0-0"
				}
			}
			noConsumers(h)
		}, func(r Result) int { return r.Reordered }},
		{"two records acknowledged at one offset", func(h *History) {
			a := h.Acks[0]
			a.ID = "p1-4"
			h.Acks = append(h.Acks, a)
		}, func(r Result) int { return r.AckConflicts }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := goodHistory()
			tc.breakIt(h)
			r := Check(h)
			if r.OK() || tc.count(r) == 0 {
				t.Fatalf("not caught: %s\n%v", r, r.Problems)
			}
			if len(r.Problems) == 0 {
				t.Fatal("no problem described")
			}
		})
	}
}

// Every kind of wrong group history is caught in either group, counted
// there, and named by its group and protocol.
func TestCheckerCatchesEachGroupViolation(t *testing.T) {
	for _, tc := range []struct {
		name    string
		breakIt func(h *History, g *GroupHistory)
		count   func(g GroupResult) int // nil: counted for the whole history only
		total   func(r Result) int
	}{
		{"consumed what the log does not hold", func(h *History, g *GroupHistory) {
			g.Consumed[0].ID = h.Log[0][1].ID
		}, func(g GroupResult) int { return g.ConsumedMismatch }, func(r Result) int { return r.ConsumedMismatch }},
		{"consumed what was never sent", func(h *History, g *GroupHistory) {
			g.Consumed[0].ID = "never-sent"
		}, nil, func(r Result) int { return r.Phantom }},
		{"not consumed below the committed offset", func(h *History, g *GroupHistory) {
			g.Consumed = slices.DeleteFunc(g.Consumed, func(c Record) bool { return c.Partition == 0 && c.Offset == 1 })
		}, func(g GroupResult) int { return g.Unconsumed }, func(r Result) int { return r.Unconsumed }},
		{"committed past what was consumed", func(h *History, g *GroupHistory) {
			g.Consumed = slices.DeleteFunc(g.Consumed, func(c Record) bool { return c.Partition == 1 && c.Offset == 3 })
			g.Commits[1] = append(g.Commits[1], h.End[1])
		}, func(g GroupResult) int { return g.Unconsumed }, func(r Result) int { return r.Unconsumed }},
		{"committed offset went backwards", func(h *History, g *GroupHistory) {
			g.Commits[0] = append(g.Commits[0], 3)
		}, func(g GroupResult) int { return g.CommitsBackwards }, func(r Result) int { return r.CommitsBackwards }},
		{"committed offset lost", func(h *History, g *GroupHistory) {
			g.Commits[1] = append(g.Commits[1], -1)
		}, func(g GroupResult) int { return g.CommitsBackwards }, func(r Result) int { return r.CommitsBackwards }},
		{"committed past the end", func(h *History, g *GroupHistory) {
			g.Commits[1] = append(g.Commits[1], h.End[1]+1)
		}, func(g GroupResult) int { return g.CommitsBeyondEnd }, func(r Result) int { return r.CommitsBeyondEnd }},
	} {
		for i := range goodHistory().Groups {
			h := goodHistory()
			g := h.Groups[i]
			t.Run(tc.name+"/"+g.Protocol, func(t *testing.T) {
				tc.breakIt(h, g)
				r := Check(h)
				if r.OK() || tc.total(r) == 0 {
					t.Fatalf("not caught: %s\n%v", r, r.Problems)
				}
				if tc.count != nil {
					for j, gr := range r.Groups {
						if n := tc.count(gr); (j == i) != (n > 0) {
							t.Errorf("%s counted %d", gr.Name, n)
						}
					}
				}
				for _, p := range r.Problems {
					if !strings.HasPrefix(p, g.String()+": ") {
						t.Errorf("a problem that does not name %s: %s", g, p)
					}
				}
				if len(r.Problems) == 0 {
					t.Fatal("no problem described")
				}
			})
		}
	}
}

func TestPayloadID(t *testing.T) {
	for in, want := range map[string]string{"p1-2 xxxx": "p1-2", "p3-4": "p3-4", "": ""} {
		if got := payloadID([]byte(in)); got != want {
			t.Errorf("payloadID(%q) = %q, want %q", in, got, want)
		}
	}
}
