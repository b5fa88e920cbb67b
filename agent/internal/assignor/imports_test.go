package assignor

import (
	"testing"

	"github.com/floe-io/floe/internal/testenv"
)

// The assignors are pure functions of their input: they use nothing of
// floe and know nothing of the Kafka protocol.
func TestImportsStayOneWay(t *testing.T) {
	testenv.CheckImports(t, nil, "github.com/twmb/franz-go")
}
