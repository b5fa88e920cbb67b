package compactor

import (
	"testing"

	"github.com/floe-io/floe/internal/testenv"
)

// The compactor uses metadata and segments (and the roles' shared Deps),
// never the agent (nor the agent it): dependencies point one way. Tests
// may start agents.
func TestImportsStayOneWay(t *testing.T) {
	testenv.CheckImports(t, []string{"github.com/floe-io/floe/internal/node", "github.com/floe-io/floe/metadata", "github.com/floe-io/floe/segments"}, "github.com/twmb/franz-go")
}
