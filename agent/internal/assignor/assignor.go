package assignor

import "github.com/google/uuid"

// Member is one group member as an assignor sees it.
type Member struct {
	ID         string
	InstanceID string // "" when not static
	Rack       string // "" when unknown; not used (see the package doc)
	// Topics are the subscribed topics that exist, in any order, without
	// duplicates.
	Topics []uuid.UUID
	// Current is the member's current target assignment, for stickiness;
	// may be nil.
	Current Assignment
}

// Topic is a subscribed topic's shape.
type Topic struct {
	ID         uuid.UUID
	Name       string
	Partitions int32
}

// Assignment maps a topic ID to sorted partition numbers.
type Assignment map[uuid.UUID][]int32

// Assignor computes a group's target assignment.
type Assignor interface {
	// Name is the name members ask for the assignor by: "uniform" or
	// "range".
	Name() string
	// Assign returns every member's target assignment: an entry for every
	// member, possibly empty. topics holds every topic some member
	// subscribes to, keyed by ID. Assign is deterministic for the same
	// input (whatever the order of slices and maps), never panics, does
	// not modify its inputs and returns nothing that shares memory with
	// them.
	Assign(members []Member, topics map[uuid.UUID]Topic) map[string]Assignment
}

// Names of the assignors, as members ask for them.
const (
	uniformName = "uniform"
	rangeName   = "range"
)

// Uniform returns the uniform assignor: balanced, then sticky.
func Uniform() Assignor { return uniform{} }

// Range returns the range assignor: contiguous, co-partitioned ranges per
// topic.
func Range() Assignor { return rangeAssignor{} }

// Lookup returns the assignor named name ("uniform", "range"), ok=false
// otherwise.
func Lookup(name string) (Assignor, bool) {
	switch name {
	case uniformName:
		return Uniform(), true
	case rangeName:
		return Range(), true
	}
	return nil, false
}
