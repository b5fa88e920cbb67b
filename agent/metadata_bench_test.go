package agent_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/agent"
	"github.com/floe-io/floe/internal/testenv"
	"github.com/floe-io/floe/metadata"
	"github.com/floe-io/floe/segments"
)

// BenchmarkMetadata answers Metadata requests (v12) for every topic of a
// cluster of 50,000 partitions (five topics of 10,000), as a client
// refreshing its metadata does, with three agents registered, and reports
// the p50 and p99 of one request: written on a connection, answered,
// read back whole over loopback (the client's decoding is not counted):
//
//	go test -run='^$' -bench=Metadata -benchtime=200x ./agent/
func BenchmarkMetadata(b *testing.B) {
	store, err := metadata.NewStore(testenv.Etcd(b), testenv.Cluster(b))
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bucket, err := segments.OpenBucket(ctx, b.TempDir(), segments.BucketOptions{})
	if err != nil {
		b.Fatal(err)
	}
	var addrs []string
	for range 3 {
		a, err := agent.New(agent.Config{KafkaAddr: "127.0.0.1:0", LeaseTTL: 5 * time.Second, DrainTimeout: 5 * time.Second}, agent.Deps{Store: store, Bucket: bucket})
		if err != nil {
			b.Fatal(err)
		}
		if err := a.Start(ctx); err != nil {
			b.Fatal(err)
		}
		defer a.Shutdown(context.Background())
		addrs = append(addrs, a.Addr())
	}
	for i := range 5 {
		if _, err := store.CreateTopic(ctx, metadata.TopicSpec{Name: fmt.Sprintf("t%d", i), Partitions: 10000, ReplicationFactor: 3}); err != nil {
			b.Fatal(err)
		}
	}
	conn, err := net.Dial("tcp", addrs[0])
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	req := kmsg.NewPtrMetadataRequest()
	req.Version = 12
	req.Topics = nil // every topic
	var body []byte
	body = binary.BigEndian.AppendUint16(body, uint16(req.Key()))
	body = binary.BigEndian.AppendUint16(body, uint16(req.Version))
	body = binary.BigEndian.AppendUint32(body, 1)
	body = binary.BigEndian.AppendUint16(body, 0) // client ID ""
	body = append(body, 0)                        // header tags
	body = req.AppendTo(body)
	frame := binary.BigEndian.AppendUint32(nil, uint32(len(body)))
	frame = append(frame, body...)
	var (
		took []time.Duration
		buf  []byte
	)
	roundTrip := func() int {
		if _, err := conn.Write(frame); err != nil {
			b.Fatal(err)
		}
		var size [4]byte
		if _, err := io.ReadFull(conn, size[:]); err != nil {
			b.Fatal(err)
		}
		n := int(binary.BigEndian.Uint32(size[:]))
		if cap(buf) < n {
			buf = make([]byte, n)
		}
		if _, err := io.ReadFull(conn, buf[:n]); err != nil {
			b.Fatal(err)
		}
		return n
	}
	resp := kmsg.NewPtrMetadataResponse()
	resp.Version = 12
	n := roundTrip()
	if err := resp.ReadFrom(buf[5:n]); err != nil { // past correlation ID and header tags
		b.Fatal(err)
	}
	parts := 0
	for _, t := range resp.Topics {
		parts += len(t.Partitions)
	}
	if parts < 50000 {
		b.Fatalf("metadata listed %d partitions", parts)
	}
	b.SetBytes(int64(n))
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		roundTrip()
		took = append(took, time.Since(start))
	}
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "p50-ms")
}
