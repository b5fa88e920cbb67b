package lagapi

import (
	"testing"

	"github.com/floe-io/floe/internal/testenv"
)

// lagapi is the lag API's JSON, shared by the agent that serves it and
// the command line; it must not reach into either.
func TestImportsStayOneWay(t *testing.T) {
	testenv.CheckImports(t, nil)
}
