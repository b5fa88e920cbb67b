package agent_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// position is one record's place in the log.
type position struct {
	partition int32
	offset    int64
}

// received returns how many times the members together received each
// record of topic.
func received(topic string, members ...*consumer) map[position]int {
	seen := map[position]int{}
	for _, m := range members {
		m.mu.Lock()
		for _, r := range m.records {
			if r.Topic == topic {
				seen[position{r.Partition, r.Offset}]++
			}
		}
		m.mu.Unlock()
	}
	return seen
}

// committedTo reports whether group's committed offsets on topic equal
// ends (the next offset per partition).
func committedTo(ctx context.Context, adm *kadm.Client, group, topic string, ends map[int32]int64) bool {
	o, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return false
	}
	for p, end := range ends {
		if got, ok := o.Lookup(topic, p); !ok || got.At != end {
			return false
		}
	}
	return true
}

func ends(acked map[int32][]sent) map[int32]int64 {
	out := map[int32]int64{}
	for p, rs := range acked {
		out[p] = int64(len(rs))
	}
	return out
}

var fastCommits = kgo.AutoCommitInterval(100 * time.Millisecond)

func TestTwoGroupsConsumeTheSameTopicIndependently(t *testing.T) {
	c := newTestCluster(t)
	c.addAgent(fastGroups)
	createTopic(t, c, "events", 3, nil)
	ctx := testCtx(t)
	adm := c.admin()

	// Group b's members both hold partitions before any record exists, so
	// the first to join cannot have read everything alone.
	a := c.joinGroup("group-a", []string{"events"}, fastCommits)
	b1 := c.joinGroup("group-b", []string{"events"}, fastCommits)
	b2 := c.joinGroup("group-b", []string{"events"}, fastCommits)
	waitFor(t, 30*time.Second, func() bool {
		n1, n2 := len(b1.partitions("events")), len(b2.partitions("events"))
		return n1 > 0 && n2 > 0 && n1+n2 == 3
	}, "group b's two members share the partitions")
	const n = 3000
	acked := produceAll(t, c.client(), "events", n, true)
	waitFor(t, 30*time.Second, func() bool { return len(received("events", a)) == n }, "group a read every record")
	waitFor(t, 30*time.Second, func() bool { return len(received("events", b1, b2)) == n }, "group b read every record")
	waitFor(t, 10*time.Second, func() bool { return committedTo(ctx, adm, "group-a", "events", ends(acked)) }, "group a committed to the end")
	waitFor(t, 10*time.Second, func() bool { return committedTo(ctx, adm, "group-b", "events", ends(acked)) }, "group b committed to the end")
	if len(received("events", b1)) == 0 || len(received("events", b2)) == 0 {
		t.Fatal("one member of group b read nothing")
	}
	// Group b's members shared the work: no record went to both.
	for pos, times := range received("events", b1, b2) {
		if times != 1 {
			t.Fatalf("group b received %v %d times", pos, times)
		}
	}
}

func TestCoordinatorShutdownMidConsumptionLosesNoCommittedProgress(t *testing.T) {
	c := newTestCluster(t)
	agents := c.twoAgents()
	createTopic(t, c, "log", 4, nil)
	ctx := testCtx(t)
	adm := c.admin()
	producer := c.client()
	const half = 2000
	first := produceAll(t, producer, "log", half, false)

	m1 := c.joinGroup("g", []string{"log"}, fastCommits, kgo.SessionTimeout(2*time.Second))
	m2 := c.joinGroup("g", []string{"log"}, fastCommits, kgo.SessionTimeout(2*time.Second))
	waitFor(t, 30*time.Second, func() bool { return len(received("log", m1, m2)) == half }, "the first half was read")
	waitFor(t, 10*time.Second, func() bool { return committedTo(ctx, adm, "g", "log", ends(first)) }, "the first half was committed")

	survivor := shutDownCoordinator(t, adm, "g", agents)

	second := produceAll(t, producer, "log", half, false)
	total := map[int32]int64{}
	for p, e := range ends(first) {
		total[p] += e
	}
	for p, e := range ends(second) {
		total[p] += e
	}
	waitFor(t, 30*time.Second, func() bool { return len(received("log", m1, m2)) == 2*half }, "every record was read")
	// A fresh admin client: the old one has the dead agent cached as the
	// group's coordinator.
	adm = kadm.NewClient(c.clientAt(survivor.Addr()))
	waitFor(t, 10*time.Second, func() bool { return committedTo(ctx, adm, "g", "log", total) }, "everything was committed")
	// The group resumed from its committed offsets: nothing from before
	// the failover was read again.
	for pos, times := range received("log", m1, m2) {
		if pos.offset < ends(first)[pos.partition] && times != 1 {
			t.Fatalf("%v was read %d times", pos, times)
		}
	}
	t.Logf("read %s records across the failover", fmt.Sprint(len(received("log", m1, m2))))
}
