package main

import (
	"encoding"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// writeSchemas writes one schema per distinct kind, named the way
// kubeconform looks schemas up with
// -schema-location 'DIR/{{ .ResourceKind }}{{ .KindSuffix }}.json'.
func writeSchemas(dir string, kinds []schema.GroupVersionKind) (int, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, err
	}
	done := map[schema.GroupVersionKind]bool{}
	for _, gvk := range kinds {
		if done[gvk] {
			continue
		}
		done[gvk] = true
		t, ok := scheme.AllKnownTypes()[gvk]
		if !ok {
			return 0, fmt.Errorf("no Go type for %s (add its API group to the scheme in decode.go)", gvk)
		}
		data, err := json.Marshal(schemaOf(t))
		if err != nil {
			return 0, err
		}
		if err := os.WriteFile(filepath.Join(dir, schemaFile(gvk)), data, 0o644); err != nil {
			return 0, err
		}
	}
	return len(done), nil
}

// schemaFile is kubeconform's {{ .ResourceKind }}{{ .KindSuffix }}.json:
// the kind in lower case, the first label of the group, the version.
func schemaFile(gvk schema.GroupVersionKind) string {
	name := strings.ToLower(gvk.Kind)
	if gvk.Group != "" {
		name += "-" + strings.ToLower(strings.Split(gvk.Group, ".")[0])
	}
	return name + "-" + strings.ToLower(gvk.Version) + ".json"
}

type jsonSchema = map[string]any

// schemaOf is a draft-07 JSON schema for the Go type t (a struct), with
// every struct type reachable from it under "definitions".
func schemaOf(t reflect.Type) jsonSchema {
	g := &schemaGen{defs: map[string]jsonSchema{}}
	root := g.structSchema(t)
	root["$schema"] = "http://json-schema.org/draft-07/schema#"
	root["definitions"] = g.defs
	return root
}

type schemaGen struct {
	defs map[string]jsonSchema
}

var (
	jsonMarshaler = reflect.TypeFor[json.Marshaler]()
	textMarshaler = reflect.TypeFor[encoding.TextMarshaler]()

	// Types whose JSON form is not their Go shape.
	special = map[reflect.Type]jsonSchema{
		reflect.TypeFor[resource.Quantity]():    {"anyOf": []any{typ("string"), typ("number")}},
		reflect.TypeFor[intstr.IntOrString]():   {"anyOf": []any{typ("string"), typ("integer")}},
		reflect.TypeFor[metav1.Time]():          typ("string"),
		reflect.TypeFor[metav1.MicroTime]():     typ("string"),
		reflect.TypeFor[metav1.Duration]():      typ("string"),
		reflect.TypeFor[runtime.RawExtension](): {},
		reflect.TypeFor[metav1.FieldsV1]():      typ("object"),
	}
)

// typ is a schema for one JSON type or null: the API server treats a null
// scalar, list or map as an absent one. (Objects are plain $refs, which
// keeps kubeconform's messages short.)
func typ(name string) jsonSchema {
	return jsonSchema{"type": []any{name, "null"}}
}

func defName(t reflect.Type) string {
	return strings.ReplaceAll(t.PkgPath(), "/", ".") + "." + t.Name()
}

func (g *schemaGen) of(t reflect.Type) jsonSchema {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if s, ok := special[t]; ok {
		return s
	}
	if t.Implements(jsonMarshaler) || reflect.PointerTo(t).Implements(jsonMarshaler) ||
		t.Implements(textMarshaler) || reflect.PointerTo(t).Implements(textMarshaler) {
		return jsonSchema{} // its own encoding: anything goes
	}
	switch t.Kind() {
	case reflect.Bool:
		return typ("boolean")
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return typ("integer")
	case reflect.Float32, reflect.Float64:
		return typ("number")
	case reflect.String:
		return typ("string")
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return typ("string") // []byte is base64
		}
		s := typ("array")
		s["items"] = g.of(t.Elem())
		return s
	case reflect.Map:
		s := typ("object")
		s["additionalProperties"] = g.of(t.Elem())
		return s
	case reflect.Struct:
		name := defName(t)
		if _, ok := g.defs[name]; !ok {
			g.defs[name] = nil // placeholder: recursive types terminate
			g.defs[name] = g.structSchema(t)
		}
		return jsonSchema{"$ref": "#/definitions/" + name}
	case reflect.Interface:
		return jsonSchema{}
	}
	panic(fmt.Sprintf("no schema for %s", t))
}

// structSchema lists t's JSON fields, with inline (embedded) structs'
// fields merged in. A field without omitempty or omitzero is required,
// which is how k8s.io/api marks required fields.
func (g *schemaGen) structSchema(t reflect.Type) jsonSchema {
	props := jsonSchema{}
	var required []string
	var walk func(reflect.Type)
	walk = func(t reflect.Type) {
		for i := range t.NumField() {
			f := t.Field(i)
			tag := f.Tag.Get("json")
			if tag == "-" || (!f.IsExported() && !f.Anonymous) {
				continue
			}
			name, opts, _ := strings.Cut(tag, ",")
			if name == "" && (f.Anonymous || strings.Contains(opts, "inline")) {
				ft := f.Type
				if ft.Kind() == reflect.Pointer {
					ft = ft.Elem()
				}
				walk(ft)
				continue
			}
			if name == "" {
				name = f.Name
			}
			props[name] = g.of(f.Type)
			if !strings.Contains(opts, "omitempty") && !strings.Contains(opts, "omitzero") {
				required = append(required, name)
			}
		}
	}
	walk(t)
	s := jsonSchema{"type": "object", "properties": props, "additionalProperties": false}
	if len(required) > 0 {
		sort.Strings(required)
		s["required"] = required
	}
	return s
}
