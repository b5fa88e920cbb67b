package assignor

import (
	"reflect"
	"testing"

	"github.com/google/uuid"
)

func TestLookup(t *testing.T) {
	for _, name := range []string{"uniform", "range"} {
		a, ok := Lookup(name)
		if !ok || a.Name() != name {
			t.Errorf("Lookup(%q) = %v, %v", name, a, ok)
		}
	}
	for _, name := range []string{"", "Uniform", "sticky", "roundrobin"} {
		if a, ok := Lookup(name); ok {
			t.Errorf("Lookup(%q) = %v, want none", name, a)
		}
	}
	if Uniform().Name() != "uniform" || Range().Name() != "range" {
		t.Errorf("names: %q, %q", Uniform().Name(), Range().Name())
	}
}

func TestRange(t *testing.T) {
	t0, t1 := topicID(0), topicID(1)
	for _, tc := range []struct {
		name    string
		members []Member
		topics  map[uuid.UUID]Topic
		want    map[string]Assignment
	}{
		{
			name:    "co-partitioned",
			members: []Member{{ID: "m1", Topics: ids(1, 0)}, {ID: "m0", Topics: ids(0, 1)}},
			topics:  topicsOf(3, 3),
			want: map[string]Assignment{
				"m0": {t0: {0, 1}, t1: {0, 1}},
				"m1": {t0: {2}, t1: {2}},
			},
		},
		{
			name: "heterogeneous",
			members: []Member{
				{ID: "a", Topics: ids(0, 1)},
				{ID: "b", Topics: ids(0)},
				{ID: "c", Topics: ids(1)},
			},
			topics: topicsOf(4, 3),
			want: map[string]Assignment{
				"a": {t0: {0, 1}, t1: {0, 1}},
				"b": {t0: {2, 3}},
				"c": {t1: {2}},
			},
		},
		{
			name:    "more members than partitions",
			members: []Member{{ID: "c", Topics: ids(0)}, {ID: "a", Topics: ids(0)}, {ID: "b", Topics: ids(0)}},
			topics:  topicsOf(2),
			want:    map[string]Assignment{"a": {t0: {0}}, "b": {t0: {1}}, "c": {}},
		},
		{
			name: "extra partitions go to the first members",
			members: []Member{
				{ID: "a", Topics: ids(0)}, {ID: "b", Topics: ids(0)}, {ID: "c", Topics: ids(0)},
			},
			topics: topicsOf(8),
			want:   map[string]Assignment{"a": {t0: {0, 1, 2}}, "b": {t0: {3, 4, 5}}, "c": {t0: {6, 7}}},
		},
		{
			name: "static members first, by instance ID",
			members: []Member{
				{ID: "a", Topics: ids(0)},
				{ID: "b", InstanceID: "i2", Topics: ids(0)},
				{ID: "c", InstanceID: "i1", Topics: ids(0)},
			},
			topics: topicsOf(5),
			want:   map[string]Assignment{"c": {t0: {0, 1}}, "b": {t0: {2, 3}}, "a": {t0: {4}}},
		},
		{
			name: "current assignments are ignored",
			members: []Member{
				{ID: "a", Topics: ids(0), Current: Assignment{t0: {3, 4}}},
				{ID: "b", Topics: ids(0), Current: Assignment{t0: {0, 1, 2}}},
			},
			topics: topicsOf(5),
			want:   map[string]Assignment{"a": {t0: {0, 1, 2}}, "b": {t0: {3, 4}}},
		},
		{
			name:    "no members",
			members: nil,
			topics:  topicsOf(3),
			want:    map[string]Assignment{},
		},
		{
			name: "no topics, unknown topics, empty topics",
			members: []Member{
				{ID: "a"},
				{ID: "b", Topics: ids(7)},
				{ID: "c", Topics: ids(0)},
			},
			topics: topicsOf(0),
			want:   map[string]Assignment{"a": {}, "b": {}, "c": {}},
		},
		{
			name:    "a member named twice is one member",
			members: []Member{{ID: "a", Topics: ids(0)}, {ID: "b", Topics: ids(0, 1)}, {ID: "a", Topics: ids(1)}},
			topics:  topicsOf(2, 2),
			want:    map[string]Assignment{"a": {t0: {0}, t1: {0}}, "b": {t0: {1}, t1: {1}}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Range().Assign(tc.members, tc.topics)
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %v\nwant %v", got, tc.want)
			}
			if err := checkValid(tc.members, tc.topics, got); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestUniform(t *testing.T) {
	t0, t1, t2 := topicID(0), topicID(1), topicID(2)
	for _, tc := range []struct {
		name    string
		members []Member
		topics  map[uuid.UUID]Topic
		// want, when set, is the exact assignment; else only validity and
		// balance are checked.
		want map[string]Assignment
		// check, when set, checks more.
		check func(t *testing.T, got map[string]Assignment)
	}{
		{
			name:    "uneven",
			members: []Member{{ID: "a", Topics: ids(0)}, {ID: "b", Topics: ids(0)}, {ID: "c", Topics: ids(0)}},
			topics:  topicsOf(7),
		},
		{
			name: "spread across topics",
			members: []Member{
				{ID: "a", Topics: ids(0, 1, 2, 3)}, {ID: "b", Topics: ids(0, 1, 2, 3)},
				{ID: "c", Topics: ids(0, 1, 2, 3)}, {ID: "d", Topics: ids(0, 1, 2, 3)},
			},
			topics: topicsOf(4, 4, 4, 4),
			check: func(t *testing.T, got map[string]Assignment) {
				for id, a := range got {
					if len(a) != 4 {
						t.Errorf("%s: %v, want one partition of each topic", id, a)
					}
				}
			},
		},
		{
			name: "a balanced current assignment is kept",
			members: []Member{
				{ID: "a", Topics: ids(0), Current: Assignment{t0: {1, 3}}},
				{ID: "b", Topics: ids(0), Current: Assignment{t0: {0, 2}}},
			},
			topics: topicsOf(4),
			want:   map[string]Assignment{"a": {t0: {1, 3}}, "b": {t0: {0, 2}}},
		},
		{
			name: "the extra partition stays with the member holding it",
			members: []Member{
				{ID: "a", Topics: ids(0), Current: Assignment{t0: {0}}},
				{ID: "b", Topics: ids(0), Current: Assignment{t0: {1, 2}}},
			},
			topics: topicsOf(3),
			want:   map[string]Assignment{"a": {t0: {0}}, "b": {t0: {1, 2}}},
		},
		{
			// b takes what it lacks most each time: t0 (lacking 6/2),
			// t0 (4/2), t0 over t1 (2/2 each), then t1. a gives up its
			// highest numbered partitions.
			name: "over quota, both end up with a share of each topic",
			members: []Member{
				{ID: "a", Topics: ids(0, 1), Current: Assignment{t0: span(0, 6), t1: {0, 1}}},
				{ID: "b", Topics: ids(0, 1)},
			},
			topics: topicsOf(6, 2),
			want:   map[string]Assignment{"a": {t0: {0, 1, 2}, t1: {0}}, "b": {t0: {3, 4, 5}, t1: {1}}},
		},
		{
			name: "a partition held twice is held by the smaller ID",
			members: []Member{
				{ID: "b", Topics: ids(0), Current: Assignment{t0: {0, 1, 2, 3}}},
				{ID: "a", Topics: ids(0), Current: Assignment{t0: {0, 1, 2, 3}}},
			},
			topics: topicsOf(4),
			want:   map[string]Assignment{"a": {t0: {0, 1}}, "b": {t0: {2, 3}}},
		},
		{
			name: "current partitions that are gone are ignored",
			members: []Member{
				{ID: "a", Topics: ids(0), Current: Assignment{t0: {-1, 1, 9}, t1: {0}, topicID(9): {0}}},
				{ID: "b", Topics: ids(0)},
				{ID: "c", Topics: ids(1)},
			},
			topics: topicsOf(2, 1),
			want:   map[string]Assignment{"a": {t0: {1}}, "b": {t0: {0}}, "c": {t1: {0}}},
		},
		{
			name: "overlapping subscriptions",
			members: []Member{
				{ID: "m1", Topics: ids(0)},
				{ID: "m2", Topics: ids(0, 1)},
				{ID: "m3", Topics: ids(1)},
			},
			topics: topicsOf(10, 20),
		},
		{
			name: "heterogeneous, overloaded current",
			members: []Member{
				{ID: "a", Topics: ids(0, 1, 2), Current: Assignment{t0: span(0, 10), t1: span(0, 10), t2: span(0, 10)}},
				{ID: "b", Topics: ids(0, 1)},
				{ID: "c", Topics: ids(1, 2)},
				{ID: "d", Topics: ids(2)},
			},
			topics: topicsOf(10, 10, 10),
			check: func(t *testing.T, got map[string]Assignment) {
				if n := loads(got); n["a"] > 8 || n["d"] < 7 {
					t.Errorf("loads %v", n)
				}
			},
		},
		{
			name: "heterogeneous, a balanced current assignment is kept",
			members: []Member{
				{ID: "a", Topics: ids(0, 1), Current: Assignment{t0: {0, 1}, t1: {2}}},
				{ID: "b", Topics: ids(0), Current: Assignment{t0: {2, 3}}},
				{ID: "c", Topics: ids(1), Current: Assignment{t1: {0, 1}}},
			},
			topics: topicsOf(4, 3),
			want: map[string]Assignment{
				"a": {t0: {0, 1}, t1: {2}},
				"b": {t0: {2, 3}},
				"c": {t1: {0, 1}},
			},
		},
		{
			name:    "no members",
			members: nil,
			topics:  topicsOf(3),
			want:    map[string]Assignment{},
		},
		{
			name: "a member named twice is one member",
			members: []Member{
				{ID: "a", Topics: ids(0), Current: Assignment{t0: {0}}},
				{ID: "b", Topics: ids(0, 1)},
				{ID: "a", Topics: ids(1), Current: Assignment{t1: {1}}},
			},
			topics: topicsOf(2, 2),
			want:   map[string]Assignment{"a": {t0: {0}, t1: {1}}, "b": {t0: {1}, t1: {0}}},
		},
		{
			name:    "members without topics",
			members: []Member{{ID: "a"}, {ID: "b", Topics: ids(5)}},
			topics:  topicsOf(3),
			want:    map[string]Assignment{"a": {}, "b": {}},
		},
		{
			name: "topics without partitions",
			members: []Member{
				{ID: "a", Topics: ids(0, 1), Current: Assignment{t0: {0}}},
				{ID: "b", Topics: ids(1, 2)},
			},
			topics: topicsOf(-1, 0, 1),
			want:   map[string]Assignment{"a": {}, "b": {t2: {0}}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Uniform().Assign(tc.members, tc.topics)
			if err := checkValid(tc.members, tc.topics, got); err != nil {
				t.Fatalf("%v\n%v", err, got)
			}
			if err := checkUniformBalance(tc.members, tc.topics, got); err != nil {
				t.Fatalf("%v\n%v", err, got)
			}
			if tc.want != nil && !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %v\nwant %v", got, tc.want)
			}
			if tc.check != nil {
				tc.check(t, got)
			}
		})
	}
}

// What Assign returns shares no memory with its input: appending to a
// returned list changes neither the input nor another member's list.
func TestResultIsIndependent(t *testing.T) {
	t0 := topicID(0)
	for _, a := range []Assignor{Uniform(), Range()} {
		cur := Assignment{t0: {0, 1}}
		members := []Member{{ID: "a", Topics: ids(0), Current: cur}, {ID: "b", Topics: ids(0)}}
		got := a.Assign(members, topicsOf(4))
		_ = append(got["a"][t0], 99)
		got["a"][t0][0] = 42
		if !reflect.DeepEqual(cur, Assignment{t0: {0, 1}}) {
			t.Errorf("%s: input changed through the result: %v", a.Name(), cur)
		}
		if got["b"][t0][0] == 99 {
			t.Errorf("%s: appending to one member's list wrote into another's: %v", a.Name(), got)
		}
	}
}

// A static member that comes back under a new member ID gets the ranges it
// had, though its new ID sorts elsewhere.
func TestRangeStaticMemberRejoins(t *testing.T) {
	topics := topicsOf(6, 6)
	before := Range().Assign([]Member{
		{ID: "m-a", InstanceID: "consumer-1", Topics: ids(0, 1)},
		{ID: "m-b", InstanceID: "consumer-2", Topics: ids(0, 1)},
		{ID: "m-c", Topics: ids(0, 1)},
	}, topics)
	after := Range().Assign([]Member{
		{ID: "m-z", InstanceID: "consumer-1", Topics: ids(0, 1)},
		{ID: "m-b", InstanceID: "consumer-2", Topics: ids(0, 1)},
		{ID: "m-c", Topics: ids(0, 1)},
	}, topics)
	if !reflect.DeepEqual(before["m-a"], after["m-z"]) || !reflect.DeepEqual(before["m-c"], after["m-c"]) {
		t.Errorf("before %v\nafter %v", before, after)
	}
}
