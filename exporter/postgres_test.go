package exporter

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/apache/iceberg-go/catalog"
	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floe-io/floe/internal/testenv"
)

// newPostgresEnv is newEnv with a PostgreSQL catalog: a database of the
// test's own on the localstack PostgreSQL. It skips the test when there is
// none.
func newPostgresEnv(t *testing.T) *env {
	t.Helper()
	url := testenv.Postgres(t)
	e := newEnv(t)
	e.catalog = url
	return e
}

// catalogRow is a table's row in the SQL catalog's iceberg_tables.
type catalogRow struct {
	catalog, namespace, name, metadata string
}

// catalogRows reads iceberg_tables straight from PostgreSQL.
func (e *env) catalogRows() []catalogRow {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, e.catalog)
	if err != nil {
		e.t.Fatal(err)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(ctx, `SELECT catalog_name, table_namespace, table_name, metadata_location FROM iceberg_tables ORDER BY 1, 2, 3`)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []catalogRow
	for rows.Next() {
		var r catalogRow
		if err := rows.Scan(&r.catalog, &r.namespace, &r.name, &r.metadata); err != nil {
			e.t.Fatal(err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		e.t.Fatal(err)
	}
	return out
}

// produceOrders produces n JSON orders (ids from first) to topic, every
// 1000th a dead letter.
func (e *env) produceOrders(topic string, first, n int) {
	e.t.Helper()
	ctx := context.Background()
	prod := e.client(kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(5*time.Millisecond))
	placed := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	for i := first; i < first+n; i++ {
		value := fmt.Sprintf(`{"id":%d,"item":"item-%d","amount":%d.5,"paid":%v,"placed":%q}`, i, i%100, i%1000, i%2 == 0, placed.Add(time.Duration(i)*time.Second).Format(time.RFC3339))
		if i%1000 == 999 {
			value = `{"id":"not a number"}`
		}
		prod.Produce(ctx, &kgo.Record{Key: []byte(fmt.Sprint(i)), Value: []byte(value)}, func(_ *kgo.Record, err error) {
			if err != nil {
				e.t.Error(err)
			}
		})
	}
	if err := prod.Flush(ctx); err != nil {
		e.t.Fatal(err)
	}
}

// checkOrders reads the table and checks that it holds want rows, each
// (partition, offset) once, with every 1000th a dead letter.
func (e *env) checkOrders(name string, want int) {
	e.t.Helper()
	rows, files := e.readTable(e.loadTable(name))
	if len(rows) != want {
		e.t.Fatalf("table %s holds %d rows, want %d", name, len(rows), want)
	}
	seen := map[[2]int64]bool{}
	dead := 0
	for _, r := range rows {
		k := [2]int64{int64(r.partition), r.offset}
		if seen[k] {
			e.t.Fatalf("partition %d offset %d is in table %s twice", r.partition, r.offset, name)
		}
		seen[k] = true
		if r.dead != "" {
			dead++
			continue
		}
		if r.item != fmt.Sprintf("item-%d", r.id%100) {
			e.t.Fatalf("row id %d: item %q", r.id, r.item)
		}
	}
	if dead != want/1000 {
		e.t.Errorf("%d dead letters, want %d", dead, want/1000)
	}
	e.t.Logf("table %s: %d rows (%d dead letters) in %d data files", name, len(rows), dead, files)
}

func (e *env) createOrdersTopic(topic, table string, partitions int32) {
	e.t.Helper()
	adm := kadm.NewClient(e.client())
	resp, err := adm.CreateTopic(context.Background(), partitions, 1, map[string]*string{
		cfgEnabled:        kadm.StringPtr("true"),
		cfgValueFormat:    kadm.StringPtr("json"),
		cfgValueSchema:    kadm.StringPtr(ordersSchema),
		cfgPartitionBy:    kadm.StringPtr("day(timestamp)"),
		cfgTable:          kadm.StringPtr(table),
		cfgCommitInterval: kadm.StringPtr("1000"),
	}, topic)
	if err != nil || resp.Err != nil {
		e.t.Fatalf("creating topic %s: %v %v", topic, err, resp.Err)
	}
}

// A JSON topic is exported exactly once to a table in a PostgreSQL catalog
// across an exporter that dies between a table commit and recording it:
// the next exporter, on a connection of its own, resumes from the table the
// catalog names, and the catalog's row in PostgreSQL names the table's
// current metadata.
func TestExportToPostgresCatalogExactlyOnceAcrossACrash(t *testing.T) {
	e := newPostgresEnv(t)
	ctx := context.Background()
	records := 20_000
	if testing.Short() {
		records = 5_000
	}
	e.createOrdersTopic("orders", "shop.orders", 4)
	e.produceOrders("orders", 0, records)
	topic, err := e.store.GetTopic(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}

	recorded := e.crashAfterTableCommits(Config{MaxCommitBytes: 128 << 10}, 3, topic.ID)

	x2, l2 := e.exporter(Config{MaxCommitBytes: 4 << 20})
	ps, err := x2.Pass(ctx, l2.Fence(), true)
	if err != nil {
		t.Fatal(err)
	}
	// The third commit is in the table but not in the export state: the
	// second exporter must not write its rows again.
	if ps.Rows+recorded >= int64(records) {
		t.Errorf("the second exporter wrote %d rows after %d recorded, of %d: the crashed commit's rows again?", ps.Rows, recorded, records)
	}
	e.checkOrders("shop.orders", records)
	if _, total := e.exportState(topic.ID); total != int64(records) {
		t.Errorf("export state offsets sum to %d, want %d", total, records)
	}

	tbl := e.loadTable("shop.orders")
	got := e.catalogRows()
	want := []catalogRow{{catalogName, "shop", "orders", tbl.MetadataLocation()}}
	if len(got) != 1 || got[0] != want[0] {
		t.Errorf("iceberg_tables in PostgreSQL holds %+v, want %+v", got, want)
	}
}

// Two exporters on two connections to one PostgreSQL catalog take turns
// leading, as replicas on two machines do: each appends to the table the
// other created and committed to, never creating another or losing a
// commit, and each connection sees the other's commits.
func TestPostgresCatalogSharedByTwoExporters(t *testing.T) {
	e := newPostgresEnv(t)
	ctx := context.Background()
	e.createOrdersTopic("orders", "shop.orders", 2)

	xa, la := e.exporter(Config{ID: "exporter-a"})
	e.produceOrders("orders", 0, 2000)
	if _, err := xa.Pass(ctx, la.Fence(), true); err != nil {
		t.Fatal(err)
	}
	la.Resign(ctx)
	created := e.loadTable("shop.orders")
	e.checkOrders("shop.orders", 2000)

	// The second exporter's catalog connection is opened after the table
	// exists; it appends.
	xb, lb := e.exporter(Config{ID: "exporter-b"})
	e.produceOrders("orders", 2000, 1000)
	if ps, err := xb.Pass(ctx, lb.Fence(), true); err != nil || ps.Rows != 1000 {
		t.Fatalf("exporter b's pass: %+v %v, want 1000 rows", ps, err)
	}
	lb.Resign(ctx)
	e.checkOrders("shop.orders", 3000)

	// The first leads again, on the connection it opened before the
	// second's commit.
	la, err := e.store.CampaignExporter(ctx, xa.ID(), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { la.Resign(context.Background()) })
	e.produceOrders("orders", 3000, 1000)
	if ps, err := xa.Pass(ctx, la.Fence(), true); err != nil || ps.Rows != 1000 {
		t.Fatalf("exporter a's second pass: %+v %v, want 1000 rows", ps, err)
	}
	e.checkOrders("shop.orders", 4000)

	tbl := e.loadTable("shop.orders")
	if tbl.Metadata().TableUUID() != created.Metadata().TableUUID() {
		t.Errorf("the table was created anew: UUID %v, was %v", tbl.Metadata().TableUUID(), created.Metadata().TableUUID())
	}
	for _, x := range []*Exporter{xa, xb} {
		seen, err := x.cat.LoadTable(ctx, catalog.ToIdentifier("shop.orders"))
		if err != nil {
			t.Fatal(err)
		}
		if seen.MetadataLocation() != tbl.MetadataLocation() {
			t.Errorf("%s's connection sees metadata %s, want %s", x.ID(), seen.MetadataLocation(), tbl.MetadataLocation())
		}
	}
	if rows := e.catalogRows(); len(rows) != 1 || rows[0].metadata != tbl.MetadataLocation() {
		t.Errorf("iceberg_tables in PostgreSQL holds %+v, want one row at %s", rows, tbl.MetadataLocation())
	}
}

// Exporter replicas that start together on an empty database all open the
// catalog (each creates its tables if missing).
func TestOpenPostgresCatalogConcurrently(t *testing.T) {
	url := testenv.Postgres(t)
	_, props, err := WarehouseOf(t.TempDir(), testenv.BucketOptions())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cat, err := OpenCatalog(ctx, url, props)
			if err == nil {
				for _, lerr := range cat.ListTables(ctx, catalog.ToIdentifier("floe")) {
					// The namespace does not exist yet.
					if lerr != nil && !errors.Is(lerr, catalog.ErrNoSuchNamespace) {
						err = lerr
					}
				}
				cat.Close()
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("catalog %d: %v", i, err)
		}
	}
}
