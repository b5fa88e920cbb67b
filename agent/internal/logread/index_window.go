package logread

import (
	"cmp"
	"container/list"
	"context"
	"errors"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/floe-io/floe/metadata"
)

// Index windows.
//
// A fetch needs, for a partition and an offset, the index entries from
// the one holding that offset on. They come from the partition's shard
// log (metadata: one entry per commit per shard, each with every
// partition's high watermark). The reader keeps windows of shard logs in
// memory: runs of consecutive entries loaded from etcd, found by a binary
// search the first time a position is read, then extended with the
// entries the agent learns from the watermark watch (its own commits and
// every other agent's), so a consumer tailing or catching up reads etcd
// once per window, not once per fetch. One window serves every partition
// of its shard; a shard may have several (readers far apart), which merge
// when a load makes them meet. Windows are bounded in total (the reader's
// index budget): past it, the entries readers have passed are dropped
// first, then least recently used windows; a long window drops the
// entries its readers have passed anyway. Finding the entry that holds an
// offset costs etcd a few reads of single entries however long the log
// is (metadata.Store.SeekEntry).
//
// An entry the compactor rewrites (a merge or retention) makes the
// windows that hold it stale: they are loaded again at their next use.

// windowLoad bounds the entries one etcd read loads (loadSize); a window
// extended past four loads, or any window once the index budget is
// spent, drops the entries its readers have passed (trimLocked).
const windowLoad = 256

// defaultTrimAfter is how often a window's readers must look to keep
// the entries they have not passed.
const defaultTrimAfter = time.Second

// shardWindow is a run of consecutive log entries of one shard.
type shardWindow struct {
	sh shardRef
	// floor is the high watermarks of the entry before entries[0] (nil:
	// entries[0] starts the log), so the window holds partition p's
	// offsets from floor[p] to the last entry's high watermark.
	floor   []int64
	entries []*metadata.LogEntry
	stale   bool
	bytes   int64
	used    time.Time
	el      *list.Element // in indexWindows.lru
	// lowCur and lowPrev are the lowest sequence numbers lookups used in
	// the current period of trimAfter (since lowSince) and in the one
	// before (0: none): entries below both are behind every reader that
	// looks at least once a period.
	lowCur, lowPrev int64
	lowSince        time.Time
	// coverTried is the commit time (Unix ms) of the latest object a
	// chunk read asked this window to reach (coverObject), so it is
	// extended for it once.
	coverTried int64
}

// shardRef is a shard and its topic's shard size.
type shardRef struct {
	metadata.ShardID
	size int32
}

// entryBytes estimates the memory an entry holds in a window.
func entryBytes(e *metadata.LogEntry) int64 {
	// 8 bytes a partition's watermark, up to 4 its place in the extents'
	// index.
	n := int64(96 + 12*len(e.Nexts) + 96*len(e.Extents))
	for _, o := range e.Objects {
		n += int64(32 + len(o.Key))
	}
	for _, x := range e.Extents {
		n += int64(4 * len(x.Skip))
	}
	return n
}

func (w *shardWindow) first() int64 { return w.entries[0].Seq }
func (w *shardWindow) last() int64  { return w.entries[len(w.entries)-1].SeqLast }

// floorOf is where the window starts holding partition p.
func (w *shardWindow) floorOf(p int32) int64 {
	i := p - w.entries[0].Base
	if i < 0 || int(i) >= len(w.floor) {
		return 0
	}
	return w.floor[i]
}

// nextOf is the window's last high watermark of p.
func (w *shardWindow) nextOf(p int32) int64 {
	n, _ := w.entries[len(w.entries)-1].Next(p)
	return n
}

// holds reports whether the window holds p's offset, or could by
// extending (offset at its end).
func (w *shardWindow) holds(p int32, offset int64) bool {
	return !w.stale && len(w.entries) > 0 && w.floorOf(p) <= offset && offset <= w.nextOf(p)
}

// indexWindows holds the reader's windows.
//
// Lock order: indexWindows.mu, then a window's fields are changed only
// under it; loads from etcd run without it.
type indexWindows struct {
	store    *metadata.Store
	metrics  *readerMetrics
	maxBytes int64
	// trimAfter: see shardWindow.lowCur.
	trimAfter time.Duration

	// beforeExtend, when set (tests only), runs between a lookup that
	// found the window short and the extension from etcd.
	beforeExtend func(*shardWindow)
	// beforeLoad, when set (tests only), runs before a window is loaded
	// from etcd.
	beforeLoad func()
	// afterLookup, when set (tests only), is told how many entries each
	// lookup in a window returned.
	afterLookup func(entries int)

	mu      sync.Mutex
	byShard map[metadata.ShardID][]*shardWindow
	// logEnd is, per shard with windows, the last sequence number its log
	// is known to have: from the watch, or from a load that found
	// nothing after a window (coverObject extends only windows short of
	// it, or of a log end not known).
	logEnd map[metadata.ShardID]int64
	// preparing are the shards a prepare is reading, closed when it is
	// done.
	preparing map[metadata.ShardID]chan struct{}
	// aheadLoads holds a slot per background extension running.
	aheadLoads chan struct{}
	// byObject finds the windows' extents in an object.
	byObject map[string][]objectRef
	lru      list.List // of *shardWindow, most recent at front
	bytes    int64
}

// objectRef is an entry of a window that has extents in an object.
type objectRef struct {
	w *shardWindow
	e *metadata.LogEntry
}

// windowExtent is an extent of a window with its partition.
type windowExtent struct {
	metadata.IndexEntry
	topic     uuid.UUID
	partition int32
}

// extentsIn returns the extents the windows hold in [start, end) of
// object.
func (iw *indexWindows) extentsIn(object string, start, end int64) []windowExtent {
	iw.mu.Lock()
	defer iw.mu.Unlock()
	var out []windowExtent
	for _, ref := range iw.byObject[object] {
		if ref.w.stale {
			continue
		}
		for oi, o := range ref.e.Objects {
			if o.Key != object {
				continue
			}
			for _, x := range ref.e.Extents {
				if int(x.Object) == oi && x.Offset >= start && x.Offset+x.Length <= end {
					out = append(out, windowExtent{IndexEntry: ref.e.IndexEntry(x), topic: ref.w.sh.Topic, partition: x.Partition})
				}
			}
		}
	}
	return out
}

// maxCoverLoads bounds the etcd reads one coverObject runs at once.
const maxCoverLoads = 8

// coverObject extends, before a chunk of object is decoded, the windows of
// the object's topic that end before it: each shard's readers extend its
// window as far as they look, and a consumer of a group that is ahead
// reads chunks holding the extents of shards whose readers are behind,
// whose windows then do not reach the object yet. Their extents were left
// undecoded, and the chunk was read again for them (a whole chunk for a
// few extents). A window is extended at most once for an object, by one
// load; the loads run at once, up to maxCoverLoads.
func (iw *indexWindows) coverObject(ctx context.Context, object string) {
	iw.mu.Lock()
	refs := iw.byObject[object]
	if len(refs) == 0 {
		iw.mu.Unlock()
		return
	}
	committed := refs[0].e.Committed
	topic := refs[0].w.sh.Topic
	covered := make(map[metadata.ShardID]bool, len(refs))
	for _, r := range refs {
		covered[r.w.sh.ShardID] = true
	}
	var behind []*shardWindow
	for sid, ws := range iw.byShard {
		if sid.Topic != topic || covered[sid] {
			continue
		}
		// The shard's window nearest the object from before it.
		var near *shardWindow
		for _, w := range ws {
			if w.stale || w.el == nil || len(w.entries) == 0 || w.entries[0].Committed > committed {
				continue
			}
			if near == nil || w.last() > near.last() {
				near = w
			}
		}
		if near == nil || near.entries[len(near.entries)-1].Committed >= committed || near.coverTried >= committed {
			continue
		}
		if end, known := iw.logEnd[sid]; known && near.last() >= end {
			continue // the window holds the whole log as far as known
		}
		near.coverTried = committed
		behind = append(behind, near)
	}
	iw.mu.Unlock()
	if len(behind) == 0 {
		return
	}
	atOnce(behind, maxCoverLoads, func(w *shardWindow) {
		// A failed load leaves the extents to the fetches that need
		// them, which report it.
		_, _, _ = iw.extend(ctx, w)
	})
}

// atOnce calls fn for each item, up to limit at a time (a single item in
// the caller's goroutine), and returns once every call has.
func atOnce[T any](items []T, limit int, fn func(T)) {
	if len(items) == 1 {
		fn(items[0])
		return
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, limit)
	for _, it := range items {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			fn(it)
		})
	}
	wg.Wait()
}

// maxPrepareLoads bounds the etcd reads one prepare runs at once, and
// maxAheadLoads those of all prepares' background extensions.
const (
	maxPrepareLoads = 8
	maxAheadLoads   = 2
)

// prepare reads from etcd at once, shard by shard, what lookups of the
// parts' offsets would otherwise read one after another, and returns
// once the lookups have what they need (reads another fetch started
// included): a window holding each part's offset where none does, and
// the entries after a window that holds fewer than need entries from
// its shard's first part's offset while that partition has more below
// its high watermark. A window that holds need but fewer than ahead
// entries from there is extended in the background, through bg (false:
// not started), so readers moving through it find the entries there when
// they reach them.
//
// A fetch of a thousand partitions touches every shard of a wide topic;
// loading their windows in turn cost an agent that had just started a
// round trip to etcd per shard, and more per partition that starts
// before its shard's window, before its first read; extending them in
// turn, as readers reached their ends, cost a few milliseconds of most
// passes. A shard another fetch is preparing is waited for rather than
// read again.
func (iw *indexWindows) prepare(ctx context.Context, parts []*Part, need, ahead int, bg func(func(context.Context)) bool) {
	type job struct {
		sh    shardRef
		parts []*Part // the shard's, from the first one that needs a read
		wait  bool    // a lookup needs the reads now
		done  chan struct{}
	}
	var (
		jobs  []*job
		wait  []chan struct{}
		shard = map[metadata.ShardID]*job{}
	)
	iw.mu.Lock()
	for _, p := range parts {
		if p.Offset < p.Start || p.Offset >= p.HW {
			continue
		}
		sid := p.Topic.Shard(p.Partition)
		if j, ok := shard[sid]; ok {
			if j != nil && iw.findLocked(sid, p.Partition, p.Offset) == nil {
				j.parts = append(j.parts, p)
				j.wait = true
			}
			continue
		}
		w, left := iw.leftLocked(sid, p)
		if ch, ok := iw.preparing[sid]; ok {
			shard[sid] = nil
			if w == nil || left < need {
				wait = append(wait, ch)
			}
			continue
		}
		j := &job{sh: shardRef{ShardID: sid, size: p.Topic.ShardSize}}
		shard[sid] = j
		if w == nil || left < ahead {
			j.parts, j.wait = append(j.parts, p), w == nil || left < need
		}
	}
	for _, j := range shard {
		if j != nil && len(j.parts) > 0 {
			j.done = make(chan struct{})
			iw.preparing[j.sh.ShardID] = j.done
			jobs = append(jobs, j)
		}
	}
	iw.mu.Unlock()
	run := func(ctx context.Context, j *job) {
		// A failed read leaves the lookups to read again and report it.
		for _, p := range j.parts {
			iw.mu.Lock()
			w, left := iw.leftLocked(j.sh.ShardID, p)
			iw.mu.Unlock()
			if w == nil {
				if _, err := iw.load(ctx, p.Topic, j.sh, p.Partition, p.Offset); err != nil {
					break
				}
			} else if left < ahead {
				if _, _, err := iw.extend(ctx, w); err != nil {
					break
				}
			}
		}
		iw.mu.Lock()
		delete(iw.preparing, j.sh.ShardID)
		iw.mu.Unlock()
		close(j.done)
	}
	var now []*job
	for _, j := range jobs {
		if !j.wait {
			// Its part is copied: the caller's parts change once the
			// fetch is done.
			p := *j.parts[0]
			j.parts = []*Part{&p}
			if bg(func(ctx context.Context) {
				select {
				case iw.aheadLoads <- struct{}{}:
					defer func() { <-iw.aheadLoads }()
				case <-ctx.Done():
				}
				run(ctx, j)
			}) {
				continue
			}
		}
		now = append(now, j)
	}
	atOnce(now, maxPrepareLoads, func(j *job) { run(ctx, j) })
	for _, ch := range wait {
		select {
		case <-ch:
		case <-ctx.Done():
			return
		}
	}
}

// leftLocked returns the window of shard sid holding p's offset (nil:
// none) and how many of its entries from there a lookup may use before
// it needs the entries after the window: all of them (math.MaxInt) when
// the window reaches p's high watermark or the shard's log end as known.
func (iw *indexWindows) leftLocked(sid metadata.ShardID, p *Part) (*shardWindow, int) {
	w := iw.findLocked(sid, p.Partition, p.Offset)
	if w == nil {
		return nil, 0
	}
	if end, known := iw.logEnd[sid]; w.nextOf(p.Partition) >= p.HW || known && w.last() >= end {
		return w, math.MaxInt
	}
	return w, len(w.entries) - w.indexOf(p.Partition, p.Offset)
}

// indexOf is the index of the first of w's entries that holds p's
// offset or follows it.
func (w *shardWindow) indexOf(p int32, offset int64) int {
	i, _ := slices.BinarySearchFunc(w.entries, offset, func(e *metadata.LogEntry, off int64) int {
		if n, _ := e.Next(p); n <= off {
			return -1
		}
		return 1
	})
	return i
}

// linkLocked adds (or, with remove, drops) e's objects to byObject.
func (iw *indexWindows) linkLocked(w *shardWindow, e *metadata.LogEntry, remove bool) {
	for _, o := range e.Objects {
		refs := iw.byObject[o.Key]
		if remove {
			refs = slices.DeleteFunc(refs, func(r objectRef) bool { return r.e == e })
		} else {
			refs = append(refs, objectRef{w: w, e: e})
		}
		if len(refs) == 0 {
			delete(iw.byObject, o.Key)
		} else {
			iw.byObject[o.Key] = refs
		}
	}
}

func newIndexWindows(store *metadata.Store, maxBytes int64, m *readerMetrics) *indexWindows {
	return &indexWindows{store: store, metrics: m, maxBytes: maxBytes, trimAfter: defaultTrimAfter, byShard: map[metadata.ShardID][]*shardWindow{}, logEnd: map[metadata.ShardID]int64{}, preparing: map[metadata.ShardID]chan struct{}{}, aheadLoads: make(chan struct{}, maxAheadLoads), byObject: map[string][]objectRef{}}
}

// entries returns partition p of t's index entries that hold offset and
// follow it, below hw: at most max of them, and no more once they hold
// maxBytes (at least one). ok is false when no entry
// holds offset although it is below hw: its records are gone (retention
// removed them since the caller read the log start).
func (iw *indexWindows) entries(ctx context.Context, t metadata.Topic, p int32, offset, hw int64, max int, maxBytes int64) (out []metadata.IndexEntry, ok bool, err error) {
	return iw.entriesInto(nil, ctx, t, p, offset, hw, max, maxBytes)
}

// entriesInto is entries, appended to dst[:0] (so a caller that looks up
// many partitions in turn reuses one buffer).
func (iw *indexWindows) entriesInto(dst []metadata.IndexEntry, ctx context.Context, t metadata.Topic, p int32, offset, hw int64, max int, maxBytes int64) (out []metadata.IndexEntry, ok bool, err error) {
	dst = dst[:0]
	sh := shardRef{ShardID: t.Shard(p), size: t.ShardSize}
	w := iw.find(sh, p, offset)
	if w == nil {
		if w, err = iw.load(ctx, t, sh, p, offset); err != nil || w == nil {
			// No entry holds offset: it is at or past the high watermark
			// etcd has.
			return nil, true, err
		}
	}
	for range 4 {
		out, status := iw.lookupIn(dst, w, p, offset, hw, max, maxBytes)
		if iw.afterLookup != nil {
			iw.afterLookup(len(out))
		}
		switch status {
		case lookupFound:
			return out, true, nil
		case lookupGone:
			return nil, false, nil
		case lookupShort:
			// The window ends before hw: extend it from etcd (the watch
			// may be behind, or the window was loaded before the entries
			// after it were committed).
			if iw.beforeExtend != nil {
				iw.beforeExtend(w)
			}
			more, stale, err := iw.extend(ctx, w)
			if err != nil {
				return nil, false, err
			}
			if stale {
				// A merge or retention rewrote the window's entries
				// meanwhile: load it afresh rather than answer nothing
				// (a long poll would wait out its whole MaxWait).
				if w, err = iw.load(ctx, t, sh, p, offset); err != nil || w == nil {
					return nil, true, err
				}
				continue
			}
			if !more {
				return out, true, nil
			}
		case lookupMiss:
			// The window went stale (a merge) or was dropped meanwhile.
			if w, err = iw.load(ctx, t, sh, p, offset); err != nil || w == nil {
				return nil, true, err
			}
		}
	}
	out, _ = iw.lookupIn(dst, w, p, offset, hw, max, maxBytes)
	return out, true, nil
}

// Outcomes of looking up an offset in a window.
const (
	lookupFound = iota // entries found, or none below hw
	lookupShort        // none found up to the window's end, below hw
	lookupGone         // the window holds offset, but its records are gone
	lookupMiss         // the window does not hold offset (any more)
)

// find returns a window holding p's offset, if one does.
func (iw *indexWindows) find(sh shardRef, p int32, offset int64) *shardWindow {
	iw.mu.Lock()
	defer iw.mu.Unlock()
	return iw.findLocked(sh.ShardID, p, offset)
}

func (iw *indexWindows) findLocked(sid metadata.ShardID, p int32, offset int64) *shardWindow {
	for _, w := range iw.byShard[sid] {
		if w.holds(p, offset) {
			return w
		}
	}
	return nil
}

// lookupIn finds p's entries from offset in w, at most max of them or
// maxBytes' worth, appended to dst (empty).
func (iw *indexWindows) lookupIn(dst []metadata.IndexEntry, w *shardWindow, p int32, offset, hw int64, max int, maxBytes int64) ([]metadata.IndexEntry, int) {
	iw.mu.Lock()
	defer iw.mu.Unlock()
	if !w.holds(p, offset) {
		return nil, lookupMiss
	}
	w.used = time.Now()
	if w.el != nil {
		iw.lru.MoveToFront(w.el)
	}
	if w.used.Sub(w.lowSince) >= iw.trimAfter {
		w.lowPrev, w.lowCur, w.lowSince = w.lowCur, 0, w.used
	}
	i := w.indexOf(p, offset)
	if i < len(w.entries) && (w.lowCur == 0 || w.entries[i].Seq < w.lowCur) {
		w.lowCur = w.entries[i].Seq
	}
	out := dst
	if cap(out) == 0 {
		// Sized for a few entries (a lookup mostly wants that many), so
		// most lookups allocate once.
		out = make([]metadata.IndexEntry, 0, min(max, len(w.entries)-i, 8))
	}
	var bytes int64
	for ; i < len(w.entries) && len(out) < max && (len(out) == 0 || bytes < maxBytes); i++ {
		e := w.entries[i]
		x, found := e.ExtentOf(p)
		if !found {
			continue
		}
		if len(out) == 0 && x.First > offset {
			// The entry that should hold offset does not: retention
			// dropped those records.
			return nil, lookupGone
		}
		out = append(out, e.IndexEntry(x))
		bytes += x.Length
	}
	if len(out) == 0 && w.nextOf(p) < hw {
		// Nothing of p in the window from offset on, yet more was
		// committed: read on (entries found are enough for now; a later
		// lookup from further on extends the window when it needs to).
		return out, lookupShort
	}
	return out, lookupFound
}

// loadSize is how many entries one read of a shard's log takes: about
// 256 KiB of them.
func loadSize(shardSize int32) int64 {
	return min(max((256<<10)/(100*int64(shardSize)+100), 16), windowLoad)
}

// load finds the entry holding p's offset in etcd and returns a window
// holding it: an existing window of the shard extended forward or
// backward to it when they meet, else a new one. Several readers of a
// shard far apart get windows of their own; readers that meet share one.
// It returns nil when no entry holds offset (it is at or past the high
// watermark).
func (iw *indexWindows) load(ctx context.Context, t metadata.Topic, sh shardRef, p int32, offset int64) (*shardWindow, error) {
	w, err := iw.loadOnce(ctx, t, sh, p, offset)
	if errors.Is(err, metadata.ErrConflict) {
		// etcd compacted the revision the seek read at: seek again.
		w, err = iw.loadOnce(ctx, t, sh, p, offset)
	}
	return w, err
}

func (iw *indexWindows) loadOnce(ctx context.Context, t metadata.Topic, sh shardRef, p int32, offset int64) (*shardWindow, error) {
	if iw.beforeLoad != nil {
		iw.beforeLoad()
	}
	start := time.Now()
	seek, found, err := iw.store.SeekEntry(ctx, t, p, offset)
	if err != nil || !found {
		return nil, err
	}
	seq := seek.Seq
	n := loadSize(sh.size)
	iw.mu.Lock()
	var next *shardWindow // the first window after seq
	for _, w := range iw.byShard[sh.ShardID] {
		if w.stale || len(w.entries) == 0 {
			continue
		}
		if w.first() <= seq && seq <= w.last()+1 {
			past := seq > w.last()
			iw.mu.Unlock()
			// Forward: the caller's lookup extends it as far as needed.
			if past {
				if _, _, err := iw.extend(ctx, w); err != nil {
					return nil, err
				}
			}
			return w, nil
		}
		if w.first() > seq && (next == nil || w.first() < next.first()) {
			next = w
		}
	}
	limit := n
	if next != nil {
		limit = min(n, next.first()-seq)
	}
	iw.mu.Unlock()
	floor := seek.Floor
	entries, err := iw.store.ShardWindow(ctx, sh.ShardID, seq, limit, seek.Rev)
	if err != nil {
		return nil, err
	}
	iw.metrics.indexLoads.Inc()
	iw.metrics.indexLatency.Observe(time.Since(start).Seconds())
	if len(entries) == 0 {
		return nil, nil
	}
	loaded := make([]*metadata.LogEntry, len(entries))
	for i := range entries {
		loaded[i] = trimEntry(&entries[i])
	}
	iw.mu.Lock()
	defer iw.mu.Unlock()
	if next != nil && next.el != nil && !next.stale && len(next.entries) > 0 && loaded[len(loaded)-1].SeqLast+1 == next.first() {
		// Backward: the loaded entries end where next begins.
		for _, e := range loaded {
			iw.linkLocked(next, e, false)
		}
		next.entries = append(loaded, next.entries...)
		next.floor = floor
		// Its new reader has not looked yet: no trim for a period.
		next.lowPrev, next.lowCur, next.lowSince = 0, 0, time.Now()
		iw.growLocked(next)
		return next, nil
	}
	w := &shardWindow{sh: sh, floor: floor, entries: loaded, used: time.Now()}
	// Drop stale windows and any this one overlaps (a log that changed).
	var keep []*shardWindow
	for _, o := range slices.Clone(iw.byShard[sh.ShardID]) { // dropLocked edits the slice
		if o.stale || len(o.entries) == 0 || o.first() <= w.last() && w.first() <= o.last() {
			iw.dropLocked(o)
			continue
		}
		keep = append(keep, o)
	}
	iw.byShard[sh.ShardID] = append(keep, w)
	w.lowSince = w.used
	w.el = iw.lru.PushFront(w)
	for _, e := range w.entries {
		iw.linkLocked(w, e, false)
	}
	iw.growLocked(w)
	return w, nil
}

// extend appends the entries after w's last from etcd. It reports whether
// there were any.
func (iw *indexWindows) extend(ctx context.Context, w *shardWindow) (more, stale bool, err error) {
	iw.mu.Lock()
	if w.stale || len(w.entries) == 0 {
		iw.mu.Unlock()
		return false, true, nil
	}
	from := w.last() + 1
	iw.mu.Unlock()
	entries, err := iw.store.ShardWindow(ctx, w.sh.ShardID, from, loadSize(w.sh.size), 0)
	if err != nil {
		return false, false, err
	}
	iw.metrics.indexLoads.Inc()
	iw.mu.Lock()
	defer iw.mu.Unlock()
	if w.stale {
		return false, true, nil
	}
	for i := range entries {
		iw.appendLocked(w, &entries[i])
	}
	if w.el != nil && int64(len(entries)) < loadSize(w.sh.size) {
		// The load found the log's end: the window reaches it.
		iw.logEnd[w.sh.ShardID] = max(iw.logEnd[w.sh.ShardID], w.last())
	}
	return len(entries) > 0, false, nil
}

// appendLocked adds e to w if it follows on from w's last entry.
func (iw *indexWindows) appendLocked(w *shardWindow, e *metadata.LogEntry) {
	if w.stale || len(w.entries) == 0 || e.Seq != w.last()+1 || e.Flags&metadata.EntryMerged != 0 {
		return
	}
	e = trimEntry(e)
	w.entries = append(w.entries, e)
	if w.el != nil {
		iw.linkLocked(w, e, false)
	}
	if len(w.entries) > int(4*loadSize(w.sh.size)) {
		iw.trimLocked(w)
	}
	iw.growLocked(w)
}

// trimLocked drops the window's entries every reader has passed: those
// before the lowest one lookups used in this period of trimAfter and the
// last (readers that look less often than that load their entries
// again).
func (iw *indexWindows) trimLocked(w *shardWindow) {
	if w.lowPrev == 0 || len(w.entries) == 0 {
		return // not a whole period of lookups seen yet
	}
	low := w.lowPrev
	if w.lowCur != 0 {
		low = min(low, w.lowCur)
	}
	dropped, _ := slices.BinarySearchFunc(w.entries, low, func(e *metadata.LogEntry, seq int64) int { return cmp.Compare(e.Seq, seq) })
	if dropped == 0 {
		return
	}
	var n int64
	for _, old := range w.entries[:dropped] {
		n += entryBytes(old)
		if w.el != nil {
			iw.linkLocked(w, old, true)
		}
	}
	w.floor = w.entries[dropped-1].Nexts
	w.entries = slices.Clone(w.entries[dropped:])
	if w.el != nil {
		iw.bytes -= n
		w.bytes -= n
	}
}

// growLocked recounts w's bytes and, past the budget, drops what
// readers have passed from the least recently used windows, then least
// recently used windows.
func (iw *indexWindows) growLocked(w *shardWindow) {
	if w.el == nil {
		return // dropped meanwhile
	}
	var n int64
	for _, e := range w.entries {
		n += entryBytes(e)
	}
	iw.bytes += n - w.bytes
	w.bytes = n
	for el := iw.lru.Back(); el != nil && iw.bytes > iw.maxBytes; el = el.Prev() {
		iw.trimLocked(el.Value.(*shardWindow))
	}
	for iw.bytes > iw.maxBytes && iw.lru.Len() > 1 {
		old := iw.lru.Back().Value.(*shardWindow)
		if old == w {
			break
		}
		iw.dropLocked(old)
	}
	iw.metrics.indexBytes.Set(float64(iw.bytes))
}

func (iw *indexWindows) dropLocked(w *shardWindow) {
	if w.el == nil {
		return
	}
	iw.lru.Remove(w.el)
	w.el = nil
	iw.bytes -= w.bytes
	for _, e := range w.entries {
		iw.linkLocked(w, e, true)
	}
	ws := iw.byShard[w.sh.ShardID]
	if i := slices.Index(ws, w); i >= 0 {
		ws = slices.Delete(ws, i, i+1)
	}
	if len(ws) == 0 {
		delete(iw.byShard, w.sh.ShardID)
		delete(iw.logEnd, w.sh.ShardID)
	} else {
		iw.byShard[w.sh.ShardID] = ws
	}
}

// observe learns a log entry written (the watch, or the agent's own
// commit): a window that ends just before it is extended, and windows
// holding an entry it rewrites are stale.
func (iw *indexWindows) observe(sh metadata.ShardID, e *metadata.LogEntry) {
	iw.mu.Lock()
	defer iw.mu.Unlock()
	if _, ok := iw.byShard[sh]; ok && e.SeqLast > iw.logEnd[sh] {
		iw.logEnd[sh] = e.SeqLast
	}
	for _, w := range slices.Clone(iw.byShard[sh]) { // appending may drop windows
		switch {
		case w.el == nil || len(w.entries) == 0:
		case e.Seq == w.last()+1 && e.Flags&metadata.EntryMerged == 0:
			iw.appendLocked(w, e)
		case e.Seq <= w.last() && e.SeqLast >= w.first() && !w.has(e):
			// A rewrite by the compactor (a merge, or retention), not the
			// watch echoing an entry the window already holds.
			w.stale = true
		}
	}
}

// reset drops every window (the watch broke: entries may have been
// missed).
func (iw *indexWindows) reset() {
	iw.mu.Lock()
	defer iw.mu.Unlock()
	for _, ws := range iw.byShard {
		for _, w := range ws {
			w.stale = true
		}
	}
	clear(iw.logEnd)
}

// invalidate marks the windows of a partition's shard stale.
func (iw *indexWindows) invalidate(sh metadata.ShardID) {
	iw.mu.Lock()
	defer iw.mu.Unlock()
	for _, w := range iw.byShard[sh] {
		w.stale = true
	}
}

// has reports whether the window holds e as it is (the agent's own
// commit, learned first-hand and then from the watch).
func (w *shardWindow) has(e *metadata.LogEntry) bool {
	i, ok := slices.BinarySearchFunc(w.entries, e.Seq, func(x *metadata.LogEntry, seq int64) int { return cmp.Compare(x.Seq, seq) })
	if !ok {
		return false
	}
	x := w.entries[i]
	if x.SeqLast != e.SeqLast || x.Flags != e.Flags || x.Committed != e.Committed || len(x.Extents) != len(e.Extents) || len(x.Objects) != len(e.Objects) {
		return false
	}
	for j := range x.Objects {
		if x.Objects[j] != e.Objects[j] {
			return false
		}
	}
	return true
}

// trimEntry returns the part of e a window keeps: no producer deltas.
func trimEntry(e *metadata.LogEntry) *metadata.LogEntry {
	cp := *e
	cp.Producers = nil
	return &cp
}
