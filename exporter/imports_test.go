package exporter

import (
	"testing"

	"github.com/floe-io/floe/internal/testenv"
)

// The exporter reads the log through metadata and segments, never through
// the agent or a Kafka client: dependencies point one way. Tests may
// start agents.
func TestImportsStayOneWay(t *testing.T) {
	testenv.CheckImports(t, []string{"github.com/floe-io/floe/internal/certs", "github.com/floe-io/floe/internal/schemaregistry", "github.com/floe-io/floe/internal/valueschema", "github.com/floe-io/floe/metadata", "github.com/floe-io/floe/segments"}, "github.com/twmb/franz-go")
}
