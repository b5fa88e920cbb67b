package compactor

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/pflag"

	"github.com/floe-io/floe/metadata"
	"github.com/floe-io/floe/segments"
)

// Config configures a compactor. Zero values take the defaults noted;
// Validate applies them and checks the result once, before anything
// starts.
type Config struct {
	// ID names this compactor in the election and in logs. Default
	// <hostname>-<pid>.
	ID string

	// RetentionCheckInterval is the time between the starts of two passes
	// (retention, merge, garbage collection). Default 5m.
	RetentionCheckInterval time.Duration

	// GCGrace is how long an object must have existed, and have been
	// unreferenced, before it is deleted. It covers agents that wrote an
	// object but have not committed it yet, and readers still using index
	// entries a merge or retention just removed (agents refresh their
	// index windows every minute). Default 10m.
	GCGrace time.Duration

	// TargetBytes is the size of the objects merges write, and the most
	// stored data one merged log entry (a run of a shard's entries) holds:
	// a shard's consecutive entries merge until they reach it, and
	// entries that reached it are left alone. Default 64 MiB.
	TargetBytes int64

	// PartitionObjectBytes is the share of a merge at which a partition
	// gets an object of its own. Below it, partitions' batches travel
	// together in objects shared by many shards and topics, so a merge of
	// thousands of small partitions writes a few large objects, not one
	// per partition. A value above TargetBytes gives no partition an
	// object of its own. Default 16 MiB.
	PartitionObjectBytes int64

	// MergeSettle is how long a log entry must have been committed
	// before it is merged, so the newest data, which tailing consumers
	// read from the agents' caches, is not rewritten while it is hot.
	// Default 30s.
	MergeSettle time.Duration

	// MinMergeEntries is the fewest fresh entries (from agents' flushes)
	// of a shard worth a merge. Fewer merge only when their objects are
	// mostly other shards' data, or to join earlier merged entries.
	// Default 4.
	MinMergeEntries int

	// Concurrency is how many shards a pass reads and retains at once, and
	// how many merged objects it builds at once. Each build holds up to
	// TargetBytes of stored data in memory, more once decompressed.
	// Default 4.
	Concurrency int

	// KeyMapBytes is the memory of the cleaner's key map (key-based
	// compaction of cleanup.policy=compact topics): 24 bytes per distinct
	// key of a partition's dirty part, filled to 90%. A partition with
	// more keys than fit is cleaned in several passes. Default 64 MiB.
	KeyMapBytes int64

	// Compression compresses runs of uncompressed client batches in merged
	// objects: "zstd" (default), "s2" or "none". Batches the client
	// compressed are stored as they are.
	Compression string
	codec       segments.Codec

	// Broker holds the cluster's defaults for topic configs
	// (log.retention.ms, log.retention.bytes, log.cleanup.policy), as on
	// the agents; topic overrides take precedence.
	Broker metadata.BrokerConfig

	// EtcdMaxTxnOps is etcd's --max-txn-ops. Retention and merge
	// transactions are sized to fit; it also bounds how many entries one
	// merged entry replaces (about half of it). Default 128.
	EtcdMaxTxnOps int

	// LeaseTTL is the election session's lease: how long a compactor that
	// died keeps the leadership before another takes over. Default 10s.
	LeaseTTL time.Duration
}

func (c *Config) setDefaults() {
	if c.ID == "" {
		host, _ := os.Hostname()
		c.ID = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	if c.RetentionCheckInterval == 0 {
		c.RetentionCheckInterval = 5 * time.Minute
	}
	if c.GCGrace == 0 {
		c.GCGrace = 10 * time.Minute
	}
	if c.TargetBytes == 0 {
		c.TargetBytes = 64 << 20
	}
	if c.PartitionObjectBytes == 0 {
		c.PartitionObjectBytes = 16 << 20
	}
	if c.MergeSettle == 0 {
		c.MergeSettle = 30 * time.Second
	}
	if c.MinMergeEntries == 0 {
		c.MinMergeEntries = 4
	}
	if c.Concurrency == 0 {
		c.Concurrency = 4
	}
	if c.Compression == "" {
		c.Compression = "zstd"
	}
	if c.Broker == nil {
		c.Broker = metadata.BrokerConfig{}
	}
	if c.KeyMapBytes == 0 {
		c.KeyMapBytes = 64 << 20
	}
	if c.EtcdMaxTxnOps == 0 {
		c.EtcdMaxTxnOps = metadata.DefaultMaxTxnOps
	}
	if c.LeaseTTL == 0 {
		c.LeaseTTL = 10 * time.Second
	}
}

// Validate applies defaults and checks the configuration.
func (c *Config) Validate() error {
	c.setDefaults()
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))
	}
	switch {
	case c.RetentionCheckInterval < 10*time.Millisecond:
		return bad("retention check interval %v: must be at least 10ms", c.RetentionCheckInterval)
	case c.GCGrace < time.Second:
		return bad("GC grace %v: must be at least 1s (and in production well above the agents' commit time and their one-minute index refresh)", c.GCGrace)
	case c.TargetBytes < 1<<10 || c.TargetBytes > segments.MaxChunkRawSize*16:
		return bad("compaction target bytes %d: must be between 1 KiB and %d", c.TargetBytes, segments.MaxChunkRawSize*16)
	case c.KeyMapBytes < minKeyMapBytes || c.KeyMapBytes > maxKeyMapBytes:
		return bad("compaction key map bytes %d: must be between %d and %d", c.KeyMapBytes, int64(minKeyMapBytes), int64(maxKeyMapBytes))
	case c.PartitionObjectBytes < 1<<10:
		return bad("partition object bytes %d: must be at least 1 KiB", c.PartitionObjectBytes)
	case c.MergeSettle < 0:
		return bad("merge settle %v: must not be negative", c.MergeSettle)
	case c.MinMergeEntries < 2:
		return bad("min merge entries %d: must be at least 2", c.MinMergeEntries)
	case c.Concurrency < 1 || c.Concurrency > 256:
		return bad("concurrency %d: must be between 1 and 256", c.Concurrency)
	case c.EtcdMaxTxnOps < 8:
		return bad("etcd max txn ops %d: must be at least 8", c.EtcdMaxTxnOps)
	case c.LeaseTTL < time.Second:
		return bad("lease TTL %v: must be at least 1s", c.LeaseTTL)
	}
	codec, err := segments.ParseCodec(c.Compression)
	if err != nil {
		return bad("%v", err)
	}
	c.codec = codec
	for _, def := range metadata.TopicConfigDefs {
		if v, ok := c.Broker[def.BrokerName]; ok {
			if err := metadata.ValidateTopicConfig(def.Name, v); err != nil {
				return bad("cluster default %s: %v", def.BrokerName, err)
			}
		}
	}
	return nil
}

// RegisterFlags adds the compactor's own flags, with the defaults a zero
// Config takes. The cluster's topic defaults (--log-retention-ms and
// friends) and --etcd-max-txn-ops are registered by the command, under
// the same names as the agent's.
func (c *Config) RegisterFlags(fs *pflag.FlagSet) {
	var d Config
	d.setDefaults()
	fs.DurationVar(&c.RetentionCheckInterval, "retention-check-interval", d.RetentionCheckInterval, "time between compaction passes (retention, merging, garbage collection)")
	fs.DurationVar(&c.GCGrace, "gc-grace", d.GCGrace, "how long an object must exist, and be unreferenced, before it is deleted")
	fs.Int64Var(&c.TargetBytes, "compaction-target-bytes", d.TargetBytes, "size of merged objects, and the most stored data one merged log entry of a shard holds")
	fs.Int64Var(&c.PartitionObjectBytes, "compaction-partition-object-bytes", d.PartitionObjectBytes, "a partition's share of a merge at which it gets an object of its own; smaller shares share objects")
	fs.DurationVar(&c.MergeSettle, "compaction-settle", d.MergeSettle, "how long a log entry must have been committed before it is merged")
	fs.IntVar(&c.MinMergeEntries, "compaction-min-entries", d.MinMergeEntries, "fewest fresh log entries of a shard worth a merge")
	fs.IntVar(&c.Concurrency, "compaction-concurrency", d.Concurrency, "shards a pass reads at once, and merged objects it builds at once (each build holds up to --compaction-target-bytes of stored data in memory)")
	fs.Int64Var(&c.KeyMapBytes, "compaction-key-map-bytes", d.KeyMapBytes, "memory of the key map that cleans compacted topics (24 bytes per key); a partition with more keys is cleaned in several rounds")
	fs.DurationVar(&c.LeaseTTL, "lease-ttl", d.LeaseTTL, "election lease: how long a dead compactor keeps the leadership")
}
