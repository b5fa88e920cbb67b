package logwrite

import (
	"go/parser"
	"go/token"
	"os"
	"strconv"
	"strings"
	"testing"
)

// The write path knows nothing of the Kafka protocol: it uses metadata and
// segments from floe, never the agent (which uses it) nor franz-go (kmsg,
// kerr, kgo). Tests may use anything.
func TestImportsStayOneWay(t *testing.T) {
	files, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	checked := 0
	for _, f := range files {
		name := f.Name()
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		parsed, err := parser.ParseFile(fset, name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		checked++
		for _, imp := range parsed.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			switch {
			case strings.HasPrefix(path, "github.com/twmb/franz-go/"):
				t.Errorf("%s imports %s; logwrite may not know the Kafka protocol", name, path)
			case strings.HasPrefix(path, "github.com/floe-io/floe/") &&
				path != "github.com/floe-io/floe/metadata" && path != "github.com/floe-io/floe/segments":
				t.Errorf("%s imports %s; logwrite may import only metadata and segments from floe", name, path)
			}
		}
	}
	if checked == 0 {
		t.Fatal("no source files found to check")
	}
}
