package metadata_test

import (
	"sync"
	"testing"
	"time"

	"github.com/floe-io/floe/metadata"
)

type recordingObserver struct {
	mu       sync.Mutex
	outcomes []metadata.TxnOutcome
}

func (o *recordingObserver) ObserveCommitTxn(d time.Duration, outcome metadata.TxnOutcome) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.outcomes = append(o.outcomes, outcome)
}

func (o *recordingObserver) count(outcome metadata.TxnOutcome) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	for _, x := range o.outcomes {
		if x == outcome {
			n++
		}
	}
	return n
}

// The observer sees each transaction: a commit on a state another
// committer has moved is a conflict, then the retry commits.
func TestCommitObserverSeesConflicts(t *testing.T) {
	s := newStore(t)
	tp := mkTopic(t, s, "observed", 1)
	ctx := ctxT(t)
	obs := &recordingObserver{}
	c1 := s.NewCommitter(metadata.CommitConfig{Observer: obs})
	c2 := s.NewCommitter(metadata.CommitConfig{})
	app := func(obj string) []metadata.Append {
		return []metadata.Append{{Topic: tp, Partition: 0, Object: obj, Offset: 0, Length: 10, Batches: plain(1)}}
	}
	if _, err := c1.Commit(ctx, app("o1")); err != nil {
		t.Fatal(err)
	}
	if got := obs.count(metadata.TxnCommitted); got != 1 {
		t.Fatalf("committed %d transactions, want 1", got)
	}
	if _, err := c2.Commit(ctx, app("o2")); err != nil { // c1's view is now stale
		t.Fatal(err)
	}
	res, err := c1.Commit(ctx, app("o3"))
	if err != nil || res[0].Batches[0].BaseOffset != 2 {
		t.Fatalf("commit after conflict: %v %+v", err, res)
	}
	if obs.count(metadata.TxnConflict) != 1 || obs.count(metadata.TxnCommitted) != 2 {
		t.Fatalf("outcomes %v, want one conflict and two commits", obs.outcomes)
	}
}
