package segments

import (
	"testing"
)

// Split cuts a flush over many partitions into objects of about the
// target, each a run of whole partitions in key order, which decode to
// exactly the batches appended; a flush one object holds stays whole.
func TestBuilderSplit(t *testing.T) {
	items := workload(t, 7, 3, 60, 3000)
	raw := totalRaw(items)
	for _, tc := range []struct {
		name   string
		target int
		want   int // objects
	}{
		{"one object below the target", raw + 1, 1},
		{"one object up to 1.5 targets", raw * 2 / 3, 1},
		{"two objects above 1.5 targets", raw * 3 / 5, 2},
		{"a quarter each", raw / 4, 4},
		// Runs of one partition each, some partitions larger than the
		// target: no object is empty, and none divides a partition.
		{"a target below the partitions' sizes", raw / 1000, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := objectsFor(raw, tc.target); tc.want > 0 && got != tc.want {
				t.Fatalf("objectsFor(%d, %d) = %d, want %d", raw, tc.target, got, tc.want)
			}
			b := NewBuilder(CodecZstd)
			for _, it := range items {
				batch, err := ParseBatch(it.raw)
				if err != nil {
					t.Fatal(err)
				}
				b.Append(it.key, batch)
			}
			partitions := b.Partitions()
			parts := b.Split(tc.target)
			switch {
			case tc.want > 0 && len(parts) != tc.want:
				t.Fatalf("%d objects, want %d", len(parts), tc.want)
			case tc.want < 0 && (len(parts) < partitions/2 || len(parts) > partitions):
				t.Fatalf("%d objects of %d partitions", len(parts), partitions)
			}
			if tc.want == 1 {
				if parts[0] != b || b.Len() != raw {
					t.Fatalf("a flush of one object was not left whole")
				}
			} else if b.Len() != 0 || b.Partitions() != 0 {
				t.Fatalf("the split builder still holds %d bytes of %d partitions", b.Len(), b.Partitions())
			}
			var last *PartitionKey
			seen := map[PartitionKey]bool{}
			var got []item
			for i, p := range parts {
				size := p.Len()
				if p.Partitions() == 0 {
					t.Fatalf("object %d is empty", i)
				}
				if tc.want > 1 && (size < tc.target*3/4 || 2*size > 3*tc.target+2*maxBatch(items)) {
					t.Errorf("object %d holds %d bytes for a target of %d", i, size, tc.target)
				}
				obj, extents, err := p.Finish()
				if err != nil {
					t.Fatal(err)
				}
				if _, _, err := DecodeObject(obj); err != nil {
					t.Fatal(err)
				}
				for _, e := range extents {
					if seen[e.Key] {
						t.Fatalf("partition %v is in two objects", e.Key)
					}
					seen[e.Key] = true
					if last != nil && last.Compare(e.Key) >= 0 {
						t.Fatalf("object %d: partition %v after %v: objects do not hold runs in key order", i, e.Key, *last)
					}
					k := e.Key
					last = &k
				}
				var mine []item
				for _, it := range items {
					for _, e := range extents {
						if e.Key == it.key {
							mine = append(mine, it)
							break
						}
					}
				}
				checkObject(t, obj, extents, mine)
				got = append(got, mine...)
			}
			if len(got) != len(items) {
				t.Fatalf("the objects hold %d batches, want %d", len(got), len(items))
			}
		})
	}
}

func maxBatch(items []item) int {
	n := 0
	for _, it := range items {
		n = max(n, len(it.raw))
	}
	return n
}
