package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floe-io/floe/internal/kafkaopt"
)

// producerBufferBytes bounds what each producer client holds unsent or
// unacknowledged. With four producers that is 64 MiB in flight, several
// segments' worth, enough to keep the agent's uploads busy without
// measuring mostly time spent queued in the client.
const producerBufferBytes = 32 << 20

// produceStats is what producers measured.
type produceStats struct {
	records  atomic.Int64
	bytes    atomic.Int64 // key + value bytes acknowledged
	errors   atomic.Int64
	firstErr atomic.Value // string
	latency  Histogram
	lastAck  atomic.Int64 // UnixNano of the last acknowledgement
}

func (s *produceStats) promise(r *kgo.Record, err error) {
	now := time.Now()
	if err != nil {
		if s.errors.Add(1) == 1 {
			s.firstErr.Store(err.Error())
		}
		return
	}
	s.latency.Record(now.Sub(r.Timestamp))
	s.records.Add(1)
	s.bytes.Add(int64(len(r.Key) + len(r.Value)))
	s.lastAck.Store(now.UnixNano())
}

func (s *produceStats) firstError() string {
	v, _ := s.firstErr.Load().(string)
	return v
}

// linger is the producers' linger: as configured, or about a quarter of
// the time a produce request waits (the agents' flush interval and some
// 40 ms to upload and commit). An idempotent client has at most five
// produce requests in flight per broker, and each waits for its flush:
// lingering that long spreads them over a flush instead of sending five
// in the first milliseconds and then holding records back until one
// returns, which costs up to one more flush of latency.
func (r *runner) linger() time.Duration {
	if r.cfg.Linger > 0 {
		return r.cfg.Linger
	}
	return (r.flush + 40*time.Millisecond) / 4
}

// producerClient is a producer of topic; base are its connection options
// (nil: the run's, named "producer").
func (r *runner) producerClient(topic string, base []kgo.Opt) (*kgo.Client, error) {
	codec, _ := kafkaopt.Compression(r.cfg.Compression)
	if base == nil {
		base = r.clientOpts("producer")
	}
	opts := append(base,
		kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()), // and idempotence, kgo's default
		kgo.ProducerBatchCompression(codec),
		kgo.ProducerLinger(r.linger()),
		kgo.MaxBufferedBytes(producerBufferBytes),
		kgo.RecordDeliveryTimeout(2*time.Minute),
	)
	return kgo.NewClient(opts...)
}

// produceMax produces as fast as the cluster accepts, until cfg.Bytes
// are acknowledged or cfg.Duration has passed.
func (r *runner) produceMax(ctx context.Context, topic string, prog *Phase) (*produceStats, time.Duration, error) {
	return r.produceAll(ctx, produceJob{topic: topic, producers: r.cfg.Producers, bytes: r.cfg.Bytes, keys: r.cfg.Keys, seed: 1}, prog)
}

// produceJob is producers writing a topic as fast as it takes them.
type produceJob struct {
	topic     string
	producers int
	bytes     int64  // stop once this many key and value bytes are sent
	keys      string // the key distribution: none, uniform or zipf
	seed      uint64 // producer i draws records seeded with seed+i
	// opts are producer i's connection options (nil: the run's).
	opts func(i int) []kgo.Opt
}

// produceAll runs a produce job until its bytes are acknowledged or
// cfg.Duration has passed.
func (r *runner) produceAll(ctx context.Context, job produceJob, prog *Phase) (*produceStats, time.Duration, error) {
	st := &produceStats{}
	var (
		enqueued atomic.Int64
		wg       sync.WaitGroup
		errs     = make(chan error, job.producers)
	)
	start := time.Now()
	deadline := start.Add(r.cfg.Duration)
	pctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	for i := range job.producers {
		var base []kgo.Opt
		if job.opts != nil {
			base = job.opts(i)
		}
		cl, err := r.producerClient(job.topic, base)
		if err != nil {
			cancel()
			wg.Wait()
			return nil, 0, err
		}
		g := r.work.genKeys(job.seed+uint64(i), job.keys)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer cl.Close()
			promise := func(rec *kgo.Record, err error) {
				if err != nil && (pctx.Err() != nil || errors.Is(err, kgo.ErrClientClosed)) {
					return // abandoned at the deadline: not a failure
				}
				st.promise(rec, err)
				if err == nil {
					prog.Add(int64(len(rec.Value) + len(rec.Key)))
				}
			}
			for pctx.Err() == nil {
				v := g.value()
				k := g.key()
				if enqueued.Add(int64(len(v)+len(k))) > job.bytes {
					break
				}
				rec := &kgo.Record{Key: k, Value: v, Timestamp: time.Now()}
				cl.Produce(pctx, rec, promise)
			}
			// Wait for what was sent; at the deadline, what is still
			// buffered is abandoned and not counted.
			if err := cl.Flush(pctx); err != nil && ctx.Err() == nil && pctx.Err() == nil {
				errs <- fmt.Errorf("flushing producer: %w", err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	if err := <-errs; err != nil {
		return nil, 0, err
	}
	elapsed := time.Since(start)
	if last := st.lastAck.Load(); last > 0 {
		elapsed = time.Unix(0, last).Sub(start)
	}
	return st, elapsed, nil
}

// producePaced produces rate records per second in total for d, each
// value stamped with its send time.
func (r *runner) producePaced(ctx context.Context, topic string, rate int, d time.Duration, prog *Phase) (*produceStats, error) {
	st := &produceStats{}
	var wg sync.WaitGroup
	start := time.Now()
	per := float64(rate) / float64(r.cfg.Producers)
	for i := range r.cfg.Producers {
		cl, err := r.producerClient(topic, nil)
		if err != nil {
			wg.Wait()
			return nil, err
		}
		g := r.work.gen(uint64(i) + 1000)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer cl.Close()
			tick := time.NewTicker(time.Millisecond)
			defer tick.Stop()
			var sent int64
			promise := func(rec *kgo.Record, err error) {
				st.promise(rec, err)
				if err == nil {
					prog.Add(1)
				}
			}
			for {
				select {
				case <-ctx.Done():
					return
				case now := <-tick.C:
					el := now.Sub(start)
					if el >= d {
						cl.Flush(ctx)
						return
					}
					due := int64(per*el.Seconds()) - sent
					for range due {
						now := time.Now()
						cl.Produce(ctx, &kgo.Record{Key: g.key(), Value: g.stampedValue(now), Timestamp: now}, promise)
						sent++
					}
				}
			}
		}()
	}
	wg.Wait()
	return st, ctx.Err()
}
