package logwrite

import (
	"testing"

	"github.com/floe-io/floe/internal/testenv"
)

// The write path knows nothing of the Kafka protocol: it uses metadata and
// segments from floe, never the agent (which uses it) nor franz-go.
func TestImportsStayOneWay(t *testing.T) {
	testenv.CheckImports(t, []string{"github.com/floe-io/floe/metadata", "github.com/floe-io/floe/segments"}, "github.com/twmb/franz-go")
}
