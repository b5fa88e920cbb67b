package segments

import "errors"

// ErrNotFound is returned (wrapped) when an object does not exist.
var ErrNotFound = errors.New("segments: object not found")
