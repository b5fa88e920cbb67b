package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/floe-io/floe/internal/testenv"
)

// floe exporter --once exports to a PostgreSQL catalog (a database of the
// test's own on the localstack PostgreSQL): a second run, on a connection
// of its own, appends to the table the first created, floe topic describe
// follows, and the catalog's one row in PostgreSQL names the table.
func TestExporterOnceToPostgresCatalog(t *testing.T) {
	catalog := testenv.Postgres(t)
	tc := startTestCluster(t, nil)
	b := tc.addr
	mustRun(t, "", "topic", "create", "sales", "-p", "2", "-c", "floe.iceberg.enabled=true", "-b", b)
	mustRun(t, "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n", "produce", "sales", "-q", "-b", b)

	args := []string{"exporter", "--once", "--bucket", tc.bucketDir, "--cluster", tc.cluster, "--catalog", catalog, "--http-addr", "",
		"--etcd-endpoints", strings.Join(testenv.EtcdEndpoints(t), ",")}
	r := mustRun(t, "", args...)
	if !strings.Contains(r.stderr, "1 commits, 10 rows (0 dead letters)") {
		t.Errorf("floe exporter --once: %v", r)
	}
	desc := decodeJSON[topicDescribeJSON](t, mustRun(t, "", "topic", "describe", "sales", "-o", "json", "-b", b).stdout)
	first := desc.Topics[0].Iceberg
	if first == nil || first.Table != "floe.sales" || first.SnapshotID == 0 || first.LagRecords != 0 {
		t.Fatalf("after the first export: %+v", first)
	}

	mustRun(t, "k\nl\nm\nn\no\n", "produce", "sales", "-q", "-b", b)
	r = mustRun(t, "", args...)
	if !strings.Contains(r.stderr, "1 commits, 5 rows (0 dead letters)") {
		t.Errorf("the second floe exporter --once: %v", r)
	}
	desc = decodeJSON[topicDescribeJSON](t, mustRun(t, "", "topic", "describe", "sales", "-o", "json", "-b", b).stdout)
	if ice := desc.Topics[0].Iceberg; ice == nil || ice.SnapshotID == 0 || ice.SnapshotID == first.SnapshotID || ice.LagRecords != 0 {
		t.Errorf("after the second export: %+v (the first's snapshot %d)", ice, first.SnapshotID)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, catalog)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var tables []string
	rows, err := conn.Query(ctx, `SELECT catalog_name || '/' || table_namespace || '/' || table_name, metadata_location FROM iceberg_tables`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var name, location string
		if err := rows.Scan(&name, &location); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(location, "file://"+tc.bucketDir+"/iceberg/") {
			t.Errorf("table %s's metadata is at %s, not in the bucket's warehouse", name, location)
		}
		tables = append(tables, name)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(tables) != 1 || tables[0] != "floe/floe/sales" {
		t.Errorf("iceberg_tables in PostgreSQL holds %v, want floe/floe/sales", tables)
	}
}
