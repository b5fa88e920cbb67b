package metadata

import (
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

// Fuzz targets for every etcd value floe decodes (groups and committed
// offsets are in groups_test.go). etcd is trusted, but a value written by
// a newer or buggy floe, or by hand with etcdctl, must give an error the
// log can name, never a panic in an agent or the compactor. Each target
// also runs what the code does next with a decoded value, since a decoder
// that accepts an inconsistent value only moves the panic. scripts/fuzz.sh
// runs each one for a while in `make test`.

func FuzzDecodeLogEntry(f *testing.F) {
	e := LogEntry{
		Seq: 7, SeqLast: 9, Committed: 1700000000000, Base: 64, Nexts: []int64{10, 0, 300},
		Objects: []ObjectRef{{Key: "flush/ab/20240501T120000Z-00000000000000ab.seg", Size: 4096}},
		Extents: []Extent{
			{Partition: 64, Object: 0, Offset: 16, Length: 200, First: 5, Last: 9, Batches: 2, Skip: []int32{1, 4}, MinTimestamp: -1, MaxTimestamp: 2},
			{Partition: 66, Object: 0, Offset: 216, Length: 20, First: 299, Last: 299, Batches: 1},
		},
		Producers: []ProducerDelta{{Partition: 64, ProducerID: 9, Epoch: 3, Batches: []SeqEntry{{FirstSeq: 2147483647, LastSeq: 0, BaseOffset: 5}}}},
	}
	f.Add(e.Encode())
	f.Add(e.EncodeVersion(entryVersionTxn))
	m := LogEntry{Seq: 1, SeqLast: 1, Flags: EntryMerged, Nexts: []int64{0}}
	f.Add(m.Encode())
	f.Add([]byte{1})
	f.Add([]byte{2, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := DecodeLogEntry("k", 0, data)
		if err != nil {
			if !errors.Is(err, ErrCorruptValue) {
				t.Fatalf("error %v does not wrap ErrCorruptValue", err)
			}
			return
		}
		for _, x := range e.Extents {
			if x.Length <= 0 || x.Last < x.First || x.Batches <= 0 || int(x.Object) >= len(e.Objects) {
				t.Fatalf("accepted inconsistent extent %+v", x)
			}
			if ie := e.IndexEntry(x); ie.Records() < 1 {
				t.Fatalf("extent %+v holds %d records", x, ie.Records())
			}
		}
		checkExtentOf(t, &e)
		again, err := DecodeLogEntry("k", e.Seq, e.Encode())
		if err != nil || !reflect.DeepEqual(again, e) {
			t.Fatalf("re-encoded entry does not decode the same: %+v, %v", again, err)
		}
		// A committer applies a decoded entry's deltas.
		pp := newPartitionProducers()
		for _, d := range e.Producers {
			pp.applyDelta(d, e.Committed)
			pp.trim(e.Committed-1, 2)
		}
	})
}

// TestSnapshotOfSmallProducers: producers with no batches encode in four
// bytes each, and a snapshot of them decodes.
func TestSnapshotOfSmallProducers(t *testing.T) {
	pp := newPartitionProducers()
	for pid := range int64(3) {
		pp.set(pid, ProducerState{})
	}
	if _, got, err := decodeSnapshot("k", encodeSnapshot(1, pp)); err != nil || got.len() != 3 {
		t.Fatalf("decoding a snapshot of 3 small producers: %v", err)
	}
	e := LogEntry{Seq: 1, SeqLast: 1, Nexts: []int64{0, 0, 0}}
	for p := range int32(3) {
		e.Producers = append(e.Producers, ProducerDelta{Partition: p, ProducerID: 1})
	}
	if got, err := DecodeLogEntry("k", 1, e.Encode()); err != nil || len(got.Producers) != 3 {
		t.Fatalf("decoding an entry of 3 small producer deltas: %v", err)
	}
}

func FuzzDecodeSnapshot(f *testing.F) {
	pp := newPartitionProducers()
	pp.set(9, ProducerState{Epoch: 1, Batches: []SeqEntry{{FirstSeq: 0, LastSeq: 4, BaseOffset: 30}, {FirstSeq: 5, LastSeq: 9, BaseOffset: 35}}, LastWrite: 1700000000000})
	pp.set(3, ProducerState{Epoch: 0, LastWrite: -5})
	f.Add(encodeSnapshot(12, pp))
	f.Add(encodeSnapshot(0, nil))
	f.Add([]byte{1, 0, 200})
	f.Fuzz(func(t *testing.T, data []byte) {
		seq, pp, err := decodeSnapshot("k", data)
		if err != nil {
			if !errors.Is(err, ErrCorruptValue) {
				t.Fatalf("error %v does not wrap ErrCorruptValue", err)
			}
			return
		}
		seq2, pp2, err := decodeSnapshot("k", encodeSnapshot(seq, pp))
		if err != nil || seq2 != seq || pp2.len() != pp.len() {
			t.Fatalf("re-encoded snapshot does not decode the same: %d %d, %v", seq2, pp2.len(), err)
		}
		for el := pp.lru.Front(); el != nil; el = el.Next() {
			it := el.Value.(*producerItem)
			b := BatchMeta{Records: 3, ProducerID: it.id, ProducerEpoch: it.Epoch}
			if n := len(it.Batches); n > 0 {
				b.BaseSequence = it.Batches[n-1].FirstSeq
			}
			checkBatch(it, b)
			b.ProducerEpoch++
			checkBatch(it, b)
		}
		open := pp.open
		if pp.stable(math.MaxInt64, nil) < math.MaxInt64 != (open > 0) {
			t.Fatalf("%d producers with a transaction open, last stable offset %d", open, pp.stable(math.MaxInt64, nil))
		}
		// Trimming everything keeps only producers with a transaction
		// open: they hold the partition's last stable offset.
		pp.trim(math.MaxInt64, 0)
		if pp.len() != open || pp.open != open {
			t.Fatalf("trim left %d producers (%d open), want the %d with a transaction open", pp.len(), pp.open, open)
		}
	})
}

func FuzzDecodeTopic(f *testing.F) {
	t0 := Topic{Name: "orders", ID: uuid.MustParse("9b2f3c2e-7f57-4a8e-9d0e-1f2a3b4c5d6e"), Partitions: 6, ReplicationFactor: 3,
		Configs: map[string]string{"retention.ms": "1000", "cleanup.policy": "compact,delete"}, Created: time.Unix(1700000000, 0).UTC()}
	f.Add([]byte(t0.value()))
	f.Add([]byte(`{"v":1,"id":"00000000-0000-0000-0000-000000000000","partitions":1}`))
	f.Add([]byte(`{"v":1,"id":"9b2f3c2e-7f57-4a8e-9d0e-1f2a3b4c5d6e","partitions":-1}`))
	f.Add([]byte(`{"v":1,"id":"9b2f3c2e-7f57-4a8e-9d0e-1f2a3b4c5d6e","partitions":1,"configs":{"retention.ms":"x","max.message.bytes":"99999999999"}}`))
	broker := BrokerConfig{"log.retention.ms": "604800000", "log.cleanup.policy": "delete"}
	f.Fuzz(func(t *testing.T, data []byte) {
		topic, err := decodeTopic("k", "orders", data, 1, 2)
		if err != nil {
			if !errors.Is(err, ErrCorruptValue) {
				t.Fatalf("error %v does not wrap ErrCorruptValue", err)
			}
			return
		}
		if topic.Partitions < 0 || topic.ID == uuid.Nil {
			t.Fatalf("accepted inconsistent topic %+v", topic)
		}
		// Agents and the compactor resolve the topic's settings next.
		broker.Settings(topic.Configs)
		again, err := decodeTopic("k", "orders", []byte(topic.value()), 1, 2)
		if err != nil || again.ID != topic.ID || again.Partitions != topic.Partitions || len(again.Configs) != len(topic.Configs) {
			t.Fatalf("re-encoded topic does not decode the same: %+v, %v", again, err)
		}
	})
}

func FuzzDecodeAgentInfo(f *testing.F) {
	a := AgentInfo{V: 1, NodeID: 2, AgentID: "a", Host: "10.0.0.1", Port: 9092, Listeners: map[string]string{"PLAINTEXT": "10.0.0.1:9092", "SASL_SSL": "[::1]:9093"}, Zone: "z", Started: time.Unix(1, 0).UTC()}
	f.Add(uint8(2), []byte(encode(a)))
	f.Add(uint8(0), []byte(`{"v":1,"node_id":0,"host":"h","port":1,"listeners":{"SASL_SSL":"nonsense"}}`))
	f.Add(uint8(3), []byte(`{"v":1,"node_id":3,"host":"","port":-1}`))
	s := &Store{root: "/floe/fuzz/"}
	f.Fuzz(func(t *testing.T, id uint8, data []byte) {
		kv := &mvccpb.KeyValue{Key: []byte(s.agentKey(int32(id))), Value: data}
		a, err := s.decodeAgent(kv)
		if err != nil {
			return
		}
		if a.NodeID != int32(id) || a.Host == "" || a.Port <= 0 {
			t.Fatalf("accepted inconsistent registration %+v", a)
		}
		// Metadata responses name each agent's endpoint per listener.
		for _, proto := range []string{"PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"} {
			a.Endpoint(proto)
		}
		_ = a.Addr()
	})
}

func FuzzDecodeACL(f *testing.F) {
	acl := ACL{ResourceType: ACLResourceTopic, ResourceName: "orders", PatternType: ACLPatternPrefixed, Principal: "User:alice", Host: "*", Operation: ACLOpRead, Permission: ACLPermissionAllow}
	f.Add([]byte(encode(acl)))
	f.Add([]byte(`{"resource_type":300}`))
	f.Add([]byte(`{"resource_type":4,"resource_name":"x","pattern_type":3,"principal":"User:a","host":"*","operation":2,"permission":3}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var a ACL
		if err := decode("k", data, &a); err != nil {
			if !errors.Is(err, ErrCorruptValue) {
				t.Fatalf("error %v does not wrap ErrCorruptValue", err)
			}
			return
		}
		// The view keeps what decodes; authorization and DescribeAcls
		// read its fields, and deletion keys it by id.
		_ = a.Validate()
		if a.id() != a.id() || len(a.id()) != 32 {
			t.Fatalf("unstable ACL id for %+v", a)
		}
	})
}

func FuzzDecodeUser(f *testing.F) {
	cred, err := NewScramCredential(ScramSHA256, []byte("salt"), []byte("salted-password"), MinScramIterations)
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte(encode(userValue{V: 1, Scram: map[string]ScramCredential{ScramSHA256: cred}})))
	f.Add([]byte(`{"v":1,"scram":{"SCRAM-SHA-1":{"salt":"%%%"}}}`))
	f.Add([]byte(`{"v":1,"scram":null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var v userValue
		if err := decode("k", data, &v); err != nil {
			if !errors.Is(err, ErrCorruptValue) {
				t.Fatalf("error %v does not wrap ErrCorruptValue", err)
			}
			return
		}
		for mech := range v.Scram {
			_, _ = ScramHash(mech)
		}
	})
}

// FuzzDecodeSmallValues covers the remaining values: the cluster
// identity, the producer ID counter, garbage-collection marks and the
// log start offsets of a shard.
func FuzzDecodeSmallValues(f *testing.F) {
	f.Add(uint8(0), []byte(`{"v":1,"id":"0b5a5c5e-7f57-4a8e-9d0e-1f2a3b4c5d6e","created":"2024-05-01T12:00:00Z"}`))
	f.Add(uint8(1), []byte(`{"v":1,"next":1000}`))
	f.Add(uint8(1), []byte(`{"v":1,"next":9223372036854775807}`))
	f.Add(uint8(2), []byte(`{"v":1,"since":1700000000000}`))
	f.Add(uint8(3), []byte(`{"v":1,"starts":[10,0,4]}`))
	f.Add(uint8(3), []byte(`{"starts":[-1]}`))
	f.Fuzz(func(t *testing.T, kind uint8, data []byte) {
		var err error
		switch kind % 4 {
		case 0:
			var v ClusterInfo
			err = decode("k", data, &v)
		case 1:
			var v producerIDsValue
			err = decode("k", data, &v)
		case 2:
			var v markValue
			if err = decode("k", data, &v); err == nil && v.Since > 0 {
				_ = time.UnixMilli(v.Since)
			}
		case 3:
			var starts []int64
			if starts, err = decodeStarts("k", data); err == nil {
				st := ShardState{Starts: starts, Nexts: []int64{5}}
				for i := range starts {
					if m := st.Partition(int32(i)); m.Start < 0 || m.Start > m.Next {
						t.Fatalf("inconsistent watermarks %+v", m)
					}
				}
			}
		}
		if err != nil && !errors.Is(err, ErrCorruptValue) {
			t.Fatalf("error %v does not wrap ErrCorruptValue", err)
		}
	})
}

// checkExtentOf compares ExtentOf with a scan of e's extents for every
// partition of e's shard and a few outside it.
func checkExtentOf(t *testing.T, e *LogEntry) {
	t.Helper()
	for p := e.Base - 2; p < e.Base+int32(len(e.Nexts))+2; p++ {
		want, wantOK := Extent{}, false
		for _, x := range e.Extents {
			if x.Partition == p {
				want, wantOK = x, true
			}
		}
		got, ok := e.ExtentOf(p)
		if ok != wantOK || !reflect.DeepEqual(got, want) {
			t.Fatalf("ExtentOf(%d) = %+v, %v; want %+v, %v", p, got, ok, want, wantOK)
		}
	}
}

// ExtentOf finds every partition's extent, and only those, whichever
// partitions of the shard have none: none, a few, most, all.
func TestExtentOfFindsEveryPartition(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, missing := range []float64{0, 0.01, 0.13, 0.5, 0.99, 1} {
		for range 20 {
			span := 1 + rng.IntN(300)
			if rng.IntN(2) == 0 {
				span = MaxShardSize // the widest shard, whose decoded entries are indexed
			}
			e := LogEntry{Base: int32(rng.IntN(5000)), Nexts: make([]int64, span)}
			for i := range span {
				if rng.Float64() >= missing {
					e.Extents = append(e.Extents, Extent{Partition: e.Base + int32(i), First: int64(i)})
				}
			}
			checkExtentOf(t, &e)
			// A decoded entry of a wide shard indexes its extents.
			e.indexExtents()
			if e.extentAt == nil && span >= indexExtentsMin && len(e.Extents) < span && len(e.Extents)*4 >= span {
				t.Fatalf("an entry of %d partitions with %d extents is not indexed", span, len(e.Extents))
			}
			checkExtentOf(t, &e)
			// A copy whose extents changed keeps the index, and finds
			// every extent still.
			if len(e.Extents) > 2 {
				c := e
				c.Extents = slices.Delete(slices.Clone(c.Extents), 1, 2)
				checkExtentOf(t, &c)
				// and one for a partition that had none.
				c.Extents = slices.Clone(e.Extents)
				for i := 1; i < len(c.Extents); i++ {
					if p := c.Extents[i-1].Partition + 1; p < c.Extents[i].Partition {
						c.Extents = slices.Insert(c.Extents, i, Extent{Partition: p, First: -1})
						break
					}
				}
				checkExtentOf(t, &c)
			}
		}
	}
}

// BenchmarkExtentOf looks up every partition's extent in the entries of
// a shard of MaxShardSize partitions, each missing one partition in eight
// (keyed flushes of 8000 records over 4096 partitions), as built and as
// decoded (indexed).
func BenchmarkExtentOf(b *testing.B) {
	rng := rand.New(rand.NewPCG(3, 4))
	const span, entries = MaxShardSize, 4096
	built := make([]LogEntry, entries)
	for j := range built {
		e := LogEntry{Seq: int64(j + 1), SeqLast: int64(j + 1), Nexts: make([]int64, span), Objects: []ObjectRef{{Key: "o", Size: 1 << 23}}}
		for i := range span {
			e.Nexts[i] = int64(10*j + 10)
			if rng.IntN(8) != 0 {
				e.Extents = append(e.Extents, Extent{Partition: int32(i), Offset: int64(i) * 2048, Length: 2048, First: int64(10 * j), Last: int64(10*j + 1), Batches: 1})
			}
		}
		built[j] = e
	}
	decoded := make([]LogEntry, entries)
	for j, e := range built {
		d, err := DecodeLogEntry("k", e.Seq, e.Encode())
		if err != nil {
			b.Fatal(err)
		}
		decoded[j] = d
	}
	for _, tc := range []struct {
		name string
		es   []LogEntry
	}{{"searched", built}, {"indexed", decoded}} {
		b.Run(tc.name, func(b *testing.B) {
			found := 0
			for b.Loop() {
				// Partition by partition, entry by entry, as a read does.
				for p := range int32(span) {
					for j := range tc.es {
						if _, ok := tc.es[j].ExtentOf(p); ok {
							found++
						}
					}
				}
			}
			if found == 0 {
				b.Fatal("no extent found")
			}
		})
	}
}
