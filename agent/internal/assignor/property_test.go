package assignor

import (
	"fmt"
	"maps"
	"math/rand"
	"reflect"
	"slices"
	"testing"

	"github.com/google/uuid"
)

// randomGroup returns 1-60 members over 1-10 topics of 1-64 partitions,
// with homogeneous or heterogeneous subscriptions and current assignments
// that are empty, a previous assignment of a changed group, or that plus
// garbage (partitions gone, unsubscribed, duplicated, unknown topics).
func randomGroup(r *rand.Rand) ([]Member, map[uuid.UUID]Topic) {
	nt := 1 + r.Intn(10)
	topics := make(map[uuid.UUID]Topic, nt)
	var all []uuid.UUID
	for range nt {
		id := uuid.UUID{}
		r.Read(id[:])
		topics[id] = Topic{ID: id, Name: id.String(), Partitions: int32(1 + r.Intn(64))}
		all = append(all, id)
	}
	subset := func() []uuid.UUID {
		var s []uuid.UUID
		for _, id := range all {
			if r.Intn(2) == 0 {
				s = append(s, id)
			}
		}
		r.Shuffle(len(s), func(i, j int) { s[i], s[j] = s[j], s[i] })
		return s
	}

	nm := 1 + r.Intn(60)
	var profiles [][]uuid.UUID
	switch r.Intn(3) {
	case 0: // homogeneous
		profiles = [][]uuid.UUID{subset()}
		if r.Intn(2) == 0 {
			profiles[0] = slices.Clone(all)
		}
	case 1: // a few kinds of member
		for range 2 + r.Intn(3) {
			profiles = append(profiles, subset())
		}
	default: // every member its own
	}
	members := make([]Member, nm)
	seen := make(map[string]bool)
	for i := range members {
		id := fmt.Sprintf("m-%04x", r.Intn(1<<16))
		for seen[id] {
			id = fmt.Sprintf("m-%04x", r.Intn(1<<16))
		}
		seen[id] = true
		m := Member{ID: id}
		if r.Intn(4) == 0 {
			m.InstanceID = fmt.Sprintf("i-%04x", r.Intn(1<<16))
		}
		if profiles != nil {
			m.Topics = slices.Clone(profiles[r.Intn(len(profiles))])
		} else {
			m.Topics = subset()
		}
		members[i] = m
	}

	switch r.Intn(4) {
	case 0: // no current assignment
	case 1, 2, 3: // a previous assignment of a group that since changed
		prev := slices.Clone(members)
		prev = slices.DeleteFunc(prev, func(Member) bool { return r.Intn(5) == 0 })
		for i := range prev {
			if r.Intn(5) == 0 {
				prev[i].Topics = subset()
			}
		}
		for range r.Intn(4) {
			prev = append(prev, Member{ID: fmt.Sprintf("gone-%d", r.Intn(100)), Topics: subset()})
		}
		prevTopics := maps.Clone(topics)
		for id, tp := range prevTopics {
			if r.Intn(4) == 0 {
				tp.Partitions = 1 + r.Int31n(tp.Partitions)
				prevTopics[id] = tp
			}
		}
		var before map[string]Assignment
		if r.Intn(2) == 0 {
			before = Uniform().Assign(prev, prevTopics)
		} else {
			before = Range().Assign(prev, prevTopics)
		}
		for i := range members {
			members[i].Current = before[members[i].ID]
		}
		if r.Intn(3) == 0 {
			garbage(r, members, all)
		}
	}
	return members, topics
}

// garbage adds to the members' current assignments partitions that are
// gone, of unknown topics, or held by another member too.
func garbage(r *rand.Rand, members []Member, topics []uuid.UUID) {
	for i := range members {
		if r.Intn(3) != 0 {
			continue
		}
		cur := make(Assignment)
		for tid, ps := range members[i].Current {
			cur[tid] = slices.Clone(ps)
		}
		for range 1 + r.Intn(5) {
			tid := topics[r.Intn(len(topics))]
			if r.Intn(5) == 0 {
				r.Read(tid[:])
			}
			cur[tid] = append(cur[tid], int32(r.Intn(70)-2))
		}
		members[i].Current = cur
	}
}

// deepCopy copies members and topics so a change to the originals shows.
func deepCopy(members []Member, topics map[uuid.UUID]Topic) ([]Member, map[uuid.UUID]Topic) {
	ms := make([]Member, len(members))
	for i, m := range members {
		ms[i] = m
		ms[i].Topics = slices.Clone(m.Topics)
		if m.Current != nil {
			ms[i].Current = make(Assignment, len(m.Current))
			for tid, ps := range m.Current {
				ms[i].Current[tid] = slices.Clone(ps)
			}
		}
	}
	return ms, maps.Clone(topics)
}

// shuffled returns a copy of the input in another order: members, their
// topics, and their current maps rebuilt (so iterated in another order).
func shuffled(r *rand.Rand, members []Member, topics map[uuid.UUID]Topic) ([]Member, map[uuid.UUID]Topic) {
	ms, ts := deepCopy(members, topics)
	r.Shuffle(len(ms), func(i, j int) { ms[i], ms[j] = ms[j], ms[i] })
	for i := range ms {
		r.Shuffle(len(ms[i].Topics), func(a, b int) { ms[i].Topics[a], ms[i].Topics[b] = ms[i].Topics[b], ms[i].Topics[a] })
	}
	return ms, ts
}

// retainedOptimum is the most current partitions a balanced assignment of
// a homogeneous group can keep: each member min(held, quota), the larger
// quotas going to the members holding most. held is computed as the
// package doc says (valid partitions; a partition held twice counts for
// the smaller member ID).
func retainedOptimum(members []Member, topics map[uuid.UUID]Topic) int {
	subs := subscriptions(members, topics)
	owner := make(map[string]string)
	byID := slices.Clone(members)
	slices.SortFunc(byID, func(a, b Member) int { return cmpString(a.ID, b.ID) })
	held := make(map[string]int)
	for _, m := range byID {
		for tid, ps := range m.Current {
			if !subs[m.ID][tid] {
				continue
			}
			for _, p := range ps {
				k := fmt.Sprintf("%v/%d", tid, p)
				if p >= 0 && p < topics[tid].Partitions && owner[k] == "" {
					owner[k] = m.ID
					held[m.ID]++
				}
			}
		}
	}
	total := 0
	for _, s := range subs {
		for tid := range s {
			total += int(topics[tid].Partitions)
		}
		break
	}
	var hs []int
	for id := range subs {
		hs = append(hs, held[id])
	}
	slices.Sort(hs)
	slices.Reverse(hs)
	kept := 0
	for i, h := range hs {
		quota := total / len(hs)
		if i < total%len(hs) {
			quota++
		}
		kept += min(h, quota)
	}
	return kept
}

// retained counts the partitions members keep of their current
// assignment.
func retained(members []Member, out map[string]Assignment) int {
	n := 0
	for _, m := range members {
		for tid, ps := range out[m.ID] {
			for _, p := range ps {
				if slices.Contains(m.Current[tid], p) {
					n++
				}
			}
		}
	}
	return n
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Random groups: every guarantee of the package doc, for both assignors.
func TestRandomGroups(t *testing.T) {
	r := rand.New(rand.NewSource(848))
	homogeneous := 0
	for iter := range 500 {
		members, topics := randomGroup(r)
		if isHomogeneous(members, topics) {
			homogeneous++
		}
		for _, a := range []Assignor{Uniform(), Range()} {
			ms, ts := deepCopy(members, topics)
			got := a.Assign(members, topics)
			fail := func(format string, args ...any) {
				t.Helper()
				t.Fatalf("iteration %d, %s, %d members, %d topics: %s", iter, a.Name(), len(members), len(topics), fmt.Sprintf(format, args...))
			}

			if !reflect.DeepEqual(members, ms) || !reflect.DeepEqual(topics, ts) {
				fail("the input was modified")
			}
			if err := checkValid(members, topics, got); err != nil {
				fail("%v", err)
			}
			switch a.Name() {
			case "uniform":
				if err := checkUniformBalance(members, topics, got); err != nil {
					fail("%v", err)
				}
				fresh := !slices.ContainsFunc(members, func(m Member) bool { return m.Current != nil })
				if isHomogeneous(members, topics) && fresh {
					if err := checkSpread(members, len(subscriptions(members, topics)), topics, got); err != nil {
						fail("assigned from nothing, not spread: %v", err)
					}
				}
				if isHomogeneous(members, topics) {
					// A partition two members held may go back to the one
					// that did not count as holding it, so kept can be more.
					if kept, best := retained(members, got), retainedOptimum(members, topics); kept < best {
						fail("kept %d current partitions, %d could be kept", kept, best)
					}
				}
			case "range":
				if want := expectedRange(members, topics); !reflect.DeepEqual(got, want) {
					fail("got %v\nwant %v", got, want)
				}
			}

			sm, st := shuffled(r, members, topics)
			if again := a.Assign(sm, st); !reflect.DeepEqual(got, again) {
				fail("another input order gave another result")
			}
			// Given its own result as the current assignment, an assignor
			// changes nothing.
			if again := a.Assign(withCurrent(members, got), topics); !reflect.DeepEqual(got, again) {
				fail("not stable: %d partitions moved", moved(got, again))
			}
		}
	}
	if homogeneous < 100 || homogeneous > 400 {
		t.Errorf("%d of 500 groups homogeneous: the generator should mix both", homogeneous)
	}
}
