package assignor

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/google/uuid"
)

// Helpers shared by the tests: fixed topic IDs, and checks of what the
// assignors guarantee, written independently of the assignors' code.

// topicID returns a topic ID; IDs order as their n does.
func topicID(n int) uuid.UUID {
	var id uuid.UUID
	id[0] = 0x7e
	id[14], id[15] = byte(n>>8), byte(n)
	return id
}

// topicsOf returns topics 0, 1, ... with the given partition counts.
func topicsOf(sizes ...int32) map[uuid.UUID]Topic {
	ts := make(map[uuid.UUID]Topic, len(sizes))
	for i, n := range sizes {
		id := topicID(i)
		ts[id] = Topic{ID: id, Name: fmt.Sprintf("t%d", i), Partitions: n}
	}
	return ts
}

// ids returns the topic IDs of topics ns.
func ids(ns ...int) []uuid.UUID {
	out := make([]uuid.UUID, len(ns))
	for i, n := range ns {
		out[i] = topicID(n)
	}
	return out
}

// span returns the partitions [from, to).
func span(from, to int32) []int32 {
	var ps []int32
	for p := from; p < to; p++ {
		ps = append(ps, p)
	}
	return ps
}

// subscriptions returns each member's subscribed topics that exist.
func subscriptions(members []Member, topics map[uuid.UUID]Topic) map[string]map[uuid.UUID]bool {
	subs := make(map[string]map[uuid.UUID]bool)
	for _, m := range members {
		if subs[m.ID] == nil {
			subs[m.ID] = make(map[uuid.UUID]bool)
		}
		for _, id := range m.Topics {
			if _, ok := topics[id]; ok {
				subs[m.ID][id] = true
			}
		}
	}
	return subs
}

// checkValid returns an error unless out gives every member an entry,
// every partition of every subscribed topic to exactly one of its
// subscribers and nothing else, in sorted lists.
func checkValid(members []Member, topics map[uuid.UUID]Topic, out map[string]Assignment) error {
	subs := subscriptions(members, topics)
	if len(out) != len(subs) {
		return fmt.Errorf("%d entries for %d members", len(out), len(subs))
	}
	owner := make(map[uuid.UUID]map[int32]string)
	for id, a := range out {
		if a == nil {
			return fmt.Errorf("member %q: nil assignment", id)
		}
		if subs[id] == nil {
			return fmt.Errorf("assignment for unknown member %q", id)
		}
		for tid, ps := range a {
			if !subs[id][tid] {
				return fmt.Errorf("member %q assigned topic %v it does not subscribe to", id, tid)
			}
			if len(ps) == 0 {
				return fmt.Errorf("member %q: empty list for topic %v", id, tid)
			}
			if !slices.IsSorted(ps) || len(slices.Compact(slices.Clone(ps))) != len(ps) {
				return fmt.Errorf("member %q topic %v: partitions not sorted and unique: %v", id, tid, ps)
			}
			if owner[tid] == nil {
				owner[tid] = make(map[int32]string)
			}
			for _, p := range ps {
				if p < 0 || p >= topics[tid].Partitions {
					return fmt.Errorf("member %q: partition %d of topic %v with %d", id, p, tid, topics[tid].Partitions)
				}
				if other, ok := owner[tid][p]; ok {
					return fmt.Errorf("partition %v/%d assigned to %q and %q", tid, p, other, id)
				}
				owner[tid][p] = id
			}
		}
	}
	subscribed := make(map[uuid.UUID]bool)
	for _, s := range subs {
		maps.Copy(subscribed, s)
	}
	for tid := range subscribed {
		if n := int32(len(owner[tid])); n != max(topics[tid].Partitions, 0) {
			return fmt.Errorf("topic %v: %d of %d partitions assigned", tid, n, topics[tid].Partitions)
		}
	}
	return nil
}

// loads returns each member's partition count.
func loads(out map[string]Assignment) map[string]int {
	n := make(map[string]int, len(out))
	for id, a := range out {
		for _, ps := range a {
			n[id] += len(ps)
		}
	}
	return n
}

// isHomogeneous reports whether all members subscribe the same existing
// topics.
func isHomogeneous(members []Member, topics map[uuid.UUID]Topic) bool {
	subs := subscriptions(members, topics)
	var first map[uuid.UUID]bool
	for _, s := range subs {
		if first == nil {
			first = s
		} else if !maps.Equal(first, s) {
			return false
		}
	}
	return true
}

// checkUniformBalance returns an error unless out is as balanced as the
// uniform assignor promises: ⌊P/M⌋ or ⌈P/M⌉ each with homogeneous
// subscriptions, else no partition could move to a subscriber of its topic
// holding two or more fewer.
func checkUniformBalance(members []Member, topics map[uuid.UUID]Topic, out map[string]Assignment) error {
	subs := subscriptions(members, topics)
	n := loads(out)
	if isHomogeneous(members, topics) && len(subs) > 0 {
		total := 0
		for _, s := range subs {
			for tid := range s {
				total += int(max(topics[tid].Partitions, 0))
			}
			break
		}
		lo, hi := total/len(subs), (total+len(subs)-1)/len(subs)
		for id := range subs {
			if n[id] < lo || n[id] > hi {
				return fmt.Errorf("homogeneous: member %q has %d, want %d..%d", id, n[id], lo, hi)
			}
		}
		return nil
	}
	for from, a := range out {
		for tid := range a {
			for to, s := range subs {
				if s[tid] && n[to] <= n[from]-2 {
					return fmt.Errorf("a partition of %v could move from %q (%d) to %q (%d)", tid, from, n[from], to, n[to])
				}
			}
		}
	}
	return nil
}

// checkSpread returns an error unless each of members holds ⌊Pt/n⌋ or
// ⌈Pt/n⌉ partitions of each topic t of Pt partitions it subscribes to.
func checkSpread(members []Member, n int, topics map[uuid.UUID]Topic, out map[string]Assignment) error {
	for _, m := range members {
		for _, tid := range m.Topics {
			p := int(max(topics[tid].Partitions, 0))
			if c := len(out[m.ID][tid]); c < p/n || c > (p+n-1)/n {
				return fmt.Errorf("member %q has %d of the %d partitions of %v, %d members", m.ID, c, p, tid, n)
			}
		}
	}
	return nil
}

// expectedRange is the range assignment written out plainly: per topic,
// subscribers ordered static first by instance ID, then by member ID, and
// the first P%N get ⌈P/N⌉.
func expectedRange(members []Member, topics map[uuid.UUID]Topic) map[string]Assignment {
	subs := subscriptions(members, topics)
	instance := make(map[string]string)
	for _, m := range members {
		if m.InstanceID != "" && (instance[m.ID] == "" || m.InstanceID < instance[m.ID]) {
			instance[m.ID] = m.InstanceID
		}
	}
	key := func(id string) string {
		if instance[id] != "" {
			return "0" + instance[id] + "\x00" + id
		}
		return "1" + id
	}
	out := make(map[string]Assignment)
	for id := range subs {
		out[id] = Assignment{}
	}
	for tid, tp := range topics {
		var ms []string
		for id, s := range subs {
			if s[tid] {
				ms = append(ms, id)
			}
		}
		if len(ms) == 0 {
			continue
		}
		slices.SortFunc(ms, func(a, b string) int { return strings.Compare(key(a), key(b)) })
		p := max(tp.Partitions, 0)
		each, extra := p/int32(len(ms)), p%int32(len(ms))
		next := int32(0)
		for i, id := range ms {
			size := each
			if int32(i) < extra {
				size++
			}
			if size > 0 {
				out[id][tid] = span(next, next+size)
			}
			next += size
		}
	}
	return out
}

// moved counts the partitions whose owner differs between before and
// after, among those that had an owner before.
func moved(before, after map[string]Assignment) int {
	owner := func(out map[string]Assignment) map[string]string {
		o := make(map[string]string)
		for id, a := range out {
			for tid, ps := range a {
				for _, p := range ps {
					o[fmt.Sprintf("%v/%d", tid, p)] = id
				}
			}
		}
		return o
	}
	b, a := owner(before), owner(after)
	n := 0
	for tp, id := range b {
		if a[tp] != id {
			n++
		}
	}
	return n
}

// withCurrent returns members with Current set from out.
func withCurrent(members []Member, out map[string]Assignment) []Member {
	ms := slices.Clone(members)
	for i := range ms {
		ms[i].Current = out[ms[i].ID]
	}
	return ms
}
