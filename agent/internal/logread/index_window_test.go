package logread

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// runNow runs a prepare's background work at once, counting it.
type runNow struct {
	wg    sync.WaitGroup
	calls atomic.Int32
}

func (b *runNow) bg(fn func(context.Context)) bool {
	b.calls.Add(1)
	b.wg.Go(func() { fn(context.Background()) })
	return true
}

// A fetch's windows are loaded from etcd at once, not shard after shard,
// and after prepare every part's offset is in a window: the plan's
// lookups read nothing more.
func TestPrepareLoadsWindowsAtOnce(t *testing.T) {
	e := newShardedLogEnv(t, 64, 4) // 16 shards
	for n := range 3 {
		e.flush(t, fmt.Sprintf("flush-%d", n), n, 1)
	}
	m := newReaderMetrics(nil)
	iw := newIndexWindows(e.store, 64<<20, m)
	// Each load waits, up to a time no test machine needs, for a second
	// one to be running: loads one after another never meet.
	var (
		mu      sync.Mutex
		running int
		met     = make(chan struct{})
		once    sync.Once
		gaveUp  = make(chan struct{})
		giveUp  sync.Once
	)
	iw.beforeLoad = func() {
		mu.Lock()
		running++
		if running >= 2 {
			once.Do(func() { close(met) })
		}
		mu.Unlock()
		select {
		case <-met:
		case <-gaveUp:
		case <-time.After(5 * time.Second):
			giveUp.Do(func() { close(gaveUp) }) // the others need not wait as long
		}
		mu.Lock()
		running--
		mu.Unlock()
	}
	parts := e.parts(t, 0, 1<<20)
	var bg runNow
	iw.prepare(context.Background(), parts, 2, 8, bg.bg)
	select {
	case <-met:
	default:
		t.Fatal("no two of the 16 shards' windows were loaded at once")
	}
	loads := counterValue(t, m.indexLoads)
	if loads != 16 {
		t.Fatalf("%v window loads for 16 shards read from the same offset, want 16", loads)
	}
	iw.beforeLoad = nil
	for _, p := range parts {
		got, ok, err := iw.entries(context.Background(), p.Topic, p.Partition, p.Offset, p.HW, 8, 1<<20)
		if err != nil || !ok || len(got) != 3 {
			t.Fatalf("partition %d: %d entries, ok %v, %v; want the 3 flushes'", p.Partition, len(got), ok, err)
		}
	}
	if after := counterValue(t, m.indexLoads); after != loads {
		t.Fatalf("the lookups after prepare loaded %v windows more, want none", after-loads)
	}
	if n := bg.calls.Load(); n != 0 {
		t.Fatalf("%d reads left to the background, want none: the windows hold the whole logs", n)
	}
}

// Fetches preparing the same shard at once read its window once: the
// second waits for the first's read.
func TestPrepareSharesAShardsLoad(t *testing.T) {
	e := newShardedLogEnv(t, 4, 4) // one shard
	e.flush(t, "flush-0", 0, 1)
	m := newReaderMetrics(nil)
	iw := newIndexWindows(e.store, 64<<20, m)
	var (
		loads   atomic.Int32
		inFirst = make(chan struct{})
		second  = make(chan struct{}) // closed once the second prepare returned
	)
	iw.beforeLoad = func() {
		if loads.Add(1) == 1 {
			close(inFirst)
			// Hold the first load until the second prepare is done, or
			// for a while: a second that waits for it, as it should, is
			// done only after.
			select {
			case <-second:
			case <-time.After(300 * time.Millisecond):
			}
		}
	}
	var bg runNow
	first := make(chan struct{})
	go func() {
		defer close(first)
		iw.prepare(context.Background(), e.parts(t, 0, 1<<20), 2, 8, bg.bg)
	}()
	<-inFirst
	iw.prepare(context.Background(), e.parts(t, 0, 1<<20), 2, 8, bg.bg)
	close(second)
	iw.mu.Lock()
	held := iw.findLocked(e.topic.Shard(0), 0, 0) != nil
	iw.mu.Unlock()
	<-first
	if n := loads.Load(); n != 1 {
		t.Fatalf("the shard's window was loaded %d times by two fetches at once, want once", n)
	}
	if !held {
		t.Fatal("the second prepare returned before the window it waited for was loaded")
	}
}

// A window that holds what this fetch needs but little more is extended
// in the background; one that holds less is extended before prepare
// returns.
func TestPrepareExtendsShortWindows(t *testing.T) {
	e := newLogEnv(t, 1)
	flush := func(n int) {
		e.flush(t, fmt.Sprintf("flush-%d", n), n, 1) // offset n
	}
	flush(0)
	flush(1)
	iw := newIndexWindows(e.store, 64<<20, newReaderMetrics(nil))
	ctx := context.Background()
	if got, _, err := iw.entries(ctx, e.topic, 0, 0, 2, 16, 1<<20); err != nil || len(got) != 2 {
		t.Fatalf("loading the window: %d entries, %v; want 2", len(got), err)
	}
	// Offsets the window holds, up to where it ends.
	holds := func() int64 {
		iw.mu.Lock()
		defer iw.mu.Unlock()
		return iw.findLocked(e.topic.Shard(0), 0, 0).nextOf(0)
	}
	// Committed after the window was loaded (a bare indexWindows has no
	// watch to learn them from).
	flush(2)
	flush(3)

	// From offset 0 the window holds 2 entries: what need 2 asks, short
	// of ahead 8.
	var bg runNow
	iw.prepare(ctx, e.parts(t, 0, 1<<20), 2, 8, bg.bg)
	if n := bg.calls.Load(); n != 1 {
		t.Fatalf("%d background reads for a window holding what is needed now, want 1", n)
	}
	bg.wg.Wait()
	if got := holds(); got != 4 {
		t.Fatalf("the window holds offsets up to %d after its background extension, want 4", got)
	}

	// From offset 3 it holds 1 entry, fewer than need: extended before
	// prepare returns.
	flush(4)
	flush(5)
	// The extension found the log's end then; the agent's watch would
	// tell the windows of the entries since.
	iw.mu.Lock()
	delete(iw.logEnd, e.topic.Shard(0))
	iw.mu.Unlock()
	iw.prepare(ctx, e.parts(t, 3, 1<<20), 2, 8, bg.bg)
	if n := bg.calls.Load(); n != 1 {
		t.Fatalf("%d background reads in all, want still 1: the second window was short of what is needed now", n)
	}
	if got := holds(); got != 6 {
		t.Fatalf("the window holds offsets up to %d once prepare returned, want 6", got)
	}
}
