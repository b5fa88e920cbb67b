package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/lagapi"
)

type groupDescribeJSON struct {
	Groups []groupReport `json:"groups"`
}

type groupListJSON struct {
	Groups []groupSummary `json:"groups"`
}

func lagOf(t *testing.T, b, group string) lagSnapshot {
	t.Helper()
	return decodeJSON[lagSnapshot](t, mustRun(t, "", "lag", group, "-o", "json", "-b", b).stdout)
}

// committedOf returns the group's committed offsets by partition of topic.
func committedOf(t *testing.T, b, group, topic string) map[int32]int64 {
	t.Helper()
	out := map[int32]int64{}
	for _, g := range lagOf(t, b, group).Groups {
		for _, p := range g.Partitions {
			if p.Topic == topic && p.CommittedOffset != nil {
				out[p.Partition] = *p.CommittedOffset
			}
		}
	}
	return out
}

func reset(t *testing.T, b, group string, args ...string) resetPlan {
	t.Helper()
	r := mustRun(t, "", append([]string{"group", "reset-offsets", group, "-o", "json", "-b", b}, args...)...)
	return decodeJSON[resetPlan](t, r.stdout)
}

func TestGroupConsumeDescribeLagAndReset(t *testing.T) {
	b := startTestAgent(t, nil)
	mustRun(t, "", "topic", "create", "events", "-p", "3", "-b", b)
	mustRun(t, strings.Join(keyedLines(60), "\n"), "produce", "events", "-K", ":", "-q", "-b", b)
	ends := map[int32]int64{}
	for _, p := range decodeJSON[topicDescribeJSON](t, mustRun(t, "", "topic", "describe", "events", "-o", "json", "-b", b).stdout).Topics[0].Partitions {
		ends[p.Partition] = *p.EndOffset
	}

	// Consume 25 as a group: exactly those are committed, lag is the rest.
	r := mustRun(t, "", "consume", "events", "--group", "g", "--from-beginning", "-n", "25", "--format", "%p/%o", "-b", b)
	first := nonEmptyLines(r.stdout)
	if len(first) != 25 {
		t.Fatalf("consumed %d records, want 25", len(first))
	}
	printed := map[int32]int64{}
	for _, l := range first {
		var p int32
		var o int64
		fmt.Sscanf(l, "%d/%d", &p, &o)
		printed[p]++
	}
	lag := lagOf(t, b, "g")
	if lag.TotalLag != 35 || len(lag.Groups) != 1 {
		t.Fatalf("lag after consuming 25 of 60: %+v", lag)
	}
	g := lag.Groups[0]
	if g.Group != "g" || g.State != "Empty" || g.TotalLag != 35 || len(g.Partitions) != 3 || len(g.Topics) != 1 || g.Topics[0].Lag != 35 {
		t.Fatalf("group lag %+v", g)
	}
	var maxLag int64
	for _, p := range g.Partitions {
		// Every partition it was assigned has a commit: after what it
		// printed there, or where it started.
		if p.CommittedOffset == nil || *p.CommittedOffset != printed[p.Partition] || *p.EndOffset != ends[p.Partition] || *p.Lag != ends[p.Partition]-printed[p.Partition] || p.MemberID != "" {
			t.Errorf("partition %+v: printed %d of %d", p, printed[p.Partition], ends[p.Partition])
		}
		maxLag = max(maxLag, *p.Lag)
	}
	if g.MaxLag != maxLag {
		t.Errorf("max lag %d, want %d", g.MaxLag, maxLag)
	}
	desc := decodeJSON[groupDescribeJSON](t, mustRun(t, "", "group", "describe", "g", "-o", "json", "-b", b).stdout)
	if len(desc.Groups) != 1 || desc.Groups[0].TotalLag != 35 || desc.Groups[0].ProtocolType != "consumer" || len(desc.Groups[0].Members) != 0 {
		t.Errorf("describe json %+v", desc)
	}
	r = mustRun(t, "", "group", "describe", "g", "-b", b)
	for _, want := range []string{"Group: g", "State: Empty", "Lag: 35 total", "TOPIC   PARTITION  COMMITTED  END  LAG  MEMBER"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("describe table lacks %q:\n%s", want, r.stdout)
		}
	}
	r = mustRun(t, "", "lag", "-b", b)
	if !strings.Contains(r.stdout, "GROUP  STATE  TOPIC    PARTITION  COMMITTED  END  LAG") || !strings.Contains(r.stdout, "(total)") || !strings.HasSuffix(strings.TrimSpace(r.stdout), " 35") {
		t.Errorf("lag table:\n%s", r.stdout)
	}
	list := decodeJSON[groupListJSON](t, mustRun(t, "", "group", "list", "-o", "json", "-b", b).stdout)
	if len(list.Groups) != 1 || list.Groups[0].Group != "g" || list.Groups[0].State != "Empty" || list.Groups[0].Members != 0 {
		t.Errorf("group list %+v", list)
	}
	if r := mustRun(t, "", "group", "list", "-b", b); !strings.Contains(r.stdout, "g      Empty  0        consumer") {
		t.Errorf("group list table:\n%s", r.stdout)
	}

	// The group continues where it committed: the other 35, no repeats.
	r = mustRun(t, "", "consume", "events", "-g", "g", "-e", "--format", "%p/%o", "-b", b)
	rest := nonEmptyLines(r.stdout)
	seen := map[string]bool{}
	for _, l := range append(first, rest...) {
		if seen[l] {
			t.Errorf("record %s consumed twice", l)
		}
		seen[l] = true
	}
	if len(rest) != 35 || len(seen) != 60 {
		t.Fatalf("second consume: %d records, %d distinct in all", len(rest), len(seen))
	}
	if l := lagOf(t, b, "g"); l.TotalLag != 0 {
		t.Fatalf("lag after consuming everything: %+v", l)
	}

	// reset-offsets: a dry run changes nothing; --execute does.
	plan := reset(t, b, "g", "--topic", "events", "--to-earliest")
	if plan.Executed || len(plan.Partitions) != 3 {
		t.Fatalf("dry run %+v", plan)
	}
	for _, p := range plan.Partitions {
		if *p.CurrentOffset != ends[p.Partition] || p.NewOffset != 0 || p.StartOffset != 0 || p.EndOffset != ends[p.Partition] {
			t.Errorf("planned %+v", p)
		}
	}
	if l := lagOf(t, b, "g"); l.TotalLag != 0 {
		t.Fatalf("a dry run moved offsets: %+v", l)
	}
	t.Setenv("FLOE_EXECUTE", "true") // never read from the environment
	r = mustRun(t, "", "group", "reset-offsets", "g", "--topic", "events", "--to-earliest", "-b", b)
	if !strings.Contains(r.stdout, "TOPIC   PARTITION  CURRENT  NEW  START  END") || !strings.Contains(r.stderr, "dry run: nothing changed") {
		t.Errorf("dry run table: %v", r)
	}
	if l := lagOf(t, b, "g"); l.TotalLag != 0 {
		t.Fatalf("FLOE_EXECUTE executed: %+v", l)
	}
	plan = reset(t, b, "g", "--topic", "events", "--to-earliest", "--execute")
	if !plan.Executed {
		t.Errorf("not executed: %+v", plan)
	}
	if l := lagOf(t, b, "g"); l.TotalLag != 60 {
		t.Fatalf("after --to-earliest: %+v", l)
	}
	reset(t, b, "g", "--topic", "events", "--shift-by", "5", "--execute")
	for p, c := range committedOf(t, b, "g", "events") {
		if c != min(5, ends[p]) {
			t.Errorf("after --shift-by 5: partition %d at %d", p, c)
		}
	}
	reset(t, b, "g", "--topic", "events:0,2", "--shift-by", "-3", "--execute")
	got := committedOf(t, b, "g", "events")
	if got[0] != max(min(5, ends[0])-3, 0) || got[1] != min(5, ends[1]) || got[2] != max(min(5, ends[2])-3, 0) {
		t.Errorf("after --shift-by -3 on partitions 0 and 2: %v", got)
	}
	reset(t, b, "g", "--all-topics", "--to-latest", "--execute")
	if l := lagOf(t, b, "g"); l.TotalLag != 0 {
		t.Fatalf("after --to-latest: %+v", l)
	}
	reset(t, b, "g", "--topic", "events:1", "--to-offset", "1", "--execute")
	if c := committedOf(t, b, "g", "events"); c[1] != min(1, ends[1]) || c[0] != ends[0] {
		t.Errorf("after --to-offset 1 on partition 1: %v", c)
	}
	reset(t, b, "g", "--topic", "events", "--shift-by", "-1000", "--execute")
	if l := lagOf(t, b, "g"); l.TotalLag != 60 {
		t.Errorf("--shift-by -1000 should clamp at the start: %+v", l)
	}
	wantFail(t, 1, "no committed offset to shift", "", "group", "reset-offsets", "new", "--topic", "events", "--shift-by", "1", "-b", b)
	wantFail(t, 1, `topic "nope" does not exist`, "", "group", "reset-offsets", "g", "--topic", "nope", "--to-earliest", "-b", b)
	wantFail(t, 1, "partition 7 does not exist", "", "group", "reset-offsets", "g", "--topic", "events:7", "--to-earliest", "-b", b)
	wantFail(t, 1, "has no committed offsets", "", "group", "reset-offsets", "new", "--all-topics", "--to-earliest", "-b", b)
	// A group that does not exist yet gets its first offsets.
	reset(t, b, "new", "--topic", "events", "--to-latest", "--execute")
	if l := lagOf(t, b, "new"); l.TotalLag != 0 || len(l.Groups[0].Partitions) != 3 {
		t.Errorf("new group: %+v", l)
	}

	// Groups with members are not reset or deleted.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan cliResult, 1)
	liveOut := &syncBuffer{}
	go func() {
		done <- runCommand(ctx, t, newConsumeCmd(), "", liveOut, "events", "--group", "live", "--from-beginning", "-b", b)
	}()
	deadline := time.Now().Add(20 * time.Second)
	for {
		// Until it joins, the group does not exist (exit 1).
		d := decodeJSON[groupDescribeJSON](t, runCLI(t, "", "group", "describe", "live", "-o", "json", "-b", b).stdout)
		if len(d.Groups) == 1 && d.Groups[0].State == "Stable" && len(d.Groups[0].Members) == 1 && len(d.Groups[0].Members[0].Assignments) == 1 &&
			len(d.Groups[0].Members[0].Assignments[0].Partitions) == 3 && d.Groups[0].Partitions[0].MemberID == d.Groups[0].Members[0].MemberID {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the live consumer never owned the topic: %+v", d)
		}
		time.Sleep(50 * time.Millisecond)
	}
	r = mustRun(t, "", "group", "describe", "live", "-b", b)
	if !strings.Contains(r.stdout, "State: Stable") || !strings.Contains(r.stdout, "events:0,1,2") || !strings.Contains(r.stdout, "floe-cli") {
		t.Errorf("describe of a live group:\n%s", r.stdout)
	}
	wantFail(t, 1, `group "live" is active (Stable, 1 member): stop its consumers first`, "", "group", "reset-offsets", "live", "--topic", "events", "--to-earliest", "-b", b)
	wantFail(t, 1, `group "live" has active members: stop its consumers first`, "", "group", "delete", "live", "-b", b)
	// It stops once it has printed all 60 records, so what it commits on
	// the way out leaves no lag.
	printedBy := time.Now().Add(20 * time.Second)
	for len(nonEmptyLines(liveOut.String())) < 60 {
		if time.Now().After(printedBy) {
			t.Fatalf("the live consumer printed %d of 60 records", len(nonEmptyLines(liveOut.String())))
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if r := <-done; r.code != 0 {
		t.Fatalf("live consumer: %v", r)
	}
	// On exit it committed everything it printed and left.
	if l := lagOf(t, b, "live"); l.TotalLag != 0 || l.Groups[0].State != "Empty" {
		t.Errorf("live group after its consumer stopped: %+v", l)
	}

	// delete
	r = mustRun(t, "", "group", "delete", "live", "g", "-b", b)
	if r.stdout != "deleted group live\ndeleted group g\n" {
		t.Errorf("delete output %q", r.stdout)
	}
	wantFail(t, 1, `group "g" does not exist (list groups with `+"`floe group list`)", "", "group", "describe", "g", "-b", b)
	wantFail(t, 1, `group "g" does not exist`, "", "group", "delete", "g", "-b", b)
	wantFail(t, 1, `group "g" does not exist`, "", "lag", "g", "-b", b)
	r = wantFail(t, 1, "2 of 2 groups failed", "", "group", "delete", "g", "nope", "-o", "json", "-b", b)
	if !strings.Contains(r.stderr, `floe: group "g" does not exist`) ||
		!strings.Contains(r.stdout, `"group": "g",`+"\n"+`      "error": "group \"g\" does not exist`) || !strings.Contains(r.stdout, `"group": "nope",`) {
		t.Errorf("delete json of groups that do not exist: %v", r)
	}
	r = mustRun(t, "", "group", "delete", "new", "-o", "json", "-y", "-b", b)
	if !strings.Contains(r.stdout, `"group": "new"`) {
		t.Errorf("delete json %q", r.stdout)
	}
	if r := mustRun(t, "", "lag", "-b", b); r.stdout != "no consumer groups\n" {
		t.Errorf("lag of no groups: %q", r.stdout)
	}
}

func TestResetToDatetime(t *testing.T) {
	b := startTestAgent(t, nil)
	mustRun(t, "", "topic", "create", "timed", "-b", b)
	mustRun(t, "a1\na2\na3\na4\na5\n", "produce", "timed", "-q", "-b", b)
	time.Sleep(50 * time.Millisecond)
	between := time.Now().UTC()
	time.Sleep(50 * time.Millisecond)
	mustRun(t, "b1\nb2\nb3\nb4\nb5\nb6\nb7\n", "produce", "timed", "-q", "-b", b)

	plan := reset(t, b, "tg", "--topic", "timed", "--to-datetime", between.Format(time.RFC3339Nano), "--execute")
	if len(plan.Partitions) != 1 || plan.Partitions[0].NewOffset != 5 || plan.Partitions[0].CurrentOffset != nil {
		t.Fatalf("to-datetime between the batches: %+v", plan)
	}
	if l := lagOf(t, b, "tg"); l.TotalLag != 7 {
		t.Errorf("lag after to-datetime: %+v", l)
	}
	r := mustRun(t, "", "consume", "timed", "-g", "tg", "-e", "-b", b)
	if r.stdout != "b1\nb2\nb3\nb4\nb5\nb6\nb7\n" {
		t.Errorf("consumed after to-datetime: %q", r.stdout)
	}
	plan = reset(t, b, "tg", "--topic", "timed", "--to-datetime", "2000-01-01T00:00:00Z")
	if p := plan.Partitions[0]; p.NewOffset != 0 || *p.CurrentOffset != 12 {
		t.Errorf("to-datetime before everything: %+v", p)
	}
	plan = reset(t, b, "tg", "--topic", "timed", "--to-datetime", time.Now().Add(time.Hour).Format(time.RFC3339))
	if p := plan.Partitions[0]; p.NewOffset != 12 {
		t.Errorf("to-datetime after everything: %+v", p)
	}

	// Many partitions are committed in batches.
	saved := resetCommitBatch
	t.Cleanup(func() { resetCommitBatch = saved })
	resetCommitBatch = 2
	mustRun(t, "", "topic", "create", "wide", "-p", "5", "-b", b)
	mustRun(t, strings.Join(keyedLines(50), "\n"), "produce", "wide", "-K", ":", "-q", "-b", b)
	plan = reset(t, b, "wide-group", "--topic", "wide", "--to-latest", "--execute")
	if len(plan.Partitions) != 5 {
		t.Fatalf("wide plan %+v", plan)
	}
	if c := committedOf(t, b, "wide-group", "wide"); len(c) != 5 {
		t.Errorf("committed %v, want all 5 partitions", c)
	}
	if l := lagOf(t, b, "wide-group"); l.TotalLag != 0 {
		t.Errorf("wide lag %+v", l)
	}
}

// The JSON of a group report has exactly the fields the help of `floe
// group describe` and `floe lag` lists (groupReportFields), in that
// order, including the members' fields, which come from lagapi; those
// only a consumer-protocol group has are set here.
func TestGroupReportFieldsDocumented(t *testing.T) {
	id := "i"
	epoch := int32(1)
	r := groupReport{
		Epoch: &epoch, AssignmentEpoch: &epoch, Assignor: "uniform",
		Members: []lagapi.MemberReport{{InstanceID: &id, MemberEpoch: &epoch,
			Assignments: []lagapi.TopicPartitions{{Partitions: []int32{0}}}, TargetAssignments: []lagapi.TopicPartitions{{Partitions: []int32{0}}}}},
		Partitions: []partitionLag{{Error: "e"}},
		Topics:     []topicLag{{}},
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	if err := jsonKeys(json.NewDecoder(bytes.NewReader(b)), &got); err != nil {
		t.Fatal(err)
	}
	want := regexp.MustCompile(`"([a-z_]+)"`).FindAllStringSubmatch(groupReportFields, -1)
	var wantKeys []string
	for _, m := range want {
		wantKeys = append(wantKeys, m[1])
	}
	if strings.Join(got, ",") != strings.Join(wantKeys, ",") {
		t.Errorf("group report JSON fields\n got %v\nwant %v (groupReportFields)", got, wantKeys)
	}
}

// jsonKeys reads one JSON value from dec and appends the keys of its
// objects to keys, in document order.
func jsonKeys(dec *json.Decoder, keys *[]string) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return nil
	}
	for dec.More() {
		if d == '{' {
			k, err := dec.Token()
			if err != nil {
				return err
			}
			*keys = append(*keys, k.(string))
		}
		if err := jsonKeys(dec, keys); err != nil {
			return err
		}
	}
	_, err = dec.Token() // the closing delimiter
	return err
}
