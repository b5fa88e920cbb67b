package agent_test

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/floe-io/floe/agent"
	"github.com/floe-io/floe/segments"
)

// gatedBucket holds every Put until the gate opens, like an object store
// far slower than the producers.
type gatedBucket struct {
	segments.Bucket
	gate chan struct{}
}

func (g *gatedBucket) Put(ctx context.Context, key string, data []byte) error {
	select {
	case <-g.gate:
	case <-ctx.Done():
		return ctx.Err()
	}
	return g.Bucket.Put(ctx, key, data)
}

func TestSlowStoreSlowsProducersWithoutLosingData(t *testing.T) {
	c := newTestCluster(t)
	gated := &gatedBucket{Bucket: c.bucket, gate: make(chan struct{})}
	c.bucket = gated
	reg := prometheus.NewRegistry()
	c.registry = reg
	const maxBuffer = 256 << 10
	a := c.addAgent(func(cfg *agent.Config) {
		cfg.Writer.FlushInterval = 10 * time.Millisecond
		cfg.Writer.SegmentTargetBytes = 32 << 10
		cfg.Writer.MaxBufferBytes = maxBuffer
		cfg.Writer.UploadTimeout = time.Minute
	})
	createTopic(t, c, "slow", 8, nil)

	// 64 producers, each with one 8 KiB batch in flight at a time: four
	// times the agent's buffer wants in at once.
	const producers, perProducer = 64, 4
	value := strings.Repeat("v", 8<<10)
	var (
		acked atomic.Int64
		wg    sync.WaitGroup
	)
	for p := range producers {
		cl := c.clientAt(a.Addr())
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range perProducer {
				r := produceRaw(t, cl, "slow", int32(p%8), recordBatch(-1, -1, -1, value))
				if r.ErrorCode != 0 {
					t.Errorf("producer %d: error code %d", p, r.ErrorCode)
					return
				}
				acked.Add(1)
			}
		}()
	}
	// With the store stalled nothing is acknowledged, and the agent holds
	// no more than its buffer: the other producers wait.
	deadline := time.Now().Add(10 * time.Second)
	var held float64
	for time.Now().Before(deadline) {
		held = gaugeValue(t, reg, "floe_produce_buffered_bytes")
		if held >= maxBuffer*3/4 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	held = gaugeValue(t, reg, "floe_produce_buffered_bytes")
	if a := acked.Load(); a != 0 {
		t.Fatalf("%d batches acknowledged while the object store accepted nothing", a)
	}
	if held > maxBuffer || held < maxBuffer*3/4 {
		t.Fatalf("agent holds %v bytes with a %d byte buffer and producers waiting", held, maxBuffer)
	}
	close(gated.gate)
	wg.Wait()
	if a := acked.Load(); a != producers*perProducer {
		t.Fatalf("%d of %d acknowledged", a, producers*perProducer)
	}
	got := consumeAll(t, c, "slow", producers*perProducer)
	total := 0
	for _, recs := range got {
		total += len(recs)
	}
	if total != producers*perProducer {
		t.Fatalf("read %d of %d", total, producers*perProducer)
	}
}

func gaugeValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) > 0 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

func TestShutdownAnswersAdmittedProduces(t *testing.T) {
	c := newTestCluster(t)
	a0 := c.addAgent(func(cfg *agent.Config) {
		// A long interval: only the drain's flush can answer in time.
		cfg.Writer.FlushInterval = time.Minute
	})
	createTopic(t, c, "drain", 1, nil)
	cl := c.clientAt(a0.Addr())
	done := make(chan int16, 1)
	go func() { done <- produceRaw(t, cl, "drain", 0, recordBatch(-1, -1, -1, "in flight")).ErrorCode }()
	time.Sleep(300 * time.Millisecond)
	sctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := a0.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
	if code := <-done; code != 0 {
		t.Fatalf("produce admitted before shutdown got error code %d", code)
	}
	c.agents = nil
	c.addAgent(nil)
	got := consumeAll(t, c, "drain", 1)
	if string(got[0][0].Value) != "in flight" {
		t.Fatalf("read %q", got[0][0].Value)
	}
}
