package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/twmb/avro"

	"github.com/floe-io/floe/metadata"
)

// maxReferenceDepth bounds how deep references nest.
const maxReferenceDepth = 32

// schemaType returns the stored type of a request's schemaType: AVRO
// when absent.
func schemaType(t string) (string, error) {
	switch strings.ToUpper(t) {
	case "", metadata.SchemaAvro:
		return metadata.SchemaAvro, nil
	case metadata.SchemaProtobuf:
		return metadata.SchemaProtobuf, nil
	case metadata.SchemaJSON:
		return metadata.SchemaJSON, nil
	}
	return "", newAPIError(codeInvalidSchema, "Invalid schema: unknown schemaType %q (use AVRO, PROTOBUF or JSON)", t)
}

// prepared is a schema from a request, checked for what can be checked
// without the registry's state.
type prepared struct {
	schema metadata.StoredSchema
	// canonical decides, with the type and references, that two
	// registrations are of the same schema: for Avro and JSON Schema the
	// JSON with whitespace removed and object keys sorted (so formatting
	// does not make a new schema, while a changed default, doc or
	// logical type does); for Protobuf the text.
	canonical string
}

// prepare checks a schema's text for its type and stores Avro and JSON
// Schema text with its whitespace removed, as Confluent's registry does.
func prepare(typ, text string, refs []metadata.SchemaReference) (prepared, error) {
	if strings.TrimSpace(text) == "" {
		return prepared{}, newAPIError(codeInvalidSchema, "Invalid schema: the schema is empty")
	}
	if len(text) > metadata.MaxSchemaBytes {
		return prepared{}, newAPIError(codeSchemaTooLarge, "Schema too large: %d bytes, more than %d", len(text), metadata.MaxSchemaBytes)
	}
	p := prepared{schema: metadata.StoredSchema{Type: typ, Text: text, References: refs}, canonical: text}
	if typ == metadata.SchemaProtobuf {
		return p, nil
	}
	canonical, err := normalizeJSON(text)
	if err != nil {
		return prepared{}, newAPIError(codeInvalidSchema, "Invalid schema: not JSON: %v", err)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, []byte(text)); err != nil {
		return prepared{}, newAPIError(codeInvalidSchema, "Invalid schema: not JSON: %v", err)
	}
	p.schema.Text = compact.String()
	p.canonical = canonical
	return p, nil
}

// normalizeJSON returns one JSON value with whitespace removed, object
// keys sorted and numbers as written; anything after the value is an
// error.
func normalizeJSON(text string) (string, error) {
	dec := json.NewDecoder(strings.NewReader(text))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return "", err
	}
	if _, err := dec.Token(); err != io.EOF {
		return "", errors.New("more than one JSON value")
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "", err
	}
	return strings.TrimSuffix(b.String(), "\n"), nil
}

// parser parses registered schemas with their references, at one view of
// the registry, each ID once.
type parser struct {
	v      *metadata.SchemaView
	byID   map[int]*avro.Schema
	stored map[int]metadata.StoredSchema
}

func newParser(v *metadata.SchemaView) *parser {
	return &parser{v: v, byID: map[int]*avro.Schema{}, stored: map[int]metadata.StoredSchema{}}
}

// storedByID reads a schema once.
func (p *parser) storedByID(ctx context.Context, id int) (metadata.StoredSchema, error) {
	if s, ok := p.stored[id]; ok {
		return s, nil
	}
	s, err := p.v.Schema(ctx, id)
	if err != nil {
		return s, err
	}
	p.stored[id] = s
	return s, nil
}

// avroParse parses an Avro schema, its references' named types first
// (depth first, in the order they are listed), so that it can use them.
func (p *parser) avroParse(ctx context.Context, sch metadata.StoredSchema) (*avro.Schema, error) {
	var cache avro.SchemaCache
	seen := map[int]bool{}
	var load func(refs []metadata.SchemaReference, depth int) error
	load = func(refs []metadata.SchemaReference, depth int) error {
		if depth > maxReferenceDepth {
			return newAPIError(codeInvalidSchema, "Invalid schema: references nest more than %d deep", maxReferenceDepth)
		}
		for _, ref := range refs {
			sv, err := p.v.Version(ctx, ref.Subject, ref.Version)
			if errors.Is(err, metadata.ErrSchemaVersionNotFound) {
				return newAPIError(codeInvalidSchema, "Invalid schema: reference %s: subject %s has no version %d", ref.Name, ref.Subject, ref.Version)
			}
			if err != nil {
				return err
			}
			if seen[sv.ID] {
				continue
			}
			seen[sv.ID] = true
			dep, err := p.storedByID(ctx, sv.ID)
			if err != nil {
				return err
			}
			if dep.Type != metadata.SchemaAvro {
				return newAPIError(codeInvalidSchema, "Invalid schema: reference %s is a %s schema, not AVRO", ref.Name, dep.Type)
			}
			if err := load(dep.References, depth+1); err != nil {
				return err
			}
			if _, err := cache.Parse(dep.Text); err != nil {
				return newAPIError(codeInvalidSchema, "Invalid schema: reference %s (subject %s version %d): %v", ref.Name, ref.Subject, ref.Version, err)
			}
		}
		return nil
	}
	if err := load(sch.References, 1); err != nil {
		return nil, err
	}
	s, err := cache.Parse(sch.Text)
	if err != nil {
		return nil, newAPIError(codeInvalidSchema, "Invalid schema: %v", err)
	}
	return s, nil
}

// avroByID parses a registered Avro schema once.
func (p *parser) avroByID(ctx context.Context, id int) (*avro.Schema, error) {
	if s, ok := p.byID[id]; ok {
		return s, nil
	}
	stored, err := p.storedByID(ctx, id)
	if err != nil {
		return nil, err
	}
	s, err := p.avroParse(ctx, stored)
	if err != nil {
		return nil, fmt.Errorf("registered schema %d does not parse: %w", id, err)
	}
	p.byID[id] = s
	return s, nil
}

// validate checks that a schema (its references resolved) is valid for
// its type: an Avro schema must parse with its references; references of
// other types must exist, which resolving them checked.
func (p *parser) validate(ctx context.Context, sch metadata.StoredSchema) (*avro.Schema, error) {
	if sch.Type != metadata.SchemaAvro {
		return nil, nil
	}
	return p.avroParse(ctx, sch)
}

// incompatibilities checks a schema against registered versions in the
// direction a level asks, and returns why it is incompatible (nothing:
// it is compatible). Only Avro schemas are checked; a Protobuf or JSON
// Schema schema is compatible with any other of its type.
func (p *parser) incompatibilities(ctx context.Context, level string, sch metadata.StoredSchema, parsed *avro.Schema, against []metadata.SubjectVersion) ([]string, error) {
	backward := level == metadata.CompatBackward || level == metadata.CompatBackwardTransitive || level == metadata.CompatFull || level == metadata.CompatFullTransitive
	forward := level == metadata.CompatForward || level == metadata.CompatForwardTransitive || level == metadata.CompatFull || level == metadata.CompatFullTransitive
	var msgs []string
	for i := len(against) - 1; i >= 0; i-- {
		sv := against[i]
		old, err := p.storedByID(ctx, sv.ID)
		if err != nil {
			return nil, err
		}
		if old.Type != sch.Type {
			msgs = append(msgs, fmt.Sprintf("{oldSchemaVersion: %d, description: 'the schema type changes from %s to %s'}", sv.Version, old.Type, sch.Type))
			continue
		}
		if sch.Type != metadata.SchemaAvro || (!backward && !forward) {
			continue
		}
		oldParsed, err := p.avroByID(ctx, sv.ID)
		if err != nil {
			return nil, err
		}
		if backward {
			// The new schema reads what the old one wrote.
			if err := avro.CheckCompatibility(oldParsed, parsed); err != nil {
				msgs = append(msgs, fmt.Sprintf("{oldSchemaVersion: %d, compatibility: '%s', description: 'the new schema cannot read data written with version %d: %v'}", sv.Version, level, sv.Version, err))
			}
		}
		if forward {
			// The old schema reads what the new one writes.
			if err := avro.CheckCompatibility(parsed, oldParsed); err != nil {
				msgs = append(msgs, fmt.Sprintf("{oldSchemaVersion: %d, compatibility: '%s', description: 'version %d cannot read data written with the new schema: %v'}", sv.Version, level, sv.Version, err))
			}
		}
	}
	return msgs, nil
}

// checkAgainst returns the versions a level checks a new schema against:
// none for NONE, the latest live version, or every live version for the
// transitive levels.
func checkAgainst(level string, versions []metadata.SubjectVersion) []metadata.SubjectVersion {
	live := metadata.LiveVersions(versions)
	switch {
	case level == metadata.CompatNone || len(live) == 0:
		return nil
	case strings.HasSuffix(level, "_TRANSITIVE"):
		return live
	}
	return live[len(live)-1:]
}
