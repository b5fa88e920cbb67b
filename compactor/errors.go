package compactor

import "errors"

var (
	// ErrInvalidConfig is returned (wrapped, with the setting and why) by
	// Config.Validate.
	ErrInvalidConfig = errors.New("compactor: invalid configuration")

	// ErrLeaderElsewhere is returned (wrapped, naming the active
	// compactor) by RunOnce when another compactor holds the election, so
	// this one may not act.
	ErrLeaderElsewhere = errors.New("compactor: another compactor is active")

	// ErrExtentMismatch is returned (wrapped, with the object and what
	// differs) when an extent read for a merge does not hold what its
	// index entry says. The merge is abandoned; nothing is written.
	ErrExtentMismatch = errors.New("compactor: extent does not match its index entry")
)
