package valueschema

import (
	"testing"

	"github.com/floe-io/floe/internal/testenv"
)

// valueschema is the shape of record values, shared by the exporter and
// the topic configs that validate it; it must not reach into floe.
func TestImportsStayOneWay(t *testing.T) {
	testenv.CheckImports(t, nil)
}
