package assignor

import (
	"slices"
	"strings"

	"github.com/google/uuid"
)

// rangeAssignor splits each topic's partitions into contiguous ranges
// among its subscribers (see the package doc).
type rangeAssignor struct{}

func (rangeAssignor) Name() string { return rangeName }

func (rangeAssignor) Assign(members []Member, topics map[uuid.UUID]Topic) map[string]Assignment {
	g := newGroup(members, topics)
	out := g.emptyResult()

	// rank orders members: static ones by instance ID first, then the
	// others by member ID (g.members is already in member ID order).
	order := make([]int32, len(g.members))
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortStableFunc(order, func(a, b int32) int {
		ia, ib := g.members[a].instanceID, g.members[b].instanceID
		switch {
		case ia != "" && ib != "":
			return strings.Compare(ia, ib)
		case ia != "":
			return -1
		case ib != "":
			return 1
		}
		return 0
	})
	rank := make([]int32, len(g.members))
	for r, m := range order {
		rank[m] = int32(r)
	}

	var subscribers []int32
	for _, t := range g.topics {
		subscribers = append(subscribers[:0], t.subscribers...)
		slices.SortFunc(subscribers, func(a, b int32) int { return int(rank[a] - rank[b]) })
		n := int32(len(subscribers))
		each, extra := t.partitions/n, t.partitions%n
		all := make([]int32, t.partitions)
		for p := range all {
			all[p] = int32(p)
		}
		start := int32(0)
		for i, m := range subscribers {
			size := each
			if int32(i) < extra {
				size++
			}
			if size > 0 {
				out[g.members[m].id][t.id] = all[start : start+size : start+size]
				start += size
			}
		}
	}
	return out
}
