package valueschema

import "errors"

var (
	// ErrInvalidSchema: ParseJSONSchema refused the schema. The error is a
	// *SchemaError.
	ErrInvalidSchema = errors.New("valueschema: invalid schema")
	// ErrMismatch: Decode refused a value that does not match the schema
	// (or is not JSON). The error is a *MismatchError.
	ErrMismatch = errors.New("valueschema: value does not match the schema")
	// ErrInvalidPartitionBy: ParsePartitionBy refused the spec.
	ErrInvalidPartitionBy = errors.New("valueschema: invalid partitioning")
)

// SchemaError says why ParseJSONSchema refused a schema and where. It
// matches ErrInvalidSchema with errors.Is.
type SchemaError struct {
	// Path is the JSON path of the offending schema node in the document,
	// e.g. properties.user.properties.tags; empty for the root.
	Path   string
	Reason string
}

func (e *SchemaError) Error() string        { return withPath(e.Path, e.Reason) }
func (e *SchemaError) Is(target error) bool { return target == ErrInvalidSchema }

// MismatchError says why Decode refused a value and where. It matches
// ErrMismatch with errors.Is.
type MismatchError struct {
	// Path is the field in the value, e.g. user.age or tags[2]; empty when
	// the reason concerns the value as a whole or a field of the root
	// (missing required field "id").
	Path   string
	Reason string
}

func (e *MismatchError) Error() string        { return withPath(e.Path, e.Reason) }
func (e *MismatchError) Is(target error) bool { return target == ErrMismatch }

// partitionError is ParsePartitionBy's error: a message that matches
// ErrInvalidPartitionBy.
type partitionError struct{ msg string }

func (e *partitionError) Error() string        { return e.msg }
func (e *partitionError) Is(target error) bool { return target == ErrInvalidPartitionBy }

func withPath(path, reason string) string {
	if path == "" {
		return reason
	}
	return path + ": " + reason
}
