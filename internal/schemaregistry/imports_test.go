package schemaregistry

import (
	"testing"

	"github.com/floe-io/floe/internal/testenv"
)

// schemaregistry is a client and a wire format; it must not reach into
// floe (its tests run floe's registry).
func TestImportsStayOneWay(t *testing.T) {
	testenv.CheckImports(t, nil)
}
