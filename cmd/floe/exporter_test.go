package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/floe-io/floe/internal/testenv"
)

// A topic that opts in is exported by floe exporter --once to a SQLite
// catalog, and floe topic describe shows its table, snapshot and lag.
func TestExporterOnceAndTopicDescribe(t *testing.T) {
	tc := startTestCluster(t, nil)
	b := tc.addr
	mustRun(t, "", "topic", "create", "sales", "-p", "2", "-c", "floe.iceberg.enabled=true", "-b", b)
	mustRun(t, "", "topic", "create", "plain", "-p", "1", "-b", b)
	mustRun(t, "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n", "produce", "sales", "-q", "-b", b)

	desc := decodeJSON[topicDescribeJSON](t, mustRun(t, "", "topic", "describe", "sales", "plain", "-o", "json", "-b", b).stdout)
	if ice := desc.Topics[0].Iceberg; ice == nil || ice.Table != "floe.sales" || ice.Committed != nil || ice.LagRecords != 10 {
		t.Fatalf("before the export: %+v", ice)
	}
	if desc.Topics[1].Iceberg != nil {
		t.Errorf("a topic that does not export has an Iceberg section: %+v", desc.Topics[1].Iceberg)
	}

	catalog := "sqlite://" + filepath.Join(t.TempDir(), "catalog.db")
	args := []string{"exporter", "--once", "--bucket", tc.bucketDir, "--cluster", tc.cluster, "--catalog", catalog, "--http-addr", "",
		"--etcd-endpoints", strings.Join(testenv.EtcdEndpoints(t), ",")}
	r := mustRun(t, "", args...)
	if !strings.Contains(r.stderr, "1 commits, 10 rows (0 dead letters)") {
		t.Errorf("floe exporter --once: %v", r)
	}
	r = mustRun(t, "", "topic", "describe", "sales", "-b", b)
	if !strings.Contains(r.stdout, "Iceberg: table floe.sales, snapshot ") || !strings.Contains(r.stdout, "lag 0 records (0s)") {
		t.Errorf("describe after the export:\n%s", r.stdout)
	}
	desc = decodeJSON[topicDescribeJSON](t, mustRun(t, "", "topic", "describe", "sales", "-o", "json", "-b", b).stdout)
	if ice := desc.Topics[0].Iceberg; ice == nil || ice.SnapshotID == 0 || ice.Committed == nil || ice.LagRecords != 0 {
		t.Errorf("after the export: %+v", ice)
	}
	// A failing export shows in describe until a commit succeeds.
	mustRun(t, "", "topic", "alter", "sales", "--set", "floe.iceberg.partition.by=partition", "-b", b)
	mustRun(t, "k\n", "produce", "sales", "-q", "-b", b)
	wantFail(t, 1, "not partitioned as floe.iceberg.partition.by says", "", args...)
	r = mustRun(t, "", "topic", "describe", "sales", "-b", b)
	if !strings.Contains(r.stdout, "Iceberg export failed at ") || !strings.Contains(r.stdout, "not partitioned as floe.iceberg.partition.by says") || !strings.Contains(r.stdout, "lag 1 records") {
		t.Errorf("describe of a failing export:\n%s", r.stdout)
	}
	desc = decodeJSON[topicDescribeJSON](t, mustRun(t, "", "topic", "describe", "sales", "-o", "json", "-b", b).stdout)
	if ice := desc.Topics[0].Iceberg; ice == nil || ice.ErrorAt == nil || !strings.Contains(ice.Error, "not partitioned") {
		t.Errorf("a failing export in JSON: %+v", ice)
	}
	mustRun(t, "", "topic", "alter", "sales", "--delete", "floe.iceberg.partition.by", "-b", b)
	mustRun(t, "", args...)
	r = mustRun(t, "", "topic", "describe", "sales", "-b", b)
	if strings.Contains(r.stdout, "failed") || !strings.Contains(r.stdout, "lag 0 records") {
		t.Errorf("describe once the export works again:\n%s", r.stdout)
	}
	wantFail(t, 1, "--catalog is required", "", "exporter", "--bucket", tc.bucketDir)
	wantFail(t, 1, "unknown scheme", "", "exporter", "--once", "--bucket", tc.bucketDir, "--cluster", tc.cluster, "--catalog", "mysql://x", "--http-addr", "",
		"--etcd-endpoints", strings.Join(testenv.EtcdEndpoints(t), ","))
}
