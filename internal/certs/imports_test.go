package certs

import (
	"testing"

	"github.com/floe-io/floe/internal/testenv"
)

// certs reads files with the standard library only: every floe package
// that names a PEM file may use it.
func TestImportsStayOneWay(t *testing.T) {
	testenv.CheckImports(t, nil)
}
