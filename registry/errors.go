package registry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/floe-io/floe/metadata"
)

// Confluent's error codes. The HTTP status is the code's first three
// digits (409 is both).
const (
	codeSubjectNotFound                = 40401
	codeVersionNotFound                = 40402
	codeSchemaNotFound                 = 40403
	codeSubjectSoftDeleted             = 40404
	codeSubjectNotSoftDeleted          = 40405
	codeSchemaVersionSoftDeleted       = 40406
	codeSchemaVersionNotSoftDeleted    = 40407
	codeSubjectCompatibilityNotSet     = 40408
	codeIncompatibleSchema             = 409
	codeInvalidSchema                  = 42201
	codeInvalidVersion                 = 42202
	codeInvalidCompatibilityLevel      = 42203
	codeInvalidMode                    = 42204
	codeOperationNotPermitted          = 42205
	codeReferenceExists                = 42206
	codeInvalidSubject                 = 42208
	codeSchemaTooLarge                 = 42209
	codeStoreError                     = 50001
	codeOperationTimeout               = 50002
	codeBadRequest                     = 400
	codeUnprocessable                  = 422
	compatibilityLevelsMessage         = "Invalid compatibility level. Valid values are none, backward, forward, full, backward_transitive, forward_transitive, and full_transitive"
	invalidVersionMessageFmt           = "The specified version '%s' is not a valid version id. Allowed values are between [1, 2^31-1] and the string \"latest\""
	softDeletedSubjectMessageFmt       = "Subject '%s' was soft deleted.Set permanent=true to delete permanently"
	notSoftDeletedSubjectMessageFmt    = "Subject '%s' was not deleted first before being permanently deleted"
	softDeletedVersionMessageFmt       = "Subject '%s' Version %s was soft deleted.Set permanent=true to delete permanently"
	notSoftDeletedVersionMessageFmt    = "Subject '%s' Version %s was not deleted first before being permanently deleted"
	subjectCompatibilityNotSetMsgFmt   = "Subject '%s' does not have subject-level compatibility configured"
	referenceExistsMessageFmt          = "One or more references exist to the schema {subject=%s,version=%s}: %s"
	incompatibleSchemaMessagePrefixFmt = "Schema being registered is incompatible with an earlier schema for subject \"%s\", details: "
)

// apiError is an error as a client sees it: an HTTP status, Confluent's
// error code, a message.
type apiError struct {
	status  int
	code    int
	message string
}

func (e *apiError) Error() string { return e.message }

func newAPIError(code int, format string, args ...any) *apiError {
	status := code
	for status >= 1000 {
		status /= 10
	}
	return &apiError{status: status, code: code, message: fmt.Sprintf(format, args...)}
}

// where names what a request was about, for the messages Confluent's
// clients know.
type where struct {
	subject string
	version string // as in the path: "3", "latest"
	id      int
}

// toAPIError is the one place an error becomes what a client sees.
func toAPIError(err error, at where) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	detail := strings.TrimPrefix(err.Error(), "metadata: ")
	switch {
	case errors.Is(err, metadata.ErrSubjectNotFound):
		return newAPIError(codeSubjectNotFound, "Subject '%s' not found.", at.subject)
	case errors.Is(err, metadata.ErrSchemaVersionNotFound):
		return newAPIError(codeVersionNotFound, "Version %s not found.", at.version)
	case errors.Is(err, metadata.ErrSchemaNotFound):
		if at.id > 0 {
			return newAPIError(codeSchemaNotFound, "Schema %d not found", at.id)
		}
		return newAPIError(codeSchemaNotFound, "Schema not found")
	case errors.Is(err, metadata.ErrSubjectSoftDeleted):
		return newAPIError(codeSubjectSoftDeleted, softDeletedSubjectMessageFmt, at.subject)
	case errors.Is(err, metadata.ErrSubjectNotSoftDeleted):
		return newAPIError(codeSubjectNotSoftDeleted, notSoftDeletedSubjectMessageFmt, at.subject)
	case errors.Is(err, metadata.ErrSchemaVersionSoftDeleted):
		return newAPIError(codeSchemaVersionSoftDeleted, softDeletedVersionMessageFmt, at.subject, at.version)
	case errors.Is(err, metadata.ErrSchemaVersionNotSoftDeleted):
		return newAPIError(codeSchemaVersionNotSoftDeleted, notSoftDeletedVersionMessageFmt, at.subject, at.version)
	case errors.Is(err, metadata.ErrSubjectCompatibilityNotSet):
		return newAPIError(codeSubjectCompatibilityNotSet, subjectCompatibilityNotSetMsgFmt, at.subject)
	case errors.Is(err, metadata.ErrSchemaTooLarge):
		return newAPIError(codeSchemaTooLarge, "Schema too large: %s", detail)
	case errors.Is(err, metadata.ErrInvalidSchema):
		return newAPIError(codeInvalidSchema, "Invalid schema: %s", detail)
	case errors.Is(err, metadata.ErrInvalidSubject):
		return newAPIError(codeInvalidSubject, "The specified subject is not valid: %s", detail)
	case errors.Is(err, metadata.ErrInvalidCompatibility):
		return newAPIError(codeInvalidCompatibilityLevel, compatibilityLevelsMessage)
	case errors.Is(err, metadata.ErrSchemaReferenced):
		return newAPIError(codeReferenceExists, referenceExistsMessageFmt, at.subject, at.version, detail)
	case errors.Is(err, metadata.ErrSchemaIDNotPermitted):
		return newAPIError(codeOperationNotPermitted, "Operation not permitted: %s (registering with a chosen ID or version needs IMPORT mode, which floe does not serve)", detail)
	case errors.Is(err, context.DeadlineExceeded):
		return newAPIError(codeOperationTimeout, "Operation timed out: %s", detail)
	}
	return newAPIError(codeStoreError, "Error in the backend data store: %s", detail)
}

// statusCode is the error code of an error response written in plain
// text by something around the registry's routes (authentication, the
// router's own 404 and 405): its HTTP status, as Confluent's server
// answers such errors, but 40301 for 403.
func statusCode(status int) int {
	if status == http.StatusForbidden {
		return 40301
	}
	return status
}
