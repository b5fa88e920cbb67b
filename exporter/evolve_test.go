package exporter

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/iceberg-go/table"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

const (
	evolveV1 = `{"type": "object", "properties": {
	  "id": {"type": "integer"},
	  "item": {"type": "string"},
	  "detail": {"type": "object", "properties": {"a": {"type": "string"}}}}}`
	// v2 loses item, gains qty and detail.b.
	evolveV2 = `{"type": "object", "properties": {
	  "id": {"type": "integer"},
	  "detail": {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "integer"}}},
	  "qty": {"type": "integer"}}}`
	// v3 makes qty a string: no Iceberg promotion does that.
	evolveV3 = `{"type": "object", "properties": {
	  "id": {"type": "integer"},
	  "qty": {"type": "string"}}}`
)

// evolvedRow is a row as Iceberg reads it under the table's current
// schema (field IDs, so older files read new columns as null).
type evolvedRow struct {
	offset            int64
	id                int64
	item, detailA     string
	detailB, qty      int64
	hasItem, hasQty   bool
	hasDetailB, value bool
}

func scanEvolved(t *testing.T, tbl *table.Table) map[int64]evolvedRow {
	t.Helper()
	col := func(rec arrow.RecordBatch, name string) arrow.Array {
		idx := rec.Schema().FieldIndices(name)
		if len(idx) == 0 {
			return nil
		}
		return rec.Column(idx[0])
	}
	out := map[int64]evolvedRow{}
	scanBatches(t, tbl, func(rec arrow.RecordBatch) {
		kafka := col(rec, colKafka).(*array.Struct)
		offsets := kafka.Field(2).(*array.Int64)
		ids := col(rec, "id").(*array.Int64)
		detail := col(rec, "detail").(*array.Struct)
		for i := range int(rec.NumRows()) {
			r := evolvedRow{offset: offsets.Value(i), id: ids.Value(i)}
			if c, ok := col(rec, "item").(*array.String); ok && c.IsValid(i) {
				r.item, r.hasItem = c.Value(i), true
			}
			if c, ok := col(rec, "qty").(*array.Int64); ok && c.IsValid(i) {
				r.qty, r.hasQty = c.Value(i), true
			}
			if detail.IsValid(i) {
				r.detailA = detail.Field(0).(*array.String).Value(i)
				if detail.NumField() > 1 && detail.Field(1).IsValid(i) {
					r.detailB, r.hasDetailB = detail.Field(1).(*array.Int64).Value(i), true
				}
			}
			if c := col(rec, colValue); c != nil && c.IsValid(i) {
				r.value = true
			}
			out[r.offset] = r
		}
	})
	return out
}

// A topic's table follows its value schema: fields gained become columns
// (older rows read them as null), fields lost keep theirs, and a change
// Iceberg cannot make stops the export with a clear error until it is
// undone.
func TestExportEvolvesTheTableWithTheSchema(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	adm := kadm.NewClient(e.client())
	resp, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{
		cfgEnabled: kadm.StringPtr("true"), cfgValueFormat: kadm.StringPtr("json"), cfgValueSchema: kadm.StringPtr(evolveV1),
	}, "evolving")
	if err != nil || resp.Err != nil {
		t.Fatalf("creating the topic: %v %v", err, resp.Err)
	}
	cl := e.client(kgo.DefaultProduceTopic("evolving"))
	produce := func(format string, from, to int) {
		t.Helper()
		var rs []*kgo.Record
		for i := from; i < to; i++ {
			rs = append(rs, &kgo.Record{Value: fmt.Appendf(nil, format, i, i, i)})
		}
		if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	setSchema := func(schema string) {
		t.Helper()
		if _, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: cfgValueSchema, Value: kadm.StringPtr(schema)}}, "evolving"); err != nil {
			t.Fatal(err)
		}
	}
	x, l := e.exporter(Config{})
	pass := func() error {
		_, err := x.Pass(ctx, l.Fence(), true)
		return err
	}

	produce(`{"id": %d, "item": "i%d", "detail": {"a": "a%d"}}`, 0, 10)
	if err := pass(); err != nil {
		t.Fatal(err)
	}
	v1 := e.loadTable("floe.evolving")

	setSchema(evolveV2)
	produce(`{"id": %d, "qty": %d, "detail": {"a": "a%d", "b": 7}}`, 10, 20)
	if err := pass(); err != nil {
		t.Fatal(err)
	}
	tbl := e.loadTable("floe.evolving")
	var names []string
	for _, f := range tbl.Schema().Fields() {
		names = append(names, f.Name)
	}
	if got := strings.Join(names, ","); got != "kafka,key,headers,id,item,detail,qty,_dead_letter" {
		t.Errorf("columns after the schema grew: %s", got)
	}
	if tbl.Schema().ID == v1.Schema().ID {
		t.Errorf("the schema ID stayed %d", v1.Schema().ID)
	}
	// The evolution added no snapshot: the export resumed where it was.
	rows := scanEvolved(t, tbl)
	if len(rows) != 20 {
		t.Fatalf("%d rows, want 20", len(rows))
	}
	for o, r := range rows {
		switch {
		case r.id != o || r.detailA != fmt.Sprintf("a%d", o) || r.value:
			t.Errorf("offset %d: %+v", o, r)
		case o < 10 && (!r.hasItem || r.item != fmt.Sprintf("i%d", o) || r.hasQty || r.hasDetailB):
			t.Errorf("offset %d, written before the schema grew: %+v", o, r)
		case o >= 10 && (r.hasItem || !r.hasQty || r.qty != o || !r.hasDetailB || r.detailB != 7):
			t.Errorf("offset %d, written after the schema grew: %+v", o, r)
		}
	}

	// qty as a string: refused, recorded, and nothing exported.
	setSchema(evolveV3)
	produce(`{"id": %d, "qty": "q%d"}`, 20, 25)
	if err := pass(); err == nil || !strings.Contains(err.Error(), "cannot be applied to table floe.evolving") || !strings.Contains(err.Error(), "qty") {
		t.Fatalf("a type change Iceberg cannot make: %v", err)
	}
	topic, _ := e.store.GetTopic(ctx, "evolving")
	if st, ok, _ := e.store.ExportStateOf(ctx, topic.ID); !ok || !strings.Contains(st.Error, "cannot be applied") {
		t.Errorf("the export state after a refused change: %+v", st)
	}
	if n := len(scanEvolved(t, e.loadTable("floe.evolving"))); n != 20 {
		t.Fatalf("%d rows after a refused change, want 20", n)
	}
	// Back to v2, the records v3 produced are dead letters (qty is no
	// integer), none lost.
	setSchema(evolveV2)
	if err := pass(); err != nil {
		t.Fatal(err)
	}
	rows = scanEvolved(t, e.loadTable("floe.evolving"))
	if len(rows) != 25 {
		t.Fatalf("%d rows once the schema is back, want 25", len(rows))
	}
}

// A topic that moves from binary values to JSON keeps its table: the
// typed columns and _dead_letter are added and value stays, null in rows
// written since.
func TestExportEvolvesFromBinaryToJSON(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	adm := kadm.NewClient(e.client())
	resp, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{cfgEnabled: kadm.StringPtr("true")}, "formats")
	if err != nil || resp.Err != nil {
		t.Fatalf("creating the topic: %v %v", err, resp.Err)
	}
	cl := e.client(kgo.DefaultProduceTopic("formats"))
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(`{"id": 0, "detail": {"a": "a0"}}`)}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	x, l := e.exporter(Config{})
	if _, err := x.Pass(ctx, l.Fence(), true); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{
		{Name: cfgValueFormat, Value: kadm.StringPtr("json")}, {Name: cfgValueSchema, Value: kadm.StringPtr(evolveV1)},
	}, "formats"); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(`{"id": 1, "item": "i1", "detail": {"a": "a1"}}`)}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if _, err := x.Pass(ctx, l.Fence(), true); err != nil {
		t.Fatal(err)
	}
	tbl := e.loadTable("floe.formats")
	var names []string
	for _, f := range tbl.Schema().Fields() {
		names = append(names, f.Name)
	}
	if got := strings.Join(names, ","); got != "kafka,key,headers,value,id,item,detail,_dead_letter" {
		t.Errorf("columns after the format changed: %s", got)
	}
	rows := scanEvolved(t, tbl)
	if r := rows[0]; !r.value || r.hasItem {
		t.Errorf("the binary row: %+v", r)
	}
	if r := rows[1]; r.value || !r.hasItem || r.item != "i1" || r.id != 1 || r.detailA != "a1" {
		t.Errorf("the JSON row: %+v", r)
	}
}
