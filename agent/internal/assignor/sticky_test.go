package assignor

import (
	"fmt"
	"math/rand"
	"slices"
	"testing"

	"github.com/google/uuid"
)

// stickyTopics are 1000 partitions over seven topics.
var stickyTopics = topicsOf(300, 250, 200, 100, 80, 50, 20)

// stickyMembers returns n members named m-000, m-002, ... (even numbers,
// so a joiner can sort between them) subscribed to all of stickyTopics.
func stickyMembers(n int) []Member {
	ms := make([]Member, n)
	for i := range ms {
		ms[i] = Member{ID: fmt.Sprintf("m-%03d", 2*i), Topics: ids(0, 1, 2, 3, 4, 5, 6)}
	}
	return ms
}

// ownerChanges returns, for each partition whose owner changed between
// before and after, the old and new owner ("" for none).
func ownerChanges(before, after map[string]Assignment) [][2]string {
	owners := func(out map[string]Assignment) map[string]string {
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
	b, a := owners(before), owners(after)
	var changes [][2]string
	for tp, id := range b {
		if a[tp] != id {
			changes = append(changes, [2]string{id, a[tp]})
		}
	}
	return changes
}

// A member joining a balanced group of 50 over 1000 partitions takes
// ⌊1000/51⌋ partitions and nothing else moves; a member leaving gives its
// partitions away and nothing else moves.
func TestUniformJoinAndLeave(t *testing.T) {
	members := stickyMembers(50)
	base := Uniform().Assign(members, stickyTopics)
	if err := checkUniformBalance(members, stickyTopics, base); err != nil {
		t.Fatal(err)
	}
	if err := checkSpread(members, 50, stickyTopics, base); err != nil {
		t.Fatal(err)
	}
	members = withCurrent(members, base)

	t.Run("join", func(t *testing.T) {
		joined := append(slices.Clone(members), Member{ID: "m-051", Topics: ids(0, 1, 2, 3, 4, 5, 6)})
		got := Uniform().Assign(joined, stickyTopics)
		if err := checkUniformBalance(joined, stickyTopics, got); err != nil {
			t.Fatal(err)
		}
		changes := ownerChanges(base, got)
		if limit := (1000+50)/51 + 1; len(changes) > limit {
			t.Errorf("%d partitions moved, want at most %d", len(changes), limit)
		}
		for _, c := range changes {
			if c[1] != "m-051" {
				t.Errorf("a partition moved from %s to %s, not to the joiner", c[0], c[1])
			}
		}
		if n := loads(got)["m-051"]; n != len(changes) || n != 1000/51 {
			t.Errorf("the joiner has %d partitions, %d moved, want %d", n, len(changes), 1000/51)
		}
		// It takes a share of every topic: ⌊Pt/51⌋ or ⌈Pt/51⌉ of each.
		if err := checkSpread(joined[len(joined)-1:], 51, stickyTopics, got); err != nil {
			t.Error(err)
		}
	})

	t.Run("leave", func(t *testing.T) {
		leaver := members[17]
		left := slices.Delete(slices.Clone(members), 17, 18)
		got := Uniform().Assign(left, stickyTopics)
		if err := checkUniformBalance(left, stickyTopics, got); err != nil {
			t.Fatal(err)
		}
		changes := ownerChanges(base, got)
		for _, c := range changes {
			if c[0] != leaver.ID {
				t.Errorf("a partition moved from %s to %s, not from the leaver", c[0], c[1])
			}
		}
		if n := loads(base)[leaver.ID]; len(changes) != n {
			t.Errorf("%d partitions moved, the leaver had %d", len(changes), n)
		}
	})
}

// Over many joins and leaves, one at a time, each rebalance moves only the
// joiner's or the leaver's partitions, and the group stays balanced.
func TestUniformChurn(t *testing.T) {
	r := rand.New(rand.NewSource(4))
	members := stickyMembers(50)
	next := 1000
	out := Uniform().Assign(members, stickyTopics)
	for step := range 100 {
		members = withCurrent(members, out)
		var joiner, leaver string
		if r.Intn(2) == 0 && len(members) > 1 {
			i := r.Intn(len(members))
			leaver = members[i].ID
			members = slices.Delete(members, i, i+1)
		} else {
			joiner = fmt.Sprintf("m-%03d", next)
			next++
			members = append(members, Member{ID: joiner, Topics: ids(0, 1, 2, 3, 4, 5, 6)})
		}
		got := Uniform().Assign(members, stickyTopics)
		if err := checkUniformBalance(members, stickyTopics, got); err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
		for _, c := range ownerChanges(out, got) {
			if c[0] != leaver && c[1] != joiner {
				t.Fatalf("step %d: a partition moved from %s to %s (joiner %q, leaver %q)", step, c[0], c[1], joiner, leaver)
			}
		}
		out = got
	}
}

// With differing subscriptions (three kinds of member here), a joiner
// takes its partitions straight from the most loaded members and a
// leaver's partitions go straight to the least loaded: nothing else moves.
func TestUniformHeterogeneousJoinAndLeave(t *testing.T) {
	topics := topicsOf(300, 250, 200, 100, 80, 50, 20)
	var members []Member
	for i := range 50 {
		var sub []uuid.UUID
		switch i % 3 {
		case 0:
			sub = ids(0, 1, 2)
		case 1:
			sub = ids(2, 3, 4, 5)
		default:
			sub = ids(0, 5, 6)
		}
		members = append(members, Member{ID: fmt.Sprintf("m-%03d", 2*i), Topics: sub})
	}
	base := Uniform().Assign(members, topics)
	if err := checkUniformBalance(members, topics, base); err != nil {
		t.Fatal(err)
	}
	members = withCurrent(members, base)

	t.Run("join", func(t *testing.T) {
		joined := append(slices.Clone(members), Member{ID: "m-051", Topics: ids(0, 1, 2)})
		got := Uniform().Assign(joined, topics)
		if err := checkUniformBalance(joined, topics, got); err != nil {
			t.Fatal(err)
		}
		changes := ownerChanges(base, got)
		for _, c := range changes {
			if c[1] != "m-051" {
				t.Errorf("a partition moved from %s to %s, not to the joiner", c[0], c[1])
			}
		}
		if n := loads(got)["m-051"]; n < 1000/51-1 || n != len(changes) {
			t.Errorf("the joiner has %d partitions, %d moved", n, len(changes))
		}
		if len(got["m-051"]) != 3 {
			t.Errorf("the joiner's partitions are not spread over its topics: %v", got["m-051"])
		}
	})

	t.Run("leave", func(t *testing.T) {
		leaver := members[9]
		left := slices.Delete(slices.Clone(members), 9, 10)
		got := Uniform().Assign(left, topics)
		if err := checkUniformBalance(left, topics, got); err != nil {
			t.Fatal(err)
		}
		changes := ownerChanges(base, got)
		for _, c := range changes {
			if c[0] != leaver.ID {
				t.Errorf("a partition moved from %s to %s, not from the leaver", c[0], c[1])
			}
		}
		if n := loads(base)[leaver.ID]; len(changes) != n {
			t.Errorf("%d partitions moved, the leaver had %d", len(changes), n)
		}
	})
}
