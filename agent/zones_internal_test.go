package agent

import (
	"testing"

	"github.com/floe-io/floe/metadata"
)

func TestZoneFromClientID(t *testing.T) {
	for id, want := range map[string]string{
		"":                       "",
		"my-app":                 "",
		"floe_az=us-east-1a":     "us-east-1a",
		"svc,floe_az=us-east-1a": "us-east-1a",
		"svc;ws_az=b;x=y":        "b",
		"svc warpstream_az=c":    "c",
		"diskless_az=d,other":    "d",
		"zone=e":                 "e",
		"ZONE=f":                 "f",
		"myzone=g":               "",
		"floe_az=":               "",
		"a=b=c":                  "",
		"floe_az=" + string(make([]byte, maxZoneLength+1)): "",
	} {
		if got := zoneFromClientID(id); got != want {
			t.Errorf("zoneFromClientID(%q) = %q, want %q", id, got, want)
		}
	}
}

func TestZoneCIDRs(t *testing.T) {
	z, err := parseZoneCIDRs("a=10.0.0.0/19, 10.0.32.0/19; b=10.0.64.0/19;c=10.0.64.128/25;v6=fd00::/8")
	if err != nil {
		t.Fatal(err)
	}
	for addr, want := range map[string]string{
		"10.0.1.2:5000":       "a",
		"10.0.40.1:1":         "a",
		"10.0.64.1:1":         "b",
		"10.0.64.200:1":       "c", // the most specific range wins
		"[fd00::1]:9092":      "v6",
		"[::ffff:10.0.1.2]:1": "a",
		"192.168.0.1:1":       "",
		"not-an-address":      "",
	} {
		if got := z.zoneOf(addr); got != want {
			t.Errorf("zoneOf(%q) = %q, want %q", addr, got, want)
		}
	}
	for _, bad := range []string{"a", "=10.0.0.0/8", "a=10.0.0.0/33", "a=nope"} {
		if _, err := parseZoneCIDRs(bad); err == nil {
			t.Errorf("parseZoneCIDRs(%q) took it", bad)
		}
	}
}

func TestAgentsForZone(t *testing.T) {
	agents := []metadata.AgentInfo{{NodeID: 0, Zone: "a"}, {NodeID: 1, Zone: "b"}, {NodeID: 2, Zone: "a"}}
	if got := agentsForZone(agents, "a"); len(got) != 2 || got[0].NodeID != 0 || got[1].NodeID != 2 {
		t.Errorf("zone a: %+v", got)
	}
	if got := agentsForZone(agents, "c"); len(got) != 3 {
		t.Errorf("a zone with no agent falls back to all: %+v", got)
	}
	if got := agentsForZone(agents, ""); len(got) != 3 {
		t.Errorf("no zone: %+v", got)
	}
}

func TestRankReplicasSpreadsZones(t *testing.T) {
	agents := []metadata.AgentInfo{{NodeID: 0, Zone: "a"}, {NodeID: 1, Zone: "a"}, {NodeID: 2, Zone: "b"}, {NodeID: 3, Zone: "b"}, {NodeID: 4, Zone: "c"}}
	for _, key := range []string{"t/0", "t/1", "t/2", "u/7", "v/3"} {
		ranked := metadata.Rank(agents, key)
		got := rankReplicas(agents, key, 3)
		zones := map[string]bool{}
		for _, a := range got {
			zones[a.Zone] = true
		}
		if len(got) != 3 || got[0].NodeID != ranked[0].NodeID || len(zones) != 3 {
			t.Errorf("key %s: replicas %+v (ranked %+v): want the leader first and three zones", key, got, ranked)
		}
		if all := rankReplicas(agents, key, 10); len(all) != 5 {
			t.Errorf("key %s: %d replicas of 5 agents", key, len(all))
		}
	}
}
