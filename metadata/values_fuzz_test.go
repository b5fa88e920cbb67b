package metadata

import (
	"encoding/json"
	"errors"
	"log/slog"
	"math"
	"reflect"
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

func FuzzDecodePartitionState(f *testing.F) {
	st := PartitionState{Next: 42, Start: 7, Producers: map[int64]*ProducerState{
		9: {Epoch: 1, Batches: []SeqEntry{{FirstSeq: 0, LastSeq: 4, BaseOffset: 30}, {FirstSeq: 5, LastSeq: 9, BaseOffset: 35}}, LastWrite: 1700000000000},
	}}
	f.Add([]byte(st.value()))
	f.Add([]byte(`{"v":1,"next":0,"start":0}`))
	f.Add([]byte(`{"v":1,"next":5,"start":6}`))
	f.Add([]byte(`{"v":1,"next":5,"start":0,"producers":{"x":null}}`))
	f.Add([]byte(`{"v":1,"next":9223372036854775807,"start":0,"producers":{"1":{"epoch":32767,"batches":[{"first_seq":2147483647,"last_seq":2147483647,"base_offset":-1}]}}}`))
	topic := Topic{Name: "t", ID: uuid.MustParse("00000000-0000-0000-0000-000000000001")}
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := DecodePartitionState("k", data)
		if err != nil {
			if !errors.Is(err, ErrCorruptValue) {
				t.Fatalf("error %v does not wrap ErrCorruptValue", err)
			}
			return
		}
		if st.Next < 0 || st.Start < 0 || st.Start > st.Next {
			t.Fatalf("accepted inconsistent watermarks %+v", st)
		}
		again, err := DecodePartitionState("k", []byte(st.value()))
		if err != nil || again.Next != st.Next || again.Start != st.Start || len(again.Producers) != len(st.Producers) {
			t.Fatalf("re-encoded state does not decode the same: %+v, %v", again, err)
		}
		// A commit offers batches to the decoded state: a known producer's
		// retry, its next batch, a new epoch, and a non-idempotent batch.
		var batches []BatchMeta
		for id, p := range st.Producers {
			b := BatchMeta{Ordinal: int32(len(batches)), Records: 3, ProducerID: id, ProducerEpoch: p.Epoch}
			if n := len(p.Batches); n > 0 {
				b.BaseSequence = p.Batches[n-1].FirstSeq
			}
			batches = append(batches, b, BatchMeta{Ordinal: int32(len(batches) + 1), Records: 1, ProducerID: id, ProducerEpoch: p.Epoch + 1})
		}
		batches = append(batches, BatchMeta{Ordinal: int32(len(batches)), Records: 2, ProducerID: -1})
		if st.Next > math.MaxInt64-1<<20 {
			return // offsets this close to the limit would overflow before a real log got there
		}
		next, res := applyAppend(st, Append{Topic: topic, Object: "o", Length: 1, Batches: batches}, time.UnixMilli(1700000000000), 24*time.Hour)
		if next.Next < st.Next || len(res.Batches) != len(batches) {
			t.Fatalf("applying batches moved the watermark from %d to %d (%d outcomes)", st.Next, next.Next, len(res.Batches))
		}
	})
}

func FuzzDecodeIndexEntry(f *testing.F) {
	e := IndexEntry{Object: "flush/ab/20240501T120000Z-00000000000000ab.seg", Offset: 10, Length: 200, First: 5, Last: 9, Batches: 2, Skip: []int32{1}, MinTimestamp: 1, MaxTimestamp: 2, Committed: 3}
	b, _ := json.Marshal(e)
	f.Add(b)
	f.Add([]byte(`{"o":"x","off":0,"len":1,"first":0,"last":0,"batches":1}`))
	f.Add([]byte(`{"o":"x","off":0,"len":1,"first":9223372036854775807,"last":-9223372036854775808,"batches":1}`))
	f.Add([]byte(`{"o":"","len":0}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := DecodeIndexEntry("k", data)
		if err != nil {
			if !errors.Is(err, ErrCorruptValue) {
				t.Fatalf("error %v does not wrap ErrCorruptValue", err)
			}
			return
		}
		if e.Object == "" || e.Offset < 0 || e.Length <= 0 || e.First < 0 || e.Last < e.First || e.Batches <= 0 {
			t.Fatalf("accepted inconsistent entry %+v", e)
		}
		if e.Records() < 1 && e.Last-e.First != math.MaxInt64 {
			t.Fatalf("entry %+v holds %d records", e, e.Records())
		}
		b, _ := json.Marshal(e)
		again, err := DecodeIndexEntry("k", b)
		if err != nil || !reflect.DeepEqual(again, e) {
			t.Fatalf("re-encoded entry does not decode the same: %+v, %v", again, err)
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
	v := &View{store: &Store{root: "/floe/fuzz/"}, log: slog.New(slog.DiscardHandler)}
	f.Fuzz(func(t *testing.T, id uint8, data []byte) {
		kv := &mvccpb.KeyValue{Key: []byte(v.store.agentKey(int32(id))), Value: data}
		a, ok := v.decodeAgent(kv)
		if !ok {
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
// watermark watcher's view of partition states.
func FuzzDecodeSmallValues(f *testing.F) {
	f.Add(uint8(0), []byte(`{"v":1,"id":"0b5a5c5e-7f57-4a8e-9d0e-1f2a3b4c5d6e","created":"2024-05-01T12:00:00Z"}`))
	f.Add(uint8(1), []byte(`{"v":1,"next":1000}`))
	f.Add(uint8(1), []byte(`{"v":1,"next":9223372036854775807}`))
	f.Add(uint8(2), []byte(`{"v":1,"since":1700000000000}`))
	f.Add(uint8(3), []byte(`{"v":1,"next":10,"start":4}`))
	f.Add(uint8(3), []byte(`{"next":1,"start":2}`))
	s := &Store{root: "/floe/fuzz/"}
	w := &WatermarkWatcher{store: s, log: slog.New(slog.DiscardHandler)}
	pkey := s.partitionKey(PartitionID{Topic: uuid.MustParse("00000000-0000-0000-0000-000000000001"), Partition: 3})
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
			_, m, ok := w.decode(&mvccpb.KeyValue{Key: []byte(pkey), Value: data, ModRevision: 5})
			if ok && (m.Start < 0 || m.Next < m.Start) {
				t.Fatalf("watcher accepted inconsistent watermarks %+v", m)
			}
		}
		if err != nil && !errors.Is(err, ErrCorruptValue) {
			t.Fatalf("error %v does not wrap ErrCorruptValue", err)
		}
	})
}
