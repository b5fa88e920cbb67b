package agent_test

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/agent"
	"github.com/floe-io/floe/internal/lagapi"
)

// reportedAssignments renders assignments as "topic:p,p topic:p", sorted
// by topic, to compare the lag API's with ConsumerGroupDescribe's.
func reportedAssignments(tps []lagapi.TopicPartitions) string {
	var out []string
	for _, tp := range tps {
		ps := slices.Clone(tp.Partitions)
		slices.Sort(ps)
		var s []string
		for _, p := range ps {
			s = append(s, strconv.Itoa(int(p)))
		}
		out = append(out, tp.Topic+":"+strings.Join(s, ","))
	}
	slices.Sort(out)
	return strings.Join(out, " ")
}

func describedAssignments(a kmsg.Assignment) string {
	var tps []lagapi.TopicPartitions
	for _, tp := range a.TopicPartitions {
		if len(tp.Partitions) > 0 {
			tps = append(tps, lagapi.TopicPartitions{Topic: tp.Topic, Partitions: tp.Partitions})
		}
	}
	return reportedAssignments(tps)
}

// membersAgree reports how the lag API's members differ from what
// ConsumerGroupDescribe says ("" when they agree): IDs, epochs, current
// and target assignments.
func membersAgree(rep lagapi.GroupReport, d kmsg.ConsumerGroupDescribeResponseGroup) string {
	api := map[string]string{}
	for _, m := range rep.Members {
		epoch := "nil"
		if m.MemberEpoch != nil {
			epoch = strconv.Itoa(int(*m.MemberEpoch))
		}
		target := "nil"
		if m.TargetAssignments != nil {
			target = reportedAssignments(m.TargetAssignments)
		}
		api[m.MemberID] = fmt.Sprintf("epoch %s assigned [%s] target [%s]", epoch, reportedAssignments(m.Assignments), target)
	}
	described := map[string]string{}
	for _, m := range d.Members {
		described[m.MemberID] = fmt.Sprintf("epoch %d assigned [%s] target [%s]", m.MemberEpoch, describedAssignments(m.Assignment), describedAssignments(m.TargetAssignment))
	}
	if maps.Equal(api, described) {
		return ""
	}
	return fmt.Sprintf("lag API members %v, ConsumerGroupDescribe %v", api, described)
}

func getReport(t *testing.T, base, group string) lagapi.GroupReport {
	t.Helper()
	var g lagapi.GroupReport
	if code := getJSON(t, base+"/v1/groups/"+group, &g); code != http.StatusOK {
		t.Fatalf("GET group %s: status %d", group, code)
	}
	return g
}

// A consumer-protocol (KIP-848) group in the lag API: every agent reports
// its type, epochs and assignor, its members with their epochs and
// current and target assignments as ConsumerGroupDescribe does, the
// member owning each partition, and lag both where the group committed
// and (from the log start) where an owned partition has no commit; in
// Reconciling too, while a member is still giving partitions up. The
// coordinator exports floe_group_* for it as for a classic group.
func TestGroupsAPIReportsConsumerProtocolGroup(t *testing.T) {
	c := newTestCluster(t)
	cfg := func(cfg *agent.Config) {
		fastConsumerGroups(cfg)
		cfg.Groups.ConsumerSessionTimeout = 15 * time.Second // a member gated in its revocation keeps its session
		cfg.Groups.LagMetricsInterval = 20 * time.Millisecond
	}
	regs := []*prometheus.Registry{prometheus.NewRegistry(), prometheus.NewRegistry()}
	c.registry = regs[0]
	a0 := c.addAgent(cfg)
	c.registry = regs[1]
	a1 := c.addAgent(cfg)
	createTopic(t, c, "kip848", 6, nil)
	acked := produceAll(t, c.client(), "kip848", 400, true)
	end := ends(acked)
	ctx := testCtx(t)
	// The last report and how its members differed from
	// ConsumerGroupDescribe's, logged if the test fails.
	var (
		rep    lagapi.GroupReport
		differ string
	)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("last report %+v; %s", rep, differ)
		}
	})

	// The group commits half of partitions 0 to 2 before any member
	// joins (a classic Empty group, which the first consumer-protocol
	// member makes a consumer-protocol group); 3 to 5 are never
	// committed. Members do not commit.
	const group = "kip848-group"
	commit := map[int32]int64{0: end[0] / 2, 1: end[1] / 2, 2: end[2] / 2}
	if r, err := c.admin().CommitOffsets(ctx, group, offsets("kip848", commit)); err != nil || r.Error() != nil {
		t.Fatalf("commit: %v %v", err, r.Error())
	}
	var committedLag, wantLag int64
	for p := range int32(6) {
		if at, ok := commit[p]; ok {
			committedLag += end[p] - at
			wantLag += end[p] - at
		} else {
			wantLag += end[p]
		}
	}

	l := newLedger()
	join := func(name string) {
		c.joinNextGen(l, name, group, kgo.CooperativeStickyBalancer(), kgo.ConsumeTopics("kip848"), kgo.DisableAutoCommit())
	}
	join("m0")
	join("m1")
	waitFor(t, 30*time.Second, func() bool { return l.balancedAmong("kip848", 6, "m0", "m1") }, "two members balanced")

	// Stable: each agent's report agrees with ConsumerGroupDescribe.
	for _, a := range []*agent.Agent{a0, a1} {
		base := httpAPI(t, a)
		var d kmsg.ConsumerGroupDescribeResponseGroup
		waitFor(t, 10*time.Second, func() bool {
			d = describeConsumerGroup(t, c.client(), group)
			rep = getReport(t, base, group)
			differ = membersAgree(rep, d)
			return d.State == "Stable" && rep.State == "Stable" && differ == "" && rep.TotalLag == wantLag
		}, "the API reports the Stable group as ConsumerGroupDescribe does, with its lag")
		if rep.Type != "consumer" || rep.ProtocolType != "consumer" || rep.Epoch == nil || *rep.Epoch != d.Epoch ||
			rep.AssignmentEpoch == nil || *rep.AssignmentEpoch != d.AssignmentEpoch || rep.Assignor != "uniform" || len(rep.Members) != 2 {
			t.Fatalf("report %+v; described epoch %d/%d", rep, d.Epoch, d.AssignmentEpoch)
		}
		owners := map[int32]string{}
		for _, m := range rep.Members {
			if *m.MemberEpoch != d.Epoch || m.ClientHost != "/127.0.0.1" || reportedAssignments(m.Assignments) != reportedAssignments(m.TargetAssignments) {
				t.Fatalf("member %+v in a Stable group at epoch %d", m, d.Epoch)
			}
			for _, tp := range m.Assignments {
				for _, p := range tp.Partitions {
					owners[p] = m.MemberID
				}
			}
		}
		if len(rep.Partitions) != 6 || len(owners) != 6 {
			t.Fatalf("partitions %+v, owners %v", rep.Partitions, owners)
		}
		for _, p := range rep.Partitions {
			at, committed := commit[p.Partition]
			want := end[p.Partition]
			if committed {
				want -= at
			}
			if p.Topic != "kip848" || p.MemberID != owners[p.Partition] || p.EndOffset != end[p.Partition] || p.Lag != want ||
				(p.CommittedOffset != nil) != committed || committed && *p.CommittedOffset != at {
				t.Fatalf("partition %+v: committed %d (%v) of %d, owner %s", p, at, committed, end[p.Partition], owners[p.Partition])
			}
		}

		var list struct {
			Groups []lagapi.GroupSummary `json:"groups"`
		}
		getJSON(t, base+"/v1/groups", &list)
		if len(list.Groups) != 1 || list.Groups[0].Type != "consumer" || list.Groups[0].State != "Stable" || list.Groups[0].Members != 2 || list.Groups[0].TotalLag != wantLag {
			t.Fatalf("list %+v", list.Groups)
		}
	}

	// The coordinator, and only it, exports the group's lag (committed
	// partitions only) and status.
	waitFor(t, 10*time.Second, func() bool {
		var totals, parts [2]float64
		for i, reg := range regs {
			totals[i] = gaugeWithLabels(reg, "floe_group_total_lag", map[string]string{"group": group})
			for p := range int32(6) {
				parts[i] += gaugeWithLabels(reg, "floe_group_lag", map[string]string{"group": group, "topic": "kip848", "partition": strconv.Itoa(int(p))})
			}
		}
		return totals[0]+totals[1] == float64(committedLag) && parts[0]+parts[1] == float64(committedLag) && (totals[0] == 0 || totals[1] == 0)
	}, "floe_group_total_lag and floe_group_lag from the coordinator add up to the committed partitions' lag")

	// Reconciling: m0 and m1 (3 partitions each) each give one up to m2,
	// and m0 holds on to its one. Owners are the members' current
	// assignments, as ConsumerGroupDescribe reports them: the partition
	// m0 is revoking is nobody's until m2 gets it.
	open := l.gate("m0")
	defer open()
	join("m2")
	waitFor(t, 30*time.Second, func() bool { return l.waiting("m0") && len(l.owned("kip848")["m2"]) > 0 }, "m0 is revoking and m2 owns m1's share")
	base := httpAPI(t, a1)
	owned := map[int32]string{}
	waitFor(t, 10*time.Second, func() bool {
		d := describeConsumerGroup(t, c.client(), group)
		rep = getReport(t, base, group)
		differ = membersAgree(rep, d)
		clear(owned)
		for _, m := range rep.Members {
			for _, tp := range m.Assignments {
				for _, p := range tp.Partitions {
					owned[p] = m.MemberID
				}
			}
		}
		return d.State == "Reconciling" && rep.State == "Reconciling" && differ == "" && len(rep.Members) == 3 && len(owned) == 5
	}, "the API reports the Reconciling group as ConsumerGroupDescribe does, the partition m0 revokes owned by nobody")
	var reported []int32
	for _, p := range rep.Partitions {
		reported = append(reported, p.Partition)
		if _, committed := commit[p.Partition]; p.MemberID != owned[p.Partition] || !committed && p.MemberID == "" {
			t.Fatalf("partition %+v, owned by %q", p, owned[p.Partition])
		}
	}
	for p := range int32(6) {
		_, committed := commit[p]
		_, isOwned := owned[p]
		if slices.Contains(reported, p) != (committed || isOwned) {
			t.Fatalf("partitions reported %v: partition %d committed %v, owned %v", reported, p, committed, isOwned)
		}
	}
	open()
	waitFor(t, 30*time.Second, func() bool { return l.balancedAmong("kip848", 6, "m0", "m1", "m2") }, "three members balanced")
	waitFor(t, 10*time.Second, func() bool {
		d := describeConsumerGroup(t, c.client(), group)
		rep = getReport(t, base, group)
		differ = membersAgree(rep, d)
		return d.State == "Stable" && rep.State == "Stable" && differ == "" && len(rep.Members) == 3
	}, "the group is Stable again in the API")
	if violations, lost := l.problems(); len(violations) > 0 || len(lost) > 0 {
		t.Fatalf("two owners: %v; partitions lost: %v", violations, lost)
	}
}

// A classic group's report says so and leaves out the consumer
// protocol's fields.
func TestGroupsAPIReportsClassicGroupType(t *testing.T) {
	c := newTestCluster(t)
	a := c.addAgent(fastGroups)
	createTopic(t, c, "classic-t", 1, nil)
	if r, err := c.admin().CommitOffsets(testCtx(t), "classic-g", offsets("classic-t", map[int32]int64{0: 0})); err != nil || r.Error() != nil {
		t.Fatalf("commit: %v %v", err, r.Error())
	}
	base := httpAPI(t, a)
	var raw map[string]any
	getJSON(t, base+"/v1/groups/classic-g", &raw)
	if raw["type"] != "classic" {
		t.Fatalf("type %v", raw["type"])
	}
	for _, k := range []string{"epoch", "assignment_epoch", "assignor"} {
		if _, ok := raw[k]; ok {
			t.Fatalf("a classic group's report has %q: %v", k, raw)
		}
	}
	var list struct {
		Groups []lagapi.GroupSummary `json:"groups"`
	}
	getJSON(t, base+"/v1/groups", &list)
	if len(list.Groups) != 1 || list.Groups[0].Type != "classic" {
		t.Fatalf("list %+v", list.Groups)
	}
}
