package exporter

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// BenchmarkExport measures export throughput: a topic of 16 (or 4096)
// partitions holding 64 MiB of ~300-byte JSON records is exported whole
// into a new table per iteration (a fresh catalog), with values as bytes
// and as the schema's typed columns. It reports MB/s of record values,
// MiB/s per core (values over the process's CPU time; the agent sharing
// the process is idle meanwhile, MinIO and etcd are other processes), and
// the bucket GETs per GiB of values.
//
//	go test -run '^$' -bench Export -benchtime 3x ./exporter/
func BenchmarkExport(b *testing.B) {
	for _, c := range []struct {
		format     string
		partitions int32
	}{{"binary", 16}, {"json", 16}, {"binary", 4096}} {
		format := c.format
		b.Run(fmt.Sprintf("%s-%d", format, c.partitions), func(b *testing.B) {
			e := newEnv(b)
			ctx := context.Background()
			configs := map[string]*string{cfgEnabled: kadm.StringPtr("true")}
			if format == "json" {
				configs[cfgValueFormat] = kadm.StringPtr("json")
				configs[cfgValueSchema] = kadm.StringPtr(benchSchema)
			}
			if r, err := kadm.NewClient(e.client()).CreateTopic(ctx, c.partitions, 1, configs, "bench"); err != nil || r.Err != nil {
				b.Fatalf("creating the topic: %v %v", err, r.Err)
			}
			prod := e.client(kgo.DefaultProduceTopic("bench"), kgo.ProducerLinger(10*time.Millisecond), kgo.ProducerBatchMaxBytes(1<<20))
			var valueBytes int64
			for i := 0; valueBytes < 64<<20; i++ {
				v := fmt.Sprintf(`{"id":%d,"user":"user-%d","country":"%s","amount":%d.25,"currency":"EUR","paid":%v,"items":%d,"placed":"2026-12-0%dT10:%02d:%02dZ","note":"%s"}`,
					i, i%5000, []string{"DE", "FR", "KR", "US"}[i%4], i%10000, i%3 == 0, i%7, 1+i%9, i%60, i%60, strings.Repeat("x", 100+i%50))
				valueBytes += int64(len(v))
				prod.Produce(ctx, &kgo.Record{Key: []byte(fmt.Sprint(i % 5000)), Value: []byte(v)}, func(_ *kgo.Record, err error) {
					if err != nil {
						b.Error(err)
					}
				})
			}
			if err := prod.Flush(ctx); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(valueBytes)
			b.ResetTimer()
			var cpu time.Duration
			var gets int64
			for i := 0; i < b.N; i++ {
				e.catalog = "sqlite://" + filepath.Join(b.TempDir(), "catalog.db")
				x, l := e.exporter(Config{MaxCommitBytes: 256 << 20})
				counting := &countingBucket{BucketReader: x.bucket}
				x.bucket = counting
				before := cpuTime()
				st, err := x.Pass(ctx, l.Fence(), true)
				cpu += cpuTime() - before
				if err != nil {
					b.Fatal(err)
				}
				if st.Rows == 0 {
					b.Fatal("nothing exported")
				}
				l.Resign(ctx)
				gets += counting.gets.Load()
			}
			b.ReportMetric(float64(valueBytes)*float64(b.N)/(1<<20)/cpu.Seconds(), "MiB/s/core")
			b.ReportMetric(float64(gets)/(float64(valueBytes)*float64(b.N)/(1<<30)), "GETs/GiB")
		})
	}
}

const benchSchema = `{"type":"object","properties":{
  "id":{"type":"integer"},"user":{"type":"string"},"country":{"type":"string"},
  "amount":{"type":"number"},"currency":{"type":"string"},"paid":{"type":"boolean"},
  "items":{"type":"integer"},"placed":{"type":"string","format":"date-time"},"note":{"type":"string"}},
  "required":["id","user"]}`

// cpuTime is the process's user and system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
