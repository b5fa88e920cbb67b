package metadata_test

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/testenv"
	"github.com/floe-io/floe/metadata"
)

func newStore(t testing.TB) *metadata.Store {
	t.Helper()
	s, err := metadata.NewStore(testenv.Etcd(t), testenv.Cluster(t))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestValidateTopicName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"orders", true},
		{"a.b_c-D9", true},
		{strings.Repeat("x", 249), true},
		{strings.Repeat("x", 250), false},
		{"", false},
		{".", false},
		{"..", false},
		{"has space", false},
		{"slash/y", false},
		{"ünicode", false},
	} {
		err := metadata.ValidateTopicName(tc.name)
		if (err == nil) != tc.ok {
			t.Errorf("ValidateTopicName(%q) = %v, want ok=%v", tc.name, err, tc.ok)
		}
		if err != nil && !errors.Is(err, metadata.ErrInvalidTopic) {
			t.Errorf("ValidateTopicName(%q) error %v does not wrap ErrInvalidTopic", tc.name, err)
		}
	}
}

func TestValidateTopicConfigs(t *testing.T) {
	for _, tc := range []struct {
		k, v string
		ok   bool
	}{
		{"retention.ms", "1000", true},
		{"retention.ms", "-1", true},
		{"retention.ms", "-2", false},
		{"retention.ms", "soon", false},
		{"retention.bytes", "1073741824", true},
		{"retention.bytes", "-5", true}, // Kafka: any negative value means no limit
		{"cleanup.policy", "delete", true},
		{"cleanup.policy", "compact,delete", true},
		{"cleanup.policy", "shred", false},
		{"max.message.bytes", "1048588", true},
		{"max.message.bytes", "99999999999", false},
		{"message.timestamp.type", "LogAppendTime", true},
		{"message.timestamp.type", "Whenever", false},
		{"segment.bytes", "1048576", true},
		{"min.insync.replicas", "2", true},
		{"min.insync.replicas", "0", false},
		{"compression.type", "zstd", true},
		{"compression.type", "brotli", false},
		{"compression.gzip.level", "-1", true},
		{"compression.gzip.level", "9", true},
		{"compression.gzip.level", "0", false},
		{"compression.zstd.level", "-131072", true},
		{"min.cleanable.dirty.ratio", "0.01", true},
		{"min.cleanable.dirty.ratio", "1.5", false},
		{"min.cleanable.dirty.ratio", "NaN", false},
		{"leader.replication.throttled.replicas", "*", true},
		{"leader.replication.throttled.replicas", "0:1, 1:2", true},
		{"leader.replication.throttled.replicas", "", true},
		{"leader.replication.throttled.replicas", "0:1,*", false},
		{"message.format.version", "0.10.2", true},
		{"message.format.version", "2.8", true},
		{"message.format.version", "3.0-IV1", true},
		{"message.format.version", "0.10", false},
		{"preallocate", "TRUE", true},
		{"preallocate", "yes", false},
		{"unclean.leader.election.enable", "false", true},
		{"local.retention.ms", "-2", true},
		{"local.retention.ms", "-3", false},
		{"segment.ms", "0", false},
		{"no.such.config", "1", false},
	} {
		err := metadata.ValidateTopicConfig(tc.k, tc.v)
		if (err == nil) != tc.ok {
			t.Errorf("%s=%s: err %v, want ok=%v", tc.k, tc.v, err, tc.ok)
		}
		if err != nil && !errors.Is(err, metadata.ErrInvalidConfig) {
			t.Errorf("%s=%s: %v does not wrap ErrInvalidConfig", tc.k, tc.v, err)
		}
	}
}

// badTopicConfigValues holds, for every topic config, values Kafka
// refuses: out of range, of the wrong type, or not among the allowed ones.
var badTopicConfigValues = map[string][]string{
	"cleanup.policy":                          {"", "shred", "delete,Compact"},
	"compression.gzip.level":                  {"0", "10", "-2", "fast"},
	"compression.lz4.level":                   {"0", "18"},
	"compression.type":                        {"none", "Zstd", "brotli"},
	"compression.zstd.level":                  {"-131073", "23"},
	"delete.retention.ms":                     {"-1", "1d"},
	"file.delete.delay.ms":                    {"-1"},
	"floe.iceberg.commit.interval.ms":         {"999", "0", "1m"},
	"floe.iceberg.enabled":                    {"yes", "1"},
	"floe.iceberg.partition.by":               {"week(ts)", "bucket(0, id)", "a,,b", "day(ts), hour(ts)"},
	"floe.iceberg.snapshot.retention.ms":      {"59999", "-1"},
	"floe.iceberg.table":                      {"orders", "a..b", ".a.b", "a.b.", "a.b-c", "a.ordérs", "a." + strings.Repeat("t", 256)},
	"floe.iceberg.value.format":               {"thrift", "JSON", "Avro", ""},
	"floe.iceberg.value.subject":              {"a\nb", "\x7f", strings.Repeat("s", 256)},
	"floe.iceberg.value.schema":               {"{", `{"type":"string"}`, `{"type":"object","properties":{"a":{"oneOf":[]}}}`, `{"type":"object","properties":{"a":{"type":"string","description":"` + strings.Repeat("x", 128<<10) + `"}}}`},
	"flush.messages":                          {"0", "9223372036854775808"},
	"flush.ms":                                {"-1"},
	"follower.replication.throttled.replicas": {"1", "a:b", "0:1:2", "*,0:1"},
	"index.interval.bytes":                    {"-1", "2147483648"},
	"leader.replication.throttled.replicas":   {"1", "0-1"},
	"local.retention.bytes":                   {"-3"},
	"local.retention.ms":                      {"-3"},
	"max.compaction.lag.ms":                   {"0"},
	"max.message.bytes":                       {"-1", "2147483648"},
	"message.downconversion.enable":           {"yes", "1"},
	"message.format.version":                  {"latest", "0.10", "3"},
	"message.timestamp.after.max.ms":          {"-1", "1h"},
	"message.timestamp.before.max.ms":         {"-1"},
	"message.timestamp.difference.max.ms":     {"-1"},
	"message.timestamp.type":                  {"createtime", "Now"},
	"min.cleanable.dirty.ratio":               {"-0.1", "1.01", "half"},
	"min.compaction.lag.ms":                   {"-1"},
	"min.insync.replicas":                     {"0", "-1"},
	"preallocate":                             {"on"},
	"remote.log.copy.disable":                 {"no"},
	"remote.log.delete.on.disable":            {"0"},
	"remote.storage.enable":                   {"enabled"},
	"retention.bytes":                         {"1GB", "9223372036854775808"},
	"retention.ms":                            {"-2", "forever"},
	"segment.bytes":                           {"13", "2147483648"},
	"segment.index.bytes":                     {"3"},
	"segment.jitter.ms":                       {"-1"},
	"segment.ms":                              {"0"},
	"unclean.leader.election.enable":          {"maybe"},
}

// Every config Kafka defines is accepted at its default and refuses
// values outside its rules with one line naming the config and the rule.
func TestTopicConfigDefsValidate(t *testing.T) {
	defs := metadata.TopicConfigDefs
	if !slices.IsSortedFunc(defs, func(a, b metadata.TopicConfigDef) int { return strings.Compare(a.Name, b.Name) }) {
		t.Fatal("TopicConfigDefs is not sorted by name; LookupTopicConfig binary-searches it")
	}
	if len(defs) != len(badTopicConfigValues) {
		t.Errorf("%d configs defined, %d with bad values to test", len(defs), len(badTopicConfigValues))
	}
	for _, def := range defs {
		if got, ok := metadata.LookupTopicConfig(def.Name); !ok || got.Name != def.Name {
			t.Errorf("LookupTopicConfig(%q) = %q, %v", def.Name, got.Name, ok)
		}
		if def.Doc == "" || def.Type == 0 {
			t.Errorf("%s: no doc or type", def.Name)
		}
		if err := metadata.ValidateTopicConfig(def.Name, def.Default); err != nil {
			t.Errorf("%s: default %q refused: %v", def.Name, def.Default, err)
		}
		bad, ok := badTopicConfigValues[def.Name]
		if !ok {
			t.Errorf("%s: no bad values to test", def.Name)
		}
		for _, v := range bad {
			err := metadata.ValidateTopicConfig(def.Name, v)
			if !errors.Is(err, metadata.ErrInvalidConfig) {
				t.Errorf("%s=%q: %v, want ErrInvalidConfig", def.Name, v, err)
				continue
			}
			if msg := err.Error(); !strings.Contains(msg, def.Name) || strings.Contains(msg, "\n") {
				t.Errorf("%s=%q: error %q is not one line naming the config", def.Name, v, msg)
			}
		}
	}
	// Values are read as Kafka reads them: trimmed.
	if err := metadata.ValidateTopicConfig("compression.type", " lz4 "); err != nil {
		t.Errorf("trimmed value refused: %v", err)
	}
}

// docs/operations.md has a row for every topic config, with its default.
func TestTopicConfigsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, def := range metadata.TopicConfigDefs {
		value := "`" + def.Default + "`"
		if def.Default == "" {
			value = "(empty)"
		}
		if row := "| `" + def.Name + "` | " + value + " | "; !strings.Contains(string(doc), row) {
			t.Errorf("docs/operations.md has no row %q", row)
		}
	}
}

// A Kafka Streams changelog and repartition topic's configs, and the
// compaction settings of connectors and schema registries, are accepted
// together; compaction lags must be ordered, as Kafka checks.
func TestValidateTopicConfigSets(t *testing.T) {
	for _, configs := range []map[string]string{
		{"cleanup.policy": "compact", "segment.ms": "600000", "min.compaction.lag.ms": "86400000", "message.timestamp.type": "CreateTime"},
		{"cleanup.policy": "delete", "segment.bytes": "52428800", "retention.ms": "-1", "segment.index.bytes": "10485760"},
		{"cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0.01", "delete.retention.ms": "100", "max.compaction.lag.ms": "604800000"},
		{"compression.type": "lz4", "unclean.leader.election.enable": "false", "message.timestamp.difference.max.ms": "3600000", "local.retention.ms": "3600000"},
	} {
		if err := metadata.ValidateTopicConfigs(configs); err != nil {
			t.Errorf("%v: %v", configs, err)
		}
	}
	err := metadata.ValidateTopicConfigs(map[string]string{"min.compaction.lag.ms": "2000", "max.compaction.lag.ms": "1000"})
	if !errors.Is(err, metadata.ErrInvalidConfig) || !strings.Contains(err.Error(), "min.compaction.lag.ms (2000) must not exceed max.compaction.lag.ms (1000)") {
		t.Errorf("unordered compaction lags: %v", err)
	}
	if err := metadata.ValidateTopicConfigs(map[string]string{"max.compaction.lag.ms": "1000"}); err != nil {
		t.Errorf("max.compaction.lag.ms above the default min: %v", err)
	}
}

func TestSettingsTimestampBounds(t *testing.T) {
	const now = 1_700_000_000_000
	for _, tc := range []struct {
		name          string
		configs       map[string]string
		broker        metadata.BrokerConfig
		before, after int64
	}{
		{"defaults", nil, nil, math.MaxInt64, math.MaxInt64},
		{"before and after", map[string]string{"message.timestamp.before.max.ms": "1000", "message.timestamp.after.max.ms": "2000"}, nil, 1000, 2000},
		{"difference fills both", map[string]string{"message.timestamp.difference.max.ms": "500"}, nil, 500, 500},
		{"difference fills the default one", map[string]string{"message.timestamp.difference.max.ms": "500", "message.timestamp.after.max.ms": "2000"}, nil, 500, 2000},
		{"broker default", nil, metadata.BrokerConfig{"log.message.timestamp.after.max.ms": "3600000"}, math.MaxInt64, 3600000},
	} {
		s := tc.broker.Settings(tc.configs)
		if s.TimestampBeforeMaxMs != tc.before || s.TimestampAfterMaxMs != tc.after {
			t.Errorf("%s: before %d after %d, want %d %d", tc.name, s.TimestampBeforeMaxMs, s.TimestampAfterMaxMs, tc.before, tc.after)
		}
		if s.BoundsTimestamps() != (tc.before != math.MaxInt64 || tc.after != math.MaxInt64) {
			t.Errorf("%s: BoundsTimestamps %v", tc.name, s.BoundsTimestamps())
		}
	}

	s := metadata.BrokerConfig{}.Settings(map[string]string{"message.timestamp.before.max.ms": "1000", "message.timestamp.after.max.ms": "2000"})
	for ts, ok := range map[int64]bool{now: true, now - 1000: true, now - 1001: false, now + 2000: true, now + 2001: false, -1: true, math.MinInt64: false, math.MaxInt64: false} {
		if s.TimestampAllowed(ts, now) != ok {
			t.Errorf("timestamp %d at %d: allowed %v, want %v", ts, int64(now), !ok, ok)
		}
	}
	if lo, hi := (metadata.TopicSettings{TimestampBeforeMaxMs: math.MaxInt64, TimestampAfterMaxMs: math.MaxInt64}).TimestampRange(now); lo != now-math.MaxInt64 || hi != math.MaxInt64 {
		t.Errorf("widest range [%d, %d] at %d", lo, hi, int64(now))
	}
	if lo, _ := (metadata.TopicSettings{TimestampBeforeMaxMs: math.MaxInt64}).TimestampRange(-10); lo != math.MinInt64 {
		t.Errorf("range starts at %d, want saturated", lo)
	}
	lat := metadata.BrokerConfig{}.Settings(map[string]string{"message.timestamp.type": "LogAppendTime", "message.timestamp.before.max.ms": "0"})
	if lat.BoundsTimestamps() || !lat.TimestampAllowed(0, now) {
		t.Error("LogAppendTime topics do not check producers' timestamps")
	}
}

func TestSettingsResolve(t *testing.T) {
	b := metadata.BrokerConfig{"log.retention.ms": "3600000", "log.cleanup.policy": "delete"}
	s := b.Settings(map[string]string{"retention.bytes": "100", "cleanup.policy": "compact"})
	if s.RetentionMs != 3600000 || s.RetentionBytes != 100 || s.MaxMessageBytes != 1048588 {
		t.Fatalf("settings %+v", s)
	}
	if !s.Compact || s.Delete || s.RetentionApplies() {
		t.Fatalf("compact-only topic: %+v, retention applies %v", s, s.RetentionApplies())
	}
	def, _ := metadata.LookupTopicConfig("retention.ms")
	if rc := b.Resolve(nil, def); rc.Source != metadata.SourceBrokerStatic || rc.Value != "3600000" {
		t.Fatalf("resolve from broker: %+v", rc)
	}
	if rc := (metadata.BrokerConfig{}).Resolve(nil, def); rc.Source != metadata.SourceDefault || rc.Value != "604800000" {
		t.Fatalf("resolve default: %+v", rc)
	}
}

func TestTopicLifecycle(t *testing.T) {
	s := newStore(t)
	ctx := ctxT(t)

	created, err := s.CreateTopic(ctx, metadata.TopicSpec{Name: "orders", Partitions: 3, ReplicationFactor: 3, Configs: map[string]string{"retention.ms": " 1000 "}})
	if err != nil {
		t.Fatal(err)
	}
	if created.Partitions != 3 || created.ReplicationFactor != 3 || created.Configs["retention.ms"] != "1000" || created.CreateRevision == 0 {
		t.Fatalf("created %+v", created)
	}
	if _, err := s.CreateTopic(ctx, metadata.TopicSpec{Name: "orders", Partitions: 1, ReplicationFactor: 1}); !errors.Is(err, metadata.ErrTopicExists) {
		t.Fatalf("second create: %v, want ErrTopicExists", err)
	}
	got, err := s.GetTopic(ctx, "orders")
	if err != nil || got.ID != created.ID {
		t.Fatalf("get: %+v %v", got, err)
	}

	// Partitions grow, never shrink.
	if _, err := s.SetPartitionCount(ctx, "orders", 2); !errors.Is(err, metadata.ErrInvalidPartitions) || !strings.Contains(err.Error(), "never removed") {
		t.Fatalf("shrink: %v", err)
	}
	if _, err := s.SetPartitionCount(ctx, "orders", 3); !errors.Is(err, metadata.ErrInvalidPartitions) {
		t.Fatalf("same count: %v", err)
	}
	grown, err := s.SetPartitionCount(ctx, "orders", 6)
	if err != nil || grown.Partitions != 6 || grown.CreateRevision != created.CreateRevision {
		t.Fatalf("grow: %+v %v", grown, err)
	}

	// Configs: invalid changes write nothing.
	if _, err := s.UpdateTopicConfigs(ctx, "orders", func(m map[string]string) (map[string]string, error) {
		m["retention.ms"] = "forever"
		return m, nil
	}); !errors.Is(err, metadata.ErrInvalidConfig) {
		t.Fatalf("bad config: %v", err)
	}
	upd, err := s.UpdateTopicConfigs(ctx, "orders", func(m map[string]string) (map[string]string, error) {
		m["retention.bytes"] = "1024"
		return m, nil
	})
	if err != nil || upd.Configs["retention.bytes"] != "1024" || upd.Configs["retention.ms"] != "1000" {
		t.Fatalf("update: %+v %v", upd, err)
	}

	topics, _, err := s.ListTopics(ctx)
	if err != nil || len(topics) != 1 {
		t.Fatalf("list: %v %v", topics, err)
	}
	if _, err := s.DeleteTopic(ctx, "orders"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetTopic(ctx, "orders"); !errors.Is(err, metadata.ErrUnknownTopic) {
		t.Fatalf("after delete: %v", err)
	}
	if _, err := s.DeleteTopic(ctx, "orders"); !errors.Is(err, metadata.ErrUnknownTopic) {
		t.Fatalf("second delete: %v", err)
	}
	// Recreating gives a new ID.
	again, err := s.CreateTopic(ctx, metadata.TopicSpec{Name: "orders", Partitions: 1, ReplicationFactor: 1})
	if err != nil || again.ID == created.ID {
		t.Fatalf("recreate: %+v %v", again, err)
	}
}

func TestConcurrentCreateOneWins(t *testing.T) {
	s := newStore(t)
	ctx := ctxT(t)
	const n = 8
	errs := make(chan error, n)
	for range n {
		go func() {
			_, err := s.CreateTopic(ctx, metadata.TopicSpec{Name: "race", Partitions: 1, ReplicationFactor: 1})
			errs <- err
		}()
	}
	wins := 0
	for range n {
		err := <-errs
		switch {
		case err == nil:
			wins++
		case !errors.Is(err, metadata.ErrTopicExists):
			t.Fatal(err)
		}
	}
	if wins != 1 {
		t.Fatalf("%d creations succeeded, want 1", wins)
	}
}

func TestClusterIdentityStable(t *testing.T) {
	s := newStore(t)
	ctx := ctxT(t)
	a, err := s.EnsureCluster(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.EnsureCluster(ctx)
	if err != nil || a.ID != b.ID || a.ID == "" {
		t.Fatalf("cluster ids %q %q %v", a.ID, b.ID, err)
	}
}

func TestAgentsAndView(t *testing.T) {
	s := newStore(t)
	ctx, cancel := context.WithCancel(ctxT(t))
	view, err := s.StartView(ctx, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); view.Wait() })

	r0, err := s.RegisterAgent(ctx, metadata.AgentInfo{AgentID: "a", Host: "h0", Port: 9092}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	r1, err := s.RegisterAgent(ctx, metadata.AgentInfo{AgentID: "b", Host: "h1", Port: 9092, Zone: "z1"}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if r0.Info().NodeID != 0 || r1.Info().NodeID != 1 {
		t.Fatalf("node ids %d %d, want 0 1", r0.Info().NodeID, r1.Info().NodeID)
	}
	waitFor(t, func() bool { return len(view.Agents()) == 2 }, "two agents in view")
	if a, _ := view.Agent(1); a.Zone != "z1" || a.Addr() != "h1:9092" {
		t.Fatalf("agent 1: %+v", a)
	}

	// Revoking the lease removes the agent at once; its ID is reused.
	if err := r0.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return len(view.Agents()) == 1 }, "agent 0 gone")
	r2, err := s.RegisterAgent(ctx, metadata.AgentInfo{AgentID: "c", Host: "h2", Port: 9092}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if r2.Info().NodeID != 0 {
		t.Fatalf("freed node ID not reused: got %d", r2.Info().NodeID)
	}
	r1.Close()
	r2.Close()

	// Topics: read-your-writes through WaitTopicsRevision.
	created, err := s.CreateTopic(ctx, metadata.TopicSpec{Name: "viewed", Partitions: 2, ReplicationFactor: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := view.WaitTopicsRevision(ctx, created.ModRevision); err != nil {
		t.Fatal(err)
	}
	if got, ok := view.Topic("viewed"); !ok || got.ID != created.ID {
		t.Fatalf("view topic %+v %v", got, ok)
	}
	if got, ok := view.TopicByID(created.ID); !ok || got.Name != "viewed" {
		t.Fatalf("view by id %+v %v", got, ok)
	}
	del, err := s.DeleteTopic(ctx, "viewed")
	if err != nil {
		t.Fatal(err)
	}
	if err := view.WaitTopicsRevision(ctx, del.ModRevision); err != nil {
		t.Fatal(err)
	}
	if _, ok := view.Topic("viewed"); ok {
		t.Fatal("deleted topic still in view")
	}
	if _, ok := view.TopicByID(created.ID); ok {
		t.Fatal("deleted topic still in view by ID")
	}
}

func TestLeaseExpiryRemovesAgent(t *testing.T) {
	s := newStore(t)
	ctx := ctxT(t)
	r, err := s.RegisterAgent(ctx, metadata.AgentInfo{AgentID: "x", Host: "h", Port: 1}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	// Stop keepalives without revoking: the key must vanish after the TTL.
	if _, err := s.Client().Revoke(ctx, r.Lease()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-r.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("registration did not report its lost lease")
	}
}

func TestPlacementStableAndBalanced(t *testing.T) {
	var agents []metadata.AgentInfo
	for i := range int32(4) {
		agents = append(agents, metadata.AgentInfo{NodeID: i})
	}
	counts := map[int32]int{}
	before := map[string]int32{}
	const parts = 4000
	for p := range int32(parts) {
		key := metadata.PartitionKey("t", p)
		l, ok := metadata.Leader(agents, key)
		if !ok {
			t.Fatal("no leader")
		}
		if r := metadata.Rank(agents, key); r[0].NodeID != l.NodeID {
			t.Fatalf("Rank and Leader disagree for %d", p)
		}
		counts[l.NodeID]++
		before[key] = l.NodeID
	}
	for id, c := range counts {
		if c < parts/4*8/10 || c > parts/4*12/10 {
			t.Errorf("agent %d leads %d of %d partitions; want about %d", id, c, parts, parts/4)
		}
	}
	// Adding a fifth agent moves only about a fifth of the partitions, all
	// to the new agent.
	agents = append(agents, metadata.AgentInfo{NodeID: 4})
	moved := 0
	for key, old := range before {
		l, _ := metadata.Leader(agents, key)
		if l.NodeID != old {
			if l.NodeID != 4 {
				t.Fatalf("%q moved from %d to %d, not to the new agent", key, old, l.NodeID)
			}
			moved++
		}
	}
	if moved < parts/5*7/10 || moved > parts/5*13/10 {
		t.Errorf("%d of %d partitions moved; want about %d", moved, parts, parts/5)
	}
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A cluster written in floe's first layout is refused with one clear
// error instead of showing its topics empty.
func TestOldLayoutIsRefused(t *testing.T) {
	s := newStore(t)
	ctx := ctxT(t)
	if _, err := s.EnsureCluster(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Client().Put(ctx, s.Root()+"partitions/00000000-0000-0000-0000-000000000001/0000000000", `{"v":1,"next":5,"start":0}`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.EnsureCluster(ctx); !errors.Is(err, metadata.ErrOldLayout) {
		t.Fatalf("EnsureCluster on the old layout: %v", err)
	}
}
