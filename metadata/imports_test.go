package metadata

import (
	"testing"

	"github.com/floe-io/floe/internal/testenv"
)

// metadata is everything in etcd; of floe it knows only the segment
// format and the value schemas topic configs declare, never the agent,
// the compactor or the Kafka protocol.
func TestImportsStayOneWay(t *testing.T) {
	testenv.CheckImports(t, []string{"github.com/floe-io/floe/segments", "github.com/floe-io/floe/internal/valueschema"}, "github.com/twmb/franz-go")
}
