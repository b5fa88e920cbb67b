package bench

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/floe-io/floe/internal/units"
)

// Report is everything one run measured. Its JSON form is what
// `floe bench -o json` prints.
type Report struct {
	Started  time.Time     `json:"started"`
	Seconds  float64       `json:"seconds"`
	Cluster  string        `json:"cluster"`
	CPUs     int           `json:"cpus"`
	Workload WorkloadDesc  `json:"workload"`
	Agent    AgentSettings `json:"agent"`
	// Agents is how many agents the bench scraped, when more than one:
	// the agent memory figures are then the highest of any agent, and
	// the agent CPU all of theirs together.
	Agents int `json:"agents,omitempty"`

	Limits  Limits           `json:"limits"`
	Produce *ProduceResult   `json:"produce,omitempty"`
	Cold    *ConsumeResult   `json:"cold_read,omitempty"`
	Warm    *ConsumeResult   `json:"warm_read,omitempty"`
	FanOut  *ConsumeResult   `json:"group_fan_out,omitempty"`
	Latency []*LatencyResult `json:"latency,omitempty"`
	// Sweep is the partition sweep (nil with one partition count); its
	// first point's phases are Produce, Cold and Warm.
	Sweep *Sweep `json:"partition_sweep,omitempty"`
	// Zones is the zone phase (nil unless the agents are in two zones
	// or more).
	Zones   *Zones         `json:"zones,omitempty"`
	Fleet   []*FleetResult `json:"fleet,omitempty"`
	Cost    *Cost          `json:"cost,omitempty"`
	Memory  *Memory        `json:"memory,omitempty"`
	Targets []Target       `json:"targets"`

	// MetricsSrc names the metrics each derived figure came from.
	MetricsSrc map[string]string `json:"metrics_sources,omitempty"`
	Notes      []string          `json:"notes,omitempty"`
}

// WorkloadDesc is the workload, as the report states it.
type WorkloadDesc struct {
	RecordSize  int     `json:"record_size"`
	Partitions  int32   `json:"partitions"`
	Producers   int     `json:"producers"`
	Consumers   int     `json:"consumers_per_group"`
	Groups      int     `json:"groups"`
	FetchBytes  int32   `json:"fetch_max_partition_bytes,omitempty"` // 0: 1 MiB
	Committed   bool    `json:"read_committed,omitempty"`
	Keys        string  `json:"keys"`
	Payload     string  `json:"payload"`
	Compression string  `json:"client_compression"`
	LingerMs    float64 `json:"linger_ms"` // 0: (flush interval + 40ms) / 4
	MaxBytes    int64   `json:"max_bytes"`
	MaxSeconds  float64 `json:"max_seconds"`
}

func workloadOf(c Config) WorkloadDesc {
	return WorkloadDesc{
		RecordSize: c.RecordSize, Partitions: c.Partitions[0], Producers: c.Producers, Consumers: c.Consumers,
		Groups: c.Groups, FetchBytes: c.FetchPartitionBytes, Committed: c.ReadCommitted, Keys: c.Keys, Payload: c.Payload, Compression: c.Compression,
		LingerMs: ms(c.Linger), MaxBytes: c.Bytes, MaxSeconds: c.Duration.Seconds(),
	}
}

// StoreRequests are the object-store requests the agents made in a phase.
type StoreRequests struct {
	Source    string  `json:"source"`
	Puts      float64 `json:"puts"`
	Gets      float64 `json:"gets"`
	PutBytes  float64 `json:"put_bytes"`
	GetBytes  float64 `json:"get_bytes"`
	PutMeanMs float64 `json:"put_mean_ms,omitempty"`
	GetMeanMs float64 `json:"get_mean_ms,omitempty"`
}

// ProduceResult is the throughput phase: acks=all, idempotent, as fast as
// the cluster takes it.
type ProduceResult struct {
	Records      int64              `json:"records"`
	Bytes        int64              `json:"bytes"`
	Seconds      float64            `json:"seconds"`
	RecordsPerS  float64            `json:"records_per_s"`
	MiBps        float64            `json:"mib_per_s"`
	Latency      Latency            `json:"latency"`
	Errors       int64              `json:"errors"`
	FirstError   string             `json:"first_error,omitempty"`
	Store        StoreRequests      `json:"store"`
	PutsPerGiB   float64            `json:"puts_per_gib"`
	Commits      float64            `json:"commits"`
	CommitsPerS  float64            `json:"commits_per_s"`
	CommitMeanMs float64            `json:"commit_mean_ms"`
	Backpressure float64            `json:"backpressure_waits"`
	CPU          map[string]float64 `json:"cpu_cores,omitempty"`
	// Faults are each process's minor page faults per second.
	Faults map[string]float64 `json:"page_faults_per_s,omitempty"`
}

// ConsumeResult is one read phase: groups reading the same data at once.
type ConsumeResult struct {
	Groups      int           `json:"groups"`
	Consumers   int           `json:"consumers_per_group"`
	Records     int64         `json:"records"`
	Bytes       int64         `json:"bytes"` // delivered, all groups together
	Seconds     float64       `json:"seconds"`
	MiBps       float64       `json:"mib_per_s"`
	Store       StoreRequests `json:"store"`
	GetsPerGiB  float64       `json:"gets_per_gib"`
	CacheHits   float64       `json:"cache_hits"`
	CacheMisses float64       `json:"cache_misses"`
	Coalesced   float64       `json:"cache_coalesced"`
	HitRatio    float64       `json:"hit_ratio"`
	WindowBytes int64         `json:"window_bytes,omitempty"`
	Passes      int           `json:"passes,omitempty"` // warm read: times one group read the window over
	// Prefetched counts extents the agents read ahead (included in the
	// cache misses); PrefetchWasted those evicted before a fetch asked.
	Prefetched     float64            `json:"prefetched"`
	PrefetchWasted float64            `json:"prefetch_wasted"`
	Restarted      bool               `json:"agents_restarted,omitempty"`
	CPU            map[string]float64 `json:"cpu_cores,omitempty"`
	// Faults are each process's minor page faults per second.
	Faults map[string]float64 `json:"page_faults_per_s,omitempty"`
}

// LatencyResult is one latency phase: a fixed rate below saturation, one
// group tailing.
type LatencyResult struct {
	FlushInterval string             `json:"flush_interval"`
	FlushMs       float64            `json:"flush_ms"`
	RatePerS      int                `json:"rate_per_s"`
	Records       int64              `json:"records"`
	Errors        int64              `json:"errors"`
	FirstError    string             `json:"first_error,omitempty"`
	Produce       Latency            `json:"produce"`
	EndToEnd      Latency            `json:"end_to_end"`
	ProduceBound  float64            `json:"produce_p99_bound_ms,omitempty"`
	EndToEndBound float64            `json:"end_to_end_p99_bound_ms,omitempty"`
	CPU           map[string]float64 `json:"cpu_cores,omitempty"`
}

// Cost is requests per GiB and their price at S3 Standard.
type Cost struct {
	PutsPerGiB     float64 `json:"puts_per_gib_written"`
	PutsPerGiBMax  float64 `json:"puts_per_gib_bound"`
	GetsPerGiB     float64 `json:"gets_per_gib_read"`
	CommitsPerS    float64 `json:"etcd_commit_txns_per_s"`
	USDPerGiBWrite float64 `json:"usd_per_gib_written"`
	USDPerGiBRead  float64 `json:"usd_per_gib_read"`
}

// S3 Standard request prices, US dollars per request.
const (
	usdPerPut = 0.005 / 1000
	usdPerGet = 0.0004 / 1000
)

// Memory is the agents' memory over the run.
type Memory struct {
	Samples        int   `json:"samples"`
	IdleRSS        int64 `json:"idle_rss"`
	MaxRSS         int64 `json:"max_rss"`
	MaxHeapInuse   int64 `json:"max_heap_inuse"`
	MaxGoSys       int64 `json:"max_go_sys"`
	MaxBuffered    int64 `json:"max_buffered"`
	MaxCached      int64 `json:"max_cached"`
	MaxUnaccounted int64 `json:"max_rss_minus_buffered_and_cached"`
	BufferSetting  int64 `json:"buffer_setting"`
	CacheSetting   int64 `json:"cache_setting"`
	// OverheadOverSum is the peak RSS beyond buffer + cache settings: the
	// fixed overhead the run shows (negative: within the settings).
	OverheadOverSum int64 `json:"rss_over_buffer_plus_cache"`
	// MemoryLimit is the agents' limit on their resident memory (floe
	// agent --memory-limit, else the Go runtime's GOMEMLIMIT), 0 when
	// none: buffer + cache + the fixed overhead the agent is configured
	// to stay within.
	MemoryLimit int64 `json:"memory_limit,omitempty"`
}

// Target is one of the targets, checked against this run.
type Target struct {
	Name  string  `json:"name"`
	Want  string  `json:"want"`
	Got   string  `json:"got"`
	Ratio float64 `json:"ratio"`
	Met   *bool   `json:"met"` // nil: not measured
	Note  string  `json:"note,omitempty"`
}

// evaluate fills in costs, latency bounds and targets.
func (rep *Report) evaluate() {
	if rep.Sweep != nil {
		rep.Sweep.ratios(rep.CPUs)
	}
	lim := rep.Limits
	gib := float64(1 << 30)
	if p := rep.Produce; p != nil {
		c := &Cost{PutsPerGiB: p.PutsPerGiB, PutsPerGiBMax: 1.1 * gib / float64(rep.Agent.SegmentTargetBytes), CommitsPerS: p.CommitsPerS}
		if rep.Cold != nil {
			c.GetsPerGiB = rep.Cold.GetsPerGiB
		}
		c.USDPerGiBWrite = c.PutsPerGiB * usdPerPut
		c.USDPerGiBRead = c.GetsPerGiB * usdPerGet
		rep.Cost = c
	}
	for _, l := range rep.Latency {
		if lim.Put != nil && lim.Etcd != nil {
			l.ProduceBound = l.FlushMs + lim.Put.Latency.P99 + 2*lim.Etcd.Latency.P99 + 25
		}
		if lim.Get != nil {
			l.EndToEndBound = l.Produce.P99 + lim.Get.Latency.P99 + 50
		}
	}

	var ts []Target
	ratio := func(name, want string, got, limit float64, ok func(float64) bool, unit string, missing bool, note string) {
		t := Target{Name: name, Want: want, Note: note}
		if missing || limit == 0 {
			t.Got = "not measured"
			ts = append(ts, t)
			return
		}
		t.Ratio = got / limit
		t.Got = fmt.Sprintf("%.2f (%.1f / %.1f %s)", t.Ratio, got, limit, unit)
		met := ok(t.Ratio)
		t.Met = &met
		ts = append(ts, t)
	}
	atLeast := func(x float64) func(float64) bool { return func(r float64) bool { return r >= x } }
	atMost := func(x float64) func(float64) bool { return func(r float64) bool { return r <= x } }

	putMiB, getMiB := 0.0, 0.0
	if lim.Put != nil {
		putMiB = lim.Put.MiBps
	}
	if lim.Get != nil {
		getMiB = lim.Get.MiBps
	}
	if p := rep.Produce; p != nil {
		ratio("produce throughput", "≥ 0.80 × raw PUT", p.MiBps, putMiB, atLeast(0.8), "MiB/s", lim.Put == nil, "")
	}
	if c := rep.Cold; c != nil {
		ratio("cold read throughput", "≥ 0.80 × raw GET", c.MiBps, getMiB, atLeast(0.8), "MiB/s", lim.Get == nil, "")
	}
	if w := rep.Warm; w != nil {
		ratio("warm read throughput", "≥ 2.00 × raw GET", w.MiBps, getMiB, atLeast(2), "MiB/s", lim.Get == nil, "")
	}
	if f, c := rep.FanOut, rep.Cold; f != nil && c != nil {
		note := ""
		if !f.Restarted {
			note = "agents not restarted: caches may have held data"
		}
		ratio(fmt.Sprintf("GETs of %d groups at once", f.Groups), "≤ 1.20 × one group's", f.Store.Gets, c.Store.Gets, atMost(1.2), "GETs", c.Store.Source == "", note)
	}
	for _, l := range rep.Latency {
		ratio("produce p99 at "+l.FlushInterval+" flush", "≤ flush + PUT p99 + 2×etcd p99 + 25ms", l.Produce.P99, l.ProduceBound, atMost(1), "ms", l.ProduceBound == 0, "")
		ratio("end-to-end p99 at "+l.FlushInterval+" flush", "≤ produce p99 + GET p99 + 50ms", l.EndToEnd.P99, l.EndToEndBound, atMost(1), "ms", l.EndToEndBound == 0, "")
	}
	if c := rep.Cost; c != nil {
		ratio("PUTs per GiB written", "≤ 1.10 × (1 GiB / segment target)", c.PutsPerGiB, c.PutsPerGiBMax/1.1, atMost(1.1), "PUTs", rep.Produce.Store.Source == "", "")
	}
	if m := rep.Memory; m != nil {
		budget := m.BufferSetting + m.CacheSetting
		t := Target{Name: "agent memory", Want: "peak RSS ≤ buffer + cache + fixed overhead"}
		if m.MemoryLimit > 0 {
			over := m.MemoryLimit - budget
			t.Want = fmt.Sprintf("peak RSS ≤ buffer + cache + %s (its memory limit)", units.Bytes(over))
			t.Ratio = float64(m.MaxRSS) / float64(m.MemoryLimit)
			t.Got = fmt.Sprintf("%.2f (peak RSS %s / limit %s)", t.Ratio, units.Bytes(m.MaxRSS), units.Bytes(m.MemoryLimit))
			met := m.MaxRSS <= m.MemoryLimit
			t.Met = &met
		} else {
			t.Ratio = float64(m.MaxRSS) / float64(max(budget, 1))
			t.Got = fmt.Sprintf("peak RSS %s = buffer + cache %s %s %s", units.Bytes(m.MaxRSS), units.Bytes(budget), signOf(m.OverheadOverSum), units.Bytes(abs(m.OverheadOverSum)))
			t.Note = "the agents have no memory limit: the Go heap may grow to twice what is live"
		}
		ts = append(ts, t)
	}
	ts = append(ts, rep.sweepTargets()...)
	for _, f := range rep.Fleet {
		met := f.Passed
		t := Target{Name: "fleet " + FleetSize{f.Producers, f.Partitions}.String() + ": records", Want: "every record acknowledged, end offsets = acknowledged", Met: &met}
		t.Got = fmt.Sprintf("%d of %d acknowledged, offsets %d", f.Acked, f.Sent, f.Offsets)
		ts = append(ts, t)
		t = Target{Name: "fleet " + FleetSize{f.Producers, f.Partitions}.String() + ": commits", Want: "no commit failures", Got: "not measured"}
		if a := f.Agents; a != nil {
			met := a.CommitFailures() == 0
			t.Met = &met
			t.Got = fmt.Sprintf("%.0f commit errors, %.0f failed txns", a.CommitErrors, a.TxnsFailed)
			if a.LogRead {
				t.Got += fmt.Sprintf(", %d ERROR lines logged", a.ErrorLines)
			}
		}
		ts = append(ts, t)
	}
	rep.Targets = ts
}

// sweepTargets are the partition sweep's targets: at the widest count,
// throughput close to the first count's and the compactor's PUTs per GiB
// close to the agents'; at every count, agent memory within its limit.
func (rep *Report) sweepTargets() []Target {
	s := rep.Sweep
	if s == nil || len(s.Points) < 2 {
		return nil
	}
	var ts []Target
	first, last := s.Points[0], s.Points[len(s.Points)-1]
	at := fmt.Sprintf(" at %d partitions", last.Partitions)
	vs := fmt.Sprintf("× at %d", first.Partitions)
	add := func(name, want string, got, base, ceiling float64, ok func(float64) bool, unit string) {
		t := Target{Name: name + at, Want: want}
		if got <= 0 || base <= 0 {
			t.Got = "not measured"
		} else {
			t.Ratio = got / base
			t.Got = fmt.Sprintf("%.2f (%.1f / %.1f %s)", t.Ratio, got, base, unit)
			if ceiling > 0 {
				t.Got += fmt.Sprintf("; the bench's clients leave room for %.2f", ceiling)
			}
			met := ok(t.Ratio)
			t.Met = &met
		}
		ts = append(ts, t)
	}
	atLeast := func(r float64) bool { return r >= 0.8 }
	if last.Produce != nil && first.Produce != nil {
		add("produce throughput", "≥ 0.80 "+vs, last.Produce.MiBps, first.Produce.MiBps, last.Ratios.ProduceCeiling, atLeast, "MiB/s")
	}
	if last.Cold != nil && first.Cold != nil {
		add("cold read throughput", "≥ 0.80 "+vs, last.Cold.MiBps, first.Cold.MiBps, last.Ratios.ColdCeiling, atLeast, "MiB/s")
	}
	if last.Warm != nil && first.Warm != nil {
		add("warm read throughput", "≥ 0.80 "+vs, last.Warm.MiBps, first.Warm.MiBps, last.Ratios.WarmCeiling, atLeast, "MiB/s")
	}
	gets := Target{Name: "GETs per GiB read cold" + at, Want: "≤ 1.25 × (1 GiB / read chunk size)", Got: "not measured"}
	if chunk := rep.Agent.ReadChunkBytes; chunk <= 0 {
		gets.Note = "the read chunk size is unknown (--read-chunk-bytes)"
	} else if last.Cold != nil && last.Cold.Store.Source != "" {
		bound := float64(1<<30) / float64(chunk)
		gets.Want = fmt.Sprintf("≤ 1.25 × (1 GiB / %s read chunk)", units.Bytes(chunk))
		gets.Ratio = last.Cold.GetsPerGiB / bound
		gets.Got = fmt.Sprintf("%.2f (%.0f / %.0f GETs per GiB)", gets.Ratio, last.Cold.GetsPerGiB, bound)
		met := gets.Ratio <= 1.25
		gets.Met = &met
	}
	ts = append(ts, gets)
	if last.Warm != nil && last.Warm.Store.Source != "" {
		// A warm read is served from the agents' caches: a GET in it means
		// the window did not stay cached, and its speed is a cold read's.
		met := last.Warm.Store.Gets == 0
		ts = append(ts, Target{Name: "GETs of the warm read" + at, Want: "none (served from the cache)",
			Got: fmt.Sprintf("%.0f GETs reading %s", last.Warm.Store.Gets, units.Bytes(last.Warm.Bytes)), Met: &met})
	}
	mem := Target{Name: "agent peak RSS at every partition count", Want: "≤ its memory limit", Got: "not measured"}
	var worst *SweepPoint
	measured, within := true, true
	for _, p := range s.Points {
		if p.PeakRSS == 0 || p.MemoryLimit == 0 {
			measured = false
			break
		}
		if worst == nil || float64(p.PeakRSS)/float64(p.MemoryLimit) > float64(worst.PeakRSS)/float64(worst.MemoryLimit) {
			worst = p
		}
		within = within && p.PeakRSS <= p.MemoryLimit
	}
	if measured {
		mem.Ratio = float64(worst.PeakRSS) / float64(worst.MemoryLimit)
		mem.Got = fmt.Sprintf("%.2f at most (peak RSS %s / limit %s at %d partitions)", mem.Ratio, units.Bytes(worst.PeakRSS), units.Bytes(worst.MemoryLimit), worst.Partitions)
		mem.Met = &within
	}
	ts = append(ts, mem)
	if c := last.Compaction; c != nil && c.Error == "" {
		t := Target{Name: "compactor PUTs per GiB" + at, Want: "≤ 2 × the agents'", Got: "not measured"}
		if c.VsAgents > 0 {
			t.Ratio = c.VsAgents
			t.Got = fmt.Sprintf("%.2f (%.0f / %.0f PUTs per GiB stored)", c.VsAgents, c.PutsPerGiB, c.AgentPutsPerGiB)
			met := c.VsAgents <= 2
			t.Met = &met
		}
		ts = append(ts, t)
		t = Target{Name: "compaction pass" + at, Want: "well under its interval", Got: "not measured"}
		if c.IntervalSeconds > 0 {
			t.Ratio = c.Seconds / c.IntervalSeconds
			t.Got = fmt.Sprintf("%.3f (%.1fs / %.0fs)", t.Ratio, c.Seconds, c.IntervalSeconds)
		}
		ts = append(ts, t)
	}
	return ts
}

func signOf(n int64) string {
	if n < 0 {
		return "−"
	}
	return "+"
}

func abs(n int64) int64 {
	if n < 0 {
		return -n
	}
	return n
}

// WriteText writes the report as tables for people.
func (rep *Report) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	pr := func(format string, args ...any) { fmt.Fprintf(tw, format+"\n", args...) }
	wl := rep.Workload
	keys := wl.Keys
	pr("floe bench  %s  (%.0fs, %d CPUs on the bench's machine)", rep.Started.Format(time.RFC3339), rep.Seconds, rep.CPUs)
	pr("cluster     %s", rep.Cluster)
	pr("agent       segment %s, flush %s, buffer %s, cache %s, %d PUTs in flight", units.Bytes(rep.Agent.SegmentTargetBytes), rep.Agent.FlushInterval, units.Bytes(rep.Agent.MaxBufferBytes), units.Bytes(rep.Agent.CacheBytes), rep.Agent.MaxUploads)
	linger := "(flush interval + 40ms) / 4"
	if wl.LingerMs > 0 {
		linger = fms(wl.LingerMs)
	}
	parts := fmt.Sprintf("%d partitions", wl.Partitions)
	if s := rep.Sweep; s != nil {
		parts += " (sweep: " + joinInts(s.Partitions) + ")"
	}
	pr("workload    %s records (%s payload, client compression %s), %s, %d producers (linger %s), keys %s, %d consumers per group", units.Bytes(int64(wl.RecordSize)), wl.Payload, wl.Compression, parts, wl.Producers, linger, keys, wl.Consumers)
	pr("")

	pr("LIMIT (raw, same store, same run)\tthroughput\tp50\tp99\tmax")
	if l := rep.Limits.Put; l != nil {
		pr("  PUT %s objects, %d at a time\t%.1f MiB/s\t%s\t%s\t%s", units.Bytes(l.ObjectBytes), l.Concurrency, l.MiBps, fms(l.Latency.P50), fms(l.Latency.P99), fms(l.Latency.Max))
	}
	if l := rep.Limits.Get; l != nil {
		pr("  GET %s objects, %d at a time\t%.1f MiB/s\t%s\t%s\t%s", units.Bytes(l.ObjectBytes), l.Concurrency, l.MiBps, fms(l.Latency.P50), fms(l.Latency.P99), fms(l.Latency.Max))
	}
	if l := rep.Limits.Etcd; l != nil {
		pr("  etcd txn like a commit (%d compares, %d puts)\t%.0f txn/s\t%s\t%s\t%s", l.Compares, l.Puts, l.TxnPerS, fms(l.Latency.P50), fms(l.Latency.P99), fms(l.Latency.Max))
	}
	if l := rep.Limits.PageFault; l != nil {
		pr("  first write to a fresh %s page	%.2f µs a page	(%.2f s per GiB)", units.Bytes(int64(l.PageBytes)), l.MicrosPerPage, l.SecondsPerGiB())
	}
	for _, m := range rep.Limits.Missing {
		pr("  not measured: %s", m)
	}
	pr("")

	if p := rep.Produce; p != nil {
		pr("PRODUCE (acks=all, idempotent)\t")
		pr("  throughput\t%.0f records/s\t%.1f MiB/s\t%s of raw PUT", p.RecordsPerS, p.MiBps, fratio(p.MiBps, rep.Limits.Put))
		pr("  latency at full load\tp50 %s\tp95 %s\tp99 %s\tmax %s", fms(p.Latency.P50), fms(p.Latency.P95), fms(p.Latency.P99), fms(p.Latency.Max))
		pr("  written\t%s in %.1fs\t%.0f PUTs (mean %s)\t%.0f commits (mean %s)", units.Bytes(p.Bytes), p.Seconds, p.Store.Puts, fms(p.Store.PutMeanMs), p.Commits, fms(p.CommitMeanMs))
		if p.Store.PutBytes > 0 {
			pr("  stored\t%s\t%.2f : 1 compression", units.Bytes(int64(p.Store.PutBytes)), float64(p.Bytes)/p.Store.PutBytes)
		}
		if p.Errors > 0 {
			pr("  errors\t%d\t%s", p.Errors, p.FirstError)
		}
		pr("")
	}

	pr("CONSUME\tMiB/s\t× raw GET\tGETs\tGET mean\tGETs/GiB\tcache hits\tread ahead (wasted)\tseconds")
	row := func(name string, c *ConsumeResult) {
		if c == nil {
			return
		}
		pr("  %s\t%.1f\t%s\t%.0f\t%s\t%.0f\t%.0f%%\t%.0f (%.0f)\t%.1f", name, c.MiBps, fratio(c.MiBps, rep.Limits.Get), c.Store.Gets, fms(c.Store.GetMeanMs), c.GetsPerGiB, 100*c.HitRatio, c.Prefetched, c.PrefetchWasted, c.Seconds)
	}
	row("cold (1 group)", rep.Cold)
	if w := rep.Warm; w != nil {
		row(fmt.Sprintf("warm (1 group, last %s ×%d)", units.Bytes(w.WindowBytes), max(w.Passes, 1)), w)
	}
	if f := rep.FanOut; f != nil {
		row(fmt.Sprintf("%d groups at once (all groups)", f.Groups), f)
		if c := rep.Cold; c != nil && c.Store.Gets > 0 {
			pr("  GETs of %d groups / GETs of one\t%.2f", f.Groups, f.Store.Gets/c.Store.Gets)
		}
	}
	pr("")

	rep.writeSweep(pr)
	rep.writeZones(pr)

	if len(rep.Latency) > 0 {
		pr("LATENCY (fixed rate, one group tailing)\trate\tproduce p50\tp99\tbound\tend-to-end p50\tp99\tbound")
		for _, l := range rep.Latency {
			pr("  flush %s\t%d rec/s\t%s\t%s\t%s\t%s\t%s\t%s", l.FlushInterval, l.RatePerS, fms(l.Produce.P50), fms(l.Produce.P99), fms(l.ProduceBound), fms(l.EndToEnd.P50), fms(l.EndToEnd.P99), fms(l.EndToEndBound))
		}
		pr("")
	}

	rep.writeFleet(pr)

	if c := rep.Cost; c != nil {
		pr("COST (S3 Standard request prices)")
		pr("  PUTs per GiB written\t%.1f\t(bound %.1f)\t$%.5f per GiB", c.PutsPerGiB, c.PutsPerGiBMax, c.USDPerGiBWrite)
		pr("  GETs per GiB read (cold)\t%.1f\t\t$%.5f per GiB", c.GetsPerGiB, c.USDPerGiBRead)
		pr("  etcd commit transactions\t%.1f/s\t(while producing at full load)", c.CommitsPerS)
		pr("")
	}

	if rows := rep.cpuRows(); len(rows) > 0 {
		agents := ""
		if rep.Agents > 1 {
			agents = fmt.Sprintf("; agent: all %d together", rep.Agents)
		}
		pr("CPU (cores busy; the machine has %d%s)\tagent\tminio\tetcd\tbench\tmachine\tcore·ms per MiB", rep.CPUs, agents)
		for _, r := range rows {
			cell := func(k string) string {
				if v, ok := r.cpu[k]; ok {
					return fmt.Sprintf("%.2f", v)
				}
				return "-"
			}
			pr("  %s\t%s\t%s\t%s\t%s\t%s\t%s", r.name, cell("agent"), cell("minio"), cell("etcd"), cell("bench"), cell("machine"), r.perMiB())
		}
		pr("")
	}

	if m := rep.Memory; m != nil {
		each := ""
		if rep.Agents > 1 {
			each = fmt.Sprintf("; each figure the highest of %d agents", rep.Agents)
		}
		pr("AGENT MEMORY (sampled every %s, %d samples%s)", memInterval, m.Samples, each)
		pr("  RSS idle / peak\t%s / %s\tGo heap in use peak %s\tGo sys peak %s", units.Bytes(m.IdleRSS), units.Bytes(m.MaxRSS), units.Bytes(m.MaxHeapInuse), units.Bytes(m.MaxGoSys))
		pr("  buffered / cached peak\t%s / %s\tsettings %s / %s", units.Bytes(m.MaxBuffered), units.Bytes(m.MaxCached), units.Bytes(m.BufferSetting), units.Bytes(m.CacheSetting))
		pr("  fixed overhead\tpeak RSS − buffered − cached = %s;  peak RSS − (buffer + cache settings) = %s%s", units.Bytes(m.MaxUnaccounted), signOf(m.OverheadOverSum), units.Bytes(abs(m.OverheadOverSum)))
		if m.MemoryLimit > 0 {
			pr("  memory limit\t%s = buffer + cache + %s (floe agent --memory-limit)", units.Bytes(m.MemoryLimit), units.Bytes(m.MemoryLimit-m.BufferSetting-m.CacheSetting))
		}
		pr("")
	}

	pr("TARGETS\twant\tgot\t")
	for _, t := range rep.Targets {
		status := "not measured"
		if t.Met != nil {
			status = "MISSED"
			if *t.Met {
				status = "met"
			}
		} else if t.Ratio != 0 {
			status = "stated"
		}
		line := fmt.Sprintf("  %s\t%s\t%s\t%s", t.Name, t.Want, t.Got, status)
		if t.Note != "" {
			line += "  (" + t.Note + ")"
		}
		pr("%s", line)
	}
	if len(rep.Notes) > 0 {
		pr("")
		pr("NOTES")
		for _, n := range rep.Notes {
			pr("  %s", strings.ReplaceAll(n, "\t", " "))
		}
	}
	return tw.Flush()
}

type cpuRow struct {
	name  string
	cpu   map[string]float64
	mibps float64 // the phase's throughput, for CPU per MiB (0: none)
}

func (rep *Report) cpuRows() []cpuRow {
	var rows []cpuRow
	add := func(name string, m map[string]float64, mibps float64) {
		if len(m) > 0 {
			rows = append(rows, cpuRow{name, m, mibps})
		}
	}
	if l := rep.Limits.Put; l != nil {
		add("raw PUT", l.CPU, l.MiBps)
	}
	if l := rep.Limits.Get; l != nil {
		add("raw GET", l.CPU, l.MiBps)
	}
	if l := rep.Limits.Etcd; l != nil {
		add("etcd txn", l.CPU, 0)
	}
	if p := rep.Produce; p != nil {
		add("produce", p.CPU, p.MiBps)
	}
	if c := rep.Cold; c != nil {
		add("cold read", c.CPU, c.MiBps)
	}
	if c := rep.Warm; c != nil {
		add("warm read", c.CPU, c.MiBps)
	}
	if c := rep.FanOut; c != nil {
		add(fmt.Sprintf("%d groups", c.Groups), c.CPU, c.MiBps)
	}
	if s := rep.Sweep; s != nil && len(s.Points) > 1 {
		// The wider counts' phases: where the machine's cores went as the
		// partitions grew, the agents' and everyone else's.
		for _, p := range s.Points[1:] {
			at := fmt.Sprintf(" at %d", p.Partitions)
			if p.Produce != nil {
				add("produce"+at, p.Produce.CPU, p.Produce.MiBps)
			}
			if p.Cold != nil {
				add("cold read"+at, p.Cold.CPU, p.Cold.MiBps)
			}
			if p.Warm != nil {
				add("warm read"+at, p.Warm.CPU, p.Warm.MiBps)
			}
		}
	}
	for _, l := range rep.Latency {
		add("latency, flush "+l.FlushInterval, l.CPU, 0)
	}
	for _, f := range rep.Fleet {
		add("fleet "+FleetSize{f.Producers, f.Partitions}.String(), f.CPU, 0)
	}
	return rows
}

// perMiB is the CPU the cluster's processes and the bench spent per MiB
// moved, in core-milliseconds ("-" without a throughput).
func (r cpuRow) perMiB() string {
	if r.mibps <= 0 {
		return "-"
	}
	var cores float64
	for _, k := range []string{"agent", "minio", "etcd", "bench"} {
		cores += r.cpu[k]
	}
	return fmt.Sprintf("%.1f", 1000*cores/r.mibps)
}

func fms(v float64) string {
	switch {
	case v == 0:
		return "-"
	case v < 10:
		return fmt.Sprintf("%.2f ms", v)
	case v < 1000:
		return fmt.Sprintf("%.1f ms", v)
	}
	return fmt.Sprintf("%.2f s", v/1000)
}

func fratio(v float64, l *StoreLimit) string {
	if l == nil || l.MiBps == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f×", v/l.MiBps)
}

// writeSweep writes the partition sweep as one table, every figure
// followed by its ratio to the first count's, and the compaction passes
// beside it.
func (rep *Report) writeSweep(pr func(string, ...any)) {
	s := rep.Sweep
	if s == nil || len(s.Points) == 0 {
		return
	}
	first := s.Points[0]
	pr("PARTITION SWEEP (keys %s over %d keys; each figure, then its ratio to the figure at %d partitions)", s.Keys, s.KeySpace, first.Partitions)
	pr("  partitions\tproduce MiB/s\tcold read MiB/s\twarm read MiB/s\tGETs/GiB cold\tPUTs/GiB written\tetcd txns/flush\tagent peak RSS (limit)")
	for i, p := range s.Points {
		cell := func(v, ratio float64, format string) string {
			if v <= 0 {
				return "-"
			}
			c := fmt.Sprintf(format, v)
			if i > 0 && ratio > 0 {
				c += fmt.Sprintf("  %.2f×", ratio)
			}
			return c
		}
		var produce, puts, cold, gets, warm float64
		warmGets := ""
		if p.Produce != nil {
			produce, puts = p.Produce.MiBps, p.Produce.PutsPerGiB
		}
		if p.Cold != nil {
			cold, gets = p.Cold.MiBps, p.Cold.GetsPerGiB
		}
		if p.Warm != nil {
			warm = p.Warm.MiBps
			if p.Warm.Store.Gets > 0 {
				warmGets = fmt.Sprintf(" (%.0f GETs)", p.Warm.Store.Gets)
			}
		}
		rss := "-"
		if p.PeakRSS > 0 {
			rss = units.Bytes(p.PeakRSS)
			if p.MemoryLimit > 0 {
				rss += " (" + units.Bytes(p.MemoryLimit) + ")"
			}
			if i > 0 && p.Ratios.PeakRSS > 0 {
				rss += fmt.Sprintf("  %.2f×", p.Ratios.PeakRSS)
			}
		}
		q := p.Ratios
		pr("  %d\t%s\t%s\t%s\t%s\t%s\t%s\t%s", p.Partitions, cell(produce, q.ProduceMiBps, "%.1f"), cell(cold, q.ColdMiBps, "%.1f"), cell(warm, q.WarmMiBps, "%.1f")+warmGets,
			cell(gets, q.ColdGetsPerGiB, "%.0f"), cell(puts, q.PutsPerGiB, "%.0f"), cell(p.TxnsPerFlush, q.TxnsPerFlush, "%.2f"), rss)
	}
	pr("  (cold reads from restarted agents where the bench owns them; fan-out and latency phases ran at %d partitions only)", first.Partitions)
	if s.agentCPU() {
		// What each MiB cost the agents at each count: a cost that follows
		// bytes stays flat down the table.
		pr("  agent core·ms per MiB	produce	cold read	warm read")
		for _, p := range s.Points {
			u := p.usages()
			pr("  %d	%s	%s	%s", p.Partitions, u[0].perMiB("agent"), u[1].perMiB("agent"), u[2].perMiB("agent"))
		}
		if s.clientCeilings() {
			// What the bench's own clients cost per MiB, and the highest
			// ratio to the first count they leave room for on this
			// machine (clientCeiling): a ratio short of its target that
			// its ceiling clears is the cluster's to close.
			pr("  bench's clients core·ms per MiB (≤ the ratio they leave room for on %d cores)\tproduce\tcold read\twarm read", rep.CPUs)
			for _, p := range s.Points {
				u, q := p.usages(), p.Ratios
				pr("  %d\t%s\t%s\t%s", p.Partitions, clientsPerMiB(u[0], q.ProduceCeiling), clientsPerMiB(u[1], q.ColdCeiling), clientsPerMiB(u[2], q.WarmCeiling))
			}
		}
		if pf := rep.Limits.PageFault; s.agentFaults() && pf != nil {
			// Memory the agent touched for the first time (its heap
			// growing, or pages the runtime gave back and took again), and
			// what those faults cost it at the machine's rate.
			pr("  agent page faults per MiB (share of its CPU at %.2f µs a fault)	produce	cold read	warm read", pf.MicrosPerPage)
			for _, p := range s.Points {
				u := p.usages()
				pr("  %d	%s	%s	%s", p.Partitions, faultsPerMiB(u[0], pf), faultsPerMiB(u[1], pf), faultsPerMiB(u[2], pf))
			}
		}
	}
	pr("")
	if first.Compaction == nil {
		return
	}
	pr("COMPACTION (one pass after each partition count's reads, merging entries however recent)")
	pr("  partitions\tmerged objects\tbytes\tPUTs/GiB merged\tagents' PUTs/GiB stored\tcompactor / agents\tpass\tpass / interval")
	for _, p := range s.Points {
		c := p.Compaction
		switch {
		case c == nil:
			continue
		case c.Error != "":
			msg, _, _ := strings.Cut(c.Error, "\n")
			pr("  %d\tfailed after %.1fs: %s", p.Partitions, c.ProcessSeconds, msg)
			continue
		}
		interval := "-"
		if c.IntervalSeconds > 0 {
			interval = fmt.Sprintf("%.3f of %s", c.Seconds/c.IntervalSeconds, time.Duration(c.IntervalSeconds*float64(time.Second)))
		}
		vs := "-"
		if c.VsAgents > 0 {
			vs = fmt.Sprintf("%.2f", c.VsAgents)
		}
		pr("  %d\t%d\t%s\t%.0f\t%.0f\t%s\t%s\t%s", p.Partitions, c.Objects, units.Bytes(c.Bytes), c.PutsPerGiB, c.AgentPutsPerGiB, vs, fms(1000*c.Seconds), interval)
	}
	pr("")
}

// writeZones writes the zone phase: a row per zone, then the unzoned
// group's read.
func (rep *Report) writeZones(pr func(string, ...any)) {
	z := rep.Zones
	if z == nil {
		return
	}
	pr("ZONES (%d agents in %d zones; %s keyed over %d partitions by %d producers per zone, then %d groups of %d consumers per zone read all of it, every zone at once; clients name their zone: floe_az=ZONE)",
		z.Agents, len(z.Zones), units.Bytes(z.Bytes), z.Partitions, z.ProducersPerZone, z.GroupsPerZone, z.ConsumersPerGroup)
	pr("  zone\tagents\tproduced\tread\tread MiB/s\tcrossed zones: produce\tread\tGETs\tGETs/GiB read\tpeer reads ok (failed)\tpeer-served")
	for _, r := range z.Zones {
		a := r.Read
		pr("  %s\t%d\t%s\t%s\t%.1f\t%s\t%s\t%.0f\t%.0f\t%.0f (%.0f)\t%.0f", r.Zone, r.Agents, units.Bytes(r.ProducedBytes), units.Bytes(r.ReadBytes), r.ReadMiBps,
			crossedCell(r.ProduceCrossed), crossedCell(r.ReadCrossed), a.Gets, r.GetsPerGiB, a.PeerReads, a.PeerReadsFailed, a.PeerServed)
	}
	if u := z.Unzoned; u != nil {
		a := u.Agents
		pr("  no zone (1 group, in %s)\t%d\t-\t%s\t%.1f\t-\t%s of %s (%.0f%%)\t%.0f\t-\t%.0f (%.0f)\t%.0f", u.HomeZone, z.Agents, units.Bytes(u.ReadBytes), u.MiBps,
			units.Bytes(int64(u.Crossed.Total())), units.Bytes(int64(u.ClientBytes)), 100*u.CrossedFraction, a.Gets, a.PeerReads, a.PeerReadsFailed, a.PeerServed)
	}
	pr("  (crossed zones: Kafka request and response bytes of a zone's clients at agents of other zones, data (Produce, Fetch) / control, from floe_agent_client_bytes_total)")
	if u := z.Unzoned; u != nil {
		pr("  (the group that names no zone bootstraps at %s's agents and is taken to be in %s; it read after the zoned groups, from warm caches)", u.HomeZone, u.HomeZone)
	}
	for _, r := range z.Zones {
		if r.ProduceErrors > 0 {
			pr("  %s produce errors\t%d\t%s", r.Zone, r.ProduceErrors, r.ProduceFirstError)
		}
	}
	pr("")
}

// crossedCell formats bytes that crossed zones as "data / control".
func crossedCell(c CrossedBytes) string {
	return units.Bytes(int64(c.Data)) + " / " + units.Bytes(int64(c.Control))
}

// writeFleet writes each fleet phase, and a PASS or FAIL line for it.
func (rep *Report) writeFleet(pr func(string, ...any)) {
	if len(rep.Fleet) == 0 {
		return
	}
	pr("FLEET (idempotent producers, acks=all, keyed records over every partition)")
	for _, f := range rep.Fleet {
		name := FleetSize{f.Producers, f.Partitions}.String()
		pr("  %d producers × %d partitions\t%d records/s for %.0fs (producers started over %.1fs)", f.Producers, f.Partitions, f.RatePerS, f.Seconds, f.RampSeconds)
		rate := 0.0
		if f.Seconds > 0 {
			rate = float64(f.Sent) / f.Seconds
		}
		pr("    records\tsent %d (%.0f/s)\tacknowledged %d\tfailed %d\tunanswered %d\tend − start offsets %d", f.Sent, rate, f.Acked, f.Failed, f.Unanswered, f.Offsets)
		pr("    produce latency\tp50 %s\tp95 %s\tp99 %s\tmax %s", fms(f.Latency.P50), fms(f.Latency.P95), fms(f.Latency.P99), fms(f.Latency.Max))
		pr("    errors the clients retried\t%s", sortedCounts(f.Retried))
		pr("    records failed, by error\t%s", sortedCounts(f.FailedBy))
		if a := f.Agents; a != nil {
			logged := "log not read"
			if a.LogRead {
				logged = fmt.Sprintf("%d ERROR lines logged", a.ErrorLines)
			}
			pr("    agents\t%.0f flushes\t%.0f commit errors\t%.0f failed commit txns\t%.0f txn conflicts (retried)\t%.0f PUT errors\t%s", a.Flushes, a.CommitErrors, a.TxnsFailed, a.TxnConflicts, a.PutErrors, logged)
			for _, l := range a.FirstErrors {
				pr("      %s", strings.ReplaceAll(l, "\t", " "))
			}
		}
		mem := "-"
		if f.PeakRSS > 0 {
			mem = units.Bytes(f.PeakRSS)
			if f.MemoryLimit > 0 {
				mem += " (limit " + units.Bytes(f.MemoryLimit) + ")"
			}
		}
		pr("    memory\tagent peak RSS %s\tbench RSS with every client open %s", mem, units.Bytes(f.BenchRSS))
		if f.Passed {
			pr("  PASS fleet %s: every record acknowledged, end offsets equal the acknowledged count", name)
		} else {
			pr("  FAIL fleet %s: %s", name, strings.Join(f.Failures, "; "))
		}
	}
	pr("")
}

// FleetFailures names the fleet phases that failed, with why.
func (rep *Report) FleetFailures() []string {
	var out []string
	for _, f := range rep.Fleet {
		if !f.Passed {
			out = append(out, fmt.Sprintf("fleet %s: %s", FleetSize{f.Producers, f.Partitions}, strings.Join(f.Failures, "; ")))
		}
	}
	return out
}

func joinInts(ns []int32) string {
	parts := make([]string, len(ns))
	for i, n := range ns {
		parts[i] = fmt.Sprint(n)
	}
	return strings.Join(parts, ", ")
}

// phaseUsage is what a phase cost the processes the bench follows: cores
// busy and page faults per second, by process name, and the phase's MiB/s.
type phaseUsage struct {
	cpu, faults map[string]float64
	mibps       float64
}

// usage returns what the produce phase cost (nothing when it did not run).
func (r *ProduceResult) usage() phaseUsage {
	if r == nil {
		return phaseUsage{}
	}
	return phaseUsage{r.CPU, r.Faults, r.MiBps}
}

// usage returns what the read phase cost (nothing when it did not run).
func (r *ConsumeResult) usage() phaseUsage {
	if r == nil {
		return phaseUsage{}
	}
	return phaseUsage{r.CPU, r.Faults, r.MiBps}
}

// usages returns what each of p's throughput phases cost.
func (p *SweepPoint) usages() [3]phaseUsage {
	return [3]phaseUsage{p.Produce.usage(), p.Cold.usage(), p.Warm.usage()}
}

// perMiB formats process's core·ms per MiB in the phase.
func (u phaseUsage) perMiB(process string) string {
	if u.cpu[process] <= 0 || u.mibps <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", u.cpu[process]*1000/u.mibps)
}

// agentCPU reports whether the sweep knows the agents' CPU (the cluster
// names its processes).
func (s *Sweep) agentCPU() bool {
	for _, p := range s.Points {
		for _, u := range p.usages() {
			if u.cpu["agent"] > 0 {
				return true
			}
		}
	}
	return false
}

// clientCeilings reports whether the sweep has a client ceiling at any
// count.
func (s *Sweep) clientCeilings() bool {
	for _, p := range s.Points {
		if q := p.Ratios; q.ProduceCeiling > 0 || q.ColdCeiling > 0 || q.WarmCeiling > 0 {
			return true
		}
	}
	return false
}

// clientsPerMiB formats the bench's clients' core·ms per MiB in the phase
// and the ceiling they set (none at the first count).
func clientsPerMiB(u phaseUsage, ceiling float64) string {
	out := u.perMiB("bench")
	if out != "-" && ceiling > 0 {
		out += fmt.Sprintf(" (≤ %.2f×)", ceiling)
	}
	return out
}

// agentFaults reports whether the sweep knows the agents' page faults.
func (s *Sweep) agentFaults() bool {
	for _, p := range s.Points {
		for _, u := range p.usages() {
			if u.faults["agent"] > 0 {
				return true
			}
		}
	}
	return false
}

// faultsPerMiB formats the agent's page faults per MiB in the phase, and
// the share of its CPU they took at pf's cost.
func faultsPerMiB(u phaseUsage, pf *PageFaultLimit) string {
	faults, cores := u.faults["agent"], u.cpu["agent"]
	if u.faults == nil || u.mibps <= 0 || (faults == 0 && cores == 0) {
		return "-"
	}
	out := fmt.Sprintf("%.0f", faults/u.mibps)
	if cores > 0 {
		out += fmt.Sprintf(" (%.0f%%)", 100*faults*pf.MicrosPerPage/1e6/cores)
	}
	return out
}
