package segments_test

import (
	"testing"

	"github.com/floe-io/floe/internal/testenv"
)

// segments is the innermost package: the segment format and the bucket
// layer, with nothing of floe's beneath it.
func TestImportsStayOneWay(t *testing.T) {
	testenv.CheckImports(t, nil, "github.com/twmb/franz-go", "go.etcd.io/etcd")
}
