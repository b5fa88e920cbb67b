package bench

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestEvaluateTargets(t *testing.T) {
	rep := &Report{
		Agent: AgentSettings{SegmentTargetBytes: 8 << 20, FlushInterval: 250 * time.Millisecond, MaxBufferBytes: 256 << 20, CacheBytes: 256 << 20},
		Limits: Limits{
			Put:  &StoreLimit{MiBps: 100, Latency: Latency{P99: 200}},
			Get:  &StoreLimit{MiBps: 400, Latency: Latency{P99: 40}},
			Etcd: &EtcdLimit{Latency: Latency{P99: 5}},
		},
		Produce: &ProduceResult{MiBps: 85, Bytes: 1 << 30, PutsPerGiB: 150, Store: StoreRequests{Source: "x", Puts: 150}},
		Cold:    &ConsumeResult{MiBps: 300, Bytes: 1 << 30, GetsPerGiB: 1000, Store: StoreRequests{Source: "x", Gets: 1000}},
		Warm:    &ConsumeResult{MiBps: 900},
		FanOut:  &ConsumeResult{Groups: 3, Restarted: true, Store: StoreRequests{Source: "x", Gets: 1100}},
		Latency: []*LatencyResult{{FlushInterval: "250ms", FlushMs: 250, Produce: Latency{P99: 400}, EndToEnd: Latency{P99: 480}}},
		Memory:  &Memory{MaxRSS: 700 << 20, BufferSetting: 256 << 20, CacheSetting: 256 << 20, MemoryLimit: 832 << 20},
	}
	rep.evaluate()
	want := map[string]bool{
		"produce throughput":            true,  // 0.85 ≥ 0.8
		"cold read throughput":          false, // 0.75
		"warm read throughput":          true,  // 2.25
		"GETs of 3 groups at once":      true,  // 1.1
		"produce p99 at 250ms flush":    true,  // 400 ≤ 250+200+10+25
		"end-to-end p99 at 250ms flush": true,  // 520 ≤ 400+40+50
		"PUTs per GiB written":          false, // 150 > 140.8
		"agent memory":                  true,  // 700 MiB ≤ 832 MiB
	}
	if len(rep.Targets) != len(want) {
		t.Fatalf("%d targets, want %d: %+v", len(rep.Targets), len(want), rep.Targets)
	}
	for _, tg := range rep.Targets {
		w, ok := want[tg.Name]
		if !ok || tg.Met == nil || *tg.Met != w {
			t.Errorf("%s: met %v, want %v (%s)", tg.Name, tg.Met, w, tg.Got)
		}
	}
	if l := rep.Latency[0]; l.ProduceBound != 485 || l.EndToEndBound != 490 {
		t.Errorf("bounds %v, %v; want 485, 490", l.ProduceBound, l.EndToEndBound)
	}
	if c := rep.Cost; c == nil || c.USDPerGiBWrite != 150*0.005/1000 || c.GetsPerGiB != 1000 {
		t.Errorf("cost %+v", c)
	}
	var b bytes.Buffer
	if err := rep.WriteText(&b); err != nil || !strings.Contains(b.String(), "MISSED") {
		t.Errorf("text report: %v\n%s", err, b.String())
	}
}

func TestMissingLimitsAreNotMeasured(t *testing.T) {
	rep := &Report{Produce: &ProduceResult{MiBps: 50}, Agent: AgentSettings{SegmentTargetBytes: 8 << 20}}
	rep.evaluate()
	for _, tg := range rep.Targets {
		if tg.Name == "produce throughput" && (tg.Met != nil || tg.Got != "not measured") {
			t.Errorf("produce target without a PUT limit: %+v", tg)
		}
	}
}
