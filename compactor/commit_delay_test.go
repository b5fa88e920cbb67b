package compactor_test

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/floe-io/floe/compactor"
	"github.com/floe-io/floe/internal/testenv"
)

// Agents publish their --max-commit-delay; a pass counts (and logs) the
// live agents whose delay reaches the compactor's grace, whose late
// commits would be refused.
func TestAgentsCommitDelayPastGrace(t *testing.T) {
	e := newEnv(t)
	late := agentDefaults()
	late.Writer.MaxCommitDelay = time.Hour
	e.addAgentWith(late)
	e.addAgent() // the default delay, 4m

	pastGrace := func(grace time.Duration) float64 {
		t.Helper()
		reg := prometheus.NewRegistry()
		c, err := compactor.New(compactor.Config{GCGrace: grace, LeaseTTL: 2 * time.Second, EtcdMaxTxnOps: 2048},
			compactor.Deps{Store: e.store, Bucket: e.bucket, Log: testenv.Logger(t), Registry: reg})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.RunOnce(ctx(t)); err != nil {
			t.Fatal(err)
		}
		families, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range families {
			if f.GetName() == "floe_compactor_agents_commit_delay_past_grace" {
				return f.GetMetric()[0].GetGauge().GetValue()
			}
		}
		t.Fatal("no floe_compactor_agents_commit_delay_past_grace metric")
		return 0
	}
	for _, tc := range []struct {
		grace time.Duration
		want  float64
	}{
		{10 * time.Minute, 1}, // the agent allowing an hour
		{4 * time.Minute, 2},  // both: a delay equal to the grace is past it
		{2 * time.Hour, 0},
	} {
		if got := pastGrace(tc.grace); got != tc.want {
			t.Errorf("with --gc-grace %v: %v agents past the grace, want %v", tc.grace, got, tc.want)
		}
	}
}
