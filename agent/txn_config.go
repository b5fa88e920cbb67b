package agent

import (
	"errors"
	"time"

	"github.com/spf13/pflag"
)

// TxnConfig tunes the transaction coordinator. Zero values take the
// defaults noted, which are Kafka's.
type TxnConfig struct {
	// MaxTimeout bounds the transaction.timeout.ms a producer may ask
	// for; larger ones get INVALID_TRANSACTION_TIMEOUT
	// (transaction.max.timeout.ms). Default 15m.
	MaxTimeout time.Duration
	// IDExpiration is how long a transactional ID with no transaction in
	// progress is kept after its last use (transactional.id.expiration.ms).
	// Default 7 days.
	IDExpiration time.Duration
	// AbortCheckInterval is how often a coordinator looks for
	// transactions past their timeout, and for ended transactions whose
	// markers were not all written (transaction.abort.timed.out.
	// transaction.cleanup.interval.ms). Default 10s.
	AbortCheckInterval time.Duration
}

func (c *TxnConfig) setDefaults() {
	if c.MaxTimeout == 0 {
		c.MaxTimeout = 15 * time.Minute
	}
	if c.IDExpiration == 0 {
		c.IDExpiration = 7 * 24 * time.Hour
	}
	if c.AbortCheckInterval == 0 {
		c.AbortCheckInterval = 10 * time.Second
	}
}

func (c *TxnConfig) validate() error {
	switch {
	case c.MaxTimeout < time.Second:
		return errors.New("transaction max timeout must be at least 1s")
	case c.IDExpiration < time.Second:
		return errors.New("transactional ID expiration must be at least 1s")
	case c.AbortCheckInterval < 10*time.Millisecond:
		return errors.New("transaction abort check interval must be at least 10ms")
	}
	return nil
}

// RegisterFlags adds the coordinator's flags, with the defaults a zero
// config takes.
func (c *TxnConfig) RegisterFlags(fs *pflag.FlagSet) {
	var d TxnConfig
	d.setDefaults()
	fs.DurationVar(&c.MaxTimeout, "transaction-max-timeout", d.MaxTimeout, "largest transaction timeout a producer may ask for (transaction.max.timeout.ms)")
	fs.DurationVar(&c.IDExpiration, "transactional-id-expiration", d.IDExpiration, "how long an idle transactional ID is kept (transactional.id.expiration.ms)")
	fs.DurationVar(&c.AbortCheckInterval, "transaction-abort-check-interval", d.AbortCheckInterval, "how often transactions past their timeout are aborted (transaction.abort.timed.out.transaction.cleanup.interval.ms)")
}
