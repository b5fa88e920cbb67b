package valueschema

import (
	"fmt"
	"math"
	"math/big"
	"slices"
	"strings"

	"github.com/twmb/avro"
	"github.com/twmb/avro/atype"
)

// Avro schemas and values. An Avro schema (from a schema registry) whose
// root is a record maps to a tree of Field, its fields becoming the
// table's columns in the order the record lists them:
//
//	boolean                          Boolean
//	int, long                        Long
//	float, double                    Double
//	string, enum (its symbol)        String
//	bytes, fixed                     Binary
//	record                           Object (a record of no fields has no column)
//	array                            Array
//	map                              Array of Object {key String, value}
//	                                 in key order
//	["null", T], [T, "null"]         T, Nullable
//	other unions                     Object of one field per type other
//	                                 than null, named by it (string,
//	                                 long, array, map, a named type's
//	                                 name), the one written set; Nullable
//	                                 when null is one of them
//	timestamp-millis, -micros, -nanos,
//	local-timestamp-millis, -micros,
//	-nanos                           Timestamp (local ones taken as UTC)
//	date                             Date
//	time-millis, time-micros         Long (milliseconds or microseconds
//	                                 since midnight, as written)
//	uuid                             String
//	decimal                          String: the exact decimal number,
//	                                 e.g. "-12.30" for scale 2
//
// Refused: recursive types (a record that contains itself) and a root
// that is not a record.
//
// Values are decoded with the writer's schema resolved against the
// reader's (Avro schema resolution: fields matched by name or alias,
// reader fields the writer lacks take their defaults, int promoted to
// long, float to double, ...), so a table whose columns follow a
// subject's latest schema reads records of every compatible version.

// avroOpts keep logical types' values as written (int64 timestamps,
// int32 dates, the decimal's bytes), which Decode converts itself
// without going through time.Time or big.Rat.
var avroOpts = []avro.SchemaOpt{
	avro.CustomType{LogicalType: atype.TimestampMillis, AvroType: atype.Long},
	avro.CustomType{LogicalType: atype.TimestampMicros, AvroType: atype.Long},
	avro.CustomType{LogicalType: atype.TimestampNanos, AvroType: atype.Long},
	avro.CustomType{LogicalType: atype.LocalTimestampMillis, AvroType: atype.Long},
	avro.CustomType{LogicalType: atype.LocalTimestampMicros, AvroType: atype.Long},
	avro.CustomType{LogicalType: atype.LocalTimestampNanos, AvroType: atype.Long},
	avro.CustomType{LogicalType: atype.Date, AvroType: atype.Int},
	avro.CustomType{LogicalType: atype.TimeMillis, AvroType: atype.Int},
	avro.CustomType{LogicalType: atype.TimeMicros, AvroType: atype.Long},
	avro.CustomType{LogicalType: atype.Decimal, AvroType: atype.Bytes},
	avro.CustomType{LogicalType: atype.Decimal, AvroType: atype.Fixed},
}

// AvroSchema is a parsed Avro schema whose root is a record, and its
// fields as a tree of Field.
type AvroSchema struct {
	schema *avro.Schema
	root   *Field
	conv   avroConv // parallel to root
	// tagged: the schema has unions of several types, whose values are
	// decoded tagged with their type to tell which was written.
	tagged bool
}

// ParseAvroSchema parses an Avro schema; refs are the texts of the
// schemas it refers to (registry references), each after those it refers
// to. The error is a *SchemaError.
func ParseAvroSchema(text string, refs []string) (*AvroSchema, error) {
	var cache avro.SchemaCache
	b := &avroBuilder{defs: map[string]*avro.SchemaNode{}, open: map[string]bool{}}
	for i, r := range refs {
		rs, err := cache.Parse(r, avroOpts...)
		if err != nil {
			return nil, &SchemaError{Reason: fmt.Sprintf("reference %d: %s", i+1, oneLine(err))}
		}
		b.collect(rs.Root(), "")
	}
	s, err := cache.Parse(text, avroOpts...)
	if err != nil {
		return nil, &SchemaError{Reason: "invalid Avro schema: " + oneLine(err)}
	}
	root := s.Root()
	b.collect(root, "")
	rn := b.deref(root, "")
	if rn == nil || rn.Type != atype.Record && rn.Type != "error" {
		return nil, &SchemaError{Reason: fmt.Sprintf("the schema is %s, not a record: its fields are the table's columns", avroTypeName(root))}
	}
	f, conv, _, err := b.node(rn, "", "", 0)
	if err != nil {
		return nil, err
	}
	f.Required = true
	return &AvroSchema{schema: s, root: &f, conv: conv, tagged: b.tagged}, nil
}

// Field is the schema's root record as an Object.
func (s *AvroSchema) Field() *Field { return s.root }

// avroOp is how a decoded Avro value becomes a Field's value.
type avroOp uint8

const (
	avroSame    avroOp = iota // bool, string, []byte as decoded
	avroLong                  // int32 or int64 to int64
	avroDouble                // float32 or float64 to float64
	avroMillis                // int64 milliseconds to microseconds
	avroMicros                // int64 microseconds
	avroNanos                 // int64 nanoseconds to microseconds
	avroDate                  // int32 days
	avroDecimal               // two's complement bytes to a decimal string
	avroRecord                // map[string]any to []any
	avroArray                 // []any
	avroMap                   // map[string]any to []any of {key, value}
	avroUnion                 // {tag: value} to []any, the tag's field set
)

// avroConv converts the decoded value of a Field.
type avroConv struct {
	op     avroOp
	scale  int        // avroDecimal
	fields []avroConv // avroRecord, avroUnion: aligned with the Field's Fields
	elem   *avroConv  // avroArray: the items'; avroMap: the values'
	tags   []string   // avroUnion: each field's type as a tagged value names it
	// union: the value is a union's (a type and null), tagged when the
	// schema's values are.
	union bool
}

// avroBuilder maps a schema's nodes to Fields.
type avroBuilder struct {
	defs   map[string]*avro.SchemaNode // named types by full name
	open   map[string]bool             // records being mapped: met again, they recur
	fields int
	tagged bool // a union of several types was met
}

func fullName(name, ns string) string {
	if strings.Contains(name, ".") || ns == "" {
		return name
	}
	return ns + "." + name
}

// collect records the named types defined in n, by full name.
func (b *avroBuilder) collect(n *avro.SchemaNode, ns string) {
	switch n.Type {
	case atype.Record, "error", atype.Enum, atype.Fixed:
		if n.Name == "" {
			return
		}
		full := fullName(n.Name, n.Namespace)
		if _, ok := b.defs[full]; ok {
			return
		}
		b.defs[full] = n
		for i := range n.Fields {
			b.collect(&n.Fields[i].Type, n.Namespace)
		}
	case atype.Array:
		if n.Items != nil {
			b.collect(n.Items, ns)
		}
	case atype.Map:
		if n.Values != nil {
			b.collect(n.Values, ns)
		}
	case atype.Union:
		for i := range n.Branches {
			b.collect(&n.Branches[i], ns)
		}
	}
}

// deref returns the definition a reference node names, or n itself.
func (b *avroBuilder) deref(n *avro.SchemaNode, ns string) *avro.SchemaNode {
	switch n.Type {
	case atype.Null, atype.Boolean, atype.Int, atype.Long, atype.Float, atype.Double, atype.Bytes, atype.String,
		atype.Record, "error", atype.Enum, atype.Fixed, atype.Array, atype.Map, atype.Union:
		return n
	}
	if d, ok := b.defs[fullName(n.Type, ns)]; ok {
		return d
	}
	return b.defs[n.Type]
}

func avroTypeName(n *avro.SchemaNode) string {
	if n.Name != "" {
		return n.Type + " " + n.Name
	}
	if n.LogicalType != "" {
		return n.Type + " (" + n.LogicalType + ")"
	}
	return n.Type
}

// node maps n, met at path in namespace ns, depth levels below the
// root. keep is false for a record of no fields, which has no column.
func (b *avroBuilder) node(n *avro.SchemaNode, ns, path string, depth int) (f Field, c avroConv, keep bool, err error) {
	fail := func(format string, args ...any) (Field, avroConv, bool, error) {
		return Field{}, avroConv{}, false, &SchemaError{Path: path, Reason: fmt.Sprintf(format, args...)}
	}
	if depth > MaxDepth {
		return fail("nested more than %d levels deep", MaxDepth)
	}
	d := b.deref(n, ns)
	if d == nil {
		return fail("unknown type %q", n.Type)
	}
	n = d
	switch n.Type {
	case atype.Boolean:
		return Field{Kind: Boolean}, avroConv{op: avroSame}, true, nil
	case atype.Int, atype.Long:
		switch n.LogicalType {
		case atype.Date:
			if n.Type == atype.Int {
				return Field{Kind: Date}, avroConv{op: avroDate}, true, nil
			}
		case atype.TimestampMillis, atype.LocalTimestampMillis:
			if n.Type == atype.Long {
				return Field{Kind: Timestamp}, avroConv{op: avroMillis}, true, nil
			}
		case atype.TimestampMicros, atype.LocalTimestampMicros:
			if n.Type == atype.Long {
				return Field{Kind: Timestamp}, avroConv{op: avroMicros}, true, nil
			}
		case atype.TimestampNanos, atype.LocalTimestampNanos:
			if n.Type == atype.Long {
				return Field{Kind: Timestamp}, avroConv{op: avroNanos}, true, nil
			}
		}
		return Field{Kind: Long}, avroConv{op: avroLong}, true, nil
	case atype.Float, atype.Double:
		return Field{Kind: Double}, avroConv{op: avroDouble}, true, nil
	case atype.String, atype.Enum:
		return Field{Kind: String}, avroConv{op: avroSame}, true, nil
	case atype.Bytes, atype.Fixed:
		if n.LogicalType == atype.Decimal && n.Precision > 0 {
			return Field{Kind: String}, avroConv{op: avroDecimal, scale: n.Scale}, true, nil
		}
		return Field{Kind: Binary}, avroConv{op: avroSame}, true, nil
	case atype.Record, "error":
		full := fullName(n.Name, n.Namespace)
		if b.open[full] {
			return fail("record %s contains itself: recursive types are not supported", full)
		}
		b.open[full] = true
		defer delete(b.open, full)
		f := Field{Kind: Object}
		c := avroConv{op: avroRecord}
		for i := range n.Fields {
			sf := &n.Fields[i]
			at := join(path, sf.Name)
			b.fields++
			if b.fields > MaxFields {
				return fail("more than %d fields in the schema", MaxFields)
			}
			if why := checkName(sf.Name); why != "" {
				return fail("%s", why)
			}
			child, cc, keep, err := b.node(&sf.Type, n.Namespace, at, depth+1)
			if err != nil {
				return Field{}, avroConv{}, false, err
			}
			if !keep {
				continue
			}
			child.Name, child.Doc = sf.Name, sf.Doc
			f.Fields = append(f.Fields, child)
			c.fields = append(c.fields, cc)
		}
		f.Doc = n.Doc
		return f, c, len(f.Fields) > 0, nil
	case atype.Array:
		elem, ec, keep, err := b.node(n.Items, ns, join(path, elementName), depth+1)
		if err != nil {
			return Field{}, avroConv{}, false, err
		}
		if !keep {
			return fail("an array of records of no fields is not supported")
		}
		elem.Name, elem.Required = elementName, true
		return Field{Kind: Array, Elem: &elem}, avroConv{op: avroArray, elem: &ec}, true, nil
	case atype.Map:
		val, vc, keep, err := b.node(n.Values, ns, join(path, "value"), depth+2)
		if err != nil {
			return Field{}, avroConv{}, false, err
		}
		if !keep {
			return fail("a map of records of no fields is not supported")
		}
		val.Name = "value"
		entry := Field{Name: elementName, Kind: Object, Required: true, Fields: []Field{{Name: "key", Kind: String, Required: true}, val}}
		return Field{Kind: Array, Elem: &entry}, avroConv{op: avroMap, elem: &vc}, true, nil
	case atype.Union:
		var others []*avro.SchemaNode
		nulls := 0
		for i := range n.Branches {
			br := &n.Branches[i]
			if br.Type == atype.Null {
				nulls++
				continue
			}
			others = append(others, br)
		}
		switch len(others) {
		case 0:
			return fail(`a union of only "null" is not supported: a field that is always null has no column`)
		case 1:
			f, c, keep, err := b.node(others[0], ns, path, depth)
			f.Nullable = nulls > 0
			c.union = true
			return f, c, keep, err
		}
		return b.union(others, nulls > 0, ns, path, depth)
	case atype.Null:
		return fail(`"null" alone is not supported: a field that is always null has no column`)
	}
	return fail("unknown type %q", n.Type)
}

// union maps a union of several types (null aside) to an Object of a
// field per type.
func (b *avroBuilder) union(branches []*avro.SchemaNode, nullable bool, ns, path string, depth int) (Field, avroConv, bool, error) {
	b.tagged = true
	f := Field{Kind: Object, Nullable: nullable}
	c := avroConv{op: avroUnion, union: true}
	type branch struct {
		name, tag string
		node      *avro.SchemaNode
	}
	var bs []branch
	short := map[string]int{}
	for _, br := range branches {
		d := b.deref(br, ns)
		if d == nil {
			return Field{}, avroConv{}, false, &SchemaError{Path: path, Reason: fmt.Sprintf("unknown type %q", br.Type)}
		}
		name, tag := d.Type, d.Type
		switch d.Type {
		case atype.Record, "error", atype.Enum, atype.Fixed:
			tag = fullName(d.Name, d.Namespace)
			name = tag[strings.LastIndexByte(tag, '.')+1:]
		}
		short[name]++
		bs = append(bs, branch{name, tag, d})
	}
	for _, br := range bs {
		name := br.name
		if short[name] > 1 {
			name = strings.ReplaceAll(br.tag, ".", "_")
		}
		at := join(path, name)
		b.fields++
		if b.fields > MaxFields {
			return Field{}, avroConv{}, false, &SchemaError{Path: at, Reason: fmt.Sprintf("more than %d fields in the schema", MaxFields)}
		}
		child, cc, keep, err := b.node(br.node, ns, at, depth+1)
		if err != nil {
			return Field{}, avroConv{}, false, err
		}
		if !keep {
			continue
		}
		child.Name = name
		f.Fields = append(f.Fields, child)
		c.fields = append(c.fields, cc)
		c.tags = append(c.tags, br.tag)
	}
	return f, c, len(f.Fields) > 0, nil
}

// AvroDecoder decodes values written with one schema (the writer's) into
// the Fields of another (the reader's).
type AvroDecoder struct {
	resolved *avro.Schema
	reader   *AvroSchema
	opts     []avro.Opt
}

// Resolve returns a decoder of values written with writer into s's
// Fields, by Avro schema resolution. The error, a *MismatchError, says
// why writer's values cannot be read as s's.
func (s *AvroSchema) Resolve(writer *AvroSchema) (*AvroDecoder, error) {
	r, err := avro.Resolve(writer.schema, s.schema)
	if err != nil {
		return nil, &MismatchError{Reason: "the writer's schema cannot be resolved against the table's: " + oneLine(err)}
	}
	d := &AvroDecoder{resolved: r, reader: s}
	if s.tagged {
		d.opts = []avro.Opt{avro.TaggedUnions()}
	}
	return d, nil
}

// Decode decodes one Avro binary value, as Decode does a JSON one: one
// []any per Object aligned with its Fields, and the Go types of each
// Kind. A value that does not decode gives a *MismatchError.
func (d *AvroDecoder) Decode(value []byte) ([]any, error) {
	var v any
	rest, err := d.resolved.Decode(value, &v, d.opts...)
	if err != nil {
		return nil, &MismatchError{Reason: "the value does not decode as Avro: " + oneLine(err)}
	}
	if len(rest) > 0 {
		return nil, &MismatchError{Reason: fmt.Sprintf("%d bytes after the Avro value", len(rest))}
	}
	out, err := d.reader.conv.convert(d.reader.root, v, d.reader.tagged)
	if err != nil {
		return nil, err
	}
	return out.([]any), nil
}

// convert makes v, a value decoded into any (tagged: its unions' values
// tagged with their types), the value of f.
func (c *avroConv) convert(f *Field, v any, tagged bool) (any, error) {
	if v == nil {
		return nil, nil
	}
	if c.union && tagged {
		m, ok := v.(map[string]any)
		if !ok || len(m) != 1 {
			return nil, &MismatchError{Reason: fmt.Sprintf("a union's value is a %T, not tagged with its type", v)}
		}
		for tag, x := range m {
			if c.op == avroUnion {
				i := slices.Index(c.tags, tag)
				out := make([]any, len(f.Fields))
				if i < 0 {
					return out, nil // a type of no column: a record of no fields
				}
				y, err := c.fields[i].convert(&f.Fields[i], x, tagged)
				if err != nil {
					return nil, under(err, f.Fields[i].Name)
				}
				out[i] = y
				return out, nil
			}
			if v = x; v == nil {
				return nil, nil
			}
		}
	}
	bad := func() (any, error) {
		return nil, &MismatchError{Reason: fmt.Sprintf("a %T is not %s", v, f.Kind.phrase())}
	}
	switch c.op {
	case avroSame:
		switch x := v.(type) {
		case bool, string, []byte:
			return x, nil
		}
		return bad()
	case avroLong:
		switch x := v.(type) {
		case int64:
			return x, nil
		case int32:
			return int64(x), nil
		}
		return bad()
	case avroDouble:
		switch x := v.(type) {
		case float64:
			return x, nil
		case float32:
			return float64(x), nil
		}
		return bad()
	case avroMillis, avroMicros, avroNanos:
		x, ok := v.(int64)
		if !ok {
			return bad()
		}
		switch c.op {
		case avroMillis:
			if x > math.MaxInt64/1000 || x < math.MinInt64/1000 {
				return nil, &MismatchError{Reason: fmt.Sprintf("timestamp %d ms is out of range", x)}
			}
			return x * 1000, nil
		case avroNanos:
			return floorDiv(x, 1000), nil
		}
		return x, nil
	case avroDate:
		if x, ok := v.(int32); ok {
			return x, nil
		}
		return bad()
	case avroDecimal:
		b, ok := v.([]byte)
		if !ok {
			return bad()
		}
		return decimalString(b, c.scale), nil
	case avroRecord:
		m, ok := v.(map[string]any)
		if !ok {
			return bad()
		}
		out := make([]any, len(f.Fields))
		for i := range f.Fields {
			x, err := c.fields[i].convert(&f.Fields[i], m[f.Fields[i].Name], tagged)
			if err != nil {
				return nil, under(err, f.Fields[i].Name)
			}
			out[i] = x
		}
		return out, nil
	case avroArray:
		items, ok := v.([]any)
		if !ok {
			return bad()
		}
		out := make([]any, len(items))
		for i, it := range items {
			x, err := c.elem.convert(f.Elem, it, tagged)
			if err != nil {
				return nil, atIndex(err, i)
			}
			out[i] = x
		}
		return out, nil
	case avroMap:
		m, ok := v.(map[string]any)
		if !ok {
			return bad()
		}
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		out := make([]any, len(keys))
		valField := &f.Elem.Fields[1]
		for i, k := range keys {
			x, err := c.elem.convert(valField, m[k], tagged)
			if err != nil {
				return nil, under(err, k)
			}
			out[i] = []any{k, x}
		}
		return out, nil
	}
	return bad()
}

// floorDiv is x/d rounded toward negative infinity.
func floorDiv(x, d int64) int64 {
	q := x / d
	if x%d != 0 && x < 0 {
		q--
	}
	return q
}

// decimalString is the decimal of the two's complement big-endian
// unscaled value b at scale.
func decimalString(b []byte, scale int) string {
	n := new(big.Int).SetBytes(b)
	if len(b) > 0 && b[0]&0x80 != 0 {
		n.Sub(n, new(big.Int).Lsh(big.NewInt(1), uint(len(b))*8))
	}
	s := n.String()
	if scale <= 0 {
		return s
	}
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	if len(s) <= scale {
		s = strings.Repeat("0", scale-len(s)+1) + s
	}
	s = s[:len(s)-scale] + "." + s[len(s)-scale:]
	if neg {
		s = "-" + s
	}
	return s
}

// oneLine is err's message on one line, shortened to about 300 bytes.
func oneLine(err error) string {
	s := strings.Join(strings.Fields(err.Error()), " ")
	if len(s) > 300 {
		s = strings.ToValidUTF8(s[:300], "") + "…"
	}
	return s
}
