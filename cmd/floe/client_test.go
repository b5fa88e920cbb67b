package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/floe-io/floe/agent"
	"github.com/floe-io/floe/internal/testenv"
	"github.com/floe-io/floe/metadata"
	"github.com/floe-io/floe/segments"
)

// startTestAgent starts a real agent in-process on real etcd (as
// agent/agent_test.go does) with a directory bucket, and returns its Kafka
// address. Groups and flushes are fast so tests are.
func startTestAgent(t *testing.T, mod func(*agent.Config)) string {
	t.Helper()
	return startTestCluster(t, mod).addr
}

// testCluster is an agent started by startTestCluster, with what other
// roles need to join its cluster.
type testCluster struct {
	addr      string // Kafka
	bucketDir string
	cluster   string
}

// startTestCluster is startTestAgent, telling where the agent keeps its
// state.
func startTestCluster(t *testing.T, mod func(*agent.Config)) testCluster {
	t.Helper()
	tc := testCluster{bucketDir: t.TempDir(), cluster: testenv.Cluster(t)}
	store, err := metadata.NewStore(testenv.Etcd(t), tc.cluster)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	bucket, err := segments.OpenBucket(ctx, tc.bucketDir, segments.BucketOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bucket.Close() })
	cfg := agent.Config{KafkaAddr: "127.0.0.1:0", LeaseTTL: 2 * time.Second, DrainTimeout: 5 * time.Second}
	cfg.Writer.FlushInterval = 20 * time.Millisecond
	cfg.Groups.InitialRebalanceDelay = 50 * time.Millisecond
	cfg.Groups.MinSessionTimeout = 100 * time.Millisecond
	if mod != nil {
		mod(&cfg)
	}
	a, err := agent.New(cfg, agent.Deps{Store: store, Bucket: bucket, Log: testenv.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Shutdown(context.Background()) })
	tc.addr = a.Addr()
	return tc
}

// cliResult is what one run of the floe command line did.
type cliResult struct {
	stdout, stderr string
	code           int
}

func (r cliResult) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// exitCode is main's mapping from an error to an exit status.
func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var ee exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return 1
}

// runCLI runs the floe command line in-process, as main does, with stdin.
func runCLI(t *testing.T, stdin string, args ...string) cliResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	return runCLIContext(ctx, t, stdin, args...)
}

func runCLIContext(ctx context.Context, t *testing.T, stdin string, args ...string) cliResult {
	t.Helper()
	var stdout bytes.Buffer
	r := runCLIWith(ctx, t, stdin, &stdout, args...)
	r.stdout = stdout.String()
	return r
}

// runCLIWith runs the command line with its standard output going to
// stdout.
func runCLIWith(ctx context.Context, t *testing.T, stdin string, stdout io.Writer, args ...string) cliResult {
	t.Helper()
	return runCommand(ctx, t, newRootCmd(), stdin, stdout, args...)
}

// runCommand runs root (the floe root, or one client command on its own:
// newRootCmd binds package-level flags, so commands meant to run
// concurrently with others are built alone) with args.
func runCommand(ctx context.Context, t *testing.T, root *cobra.Command, stdin string, stdout io.Writer, args ...string) cliResult {
	t.Helper()
	var stderr bytes.Buffer
	root.SetArgs(args)
	root.SetIn(strings.NewReader(stdin))
	root.SetOut(stdout)
	root.SetErr(&stderr)
	err := root.ExecuteContext(ctx)
	var ee exitError
	switch {
	case errors.As(err, &ee) && ee.err != nil:
		stderr.WriteString("floe: " + ee.err.Error() + "\n")
	case err != nil && !errors.As(err, &ee):
		stderr.WriteString("floe: " + err.Error() + "\n")
	}
	return cliResult{stderr: stderr.String(), code: exitCode(err)}
}

// syncBuffer is a bytes.Buffer safe to read while a command writes to it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// mustRun runs the command line and fails the test unless it exits 0.
func mustRun(t *testing.T, stdin string, args ...string) cliResult {
	t.Helper()
	r := runCLI(t, stdin, args...)
	if r.code != 0 {
		t.Fatalf("floe %s: %v", strings.Join(args, " "), r)
	}
	return r
}

// wantFail runs the command line and checks its exit status and that
// stderr says what it should.
func wantFail(t *testing.T, code int, stderrHas string, stdin string, args ...string) cliResult {
	t.Helper()
	r := runCLI(t, stdin, args...)
	if r.code != code || !strings.Contains(r.stderr, stderrHas) {
		t.Fatalf("floe %s: want exit %d with %q on stderr, got %v", strings.Join(args, " "), code, stderrHas, r)
	}
	return r
}

func decodeJSON[T any](t *testing.T, s string) T {
	t.Helper()
	var v T
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decoding %T from %q: %v", v, s, err)
	}
	return v
}

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestUsageErrorsExit2(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"consume", "t", "--bogus"}, "unknown flag: --bogus"},
		{[]string{"consume"}, "missing TOPIC"},
		{[]string{"consume", "t", "--format", "%q"}, "unknown %q"},
		{[]string{"consume", "t", "-o", "json", "--format", "%v"}, "do not go together"},
		{[]string{"consume", "t", "--group", "g", "--offset", "5"}, "--offset does not go with --group"},
		{[]string{"consume", "a", "b", "--partition", "0"}, "exactly one TOPIC"},
		{[]string{"consume", "t", "--offset", "soon"}, "use a number, -N, earliest or latest"},
		{[]string{"produce", "t", "--acks", "2"}, `--acks "2"`},
		{[]string{"produce", "t", "--compression", "brotli"}, "use none, gzip"},
		{[]string{"produce"}, "missing TOPIC"},
		{[]string{"produce", "a", "b"}, `unexpected argument "b"`},
		{[]string{"topic", "frobnicate"}, `unknown command "frobnicate" for "floe topic"`},
		{[]string{"topic", "list", "-o", "yaml"}, `use table or json`},
		{[]string{"topic", "create"}, "missing NAME"},
		{[]string{"topic", "create", "t", "-c", "retention.ms"}, "use key=value"},
		{[]string{"topic", "create", "t", "-p", "many"}, "invalid argument"},
		{[]string{"topic", "alter", "t"}, "nothing to change"},
		{[]string{"topic", "add-partitions", "t"}, "--total N is required"},
		{[]string{"group", "reset-offsets", "g", "--topic", "t"}, "exactly one of --to-earliest"},
		{[]string{"group", "reset-offsets", "g", "--to-earliest"}, "--all-topics"},
		{[]string{"group", "reset-offsets", "g", "--topic", "t", "--to-earliest", "--to-latest"}, "exactly one of"},
		{[]string{"group", "reset-offsets", "g", "--topic", "t", "--to-datetime", "yesterday"}, "use RFC 3339"},
		{[]string{"group", "reset-offsets", "g", "--topic", "t:x", "--to-earliest"}, "is not a number"},
		{[]string{"group", "describe"}, "missing GROUP"},
		{[]string{"lag", "--interval", "0s"}, "positive duration"},
	}
	for _, tt := range tests {
		r := runCLI(t, "", tt.args...)
		if r.code != exitUsage || !strings.Contains(r.stderr, tt.want) || !strings.Contains(r.stderr, "--help' for usage") {
			t.Errorf("floe %s: want exit 2 with %q and a pointer to --help, got %v", strings.Join(tt.args, " "), tt.want, r)
		}
	}
	// A parent command alone shows its help and succeeds.
	if r := runCLI(t, "", "group"); r.code != 0 || !strings.Contains(r.stdout, "reset-offsets") {
		t.Errorf("floe group: %v", r)
	}
	// The root documents the exit statuses.
	if r := runCLI(t, "", "--help"); r.code != 0 || !strings.Contains(r.stdout, "2 when the command line is wrong") {
		t.Errorf("floe --help does not document exit statuses: %v", r)
	}
}

func TestUnreachableBrokerSaysWhatToDo(t *testing.T) {
	addr := closedAddr(t)
	for _, args := range [][]string{
		{"topic", "list", "-b", addr},
		{"-b", addr, "group", "list"},
		{"lag", "--brokers", addr},
		{"consume", "t", "-b", addr},
		{"produce", "t", "-b", addr},
	} {
		r := runCLI(t, "x\n", args...)
		if r.code != 1 || !strings.Contains(r.stderr, "cannot reach "+addr) || !strings.Contains(r.stderr, "is floe running?") {
			t.Errorf("floe %s: %v", strings.Join(args, " "), r)
		}
	}
	// FLOE_BROKERS applies when -b is not given.
	t.Setenv("FLOE_BROKERS", addr)
	if r := runCLI(t, "", "topic", "list"); r.code != 1 || !strings.Contains(r.stderr, "cannot reach "+addr) {
		t.Errorf("FLOE_BROKERS was not used: %v", r)
	}
}

func TestDestructiveFlagsIgnoreTheEnvironment(t *testing.T) {
	var yes bool
	var brokers []string
	cmd := &cobra.Command{Use: "x", RunE: func(*cobra.Command, []string) error { return nil }}
	cmd.Flags().BoolVar(&yes, "yes", false, "")
	cmd.Flags().StringSliceVar(&brokers, "brokers", nil, "")
	markNoEnv(cmd.Flags(), "yes")
	t.Setenv("FLOE_YES", "true")
	t.Setenv("FLOE_BROKERS", "a:1,b:2")
	if err := applyEnvExcept(cmd); err != nil {
		t.Fatal(err)
	}
	if yes || cmd.Flags().Lookup("yes").Changed {
		t.Errorf("FLOE_YES set --yes")
	}
	if strings.Join(brokers, ",") != "a:1,b:2" {
		t.Errorf("FLOE_BROKERS gave %v", brokers)
	}
	// Given on the command line, it stays.
	cmd.Flags().Set("yes", "true")
	if err := applyEnvExcept(cmd); err != nil || !yes {
		t.Errorf("--yes on the command line was undone: %v", err)
	}
}
