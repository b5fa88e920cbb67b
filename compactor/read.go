package compactor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/floe-io/floe/metadata"
)

// Reading what a merge rewrites.
//
// A merged object is built from pieces: the extents one entry holds in
// one object that the object takes, in the order they are appended
// (source by source, entry by entry). A piece's extents are read with
// as few ranged GETs (spans) as they allow: extents at most readGap apart
// share a GET of at most readSpan bytes. A shard's extents are adjacent in
// the objects agents and merges write (extents sort by partition), so a
// piece is usually one GET, not one per partition. Pieces are read a
// window at a time, readParallel GETs at once, so a job's reads cost
// about the latency of its windows, not of its GETs.
const (
	readGap         = 256 << 10
	readSpan        = 32 << 20
	readParallel    = 16
	readWindowSpans = 64
	readWindowBytes = 32 << 20
)

// piece is the extents of one entry in one object that one source takes.
type piece struct {
	src    int // index into the build's sources
	object string
	xs     []metadata.Extent
	spans  []*span
	in     []int // xs[i] is in spans[in[i]]
	bytes  int64 // of the spans
}

// span is one ranged GET.
type span struct {
	off, n int64
	data   []byte
	err    error
}

// planPieces lists what srcs read, in append order.
func planPieces(srcs []source) []*piece {
	var out []*piece
	for si, s := range srcs {
		for _, e := range s.run.entries {
			byObject := map[int32][]metadata.Extent{}
			for _, x := range e.Extents {
				if s.takes(x.Partition) {
					byObject[x.Object] = append(byObject[x.Object], x)
				}
			}
			for _, oi := range slices.Sorted(mapKeys(byObject)) {
				pc := &piece{src: si, object: e.Objects[oi].Key, xs: byObject[oi]}
				pc.coalesce()
				out = append(out, pc)
			}
		}
	}
	return out
}

// coalesce plans the piece's GETs.
func (pc *piece) coalesce() {
	order := make([]int, len(pc.xs))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return int(pc.xs[a].Offset - pc.xs[b].Offset) })
	pc.in = make([]int, len(pc.xs))
	for i := 0; i < len(order); {
		start := pc.xs[order[i]].Offset
		end := start + pc.xs[order[i]].Length
		j := i + 1
		for ; j < len(order); j++ {
			x := pc.xs[order[j]]
			if x.Offset-end > readGap || x.Offset+x.Length-start > readSpan {
				break
			}
			end = max(end, x.Offset+x.Length)
		}
		for _, k := range order[i:j] {
			pc.in[k] = len(pc.spans)
		}
		pc.spans = append(pc.spans, &span{off: start, n: end - start})
		pc.bytes += end - start
		i = j
	}
}

// extent returns the bytes of xs[i], once fetched.
func (pc *piece) extent(i int) []byte {
	s := pc.spans[pc.in[i]]
	lo := pc.xs[i].Offset - s.off
	return s.data[lo : lo+pc.xs[i].Length : lo+pc.xs[i].Length]
}

// err is the first failure to read one of the piece's spans.
func (pc *piece) err() error {
	for _, s := range pc.spans {
		if s.err != nil {
			return s.err
		}
	}
	return nil
}

// release drops the fetched bytes (the builder holds copies).
func (pc *piece) release() {
	for _, s := range pc.spans {
		s.data = nil
	}
}

// fetch reads every span of pcs, readParallel at a time; failures are
// left in the spans.
func (c *Compactor) fetch(ctx context.Context, pcs []*piece) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, readParallel)
	for _, pc := range pcs {
		for _, s := range pc.spans {
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				s.data, s.err = c.getRange(ctx, pc.object, s.off, s.n)
			}()
		}
	}
	wg.Wait()
}

// getRange reads exactly length bytes of object from offset.
func (c *Compactor) getRange(ctx context.Context, object string, offset, length int64) ([]byte, error) {
	rc, err := c.bucket.GetRange(ctx, object, offset, length)
	if err != nil {
		return nil, fmt.Errorf("reading %d-%d of %s: %w", offset, offset+length, object, err)
	}
	defer rc.Close()
	data := make([]byte, length)
	n, err := io.ReadFull(rc, data)
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: %s: read %d bytes at %d, the entries say %d", ErrExtentMismatch, object, n, offset, length)
	}
	if err != nil {
		return nil, fmt.Errorf("reading %d-%d of %s: %w", offset, offset+length, object, err)
	}
	return data, nil
}
