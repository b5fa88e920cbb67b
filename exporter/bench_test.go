package exporter

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/avro"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floe-io/floe/internal/schemaregistry"
	"github.com/floe-io/floe/internal/testenv"
)

// BenchmarkExport measures export throughput: a topic of 16 (or 4096)
// partitions holding 64 MiB of ~300-byte JSON records is exported whole
// into a new table per iteration (a fresh catalog), with values as bytes
// and as the schema's typed columns; avro-16 is the same records
// Avro-encoded (~170 bytes) in the Confluent wire format, decoded by a
// schema of floe's registry. It reports MB/s of record values,
// MiB/s per core (values over the process's CPU time; the agent sharing
// the process is idle meanwhile, MinIO and etcd are other processes), and
// the bucket GETs per GiB of values.
//
//	go test -run '^$' -bench Export -benchtime 3x ./exporter/
func BenchmarkExport(b *testing.B) {
	for _, c := range []struct {
		format     string
		partitions int32
	}{{"binary", 16}, {"json", 16}, {"avro", 16}, {"binary", 4096}} {
		format := c.format
		b.Run(fmt.Sprintf("%s-%d", format, c.partitions), func(b *testing.B) {
			e := newEnv(b)
			ctx := context.Background()
			configs := map[string]*string{cfgEnabled: kadm.StringPtr("true")}
			var (
				registryURL string
				encode      func(v string) []byte
			)
			switch format {
			case "json":
				configs[cfgValueFormat] = kadm.StringPtr("json")
				configs[cfgValueSchema] = kadm.StringPtr(benchSchema)
			case "avro":
				// The same records, Avro-encoded by the schema of the
				// subject bench-value in floe's registry.
				configs[cfgValueFormat] = kadm.StringPtr("avro")
				reg := e.registry()
				registryURL = reg.url()
				id := reg.register("bench-value", schemaregistry.Avro, benchAvroSchema)
				s := avro.MustParse(benchAvroSchema)
				encode = func(v string) []byte {
					var m map[string]any
					if err := json.Unmarshal([]byte(v), &m); err != nil {
						b.Fatal(err)
					}
					placed, _ := time.Parse(time.RFC3339, m["placed"].(string))
					m["placed"] = placed.UnixMilli()
					out, err := s.Encode(m)
					if err != nil {
						b.Fatal(err)
					}
					return confluent(id, out)
				}
			}
			if r, err := kadm.NewClient(e.client()).CreateTopic(ctx, c.partitions, 1, configs, "bench"); err != nil || r.Err != nil {
				b.Fatalf("creating the topic: %v %v", err, r.Err)
			}
			prod := e.client(kgo.DefaultProduceTopic("bench"), kgo.ProducerLinger(10*time.Millisecond), kgo.ProducerBatchMaxBytes(1<<20))
			var valueBytes, records int64
			for i := 0; valueBytes < 64<<20; i++ {
				v := fmt.Sprintf(`{"id":%d,"user":"user-%d","country":"%s","amount":%d.25,"currency":"EUR","paid":%v,"items":%d,"placed":"2026-12-0%dT10:%02d:%02dZ","note":"%s"}`,
					i, i%5000, []string{"DE", "FR", "KR", "US"}[i%4], i%10000, i%3 == 0, i%7, 1+i%9, i%60, i%60, strings.Repeat("x", 100+i%50))
				value := []byte(v)
				if encode != nil {
					value = encode(v)
				}
				valueBytes += int64(len(value))
				records++
				prod.Produce(ctx, &kgo.Record{Key: []byte(fmt.Sprint(i % 5000)), Value: value}, func(_ *kgo.Record, err error) {
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
				x, l := e.exporter(Config{MaxCommitBytes: 256 << 20, SchemaRegistryURL: registryURL})
				counting := &countingBucket{BucketReader: x.bucket}
				x.bucket = counting
				before := testenv.ProcessCPU()
				st, err := x.Pass(ctx, l.Fence(), true)
				cpu += testenv.ProcessCPU() - before
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
			b.ReportMetric(float64(records)*float64(b.N)/cpu.Seconds(), "records/s/core")
		})
	}
}

const benchSchema = `{"type":"object","properties":{
  "id":{"type":"integer"},"user":{"type":"string"},"country":{"type":"string"},
  "amount":{"type":"number"},"currency":{"type":"string"},"paid":{"type":"boolean"},
  "items":{"type":"integer"},"placed":{"type":"string","format":"date-time"},"note":{"type":"string"}},
  "required":["id","user"]}`

// benchAvroSchema is benchSchema's record in Avro.
const benchAvroSchema = `{"type":"record","name":"Bench","fields":[
  {"name":"id","type":"long"},{"name":"user","type":"string"},{"name":"country","type":["null","string"]},
  {"name":"amount","type":["null","double"]},{"name":"currency","type":["null","string"]},{"name":"paid","type":["null","boolean"]},
  {"name":"items","type":["null","long"]},{"name":"placed","type":["null",{"type":"long","logicalType":"timestamp-millis"}]},
  {"name":"note","type":["null","string"]}]}`
