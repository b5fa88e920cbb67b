package node

import (
	"testing"

	"github.com/floe-io/floe/internal/testenv"
)

// node sits beneath the roles: it may use metadata and segments, never
// the agent or the compactor.
func TestImportsStayOneWay(t *testing.T) {
	testenv.CheckImports(t, []string{"github.com/floe-io/floe/metadata", "github.com/floe-io/floe/segments"}, "github.com/twmb/franz-go")
}
