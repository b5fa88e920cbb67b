package bench

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// stallTimeout fails a read that makes no progress for this long.
const stallTimeout = 60 * time.Second

// groupRead is one consumer group reading a topic up to known end
// offsets.
type groupRead struct {
	group string
	topic string
	// onRecord, if set, sees every record (on the consumer's goroutine).
	onRecord func(*kgo.Record, time.Time)
	// opts, if set, are the connection options of the group's client
	// named name (default: the run's).
	opts func(name string) []kgo.Opt

	bytes    atomic.Int64
	records  atomic.Int64
	assigned atomic.Int64 // UnixNano of the first assignment
	firstRec atomic.Int64 // UnixNano of the first fetch that returned records
	lastRec  atomic.Int64 // UnixNano of the last record

	// laps is how many times each partition is read from its start
	// offset to its end (at least once): a consumer that reaches a
	// partition's end before its last lap seeks back to the start.
	laps int

	mu     sync.Mutex
	next   map[int32]int64
	from   map[int32]int64 // nil: the log start
	end    map[int32]int64 // nil until known
	lap    map[int32]int   // laps done, per partition
	left   map[int32]bool  // partitions not yet read to their end
	done   chan struct{}
	closed bool
}

func newGroupRead(group, topic string) *groupRead {
	return &groupRead{group: group, topic: topic, laps: 1, next: map[int32]int64{}, lap: map[int32]int{}, done: make(chan struct{})}
}

// setEnd says where the group stops: every partition read to end, from
// from (the group's starting offsets; nil for the log start).
func (g *groupRead) setEnd(from, end map[int32]int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.from = from
	g.end = end
	g.left = map[int32]bool{}
	for p, e := range end {
		if e > max(from[p], g.next[p]) {
			g.left[p] = true
		}
	}
	g.closeIfDoneLocked()
}

func (g *groupRead) closeIfDoneLocked() {
	if g.end != nil && len(g.left) == 0 && !g.closed {
		g.closed = true
		close(g.done)
	}
}

// advance records that partition p was read up to next. It returns the
// offset to seek p back to when that ended a lap before the last, else
// -1.
func (g *groupRead) advance(p int32, next int64) int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	if next <= g.next[p] {
		return -1
	}
	g.next[p] = next
	if !g.left[p] || next < g.end[p] {
		return -1
	}
	if g.lap[p]++; g.lap[p] < g.laps {
		g.next[p] = g.from[p] - 1
		return g.from[p]
	}
	delete(g.left, p)
	g.closeIfDoneLocked()
	return -1
}

// readGroups runs the groups at once, each with cfg.Consumers clients
// from the start of the topic (or their committed offsets), until every
// group has read to its end offsets.
func (r *runner) readGroups(ctx context.Context, groups []*groupRead, reset kgo.Offset, prog *Phase) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, len(groups)*r.cfg.Consumers+1)
	var fetchOpts []kgo.Opt
	if n := r.cfg.FetchPartitionBytes; n > 0 {
		fetchOpts = append(fetchOpts, kgo.FetchMaxPartitionBytes(n))
	}
	if r.cfg.ReadCommitted {
		fetchOpts = append(fetchOpts, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	}
	for _, g := range groups {
		for i := range r.cfg.Consumers {
			name := fmt.Sprintf("%s-%d", g.group, i)
			base := r.clientOpts(name)
			if g.opts != nil {
				base = g.opts(name)
			}
			cl, err := kgo.NewClient(append(append(base, fetchOpts...),
				kgo.ConsumerGroup(g.group),
				kgo.ConsumeTopics(g.topic),
				kgo.ConsumeResetOffset(reset),
				kgo.FetchMaxWait(time.Second),
				kgo.OnPartitionsAssigned(func(context.Context, *kgo.Client, map[string][]int32) {
					g.assigned.CompareAndSwap(0, time.Now().UnixNano())
				}),
			)...)
			if err != nil {
				cancel()
				wg.Wait()
				return fmt.Errorf("consumer: %w", err)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer cl.Close()
				for {
					select {
					case <-g.done:
						return
					default:
					}
					fs := cl.PollFetches(ctx)
					if ctx.Err() != nil {
						return
					}
					now := time.Now()
					fs.EachError(func(t string, p int32, err error) {
						errs <- fmt.Errorf("group %s reading %s/%d: %w", g.group, t, p, err)
						cancel()
					})
					var n int64
					var rewind map[int32]kgo.EpochOffset
					fs.EachPartition(func(fp kgo.FetchTopicPartition) {
						if len(fp.Records) == 0 {
							return
						}
						for _, rec := range fp.Records {
							n += int64(len(rec.Key) + len(rec.Value))
							if g.onRecord != nil {
								g.onRecord(rec, now)
							}
						}
						g.records.Add(int64(len(fp.Records)))
						if at := g.advance(fp.Partition, fp.Records[len(fp.Records)-1].Offset+1); at >= 0 {
							if rewind == nil {
								rewind = map[int32]kgo.EpochOffset{}
							}
							rewind[fp.Partition] = kgo.EpochOffset{Epoch: -1, Offset: at}
						}
					})
					if rewind != nil {
						cl.SetOffsets(map[string]map[int32]kgo.EpochOffset{g.topic: rewind})
					}
					if n > 0 {
						g.firstRec.CompareAndSwap(0, now.UnixNano())
						g.bytes.Add(n)
						g.lastRec.Store(now.UnixNano())
						prog.Add(n)
					}
				}
			}()
		}
	}
	// Watch for stalls: a group that stops moving fails the phase.
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		last, lastMove := int64(-1), time.Now()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			all := true
			var total int64
			for _, g := range groups {
				total += g.records.Load()
				select {
				case <-g.done:
				default:
					all = false
				}
			}
			if all {
				cancel()
				return
			}
			if total != last {
				last, lastMove = total, time.Now()
			} else if time.Since(lastMove) > stallTimeout {
				errs <- fmt.Errorf("consumer groups made no progress for %s", stallTimeout)
				cancel()
				return
			}
		}
	}()
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	for _, g := range groups {
		select {
		case <-g.done:
		default:
			if err := ctxErr(ctx); err != nil {
				return err
			}
			return fmt.Errorf("group %s stopped before the end of %s", g.group, g.topic)
		}
	}
	return nil
}

func ctxErr(ctx context.Context) error {
	if err := context.Cause(ctx); err != nil && err != context.Canceled {
		return err
	}
	return nil
}

// endOffsets lists the topic's log start and high watermarks.
func (r *runner) endOffsets(ctx context.Context, topic string) (start, end map[int32]int64, err error) {
	adm := kadm.NewClient(r.admin)
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, nil, fmt.Errorf("listing end offsets of %s: %w", topic, err)
	}
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		return nil, nil, fmt.Errorf("listing start offsets of %s: %w", topic, err)
	}
	start, end = map[int32]int64{}, map[int32]int64{}
	var ferr error
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil && ferr == nil {
			ferr = fmt.Errorf("end offset of %s/%d: %w", topic, o.Partition, o.Err)
		}
		end[o.Partition] = o.Offset
	})
	starts.Each(func(o kadm.ListedOffset) {
		if o.Err != nil && ferr == nil {
			ferr = fmt.Errorf("start offset of %s/%d: %w", topic, o.Partition, o.Err)
		}
		start[o.Partition] = o.Offset
	})
	return start, end, ferr
}

// commitStart commits offsets for a group that has no members yet, so
// its consumers start there.
func (r *runner) commitStart(ctx context.Context, group, topic string, at map[int32]int64) error {
	adm := kadm.NewClient(r.admin)
	offs := kadm.Offsets{}
	for p, o := range at {
		offs.AddOffset(topic, p, o, -1)
	}
	resps, err := adm.CommitOffsets(ctx, group, offs)
	if err == nil {
		err = resps.Error()
	}
	if err != nil {
		return fmt.Errorf("committing start offsets of group %s: %w", group, err)
	}
	return nil
}
