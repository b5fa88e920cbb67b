package compactor

import (
	"go/parser"
	"go/token"
	"os"
	"strconv"
	"strings"
	"testing"
)

// The compactor uses metadata and segments and never the agent (nor the
// agent it): dependencies point one way. Tests may start agents.
func TestImportsStayOneWay(t *testing.T) {
	files, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, f := range files {
		name := f.Name()
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		parsed, err := parser.ParseFile(fset, name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range parsed.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if strings.HasPrefix(path, "github.com/floe-io/floe/") &&
				path != "github.com/floe-io/floe/metadata" && path != "github.com/floe-io/floe/segments" {
				t.Errorf("%s imports %s; the compactor may import only metadata and segments from floe", name, path)
			}
		}
	}
}
