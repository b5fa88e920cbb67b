package valueschema

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/twmb/avro"
)

const avroOrderV1 = `{"type":"record","name":"Order","namespace":"shop","doc":"An order.","fields":[
  {"name":"id","type":"long"},
  {"name":"qty","type":"int"},
  {"name":"price","type":"float"},
  {"name":"paid","type":"boolean"},
  {"name":"customer","type":{"type":"record","name":"Customer","fields":[
    {"name":"name","type":"string","doc":"Full name."},
    {"name":"tier","type":{"type":"enum","name":"Tier","symbols":["GOLD","SILVER"]}}]}},
  {"name":"billing","type":["null","Customer"],"default":null},
  {"name":"tags","type":{"type":"array","items":"string"}},
  {"name":"attrs","type":{"type":"map","values":"long"}},
  {"name":"note","type":["string","null"]},
  {"name":"placed","type":{"type":"long","logicalType":"timestamp-millis"}},
  {"name":"placed_us","type":{"type":"long","logicalType":"timestamp-micros"}},
  {"name":"day","type":{"type":"int","logicalType":"date"}},
  {"name":"ref","type":{"type":"string","logicalType":"uuid"}},
  {"name":"amount","type":{"type":"bytes","logicalType":"decimal","precision":9,"scale":2}},
  {"name":"blob","type":"bytes"},
  {"name":"hash","type":{"type":"fixed","name":"Hash","size":4}},
  {"name":"nothing","type":{"type":"record","name":"Empty","fields":[]}}
]}`

func TestParseAvroSchemaFields(t *testing.T) {
	s, err := ParseAvroSchema(avroOrderV1, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	var walk func(prefix string, f *Field)
	walk = func(prefix string, f *Field) {
		for i := range f.Fields {
			c := &f.Fields[i]
			desc := prefix + c.Name + ":" + c.Kind.String()
			if c.Nullable {
				desc += "?"
			}
			got = append(got, desc)
			switch c.Kind {
			case Object:
				walk(prefix+c.Name+".", c)
			case Array:
				got = append(got, prefix+c.Name+"[]:"+c.Elem.Kind.String())
				if c.Elem.Kind == Object {
					walk(prefix+c.Name+"[].", c.Elem)
				}
			}
		}
	}
	walk("", s.Field())
	want := []string{"id:long", "qty:long", "price:double", "paid:boolean",
		"customer:object", "customer.name:string", "customer.tier:string",
		"billing:object?", "billing.name:string", "billing.tier:string",
		"tags:array", "tags[]:string", "attrs:array", "attrs[]:object", "attrs[].key:string", "attrs[].value:long",
		"note:string?", "placed:timestamp", "placed_us:timestamp", "day:date", "ref:string", "amount:string",
		"blob:binary", "hash:binary"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("fields\n got %v\nwant %v", got, want)
	}
	if s.Field().Fields[4].Fields[0].Doc != "Full name." {
		t.Errorf("doc %q", s.Field().Fields[4].Fields[0].Doc)
	}
}

func TestAvroDecode(t *testing.T) {
	s, err := ParseAvroSchema(avroOrderV1, nil)
	if err != nil {
		t.Fatal(err)
	}
	w := avro.MustParse(avroOrderV1)
	value, err := w.Encode(map[string]any{
		"id": int64(7), "qty": int32(3), "price": float32(2.5), "paid": true,
		"customer": map[string]any{"name": "ann", "tier": "SILVER"},
		"billing":  nil,
		"tags":     []any{"a", "b"},
		"attrs":    map[string]any{"z": int64(1), "a": int64(2)},
		"note":     "hi",
		"placed":   int64(1_700_000_000_123), "placed_us": int64(-1), "day": int32(19000),
		"ref": "0b7d3c4e-8d6f-4a44-9b6e-1c2d3e4f5a6b", "amount": []byte{0xff, 0x85}, // -123 at scale 2
		"blob": []byte{1, 2}, "hash": []byte("abcd"), "nothing": map[string]any{},
	})
	if err != nil {
		t.Fatal(err)
	}
	d, err := s.Resolve(s)
	if err != nil {
		t.Fatal(err)
	}
	got, err := d.Decode(value)
	if err != nil {
		t.Fatal(err)
	}
	want := []any{int64(7), int64(3), 2.5, true, []any{"ann", "SILVER"}, nil, []any{"a", "b"},
		[]any{[]any{"a", int64(2)}, []any{"z", int64(1)}}, "hi", int64(1_700_000_000_123_000), int64(-1), int32(19000),
		"0b7d3c4e-8d6f-4a44-9b6e-1c2d3e4f5a6b", "-1.23", []byte{1, 2}, []byte("abcd")}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("decoded\n got %#v\nwant %#v", got, want)
	}
	for _, bad := range [][]byte{value[:len(value)-3], append(value[:len(value):len(value)], 0), {0xff, 0xff, 0xff}} {
		if _, err := d.Decode(bad); !errors.Is(err, ErrMismatch) {
			t.Errorf("decoding %x: %v, want ErrMismatch", bad, err)
		}
	}
}

// Values written with an older schema read as the newer one's fields:
// fields it gained take their defaults, int is read as long; a writer the
// reader cannot resolve is refused.
func TestAvroResolve(t *testing.T) {
	v1 := `{"type":"record","name":"R","fields":[{"name":"a","type":"int"},{"name":"gone","type":"string"}]}`
	v2 := `{"type":"record","name":"R","fields":[{"name":"a","type":"long"},{"name":"b","type":["null","string"],"default":null},{"name":"c","type":"string","default":"x"}]}`
	w, err := ParseAvroSchema(v1, nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := ParseAvroSchema(v2, nil)
	if err != nil {
		t.Fatal(err)
	}
	d, err := r.Resolve(w)
	if err != nil {
		t.Fatal(err)
	}
	value, _ := avro.MustParse(v1).Encode(map[string]any{"a": int32(5), "gone": "g"})
	got, err := d.Decode(value)
	if err != nil || !reflect.DeepEqual(got, []any{int64(5), nil, "x"}) {
		t.Errorf("got %#v, %v", got, err)
	}
	v3, _ := ParseAvroSchema(`{"type":"record","name":"R","fields":[{"name":"a","type":"string"}]}`, nil)
	if _, err := r.Resolve(v3); !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), "cannot be resolved") {
		t.Errorf("string a for long a: %v", err)
	}
}

func TestParseAvroSchemaRefused(t *testing.T) {
	for _, tc := range []struct{ schema, want string }{
		{`"string"`, "the schema is string, not a record"},
		{`{"type":"record","name":"N","fields":[{"name":"next","type":["null","N"]}]}`, "next: record N contains itself"},
		{`{"type":"record","name":"U","fields":[{"name":"u","type":"null"}]}`, `u: "null" alone`},
		{`{"type":"record","name":"U","fields":[{"name":"u","type":"nope"}]}`, `invalid Avro schema`},
		{`{"type":`, `invalid Avro schema`},
	} {
		_, err := ParseAvroSchema(tc.schema, nil)
		if !errors.Is(err, ErrInvalidSchema) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.schema, err, tc.want)
		}
	}
}

// A schema refers to types of other schemas (registry references).
func TestParseAvroSchemaReferences(t *testing.T) {
	addr := `{"type":"record","name":"Address","namespace":"geo","fields":[{"name":"city","type":"string"}]}`
	s, err := ParseAvroSchema(`{"type":"record","name":"User","fields":[{"name":"home","type":"geo.Address"},{"name":"work","type":["null","geo.Address"]}]}`, []string{addr})
	if err != nil {
		t.Fatal(err)
	}
	f := s.Field()
	if len(f.Fields) != 2 || f.Fields[0].Kind != Object || f.Fields[1].Fields[0].Name != "city" {
		t.Errorf("%+v", f.Fields)
	}
}

func TestDecimalString(t *testing.T) {
	for _, tc := range []struct {
		b     []byte
		scale int
		want  string
	}{
		{[]byte{0x30, 0x39}, 2, "123.45"}, {[]byte{0xcf, 0xc7}, 2, "-123.45"}, {[]byte{0x05}, 3, "0.005"},
		{[]byte{0xfb}, 3, "-0.005"}, {nil, 2, "0.00"}, {[]byte{0x7f}, 0, "127"},
	} {
		if got := decimalString(tc.b, tc.scale); got != tc.want {
			t.Errorf("%x scale %d: %s, want %s", tc.b, tc.scale, got, tc.want)
		}
	}
}

// FuzzAvroDecode: any bytes decode to the schema's shape or give a
// one-line *MismatchError; never a panic.
func FuzzAvroDecode(f *testing.F) {
	s, err := ParseAvroSchema(avroOrderV1, nil)
	if err != nil {
		f.Fatal(err)
	}
	d, err := s.Resolve(s)
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte{})
	f.Add([]byte{0x0e, 0x06, 0, 0, 0x20, 0x40, 1, 6, 'a', 'n', 'n', 2, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		vals, err := d.Decode(b)
		if err != nil {
			if !errors.Is(err, ErrMismatch) || strings.ContainsAny(err.Error(), "\n\r") {
				t.Fatalf("error %q (%T)", err, err)
			}
			return
		}
		if len(vals) != len(s.Field().Fields) {
			t.Fatalf("%d values for %d fields", len(vals), len(s.Field().Fields))
		}
	})
}

// A union of several types is an Object of a field per type, the one
// written set.
func TestAvroUnion(t *testing.T) {
	schema := `{"type":"record","name":"R","namespace":"ns","fields":[
	  {"name":"u","type":["null","string","long",{"type":"record","name":"A","fields":[{"name":"x","type":"int"}]},
	    {"type":"array","items":"int"},{"type":"map","values":"int"},{"type":"enum","name":"E","symbols":["P"]},
	    {"type":"record","name":"A","namespace":"other","fields":[{"name":"y","type":"string"}]}]},
	  {"name":"n","type":["null","string"]},
	  {"name":"w","type":{"type":"array","items":["int","string"]}}]}`
	s, err := ParseAvroSchema(schema, nil)
	if err != nil {
		t.Fatal(err)
	}
	u := s.Field().Fields[0]
	var names []string
	for _, f := range u.Fields {
		names = append(names, f.Name+":"+f.Kind.String())
	}
	if u.Kind != Object || !u.Nullable || strings.Join(names, ",") != "string:string,long:long,ns_A:object,array:array,map:array,E:string,other_A:object" {
		t.Fatalf("u: %v %v %v", u.Kind, u.Nullable, names)
	}
	if w := s.Field().Fields[2]; w.Kind != Array || w.Elem.Kind != Object || len(w.Elem.Fields) != 2 || w.Elem.Fields[0].Name != "int" {
		t.Fatalf("w: %+v", w)
	}
	d, err := s.Resolve(s)
	if err != nil {
		t.Fatal(err)
	}
	w := avro.MustParse(schema)
	for _, tc := range []struct {
		u    any
		want []any
	}{
		{nil, nil},
		{"s", []any{"s", nil, nil, nil, nil, nil, nil}},
		{int64(3), []any{nil, int64(3), nil, nil, nil, nil, nil}},
		{map[string]any{"ns.A": map[string]any{"x": int32(2)}}, []any{nil, nil, []any{int64(2)}, nil, nil, nil, nil}},
		{map[string]any{"other.A": map[string]any{"y": "z"}}, []any{nil, nil, nil, nil, nil, nil, []any{"z"}}},
		{[]any{int32(1)}, []any{nil, nil, nil, []any{int64(1)}, nil, nil, nil}},
		{map[string]any{"map": map[string]any{"k": int32(1)}}, []any{nil, nil, nil, nil, []any{[]any{"k", int64(1)}}, nil, nil}},
		{map[string]any{"ns.E": "P"}, []any{nil, nil, nil, nil, nil, "P", nil}},
	} {
		value, err := w.Encode(map[string]any{"u": tc.u, "n": "q", "w": []any{int32(1), "two"}})
		if err != nil {
			t.Fatal(err)
		}
		got, err := d.Decode(value)
		want := []any{tc.want, "q", []any{[]any{int64(1), nil}, []any{nil, "two"}}}
		if tc.want == nil {
			want[0] = nil
		}
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("u %v:\n got %#v, %v\nwant %#v", tc.u, got, err, want)
		}
	}
	// A value of a writer with a narrower union reads into the wider.
	narrow, _ := ParseAvroSchema(`{"type":"record","name":"R","namespace":"ns","fields":[{"name":"u","type":["null","long"]},{"name":"n","type":"string"},{"name":"w","type":{"type":"array","items":"int"}}]}`, nil)
	d, err = s.Resolve(narrow)
	if err != nil {
		t.Fatal(err)
	}
	value, _ := avro.MustParse(`{"type":"record","name":"R","namespace":"ns","fields":[{"name":"u","type":["null","long"]},{"name":"n","type":"string"},{"name":"w","type":{"type":"array","items":"int"}}]}`).Encode(map[string]any{"u": int64(9), "n": "q", "w": []any{int32(5)}})
	got, err := d.Decode(value)
	want := []any{[]any{nil, int64(9), nil, nil, nil, nil, nil}, "q", []any{[]any{int64(5), nil}}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("narrow writer:\n got %#v, %v\nwant %#v", got, err, want)
	}
}
