package fault

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/table"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/parquet-go/parquet-go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floe-io/floe/exporter"
	"github.com/floe-io/floe/metadata"
	"github.com/floe-io/floe/segments"
)

// The Iceberg export of the transactional topic: `floe exporter` writes
// it to a table (floe.fault_txn) in the cluster's bucket, with a SQLite
// catalog in the working directory, committing every second, under the
// same faults as everything else and killed mid-commit itself
// (exporter-kill, exporter-kill-manifest, exporter-kill-unrecorded). At the end the table is read
// back, its data files with parquet-go (not the Parquet implementation
// that wrote them) straight from MinIO, and judged by CheckExport against
// the topic's final read_committed read.

// exportConfigs are the transactional topic's export settings: a commit a
// second, so that a run has a hundred or more, and a table partitioned by
// the record's partition (a data file per partition a commit touches).
var exportConfigs = map[string]*string{
	"floe.iceberg.enabled":            kadm.StringPtr("true"),
	"floe.iceberg.commit.interval.ms": kadm.StringPtr("1000"),
	"floe.iceberg.partition.by":       kadm.StringPtr("partition"),
}

// exportTableName is the transactional topic's table.
var exportTableName = catalog.ToIdentifier("floe.fault_txn")

// The PUTs of a table commit that the exporter-kill faults kill it at:
// the commit writes its data files, a manifest, the manifest list
// (metadata/snap-*.avro) and then the table metadata
// (metadata/NNNNN-*.metadata.json), which the catalog commit points the
// table to.
var (
	tableMetadataPut = regexp.MustCompile(`^PUT /[^ ]*/iceberg/[^ ]*/metadata/[^ /?]+\.metadata\.json(\?[^ ]*)? HTTP/1\.[01]\r?$`)
	manifestListPut  = regexp.MustCompile(`^PUT /[^ ]*/iceberg/[^ ]*/metadata/snap-[^ /?]+\.avro(\?[^ ]*)? HTTP/1\.[01]\r?$`)
)

// killExporterMidPut kills the exporter as a table commit writes its
// object (killMidPut), and restarts it.
func killExporterMidPut(s *suite, put *regexp.Regexp, object, next string) (string, error) {
	what, err := killMidPut(s, s.c.exporter, s.c.es3, put, object+" write", next)
	if err != nil {
		return what, err
	}
	return restartExporter(s, what)
}

// killExporterUnrecorded kills the exporter after a table commit and
// before it records the commit in etcd (the export state, then the export
// group's offsets, both of which may trail the table): once MinIO has
// answered the PUT of a commit's table metadata, the first bytes the
// exporter sends etcd through its proxy are cut and the exporter killed.
// The catalog commit, local, comes between the two; the export state's
// write is the first etcd request after it. The restarted exporter must
// resume from the table, not from etcd.
func killExporterUnrecorded(s *suite) (string, error) {
	var (
		mu     sync.Mutex
		puts   = map[uint64]string{} // connections with a table metadata PUT outstanding
		stored atomic.Pointer[string]
		killed atomic.Bool
		what   string
		fired  = make(chan struct{})
	)
	kill := func(desc string) {
		if killed.CompareAndSwap(false, true) {
			what = desc
			s.c.exporter.Signal(syscall.SIGKILL)
			close(fired)
		}
	}
	s.c.es3.SetHook(func(conn uint64, fromClient bool, chunk []byte) bool {
		if fromClient {
			line, _, _ := bytes.Cut(chunk, []byte("\n"))
			if tableMetadataPut.Match(line) {
				obj, _, _ := strings.Cut(strings.Fields(string(line))[1], "?")
				mu.Lock()
				puts[conn] = obj
				mu.Unlock()
			}
			return true
		}
		mu.Lock()
		obj, ok := puts[conn]
		if ok && bytes.HasPrefix(chunk, []byte("HTTP/1.1 ")) {
			delete(puts, conn)
		}
		mu.Unlock()
		if ok && bytes.HasPrefix(chunk, []byte("HTTP/1.1 200")) {
			stored.Store(&obj)
		}
		return true
	})
	s.c.eetcd.SetHook(func(_ uint64, fromClient bool, _ []byte) bool {
		if killed.Load() {
			return false
		}
		if obj := stored.Load(); fromClient && obj != nil {
			kill("after MinIO stored " + *obj + ", as the exporter next wrote to etcd")
			return false
		}
		return true
	})
	defer s.c.es3.SetHook(nil)
	defer s.c.eetcd.SetHook(nil)
	select {
	case <-fired:
	case <-time.After(45 * time.Second):
		kill("with no table commit in 45s")
	}
	if _, err := s.c.exporter.Wait(10 * time.Second); err != nil {
		return what, err
	}
	s.c.es3.SetHook(nil)
	s.c.eetcd.SetHook(nil)
	return restartExporter(s, what)
}

// restartExporter starts the killed exporter again, and waits until it
// leads again (once its predecessor's lease has lapsed). what, what the
// kill hit, is returned with where the table and the export group were
// left. (Whether it then resumes where the table ends, the check at the
// end of the run judges.)
func restartExporter(s *suite, what string) (string, error) {
	what += "; " + s.exportPosition()
	time.Sleep(500 * time.Millisecond)
	start := time.Now()
	if err := s.c.exporter.Start(); err != nil {
		return what, err
	}
	if err := s.c.exporterReady(); err != nil {
		return what, err
	}
	if err := s.c.exporterActive(30 * time.Second); err != nil {
		return what, err
	}
	return fmt.Sprintf("%s; restarted, leading after %v", what, time.Since(start).Round(10*time.Millisecond)), nil
}

// exportPosition says, for the log, where the catalog's table and the
// export group are: the table's metadata file, and the offsets its
// current snapshot and the group record, summed over the partitions.
func (s *suite) exportPosition() string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := openExport(ctx, s.c)
	if err != nil {
		return "the catalog: " + err.Error()
	}
	defer r.Close()
	tbl, err := r.cat.LoadTable(ctx, exportTableName)
	if errors.Is(err, catalog.ErrNoSuchTable) {
		return "no table yet"
	}
	if err != nil {
		return "the table: " + err.Error()
	}
	offs, err := snapshotOffsets(tbl)
	if err != nil {
		return err.Error()
	}
	var inTable int64
	if len(offs) > 0 {
		for _, o := range offs[len(offs)-1] {
			inTable += o
		}
	}
	meta := tbl.MetadataLocation()
	meta = meta[strings.LastIndexByte(meta, '/')+1:]
	cl, err := kgo.NewClient(baseOpts(s.c.seeds())...)
	if err != nil {
		return err.Error()
	}
	defer cl.Close()
	var inGroup int64
	resp, err := kadm.NewClient(cl).FetchOffsets(ctx, metadata.ExportGroup(txnTopic))
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		return fmt.Sprintf("the catalog at %s, the table's offsets summing to %d; the export group: %v", meta, inTable, err)
	}
	resp.Each(func(o kadm.OffsetResponse) {
		if o.Topic == txnTopic && o.At > 0 {
			inGroup += o.At
		}
	})
	return fmt.Sprintf("the catalog at %s, the table's offsets summing to %d, the export group's to %d", meta, inTable, inGroup)
}

// exporterCommits is the exporter's log lines of its commits to the
// transactional topic's table, over all its runs.
func exporterCommits(p *Proc) []string {
	l, _ := p.Grep("msg=exported", "topic="+txnTopic+" ")
	return l
}

// exportReader reads the exporter's table: its SQLite catalog, opened as
// the exporter opens it, and its files straight from MinIO, not through
// the exporter's proxy.
type exportReader struct {
	cat   exporter.Catalog
	minio *minio.Client
}

func openExport(ctx context.Context, c *cluster) (*exportReader, error) {
	_, props, err := exporter.WarehouseOf(fmt.Sprintf("minio://%s/%s/data?secure=false", c.minioAddr, bucketName),
		segments.BucketOptions{AccessKey: minioUser, SecretKey: minioPassword})
	if err != nil {
		return nil, err
	}
	cat, err := exporter.OpenCatalog(ctx, "sqlite://"+c.catalog, props)
	if err != nil {
		return nil, err
	}
	mc, err := minio.New(c.minioAddr, &minio.Options{Creds: credentials.NewStaticV4(minioUser, minioPassword, ""), BucketLookup: minio.BucketLookupPath})
	if err != nil {
		cat.Close()
		return nil, err
	}
	return &exportReader{cat: cat, minio: mc}, nil
}

func (r *exportReader) Close() error { return r.cat.Close() }

// snapshotOffsets is the floe.offsets of tbl's current snapshot and its
// ancestors that record them, oldest first.
func snapshotOffsets(tbl *table.Table) ([]map[int32]int64, error) {
	var out []map[int32]int64
	meta := tbl.Metadata()
	for snap := tbl.CurrentSnapshot(); snap != nil; {
		if snap.Summary != nil {
			if raw, ok := snap.Summary.Properties["floe.offsets"]; ok {
				var byPart map[string]int64
				if err := json.Unmarshal([]byte(raw), &byPart); err != nil {
					return nil, fmt.Errorf("snapshot %d: floe.offsets %q: %w", snap.SnapshotID, raw, err)
				}
				offs := map[int32]int64{}
				for k, v := range byPart {
					p, err := strconv.ParseInt(k, 10, 32)
					if err != nil {
						return nil, fmt.Errorf("snapshot %d: floe.offsets %q: %w", snap.SnapshotID, raw, err)
					}
					offs[int32(p)] = v
				}
				out = append(out, offs)
			}
		}
		if snap.ParentSnapshotID == nil {
			break
		}
		snap = meta.SnapshotByID(*snap.ParentSnapshotID)
	}
	slices.Reverse(out)
	return out, nil
}

// waitExported waits until the table holds every committed record of the
// transactional topic: its latest offsets are past each partition's last
// record read committed (h.In). It returns the table then.
func (r *exportReader) waitExported(ctx context.Context, h *TxnHistory) (*table.Table, error) {
	want := map[int32]int64{}
	for p, reads := range h.In {
		for _, rd := range reads {
			if rd.Marker == "" {
				want[p] = rd.Offset + 1
			}
		}
	}
	var last string
	for {
		tbl, err := r.cat.LoadTable(ctx, exportTableName)
		var offs []map[int32]int64
		if err == nil {
			offs, err = snapshotOffsets(tbl)
		}
		if err == nil {
			at := map[int32]int64{}
			if len(offs) > 0 {
				at = offs[len(offs)-1]
			}
			var behind []string
			for _, p := range slices.Sorted(maps.Keys(want)) {
				if at[p] < want[p] {
					behind = append(behind, fmt.Sprintf("partition %d at %d of %d", p, at[p], want[p]))
				}
			}
			if len(behind) == 0 {
				return tbl, nil
			}
			last = strings.Join(behind, ", ")
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("the table %s does not hold every committed record: %s", strings.Join(exportTableName, "."), last)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// read reads tbl's current snapshot: every row of its data files (listed
// by its manifests), and the offsets and record count its metadata has.
func (r *exportReader) read(ctx context.Context, tbl *table.Table) (ExportTable, int, error) {
	out := ExportTable{TotalRecords: -1}
	var err error
	if out.Offsets, err = snapshotOffsets(tbl); err != nil {
		return out, 0, err
	}
	if snap := tbl.CurrentSnapshot(); snap != nil && snap.Summary != nil {
		if n, err := strconv.ParseInt(snap.Summary.Properties["total-records"], 10, 64); err == nil {
			out.TotalRecords = n
		}
	}
	tasks, err := tbl.Scan().PlanFiles(ctx)
	if err != nil {
		return out, 0, fmt.Errorf("listing the data files: %w", err)
	}
	for _, task := range tasks {
		path := task.File.FilePath()
		key, ok := strings.CutPrefix(path, "s3://"+bucketName+"/")
		if !ok {
			return out, 0, fmt.Errorf("data file %s is not in the bucket %s", path, bucketName)
		}
		rows, err := r.readFile(ctx, key)
		if err != nil {
			return out, 0, fmt.Errorf("data file %s: %w", path, err)
		}
		if int64(len(rows)) != task.File.Count() {
			return out, 0, fmt.Errorf("data file %s holds %d rows, its manifest entry says %d", path, len(rows), task.File.Count())
		}
		out.Rows = append(out.Rows, rows...)
	}
	return out, len(tasks), nil
}

// readFile reads a data file's rows with parquet-go.
func (r *exportReader) readFile(ctx context.Context, key string) ([]ExportRow, error) {
	obj, err := r.minio.GetObject(ctx, bucketName, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, err
	}
	data, err := io.ReadAll(obj)
	obj.Close()
	if err != nil {
		return nil, err
	}
	f, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, fmt.Errorf("not a Parquet file: %w", err)
	}
	col := func(path ...string) (int, error) {
		leaf, ok := f.Schema().Lookup(path...)
		if !ok {
			return -1, fmt.Errorf("no column %s", strings.Join(path, "."))
		}
		return leaf.ColumnIndex, nil
	}
	cTopic, err1 := col("kafka", "topic")
	cPart, err2 := col("kafka", "partition")
	cOff, err3 := col("kafka", "offset")
	cKey, err4 := col("key")
	cValue, err5 := col("value")
	if err := errors.Join(err1, err2, err3, err4, err5); err != nil {
		return nil, err
	}
	bytesOf := func(v parquet.Value) []byte {
		if v.IsNull() {
			return nil
		}
		return bytes.Clone(v.ByteArray())
	}
	var out []ExportRow
	for _, rg := range f.RowGroups() {
		rows := rg.Rows()
		buf := make([]parquet.Row, 128)
		for {
			n, err := rows.ReadRows(buf)
			for _, row := range buf[:n] {
				var e ExportRow
				for _, v := range row {
					switch v.Column() {
					case cTopic:
						e.Topic = string(v.ByteArray())
					case cPart:
						e.Partition = v.Int32()
					case cOff:
						e.Offset = v.Int64()
					case cKey:
						e.Key = bytesOf(v)
					case cValue:
						e.Value = bytesOf(v)
					}
				}
				out = append(out, e)
			}
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				rows.Close()
				return nil, err
			}
		}
		rows.Close()
	}
	return out, nil
}

// metadataFiles counts the table metadata files in the bucket, and the
// versions written more than once: a commit cut short after its metadata
// file was stored leaves it behind, and the next commit writes that
// version (NNNNN-<uuid>.metadata.json) again.
func (r *exportReader) metadataFiles(ctx context.Context, tbl *table.Table) (files, rewritten int, err error) {
	loc, ok := strings.CutPrefix(tbl.Location(), "s3://"+bucketName+"/")
	if !ok {
		return 0, 0, fmt.Errorf("the table's location %s is not in the bucket %s", tbl.Location(), bucketName)
	}
	versions := map[string]int{}
	for obj := range r.minio.ListObjects(ctx, bucketName, minio.ListObjectsOptions{Prefix: loc + "/metadata/", Recursive: true}) {
		if obj.Err != nil {
			return 0, 0, obj.Err
		}
		name := obj.Key[strings.LastIndexByte(obj.Key, '/')+1:]
		if strings.HasSuffix(name, ".metadata.json") {
			files++
			v, _, _ := strings.Cut(name, "-")
			if versions[v]++; versions[v] == 2 {
				rewritten++
			}
		}
	}
	return files, rewritten, nil
}

// exporterMetrics is the exporter's floe_exporter_* series, for the log.
func (c *cluster) exporterMetrics() string {
	cl := http.Client{Timeout: 2 * time.Second}
	resp, err := cl.Get("http://" + c.expHTTP + "/metrics")
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var out []string
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, "floe_exporter_") && !strings.Contains(line, "_bucket{") && !strings.Contains(line, "duration") {
			out = append(out, line)
		}
	}
	return strings.Join(out, " ")
}

// checkExport waits until the exporter has taken every committed record
// of the transactional topic, reads its table and judges it.
func (s *suite) checkExport(h *TxnHistory) (ExportResult, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	start := time.Now()
	r, err := openExport(ctx, s.c)
	if err != nil {
		return ExportResult{}, fmt.Errorf("opening the exporter's catalog: %w", err)
	}
	defer r.Close()
	wctx, wcancel := context.WithTimeout(ctx, 60*time.Second)
	tbl, werr := r.waitExported(wctx, h)
	wcancel()
	if werr != nil {
		// Judge what there is: the check names the missing records.
		s.t.Errorf("export: the exporter did not catch up within 60s: %v", werr)
		if tbl, err = r.cat.LoadTable(ctx, exportTableName); err != nil {
			return ExportResult{}, fmt.Errorf("loading the table: %w", err)
		}
	}
	waited := time.Since(start)
	read, files, err := r.read(ctx, tbl)
	if err != nil {
		return ExportResult{}, fmt.Errorf("reading the table: %w", err)
	}
	res := CheckExport(h, txnTopic, txnValue, read)
	metaFiles, rewritten, err := r.metadataFiles(ctx, tbl)
	if err != nil {
		return res, fmt.Errorf("listing the table's metadata files: %w", err)
	}
	s.logf("export: the table held every committed record %v after the workload drained; read %d rows from %d data files and %d snapshots recording offsets in %v; %d table metadata files in the bucket, %d versions of them written twice (a commit cut short after its metadata file was stored); the exporter logged %d commits over %d starts; its metrics since its last start: %s",
		waited.Round(100*time.Millisecond), len(read.Rows), files, len(read.Offsets), time.Since(start).Round(100*time.Millisecond), metaFiles, rewritten,
		len(exporterCommits(s.c.exporter)), s.c.exporter.Starts(), s.c.exporterMetrics())
	return res, nil
}
