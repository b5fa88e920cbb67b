package valueschema

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func TestParseJSONSchema(t *testing.T) {
	for _, tc := range []struct {
		name   string
		schema string
		want   []Field // the root's fields
		closed bool
	}{
		{
			name:   "scalars in document order",
			schema: `{"type":"object","properties":{"z":{"type":"string"},"a":{"type":"integer"},"m":{"type":"number"},"b":{"type":"boolean"},"l":{"type":["integer"]}}}`,
			want:   []Field{{Name: "z", Kind: String}, {Name: "a", Kind: Long}, {Name: "m", Kind: Double}, {Name: "b", Kind: Boolean}, {Name: "l", Kind: Long}},
		},
		{
			name: "required, nullable, formats, description",
			schema: `{
				"$schema": "https://json-schema.org/draft/2020-12/schema",
				"$id": "https://example.com/order.json",
				"title": "Order",
				"type": "object",
				"required": ["id", "at"],
				"properties": {
					"id": {"type": "integer", "description": "order number"},
					"at": {"type": ["string", "null"], "format": "date-time"},
					"day": {"type": ["null", "string"], "format": "date"},
					"email": {"type": "string", "format": "email"}
				}
			}`,
			want: []Field{
				{Name: "id", Kind: Long, Required: true, Doc: "order number"},
				{Name: "at", Kind: Timestamp, Required: true, Nullable: true},
				{Name: "day", Kind: Date, Nullable: true},
				{Name: "email", Kind: String},
			},
		},
		{
			name: "nested objects and arrays",
			schema: `{"type":"object","additionalProperties":false,"properties":{
				"user":{"type":"object","required":["name"],"additionalProperties":true,"properties":{"name":{"type":"string"},"tags":{"type":"array","items":{"type":["string","null"]}}}},
				"points":{"type":"array","items":{"type":"array","items":{"type":"number"}}},
				"lines":{"type":"array","items":{"type":"object","unevaluatedProperties":false,"properties":{"sku":{"type":"string"}}}}
			}}`,
			closed: true,
			want: []Field{
				{Name: "user", Kind: Object, Fields: []Field{
					{Name: "name", Kind: String, Required: true},
					{Name: "tags", Kind: Array, Elem: &Field{Name: "element", Kind: String, Required: true, Nullable: true}},
				}},
				{Name: "points", Kind: Array, Elem: &Field{Name: "element", Kind: Array, Required: true, Elem: &Field{Name: "element", Kind: Double, Required: true}}},
				{Name: "lines", Kind: Array, Elem: &Field{Name: "element", Kind: Object, Required: true, Closed: true, Fields: []Field{{Name: "sku", Kind: String}}}},
			},
		},
		{
			name: "ignored keywords, however nested",
			schema: `{"type":"object","$comment":"x","examples":[{"a":[[[{}]]]}],"$defs":{"x":{"oneOf":[]}},"x-vendor":{"deep":[1,2,{"k":null}]},
				"properties":{"s":{"type":"string","enum":["a","b"],"minLength":1,"maxLength":9,"pattern":"^[ab]$","default":"a","deprecated":true,"readOnly":false},
				"n":{"type":"integer","minimum":0,"exclusiveMaximum":10,"multipleOf":2,"const":4,"format":"int32"},
				"l":{"type":"array","items":{"type":"boolean"},"minItems":1,"uniqueItems":true}}}`,
			want: []Field{
				{Name: "s", Kind: String},
				{Name: "n", Kind: Long},
				{Name: "l", Kind: Array, Elem: &Field{Name: "element", Kind: Boolean, Required: true}},
			},
		},
		{
			name:   "names are case-sensitive and may be anything printable",
			schema: `{"type":"object","properties":{"ID":{"type":"string"},"id":{"type":"string"},"a.b c":{"type":"string"},"é":{"type":"string"},"\u0041x":{"type":"string"},"$ref":{"type":"string"},"type":{"type":"string"}},"required":["$ref"]}`,
			want:   []Field{{Name: "ID", Kind: String}, {Name: "id", Kind: String}, {Name: "a.b c", Kind: String}, {Name: "é", Kind: String}, {Name: "Ax", Kind: String}, {Name: "$ref", Kind: String, Required: true}, {Name: "type", Kind: String}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := ParseJSONSchema([]byte(tc.schema))
			if err != nil {
				t.Fatal(err)
			}
			want := &Field{Kind: Object, Required: true, Fields: tc.want, Closed: tc.closed}
			if !reflect.DeepEqual(f, want) {
				t.Errorf("got\n%s\nwant\n%s", dump(f), dump(want))
			}
		})
	}
}

// dump shows a schema tree in a test failure.
func dump(f *Field) string {
	var b strings.Builder
	var walk func(f *Field, indent string)
	walk = func(f *Field, indent string) {
		fmt.Fprintf(&b, "%s%q %v required=%v nullable=%v closed=%v doc=%q\n", indent, f.Name, f.Kind, f.Required, f.Nullable, f.Closed, f.Doc)
		for i := range f.Fields {
			walk(&f.Fields[i], indent+"  ")
		}
		if f.Elem != nil {
			walk(f.Elem, indent+"  ")
		}
	}
	walk(f, "")
	return b.String()
}

func TestParseJSONSchemaRefuses(t *testing.T) {
	obj := func(props string) string { return `{"type":"object","properties":{` + props + `}}` }
	for _, tc := range []struct {
		schema, want string
	}{
		// Not a schema.
		{``, "empty schema"},
		{`   `, "empty schema"},
		{`{`, "invalid JSON: unexpected end"},
		{`{"type":"object",}`, "invalid JSON at byte"},
		{`{"type":"object","properties":{"a":{"type":"string"}}} {}`, "data after the schema"},
		{`{"type":"object","properties":{"a":{"type":"string"}}} x`, "data after the schema"},
		{`[]`, "a schema must be a JSON object"},
		{`true`, "a boolean schema is not supported"},
		{`"object"`, "a schema must be a JSON object"},
		// The root.
		{`{"type":"string"}`, `the root must be "type": "object"`},
		{`{"type":["object","null"],"properties":{"a":{"type":"string"}}}`, `the root must be "type": "object"`},
		{`{"properties":{"a":{"type":"string"}}}`, `"type" is missing`},
		{`{"type":"object"}`, `an object needs "properties"`},
		{`{"type":"object","properties":{}}`, `an object needs "properties"`},
		// Types.
		{obj(`"a":{}`), `properties.a: "type" is missing`},
		{obj(`"a":{"type":"null"}`), `properties.a: "type": "null" alone is not supported`},
		{obj(`"a":{"type":"date"}`), `properties.a: "type": "date" is not a JSON Schema type`},
		{obj(`"a":{"type":["string","integer"]}`), `properties.a: "type" may list a type and "null", nothing else`},
		{obj(`"a":{"type":["string","null","integer"]}`), `"type" may list a type and "null"`},
		{obj(`"a":{"type":["null","null"]}`), `"type" may list a type and "null"`},
		{obj(`"a":{"type":[]}`), `"type" may list a type and "null"`},
		{obj(`"a":{"type":[1,"null"]}`), `"type" may list a type and "null"`},
		{obj(`"a":{"type":7}`), `"type" must be a string or an array of strings`},
		{obj(`"a":{"type":{}}`), `"type" must be a string or an array of strings`},
		{obj(`"a":{"type":"string","type":"integer"}`), `properties.a: "type" is listed twice`},
		{obj(`"a":true`), `properties.a: a boolean schema is not supported`},
		{obj(`"a":[]`), `properties.a: a schema must be a JSON object`},
		{obj(`"a":"string"`), `properties.a: a schema must be a JSON object`},
		// Meaning-changing keywords, with their path.
		{obj(`"user":{"type":"object","properties":{"tags":{"type":"array","oneOf":[]}}}`), `properties.user.properties.tags: "oneOf" is not supported`},
		{obj(`"a":{"$ref":"#/$defs/a"}`), `properties.a: "$ref" is not supported`},
		{obj(`"a":{"type":"string","anyOf":[{"type":"string"},{"type":"null"}]}`), `properties.a: "anyOf" is not supported; for a field that may be null write "type": ["X", "null"]`},
		{obj(`"a":{"type":"string","allOf":[]}`), `"allOf" is not supported`},
		{obj(`"a":{"type":"string","not":{}}`), `"not" is not supported`},
		{obj(`"a":{"type":"string","if":{},"then":{}}`), `"if" is not supported`},
		{obj(`"a":{"type":"object","properties":{"b":{"type":"string"}},"patternProperties":{"^x":{}}}`), `properties.a: "patternProperties" is not supported`},
		{obj(`"a":{"type":"object","properties":{"b":{"type":"string"}},"additionalProperties":{"type":"string"}}`), `properties.a: "additionalProperties" as a schema is not supported`},
		{obj(`"a":{"type":"object","properties":{"b":{"type":"string"}},"additionalProperties":1}`), `"additionalProperties" must be true or false`},
		{obj(`"a":{"type":"object","properties":{"b":{"type":"string"}},"unevaluatedProperties":{}}`), `"unevaluatedProperties" as a schema is not supported`},
		{obj(`"a":{"type":"array","items":[{"type":"string"}]}`), `properties.a.items: an array of "items" schemas (a tuple) is not supported`},
		{obj(`"a":{"type":"array","prefixItems":[{"type":"string"}],"items":{"type":"string"}}`), `properties.a: "prefixItems" is not supported`},
		{obj(`"a":{"type":"array","items":true}`), `properties.a.items: a boolean schema is not supported`},
		{obj(`"a":{"type":"array"}`), `properties.a: an array needs "items"`},
		{obj(`"a":{"type":"array","items":{"type":"string"},"contains":{"type":"string"}}`), `"contains" is not supported`},
		{obj(`"a":{"type":"string","nullable":true}`), `"nullable" is OpenAPI, not JSON Schema`},
		{`{"type":"object","$ref":"#","properties":{"a":{"type":"string"}}}`, `"$ref" is not supported`},
		// Keywords on the wrong type, or of the wrong type.
		{obj(`"a":{"type":"string","properties":{"b":{"type":"string"}}}`), `properties.a: "properties" applies to objects only`},
		{obj(`"a":{"type":"string","required":[]}`), `properties.a: "required" applies to objects only`},
		{obj(`"a":{"type":"string","additionalProperties":false}`), `"additionalProperties" applies to objects only`},
		{obj(`"a":{"type":"string","items":{"type":"string"}}`), `properties.a: "items" applies to arrays only`},
		{obj(`"a":{"type":"integer","format":"date-time"}`), `properties.a: "format": "date-time" applies to strings only`},
		{obj(`"a":{"type":"array","format":"date","items":{"type":"string"}}`), `"format": "date" applies to strings only`},
		{obj(`"a":{"type":"string","format":7}`), `"format" must be a string`},
		{obj(`"a":{"type":"string","description":["x"]}`), `"description" must be a string`},
		{`{"type":"object","properties":[]}`, `properties: "properties" must be an object`},
		{`{"type":"object","properties":{"a":{"type":"string"}},"required":"a"}`, `"required" must be an array of strings`},
		{`{"type":"object","properties":{"a":{"type":"string"}},"required":[1]}`, `"required" must be an array of strings`},
		{`{"type":"object","properties":{"a":{"type":"string"}},"required":["b"]}`, `required: "b" is not among the properties`},
		{obj(`"u":{"type":"object","properties":{"a":{"type":"string"}},"required":["A"]}`), `properties.u.required: "A" is not among the properties`},
		// Names.
		{obj(`"":{"type":"string"}`), `properties: a property name must not be empty`},
		{obj(`"a":{"type":"string"},"a":{"type":"integer"}`), `properties: "a" is listed twice`},
		{obj(`"` + strings.Repeat("n", 256) + `":{"type":"string"}`), `is longer than 255 bytes`},
		{obj(`"a\nb":{"type":"string"}`), `properties: property name "a\nb" has a control character`},
		{obj(`"a\u0000":{"type":"string"}`), `has a control character`},
	} {
		f, err := ParseJSONSchema([]byte(tc.schema))
		if err == nil {
			t.Errorf("%s: accepted: %s", tc.schema, dump(f))
			continue
		}
		checkSchemaError(t, tc.schema, err)
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s:\n got %q\nwant %q", tc.schema, err, tc.want)
		}
	}
}

func checkSchemaError(t *testing.T, schema string, err error) {
	t.Helper()
	var se *SchemaError
	if !errors.Is(err, ErrInvalidSchema) || !errors.As(err, &se) || errors.Is(err, ErrMismatch) {
		t.Errorf("%.60s: %v (%T) is not a *SchemaError matching ErrInvalidSchema", schema, err, err)
	}
	if strings.ContainsAny(err.Error(), "\n\r") {
		t.Errorf("%.60s: error %q is more than one line", schema, err)
	}
}

// nest builds a schema whose deepest field is depth levels below the root,
// alternating objects and arrays.
func nest(depth int) string {
	inner := `{"type":"string"}`
	for d := depth - 1; d >= 1; d-- {
		if d%2 == 0 {
			inner = `{"type":"array","items":` + inner + `}`
		} else {
			inner = `{"type":"object","properties":{"f":` + inner + `}}`
		}
	}
	return `{"type":"object","properties":{"f":` + inner + `}}`
}

func manyFields(n int) string {
	var b strings.Builder
	b.WriteString(`{"type":"object","properties":{`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"f%d":{"type":"integer"}`, i)
	}
	b.WriteString(`}}`)
	return b.String()
}

func TestParseJSONSchemaLimits(t *testing.T) {
	if _, err := ParseJSONSchema([]byte(nest(MaxDepth))); err != nil {
		t.Errorf("depth %d: %v", MaxDepth, err)
	}
	_, err := ParseJSONSchema([]byte(nest(MaxDepth + 1)))
	if err == nil || !strings.Contains(err.Error(), "nested more than 16 levels deep") {
		t.Errorf("depth %d: %v", MaxDepth+1, err)
	}
	if err != nil {
		checkSchemaError(t, "deep", err)
	}

	if f, err := ParseJSONSchema([]byte(manyFields(MaxFields))); err != nil || len(f.Fields) != MaxFields {
		t.Errorf("%d fields: %v", MaxFields, err)
	}
	_, err = ParseJSONSchema([]byte(manyFields(MaxFields + 1)))
	if err == nil || !strings.Contains(err.Error(), "properties.f1000: more than 1000 fields in the schema") {
		t.Errorf("%d fields: %v", MaxFields+1, err)
	}
	// Items count as fields: 500 arrays of strings are 1000 fields.
	var b strings.Builder
	b.WriteString(`{"type":"object","properties":{`)
	for i := range 501 {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"a%d":{"type":"array","items":{"type":"string"}}`, i)
	}
	b.WriteString(`}}`)
	if _, err := ParseJSONSchema([]byte(b.String())); err == nil || !strings.Contains(err.Error(), "more than 1000 fields") {
		t.Errorf("501 arrays: %v", err)
	}

	name := strings.Repeat("é", MaxNameBytes/2) + "x" // 255 bytes
	if _, err := ParseJSONSchema([]byte(`{"type":"object","properties":{"` + name + `":{"type":"string"}}}`)); err != nil {
		t.Errorf("a %d-byte name: %v", len(name), err)
	}
}

// Nesting far beyond the limits, in ignored keywords or in the schema
// itself, gives an error or is skipped without recursion.
func TestParseJSONSchemaHostile(t *testing.T) {
	deep := strings.Repeat(`[`, 100000) + strings.Repeat(`]`, 100000)
	f, err := ParseJSONSchema([]byte(`{"type":"object","examples":` + deep + `,"properties":{"a":{"type":"string"}}}`))
	if err != nil || len(f.Fields) != 1 {
		t.Errorf("deep examples: %v", err)
	}
	deepSchema := strings.Repeat(`{"type":"object","properties":{"a":`, 100000)
	if _, err := ParseJSONSchema([]byte(deepSchema)); err == nil || !strings.Contains(err.Error(), "nested more than 16 levels") {
		t.Errorf("deep schema: %v", err)
	}
	for _, s := range []string{
		strings.Repeat(`{"a":`, 100000),
		`{"type":"object","properties":{"a":{"type":"string"}}, "x": ` + strings.Repeat(`{"a":`, 100000),
		"\xff\xfe",
		`{"type":"object","properties":{"a\xff":{"type":"string"}}}`,
	} {
		if _, err := ParseJSONSchema([]byte(s)); err != nil {
			checkSchemaError(t, s, err)
		}
	}
}

func TestKindString(t *testing.T) {
	for k, want := range map[Kind]string{Boolean: "boolean", Long: "long", Double: "double", String: "string", Timestamp: "timestamp", Date: "date", Object: "object", Array: "array", 0: "Kind(0)", 99: "Kind(99)"} {
		if k.String() != want {
			t.Errorf("%d: %q, want %q", int(k), k.String(), want)
		}
	}
}
