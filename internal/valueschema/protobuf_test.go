package valueschema

import (
	"context"
	"encoding/base64"
	"errors"
	"reflect"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"
)

const protoOrder = `syntax = "proto3";
package shop;
import "google/protobuf/timestamp.proto";
import "google/protobuf/wrappers.proto";
import "common.proto";

message Order {
  int64 id = 1;
  uint32 qty = 2;
  double price = 3;
  bool paid = 4;
  Customer customer = 5;
  repeated string tags = 6;
  map<string, int64> attrs = 7;
  Status status = 8;
  oneof payment {
    string card = 9;
    Money cash = 10;
  }
  google.protobuf.Timestamp placed = 11;
  google.protobuf.StringValue note = 12;
  google.protobuf.Int64Value points = 13;
  bytes blob = 14;
  repeated Customer others = 15;
  optional string coupon = 16;
  message Customer { string name = 1; }
  enum Status { NEW = 0; PAID = 1; }
}
message Other { string x = 1; }
`

const protoCommon = `syntax = "proto3";
package shop;
message Money { int64 cents = 1; string currency = 2; }
`

func compileOrder(t *testing.T) *ProtobufMessage {
	t.Helper()
	s, err := ParseProtobufSchema(context.Background(), protoOrder, map[string]string{"common.proto": protoCommon})
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.Message([]int{0})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestProtobufFields(t *testing.T) {
	m := compileOrder(t)
	var got []string
	for _, f := range m.Field().Fields {
		d := f.Name + ":" + describeKind(&f)
		if f.Nullable {
			d += "?"
		}
		got = append(got, d)
	}
	want := []string{"id:long", "qty:long", "price:double", "paid:boolean", "customer:object?",
		"tags:a list of string", "attrs:a list of object", "status:string", "card:string?", "cash:object?",
		"placed:timestamp?", "note:string?", "points:long?", "blob:binary", "others:a list of object", "coupon:string?"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("fields\n got %v\nwant %v", got, want)
	}
	if m.Name() != "shop.Order" {
		t.Errorf("name %s", m.Name())
	}
}

// set sets fields of a dynamic message by name; a map[string]any value
// is a nested message, []any a list.
func set(t *testing.T, msg *dynamicpb.Message, values map[string]any) {
	t.Helper()
	fds := msg.Descriptor().Fields()
	for name, v := range values {
		fd := fds.ByName(protoreflect.Name(name))
		if fd == nil {
			t.Fatalf("no field %s", name)
		}
		switch x := v.(type) {
		case map[string]any:
			sub := dynamicpb.NewMessage(fd.Message())
			set(t, sub, x)
			msg.Set(fd, protoreflect.ValueOfMessage(sub))
		case []any:
			l := msg.Mutable(fd).List()
			for _, e := range x {
				if m, ok := e.(map[string]any); ok {
					sub := dynamicpb.NewMessage(fd.Message())
					set(t, sub, m)
					l.Append(protoreflect.ValueOfMessage(sub))
				} else {
					l.Append(protoreflect.ValueOf(e))
				}
			}
		case map[string]int64:
			mp := msg.Mutable(fd).Map()
			for k, n := range x {
				mp.Set(protoreflect.ValueOfString(k).MapKey(), protoreflect.ValueOfInt64(n))
			}
		case protoreflect.EnumNumber:
			msg.Set(fd, protoreflect.ValueOfEnum(x))
		default:
			msg.Set(fd, protoreflect.ValueOf(v))
		}
	}
}

func TestProtobufDecode(t *testing.T) {
	m := compileOrder(t)
	d, err := m.Resolve(m)
	if err != nil {
		t.Fatal(err)
	}
	msg := dynamicpb.NewMessage(m.md)
	set(t, msg, map[string]any{
		"id": int64(7), "qty": uint32(3), "price": 2.5, "customer": map[string]any{"name": "ann"},
		"tags": []any{"a", "b"}, "attrs": map[string]int64{"z": 1, "a": 2}, "status": protoreflect.EnumNumber(1),
		"cash":   map[string]any{"cents": int64(150), "currency": "EUR"},
		"placed": map[string]any{"seconds": int64(1_700_000_000), "nanos": int32(123_456_789)},
		"note":   map[string]any{"value": "hi"}, "blob": []byte{1},
		"others": []any{map[string]any{"name": "bob"}},
	})
	value, err := proto.Marshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	got, err := d.Decode(value)
	if err != nil {
		t.Fatal(err)
	}
	want := []any{int64(7), int64(3), 2.5, false, []any{"ann"}, []any{"a", "b"},
		[]any{[]any{"a", int64(2)}, []any{"z", int64(1)}}, "PAID", nil, []any{int64(150), "EUR"},
		int64(1_700_000_000_123_456), "hi", nil, []byte{1}, []any{[]any{"bob"}}, nil}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("decoded\n got %#v\nwant %#v", got, want)
	}
	// Nothing written: proto3 scalars read as zero, fields with presence
	// as null, lists as empty.
	got, err = d.Decode(nil)
	if err != nil {
		t.Fatal(err)
	}
	want = []any{int64(0), int64(0), 0.0, false, nil, []any{}, []any{}, "NEW", nil, nil, nil, nil, nil, []byte(nil), []any{}, nil}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("empty\n got %#v\nwant %#v", got, want)
	}
	if _, err := d.Decode([]byte{0xff, 0xff}); !errors.Is(err, ErrMismatch) {
		t.Errorf("garbage: %v", err)
	}
}

// A writer's message is read by field name: fields the reader lacks are
// ignored, those the writer lacks are null, a type change is refused.
func TestProtobufResolve(t *testing.T) {
	parse := func(src string) *ProtobufMessage {
		s, err := ParseProtobufSchema(context.Background(), src, nil)
		if err != nil {
			t.Fatal(err)
		}
		m, err := s.Message(nil)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	v1 := parse(`syntax = "proto3"; message R { int32 a = 1; string gone = 2; }`)
	v2 := parse(`syntax = "proto3"; message R { int64 a = 1; optional string b = 3; }`)
	d, err := v2.Resolve(v1)
	if err != nil {
		t.Fatal(err)
	}
	msg := dynamicpb.NewMessage(v1.md)
	set(t, msg, map[string]any{"a": int32(5), "gone": "g"})
	value, _ := proto.Marshal(msg)
	if got, err := d.Decode(value); err != nil || !reflect.DeepEqual(got, []any{int64(5), nil}) {
		t.Errorf("got %#v, %v", got, err)
	}
	v3 := parse(`syntax = "proto3"; message R { string a = 1; }`)
	if _, err := v2.Resolve(v3); !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), "a: the writer's field is string, the table's long") {
		t.Errorf("string a for long a: %v", err)
	}
}

func TestProtobufRefused(t *testing.T) {
	for _, tc := range []struct {
		src     string
		indexes []int
		want    string
	}{
		{`syntax = "proto3"; message N { N next = 1; }`, nil, "next: message N contains itself"},
		{`syntax = "proto3"; message N { int32 a = 1 }`, nil, "invalid .proto"},
		{`syntax = "proto3"; import "missing.proto"; message N { int32 a = 1; }`, nil, "invalid .proto"},
		{`syntax = "proto3"; message N { int32 a = 1; }`, []int{1}, "message indexes [1] name no message"},
		{`syntax = "proto3"; message E {}`, nil, "message E has no fields"},
	} {
		s, err := ParseProtobufSchema(context.Background(), tc.src, nil)
		if err == nil {
			_, err = s.Message(tc.indexes)
		}
		if !errors.Is(err, ErrInvalidSchema) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.src, err, tc.want)
		}
	}
}

// FuzzProtobufDecode: any bytes decode to the message's shape or give a
// one-line *MismatchError; never a panic.
func FuzzProtobufDecode(f *testing.F) {
	s, err := ParseProtobufSchema(context.Background(), protoOrder, map[string]string{"common.proto": protoCommon})
	if err != nil {
		f.Fatal(err)
	}
	m, err := s.Message(nil)
	if err != nil {
		f.Fatal(err)
	}
	d, err := m.Resolve(m)
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte{})
	f.Add([]byte{0x08, 0x07, 0x2a, 0x05, 0x0a, 0x03, 'a', 'n', 'n', 0x3a, 0x05, 0x0a, 0x01, 'a', 0x10, 0x02})
	f.Fuzz(func(t *testing.T, b []byte) {
		vals, err := d.Decode(b)
		if err != nil {
			if !errors.Is(err, ErrMismatch) || strings.ContainsAny(err.Error(), "\n\r") {
				t.Fatalf("error %q (%T)", err, err)
			}
			return
		}
		if len(vals) != len(m.Field().Fields) {
			t.Fatalf("%d values for %d fields", len(vals), len(m.Field().Fields))
		}
	})
}

// A schema registered as the base64 of its FileDescriptorProto (as some
// serializers register them), its imports too, compiles to the same
// message as its source.
func TestProtobufSchemaAsDescriptor(t *testing.T) {
	src := compileOrder(t)
	b64 := func(fd protoreflect.FileDescriptor) string {
		b, err := proto.Marshal(protodesc.ToFileDescriptorProto(fd))
		if err != nil {
			t.Fatal(err)
		}
		return base64.StdEncoding.EncodeToString(b)
	}
	file := src.md.ParentFile()
	imports := map[string]string{}
	for i := range file.Imports().Len() {
		imp := file.Imports().Get(i)
		imports[imp.Path()] = b64(imp.FileDescriptor)
	}
	s, err := ParseProtobufSchema(context.Background(), b64(file), imports)
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.Message(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(m.Field(), src.Field()) || m.Name() != "shop.Order" {
		t.Errorf("from the descriptor:\n got %+v\nwant %+v", m.Field(), src.Field())
	}
}
