package agent_test

import (
	"bytes"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floe-io/floe/agent"
)

// Large produce requests are read into pooled buffers, which are used
// again once the flush holding their batches is committed. Records of
// requests read into reused buffers must come back exactly as sent:
// those acknowledged (acks=all) and those not (acks=0, whose buffers are
// never reused, since nothing tells when their flush is written). Every
// buffer handed out is accounted for once the requests are answered.
func TestProduceBodiesAreReusedWithoutTouchingRecords(t *testing.T) {
	c := newTestCluster(t)
	reg := prometheus.NewRegistry()
	c.registry = reg
	c.addAgent(func(cfg *agent.Config) {
		cfg.Writer.FlushInterval = 30 * time.Millisecond
	})
	createTopic(t, c, "bodies", 8, nil)

	// Each client sends a wave of records as one request of half a MiB
	// (past the 64 KiB read before a body's buffer is taken), four
	// clients at once, wave after wave: later requests are read into the
	// buffers of earlier ones.
	const clients, waves, perWave, size = 4, 6, 128, 4 << 10
	value := func(cl, wave, i int) []byte {
		v := bytes.Repeat([]byte{byte(cl*31 + wave*7 + i)}, size)
		copy(v, fmt.Sprintf("%d/%d/%d/", cl, wave, i))
		return v
	}
	want := map[string]bool{}
	var wg sync.WaitGroup
	for ci := range clients {
		opts := []kgo.Opt{kgo.ProducerLinger(time.Second), kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.ProducerBatchMaxBytes(1 << 20), kgo.RecordPartitioner(kgo.RoundRobinPartitioner())}
		if ci == clients-1 {
			opts = append(opts, kgo.RequiredAcks(kgo.NoAck()), kgo.DisableIdempotentWrite())
		}
		cl := c.client(opts...)
		for w := range waves {
			for i := range perWave {
				want[string(value(ci, w, i))] = true
			}
		}
		wg.Go(func() {
			for w := range waves {
				for i := range perWave {
					cl.Produce(testCtx(t), &kgo.Record{Topic: "bodies", Value: value(ci, w, i)}, func(_ *kgo.Record, err error) {
						if err != nil {
							t.Errorf("client %d: %v", ci, err)
						}
					})
				}
				if err := cl.Flush(testCtx(t)); err != nil {
					t.Errorf("client %d: %v", ci, err)
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	got := consumeAll(t, c, "bodies", len(want))
	n := 0
	for p, recs := range got {
		for _, r := range recs {
			if !want[string(r.Value)] {
				t.Fatalf("partition %d offset %d: a record no client sent (%d bytes, starting %q)", p, r.Offset, len(r.Value), r.Value[:min(len(r.Value), 16)])
			}
			delete(want, string(r.Value))
			n++
		}
	}
	if len(want) > 0 {
		t.Fatalf("%d records never read back (%d read)", len(want), n)
	}
	if idle := gaugeValue(t, reg, "floe_agent_request_buffers_idle_bytes"); idle == 0 {
		t.Fatal("no request buffer was given back for reuse")
	}
	// acks=0 requests settle as soon as they are read, the others once
	// answered: nothing stays counted in use.
	deadline := time.Now().Add(10 * time.Second)
	for gaugeValue(t, reg, "floe_agent_request_buffers_used_bytes") != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%v bytes of request buffers still counted in use", gaugeValue(t, reg, "floe_agent_request_buffers_used_bytes"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}
