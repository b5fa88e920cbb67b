package metadata

// Consumer-protocol (KIP-848) groups in etcd.
//
// A consumer-protocol group is stored in the same groups/<group> value as
// a classic group, with "type":"consumer" and its state under "consumer":
// the group epoch, the epoch of the target assignment, the topics the
// target was computed from, and every member with its epoch, what it is
// assigned now, what it still has to revoke, and its target. The whole
// group is one value written by the coordinator through its claim before
// any member hears of a change, so a coordinator that takes over loads
// exactly the epochs and assignments members were last told.

import (
	"fmt"
	"slices"

	"github.com/google/uuid"
)

// Group types, as KIP-848 names them (ListGroups v5, DescribeGroups).
const (
	GroupTypeClassic  = "classic"
	GroupTypeConsumer = "consumer"
)

// Consumer-protocol group states, named as Kafka names them.
const (
	ConsumerGroupEmpty       = "Empty"
	ConsumerGroupAssigning   = "Assigning"
	ConsumerGroupReconciling = "Reconciling"
	ConsumerGroupStable      = "Stable"
)

// Member states of the consumer protocol, named as Kafka names them.
const (
	// MemberStable: the member has its target assignment at the target's
	// epoch.
	MemberStable = "stable"
	// MemberUnrevokedPartitions: the member must revoke partitions before
	// it moves to the target's epoch.
	MemberUnrevokedPartitions = "unrevoked_partitions"
	// MemberUnreleasedPartitions: the member is at the target's epoch but
	// waits for partitions other members still hold.
	MemberUnreleasedPartitions = "unreleased_partitions"
)

// TopicPartitions names some partitions of one topic by its ID.
type TopicPartitions struct {
	Topic      uuid.UUID `json:"topic"`
	Partitions []int32   `json:"partitions"`
}

// ConsumerMember is one member of a consumer-protocol group as persisted.
type ConsumerMember struct {
	MemberID   string  `json:"id"`
	InstanceID *string `json:"instance_id,omitempty"`
	RackID     *string `json:"rack_id,omitempty"`
	ClientID   string  `json:"client_id"`
	ClientHost string  `json:"client_host"`
	// RebalanceTimeoutMs bounds how long the member may take to revoke.
	RebalanceTimeoutMs int32 `json:"rebalance_timeout_ms"`
	// SubscribedTopics and SubscribedRegex are the member's subscription
	// (KIP-848 v1 regexes use RE2/J syntax; floe uses Go's RE2).
	SubscribedTopics []string `json:"subscribed_topics,omitempty"`
	SubscribedRegex  string   `json:"subscribed_regex,omitempty"`
	// ServerAssignor is the assignor the member asked for, if any.
	ServerAssignor string `json:"server_assignor,omitempty"`

	// Epoch is the member epoch it was last told; PreviousEpoch the one
	// before, which a member whose last response was lost may still use.
	// Epoch -2 marks a static member that left and may come back.
	Epoch         int32  `json:"epoch"`
	PreviousEpoch int32  `json:"previous_epoch"`
	State         string `json:"state"`
	// Assigned is what the member owns now; Revoking what it was told to
	// give up and has not yet acknowledged; Target what the group's
	// target assignment gives it.
	Assigned []TopicPartitions `json:"assigned,omitempty"`
	Revoking []TopicPartitions `json:"revoking,omitempty"`
	Target   []TopicPartitions `json:"target,omitempty"`

	// Classic is set for a member that speaks the classic protocol
	// (JoinGroup, SyncGroup) in a consumer-protocol group.
	Classic *ClassicMembership `json:"classic,omitempty"`
}

// ClassicMembership is what a classic-protocol member of a
// consumer-protocol group joined with.
type ClassicMembership struct {
	SessionTimeoutMs int32           `json:"session_timeout_ms"`
	Protocols        []GroupProtocol `json:"protocols"`
}

// SubscribedTopic is one topic a consumer group's target assignment was
// computed from, with the partition count it had then.
type SubscribedTopic struct {
	ID         uuid.UUID `json:"id"`
	Name       string    `json:"name"`
	Partitions int32     `json:"partitions"`
}

// ConsumerGroupState is a consumer-protocol group's state as persisted.
type ConsumerGroupState struct {
	// Epoch is the group epoch, bumped whenever membership, a
	// subscription or a subscribed topic's shape changes.
	Epoch int32 `json:"epoch"`
	// AssignmentEpoch is the group epoch the target assignment was
	// computed at.
	AssignmentEpoch int32 `json:"assignment_epoch"`
	// Assignor is the server assignor the target was computed with.
	Assignor string `json:"assignor,omitempty"`
	// Topics are the subscribed topics the target was computed from.
	Topics  []SubscribedTopic `json:"topics,omitempty"`
	Members []ConsumerMember  `json:"members,omitempty"`
}

// validate checks the consumer-protocol part of a group value.
func (c *ConsumerGroupState) validate(key, state string) error {
	switch state {
	case ConsumerGroupEmpty, ConsumerGroupAssigning, ConsumerGroupReconciling, ConsumerGroupStable:
	default:
		return fmt.Errorf("%w: %s: consumer group state %q", ErrCorruptValue, key, state)
	}
	if c.Epoch < 0 || c.AssignmentEpoch < 0 || c.AssignmentEpoch > c.Epoch {
		return fmt.Errorf("%w: %s: group epoch %d, assignment epoch %d", ErrCorruptValue, key, c.Epoch, c.AssignmentEpoch)
	}
	seen := make(map[string]bool, len(c.Members))
	instances := make(map[string]bool)
	for _, m := range c.Members {
		if m.MemberID == "" || seen[m.MemberID] || m.RebalanceTimeoutMs < 0 || m.Epoch < -2 || m.Epoch > c.Epoch {
			return fmt.Errorf("%w: %s: member %q", ErrCorruptValue, key, m.MemberID)
		}
		seen[m.MemberID] = true
		if m.InstanceID != nil {
			if instances[*m.InstanceID] {
				return fmt.Errorf("%w: %s: instance %q held by two members", ErrCorruptValue, key, *m.InstanceID)
			}
			instances[*m.InstanceID] = true
		}
		if m.Classic != nil && (m.Classic.SessionTimeoutMs <= 0 || len(m.Classic.Protocols) == 0) {
			return fmt.Errorf("%w: %s: classic member %q", ErrCorruptValue, key, m.MemberID)
		}
		switch m.State {
		case MemberStable, MemberUnrevokedPartitions, MemberUnreleasedPartitions:
		default:
			return fmt.Errorf("%w: %s: member %q in state %q", ErrCorruptValue, key, m.MemberID, m.State)
		}
		for _, tps := range [][]TopicPartitions{m.Assigned, m.Revoking, m.Target} {
			for _, tp := range tps {
				for _, p := range tp.Partitions {
					if p < 0 || p >= MaxPartitions {
						return fmt.Errorf("%w: %s: member %q: partition %d", ErrCorruptValue, key, m.MemberID, p)
					}
				}
			}
		}
	}
	if state == ConsumerGroupEmpty && len(c.Members) > 0 {
		return fmt.Errorf("%w: %s: empty group with %d members", ErrCorruptValue, key, len(c.Members))
	}
	return nil
}

// SortTopicPartitions orders tps by topic ID and each topic's partitions
// by number, dropping empty topics, so equal sets compare equal.
func SortTopicPartitions(tps []TopicPartitions) []TopicPartitions {
	out := tps[:0]
	for _, tp := range tps {
		if len(tp.Partitions) == 0 {
			continue
		}
		slices.Sort(tp.Partitions)
		tp.Partitions = slices.Compact(tp.Partitions)
		out = append(out, tp)
	}
	slices.SortFunc(out, func(a, b TopicPartitions) int { return slices.Compare(a.Topic[:], b.Topic[:]) })
	if len(out) == 0 {
		return nil
	}
	return out
}
