package agent

// Zones: which availability zone a client is in, so that it is sent to
// agents of its own zone and no record crosses zones.
//
// A client's zone comes from, in order:
//
//   - its client ID: floe_az=ZONE, or the spellings other systems' users
//     already set (ws_az=, warpstream_az=, diskless_az=, zone=), anywhere
//     in the ID, separated from the rest by commas, semicolons or spaces;
//   - the rack ID of its Fetch requests (KIP-392's client.rack);
//   - the agent's --zone-cidrs map applied to the client's address.
//
// A client with none of these has no zone and is served as before. Zoned
// clients are told (Metadata) that agents of their zone lead every
// partition, chosen by rendezvous hashing among that zone's live agents so
// leadership is spread and stable; when their zone has no live agent,
// all agents are candidates as for any client.

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/metadata"
)

// clientIDZoneKeys are the client ID keys that name a zone.
var clientIDZoneKeys = []string{"floe_az", "ws_az", "warpstream_az", "diskless_az", "zone"}

// maxZoneLength bounds a zone name taken from a client.
const maxZoneLength = 64

// zoneFromClientID returns the zone a client ID names, if any.
func zoneFromClientID(clientID string) string {
	if !strings.Contains(clientID, "=") {
		return ""
	}
	for _, field := range strings.FieldsFunc(clientID, func(r rune) bool { return r == ',' || r == ';' || r == ' ' || r == '\t' }) {
		key, value, ok := strings.Cut(field, "=")
		if !ok || value == "" || len(value) > maxZoneLength || !slices.Contains(clientIDZoneKeys, strings.ToLower(key)) {
			continue
		}
		return value
	}
	return ""
}

// zoneCIDRs maps client address ranges to zones (--zone-cidrs).
type zoneCIDRs []zonePrefix

type zonePrefix struct {
	prefix netip.Prefix
	zone   string
}

// parseZoneCIDRs parses 'zoneA=10.0.0.0/19,10.0.32.0/19;zoneB=10.0.64.0/19'.
func parseZoneCIDRs(s string) (zoneCIDRs, error) {
	var out zoneCIDRs
	for _, part := range strings.Split(s, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		zone, cidrs, ok := strings.Cut(part, "=")
		zone = strings.TrimSpace(zone)
		if !ok || zone == "" || len(zone) > maxZoneLength {
			return nil, fmt.Errorf("zone CIDRs %q: want ZONE=CIDR[,CIDR...] separated by semicolons", part)
		}
		for _, c := range strings.Split(cidrs, ",") {
			p, err := netip.ParsePrefix(strings.TrimSpace(c))
			if err != nil {
				return nil, fmt.Errorf("zone CIDRs for %s: %w", zone, err)
			}
			out = append(out, zonePrefix{p.Masked(), zone})
		}
	}
	// The most specific prefix wins where ranges overlap.
	slices.SortStableFunc(out, func(a, b zonePrefix) int { return b.prefix.Bits() - a.prefix.Bits() })
	return out, nil
}

// zoneOf returns the zone of a client address ("host:port"), if any range
// holds it.
func (z zoneCIDRs) zoneOf(remote string) string {
	if len(z) == 0 {
		return ""
	}
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return ""
	}
	addr = addr.Unmap()
	for _, p := range z {
		if p.prefix.Contains(addr) {
			return p.zone
		}
	}
	return ""
}

// agentsForZone returns the live agents of zone, or all of them when the
// client has no zone or its zone has no live agent.
func agentsForZone(agents []metadata.AgentInfo, zone string) []metadata.AgentInfo {
	if zone == "" {
		return agents
	}
	var in []metadata.AgentInfo
	for _, a := range agents {
		if a.Zone == zone {
			in = append(in, a)
		}
	}
	if len(in) == 0 {
		return agents
	}
	return in
}

// zoneLabel is the metrics label of a client zone: zones of live agents
// and of --zone-cidrs by name, anything else a client names as "other"
// (clients choose their IDs, so their zones must not make new series),
// and no zone as "none".
func (a *Agent) zoneLabel(zone string) string {
	switch {
	case zone == "":
		return "none"
	case zone == a.cfg.Zone:
		return zone
	}
	for _, p := range a.zoneNets {
		if p.zone == zone {
			return zone
		}
	}
	for _, ag := range a.view.Agents() {
		if ag.Zone == zone {
			return zone
		}
	}
	return "other"
}

// zoneBytes are the client byte counters of one client zone label:
// requests and responses, of data (Produce, Fetch) and control requests.
type zoneBytes struct {
	dataIn, dataOut, controlIn, controlOut prometheus.Counter
}

// zoneBytesFor resolves the byte counters of a client zone once, so
// requests count their bytes without a label lookup.
func (a *Agent) zoneBytesFor(zone string) *zoneBytes {
	label := a.zoneLabel(zone)
	v := a.metrics.clientBytes
	return &zoneBytes{
		dataIn:     v.WithLabelValues("in", "data", a.cfg.Zone, label),
		dataOut:    v.WithLabelValues("out", "data", a.cfg.Zone, label),
		controlIn:  v.WithLabelValues("in", "control", a.cfg.Zone, label),
		controlOut: v.WithLabelValues("out", "control", a.cfg.Zone, label),
	}
}

// of returns the counters of a request's bytes and of its response's.
func (z *zoneBytes) of(rq *request) (in, out prometheus.Counter) {
	switch rq.req.(type) {
	case *kmsg.ProduceRequest, *kmsg.FetchRequest:
		return z.dataIn, z.dataOut
	}
	return z.controlIn, z.controlOut
}

// rankReplicas returns a shard's first n replicas among agents: the
// rendezvous ranking, reordered so that the first replicas come from as
// many zones as there are (the leader, the best ranked, stays first).
func rankReplicas(agents []metadata.AgentInfo, key string, n int) []metadata.AgentInfo {
	ranked := metadata.Rank(agents, key)
	n = min(n, len(ranked))
	out := make([]metadata.AgentInfo, 0, n)
	used := make([]bool, len(ranked))
	zones := map[string]bool{}
	for i, a := range ranked {
		if len(out) == n {
			break
		}
		if !zones[a.Zone] {
			zones[a.Zone] = true
			used[i] = true
			out = append(out, a)
		}
	}
	for i, a := range ranked {
		if len(out) == n {
			break
		}
		if !used[i] {
			out = append(out, a)
		}
	}
	return out
}
