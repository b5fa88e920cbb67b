package exporter

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/floe-io/floe/internal/schemaregistry"
	"github.com/floe-io/floe/internal/valueschema"
)

// Values in the Confluent wire format (floe.iceberg.value.format avro,
// protobuf, or json without an inline schema), decoded by schemas of a
// Confluent-compatible schema registry.
//
// The table's columns follow the latest schema of the topic's subject,
// read once per pass (the reader's schema). Each value names the schema
// it was written with (the writer's), read by ID and cached; its fields
// are read as the reader's by name (Avro: schema resolution). A value
// that cannot be read this way is a dead letter: no magic byte, an ID
// the registry says it does not have, bytes that do not decode, a
// writer's schema that does not resolve against the reader's. A registry
// that does not answer is not the value's fault: the commit fails, and
// is tried again as other failed exports are.
//
// A value whose writer's schema has a higher ID than the reader's was
// probably written with a version registered since the pass read the
// latest: its new fields would be lost. The commit is then abandoned,
// the latest read again and the table evolved, and the commit made anew,
// once a pass; a writer still newer after that (a schema of another
// subject) is read as the reader's.

// errNewerSchema: a value was written with a schema newer than the
// pass's latest.
var errNewerSchema = errors.New("exporter: a value was written with a schema newer than the subject's latest read")

// maxWriters bounds the writer schemas a topic holds decoders of.
const maxWriters = 256

// registryValues decodes a topic's values by the registry's schemas,
// for one latest schema of its subject. Its decode runs in the commit's
// goroutine only.
type registryValues struct {
	client  *schemaregistry.Client
	format  string
	subject string
	latest  schemaregistry.Schema
	root    *valueschema.Field
	// The reader's schema, by format.
	avro      *valueschema.AvroSchema
	protoFile *valueschema.ProtobufSchema
	proto     *valueschema.ProtobufMessage // the file's first message
	json      *valueschema.Field
	// allowNewer reads values of newer writers' schemas rather than
	// failing with errNewerSchema (set after the latest was read again).
	allowNewer bool
	writers    map[writerKey]*writerDecoder
	indexes    []int // reused message index buffer
}

// writerKey is a writer's schema ID and, for Protobuf, message indexes.
type writerKey struct {
	id      int
	indexes string
}

// writerDecoder decodes the values of one writer's schema, or says why
// they are dead letters.
type writerDecoder struct {
	decode func([]byte) ([]any, error)
	bad    string
}

// latestSchema reads the latest schema of the topic's subject.
func latestSchema(ctx context.Context, client *schemaregistry.Client, s TopicSettings) (schemaregistry.Schema, error) {
	if client == nil {
		return schemaregistry.Schema{}, fmt.Errorf("%s=%s needs a schema registry: run the exporter with --schema-registry-url", cfgValueFormat, s.ValueFormat)
	}
	latest, err := client.Latest(ctx, s.ValueSubject)
	if err != nil {
		return schemaregistry.Schema{}, fmt.Errorf("reading the latest schema of subject %s: %w", s.ValueSubject, err)
	}
	return latest, nil
}

// newRegistryValues builds the reader's Fields of the subject's latest
// schema.
func newRegistryValues(ctx context.Context, client *schemaregistry.Client, s TopicSettings, latest schemaregistry.Schema) (*registryValues, error) {
	var err error
	rv := &registryValues{client: client, format: s.ValueFormat, subject: s.ValueSubject, latest: latest, writers: map[writerKey]*writerDecoder{}}
	if err := rv.checkType(latest); err != nil {
		return nil, fmt.Errorf("subject %s: %v", s.ValueSubject, err)
	}
	fail := func(err error) (*registryValues, error) {
		return nil, fmt.Errorf("the latest schema of subject %s (ID %d, version %d): %w", s.ValueSubject, latest.ID, latest.Version, err)
	}
	switch rv.format {
	case formatAvro:
		if rv.avro, err = parseAvro(ctx, client, latest); err != nil {
			return fail(err)
		}
		rv.root = rv.avro.Field()
	case formatProtobuf:
		if rv.protoFile, err = parseProtobuf(ctx, client, latest); err != nil {
			return fail(err)
		}
		// The columns are the file's first message's, as Confluent's
		// serializers take by default.
		if rv.proto, err = rv.protoFile.Message([]int{0}); err != nil {
			return fail(err)
		}
		rv.root = rv.proto.Field()
	default:
		if len(latest.References) > 0 {
			return fail(errors.New("JSON Schema references are not supported; write the referenced schemas inline"))
		}
		if rv.json, err = valueschema.ParseJSONSchema([]byte(latest.Text)); err != nil {
			return fail(err)
		}
		rv.root = rv.json
	}
	return rv, nil
}

// schemaTypes are the registry's schema type of each format.
var schemaTypes = map[string]schemaregistry.Type{formatAvro: schemaregistry.Avro, formatProtobuf: schemaregistry.Protobuf, formatJSON: schemaregistry.JSON}

func (rv *registryValues) checkType(s schemaregistry.Schema) error {
	if want := schemaTypes[rv.format]; s.Type != want {
		return fmt.Errorf("schema %d is %s, not %s (%s=%s)", s.ID, s.Type, want, cfgValueFormat, rv.format)
	}
	return nil
}

func parseAvro(ctx context.Context, client *schemaregistry.Client, s schemaregistry.Schema) (*valueschema.AvroSchema, error) {
	refs, err := client.References(ctx, s)
	if err != nil {
		return nil, err
	}
	texts := make([]string, len(refs))
	for i, r := range refs {
		texts[i] = r.Text
	}
	return valueschema.ParseAvroSchema(s.Text, texts)
}

func parseProtobuf(ctx context.Context, client *schemaregistry.Client, s schemaregistry.Schema) (*valueschema.ProtobufSchema, error) {
	refs, err := client.References(ctx, s)
	if err != nil {
		return nil, err
	}
	imports := make(map[string]string, len(refs))
	for _, r := range refs {
		imports[r.Name] = r.Text
	}
	return valueschema.ParseProtobufSchema(ctx, s.Text, imports)
}

// decode decodes a value. An error matching valueschema.ErrMismatch
// makes it a dead letter; any other (the registry did not answer,
// errNewerSchema) fails the commit.
func (rv *registryValues) decode(ctx context.Context, value []byte) ([]any, error) {
	id, rest, err := schemaregistry.ParseHeader(value)
	if err != nil {
		return nil, &valueschema.MismatchError{Reason: err.Error()}
	}
	k := writerKey{id: id}
	if rv.format == formatProtobuf {
		rv.indexes, rest, err = schemaregistry.ParseMessageIndexes(rest, rv.indexes)
		if err != nil {
			return nil, &valueschema.MismatchError{Reason: err.Error()}
		}
		if len(rv.indexes) != 1 || rv.indexes[0] != 0 {
			k.indexes = fmt.Sprint(rv.indexes)
		}
	}
	w := rv.writers[k]
	if w == nil {
		if w, err = rv.writer(ctx, id); err != nil {
			return nil, err
		}
		if len(rv.writers) >= maxWriters {
			clear(rv.writers)
		}
		rv.writers[k] = w
	}
	if w.bad != "" {
		return nil, &valueschema.MismatchError{Reason: w.bad}
	}
	return w.decode(rest)
}

// writer builds the decoder of values of schema id (and rv.indexes).
func (rv *registryValues) writer(ctx context.Context, id int) (*writerDecoder, error) {
	if id > rv.latest.ID && !rv.allowNewer {
		return nil, errNewerSchema
	}
	bad := func(format string, args ...any) (*writerDecoder, error) {
		return &writerDecoder{bad: fmt.Sprintf("schema ID %d: ", id) + fmt.Sprintf(format, args...)}, nil
	}
	// fetchErr sorts a registry error: an answer that the schema (or a
	// reference) does not exist makes the values dead letters; anything
	// else fails the commit.
	fetchErr := func(err error) (*writerDecoder, error) {
		var re *schemaregistry.Error
		if errors.As(err, &re) && re.Status == 404 {
			return bad("the registry does not have it (%d %s)", re.Code, re.Message)
		}
		if errors.Is(err, valueschema.ErrInvalidSchema) {
			return bad("%v", err)
		}
		return nil, fmt.Errorf("reading schema ID %d from the registry: %w", id, err)
	}
	if id == rv.latest.ID {
		switch rv.format {
		case formatAvro:
			return rv.avroWriter(rv.avro)
		case formatJSON:
			return &writerDecoder{decode: rv.json.Decode}, nil
		}
	}
	s, err := rv.client.ByID(ctx, id)
	if err != nil {
		return fetchErr(err)
	}
	if err := rv.checkType(s); err != nil {
		return bad("%v", err)
	}
	switch rv.format {
	case formatAvro:
		ws, err := parseAvro(ctx, rv.client, s)
		if err != nil {
			return fetchErr(err)
		}
		return rv.avroWriter(ws)
	case formatProtobuf:
		ps := rv.protoFile
		if id != rv.latest.ID {
			if ps, err = parseProtobuf(ctx, rv.client, s); err != nil {
				return fetchErr(err)
			}
		}
		msg, err := ps.Message(rv.indexes)
		if err != nil {
			return bad("%v", err)
		}
		d, err := rv.proto.Resolve(msg)
		if err != nil {
			return bad("message %s cannot be read as the table's %s: %v", msg.Name(), rv.proto.Name(), err)
		}
		return &writerDecoder{decode: d.Decode}, nil
	}
	// JSON: the values are read by the reader's schema, whatever the
	// writer's said.
	return &writerDecoder{decode: rv.json.Decode}, nil
}

func (rv *registryValues) avroWriter(ws *valueschema.AvroSchema) (*writerDecoder, error) {
	d, err := rv.avro.Resolve(ws)
	if err != nil {
		return &writerDecoder{bad: err.Error()}, nil
	}
	return &writerDecoder{decode: d.Decode}, nil
}

// describe names the reader's schema in logs.
func (rv *registryValues) describe() string {
	return rv.subject + " version " + strconv.Itoa(rv.latest.Version) + " (ID " + strconv.Itoa(rv.latest.ID) + ")"
}
