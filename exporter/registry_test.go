package exporter

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/iceberg-go/table"
	"github.com/twmb/avro"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floe-io/floe/internal/schemaregistry"
	"github.com/floe-io/floe/registry"
)

// testRegistry is floe's schema registry over the env's etcd, served on
// a loopback listener that can be stopped and started again on its
// address.
type testRegistry struct {
	t    testing.TB
	e    *env
	addr string
	srv  *httptest.Server
	// wrap, when set, wraps the registry's handler (before start).
	wrap func(http.Handler) http.Handler
}

func (e *env) registry() *testRegistry {
	e.t.Helper()
	r := &testRegistry{t: e.t, e: e}
	r.start()
	e.t.Cleanup(r.stop)
	return r
}

func (r *testRegistry) start() {
	r.t.Helper()
	addr := r.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var ln net.Listener
	var err error
	for range 50 { // the old listener's port may take a moment to free
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		r.t.Fatal(err)
	}
	r.addr = ln.Addr().String()
	var h http.Handler = registry.New(r.e.store, registry.Options{})
	if r.wrap != nil {
		h = r.wrap(h)
	}
	r.srv = &httptest.Server{Listener: ln, Config: &http.Server{Handler: h}}
	r.srv.Start()
}

func (r *testRegistry) stop() {
	if r.srv != nil {
		r.srv.CloseClientConnections()
		r.srv.Close()
		r.srv = nil
	}
}

func (r *testRegistry) url() string { return "http://" + r.addr }

// register registers a schema under subject and returns its ID.
func (r *testRegistry) register(subject string, typ schemaregistry.Type, text string, refs ...schemaregistry.Reference) int {
	r.t.Helper()
	body := map[string]any{"schema": text}
	if typ != schemaregistry.Avro {
		body["schemaType"] = string(typ)
	}
	if len(refs) > 0 {
		body["references"] = refs
	}
	b, _ := json.Marshal(body)
	resp, err := http.Post(r.url()+"/subjects/"+url.PathEscape(subject)+"/versions", "application/vnd.schemaregistry.v1+json", bytes.NewReader(b))
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	var id struct{ ID int }
	if resp.StatusCode != 200 || json.Unmarshal(out, &id) != nil || id.ID == 0 {
		r.t.Fatalf("registering under %s: %d %s", subject, resp.StatusCode, out)
	}
	return id.ID
}

// createTopic creates a one-partition exported topic with configs.
func (e *env) createTopic(name string, configs map[string]string) {
	e.t.Helper()
	cs := map[string]*string{cfgEnabled: kadm.StringPtr("true")}
	for k, v := range configs {
		cs[k] = kadm.StringPtr(v)
	}
	resp, err := kadm.NewClient(e.client()).CreateTopic(context.Background(), 1, 1, cs, name)
	if err != nil || resp.Err != nil {
		e.t.Fatalf("creating topic %s: %v %v", name, err, resp.Err)
	}
}

// produce writes values to a topic's partition 0, in order.
func (e *env) produce(topic string, values ...[]byte) {
	e.t.Helper()
	var rs []*kgo.Record
	for _, v := range values {
		rs = append(rs, &kgo.Record{Topic: topic, Value: v})
	}
	if err := e.client().ProduceSync(context.Background(), rs...).FirstErr(); err != nil {
		e.t.Fatal(err)
	}
}

// confluent is a value in the Confluent wire format.
func confluent(id int, payload []byte) []byte {
	return append(schemaregistry.AppendHeader(nil, id), payload...)
}

// valueRows scans a table through iceberg-go and returns each row's value
// columns (all but kafka, key and headers) as JSON, by offset.
func valueRows(t *testing.T, tbl *table.Table) map[int64]string {
	t.Helper()
	out := map[int64]string{}
	scanBatches(t, tbl, func(rec arrow.RecordBatch) {
		offsets := rec.Column(0).(*array.Struct).Field(2).(*array.Int64)
		for i := range int(rec.NumRows()) {
			row := map[string]any{}
			for c := 3; c < int(rec.NumCols()); c++ {
				row[rec.Schema().Field(c).Name] = rec.Column(c).GetOneForMarshal(i)
			}
			b, err := json.Marshal(row)
			if err != nil {
				t.Fatal(err)
			}
			out[offsets.Value(i)] = string(b)
		}
	})
	return out
}

// scanBatches scans a table through iceberg-go and gives each record
// batch to f.
func scanBatches(t *testing.T, tbl *table.Table, f func(arrow.RecordBatch)) {
	t.Helper()
	at, err := tbl.Scan().ToArrowTable(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer at.Release()
	rdr := array.NewTableReader(at, 0)
	defer rdr.Release()
	for rdr.Next() {
		f(rdr.RecordBatch())
	}
}

// columns lists a table's top-level columns.
func columns(tbl *table.Table) string {
	var names []string
	for _, f := range tbl.Schema().Fields() {
		names = append(names, f.Name+":"+f.Type.String())
	}
	return strings.Join(names, ", ")
}

func checkRows(t *testing.T, got map[int64]string, want []string) {
	t.Helper()
	if len(got) != len(want) {
		offs := make([]int64, 0, len(got))
		for o := range got {
			offs = append(offs, o)
		}
		sort.Slice(offs, func(i, j int) bool { return offs[i] < offs[j] })
		t.Errorf("%d rows (offsets %v), want %d", len(got), offs, len(want))
	}
	for o, w := range want {
		g := got[int64(o)]
		if prefix, ok := strings.CutSuffix(w, "*"); ok && strings.HasPrefix(g, prefix) {
			continue
		}
		if g != w {
			t.Errorf("offset %d:\n got %s\nwant %s", o, g, w)
		}
	}
}

const avroOrder = `{"type":"record","name":"Order","namespace":"shop","fields":[
  {"name":"id","type":"long"},
  {"name":"customer","type":{"type":"record","name":"Customer","fields":[
    {"name":"name","type":"string"},
    {"name":"tier","type":{"type":"enum","name":"Tier","symbols":["GOLD","SILVER"]}}]}},
  {"name":"items","type":{"type":"array","items":{"type":"record","name":"Item","fields":[{"name":"sku","type":"string"},{"name":"qty","type":"int"}]}}},
  {"name":"attrs","type":{"type":"map","values":"string"}},
  {"name":"note","type":["null","string"],"default":null},
  {"name":"placed","type":{"type":"long","logicalType":"timestamp-millis"}},
  {"name":"day","type":{"type":"int","logicalType":"date"}},
  {"name":"blob","type":"bytes"}
]}`

// Avro values in the Confluent wire format become typed columns by the
// subject's latest schema; values that cannot be read are dead letters
// with the reason, none dropped.
func TestExportAvroValues(t *testing.T) {
	e := newEnv(t)
	reg := e.registry()
	id := reg.register("orders-value", schemaregistry.Avro, avroOrder)
	e.createTopic("orders", map[string]string{cfgValueFormat: "avro"})
	w := avro.MustParse(avroOrder)
	enc := func(v map[string]any) []byte {
		b, err := w.Encode(v)
		if err != nil {
			t.Fatal(err)
		}
		return confluent(id, b)
	}
	good := enc(map[string]any{
		"id": int64(1), "customer": map[string]any{"name": "ann", "tier": "GOLD"},
		"items": []any{map[string]any{"sku": "A-1", "qty": int32(2)}, map[string]any{"sku": "B-2", "qty": int32(1)}},
		"attrs": map[string]any{"source": "web", "campaign": "x"}, "note": "leave at the door",
		"placed": int64(1_764_000_000_123), "day": int32(20424), "blob": []byte{0xca, 0xfe},
	})
	sparse := enc(map[string]any{
		"id": int64(2), "customer": map[string]any{"name": "bob", "tier": "SILVER"},
		"items": []any{}, "attrs": map[string]any{}, "note": nil, "placed": int64(0), "day": int32(0), "blob": []byte{},
	})
	e.produce("orders",
		good, sparse,
		[]byte(`{"id": 3}`),                  // not the wire format
		confluent(id+1000, good[5:]),         // an ID the registry does not have
		confluent(id, []byte{0xff, 0xff, 1}), // not Avro
		nil,                                  // a tombstone
	)
	x, l := e.exporter(Config{SchemaRegistryURL: reg.url()})
	st, err := x.Pass(context.Background(), l.Fence(), true)
	if err != nil {
		t.Fatal(err)
	}
	if st.Rows != 6 || st.DeadLetters != 4 {
		t.Errorf("pass: %+v, want 6 rows, 4 dead letters", st)
	}
	tbl := e.loadTable("floe.orders")
	if got, want := columns(tbl), "kafka:struct<2: topic: required string, 3: partition: required int, 4: offset: required long, 5: timestamp: required timestamptz, 6: timestamp_type: required string>, key:binary, headers:list<struct<10: key: required string, 11: value: optional binary>>, id:long, customer:struct<14: name: optional string, 15: tier: optional string>, items:list<struct<18: sku: optional string, 19: qty: optional long>>, attrs:list<struct<22: key: optional string, 23: value: optional string>>, note:string, placed:timestamptz, day:date, blob:binary, _dead_letter:struct<29: reason: required string, 30: value: optional binary>"; got != want {
		t.Errorf("columns\n got %s\nwant %s", got, want)
	}
	const none = `"attrs":null,"blob":null,"customer":null,"day":null,"id":null,"items":null,"note":null,"placed":null`
	checkRows(t, valueRows(t, tbl), []string{
		`{"_dead_letter":null,"attrs":[{"key":"campaign","value":"x"},{"key":"source","value":"web"}],"blob":"yv4=","customer":{"name":"ann","tier":"GOLD"},"day":"2025-12-02","id":1,"items":[{"qty":2,"sku":"A-1"},{"qty":1,"sku":"B-2"}],"note":"leave at the door","placed":"2025-11-24T16:00:00.123Z"}`,
		`{"_dead_letter":null,"attrs":[],"blob":"","customer":{"name":"bob","tier":"SILVER"},"day":"1970-01-01","id":2,"items":[],"note":null,"placed":"1970-01-01T00:00:00Z"}`,
		`{"_dead_letter":{"reason":"the value starts with byte 0x7b, not the Confluent wire format's magic byte 0","value":"eyJpZCI6IDN9"},` + none + `}`,
		fmt.Sprintf(`{"_dead_letter":{"reason":"schema ID %d: the registry does not have it (40403 Schema %d not found)","value":"%s"},`+none+`}`, id+1000, id+1000, b64(confluent(id+1000, good[5:]))),
		`{"_dead_letter":{"reason":"the value does not decode as Avro: *`, // then the decoder's words

		`{"_dead_letter":{"reason":"the value is null","value":null},` + none + `}`,
	})
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

const (
	avroV1 = `{"type":"record","name":"Event","fields":[{"name":"id","type":"long"},{"name":"kind","type":"string"}]}`
	avroV2 = `{"type":"record","name":"Event","fields":[{"name":"id","type":"long"},{"name":"kind","type":"string"},{"name":"score","type":["null","double"],"default":null}]}`
)

// A new version of the subject evolves the table at the next pass: its
// new optional field becomes a column, null in the rows written before
// and in values of the old version since.
func TestExportAvroSchemaEvolution(t *testing.T) {
	e := newEnv(t)
	reg := e.registry()
	id1 := reg.register("events-value", schemaregistry.Avro, avroV1)
	e.createTopic("events", map[string]string{cfgValueFormat: "avro"})
	v1, v2 := avro.MustParse(avroV1), avro.MustParse(avroV2)
	enc := func(s *avro.Schema, id int, v map[string]any) []byte {
		b, err := s.Encode(v)
		if err != nil {
			t.Fatal(err)
		}
		return confluent(id, b)
	}
	e.produce("events", enc(v1, id1, map[string]any{"id": int64(0), "kind": "a"}))
	x, l := e.exporter(Config{SchemaRegistryURL: reg.url()})
	pass := func() {
		t.Helper()
		if _, err := x.Pass(context.Background(), l.Fence(), true); err != nil {
			t.Fatal(err)
		}
	}
	pass()
	id2 := reg.register("events-value", schemaregistry.Avro, avroV2)
	e.produce("events",
		enc(v2, id2, map[string]any{"id": int64(1), "kind": "b", "score": 0.5}),
		enc(v1, id1, map[string]any{"id": int64(2), "kind": "c"}), // an old producer
	)
	pass()
	tbl := e.loadTable("floe.events")
	if got := columns(tbl); !strings.Contains(got, "id:long, kind:string, score:double, _dead_letter:struct<") {
		t.Errorf("columns: %s", got)
	}
	checkRows(t, valueRows(t, tbl), []string{
		`{"_dead_letter":null,"id":0,"kind":"a","score":null}`,
		`{"_dead_letter":null,"id":1,"kind":"b","score":0.5}`,
		`{"_dead_letter":null,"id":2,"kind":"c","score":null}`,
	})
}

// A value written with a version registered after the pass read the
// subject's latest is not read as the older version (its new field would
// be lost): the pass reads the latest again and evolves the table first.
func TestExportAvroValueOfANewerSchema(t *testing.T) {
	e := newEnv(t)
	reg := e.registry()
	id1 := reg.register("events-value", schemaregistry.Avro, avroV1)
	e.createTopic("events", map[string]string{cfgValueFormat: "avro"})
	v2 := avro.MustParse(avroV2)
	// As soon as the exporter has read the latest version (v1), a
	// producer registers v2 and writes with it.
	reg.stop()
	var once bool
	reg.wrap = func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h.ServeHTTP(w, r)
			if strings.HasSuffix(r.URL.Path, "/versions/latest") && !once {
				once = true
				id2 := reg.register("events-value", schemaregistry.Avro, avroV2)
				b, _ := v2.Encode(map[string]any{"id": int64(1), "kind": "b", "score": 2.5})
				e.produce("events", confluent(id2, b))
			}
		})
	}
	reg.start()
	b, _ := avro.MustParse(avroV1).Encode(map[string]any{"id": int64(0), "kind": "a"})
	e.produce("events", confluent(id1, b))
	x, l := e.exporter(Config{SchemaRegistryURL: reg.url()})
	if _, err := x.Pass(context.Background(), l.Fence(), true); err != nil {
		t.Fatal(err)
	}
	if !once {
		t.Fatal("the exporter did not read the latest version")
	}
	checkRows(t, valueRows(t, e.loadTable("floe.events")), []string{
		`{"_dead_letter":null,"id":0,"kind":"a","score":null}`,
		`{"_dead_letter":null,"id":1,"kind":"b","score":2.5}`,
	})
}

// A registry that cannot be reached makes no dead letters: the export
// fails, records its error, and resumes when the registry is back.
func TestExportWaitsForTheRegistry(t *testing.T) {
	e := newEnv(t)
	reg := e.registry()
	id := reg.register("events-value", schemaregistry.Avro, avroV1)
	e.createTopic("events", map[string]string{cfgValueFormat: "avro"})
	b, _ := avro.MustParse(avroV1).Encode(map[string]any{"id": int64(0), "kind": "a"})
	e.produce("events", confluent(id, b), confluent(id, b))
	reg.stop()
	x, l := e.exporter(Config{SchemaRegistryURL: reg.url()})
	ctx := context.Background()
	st, err := x.Pass(ctx, l.Fence(), true)
	if err == nil || !strings.Contains(err.Error(), "reading the latest schema of subject events-value") || st.Rows != 0 || st.DeadLetters != 0 {
		t.Fatalf("pass without the registry: %+v, %v", st, err)
	}
	topic, _ := e.store.GetTopic(ctx, "events")
	if s, ok, _ := e.store.ExportStateOf(ctx, topic.ID); !ok || !strings.Contains(s.Error, "connection refused") {
		t.Errorf("the export state without the registry: %+v", s)
	}
	reg.start()
	st, err = x.Pass(ctx, l.Fence(), true)
	if err != nil || st.Rows != 2 || st.DeadLetters != 0 {
		t.Fatalf("pass with the registry back: %+v, %v", st, err)
	}
	checkRows(t, valueRows(t, e.loadTable("floe.events")), []string{
		`{"_dead_letter":null,"id":0,"kind":"a"}`,
		`{"_dead_letter":null,"id":0,"kind":"a"}`,
	})
}

// The registry going away in the middle of a commit (the subject's latest
// read, a writer's schema not yet) fails the commit, rather than making
// the values dead letters.
func TestExportRegistryLostMidCommit(t *testing.T) {
	e := newEnv(t)
	reg := e.registry()
	id1 := reg.register("events-value", schemaregistry.Avro, avroV1)
	id2 := reg.register("events-value", schemaregistry.Avro, avroV2)
	e.createTopic("events", map[string]string{cfgValueFormat: "avro"})
	b, _ := avro.MustParse(avroV1).Encode(map[string]any{"id": int64(0), "kind": "a"})
	e.produce("events", confluent(id1, b))
	reg.stop()
	var down atomic.Bool
	reg.wrap = func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if down.Load() && strings.HasPrefix(r.URL.Path, "/schemas/ids/") {
				http.Error(w, "unavailable", http.StatusServiceUnavailable)
				return
			}
			h.ServeHTTP(w, r)
		})
	}
	reg.start()
	down.Store(true)
	x, l := e.exporter(Config{SchemaRegistryURL: reg.url()})
	ctx := context.Background()
	st, err := x.Pass(ctx, l.Fence(), true)
	if want := fmt.Sprintf("reading schema ID %d from the registry", id1); err == nil || !strings.Contains(err.Error(), want) || st.Rows != 0 {
		t.Fatalf("pass: %+v, %v; want %q", st, err, want)
	}
	down.Store(false)
	if st, err = x.Pass(ctx, l.Fence(), true); err != nil || st.Rows != 1 || st.DeadLetters != 0 {
		t.Fatalf("pass with the registry back: %+v, %v", st, err)
	}
	_ = id2
}

// An https registry is trusted through SchemaRegistryCAFile; without it
// the registry's certificate is refused and nothing becomes a dead letter.
func TestExportFromARegistryOverTLS(t *testing.T) {
	e := newEnv(t)
	plain := e.registry()
	id := plain.register("events-value", schemaregistry.Avro, avroV1)
	srv := httptest.NewTLSServer(registry.New(e.store, registry.Options{}))
	t.Cleanup(srv.Close)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	e.createTopic("events", map[string]string{cfgValueFormat: "avro"})
	b, _ := avro.MustParse(avroV1).Encode(map[string]any{"id": int64(7), "kind": "tls"})
	e.produce("events", confluent(id, b))
	ctx := context.Background()

	x, l := e.exporter(Config{SchemaRegistryURL: srv.URL})
	st, err := x.Pass(ctx, l.Fence(), true)
	if err == nil || !strings.Contains(err.Error(), "certificate") || st.Rows != 0 || st.DeadLetters != 0 {
		t.Fatalf("pass trusting only the system's CAs: %+v, %v; want a certificate error and nothing written", st, err)
	}
	l.Resign(ctx)
	x, l = e.exporter(Config{SchemaRegistryURL: srv.URL, SchemaRegistryCAFile: ca})
	if st, err = x.Pass(ctx, l.Fence(), true); err != nil || st.Rows != 1 || st.DeadLetters != 0 {
		t.Fatalf("pass trusting the registry's CA: %+v, %v; want 1 row", st, err)
	}
	checkRows(t, valueRows(t, e.loadTable("floe.events")), []string{`{"_dead_letter":null,"id":7,"kind":"tls"}`})

	cat, err := OpenCatalog(ctx, e.catalog, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	if _, err := New(Config{Warehouse: "file:///tmp/w", SchemaRegistryURL: srv.URL, SchemaRegistryCAFile: filepath.Join(t.TempDir(), "missing.pem")}, Deps{Store: e.store, Bucket: e.bucket, Catalog: cat}); err == nil || !strings.Contains(err.Error(), "the schema registry's CAs") {
		t.Errorf("a missing CA file: %v", err)
	}
}

// A new topic whose producers have not registered its subject yet is not
// an error until it has a record to export.
func TestExportWaitsQuietlyForANewTopicsSubject(t *testing.T) {
	e := newEnv(t)
	reg := e.registry()
	e.createTopic("fresh", map[string]string{cfgValueFormat: "avro"})
	x, l := e.exporter(Config{SchemaRegistryURL: reg.url()})
	ctx := context.Background()
	if st, err := x.Pass(ctx, l.Fence(), true); err != nil || st.Rows != 0 {
		t.Fatalf("pass over an empty topic with no subject: %+v, %v; want nothing and no error", st, err)
	}
	topic, _ := e.store.GetTopic(ctx, "fresh")
	if s, ok, _ := e.store.ExportStateOf(ctx, topic.ID); ok && s.Error != "" {
		t.Errorf("an empty topic with no subject recorded an export error: %q", s.Error)
	}
	b, _ := avro.MustParse(avroV1).Encode(map[string]any{"id": int64(1), "kind": "a"})
	e.produce("fresh", confluent(1, b))
	if _, err := x.Pass(ctx, l.Fence(), true); err == nil || !strings.Contains(err.Error(), "fresh-value") {
		t.Fatalf("pass over a record with no subject: %v; want the subject's error", err)
	}
	id := reg.register("fresh-value", schemaregistry.Avro, avroV1)
	e.produce("fresh", confluent(id, b))
	if st, err := x.Pass(ctx, l.Fence(), true); err != nil || st.Rows != 2 {
		t.Fatalf("pass once the subject is registered: %+v, %v; want 2 rows", st, err)
	}
}
