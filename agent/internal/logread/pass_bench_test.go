package logread

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"

	"github.com/floe-io/floe/internal/testenv"
)

// BenchmarkWidePass is a consumer group of four reading a 4096-partition
// topic, every flush of which wrote every partition (an extent of two
// batches of a 1 KB record each), 1024 partitions each in fetches of
// 16 MiB: the read path's own cost per extent, without the network, a
// client or the agent's encoding. One op reads every partition from its
// start to its end.
//
//   - warm: from the reader's cache, one consumer of the four;
//
//   - cold: the whole group, from a reader with nothing cached, whose
//     chunk reads decode every member's extents in them.
//
//     go test -run='^$' -bench=WidePass ./agent/internal/logread/
func BenchmarkWidePass(b *testing.B) {
	const partitions, members, flushes = 4096, 4, 16
	e := newLogEnv(b, partitions)
	for n := range flushes {
		e.flushPadded(b, fmt.Sprintf("wide-%d", n), n, 2, 1000)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	newReader := func() *Reader {
		r := New(ctx, e.store, e.bucket, Config{CacheBytes: 1 << 30}, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
		b.Cleanup(r.Close)
		return r
	}
	all := e.parts(b, 0, 1<<20)
	hw := make([]int64, len(all))
	for i, p := range all {
		hw[i] = p.HW
	}
	// read reads parts (those of one member) from their start to their
	// end and returns the extents it served.
	read := func(r *Reader, parts []*Part) (extents int) {
		for _, p := range parts {
			p.Offset = 0
			p.HW = hw[p.Partition]
		}
		for left, passes := len(parts), 0; left > 0; passes++ {
			if passes > 1000 {
				b.Errorf("%d partitions left after %d passes", left, passes)
				return extents
			}
			f := r.Plan(ctx, parts, 16<<20, true)
			room := int64(16 << 20)
			for _, p := range parts {
				if p.Offset >= p.HW {
					continue
				}
				out, err := f.Read(ctx, p, min(p.Max, room), room == 16<<20)
				if err != nil {
					b.Error(err)
					return extents
				}
				room -= out.Bytes
				extents += len(out.Parts)
				if out.Bytes > 0 {
					if p.Offset = out.Next; p.Offset >= p.HW {
						left--
					}
				}
			}
			f.Done()
		}
		return extents
	}
	member := func(m int) []*Part { return all[m*partitions/members : (m+1)*partitions/members] }
	report := func(b *testing.B, extents int, cpu0 int64) {
		b.ReportMetric(float64(extents), "extents/op")
		b.ReportMetric(float64(testenv.ProcessCPU().Nanoseconds()-cpu0)/float64(b.N)/float64(max(extents, 1)), "cpu-ns/extent")
	}

	b.Run("warm", func(b *testing.B) {
		r := newReader()
		parts := member(0)
		read(r, parts) // fill the cache
		gets := e.bucket.gets.Load()
		var extents int
		b.ReportAllocs()
		cpu := testenv.ProcessCPU().Nanoseconds()
		for b.Loop() {
			extents = read(r, parts)
		}
		report(b, extents, cpu)
		if got := e.bucket.gets.Load() - gets; got > 0 {
			b.Errorf("%d GETs reading from the cache", got)
		}
	})
	b.Run("cold", func(b *testing.B) {
		var extents int
		b.ReportAllocs()
		cpu := testenv.ProcessCPU().Nanoseconds()
		for b.Loop() {
			r := newReader()
			var wg sync.WaitGroup
			counts := make([]int, members)
			for m := range members {
				wg.Go(func() { counts[m] = read(r, member(m)) })
			}
			wg.Wait()
			r.Close()
			extents = 0
			for _, n := range counts {
				extents += n
			}
		}
		report(b, extents, cpu)
	})
}
