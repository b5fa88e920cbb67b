package main

// floe bench: measures a floe cluster against the object store's and
// etcd's own limits in one run (internal/bench does the measuring). This
// file holds the command line and the two clusters it drives: a running
// one named with -b, and --local, which starts MinIO and etcd through
// localstack/start.sh and agents as child processes (bench_local.go).

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/floe-io/floe/internal/bench"
	"github.com/floe-io/floe/segments"
)

func newBenchCmd() *cobra.Command {
	var (
		cf          clientFlags
		local       bool
		quick       bool
		output      string
		bytesFlag   = byteSize(0)
		segFlag     = byteSize(0)
		bufFlag     = byteSize(0)
		cacheFlag   = byteSize(0)
		chunkFlag   = byteSize(0)
		metrics     []string
		token       string
		bucketURL   string
		etcdEPs     []string
		keepStack   bool
		compression string
		agentBinary string
		fleet       []string
		agents      int
		zones       int
		zoneBytes   = byteSize(0)
	)
	cfg := bench.Defaults()
	bytesFlag = byteSize(cfg.Bytes)
	segFlag = byteSize(cfg.Agent.SegmentTargetBytes)
	bufFlag = byteSize(cfg.Agent.MaxBufferBytes)
	cacheFlag = byteSize(cfg.Agent.CacheBytes)
	chunkFlag = byteSize(cfg.Agent.ReadChunkBytes)
	zoneBytes = byteSize(cfg.ZoneBytes)
	cmd := clientCommand(&cobra.Command{
		Use:   "bench",
		Short: "Measure floe against the object store's and etcd's own limits, in one run",
		Long: `Measure a floe cluster and, in the same run and against the same store,
the limits it is built on, then print one report in which every floe figure
is also a ratio of its limit.

Phases, in order (a progress bar on stderr follows each):
  limit       raw PUTs and GETs of whole objects of the segment size
              (--max-uploads at a time) straight to the bucket, and etcd
              transactions shaped like one flush's commit, back to back
  produce     --producers franz-go clients, acks=all and idempotent, as fast
              as the cluster takes them, until --bytes or --duration;
              latency is per record, from the Produce call to its promise
  cold read   one consumer group (--consumers clients) reads everything from
              agents that never served it (an agent's writes do not fill its
              fetch cache)
  warm read   a second group reads the last half-cache of the topic, which
              the cold read just left in the agents' caches
  fan-out     --groups groups read everything at once (with --local from
              agents restarted with empty caches); their GETs are compared
              with one group's
  zones       with --local --agents N --zones Z, Z of 2 or more: zoned
              producers (client ID floe_az=ZONE, bootstrapped at their
              zone's agents) in every zone write a fresh keyed topic of
              64 partitions (--zone-bytes, split over the zones); then
              --groups groups of zoned consumers in every zone read all of
              it, every zone at once, and one group of clients that name
              no zone reads it again; per zone, the client bytes that
              crossed zones (floe_agent_client_bytes_total), the zone's
              agents' GETs and their reads from zone peers
  latency     at a fixed rate (--latency-rate; default a twentieth of the
              produce phase's, at most 20000/s), one group tails the topic,
              for each of --flush-intervals (--local restarts the agent
              for each)
  fleet       for each --fleet NxP: N idempotent producers (separate
              clients, acks=all) started a few milliseconds apart send
              --fleet-rate keyed records per second together over a fresh
              topic of P partitions for --fleet-duration; every record must
              be acknowledged and the topic must hold exactly the
              acknowledged records, or the report prints a FAIL line and
              the command exits with status 1
Then costs (requests per GiB at S3 Standard prices), the agents' memory
(sampled from /metrics), and the targets of issue 8.

Partition sweep: --partitions with several counts (e.g. 16,1024,4096)
runs produce, cold read and warm read at each count, smallest first, on a
topic of its own; before each cold read the agents are restarted (--local).
A sweep needs keyed records so that every flush touches every partition:
--keys defaults to uniform with a sweep (over --key-space keys, which must
be at least 4 per partition), and --keys none is refused. The fan-out and
latency phases run at the first count only. The report adds one table:
per count produce, cold and warm read MiB/s, GETs per GiB read cold, PUTs
per GiB written, etcd commit transactions per flush and the agents' peak
RSS against their memory limit, each followed by its ratio to the first
count's. With --local, each count ends with one compaction pass (` + "`floe compactor --once`" + `
as a child process, merging entries however recent): the merged objects it
wrote (listed in the bucket before and after), its PUTs per GiB merged
against the agents' PUTs per GiB stored, and the pass's duration against
the compactor's interval.

--local starts everything itself: MinIO and etcd on loopback with
localstack/start.sh (run from a floe checkout; the first run builds MinIO,
about 3 minutes; services already running are reused, and what it started it
stops; etcd is floe's embedded etcd 3.6 unless FLOE_LOCALSTACK_ETCD=system),
then ` + "`floe agent`" + ` as a child process of this binary with --pprof, so
the agent's memory and CPU are its own and a restart gives a truly empty
cache. Everything the run writes lives under its own cluster name and bucket
prefix and is removed at the end.

--local --agents N starts N agents, each on ports and with a log of its
own, and with N of 2 or more each with --peer-addr (the zone's shared read
cache) when the agent binary has that flag; --zones Z puts agent i in zone
z(i mod Z + 1). Every phase uses all agents as brokers; restarts restart
them all; the memory figures are the highest of any agent, and the agent
CPU is all of theirs together.

Without --local, -b names a running cluster: --metrics gives its agents'
/metrics URLs, --bucket and --etcd-endpoints the store and etcd it uses (for
the limits), and the agent flags describe its settings. Such agents cannot be
restarted, so only their flush interval is measured for latency, and the
fan-out reads whatever their caches still hold (the report says so).

JSON (-o json): {"limits", "produce", "cold_read", "warm_read",
"group_fan_out", "latency", "partition_sweep", "zones", "fleet", "cost",
"memory", "targets", "notes", ...}; see internal/bench/report.go, sweep.go,
zones.go and fleet.go for every field.`,
		Example: `  floe bench --local                      # 1 KiB records, 16 partitions, 4 producers, 1 GiB or 60s
  floe bench --local --quick               # a smoke run of tens of seconds
  floe bench --local --partitions 16,1024,4096 --fleet 2000x256,300x64
  floe bench --local --quick --partitions 16,256 --fleet 50x16
  floe bench --local --quick --agents 4 --zones 2   # 2 agents in each of 2 zones, and the zone phase
  floe bench --local --keys zipf --record-size 200 --bytes 256MiB -o json
  floe bench --local --profile-dir /tmp/prof && go tool pprof -top /tmp/prof/produce-agent0.pprof
  floe bench -b kafka:9092 --metrics http://agent-0:9644/metrics --bucket 's3://b/floe?region=eu-west-1' --etcd-endpoints http://etcd:2379`,
		Args: argsRange(0, 0, ""),
		RunE: func(cmd *cobra.Command, args []string) error {
			out, err := outputFormat(cmd, output)
			if err != nil {
				return err
			}
			if local && cmd.Flags().Changed("brokers") {
				return usageError(cmd, "--local starts its own cluster; drop -b/--brokers, or drop --local to measure that cluster")
			}
			if err := checkLocalAgents(local, agents, zones, cmd.Flags().Changed("agents") || cmd.Flags().Changed("zones")); err != nil {
				return usageError(cmd, "%v", err)
			}
			if len(cfg.Partitions) > 1 && !cmd.Flags().Changed("keys") {
				cfg.Keys = "uniform"
			}
			cfg.Fleet = nil
			for _, f := range fleet {
				size, err := bench.ParseFleetSize(f)
				if err != nil {
					return usageError(cmd, "--fleet: %v", err)
				}
				cfg.Fleet = append(cfg.Fleet, size)
			}
			cfg.Bytes = int64(bytesFlag)
			cfg.Agent.SegmentTargetBytes = int64(segFlag)
			cfg.Agent.MaxBufferBytes = int64(bufFlag)
			cfg.Agent.CacheBytes = int64(cacheFlag)
			cfg.Agent.ReadChunkBytes = int64(chunkFlag)
			cfg.ZoneBytes = int64(zoneBytes)
			if quick {
				cfg.Quick()
			}
			if !local && !cmd.Flags().Changed("flush-intervals") {
				cfg.FlushIntervals = []time.Duration{cfg.Agent.FlushInterval}
			}
			if err := cfg.Validate(); err != nil {
				return usageError(cmd, "%v", err)
			}
			if _, err := segments.ParseCodec(compression); err != nil {
				return usageError(cmd, "%v", err)
			}
			ctx := cmd.Context()
			var cl benchCluster
			if local {
				lc, err := startLocalCluster(ctx, cmd.ErrOrStderr(), cfg.Agent, localOptions{
					codec: compression, keepData: cfg.Keep, keepStack: keepStack, agentBinary: agentBinary,
					readChunk: cmd.Flags().Changed("read-chunk-bytes"), agents: agents, zones: zones,
				})
				if err != nil {
					return err
				}
				cl = lc
			} else {
				rc, err := newRemoteCluster(ctx, &cf, metrics, bucketURL, etcdEPs)
				if err != nil {
					return err
				}
				cl = rc
			}
			defer cl.Close()
			var hdr http.Header
			if token != "" {
				hdr = http.Header{"Authorization": {"Bearer " + token}}
			}
			obs := newBenchProgress(cmd)
			rep, err := bench.Run(ctx, cfg, cl, obs, bench.Options{MetricsHeader: hdr})
			obs.finish()
			if err != nil {
				if ctx.Err() != nil {
					return exitError{code: exitFailure, err: fmt.Errorf("interrupted")}
				}
				return err
			}
			if out == outputJSON {
				err = writeJSON(cmd.OutOrStdout(), rep)
			} else {
				err = rep.WriteText(cmd.OutOrStdout())
			}
			if err != nil {
				return err
			}
			if failed := rep.FleetFailures(); len(failed) > 0 {
				return exitError{code: exitFailure, err: fmt.Errorf("FAIL %s", strings.Join(failed, "; FAIL "))}
			}
			return nil
		},
	})
	fs := cmd.Flags()
	cf.register(fs)
	fs.BoolVar(&local, "local", false, "start MinIO, etcd (localstack/start.sh) and an agent (--agents of them), measure them, and stop them")
	fs.IntVar(&agents, "agents", 1, "with --local, how many agents to start, each a child process on ports of its own")
	fs.IntVar(&zones, "zones", 0, "with --local and --agents 2 or more, spread the agents over this many zones (z1, z2, ... in turn: agent i in z(i mod zones + 1)); 2 or more adds the zone phase; 0 leaves the agents without a zone")
	fs.Var(&zoneBytes, "zone-bytes", "bytes the zone phase produces, split over the zones (at most 64 MiB with --quick)")
	fs.BoolVar(&quick, "quick", false, "a smoke run of tens of seconds: at most 64 MiB or 10s produced (at each partition count), 1s limits, 3s latency phases, 10s fleet phases")
	addOutputFlag(fs, &output)
	fs.StringVar(&cfg.Topic, "topic", cfg.Topic, "name prefix of the topics the run creates (and deletes)")
	fs.IntVar(&cfg.RecordSize, "record-size", cfg.RecordSize, "bytes of each record's value")
	fs.Int32SliceVar(&cfg.Partitions, "partitions", cfg.Partitions, "partitions of the topic; several, comma-separated (16,1024,4096), run a partition sweep")
	fs.IntVar(&cfg.Producers, "producers", cfg.Producers, "producer clients")
	fs.IntVar(&cfg.Consumers, "consumers", cfg.Consumers, "consumer clients in each group")
	fs.StringVar(&cfg.Keys, "keys", cfg.Keys, "record keys: none (the client spreads batches over partitions), uniform or zipf over --key-space keys (default uniform with a partition sweep, which needs keys)")
	fs.IntVar(&cfg.KeySpace, "key-space", cfg.KeySpace, "distinct keys for --keys uniform and zipf")
	fs.StringVar(&cfg.Payload, "payload", cfg.Payload, "record values: random (incompressible) or text (words of a 1000-word vocabulary: about 3.3:1 with zstd)")
	fs.StringVar(&cfg.Compression, "compression", cfg.Compression, "producers' batch compression: none (the agent compresses), gzip, snappy, lz4 or zstd")
	fs.DurationVar(&cfg.Linger, "linger", 0, "producers' linger (default (flush interval + 40ms) / 4: about a quarter of a produce request's wait, which keeps an idempotent client's five requests in flight spread over a flush)")
	fs.DurationVar(&cfg.Duration, "duration", cfg.Duration, "longest the produce phase runs")
	fs.Var(&bytesFlag, "bytes", "bytes the produce phase writes, at most (e.g. 1GiB, 256MiB)")
	fs.IntVar(&cfg.Groups, "groups", cfg.Groups, "consumer groups reading the same data at once in the fan-out phase")
	fs.Int32Var(&cfg.FetchPartitionBytes, "fetch-max-partition-bytes", 0, "consumers' max.partition.fetch.bytes (default 1 MiB, Kafka's and franz-go's)")
	fs.BoolVar(&cfg.ReadCommitted, "read-committed", false, "consumers read with isolation.level=read_committed")
	fs.IntVar(&cfg.LatencyRate, "latency-rate", 0, "records per second of the latency phases (default: a twentieth of the produce phase's rate, at most 20000)")
	fs.DurationVar(&cfg.LatencyDuration, "latency-duration", cfg.LatencyDuration, "how long each latency phase produces; 0 skips them")
	fs.DurationSliceVar(&cfg.FlushIntervals, "flush-intervals", cfg.FlushIntervals, "agent flush intervals the latency phases run at (--local restarts the agent for each; default without --local: --flush-interval)")
	fs.DurationVar(&cfg.LimitDuration, "limit-duration", cfg.LimitDuration, "how long each raw PUT, GET and etcd measurement runs")
	fs.IntVar(&cfg.LimitConcurrency, "limit-concurrency", 0, "raw PUTs or GETs in flight (default --max-uploads, the agent's PUTs in flight)")
	fs.StringVar(&cfg.ProfileDir, "profile-dir", "", "write the agents' CPU profiles of the produce and cold read phases, and heap profiles, here (needs their --pprof; --local sets it)")
	fs.StringSliceVar(&fleet, "fleet", nil, "fleet phases, NxP: N idempotent producers over a fresh topic of P partitions (e.g. 2000x256); comma-separated or repeated")
	fs.IntVar(&cfg.FleetRate, "fleet-rate", cfg.FleetRate, "records per second all of a fleet's producers send together")
	fs.DurationVar(&cfg.FleetDuration, "fleet-duration", cfg.FleetDuration, "how long each fleet phase sends (10s at most with --quick)")
	fs.BoolVar(&cfg.Keep, "keep", false, "keep the topics (and with --local the agent's data and the services the bench started)")
	fs.BoolVar(&keepStack, "keep-localstack", false, "with --local, leave MinIO and etcd running if the bench started them")
	// The agents' settings: --local starts agents with them; otherwise
	// they describe the cluster, for the report's bounds.
	fs.Var(&segFlag, "segment-target-bytes", "agents' --segment-target-bytes: the object size of the raw PUT and GET limit")
	fs.DurationVar(&cfg.Agent.FlushInterval, "flush-interval", cfg.Agent.FlushInterval, "agents' --flush-interval")
	fs.Var(&bufFlag, "max-buffer-bytes", "agents' --max-buffer-bytes")
	fs.Var(&cacheFlag, "cache-bytes", "agents' --cache-bytes (the warm read reads half of it)")
	fs.Var(&chunkFlag, "read-chunk-bytes", "agents' --read-chunk-bytes (one GET each), for a sweep's bound on GETs per GiB read cold; --local passes it only when given; 0: unknown")
	fs.IntVar(&cfg.Agent.MaxUploads, "max-uploads", cfg.Agent.MaxUploads, "agents' --max-uploads")
	fs.StringVar(&compression, "segment-compression", "zstd", "with --local, the agent's --segment-compression")
	fs.StringVar(&agentBinary, "agent-binary", "", "with --local, the floe binary to run the agent with (default: this one), to compare builds under the same bench")
	fs.StringSliceVar(&metrics, "metrics", nil, "without --local: the agents' /metrics URLs, comma-separated or repeated")
	fs.StringVar(&token, "metrics-token", "", "bearer token for /metrics and /debug/pprof (agents with --http-auth)")
	fs.StringVar(&bucketURL, "bucket", "", "without --local: the agents' bucket URL, for the raw PUT and GET limit (the bench writes under floe-bench/ and removes it)")
	fs.StringSliceVar(&etcdEPs, "etcd-endpoints", nil, "without --local: the agents' etcd, for the transaction limit (the bench writes under /floe-bench/ and removes it)")
	return cmd
}

// checkLocalAgents refuses --agents and --zones that make no cluster:
// set (either flag given) without --local, fewer than one agent, more
// zones than agents, or zones for a single agent.
func checkLocalAgents(local bool, agents, zones int, set bool) error {
	switch {
	case set && !local:
		return errors.New("--agents and --zones lay out the agents --local starts; a cluster named with -b has the agents it has")
	case agents < 1:
		return fmt.Errorf("--agents %d: at least 1", agents)
	case zones < 0:
		return fmt.Errorf("--zones %d: 0 (no zones) or more", zones)
	case zones > 0 && agents < 2:
		return fmt.Errorf("--zones %d needs --agents 2 or more: one agent is in one zone", zones)
	case zones > agents:
		return fmt.Errorf("--zones %d with --agents %d: every zone needs an agent", zones, agents)
	}
	return nil
}

// benchCluster is a bench.Cluster the command closes when done.
type benchCluster interface {
	bench.Cluster
	Close() error
}

// byteSize is a flag of bytes that takes KiB/MiB/GiB (and KB/MB/GB)
// suffixes.
type byteSize int64

func (b *byteSize) String() string { return strconv.FormatInt(int64(*b), 10) }
func (b *byteSize) Type() string   { return "bytes" }
func (b *byteSize) Set(s string) error {
	n, err := parseByteSize(s)
	if err != nil {
		return err
	}
	*b = byteSize(n)
	return nil
}

var _ pflag.Value = (*byteSize)(nil)

func parseByteSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"B", 1}} {
		if strings.HasSuffix(strings.ToUpper(t), strings.ToUpper(u.suffix)) {
			t, mult = strings.TrimSpace(t[:len(t)-len(u.suffix)]), u.mult
			break
		}
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || f < 0 {
		return 0, fmt.Errorf("%q is not a size: use bytes or a number with KiB, MiB or GiB", s)
	}
	return int64(f * float64(mult)), nil
}

// benchProgress draws the current phase on stderr when it is a terminal,
// and otherwise prints one line as each phase ends, so a log still shows
// what the run did.
type benchProgress struct {
	cmd  *cobra.Command
	tty  bool
	mu   sync.Mutex
	cur  *bench.Phase
	stop chan struct{}
	done chan struct{}
}

func newBenchProgress(cmd *cobra.Command) *benchProgress {
	p := &benchProgress{cmd: cmd, tty: isTerminal(cmd.ErrOrStderr())}
	if p.tty {
		p.stop, p.done = make(chan struct{}), make(chan struct{})
		go p.run()
	}
	return p
}

func (p *benchProgress) run() {
	defer close(p.done)
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
		}
		p.mu.Lock()
		if p.cur != nil {
			fmt.Fprint(p.cmd.ErrOrStderr(), "\r\x1b[K"+bench.FormatProgress(p.cur))
		}
		p.mu.Unlock()
	}
}

func (p *benchProgress) Begin(ph *bench.Phase) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cur = ph
}

func (p *benchProgress) End(ph *bench.Phase) {
	p.mu.Lock()
	defer p.mu.Unlock()
	w := p.cmd.ErrOrStderr()
	if p.tty {
		fmt.Fprint(w, "\r\x1b[K")
	}
	fmt.Fprintln(w, bench.FormatProgress(ph))
	p.cur = nil
}

func (p *benchProgress) Logf(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	w := p.cmd.ErrOrStderr()
	if p.tty && p.cur != nil {
		fmt.Fprint(w, "\r\x1b[K")
	}
	fmt.Fprintf(w, "bench: "+format+"\n", args...)
}

func (p *benchProgress) finish() {
	if p.stop != nil {
		close(p.stop)
		<-p.done
		p.stop = nil
	}
}

// openEnvFile reads KEY=VALUE lines (with an optional export) as
// localstack/start.sh writes them.
func readEnvFile(path string) (map[string]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	env := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		line = strings.TrimPrefix(line, "export ")
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		if uq, err := strconv.Unquote(v); err == nil {
			v = uq
		} else {
			v = strings.Trim(v, "'")
		}
		env[k] = v
	}
	return env, nil
}
