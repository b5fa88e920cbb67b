package bench

import (
	"context"
	"sync"
	"time"
)

// memSampler follows the agents' memory through the run: the resident
// set, the Go heap, and the bytes the agents account for (flush buffer and
// fetch cache), so what is not accounted for can be stated.
type memSampler struct {
	r *runner

	mu      sync.Mutex
	samples int
	idleRSS float64
	maxRSS  float64
	maxHeap float64
	maxSys  float64
	maxBuf  float64
	maxCach float64
	maxOver float64 // RSS - buffered - cached
	limit   float64 // the agents' memory limit (floe_agent_memory_limit_bytes, else GOMEMLIMIT), if any
	winRSS  float64 // peak RSS since the last resetWindow
	cancel  context.CancelFunc
	done    chan struct{}
}

const memInterval = 500 * time.Millisecond

func (s *memSampler) start(ctx context.Context) {
	ctx, s.cancel = context.WithCancel(ctx)
	s.done = make(chan struct{})
	s.sample(ctx)
	go func() {
		defer close(s.done)
		t := time.NewTicker(memInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				s.sample(ctx)
			}
		}
	}()
}

func (s *memSampler) stop() {
	if s.cancel == nil {
		return
	}
	s.cancel()
	<-s.done
}

func (s *memSampler) sample(ctx context.Context) {
	urls := s.r.cl.MetricsURLs()
	for i, u := range urls {
		m, err := s.r.scr.scrapeOne(ctx, u)
		if err != nil || !m.Has("process_resident_memory_bytes") {
			continue // restarting, or no process metrics
		}
		rss := m.Sum("process_resident_memory_bytes")
		buf := m.Sum("floe_produce_buffered_bytes")
		cache := m.Sum("floe_fetch_cache_bytes")
		s.mu.Lock()
		if s.samples == 0 {
			s.idleRSS = rss
		}
		s.samples++
		peak := rss > s.maxRSS && s.limit > 0 && rss > 0.9*s.limit
		s.maxRSS = max(s.maxRSS, rss)
		s.winRSS = max(s.winRSS, rss)
		s.maxHeap = max(s.maxHeap, m.Sum("go_memstats_heap_inuse_bytes"))
		s.maxSys = max(s.maxSys, m.Sum("go_memstats_sys_bytes"))
		s.maxBuf = max(s.maxBuf, buf)
		s.maxCach = max(s.maxCach, cache)
		s.maxOver = max(s.maxOver, rss-buf-cache)
		// The agent's own limit on its resident memory, else (agents
		// given GOMEMLIMIT) the Go runtime's.
		if l := m.Sum("floe_agent_memory_limit_bytes"); l > 0 {
			s.limit = l
		} else if l := m.Sum("go_gc_gomemlimit_bytes"); l > 0 && l < 1<<60 {
			s.limit = l
		}
		s.mu.Unlock()
		if peak && s.r.cfg.ProfileDir != "" {
			// The heap near the run's highest RSS so far, when that is
			// close to the memory limit: what the agent holds there.
			s.r.agentHeapProfile(ctx, i, u, "peak")
		}
	}
}

// resetWindow starts a new window for windowPeak.
func (s *memSampler) resetWindow() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.winRSS = 0
}

// windowPeak samples once more and returns the highest RSS of any agent
// since resetWindow, and the agents' memory limit (0: none seen).
func (s *memSampler) windowPeak(ctx context.Context) (rss, limit int64) {
	s.sample(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	return int64(s.winRSS), int64(s.limit)
}

func (s *memSampler) result(a AgentSettings) *Memory {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.samples == 0 {
		return nil
	}
	return &Memory{
		Samples:         s.samples,
		IdleRSS:         int64(s.idleRSS),
		MaxRSS:          int64(s.maxRSS),
		MaxHeapInuse:    int64(s.maxHeap),
		MaxGoSys:        int64(s.maxSys),
		MaxBuffered:     int64(s.maxBuf),
		MaxCached:       int64(s.maxCach),
		MaxUnaccounted:  int64(s.maxOver),
		BufferSetting:   a.MaxBufferBytes,
		CacheSetting:    a.CacheBytes,
		OverheadOverSum: int64(s.maxRSS) - a.MaxBufferBytes - a.CacheBytes,
		MemoryLimit:     int64(s.limit),
	}
}
