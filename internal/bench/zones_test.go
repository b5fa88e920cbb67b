package bench

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"
)

func mustParse(t *testing.T, text string) Metrics {
	t.Helper()
	m, err := parseMetrics(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// Two scrapes of two agents, one per zone: the deltas count what crossed
// zones, by kind, for zoned clients and for clients without a zone.
func TestZoneDeltas(t *testing.T) {
	before := mustParse(t, `
floe_agent_client_bytes_total{agent_zone="z1",client_zone="z1",direction="out",kind="data"} 1000
floe_agent_client_bytes_total{agent_zone="z2",client_zone="z1",direction="out",kind="control"} 10
floe_agent_client_bytes_total{agent_zone="z1",client_zone="none",direction="out",kind="data"} 50
floe_fetch_get_duration_seconds_count 4
floe_fetch_get_duration_seconds_count 6
floe_fetch_peer_reads_total{result="ok"} 1
`)
	after := mustParse(t, `
floe_agent_client_bytes_total{agent_zone="z1",client_zone="z1",direction="out",kind="data"} 5000
floe_agent_client_bytes_total{agent_zone="z1",client_zone="z1",direction="in",kind="control"} 300
floe_agent_client_bytes_total{agent_zone="z2",client_zone="z1",direction="out",kind="control"} 40
floe_agent_client_bytes_total{agent_zone="z2",client_zone="z1",direction="out",kind="data"} 7
floe_agent_client_bytes_total{agent_zone="z2",client_zone="z2",direction="out",kind="data"} 9000
floe_agent_client_bytes_total{agent_zone="z1",client_zone="none",direction="out",kind="data"} 650
floe_agent_client_bytes_total{agent_zone="z2",client_zone="none",direction="out",kind="data"} 400
floe_agent_client_bytes_total{agent_zone="z2",client_zone="none",direction="in",kind="control"} 100
floe_fetch_get_duration_seconds_count 10
floe_fetch_get_duration_seconds_count 8
floe_fetch_get_bytes_total 1048576
floe_fetch_peer_reads_total{result="ok"} 5
floe_fetch_peer_reads_total{result="failed"} 2
floe_fetch_peer_served_total 3
`)
	if got, want := crossedBytes(before, after, "z1", "z1"), (CrossedBytes{Data: 7, Control: 30}); got != want {
		t.Errorf("z1 crossed %+v, want %+v", got, want)
	}
	if got := crossedBytes(before, after, "z2", "z2"); got.Total() != 0 {
		t.Errorf("z2 crossed %+v, want none", got)
	}
	// Clients without a zone, taken to be in z1: what z2's agents saw.
	if got, want := crossedBytes(before, after, noZoneLabel, "z1"), (CrossedBytes{Data: 400, Control: 100}); got != want {
		t.Errorf("unzoned crossed %+v, want %+v", got, want)
	}
	if got := clientBytes(before, after, noZoneLabel); got != 1100 {
		t.Errorf("unzoned client bytes %v, want 1100", got)
	}
	a := zoneAgentsDelta(before, after)
	if want := (ZoneAgents{Gets: 8, GetBytes: 1 << 20, PeerReads: 4, PeerReadsFailed: 2, PeerServed: 3}); a != want {
		t.Errorf("agents %+v, want %+v", a, want)
	}
	if !hasPeerMetrics(after) || hasPeerMetrics(mustParse(t, "floe_fetch_get_bytes_total 1\n")) {
		t.Error("hasPeerMetrics is wrong")
	}
	// An agent without the metrics counts zero.
	if a := zoneAgentsDelta(Metrics{}, Metrics{}); a != (ZoneAgents{}) {
		t.Errorf("no metrics: %+v", a)
	}
}

func TestZoneClientID(t *testing.T) {
	for _, c := range []struct{ name, zone, want string }{
		{"z1-zone-producer-0", "z1", "floe-bench-z1-zone-producer-0,floe_az=z1"},
		{"admin", "", "floe-bench-admin"},
	} {
		if got := zoneClientID(c.name, c.zone); got != c.want {
			t.Errorf("zoneClientID(%q, %q) = %q, want %q", c.name, c.zone, got, c.want)
		}
	}
}

func TestReadSpan(t *testing.T) {
	a, b := newGroupRead("a", "t"), newGroupRead("b", "t")
	base := time.Now().UnixNano()
	a.bytes.Store(100)
	a.assigned.Store(base)
	a.firstRec.Store(base + int64(time.Second))
	a.lastRec.Store(base + int64(3*time.Second))
	b.bytes.Store(50)
	b.assigned.Store(base + int64(500*time.Millisecond))
	b.firstRec.Store(base + int64(2*time.Second))
	b.lastRec.Store(base + int64(4*time.Second))
	if n, d := readSpan([]*groupRead{a, b}); n != 150 || d != 3*time.Second {
		t.Errorf("readSpan = %d, %v; want 150, 3s", n, d)
	}
	// Everything in one poll: timed from the assignment.
	c := newGroupRead("c", "t")
	c.assigned.Store(base)
	c.firstRec.Store(base + int64(time.Second))
	c.lastRec.Store(base + int64(time.Second))
	if _, d := readSpan([]*groupRead{c}); d != time.Second {
		t.Errorf("one poll: %v, want 1s", d)
	}
}

func TestZonesReport(t *testing.T) {
	rep := &Report{Agent: AgentSettings{SegmentTargetBytes: 8 << 20}, Agents: 4, Memory: &Memory{Samples: 1}}
	rep.Zones = &Zones{
		Agents: 4, Partitions: 64, Bytes: 64 << 20, ProducersPerZone: 2, GroupsPerZone: 3, ConsumersPerGroup: 4, PeerMetrics: true,
		Zones: []*ZoneResult{
			{Zone: "z1", Agents: 2, ProducedBytes: 32 << 20, ReadBytes: 192 << 20, ReadMiBps: 100, ReadCrossed: CrossedBytes{Control: 2048},
				Read: ZoneAgents{Gets: 9, PeerReads: 8, PeerReadsFailed: 1, PeerServed: 7}, GetsPerGiB: 48},
			{Zone: "z2", Agents: 2, ProducedBytes: 32 << 20, ReadBytes: 192 << 20, ProduceErrors: 2, ProduceFirstError: "NOT_LEADER_FOR_PARTITION"},
		},
		Unzoned: &UnzonedRead{HomeZone: "z1", Consumers: 4, ReadBytes: 64 << 20, ClientBytes: 64 << 20, Crossed: CrossedBytes{Data: 32 << 20}, CrossedFraction: 0.5},
	}
	rep.evaluate()
	var b bytes.Buffer
	if err := rep.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	text := b.String()
	for _, want := range []string{
		"ZONES (4 agents in 2 zones; 64.0 MiB keyed over 64 partitions by 2 producers per zone, then 3 groups of 4 consumers per zone",
		"0 B / 2.0 KiB", "8 (1)", "32.0 MiB of 64.0 MiB (50%)", "no zone (1 group, in z1)",
		"z2 produce errors", "NOT_LEADER_FOR_PARTITION",
		"each figure the highest of 4 agents",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("report lacks %q:\n%s", want, text)
		}
	}
	var z1 string
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, "  z1 ") {
			z1 = l
		}
	}
	// From the end: GETs, GETs/GiB read, peer reads ok (failed), peer-served.
	if f := strings.Fields(z1); len(f) < 6 || f[1] != "2" || strings.Join(f[len(f)-5:], " ") != "9 48 8 (1) 7" {
		t.Errorf("z1 row %q", z1)
	}
	// One agent: the report is as before.
	b.Reset()
	rep.Zones, rep.Agents = nil, 0
	if err := rep.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "ZONES") || strings.Contains(b.String(), "highest of") {
		t.Errorf("a report without zones mentions them:\n%s", b.String())
	}
}

func TestSumStats(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	one, f1, ok1 := sumStats([]int{os.Getpid()})
	two, f2, ok2 := sumStats([]int{os.Getpid(), os.Getpid()})
	if !ok1 || !ok2 || two < 2*one || f1 == 0 || f2 < 2*f1 {
		t.Errorf("sumStats: %d %d %v, %d %d %v", one, f1, ok1, two, f2, ok2)
	}
	if _, _, ok := sumStats([]int{os.Getpid(), -1}); ok {
		t.Error("a process that cannot be read gave a sum")
	}
	if _, _, ok := sumStats(nil); ok {
		t.Error("no process gave a sum")
	}
}

func TestParseStat(t *testing.T) {
	// A command name with spaces and a parenthesis, then state, ppid,
	// pgrp, session, tty, tpgid, flags, minflt (1234), cminflt, majflt,
	// cmajflt, utime (70), stime (30).
	line := "4242 (floe (x) y) S 1 4242 4242 0 -1 4194560 1234 0 5 0 70 30 0 0 20 0 12 0"
	ticks, minflt, ok := parseStat(line)
	if !ok || ticks != 100 || minflt != 1234 {
		t.Errorf("parseStat = %d, %d, %v; want 100, 1234, true", ticks, minflt, ok)
	}
	for _, bad := range []string{"", "4242 (floe", "4242 (floe) S 1 2 3", "4242 (floe) S 1 4242 4242 0 -1 4194560 x 0 5 0 70 30"} {
		if _, _, ok := parseStat(bad); ok {
			t.Errorf("parseStat(%q) ok", bad)
		}
	}
}
