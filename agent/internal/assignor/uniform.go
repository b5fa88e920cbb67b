package assignor

import (
	"cmp"
	"container/heap"
	"slices"

	"github.com/google/uuid"
)

// uniform balances partitions across members, then keeps as many of their
// current partitions as balance allows (see the package doc).
type uniform struct{}

func (uniform) Name() string { return uniformName }

func (uniform) Assign(members []Member, topics map[uuid.UUID]Topic) map[string]Assignment {
	g := newGroup(members, topics)
	owners := g.currentOwners()
	if g.homogeneous() {
		g.assignHomogeneous(owners)
	} else {
		g.assignHeterogeneous(owners)
	}
	return g.resultFromOwners(owners)
}

// assignHomogeneous completes owners, the current owner (or -1) of each
// partition, into a balanced assignment of a group whose members all
// subscribe to every topic.
//
// With P partitions and M members each member's quota is ⌊P/M⌋, and the
// P%M members holding the most get one more, so that every member keeps
// min(held, quota) of what it holds: the most any balanced assignment
// keeps. The members under their quota then take turns, one partition at
// a time, each taking a partition of the topic it lacks most (the one
// where its count falls furthest below the topic's partitions per member):
// a partition nobody holds if there is one, else one given up by the
// member over its quota that holds the most of that topic.
func (g *group) assignHomogeneous(owners [][]int32) {
	n := len(g.members)
	if n == 0 || len(g.topics) == 0 {
		return
	}
	h := holdingsOf(owners, n)
	total := 0
	for _, own := range owners {
		total += len(own)
	}
	byHeld := make([]int32, n)
	for i := range byHeld {
		byHeld[i] = int32(i)
	}
	slices.SortFunc(byHeld, func(a, b int32) int {
		if c := cmp.Compare(h.held(b), h.held(a)); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
	quota := make([]int32, n)
	for i, m := range byHeld {
		quota[m] = int32(total / n)
		if i < total%n {
			quota[m]++
		}
	}
	newDealer(g, owners, h, quota).deal()
}

// holdings are the partitions members hold, grouped by member, each
// member's by topic and then partition.
type holdings struct {
	parts []int32
	// runs are each member's partitions of one topic: member m's are
	// runs[first[m]:first[m+1]], by topic.
	runs  []run
	first []int32
}

// run is the partitions parts[start:end] of one topic that one member
// holds.
type run struct {
	member, topic, start, end int32
}

// holdingsOf groups by member the partitions owners gives an owner.
func holdingsOf(owners [][]int32, n int) *holdings {
	start := make([]int32, n+1)
	for _, own := range owners {
		for _, m := range own {
			if m >= 0 {
				start[m+1]++
			}
		}
	}
	for m := range n {
		start[m+1] += start[m]
	}
	h := &holdings{parts: make([]int32, start[n]), first: make([]int32, n+1)}
	next := slices.Clone(start[:n])
	runOf := make([][]int32, n) // each member's runs, as indexes into h.runs
	for ti, own := range owners {
		for p, m := range own {
			if m < 0 {
				continue
			}
			k := len(runOf[m])
			if k == 0 || h.runs[runOf[m][k-1]].topic != int32(ti) {
				runOf[m] = append(runOf[m], int32(len(h.runs)))
				h.runs = append(h.runs, run{member: m, topic: int32(ti), start: next[m], end: next[m]})
				k++
			}
			h.parts[next[m]] = int32(p)
			next[m]++
			h.runs[runOf[m][k-1]].end++
		}
	}
	// Reorder the runs by member.
	byMember := make([]run, 0, len(h.runs))
	for m := range n {
		h.first[m] = int32(len(byMember))
		for _, r := range runOf[m] {
			byMember = append(byMember, h.runs[r])
		}
	}
	h.first[n] = int32(len(byMember))
	h.runs = byMember
	return h
}

// held returns how many partitions member m holds.
func (h *holdings) held(m int32) int32 {
	rs := h.runs[h.first[m]:h.first[m+1]]
	if len(rs) == 0 {
		return 0
	}
	return rs[len(rs)-1].end - rs[0].start
}

// dealer hands the partitions of a homogeneous group to the members under
// their quota.
type dealer struct {
	g      *group
	owners [][]int32
	h      *holdings
	// free are each topic's partitions nobody holds, in order; taken
	// counts those already dealt.
	free  [][]int32
	taken []int
	// excess is how many partitions each member must still give up.
	excess []int32
	// givers are, per topic, the runs of members over their quota, the
	// longest first.
	givers []*runHeap
	// wants are, per member under its quota, how many partitions it must
	// still take, and the topics it holds with the one it lacks most
	// first; unheld walks topicsByShare over the topics it holds none of.
	wants  []int32
	lacks  []*lackHeap
	unheld []int
	// topicsByShare are the topics with the most partitions first.
	topicsByShare []int32
}

func newDealer(g *group, owners [][]int32, h *holdings, quota []int32) *dealer {
	n := len(g.members)
	d := &dealer{
		g: g, owners: owners, h: h,
		free:   make([][]int32, len(g.topics)),
		taken:  make([]int, len(g.topics)),
		excess: make([]int32, n),
		givers: make([]*runHeap, len(g.topics)),
		wants:  make([]int32, n),
		lacks:  make([]*lackHeap, n),
		unheld: make([]int, n),
	}
	for ti, own := range owners {
		for p, m := range own {
			if m < 0 {
				d.free[ti] = append(d.free[ti], int32(p))
			}
		}
		d.givers[ti] = &runHeap{runs: h.runs}
		if len(own) > 0 {
			d.topicsByShare = append(d.topicsByShare, int32(ti))
		}
	}
	slices.SortFunc(d.topicsByShare, func(a, b int32) int {
		if c := cmp.Compare(g.topics[b].partitions, g.topics[a].partitions); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
	for mi := range n {
		m := int32(mi)
		runs := h.runs[h.first[m]:h.first[m+1]]
		switch held := h.held(m); {
		case held > quota[m]:
			d.excess[m] = held - quota[m]
			for i := range runs {
				d.givers[runs[i].topic].items = append(d.givers[runs[i].topic].items, h.first[m]+int32(i))
			}
		case held < quota[m]:
			d.wants[m] = quota[m] - held
			l := &lackHeap{members: int64(n), topics: g.topics}
			for _, r := range runs {
				l.items = append(l.items, topicCount{topic: r.topic, count: r.end - r.start})
			}
			heap.Init(l)
			d.lacks[m] = l
		}
	}
	for _, gv := range d.givers {
		heap.Init(gv)
	}
	return d
}

// deal lets the members under their quota take turns until all are full.
func (d *dealer) deal() {
	var turns []int32
	for m, w := range d.wants {
		if w > 0 {
			turns = append(turns, int32(m))
		}
	}
	for len(turns) > 0 {
		for _, m := range turns {
			d.takeOne(m)
		}
		turns = slices.DeleteFunc(turns, func(m int32) bool { return d.wants[m] == 0 })
	}
}

// takeOne gives member m one partition of the topic it lacks most.
func (d *dealer) takeOne(m int32) {
	// The best topic m holds none of: the next obtainable topic by share.
	unheld := int32(-1)
	for ; d.unheld[m] < len(d.topicsByShare); d.unheld[m]++ {
		t := d.topicsByShare[d.unheld[m]]
		if d.obtainable(t) && !d.heldBefore(m, t) {
			unheld = t
			break
		}
	}
	// The best topic m holds some of.
	l := d.lacks[m]
	for l.Len() > 0 && !d.obtainable(l.items[0].topic) {
		heap.Pop(l)
	}
	useUnheld := unheld >= 0
	if useUnheld && l.Len() > 0 {
		have := l.items[0]
		useUnheld = l.lessThan(topicCount{topic: unheld}, have)
	}
	var t int32
	if useUnheld {
		t = unheld
		d.unheld[m]++
		heap.Push(l, topicCount{topic: t, count: 1})
	} else {
		t = l.items[0].topic
		l.items[0].count++
		heap.Fix(l, 0)
	}
	d.owners[t][d.take(t)] = m
	d.wants[m]--
}

// heldBefore reports whether member m held partitions of topic t before
// the dealing began.
func (d *dealer) heldBefore(m, t int32) bool {
	runs := d.h.runs[d.h.first[m]:d.h.first[m+1]]
	_, ok := slices.BinarySearchFunc(runs, t, func(r run, t int32) int { return cmp.Compare(r.topic, t) })
	return ok
}

// obtainable reports whether a partition of topic t is free or can be
// given up by a member over its quota.
func (d *dealer) obtainable(t int32) bool {
	if d.taken[t] < len(d.free[t]) {
		return true
	}
	gv := d.givers[t]
	for gv.Len() > 0 {
		r := &d.h.runs[gv.items[0]]
		if d.excess[r.member] > 0 && r.end > r.start {
			return true
		}
		heap.Pop(gv)
	}
	return false
}

// take returns a partition of topic t, which must be obtainable: a free
// one, else the highest numbered of the longest run of a member over its
// quota.
func (d *dealer) take(t int32) int32 {
	if d.taken[t] < len(d.free[t]) {
		d.taken[t]++
		return d.free[t][d.taken[t]-1]
	}
	gv := d.givers[t]
	r := &d.h.runs[gv.items[0]]
	r.end--
	d.excess[r.member]--
	heap.Fix(gv, 0)
	return d.h.parts[r.end]
}

// topicCount is how many partitions of a topic a member holds.
type topicCount struct{ topic, count int32 }

// lackHeap orders the topics a member holds by how far its count falls
// below the topic's partitions per member, furthest first, then by topic.
type lackHeap struct {
	items   []topicCount
	members int64
	topics  []topic
}

// lack is M times how far count falls below the topic's partitions per
// member.
func (l *lackHeap) lack(tc topicCount) int64 {
	return int64(l.topics[tc.topic].partitions) - l.members*int64(tc.count)
}

func (l *lackHeap) lessThan(a, b topicCount) bool {
	if la, lb := l.lack(a), l.lack(b); la != lb {
		return la > lb
	}
	return a.topic < b.topic
}

func (l *lackHeap) Len() int           { return len(l.items) }
func (l *lackHeap) Less(i, j int) bool { return l.lessThan(l.items[i], l.items[j]) }
func (l *lackHeap) Swap(i, j int)      { l.items[i], l.items[j] = l.items[j], l.items[i] }
func (l *lackHeap) Push(x any)         { l.items = append(l.items, x.(topicCount)) }
func (l *lackHeap) Pop() any {
	x := l.items[len(l.items)-1]
	l.items = l.items[:len(l.items)-1]
	return x
}

// runHeap orders runs (indexes into runs) longest first, then by member.
type runHeap struct {
	items []int32
	runs  []run
}

func (h *runHeap) Len() int { return len(h.items) }
func (h *runHeap) Less(i, j int) bool {
	a, b := &h.runs[h.items[i]], &h.runs[h.items[j]]
	if la, lb := a.end-a.start, b.end-b.start; la != lb {
		return la > lb
	}
	return a.member < b.member
}
func (h *runHeap) Swap(i, j int) { h.items[i], h.items[j] = h.items[j], h.items[i] }
func (h *runHeap) Push(x any)    { h.items = append(h.items, x.(int32)) }
func (h *runHeap) Pop() any {
	x := h.items[len(h.items)-1]
	h.items = h.items[:len(h.items)-1]
	return x
}
