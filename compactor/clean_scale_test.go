package compactor_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floe-io/floe/compactor"
)

// TestCleaningThroughput cleans a changelog: keys distinct keys over 16
// partitions, each written twice with 100-byte values, with a key map
// that holds a FLOE_CLEANER_BENCH_ROUNDS-th (default 4) of a partition's
// keys, so every partition is cleaned in that many rounds. It checks that
// exactly the first write of every key went, and logs the stored MiB the
// rewrites read per second and per CPU second (the test process's CPU,
// agent included), the Go heap in use at most during the passes against
// the key map's size, and how long the pass took (the delay from a record
// becoming cleanable to its compaction is at most the pass interval plus
// that). keys is 8,000, 1,000,000 with FLOE_TEST_LONG=1, or
// FLOE_CLEANER_BENCH_KEYS:
//
//	FLOE_CLEANER_BENCH_KEYS=1000000 go test -run TestCleaningThroughput -v -timeout 1h ./compactor/
func TestCleaningThroughput(t *testing.T) {
	keys := 8_000
	if os.Getenv("FLOE_TEST_LONG") == "1" {
		keys = 1_000_000
	}
	if n, err := strconv.Atoi(os.Getenv("FLOE_CLEANER_BENCH_KEYS")); err == nil && n > 0 {
		keys = n
	}
	const partitions, valueSize = 16, 100
	e := newEnv(t)
	a := e.addAgentWith(agentDefaults())
	e.createTopic("changelog", partitions, map[string]string{"cleanup.policy": "compact"})
	prod := e.clientAt([]string{a.Addr()}, kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerBatchMaxBytes(1<<20), kgo.MaxBufferedRecords(100_000))

	// Two rounds over the keys, in a random order each, then a few
	// records so the rounds are below every shard's latest entry.
	rng := rand.New(rand.NewPCG(1, 2))
	var (
		wg      sync.WaitGroup
		errOnce sync.Once
		perr    error
		written int64
	)
	produce := func(k int) {
		v := make([]byte, valueSize)
		for i := range v {
			v[i] = byte('a' + rng.IntN(26))
		}
		written += int64(valueSize)
		wg.Add(1)
		prod.Produce(context.Background(), &kgo.Record{Topic: "changelog", Key: fmt.Appendf(nil, "key-%09d", k), Value: v}, func(_ *kgo.Record, err error) {
			defer wg.Done()
			if err != nil {
				errOnce.Do(func() { perr = err })
			}
		})
	}
	start := time.Now()
	for range 2 {
		for _, k := range rng.Perm(keys) {
			produce(k)
		}
	}
	wg.Wait()
	time.Sleep(time.Second)
	for k := range 64 {
		produce(k)
	}
	wg.Wait()
	if perr != nil {
		t.Fatal(perr)
	}
	t.Logf("produced %d records (%d MiB of values) in %v", 2*keys+64, written>>20, time.Since(start).Round(time.Millisecond))

	rounds, _ := strconv.Atoi(os.Getenv("FLOE_CLEANER_BENCH_ROUNDS"))
	if rounds <= 0 {
		rounds = 4
	}
	mapBytes := int64(keys/partitions/rounds+1) * 24 * 10 / 9
	c := e.newCompactor(compactor.Config{GCGrace: time.Minute, MergeSettle: time.Hour, KeyMapBytes: max(mapBytes, 1<<10)})

	var peak uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	cpu0 := cpuTime()
	var (
		passes          int
		took, firstPass time.Duration
		removed, read   int64
	)
	for passes < 20 {
		st, err := c.RunOnce(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		if st.CleanedPartitions == 0 {
			break
		}
		passes++
		took += st.Compacting
		removed += st.CleanerRecordsRemoved
		read += st.CleanerBytesRead
		if passes == 1 {
			firstPass = st.Duration
		}
	}
	cpu := cpuTime() - cpu0
	close(stop)
	<-sampled
	if removed != int64(keys) {
		t.Errorf("the cleaner removed %d records; the first writes of the %d keys are %d", removed, keys, keys)
	}
	if passes == 0 {
		t.Fatal("no pass cleaned anything")
	}
	mib := float64(read) / (1 << 20)
	t.Logf("cleaned in %d passes, %v compacting: read %.0f MiB (%.1f MiB/s, %.1f MiB per CPU second), removed %d records of %d",
		passes, took.Round(time.Millisecond), mib, mib/took.Seconds(), mib/cpu.Seconds(), removed, 2*keys+64)
	t.Logf("key map %d KiB; Go heap in use %d MiB before, %d MiB at most during the passes; first pass %v",
		mapBytes>>10, before.HeapInuse>>20, peak>>20, firstPass.Round(time.Millisecond))
}

// cpuTime is the CPU time this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
