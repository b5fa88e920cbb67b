package agent_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floe-io/floe/agent"
)

// The JSON of GET /v1/groups/{group}, as a client reads it.
type apiGroup struct {
	Group        string `json:"group"`
	State        string `json:"state"`
	ProtocolType string `json:"protocol_type"`
	Coordinator  int32  `json:"coordinator"`
	Members      []struct {
		MemberID    string `json:"member_id"`
		ClientID    string `json:"client_id"`
		ClientHost  string `json:"client_host"`
		Assignments []struct {
			Topic      string  `json:"topic"`
			Partitions []int32 `json:"partitions"`
		} `json:"assignments"`
	} `json:"members"`
	Partitions []struct {
		Topic           string `json:"topic"`
		Partition       int32  `json:"partition"`
		CommittedOffset *int64 `json:"committed_offset"`
		EndOffset       int64  `json:"end_offset"`
		Lag             int64  `json:"lag"`
		MemberID        string `json:"member_id"`
		Status          string `json:"status"`
		Commits         []struct {
			Offset int64 `json:"offset"`
			Lag    int64 `json:"lag"`
		} `json:"commits"`
	} `json:"partitions"`
	TotalLag int64  `json:"total_lag"`
	MaxLag   int64  `json:"max_lag"`
	Status   string `json:"status"`
}

type apiGroupList struct {
	Groups []struct {
		Group    string `json:"group"`
		State    string `json:"state"`
		Members  int    `json:"members"`
		TotalLag int64  `json:"total_lag"`
		MaxLag   int64  `json:"max_lag"`
		Status   string `json:"status"`
	} `json:"groups"`
}

// httpAPI serves an agent's HTTP endpoints on a loopback port.
func httpAPI(t *testing.T, a *agent.Agent) string {
	mux := http.NewServeMux()
	a.RegisterHTTP(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}

func getJSON(t *testing.T, u string, v any) int {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("GET %s: Content-Type %q", u, ct)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	return resp.StatusCode
}

func getGroup(t *testing.T, base, group string) apiGroup {
	t.Helper()
	var g apiGroup
	if code := getJSON(t, base+"/v1/groups/"+url.PathEscape(group), &g); code != http.StatusOK {
		t.Fatalf("GET group %s: status %d", group, code)
	}
	return g
}

// A consumer group that committed half of a topic: every agent's API
// reports the other half as lag, per partition and in total, with the
// group's members and assignments.
func TestGroupsAPIReportsLag(t *testing.T) {
	c := newTestCluster(t)
	lagMetricsOften := func(cfg *agent.Config) {
		fastGroups(cfg)
		cfg.Groups.LagMetricsInterval = 20 * time.Millisecond
	}
	regs := []*prometheus.Registry{prometheus.NewRegistry(), prometheus.NewRegistry()}
	c.registry = regs[0]
	a0 := c.addAgent(lagMetricsOften)
	c.registry = regs[1]
	a1 := c.addAgent(lagMetricsOften)
	createTopic(t, c, "half", 3, nil)
	acked := produceAll(t, c.client(), "half", 300, true)
	end := ends(acked)

	const group = "billing/eu" // escaped in the URL
	m := c.joinGroup(group, []string{"half"})
	waitFor(t, 20*time.Second, func() bool { return balanced("half", 3, m) }, "the member owns half")
	commit := map[int32]int64{}
	var want int64
	for p, e := range end {
		commit[p] = e / 2
		want += e - e/2
	}
	commitSync(t, m.cl, "half", commit)

	for _, a := range []*agent.Agent{a0, a1} {
		base := httpAPI(t, a)
		var g apiGroup
		// The committed offsets are read from etcd when asked; a commit's
		// sample in the lag window comes from the agent's watch of them,
		// which may deliver it a moment later.
		waitFor(t, 10*time.Second, func() bool {
			g = getGroup(t, base, group)
			sampled := len(g.Partitions) > 0
			for _, p := range g.Partitions {
				sampled = sampled && len(p.Commits) == 1
			}
			return g.TotalLag == want && sampled
		}, "the API reports the unconsumed half as lag, with each partition's commit")
		if g.Group != group || g.State != "Stable" || g.ProtocolType != "consumer" || len(g.Members) != 1 || len(g.Partitions) != 3 {
			t.Fatalf("group %+v", g)
		}
		mem := g.Members[0]
		if mem.ClientHost != "/127.0.0.1" || len(mem.Assignments) != 1 || mem.Assignments[0].Topic != "half" || len(mem.Assignments[0].Partitions) != 3 {
			t.Fatalf("member %+v", mem)
		}
		var maxLag int64
		for _, p := range g.Partitions {
			if p.CommittedOffset == nil || *p.CommittedOffset != commit[p.Partition] || p.EndOffset != end[p.Partition] ||
				p.Lag != end[p.Partition]-commit[p.Partition] || p.MemberID != mem.MemberID || len(p.Commits) != 1 {
				t.Fatalf("partition %+v; committed %d of %d", p, commit[p.Partition], end[p.Partition])
			}
			maxLag = max(maxLag, p.Lag)
		}
		if g.MaxLag != maxLag {
			t.Fatalf("max lag %d, want %d", g.MaxLag, maxLag)
		}

		var list apiGroupList
		if code := getJSON(t, base+"/v1/groups", &list); code != http.StatusOK {
			t.Fatalf("GET /v1/groups: %d", code)
		}
		if len(list.Groups) != 1 || list.Groups[0].Group != group || list.Groups[0].TotalLag != want || list.Groups[0].Members != 1 {
			t.Fatalf("list %+v", list)
		}

		var missing map[string]string
		if code := getJSON(t, base+"/v1/groups/nobody", &missing); code != http.StatusNotFound || !strings.Contains(missing["error"], "does not exist") {
			t.Fatalf("unknown group: %d %v", code, missing)
		}
	}

	// The coordinator, and only it, exports the lag per partition.
	waitFor(t, 10*time.Second, func() bool {
		var sums [2]float64
		for i, reg := range regs {
			for p := range end {
				sums[i] += gaugeWithLabels(reg, "floe_group_lag", map[string]string{"group": group, "topic": "half", "partition": strconv.Itoa(int(p))})
			}
		}
		return sums[0]+sums[1] == float64(want) && (sums[0] == 0 || sums[1] == 0)
	}, "floe_group_lag from the coordinator adds up to the lag")
}

// gaugeWithLabels is the value of the gauge series with these labels, or
// 0 when there is none.
func gaugeWithLabels(reg *prometheus.Registry, name string, labels map[string]string) float64 {
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) != len(labels) {
				continue
			}
			for _, lp := range m.GetLabel() {
				if labels[lp.GetName()] != lp.GetValue() {
					continue series
				}
			}
			return m.GetGauge().GetValue()
		}
	}
	return 0
}

// Statuses over a short window: growing lag warns, commits that stop
// are an error (STOP), commits stuck at one offset an error (STALL), and
// a consumer that catches up is OK.
func TestGroupsAPIStatus(t *testing.T) {
	c := newTestCluster(t)
	a := c.addAgent(func(cfg *agent.Config) {
		fastGroups(cfg)
		cfg.Groups.LagWindow = 3
		cfg.Groups.LagMinDistance = time.Millisecond
	})
	createTopic(t, c, "s", 1, nil)
	base := httpAPI(t, a)
	adm := c.admin()
	ctx := testCtx(t)
	cl := c.client()
	produce := func(n int) {
		t.Helper()
		for range n {
			if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "s", Value: []byte("v")}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	commit := func(group string, at int64) {
		t.Helper()
		if r, err := adm.CommitOffsets(ctx, group, offsets("s", map[int32]int64{0: at})); err != nil || r.Error() != nil {
			t.Fatalf("commit: %v %v", err, r.Error())
		}
	}
	// waitCommits waits until the API's window holds n commits, the last
	// at offset at.
	waitCommits := func(group string, n int, at int64) apiGroup {
		t.Helper()
		var g apiGroup
		waitFor(t, 10*time.Second, func() bool {
			g = getGroup(t, base, group)
			cs := g.Partitions[0].Commits
			return len(cs) == n && cs[n-1].Offset == at
		}, "the commits are in the window")
		return g
	}
	const spacing = 400 * time.Millisecond

	// Growing lag: the consumer advances but falls further behind.
	produce(10)
	commit("slow", 5)
	time.Sleep(spacing)
	produce(10)
	commit("slow", 8)
	time.Sleep(spacing)
	produce(10)
	commit("slow", 10)
	// The stalled consumer commits the same offset, three times.
	for i := range 3 {
		if i > 0 {
			time.Sleep(spacing)
		}
		commit("stuck", 4)
	}
	g := waitCommits("slow", 3, 10)
	if g.Status != "WARN" || g.Partitions[0].Status != "WARN" || g.Partitions[0].Lag != 20 {
		t.Fatalf("growing lag: status %s, partition %+v", g.Status, g.Partitions[0])
	}
	if lags := g.Partitions[0].Commits; lags[0].Lag != 5 || lags[1].Lag != 12 || lags[2].Lag != 20 {
		t.Fatalf("window %+v", lags)
	}
	// STALL, or STOP once the silence outlasts the window (Burrow checks
	// STOP first; TestPartitionStatusFollowsBurrow pins each rule).
	g = waitCommits("stuck", 3, 4)
	if st := g.Partitions[0].Status; g.Status != "ERR" || (st != "STALL" && st != "STOP") {
		t.Fatalf("stuck offset: status %s, partition %+v", g.Status, g.Partitions[0])
	}

	// Commits stop while lag remains: once the silence outlasts the
	// window's span, STOP.
	waitFor(t, 10*time.Second, func() bool {
		g = getGroup(t, base, "slow")
		return g.Partitions[0].Status == "STOP"
	}, "the stopped consumer is STOP")
	if g.Status != "ERR" {
		t.Fatalf("stopped consumer: group status %s", g.Status)
	}

	// Catching up is OK at once.
	commit("slow", 30)
	waitCommits("slow", 3, 30)
	if g = getGroup(t, base, "slow"); g.Status != "OK" || g.TotalLag != 0 {
		t.Fatalf("caught up: status %s, lag %d", g.Status, g.TotalLag)
	}
	var list apiGroupList
	getJSON(t, base+"/v1/groups", &list)
	statuses := map[string]string{}
	for _, lg := range list.Groups {
		statuses[lg.Group] = lg.Status
	}
	if statuses["slow"] != "OK" || statuses["stuck"] != "ERR" {
		t.Fatalf("list statuses %v", statuses)
	}
}
