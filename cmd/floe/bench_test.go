package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/pflag"
	"github.com/twmb/franz-go/pkg/kgo"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/floe-io/floe/internal/bench"
	"github.com/floe-io/floe/internal/testenv"
	"github.com/floe-io/floe/metadata"
	"github.com/floe-io/floe/segments"
)

// inProcessCluster is a bench.Cluster of agents started in this process
// with startAgent (as `floe agent` does), on the test etcd and a
// directory bucket, so the bench's smoke test needs no MinIO.
type inProcessCluster struct {
	t      *testing.T
	store  *metadata.Store
	etcd   *clientv3.Client
	bucket segments.Bucket
	args   []string
	// cluster and bucketDir are the agents' --cluster and --bucket, for
	// the compactor.
	cluster, bucketDir string
	// zones are the agents' --zone, one per agent ("": none).
	zones  []string
	mu     sync.Mutex // guards agents, kafka and http against the bench's sampler
	agents []*running
	// kafka and http are the agents' addresses, kept across restarts (as
	// a restarted pod keeps its service address).
	kafka, http []string
}

// newInProcessCluster starts one agent with args.
func newInProcessCluster(t *testing.T, args ...string) *inProcessCluster {
	return newInProcessAgents(t, []string{""}, args...)
}

// newInProcessAgents starts an agent for each of zones, in that zone,
// with args.
func newInProcessAgents(t *testing.T, zones []string, args ...string) *inProcessCluster {
	t.Helper()
	cli := testenv.Etcd(t)
	cluster, dir := testenv.Cluster(t), t.TempDir()
	store, err := metadata.NewStore(cli, cluster)
	if err != nil {
		t.Fatal(err)
	}
	bucket, err := segments.OpenBucket(context.Background(), dir, segments.BucketOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bucket.Close() })
	c := &inProcessCluster{t: t, store: store, etcd: cli, bucket: bucket, args: args, cluster: cluster, bucketDir: dir, zones: zones}
	t.Cleanup(func() { c.stop() })
	if err := c.start(0); err != nil {
		t.Fatal(err)
	}
	return c
}

func (c *inProcessCluster) start(flush time.Duration) error {
	for i, zone := range c.zones {
		if err := c.startOne(i, zone, flush); err != nil {
			return err
		}
	}
	return nil
}

func (c *inProcessCluster) startOne(i int, zone string, flush time.Duration) error {
	var o agentOptions
	fs := pflag.NewFlagSet("agent", pflag.ContinueOnError)
	o.register(fs, false)
	kafka, http := "127.0.0.1:0", "127.0.0.1:0"
	c.mu.Lock()
	if i < len(c.kafka) {
		kafka, http = c.kafka[i], c.http[i]
	}
	c.mu.Unlock()
	args := append([]string{
		"--kafka-addr", kafka, "--http-addr", http, "--pprof",
		"--memory-limit", "-1", // not this test process's business
		"--group-initial-rebalance-delay", "-1ms", "--lease-ttl", "2s", "--drain-timeout", "5s",
	}, c.args...)
	if zone != "" {
		args = append(args, "--zone", zone)
	}
	if len(c.zones) > 1 {
		// The zone's shared reads and in-zone coordination.
		args = append(args, "--peer-addr", "127.0.0.1:0")
	}
	if flush > 0 {
		args = append(args, "--flush-interval", flush.String())
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	r, err := startAgent(context.Background(), slog.New(slog.DiscardHandler), &o, c.store, c.bucket)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if i < len(c.agents) {
		c.agents[i] = r
		return nil
	}
	c.agents = append(c.agents, r)
	c.kafka = append(c.kafka, r.agent.Addr())
	c.http = append(c.http, r.HTTPAddr())
	return nil
}

// stop stops every agent that runs.
func (c *inProcessCluster) stop() error {
	c.mu.Lock()
	agents := slices.Clone(c.agents)
	clear(c.agents)
	c.mu.Unlock()
	var errs []error
	for _, r := range agents {
		if r != nil {
			errs = append(errs, r.stop(10*time.Second))
		}
	}
	return errors.Join(errs...)
}

func (c *inProcessCluster) Brokers() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.kafka)
}
func (c *inProcessCluster) ClientOpts() []kgo.Opt { return nil }
func (c *inProcessCluster) MetricsURLs() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var urls []string
	for _, h := range c.http {
		urls = append(urls, "http://"+h+"/metrics")
	}
	return urls
}

// Zones returns the agents by zone, in the order zones first appear.
func (c *inProcessCluster) Zones() []bench.Zone {
	c.mu.Lock()
	defer c.mu.Unlock()
	var zones []bench.Zone
	for i, name := range c.zones {
		if name == "" {
			continue
		}
		j := slices.IndexFunc(zones, func(z bench.Zone) bool { return z.Name == name })
		if j < 0 {
			zones = append(zones, bench.Zone{Name: name})
			j = len(zones) - 1
		}
		zones[j].Brokers = append(zones[j].Brokers, c.kafka[i])
		zones[j].MetricsURLs = append(zones[j].MetricsURLs, "http://"+c.http[i]+"/metrics")
	}
	return zones
}
func (c *inProcessCluster) Bucket() segments.Bucket { return c.bucket }

// CompactOnce runs `floe compactor --once` in this process against the
// agent's etcd and bucket, merging runs of two entries or more however
// recent. The compactor prints its summary to the process's stderr, so
// the bench times the pass by the command's run.
func (c *inProcessCluster) CompactOnce(ctx context.Context) (bench.CompactionPass, error) {
	res := runCLIWith(ctx, c.t, "", io.Discard, "compactor", "--once", "--log-level", "warn",
		"--etcd-endpoints", strings.Join(testenv.EtcdEndpoints(c.t), ","), "--cluster", c.cluster, "--bucket", c.bucketDir,
		"--compaction-settle", "1ms", "--compaction-min-entries", "2", "--gc-grace", "1h")
	if res.code != 0 {
		return bench.CompactionPass{}, fmt.Errorf("floe compactor --once: %v", res)
	}
	return bench.CompactionPass{Interval: compactorInterval()}, nil
}
func (c *inProcessCluster) Etcd() *clientv3.Client { return c.etcd }
func (c *inProcessCluster) Describe() string       { return "in-process agent, directory bucket" }

func (c *inProcessCluster) Restart(ctx context.Context, flush time.Duration) error {
	if err := c.stop(); err != nil {
		return err
	}
	return c.start(flush)
}

// smokeConfig is a run of a few seconds of each phase: the bench must
// run end to end and fill every part of its report. Performance is not
// asserted (docs/benchmarks.md has the figures and why).
func smokeConfig() bench.Config {
	cfg := bench.Defaults()
	cfg.Quick()
	cfg.Bytes = 4 << 20
	cfg.RecordSize = 512
	cfg.Partitions = []int32{4}
	cfg.Producers = 2
	cfg.Consumers = 1
	cfg.Groups = 2
	cfg.LatencyDuration = time.Second
	cfg.FlushIntervals = []time.Duration{50 * time.Millisecond, 20 * time.Millisecond}
	cfg.LimitDuration = 300 * time.Millisecond
	cfg.Agent = bench.AgentSettings{SegmentTargetBytes: 1 << 20, FlushInterval: 50 * time.Millisecond, MaxBufferBytes: 32 << 20, CacheBytes: 16 << 20, MaxUploads: 4}
	return cfg
}

var smokeAgentArgs = []string{"--flush-interval", "50ms", "--segment-target-bytes", "1048576", "--max-buffer-bytes", "33554432", "--cache-bytes", "16777216"}

func TestBenchSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped with -short: runs every phase of floe bench for a few seconds")
	}
	c := newInProcessCluster(t, smokeAgentArgs...)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cfg := smokeConfig()
	cfg.ProfileDir = t.TempDir()
	// A small partition sweep and a tiny fleet: their code paths, not
	// their figures.
	cfg.Partitions = []int32{2, 64}
	cfg.Keys = "uniform"
	cfg.Fleet = []bench.FleetSize{{Producers: 20, Partitions: 8}}
	cfg.FleetRate = 400
	cfg.FleetDuration = 2 * time.Second
	rep, err := bench.Run(ctx, cfg, c, nil, bench.Options{})
	if err != nil {
		t.Fatal(err)
	}
	p := rep.Produce
	if p == nil || p.Records == 0 || p.Bytes < cfg.Bytes*9/10 || p.Store.Puts == 0 || p.Commits == 0 {
		t.Fatalf("produce phase: %+v", p)
	}
	for name, r := range map[string]*bench.ConsumeResult{"cold": rep.Cold, "warm": rep.Warm, "fan-out": rep.FanOut} {
		if r == nil || r.Records == 0 || r.MiBps <= 0 {
			t.Fatalf("%s read: %+v", name, r)
		}
	}
	if rep.Cold.Bytes != p.Bytes || rep.FanOut.Bytes != int64(cfg.Groups)*p.Bytes {
		t.Errorf("read %d bytes cold and %d with %d groups; produced %d", rep.Cold.Bytes, rep.FanOut.Bytes, cfg.Groups, p.Bytes)
	}
	if rep.Cold.Store.Gets == 0 || !rep.FanOut.Restarted {
		t.Errorf("cold read made %v GETs; fan-out restarted the agent: %v", rep.Cold.Store.Gets, rep.FanOut.Restarted)
	}
	if len(rep.Latency) != 2 || rep.Latency[1].FlushInterval != "20ms" || rep.Latency[0].EndToEnd.Count == 0 || rep.Latency[1].Produce.Count == 0 {
		t.Fatalf("latency phases: %+v", rep.Latency)
	}
	if l := rep.Limits; l.Put == nil || l.Get == nil || l.Etcd == nil || l.Put.Requests == 0 {
		t.Fatalf("limits: %+v", l)
	}
	if rep.Memory == nil || rep.Memory.MaxRSS == 0 || rep.Cost == nil || len(rep.Targets) < 9 {
		t.Fatalf("memory %+v, cost %+v, %d targets", rep.Memory, rep.Cost, len(rep.Targets))
	}
	s := rep.Sweep
	if s == nil || len(s.Points) != 2 || s.Points[0].Produce != rep.Produce || s.Points[1].Partitions != 64 {
		t.Fatalf("sweep: %+v", s)
	}
	for i, pt := range s.Points {
		if pt.Produce == nil || pt.Produce.Records == 0 || pt.Flushes == 0 || pt.Cold == nil || pt.Cold.Bytes != pt.Produce.Bytes || pt.Warm == nil || pt.Warm.Records == 0 || pt.PeakRSS == 0 {
			t.Errorf("sweep at %d partitions: %+v", pt.Partitions, pt)
		}
		c := pt.Compaction
		if c == nil || c.Error != "" || c.AgentPutsPerGiB == 0 || c.IntervalSeconds == 0 {
			t.Errorf("compaction at %d partitions: %+v", pt.Partitions, c)
			continue
		}
		// Two partitions' 4 MiB are a few flushes, and a shard's newest
		// entry is never merged: on a busy machine the agent flushes
		// less often and the first pass may find no run to merge. The
		// second count's pass looks at 64 partitions' shards as well,
		// where runs to merge are many.
		if i == len(s.Points)-1 && (c.Objects == 0 || c.PutsPerGiB == 0) {
			t.Errorf("compaction at %d partitions merged nothing: %+v", pt.Partitions, c)
		}
	}
	if q := s.Points[1].Ratios; q.ProduceMiBps == 0 || q.ColdMiBps == 0 || q.WarmMiBps == 0 || q.PutsPerGiB == 0 {
		t.Errorf("sweep ratios: %+v", q)
	}
	if len(rep.Fleet) != 1 {
		t.Fatalf("fleet: %+v", rep.Fleet)
	}
	if f := rep.Fleet[0]; !f.Passed || f.Sent == 0 || f.Acked != f.Sent || f.Offsets != f.Acked || f.Agents == nil || f.Latency.Count == 0 || f.Agents.CommitFailures() != 0 {
		t.Errorf("fleet: %+v, agents %+v", f, f.Agents)
	}
	var text bytes.Buffer
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"LIMIT", "PRODUCE", "CONSUME", "LATENCY", "COST", "AGENT MEMORY", "TARGETS", "cold (1 group)", "PARTITION SWEEP", "COMPACTION", "FLEET", "PASS fleet 20x8"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, text.String())
		}
	}
	if _, err := json.Marshal(rep); err != nil {
		t.Fatal(err)
	}
}

// The command line against a running cluster (-b): the agents cannot be
// restarted, so one latency phase runs at their flush interval and the
// report says the fan-out read warm caches. -o json parses.
func TestBenchCommandAgainstARunningCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped with -short")
	}
	c := newInProcessCluster(t, smokeAgentArgs...)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	args := []string{"bench", "-b", c.Brokers()[0], "--metrics", c.MetricsURLs()[0], "--quick", "-o", "json",
		"--bytes", "2MiB", "--record-size", "512", "--partitions", "2", "--producers", "1", "--consumers", "1", "--groups", "2",
		"--latency-duration", "1s", "--limit-duration", "200ms", "--etcd-endpoints", strings.Join(testenv.EtcdEndpoints(t), ","),
		"--flush-interval", "50ms", "--segment-target-bytes", "1MiB", "--cache-bytes", "16MiB", "--max-buffer-bytes", "32MiB"}
	var out bytes.Buffer
	res := runCLIWith(ctx, t, "", &out, args...)
	if res.code != 0 {
		t.Fatalf("floe bench: %v", res)
	}
	var rep bench.Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("-o json: %v\n%s", err, out.String())
	}
	if rep.Produce == nil || rep.Produce.Records == 0 || len(rep.Latency) != 1 || rep.Latency[0].FlushInterval != "50ms" {
		t.Fatalf("report: %+v", rep)
	}
	if rep.Limits.Put != nil || rep.Limits.Etcd == nil || len(rep.Limits.Missing) != 1 {
		t.Errorf("limits without --bucket: %+v", rep.Limits)
	}
	if rep.FanOut == nil || rep.FanOut.Restarted || !strings.Contains(strings.Join(rep.Notes, "\n"), "could not be restarted") {
		t.Errorf("fan-out against a running cluster: %+v, notes %q", rep.FanOut, rep.Notes)
	}
}

func TestCompactorSummaryLine(t *testing.T) {
	out := "level=WARN msg=x\ncompaction pass done in 1.234s: 64 partitions (0 behind retention), 0 index entries removed by retention, 64 merges of 400 entries, 0 objects deleted (0 unreferenced, 470 listed), 0 errors\n"
	m := passDone.FindStringSubmatch(out)
	if m == nil || m[1] != "1.234s" || !strings.HasPrefix(m[0], "compaction pass done") || strings.Contains(m[0], "\n") {
		t.Fatalf("summary line: %q", m)
	}
	if compactorInterval() <= 0 {
		t.Error("floe compactor's default interval is unknown")
	}
}

func TestParseByteSize(t *testing.T) {
	for in, want := range map[string]int64{"1024": 1024, "1KiB": 1024, "1.5MiB": 3 << 19, "2GiB": 2 << 30, "1GB": 1e9, "64M": 64 << 20, "10 B": 10} {
		if got, err := parseByteSize(in); err != nil || got != want {
			t.Errorf("parseByteSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "MiB", "-1", "1XB"} {
		if _, err := parseByteSize(bad); err == nil {
			t.Errorf("parseByteSize(%q) accepted", bad)
		}
	}
}

// The zone phase against four in-process agents in two zones: zoned
// clients' data stays in their zone, the unzoned group's does not, and
// every figure of the ZONES table is filled.
func TestBenchZones(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped with -short: runs floe bench against four agents")
	}
	c := newInProcessAgents(t, []string{"z1", "z2", "z1", "z2"}, smokeAgentArgs...)
	if len(c.Zones()) != 2 || len(c.Zones()[0].Brokers) != 2 {
		t.Fatalf("zones: %+v", c.Zones())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cfg := smokeConfig()
	cfg.LatencyDuration = 0
	cfg.FlushIntervals = []time.Duration{50 * time.Millisecond}
	cfg.ZoneBytes = 4 << 20
	cfg.ZonePartitions = 8
	rep, err := bench.Run(ctx, cfg, c, nil, bench.Options{})
	if err != nil {
		t.Fatal(err)
	}
	z := rep.Zones
	if z == nil || len(z.Zones) != 2 || z.Agents != 4 || z.Bytes < cfg.ZoneBytes*9/10 || rep.Agents != 4 {
		t.Fatalf("zones: %+v (report agents %d)", z, rep.Agents)
	}
	for _, zr := range z.Zones {
		if zr.ProducedBytes == 0 || zr.ReadBytes != int64(cfg.Groups)*z.Bytes || zr.Read.Gets == 0 || zr.GetsPerGiB == 0 {
			t.Errorf("zone %s: %+v", zr.Zone, zr)
		}
		if zr.ProduceCrossed.Data != 0 || zr.ReadCrossed.Data != 0 {
			t.Errorf("zone %s: data crossed zones: produce %+v, read %+v", zr.Zone, zr.ProduceCrossed, zr.ReadCrossed)
		}
	}
	u := z.Unzoned
	if u == nil || u.HomeZone != "z1" || u.ReadBytes != z.Bytes || u.Crossed.Data == 0 || u.CrossedFraction <= 0 || u.CrossedFraction >= 1 {
		t.Errorf("unzoned read: %+v", u)
	}
	var text bytes.Buffer
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ZONES (4 agents in 2 zones", "no zone (1 group, in z1)", "agent: all 4 together"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, text.String())
		}
	}
	data, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var back bench.Report
	if err := json.Unmarshal(data, &back); err != nil || back.Zones == nil || back.Zones.Zones[1].Zone != "z2" || back.Zones.Unzoned.ReadBytes != u.ReadBytes {
		t.Errorf("-o json: %v, zones %+v", err, back.Zones)
	}
}

func TestCheckLocalAgents(t *testing.T) {
	for _, c := range []struct {
		local         bool
		agents, zones int
		set           bool
		err           string // "" accepted
	}{
		{true, 1, 0, false, ""},
		{false, 1, 0, false, ""},
		{true, 4, 2, true, ""},
		{true, 3, 2, true, ""},
		{true, 2, 1, true, ""},
		{true, 4, 0, true, ""},
		{false, 4, 2, true, "--local"},
		{false, 1, 0, true, "--local"},
		{true, 0, 0, true, "at least 1"},
		{true, 2, 3, true, "every zone needs an agent"},
		{true, 1, 1, true, "--agents 2 or more"},
		{true, 2, -1, true, "--zones -1"},
	} {
		err := checkLocalAgents(c.local, c.agents, c.zones, c.set)
		if c.err == "" && err != nil || c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)) {
			t.Errorf("local %v, --agents %d --zones %d: %v, want %q", c.local, c.agents, c.zones, err, c.err)
		}
		if err != nil && strings.Contains(err.Error(), "\n") {
			t.Errorf("error of more than one line: %q", err)
		}
	}
}

// One agent runs with the arguments it always had; several each have
// their own ports, log, zone and peer address.
func TestLocalAgentLayout(t *testing.T) {
	c := &localCluster{
		env:      map[string]string{"FLOE_TEST_ETCD_ENDPOINTS": "http://127.0.0.1:23890"},
		settings: bench.Defaults().Agent, bucketURL: "minio://h/b/k?secure=false", clusterKey: "floe-bench-x", codec: "zstd", flush: 250 * time.Millisecond,
	}
	c.agents = layoutAgents(1, 0, []string{"127.0.0.1:1", "127.0.0.1:2"}, "/tmp/floe-bench-x")
	want := []string{
		"agent", "--etcd-endpoints", "http://127.0.0.1:23890", "--bucket", "minio://h/b/k?secure=false", "--cluster", "floe-bench-x",
		"--kafka-addr", "127.0.0.1:1", "--http-addr", "127.0.0.1:2", "--http-auth", "off", "--pprof",
		"--segment-target-bytes", "8388608", "--flush-interval", "250ms", "--max-buffer-bytes", "268435456", "--cache-bytes", "268435456",
		"--max-uploads", "4", "--segment-compression", "zstd", "--etcd-max-txn-ops", "2048", "--lease-ttl", "3s",
		"--group-initial-rebalance-delay", "100ms", "--log-level", "warn", "--log-format", "text",
	}
	if got := c.agentArgs(c.agents[0]); !slices.Equal(got, want) {
		t.Errorf("one agent's args:\n got %q\nwant %q", got, want)
	}
	if a := c.agents[0]; a.log != "/tmp/floe-bench-x-agent.log" || a.zone != "" || a.peerAddr != "" || c.name(a) != "the agent" {
		t.Errorf("one agent: %+v", a)
	}
	if d := describeAgents(c.agents, 0); d != "1 agent (child process)" || len(c.Zones()) != 0 {
		t.Errorf("one agent: %q, zones %+v", d, c.Zones())
	}

	var addrs []string
	for i := range 12 {
		addrs = append(addrs, fmt.Sprintf("127.0.0.1:%d", 100+i))
	}
	c.agents, c.zones = layoutAgents(4, 2, addrs, "/tmp/floe-bench-x"), 2
	for i, a := range c.agents {
		args := strings.Join(c.agentArgs(a), " ")
		zone := []string{"z1", "z2"}[i%2]
		for _, w := range []string{
			fmt.Sprintf("--kafka-addr 127.0.0.1:%d --http-addr 127.0.0.1:%d", 100+3*i, 101+3*i),
			"--zone " + zone, fmt.Sprintf("--peer-addr 127.0.0.1:%d", 102+3*i),
		} {
			if !strings.Contains(args, w) {
				t.Errorf("agent %d: args lack %q: %s", i, w, args)
			}
		}
		if a.log != fmt.Sprintf("/tmp/floe-bench-x-agent%d.log", i) || c.name(a) != fmt.Sprintf("agent %d (%s)", i, zone) {
			t.Errorf("agent %d: log %s, name %q", i, a.log, c.name(a))
		}
	}
	zones := c.Zones()
	if len(zones) != 2 || zones[0].Name != "z1" || !slices.Equal(zones[0].Brokers, []string{"127.0.0.1:100", "127.0.0.1:106"}) ||
		!slices.Equal(zones[1].MetricsURLs, []string{"http://127.0.0.1:104/metrics", "http://127.0.0.1:110/metrics"}) {
		t.Errorf("zones: %+v", zones)
	}
	if b := c.Brokers(); len(b) != 4 || len(c.MetricsURLs()) != 4 {
		t.Errorf("brokers %v, metrics %v", b, c.MetricsURLs())
	}
	if d := describeAgents(c.agents, 2); d != "4 agents (child processes, 2 in z1, 2 in z2, with --peer-addr)" {
		t.Errorf("describe: %q", d)
	}
	// Without peer addresses (a binary without --peer-addr) and zones.
	c.agents, c.zones = layoutAgents(3, 0, addrs[:6], "/tmp/floe-bench-x"), 0
	if args := strings.Join(c.agentArgs(c.agents[2]), " "); strings.Contains(args, "--zone") || strings.Contains(args, "--peer-addr") || !strings.Contains(args, "--kafka-addr 127.0.0.1:104") {
		t.Errorf("unzoned agent without a peer address: %s", args)
	}
	if d := describeAgents(c.agents, 0); d != "3 agents (child processes, without --peer-addr: no zone read sharing)" {
		t.Errorf("describe: %q", d)
	}
	if agentZone(4, 3) != "z2" || agentZone(0, 0) != "" {
		t.Error("agentZone")
	}
}

// Several agents' ERROR lines come oldest first, each with its agent.
func TestLocalAgentErrors(t *testing.T) {
	dir := t.TempDir()
	c := &localCluster{agents: layoutAgents(2, 0, []string{"a", "b", "c", "d"}, filepath.Join(dir, "x"))}
	os.WriteFile(c.agents[0].log, []byte("time=2026-12-06T00:00:01.000Z level=ERROR msg=one\ntime=2026-12-06T00:00:03.000Z level=WARN msg=no\ntime=2026-12-06T00:00:04.000Z level=ERROR msg=four\n"), 0o644)
	os.WriteFile(c.agents[1].log, []byte("time=2026-12-06T00:00:02.000Z level=ERROR msg=two\n"), 0o644)
	lines, err := c.AgentErrors()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"agent0: time=2026-12-06T00:00:01.000Z level=ERROR msg=one",
		"agent1: time=2026-12-06T00:00:02.000Z level=ERROR msg=two",
		"agent0: time=2026-12-06T00:00:04.000Z level=ERROR msg=four",
	}
	if !slices.Equal(lines, want) {
		t.Errorf("AgentErrors:\n got %q\nwant %q", lines, want)
	}
}

func TestFreeAddrs(t *testing.T) {
	addrs, err := freeAddrs(9)
	if err != nil {
		t.Fatal(err)
	}
	if len(slices.Compact(slices.Sorted(slices.Values(addrs)))) != 9 {
		t.Errorf("addresses repeat: %v", addrs)
	}
}
