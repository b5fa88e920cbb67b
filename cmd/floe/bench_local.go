package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/floe-io/floe/internal/bench"
	"github.com/floe-io/floe/metadata"
	"github.com/floe-io/floe/segments"
)

// localCluster is `floe bench --local`: MinIO and etcd from
// localstack/start.sh, and agents run as child processes of this binary
// (`floe agent`): one by default, or --agents of them, each on ports and
// with a log of its own, in --zones zones.
//
// The MinIO and etcd are the bench's own (.cache/bench-localstack, on
// ports of their own), not the test suite's localstack: on a machine
// where tests run against that one, their requests would queue ahead of
// the bench's and its etcd figures would be theirs. The MinIO binary the
// test localstack built is reused when there is one, so only a machine
// that has neither builds MinIO (about 3 minutes, once). Set
// FLOE_LOCALSTACK_DIR and the port variables (localstack/lib.sh) to use
// another.
//
// Why a child process rather than an agent in this process: the report
// states the agent's memory (its own RSS and Go heap, not the load
// generator's), its CPU profile is its alone, the load generator's
// garbage collection does not pause it, and a restart is a real one, with
// an empty cache, as after a deploy. It also runs the shipped binary with
// its real flags, and the bench reads it only from the outside (Kafka,
// /metrics, /debug/pprof), exactly as it reads a cluster named with -b.
type localCluster struct {
	log       io.Writer
	root      string // the floe checkout holding localstack/
	stackDir  string
	stackEnv  map[string]string // FLOE_LOCALSTACK_* for start.sh and stop.sh
	started   bool              // the bench started MinIO or etcd, and stops them
	keepData  bool              // --keep: the run's etcd keys, objects and agent log stay
	keepStack bool              // --keep or --keep-localstack: MinIO and etcd stay running

	id         string
	exe        string
	env        map[string]string
	bucketURL  string
	settings   bench.AgentSettings
	codec      string
	readChunk  bool // pass settings.ReadChunkBytes to the agent
	flush      time.Duration
	zones      int           // --zones: 0 leaves the agents without one
	agents     []*localAgent // fixed once started; their processes change under mu
	mu         sync.Mutex    // guards each agent's cmd, which Processes reads from the bench's sampler
	bucket     segments.Bucket
	etcd       *clientv3.Client
	clusterKey string
}

// localAgent is one agent of the local cluster: its addresses and log,
// which stay across restarts (as a restarted pod keeps its service
// address), and its process.
type localAgent struct {
	zone      string // its --zone; "" none
	kafkaAddr string
	httpAddr  string
	// peerAddr is its --peer-addr, the zone's shared read cache's
	// listener: "" when the cluster has one agent, or the agent binary
	// has no such flag.
	peerAddr string
	log      string
	cmd      *exec.Cmd // guarded by localCluster.mu; nil when stopped
	done     chan error
}

// localOptions are how `floe bench --local` runs its cluster, beyond the
// agents' settings.
type localOptions struct {
	codec       string // the agent's --segment-compression
	keepData    bool   // --keep
	keepStack   bool   // --keep-localstack
	agentBinary string // --agent-binary
	// readChunk passes the settings' read chunk size to the agent: only
	// when --read-chunk-bytes was given, as agents of older builds (see
	// --agent-binary) have no such flag.
	readChunk bool
	// agents and zones are --agents (0 means 1) and --zones: agent i is
	// in zone agentZone(i, zones).
	agents, zones int
}

// startLocalCluster starts localstack (or reuses it) and the agents.
func startLocalCluster(ctx context.Context, log io.Writer, settings bench.AgentSettings, opts localOptions) (_ *localCluster, err error) {
	keepData, keepStack, codec, agentBinary := opts.keepData, opts.keepStack, opts.codec, opts.agentBinary
	root, err := findCheckout()
	if err != nil {
		return nil, err
	}
	var idb [4]byte
	rand.Read(idb[:])
	c := &localCluster{
		log: log, root: root, keepData: keepData, keepStack: keepStack || keepData, settings: settings, codec: codec, flush: settings.FlushInterval,
		readChunk: opts.readChunk, id: hex.EncodeToString(idb[:]), zones: opts.zones,
	}
	c.stackEnv = benchStackEnv(root)
	c.stackDir = c.stackEnv["FLOE_LOCALSTACK_DIR"]
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	if c.exe, err = os.Executable(); err != nil {
		return nil, fmt.Errorf("finding this floe binary: %w", err)
	}
	if agentBinary != "" {
		c.exe = agentBinary
	}
	running := pidAlive(filepath.Join(c.stackDir, "etcd.pid")) && pidAlive(filepath.Join(c.stackDir, "minio.pid"))
	if !running {
		c.started = true
		if reuseMinIO(root, c.stackDir) {
			fmt.Fprintf(log, "bench: starting MinIO and etcd with localstack/start.sh in %s\n", c.stackDir)
		} else {
			fmt.Fprintf(log, "bench: starting MinIO and etcd with localstack/start.sh in %s (this first run builds MinIO: about 3 minutes)\n", c.stackDir)
		}
	}
	sh := exec.CommandContext(ctx, "bash", filepath.Join(root, "localstack", "start.sh"))
	sh.Dir = root
	sh.Env = c.stackEnviron()
	var shOut bytes.Buffer
	sh.Stdout, sh.Stderr = &shOut, &shOut
	if err := sh.Run(); err != nil {
		return nil, fmt.Errorf("localstack/start.sh failed: %v\n%s", err, shOut.String())
	}
	if c.env, err = readEnvFile(filepath.Join(c.stackDir, "env")); err != nil {
		return nil, fmt.Errorf("reading localstack's env file: %w", err)
	}
	for _, k := range []string{"FLOE_TEST_ETCD_ENDPOINTS", "FLOE_TEST_MINIO_ENDPOINT", "FLOE_TEST_MINIO_ACCESS_KEY", "FLOE_TEST_MINIO_SECRET_KEY", "FLOE_TEST_MINIO_BUCKET"} {
		if c.env[k] == "" {
			return nil, fmt.Errorf("localstack's env file has no %s", k)
		}
	}
	c.clusterKey = "floe-bench-" + c.id
	c.bucketURL = fmt.Sprintf("minio://%s/%s/%s?secure=false", c.env["FLOE_TEST_MINIO_ENDPOINT"], c.env["FLOE_TEST_MINIO_BUCKET"], c.clusterKey)
	bctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	c.bucket, err = segments.OpenBucket(bctx, c.bucketURL, segments.BucketOptions{AccessKey: c.env["FLOE_TEST_MINIO_ACCESS_KEY"], SecretKey: c.env["FLOE_TEST_MINIO_SECRET_KEY"]})
	cancel()
	if err != nil {
		return nil, err
	}
	if c.etcd, err = metadata.Dial(ctx, metadata.DialConfig{Endpoints: strings.Split(c.env["FLOE_TEST_ETCD_ENDPOINTS"], ",")}); err != nil {
		return nil, err
	}
	n := max(opts.agents, 1)
	peers := n > 1
	if peers && !agentHasFlag(c.exe, "peer-addr") {
		peers = false
		fmt.Fprintf(log, "bench: %s has no `floe agent --peer-addr`: its agents run without a zone's shared read cache\n", c.exe)
	}
	perAgent := 2
	if peers {
		perAgent = 3
	}
	addrs, err := freeAddrs(n * perAgent)
	if err != nil {
		return nil, err
	}
	c.agents = layoutAgents(n, opts.zones, addrs, filepath.Join(os.TempDir(), c.clusterKey))
	if err := c.startAgents(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// agentZone is the zone of agent i of a cluster of zones zones (0: none):
// z1, z2, ... in turn, so 4 agents in 2 zones are two in each.
func agentZone(i, zones int) string {
	if zones <= 0 {
		return ""
	}
	return fmt.Sprintf("z%d", i%zones+1)
}

// layoutAgents lays out n agents over zones zones: each takes its Kafka
// and HTTP addresses, and its peer address when addrs holds three per
// agent, from addrs in turn, and logs to logPrefix-agent.log (one agent)
// or logPrefix-agentI.log.
func layoutAgents(n, zones int, addrs []string, logPrefix string) []*localAgent {
	per := len(addrs) / n
	agents := make([]*localAgent, n)
	for i := range agents {
		a := &localAgent{zone: agentZone(i, zones), kafkaAddr: addrs[i*per], httpAddr: addrs[i*per+1], log: logPrefix + "-agent.log"}
		if per > 2 {
			a.peerAddr = addrs[i*per+2]
		}
		if n > 1 {
			a.log = fmt.Sprintf("%s-agent%d.log", logPrefix, i)
		}
		agents[i] = a
	}
	return agents
}

// agentHasFlag reports whether `exe agent --help` lists --flag.
func agentHasFlag(exe, flag string) bool {
	out, _ := exec.Command(exe, "agent", "--help").CombinedOutput()
	return bytes.Contains(out, []byte("--"+flag+" "))
}

// benchStackEnv is the FLOE_LOCALSTACK_* settings of the bench's own
// MinIO and etcd: its directory and ports, unless the environment sets
// them, and floe's embedded etcd (the etcd 3.6 floe's deploy files run):
// an etcd from the system may be 3.4 (Debian's), which copies its write
// buffer on every read and would make the bench measure that instead.
// The bench needs no PostgreSQL: its stack starts none, which would hold
// the test localstack's port while the bench's stack is up.
func benchStackEnv(root string) map[string]string {
	env := map[string]string{
		"FLOE_LOCALSTACK_POSTGRES":           "off",
		"FLOE_LOCALSTACK_ETCD":               "embedded",
		"FLOE_LOCALSTACK_DIR":                filepath.Join(root, ".cache", "bench-localstack"),
		"FLOE_LOCALSTACK_ETCD_PORT":          "23890",
		"FLOE_LOCALSTACK_ETCD_PEER_PORT":     "23900",
		"FLOE_LOCALSTACK_MINIO_PORT":         "19200",
		"FLOE_LOCALSTACK_MINIO_CONSOLE_PORT": "19201",
	}
	for k := range env {
		if v := os.Getenv(k); v != "" {
			env[k] = v
		}
	}
	return env
}

func (c *localCluster) stackEnviron() []string {
	env := os.Environ()
	for k, v := range c.stackEnv {
		env = append(env, k+"="+v)
	}
	return env
}

// reuseMinIO copies the MinIO binary the test localstack built into the
// bench's localstack, so start.sh need not build it again; it reports
// whether the bench's localstack has one.
func reuseMinIO(root, stackDir string) bool {
	dst := filepath.Join(stackDir, "bin")
	if _, err := os.Stat(filepath.Join(dst, "minio")); err == nil {
		return true
	}
	src := filepath.Join(root, ".cache", "localstack", "bin")
	stamp, err := os.ReadFile(filepath.Join(src, "minio.version"))
	if err != nil {
		return false
	}
	bin, err := os.ReadFile(filepath.Join(src, "minio"))
	if err != nil || os.MkdirAll(dst, 0o755) != nil {
		return false
	}
	if os.WriteFile(filepath.Join(dst, "minio"), bin, 0o755) != nil {
		return false
	}
	return os.WriteFile(filepath.Join(dst, "minio.version"), stamp, 0o644) == nil
}

// findCheckout finds the floe checkout (a directory with
// localstack/start.sh) from the working directory or this binary up.
func findCheckout() (string, error) {
	var starts []string
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if exe, err := os.Executable(); err == nil {
		starts = append(starts, filepath.Dir(exe))
	}
	for _, dir := range starts {
		for {
			if _, err := os.Stat(filepath.Join(dir, "localstack", "start.sh")); err == nil {
				return dir, nil
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
	}
	return "", errors.New("--local needs a floe checkout (it runs localstack/start.sh for MinIO and etcd): run it from inside one, or name a running cluster with -b")
}

func pidAlive(pidFile string) bool {
	data, err := os.ReadFile(pidFile)
	if err != nil {
		return false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return false
	}
	return syscall.Kill(pid, 0) == nil
}

// freeAddrs returns n loopback addresses with ports nothing listens on,
// all different: each port is held until all are found.
func freeAddrs(n int) ([]string, error) {
	var addrs []string
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer ln.Close()
		addrs = append(addrs, ln.Addr().String())
	}
	return addrs, nil
}

func (c *localCluster) agentArgs(a *localAgent) []string {
	s := c.settings
	args := []string{
		"agent",
		"--etcd-endpoints", c.env["FLOE_TEST_ETCD_ENDPOINTS"],
		"--bucket", c.bucketURL,
		"--cluster", c.clusterKey,
		"--kafka-addr", a.kafkaAddr,
		"--http-addr", a.httpAddr,
		"--http-auth", "off",
		"--pprof",
		"--segment-target-bytes", strconv.FormatInt(s.SegmentTargetBytes, 10),
		"--flush-interval", c.flush.String(),
		"--max-buffer-bytes", strconv.FormatInt(s.MaxBufferBytes, 10),
		"--cache-bytes", strconv.FormatInt(s.CacheBytes, 10),
		"--max-uploads", strconv.Itoa(s.MaxUploads),
		"--segment-compression", c.codec,
		"--etcd-max-txn-ops", "2048", // localstack's etcd allows it
		"--lease-ttl", "3s",
		// Reads are timed from their first records, so a group's join
		// delay only costs wall time, once per read phase.
		"--group-initial-rebalance-delay", "100ms",
		"--log-level", "warn",
		"--log-format", "text", // AgentErrors reads level=ERROR
	}
	if c.readChunk {
		args = append(args, "--read-chunk-bytes", strconv.FormatInt(s.ReadChunkBytes, 10))
	}
	if a.zone != "" {
		args = append(args, "--zone", a.zone)
	}
	if a.peerAddr != "" {
		args = append(args, "--peer-addr", a.peerAddr)
	}
	return args
}

// name names agent a in messages: "the agent" when it is the only one.
func (c *localCluster) name(a *localAgent) string {
	if len(c.agents) == 1 {
		return "the agent"
	}
	i := slices.Index(c.agents, a)
	if a.zone != "" {
		return fmt.Sprintf("agent %d (%s)", i, a.zone)
	}
	return fmt.Sprintf("agent %d", i)
}

// startAgents starts every agent at once and returns when all serve, or
// with the first that could not start.
func (c *localCluster) startAgents(ctx context.Context) error {
	errs := make([]error, len(c.agents))
	var wg sync.WaitGroup
	for i, a := range c.agents {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = c.startAgent(ctx, a)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (c *localCluster) startAgent(ctx context.Context, a *localAgent) error {
	logf, err := os.OpenFile(a.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(c.exe, c.agentArgs(a)...)
	cmd.Env = c.childEnv()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("starting %s: %w", c.name(a), err)
	}
	done := make(chan error, 1)
	go func() {
		done <- cmd.Wait()
		logf.Close()
	}()
	c.mu.Lock()
	a.cmd, a.done = cmd, done
	c.mu.Unlock()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + a.httpAddr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case err := <-done:
			c.mu.Lock()
			a.cmd = nil
			c.mu.Unlock()
			return fmt.Errorf("%s exited during startup (%v); its log, %s:\n%s", c.name(a), err, a.log, tail(a.log, 20))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s was not ready within 60s; its log, %s:\n%s", c.name(a), a.log, tail(a.log, 20))
		}
	}
}

// childEnv is the environment of the agent and compactor processes: the
// bench's, with MinIO's credentials.
func (c *localCluster) childEnv() []string {
	return append(os.Environ(),
		"MINIO_ACCESS_KEY="+c.env["FLOE_TEST_MINIO_ACCESS_KEY"],
		"MINIO_SECRET_KEY="+c.env["FLOE_TEST_MINIO_SECRET_KEY"])
}

// compactorArgs run one compaction pass over the bench's cluster as the
// agents see it (same etcd, bucket, cluster and transaction size). It
// merges index entries however recently they were committed
// (--compaction-settle 1ms: 0 would mean the default), and deletes no
// object the run may still read (--gc-grace 1h).
func (c *localCluster) compactorArgs() []string {
	return []string{
		"compactor", "--once",
		"--etcd-endpoints", c.env["FLOE_TEST_ETCD_ENDPOINTS"],
		"--bucket", c.bucketURL,
		"--cluster", c.clusterKey,
		"--compaction-settle", "1ms",
		"--gc-grace", "1h",
		"--etcd-max-txn-ops", "2048",
		"--log-level", "warn",
	}
}

// passDone is the summary line `floe compactor --once` prints.
var passDone = regexp.MustCompile(`compaction pass done in ([^:\s]+):[^\n]*`)

// CompactOnce runs `floe compactor --once` as a child process and reads
// the pass's duration from its summary line.
func (c *localCluster) CompactOnce(ctx context.Context) (bench.CompactionPass, error) {
	cmd := exec.CommandContext(ctx, c.exe, c.compactorArgs()...)
	cmd.Env = c.childEnv()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	pass := bench.CompactionPass{Interval: compactorInterval()}
	if m := passDone.FindStringSubmatch(out.String()); m != nil {
		pass.Summary = m[0]
		pass.Duration, _ = time.ParseDuration(m[1])
	}
	if err != nil {
		return pass, fmt.Errorf("floe compactor --once: %v: %s", err, lastLines(out.String(), 5))
	}
	return pass, nil
}

// compactorInterval is the time between passes of a `floe compactor` run
// with its defaults, as its command line states it.
func compactorInterval() time.Duration {
	f := newCompactorCmd().Flags().Lookup("retention-check-interval")
	if f == nil {
		return 0
	}
	d, _ := time.ParseDuration(f.DefValue)
	return d
}

// AgentErrors returns the lines the agents logged at level ERROR, across
// their restarts (each appends to its own log), oldest first. With
// several agents each line starts with the agent's number.
func (c *localCluster) AgentErrors() ([]string, error) {
	var lines []string
	for i, a := range c.agents {
		data, err := os.ReadFile(a.log)
		if err != nil {
			return nil, err
		}
		for _, l := range strings.Split(string(data), "\n") {
			if !strings.Contains(l, "level=ERROR") {
				continue
			}
			if len(c.agents) > 1 {
				l = fmt.Sprintf("agent%d: %s", i, l)
			}
			lines = append(lines, l)
		}
	}
	if len(c.agents) > 1 {
		slices.SortStableFunc(lines, func(a, b string) int { return strings.Compare(logTime(a), logTime(b)) })
	}
	return lines, nil
}

// logTime is the time= field of a text log line (RFC 3339 with
// milliseconds, which sort as text), "" without one.
func logTime(line string) string {
	_, rest, ok := strings.Cut(line, "time=")
	if !ok {
		return ""
	}
	t, _, _ := strings.Cut(rest, " ")
	return t
}

// stopAgents drains every agent at once.
func (c *localCluster) stopAgents() error {
	errs := make([]error, len(c.agents))
	var wg sync.WaitGroup
	for i, a := range c.agents {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = c.stopAgent(a)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// stopAgent drains the agent with SIGTERM, as a deploy would.
func (c *localCluster) stopAgent(a *localAgent) error {
	c.mu.Lock()
	cmd := a.cmd
	c.mu.Unlock()
	if cmd == nil {
		return nil
	}
	cmd.Process.Signal(syscall.SIGTERM)
	var err error
	select {
	case err = <-a.done:
	case <-time.After(45 * time.Second):
		cmd.Process.Kill()
		err = <-a.done
	}
	c.mu.Lock()
	a.cmd = nil
	c.mu.Unlock()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return fmt.Errorf("%s exited with %v; its log, %s:\n%s", c.name(a), err, a.log, tail(a.log, 20))
	}
	return err
}

func tail(path string, n int) string {
	data, _ := os.ReadFile(path)
	return lastLines(string(data), n)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Processes names the processes of the cluster, for the report's CPU
// figures: "agent" is every agent.
func (c *localCluster) Processes() map[string][]int {
	m := map[string][]int{}
	c.mu.Lock()
	for _, a := range c.agents {
		if a.cmd != nil && a.cmd.Process != nil {
			m["agent"] = append(m["agent"], a.cmd.Process.Pid)
		}
	}
	c.mu.Unlock()
	for _, name := range []string{"minio", "etcd"} {
		data, err := os.ReadFile(filepath.Join(c.stackDir, name+".pid"))
		if pid, perr := strconv.Atoi(strings.TrimSpace(string(data))); err == nil && perr == nil {
			m[name] = []int{pid}
		}
	}
	return m
}

func (c *localCluster) Brokers() []string {
	var addrs []string
	for _, a := range c.agents {
		addrs = append(addrs, a.kafkaAddr)
	}
	return addrs
}
func (c *localCluster) ClientOpts() []kgo.Opt { return nil }
func (c *localCluster) MetricsURLs() []string {
	var urls []string
	for _, a := range c.agents {
		urls = append(urls, "http://"+a.httpAddr+"/metrics")
	}
	return urls
}
func (c *localCluster) Bucket() segments.Bucket { return c.bucket }
func (c *localCluster) Etcd() *clientv3.Client  { return c.etcd }

// Zones returns the agents of each zone, z1 first; none when the agents
// have no zone.
func (c *localCluster) Zones() []bench.Zone {
	var zones []bench.Zone
	for i := range c.zones {
		z := bench.Zone{Name: agentZone(i, c.zones)}
		for _, a := range c.agents {
			if a.zone == z.Name {
				z.Brokers = append(z.Brokers, a.kafkaAddr)
				z.MetricsURLs = append(z.MetricsURLs, "http://"+a.httpAddr+"/metrics")
			}
		}
		zones = append(zones, z)
	}
	return zones
}

func (c *localCluster) Describe() string {
	kind, _ := os.ReadFile(filepath.Join(c.stackDir, "etcd.kind"))
	return fmt.Sprintf("--local: %s + MinIO + etcd (%s) on loopback, all sharing this machine's CPUs with the bench", describeAgents(c.agents, c.zones), strings.TrimSpace(string(kind)))
}

// describeAgents says how many agents run, in which zones, and whether
// they share a zone's reads.
func describeAgents(agents []*localAgent, zones int) string {
	if len(agents) == 1 {
		return "1 agent (child process)"
	}
	s := fmt.Sprintf("%d agents (child processes", len(agents))
	if zones > 0 {
		var per []string
		for i := range zones {
			n := 0
			for _, a := range agents {
				if a.zone == agentZone(i, zones) {
					n++
				}
			}
			per = append(per, fmt.Sprintf("%d in %s", n, agentZone(i, zones)))
		}
		s += ", " + strings.Join(per, ", ")
	}
	if agents[0].peerAddr != "" {
		return s + ", with --peer-addr)"
	}
	return s + ", without --peer-addr: no zone read sharing)"
}

// Restart restarts every agent at once, with empty caches.
func (c *localCluster) Restart(ctx context.Context, flush time.Duration) error {
	if err := c.stopAgents(); err != nil {
		return err
	}
	if flush > 0 {
		c.flush = flush
	}
	return c.startAgents(ctx)
}

// Close stops the agents, removes what the run wrote, and stops the
// services the bench started.
func (c *localCluster) Close() error {
	err := c.stopAgents()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if !c.keepData {
		if c.etcd != nil && c.clusterKey != "" {
			if _, derr := c.etcd.Delete(ctx, "/floe/"+c.clusterKey+"/", clientv3.WithPrefix()); derr != nil {
				fmt.Fprintf(c.log, "bench: removing the run's etcd keys: %v\n", derr)
			}
		}
		if c.bucket != nil {
			if derr := segments.DeletePrefix(ctx, c.bucket, ""); derr != nil {
				fmt.Fprintf(c.log, "bench: removing the run's objects: %v\n", derr)
			}
		}
		for _, a := range c.agents {
			os.Remove(a.log)
		}
	}
	if c.bucket != nil {
		c.bucket.Close()
	}
	if c.etcd != nil {
		c.etcd.Close()
	}
	if c.started && !c.keepStack && c.root != "" {
		sh := exec.Command("bash", filepath.Join(c.root, "localstack", "stop.sh"), "--clean")
		sh.Dir = c.root
		sh.Env = c.stackEnviron()
		if out, serr := sh.CombinedOutput(); serr != nil {
			fmt.Fprintf(c.log, "bench: localstack/stop.sh: %v\n%s", serr, out)
		}
	}
	return err
}

// remoteCluster is a running cluster named with -b.
type remoteCluster struct {
	brokers []string
	opts    []kgo.Opt
	metrics []string
	bucket  segments.Bucket
	etcd    *clientv3.Client
}

func newRemoteCluster(ctx context.Context, cf *clientFlags, metrics []string, bucketURL string, etcdEPs []string) (_ *remoteCluster, err error) {
	c := &remoteCluster{brokers: cf.brokers, metrics: metrics}
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	if c.opts, err = cf.securityOpts(); err != nil {
		return nil, err
	}
	if bucketURL != "" {
		bctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		c.bucket, err = segments.OpenBucket(bctx, bucketURL, segments.BucketOptions{})
		cancel()
		if err != nil {
			return nil, err
		}
	}
	if len(etcdEPs) > 0 {
		if c.etcd, err = metadata.Dial(ctx, metadata.DialConfig{Endpoints: etcdEPs}); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func (c *remoteCluster) Brokers() []string                            { return c.brokers }
func (c *remoteCluster) ClientOpts() []kgo.Opt                        { return c.opts }
func (c *remoteCluster) MetricsURLs() []string                        { return c.metrics }
func (c *remoteCluster) Restart(context.Context, time.Duration) error { return bench.ErrNoRestart }
func (c *remoteCluster) Bucket() segments.Bucket                      { return c.bucket }
func (c *remoteCluster) Etcd() *clientv3.Client                       { return c.etcd }
func (c *remoteCluster) Describe() string {
	return fmt.Sprintf("-b %s: %d agents' metrics", strings.Join(c.brokers, ","), len(c.metrics))
}

func (c *remoteCluster) Close() error {
	if c.bucket != nil {
		c.bucket.Close()
	}
	if c.etcd != nil {
		c.etcd.Close()
	}
	return nil
}
