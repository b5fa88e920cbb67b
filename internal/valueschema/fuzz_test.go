package valueschema

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzParseJSONSchema: any input gives a schema within the limits or a
// one-line *SchemaError, never a panic; a schema it gives decodes values
// without panicking.
func FuzzParseJSONSchema(f *testing.F) {
	f.Add([]byte(orderSchema))
	f.Add([]byte(nest(MaxDepth)))
	f.Add([]byte(`{"type":"object","properties":{"a":{"type":["null","string"],"format":"date"}},"required":["a"],"additionalProperties":false}`))
	f.Add([]byte(`{"type":"object","properties":{"a":{"type":"array","items":[{"type":"string"}]}}}`))
	f.Add([]byte(`{"type":"object","properties":{"a":{"$ref":"#"}}}`))
	f.Add([]byte(`{"type":"object","examples":[[[{}]]],"properties":{"a":{"type":"integer","enum":[1]}}}`))
	f.Add([]byte(`{"type":"object","properties":{"a":{"type":"string"},"a":{"type":"string"}}}`))
	values := [][]byte{
		[]byte(`{}`),
		[]byte(`{"a":"2024-05-01","id":1,"user":{"name":"n"},"at":null,"f":{"f":[{"f":[]}]}}`),
		[]byte(`{"a":null,"b":[1,2,{"c":"d"}]}`),
	}
	f.Fuzz(func(t *testing.T, text []byte) {
		schema, err := ParseJSONSchema(text)
		if err != nil {
			var se *SchemaError
			if !errors.As(err, &se) || !errors.Is(err, ErrInvalidSchema) || strings.ContainsAny(err.Error(), "\n\r") {
				t.Fatalf("error %q (%T) is not a one-line *SchemaError", err, err)
			}
			return
		}
		if schema.Kind != Object || schema.Name != "" {
			t.Fatalf("root %q is %v", schema.Name, schema.Kind)
		}
		fields := 0
		var walk func(f *Field, depth int)
		walk = func(f *Field, depth int) {
			if depth > MaxDepth {
				t.Fatalf("%q is %d levels deep", f.Name, depth)
			}
			if f.Kind < Boolean || f.Kind > Array {
				t.Fatalf("%q has kind %v", f.Name, f.Kind)
			}
			if (f.Kind == Object) != (len(f.Fields) > 0) || (f.Kind == Array) != (f.Elem != nil) {
				t.Fatalf("%q: kind %v with %d fields and elem %v", f.Name, f.Kind, len(f.Fields), f.Elem != nil)
			}
			names := map[string]bool{}
			for i := range f.Fields {
				c := &f.Fields[i]
				if c.Name == "" || len(c.Name) > MaxNameBytes || names[c.Name] || !utf8.ValidString(c.Name) {
					t.Fatalf("bad or repeated name %q", c.Name)
				}
				names[c.Name] = true
				fields++
				walk(c, depth+1)
			}
			if f.Elem != nil {
				if f.Elem.Name != "element" || !f.Elem.Required {
					t.Fatalf("items %+v", f.Elem)
				}
				fields++
				walk(f.Elem, depth+1)
			}
		}
		walk(schema, 0)
		if fields > MaxFields {
			t.Fatalf("%d fields", fields)
		}
		for _, v := range values {
			if _, err := schema.Decode(v); err != nil && !errors.Is(err, ErrMismatch) {
				t.Fatalf("decoding %s: %v", v, err)
			}
		}
	})
}

// FuzzDecode: any value gives a result shaped like the schema or a
// one-line *MismatchError, never a panic, and what Decode accepts is JSON
// that encoding/json accepts too.
func FuzzDecode(f *testing.F) {
	schema := mustParse(f, orderSchema)
	f.Add([]byte(`{"id":7,"user":{"name":"ann","age":41,"nick":"a"},"at":"2024-05-01T12:00:00.123456Z","day":"2024-05-01","price":9.5,"paid":true,"tags":["x","y"],"notes":["n",null],"grid":[[1,2],[],[3]],"lines":[{"sku":"s1","qty":2}]}`))
	f.Add([]byte(`{"at":null,"unknown":{"deep":[1,{"x":[true,false,null,"s\"\\",-1.5e-3]}]},"user":{"name":"b"},"id":1e3}`))
	f.Add([]byte(`{"id":1,"user":{"name":"a\"b\\c\/d\b\f\n\r\t\u00e9\ud83d\ude00\ud800"},"at":"1998-12-31T23:59:60Z"}`))
	f.Add([]byte(`{"id":9223372036854775808,"user":{"name":"n"},"at":null}`))
	f.Add([]byte(`{"id":1,"user":{"name":"n"},"at":null,"lines":[{"sku":"a","x":1}]}`))
	f.Add([]byte(`{"x":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}`))
	f.Add([]byte(`[`))
	f.Fuzz(func(t *testing.T, value []byte) {
		got, err := schema.Decode(value)
		if err != nil {
			var me *MismatchError
			if !errors.As(err, &me) || !errors.Is(err, ErrMismatch) || strings.ContainsAny(err.Error(), "\n\r") {
				t.Fatalf("error %q (%T) is not a one-line *MismatchError", err, err)
			}
			return
		}
		if !json.Valid(value) {
			t.Fatalf("accepted %q, which is not JSON", value)
		}
		checkShape(t, schema, got)
	})
}

// checkShape fails unless v has the Go types Decode documents for f.
func checkShape(t *testing.T, f *Field, v any) {
	t.Helper()
	if v == nil {
		if !f.Optional() {
			t.Fatalf("%q: nil for a required, non-nullable field", f.Name)
		}
		return
	}
	ok := false
	switch f.Kind {
	case Boolean:
		_, ok = v.(bool)
	case Long, Timestamp:
		_, ok = v.(int64)
	case Double:
		_, ok = v.(float64)
	case String:
		var s string
		s, ok = v.(string)
		ok = ok && utf8.ValidString(s)
	case Date:
		_, ok = v.(int32)
	case Object:
		var vs []any
		vs, ok = v.([]any)
		if ok && len(vs) != len(f.Fields) {
			t.Fatalf("%q: %d values for %d fields", f.Name, len(vs), len(f.Fields))
		}
		for i := range vs {
			checkShape(t, &f.Fields[i], vs[i])
		}
	case Array:
		var vs []any
		vs, ok = v.([]any)
		for _, e := range vs {
			checkShape(t, f.Elem, e)
		}
	}
	if !ok {
		t.Fatalf("%q: %T for %v", f.Name, v, f.Kind)
	}
}

// FuzzParsePartitionBy: any input gives terms within the limits that
// print and parse back to themselves, or an error; never a panic.
func FuzzParsePartitionBy(f *testing.F) {
	for _, s := range []string{"", "a", "day(ts), bucket(16, user.id), truncate(4, name)", "bucket(0, a)", "a,,", "HOURS(x)"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		terms, err := ParsePartitionBy(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidPartitionBy) {
				t.Fatalf("error %v does not match ErrInvalidPartitionBy", err)
			}
			return
		}
		if len(terms) > MaxPartitionTerms {
			t.Fatalf("%d terms", len(terms))
		}
		var texts []string
		for _, term := range terms {
			if _, ok := transforms[term.Transform]; !ok || term.Column == "" || term.Param < 0 {
				t.Fatalf("term %+v", term)
			}
			texts = append(texts, term.String())
		}
		again, err := ParsePartitionBy(strings.Join(texts, ","))
		if err != nil || len(again) != len(terms) {
			t.Fatalf("%q printed as %q: %v %v", s, texts, again, err)
		}
	})
}
