package bench

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/floe-io/floe/segments"
)

// StoreLimit is what the object store does on its own: PUTs or GETs of
// whole objects of the segment size, Concurrency at a time, as fast as
// it answers.
type StoreLimit struct {
	ObjectBytes int64              `json:"object_bytes"`
	Concurrency int                `json:"concurrency"`
	Requests    uint64             `json:"requests"`
	Seconds     float64            `json:"seconds"`
	MiBps       float64            `json:"mib_per_s"`
	Latency     Latency            `json:"latency"`
	CPU         map[string]float64 `json:"cpu_cores,omitempty"`
}

// EtcdLimit is etcd's latency for a transaction shaped like one flush's
// commit, run back to back.
type EtcdLimit struct {
	Compares int                `json:"compares"`
	Puts     int                `json:"puts"`
	TxnPerS  float64            `json:"txn_per_s"`
	Latency  Latency            `json:"latency"`
	CPU      map[string]float64 `json:"cpu_cores,omitempty"`
}

// Limits are the raw figures floe's are compared with.
type Limits struct {
	Put  *StoreLimit `json:"put,omitempty"`
	Get  *StoreLimit `json:"get,omitempty"`
	Etcd *EtcdLimit  `json:"etcd,omitempty"`
	// PageFault is the cost of the bench machine's page faults.
	PageFault *PageFaultLimit `json:"page_fault,omitempty"`
	// Missing says why a limit was not measured.
	Missing []string `json:"missing,omitempty"`
}

// measurePuts PUTs objects of size bytes, concurrency at a time, for d,
// and returns the keys written (for measureGets).
func measurePuts(ctx context.Context, b segments.Bucket, prefix string, size int64, concurrency int, d time.Duration, prog *Phase) (*StoreLimit, []string, error) {
	data := make([]byte, size)
	rand.Read(data)
	var (
		h    Histogram
		mu   sync.Mutex
		keys []string
		seq  atomic.Int64
		wg   sync.WaitGroup
		errs = make(chan error, concurrency)
	)
	start := time.Now()
	deadline := start.Add(d)
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) && ctx.Err() == nil {
				key := fmt.Sprintf("%sput-%06d.seg", prefix, seq.Add(1))
				t0 := time.Now()
				if err := b.Put(ctx, key, data); err != nil {
					errs <- fmt.Errorf("raw PUT %s: %w", key, err)
					return
				}
				h.Record(time.Since(t0))
				prog.Add(size)
				mu.Lock()
				keys = append(keys, key)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	if err := <-errs; err != nil {
		return nil, keys, err
	}
	if err := ctx.Err(); err != nil {
		return nil, keys, err
	}
	return &StoreLimit{
		ObjectBytes: size, Concurrency: concurrency, Requests: h.Count(), Seconds: elapsed.Seconds(),
		MiBps: mibps(int64(h.Count())*size, elapsed), Latency: h.Summary(),
	}, keys, nil
}

// measureGets reads whole objects among keys, concurrency at a time, for
// d. Every object is read before any is read twice.
func measureGets(ctx context.Context, b segments.BucketReader, keys []string, size int64, concurrency int, d time.Duration, prog *Phase) (*StoreLimit, error) {
	if len(keys) == 0 {
		return nil, fmt.Errorf("raw GET: no objects to read")
	}
	var (
		h     Histogram
		next  atomic.Int64
		bytes atomic.Int64
		wg    sync.WaitGroup
		errs  = make(chan error, concurrency)
	)
	start := time.Now()
	deadline := start.Add(d)
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 0, size)
			for time.Now().Before(deadline) && ctx.Err() == nil {
				key := keys[int(next.Add(1)-1)%len(keys)]
				t0 := time.Now()
				n, err := readAll(ctx, b, key, buf)
				if err != nil {
					errs <- fmt.Errorf("raw GET %s: %w", key, err)
					return
				}
				h.Record(time.Since(t0))
				bytes.Add(n)
				prog.Add(n)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	if err := <-errs; err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return &StoreLimit{
		ObjectBytes: size, Concurrency: concurrency, Requests: h.Count(), Seconds: elapsed.Seconds(),
		MiBps: mibps(bytes.Load(), elapsed), Latency: h.Summary(),
	}, nil
}

// readAll reads a whole object into buf's capacity, as a fetch reads an
// extent: one request, the body read to the end.
func readAll(ctx context.Context, b segments.BucketReader, key string, buf []byte) (int64, error) {
	rc, err := b.GetRange(ctx, key, 0, -1)
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	var n int64
	for {
		m, err := rc.Read(buf[:cap(buf)])
		n += int64(m)
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// measureEtcd runs transactions shaped like the commit of a flush that
// touches partitions partitions: one compare on a topic key and one per
// partition state, then per partition a put of its state and of a new
// index entry. They run one after another for d, as the agent's commits
// do.
func measureEtcd(ctx context.Context, cli *clientv3.Client, prefix string, partitions int, d time.Duration, prog *Phase) (*EtcdLimit, error) {
	topicKey := prefix + "topic"
	resp, err := cli.Put(ctx, topicKey, `{"v":1,"id":"00000000-0000-0000-0000-000000000000","partitions":16}`)
	if err != nil {
		return nil, fmt.Errorf("etcd: %w", err)
	}
	topicRev := resp.Header.Revision
	stateRev := make([]int64, partitions)
	state := `{"v":1,"next":%d,"start":0,"producers":{"1000":{"epoch":0,"batches":[{"first_seq":0,"last_seq":99,"base_offset":0}],"last_write":1700000000000}}}`
	entry := `{"o":"flush/ab/20240101T000000Z-0123456789abcdef.seg","off":%d,"len":524288,"first":%d,"last":%d,"batches":8,"min_ts":1700000000000,"max_ts":1700000000250,"committed":1700000000300}`
	var h Histogram
	start := time.Now()
	var next int64
	for time.Since(start) < d {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		cmps := []clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(topicKey), "=", topicRev)}
		var puts []clientv3.Op
		for p := range partitions {
			sk := fmt.Sprintf("%sstate/%010d", prefix, p)
			cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(sk), "=", stateRev[p]))
			puts = append(puts,
				clientv3.OpPut(sk, fmt.Sprintf(state, next+512)),
				clientv3.OpPut(fmt.Sprintf("%sindex/%010d/%020d", prefix, p, next), fmt.Sprintf(entry, p*524288, next, next+511)))
		}
		t0 := time.Now()
		tr, err := cli.Txn(ctx).If(cmps...).Then(puts...).Commit()
		if err != nil {
			return nil, fmt.Errorf("etcd transaction: %w", err)
		}
		h.Record(time.Since(t0))
		if !tr.Succeeded {
			return nil, fmt.Errorf("etcd transaction: a compare failed (is another writer using %s?)", prefix)
		}
		for p := range stateRev {
			stateRev[p] = tr.Header.Revision
		}
		next += 512
		prog.Add(1)
	}
	elapsed := time.Since(start)
	return &EtcdLimit{
		Compares: partitions + 1, Puts: 2 * partitions,
		TxnPerS: float64(h.Count()) / elapsed.Seconds(), Latency: h.Summary(),
	}, nil
}

func mibps(bytes int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(bytes) / (1 << 20) / d.Seconds()
}
