package fault

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floe-io/floe/internal/kafkatest"
)

// The changelog workload: an idempotent producer updating and deleting
// keys of a compacted topic (cleanup.policy=compact) under the faults,
// while the compactor cleans it, and a check of what Kafka promises a
// reader of a compacted topic from the start.

// changelogTopic is the compacted topic; changelogPartitions its
// partitions, changelogKeys the keys updated.
const (
	changelogTopic      = "fault-changelog"
	changelogPartitions = 3
	changelogKeys       = 60
)

// changelogConfigs make the compactor clean the topic at every pass.
var changelogConfigs = map[string]*string{
	"cleanup.policy":            kadm.StringPtr("compact"),
	"min.cleanable.dirty.ratio": kadm.StringPtr("0.01"),
}

// changelogSent is one record the workload sent.
type changelogSent struct {
	key   string
	tomb  bool
	acked bool
	// partition and offset, once acknowledged.
	partition int32
	offset    int64
}

// changelogRecorder keeps what the changelog workload sent, by value ID.
type changelogRecorder struct {
	mu   sync.Mutex
	sent map[string]*changelogSent
}

func newChangelogRecorder() *changelogRecorder {
	return &changelogRecorder{sent: map[string]*changelogSent{}}
}

// changelog produces updates (one in eight a tombstone, named by its
// header) of changelogKeys keys at about rate records a second until ctx
// ends, then waits up to a minute for what it sent to resolve.
func changelog(ctx context.Context, seeds []string, rec *changelogRecorder, rng *rand.Rand, rate int) error {
	cl, err := kgo.NewClient(append(baseOpts(seeds),
		kgo.DefaultProduceTopic(changelogTopic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordDeliveryTimeout(8*time.Second),
		kgo.ProducerLinger(5*time.Millisecond),
	)...)
	if err != nil {
		return err
	}
	defer cl.Close()
	var seq int64
	paced(ctx, rate, func(done func()) {
		id := fmt.Sprintf("c-%d", seq)
		seq++
		s := &changelogSent{key: fmt.Sprintf("ck-%03d", rng.IntN(changelogKeys)), tomb: rng.IntN(8) == 0}
		r := &kgo.Record{Key: []byte(s.key), Headers: []kgo.RecordHeader{{Key: "id", Value: []byte(id)}}}
		if !s.tomb {
			r.Value = []byte(id + " " + strings.Repeat("v", 40))
		}
		rec.mu.Lock()
		rec.sent[id] = s
		rec.mu.Unlock()
		cl.Produce(context.Background(), r, func(r *kgo.Record, err error) {
			done()
			if err != nil {
				return // may or may not be in the log
			}
			rec.mu.Lock()
			s.acked, s.partition, s.offset = true, r.Partition, r.Offset
			rec.mu.Unlock()
		})
	})
	fctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := cl.Flush(fctx); err != nil {
		return fmt.Errorf("changelog producer: flushing at the end: %w", err)
	}
	return nil
}

// changelogRead is one record read back: its offset, key, whether it is
// a tombstone, and the ID of the record sent.
type changelogRead struct {
	offset int64
	key    string
	tomb   bool
	id     string
}

// readChangelog reads every partition of the compacted topic from its
// start to its end with Fetch requests, parsed by the client's own batch
// parser (kgo.ProcessFetchPartition), which also says where the next fetch
// starts: past a batch's last offset, which a cleaned batch may hold no
// record at.
func readChangelog(seeds []string) (map[int32][]changelogRead, error) {
	cl, err := kgo.NewClient(baseOpts(seeds)...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ends, err := adm.ListEndOffsets(ctx, changelogTopic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("listing end offsets of %s: %w", changelogTopic, err)
	}
	topics, err := adm.ListTopics(ctx, changelogTopic)
	if err != nil {
		return nil, err
	}
	id := topics[changelogTopic].ID
	out := map[int32][]changelogRead{}
	for p := range int32(changelogPartitions) {
		end, _ := ends.Lookup(changelogTopic, p)
		for next := int64(0); next < end.Offset; {
			resp, err := kafkatest.FetchRequest(changelogTopic, id, p, next, 0).RequestWith(ctx, cl)
			if err != nil {
				return nil, fmt.Errorf("fetching %s/%d at %d: %w", changelogTopic, p, next, err)
			}
			rp := resp.Topics[0].Partitions[0]
			fp, after := kgo.ProcessFetchPartition(kgo.ProcessFetchPartitionOpts{Offset: next, Topic: changelogTopic, Partition: p}, &rp, kgo.DefaultDecompressor(), nil)
			if fp.Err != nil {
				return nil, fmt.Errorf("fetching %s/%d at %d: %w", changelogTopic, p, next, fp.Err)
			}
			if after <= next {
				return nil, fmt.Errorf("%s/%d: a fetch at %d below the end %d returned nothing", changelogTopic, p, next, end.Offset)
			}
			for _, r := range fp.Records {
				rd := changelogRead{offset: r.Offset, key: string(r.Key), tomb: r.Value == nil}
				for _, h := range r.Headers {
					if h.Key == "id" {
						rd.id = string(h.Value)
					}
				}
				out[p] = append(out[p], rd)
			}
			next = after
		}
	}
	return out, nil
}

// checkChangelog checks a compacted topic read from the start against
// what was sent: every record read was sent, with its key and kind, at
// the offset it was acknowledged at if it was; offsets increase; no
// record twice; every key's latest acknowledged record is there unless a
// later record of that key is; and fewer records than were acknowledged
// (the cleaner removed some). It returns the problems found and how many
// records were read and acknowledged.
func checkChangelog(rec *changelogRecorder, log map[int32][]changelogRead) (problems []string, read, acked int) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	latest := map[string]*changelogSent{}
	for _, s := range rec.sent {
		if !s.acked {
			continue
		}
		acked++
		if l := latest[s.key]; l == nil || s.offset > l.offset {
			latest[s.key] = s
		}
	}
	type at struct {
		partition int32
		offset    int64
	}
	seen := map[string]bool{}
	newest := map[string]at{} // the newest record read of each key
	for p, rs := range log {
		prev := int64(-1)
		for _, r := range rs {
			read++
			s := rec.sent[r.id]
			switch {
			case r.offset <= prev:
				problems = append(problems, fmt.Sprintf("%s/%d: offset %d after %d", changelogTopic, p, r.offset, prev))
			case s == nil:
				problems = append(problems, fmt.Sprintf("%s/%d offset %d: record %q was never sent", changelogTopic, p, r.offset, r.id))
			case seen[r.id]:
				problems = append(problems, fmt.Sprintf("%s/%d offset %d: record %s read twice", changelogTopic, p, r.offset, r.id))
			case s.key != r.key || s.tomb != r.tomb:
				problems = append(problems, fmt.Sprintf("%s/%d offset %d: record %s read as key %s (tombstone %v), sent as %s (%v)", changelogTopic, p, r.offset, r.id, r.key, r.tomb, s.key, s.tomb))
			case s.acked && (s.partition != p || s.offset != r.offset):
				problems = append(problems, fmt.Sprintf("%s/%d offset %d: record %s was acknowledged at %d/%d", changelogTopic, p, r.offset, r.id, s.partition, s.offset))
			}
			prev = r.offset
			seen[r.id] = true
			newest[r.key] = at{p, r.offset}
		}
	}
	for key, l := range latest {
		n, ok := newest[key]
		if !ok || n.partition != l.partition || n.offset < l.offset {
			problems = append(problems, fmt.Sprintf("key %s: its latest acknowledged record (%d/%d) is gone and no later one is there", key, l.partition, l.offset))
		}
	}
	if read >= acked {
		problems = append(problems, fmt.Sprintf("read %d records of the compacted topic, %d were acknowledged: nothing was cleaned", read, acked))
	}
	return problems, read, acked
}
