package exporter

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/bufbuild/protocompile"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/floe-io/floe/internal/schemaregistry"
)

const (
	protoMoney = `syntax = "proto3";
package shop.common;
message Money { int64 cents = 1; string currency = 2; }
`
	protoOrder = `syntax = "proto3";
package shop;
import "google/protobuf/timestamp.proto";
import "google/protobuf/wrappers.proto";
import "shop/money.proto";

message Order {
  int64 id = 1;
  Customer customer = 2;
  repeated string tags = 3;
  map<string, int32> stock = 4;
  Status status = 5;
  oneof payment {
    string card = 6;
    shop.common.Money cash = 7;
  }
  google.protobuf.Timestamp placed = 8;
  google.protobuf.StringValue note = 9;
  google.protobuf.Int64Value points = 10;
  bytes blob = 11;
  message Customer { string name = 1; sint32 age = 2; }
  enum Status { NEW = 0; PAID = 1; }
}
message Refund { int64 order_id = 1; }
`
)

// compileProto compiles the test's .proto files, as the producer's
// serializer would have them, and returns the named message.
func compileProto(t *testing.T, name protoreflect.FullName) protoreflect.MessageDescriptor {
	t.Helper()
	c := protocompile.Compiler{Resolver: protocompile.WithStandardImports(&protocompile.SourceResolver{
		Accessor: protocompile.SourceAccessorFromMap(map[string]string{"order.proto": protoOrder, "shop/money.proto": protoMoney}),
	})}
	files, err := c.Compile(context.Background(), "order.proto")
	if err != nil {
		t.Fatal(err)
	}
	md := files[0].Messages().ByName(name.Name())
	if md == nil {
		t.Fatalf("no message %s", name)
	}
	return md
}

// protoValue fills a message from JSON (protojson would do, but the
// test spells the fields out) and encodes it.
func protoValue(t *testing.T, md protoreflect.MessageDescriptor, fill func(m *dynamicpb.Message)) []byte {
	t.Helper()
	m := dynamicpb.NewMessage(md)
	fill(m)
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Protobuf values in the Confluent wire format (with message indexes)
// become typed columns by the subject's latest schema, with an imported
// file of another subject (a reference) and the well-known types.
func TestExportProtobufValues(t *testing.T) {
	e := newEnv(t)
	reg := e.registry()
	reg.register("shop-money", schemaregistry.Protobuf, protoMoney)
	id := reg.register("orders-value", schemaregistry.Protobuf, protoOrder, schemaregistry.Reference{Name: "shop/money.proto", Subject: "shop-money", Version: 1})
	e.createTopic("orders", map[string]string{cfgValueFormat: "protobuf"})

	md := compileProto(t, "shop.Order")
	f := md.Fields().ByName
	full := protoValue(t, md, func(m *dynamicpb.Message) {
		m.Set(f("id"), protoreflect.ValueOfInt64(1))
		cust := dynamicpb.NewMessage(f("customer").Message())
		cust.Set(cust.Descriptor().Fields().ByName("name"), protoreflect.ValueOfString("ann"))
		cust.Set(cust.Descriptor().Fields().ByName("age"), protoreflect.ValueOfInt32(-4))
		m.Set(f("customer"), protoreflect.ValueOfMessage(cust))
		tags := m.Mutable(f("tags")).List()
		tags.Append(protoreflect.ValueOfString("x"))
		tags.Append(protoreflect.ValueOfString("y"))
		stock := m.Mutable(f("stock")).Map()
		stock.Set(protoreflect.ValueOfString("b").MapKey(), protoreflect.ValueOfInt32(2))
		stock.Set(protoreflect.ValueOfString("a").MapKey(), protoreflect.ValueOfInt32(1))
		m.Set(f("status"), protoreflect.ValueOfEnum(1))
		cash := dynamicpb.NewMessage(f("cash").Message())
		cash.Set(cash.Descriptor().Fields().ByName("cents"), protoreflect.ValueOfInt64(250))
		cash.Set(cash.Descriptor().Fields().ByName("currency"), protoreflect.ValueOfString("EUR"))
		m.Set(f("cash"), protoreflect.ValueOfMessage(cash))
		ts := dynamicpb.NewMessage(f("placed").Message())
		ts.Set(ts.Descriptor().Fields().ByName("seconds"), protoreflect.ValueOfInt64(1_764_000_000))
		ts.Set(ts.Descriptor().Fields().ByName("nanos"), protoreflect.ValueOfInt32(5_000))
		m.Set(f("placed"), protoreflect.ValueOfMessage(ts))
		note := dynamicpb.NewMessage(f("note").Message())
		note.Set(note.Descriptor().Fields().ByName("value"), protoreflect.ValueOfString("fragile"))
		m.Set(f("note"), protoreflect.ValueOfMessage(note))
		m.Set(f("blob"), protoreflect.ValueOfBytes([]byte{1, 2}))
	})
	card := protoValue(t, md, func(m *dynamicpb.Message) {
		m.Set(f("id"), protoreflect.ValueOfInt64(2))
		m.Set(f("card"), protoreflect.ValueOfString("visa"))
		pts := dynamicpb.NewMessage(f("points").Message())
		m.Set(f("points"), protoreflect.ValueOfMessage(pts)) // set, to 0
	})
	withIndexes := func(indexes []int, b []byte) []byte {
		return append(schemaregistry.AppendMessageIndexes(schemaregistry.AppendHeader(nil, id), indexes), b...)
	}
	refund := protoValue(t, compileProto(t, "shop.Refund"), func(m *dynamicpb.Message) {
		m.Set(m.Descriptor().Fields().ByName("order_id"), protoreflect.ValueOfInt64(9))
	})
	e.produce("orders",
		withIndexes([]int{0}, full),
		withIndexes([]int{0}, card),
		withIndexes([]int{0}, nil),          // nothing set: proto3 zero values
		withIndexes([]int{1}, refund),       // another message of the file: its fields are not the table's
		withIndexes([]int{0}, []byte{0xff}), // not Protobuf
		withIndexes([]int{7}, full),         // no such message
		full,                                // no header
	)
	x, l := e.exporter(Config{SchemaRegistryURL: reg.url()})
	st, err := x.Pass(context.Background(), l.Fence(), true)
	if err != nil {
		t.Fatal(err)
	}
	if st.Rows != 7 || st.DeadLetters != 3 {
		t.Errorf("pass: %+v, want 7 rows, 3 dead letters", st)
	}
	tbl := e.loadTable("floe.orders")
	if got := columns(tbl); !strings.Contains(got, "id:long, customer:struct<") || !strings.Contains(got, "stock:list<struct<") ||
		!strings.Contains(got, "status:string, card:string, cash:struct<") || !strings.Contains(got, "placed:timestamptz, note:string, points:long, blob:binary, _dead_letter:") {
		t.Errorf("columns: %s", got)
	}
	const none = `"blob":null,"card":null,"cash":null,"customer":null,"id":null,"note":null,"placed":null,"points":null,"status":null,"stock":null,"tags":null`
	dead := func(reason string, value []byte) string {
		r, _ := json.Marshal(reason)
		return `{"_dead_letter":{"reason":` + string(r) + `,"value":"` + b64(value) + `"},` + none + `}`
	}
	checkRows(t, valueRows(t, tbl), []string{
		`{"_dead_letter":null,"blob":"AQI=","card":null,"cash":{"cents":250,"currency":"EUR"},"customer":{"age":-4,"name":"ann"},"id":1,"note":"fragile","placed":"2025-11-24T16:00:00.000005Z","points":null,"status":"PAID","stock":[{"key":"a","value":1},{"key":"b","value":2}],"tags":["x","y"]}`,
		`{"_dead_letter":null,"blob":"","card":"visa","cash":null,"customer":null,"id":2,"note":null,"placed":null,"points":0,"status":"NEW","stock":[],"tags":[]}`,
		`{"_dead_letter":null,"blob":"","card":null,"cash":null,"customer":null,"id":0,"note":null,"placed":null,"points":null,"status":"NEW","stock":[],"tags":[]}`,
		`{"_dead_letter":null,` + none + `}`, // no field of Refund is the table's
		`{"_dead_letter":{"reason":"the value does not decode as Protobuf message shop.Order: *`,
		dead("schema ID 2: message indexes [7] name no message of the schema", withIndexes([]int{7}, full)),
		dead(fmt.Sprintf("the value starts with byte 0x%02x, not the Confluent wire format's magic byte 0", full[0]), full),
	})
}

// JSON values in the Confluent wire format, with no inline schema, are
// decoded by the subject's JSON Schema.
func TestExportJSONValuesByTheRegistry(t *testing.T) {
	e := newEnv(t)
	reg := e.registry()
	id := reg.register("events-value", schemaregistry.JSON, `{"type":"object","properties":{"id":{"type":"integer"},"kind":{"type":"string"}},"required":["id"]}`)
	e.createTopic("events", map[string]string{cfgValueFormat: "json"})
	e.produce("events",
		confluent(id, []byte(`{"id":1,"kind":"a"}`)),
		confluent(id, []byte(`{"kind":"b"}`)),
		[]byte(`{"id":3}`),
	)
	x, l := e.exporter(Config{SchemaRegistryURL: reg.url()})
	if _, err := x.Pass(context.Background(), l.Fence(), true); err != nil {
		t.Fatal(err)
	}
	checkRows(t, valueRows(t, e.loadTable("floe.events")), []string{
		`{"_dead_letter":null,"id":1,"kind":"a"}`,
		`{"_dead_letter":{"reason":"missing required field \"id\"","value":"` + b64(confluent(id, []byte(`{"kind":"b"}`))) + `"},"id":null,"kind":null}`,
		`{"_dead_letter":{"reason":"the value starts with byte 0x7b, not the Confluent wire format's magic byte 0","value":"eyJpZCI6M30="},"id":null,"kind":null}`,
	})
}
