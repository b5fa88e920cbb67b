package metadata

import (
	"container/list"
	"math/rand/v2"
	"testing"
)

// A partition's producer index finds what was added and not removed, the
// same whether it scans its few producers or keeps a map of many, across
// the change from one to the other.
func TestProducerIndex(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var (
		x    idIndex[*list.Element]
		want = map[int64]*list.Element{}
		l    list.List
	)
	for step := range 5000 {
		id := int64(r.IntN(3 * idsScanned))
		switch _, held := want[id]; {
		case !held && r.IntN(3) > 0:
			el := l.PushBack(id)
			x.add(id, el)
			want[id] = el
		case held && r.IntN(2) == 0:
			x.remove(id)
			delete(want, id)
		}
		if x.len() != len(want) {
			t.Fatalf("step %d: %d producers indexed, want %d", step, x.len(), len(want))
		}
		for probe := range int64(3 * idsScanned) {
			if got, _ := x.get(probe); got != want[probe] {
				t.Fatalf("step %d: producer %d finds %v, want %v", step, probe, got, want[probe])
			}
		}
	}
	if x.many == nil {
		t.Errorf("the index never held more than %d producers", idsScanned)
	}
}
