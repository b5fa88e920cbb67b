package agent

import (
	"encoding/binary"
	"encoding/hex"
	"math"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/metadata"
	"github.com/floe-io/floe/segments"
)

// Java's String.hashCode and Kafka's partitionFor, checked against values
// Java computes.
func TestOffsetsPartitionIsKafkas(t *testing.T) {
	for _, tc := range []struct {
		s    string
		hash int32
	}{
		{"", 0},
		{"a", 97},
		{"hello", 99162322},
		{"Hello World", -862545276},
		{"polygenelubricants", math.MinInt32}, // Utils.abs maps it to 0
		{"\U0001F600", 1772899},               // a surrogate pair: two UTF-16 units
	} {
		if got := javaStringHash(tc.s); got != tc.hash {
			t.Errorf("javaStringHash(%q) = %d, want %d", tc.s, got, tc.hash)
		}
	}
	for _, tc := range []struct {
		group string
		want  int32
	}{
		{"hello", 99162322 % 50},
		{"Hello World", 862545276 % 50},
		{"polygenelubricants", 0},
	} {
		if got := offsetsPartition(tc.group, 50); got != tc.want {
			t.Errorf("offsetsPartition(%q) = %d, want %d", tc.group, got, tc.want)
		}
	}
}

// The records' bytes, written out from Kafka's schemas
// (OffsetCommitKey v1, OffsetCommitValue v3, GroupMetadataKey v2,
// GroupMetadataValue v1), so an encoding change cannot go unnoticed.
func TestOffsetsTopicRecordFixtures(t *testing.T) {
	md := "m"
	for _, tc := range []struct {
		name string
		got  []byte
		want string
	}{
		{"offset key", offsetKey("g", "t", 3), "0001" + "000167" + "000174" + "00000003"},
		{"offset value", offsetValue(metadata.CommittedOffset{Offset: 42, LeaderEpoch: -1, Metadata: &md, Committed: 1000}),
			"0003" + "000000000000002a" + "ffffffff" + "00016d" + "00000000000003e8"},
		{"offset value without metadata", offsetValue(metadata.CommittedOffset{Offset: 1, LeaderEpoch: 5, Committed: 2}),
			"0003" + "0000000000000001" + "00000005" + "0000" + "0000000000000002"},
		{"group key", groupKey("g"), "0002" + "000167"},
		{"group value", groupValue(metadata.GroupState{
			Name: "g", State: metadata.GroupStable, Generation: 4, ProtocolType: "consumer", Protocol: "range", Leader: "m1", StateSince: 7,
			Members: []metadata.GroupMember{{
				MemberID: "m1", ClientID: "c", ClientHost: "/h", SessionTimeoutMs: 45000, RebalanceTimeoutMs: 300000,
				Protocols:  []metadata.GroupProtocol{{Name: "sticky", Metadata: []byte{9}}, {Name: "range", Metadata: []byte{1, 2}}},
				Assignment: []byte{3},
			}},
		}), "0001" + "0008" + hex.EncodeToString([]byte("consumer")) + "00000004" + "0005" + hex.EncodeToString([]byte("range")) + "00026d31" +
			"00000001" + "00026d31" + "000163" + "00022f68" + "000493e0" + "0000afc8" + "000000020102" + "0000000103"},
		{"empty group value", groupValue(metadata.GroupState{Name: "g", State: metadata.GroupEmpty, Generation: 5, ProtocolType: "consumer"}),
			"0001" + "0008" + hex.EncodeToString([]byte("consumer")) + "00000005" + "ffff" + "ffff" + "00000000"},
	} {
		if got := hex.EncodeToString(tc.got); got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, got, tc.want)
		}
	}
	// A static member needs v3, which carries its instance ID.
	inst := "i-1"
	v := groupValue(metadata.GroupState{Name: "g", State: metadata.GroupStable, ProtocolType: "consumer", Protocol: "range", StateSince: 7,
		Members: []metadata.GroupMember{{MemberID: "m1", InstanceID: &inst, SessionTimeoutMs: 1, RebalanceTimeoutMs: 1}}})
	var dv kmsg.GroupMetadataValue
	if err := dv.ReadFrom(v); err != nil || dv.Version != 3 || dv.CurrentStateTimestamp != 7 || *dv.Members[0].InstanceID != "i-1" {
		t.Fatalf("static member value: %+v %v", dv, err)
	}
}

// The feed's batches are valid RecordBatches whose records decode back.
func TestFeedBatch(t *testing.T) {
	recs := []feedRecord{
		{group: "g", key: offsetKey("g", "t", 0), value: offsetValue(metadata.CommittedOffset{Offset: 9, LeaderEpoch: -1, Committed: 100}), ts: 100},
		{group: "g", key: offsetKey("g", "t", 1), ts: 90}, // a tombstone
	}
	b, err := feedBatch(recs)
	if err != nil {
		t.Fatal(err)
	}
	if b.RecordCount != 2 || b.BaseTimestamp != 90 || b.MaxTimestamp != 100 || b.ProducerID != -1 || b.Compression() != segments.CompressionNone {
		t.Fatalf("batch header %+v", b)
	}
	var rb kmsg.RecordBatch
	if err := rb.ReadFrom(b.Raw); err != nil {
		t.Fatal(err)
	}
	var rs []kmsg.Record
	for src := rb.Records; len(src) > 0; {
		l, n := binary.Varint(src)
		var r kmsg.Record
		if n <= 0 || int(l) > len(src)-n {
			t.Fatalf("bad record length at %x", src)
		}
		if err := r.ReadFrom(src[:n+int(l)]); err != nil {
			t.Fatal(err)
		}
		rs = append(rs, r)
		src = src[n+int(l):]
	}
	if len(rs) != 2 {
		t.Fatalf("records %+v", rs)
	}
	if hex.EncodeToString(rs[0].Key) != hex.EncodeToString(recs[0].key) || rs[0].Value == nil || rs[0].TimestampDelta64 != 10 {
		t.Fatalf("first record %+v", rs[0])
	}
	if rs[1].Value != nil || rs[1].OffsetDelta != 1 {
		t.Fatalf("tombstone %+v", rs[1])
	}
}
