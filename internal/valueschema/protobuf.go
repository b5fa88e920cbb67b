package valueschema

import (
	"context"
	"encoding/base64"
	"fmt"
	"io/fs"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/bufbuild/protocompile"
	"github.com/bufbuild/protocompile/reporter"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
)

// Protobuf schemas and values. A .proto file (from a schema registry)
// is compiled with the well-known types (google/protobuf/*.proto) and
// the files it imports; a message of it maps to a tree of Field, its
// fields becoming the table's columns in the order the message declares
// them:
//
//	bool                                     Boolean
//	int32, sint32, sfixed32, uint32, fixed32,
//	int64, sint64, sfixed64                  Long
//	uint64, fixed64                          Long (a value above 2^63-1
//	                                         does not match)
//	float, double                            Double
//	string                                   String
//	bytes                                    Binary
//	enum                                     String: the value's name (its
//	                                         number when the enum lacks it)
//	message                                  Object (a message of no
//	                                         fields has no column)
//	repeated T                               Array
//	map<K, V>                                Array of Object {key K, value
//	                                         V} in key order
//	oneof                                    each member an optional field
//	google.protobuf.Timestamp                Timestamp
//	google.protobuf.DoubleValue, FloatValue  Double, Nullable
//	Int64Value, UInt64Value, Int32Value,
//	UInt32Value                              Long, Nullable
//	BoolValue, StringValue, BytesValue       Boolean, String, Binary,
//	                                         Nullable
//	google.protobuf.Struct, Value, ListValue String: the value as JSON
//
// A field with presence (a message, a oneof member, a proto2 or proto3
// optional field) that is not set is null; one without (a proto3
// scalar) reads as its value, the zero value when not written, as
// Protobuf defines. Repeated fields and maps are empty, not null, when
// not written. Recursive messages (a message that contains itself) are
// refused.
//
// Values are decoded with the writer's message and mapped to the
// reader's Fields by field name; fields of the writer the reader lacks
// are ignored, and reader fields the writer lacks are null.

// ProtobufSchema is a compiled .proto file.
type ProtobufSchema struct {
	file protoreflect.FileDescriptor
}

// maxProtoBytes bounds a .proto file and the files it imports.
const maxProtoBytes = 1 << 20

// protoMainFile is the name the schema's own file is compiled as.
const protoMainFile = "floe/registry/schema.proto"

// ParseProtobufSchema compiles a .proto file; imports are the files it
// imports (registry references) by their import paths. The well-known
// types (google/protobuf/*.proto) need not be given, and are the
// compiler's own when they are. A file may also be given as the base64
// of its serialized FileDescriptorProto, as some serializers register
// them. The error is a *SchemaError.
func ParseProtobufSchema(ctx context.Context, text string, imports map[string]string) (*ProtobufSchema, error) {
	total := len(text)
	files := make(map[string]protocompile.SearchResult, len(imports)+1)
	for name, src := range imports {
		total += len(src)
		if strings.HasPrefix(name, "google/protobuf/") {
			continue
		}
		files[name] = protoSource(name, src)
	}
	if total > maxProtoBytes {
		return nil, &SchemaError{Reason: fmt.Sprintf("the .proto files are %d bytes; at most %d", total, maxProtoBytes)}
	}
	main := protoMainFile
	if fd := protoDescriptor(text); fd != nil && fd.GetName() != "" {
		main = fd.GetName()
	}
	files[main] = protoSource(main, text)
	var first error
	c := protocompile.Compiler{
		Resolver: protocompile.WithStandardImports(protocompile.ResolverFunc(func(path string) (protocompile.SearchResult, error) {
			if r, ok := files[path]; ok {
				return r, nil
			}
			return protocompile.SearchResult{}, fmt.Errorf("%s: not among the schema's references: %w", path, fs.ErrNotExist)
		})),
		Reporter: reporter.NewReporter(func(err reporter.ErrorWithPos) error {
			if first == nil {
				first = err
			}
			return err
		}, nil),
	}
	compiled, err := c.Compile(ctx, main)
	if err != nil {
		if first != nil {
			err = first
		}
		return nil, &SchemaError{Reason: "invalid .proto: " + strings.ReplaceAll(oneLine(err), protoMainFile+":", "")}
	}
	return &ProtobufSchema{file: compiled[0]}, nil
}

// protoSource is a file for the compiler: its descriptor when src is one
// in base64, else its source.
func protoSource(name, src string) protocompile.SearchResult {
	if fd := protoDescriptor(src); fd != nil {
		fd.Name = proto.String(name)
		return protocompile.SearchResult{Proto: fd}
	}
	return protocompile.SearchResult{Source: strings.NewReader(src)}
}

// protoDescriptor reads src as the base64 of a serialized
// FileDescriptorProto, or returns nil. .proto source is never valid
// base64 of one: it has spaces, semicolons or quotes.
func protoDescriptor(src string) *descriptorpb.FileDescriptorProto {
	src = strings.TrimSpace(src)
	if src == "" || strings.ContainsAny(src, " \t\n;\"{") {
		return nil
	}
	b, err := base64.StdEncoding.DecodeString(src)
	if err != nil {
		return nil
	}
	fd := &descriptorpb.FileDescriptorProto{}
	if proto.Unmarshal(b, fd) != nil || len(fd.MessageType) == 0 && len(fd.EnumType) == 0 {
		return nil
	}
	return fd
}

// Message returns the message that indexes (Confluent's message indexes:
// the top-level message, then messages nested in it) name, as a
// ProtobufMessage.
func (s *ProtobufSchema) Message(indexes []int) (*ProtobufMessage, error) {
	if len(indexes) == 0 {
		indexes = []int{0}
	}
	msgs := s.file.Messages()
	var md protoreflect.MessageDescriptor
	for _, i := range indexes {
		if i < 0 || i >= msgs.Len() {
			return nil, &SchemaError{Reason: fmt.Sprintf("message indexes %v name no message of the schema", indexes)}
		}
		md = msgs.Get(i)
		msgs = md.Messages()
	}
	if md.IsMapEntry() {
		return nil, &SchemaError{Reason: fmt.Sprintf("message indexes %v name a map entry", indexes)}
	}
	b := &protoBuilder{open: map[protoreflect.FullName]bool{}}
	root, keep, err := b.message(md, "", 0)
	if err != nil {
		return nil, err
	}
	if !keep {
		return nil, &SchemaError{Reason: fmt.Sprintf("message %s has no fields", md.FullName())}
	}
	root.Required = true
	return &ProtobufMessage{md: md, root: &root}, nil
}

// ProtobufMessage is a message of a .proto file and its fields as a
// tree of Field.
type ProtobufMessage struct {
	md   protoreflect.MessageDescriptor
	root *Field
}

// Field is the message as an Object.
func (m *ProtobufMessage) Field() *Field { return m.root }

// Name is the message's full name.
func (m *ProtobufMessage) Name() string { return string(m.md.FullName()) }

// Well-known messages with a mapping of their own.
const (
	pbTimestamp = "google.protobuf.Timestamp"
	pbStruct    = "google.protobuf.Struct"
	pbValue     = "google.protobuf.Value"
	pbListValue = "google.protobuf.ListValue"
)

// wrapperKinds are the kinds of the wrapper messages' values.
var wrapperKinds = map[protoreflect.FullName]Kind{
	"google.protobuf.DoubleValue": Double, "google.protobuf.FloatValue": Double,
	"google.protobuf.Int64Value": Long, "google.protobuf.UInt64Value": Long,
	"google.protobuf.Int32Value": Long, "google.protobuf.UInt32Value": Long,
	"google.protobuf.BoolValue": Boolean, "google.protobuf.StringValue": String,
	"google.protobuf.BytesValue": Binary,
}

type protoBuilder struct {
	open   map[protoreflect.FullName]bool
	fields int
}

// message maps md, met at path, depth levels below the root. keep is
// false for a message of no fields, which has no column.
func (b *protoBuilder) message(md protoreflect.MessageDescriptor, path string, depth int) (Field, bool, error) {
	if b.open[md.FullName()] {
		return Field{}, false, &SchemaError{Path: path, Reason: fmt.Sprintf("message %s contains itself: recursive messages are not supported", md.FullName())}
	}
	b.open[md.FullName()] = true
	defer delete(b.open, md.FullName())
	f := Field{Kind: Object}
	fds := md.Fields()
	for i := range fds.Len() {
		fd := fds.Get(i)
		name := string(fd.Name())
		at := join(path, name)
		b.fields++
		if b.fields > MaxFields {
			return Field{}, false, &SchemaError{Path: at, Reason: fmt.Sprintf("more than %d fields in the schema", MaxFields)}
		}
		child, keep, err := b.field(fd, at, depth+1)
		if err != nil {
			return Field{}, false, err
		}
		if keep {
			child.Name = name
			child.Nullable = fd.HasPresence()
			f.Fields = append(f.Fields, child)
		}
	}
	return f, len(f.Fields) > 0, nil
}

// field maps a field, repeated or a map as such.
func (b *protoBuilder) field(fd protoreflect.FieldDescriptor, path string, depth int) (Field, bool, error) {
	if depth > MaxDepth {
		return Field{}, false, &SchemaError{Path: path, Reason: fmt.Sprintf("nested more than %d levels deep", MaxDepth)}
	}
	switch {
	case fd.IsMap():
		entry, keep, err := b.message(fd.Message(), path, depth)
		if err != nil || !keep {
			return Field{}, false, err
		}
		if len(entry.Fields) != 2 {
			return Field{}, false, &SchemaError{Path: path, Reason: "a map of messages of no fields is not supported"}
		}
		entry.Name, entry.Required = elementName, true
		entry.Fields[0].Required = true
		return Field{Kind: Array, Elem: &entry}, true, nil
	case fd.IsList():
		elem, keep, err := b.single(fd, join(path, elementName), depth+1)
		if err != nil || !keep {
			return Field{}, false, err
		}
		elem.Name, elem.Required = elementName, true
		return Field{Kind: Array, Elem: &elem}, true, nil
	}
	return b.single(fd, path, depth)
}

// single maps one value of a field.
func (b *protoBuilder) single(fd protoreflect.FieldDescriptor, path string, depth int) (Field, bool, error) {
	switch fd.Kind() {
	case protoreflect.BoolKind:
		return Field{Kind: Boolean}, true, nil
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind, protoreflect.Uint32Kind, protoreflect.Fixed32Kind,
		protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind, protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return Field{Kind: Long}, true, nil
	case protoreflect.FloatKind, protoreflect.DoubleKind:
		return Field{Kind: Double}, true, nil
	case protoreflect.StringKind, protoreflect.EnumKind:
		return Field{Kind: String}, true, nil
	case protoreflect.BytesKind:
		return Field{Kind: Binary}, true, nil
	case protoreflect.MessageKind, protoreflect.GroupKind:
		md := fd.Message()
		switch name := md.FullName(); {
		case name == pbTimestamp:
			return Field{Kind: Timestamp, Nullable: true}, true, nil
		case name == pbStruct || name == pbValue || name == pbListValue:
			return Field{Kind: String, Nullable: true}, true, nil
		case wrapperKinds[name] != 0:
			return Field{Kind: wrapperKinds[name], Nullable: true}, true, nil
		}
		return b.message(md, path, depth)
	}
	return Field{}, false, &SchemaError{Path: path, Reason: fmt.Sprintf("field type %s is not supported", fd.Kind())}
}

// ProtobufDecoder decodes values of one message (the writer's) into the
// Fields of another (the reader's).
type ProtobufDecoder struct {
	md     protoreflect.MessageDescriptor
	plan   *protoPlan
	reader *Field
}

// protoPlan is where a reader Object's fields are in a writer message.
type protoPlan struct {
	fds  []protoreflect.FieldDescriptor // aligned with the Object's Fields; nil: the writer lacks it
	subs []*protoPlan                   // for fields of message values (and map entries): their plan
}

// Resolve returns a decoder of values of writer into m's Fields, fields
// matched by name. The error, a *MismatchError, names a field whose type
// differs.
func (m *ProtobufMessage) Resolve(writer *ProtobufMessage) (*ProtobufDecoder, error) {
	plan, err := resolveProto(m.root, writer.md, "", 0)
	if err != nil {
		return nil, err
	}
	return &ProtobufDecoder{md: writer.md, plan: plan, reader: m.root}, nil
}

func resolveProto(f *Field, md protoreflect.MessageDescriptor, path string, depth int) (*protoPlan, error) {
	if depth > MaxDepth+1 {
		return nil, &MismatchError{Path: path, Reason: "the writer's message is nested too deep"}
	}
	p := &protoPlan{fds: make([]protoreflect.FieldDescriptor, len(f.Fields)), subs: make([]*protoPlan, len(f.Fields))}
	b := &protoBuilder{open: map[protoreflect.FullName]bool{}}
	for i := range f.Fields {
		rf := &f.Fields[i]
		fd := md.Fields().ByName(protoreflect.Name(rf.Name))
		if fd == nil {
			continue
		}
		at := join(path, rf.Name)
		wf, keep, err := b.field(fd, at, 1)
		if err != nil {
			return nil, &MismatchError{Path: at, Reason: "the writer's field cannot be read: " + err.Error()}
		}
		if !keep {
			continue
		}
		if !sameKinds(rf, &wf) {
			return nil, &MismatchError{Path: at, Reason: fmt.Sprintf("the writer's field is %s, the table's %s", describeKind(&wf), describeKind(rf))}
		}
		p.fds[i] = fd
		// Message values (or map entries, or a list's messages) map
		// field by field.
		var obj *Field
		switch {
		case rf.Kind == Object:
			obj = rf
		case rf.Kind == Array && rf.Elem.Kind == Object:
			obj = rf.Elem
		}
		if obj != nil {
			sub, err := resolveProto(obj, fd.Message(), at, depth+1)
			if err != nil {
				return nil, err
			}
			p.subs[i] = sub
		}
	}
	return p, nil
}

// sameKinds reports whether a writer field's kinds are the reader's, at
// its level and, for arrays, its items' (objects are matched field by
// field).
func sameKinds(r, w *Field) bool {
	if r.Kind != w.Kind {
		return false
	}
	if r.Kind == Array {
		return sameKinds(r.Elem, w.Elem)
	}
	return true
}

func describeKind(f *Field) string {
	if f.Kind == Array {
		return "a list of " + describeKind(f.Elem)
	}
	return f.Kind.String()
}

// Decode decodes one Protobuf binary value, as Decode does a JSON one.
// A value that does not decode gives a *MismatchError.
func (d *ProtobufDecoder) Decode(value []byte) (vals []any, err error) {
	msg := dynamicpb.NewMessage(d.md)
	defer func() {
		// The Protobuf library panics on some malformed map entries of
		// dynamic messages (a key of the wrong wire type): such a value
		// is a bad value, not a reason to stop exporting.
		if r := recover(); r != nil {
			vals, err = nil, &MismatchError{Reason: fmt.Sprintf("the value does not decode as Protobuf message %s: %v", d.md.FullName(), r)}
		}
	}()
	if err := (proto.UnmarshalOptions{DiscardUnknown: true, RecursionLimit: 2 * MaxDepth}).Unmarshal(value, msg); err != nil {
		return nil, &MismatchError{Reason: "the value does not decode as Protobuf message " + string(d.md.FullName()) + ": " + oneLine(err)}
	}
	return d.plan.message(d.reader, msg)
}

func (p *protoPlan) message(f *Field, m protoreflect.Message) ([]any, error) {
	out := make([]any, len(f.Fields))
	for i, fd := range p.fds {
		if fd == nil || fd.HasPresence() && !m.Has(fd) {
			continue
		}
		v, err := p.value(i, &f.Fields[i], fd, m.Get(fd))
		if err != nil {
			return nil, under(err, f.Fields[i].Name)
		}
		out[i] = v
	}
	return out, nil
}

// value converts the value of the plan's ith field, f.
func (p *protoPlan) value(i int, f *Field, fd protoreflect.FieldDescriptor, v protoreflect.Value) (any, error) {
	sub := p.subs[i]
	switch {
	case fd.IsMap():
		m := v.Map()
		keys := make([]protoreflect.MapKey, 0, m.Len())
		m.Range(func(k protoreflect.MapKey, _ protoreflect.Value) bool {
			keys = append(keys, k)
			return true
		})
		slices.SortFunc(keys, compareMapKeys)
		out := make([]any, len(keys))
		for j, k := range keys {
			entry := make([]any, len(f.Elem.Fields))
			for e, efd := range sub.fds {
				var (
					x   any
					err error
				)
				switch {
				case efd == nil:
					continue
				case efd.Number() == 1: // the entry's key
					x, err = scalar(&f.Elem.Fields[e], efd, k.Value(), nil)
				default: // its value
					x, err = scalar(&f.Elem.Fields[e], efd, m.Get(k), sub.subs[e])
				}
				if err != nil {
					return nil, under(err, fmt.Sprint(k.Interface()))
				}
				entry[e] = x
			}
			out[j] = entry
		}
		return out, nil
	case fd.IsList():
		l := v.List()
		out := make([]any, l.Len())
		for j := range l.Len() {
			x, err := scalar(f.Elem, fd, l.Get(j), sub)
			if err != nil {
				return nil, atIndex(err, j)
			}
			out[j] = x
		}
		return out, nil
	}
	return scalar(f, fd, v, sub)
}

func compareMapKeys(a, b protoreflect.MapKey) int {
	switch x := a.Interface().(type) {
	case string:
		return strings.Compare(x, b.String())
	case bool:
		switch {
		case x == b.Bool():
			return 0
		case x:
			return 1
		}
		return -1
	case int32, int64:
		return cmpOrdered(a.Int(), b.Int())
	}
	return cmpOrdered(a.Uint(), b.Uint())
}

func cmpOrdered[T int64 | uint64](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// scalar converts one value of fd (an element, for a list) to f's kind.
func scalar(f *Field, fd protoreflect.FieldDescriptor, v protoreflect.Value, sub *protoPlan) (any, error) {
	switch fd.Kind() {
	case protoreflect.BoolKind:
		return v.Bool(), nil
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind,
		protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return v.Int(), nil
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind, protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		u := v.Uint()
		if u > math.MaxInt64 {
			return nil, &MismatchError{Reason: fmt.Sprintf("%d is out of range for a 64-bit signed integer", u)}
		}
		return int64(u), nil
	case protoreflect.FloatKind, protoreflect.DoubleKind:
		return v.Float(), nil
	case protoreflect.StringKind:
		return v.String(), nil
	case protoreflect.BytesKind:
		return v.Bytes(), nil
	case protoreflect.EnumKind:
		n := v.Enum()
		if ev := fd.Enum().Values().ByNumber(n); ev != nil {
			return string(ev.Name()), nil
		}
		return strconv.Itoa(int(n)), nil
	}
	m := v.Message()
	switch name := m.Descriptor().FullName(); {
	case name == pbTimestamp:
		fields := m.Descriptor().Fields()
		secs, nanos := m.Get(fields.ByNumber(1)).Int(), m.Get(fields.ByNumber(2)).Int()
		if secs > math.MaxInt64/1_000_000-1 || secs < math.MinInt64/1_000_000+1 {
			return nil, &MismatchError{Reason: fmt.Sprintf("timestamp of %d seconds is out of range", secs)}
		}
		return secs*1_000_000 + floorDiv(nanos, 1000), nil
	case name == pbStruct || name == pbValue || name == pbListValue:
		b, err := protojson.Marshal(m.Interface())
		if err != nil {
			return nil, &MismatchError{Reason: oneLine(err)}
		}
		return string(b), nil
	case wrapperKinds[name] != 0:
		vfd := m.Descriptor().Fields().ByNumber(1)
		return scalar(f, vfd, m.Get(vfd), nil)
	}
	if sub == nil {
		return nil, &MismatchError{Reason: "no plan for message " + string(m.Descriptor().FullName())}
	}
	return sub.message(f, m)
}
