package agent

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/spf13/pflag"

	"github.com/floe-io/floe/agent/internal/assignor"
	"github.com/floe-io/floe/metadata"
)

// GroupConfig tunes the consumer group coordinator. Zero values take the
// defaults noted, which are Kafka's.
type GroupConfig struct {
	// InitialRebalanceDelay is how long the first rebalance of an empty
	// group waits for more members before completing, extended by the same
	// amount whenever another member joins, up to the rebalance timeout
	// (group.initial.rebalance.delay.ms). Default 3s; negative disables
	// the delay.
	InitialRebalanceDelay time.Duration
	// MinSessionTimeout and MaxSessionTimeout bound the session timeout a
	// member may ask for; others get INVALID_SESSION_TIMEOUT
	// (group.min.session.timeout.ms, group.max.session.timeout.ms).
	// Defaults 6s and 30m.
	MinSessionTimeout time.Duration
	MaxSessionTimeout time.Duration
	// MaxSize bounds a group's members: a new member beyond it gets
	// GROUP_MAX_SIZE_REACHED (group.max.size). 0: no bound but the
	// state's size.
	MaxSize int
	// OffsetsRetention is how long committed offsets of a group with no
	// members are kept, counted from the later of the commit and the
	// group becoming empty (offsets.retention.minutes). Default 7 days.
	OffsetsRetention time.Duration
	// OffsetsRetentionCheckInterval is how often a coordinator sweeps its
	// groups for expired offsets (offsets.retention.check.interval.ms).
	// Default 10m.
	OffsetsRetentionCheckInterval time.Duration
	// OffsetsTopicPartitions is the partition count the agent creates
	// __consumer_offsets with when it does not exist
	// (offsets.topic.num.partitions). Default 50.
	OffsetsTopicPartitions int32
	// OffsetsTopicReemitInterval is how often a coordinator writes the
	// latest committed offsets and metadata of its groups to
	// __consumer_offsets again, so they stay within the topic's retention.
	// It is checked at every offsets retention sweep. Default 1h.
	OffsetsTopicReemitInterval time.Duration
	// OffsetsTopicLinger is how long records for __consumer_offsets are
	// gathered before they are handed to the writer, so commits alone do
	// not cause a segment object per flush interval. Default 1s.
	OffsetsTopicLinger time.Duration
	// LagWindow is how many commits per partition a group's lag status is
	// evaluated over (Burrow's intervals). Default 10.
	LagWindow int
	// LagMinDistance: a commit less than this after the previous one in
	// the window replaces it instead of being added (Burrow's
	// min-distance). Default 1s.
	LagMinDistance time.Duration
	// LagMetricsInterval is how often a coordinator updates the
	// floe_group_* lag metrics of its groups. Default 30s.
	LagMetricsInterval time.Duration
	// LagMetricsMaxPartitions bounds the floe_group_lag series one agent
	// exports; partitions past it are counted in
	// floe_group_lag_partitions_omitted instead. Default 10000.
	LagMetricsMaxPartitions int

	// ConsumerHeartbeatInterval is how often consumer-protocol (KIP-848)
	// members are told to heartbeat
	// (group.consumer.heartbeat.interval.ms). Default 5s.
	ConsumerHeartbeatInterval time.Duration
	// ConsumerSessionTimeout: a consumer-protocol member that does not
	// heartbeat for this long is removed
	// (group.consumer.session.timeout.ms). Default 45s.
	ConsumerSessionTimeout time.Duration
	// ConsumerMinHeartbeatInterval, ConsumerMaxHeartbeatInterval,
	// ConsumerMinSessionTimeout and ConsumerMaxSessionTimeout bound what a
	// group's consumer.heartbeat.interval.ms and
	// consumer.session.timeout.ms configs may set
	// (group.consumer.{min,max}.{heartbeat.interval,session.timeout}.ms).
	// Defaults Kafka's 5s, 15s, 45s and 60s, widened to take in the
	// defaults above.
	ConsumerMinHeartbeatInterval time.Duration
	ConsumerMaxHeartbeatInterval time.Duration
	ConsumerMinSessionTimeout    time.Duration
	ConsumerMaxSessionTimeout    time.Duration
	// ConsumerMaxSize bounds a consumer-protocol group's members
	// (group.consumer.max.size). 0: no bound.
	ConsumerMaxSize int
	// ConsumerAssignors are the server assignors members may ask for, the
	// first the default (group.consumer.assignors). Default uniform,
	// range.
	ConsumerAssignors []string
	// ConsumerMigrationPolicy says which live groups move between the
	// protocols (group.consumer.migration.policy): bidirectional (the
	// default), upgrade, downgrade or disabled.
	ConsumerMigrationPolicy string
}

func (c *GroupConfig) setDefaults() {
	if c.InitialRebalanceDelay == 0 {
		c.InitialRebalanceDelay = 3 * time.Second
	}
	if c.InitialRebalanceDelay < 0 {
		c.InitialRebalanceDelay = 0
	}
	if c.MinSessionTimeout == 0 {
		c.MinSessionTimeout = 6 * time.Second
	}
	if c.MaxSessionTimeout == 0 {
		c.MaxSessionTimeout = 30 * time.Minute
	}
	if c.OffsetsRetention == 0 {
		c.OffsetsRetention = 7 * 24 * time.Hour
	}
	if c.OffsetsRetentionCheckInterval == 0 {
		c.OffsetsRetentionCheckInterval = 10 * time.Minute
	}
	if c.OffsetsTopicPartitions == 0 {
		c.OffsetsTopicPartitions = 50
	}
	if c.OffsetsTopicReemitInterval == 0 {
		c.OffsetsTopicReemitInterval = time.Hour
	}
	if c.OffsetsTopicLinger == 0 {
		c.OffsetsTopicLinger = time.Second
	}
	if c.LagWindow == 0 {
		c.LagWindow = 10
	}
	if c.LagMinDistance == 0 {
		c.LagMinDistance = time.Second
	}
	if c.LagMetricsInterval == 0 {
		c.LagMetricsInterval = 30 * time.Second
	}
	if c.LagMetricsMaxPartitions == 0 {
		c.LagMetricsMaxPartitions = 10000
	}
	if c.ConsumerHeartbeatInterval == 0 {
		c.ConsumerHeartbeatInterval = 5 * time.Second
	}
	if c.ConsumerSessionTimeout == 0 {
		c.ConsumerSessionTimeout = 45 * time.Second
	}
	if c.ConsumerMinHeartbeatInterval == 0 {
		c.ConsumerMinHeartbeatInterval = min(5*time.Second, c.ConsumerHeartbeatInterval)
	}
	if c.ConsumerMaxHeartbeatInterval == 0 {
		c.ConsumerMaxHeartbeatInterval = max(15*time.Second, c.ConsumerHeartbeatInterval)
	}
	if c.ConsumerMinSessionTimeout == 0 {
		c.ConsumerMinSessionTimeout = min(45*time.Second, c.ConsumerSessionTimeout)
	}
	if c.ConsumerMaxSessionTimeout == 0 {
		c.ConsumerMaxSessionTimeout = max(60*time.Second, c.ConsumerSessionTimeout)
	}
	if len(c.ConsumerAssignors) == 0 {
		c.ConsumerAssignors = []string{"uniform", "range"}
	}
	if c.ConsumerMigrationPolicy == "" {
		c.ConsumerMigrationPolicy = MigrationBidirectional
	}
}

func (c *GroupConfig) validate() error {
	switch {
	case c.MinSessionTimeout < time.Millisecond:
		return errors.New("group min session timeout must be at least 1ms")
	case c.MaxSessionTimeout < c.MinSessionTimeout:
		return errors.New("group max session timeout must not be below the min session timeout")
	case c.OffsetsRetention < time.Second:
		return errors.New("offsets retention must be at least 1s")
	case c.OffsetsRetentionCheckInterval < 10*time.Millisecond:
		return errors.New("offsets retention check interval must be at least 10ms")
	case c.OffsetsTopicPartitions < 1 || c.OffsetsTopicPartitions > metadata.MaxPartitions:
		return fmt.Errorf("offsets topic partitions must be between 1 and %d", metadata.MaxPartitions)
	case c.OffsetsTopicReemitInterval < 10*time.Millisecond:
		return errors.New("offsets topic re-emit interval must be at least 10ms")
	case c.OffsetsTopicLinger < 0:
		return errors.New("offsets topic linger must not be negative")
	case c.LagWindow < 1 || c.LagWindow > 1000:
		return errors.New("group lag window must be between 1 and 1000 commits")
	case c.LagMinDistance < 0:
		return errors.New("group lag min distance must not be negative")
	case c.LagMetricsInterval < 10*time.Millisecond:
		return errors.New("group lag metrics interval must be at least 10ms")
	case c.LagMetricsMaxPartitions < 0:
		return errors.New("group lag metrics max partitions must not be negative")
	case c.ConsumerHeartbeatInterval < time.Millisecond:
		return errors.New("consumer group heartbeat interval must be at least 1ms")
	case c.ConsumerSessionTimeout <= c.ConsumerHeartbeatInterval:
		return errors.New("consumer group session timeout must be longer than the heartbeat interval")
	case c.ConsumerSessionTimeout > time.Duration(math.MaxInt32)*time.Millisecond:
		return errors.New("consumer group session timeout is too long")
	case c.ConsumerHeartbeatInterval < c.ConsumerMinHeartbeatInterval || c.ConsumerHeartbeatInterval > c.ConsumerMaxHeartbeatInterval:
		return errors.New("consumer group heartbeat interval must lie within its min and max")
	case c.ConsumerSessionTimeout < c.ConsumerMinSessionTimeout || c.ConsumerSessionTimeout > c.ConsumerMaxSessionTimeout:
		return errors.New("consumer group session timeout must lie within its min and max")
	case c.ConsumerMaxSessionTimeout > time.Duration(math.MaxInt32)*time.Millisecond,
		c.ConsumerMaxHeartbeatInterval > time.Duration(math.MaxInt32)*time.Millisecond:
		return errors.New("consumer group session timeout and heartbeat interval bounds must fit in int32 milliseconds")
	case c.ConsumerMaxSize < 0:
		return errors.New("consumer group max size must not be negative")
	}
	switch c.ConsumerMigrationPolicy {
	case MigrationBidirectional, MigrationUpgrade, MigrationDowngrade, MigrationDisabled:
	default:
		return fmt.Errorf("consumer group migration policy %q: want bidirectional, upgrade, downgrade or disabled", c.ConsumerMigrationPolicy)
	}
	for _, name := range c.ConsumerAssignors {
		if _, ok := assignor.Lookup(name); !ok {
			return fmt.Errorf("unknown consumer group assignor %q (floe has uniform and range)", name)
		}
	}
	return nil
}

// RegisterFlags adds the group flags, named after Kafka's broker settings,
// with the defaults a zero GroupConfig takes.
func (c *GroupConfig) RegisterFlags(fs *pflag.FlagSet) {
	var d GroupConfig
	d.setDefaults()
	fs.DurationVar(&c.InitialRebalanceDelay, "group-initial-rebalance-delay", d.InitialRebalanceDelay, "how long the first rebalance of an empty group waits for more members (group.initial.rebalance.delay.ms); negative disables it")
	fs.DurationVar(&c.MinSessionTimeout, "group-min-session-timeout", d.MinSessionTimeout, "smallest session timeout a group member may ask for (group.min.session.timeout.ms)")
	fs.IntVar(&c.MaxSize, "group-max-size", 0, "most members of a consumer group; 0 bounds them only by the size of the group's state in etcd (group.max.size)")
	fs.DurationVar(&c.MaxSessionTimeout, "group-max-session-timeout", d.MaxSessionTimeout, "largest session timeout a group member may ask for (group.max.session.timeout.ms)")
	fs.DurationVar(&c.OffsetsRetention, "offsets-retention", d.OffsetsRetention, "how long committed offsets of an empty group are kept (offsets.retention.minutes)")
	fs.DurationVar(&c.OffsetsRetentionCheckInterval, "offsets-retention-check-interval", d.OffsetsRetentionCheckInterval, "how often expired committed offsets are removed (offsets.retention.check.interval.ms)")
	fs.Int32Var(&c.OffsetsTopicPartitions, "offsets-topic-num-partitions", d.OffsetsTopicPartitions, "partitions of __consumer_offsets when an agent creates it (offsets.topic.num.partitions)")
	fs.DurationVar(&c.OffsetsTopicReemitInterval, "offsets-topic-reemit-interval", d.OffsetsTopicReemitInterval, "how often coordinators write their groups' latest offsets and metadata to __consumer_offsets again, keeping them within its retention")
	fs.DurationVar(&c.OffsetsTopicLinger, "offsets-topic-linger", d.OffsetsTopicLinger, "how long records for __consumer_offsets are gathered before they are written")
	fs.IntVar(&c.LagWindow, "group-lag-window", d.LagWindow, "commits per partition a group's lag status is evaluated over (Burrow's intervals)")
	fs.DurationVar(&c.LagMinDistance, "group-lag-min-distance", d.LagMinDistance, "a commit closer than this to the previous one replaces it in the lag window (Burrow's min-distance)")
	fs.DurationVar(&c.LagMetricsInterval, "group-lag-metrics-interval", d.LagMetricsInterval, "how often coordinators update the floe_group_* lag metrics")
	fs.IntVar(&c.LagMetricsMaxPartitions, "group-lag-metrics-max-partitions", d.LagMetricsMaxPartitions, "most floe_group_lag series (group, topic, partition) one agent exports")
	fs.DurationVar(&c.ConsumerHeartbeatInterval, "group-consumer-heartbeat-interval", d.ConsumerHeartbeatInterval, "how often consumer-protocol (KIP-848) group members heartbeat (group.consumer.heartbeat.interval.ms)")
	fs.DurationVar(&c.ConsumerSessionTimeout, "group-consumer-session-timeout", d.ConsumerSessionTimeout, "a consumer-protocol group member silent this long is removed (group.consumer.session.timeout.ms)")
	fs.DurationVar(&c.ConsumerMinHeartbeatInterval, "group-consumer-min-heartbeat-interval", 0, "smallest consumer.heartbeat.interval.ms a group config may set; 0 for Kafka's 5s, or the default interval if smaller (group.consumer.min.heartbeat.interval.ms)")
	fs.DurationVar(&c.ConsumerMaxHeartbeatInterval, "group-consumer-max-heartbeat-interval", 0, "largest consumer.heartbeat.interval.ms a group config may set; 0 for Kafka's 15s, or the default interval if larger (group.consumer.max.heartbeat.interval.ms)")
	fs.DurationVar(&c.ConsumerMinSessionTimeout, "group-consumer-min-session-timeout", 0, "smallest consumer.session.timeout.ms a group config may set; 0 for Kafka's 45s, or the default timeout if smaller (group.consumer.min.session.timeout.ms)")
	fs.DurationVar(&c.ConsumerMaxSessionTimeout, "group-consumer-max-session-timeout", 0, "largest consumer.session.timeout.ms a group config may set; 0 for Kafka's 60s, or the default timeout if larger (group.consumer.max.session.timeout.ms)")
	fs.IntVar(&c.ConsumerMaxSize, "group-consumer-max-size", 0, "most members of a consumer-protocol group; 0 for no bound (group.consumer.max.size)")
	fs.StringVar(&c.ConsumerMigrationPolicy, "group-consumer-migration-policy", d.ConsumerMigrationPolicy, "which live groups move between the classic and consumer protocols: bidirectional, upgrade, downgrade or disabled (group.consumer.migration.policy)")
	fs.StringSliceVar(&c.ConsumerAssignors, "group-consumer-assignors", d.ConsumerAssignors, "server assignors consumer-protocol members may ask for, the first the default (group.consumer.assignors)")
}
