package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
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

// inProcessCluster is a bench.Cluster of one agent started in this
// process with startAgent (as `floe agent` does), on the test etcd and a
// directory bucket, so the bench's smoke test needs no MinIO.
type inProcessCluster struct {
	t      *testing.T
	store  *metadata.Store
	etcd   *clientv3.Client
	bucket segments.Bucket
	args   []string
	// cluster and bucketDir are the agent's --cluster and --bucket, for
	// the compactor.
	cluster, bucketDir string
	mu                 sync.Mutex // guards agent, kafka and http against the bench's sampler
	agent              *running
	// kafka and http are the agent's addresses, kept across restarts (as
	// a restarted pod keeps its service address).
	kafka, http string
}

func newInProcessCluster(t *testing.T, args ...string) *inProcessCluster {
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
	c := &inProcessCluster{t: t, store: store, etcd: cli, bucket: bucket, args: args, cluster: cluster, bucketDir: dir}
	if err := c.start(0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.mu.Lock()
		r := c.agent
		c.mu.Unlock()
		r.stop(10 * time.Second)
	})
	return c
}

func (c *inProcessCluster) start(flush time.Duration) error {
	var o agentOptions
	fs := pflag.NewFlagSet("agent", pflag.ContinueOnError)
	o.register(fs, false)
	kafka, http := c.addrs()
	if kafka == "" {
		kafka, http = "127.0.0.1:0", "127.0.0.1:0"
	}
	args := append([]string{
		"--kafka-addr", kafka, "--http-addr", http, "--pprof",
		"--memory-limit", "-1", // not this test process's business
		"--group-initial-rebalance-delay", "-1ms", "--lease-ttl", "2s", "--drain-timeout", "5s",
	}, c.args...)
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
	c.agent = r
	c.kafka, c.http = r.agent.Addr(), r.HTTPAddr()
	return nil
}

func (c *inProcessCluster) addrs() (kafka, http string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.kafka, c.http
}

func (c *inProcessCluster) Brokers() []string {
	kafka, _ := c.addrs()
	return []string{kafka}
}
func (c *inProcessCluster) ClientOpts() []kgo.Opt { return nil }
func (c *inProcessCluster) MetricsURLs() []string {
	_, http := c.addrs()
	return []string{"http://" + http + "/metrics"}
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
	c.mu.Lock()
	r := c.agent
	c.mu.Unlock()
	if err := r.stop(10 * time.Second); err != nil {
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
	for _, pt := range s.Points {
		if pt.Produce == nil || pt.Produce.Records == 0 || pt.Flushes == 0 || pt.Cold == nil || pt.Cold.Bytes != pt.Produce.Bytes || pt.Warm == nil || pt.Warm.Records == 0 || pt.PeakRSS == 0 {
			t.Errorf("sweep at %d partitions: %+v", pt.Partitions, pt)
		}
		if c := pt.Compaction; c == nil || c.Error != "" || c.Objects == 0 || c.PutsPerGiB == 0 || c.AgentPutsPerGiB == 0 || c.IntervalSeconds == 0 {
			t.Errorf("compaction at %d partitions: %+v", pt.Partitions, c)
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
