package bench

// The zone phase, run when the cluster's agents are spread over two zones
// or more (a Zoned cluster): zoned clients in every zone write a fresh
// keyed topic and read it back with several groups at once, all zones at
// the same time; then one group of clients that name no zone reads it
// again, for contrast.
//
// A zoned client names its zone in its client ID (floe_az=ZONE) and
// bootstraps at its zone's agents; the agents then tell it that agents of
// its own zone lead every partition, so none of its bytes should cross
// zones. Whether any do is read from the agents'
// floe_agent_client_bytes_total, which counts request and response bytes
// by the agent's zone and the client's. Within a zone, a chunk an agent's
// cache misses may come from the zone agent that owns it (the zone's
// shared read cache, floe_fetch_peer_*) instead of the bucket, so the
// zone's GETs per GiB read fall as its agents share.

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Zones is the zone phase: per zone what its clients moved and what its
// agents did, and the unzoned group's read.
type Zones struct {
	Agents     int   `json:"agents"`
	Partitions int32 `json:"partitions"`
	// Bytes is the key and value bytes acknowledged, all zones together.
	Bytes             int64 `json:"bytes"`
	ProducersPerZone  int   `json:"producers_per_zone"`
	GroupsPerZone     int   `json:"groups_per_zone"`
	ConsumersPerGroup int   `json:"consumers_per_group"`
	// PeerMetrics says whether any agent exports floe_fetch_peer_*
	// (agents of a build without the zone's shared read cache do not;
	// their peer figures are then zero).
	PeerMetrics bool          `json:"peer_metrics"`
	Zones       []*ZoneResult `json:"zones"`
	Unzoned     *UnzonedRead  `json:"unzoned_read,omitempty"`
}

// ZoneResult is one zone: what its clients wrote and read, the bytes of
// its clients that crossed into other zones, and its agents' GETs and
// peer reads while its groups read.
type ZoneResult struct {
	Zone   string `json:"zone"`
	Agents int    `json:"agents"`
	// ProducedBytes and ReadBytes are key and value bytes, acknowledged
	// to the zone's producers and delivered to its consumers (all its
	// groups together).
	ProducedBytes     int64   `json:"produced_bytes"`
	ProduceMiBps      float64 `json:"produce_mib_per_s"`
	ProduceErrors     int64   `json:"produce_errors,omitempty"`
	ProduceFirstError string  `json:"produce_first_error,omitempty"`
	ReadBytes         int64   `json:"read_bytes"`
	ReadSeconds       float64 `json:"read_seconds"`
	ReadMiBps         float64 `json:"read_mib_per_s"`
	// ProduceCrossed and ReadCrossed are the Kafka bytes of the zone's
	// clients that agents of other zones received or sent, while they
	// produced and while they read.
	ProduceCrossed CrossedBytes `json:"produce_crossed_bytes"`
	ReadCrossed    CrossedBytes `json:"read_crossed_bytes"`
	// Read is what the zone's agents did while the groups read;
	// GetsPerGiB is their GETs per GiB the zone's consumers read.
	Read       ZoneAgents `json:"read_agents"`
	GetsPerGiB float64    `json:"gets_per_gib_read"`
}

// UnzonedRead is one group of clients that name no zone reading the
// whole topic. They bootstrap at the agents of HomeZone and are taken to
// be in it: their bytes at agents of other zones crossed zones.
type UnzonedRead struct {
	HomeZone  string  `json:"home_zone"`
	Consumers int     `json:"consumers"`
	ReadBytes int64   `json:"read_bytes"`
	Seconds   float64 `json:"read_seconds"`
	MiBps     float64 `json:"read_mib_per_s"`
	// ClientBytes is every Kafka byte of clients without a zone, both
	// ways, at every agent; Crossed those at agents outside HomeZone, and
	// CrossedFraction their share.
	ClientBytes     float64      `json:"client_bytes"`
	Crossed         CrossedBytes `json:"crossed_bytes"`
	CrossedFraction float64      `json:"crossed_fraction"`
	// Agents is what every agent did during the read (the zoned reads
	// had just filled their caches).
	Agents ZoneAgents `json:"agents"`
}

// CrossedBytes are Kafka request and response bytes that crossed zones:
// Produce and Fetch, and every other request.
type CrossedBytes struct {
	Data    float64 `json:"data"`
	Control float64 `json:"control"`
}

// Total is data and control bytes together.
func (c CrossedBytes) Total() float64 { return c.Data + c.Control }

// ZoneAgents is what a set of agents did between two scrapes: object
// GETs by fetches, bytes served to consumers, and chunks read from and
// served to zone peers. Metrics an agent does not export count as zero.
type ZoneAgents struct {
	Gets            float64 `json:"gets"`
	GetBytes        float64 `json:"get_bytes"`
	FetchBytes      float64 `json:"fetch_bytes"`
	PeerReads       float64 `json:"peer_reads_ok"`
	PeerReadsFailed float64 `json:"peer_reads_failed"`
	PeerReadBytes   float64 `json:"peer_read_bytes"`
	PeerServed      float64 `json:"peer_served"`
	PeerServedBytes float64 `json:"peer_served_bytes"`
}

// clientBytesMetric counts the agents' Kafka bytes by direction, kind
// (data, control), agent zone and client zone; a client without a zone is
// client_zone="none".
const clientBytesMetric = "floe_agent_client_bytes_total"

// noZoneLabel is the client_zone of clients that name no zone.
const noZoneLabel = "none"

// zoneAgentsDelta is what the agents scraped in before and after did in
// between.
func zoneAgentsDelta(before, after Metrics) ZoneAgents {
	d := func(name string, match ...string) float64 {
		return after.Sum(name, match...) - before.Sum(name, match...)
	}
	return ZoneAgents{
		Gets:            d("floe_fetch_get_duration_seconds_count"),
		GetBytes:        d("floe_fetch_get_bytes_total"),
		FetchBytes:      d("floe_fetch_bytes_total"),
		PeerReads:       d("floe_fetch_peer_reads_total", "result", "ok"),
		PeerReadsFailed: d("floe_fetch_peer_reads_total", "result", "failed"),
		PeerReadBytes:   d("floe_fetch_peer_read_bytes_total"),
		PeerServed:      d("floe_fetch_peer_served_total"),
		PeerServedBytes: d("floe_fetch_peer_served_bytes_total"),
	}
}

// crossedBytes is the Kafka bytes of clients whose client_zone is label
// that agents outside zone home received or sent between two scrapes of
// every agent.
func crossedBytes(before, after Metrics, label, home string) CrossedBytes {
	d := func(kind string) float64 {
		keep := func(l map[string]string) bool {
			return l["client_zone"] == label && l["agent_zone"] != home && l["kind"] == kind
		}
		return after.sumWhere(clientBytesMetric, keep) - before.sumWhere(clientBytesMetric, keep)
	}
	return CrossedBytes{Data: d("data"), Control: d("control")}
}

// clientBytes is every Kafka byte of clients whose client_zone is label,
// at every agent, between two scrapes.
func clientBytes(before, after Metrics, label string) float64 {
	return after.Sum(clientBytesMetric, "client_zone", label) - before.Sum(clientBytesMetric, "client_zone", label)
}

// hasPeerMetrics reports whether a scrape holds any of the zone peer
// cache's metrics.
func hasPeerMetrics(m Metrics) bool {
	for _, name := range []string{"floe_fetch_peer_reads_total", "floe_fetch_peer_served_total"} {
		if m.Has(name) {
			return true
		}
	}
	return false
}

// zoneClientID is the client ID of a bench client named name in zone (""
// names none): the agents read the zone from floe_az=ZONE.
func zoneClientID(name, zone string) string {
	id := "floe-bench-" + name
	if zone != "" {
		id += ",floe_az=" + zone
	}
	return id
}

// zoneClientOpts are the connection options of a client of zone z named
// name: it bootstraps at z's agents and names z (or, with z.Name empty,
// no zone).
func (r *runner) zoneClientOpts(z Zone, name string) []kgo.Opt {
	return append([]kgo.Opt{kgo.SeedBrokers(z.Brokers...), kgo.ClientID(zoneClientID(name, z.Name))}, r.cl.ClientOpts()...)
}

func (r *runner) zoneTopic() string { return fmt.Sprintf("%s-%s-zones", r.cfg.Topic, r.id) }

// zoneScrape is one scrape of every agent, by zone.
type zoneScrape struct {
	zones []Metrics // each zone's agents, in the order of the zones
	all   Metrics   // every agent's
}

// scrapeZones scrapes every zone's agents; nil (and a note) when a
// scrape fails.
func (r *runner) scrapeZones(ctx context.Context, zones []Zone) *zoneScrape {
	s := &zoneScrape{all: Metrics{}}
	for _, z := range zones {
		sc := &scraper{urls: z.MetricsURLs, client: r.scr.client, header: r.scr.header}
		m, err := sc.scrape(ctx)
		if err != nil {
			r.note("zones: metrics: %v", err)
			return nil
		}
		s.zones = append(s.zones, m)
		s.all.add(m)
	}
	return s
}

// runZones is the zone phase over zones (two or more).
func (r *runner) runZones(ctx context.Context, zones []Zone) error {
	cfg := r.cfg
	topic := r.zoneTopic()
	if err := r.createTopic(ctx, topic, cfg.ZonePartitions); err != nil {
		return err
	}
	res := &Zones{
		Partitions: cfg.ZonePartitions, ProducersPerZone: max(1, cfg.Producers/len(zones)),
		GroupsPerZone: cfg.Groups, ConsumersPerGroup: cfg.Consumers,
	}
	for _, z := range zones {
		res.Zones = append(res.Zones, &ZoneResult{Zone: z.Name, Agents: len(z.Brokers)})
		res.Agents += len(z.Brokers)
	}
	if err := r.zonesProduce(ctx, zones, topic, res); err != nil {
		return err
	}
	if err := r.zonesRead(ctx, zones, topic, res); err != nil {
		return err
	}
	if err := r.unzonedRead(ctx, zones, topic, res); err != nil {
		return err
	}
	if !res.PeerMetrics {
		r.note("zones: the agents export no floe_fetch_peer_* metrics, so each agent GETs what its own cache misses (no zone peer cache): peer figures are zero")
	}
	r.rep.Zones = res
	return nil
}

// zonesProduce writes the topic with every zone's producers at once, each
// zone an equal share of cfg.ZoneBytes.
func (r *runner) zonesProduce(ctx context.Context, zones []Zone, topic string, res *Zones) error {
	share := r.cfg.ZoneBytes / int64(len(zones))
	before := r.scrapeZones(ctx, zones)
	p, end := r.phase("zones: produce", "bytes", share*int64(len(zones)), r.cfg.Duration)
	stats := make([]*produceStats, len(zones))
	elapsed := make([]time.Duration, len(zones))
	errs := make([]error, len(zones))
	var wg sync.WaitGroup
	for i, z := range zones {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stats[i], elapsed[i], errs[i] = r.produceAll(ctx, produceJob{
				topic: topic, producers: res.ProducersPerZone, bytes: share, keys: "uniform", seed: uint64(i+1) << 32,
				opts: func(j int) []kgo.Opt { return r.zoneClientOpts(z, fmt.Sprintf("%s-zone-producer-%d", z.Name, j)) },
			}, p)
		}()
	}
	wg.Wait()
	end()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	after := r.scrapeZones(ctx, zones)
	for i, zr := range res.Zones {
		st := stats[i]
		zr.ProducedBytes = st.bytes.Load()
		zr.ProduceMiBps = mibps(zr.ProducedBytes, elapsed[i])
		zr.ProduceErrors, zr.ProduceFirstError = st.errors.Load(), st.firstError()
		res.Bytes += zr.ProducedBytes
		if before != nil && after != nil {
			zr.ProduceCrossed = crossedBytes(before.all, after.all, zr.Zone, zr.Zone)
		}
		if zr.ProducedBytes == 0 {
			return fmt.Errorf("zone %s: no record was acknowledged (first error: %s)", zr.Zone, zr.ProduceFirstError)
		}
	}
	return nil
}

// zonesRead reads the whole topic with cfg.Groups groups of zoned clients
// in every zone, all at once.
func (r *runner) zonesRead(ctx context.Context, zones []Zone, topic string, res *Zones) error {
	start, end, err := r.endOffsets(ctx, topic)
	if err != nil {
		return err
	}
	byZone := make([][]*groupRead, len(zones))
	var all []*groupRead
	for i, z := range zones {
		for g := range r.cfg.Groups {
			gr := newGroupRead(fmt.Sprintf("floe-bench-%s-zone-%s-%d", r.id, z.Name, g+1), topic)
			gr.opts = func(name string) []kgo.Opt { return r.zoneClientOpts(z, name) }
			gr.setEnd(start, end)
			byZone[i] = append(byZone[i], gr)
			all = append(all, gr)
		}
	}
	before := r.scrapeZones(ctx, zones)
	p, endPhase := r.phase("zones: read", "bytes", res.Bytes*int64(len(all)), 0)
	err = r.readGroups(ctx, all, kgo.NewOffset().AtStart(), p)
	endPhase()
	if err != nil {
		return err
	}
	after := r.scrapeZones(ctx, zones)
	for i, zr := range res.Zones {
		var elapsed time.Duration
		zr.ReadBytes, elapsed = readSpan(byZone[i])
		zr.ReadSeconds = elapsed.Seconds()
		zr.ReadMiBps = mibps(zr.ReadBytes, elapsed)
		if before == nil || after == nil {
			continue
		}
		res.PeerMetrics = res.PeerMetrics || hasPeerMetrics(after.all)
		zr.ReadCrossed = crossedBytes(before.all, after.all, zr.Zone, zr.Zone)
		zr.Read = zoneAgentsDelta(before.zones[i], after.zones[i])
		if zr.ReadBytes > 0 {
			zr.GetsPerGiB = zr.Read.Gets / (float64(zr.ReadBytes) / (1 << 30))
		}
	}
	return nil
}

// unzonedRead reads the whole topic with one group of clients that name
// no zone, bootstrapped at the first zone's agents.
func (r *runner) unzonedRead(ctx context.Context, zones []Zone, topic string, res *Zones) error {
	start, end, err := r.endOffsets(ctx, topic)
	if err != nil {
		return err
	}
	home := zones[0]
	gr := newGroupRead(fmt.Sprintf("floe-bench-%s-zone-unzoned", r.id), topic)
	gr.opts = func(name string) []kgo.Opt { return r.zoneClientOpts(Zone{Brokers: home.Brokers}, name) }
	gr.setEnd(start, end)
	before := r.scrapeZones(ctx, zones)
	p, endPhase := r.phase("zones: unzoned", "bytes", res.Bytes, 0)
	err = r.readGroups(ctx, []*groupRead{gr}, kgo.NewOffset().AtStart(), p)
	endPhase()
	if err != nil {
		return err
	}
	after := r.scrapeZones(ctx, zones)
	u := &UnzonedRead{HomeZone: home.Name, Consumers: r.cfg.Consumers}
	var elapsed time.Duration
	u.ReadBytes, elapsed = readSpan([]*groupRead{gr})
	u.Seconds = elapsed.Seconds()
	u.MiBps = mibps(u.ReadBytes, elapsed)
	if before != nil && after != nil {
		u.ClientBytes = clientBytes(before.all, after.all, noZoneLabel)
		u.Crossed = crossedBytes(before.all, after.all, noZoneLabel, home.Name)
		if u.ClientBytes > 0 {
			u.CrossedFraction = u.Crossed.Total() / u.ClientBytes
		}
		u.Agents = zoneAgentsDelta(before.all, after.all)
	}
	res.Unzoned = u
	return nil
}

// readSpan is the bytes groups read and the time they took: from the
// first records any of them got to the last (or, when everything came in
// one poll, from the first assignment).
func readSpan(reads []*groupRead) (int64, time.Duration) {
	var bytes, first, last, assigned int64
	for _, g := range reads {
		bytes += g.bytes.Load()
		// From the first records, not the assignment: joining the group
		// and finding its offsets are not reading.
		if a := g.firstRec.Load(); first == 0 || a < first {
			first = a
		}
		if a := g.assigned.Load(); assigned == 0 || a < assigned {
			assigned = a
		}
		last = max(last, g.lastRec.Load())
	}
	if last <= first {
		// Everything came in one poll (a small topic over many
		// partitions): time it from the assignment instead.
		first = assigned
	}
	return bytes, time.Duration(last - first)
}
