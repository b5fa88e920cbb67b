package exporter

import (
	"errors"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/floe-io/floe/internal/valueschema"
	"github.com/floe-io/floe/segments"
)

// rowBuilder turns records into Arrow columns of a table's layout, in
// its schema's column order.
type rowBuilder struct {
	lay   *layout
	topic string
	rb    *array.RecordBuilder

	kafka           *array.StructBuilder
	kTopic, kTSType *array.StringBuilder
	kPartition      *array.Int32Builder
	kOffset         *array.Int64Builder
	kTimestamp      *array.TimestampBuilder
	key             *array.BinaryBuilder
	headers         *array.ListBuilder
	header          *array.StructBuilder
	headerKey       *array.StringBuilder
	headerValue     *array.BinaryBuilder
	value           *array.BinaryBuilder // binary values
	typed           []array.Builder      // decoded values: the schema's fields
	// decode decodes a value into the schema's fields; an error
	// matching valueschema.ErrMismatch makes it a dead letter, any other
	// fails the commit.
	decode     func(value []byte) ([]any, error)
	dead       *array.StructBuilder
	deadReason *array.StringBuilder
	deadValue  *array.BinaryBuilder
	// rows, deadLetters and approxBytes count what was added since the
	// last build.
	rows, deadLetters, approxBytes int64
}

// newRowBuilder builds rows of topic in the Arrow schema of the table
// (converted from its Iceberg schema, which has the layout's shape).
func newRowBuilder(mem memory.Allocator, schema *arrow.Schema, lay *layout, topic string) (*rowBuilder, error) {
	b := &rowBuilder{lay: lay, topic: topic, rb: array.NewRecordBuilder(mem, schema)}
	var ok bool
	fail := func(what string) (*rowBuilder, error) {
		b.rb.Release()
		return nil, fmt.Errorf("the table's Arrow schema does not have the layout's %s", what)
	}
	if b.kafka, ok = b.rb.Field(0).(*array.StructBuilder); !ok || b.kafka.NumField() != 5 {
		return fail("kafka struct")
	}
	b.kTopic, _ = b.kafka.FieldBuilder(0).(*array.StringBuilder)
	b.kPartition, _ = b.kafka.FieldBuilder(1).(*array.Int32Builder)
	b.kOffset, _ = b.kafka.FieldBuilder(2).(*array.Int64Builder)
	b.kTimestamp, _ = b.kafka.FieldBuilder(3).(*array.TimestampBuilder)
	b.kTSType, _ = b.kafka.FieldBuilder(4).(*array.StringBuilder)
	if b.kTopic == nil || b.kPartition == nil || b.kOffset == nil || b.kTimestamp == nil || b.kTSType == nil {
		return fail("kafka struct's fields")
	}
	if b.key, ok = b.rb.Field(1).(*array.BinaryBuilder); !ok {
		return fail("key column")
	}
	if b.headers, ok = b.rb.Field(2).(*array.ListBuilder); !ok {
		return fail("headers column")
	}
	if b.header, ok = b.headers.ValueBuilder().(*array.StructBuilder); !ok || b.header.NumField() != 2 {
		return fail("header struct")
	}
	b.headerKey, _ = b.header.FieldBuilder(0).(*array.StringBuilder)
	b.headerValue, _ = b.header.FieldBuilder(1).(*array.BinaryBuilder)
	if b.headerKey == nil || b.headerValue == nil {
		return fail("header struct's fields")
	}
	if lay.value == nil {
		if b.value, ok = b.rb.Field(3).(*array.BinaryBuilder); !ok {
			return fail("value column")
		}
		return b, nil
	}
	b.decode = lay.value.Decode
	n := len(lay.value.Fields)
	for i := range n {
		b.typed = append(b.typed, b.rb.Field(3+i))
	}
	if b.dead, ok = b.rb.Field(3 + n).(*array.StructBuilder); !ok || b.dead.NumField() != 2 {
		return fail("dead letter struct")
	}
	b.deadReason, _ = b.dead.FieldBuilder(0).(*array.StringBuilder)
	b.deadValue, _ = b.dead.FieldBuilder(1).(*array.BinaryBuilder)
	if b.deadReason == nil || b.deadValue == nil {
		return fail("dead letter struct's fields")
	}
	return b, nil
}

// add appends one record at offset of partition. It fails only when a
// value could not be decoded for a reason other than the value itself
// (the schema registry did not answer): the commit cannot go on.
func (b *rowBuilder) add(partition int32, offset int64, logAppendTime bool, r segments.Record) error {
	var (
		vals []any
		err  error
	)
	if b.value == nil {
		if r.Value == nil {
			err = errNullValue
		} else if vals, err = b.decode(r.Value); err != nil && !errors.Is(err, valueschema.ErrMismatch) {
			return err
		}
	}
	b.kafka.Append(true)
	b.kTopic.Append(b.topic)
	b.kPartition.Append(partition)
	b.kOffset.Append(offset)
	b.kTimestamp.Append(arrow.Timestamp(r.Timestamp * 1000)) // ms to µs
	if logAppendTime {
		b.kTSType.Append("LogAppendTime")
	} else {
		b.kTSType.Append("CreateTime")
	}
	if r.Key == nil {
		b.key.AppendNull()
	} else {
		b.key.Append(r.Key)
	}
	b.headers.Append(true)
	r.EachHeader(func(k, v []byte) bool {
		b.header.Append(true)
		b.headerKey.BinaryBuilder.Append(k)
		if v == nil {
			b.headerValue.AppendNull()
		} else {
			b.headerValue.Append(v)
		}
		return true
	})
	b.approxBytes += int64(len(r.Raw)) + 40
	b.rows++
	if b.value != nil {
		if r.Value == nil {
			b.value.AppendNull()
		} else {
			b.value.Append(r.Value)
		}
		return nil
	}
	if err != nil {
		b.deadLetters++
		for _, t := range b.typed {
			t.AppendNull()
		}
		b.dead.Append(true)
		b.deadReason.Append(err.Error())
		if r.Value == nil {
			b.deadValue.AppendNull()
		} else {
			b.deadValue.Append(r.Value)
		}
		return nil
	}
	for i := range b.lay.value.Fields {
		appendValue(b.typed[i], &b.lay.value.Fields[i], vals[i])
	}
	b.dead.AppendNull()
	return nil
}

// errNullValue is the dead letter reason of a null value (a tombstone).
var errNullValue = errors.New("the value is null")

// appendValue appends a value Decode gave for field f.
func appendValue(bld array.Builder, f *valueschema.Field, v any) {
	if v == nil {
		bld.AppendNull()
		return
	}
	switch f.Kind {
	case valueschema.Boolean:
		bld.(*array.BooleanBuilder).Append(v.(bool))
	case valueschema.Long:
		bld.(*array.Int64Builder).Append(v.(int64))
	case valueschema.Double:
		bld.(*array.Float64Builder).Append(v.(float64))
	case valueschema.String:
		bld.(*array.StringBuilder).Append(v.(string))
	case valueschema.Timestamp:
		bld.(*array.TimestampBuilder).Append(arrow.Timestamp(v.(int64)))
	case valueschema.Date:
		bld.(*array.Date32Builder).Append(arrow.Date32(v.(int32)))
	case valueschema.Binary:
		bld.(*array.BinaryBuilder).Append(v.([]byte))
	case valueschema.Object:
		sb := bld.(*array.StructBuilder)
		sb.Append(true)
		vals := v.([]any)
		for i := range f.Fields {
			appendValue(sb.FieldBuilder(i), &f.Fields[i], vals[i])
		}
	case valueschema.Array:
		lb := bld.(*array.ListBuilder)
		lb.Append(true)
		for _, e := range v.([]any) {
			appendValue(lb.ValueBuilder(), f.Elem, e)
		}
	default:
		bld.AppendNull()
	}
}

// build returns the rows added so far as one Arrow record, and starts
// anew. The caller releases it.
func (b *rowBuilder) build() arrow.RecordBatch {
	b.rows, b.deadLetters, b.approxBytes = 0, 0, 0
	return b.rb.NewRecordBatch()
}

// release frees the builder's buffers.
func (b *rowBuilder) release() { b.rb.Release() }
