package agent

import (
	"errors"
	"fmt"
	"time"

	"github.com/floe-io/floe/agent/internal/logread"
	"github.com/floe-io/floe/agent/internal/logwrite"
	"github.com/floe-io/floe/metadata"
	"github.com/spf13/pflag"
)

// WriterConfig tunes how produced batches become segment objects: their
// size, flush interval, buffer bound and compression. It is the write
// path's configuration (package agent/internal/logwrite), named here so
// callers outside the agent can set it.
type WriterConfig = logwrite.Config

// Config configures an agent. Zero values take the defaults noted.
type Config struct {
	// KafkaAddr is the host:port the Kafka listener binds. Default
	// 127.0.0.1:9092.
	KafkaAddr string
	// AdvertiseAddr is the host:port clients are told to connect to.
	// Default: the bound listener address, with the machine's hostname in
	// place of a wildcard host.
	AdvertiseAddr string
	// Zone is the agent's availability zone, reported as the broker rack.
	Zone string
	// ZoneCIDRs maps client addresses to zones, for clients that name no
	// zone in their client ID or Fetch rack ID:
	// "zoneA=10.0.0.0/19,10.0.32.0/19;zoneB=10.0.64.0/19" (zones.go).
	ZoneCIDRs string
	// PeerAddr is the host:port of the peer listener, where the agents of
	// this zone read the object ranges this agent owns: the zone's
	// shared read cache (peers.go). Empty: the agent neither serves its
	// reads to peers nor reads from them.
	PeerAddr string
	// PeerAdvertiseAddr is the host:port peers connect to. Default: the
	// bound address, with the Kafka listener's advertised host in place of
	// a wildcard host.
	PeerAdvertiseAddr string
	// PeerCAFile verifies peers' certificates when the peer listener uses
	// TLS (it does when the agent has a certificate). Default: the client
	// CA file, else the system's roots.
	PeerCAFile string
	// LeaseTTL is how long an agent stays registered after it stops
	// renewing its lease. Default 10s.
	LeaseTTL time.Duration
	// MaxRequestBytes caps one request frame (Kafka's
	// socket.request.max.bytes). Default 100 MiB.
	MaxRequestBytes int32
	// QueuedMaxRequestBytes bounds the request bytes being read or waiting
	// to be answered, across connections (Kafka's
	// queued.max.request.bytes): connections wait to read more beyond it.
	// Default 256 MiB.
	QueuedMaxRequestBytes int64
	// ConnectionsMaxIdle closes connections that send no request for this
	// long (connections.max.idle.ms). Default 10m; negative: never.
	ConnectionsMaxIdle time.Duration
	// MaxConnections bounds the agent's client connections: beyond it new
	// ones wait to be accepted (max.connections). 0: no limit.
	MaxConnections int
	// MaxConnectionsPerIP bounds the connections from one address: beyond
	// it new ones are closed (max.connections.per.ip). 0: no limit.
	MaxConnectionsPerIP int
	// FetchMaxBytes caps the record bytes of one fetch response, whatever
	// the client asks (Kafka's broker fetch.max.bytes). Default 55 MiB.
	FetchMaxBytes int32
	// AutoCreateTopics creates unknown topics on metadata requests and
	// produce, as Kafka's auto.create.topics.enable.
	AutoCreateTopics bool
	// DefaultPartitions is the partition count of auto-created topics and
	// of CreateTopics requests that ask for -1 (num.partitions). Default 1.
	DefaultPartitions int32
	// DefaultReplicationFactor is reported for topics created with -1
	// (default.replication.factor). Default 1.
	DefaultReplicationFactor int16
	// Broker holds broker-level defaults (log.retention.ms, ...) that topic
	// configs fall back to.
	Broker metadata.BrokerConfig
	// DrainTimeout bounds how long shutdown waits for admitted requests.
	// Default 30s.
	DrainTimeout time.Duration
	// ShutdownHandoff is how long a shutting-down agent, once out of the
	// cluster's view, goes on serving the connections clients already
	// have, so their requests for what it no longer coordinates are
	// answered NOT_COORDINATOR rather than refused. It ends early when no
	// connection remains. Default 1s; negative: none.
	ShutdownHandoff time.Duration
	// Version is reported in logs and the agent's registration.
	Version string
	// Groups tunes the consumer group coordinator.
	Groups GroupConfig
	// Txns tunes the transaction coordinator.
	Txns TxnConfig
	// Writer tunes segment objects: size, flush interval, buffer bound,
	// compression.
	Writer WriterConfig
	// CacheBytes bounds the fetch caches: decoded batches, object chunks
	// as stored, and index windows. Default 256 MiB.
	CacheBytes int64
	// ReadChunkBytes is the size of the object chunks fetches read: one
	// GET serves every partition's extent in a chunk. Objects up to 1.5
	// times it are read whole. Default 8 MiB.
	ReadChunkBytes int64
	// Listeners are the Kafka listeners. Empty means one PLAINTEXT
	// listener on KafkaAddr advertising AdvertiseAddr.
	Listeners []ListenerConfig
	// Security configures TLS, SASL and ACLs.
	Security SecurityConfig
	// EtcdMaxTxnOps is the etcd server's per-transaction op limit
	// (--max-txn-ops); commits are split to fit. Default 128.
	EtcdMaxTxnOps int
	// EtcdMaxRequestBytes is the etcd server's request size limit
	// (--max-request-bytes); commits are split to fit and flushes sealed
	// before their index would outgrow it. Default 1.5 MiB.
	EtcdMaxRequestBytes int
	// MaxProducersPerPartition caps the idempotent producers a partition
	// remembers (least recently written forgotten first). Default 4096.
	MaxProducersPerPartition int
}

func (c *Config) setDefaults() {
	if c.KafkaAddr == "" {
		c.KafkaAddr = "127.0.0.1:9092"
	}
	if c.LeaseTTL == 0 {
		c.LeaseTTL = 10 * time.Second
	}
	if c.MaxRequestBytes == 0 {
		c.MaxRequestBytes = 100 << 20
	}
	if c.FetchMaxBytes == 0 {
		c.FetchMaxBytes = 55 << 20
	}
	if c.QueuedMaxRequestBytes == 0 {
		c.QueuedMaxRequestBytes = 256 << 20
	}
	if c.ConnectionsMaxIdle == 0 {
		c.ConnectionsMaxIdle = 10 * time.Minute
	}
	if c.DefaultPartitions == 0 {
		c.DefaultPartitions = 1
	}
	if c.DefaultReplicationFactor == 0 {
		c.DefaultReplicationFactor = 1
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = 30 * time.Second
	}
	if c.ShutdownHandoff == 0 {
		c.ShutdownHandoff = time.Second
	}
	if c.Broker == nil {
		c.Broker = metadata.BrokerConfig{}
	}
	c.Groups.setDefaults()
	c.Txns.setDefaults()
	if c.CacheBytes == 0 {
		c.CacheBytes = 256 << 20
	}
	if c.ReadChunkBytes == 0 {
		c.ReadChunkBytes = logread.DefaultChunkBytes
	}
	if c.EtcdMaxTxnOps == 0 {
		c.EtcdMaxTxnOps = metadata.DefaultMaxTxnOps
	}
	if c.EtcdMaxRequestBytes == 0 {
		c.EtcdMaxRequestBytes = metadata.DefaultMaxRequestBytes
	}
	if c.MaxProducersPerPartition == 0 {
		c.MaxProducersPerPartition = metadata.DefaultMaxProducersPerPartition
	}
	if c.Writer.MaxCommitBytes == 0 {
		c.Writer.MaxCommitBytes = c.EtcdMaxRequestBytes / 2
	}
	c.Writer.SetDefaults()
	c.Security.setDefaults()
}

// RegisterFlags adds the agent's flags, with the defaults a zero Config
// takes (--auto-create-topics defaults to the value c holds), and those
// of its writer, groups and security. --etcd-max-txn-ops, listeners,
// topic defaults and the HTTP listener are the command's.
func (c *Config) RegisterFlags(fs *pflag.FlagSet) {
	var d Config
	d.setDefaults()
	fs.StringVar(&c.KafkaAddr, "kafka-addr", d.KafkaAddr, "host:port the Kafka listener binds")
	fs.StringVar(&c.AdvertiseAddr, "advertise-addr", "", "host:port clients are told to connect to (default: the listener's address, with the hostname for a wildcard host)")
	fs.StringVar(&c.Zone, "zone", "", "availability zone of this agent, reported to clients as the broker rack")
	fs.StringVar(&c.ZoneCIDRs, "zone-cidrs", "", "zones of client addresses, for clients that name none in their client ID (floe_az=ZONE) or rack ID: 'zoneA=10.0.0.0/19,10.0.32.0/19;zoneB=10.0.64.0/19'")
	fs.StringVar(&c.PeerAddr, "peer-addr", "", "host:port of the peer listener: the agents of a zone share their reads of the bucket through it, so the zone reads each object chunk once (empty: this agent reads only for itself)")
	fs.StringVar(&c.PeerAdvertiseAddr, "peer-advertise-addr", "", "host:port the zone's agents reach the peer listener at (default: its address, with the advertised Kafka host for a wildcard host)")
	fs.StringVar(&c.PeerCAFile, "peer-ca-file", "", "CA certificates (PEM) that peers' TLS certificates are verified against (default: --tls-client-ca, else the system's)")
	fs.DurationVar(&c.LeaseTTL, "lease-ttl", d.LeaseTTL, "how long a dead agent stays registered before its partitions move")
	fs.DurationVar(&c.DrainTimeout, "drain-timeout", d.DrainTimeout, "on SIGTERM, how long to wait for admitted requests before exiting")
	fs.DurationVar(&c.ShutdownHandoff, "shutdown-handoff", d.ShutdownHandoff, "on SIGTERM, how long to go on serving open connections once out of the cluster's view, answering NOT_COORDINATOR for what moved; negative none")
	fs.Int32Var(&c.MaxRequestBytes, "max-request-bytes", d.MaxRequestBytes, "largest Kafka request accepted (socket.request.max.bytes)")
	fs.Int64Var(&c.QueuedMaxRequestBytes, "queued-max-request-bytes", d.QueuedMaxRequestBytes, "most request bytes being read or awaiting an answer, across connections; beyond it connections wait to read more (queued.max.request.bytes)")
	fs.DurationVar(&c.ConnectionsMaxIdle, "connections-max-idle", d.ConnectionsMaxIdle, "close connections that send no request for this long; negative never (connections.max.idle.ms)")
	fs.IntVar(&c.MaxConnections, "max-connections", 0, "most client connections; beyond it new ones wait to be accepted; 0 no limit (max.connections)")
	fs.IntVar(&c.MaxConnectionsPerIP, "max-connections-per-ip", 0, "most connections from one address; beyond it new ones are closed; 0 no limit (max.connections.per.ip)")
	fs.Int32Var(&c.FetchMaxBytes, "fetch-max-bytes", d.FetchMaxBytes, "most record bytes in one fetch response, whatever the client asks (fetch.max.bytes)")
	fs.BoolVar(&c.AutoCreateTopics, "auto-create-topics", c.AutoCreateTopics, "create unknown topics on first use (auto.create.topics.enable)")
	fs.Int32Var(&c.DefaultPartitions, "num-partitions", d.DefaultPartitions, "partitions of auto-created topics (num.partitions)")
	fs.Int16Var(&c.DefaultReplicationFactor, "default-replication-factor", d.DefaultReplicationFactor, "replication factor reported for topics created with -1 (default.replication.factor)")
	c.Writer.RegisterFlags(fs)
	fs.Int64Var(&c.CacheBytes, "cache-bytes", d.CacheBytes, "memory for the fetch caches: decoded batches, object chunks as stored, index windows")
	fs.Int64Var(&c.ReadChunkBytes, "read-chunk-bytes", d.ReadChunkBytes, "size of the object chunks fetches read, each with one GET for every partition in it; objects up to 1.5 times it are read whole")
	fs.IntVar(&c.EtcdMaxRequestBytes, "etcd-max-request-bytes", d.EtcdMaxRequestBytes, "etcd's --max-request-bytes; commits are split to fit it, and flushes sealed before their index would outgrow half of it")
	fs.IntVar(&c.MaxProducersPerPartition, "max-producers-per-partition", d.MaxProducersPerPartition, "idempotent producers a partition remembers; beyond it the least recently written is forgotten (its next batch is accepted as from a new producer)")
	c.Groups.RegisterFlags(fs)
	c.Txns.RegisterFlags(fs)
	c.Security.RegisterFlags(fs)
}

// Validate checks the configuration once, before anything starts.
func (c *Config) Validate() error {
	c.setDefaults()
	if err := c.validateListeners(); err != nil {
		return err
	}
	if _, err := parseZoneCIDRs(c.ZoneCIDRs); err != nil {
		return err
	}
	if c.LeaseTTL < time.Second {
		return errors.New("lease TTL must be at least 1s")
	}
	if c.MaxRequestBytes < 1<<20 {
		return errors.New("max request bytes must be at least 1 MiB")
	}
	if c.QueuedMaxRequestBytes < 1<<20 {
		return errors.New("queued max request bytes must be at least 1 MiB")
	}
	if c.MaxConnections < 0 || c.MaxConnectionsPerIP < 0 {
		return errors.New("max connections and max connections per IP must not be negative")
	}
	if c.FetchMaxBytes < 1<<10 {
		return errors.New("fetch max bytes must be at least 1 KiB")
	}
	if c.DefaultPartitions < 1 || c.DefaultPartitions > metadata.MaxPartitions {
		return fmt.Errorf("default partitions must be between 1 and %d", metadata.MaxPartitions)
	}
	if c.DefaultReplicationFactor < 1 || c.DefaultReplicationFactor > metadata.MaxReplicationFactor {
		return fmt.Errorf("default replication factor must be between 1 and %d", metadata.MaxReplicationFactor)
	}
	if err := c.Writer.Validate(); err != nil {
		return err
	}
	if c.CacheBytes < 1<<20 {
		return errors.New("cache bytes must be at least 1 MiB")
	}
	if c.ReadChunkBytes < 64<<10 {
		return errors.New("read chunk bytes must be at least 64 KiB")
	}
	if c.EtcdMaxTxnOps < 8 {
		return errors.New("etcd max txn ops must be at least 8")
	}
	if c.EtcdMaxRequestBytes < 256<<10 {
		return errors.New("etcd max request bytes must be at least 256 KiB")
	}
	if c.MaxProducersPerPartition < 1 {
		return errors.New("max producers per partition must be at least 1")
	}
	if err := c.Txns.validate(); err != nil {
		return err
	}
	if err := c.Groups.validate(); err != nil {
		return err
	}
	for _, def := range metadata.TopicConfigDefs {
		if v, ok := c.Broker[def.BrokerName]; ok {
			if err := metadata.ValidateTopicConfig(def.Name, v); err != nil {
				return fmt.Errorf("broker default %s: %w", def.BrokerName, err)
			}
		}
	}
	return nil
}
