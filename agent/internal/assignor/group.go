package assignor

import (
	"bytes"
	"slices"
	"strings"

	"github.com/google/uuid"
)

// group is an assignor's input in canonical form, so that what follows
// depends on neither the order of the input's slices nor that of its maps.
type group struct {
	// members are ordered by ID, one per ID.
	members []member
	// topics are the topics some member subscribes to, ordered by ID;
	// topicIndex maps their IDs to their indexes.
	topics     []topic
	topicIndex map[uuid.UUID]int32
}

// member is one member of a group.
type member struct {
	id         string
	instanceID string
	// topics are indexes into group.topics, ascending.
	topics []int32
	// current are the member's current assignments (more than one when
	// the input named the member more than once).
	current []Assignment
}

// topic is one subscribed topic of a group.
type topic struct {
	id         uuid.UUID
	partitions int32
	// subscribers are indexes into group.members, ascending.
	subscribers []int32
}

// newGroup puts members and topics in canonical form (see the package doc
// for how it treats input the coordinator should not send).
func newGroup(members []Member, topics map[uuid.UUID]Topic) *group {
	g := &group{}

	// One member per ID, ordered by ID.
	byID := make(map[string]int, len(members))
	subscribed := make([][]uuid.UUID, 0, len(members))
	for _, m := range members {
		i, ok := byID[m.ID]
		if !ok {
			i = len(g.members)
			byID[m.ID] = i
			g.members = append(g.members, member{id: m.ID, instanceID: m.InstanceID})
			subscribed = append(subscribed, nil)
		}
		gm := &g.members[i]
		if m.InstanceID != "" && (gm.instanceID == "" || m.InstanceID < gm.instanceID) {
			gm.instanceID = m.InstanceID
		}
		if m.Current != nil {
			gm.current = append(gm.current, m.Current)
		}
		subscribed[i] = append(subscribed[i], m.Topics...)
	}
	order := make([]int, len(g.members))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return strings.Compare(g.members[a].id, g.members[b].id) })
	sorted := make([]member, len(g.members))
	sortedSubscribed := make([][]uuid.UUID, len(g.members))
	for to, from := range order {
		sorted[to] = g.members[from]
		sortedSubscribed[to] = subscribed[from]
	}
	g.members, subscribed = sorted, sortedSubscribed

	// The subscribed topics that exist, ordered by ID.
	var ids []uuid.UUID
	seen := make(map[uuid.UUID]bool)
	for _, ts := range subscribed {
		for _, id := range ts {
			if _, ok := topics[id]; ok && !seen[id] {
				seen[id] = true
				ids = append(ids, id)
			}
		}
	}
	slices.SortFunc(ids, compareIDs)
	g.topicIndex = make(map[uuid.UUID]int32, len(ids))
	g.topics = make([]topic, len(ids))
	for i, id := range ids {
		g.topicIndex[id] = int32(i)
		g.topics[i] = topic{id: id, partitions: max(topics[id].Partitions, 0)}
	}

	// Each member's topics, and each topic's subscribers.
	for mi, ts := range subscribed {
		var own []int32
		for _, id := range ts {
			if ti, ok := g.topicIndex[id]; ok {
				own = append(own, ti)
			}
		}
		slices.Sort(own)
		own = slices.Compact(own)
		g.members[mi].topics = own
		for _, ti := range own {
			g.topics[ti].subscribers = append(g.topics[ti].subscribers, int32(mi))
		}
	}
	return g
}

// compareIDs orders topic IDs by their bytes.
func compareIDs(a, b uuid.UUID) int { return bytes.Compare(a[:], b[:]) }

// subscribes reports whether member m subscribes to topic t.
func (g *group) subscribes(m, t int32) bool {
	_, ok := slices.BinarySearch(g.members[m].topics, t)
	return ok
}

// currentOwners returns, for each topic and partition, the member whose
// current assignment holds it, or -1. Partitions of topics a member no
// longer subscribes to, or past the topic's count, are not held; a
// partition held by several members is held by the first (smallest ID).
func (g *group) currentOwners() [][]int32 {
	owners := make([][]int32, len(g.topics))
	for ti, t := range g.topics {
		owners[ti] = make([]int32, t.partitions)
		for p := range owners[ti] {
			owners[ti][p] = -1
		}
	}
	for mi := range g.members {
		m := int32(mi)
		for _, cur := range g.members[mi].current {
			for id, ps := range cur {
				ti, ok := g.topicIndex[id]
				if !ok || !g.subscribes(m, ti) {
					continue
				}
				own := owners[ti]
				for _, p := range ps {
					if p >= 0 && int(p) < len(own) && own[p] < 0 {
						own[p] = m
					}
				}
			}
		}
	}
	return owners
}

// homogeneous reports whether all members subscribe to the same topics.
func (g *group) homogeneous() bool {
	if len(g.members) == 0 {
		return true
	}
	for _, m := range g.members[1:] {
		if !slices.Equal(m.topics, g.members[0].topics) {
			return false
		}
	}
	return true
}

// emptyResult returns an empty assignment for every member.
func (g *group) emptyResult() map[string]Assignment {
	out := make(map[string]Assignment, len(g.members))
	for _, m := range g.members {
		out[m.id] = Assignment{}
	}
	return out
}

// resultFromOwners returns the assignment in which member owners[t][p]
// holds partition p of topic t. Every partition must have an owner
// subscribed to its topic.
func (g *group) resultFromOwners(owners [][]int32) map[string]Assignment {
	out := g.emptyResult()
	counts := make([]int32, len(g.members))
	lists := make([][]int32, len(g.members))
	for ti, t := range g.topics {
		own := owners[ti]
		for _, m := range own {
			counts[m]++
		}
		// One backing array for the topic, cut into each member's part
		// (capped, so appending to one part cannot write into another).
		all := make([]int32, len(own))
		next := int32(0)
		for _, m := range t.subscribers {
			if counts[m] > 0 {
				lists[m] = all[next : next : next+counts[m]]
				next += counts[m]
			}
		}
		for p, m := range own {
			lists[m] = append(lists[m], int32(p))
		}
		for _, m := range t.subscribers {
			if counts[m] > 0 {
				out[g.members[m].id][t.id] = lists[m]
				lists[m], counts[m] = nil, 0
			}
		}
	}
	return out
}
