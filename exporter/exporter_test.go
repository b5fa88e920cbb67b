package exporter

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/table"
	"github.com/google/uuid"
	"github.com/parquet-go/parquet-go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floe-io/floe/agent"
	"github.com/floe-io/floe/internal/testenv"
	"github.com/floe-io/floe/metadata"
	"github.com/floe-io/floe/segments"
)

// env is an agent, its etcd and bucket, and a SQLite catalog with its
// warehouse in the bucket.
type env struct {
	t         testing.TB
	store     *metadata.Store
	bucket    segments.Bucket
	agent     *agent.Agent
	catalog   string // URL
	bucketURL string
	warehouse string
}

func newEnv(t testing.TB) *env {
	t.Helper()
	store, err := metadata.NewStore(testenv.Etcd(t), testenv.Cluster(t))
	if err != nil {
		t.Fatal(err)
	}
	url := testenv.BucketURL(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	bucket, err := segments.OpenBucket(ctx, url, testenv.BucketOptions())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bucket.Close() })
	e := &env{t: t, store: store, bucket: bucket, bucketURL: url, catalog: "sqlite://" + filepath.Join(t.TempDir(), "catalog.db")}
	wh, _, err := WarehouseOf(url, testenv.BucketOptions())
	if err != nil {
		t.Fatal(err)
	}
	e.warehouse = wh
	cfg := agent.Config{KafkaAddr: "127.0.0.1:0", LeaseTTL: 2 * time.Second, DrainTimeout: 5 * time.Second, EtcdMaxTxnOps: 2048}
	cfg.Writer.FlushInterval = 20 * time.Millisecond
	a, err := agent.New(cfg, agent.Deps{Store: store, Bucket: bucket, Log: testenv.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Shutdown(context.Background()) })
	e.agent = a
	return e
}

func (e *env) client(opts ...kgo.Opt) *kgo.Client {
	e.t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(e.agent.Addr()), kgo.RetryTimeout(15 * time.Second)}, opts...)...)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(cl.Close)
	return cl
}

// exporter returns a new exporter (a fresh process, as far as the
// exporter knows) over the env's catalog, and a leadership it won.
func (e *env) exporter(cfg Config) (*Exporter, *metadata.Leadership) {
	e.t.Helper()
	ctx := context.Background()
	wh, props, err := WarehouseOf(e.bucketURL, testenv.BucketOptions())
	if err != nil {
		e.t.Fatal(err)
	}
	cat, err := OpenCatalog(ctx, e.catalog, props)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { cat.Close() })
	cfg.Catalog, cfg.Warehouse, cfg.IOProps = e.catalog, wh, props
	x, err := New(cfg, Deps{Store: e.store, Bucket: e.bucket, Catalog: cat, Log: testenv.Logger(e.t)})
	if err != nil {
		e.t.Fatal(err)
	}
	l, err := e.store.CampaignExporter(ctx, x.cfg.ID, 2*time.Second)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { l.Resign(context.Background()) })
	return x, l
}

// crashAfterTableCommits runs a pass of a new exporter that dies after
// its nth table commit, before recording it, as a killed process would
// (its leadership resigned, as its lease would lapse), and returns the
// sum of the offsets the export state recorded.
func (e *env) crashAfterTableCommits(cfg Config, n int, topic uuid.UUID) (recorded int64) {
	e.t.Helper()
	ctx := context.Background()
	x, l := e.exporter(cfg)
	commits := 0
	crash := errors.New("killed")
	x.afterTableCommit = func(string) error {
		if commits++; commits == n {
			return crash
		}
		return nil
	}
	if _, err := x.Pass(ctx, l.Fence(), true); !errors.Is(err, crash) {
		e.t.Fatalf("the first exporter's pass: %v, want it killed", err)
	}
	l.Resign(ctx)
	if _, ok, err := e.store.ExportStateOf(ctx, topic); err != nil || !ok {
		e.t.Fatalf("export state after %d recorded commits: %v %v", n-1, ok, err)
	}
	_, recorded = e.exportState(topic)
	return recorded
}

// exportState is a topic's export state and the sum of its offsets.
func (e *env) exportState(topic uuid.UUID) (metadata.ExportState, int64) {
	e.t.Helper()
	st, _, err := e.store.ExportStateOf(context.Background(), topic)
	if err != nil {
		e.t.Fatal(err)
	}
	total := int64(0)
	for _, o := range st.Offsets {
		total += o
	}
	return st, total
}

// loadTable loads a table from the env's catalog.
func (e *env) loadTable(name string) *table.Table {
	e.t.Helper()
	_, props, _ := WarehouseOf(e.bucketURL, testenv.BucketOptions())
	cat, err := OpenCatalog(context.Background(), e.catalog, props)
	if err != nil {
		e.t.Fatal(err)
	}
	defer cat.Close()
	tbl, err := cat.LoadTable(context.Background(), catalog.ToIdentifier(name))
	if err != nil {
		e.t.Fatal(err)
	}
	return tbl
}

const ordersSchema = `{
  "type": "object",
  "properties": {
    "id":      {"type": "integer"},
    "item":    {"type": "string"},
    "amount":  {"type": "number"},
    "paid":    {"type": "boolean"},
    "placed":  {"type": "string", "format": "date-time"}
  },
  "required": ["id", "item"]
}`

// parquetRow is what the test reads back of a row, by column path.
type parquetRow struct {
	partition int32
	offset    int64
	id        int64
	item      string
	dead      string // the dead letter's reason
	value     string // binary values
}

// readTable reads every row of the table's current snapshot from its
// Parquet files, with parquet-go (another Parquet implementation than the
// writer's), through the cluster's bucket.
func (e *env) readTable(tbl *table.Table) (rows []parquetRow, files int) {
	e.t.Helper()
	ctx := context.Background()
	tasks, err := tbl.Scan().PlanFiles(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	prefix := strings.TrimSuffix(e.warehouse, warehousePrefix)
	var out []parquetRow
	for _, task := range tasks {
		files++
		path := task.File.FilePath()
		key, ok := strings.CutPrefix(path, prefix)
		if !ok {
			e.t.Fatalf("data file %s is not under the warehouse %s", path, e.warehouse)
		}
		rc, err := e.bucket.GetRange(ctx, key, 0, -1)
		if err != nil {
			e.t.Fatalf("reading %s: %v", key, err)
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			e.t.Fatal(err)
		}
		f, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			e.t.Fatalf("%s is not a Parquet file: %v", path, err)
		}
		col := func(path ...string) int {
			leaf, ok := f.Schema().Lookup(path...)
			if !ok {
				return -1
			}
			return leaf.ColumnIndex
		}
		cPart, cOff, cID, cItem, cDead, cValue := col("kafka", "partition"), col("kafka", "offset"), col("id"), col("item"), col("_dead_letter", "reason"), col("value")
		for _, rg := range f.RowGroups() {
			rows := rg.Rows()
			buf := make([]parquet.Row, 128)
			for {
				n, err := rows.ReadRows(buf)
				for _, row := range buf[:n] {
					var r parquetRow
					for _, v := range row {
						switch v.Column() {
						case cPart:
							r.partition = v.Int32()
						case cOff:
							r.offset = v.Int64()
						case cID:
							if !v.IsNull() {
								r.id = v.Int64()
							}
						case cItem:
							if !v.IsNull() {
								r.item = string(v.ByteArray())
							}
						case cDead:
							if !v.IsNull() {
								r.dead = string(v.ByteArray())
							}
						case cValue:
							if !v.IsNull() {
								r.value = string(v.ByteArray())
							}
						}
					}
					out = append(out, r)
				}
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					e.t.Fatal(err)
				}
			}
			rows.Close()
		}
	}
	return out, files
}

// A JSON topic with a schema is exported exactly once across an exporter
// that dies between a table commit and recording it, and another killed
// while it works: every (partition, offset) is in the table once, with
// typed columns matching the values produced, and the values that do not
// match are dead letters.
func TestExportJSONTopicExactlyOnceAcrossACrash(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	records := 100_000
	if testing.Short() {
		records = 20_000
	}
	const partitions = 8
	adm := kadm.NewClient(e.client())
	resp, err := adm.CreateTopic(ctx, partitions, 1, map[string]*string{
		cfgEnabled:        kadm.StringPtr("true"),
		cfgValueFormat:    kadm.StringPtr("json"),
		cfgValueSchema:    kadm.StringPtr(ordersSchema),
		cfgPartitionBy:    kadm.StringPtr("day(timestamp)"),
		cfgTable:          kadm.StringPtr("shop.orders"),
		cfgCommitInterval: kadm.StringPtr("1000"),
	}, "orders")
	if err != nil || resp.Err != nil {
		t.Fatalf("creating the topic: %v %v", err, resp.Err)
	}
	prod := e.client(kgo.DefaultProduceTopic("orders"), kgo.ProducerLinger(5*time.Millisecond))
	placed := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	for i := range records {
		value := fmt.Sprintf(`{"id":%d,"item":"item-%d","amount":%d.5,"paid":%v,"placed":%q}`, i, i%100, i%1000, i%2 == 0, placed.Add(time.Duration(i)*time.Second).Format(time.RFC3339))
		if i%1000 == 999 {
			value = `{"id":"not a number"}` // a dead letter
		}
		prod.Produce(ctx, &kgo.Record{Key: []byte(fmt.Sprint(i)), Value: []byte(value), Headers: []kgo.RecordHeader{{Key: "n", Value: []byte(fmt.Sprint(i))}}}, func(_ *kgo.Record, err error) {
			if err != nil {
				t.Error(err)
			}
		})
	}
	if err := prod.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	topic, err := e.store.GetTopic(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}

	// The first exporter commits in small pieces and dies after its
	// third table commit, before recording it.
	recorded := e.crashAfterTableCommits(Config{MaxCommitBytes: 256 << 10}, 3, topic.ID)
	// The second picks up from the table, not from etcd, and is killed
	// in the middle of its work (writing files, or committing them).
	x2, l2 := e.exporter(Config{MaxCommitBytes: 1 << 20})
	kctx, kill := context.WithTimeout(ctx, 150*time.Millisecond)
	_, err = x2.Pass(kctx, l2.Fence(), true)
	kill()
	l2.Resign(ctx)
	t.Logf("the second exporter, killed after 150ms: %v", err)
	// The third finishes.
	x3, l3 := e.exporter(Config{MaxCommitBytes: 4 << 20})
	if _, err := x3.Pass(ctx, l3.Fence(), true); err != nil {
		t.Fatal(err)
	}

	tbl := e.loadTable("shop.orders")
	rows, files := e.readTable(tbl)
	if len(rows) != records {
		t.Fatalf("the table holds %d rows, want %d", len(rows), records)
	}
	seen := map[[2]int64]bool{}
	dead := 0
	for _, r := range rows {
		k := [2]int64{int64(r.partition), r.offset}
		if seen[k] {
			t.Fatalf("partition %d offset %d is in the table twice", r.partition, r.offset)
		}
		seen[k] = true
		if r.dead != "" {
			dead++
			continue
		}
		if r.item != fmt.Sprintf("item-%d", r.id%100) {
			t.Fatalf("row id %d: item %q", r.id, r.item)
		}
	}
	if dead != records/1000 {
		t.Errorf("%d dead letters, want %d", dead, records/1000)
	}
	st, total := e.exportState(topic.ID)
	if total != int64(records) || recorded >= total {
		t.Errorf("export state offsets sum to %d (were %d before the crash's restart), want %d", total, recorded, records)
	}
	t.Logf("%d rows (%d dead letters) in %d data files; the export state was at %d offsets before the restart", len(rows), dead, files, recorded)

	// The third exporter's pass ended by compacting the table's small
	// files (the first two wrote several): one file for the one day
	// partition, in a rewrite snapshot that carries where the export
	// resumes.
	if files != 1 {
		t.Errorf("%d data files after the pass, want 1 (compacted)", files)
	}
	snap := tbl.CurrentSnapshot()
	if snap.Summary == nil || snap.Summary.Operation != table.OpReplace {
		t.Errorf("the current snapshot is %+v, want a compaction's replace", snap.Summary)
	}
	resume, err := resumeOffsets(tbl, topic.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(resume, st.Offsets) {
		t.Errorf("the export resumes at %v after the compaction, the export state says %v", resume, st.Offsets)
	}
}

// A transactional topic's table has its committed transactions' records
// only: none of an aborted one, and an open one's once it commits. The
// metrics count it, the export group's offsets mirror it, and a topic
// whose table has other columns fails and says so.
func TestExportLeavesAbortedTransactionsOut(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	adm := kadm.NewClient(e.client())
	resp, err := adm.CreateTopic(ctx, 4, 1, map[string]*string{cfgEnabled: kadm.StringPtr("true")}, "payments")
	if err != nil || resp.Err != nil {
		t.Fatalf("creating the topic: %v %v", err, resp.Err)
	}
	txp := e.client(kgo.TransactionalID("payments-writer"), kgo.DefaultProduceTopic("payments"))
	txn := func(prefix string, n int, end *kgo.TransactionEndTry) {
		t.Helper()
		if err := txp.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for i := range n {
			txp.Produce(ctx, &kgo.Record{Key: []byte(fmt.Sprint(i)), Value: []byte(fmt.Sprintf("%s-%d", prefix, i))}, func(_ *kgo.Record, err error) {
				if err != nil {
					t.Error(err)
				}
			})
		}
		if err := txp.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if end != nil {
			if err := txp.EndTransaction(ctx, *end); err != nil {
				t.Fatal(err)
			}
		}
	}
	commit, abort := kgo.TryCommit, kgo.TryAbort
	txn("commit1", 100, &commit)
	txn("abort", 100, &abort)
	txn("commit2", 100, &commit)
	txn("open", 50, nil) // still open: above the LSO

	reg := prometheus.NewRegistry()
	x, l := e.exporter(Config{})
	x.metrics = newMetrics(reg)
	if _, err := x.Pass(ctx, l.Fence(), true); err != nil {
		t.Fatal(err)
	}
	count := func(want int) {
		t.Helper()
		rows, _ := e.readTable(e.loadTable("floe.payments"))
		byPrefix := map[string]int{}
		for _, r := range rows {
			prefix, _, _ := strings.Cut(r.value, "-")
			byPrefix[prefix]++
		}
		if len(rows) != want || byPrefix["abort"] != 0 {
			t.Fatalf("the table holds %d rows %v, want %d and no aborted one", len(rows), byPrefix, want)
		}
	}
	count(200)
	if err := txp.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	if _, err := x.Pass(ctx, l.Fence(), true); err != nil {
		t.Fatal(err)
	}
	count(250)

	if got := metricSum(t, reg, "floe_exporter_rows_total"); got != 250 {
		t.Errorf("rows_total %v, want 250", got)
	}
	if got := metricSum(t, reg, "floe_exporter_lag_records"); got != 0 {
		t.Errorf("lag_records %v, want 0 once caught up", got)
	}
	if got := metricSum(t, reg, "floe_exporter_bytes_total"); got <= 0 {
		t.Errorf("bytes_total %v: no data file bytes counted", got)
	}
	// The export group: its offsets are where the table's rows end.
	offs, err := adm.FetchOffsets(ctx, metadata.ExportGroup("payments"))
	if err != nil {
		t.Fatal(err)
	}
	// Listed as a group that only commits offsets is.
	listed, err := adm.ListGroups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if g, ok := listed[metadata.ExportGroup("payments")]; !ok || g.State != "Empty" || g.ProtocolType != "" {
		t.Errorf("the export group in ListGroups: %+v (listed: %v)", g, listed.Groups())
	}
	described, err := adm.DescribeGroups(ctx, metadata.ExportGroup("payments"))
	if err != nil || described[metadata.ExportGroup("payments")].State != "Empty" {
		t.Errorf("the export group described: %+v %v", described, err)
	}
	ends, err := adm.ListEndOffsets(ctx, "payments")
	if err != nil {
		t.Fatal(err)
	}
	ends.Each(func(eo kadm.ListedOffset) {
		o, ok := offs.Lookup("payments", eo.Partition)
		// The export ends past the last commit's marker only once it
		// reads it; each partition ends at most one marker short.
		if !ok || eo.Offset-o.At > 1 {
			t.Errorf("partition %d: the export group is at %v, the end offset is %d", eo.Partition, o.At, eo.Offset)
		}
	})

	// A second topic whose table is the first's, with other columns:
	// refused, counted, and recorded in its export state.
	resp, err = adm.CreateTopic(ctx, 1, 1, map[string]*string{
		cfgEnabled: kadm.StringPtr("true"), cfgTable: kadm.StringPtr("floe.payments"),
		cfgValueFormat: kadm.StringPtr("json"), cfgValueSchema: kadm.StringPtr(ordersSchema),
	}, "payments-json")
	if err != nil || resp.Err != nil {
		t.Fatalf("creating the second topic: %v %v", err, resp.Err)
	}
	if err := e.client().ProduceSync(ctx, &kgo.Record{Topic: "payments-json", Value: []byte(`{"id":1,"item":"x"}`)}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if _, err := x.Pass(ctx, l.Fence(), true); err == nil || !strings.Contains(err.Error(), "does not have the columns") {
		t.Fatalf("exporting a topic into another's table: %v", err)
	}
	if got := metricWith(t, reg, "floe_exporter_commits_total", "failed"); got < 1 {
		t.Errorf("commits_total{failed} %v, want at least 1", got)
	}
	topic, _ := e.store.GetTopic(ctx, "payments-json")
	if st, ok, _ := e.store.ExportStateOf(ctx, topic.ID); !ok || !strings.Contains(st.Error, "does not have the columns") {
		t.Errorf("the second topic's export state: %+v", st)
	}
	// Deleted, it is forgotten (its table, the first's, stays).
	if _, err := adm.DeleteTopic(ctx, "payments-json"); err != nil {
		t.Fatal(err)
	}
	// Partitioned otherwise than its table, the first topic is refused.
	if _, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: cfgPartitionBy, Value: kadm.StringPtr("partition")}}, "payments"); err != nil {
		t.Fatal(err)
	}
	if _, err := x.Pass(ctx, l.Fence(), true); err == nil || !strings.Contains(err.Error(), "not partitioned as floe.iceberg.partition.by says") {
		t.Fatalf("exporting with another partitioning: %v", err)
	}
	if _, ok, _ := e.store.ExportStateOf(ctx, topic.ID); ok {
		t.Error("a deleted topic's export state stays")
	}
}

// metricSum sums a family's counters and gauges.
func metricSum(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var v float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				v += m.GetCounter().GetValue() + m.GetGauge().GetValue()
			}
		}
	}
	return v
}

// metricWith is a family's series whose first label has value.
func metricWith(t *testing.T, reg *prometheus.Registry, name, value string) float64 {
	t.Helper()
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				if m.GetLabel()[0].GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}
