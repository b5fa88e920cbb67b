package assignor

import (
	"cmp"
	"container/heap"
	"slices"
)

// assignHeterogeneous completes owners, the current owner (or -1) of each
// partition, into an assignment balanced as far as the members' differing
// subscriptions allow.
//
// Members keep what they hold. Each free partition goes to the least
// loaded subscriber of its topic, topic by topic, the topics with the most
// partitions per subscriber first (Kafka's order). Then, while some topic
// has a holder with two or more partitions more than one of its
// subscribers, a partition of the topic with the widest such gap moves
// from its most loaded holder to its least loaded subscriber. Taking the
// widest gap first takes partitions from the most loaded members, so
// partitions seldom move on in chains; each move lowers the sum of the
// squared loads by at least two, so the moves end.
func (g *group) assignHeterogeneous(owners [][]int32) {
	b := newBalancer(g, owners)
	order := make([]int32, len(g.topics))
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortFunc(order, func(a, c int32) int {
		ta, tc := &g.topics[a], &g.topics[c]
		sa, sc := int64(len(ta.subscribers)), int64(len(tc.subscribers))
		// Partitions per subscriber, descending.
		if x := cmp.Compare(int64(tc.partitions)*sa, int64(ta.partitions)*sc); x != 0 {
			return x
		}
		if x := cmp.Compare(sa, sc); x != 0 {
			return x
		}
		return cmp.Compare(a, c)
	})
	for _, t := range order {
		b.assignFree(t)
	}
	b.balance()
}

// balancer holds the state of a heterogeneous assignment: who holds what,
// each member's load, and per topic its subscribers ordered by load.
//
// A member's place in a topic is its position among the topic's
// subscribers.
type balancer struct {
	g      *group
	owners [][]int32
	load   []int32
	// held[t][j] are the partitions of topic t its j-th subscriber holds:
	// those it held before (ascending), then those it was given, which
	// move first.
	held [][][]int32
	// place[m][k] is member m's position among the subscribers of its
	// k-th topic.
	place [][]int32

	// light[t] orders all subscribers of t least loaded first, heavy[t]
	// the ones holding some of t most loaded first. gaps orders the topics
	// by gap[t], the difference between the two, widest first, then by
	// lightHolds[t], how many of t the least loaded subscriber holds.
	// gap and lightHolds are snapshots, updated only right before their
	// topic is put back in order.
	light, heavy []*placeHeap
	gaps         *placeHeap
	gap          []int32
	lightHolds   []int32
}

func newBalancer(g *group, owners [][]int32) *balancer {
	b := &balancer{
		g: g, owners: owners,
		load:  make([]int32, len(g.members)),
		held:  make([][][]int32, len(g.topics)),
		place: make([][]int32, len(g.members)),
	}
	for ti, t := range g.topics {
		for j, m := range t.subscribers {
			b.place[m] = append(b.place[m], int32(j))
		}
		b.held[ti] = make([][]int32, len(t.subscribers))
		for p, m := range owners[ti] {
			if m >= 0 {
				j, _ := slices.BinarySearch(t.subscribers, m)
				b.held[ti][j] = append(b.held[ti][j], int32(p))
				b.load[m]++
			}
		}
	}
	return b
}

// lighter orders subscriber positions of topic t by load, then by how
// many of t they hold, then by member.
func (b *balancer) lighter(t int32) func(x, y int32) bool {
	subs, held := b.g.topics[t].subscribers, b.held[t]
	return func(x, y int32) bool {
		mx, my := subs[x], subs[y]
		if b.load[mx] != b.load[my] {
			return b.load[mx] < b.load[my]
		}
		if len(held[x]) != len(held[y]) {
			return len(held[x]) < len(held[y])
		}
		return mx < my
	}
}

// heavier orders subscriber positions of topic t by load, descending, then
// by how many of t they hold, descending, then by member.
func (b *balancer) heavier(t int32) func(x, y int32) bool {
	subs, held := b.g.topics[t].subscribers, b.held[t]
	return func(x, y int32) bool {
		mx, my := subs[x], subs[y]
		if b.load[mx] != b.load[my] {
			return b.load[mx] > b.load[my]
		}
		if len(held[x]) != len(held[y]) {
			return len(held[x]) > len(held[y])
		}
		return mx < my
	}
}

// assignFree gives each free partition of topic t to its least loaded
// subscriber.
func (b *balancer) assignFree(t int32) {
	own := b.owners[t]
	if !slices.Contains(own, -1) {
		return
	}
	subs := b.g.topics[t].subscribers
	light := newPlaceHeap(len(subs), b.lighter(t))
	for j := range subs {
		light.add(int32(j))
	}
	heap.Init(light)
	for p, m := range own {
		if m >= 0 {
			continue
		}
		j := light.items[0]
		m = subs[j]
		own[p] = m
		b.held[t][j] = append(b.held[t][j], int32(p))
		b.load[m]++
		heap.Fix(light, 0)
	}
}

// balance moves partitions, widest gap first, until no partition could
// move to a subscriber of its topic holding two or more fewer.
func (b *balancer) balance() {
	nt := len(b.g.topics)
	b.light = make([]*placeHeap, nt)
	b.heavy = make([]*placeHeap, nt)
	b.gap = make([]int32, nt)
	b.lightHolds = make([]int32, nt)
	for ti, t := range b.g.topics {
		if len(t.subscribers) < 2 {
			continue
		}
		light := newPlaceHeap(len(t.subscribers), b.lighter(int32(ti)))
		heavy := newPlaceHeap(len(t.subscribers), b.heavier(int32(ti)))
		for j := range t.subscribers {
			light.add(int32(j))
			if len(b.held[ti][j]) > 0 {
				heavy.add(int32(j))
			}
		}
		heap.Init(light)
		heap.Init(heavy)
		b.light[ti], b.heavy[ti] = light, heavy
	}
	b.gaps = newPlaceHeap(nt, b.wider)
	for ti := range b.g.topics {
		if b.light[ti] != nil {
			b.measure(int32(ti))
			b.gaps.add(int32(ti))
		}
	}
	heap.Init(b.gaps)

	for b.gaps.Len() > 0 {
		t := b.gaps.items[0]
		if b.gap[t] < 2 {
			return
		}
		from, to := b.heavy[t].items[0], b.light[t].items[0]
		subs := b.g.topics[t].subscribers

		ps := b.held[t][from]
		p := ps[len(ps)-1]
		b.held[t][from] = ps[:len(ps)-1]
		b.load[subs[from]]--
		b.reorder(subs[from])

		b.held[t][to] = append(b.held[t][to], p)
		b.load[subs[to]]++
		b.owners[t][p] = subs[to]
		b.reorder(subs[to])

		b.regap(subs[from])
		b.regap(subs[to])
	}
}

// measure sets gap[t], the load of topic t's most loaded holder less that
// of its least loaded subscriber (-1 with no holder), and lightHolds[t].
func (b *balancer) measure(t int32) {
	subs := b.g.topics[t].subscribers
	light := b.light[t].items[0]
	b.lightHolds[t] = int32(len(b.held[t][light]))
	if b.heavy[t].Len() == 0 {
		b.gap[t] = -1
		return
	}
	b.gap[t] = b.load[subs[b.heavy[t].items[0]]] - b.load[subs[light]]
}

// wider orders topics by gap, widest first, then by how few partitions of
// the topic its least loaded subscriber holds (so that a member taking
// partitions takes them from several topics), then by topic.
func (b *balancer) wider(x, y int32) bool {
	if b.gap[x] != b.gap[y] {
		return b.gap[x] > b.gap[y]
	}
	if b.lightHolds[x] != b.lightHolds[y] {
		return b.lightHolds[x] < b.lightHolds[y]
	}
	return x < y
}

// reorder puts member m back in order in the heaps of its topics after its
// load, or what it holds of one topic, changed. It must be called after
// each such change to one member, before the next: a heap is put back in
// order one changed key at a time.
func (b *balancer) reorder(m int32) {
	for k, t := range b.g.members[m].topics {
		if b.light[t] == nil {
			continue
		}
		j := b.place[m][k]
		heap.Fix(b.light[t], int(b.light[t].at[j]))
		heavy := b.heavy[t]
		switch in, holds := heavy.at[j] >= 0, len(b.held[t][j]) > 0; {
		case in && holds:
			heap.Fix(heavy, int(heavy.at[j]))
		case in:
			heap.Remove(heavy, int(heavy.at[j]))
		case holds:
			heap.Push(heavy, j)
		}
	}
}

// regap recomputes the gaps of member m's topics.
func (b *balancer) regap(m int32) {
	for _, t := range b.g.members[m].topics {
		if b.light[t] != nil {
			b.measure(t)
			heap.Fix(b.gaps, int(b.gaps.at[t]))
		}
	}
}

// placeHeap is a heap of positions 0..n-1 (subscriber positions, or
// topics) that knows where each position is, so one whose key changed can
// be put back in order.
type placeHeap struct {
	items []int32
	at    []int32 // at[x] is x's index in items, -1 when absent
	less  func(x, y int32) bool
}

func newPlaceHeap(n int, less func(x, y int32) bool) *placeHeap {
	h := &placeHeap{items: make([]int32, 0, n), at: make([]int32, n), less: less}
	for i := range h.at {
		h.at[i] = -1
	}
	return h
}

// add appends x without ordering; call heap.Init after adding.
func (h *placeHeap) add(x int32) {
	h.at[x] = int32(len(h.items))
	h.items = append(h.items, x)
}

func (h *placeHeap) Len() int           { return len(h.items) }
func (h *placeHeap) Less(i, j int) bool { return h.less(h.items[i], h.items[j]) }
func (h *placeHeap) Swap(i, j int) {
	h.items[i], h.items[j] = h.items[j], h.items[i]
	h.at[h.items[i]], h.at[h.items[j]] = int32(i), int32(j)
}
func (h *placeHeap) Push(x any) { h.add(x.(int32)) }
func (h *placeHeap) Pop() any {
	x := h.items[len(h.items)-1]
	h.items = h.items[:len(h.items)-1]
	h.at[x] = -1
	return x
}
