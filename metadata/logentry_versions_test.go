package metadata_test

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/floe-io/floe/metadata"
)

// fixtureEntry is the entry the frozen version 2 bytes below encode.
func fixtureEntry() metadata.LogEntry {
	return metadata.LogEntry{
		Seq: 41, SeqLast: 41, Committed: 1764000000123, Base: 128, Nexts: []int64{5000, 0, 77},
		Objects: []metadata.ObjectRef{{Key: "flush/3f/20251124T160000Z-000000000000003f.seg", Size: 9000}},
		Extents: []metadata.Extent{
			{Partition: 128, Object: 0, Offset: 16, Length: 4000, First: 4990, Last: 4999, Batches: 3, Skip: []int32{1}, MinTimestamp: 1764000000001, MaxTimestamp: 1764000000100},
			{Partition: 130, Object: 0, Offset: 4016, Length: 900, First: 70, Last: 76, Batches: 1, MinTimestamp: 1764000000050, MaxTimestamp: 1764000000050},
		},
		Producers: []metadata.ProducerDelta{
			{Partition: 128, ProducerID: 5001, Epoch: 2, Batches: []metadata.SeqEntry{{FirstSeq: 100, LastSeq: 104, BaseOffset: 4990}, {FirstSeq: 105, LastSeq: 106, BaseOffset: 4998}}},
			{Partition: 130, ProducerID: 4999, Epoch: 0, Batches: []metadata.SeqEntry{{FirstSeq: 2147483645, LastSeq: 3, BaseOffset: 70}}, InTxn: true, TxnFirst: 70, TxnEnded: 1764000000000},
		},
		Stables: []metadata.StableMark{{Partition: 130, Offset: 70}},
	}
}

// fixtureV2 is fixtureEntry as version 2 wrote it: clusters finalized
// before version 3 hold such entries, and go on writing them.
const fixtureV2 = "02002900f6a1bfe9d6668001038827004d012e666c7573682f33662f3230323531313234543136303030305a2d303030303030303030303030303033662e736567a84602000010a01ffe260903010182a0bfe9d666c8a1bfe9d6660200b01f840746060100e4a0bfe9d666e4a0bfe9d6660200892702026468fe26696a862700000287270001fdffffff0703464780d0dfb4ab3301024600"

// Both encodings a cluster may write decode to the same entry: frozen
// version 2 bytes, and versions 2 and 3 of what this floe encodes.
func TestLogEntryEncodingsDecodeAlike(t *testing.T) {
	want := fixtureEntry()
	frozen, err := hex.DecodeString(fixtureV2)
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"frozen version 2": frozen, "version 2": want.EncodeVersion(2), "version 3": want.EncodeVersion(3)} {
		got, err := metadata.DecodeLogEntry("k", want.Seq, b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !reflect.DeepEqual(got.Extents, want.Extents) || !reflect.DeepEqual(got.Producers, want.Producers) || !reflect.DeepEqual(got.Nexts, want.Nexts) || !reflect.DeepEqual(got.Stables, want.Stables) || got.Committed != want.Committed {
			t.Errorf("%s decodes to %+v, want %+v", name, got, want)
		}
	}
	if got := hex.EncodeToString(want.EncodeVersion(2)); got != fixtureV2 {
		t.Errorf("version 2 encodes as\n%s\nnot as it did\n%s", got, fixtureV2)
	}
	if b := want.Encode(); b[0] != metadata.LatestLogEntryVersion {
		t.Errorf("Encode writes version %d, want %d", b[0], metadata.LatestLogEntryVersion)
	}
}

// wideEntry is a flush's entry for one shard of 64 partitions, each with
// an extent of a few KiB in one object and a batch from each of four
// idempotent producers, at realistic offsets, sequences and times.
func wideEntry() metadata.LogEntry {
	const slots = 64
	now := time.Date(2026, 12, 7, 2, 0, 0, 0, time.UTC).UnixMilli()
	e := metadata.LogEntry{Seq: 9000, SeqLast: 9000, Committed: now, Base: 1024, Nexts: make([]int64, slots),
		Objects: []metadata.ObjectRef{{Key: "flush/a7/20261207T020000Z-00000000000123a7.seg", Size: 8 << 20}}}
	at := int64(16)
	for s := range int64(slots) {
		p := int32(1024 + s)
		next := 1_800_000 + 37*s
		e.Nexts[s] = next
		first := next - 4
		e.Extents = append(e.Extents, metadata.Extent{Partition: p, Offset: at, Length: 2100 + 13*s, First: first, Last: next - 1, Batches: 4,
			MinTimestamp: now - 240 + s, MaxTimestamp: now - 12})
		at += 2100 + 13*s
		for k := range int64(4) {
			seq := int32(450_000 + 3*s + k)
			e.Producers = append(e.Producers, metadata.ProducerDelta{Partition: p, ProducerID: 31_000 + k*7,
				Batches: []metadata.SeqEntry{{FirstSeq: seq, LastSeq: seq, BaseOffset: first + k}}})
		}
	}
	return e
}

// Version 3 writes a wide flush's entry in at most two thirds of version
// 2's bytes, and decodes to the same entry.
func TestCompactLogEntryIsSmaller(t *testing.T) {
	e := wideEntry()
	v2, v3 := e.EncodeVersion(2), e.EncodeVersion(3)
	t.Logf("64 partitions, 4 producers each: version 2 %d bytes, version 3 %d (%.2f)", len(v2), len(v3), float64(len(v3))/float64(len(v2)))
	if 3*len(v3) > 2*len(v2) {
		t.Errorf("version 3 takes %d bytes, version 2 %d: want at most two thirds", len(v3), len(v2))
	}
	a, err := metadata.DecodeLogEntry("k", e.Seq, v2)
	if err != nil {
		t.Fatal(err)
	}
	b, err := metadata.DecodeLogEntry("k", e.Seq, v3)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a, b) {
		t.Errorf("version 3 decodes to %+v, version 2 to %+v", b, a)
	}
	if e.SizeBound() < len(v2) {
		t.Errorf("SizeBound %d is below version 2's %d bytes", e.SizeBound(), len(v2))
	}
}

// A cluster created now writes version 3. One whose record predates
// version 3 writes version 2 until it is finalized, then version 3; both
// kinds of entries stay readable, for its offsets and its producers'
// sequences, and the version is never lowered.
func TestClusterLogEntryVersion(t *testing.T) {
	ctx := ctxT(t)
	fresh := newStore(t)
	info, err := fresh.EnsureCluster(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.EntryVersion() != metadata.LatestLogEntryVersion {
		t.Fatalf("a new cluster writes version %d, want %d", info.EntryVersion(), metadata.LatestLogEntryVersion)
	}

	s := newStore(t)
	// The record an agent of a release before version 3 wrote.
	old, err := json.Marshal(map[string]any{"v": 1, "id": "old-cluster", "created": time.Now().UTC()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Client().Put(ctx, s.Root()+"cluster", string(old)); err != nil {
		t.Fatal(err)
	}
	if info, err := s.EnsureCluster(ctx); err != nil || info.EntryVersion() != 2 {
		t.Fatalf("an old cluster's record: %+v, %v; want version 2", info, err)
	}
	if _, err := s.FinalizeLogEntryVersion(ctx, 1); err == nil {
		t.Error("finalizing version 1 (below what floe writes) succeeded")
	}
	if _, err := s.FinalizeLogEntryVersion(ctx, metadata.LatestLogEntryVersion+1); err == nil {
		t.Error("finalizing a version this floe does not write succeeded")
	}
	tp := mkTopic(t, s, "versions", 1)
	c := s.NewCommitter(metadata.CommitConfig{})
	commit := func(b metadata.BatchMeta) metadata.BatchOutcome {
		t.Helper()
		res, err := c.Commit(ctx, []metadata.Append{{Topic: tp, Partition: 0, Object: fmt.Sprintf("o%d", b.BaseSequence), Length: 1, Batches: []metadata.BatchMeta{b}}})
		if err != nil {
			t.Fatal(err)
		}
		return res[0].Batches[0]
	}
	versions := func() []byte {
		t.Helper()
		resp, err := s.Client().Get(ctx, s.Root()+"log/", clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend))
		if err != nil {
			t.Fatal(err)
		}
		var out []byte
		for _, kv := range resp.Kvs {
			out = append(out, kv.Value[0])
		}
		return out
	}
	first := commit(idem(0, 7, 0, 0, 3))
	if v := versions(); fmt.Sprint(v) != "[2]" {
		t.Fatalf("entries before finalizing are versions %v, want [2]", v)
	}
	info, err = s.FinalizeLogEntryVersion(ctx, metadata.LatestLogEntryVersion)
	if err != nil || info.EntryVersion() != metadata.LatestLogEntryVersion || info.ID != "old-cluster" {
		t.Fatalf("finalizing: %+v, %v", info, err)
	}
	second := commit(idem(0, 7, 0, 3, 2))
	if v := versions(); fmt.Sprint(v) != fmt.Sprint([]byte{2, metadata.LatestLogEntryVersion}) {
		t.Fatalf("entries after finalizing are versions %v, want 2 then %d", v, metadata.LatestLogEntryVersion)
	}
	if first.BaseOffset != 0 || second.BaseOffset != 3 {
		t.Fatalf("offsets %d and %d, want 0 and 3", first.BaseOffset, second.BaseOffset)
	}
	// Another agent reads both entries: its retries of either batch are
	// duplicates at their offsets.
	other := s.NewCommitter(metadata.CommitConfig{})
	for _, retry := range []struct {
		b    metadata.BatchMeta
		base int64
	}{{idem(0, 7, 0, 0, 3), 0}, {idem(0, 7, 0, 3, 2), 3}} {
		res, err := other.Commit(ctx, []metadata.Append{{Topic: tp, Partition: 0, Object: "retry", Length: 1, Batches: []metadata.BatchMeta{retry.b}}})
		if err != nil {
			t.Fatal(err)
		}
		if o := res[0].Batches[0]; !o.Duplicate || o.BaseOffset != retry.base {
			t.Errorf("retry of sequence %d on another agent: %+v, want a duplicate at %d", retry.b.BaseSequence, o, retry.base)
		}
	}
	if _, err := s.FinalizeLogEntryVersion(ctx, 2); err == nil {
		t.Error("lowering the cluster's log entry version succeeded")
	}
	// A store started after reads the record.
	later := newStoreOf(t, s)
	if info, err := later.EnsureCluster(ctx); err != nil || info.EntryVersion() != metadata.LatestLogEntryVersion {
		t.Errorf("the record read again: %+v, %v", info, err)
	}
}

// newStoreOf returns another store of s's cluster, as another agent has.
func newStoreOf(t *testing.T, s *metadata.Store) *metadata.Store {
	t.Helper()
	name := strings.TrimSuffix(strings.TrimPrefix(s.Root(), "/floe/"), "/")
	other, err := metadata.NewStore(s.Client(), name)
	if err != nil {
		t.Fatal(err)
	}
	return other
}
