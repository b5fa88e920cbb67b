package fault

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// fault is one kind of failure: inject breaks something, holds it, and
// heals it, returning what exactly it did.
type fault struct {
	name   string
	inject func(s *suite) (string, error)
}

const outage = 10 * time.Second

var faults = []fault{
	{"agent-kill", func(s *suite) (string, error) {
		a := s.c.agents[s.rng.IntN(len(s.c.agents))]
		if err := a.Kill(); err != nil {
			return "", err
		}
		time.Sleep(500 * time.Millisecond)
		if err := a.Start(); err != nil {
			return "", err
		}
		return a.Name, s.c.agentReady(a)
	}},
	{"agent-term", func(s *suite) (string, error) {
		a := s.c.agents[s.rng.IntN(len(s.c.agents))]
		start := time.Now()
		st, err := a.Stop(20 * time.Second)
		if err != nil {
			return a.Name, fmt.Errorf("%s did not exit within 20s of SIGTERM (drain timeout 10s): %w", a.Name, err)
		}
		if !st.Success() {
			return a.Name, fmt.Errorf("%s exited with %v after SIGTERM: a graceful drain exits 0; its log ends:\n%s", a.Name, st, a.Tail(30))
		}
		drained := time.Since(start)
		if err := a.Start(); err != nil {
			return a.Name, err
		}
		return fmt.Sprintf("%s, drained in %v", a.Name, drained.Round(10*time.Millisecond)), s.c.agentReady(a)
	}},
	{"etcd-stop", func(s *suite) (string, error) {
		if err := s.c.etcd.Signal(syscall.SIGSTOP); err != nil {
			return "", err
		}
		time.Sleep(outage)
		return "SIGSTOP, SIGCONT", s.c.etcd.Signal(syscall.SIGCONT)
	}},
	{"etcd-kill", func(s *suite) (string, error) {
		if err := s.c.etcd.Kill(); err != nil {
			return "", err
		}
		time.Sleep(outage)
		if err := s.c.etcd.Start(); err != nil {
			return "", err
		}
		return "kill -9, restarted on its data", s.c.etcdReady()
	}},
	{"minio-stop", func(s *suite) (string, error) {
		if err := s.c.minio.Signal(syscall.SIGSTOP); err != nil {
			return "", err
		}
		time.Sleep(outage)
		return "SIGSTOP, SIGCONT", s.c.minio.Signal(syscall.SIGCONT)
	}},
	{"minio-kill", func(s *suite) (string, error) {
		if err := s.c.minio.Kill(); err != nil {
			return "", err
		}
		time.Sleep(outage)
		if err := s.c.minio.Start(); err != nil {
			return "", err
		}
		return "kill -9, restarted on its data", s.c.minioReady()
	}},
	{"minio-slow", func(s *suite) (string, error) {
		d := time.Duration(200+s.rng.IntN(301)) * time.Millisecond
		for _, px := range []*Proxy{s.c.s3, s.c.cs3, s.c.es3} {
			px.SetLatency(d)
		}
		time.Sleep(15 * time.Second)
		for _, px := range []*Proxy{s.c.s3, s.c.cs3, s.c.es3} {
			px.SetLatency(0)
		}
		return fmt.Sprintf("+%v a write for 15s", d), nil
	}},
	{"compactor-kill", func(s *suite) (string, error) { return killCompactorMidPut(s, mergedPut, "merge") }},
	{"compactor-kill-clean", func(s *suite) (string, error) { return killCompactorMidPut(s, cleanedPut, "clean") }},
	{"exporter-kill", func(s *suite) (string, error) {
		return killExporterMidPut(s, tableMetadataPut, "table metadata", "the catalog commit")
	}},
	{"exporter-kill-manifest", func(s *suite) (string, error) {
		return killExporterMidPut(s, manifestListPut, "manifest list", "the table metadata and the catalog commit")
	}},
	{"exporter-kill-unrecorded", killExporterUnrecorded},
}

var (
	mergedPut  = regexp.MustCompile(`^PUT /[^ ]*/merged/[^ ]* HTTP/1\.[01]\r?$`)
	cleanedPut = regexp.MustCompile(`^PUT /[^ ]*/cleaned/[^ ]* HTTP/1\.[01]\r?$`)
)

// killCompactorMidPut kills the compactor when a merge (or a clean of the
// compacted topic) is writing its object, a PUT whose request line
// matches put: either as the PUT's request goes out (MinIO never gets the
// whole object) or as MinIO's answer comes back (the object exists, the
// index swap never happens); then starts it again.
func killCompactorMidPut(s *suite, put *regexp.Regexp, writer string) (string, error) {
	what, err := killMidPut(s, s.c.compactor, s.c.cs3, put, writer, "the index swap")
	if err != nil {
		return what, err
	}
	time.Sleep(500 * time.Millisecond)
	if err := s.c.compactor.Start(); err != nil {
		return what, err
	}
	return what, s.c.compactorReady()
}

// killMidPut kills p (SIGKILL) when it writes an object whose PUT request
// line matches put, through px, the proxy in front of its MinIO: either as
// the PUT's request goes out (MinIO never gets the whole object) or as
// MinIO's answer comes back (the object exists; next, what p does with it,
// never happens), drawn from the seed. The proxy sees the request line;
// the kill and the cut happen before it forwards the bytes. It waits for
// p to exit, and returns what the kill hit.
func killMidPut(s *suite, p *Proc, px *Proxy, put *regexp.Regexp, writer, next string) (string, error) {
	afterPut := s.rng.IntN(2) == 1
	var (
		mu     sync.Mutex
		puts   = map[uint64]string{} // connections with a matching PUT outstanding
		killed atomic.Bool
		what   string
		fired  = make(chan struct{})
	)
	kill := func(desc string) {
		if killed.CompareAndSwap(false, true) {
			what = desc
			p.Signal(syscall.SIGKILL)
			close(fired)
		}
	}
	px.SetHook(func(conn uint64, fromClient bool, chunk []byte) bool {
		if killed.Load() {
			return false
		}
		if fromClient {
			line, _, _ := bytes.Cut(chunk, []byte("\n"))
			if !put.Match(line) {
				return true
			}
			obj, _, _ := strings.Cut(strings.Fields(string(line))[1], "?")
			if !afterPut {
				kill("while it sent " + obj)
				return false
			}
			mu.Lock()
			puts[conn] = obj
			mu.Unlock()
			return true
		}
		mu.Lock()
		obj, ok := puts[conn]
		mu.Unlock()
		if ok && bytes.HasPrefix(chunk, []byte("HTTP/1.1 200")) {
			kill("after MinIO stored " + obj + ", before " + next)
			return false
		}
		return true
	})
	defer px.SetHook(nil)
	select {
	case <-fired:
	case <-time.After(45 * time.Second):
		kill("with no " + writer + " in flight for 45s")
	}
	if _, err := p.Wait(10 * time.Second); err != nil {
		return what, err
	}
	px.SetHook(nil)
	return what, nil
}

type suite struct {
	t     *testing.T
	c     *cluster
	rng   *rand.Rand
	rec   *recorder
	txns  *txnRecorder
	start time.Time
}

func (s *suite) logf(format string, args ...any) {
	s.t.Helper()
	now := time.Now()
	s.t.Logf("fault: +%6.1fs %s %s", now.Sub(s.start).Seconds(), now.Format("15:04:05.000"), fmt.Sprintf(format, args...))
}

// waitAcks waits until more than want records have been acknowledged.
func (s *suite) waitAcks(want int64, timeout time.Duration) (time.Duration, bool) {
	start := time.Now()
	for time.Since(start) < timeout {
		if s.rec.ackCount.Load() > want {
			return time.Since(start), true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return timeout, false
}

// waitTxns waits until more than want transactions have committed.
func (s *suite) waitTxns(want int64, timeout time.Duration) (time.Duration, bool) {
	start := time.Now()
	for time.Since(start) < timeout {
		if s.txns.committed.Load() > want {
			return time.Since(start), true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return timeout, false
}

// drainStage waits until no transaction is open in the transactional
// topic and the consume-transform-produce stage has committed offsets
// past all of it.
func (s *suite) drainStage(seeds []string) error {
	start := time.Now()
	cl, err := kgo.NewClient(baseOpts(seeds)...)
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	// The transaction timeout and the coordinator's check end what a
	// fault left open.
	ctx, cancel := context.WithTimeout(context.Background(), 2*txnTimeout+30*time.Second)
	defer cancel()
	st, end, err := stableOffsets(ctx, adm, txnTopic)
	if err != nil {
		return err
	}
	in, err := readTxnTopic(ctx, seeds, txnTopic, kgo.ReadCommitted(), st, end, payloadID)
	if err != nil {
		return err
	}
	if err := waitDrained(ctx, adm, in); err != nil {
		return err
	}
	s.logf("the stage copied the transactional topic %v after the producers stopped", time.Since(start).Round(100*time.Millisecond))
	return nil
}

func envInt(t *testing.T, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		t.Fatalf("%s=%q: want an integer", name, v)
	}
	return n
}

// TestFaults runs the fault suite; doc.go describes it.
func TestFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped in -short mode: the fault suite runs a cluster for about two minutes")
	}
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	minioBin := minioBinary(root)
	if _, err := os.Stat(minioBin); err != nil {
		if os.Getenv("FLOE_TEST_REQUIRE_LOCALSTACK") == "1" {
			t.Fatalf("MinIO is not installed at %s but FLOE_TEST_REQUIRE_LOCALSTACK=1: run localstack/start.sh (or set FLOE_FAULT_MINIO)", minioBin)
		}
		t.Skipf("skipped: MinIO is not installed at %s (localstack/start.sh installs it; FLOE_FAULT_MINIO names another binary)", minioBin)
	}

	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("FLOE_FAULT_SEED"); v != "" {
		if seed, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatalf("FLOE_FAULT_SEED=%q: want an unsigned integer", v)
		}
	}
	long := os.Getenv("FLOE_TEST_LONG") == "1"
	rounds := envInt(t, "FLOE_FAULT_ROUNDS", map[bool]int{false: 1, true: 3}[long])
	chosen := faults
	if only := os.Getenv("FLOE_FAULT_ONLY"); only != "" {
		chosen = nil
		for _, name := range strings.Split(only, ",") {
			i := slices.IndexFunc(faults, func(f fault) bool { return f.name == strings.TrimSpace(name) })
			if i < 0 {
				t.Fatalf("FLOE_FAULT_ONLY: no fault %q", name)
			}
			chosen = append(chosen, faults[i])
		}
	}
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	var order []fault
	for range rounds {
		round := slices.Clone(chosen)
		rng.Shuffle(len(round), func(i, j int) { round[i], round[j] = round[j], round[i] })
		order = append(order, round...)
	}
	t.Logf("fault: seed=%d (rerun with FLOE_FAULT_SEED=%d) rounds=%d", seed, seed, rounds)

	dir, err := os.MkdirTemp("", "floe-fault-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("FLOE_FAULT_KEEP") == "1" {
			t.Logf("fault: process logs kept in %s", dir)
			return
		}
		os.RemoveAll(dir)
	})

	s := &suite{t: t, rng: rng, rec: newRecorder(), txns: newTxnRecorder(), start: time.Now()}
	floe := buildFloe(t, root, dir)
	s.logf("built floe in %v", time.Since(s.start).Round(100*time.Millisecond))
	s.c = startCluster(t, dir, floe, minioBin, s.logf)
	t.Cleanup(func() {
		if t.Failed() {
			for _, p := range s.c.procs() {
				t.Logf("---- last lines of %s (%s) ----\n%s", p.Name, p.LogPath, p.Tail(25))
			}
		}
	})
	s.logf("cluster up: agents %v, compactor on %s, exporter on %s", s.c.seeds(), s.c.compHTTP, s.c.expHTTP)

	adminCl, err := kgo.NewClient(baseOpts(s.c.seeds())...)
	if err != nil {
		t.Fatal(err)
	}
	defer adminCl.Close()
	cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	for name, n := range map[string]int32{topic: partitions, txnTopic: txnPartitions, outTopic: txnPartitions} {
		configs := map[string]*string{"retention.ms": kadm.StringPtr("-1")}
		if name == txnTopic {
			// The exporter exports it (export_workload_test.go).
			maps.Copy(configs, exportConfigs)
		}
		if r, err := kadm.NewClient(adminCl).CreateTopic(cctx, n, 1, configs, name); err != nil || r.Err != nil {
			cancel()
			t.Fatalf("creating topic %s: %v %v", name, err, r.Err)
		}
	}
	if r, err := kadm.NewClient(adminCl).CreateTopic(cctx, changelogPartitions, 1, changelogConfigs, changelogTopic); err != nil || r.Err != nil {
		cancel()
		t.Fatalf("creating topic %s: %v %v", changelogTopic, err, r.Err)
	}
	cancel()

	// The workload.
	wctx, stopWorkload := context.WithCancel(context.Background())
	defer stopWorkload()
	var (
		wg      sync.WaitGroup
		errMu   sync.Mutex
		wlErrs  []error
		prodCtx context.Context
	)
	prodCtx, stopProducers := context.WithCancel(wctx)
	defer stopProducers()
	run := func(f func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(); err != nil {
				errMu.Lock()
				wlErrs = append(wlErrs, err)
				errMu.Unlock()
			}
		}()
	}
	seeds := s.c.seeds()
	var prodWG sync.WaitGroup
	for i := range 3 {
		prodWG.Add(1)
		run(func() error { defer prodWG.Done(); return produce(prodCtx, seeds, s.rec, i, 150) })
	}
	// The consumer groups, one per protocol; their clients log to
	// group-clients.log. During every fault one member of each is
	// replaced (groupMembers.replace).
	groupLog, err := os.Create(filepath.Join(dir, "group-clients.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer groupLog.Close()
	groupLogW := &lockedWriter{w: groupLog}
	members := &groupMembers{start: func(g groupSpec, n int) context.CancelFunc {
		ctx, cancel := context.WithCancel(wctx)
		run(func() error { return consume(ctx, seeds, s.rec, g, n, groupLogW) })
		return cancel
	}}
	members.startAll()
	churn := rand.New(rand.NewPCG(seed, 4000))
	sampler := newCommitSampler(kadm.NewClient(adminCl), s.rec)
	run(func() error { sampler.run(wctx, 500*time.Millisecond); return nil })
	run(func() error { return probe(prodCtx, seeds, s.rec, 100*time.Millisecond) })
	// The changelog workload (changelog_workload_test.go).
	clRec := newChangelogRecorder()
	prodWG.Add(1)
	run(func() error {
		defer prodWG.Done()
		return changelog(prodCtx, seeds, clRec, rand.New(rand.NewPCG(seed, 3000)), 50)
	})

	// The transactional workload (txn_workload_test.go), its choices
	// drawn from the seed apart from the faults'. The stage runs until it
	// has copied everything, after the producers stop.
	txnLog, err := os.Create(filepath.Join(dir, "txn-clients.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer txnLog.Close()
	txnLogW := &lockedWriter{w: txnLog}
	ctpCtx, stopCTP := context.WithCancel(wctx)
	defer stopCTP()
	for i := range 3 {
		prodWG.Add(1)
		trng := rand.New(rand.NewPCG(seed, uint64(1000+i)))
		run(func() error { defer prodWG.Done(); return transact(prodCtx, seeds, s.txns, i, trng, txnLogW) })
	}
	for i := range envInt(t, "FLOE_FAULT_CTP_MEMBERS", 1) {
		crng := rand.New(rand.NewPCG(seed, uint64(2000+i)))
		run(func() error { return transform(ctpCtx, seeds, s.txns, i, crng, txnLogW) })
	}

	if _, ok := s.waitAcks(500, 60*time.Second); !ok {
		t.Fatalf("the workload did not get 500 acknowledgements within 60s of starting (%d)", s.rec.ackCount.Load())
	}
	if _, ok := s.waitTxns(10, 60*time.Second); !ok {
		t.Fatalf("the transactional workload did not commit 10 transactions within 60s of starting (%d)", s.txns.committed.Load())
	}
	s.logf("workload running: %d acknowledged, %d transactions committed", s.rec.ackCount.Load(), s.txns.committed.Load())

	// The faults, one at a time.
	deadline, hasDeadline := t.Deadline()
	var done []string
	outages, outageErrs := 0, int64(0) // etcd and MinIO down, and the errors producers saw then
	var lastHeal time.Time
	var ackAtLastHeal, txnsAtLastHeal int64
	for i, f := range order {
		if hasDeadline && time.Until(deadline) < 3*time.Minute {
			s.logf("stopping after %d of %d faults: the test deadline is near", i, len(order))
			break
		}
		if err := s.c.healthy(); err != nil {
			t.Fatalf("before %s: the cluster is not healthy: %v", f.name, err)
		}
		acks0, errs0, probes0 := s.rec.ackCount.Load(), s.rec.errCount.Load(), s.rec.probeCounts()
		txns0, ctp0 := s.txns.committed.Load(), s.txns.ctpCommitted.Load()
		consumed0, changes0 := s.rec.groupProgress()
		s.logf("inject %s", f.name)
		replaced := make(chan string, 1)
		go func(after time.Duration, places []int) {
			time.Sleep(after)
			replaced <- fmt.Sprintf("%s at +%v", members.replace(places), after)
		}(time.Duration(churn.IntN(3000))*time.Millisecond, members.draw(churn))
		detail, err := f.inject(s)
		s.logf("during %s: %s", f.name, <-replaced)
		if err != nil {
			t.Fatalf("%s (%s): %v", f.name, detail, err)
		}
		lastHeal = time.Now()
		ackAtLastHeal = s.rec.ackCount.Load()
		txnsAtLastHeal = s.txns.committed.Load()
		if strings.HasSuffix(f.name, "-stop") || strings.HasPrefix(f.name, "etcd-") || f.name == "minio-kill" {
			outages++
			outageErrs += s.rec.errCount.Load() - errs0
		}
		s.logf("healed %s (%s): %d acknowledged, %d transactions and %d of the stage's committed, and %d produce errors meanwhile; the prober's requests were answered %s", f.name, detail,
			ackAtLastHeal-acks0, txnsAtLastHeal-txns0, s.txns.ctpCommitted.Load()-ctp0, s.rec.errCount.Load()-errs0, countsSince(probes0, s.rec.probeCounts()))
		back, ok := s.waitAcks(ackAtLastHeal+50, 60*time.Second)
		if !ok {
			t.Fatalf("after %s healed, producers got fewer than 50 acknowledgements in 60s: throughput did not return", f.name)
		}
		s.logf("throughput back %v after healing %s", back.Round(10*time.Millisecond), f.name)
		if back, ok := s.waitTxns(txnsAtLastHeal+3, 60*time.Second); ok {
			s.logf("transactions committing again %v after healing %s", back.Round(10*time.Millisecond), f.name)
		} else {
			t.Errorf("after %s healed, fewer than 3 transactions committed in 60s: transactions did not resume", f.name)
		}
		done = append(done, f.name)
		time.Sleep(2 * time.Second)
		consumed, changes := s.rec.groupProgress()
		var progress []string
		for i, g := range consumerGroups {
			progress = append(progress, fmt.Sprintf("%s consumed %d records, its members were assigned or lost partitions %d times", g, consumed[i]-consumed0[i], changes[i]-changes0[i]))
		}
		s.logf("since %s was injected: %s", f.name, strings.Join(progress, "; "))
	}
	time.Sleep(3 * time.Second)
	afterLast := s.rec.ackCount.Load() - ackAtLastHeal
	txnsAfterLast := s.txns.committed.Load() - txnsAtLastHeal
	s.logf("%d acknowledged and %d transactions committed since the last fault healed %v ago", afterLast, txnsAfterLast, time.Since(lastHeal).Round(100*time.Millisecond))

	// Stop producing, let everything in flight resolve, let the stage
	// copy everything committed, let the groups commit the end of the
	// topic and check their protocols, stop the groups.
	stopProducers()
	prodWG.Wait()
	if err := s.drainStage(seeds); err != nil {
		t.Errorf("transactions: %v", err)
	}
	stopCTP()
	adm := kadm.NewClient(adminCl)
	if err := waitCaughtUp(adm, 60*time.Second, s.logf); err != nil {
		t.Errorf("groups: %v", err)
	}
	if err := checkProtocols(adm, 30*time.Second); err != nil {
		t.Errorf("groups: %v", err)
	}
	stopWorkload()
	wg.Wait()
	if err := sampler.final(30 * time.Second); err != nil {
		t.Errorf("groups: %v", err)
	}
	endOfWorkload := time.Now()
	for _, err := range wlErrs {
		t.Errorf("workload: %v", err)
	}

	// Let the compactor run a pass over the finished log before reading.
	passes := func() int { l, _ := s.c.compactor.Grep(`msg="compaction pass done"`); return len(l) }
	n0 := passes()
	for time.Since(endOfWorkload) < 20*time.Second && passes() == n0 {
		time.Sleep(200 * time.Millisecond)
	}

	h := s.rec.history()
	readErr := readAll(seeds, h)
	if readErr != nil {
		t.Errorf("reading the log back: %v", readErr)
	}
	res := Check(h)
	th := s.txns.history()
	if err := readTxnResults(seeds, th); err != nil {
		t.Errorf("reading the transactional topics back: %v", err)
	}
	txnRes := CheckTxns(th)
	exportRes, err := s.checkExport(th)
	if err != nil {
		t.Errorf("export: %v", err)
	}
	clLog, err := readChangelog(seeds)
	if err != nil {
		t.Errorf("reading the compacted topic back: %v", err)
	}
	clProblems, clRead, clAcked := checkChangelog(clRec, clLog)
	// For a post-mortem: the transactional history, with the clients'
	// log (txn-clients.log) and the agents'.
	if b, err := json.Marshal(th); err == nil {
		os.WriteFile(filepath.Join(dir, "txn-history.json"), b, 0o644)
	}
	merges, deleted, cleaned := compactorTotals(s.c.compactor)

	for _, p := range s.c.procs() {
		for _, c := range p.Crashes() {
			t.Errorf("crash: %s; its log ends:\n%s", c, p.Tail(40))
		}
		for _, bad := range []string{"panic: ", "WARNING: DATA RACE", "fatal error: "} {
			if lines, _ := p.Grep(bad); len(lines) > 0 {
				t.Errorf("%s logged %q %d times (log: %s)", p.Name, bad, len(lines), p.LogPath)
			}
		}
	}
	t.Logf("fault: zones (agents' counters since their last start): %s", s.c.zoneCounters())
	stopErr := s.c.stopAll()

	t.Logf("fault: produce errors:%s", s.rec.errSummary())
	t.Logf("fault: the prober's requests were answered %s", countsSince(nil, s.rec.probeCounts()))
	t.Logf("fault: transactional clients' errors:%s", s.txns.errSummary())
	t.Logf("fault: %s", s.rec.groupSummary())
	for _, g := range res.Groups {
		t.Logf("fault: %s", g)
	}
	summary := fmt.Sprintf("fault: seed=%d faults=[%s] %s %s %s changelog_acked=%d changelog_read=%d merges=%d cleaned=%d gc_deleted=%d produce_errors=%d elapsed=%v",
		seed, strings.Join(done, ","), res, txnRes, exportRes, clAcked, clRead, merges, cleaned, deleted, s.rec.errCount.Load(), time.Since(s.start).Round(time.Second))
	t.Log(summary)

	if !res.OK() {
		t.Errorf("the history is wrong: %s\n  %s", res, strings.Join(res.Problems, "\n  "))
	}
	if !txnRes.OK() {
		t.Errorf("the transactional history is wrong: %s\n  %s", txnRes, strings.Join(txnRes.Problems, "\n  "))
	}
	if !exportRes.OK() {
		t.Errorf("the exported table is wrong: %s\n  %s", exportRes, strings.Join(exportRes.Problems, "\n  "))
	}
	if exportRes.Rows == 0 {
		t.Errorf("the exporter exported nothing of %s (see %s)", txnTopic, s.c.exporter.LogPath)
	}
	if len(clProblems) > 0 {
		t.Errorf("the compacted topic is wrong (%d problems):\n  %s", len(clProblems), strings.Join(clProblems[:min(len(clProblems), 20)], "\n  "))
	}
	if cleaned == 0 {
		t.Errorf("the compactor cleaned no partition of the compacted topic during the run (see %s)", s.c.compactor.LogPath)
	}
	if txnRes.Committed == 0 || txnRes.CTPCommitted == 0 {
		t.Errorf("the transactional workload committed %d transactions and its stage %d: it did not exercise transactions", txnRes.Committed, txnRes.CTPCommitted)
	}
	if txnsAfterLast <= 0 {
		t.Errorf("no transaction committed after the last fault healed")
	}
	if res.Unresolved > 0 {
		t.Errorf("%d records were neither acknowledged nor failed when the producers finished", res.Unresolved)
	}
	if len(s.rec.nonRetriable) > 0 {
		t.Errorf("producers got %d errors that are not retriable, first: %s", len(s.rec.nonRetriable), s.rec.nonRetriable[0])
	}
	if outages > 0 && outageErrs == 0 {
		t.Errorf("etcd or MinIO was down %d times and producers never got an error: the outages did not reach them", outages)
	}
	if afterLast <= 0 {
		t.Errorf("no record was acknowledged after the last fault healed")
	}
	if res.Read < res.Acked {
		t.Errorf("read %d records, fewer than the %d acknowledged", res.Read, res.Acked)
	}
	if merges == 0 {
		t.Errorf("the compactor merged nothing during the run: the suite did not exercise merges (see %s)", s.c.compactor.LogPath)
	}
	if stopErr != nil {
		t.Errorf("stopping the cluster: %v", stopErr)
	}
	if t.Failed() {
		t.Logf("fault: FAILED with seed %d; rerun with FLOE_FAULT_SEED=%d go test -run TestFaults -v ./tests/fault/ (logs in %s)", seed, seed, filepath.Clean(dir))
	}
}

// countsSince formats the answers counted in now but not in before.
func countsSince(before, now map[string]int) string {
	var parts []string
	for k, n := range now {
		if d := n - before[k]; d > 0 {
			parts = append(parts, fmt.Sprintf("%s x%d", k, d))
		}
	}
	if len(parts) == 0 {
		return "never"
	}
	slices.Sort(parts)
	return strings.Join(parts, ", ")
}

var passStat = regexp.MustCompile(`\b(merges|deleted|cleaned_partitions)=(\d+)`)

// compactorTotals sums the merges, deletions and cleaned partitions of
// every pass the compactor logged.
func compactorTotals(p *Proc) (merges, deleted, cleaned int) {
	lines, _ := p.Grep(`msg="compaction pass done"`)
	for _, l := range lines {
		for _, m := range passStat.FindAllStringSubmatch(l, -1) {
			n, _ := strconv.Atoi(m[2])
			switch m[1] {
			case "merges":
				merges += n
			case "deleted":
				deleted += n
			default:
				cleaned += n
			}
		}
	}
	return merges, deleted, cleaned
}
