package agent

import (
	"errors"
	"time"

	"github.com/spf13/pflag"
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
	// OffsetsRetention is how long committed offsets of a group with no
	// members are kept, counted from the later of the commit and the
	// group becoming empty (offsets.retention.minutes). Default 7 days.
	OffsetsRetention time.Duration
	// OffsetsRetentionCheckInterval is how often a coordinator sweeps its
	// groups for expired offsets (offsets.retention.check.interval.ms).
	// Default 10m.
	OffsetsRetentionCheckInterval time.Duration
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
	}
	return nil
}

// RegisterFlags adds the group flags, named after Kafka's broker settings.
func (c *GroupConfig) RegisterFlags(fs *pflag.FlagSet) {
	fs.DurationVar(&c.InitialRebalanceDelay, "group-initial-rebalance-delay", 3*time.Second, "how long the first rebalance of an empty group waits for more members (group.initial.rebalance.delay.ms); negative disables it")
	fs.DurationVar(&c.MinSessionTimeout, "group-min-session-timeout", 6*time.Second, "smallest session timeout a group member may ask for (group.min.session.timeout.ms)")
	fs.DurationVar(&c.MaxSessionTimeout, "group-max-session-timeout", 30*time.Minute, "largest session timeout a group member may ask for (group.max.session.timeout.ms)")
	fs.DurationVar(&c.OffsetsRetention, "offsets-retention", 7*24*time.Hour, "how long committed offsets of an empty group are kept (offsets.retention.minutes)")
	fs.DurationVar(&c.OffsetsRetentionCheckInterval, "offsets-retention-check-interval", 10*time.Minute, "how often expired committed offsets are removed (offsets.retention.check.interval.ms)")
}
