// Package lagapi is the JSON of the agents' lag API, GET /v1/groups and
// GET /v1/groups/{group} (docs/http-api.md is the reference; the agent
// serves it from agent/http_groups.go). The agent encodes these types;
// `floe group describe` and `floe lag` print a group's members as
// MemberReport too. Field names are the API: renaming one breaks clients.
//
// Groups are of two types, as ListGroups v5 names them: "classic"
// (JoinGroup and SyncGroup) and "consumer" (KIP-848's consumer protocol,
// ConsumerGroupHeartbeat). Fields that only a consumer-protocol group
// has are omitted (omitzero) from a classic group's report.
//
// lagapi imports nothing of floe.
package lagapi

// GroupSummary is one group in GET /v1/groups.
type GroupSummary struct {
	Group        string `json:"group"`
	Type         string `json:"type"` // "classic" or "consumer"
	State        string `json:"state"`
	ProtocolType string `json:"protocol_type"`
	Members      int    `json:"members"`
	Coordinator  int32  `json:"coordinator"`
	Partitions   int    `json:"partitions"`
	TotalLag     int64  `json:"total_lag"`
	MaxLag       int64  `json:"max_lag"`
	Status       string `json:"status"`
}

// GroupReport is GET /v1/groups/{group}.
type GroupReport struct {
	Group        string `json:"group"`
	Type         string `json:"type"` // "classic" or "consumer"
	State        string `json:"state"`
	ProtocolType string `json:"protocol_type"`
	Protocol     string `json:"protocol"`   // a classic group's chosen protocol
	Generation   int32  `json:"generation"` // a classic group's generation
	// Epoch, AssignmentEpoch and Assignor are a consumer-protocol
	// group's: its group epoch, the epoch its target assignment was
	// computed at, and the server assignor that computed it.
	Epoch           *int32            `json:"epoch,omitzero"`
	AssignmentEpoch *int32            `json:"assignment_epoch,omitzero"`
	Assignor        string            `json:"assignor,omitzero"`
	Coordinator     int32             `json:"coordinator"`
	Members         []MemberReport    `json:"members"`
	Partitions      []PartitionReport `json:"partitions"`
	TotalLag        int64             `json:"total_lag"`
	MaxLag          int64             `json:"max_lag"`
	MaxLagPartition *TopicPartitionID `json:"max_lag_partition"`
	Status          string            `json:"status"`
	Complete        float64           `json:"complete"`
	Window          WindowReport      `json:"window"`
}

// MemberReport is a group member and the partitions assigned to it.
type MemberReport struct {
	MemberID   string  `json:"member_id"`
	InstanceID *string `json:"instance_id"`
	ClientID   string  `json:"client_id"`
	ClientHost string  `json:"client_host"`
	// MemberEpoch is a consumer-protocol member's epoch (-2: a static
	// member that left and may come back).
	MemberEpoch *int32 `json:"member_epoch,omitzero"`
	// Assignments are the partitions the member owns now.
	Assignments []TopicPartitions `json:"assignments"`
	// TargetAssignments are the partitions a consumer-protocol member is
	// moving to (its share of the group's target assignment); never nil
	// for one, nil for a classic member.
	TargetAssignments []TopicPartitions `json:"target_assignments,omitzero"`
}

// TopicPartitions are partitions of one topic.
type TopicPartitions struct {
	Topic      string  `json:"topic"`
	Partitions []int32 `json:"partitions"`
}

// TopicPartitionID names one partition.
type TopicPartitionID struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
}

// PartitionReport is one partition of a group: its commit, offsets, lag
// and status.
type PartitionReport struct {
	Topic           string   `json:"topic"`
	Partition       int32    `json:"partition"`
	CommittedOffset *int64   `json:"committed_offset"`
	CommittedAt     *int64   `json:"committed_at"` // Unix ms
	Metadata        *string  `json:"metadata"`
	StartOffset     int64    `json:"start_offset"`
	EndOffset       int64    `json:"end_offset"` // the high watermark
	Lag             int64    `json:"lag"`
	MemberID        string   `json:"member_id"`
	Status          string   `json:"status"`
	Commits         []Sample `json:"commits"`
}

// Sample is one commit in a partition's window.
type Sample struct {
	Offset    int64 `json:"offset"`
	Lag       int64 `json:"lag"`
	Timestamp int64 `json:"timestamp"` // commit time, Unix ms
}

// WindowReport is the commit window's configuration.
type WindowReport struct {
	Commits       int   `json:"commits"`
	MinDistanceMs int64 `json:"min_distance_ms"`
}
