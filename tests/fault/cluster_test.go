package fault

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// The cluster the suite runs: its own etcd and MinIO, three proxies in
// front of MinIO (one for the agents, one for the compactor, one for the
// exporter) and one in front of etcd (for the exporter), three agents, the
// compactor and the Iceberg exporter (its SQLite catalog in the working
// directory), all on free loopback ports.

const (
	minioUser     = "fault-suite"
	minioPassword = "fault-suite-secret"
	bucketName    = "floe-fault"
	clusterName   = "fault"
	numAgents     = 3
)

// The consumer-protocol groups' heartbeat interval and session timeout,
// which the agents set (Kafka's defaults are 5s and 45s). A member moves
// one reconciliation step per heartbeat, so with 1s a rebalance takes
// about as long as the classic group's, whose members heartbeat every 3s
// (franz-go's default). A member is removed after 15s without a
// heartbeat: longer than any outage the suite injects, so a fault alone
// removes no member that keeps heartbeating, and short enough that a
// member franz-go leaves heartbeating a coordinator that is gone (it looks
// for the new one only when another request, such as a commit, fails to
// reach the old) costs its group 15s, not 45s, before its partitions move.
const (
	consumerHeartbeat = time.Second
	consumerSession   = 15 * time.Second
)

type cluster struct {
	t   *testing.T
	dir string

	etcd    *Proc
	etcdURL string

	minio     *Proc
	minioAddr string

	s3  *Proxy // the agents' way to MinIO
	cs3 *Proxy // the compactor's
	es3 *Proxy // the exporter's: the segments it reads, the tables' files it writes

	eetcd *Proxy // the exporter's way to etcd

	agents    []*agentProc
	compactor *Proc
	compHTTP  string

	exporter *Proc
	expHTTP  string
	// catalog is the exporter's Iceberg catalog (a SQLite file).
	catalog string

	logf func(format string, args ...any)
}

type agentProc struct {
	*Proc
	kafka, http string
}

// repoRoot finds the module root above the working directory.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && strings.Contains(string(b), "module github.com/floe-io/floe\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("not inside the floe module")
		}
		dir = parent
	}
}

// minioBinary is the MinIO localstack installs, or FLOE_FAULT_MINIO.
func minioBinary(root string) string {
	if p := os.Getenv("FLOE_FAULT_MINIO"); p != "" {
		return p
	}
	if d := os.Getenv("FLOE_LOCALSTACK_DIR"); d != "" {
		return filepath.Join(d, "bin", "minio")
	}
	return filepath.Join(root, ".cache", "localstack", "bin", "minio")
}

// etcdCommand is etcd from FLOE_FAULT_ETCD or PATH, else `floe etcd`,
// serving clients on clientPort with its data in dataDir.
func etcdCommand(floe, dataDir string, clientPort, peerPort int) (path string, args []string, kind string) {
	bin := os.Getenv("FLOE_FAULT_ETCD")
	if bin == "" {
		bin, _ = exec.LookPath("etcd")
	}
	if bin == "" {
		if _, err := os.Stat("/usr/bin/etcd"); err == nil {
			bin = "/usr/bin/etcd"
		}
	}
	client := fmt.Sprintf("http://127.0.0.1:%d", clientPort)
	if bin == "" {
		return floe, []string{"etcd", "--data-dir", dataDir, "--listen", fmt.Sprintf("127.0.0.1:%d", clientPort)}, "floe etcd"
	}
	peer := fmt.Sprintf("http://127.0.0.1:%d", peerPort)
	args = []string{
		"--name=fault", "--data-dir=" + dataDir,
		"--listen-client-urls=" + client, "--advertise-client-urls=" + client,
		"--listen-peer-urls=" + peer, "--initial-advertise-peer-urls=" + peer,
		"--initial-cluster=fault=" + peer, "--initial-cluster-state=new",
		"--unsafe-no-fsync", "--log-level=error",
	}
	kind = "etcd"
	if out, err := exec.Command(bin, "--version").Output(); err == nil {
		sc := bufio.NewScanner(strings.NewReader(string(out)))
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "etcd Version: "); ok {
				kind = "etcd " + strings.TrimSpace(v)
				// etcd 3.4 logs with capnslog, which ignores
				// --log-level, unless told to use zap.
				if strings.HasPrefix(v, "3.4.") || strings.HasPrefix(v, "3.3.") {
					args = append(args, "--logger=zap")
				}
			}
		}
	}
	return bin, args, kind
}

// buildFloe builds ./cmd/floe into dir.
func buildFloe(t *testing.T, root, dir string) string {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		gobin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	out := filepath.Join(dir, "floe")
	args := []string{"build", "-o", out}
	if os.Getenv("FLOE_FAULT_RACE") == "1" {
		args = append(args, "-race")
	}
	args = append(args, "./cmd/floe")
	cmd := exec.Command(gobin, args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOFLAGS=-buildvcs=false")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, b)
	}
	return out
}

// freePort returns a loopback port free now and not returned before: a
// port is closed again before its process listens on it, so the kernel
// may hand the same one out twice (an agent was once given one port for
// both its Kafka and its peer listener).
func freePort(t *testing.T) int {
	t.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	for range 100 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		if !portsGiven[port] {
			portsGiven[port] = true
			return port
		}
	}
	t.Fatal("no loopback port that was not handed out already")
	return 0
}

var (
	portsMu    sync.Mutex
	portsGiven = map[int]bool{}
)

// httpOK reports whether GET url answers 200 and its body contains want.
func httpOK(url, want string) error {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	n, _ := resp.Body.Read(buf)
	b.Write(buf[:n])
	if resp.StatusCode != http.StatusOK || !strings.Contains(b.String(), want) {
		return fmt.Errorf("%w: %s: %s %q", errNotReady, url, resp.Status, b.String())
	}
	return nil
}

// waitFor polls check until it passes, the process exits, or timeout.
func waitFor(p *Proc, timeout time.Duration, check func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return nil
		}
		if p != nil && !p.Running() {
			return fmt.Errorf("%s exited while starting; its log ends:\n%s", p.Name, p.Tail(30))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %v: %v", p.Name, timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (c *cluster) etcdReady() error {
	return waitFor(c.etcd, 60*time.Second, func() error { return httpOK(c.etcdURL+"/health", `"health":"true"`) })
}

func (c *cluster) minioReady() error {
	return waitFor(c.minio, 120*time.Second, func() error { return httpOK("http://"+c.minioAddr+"/minio/health/live", "") })
}

func (c *cluster) agentReady(a *agentProc) error {
	return waitFor(a.Proc, 60*time.Second, func() error { return httpOK("http://"+a.http+"/readyz", "ready") })
}

// zoneCounters sums the agents' shared-read and forwarding counters, for
// the log: what of the zone machinery the run exercised.
func (c *cluster) zoneCounters() string {
	series := []string{
		`floe_fetch_peer_reads_total{result="ok"}`,
		`floe_fetch_peer_reads_total{result="failed"}`,
		`floe_fetch_peer_served_total`,
		`floe_agent_coordinator_forwards_total`,
		`floe_agent_coordinator_forward_errors_total`,
	}
	sums := make([]float64, len(series))
	for _, a := range c.agents {
		resp, err := http.Get("http://" + a.http + "/metrics")
		if err != nil {
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, line := range strings.Split(string(body), "\n") {
			for i, name := range series {
				if v, ok := strings.CutPrefix(line, name+" "); ok {
					f, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
					sums[i] += f
				}
			}
		}
	}
	var b strings.Builder
	for i, name := range series {
		fmt.Fprintf(&b, "%s=%.0f ", name, sums[i])
	}
	return strings.TrimSpace(b.String())
}

func (c *cluster) compactorReady() error {
	return waitFor(c.compactor, 60*time.Second, func() error { return httpOK("http://"+c.compHTTP+"/healthz", "ok") })
}

// exporterReady waits for the exporter's /healthz, active or standby (a
// restarted exporter waits out its predecessor's lease).
func (c *cluster) exporterReady() error {
	return waitFor(c.exporter, 60*time.Second, func() error { return httpOK("http://"+c.expHTTP+"/healthz", "ok") })
}

// exporterActive waits until the exporter leads.
func (c *cluster) exporterActive(timeout time.Duration) error {
	return waitFor(c.exporter, timeout, func() error { return httpOK("http://"+c.expHTTP+"/healthz", "ok: active") })
}

// startCluster starts everything and returns once every process is
// ready. Cleanup kills whatever still runs.
func startCluster(t *testing.T, dir, floe, minioBin string, logf func(string, ...any)) *cluster {
	c := &cluster{t: t, dir: dir, logf: logf}
	t.Cleanup(c.killAll)

	// etcd
	ep, pp := freePort(t), freePort(t)
	path, args, kind := etcdCommand(floe, filepath.Join(dir, "etcd-data"), ep, pp)
	c.etcdURL = fmt.Sprintf("http://127.0.0.1:%d", ep)
	c.etcd = &Proc{Name: "etcd", Path: path, Args: args, LogPath: filepath.Join(dir, "etcd.log")}
	if err := c.etcd.Start(); err != nil {
		t.Fatal(err)
	}

	// MinIO
	mp, cp := freePort(t), freePort(t)
	c.minioAddr = fmt.Sprintf("127.0.0.1:%d", mp)
	c.minio = &Proc{
		Name: "minio", Path: minioBin,
		Args:    []string{"server", "--address", c.minioAddr, "--console-address", fmt.Sprintf("127.0.0.1:%d", cp), filepath.Join(dir, "minio-data")},
		Env:     []string{"MINIO_ROOT_USER=" + minioUser, "MINIO_ROOT_PASSWORD=" + minioPassword, "MINIO_UPDATE=off", "MINIO_CI_CD=1", "MINIO_BROWSER=off"},
		LogPath: filepath.Join(dir, "minio.log"),
	}
	if err := c.minio.Start(); err != nil {
		t.Fatal(err)
	}
	if err := c.etcdReady(); err != nil {
		t.Fatal(err)
	}
	if err := c.minioReady(); err != nil {
		t.Fatal(err)
	}
	if err := makeBucket(c.minioAddr); err != nil {
		t.Fatalf("creating bucket %s in MinIO: %v", bucketName, err)
	}
	logf("etcd (%s) on %s, MinIO on %s", kind, c.etcdURL, c.minioAddr)

	var err error
	if c.s3, err = NewProxy("127.0.0.1:0", c.minioAddr); err != nil {
		t.Fatal(err)
	}
	if c.cs3, err = NewProxy("127.0.0.1:0", c.minioAddr); err != nil {
		t.Fatal(err)
	}
	if c.es3, err = NewProxy("127.0.0.1:0", c.minioAddr); err != nil {
		t.Fatal(err)
	}
	if c.eetcd, err = NewProxy("127.0.0.1:0", strings.TrimPrefix(c.etcdURL, "http://")); err != nil {
		t.Fatal(err)
	}

	bucket := func(p *Proxy) string {
		return fmt.Sprintf("minio://%s/%s/data?secure=false", p.Addr(), bucketName)
	}
	creds := []string{"MINIO_ACCESS_KEY=" + minioUser, "MINIO_SECRET_KEY=" + minioPassword}
	for i := range numAgents {
		a := &agentProc{
			kafka: fmt.Sprintf("127.0.0.1:%d", freePort(t)),
			http:  fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		}
		// Two zones, sharing reads through their peer listeners: zone a's
		// clients (agentZone) use agents 0 and 1, and reach coordinators
		// on agent 2 through them.
		zone := "a"
		if i >= 2 {
			zone = "b"
		}
		a.Proc = &Proc{
			Name: fmt.Sprintf("agent-%d", i), Path: floe, Env: creds,
			LogPath: filepath.Join(dir, fmt.Sprintf("agent-%d.log", i)),
			Args: []string{"agent",
				"--etcd-endpoints", c.etcdURL, "--bucket", bucket(c.s3), "--cluster", clusterName,
				"--kafka-addr", a.kafka, "--http-addr", a.http,
				"--zone", zone, "--peer-addr", fmt.Sprintf("127.0.0.1:%d", freePort(t)),
				"--flush-interval", "50ms", "--lease-ttl", "3s", "--drain-timeout", "10s",
				"--group-initial-rebalance-delay", "200ms", "--auto-create-topics=false",
				"--log-retention-ms", "-1", "--max-commit-delay", "20s",
				"--group-consumer-heartbeat-interval", consumerHeartbeat.String(),
				"--group-consumer-session-timeout", consumerSession.String(),
			},
		}
		c.agents = append(c.agents, a)
		if err := a.Start(); err != nil {
			t.Fatal(err)
		}
	}
	c.compHTTP = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	c.compactor = &Proc{
		Name: "compactor", Path: floe, Env: creds,
		LogPath: filepath.Join(dir, "compactor.log"),
		Args: []string{"compactor",
			"--etcd-endpoints", c.etcdURL, "--bucket", bucket(c.cs3), "--cluster", clusterName,
			"--http-addr", c.compHTTP, "--id", "fault-compactor",
			"--retention-check-interval", "5s", "--gc-grace", "30s", "--compaction-settle", "2s",
			"--lease-ttl", "3s", "--log-retention-ms", "-1", "--log-level", "debug",
		},
	}
	if err := c.compactor.Start(); err != nil {
		t.Fatal(err)
	}
	// The exporter: its warehouse is iceberg/ under the bucket's prefix,
	// written through its own proxy, and its way to etcd through another;
	// its lease as short as the compactor's, so a killed one is replaced
	// within seconds.
	c.expHTTP = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	c.catalog = filepath.Join(dir, "iceberg-catalog.db")
	c.exporter = &Proc{
		Name: "exporter", Path: floe, Env: creds,
		LogPath: filepath.Join(dir, "exporter.log"),
		Args: []string{"exporter",
			"--etcd-endpoints", "http://" + c.eetcd.Addr(), "--bucket", bucket(c.es3), "--cluster", clusterName,
			"--catalog", "sqlite://" + c.catalog,
			"--http-addr", c.expHTTP, "--id", "fault-exporter",
			"--lease-ttl", "3s", "--log-level", "debug",
		},
	}
	if err := c.exporter.Start(); err != nil {
		t.Fatal(err)
	}
	for _, a := range c.agents {
		if err := c.agentReady(a); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.compactorReady(); err != nil {
		t.Fatal(err)
	}
	if err := c.exporterReady(); err != nil {
		t.Fatal(err)
	}
	return c
}

func makeBucket(addr string) error {
	cli, err := minio.New(addr, &minio.Options{Creds: credentials.NewStaticV4(minioUser, minioPassword, ""), BucketLookup: minio.BucketLookupPath})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		err = cli.MakeBucket(ctx, bucketName, minio.MakeBucketOptions{})
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func (c *cluster) procs() []*Proc {
	ps := []*Proc{c.etcd, c.minio}
	for _, a := range c.agents {
		ps = append(ps, a.Proc)
	}
	if c.compactor != nil {
		ps = append(ps, c.compactor)
	}
	if c.exporter != nil {
		ps = append(ps, c.exporter)
	}
	var out []*Proc
	for _, p := range ps {
		if p != nil {
			out = append(out, p)
		}
	}
	return out
}

func (c *cluster) seeds() []string {
	var s []string
	for _, a := range c.agents {
		s = append(s, a.kafka)
	}
	return s
}

// healthy waits until every process runs and is ready.
func (c *cluster) healthy() error {
	for _, p := range c.procs() {
		if !p.Running() {
			return fmt.Errorf("%s is not running", p.Name)
		}
	}
	if err := c.etcdReady(); err != nil {
		return err
	}
	if err := c.minioReady(); err != nil {
		return err
	}
	for _, a := range c.agents {
		if err := c.agentReady(a); err != nil {
			return err
		}
	}
	if err := c.compactorReady(); err != nil {
		return err
	}
	return c.exporterReady()
}

// killAll kills every process still running and closes the proxies.
func (c *cluster) killAll() {
	for _, p := range c.procs() {
		if p.Running() {
			p.Kill()
		}
	}
	if c.s3 != nil {
		c.s3.Close()
	}
	if c.cs3 != nil {
		c.cs3.Close()
	}
	if c.es3 != nil {
		c.es3.Close()
	}
	if c.eetcd != nil {
		c.eetcd.Close()
	}
}

// stopAll stops the floe processes gracefully (agents and the exporter
// must exit 0), then etcd and MinIO.
func (c *cluster) stopAll() error {
	var errs []error
	for _, a := range c.agents {
		st, err := a.Stop(20 * time.Second)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("stopping %s: %w", a.Name, err))
		case !st.Success():
			errs = append(errs, fmt.Errorf("%s exited with %v after SIGTERM; its log ends:\n%s", a.Name, st, a.Tail(20)))
		}
	}
	if _, err := c.compactor.Stop(15 * time.Second); err != nil {
		errs = append(errs, fmt.Errorf("stopping the compactor: %w", err))
	}
	// The exporter resigns and exits 0 on SIGTERM.
	switch st, err := c.exporter.Stop(15 * time.Second); {
	case err != nil:
		errs = append(errs, fmt.Errorf("stopping the exporter: %w", err))
	case !st.Success():
		errs = append(errs, fmt.Errorf("the exporter exited with %v after SIGTERM; its log ends:\n%s", st, c.exporter.Tail(20)))
	}
	c.etcd.Stop(10 * time.Second)
	c.minio.Stop(10 * time.Second)
	return errors.Join(errs...)
}
