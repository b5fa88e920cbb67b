package valueschema

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Kind is a field's type.
type Kind int

// The kinds of field, with the Go type Decode gives each.
const (
	Boolean   Kind = iota + 1 // "boolean": bool
	Long                      // "integer": int64
	Double                    // "number": float64
	String                    // "string": string
	Timestamp                 // "string", "format": "date-time" (RFC 3339): int64 microseconds since the Unix epoch, UTC
	Date                      // "string", "format": "date": int32 days since the Unix epoch
	Object                    // "object": []any aligned with Fields
	Array                     // "array": []any
	Binary                    // Avro bytes and fixed, Protobuf bytes (no JSON Schema type): []byte
)

var kindNames = [...]string{
	Boolean: "boolean", Long: "long", Double: "double", String: "string",
	Timestamp: "timestamp", Date: "date", Object: "object", Array: "array",
	Binary: "binary",
}

func (k Kind) String() string {
	if k > 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Limits ParseJSONSchema enforces.
const (
	// MaxDepth is how many levels a schema may nest below its root; an
	// array's items count as a level (tags.items is one level below tags).
	MaxDepth = 16
	// MaxFields is how many fields a schema may have in all: every
	// property at every level and every array's items, not the root.
	MaxFields = 1000
	// MaxNameBytes is the longest property name.
	MaxNameBytes = 255
)

// Field is one schema node. The root is an Object named "".
type Field struct {
	Name     string
	Kind     Kind
	Required bool   // listed in its parent's "required"; always true for an Array's Elem and the root
	Nullable bool   // "type": ["X", "null"]
	Doc      string // "description", if any
	// Fields are an Object's properties, in the order the document lists
	// them. Names are unique and case-sensitive.
	Fields []Field
	// Elem is an Array's items' schema, named "element".
	Elem *Field
	// Closed is "additionalProperties": false (or
	// "unevaluatedProperties": false): a value with a property not in
	// Fields does not match. Open objects ignore other properties.
	Closed bool
}

// Optional reports whether the field may be absent from a value or null
// in it: it is not required, or its type admits null. A table column for
// it is optional.
func (f *Field) Optional() bool { return !f.Required || f.Nullable }

// elementName is the name of every Array's Elem.
const elementName = "element"

// ParseJSONSchema parses the JSON Schema a topic declares for its record
// values. The root must be "type": "object". See the package
// documentation for the keywords it reads, ignores and refuses. The error
// is a *SchemaError naming the JSON path of the node at fault.
func ParseJSONSchema(text []byte) (*Field, error) {
	p := &schemaParser{dec: json.NewDecoder(bytes.NewReader(text))}
	p.dec.UseNumber()
	tok, err := p.dec.Token()
	if err == io.EOF {
		return nil, &SchemaError{Reason: "empty schema"}
	}
	if err != nil {
		return nil, syntaxError("", err)
	}
	root, err := p.node("", 0, tok)
	if err != nil {
		return nil, err
	}
	if root.Kind != Object || root.Nullable {
		return nil, &SchemaError{Reason: `the root must be "type": "object"`}
	}
	if _, err := p.dec.Token(); err != io.EOF {
		return nil, &SchemaError{Reason: "invalid JSON: data after the schema"}
	}
	root.Required = true
	return &root, nil
}

// schemaParser reads a schema document token by token, so that properties
// keep the order the document gives them.
type schemaParser struct {
	dec    *json.Decoder
	fields int // fields so far, against MaxFields
}

// Keywords the parser reads. Each may appear once in a schema.
const (
	kwType = 1 << iota
	kwProperties
	kwRequired
	kwItems
	kwAdditional
	kwUnevaluated
	kwDescription
	kwFormat
)

var keywords = map[string]int{
	"type": kwType, "properties": kwProperties, "required": kwRequired, "items": kwItems,
	"additionalProperties": kwAdditional, "unevaluatedProperties": kwUnevaluated,
	"description": kwDescription, "format": kwFormat,
}

// refused are the keywords that change what a value may be in ways floe
// can neither check nor map to a column: references, combinators,
// conditionals and subschemas other than properties and items. The value
// finishes the sentence after the quoted keyword.
var refused = map[string]string{
	"$ref":              "is not supported; write the referenced schema inline",
	"$dynamicRef":       "is not supported; write the referenced schema inline",
	"$recursiveRef":     "is not supported; write the referenced schema inline",
	"oneOf":             `is not supported; for a field that may be null write "type": ["X", "null"]`,
	"anyOf":             `is not supported; for a field that may be null write "type": ["X", "null"]`,
	"allOf":             "is not supported; merge the schemas into one",
	"not":               "is not supported",
	"if":                "is not supported",
	"then":              "is not supported",
	"else":              "is not supported",
	"dependentSchemas":  "is not supported",
	"dependencies":      "is not supported",
	"patternProperties": "is not supported; list the properties",
	"propertyNames":     "is not supported",
	"prefixItems":       `is not supported (tuples); an array has one "items" schema`,
	"additionalItems":   `is not supported (tuples); an array has one "items" schema`,
	"unevaluatedItems":  "is not supported",
	"contains":          "is not supported",
	"nullable":          `is OpenAPI, not JSON Schema; write "type": ["X", "null"]`,
}

// typeKinds maps JSON Schema type names to kinds; strings with a date
// format become Timestamp or Date after the whole node is read.
var typeKinds = map[string]Kind{
	"boolean": Boolean, "integer": Long, "number": Double, "string": String,
	"object": Object, "array": Array,
}

// node parses the schema whose first token is first, at JSON path path,
// depth levels below the root. It recurses only into properties and
// items, at most MaxDepth levels.
func (p *schemaParser) node(path string, depth int, first json.Token) (Field, error) {
	fail := func(format string, args ...any) (Field, error) {
		return Field{}, &SchemaError{Path: path, Reason: fmt.Sprintf(format, args...)}
	}
	switch first {
	case json.Delim('{'):
	case true, false:
		return fail(`a boolean schema is not supported; write an object with a "type"`)
	default:
		return fail("a schema must be a JSON object")
	}
	var (
		f        Field
		seen     int
		format   string
		required []string
		closed   bool
	)
	for p.dec.More() {
		tok, err := p.token(path)
		if err != nil {
			return Field{}, err
		}
		key, _ := tok.(string) // object keys are strings
		if why, ok := refused[key]; ok {
			return fail("%q %s", key, why)
		}
		kw := keywords[key]
		if kw == 0 {
			// Annotations ($schema, $id, title, examples, default, ...),
			// value assertions (enum, const, minimum, pattern, ...), $defs
			// and unknown keywords do not change a value's shape.
			if err := p.skip(path); err != nil {
				return Field{}, err
			}
			continue
		}
		if seen&kw != 0 {
			return fail("%q is listed twice", key)
		}
		seen |= kw
		switch key {
		case "type":
			f.Kind, f.Nullable, err = p.typ(path)
		case "properties":
			f.Fields, err = p.properties(path, depth)
		case "required":
			required, err = p.strings(path, key)
		case "items":
			f.Elem, err = p.items(path, depth)
		case "additionalProperties", "unevaluatedProperties":
			var open bool
			open, err = p.boolean(path, key, fmt.Sprintf("%q as a schema is not supported; write true or false", key))
			closed = closed || !open
		case "description":
			f.Doc, err = p.str(path, key)
		case "format":
			format, err = p.str(path, key)
		}
		if err != nil {
			return Field{}, err
		}
	}
	if _, err := p.token(path); err != nil { // the closing brace
		return Field{}, err
	}

	if seen&kwType == 0 {
		return fail(`"type" is missing`)
	}
	if f.Kind != Object {
		for _, kw := range []struct {
			bit  int
			name string
		}{{kwProperties, "properties"}, {kwRequired, "required"}, {kwAdditional, "additionalProperties"}, {kwUnevaluated, "unevaluatedProperties"}} {
			if seen&kw.bit != 0 {
				return fail("%q applies to objects only", kw.name)
			}
		}
	}
	if f.Kind != Array && seen&kwItems != 0 {
		return fail(`"items" applies to arrays only`)
	}
	switch f.Kind {
	case Object:
		if len(f.Fields) == 0 {
			return fail(`an object needs "properties" with at least one property (leave a free-form object out of the schema: an open object ignores properties it does not list)`)
		}
		for _, name := range required {
			i := fieldIndex(f.Fields, name)
			if i < 0 {
				return Field{}, &SchemaError{Path: join(path, "required"), Reason: fmt.Sprintf("%s is not among the properties", quote(name))}
			}
			f.Fields[i].Required = true
		}
		f.Closed = closed
	case Array:
		if f.Elem == nil {
			return fail(`an array needs "items"`)
		}
	case String:
		switch format {
		case "date-time":
			f.Kind = Timestamp
		case "date":
			f.Kind = Date
		}
	}
	if (format == "date-time" || format == "date") && f.Kind != Timestamp && f.Kind != Date {
		return fail(`"format": %q applies to strings only`, format)
	}
	return f, nil
}

func (p *schemaParser) typ(path string) (Kind, bool, error) {
	fail := func(format string, args ...any) (Kind, bool, error) {
		return 0, false, &SchemaError{Path: path, Reason: fmt.Sprintf(format, args...)}
	}
	tok, err := p.token(path)
	if err != nil {
		return 0, false, err
	}
	var names []string
	switch t := tok.(type) {
	case string:
		names = []string{t}
	case json.Delim:
		if t != '[' {
			return fail(`"type" must be a string or an array of strings`)
		}
		for p.dec.More() {
			tok, err := p.token(path)
			if err != nil {
				return 0, false, err
			}
			name, ok := tok.(string)
			if !ok || len(names) == 2 {
				return fail(`"type" may list a type and "null", nothing else`)
			}
			names = append(names, name)
		}
		if _, err := p.token(path); err != nil {
			return 0, false, err
		}
	default:
		return fail(`"type" must be a string or an array of strings`)
	}
	nullable := false
	switch {
	case len(names) == 2 && names[0] == "null" && names[1] != "null":
		names[0], nullable = names[1], true
	case len(names) == 2 && names[1] == "null" && names[0] != "null":
		nullable = true
	case len(names) != 1:
		return fail(`"type" may list a type and "null", nothing else`)
	}
	if names[0] == "null" {
		return fail(`"type": "null" alone is not supported; a field that is always null has no column`)
	}
	k, ok := typeKinds[names[0]]
	if !ok {
		return fail(`"type": %s is not a JSON Schema type (boolean, integer, number, string, object, array)`, quote(names[0]))
	}
	return k, nullable, nil
}

func (p *schemaParser) properties(path string, depth int) ([]Field, error) {
	at := join(path, "properties")
	if err := p.open(at, '{', `"properties" must be an object`); err != nil {
		return nil, err
	}
	var fields []Field
	names := map[string]bool{}
	for p.dec.More() {
		tok, err := p.token(at)
		if err != nil {
			return nil, err
		}
		name, _ := tok.(string)
		if why := checkName(name); why != "" {
			return nil, &SchemaError{Path: at, Reason: why}
		}
		if names[name] {
			return nil, &SchemaError{Path: at, Reason: fmt.Sprintf("%s is listed twice", quote(name))}
		}
		names[name] = true
		tok, err = p.token(at)
		if err != nil {
			return nil, err
		}
		child, err := p.child(join(at, name), depth, tok)
		if err != nil {
			return nil, err
		}
		child.Name = name
		fields = append(fields, child)
	}
	_, err := p.token(at)
	return fields, err
}

func (p *schemaParser) items(path string, depth int) (*Field, error) {
	at := join(path, "items")
	tok, err := p.token(at)
	if err != nil {
		return nil, err
	}
	if tok == json.Delim('[') {
		return nil, &SchemaError{Path: at, Reason: `an array of "items" schemas (a tuple) is not supported; give one schema for every item`}
	}
	elem, err := p.child(at, depth, tok)
	if err != nil {
		return nil, err
	}
	elem.Name, elem.Required = elementName, true
	return &elem, nil
}

// child parses the schema of a property or of items, whose first token is
// first, one level below depth, counting it against MaxFields.
func (p *schemaParser) child(path string, depth int, first json.Token) (Field, error) {
	p.fields++
	if p.fields > MaxFields {
		return Field{}, &SchemaError{Path: path, Reason: fmt.Sprintf("more than %d fields in the schema", MaxFields)}
	}
	if depth+1 > MaxDepth {
		return Field{}, &SchemaError{Path: path, Reason: fmt.Sprintf("nested more than %d levels deep", MaxDepth)}
	}
	return p.node(path, depth+1, first)
}

// strings reads an array of strings.
func (p *schemaParser) strings(path, key string) ([]string, error) {
	if err := p.open(path, '[', fmt.Sprintf("%q must be an array of strings", key)); err != nil {
		return nil, err
	}
	var out []string
	for p.dec.More() {
		tok, err := p.token(path)
		if err != nil {
			return nil, err
		}
		s, ok := tok.(string)
		if !ok {
			return nil, &SchemaError{Path: path, Reason: fmt.Sprintf("%q must be an array of strings", key)}
		}
		out = append(out, s)
	}
	_, err := p.token(path)
	return out, err
}

func (p *schemaParser) str(path, key string) (string, error) {
	tok, err := p.token(path)
	if err != nil {
		return "", err
	}
	s, ok := tok.(string)
	if !ok {
		return "", &SchemaError{Path: path, Reason: fmt.Sprintf("%q must be a string", key)}
	}
	return s, nil
}

// boolean reads true or false; notBool is the reason given otherwise.
func (p *schemaParser) boolean(path, key, notBool string) (bool, error) {
	tok, err := p.token(path)
	if err != nil {
		return false, err
	}
	switch tok {
	case true:
		return true, nil
	case false:
		return false, nil
	case json.Delim('{'):
		return false, &SchemaError{Path: path, Reason: notBool}
	}
	return false, &SchemaError{Path: path, Reason: fmt.Sprintf("%q must be true or false", key)}
}

// open reads the opening delimiter want, or fails with reason.
func (p *schemaParser) open(path string, want json.Delim, reason string) error {
	tok, err := p.token(path)
	if err != nil {
		return err
	}
	if tok != want {
		return &SchemaError{Path: path, Reason: reason}
	}
	return nil
}

func (p *schemaParser) token(path string) (json.Token, error) {
	tok, err := p.dec.Token()
	if err != nil {
		return nil, syntaxError(path, err)
	}
	return tok, nil
}

// skip reads past one value, however deeply nested, without recursing.
func (p *schemaParser) skip(path string) error {
	tok, err := p.token(path)
	if err != nil {
		return err
	}
	if d, ok := tok.(json.Delim); ok {
		return p.skipRest(d)
	}
	return nil
}

// skipRest reads to the end of the array or object opened by d.
func (p *schemaParser) skipRest(d json.Delim) error {
	if d != '{' && d != '[' {
		return nil
	}
	for depth := 1; depth > 0; {
		tok, err := p.dec.Token()
		if err != nil {
			return syntaxError("", err)
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			depth++
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
	}
	return nil
}

func syntaxError(path string, err error) error {
	var se *json.SyntaxError
	switch {
	case errors.As(err, &se):
		return &SchemaError{Path: path, Reason: fmt.Sprintf("invalid JSON at byte %d: %v", se.Offset, se)}
	case err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF):
		return &SchemaError{Path: path, Reason: "invalid JSON: unexpected end"}
	}
	return &SchemaError{Path: path, Reason: fmt.Sprintf("invalid JSON: %v", err)}
}

// checkName says why name cannot be a property name, or "".
func checkName(name string) string {
	switch {
	case name == "":
		return "a property name must not be empty"
	case len(name) > MaxNameBytes:
		return fmt.Sprintf("property name %s is longer than %d bytes", quote(name), MaxNameBytes)
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return fmt.Sprintf("property name %s has a control character", quote(name))
		}
	}
	return ""
}

func fieldIndex(fields []Field, name string) int {
	for i := range fields {
		if fields[i].Name == name {
			return i
		}
	}
	return -1
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// quote quotes s for a message, shortened to about 40 bytes.
func quote(s string) string {
	const max = 40
	if len(s) <= max {
		return fmt.Sprintf("%q", s)
	}
	cut := max
	for cut > 0 && s[cut]&0xc0 == 0x80 { // do not split a UTF-8 sequence
		cut--
	}
	return fmt.Sprintf("%q…", s[:cut])
}
