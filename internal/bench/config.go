package bench

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/floe-io/floe/internal/kafkaopt"
	"github.com/floe-io/floe/segments"
)

// Cluster is the floe the bench drives, and what it can learn of it.
// MetricsURLs (and Processes, where implemented) are called from the
// bench's memory sampler while the run may Restart: they must be safe to
// call concurrently with it.
type Cluster interface {
	// Brokers are the Kafka bootstrap addresses; ClientOpts add what a
	// client needs beyond them (TLS, SASL).
	Brokers() []string
	ClientOpts() []kgo.Opt
	// MetricsURLs are the agents' /metrics URLs; none means the report
	// has no request counts, cache figures or agent memory.
	MetricsURLs() []string
	// Restart restarts every agent with empty caches, with the given
	// flush interval (0: as before), and returns once they serve again.
	// It returns ErrNoRestart when the bench does not own the agents.
	Restart(ctx context.Context, flush time.Duration) error
	// Bucket is the bucket the agents write to (for the raw PUT and GET
	// limit) and Etcd the etcd they commit to (for the transaction
	// limit); nil when unknown, and that limit is not measured. The bench
	// writes only under its own prefix of each, and removes what it
	// wrote.
	Bucket() segments.Bucket
	Etcd() *clientv3.Client
	// Describe says what the cluster is, for the report.
	Describe() string
}

// Compactor is implemented by clusters whose compactor the bench may
// run (--local runs `floe compactor --once`): a partition sweep
// then runs one compaction pass after each count and states what it
// wrote per GiB it merged.
type Compactor interface {
	// CompactOnce runs one compaction pass over the cluster, merging
	// index entries however recently they were committed, and returns
	// when the pass is over. An error means the pass failed.
	CompactOnce(ctx context.Context) (CompactionPass, error)
}

// CompactionPass is what a compactor said of one pass.
type CompactionPass struct {
	// Duration is the pass as the compactor timed it (0: it did not
	// say).
	Duration time.Duration
	// Interval is the time between the starts of two passes of a
	// compactor run with the same settings.
	Interval time.Duration
	// Summary is the compactor's own account of the pass, if it gave one.
	Summary string
}

// AgentLogs is implemented by clusters whose agents' logs the bench can
// read: the fleet phases state the errors the agents logged while they
// ran.
type AgentLogs interface {
	// AgentErrors returns every line logged at level ERROR so far, oldest
	// first, across restarts.
	AgentErrors() ([]string, error)
}

// Zoned is implemented by clusters whose agents are spread over
// availability zones (`floe bench --local --zones`). With agents in two
// zones or more the run adds the zone phase (zones.go). Zones must be
// safe to call concurrently with Restart.
type Zoned interface {
	// Zones returns the agents of each zone, one Zone per zone.
	Zones() []Zone
}

// Zone is the agents of one availability zone, as a zoned client
// reaches them.
type Zone struct {
	Name string
	// Brokers are the Kafka addresses of the zone's agents, where its
	// clients bootstrap; MetricsURLs their /metrics.
	Brokers     []string
	MetricsURLs []string
}

// ErrNoRestart: the cluster's agents cannot be restarted by the bench.
var ErrNoRestart = errors.New("bench: the agents belong to a running cluster and cannot be restarted")

// AgentSettings are the agents' settings, which the report compares
// with: what `--local` starts agents with, or what a running cluster
// was configured with.
type AgentSettings struct {
	SegmentTargetBytes int64         `json:"segment_target_bytes"`
	FlushInterval      time.Duration `json:"flush_interval_ns"`
	MaxBufferBytes     int64         `json:"max_buffer_bytes"`
	CacheBytes         int64         `json:"cache_bytes"`
	// ReadChunkBytes is the size of the object chunks the agents' fetches
	// read with one GET, for the cold read's GETs-per-GiB bound (0:
	// unknown).
	ReadChunkBytes int64 `json:"read_chunk_bytes,omitempty"`
	MaxUploads     int   `json:"max_uploads"`
}

// Config is one run's workload.
type Config struct {
	// Topic is the name prefix of the topics the run creates.
	Topic string
	// RecordSize is the bytes of each record's value.
	RecordSize int
	// Partitions are the partition counts of the throughput phases,
	// smallest first (Validate sorts them). The first count runs every
	// phase; with more than one (a sweep), each count runs the produce,
	// cold read and warm read phases on a topic of its own, and the report
	// states each count's figures as ratios of the first count's. A sweep
	// needs keyed records, so that every flush touches every partition.
	Partitions []int32
	Producers  int
	// Consumers is the clients in each consumer group.
	Consumers int
	// Keys is none (no key: the client spreads batches), uniform or zipf
	// over KeySpace keys.
	Keys     string
	KeySpace int
	// Payload is random (incompressible) or text (words of a 1000-word
	// vocabulary, Zipf-distributed: it compresses about 3.3:1 with zstd).
	Payload string
	// Compression is the producers' batch compression: none, gzip,
	// snappy, lz4 or zstd. With none the agent compresses.
	Compression string
	// Linger is the producers' linger; 0 picks about a quarter of a
	// produce request's wait (see runner.linger).
	Linger time.Duration
	// Duration and Bytes bound the throughput phase, whichever comes
	// first.
	Duration time.Duration
	Bytes    int64
	// Groups is how many consumer groups read the same data at once.
	Groups int
	// FetchPartitionBytes is the consumers' max.partition.fetch.bytes
	// (0: franz-go's and Kafka's 1 MiB).
	FetchPartitionBytes int32
	// ReadCommitted makes the consumers read_committed (isolation.level),
	// as Kafka Streams and exactly-once pipelines are.
	ReadCommitted bool
	// LatencyRate is the records per second of the latency phases; 0
	// picks a twentieth of the throughput phase's rate (at most 20000),
	// light enough that latency is not queueing.
	LatencyRate int
	// LatencyDuration is how long each latency phase produces.
	LatencyDuration time.Duration
	// FlushIntervals are the agents' flush intervals the latency phases
	// run at; the agents are restarted for each one that is not the
	// current one (so more than one needs a Cluster that can restart).
	FlushIntervals []time.Duration
	// LimitDuration is how long each of the raw PUT, GET and etcd
	// measurements runs; LimitConcurrency is the PUTs or GETs in flight
	// (default: the agents' MaxUploads).
	LimitDuration    time.Duration
	LimitConcurrency int
	// ProfileDir, if set, receives CPU profiles of the agents' busiest
	// phases, taken through their /debug/pprof (floe agent --pprof).
	ProfileDir string
	// Fleet are the fleet phases, run last: each starts many idempotent
	// producers over a fresh topic, which together send FleetRate keyed
	// records per second for FleetDuration.
	Fleet         []FleetSize
	FleetRate     int
	FleetDuration time.Duration
	// ZoneBytes is what the zone phase produces (a Cluster with agents in
	// two zones or more: see Zoned), split evenly over the zones, onto a
	// fresh topic of ZonePartitions partitions with keyed records.
	ZoneBytes      int64
	ZonePartitions int32
	// Keep leaves the topics in place at the end.
	Keep bool

	Agent AgentSettings
}

// Defaults returns the configuration of `floe bench`: 1 KiB records, 16
// partitions, 4 producers, until 1 GiB or 60 s.
func Defaults() Config {
	return Config{
		Topic:           "floe-bench",
		RecordSize:      1024,
		Partitions:      []int32{16},
		Producers:       4,
		Consumers:       4,
		Keys:            "none",
		KeySpace:        100000,
		Payload:         "random",
		Compression:     "none",
		Duration:        60 * time.Second,
		Bytes:           1 << 30,
		Groups:          3,
		LatencyDuration: 15 * time.Second,
		FlushIntervals:  []time.Duration{250 * time.Millisecond, 20 * time.Millisecond},
		LimitDuration:   5 * time.Second,
		FleetRate:       2000,
		FleetDuration:   60 * time.Second,
		ZoneBytes:       256 << 20,
		ZonePartitions:  64,
		Agent: AgentSettings{
			SegmentTargetBytes: 8 << 20,
			FlushInterval:      250 * time.Millisecond,
			MaxBufferBytes:     256 << 20,
			CacheBytes:         256 << 20,
			ReadChunkBytes:     8 << 20,
			MaxUploads:         4,
		},
	}
}

// Quick shrinks a configuration to a smoke run of tens of seconds.
func (c *Config) Quick() {
	c.Bytes = min(c.Bytes, 64<<20)
	c.Duration = min(c.Duration, 10*time.Second)
	c.LatencyDuration = min(c.LatencyDuration, 3*time.Second)
	c.LimitDuration = min(c.LimitDuration, time.Second)
	c.FleetDuration = min(c.FleetDuration, 10*time.Second)
	c.ZoneBytes = min(c.ZoneBytes, 64<<20)
}

// Sweep reports whether the run measures more than one partition count.
func (c *Config) Sweep() bool { return len(c.Partitions) > 1 }

// minKeysPerPartition is the fewest keys per partition a sweep or fleet
// accepts: with uniform keys over a few times the partitions, every
// partition gets records in every flush.
const minKeysPerPartition = 4

// Validate checks the configuration and fills derived defaults.
func (c *Config) Validate() error {
	switch {
	case c.Topic == "":
		return errors.New("the topic name prefix is empty")
	case c.RecordSize < 16:
		return fmt.Errorf("record size %d: at least 16 bytes (a record carries its send time)", c.RecordSize)
	case len(c.Partitions) == 0:
		return errors.New("give at least one partition count")
	case c.Producers < 1 || c.Consumers < 1:
		return errors.New("producers and consumers must be at least 1")
	case c.Groups < 1:
		return fmt.Errorf("groups %d: at least 1", c.Groups)
	case c.Duration <= 0 && c.Bytes <= 0:
		return errors.New("give a duration or a byte count for the throughput phase")
	case c.LatencyDuration < 0 || c.LimitDuration <= 0:
		return errors.New("latency and limit durations must be positive")
	case c.ZoneBytes < 1<<20 || c.ZonePartitions < 1:
		return fmt.Errorf("zone phase: %d bytes and %d partitions: at least 1 MiB and 1 partition", c.ZoneBytes, c.ZonePartitions)
	case c.Agent.SegmentTargetBytes < 1<<10 || c.Agent.CacheBytes < 0 || c.Agent.MaxBufferBytes < 0:
		return errors.New("agent settings: segment target at least 1 KiB, buffer and cache not negative")
	}
	switch c.Keys {
	case "none", "uniform", "zipf":
	default:
		return fmt.Errorf("keys %q: use none, uniform or zipf", c.Keys)
	}
	if c.Keys != "none" && c.KeySpace < 2 {
		return fmt.Errorf("key space %d: at least 2 keys", c.KeySpace)
	}
	c.Partitions = slices.Clone(c.Partitions)
	slices.Sort(c.Partitions)
	c.Partitions = slices.Compact(c.Partitions)
	if c.Partitions[0] < 1 {
		return fmt.Errorf("partitions %d: at least 1", c.Partitions[0])
	}
	widest := int32(0)
	if c.Sweep() {
		if c.Keys == "none" {
			return errors.New("a partition sweep needs keyed records, so that every flush touches every partition: use --keys uniform (or zipf)")
		}
		widest = c.Partitions[len(c.Partitions)-1]
	}
	for _, f := range c.Fleet {
		if f.Producers < 1 || f.Partitions < 1 {
			return fmt.Errorf("fleet %s: at least 1 producer and 1 partition", f)
		}
		widest = max(widest, f.Partitions)
	}
	if widest > 0 && c.KeySpace < minKeysPerPartition*int(widest) {
		return fmt.Errorf("key space %d: a sweep or fleet over %d partitions needs at least %d keys (%d per partition)", c.KeySpace, widest, minKeysPerPartition*int(widest), minKeysPerPartition)
	}
	if len(c.Fleet) > 0 && (c.FleetRate < 1 || c.FleetDuration <= 0) {
		return errors.New("fleet phases need a positive rate and duration")
	}
	switch c.Payload {
	case "random", "text":
	default:
		return fmt.Errorf("payload %q: use random or text", c.Payload)
	}
	if _, err := kafkaopt.Compression(c.Compression); err != nil {
		return err
	}
	if c.Duration <= 0 {
		c.Duration = 24 * time.Hour
	}
	if c.Bytes <= 0 {
		c.Bytes = 1 << 62
	}
	if c.LimitConcurrency <= 0 {
		c.LimitConcurrency = max(c.Agent.MaxUploads, 1)
	}
	if c.Agent.FlushInterval <= 0 {
		c.Agent.FlushInterval = 250 * time.Millisecond
	}
	return nil
}
