package schemaregistry

import (
	"errors"
	"fmt"
)

var (
	// ErrNotFound: the registry has no such subject, version or schema
	// (it answered 404). The error is an *Error.
	ErrNotFound = errors.New("schemaregistry: not found")
	// ErrWireFormat: a value is not in the Confluent wire format: no
	// magic byte 0, shorter than its header, or bad message indexes.
	ErrWireFormat = errors.New("schemaregistry: not in the Confluent wire format")
)

// Registry error codes of 404 answers.
const (
	CodeSubjectNotFound = 40401
	CodeVersionNotFound = 40402
	CodeSchemaNotFound  = 40403
)

// Error is an error answer of the registry: its HTTP status, and the
// error_code and message of its body when it had them.
type Error struct {
	Status  int    // HTTP status
	Code    int    // error_code, or the status when the body had none
	Message string // message, or the body's start
	Request string // method and path, e.g. GET /schemas/ids/7
}

func (e *Error) Error() string {
	return fmt.Sprintf("schema registry: %s: %d %s", e.Request, e.Code, e.Message)
}

// Is matches ErrNotFound for a 404.
func (e *Error) Is(target error) bool { return target == ErrNotFound && e.Status == 404 }

// wireError is ErrWireFormat with a reason.
type wireError struct{ reason string }

func (e *wireError) Error() string        { return e.reason }
func (e *wireError) Is(target error) bool { return target == ErrWireFormat }
