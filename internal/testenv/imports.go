package testenv

import (
	"go/parser"
	"go/token"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// module is floe's module path.
const module = "github.com/floe-io/floe/"

// CheckImports fails t for each import, in the non-test Go files of the
// package in the working directory (a test's own package), of a floe
// package not in allowed, or of a path starting with one of banned.
// Dependencies point inward: each leaf package says what it may use.
func CheckImports(t testing.TB, allowed []string, banned ...string) {
	t.Helper()
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
			if strings.HasPrefix(path, module) && !slices.Contains(allowed, path) {
				t.Errorf("%s imports %s; of floe this package may import only %v", name, path, allowed)
			}
			for _, b := range banned {
				if strings.HasPrefix(path, b) {
					t.Errorf("%s imports %s, which this package must not use", name, path)
				}
			}
		}
	}
	if checked == 0 {
		t.Fatal("no source files to check in the working directory")
	}
}
