package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/floe-io/floe/segments"
)

// Sweep is a run over several partition counts: the same throughput
// phases at each, on a topic of its own, with keyed records so that every
// flush touches every partition.
type Sweep struct {
	Partitions []int32       `json:"partitions"`
	Keys       string        `json:"keys"`
	KeySpace   int           `json:"key_space"`
	Points     []*SweepPoint `json:"points"`
}

// SweepPoint is one partition count: its throughput phases, what they
// cost, and each figure as a ratio of the first count's.
type SweepPoint struct {
	Partitions int32          `json:"partitions"`
	Produce    *ProduceResult `json:"produce"`
	Cold       *ConsumeResult `json:"cold_read"`
	Warm       *ConsumeResult `json:"warm_read,omitempty"`
	// Flushes is the agents' flush commits during the produce phase;
	// TxnsPerFlush the etcd transactions each took (0: the agents do not
	// count transactions).
	Flushes      float64 `json:"flushes"`
	TxnsPerFlush float64 `json:"etcd_txns_per_flush,omitempty"`
	// PeakRSS is the highest RSS of any agent from this count's produce
	// phase to the end of its warm read (so not the first count's
	// fan-out); MemoryLimit is the agents' Go memory limit (0: none).
	PeakRSS     int64 `json:"agent_peak_rss"`
	MemoryLimit int64 `json:"agent_memory_limit,omitempty"`
	// Compaction is the compaction pass run after this count's reads;
	// nil when the bench cannot run the cluster's compactor.
	Compaction *CompactionResult `json:"compaction,omitempty"`
	// Ratios are this count's figures over the first count's.
	Ratios SweepRatios `json:"ratios"`

	topic string
}

// SweepRatios are a partition count's figures over the first count's (0:
// a figure is missing at either).
type SweepRatios struct {
	ProduceMiBps        float64 `json:"produce_mib_per_s"`
	ColdMiBps           float64 `json:"cold_read_mib_per_s"`
	WarmMiBps           float64 `json:"warm_read_mib_per_s"`
	ColdGetsPerGiB      float64 `json:"cold_gets_per_gib"`
	PutsPerGiB          float64 `json:"puts_per_gib"`
	TxnsPerFlush        float64 `json:"etcd_txns_per_flush"`
	PeakRSS             float64 `json:"agent_peak_rss"`
	CompactorPutsPerGiB float64 `json:"compactor_puts_per_gib,omitempty"`
	CompactionSeconds   float64 `json:"compaction_seconds,omitempty"`
	// Ceilings are the highest throughput ratios the bench's own clients
	// leave room for on its machine (clientCeiling); 0 where the CPU of
	// the cluster's processes is not known.
	ProduceCeiling float64 `json:"produce_client_ceiling,omitempty"`
	ColdCeiling    float64 `json:"cold_read_client_ceiling,omitempty"`
	WarmCeiling    float64 `json:"warm_read_client_ceiling,omitempty"`
}

// CompactionResult is one compaction pass after a partition count's
// reads. Objects and bytes are the merged objects that appeared in the
// bucket during the pass (listed before and after), so they do not
// depend on what the compactor reports.
type CompactionResult struct {
	// Seconds is the pass as the compactor timed it, or when it does not
	// say, ProcessSeconds: the whole run of the compactor, from its start
	// to its exit.
	Seconds         float64 `json:"pass_seconds"`
	ProcessSeconds  float64 `json:"process_seconds"`
	IntervalSeconds float64 `json:"interval_seconds,omitempty"`
	Objects         int64   `json:"objects_written"`
	Bytes           int64   `json:"bytes_written"`
	// PutsPerGiB is merged objects written per GiB of them: the
	// compactor's PUTs per GiB merged. AgentPutsPerGiB is the agents'
	// PUTs per GiB they stored in the same count's produce phase (stored
	// bytes on both sides, so compression does not tilt the comparison),
	// and VsAgents the first over the second.
	PutsPerGiB      float64 `json:"puts_per_gib_merged"`
	AgentPutsPerGiB float64 `json:"agent_puts_per_gib_stored"`
	VsAgents        float64 `json:"ratio_to_agents"`
	Summary         string  `json:"compactor_summary,omitempty"`
	Error           string  `json:"error,omitempty"`
}

// runCompaction runs one compaction pass after the current count's reads,
// when the cluster lets the bench run its compactor.
func (r *runner) runCompaction(ctx context.Context) error {
	c, ok := r.cl.(Compactor)
	b := r.cl.Bucket()
	if !ok || b == nil {
		r.noteOnce("compaction not measured: the bench runs a compactor only in a cluster it started (--local)")
		return nil
	}
	prefix := segments.KindMerged + "/"
	before, err := listSizes(ctx, b, prefix)
	if err != nil {
		return err
	}
	at := r.atCount(r.pt.Partitions)
	r.obs.Logf("running one compaction pass%s", at)
	p, end := r.phase("compaction"+at, "passes", 1, 0)
	start := time.Now()
	pass, err := c.CompactOnce(ctx)
	wall := time.Since(start)
	p.Add(1)
	end()
	res := &CompactionResult{ProcessSeconds: wall.Seconds(), Seconds: wall.Seconds()}
	r.pt.Compaction = res
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		// The compactor's failure is a finding, not the bench's.
		res.Error = err.Error()
		return nil
	}
	if pass.Duration > 0 {
		res.Seconds = pass.Duration.Seconds()
	}
	res.IntervalSeconds = pass.Interval.Seconds()
	res.Summary = pass.Summary
	after, err := listSizes(ctx, b, prefix)
	if err != nil {
		return err
	}
	for k, size := range after {
		if _, ok := before[k]; !ok {
			res.Objects++
			res.Bytes += size
		}
	}
	if res.Bytes > 0 {
		res.PutsPerGiB = float64(res.Objects) / (float64(res.Bytes) / (1 << 30))
	}
	if pr := r.pt.Produce; pr != nil && pr.Store.Puts > 0 {
		stored := pr.Store.PutBytes
		if stored <= 0 {
			stored = float64(pr.Bytes)
		}
		res.AgentPutsPerGiB = pr.Store.Puts / (stored / (1 << 30))
	}
	if res.PutsPerGiB > 0 && res.AgentPutsPerGiB > 0 {
		res.VsAgents = res.PutsPerGiB / res.AgentPutsPerGiB
	}
	return nil
}

// listSizes lists the objects under prefix, with their sizes.
func listSizes(ctx context.Context, b segments.Bucket, prefix string) (map[string]int64, error) {
	m := map[string]int64{}
	err := b.List(ctx, prefix, func(o segments.ObjectInfo) error {
		m[o.Key] = o.Size
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing %s in the bucket: %w", prefix, err)
	}
	return m, nil
}

// countMemory ends the current count's memory window after its reads,
// before the phases only the first count runs.
func (r *runner) countMemory(ctx context.Context) error {
	r.pt.PeakRSS, r.pt.MemoryLimit = r.mem.windowPeak(ctx)
	return nil
}

// endCount gives the current partition count its place in the report
// (the first count's phases are the report's main ones).
func (r *runner) endCount(context.Context) error {
	pt := r.pt
	if len(r.points) == 0 {
		r.rep.Produce, r.rep.Cold, r.rep.Warm = pt.Produce, pt.Cold, pt.Warm
	}
	r.points = append(r.points, pt)
	if r.rep.Sweep != nil {
		r.rep.Sweep.Points = append(r.rep.Sweep.Points, pt)
	}
	return nil
}

// ratios fills every point's ratios to the first point's figures; cpus
// is the cores of the bench's machine.
func (s *Sweep) ratios(cpus int) {
	if len(s.Points) == 0 {
		return
	}
	f := s.Points[0]
	for i, p := range s.Points {
		cores := cpus
		if i == 0 {
			cores = 0 // no ceiling on the first count's own figures
		}
		q := SweepRatios{
			TxnsPerFlush: ratioOf(p.TxnsPerFlush, f.TxnsPerFlush),
			PeakRSS:      ratioOf(float64(p.PeakRSS), float64(f.PeakRSS)),
		}
		if p.Produce != nil && f.Produce != nil {
			q.ProduceMiBps = ratioOf(p.Produce.MiBps, f.Produce.MiBps)
			q.PutsPerGiB = ratioOf(p.Produce.PutsPerGiB, f.Produce.PutsPerGiB)
			q.ProduceCeiling = clientCeiling(cores, p.Produce.usage(), f.Produce.usage())
		}
		if p.Cold != nil && f.Cold != nil {
			q.ColdMiBps = ratioOf(p.Cold.MiBps, f.Cold.MiBps)
			q.ColdGetsPerGiB = ratioOf(p.Cold.GetsPerGiB, f.Cold.GetsPerGiB)
			q.ColdCeiling = clientCeiling(cores, p.Cold.usage(), f.Cold.usage())
		}
		if p.Warm != nil && f.Warm != nil {
			q.WarmMiBps = ratioOf(p.Warm.MiBps, f.Warm.MiBps)
			q.WarmCeiling = clientCeiling(cores, p.Warm.usage(), f.Warm.usage())
		}
		if p.Compaction != nil && f.Compaction != nil {
			q.CompactorPutsPerGiB = ratioOf(p.Compaction.PutsPerGiB, f.Compaction.PutsPerGiB)
			q.CompactionSeconds = ratioOf(p.Compaction.Seconds, f.Compaction.Seconds)
		}
		p.Ratios = q
	}
}

// clientCeiling is the highest ratio of a phase's throughput at a
// partition count (what it cost, u) to the same phase's at the first
// count (first) that the bench's
// machine of cpus cores leaves room for, given what its clients cost at
// the count: if the cluster's processes (the agents, MinIO, etcd) cost
// per MiB what they cost at the first count and the clients what they
// cost at this one, the machine moves at most
//
//	cpus / (clients/u.mibps + cluster/first.mibps)
//
// MiB/s. A ratio short of a target that its ceiling clears is the
// cluster's to close; one whose ceiling is short too cannot be met on
// this machine with these clients. 0 when the clients' or the cluster's
// CPU is not known (a cluster the bench does not run).
func clientCeiling(cpus int, u, first phaseUsage) float64 {
	clients, ok := u.cpu["bench"]
	if _, agent := first.cpu["agent"]; !ok || !agent || cpus <= 0 || u.mibps <= 0 || first.mibps <= 0 {
		return 0
	}
	var cluster float64
	for name, cores := range first.cpu {
		if name != "bench" && name != "machine" {
			cluster += cores
		}
	}
	perMiB := clients/u.mibps + cluster/first.mibps
	if perMiB <= 0 {
		return 0
	}
	return float64(cpus) / perMiB / first.mibps
}

// ratioOf is a / b, 0 when either is missing.
func ratioOf(a, b float64) float64 {
	if a <= 0 || b <= 0 {
		return 0
	}
	return a / b
}
