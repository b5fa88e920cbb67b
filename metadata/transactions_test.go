package metadata_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/floe-io/floe/metadata"
)

// newTxn is a state ready to create: a producer at epoch 0, no
// transaction under way.
func newTxn(id string) metadata.TxnState {
	return metadata.TxnState{
		TransactionalID: id, ProducerID: 4000, LastProducerID: -1, LastEpoch: -1,
		Status: metadata.TxnEmpty, TimeoutMs: 60000, Updated: 1767225600000,
	}
}

func strp(s string) *string { return &s }

// A record is created, read back as written, updated, listed and deleted,
// under an ID that needs escaping.
func TestTxnRoundTrip(t *testing.T) {
	s := newStore(t)
	ctx := ctxT(t)
	const id = "pay/eu%1 é"

	st, found, err := s.GetTxn(ctx, id)
	if err != nil || found {
		t.Fatalf("before creation: found=%v %v", found, err)
	}
	if st.TransactionalID != id || st.ModRevision != 0 || st.ProducerID != -1 || st.Epoch != -1 || st.LastProducerID != -1 || st.LastEpoch != -1 || st.Status != metadata.TxnEmpty {
		t.Fatalf("state of an absent ID: %+v", st)
	}

	created, err := s.PutTxn(ctx, newTxn(id))
	if err != nil {
		t.Fatal(err)
	}
	if created.ModRevision == 0 {
		t.Fatal("created state has no mod revision")
	}
	got, found, err := s.GetTxn(ctx, id)
	if err != nil || !found || !reflect.DeepEqual(got, created) {
		t.Fatalf("read %+v found=%v %v, want %+v", got, found, err, created)
	}
	raw, err := s.Client().Get(ctx, s.Root()+"txns/", clientv3.WithPrefix())
	if err != nil || len(raw.Kvs) != 1 || strings.Contains(string(raw.Kvs[0].Value), "partitions") {
		t.Fatalf("stored %v: %v", raw.Kvs, err)
	}

	// A transaction: partitions and a group with offsets, given unsorted
	// and twice; PutTxn stores them sorted, once.
	tid := uuid.New()
	next := got
	next.Epoch, next.LastEpoch = 1, 0
	next.AddPartitions([]metadata.TxnPartition{{Topic: "b", TopicID: tid, Partition: 1}, {Topic: "a", Partition: 3}}, 1767225601000)
	next.AddGroup("billing/eu", 1767225601500)
	next.AddOffsets([]metadata.TxnOffset{
		{Group: "billing/eu", Topic: "b", TopicID: tid, Partition: 1, Offset: 10, LeaderEpoch: -1, Metadata: strp("")},
		{Group: "billing/eu", Topic: "a", Partition: 3, Offset: 7, LeaderEpoch: 2},
	})
	next.Partitions = append(next.Partitions, metadata.TxnPartition{Topic: "a", Partition: 0}, metadata.TxnPartition{Topic: "a", Partition: 3})
	updated, err := s.PutTxn(ctx, next)
	if err != nil {
		t.Fatal(err)
	}
	if updated.ModRevision <= created.ModRevision {
		t.Fatalf("mod revision %d after %d", updated.ModRevision, created.ModRevision)
	}
	wantParts := []metadata.TxnPartition{{Topic: "a", Partition: 0}, {Topic: "a", Partition: 3}, {Topic: "b", TopicID: tid, Partition: 1}}
	if !reflect.DeepEqual(updated.Partitions, wantParts) {
		t.Fatalf("partitions as written %+v, want %+v", updated.Partitions, wantParts)
	}
	got, _, err = s.GetTxn(ctx, id)
	if err != nil || !reflect.DeepEqual(got, updated) {
		t.Fatalf("read %+v %v, want %+v", got, err, updated)
	}
	if got.Status != metadata.TxnOngoing || got.Started != 1767225601000 || got.Updated != 1767225601500 || len(got.Offsets) != 2 || got.Offsets[0].Topic != "a" || got.Offsets[1].Metadata == nil {
		t.Fatalf("read %+v", got)
	}

	// Stored JSON is versioned and leaves out empty lists; the key is the
	// escaped ID.
	raw, err = s.Client().Get(ctx, s.Root()+"txns/pay%2Feu%251%20%C3%A9")
	if err != nil || len(raw.Kvs) != 1 {
		t.Fatalf("raw key: %v %v", raw, err)
	}
	if v := string(raw.Kvs[0].Value); !strings.HasPrefix(v, `{"v":1,`) || !strings.Contains(v, `"groups":["billing/eu"]`) {
		t.Fatalf("stored %s", v)
	}

	txns, bad, err := s.ListTxns(ctx)
	if err != nil || len(bad) != 0 || len(txns) != 1 || !reflect.DeepEqual(txns[0], updated) {
		t.Fatalf("listed %+v bad %v: %v", txns, bad, err)
	}

	if err := s.DeleteTxn(ctx, updated); err != nil {
		t.Fatal(err)
	}
	if _, found, err := s.GetTxn(ctx, id); err != nil || found {
		t.Fatalf("after delete: found=%v %v", found, err)
	}
	// Deleting what was read as absent and still is: nothing to do.
	if err := s.DeleteTxn(ctx, metadata.TxnState{TransactionalID: id}); err != nil {
		t.Fatalf("deleting an absent record: %v", err)
	}
}

// Every write compares the mod revision it was read at.
func TestTxnCompareAndSwap(t *testing.T) {
	s := newStore(t)
	ctx := ctxT(t)
	conflict := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, metadata.ErrTxnConflict) || !errors.Is(err, metadata.ErrConflict) {
			t.Fatalf("%s: %v, want ErrTxnConflict wrapping ErrConflict", what, err)
		}
	}

	first, err := s.PutTxn(ctx, newTxn("t"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.PutTxn(ctx, newTxn("t"))
	conflict("creating an existing record", err)

	bumped := first
	bumped.Epoch = 1
	bumped, err = s.PutTxn(ctx, bumped)
	if err != nil {
		t.Fatal(err)
	}
	stale := first
	stale.Epoch = 7
	_, err = s.PutTxn(ctx, stale)
	conflict("writing a stale state", err)
	conflict("deleting a stale state", s.DeleteTxn(ctx, first))
	_, err = s.PutTxn(ctx, metadata.TxnState{TransactionalID: "t", ProducerID: 1, Status: metadata.TxnEmpty, ModRevision: bumped.ModRevision + 1000})
	conflict("writing at a future revision", err)
	got, _, err := s.GetTxn(ctx, "t")
	if err != nil || got.Epoch != 1 {
		t.Fatalf("after refused writes: epoch %d %v", got.Epoch, err)
	}
	// A state read as absent cannot overwrite or delete a record created
	// since.
	conflict("deleting a record read as absent", s.DeleteTxn(ctx, metadata.TxnState{TransactionalID: "t"}))

	// Concurrent read-modify-write loops lose nothing.
	const writers = 8
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				st, _, err := s.GetTxn(ctx, "t")
				if err != nil {
					errs <- err
					return
				}
				st.AddPartitions([]metadata.TxnPartition{{Topic: "orders", Partition: int32(w)}}, 1)
				if _, err := s.PutTxn(ctx, st); err == nil {
					return
				} else if !errors.Is(err, metadata.ErrTxnConflict) {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	got, _, err = s.GetTxn(ctx, "t")
	if err != nil || len(got.Partitions) != writers {
		t.Fatalf("%d partitions after %d concurrent adds (%+v): %v", len(got.Partitions), writers, got.Partitions, err)
	}
}

func TestValidateTransactionalID(t *testing.T) {
	for _, id := range []string{"", strings.Repeat("x", metadata.MaxTransactionalIDLength+1)} {
		if err := metadata.ValidateTransactionalID(id); !errors.Is(err, metadata.ErrInvalidTransactionalID) {
			t.Errorf("%.20q: %v, want ErrInvalidTransactionalID", id, err)
		}
	}
	for _, id := range []string{"a", "a/b", "%zz", "..", " ", "\x00\xff", strings.Repeat("/", metadata.MaxTransactionalIDLength)} {
		if err := metadata.ValidateTransactionalID(id); err != nil {
			t.Errorf("%.20q: %v", id, err)
		}
	}
	s := newStore(t)
	ctx := ctxT(t)
	if _, _, err := s.GetTxn(ctx, ""); !errors.Is(err, metadata.ErrInvalidTransactionalID) {
		t.Errorf("GetTxn of an empty ID: %v", err)
	}
	if _, err := s.PutTxn(ctx, newTxn("")); !errors.Is(err, metadata.ErrInvalidTransactionalID) {
		t.Errorf("PutTxn of an empty ID: %v", err)
	}
	if err := s.DeleteTxn(ctx, newTxn("")); !errors.Is(err, metadata.ErrInvalidTransactionalID) {
		t.Errorf("DeleteTxn of an empty ID: %v", err)
	}
	// IDs that differ only where escaping matters are distinct records.
	for _, id := range []string{"a/b", "a%2Fb", "a"} {
		if _, err := s.PutTxn(ctx, newTxn(id)); err != nil {
			t.Fatalf("%q: %v", id, err)
		}
	}
	txns, bad, err := s.ListTxns(ctx)
	if err != nil || len(bad) != 0 || len(txns) != 3 {
		t.Fatalf("listed %+v bad %v: %v", txns, bad, err)
	}
}

// PutTxn refuses what DecodeTxnState would refuse, before writing.
func TestPutTxnRefusesInvalidStates(t *testing.T) {
	s := newStore(t)
	ctx := ctxT(t)
	many := make([]metadata.TxnPartition, metadata.MaxTxnPartitions+1)
	for i := range many {
		many[i] = metadata.TxnPartition{Topic: "t", Partition: int32(i)}
	}
	for name, edit := range map[string]func(*metadata.TxnState){
		"unknown status":     func(st *metadata.TxnState) { st.Status = "Bogus" },
		"no producer":        func(st *metadata.TxnState) { st.ProducerID = -1 },
		"negative epoch":     func(st *metadata.TxnState) { st.Epoch = -1 },
		"last epoch -2":      func(st *metadata.TxnState) { st.LastEpoch = -2 },
		"last producer -2":   func(st *metadata.TxnState) { st.LastProducerID = -2 },
		"negative timeout":   func(st *metadata.TxnState) { st.TimeoutMs = -1 },
		"negative start":     func(st *metadata.TxnState) { st.Started = -1 },
		"bad topic":          func(st *metadata.TxnState) { st.Partitions = []metadata.TxnPartition{{Topic: "a/b"}} },
		"negative partition": func(st *metadata.TxnState) { st.Partitions = []metadata.TxnPartition{{Topic: "a", Partition: -1}} },
		"empty group":        func(st *metadata.TxnState) { st.Groups = []string{""} },
		"offset of no group": func(st *metadata.TxnState) { st.Offsets = []metadata.TxnOffset{{Topic: "a"}} },
		"too many":           func(st *metadata.TxnState) { st.Partitions = many },
	} {
		st := newTxn("t")
		edit(&st)
		if _, err := s.PutTxn(ctx, st); err == nil || errors.Is(err, metadata.ErrConflict) {
			t.Errorf("%s: %v, want a refusal", name, err)
		}
	}
	if _, found, err := s.GetTxn(ctx, "t"); err != nil || found {
		t.Fatalf("a refused state was written: found=%v %v", found, err)
	}
}

// ListTxns pages through every record in ID order and reports corrupt
// ones apart.
func TestListTxns(t *testing.T) {
	s := newStore(t)
	ctx := ctxT(t)
	// By key "a/" comes first (escaped "a%2F" < "a+"); by ID, "a+".
	for _, id := range []string{"a/", "a+", "b"} {
		if _, err := s.PutTxn(ctx, newTxn(id)); err != nil {
			t.Fatal(err)
		}
	}
	prefix := s.Root() + "txns/"
	for key, value := range map[string]string{
		"bad":  "not json",
		"v2":   `{"v":2,"producer_id":1,"epoch":0,"last_producer_id":-1,"last_epoch":-1,"status":"Empty","timeout_ms":1,"started":0,"updated":0}`,
		"%zz":  `{"v":1,"producer_id":1,"epoch":0,"last_producer_id":-1,"last_epoch":-1,"status":"Empty","timeout_ms":1,"started":0,"updated":0}`,
		"dead": `{"v":1,"producer_id":1,"epoch":0,"last_producer_id":-1,"last_epoch":-1,"status":"Dead","timeout_ms":1,"started":0,"updated":0}`,
	} {
		if _, err := s.Client().Put(ctx, prefix+key, value); err != nil {
			t.Fatal(err)
		}
	}
	txns, bad, err := s.ListTxns(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, st := range txns {
		ids = append(ids, st.TransactionalID)
		if st.ModRevision == 0 {
			t.Errorf("%q listed without its mod revision", st.TransactionalID)
		}
	}
	if want := []string{"a+", "a/", "b", "dead"}; !slices.Equal(ids, want) {
		t.Fatalf("listed %q, want %q", ids, want)
	}
	if len(bad) != 3 {
		t.Fatalf("bad %v, want 3", bad)
	}
	for _, err := range bad {
		if !errors.Is(err, metadata.ErrCorruptValue) || !strings.Contains(err.Error(), prefix) {
			t.Errorf("bad record reported as %v, want ErrCorruptValue naming the key", err)
		}
	}

	// More records than one page holds.
	const n = 2500
	v := `{"v":1,"producer_id":1,"epoch":0,"last_producer_id":-1,"last_epoch":-1,"status":"Empty","timeout_ms":1,"started":0,"updated":0}`
	for lo := 0; lo < n; lo += 100 {
		var ops []clientv3.Op
		for i := lo; i < lo+100; i++ {
			ops = append(ops, clientv3.OpPut(fmt.Sprintf("%sp%05d", prefix, i), v))
		}
		if _, err := s.Client().Txn(ctx).Then(ops...).Commit(); err != nil {
			t.Fatal(err)
		}
	}
	txns, bad, err = s.ListTxns(ctx)
	if err != nil || len(bad) != 3 || len(txns) != n+4 {
		t.Fatalf("listed %d (bad %d), want %d: %v", len(txns), len(bad), n+4, err)
	}
	if !slices.IsSortedFunc(txns, func(a, b metadata.TxnState) int { return strings.Compare(a.TransactionalID, b.TransactionalID) }) {
		t.Fatal("listing not in ID order")
	}
}

func TestDecodeTxnStateRejectsCorruptValues(t *testing.T) {
	const ok = `"producer_id":1,"epoch":0,"last_producer_id":-1,"last_epoch":-1,"timeout_ms":1,"started":0,"updated":0`
	for _, v := range []string{
		`not json`,
		`{"v":2,"status":"Empty",` + ok + `}`,
		`{"status":"Empty",` + ok + `}`,
		`{"v":1,"status":"Bogus",` + ok + `}`,
		`{"v":1,"status":"Empty",` + ok + `,"epoch":-1}`,
		`{"v":1,"status":"Empty",` + ok + `,"epoch":40000}`,
		`{"v":1,"status":"Empty",` + ok + `,"last_epoch":-2}`,
		`{"v":1,"status":"Empty",` + ok + `,"producer_id":-1}`,
		`{"v":1,"status":"Empty",` + ok + `,"last_producer_id":-2}`,
		`{"v":1,"status":"Empty",` + ok + `,"timeout_ms":-1}`,
		`{"v":1,"status":"Empty",` + ok + `,"updated":-1}`,
		`{"v":1,"status":"Ongoing",` + ok + `,"partitions":[{"topic":"b","partition":0},{"topic":"a","partition":0}]}`,
		`{"v":1,"status":"Ongoing",` + ok + `,"partitions":[{"topic":"a","partition":0},{"topic":"a","partition":0}]}`,
		`{"v":1,"status":"Ongoing",` + ok + `,"partitions":[{"topic":"a","partition":-1}]}`,
		`{"v":1,"status":"Ongoing",` + ok + `,"partitions":[{"topic":"","partition":0}]}`,
		`{"v":1,"status":"Ongoing",` + ok + `,"partitions":[{"topic":"a","topic_id":"nope","partition":0}]}`,
		`{"v":1,"status":"Ongoing",` + ok + `,"groups":["b","a"]}`,
		`{"v":1,"status":"Ongoing",` + ok + `,"groups":["a","a"]}`,
		`{"v":1,"status":"Ongoing",` + ok + `,"groups":[""]}`,
		`{"v":1,"status":"Ongoing",` + ok + `,"offsets":[{"group":"g","topic":"a","partition":1},{"group":"g","topic":"a","partition":0}]}`,
		`{"v":1,"status":"Ongoing",` + ok + `,"offsets":[{"group":"","topic":"a","partition":0}]}`,
		`{"v":1,"status":"Ongoing",` + ok + `,"offsets":[{"group":"g","topic":"a","partition":-3}]}`,
	} {
		if _, err := metadata.DecodeTxnState("k", "t", []byte(v)); !errors.Is(err, metadata.ErrCorruptValue) {
			t.Errorf("%s: err %v, want ErrCorruptValue", v, err)
		}
	}
	v := `{"v":1,"status":"Ongoing",` + ok + `,"partitions":[{"topic":"a","partition":0},{"topic":"a","partition":2}],"groups":["g"],"offsets":[{"group":"g","topic":"a","partition":0,"offset":5,"leader_epoch":-1}]}`
	st, err := metadata.DecodeTxnState("k", "t", []byte(v))
	if err != nil || st.TransactionalID != "t" || len(st.Partitions) != 2 || st.Offsets[0].Offset != 5 || st.Offsets[0].Metadata != nil {
		t.Fatalf("%+v %v", st, err)
	}
}

func TestTxnStateHelpers(t *testing.T) {
	id1, id2 := uuid.New(), uuid.New()
	var st metadata.TxnState
	st.Status = metadata.TxnEmpty
	st.AddPartitions([]metadata.TxnPartition{{Topic: "b", Partition: 2}, {Topic: "a", Partition: 10}, {Topic: "a", Partition: 9}, {Topic: "b", Partition: 2}}, 100)
	if st.Status != metadata.TxnOngoing || st.Started != 100 || st.Updated != 100 {
		t.Fatalf("after the first add: %+v", st)
	}
	before := st
	beforeParts := slices.Clone(st.Partitions)
	st.AddPartitions([]metadata.TxnPartition{{Topic: "a", TopicID: id1, Partition: 9}, {Topic: "a", Partition: 1}, {Topic: "c", Partition: 0}}, 200)
	want := []metadata.TxnPartition{{Topic: "a", Partition: 1}, {Topic: "a", TopicID: id1, Partition: 9}, {Topic: "a", Partition: 10}, {Topic: "b", Partition: 2}, {Topic: "c", Partition: 0}}
	if !reflect.DeepEqual(st.Partitions, want) {
		t.Fatalf("partitions %+v, want %+v", st.Partitions, want)
	}
	if st.Started != 100 || st.Updated != 200 {
		t.Fatalf("a later add moved the start: started %d updated %d", st.Started, st.Updated)
	}
	if !reflect.DeepEqual(before.Partitions, beforeParts) {
		t.Fatalf("adding changed a copy made before: %+v", before.Partitions)
	}
	for _, p := range want {
		if !st.HasPartition(p.Topic, p.Partition) {
			t.Errorf("HasPartition(%s, %d) false", p.Topic, p.Partition)
		}
	}
	for _, p := range []metadata.TxnPartition{{Topic: "a", Partition: 0}, {Topic: "a", Partition: 2}, {Topic: "b", Partition: 1}, {Topic: "d", Partition: 0}, {Topic: "", Partition: 0}} {
		if st.HasPartition(p.Topic, p.Partition) {
			t.Errorf("HasPartition(%s, %d) true", p.Topic, p.Partition)
		}
	}
	if (metadata.TxnState{}).HasPartition("a", 0) {
		t.Error("HasPartition of an empty transaction")
	}

	var g metadata.TxnState
	g.AddGroup("z", 50)
	g.AddGroup("a", 60)
	g.AddGroup("z", 70)
	if !slices.Equal(g.Groups, []string{"a", "z"}) || g.Started != 50 || g.Updated != 70 || g.Status != metadata.TxnOngoing {
		t.Fatalf("groups %+v", g)
	}

	var o metadata.TxnState
	o.AddOffsets([]metadata.TxnOffset{
		{Group: "g2", Topic: "a", Partition: 0, Offset: 1},
		{Group: "g1", Topic: "b", Partition: 0, Offset: 2},
		{Group: "g1", Topic: "a", Partition: 1, Offset: 3},
		{Group: "g1", Topic: "b", Partition: 0, Offset: 4},
	})
	o.AddOffsets([]metadata.TxnOffset{{Group: "g2", Topic: "a", Partition: 0, TopicID: id2, Offset: 5, Metadata: strp("m")}})
	var got []string
	for _, x := range o.Offsets {
		got = append(got, fmt.Sprintf("%s %s/%d %d", x.Group, x.Topic, x.Partition, x.Offset))
	}
	if want := []string{"g1 a/1 3", "g1 b/0 4", "g2 a/0 5"}; !slices.Equal(got, want) {
		t.Fatalf("offsets %q, want %q", got, want)
	}
	if o.Offsets[2].TopicID != id2 || *o.Offsets[2].Metadata != "m" || o.Status != "" || o.Started != 0 {
		t.Fatalf("offsets state %+v", o)
	}

	for _, c := range []struct {
		st   metadata.TxnState
		now  int64
		want bool
	}{
		{metadata.TxnState{Status: metadata.TxnOngoing, Started: 1000, TimeoutMs: 500}, 1500, false},
		{metadata.TxnState{Status: metadata.TxnOngoing, Started: 1000, TimeoutMs: 500}, 1501, true},
		{metadata.TxnState{Status: metadata.TxnPrepareCommit, Started: 1000, TimeoutMs: 500}, 9999, false},
		{metadata.TxnState{Status: metadata.TxnEmpty, TimeoutMs: 500}, 9999, false},
		{metadata.TxnState{Status: metadata.TxnOngoing, Started: 1<<63 - 10, TimeoutMs: 500}, 1<<63 - 1, false},
		{metadata.TxnState{Status: metadata.TxnOngoing, Started: 1000, TimeoutMs: -5}, 1001, true},
	} {
		if got := c.st.Expired(c.now); got != c.want {
			t.Errorf("%+v Expired(%d) = %v, want %v", c.st, c.now, got, c.want)
		}
	}
}

// CommitTxnOffsets writes committed offsets that FetchOffsets and the
// committed-offset watch see like OffsetCommit's, with no group claim.
func TestCommitTxnOffsets(t *testing.T) {
	s := newStore(t)
	ctx := ctxT(t)

	var (
		mu  sync.Mutex
		got []metadata.OffsetChange
	)
	fctx, cancel := context.WithCancel(ctx)
	f, err := s.FollowOffsets(fctx, slog.New(slog.DiscardHandler), func(changes []metadata.OffsetChange, _ bool) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, changes...)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); f.Wait() })

	tid := uuid.New()
	offs := []metadata.TxnOffset{
		{Group: "billing/eu", Topic: "orders", TopicID: tid, Partition: 0, Offset: 1, LeaderEpoch: -1},
		{Group: "billing/eu", Topic: "orders", TopicID: tid, Partition: 1, Offset: 2, LeaderEpoch: -1},
		{Group: "billing/eu", Topic: "orders", TopicID: tid, Partition: 0, Offset: 3, LeaderEpoch: 4, Metadata: strp("m")}, // wins over offset 1
		{Group: "g2", Topic: "a", Partition: 0, Offset: 4, LeaderEpoch: -1},
		{Group: "g2", Topic: "a", Partition: 1, Offset: 5, LeaderEpoch: -1},
		{Group: "g2", Topic: "b", Partition: 0, Offset: 6, LeaderEpoch: -1},
		{Group: "g2", Topic: "b", Partition: 1, Offset: 7, LeaderEpoch: -1},
	}
	committed := time.UnixMilli(1767225600123)
	// Six distinct offsets, two per transaction.
	if err := s.CommitTxnOffsets(ctx, offs, committed, 2); err != nil {
		t.Fatal(err)
	}

	resp, err := s.Client().Get(ctx, s.Root()+"offsets/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	revs := map[int64]int{}
	for _, kv := range resp.Kvs {
		revs[kv.ModRevision]++
	}
	if len(resp.Kvs) != 6 || len(revs) != 3 {
		t.Fatalf("%d offsets in %d transactions, want 6 in 3: %v", len(resp.Kvs), len(revs), revs)
	}

	fetched, bad, err := s.FetchOffsets(ctx, "billing/eu")
	if err != nil || len(bad) != 0 || len(fetched) != 2 {
		t.Fatalf("fetched %+v bad %v: %v", fetched, bad, err)
	}
	if o := fetched[0]; o.Topic != "orders" || o.Partition != 0 || o.Offset != 3 || o.LeaderEpoch != 4 || o.Metadata == nil || *o.Metadata != "m" || o.TopicID != tid || o.Committed != committed.UnixMilli() {
		t.Fatalf("fetched %+v", o)
	}
	if o := fetched[1]; o.Offset != 2 || o.Metadata != nil {
		t.Fatalf("fetched %+v", o)
	}
	if g2, _, _ := s.FetchOffsets(ctx, "g2"); len(g2) != 4 || g2[3].Offset != 7 {
		t.Fatalf("g2 fetched %+v", g2)
	}
	names, err := s.ListGroupNames(ctx)
	if err != nil || !slices.Equal(names, []string{"billing/eu", "g2"}) {
		t.Fatalf("group names %q: %v", names, err)
	}

	want := []string{"billing/eu orders/0 3 1767225600123", "billing/eu orders/1 2 1767225600123", "g2 a/0 4 1767225600123", "g2 a/1 5 1767225600123", "g2 b/0 6 1767225600123", "g2 b/1 7 1767225600123"}
	waitFor(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		var have []string
		for _, c := range got {
			have = append(have, fmt.Sprintf("%s %s/%d %d %d", c.Group, c.Offset.Topic, c.Offset.Partition, c.Offset.Offset, c.Offset.Committed))
		}
		if len(have) > len(want) {
			t.Fatalf("followed %q, want %q", have, want)
		}
		return slices.Equal(have, want)
	}, "the committed-offset watch to see the transaction's offsets")

	// Invalid offsets write nothing.
	for _, o := range []metadata.TxnOffset{{Topic: "a"}, {Group: "g", Topic: "a/b"}, {Group: "g", Topic: "a", Partition: -1}} {
		if err := s.CommitTxnOffsets(ctx, []metadata.TxnOffset{{Group: "g3", Topic: "a"}, o}, committed, 128); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
	if offs, _, _ := s.FetchOffsets(ctx, "g3"); len(offs) != 0 {
		t.Fatalf("a refused commit wrote %+v", offs)
	}
	if err := s.CommitTxnOffsets(ctx, nil, committed, 128); err != nil {
		t.Fatalf("committing no offsets: %v", err)
	}
}

// CommitPendingOffsets writes only while the record is unchanged, so a
// coordinator that lost the record cannot overwrite newer offsets.
func TestCommitPendingOffsetsIsFenced(t *testing.T) {
	s := newStore(t)
	ctx := ctxT(t)
	st := newTxn("t")
	st.AddGroup("g", 1)
	st.AddOffsets([]metadata.TxnOffset{{Group: "g", Topic: "a", Partition: 0, Offset: 10, LeaderEpoch: -1}})
	st.Status = metadata.TxnPrepareCommit
	if err := s.CommitPendingOffsets(ctx, st, time.Now(), 128); err == nil {
		t.Fatal("committed the offsets of a state never stored")
	}
	prepared, err := s.PutTxn(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CommitPendingOffsets(ctx, prepared, time.Now(), 128); err != nil {
		t.Fatal(err)
	}
	// Another coordinator completes this transaction and commits a later
	// one's offset.
	next := prepared
	next.Status, next.Offsets = metadata.TxnPrepareCommit, []metadata.TxnOffset{{Group: "g", Topic: "a", Partition: 0, Offset: 20, LeaderEpoch: -1}}
	next, err = s.PutTxn(ctx, next)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CommitPendingOffsets(ctx, next, time.Now(), 128); err != nil {
		t.Fatal(err)
	}
	// The first, late, is refused.
	if err := s.CommitPendingOffsets(ctx, prepared, time.Now(), 128); !errors.Is(err, metadata.ErrTxnConflict) {
		t.Fatalf("late commit: %v, want ErrTxnConflict", err)
	}
	offs, _, err := s.FetchOffsets(ctx, "g")
	if err != nil || len(offs) != 1 || offs[0].Offset != 20 {
		t.Fatalf("offsets %+v %v, want 20", offs, err)
	}
}

func FuzzDecodeTxnState(f *testing.F) {
	f.Add([]byte(`{"v":1,"producer_id":4000,"epoch":3,"last_producer_id":-1,"last_epoch":2,"status":"Ongoing","timeout_ms":60000,` +
		`"partitions":[{"topic":"orders","topic_id":"0b8e5b50-8a43-4a8e-9a66-4c1bd2d1f3f1","partition":0},{"topic":"orders","topic_id":"0b8e5b50-8a43-4a8e-9a66-4c1bd2d1f3f1","partition":3}],` +
		`"groups":["billing"],"offsets":[{"group":"billing","topic":"orders","topic_id":"0b8e5b50-8a43-4a8e-9a66-4c1bd2d1f3f1","partition":0,"offset":42,"leader_epoch":-1,"metadata":""}],` +
		`"started":1767225600000,"updated":1767225600500}`))
	f.Add([]byte(`{"v":1,"producer_id":1,"epoch":0,"last_producer_id":-1,"last_epoch":-1,"status":"Empty","timeout_ms":1,"started":0,"updated":0}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := metadata.DecodeTxnState("k", "t", data)
		if err != nil {
			if !errors.Is(err, metadata.ErrCorruptValue) {
				t.Fatalf("error %v does not wrap ErrCorruptValue", err)
			}
			return
		}
		if st.Epoch < 0 || st.ProducerID < 0 || st.LastEpoch < -1 || st.TimeoutMs < 0 {
			t.Fatalf("accepted inconsistent state %+v", st)
		}
		for _, p := range st.Partitions {
			if !st.HasPartition(p.Topic, p.Partition) {
				t.Fatalf("accepted unsorted partitions %+v", st.Partitions)
			}
		}
		// What the coordinator does next: add to it, check its timeout.
		st.Expired(1 << 62)
		again := st
		again.AddPartitions(st.Partitions, st.Started)
		again.AddOffsets(st.Offsets)
		if !reflect.DeepEqual(again.Partitions, st.Partitions) || !reflect.DeepEqual(again.Offsets, st.Offsets) {
			t.Fatalf("adding what it holds changed it: %+v, was %+v", again, st)
		}
	})
}

// A require_stable read never gives the offset a transaction is
// replacing as stable, even when the transaction completes while the
// read is under way: the partition is either pending or at the
// transaction's offset.
func TestStableOffsetsOfATransactionEndingMidRead(t *testing.T) {
	s := newStore(t)
	ctx := ctxT(t)
	tp := metadata.TopicPartition{Topic: "in", Partition: 0}
	if err := s.CommitTxnOffsets(ctx, []metadata.TxnOffset{{Group: "g", Topic: "in", Partition: 0, Offset: 10, LeaderEpoch: -1}}, time.Now(), 128); err != nil {
		t.Fatal(err)
	}
	// A transaction of the group's offsets, ending: PrepareCommit.
	st := newTxn("stage")
	st.AddGroup("g", 1)
	st.AddOffsets([]metadata.TxnOffset{{Group: "g", Topic: "in", Partition: 0, Offset: 20, LeaderEpoch: -1}})
	st.Status = metadata.TxnOngoing
	if err := s.MarkTxnGroup(ctx, "g", st.TransactionalID); err != nil {
		t.Fatal(err)
	}
	st, err := s.PutTxn(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	st.Status = metadata.TxnPrepareCommit
	if st, err = s.PutTxn(ctx, st); err != nil {
		t.Fatal(err)
	}
	// It completes, as a coordinator completes it, between the reads.
	metadata.SetBetweenStableReads(t, func() {
		if err := s.CommitPendingOffsets(ctx, st, time.Now(), 128); err != nil {
			t.Error(err)
		}
		done := st
		done.Status, done.Groups, done.Offsets = metadata.TxnCompleteCommit, nil, nil
		if _, err := s.PutTxn(ctx, done); err != nil {
			t.Error(err)
		}
		if err := s.UnmarkTxnGroups(ctx, st.TransactionalID, []string{"g"}); err != nil {
			t.Error(err)
		}
	})
	offsets, pending, _, err := s.StableOffsetsOf(ctx, "g", map[metadata.TopicPartition]bool{tp: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(offsets) != 1 {
		t.Fatalf("offsets %+v, want one", offsets)
	}
	if !pending[tp] && offsets[0].Offset != 20 {
		t.Fatalf("offset %d given as stable while the transaction committing 20 ended", offsets[0].Offset)
	}
	// After it, the transaction's offset, stable.
	metadata.SetBetweenStableReads(t, nil)
	offsets, pending, _, err = s.StableOffsetsOf(ctx, "g", nil)
	if err != nil || len(offsets) != 1 || offsets[0].Offset != 20 || pending[tp] {
		t.Fatalf("after the transaction: offsets %+v, pending %v, err %v; want 20, stable", offsets, pending, err)
	}
}
