package valueschema

import (
	"errors"
	"math"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

const orderSchema = `{
	"type": "object",
	"required": ["id", "user", "at"],
	"properties": {
		"id": {"type": "integer"},
		"user": {
			"type": "object",
			"required": ["name"],
			"properties": {
				"name": {"type": "string"},
				"age": {"type": "integer"},
				"nick": {"type": ["string", "null"]}
			}
		},
		"at": {"type": ["string", "null"], "format": "date-time"},
		"day": {"type": "string", "format": "date"},
		"price": {"type": "number"},
		"paid": {"type": "boolean"},
		"tags": {"type": "array", "items": {"type": "string"}},
		"notes": {"type": "array", "items": {"type": ["string", "null"]}},
		"grid": {"type": "array", "items": {"type": "array", "items": {"type": "integer"}}},
		"lines": {"type": "array", "items": {
			"type": "object", "additionalProperties": false, "required": ["sku"],
			"properties": {"sku": {"type": "string"}, "qty": {"type": "integer"}}
		}}
	}
}`

func mustParse(t testing.TB, schema string) *Field {
	t.Helper()
	f, err := ParseJSONSchema([]byte(schema))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func micros(s string) int64 {
	ts, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return ts.UnixMicro()
}

func TestDecode(t *testing.T) {
	f := mustParse(t, orderSchema)
	for _, tc := range []struct {
		value string
		want  []any
	}{
		{
			`{"id":7,"user":{"name":"ann","age":41,"nick":"a"},"at":"2024-05-01T12:00:00.123456Z","day":"2024-05-01","price":9.5,"paid":true,
			  "tags":["x","y"],"notes":["n",null],"grid":[[1,2],[],[3]],"lines":[{"sku":"s1","qty":2},{"sku":"s2"}]}`,
			[]any{int64(7), []any{"ann", int64(41), "a"}, micros("2024-05-01T12:00:00.123456Z"), int32(19844), 9.5, true,
				[]any{"x", "y"}, []any{"n", nil}, []any{[]any{int64(1), int64(2)}, []any{}, []any{int64(3)}},
				[]any{[]any{"s1", int64(2)}, []any{"s2", nil}}},
		},
		{ // Absent and null optional fields, a null Nullable required one, any order, unknown fields skipped.
			` { "at" : null , "unknown": {"deep": [1, {"x": [true, false, null, "s\"\\", -1.5e-3]}]}, "user": {"name": "b", "age": null, "other": []},
			  "id": -9223372036854775808, "price": null, "tags": [], "extra": "x" } `,
			[]any{int64(math.MinInt64), []any{"b", nil, nil}, nil, nil, nil, nil, []any{}, nil, nil, nil},
		},
		{ // Numbers: exact integers in any notation, doubles from integers.
			`{"id":1e3,"user":{"name":"","age":2.50e1},"at":null,"price":3,"grid":[[9223372036854775807,-0,0.0e5,12E+2,100e-2]]}`,
			[]any{int64(1000), []any{"", int64(25), nil}, nil, nil, 3.0, nil, nil, nil, []any{[]any{int64(math.MaxInt64), int64(0), int64(0), int64(1200), int64(1)}}, nil},
		},
		{ // Strings: escapes, surrogate pairs, a lone surrogate, UTF-8.
			`{"id":1,"user":{"name":"a\"b\\c\/d\b\f\n\r\t\u00e9\ud83d\ude00\ud800é"},"at":null,"tags":["\u0000"]}`,
			[]any{int64(1), []any{"a\"b\\c/d\b\f\n\r\té😀\uFFFDé", nil, nil}, nil, nil, nil, nil, []any{"\x00"}, nil, nil, nil},
		},
		{ // An escaped property name.
			`{"\u0069d":1,"user":{"n\u0061me":"x"},"at":null}`,
			[]any{int64(1), []any{"x", nil, nil}, nil, nil, nil, nil, nil, nil, nil, nil},
		},
	} {
		got, err := f.Decode([]byte(tc.value))
		if err != nil {
			t.Errorf("%s: %v", tc.value, err)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s:\n got %#v\nwant %#v", tc.value, got, tc.want)
		}
	}
}

func TestDecodeMismatch(t *testing.T) {
	f := mustParse(t, orderSchema)
	const base = `"id":1,"user":{"name":"n"},"at":null`
	for _, tc := range []struct {
		value, want string
	}{
		{``, "not a JSON object"},
		{`  `, "not a JSON object"},
		{`[]`, "not a JSON object"},
		{`null`, "not a JSON object"},
		{`"{}"`, "not a JSON object"},
		{`{}`, `missing required field "id"`},
		{`{"id":1,"at":null}`, `missing required field "user"`},
		{`{"id":1,"user":{}, "at":null}`, `user: missing required field "name"`},
		{`{"id":null,"user":{"name":"n"},"at":null}`, `id: a required field is null`},
		{`{"id":1,"user":{"name":null},"at":null}`, `user.name: a required field is null`},
		{`{"id":1,"user":{"name":"n"}}`, `missing required field "at"`},
		{`{` + base + `,"user":{"name":"m"}}`, `duplicate field "user"`},
		{`{"id":1,"id":2,"user":{"name":"n"},"at":null}`, `duplicate field "id"`},
		// Types.
		{`{"id":12.5,"user":{"name":"n"},"at":null}`, `id: 12.5 is not an integer`},
		{`{"id":1,"user":{"name":"n","age":12.5},"at":null}`, `user.age: 12.5 is not an integer`},
		{`{"id":1e-1,"user":{"name":"n"},"at":null}`, `id: 1e-1 is not an integer`},
		{`{"id":"1","user":{"name":"n"},"at":null}`, `id: "1" is not an integer`},
		{`{"id":9223372036854775808,"user":{"name":"n"},"at":null}`, `id: 9223372036854775808 is out of range for a 64-bit integer`},
		{`{"id":-9223372036854775809,"user":{"name":"n"},"at":null}`, `is out of range for a 64-bit integer`},
		{`{"id":1e19,"user":{"name":"n"},"at":null}`, `id: 1e19 is out of range for a 64-bit integer`},
		{`{"id":1e999999999999999999999,"user":{"name":"n"},"at":null}`, `is out of range for a 64-bit integer`},
		{`{"id":1.000000000000000000000000000001,"user":{"name":"n"},"at":null}`, `is not an integer`},
		{`{` + base + `,"price":1e400}`, `price: 1e400 is out of range for a double`},
		{`{` + base + `,"price":"1"}`, `price: "1" is not a number`},
		{`{` + base + `,"paid":"true"}`, `paid: "true" is not a boolean`},
		{`{` + base + `,"paid":1}`, `paid: 1 is not a boolean`},
		{`{"id":1,"user":"ann","at":null}`, `user: "ann" is not an object`},
		{`{"id":1,"user":[],"at":null}`, `user: an array is not an object`},
		{`{` + base + `,"tags":{"a":1}}`, `tags: an object is not an array`},
		{`{` + base + `,"tags":"a"}`, `tags: "a" is not an array`},
		{`{` + base + `,"tags":["a",1]}`, `tags[1]: 1 is not a string`},
		{`{` + base + `,"tags":["a",null]}`, `tags[1]: null is not a string`},
		{`{` + base + `,"grid":[[1],[2,"x"]]}`, `grid[1][1]: "x" is not an integer`},
		{`{` + base + `,"lines":[{"sku":"a"},{"qty":1}]}`, `lines[1]: missing required field "sku"`},
		{`{` + base + `,"lines":[{"sku":"a","x":1}]}`, `lines[0]: unexpected field "x"`},
		{`{` + base + `,"lines":[{"sku":1}]}`, `lines[0].sku: 1 is not a string`},
		{`{"id":1,"user":{"name":"` + strings.Repeat("x", 100) + `","age":"` + strings.Repeat("y", 100) + `"},"at":null}`, `user.age: "yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy… is not an integer`},
		// Dates and date-times.
		{`{"id":1,"user":{"name":"n"},"at":"yesterday"}`, `at: "yesterday" is not an RFC 3339 date-time`},
		{`{"id":1,"user":{"name":"n"},"at":"2024-05-01T12:00:00"}`, `at: "2024-05-01T12:00:00" is not an RFC 3339 date-time`},
		{`{"id":1,"user":{"name":"n"},"at":1714564800}`, `at: 1714564800 is not an RFC 3339 date-time`},
		{`{` + base + `,"day":"2023-02-29"}`, `day: "2023-02-29" is not an RFC 3339 date (YYYY-MM-DD)`},
		// Strings.
		{`{"id":1,"user":{"name":"a` + "\xff" + `"},"at":null}`, `user.name: "a` + "\uFFFD" + `" is not valid UTF-8`},
		// Syntax, wherever it is.
		{`{"id":1`, `invalid JSON at byte 7: unexpected end`},
		{`{"id":1,}`, `invalid JSON at byte 8: expected a property name, found '}'`},
		{`{"id" 1}`, `invalid JSON at byte 6: expected : after a property name, found '1'`},
		{`{"id":01}`, `invalid JSON at byte 7: expected , or } after a property, found '1'`},
		{`{"id":1 "user":{}}`, `expected , or } after a property`},
		{`{"id":-}`, `id: invalid JSON at byte 7: invalid number`},
		{`{"id":1.}`, `invalid number`},
		{`{"id":1e}`, `invalid number`},
		{`{"id":+1}`, `id: invalid JSON at byte 6: expected a value, found '+'`},
		{`{"id":1,"user":{"name":"n"},"at":null} x`, `invalid JSON at byte 39: data after the object, found 'x'`},
		{`{"id":1,"user":{"name":"n"},"at":null}}`, `data after the object`},
		{`{"id":1,"user":{"name":"a` + "\n" + `"},"at":null}`, `user.name: invalid JSON at byte 25: control character in a string`},
		{`{"id":1,"user":{"name":"\x"},"at":null}`, `invalid escape in a string`},
		{`{"id":1,"user":{"name":"\u12"},"at":null}`, `invalid \u escape`},
		{`{"id":1,"user":{"name":"abc`, `unterminated string`},
		{`{"id":1,"user":{"name":"a\`, `unterminated string`},
		{`{"id":nul}`, `invalid literal`},
		{`{"paid":tru}`, `invalid literal`},
		{`{"paid":truex}`, `expected , or } after a property`},
		{`{"x":[1,2}`, `invalid JSON at byte 9: expected , or ], found '}'`},
		{`{"x":{"a":1]}`, `expected , or }`},
		{`{"x":{"a" 1}}`, `expected : after a property name`},
		{`{"x":{1:1}}`, `expected a property name`},
		{`{"x":[`, `unexpected end`},
		{`{"x":"\ud800\u"}`, `invalid \u escape`},
		{`{"x":@}`, `expected a value`},
		{`{"tags":["a" "b"]}`, `tags: invalid JSON at byte 13: expected , or ] after an item, found '"'`},
	} {
		_, err := f.Decode([]byte(tc.value))
		if err == nil {
			t.Errorf("%.80s: accepted", tc.value)
			continue
		}
		checkMismatch(t, tc.value, err)
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%.80s:\n got %q\nwant %q", tc.value, err, tc.want)
		}
	}
}

func checkMismatch(t *testing.T, value string, err error) {
	t.Helper()
	var me *MismatchError
	if !errors.Is(err, ErrMismatch) || !errors.As(err, &me) || errors.Is(err, ErrInvalidSchema) {
		t.Errorf("%.60s: %v (%T) is not a *MismatchError matching ErrMismatch", value, err, err)
	}
	if strings.ContainsAny(err.Error(), "\n\r") {
		t.Errorf("%.60s: error %q is more than one line", value, err)
	}
}

func TestDecodeClosedRoot(t *testing.T) {
	f := mustParse(t, `{"type":"object","additionalProperties":false,"properties":{"a":{"type":"string"}}}`)
	if _, err := f.Decode([]byte(`{"a":"x","b":1}`)); err == nil || err.Error() != `unexpected field "b"` {
		t.Errorf("closed root: %v", err)
	}
	if _, err := f.Decode([]byte(`{"a":"x"}`)); err != nil {
		t.Error(err)
	}
	if _, err := f.Decode([]byte(`{}`)); err != nil {
		t.Error(err)
	}
}

// Large objects (more than 64 fields) track duplicates and required
// fields too, and values in any order are found.
func TestDecodeManyFields(t *testing.T) {
	f := mustParse(t, manyFields(MaxFields))
	var b strings.Builder
	b.WriteByte('{')
	for i := MaxFields - 1; i >= 0; i-- {
		if i != MaxFields-1 {
			b.WriteByte(',')
		}
		b.WriteString(`"f` + strconv.Itoa(i) + `":` + strconv.Itoa(i))
	}
	b.WriteByte('}')
	got, err := f.Decode([]byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range got {
		if v != int64(i) {
			t.Fatalf("field %d: %v", i, v)
		}
	}
	if _, err := f.Decode([]byte(`{"f999":1,"f999":2}`)); err == nil || err.Error() != `duplicate field "f999"` {
		t.Errorf("duplicate: %v", err)
	}
	f.Fields[700].Required = true
	if _, err := f.Decode([]byte(`{"f1":1}`)); err == nil || err.Error() != `missing required field "f700"` {
		t.Errorf("missing: %v", err)
	}
}

// Hostile values cost time and memory in proportion to their size: no
// recursion follows nesting the schema does not have.
func TestDecodeHostile(t *testing.T) {
	f := mustParse(t, orderSchema)
	const n = 1 << 20
	for _, tc := range []struct{ value, want string }{
		{`{"x":` + strings.Repeat("[", n) + strings.Repeat("]", n) + `,` + `"id":1,"user":{"name":"n"},"at":null}`, ""},
		{`{"x":` + strings.Repeat(`{"a":`, n) + `1` + strings.Repeat("}", n) + `,"id":1,"user":{"name":"n"},"at":null}`, ""},
		{`{"x":` + strings.Repeat("[", n), "unexpected end"},
		{`{"tags":` + strings.Repeat("[", n), `tags[0]: invalid JSON at byte 1048584: unexpected end`},
		{`{"grid":` + strings.Repeat("[", n), `grid[0][0]: invalid JSON at byte 1048584: unexpected end`},
		{`{"tags":[` + strings.Repeat("[", n) + strings.Repeat("]", n) + `]}`, `tags[0]: an array is not a string`},
		{`{"grid":[` + strings.Repeat("[", n) + strings.Repeat("]", n) + `]}`, `grid[0][0]: an array is not an integer`},
		{`{"id":1` + strings.Repeat("0", n) + `}`, "is out of range for a 64-bit integer"},
		{`{"id":1.` + strings.Repeat("0", n) + `}`, `missing required field "user"`},
		{`{"id":0.` + strings.Repeat("0", n) + `1e` + strings.Repeat("9", 100) + `}`, "is out of range"},
	} {
		_, err := f.Decode([]byte(tc.value))
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%.40s: %v", tc.value, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%.40s: %v, want %q", tc.value, err, tc.want)
		}
		if err != nil {
			checkMismatch(t, tc.value, err)
		}
	}
}

// A schema built by hand rather than parsed is decoded too, and one
// that loops or lacks an array's items gives an error, not a crash.
func TestDecodeHandBuiltSchema(t *testing.T) {
	f := &Field{Kind: Object, Fields: []Field{{Name: "a", Kind: Long, Required: true}}}
	if got, err := f.Decode([]byte(`{"a":1}`)); err != nil || got[0] != int64(1) {
		t.Errorf("%v %v", got, err)
	}
	loop := &Field{Name: "l", Kind: Array}
	loop.Elem = loop
	f = &Field{Kind: Object, Fields: []Field{*loop}}
	f.Fields[0].Elem = &f.Fields[0]
	if _, err := f.Decode([]byte(`{"l":` + strings.Repeat("[", 100) + `}`)); err == nil || !strings.Contains(err.Error(), "the schema is invalid") {
		t.Errorf("looping schema: %v", err)
	}
	f = &Field{Kind: Object, Fields: []Field{{Name: "l", Kind: Array}}}
	if _, err := f.Decode([]byte(`{"l":[1]}`)); err == nil || !strings.Contains(err.Error(), "the schema is invalid") {
		t.Errorf("array without items: %v", err)
	}
	if _, err := (&Field{Kind: String}).Decode([]byte(`"x"`)); err == nil || err.Error() != "the schema is a string, not an object" {
		t.Errorf("string schema: %v", err)
	}
}

func TestParseLong(t *testing.T) {
	for _, tc := range []struct {
		lit  string
		want int64
		why  string
	}{
		{"0", 0, ""}, {"-0", 0, ""}, {"7", 7, ""}, {"-7", -7, ""},
		{"123456789012345678", 123456789012345678, ""},
		{"9223372036854775807", math.MaxInt64, ""},
		{"-9223372036854775808", math.MinInt64, ""},
		{"9223372036854775808", 0, " is out of range for a 64-bit integer"},
		{"-9223372036854775809", 0, " is out of range for a 64-bit integer"},
		{"99999999999999999999", 0, " is out of range for a 64-bit integer"},
		{"1e3", 1000, ""}, {"1E+3", 1000, ""}, {"1.5e1", 15, ""}, {"1.50e1", 15, ""},
		{"2.0", 2, ""}, {"2.000", 2, ""}, {"0.0", 0, ""}, {"0e-5", 0, ""}, {"0.000e99999", 0, ""},
		{"100e-2", 1, ""}, {"1200e-2", 12, ""}, {"-1.5e1", -15, ""},
		{"9.223372036854775807e18", math.MaxInt64, ""},
		{"-9.223372036854775808e18", math.MinInt64, ""},
		{"9.223372036854775808e18", 0, " is out of range for a 64-bit integer"},
		{"1e18", 1e18, ""}, {"1e19", 0, " is out of range for a 64-bit integer"},
		{"1.5", 0, " is not an integer"}, {"1e-1", 0, " is not an integer"}, {"10e-2", 0, " is not an integer"},
		{"0.1", 0, " is not an integer"}, {"-0.5", 0, " is not an integer"},
		{"1e99999999999999999999999", 0, " is out of range for a 64-bit integer"},
		{"1e-99999999999999999999999", 0, " is not an integer"},
		{"00000000000000000000001", 1, ""}, // not JSON, but parseLong is given only JSON numbers
	} {
		integral := !strings.ContainsAny(tc.lit, ".eE")
		got, why := parseLong([]byte(tc.lit), integral)
		if got != tc.want || why != tc.why {
			t.Errorf("%s: %d %q, want %d %q", tc.lit, got, why, tc.want, tc.why)
		}
	}
}

// Strings come out the same whether the value is small enough for them to
// share one copy of it or large enough to be copied one by one.
func TestDecodeStringsSmallAndLarge(t *testing.T) {
	f := mustParse(t, `{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"string"},"c":{"type":"array","items":{"type":"string"}}}}`)
	for _, pad := range []int{0, shareMax} {
		value := []byte(`{"pad":"` + strings.Repeat("p", pad) + `","a":"héllo","b":"x\ty","c":["","z"]}`)
		got, err := f.Decode(value)
		if err != nil {
			t.Fatal(err)
		}
		want := []any{"héllo", "x\ty", []any{"", "z"}}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%d bytes: %#v", len(value), got)
		}
		for i := range value { // the result does not alias the value
			value[i] = 'X'
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%d bytes: %#v after the value changed", len(value), got)
		}
	}
}
