package exporter

import (
	"fmt"
	"slices"
	"strings"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"

	"github.com/floe-io/floe/internal/valueschema"
)

// A table's layout: its Iceberg schema and partition spec, from the
// topic's configs.
//
//	kafka         struct, required: topic, partition, offset, timestamp
//	              (timestamptz), timestamp_type (CreateTime, LogAppendTime)
//	key           binary
//	headers       list of struct (key string, value binary)
//	value         binary                      (value format binary)
//	<fields>      the value schema's top-level fields (value formats
//	              json, avro, protobuf)
//	_dead_letter  struct (reason string, value binary), for records
//	              whose values do not match the schema (or do not
//	              decode)

// Column names of the fixed columns.
const (
	colKafka      = "kafka"
	colKey        = "key"
	colHeaders    = "headers"
	colValue      = "value"
	colDeadLetter = "_dead_letter"
)

// layout is a table's shape.
type layout struct {
	schema *iceberg.Schema
	spec   iceberg.PartitionSpec
	// value is the JSON schema of the values, nil when they are binary.
	value *valueschema.Field
}

// idGen hands out field IDs in schema order.
type idGen struct{ next int }

func (g *idGen) id() int { g.next++; return g.next }

// newLayout builds the table layout of a topic's export settings; value
// is the values' schema (s.ValueSchema, or the registry's), nil when they
// are exported as bytes.
func newLayout(s TopicSettings, value *valueschema.Field) (*layout, error) {
	g := &idGen{}
	kafkaID := g.id()
	kafka := &iceberg.StructType{FieldList: []iceberg.NestedField{
		{ID: g.id(), Name: "topic", Type: iceberg.PrimitiveTypes.String, Required: true},
		{ID: g.id(), Name: "partition", Type: iceberg.PrimitiveTypes.Int32, Required: true},
		{ID: g.id(), Name: "offset", Type: iceberg.PrimitiveTypes.Int64, Required: true},
		{ID: g.id(), Name: "timestamp", Type: iceberg.PrimitiveTypes.TimestampTz, Required: true},
		{ID: g.id(), Name: "timestamp_type", Type: iceberg.PrimitiveTypes.String, Required: true},
	}}
	fields := []iceberg.NestedField{
		{ID: kafkaID, Name: colKafka, Type: kafka, Required: true, Doc: "The record's place in the topic."},
		{ID: g.id(), Name: colKey, Type: iceberg.PrimitiveTypes.Binary, Doc: "The record's key; null when it has none."},
	}
	headersID, elemID := g.id(), g.id()
	fields = append(fields, iceberg.NestedField{ID: headersID, Name: colHeaders, Doc: "The record's headers, in order.", Type: &iceberg.ListType{
		ElementID: elemID, ElementRequired: true,
		Element: &iceberg.StructType{FieldList: []iceberg.NestedField{
			{ID: g.id(), Name: "key", Type: iceberg.PrimitiveTypes.String, Required: true},
			{ID: g.id(), Name: "value", Type: iceberg.PrimitiveTypes.Binary},
		}},
	}})
	l := &layout{}
	if value == nil {
		fields = append(fields, iceberg.NestedField{ID: g.id(), Name: colValue, Type: iceberg.PrimitiveTypes.Binary, Doc: "The record's value; null for a tombstone."})
	} else {
		l.value = value
		for _, f := range value.Fields {
			if isFixedColumn(f.Name) {
				return nil, fmt.Errorf("the value schema's field %q has the name of one of the table's own columns (kafka, key, headers, value, _dead_letter)", f.Name)
			}
			fields = append(fields, g.field(f))
		}
		fields = append(fields, iceberg.NestedField{ID: g.id(), Name: colDeadLetter, Doc: "Set for a record whose value did not match the schema: why, and the value as it was.", Type: &iceberg.StructType{FieldList: []iceberg.NestedField{
			{ID: g.id(), Name: "reason", Type: iceberg.PrimitiveTypes.String, Required: true},
			{ID: g.id(), Name: "value", Type: iceberg.PrimitiveTypes.Binary},
		}}})
	}
	l.schema = iceberg.NewSchema(0, fields...)
	spec, err := partitionSpec(l.schema, s.PartitionBy)
	if err != nil {
		return nil, err
	}
	l.spec = spec
	return l, nil
}

func isFixedColumn(name string) bool {
	switch name {
	case colKafka, colKey, colHeaders, colValue, colDeadLetter:
		return true
	}
	return false
}

// field converts a JSON schema field. Columns are optional even when the
// schema requires them: a record that does not match has none of them.
func (g *idGen) field(f valueschema.Field) iceberg.NestedField {
	nf := iceberg.NestedField{ID: g.id(), Name: f.Name, Doc: f.Doc}
	nf.Type = g.typeOf(f)
	return nf
}

func (g *idGen) typeOf(f valueschema.Field) iceberg.Type {
	switch f.Kind {
	case valueschema.Boolean:
		return iceberg.PrimitiveTypes.Bool
	case valueschema.Long:
		return iceberg.PrimitiveTypes.Int64
	case valueschema.Double:
		return iceberg.PrimitiveTypes.Float64
	case valueschema.Timestamp:
		return iceberg.PrimitiveTypes.TimestampTz
	case valueschema.Date:
		return iceberg.PrimitiveTypes.Date
	case valueschema.Binary:
		return iceberg.PrimitiveTypes.Binary
	case valueschema.Object:
		st := &iceberg.StructType{}
		for _, c := range f.Fields {
			st.FieldList = append(st.FieldList, g.field(c))
		}
		return st
	case valueschema.Array:
		elemID := g.id()
		return &iceberg.ListType{ElementID: elemID, Element: g.typeOf(*f.Elem)}
	}
	return iceberg.PrimitiveTypes.String
}

// partitionSpec builds the table's partitioning from
// floe.iceberg.partition.by. Columns: timestamp, partition and offset (the
// kafka struct's), or a top-level field of the value schema (or a dotted
// path into one).
func partitionSpec(schema *iceberg.Schema, terms []valueschema.PartitionTerm) (iceberg.PartitionSpec, error) {
	var fields []iceberg.PartitionField
	for i, t := range terms {
		col := t.Column
		switch col {
		case "timestamp", "partition", "offset":
			col = colKafka + "." + col
		}
		src, ok := schema.FindFieldByName(col)
		if !ok {
			return iceberg.PartitionSpec{}, fmt.Errorf("floe.iceberg.partition.by: no column %q (timestamp, partition, offset, or a field of the value schema)", t.Column)
		}
		if _, primitive := src.Type.(iceberg.PrimitiveType); !primitive {
			return iceberg.PartitionSpec{}, fmt.Errorf("floe.iceberg.partition.by: column %q is not a primitive type", t.Column)
		}
		var tr iceberg.Transform
		switch t.Transform {
		case "identity":
			tr = iceberg.IdentityTransform{}
		case "year":
			tr = iceberg.YearTransform{}
		case "month":
			tr = iceberg.MonthTransform{}
		case "day":
			tr = iceberg.DayTransform{}
		case "hour":
			tr = iceberg.HourTransform{}
		case "bucket":
			tr = iceberg.BucketTransform{NumBuckets: t.Param}
		case "truncate":
			tr = iceberg.TruncateTransform{Width: t.Param}
		default:
			return iceberg.PartitionSpec{}, fmt.Errorf("floe.iceberg.partition.by: unknown transform %q", t.Transform)
		}
		if !tr.CanTransform(src.Type) {
			return iceberg.PartitionSpec{}, fmt.Errorf("floe.iceberg.partition.by: %s does not apply to %s (%s)", t.Transform, t.Column, src.Type)
		}
		name := strings.ReplaceAll(t.Column, ".", "_")
		if t.Transform != "identity" {
			name += "_" + t.Transform
		}
		fields = append(fields, iceberg.PartitionField{SourceIDs: []int{src.ID}, FieldID: 1000 + i, Name: name, Transform: tr})
	}
	return iceberg.NewPartitionSpec(fields...), nil
}

// samePartitioning reports whether a table is partitioned as the layout
// says: the same transforms of the same columns, in order.
func samePartitioning(tbl *table.Table, lay *layout) error {
	describe := func(schema *iceberg.Schema, spec iceberg.PartitionSpec) []string {
		var out []string
		for _, f := range spec.Fields() {
			col, _ := schema.FindColumnName(f.SourceID())
			out = append(out, fmt.Sprintf("%s(%s)", f.Transform, col))
		}
		return out
	}
	have, want := describe(tbl.Schema(), tbl.Spec()), describe(lay.schema, lay.spec)
	if !slices.Equal(have, want) {
		return fmt.Errorf("%v, want %v", have, want)
	}
	return nil
}

// sameShape reports whether two schemas have the same columns (names,
// types, nesting and optionality), whatever their field IDs: whether a
// table found in the catalog is the one the topic's settings describe.
func sameShape(a, b []iceberg.NestedField) error {
	if len(a) != len(b) {
		names := func(fs []iceberg.NestedField) []string {
			out := make([]string, len(fs))
			for i, f := range fs {
				out[i] = f.Name
			}
			return out
		}
		return fmt.Errorf("columns %v, want %v", names(a), names(b))
	}
	for i := range a {
		if a[i].Name != b[i].Name {
			return fmt.Errorf("column %d is %q, want %q", i, a[i].Name, b[i].Name)
		}
		if err := sameType(a[i].Type, b[i].Type); err != nil {
			return fmt.Errorf("%s: %w", a[i].Name, err)
		}
	}
	return nil
}

func sameType(a, b iceberg.Type) error {
	switch at := a.(type) {
	case *iceberg.StructType:
		bt, ok := b.(*iceberg.StructType)
		if !ok {
			return fmt.Errorf("%s, want %s", a, b)
		}
		return sameShape(at.FieldList, bt.FieldList)
	case *iceberg.ListType:
		bt, ok := b.(*iceberg.ListType)
		if !ok {
			return fmt.Errorf("%s, want %s", a, b)
		}
		return sameType(at.Element, bt.Element)
	}
	if !a.Equals(b) {
		return fmt.Errorf("%s, want %s", a, b)
	}
	return nil
}
