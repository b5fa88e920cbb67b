package bench

import (
	"bytes"
	"strings"
	"testing"
)

func TestSweepRatiosAndTargets(t *testing.T) {
	const gib = 1 << 30
	rep := &Report{
		Agent: AgentSettings{SegmentTargetBytes: 8 << 20, ReadChunkBytes: 8 << 20},
		Sweep: &Sweep{Partitions: []int32{16, 4096}, Keys: "uniform", KeySpace: 100000, Points: []*SweepPoint{
			{
				Partitions: 16, TxnsPerFlush: 1, PeakRSS: 400 << 20, MemoryLimit: 800 << 20,
				Produce:    &ProduceResult{MiBps: 100, PutsPerGiB: 128, Bytes: gib},
				Cold:       &ConsumeResult{MiBps: 400, GetsPerGiB: 800},
				Warm:       &ConsumeResult{MiBps: 1000},
				Compaction: &CompactionResult{Seconds: 1, IntervalSeconds: 300, PutsPerGiB: 200, AgentPutsPerGiB: 128, VsAgents: 200.0 / 128},
			},
			{
				Partitions: 4096, TxnsPerFlush: 4, PeakRSS: 900 << 20, MemoryLimit: 800 << 20,
				Produce:    &ProduceResult{MiBps: 85, PutsPerGiB: 130, Bytes: gib, CPU: map[string]float64{"agent": 0.5}},
				Cold:       &ConsumeResult{MiBps: 200, GetsPerGiB: 1600, Store: StoreRequests{Source: "x"}, CPU: map[string]float64{"agent": 0.8, "minio": 0.2, "etcd": 0.05, "bench": 0.35, "machine": 1.5}},
				Warm:       &ConsumeResult{MiBps: 900, Bytes: 512 << 20, Store: StoreRequests{Source: "x", Gets: 37}},
				Compaction: &CompactionResult{Seconds: 30, IntervalSeconds: 300, PutsPerGiB: 65536, AgentPutsPerGiB: 130, VsAgents: 65536.0 / 130},
			},
		}},
	}
	rep.evaluate()
	q := rep.Sweep.Points[1].Ratios
	if q.ProduceMiBps != 0.85 || q.ColdMiBps != 0.5 || q.WarmMiBps != 0.9 || q.ColdGetsPerGiB != 2 || q.TxnsPerFlush != 4 || q.PeakRSS != 2.25 || q.CompactionSeconds != 30 {
		t.Errorf("ratios %+v", q)
	}
	if q0 := rep.Sweep.Points[0].Ratios; q0.ProduceMiBps != 1 || q0.PeakRSS != 1 {
		t.Errorf("the first count's ratios %+v, want 1", q0)
	}
	want := map[string]*bool{
		"produce throughput at 4096 partitions":     ptr(true),  // 0.85
		"cold read throughput at 4096 partitions":   ptr(false), // 0.5
		"warm read throughput at 4096 partitions":   ptr(true),  // 0.9
		"GETs per GiB read cold at 4096 partitions": ptr(false), // 1600 > 1.25 × 128
		"GETs of the warm read at 4096 partitions":  ptr(false), // 37 GETs
		"agent peak RSS at every partition count":   ptr(false), // 900 MiB > 800 MiB
		"compactor PUTs per GiB at 4096 partitions": ptr(false), // 504 × the agents'
		"compaction pass at 4096 partitions":        nil,        // stated: 0.1 of the interval
	}
	for _, tg := range rep.Targets {
		w, ok := want[tg.Name]
		if !ok {
			continue
		}
		delete(want, tg.Name)
		if (w == nil) != (tg.Met == nil) || (w != nil && *w != *tg.Met) {
			t.Errorf("%s: met %v, want %v (%s)", tg.Name, tg.Met, w, tg.Got)
		}
	}
	for name := range want {
		t.Errorf("no target %q", name)
	}
	var b bytes.Buffer
	if err := rep.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"PARTITION SWEEP", "ratio to the figure at 16 partitions", "0.85×", "0.50×", "2.25×", "COMPACTION", "65536", "504.12", "12.50 (1600 / 128 GETs per GiB)", "0.90× (37 GETs)", "37 GETs reading 512.0 MiB", "agent core·ms per MiB", "5.88", "4.00"} {
		if !strings.Contains(b.String(), s) {
			t.Errorf("text report lacks %q:\n%s", s, b.String())
		}
	}
	// The wider count's phases join the CPU table: 1.4 cores over 200
	// MiB/s are 7.0 core·ms per MiB.
	cold := ""
	for line := range strings.Lines(b.String()) {
		if strings.HasPrefix(strings.TrimSpace(line), "cold read at 4096") {
			cold = strings.Join(strings.Fields(line), " ")
		}
	}
	if cold != "cold read at 4096 0.80 0.20 0.05 0.35 1.50 7.0" {
		t.Errorf("CPU row of the cold read at 4096 partitions: %q", cold)
	}
}

func TestValidateSweep(t *testing.T) {
	c := Defaults()
	c.Partitions = []int32{1024, 16, 1024}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "keyed records") {
		t.Errorf("a sweep without keys: %v", err)
	}
	c.Keys = "uniform"
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if len(c.Partitions) != 2 || c.Partitions[0] != 16 || c.Partitions[1] != 1024 {
		t.Errorf("partitions %v, want [16 1024]", c.Partitions)
	}
	c.KeySpace = 4000
	if err := c.Validate(); err == nil {
		t.Error("4000 keys over 1024 partitions accepted")
	}
	c = Defaults()
	c.Fleet = []FleetSize{{Producers: 10, Partitions: 50000}}
	if err := c.Validate(); err == nil {
		t.Error("a fleet over more partitions than a quarter of the keys accepted")
	}
	c = Defaults()
	c.Partitions = []int32{0}
	if err := c.Validate(); err == nil {
		t.Error("0 partitions accepted")
	}
}

func ptr[T any](v T) *T { return &v }

func TestSweepPageFaults(t *testing.T) {
	point := func(n int32, faults, cores, mibps float64) *SweepPoint {
		return &SweepPoint{
			Partitions: n,
			Produce:    &ProduceResult{MiBps: 100, CPU: map[string]float64{"agent": 0.5}},
			Cold:       &ConsumeResult{MiBps: mibps, CPU: map[string]float64{"agent": cores}, Faults: map[string]float64{"agent": faults}},
			Warm:       &ConsumeResult{MiBps: 1000},
		}
	}
	rep := &Report{
		Agent:  AgentSettings{SegmentTargetBytes: 8 << 20, ReadChunkBytes: 8 << 20},
		Limits: Limits{PageFault: &PageFaultLimit{PageBytes: 4096, Pages: 16384, MicrosPerPage: 10}},
		// 10 000 faults a second at 10 µs are 0.1 cores: a fifth of 0.5;
		// 40 000 are 0.4 cores, half of 0.8.
		Sweep: &Sweep{Partitions: []int32{16, 4096}, Points: []*SweepPoint{point(16, 10000, 0.5, 400), point(4096, 40000, 0.8, 200)}},
	}
	rep.evaluate()
	text := func() string {
		var b bytes.Buffer
		if err := rep.WriteText(&b); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	rows := sweepRows(text(), "agent page faults per MiB (share of its CPU at 10.00 µs a fault)")
	if rows["16"] != "16 - 25 (20%) -" || rows["4096"] != "4096 - 200 (50%) -" {
		t.Errorf("page fault rows %q", rows)
	}
	rep.Limits.PageFault = nil
	if s := text(); strings.Contains(s, "page faults per MiB") {
		t.Errorf("a report without the page fault limit has fault rows:\n%s", s)
	}
}

func TestSweepClientCeiling(t *testing.T) {
	cpu := func(kv ...float64) map[string]float64 {
		names := []string{"agent", "minio", "etcd", "bench"}
		m := map[string]float64{"machine": 1.9}
		for i, v := range kv {
			m[names[i]] = v
		}
		return m
	}
	rep := &Report{
		CPUs:  2,
		Agent: AgentSettings{SegmentTargetBytes: 8 << 20, ReadChunkBytes: 8 << 20},
		Sweep: &Sweep{Partitions: []int32{16, 4096}, Points: []*SweepPoint{
			{
				Partitions: 16,
				// The cluster: 1.2 cores at 200 MiB/s, 6 core·ms per MiB.
				Produce: &ProduceResult{MiBps: 200, CPU: cpu(0.6, 0.5, 0.1, 0.6)},
				// 1.0 core at 400 MiB/s, 2.5 core·ms per MiB.
				Cold: &ConsumeResult{MiBps: 400, CPU: cpu(0.8, 0.2, 0, 0.3)},
				Warm: &ConsumeResult{MiBps: 1000, CPU: cpu(0.3, 0, 0, 0.5)},
			},
			{
				Partitions: 4096,
				// Clients at 9 core·ms per MiB: 2 cores move at most
				// 2 / (0.009 + 0.006) = 133.3 MiB/s, 0.67 of 200.
				Produce: &ProduceResult{MiBps: 100, CPU: cpu(0.5, 0.4, 0.1, 0.9)},
				// Clients at 1 core·ms per MiB: 2 / (0.001 + 0.0025) =
				// 571.4 MiB/s, 1.43 of 400.
				Cold: &ConsumeResult{MiBps: 200, CPU: cpu(1.2, 0.2, 0.1, 0.2)},
				// The clients' CPU is not known: no ceiling.
				Warm: &ConsumeResult{MiBps: 600, CPU: map[string]float64{"agent": 0.5}},
			},
		}},
	}
	rep.evaluate()
	q := rep.Sweep.Points[1].Ratios
	near := func(got, want float64) bool { return got > want-0.005 && got < want+0.005 }
	if !near(q.ProduceCeiling, 0.667) || !near(q.ColdCeiling, 1.429) || q.WarmCeiling != 0 {
		t.Errorf("ceilings produce %.3f, cold %.3f, warm %.3f; want 0.667, 1.429, 0", q.ProduceCeiling, q.ColdCeiling, q.WarmCeiling)
	}
	if q := rep.Sweep.Points[0].Ratios; q.ProduceCeiling != 0 {
		t.Errorf("the first count has a produce ceiling of %.3f, want none", q.ProduceCeiling)
	}
	var b bytes.Buffer
	if err := rep.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	rows := sweepRows(b.String(), "bench's clients core·ms per MiB (≤ the ratio they leave room for on 2 cores)")
	if rows["16"] != "16 3.00 0.75 0.50" || rows["4096"] != "4096 9.00 (≤ 0.67×) 1.00 (≤ 1.43×) -" {
		t.Errorf("client rows %q", rows)
	}
	for _, tg := range rep.Targets {
		if tg.Name == "produce throughput at 4096 partitions" && !strings.HasSuffix(tg.Got, "; the bench's clients leave room for 0.67") {
			t.Errorf("produce target got %q, want the clients' ceiling", tg.Got)
		}
	}

	// A cluster the bench does not run: no CPU but its own, no ceiling.
	for _, p := range rep.Sweep.Points {
		p.Produce.CPU = map[string]float64{"bench": 0.5}
		p.Cold.CPU, p.Warm.CPU = nil, nil
	}
	rep.evaluate()
	if q := rep.Sweep.Points[1].Ratios; q.ProduceCeiling != 0 || q.ColdCeiling != 0 {
		t.Errorf("ceilings without the cluster's CPU: %+v", q)
	}
	b.Reset()
	if err := rep.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "leave room") || strings.Contains(b.String(), "bench's clients core·ms") {
		t.Errorf("a report without the cluster's CPU states a ceiling:\n%s", b.String())
	}
}

// sweepRows returns the rows for 16 and 4096 partitions of the table
// under the line starting with header in a report's text, by partition
// count, each with its fields joined by single spaces.
func sweepRows(text, header string) map[string]string {
	rows := map[string]string{}
	in := false
	for line := range strings.Lines(text) {
		f := strings.Join(strings.Fields(line), " ")
		switch {
		case strings.HasPrefix(f, header):
			in = true
		case in && (strings.HasPrefix(f, "16 ") || strings.HasPrefix(f, "4096 ")):
			rows[strings.Fields(f)[0]] = f
		default:
			in = false
		}
	}
	return rows
}
