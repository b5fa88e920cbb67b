package main

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floe-io/floe/agent"
)

// joinConsumerProtocol starts a franz-go member of group speaking the
// consumer protocol (KIP-848) that consumes topic and never commits; the
// returned func (also run at cleanup) makes it leave.
func joinConsumerProtocol(t *testing.T, b, group, topic string) (leave func()) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b), kgo.ConsumerGroup(group), kgo.ServerSideBalancer(),
		kgo.Balancers(kgo.CooperativeStickyBalancer()), kgo.ConsumeTopics(topic), kgo.DisableAutoCommit(),
		kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			if cl.PollFetches(ctx).IsClientClosed() {
				return
			}
		}
	}()
	leave = sync.OnceFunc(func() {
		cancel()
		<-done
		cl.Close()
	})
	t.Cleanup(leave)
	return leave
}

// A consumer-protocol group through `floe group list`, `describe`, `lag`,
// `reset-offsets` and `delete`: its type, epochs, assignor, members with
// their epochs and current and target assignments, the owner of each
// partition and lag where it committed and where it did not; active, it
// is neither reset nor deleted, and once its members leave it is both.
func TestConsumerProtocolGroupDescribeListLagResetDelete(t *testing.T) {
	b := startTestAgent(t, func(cfg *agent.Config) {
		cfg.Groups.ConsumerHeartbeatInterval = 100 * time.Millisecond
	})
	mustRun(t, "", "topic", "create", "ng", "-p", "4", "-b", b)
	mustRun(t, strings.Join(keyedLines(60), "\n"), "produce", "ng", "-K", ":", "-q", "-b", b)
	ends := map[int32]int64{}
	for _, p := range decodeJSON[topicDescribeJSON](t, mustRun(t, "", "topic", "describe", "ng", "-o", "json", "-b", b).stdout).Topics[0].Partitions {
		ends[p.Partition] = *p.EndOffset
	}
	// The group commits partitions 0 and 1 before it has members (a
	// classic group with offsets, which the first consumer-protocol member
	// makes a consumer-protocol group), and a classic group commits too.
	reset(t, b, "ng-group", "--topic", "ng:0,1", "--to-offset", "2", "--execute")
	reset(t, b, "old-group", "--topic", "ng", "--to-latest", "--execute")
	commit := map[int32]int64{0: min(2, ends[0]), 1: min(2, ends[1])}
	var wantLag int64
	for p, end := range ends {
		wantLag += end - commit[p]
	}

	leave1 := joinConsumerProtocol(t, b, "ng-group", "ng")
	leave2 := joinConsumerProtocol(t, b, "ng-group", "ng")
	var g groupReport
	deadline := time.Now().Add(30 * time.Second)
	for {
		d := decodeJSON[groupDescribeJSON](t, runCLI(t, "", "group", "describe", "ng-group", "-o", "json", "-b", b).stdout)
		if len(d.Groups) == 1 {
			g = d.Groups[0]
		}
		assigned := 0
		for _, m := range g.Members {
			for _, a := range m.Assignments {
				assigned += len(a.Partitions)
			}
		}
		if g.Type == "consumer" && g.State == "Stable" && len(g.Members) == 2 && assigned == 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the group never became a Stable consumer-protocol group of two members owning the topic: %+v", g)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if g.ProtocolType != "consumer" || g.Protocol != "" || g.Epoch == nil || g.AssignmentEpoch == nil || *g.AssignmentEpoch != *g.Epoch || g.Assignor != "uniform" ||
		g.TotalLag != wantLag || len(g.Partitions) != 4 || len(g.Topics) != 1 || g.Topics[0].Lag != wantLag {
		t.Fatalf("described %+v; want lag %d", g, wantLag)
	}
	owner := map[int32]string{}
	for _, m := range g.Members {
		if m.MemberEpoch == nil || *m.MemberEpoch != *g.Epoch || len(m.Assignments) != 1 || m.Assignments[0].Topic != "ng" ||
			len(m.TargetAssignments) != 1 || fmt.Sprint(m.TargetAssignments) != fmt.Sprint(m.Assignments) {
			t.Fatalf("member %+v of a Stable group at epoch %d", m, *g.Epoch)
		}
		for _, p := range m.Assignments[0].Partitions {
			owner[p] = m.MemberID
		}
	}
	for _, p := range g.Partitions {
		at, committed := commit[p.Partition]
		if p.Topic != "ng" || p.MemberID == "" || p.MemberID != owner[p.Partition] || *p.EndOffset != ends[p.Partition] ||
			*p.Lag != ends[p.Partition]-at || (p.CommittedOffset != nil) != committed || committed && *p.CommittedOffset != at {
			t.Errorf("partition %+v: committed %d (%v) of %d, owner %s", p, at, committed, ends[p.Partition], owner[p.Partition])
		}
	}

	r := mustRun(t, "", "group", "describe", "ng-group", "-b", b)
	for _, want := range []string{
		"Type: consumer   State: Stable   Protocol: consumer   Members: 2",
		fmt.Sprintf("Epoch: %d   Assignment epoch: %d   Assignor: uniform", *g.Epoch, *g.Epoch),
		fmt.Sprintf("Lag: %d total", wantLag),
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("describe lacks %q:\n%s", want, r.stdout)
		}
	}
	for _, m := range g.Members {
		row := regexp.MustCompile(regexp.QuoteMeta(m.MemberID) + `\s+\S+\s+\S+\s+` + fmt.Sprint(*g.Epoch) + `\s+ng:[0-9,]+\s+ng:[0-9,]+\n`)
		if !regexp.MustCompile(`MEMBER\s+CLIENT-ID\s+HOST\s+EPOCH\s+ASSIGNMENT\s+TARGET\n`).MatchString(r.stdout) || !row.MatchString(r.stdout) {
			t.Errorf("describe's member table lacks %s with its epoch, assignment and target:\n%s", m.MemberID, r.stdout)
		}
	}
	if r := mustRun(t, "", "group", "describe", "old-group", "-b", b); !strings.Contains(r.stdout, "Type: classic   State: Empty") || strings.Contains(r.stdout, "Epoch:") {
		t.Errorf("describe of a classic group:\n%s", r.stdout)
	}

	// floe lag, of the group and of all groups.
	if l := lagOf(t, b, "ng-group"); len(l.Groups) != 1 || l.TotalLag != wantLag || l.Groups[0].Type != "consumer" {
		t.Errorf("lag of the group %+v", l)
	}
	all := decodeJSON[lagSnapshot](t, mustRun(t, "", "lag", "-o", "json", "-b", b).stdout)
	if len(all.Groups) != 2 || all.Groups[0].Group != "ng-group" || all.Groups[0].TotalLag != wantLag || all.Groups[1].Group != "old-group" ||
		all.Groups[1].Type != "classic" || all.Groups[1].TotalLag != 0 || all.TotalLag != wantLag {
		t.Errorf("lag of all groups %+v", all)
	}

	// floe group list.
	list := decodeJSON[groupListJSON](t, mustRun(t, "", "group", "list", "-o", "json", "-b", b).stdout)
	if len(list.Groups) != 2 {
		t.Fatalf("group list %+v", list)
	}
	if ng, old := list.Groups[0], list.Groups[1]; ng.Type != "consumer" || ng.State != "Stable" || ng.Members != 2 || ng.Assignor != "uniform" || ng.ProtocolType != "consumer" ||
		old.Type != "classic" || old.State != "Empty" || old.Assignor != "" {
		t.Errorf("group list %+v", list)
	}
	r = mustRun(t, "", "group", "list", "-b", b)
	if !regexp.MustCompile(`GROUP\s+STATE\s+MEMBERS\s+PROTOCOL\s+TYPE\n`).MatchString(r.stdout) ||
		!regexp.MustCompile(`ng-group\s+Stable\s+2\s+consumer/uniform\s+consumer\n`).MatchString(r.stdout) ||
		!regexp.MustCompile(`old-group\s+Empty\s+0\s+-\s+classic\n`).MatchString(r.stdout) {
		t.Errorf("group list table:\n%s", r.stdout)
	}

	// Active: not reset, not deleted.
	wantFail(t, 1, `group "ng-group" is active (Stable, 2 members): stop its consumers first`, "", "group", "reset-offsets", "ng-group", "--topic", "ng", "--to-earliest", "--execute", "-b", b)
	wantFail(t, 1, `group "ng-group" has active members: stop its consumers first`, "", "group", "delete", "ng-group", "-y", "-b", b)
	if l := lagOf(t, b, "ng-group"); l.TotalLag != wantLag {
		t.Fatalf("a refused reset moved offsets: %+v", l)
	}

	// Once its members leave, the group is Empty and still a
	// consumer-protocol group: reset and deleted.
	leave1()
	leave2()
	deadline = time.Now().Add(20 * time.Second)
	for {
		d := decodeJSON[groupDescribeJSON](t, mustRun(t, "", "group", "describe", "ng-group", "-o", "json", "-b", b).stdout)
		if g = d.Groups[0]; g.State == "Empty" && len(g.Members) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the members never left: %+v", g)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if g.Type != "consumer" || g.TotalLag != wantLag {
		t.Errorf("empty group %+v", g)
	}
	reset(t, b, "ng-group", "--topic", "ng", "--to-latest", "--execute")
	if l := lagOf(t, b, "ng-group"); l.TotalLag != 0 || len(l.Groups[0].Partitions) != 4 {
		t.Errorf("after resetting the empty group to the end: %+v", l)
	}
	mustRun(t, "", "group", "delete", "ng-group", "-y", "-b", b)
	wantFail(t, 1, `group "ng-group" does not exist`, "", "group", "describe", "ng-group", "-b", b)
	wantFail(t, 1, `group "ng-group" does not exist`, "", "lag", "ng-group", "-b", b)
}
