package logread

import (
	"testing"

	"github.com/floe-io/floe/internal/testenv"
)

// The read path uses metadata and segments, and knows nothing of the Kafka
// protocol: the agent maps its errors and encodes its batches.
func TestImportsStayOneWay(t *testing.T) {
	testenv.CheckImports(t, []string{"github.com/floe-io/floe/metadata", "github.com/floe-io/floe/segments"}, "github.com/twmb/franz-go")
}
