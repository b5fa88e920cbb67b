package assignor

import (
	"fmt"
	"slices"
	"testing"

	"github.com/google/uuid"
)

// benchSizes are the group sizes benchmarked: members × partitions, the
// partitions spread over ten topics.
var benchSizes = []struct{ members, partitions int }{{50, 1000}, {1000, 10000}}

// benchGroup returns members subscribed to all ten topics (homogeneous) or
// to one of three overlapping sets of them, and the topics.
func benchGroup(members, partitions int, homogeneous bool) ([]Member, map[uuid.UUID]Topic) {
	sizes := make([]int32, 10)
	for i := range sizes {
		sizes[i] = int32(partitions / 10)
	}
	topics := topicsOf(sizes...)
	kinds := [][]uuid.UUID{ids(0, 1, 2, 3, 4, 5, 6, 7, 8, 9)}
	if !homogeneous {
		kinds = [][]uuid.UUID{ids(0, 1, 2, 3), ids(3, 4, 5, 6), ids(6, 7, 8, 9, 0)}
	}
	ms := make([]Member, members)
	for i := range ms {
		ms[i] = Member{ID: fmt.Sprintf("member-%05d", i), Topics: kinds[i%len(kinds)]}
	}
	return ms, topics
}

// benchAssign measures a, per size, assigning a group from nothing and
// after one member joined a group assigned before.
func benchAssign(b *testing.B, a Assignor, homogeneous bool) {
	for _, size := range benchSizes {
		members, topics := benchGroup(size.members, size.partitions, homogeneous)
		before := a.Assign(members[:len(members)-1], topics)
		joined := withCurrent(slices.Clone(members), before)
		for _, bc := range []struct {
			name    string
			members []Member
		}{{"fresh", members}, {"join", joined}} {
			b.Run(fmt.Sprintf("%dx%d/%s", size.members, size.partitions, bc.name), func(b *testing.B) {
				for b.Loop() {
					a.Assign(bc.members, topics)
				}
			})
		}
	}
}

func BenchmarkUniform(b *testing.B) {
	b.Run("homogeneous", func(b *testing.B) { benchAssign(b, Uniform(), true) })
	b.Run("heterogeneous", func(b *testing.B) { benchAssign(b, Uniform(), false) })
}

func BenchmarkRange(b *testing.B) {
	benchAssign(b, Range(), true)
}
