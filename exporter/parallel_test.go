package exporter

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Topics are exported side by side, up to Parallelism at once, each into
// its own table with all its rows.
func TestExportsTopicsSideBySide(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	adm := kadm.NewClient(e.client())
	const topics, perTopic = 3, 500
	cl := e.client()
	for i := range topics {
		name := fmt.Sprintf("side-%d", i)
		resp, err := adm.CreateTopic(ctx, 2, 1, map[string]*string{cfgEnabled: kadm.StringPtr("true")}, name)
		if err != nil || resp.Err != nil {
			t.Fatalf("creating %s: %v %v", name, err, resp.Err)
		}
		var rs []*kgo.Record
		for j := range perTopic {
			rs = append(rs, &kgo.Record{Topic: name, Key: fmt.Append(nil, j), Value: fmt.Appendf(nil, "%s-%d", name, j)})
		}
		if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}

	x, l := e.exporter(Config{Parallelism: topics})
	// Every topic's first commit waits for the others' before it is
	// recorded: a pass exporting one topic after another never gets
	// there.
	var (
		mu      sync.Mutex
		arrived = map[string]bool{}
		all     = make(chan struct{})
	)
	x.afterTableCommit = func(topic string) error {
		mu.Lock()
		if !arrived[topic] {
			arrived[topic] = true
			if len(arrived) == topics {
				close(all)
			}
		}
		mu.Unlock()
		select {
		case <-all:
			return nil
		case <-time.After(30 * time.Second):
			return fmt.Errorf("%s committed alone: the other topics were not being exported", topic)
		}
	}
	st, err := x.Pass(ctx, l.Fence(), true)
	if err != nil {
		t.Fatal(err)
	}
	if st.Commits != topics || st.Rows != topics*perTopic {
		t.Errorf("pass stats %+v, want %d commits of %d rows in all", st, topics, topics*perTopic)
	}
	for i := range topics {
		name := fmt.Sprintf("side-%d", i)
		rows, _ := e.readTable(e.loadTable(fmt.Sprintf("floe.side_%d", i)))
		seen := map[string]bool{}
		for _, r := range rows {
			seen[r.value] = true
		}
		if len(rows) != perTopic || len(seen) != perTopic || !seen[name+"-0"] || !seen[fmt.Sprintf("%s-%d", name, perTopic-1)] {
			t.Errorf("%s: %d rows, %d distinct, want %d of its own", name, len(rows), len(seen), perTopic)
		}
	}
}
