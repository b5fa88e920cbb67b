package agent

import (
	"encoding/binary"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// frame encodes a request as a client sends it, without the size prefix.
func frame(req kmsg.Request, corr int32, clientID string) []byte {
	var b []byte
	b = binary.BigEndian.AppendUint16(b, uint16(req.Key()))
	b = binary.BigEndian.AppendUint16(b, uint16(req.GetVersion()))
	b = binary.BigEndian.AppendUint32(b, uint32(corr))
	b = binary.BigEndian.AppendUint16(b, uint16(len(clientID)))
	b = append(b, clientID...)
	if req.IsFlexible() {
		b = append(b, 0)
	}
	return req.AppendTo(b)
}

// seedRequests are requests as real clients send them: every served API
// at its lowest and highest version, with typical contents.
func seedRequests() [][]byte {
	var out [][]byte
	for _, spec := range sortedAPIs() {
		for _, v := range []int16{spec.min, spec.max} {
			req := kmsg.RequestForKey(spec.key)
			req.SetVersion(v)
			switch r := req.(type) {
			case *kmsg.MetadataRequest:
				t := kmsg.NewMetadataRequestTopic()
				t.Topic = kmsg.StringPtr("orders")
				r.Topics = append(r.Topics, t)
			case *kmsg.ProduceRequest:
				r.Acks = -1
				t := kmsg.NewProduceRequestTopic()
				t.Topic = "orders"
				p := kmsg.NewProduceRequestTopicPartition()
				p.Records = make([]byte, 70)
				t.Partitions = append(t.Partitions, p)
				r.Topics = append(r.Topics, t)
			case *kmsg.FetchRequest:
				t := kmsg.NewFetchRequestTopic()
				t.Topic = "orders"
				t.Partitions = append(t.Partitions, kmsg.NewFetchRequestTopicPartition())
				r.Topics = append(r.Topics, t)
			case *kmsg.CreateTopicsRequest:
				t := kmsg.NewCreateTopicsRequestTopic()
				t.Topic = "orders"
				t.NumPartitions = 3
				t.ReplicationFactor = 1
				r.Topics = append(r.Topics, t)
			case *kmsg.JoinGroupRequest:
				r.Group = "g"
				r.ProtocolType = "consumer"
				p := kmsg.NewJoinGroupRequestProtocol()
				p.Name = "range"
				p.Metadata = []byte{0, 1, 0, 0, 0, 1, 0, 6, 'o', 'r', 'd', 'e', 'r', 's'}
				r.Protocols = append(r.Protocols, p)
			}
			out = append(out, frame(req, 1, "fuzz-client"))
		}
	}
	return out
}

// FuzzParseRequest feeds arbitrary frames to the request parser: it must
// return a request or an error, never panic, whatever the bytes.
func FuzzParseRequest(f *testing.F) {
	for _, s := range seedRequests() {
		f.Add(s)
	}
	f.Add([]byte{0, 18, 0, 99, 0, 0, 0, 1, 0xff, 0xff})
	f.Add([]byte{0xff, 0xff, 0, 0, 0, 0, 0, 1})
	c := &conn{}
	f.Fuzz(func(t *testing.T, body []byte) {
		rq, err := c.parse(body)
		if err != nil {
			return
		}
		if rq.req == nil {
			t.Fatal("parse returned no request and no error")
		}
		// A parsed request must encode again (the agent reads its fields).
		_ = rq.req.AppendTo(nil)
	})
}

func TestSeedRequestsParse(t *testing.T) {
	c := &conn{}
	for i, s := range seedRequests() {
		if _, err := c.parse(s); err != nil {
			t.Errorf("seed %d: %v", i, err)
		}
	}
}
