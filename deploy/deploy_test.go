// Package deploy_test keeps the container build in step with the rest of
// the repository: the Dockerfile builds floe with the flags `make build`
// uses, into a non-root image without a shell, from a build context that
// holds every package the binary needs. (No Docker engine runs where floe
// is tested, so the image itself is never built here.) The Kubernetes
// manifests are checked by scripts/check-deploy.sh and deploy/check.
package deploy_test

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

const root = ".."

func readFile(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// dockerInstructions returns the Dockerfile's instructions with
// continuation lines joined and comments dropped.
func dockerInstructions(t *testing.T) []string {
	t.Helper()
	var out []string
	cur := ""
	sc := bufio.NewScanner(strings.NewReader(readFile(t, "Dockerfile")))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if cur == "" && (line == "" || strings.HasPrefix(line, "#")) {
			continue
		}
		if s, ok := strings.CutSuffix(line, "\\"); ok {
			cur += s + " "
			continue
		}
		out = append(out, cur+line)
		cur = ""
	}
	return out
}

// words splits a shell-like command line, honouring double quotes.
func words(s string) []string {
	var out []string
	var b strings.Builder
	inWord, quoted := false, false
	for _, r := range s {
		switch {
		case r == '"':
			quoted = !quoted
			inWord = true
		case (r == ' ' || r == '\t') && !quoted:
			if inWord {
				out = append(out, b.String())
				b.Reset()
				inWord = false
			}
		default:
			b.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		out = append(out, b.String())
	}
	return out
}

// buildFlags returns the go build flags of a command line, with -ldflags
// split into its own words, and the environment assignments before "go".
func buildFlags(t *testing.T, line string) (flags, ldflags, env []string) {
	t.Helper()
	w := words(line)
	i := slices.Index(w, "build")
	if i < 1 {
		t.Fatalf("no go build in %q", line)
	}
	for _, x := range w[:i-1] {
		if strings.Contains(x, "=") && strings.ToUpper(x[:strings.Index(x, "=")]) == x[:strings.Index(x, "=")] {
			env = append(env, x)
		}
	}
	for _, x := range w[i+1:] {
		if v, ok := strings.CutPrefix(x, "-ldflags="); ok {
			ldflags = words(v)
			continue
		}
		if strings.HasPrefix(x, "-") {
			flags = append(flags, x)
		}
	}
	return flags, ldflags, env
}

// makeBuild returns `make build`'s command line with $(BUILD_FLAGS)
// expanded.
func makeBuild(t *testing.T) string {
	t.Helper()
	mk := readFile(t, "Makefile")
	m := regexp.MustCompile(`(?m)^BUILD_FLAGS\s*:?=\s*(.*)$`).FindStringSubmatch(mk)
	if m == nil {
		t.Fatal("Makefile has no BUILD_FLAGS")
	}
	recipe := regexp.MustCompile(`(?m)^build:.*\n\t(.*)$`).FindStringSubmatch(mk)
	if recipe == nil {
		t.Fatal("Makefile has no build target")
	}
	line := strings.ReplaceAll(recipe[1], "$(BUILD_FLAGS)", m[1])
	return strings.ReplaceAll(line, "$(GO)", "go")
}

func TestDockerfileBuildsLikeMake(t *testing.T) {
	var goBuild string
	for _, ins := range dockerInstructions(t) {
		if strings.HasPrefix(ins, "RUN ") && strings.Contains(ins, " go build ") {
			goBuild = ins
		}
	}
	if goBuild == "" {
		t.Fatal("Dockerfile has no RUN ... go build")
	}
	dFlags, dLd, dEnv := buildFlags(t, goBuild)
	mFlags, mLd, mEnv := buildFlags(t, makeBuild(t))

	if !slices.Contains(mEnv, "CGO_ENABLED=0") || !slices.Contains(dEnv, "CGO_ENABLED=0") {
		t.Errorf("CGO_ENABLED=0: make build has %v, the Dockerfile %v; both must build a static binary", mEnv, dEnv)
	}
	// Same flags, except that the Dockerfile also stamps the version.
	var dLdCore []string
	for i := 0; i < len(dLd); i++ {
		if dLd[i] == "-X" && i+1 < len(dLd) && strings.HasPrefix(dLd[i+1], "main.version=") {
			i++
			continue
		}
		dLdCore = append(dLdCore, dLd[i])
	}
	if len(dLdCore) == len(dLd) {
		t.Errorf("Dockerfile -ldflags %q do not set -X main.version", dLd)
	}
	slices.Sort(dLdCore)
	slices.Sort(mLd)
	if !slices.Equal(dLdCore, mLd) {
		t.Errorf("-ldflags differ: make build %q, Dockerfile %q (besides -X main.version)", mLd, dLdCore)
	}
	dOther := slices.DeleteFunc(slices.Clone(dFlags), func(f string) bool { return f == "-o" })
	mOther := slices.DeleteFunc(slices.Clone(mFlags), func(f string) bool { return f == "-o" })
	slices.Sort(dOther)
	slices.Sort(mOther)
	if !slices.Equal(dOther, mOther) {
		t.Errorf("go build flags differ: make build %q, Dockerfile %q", mOther, dOther)
	}
	if !strings.Contains(readFile(t, "cmd/floe/main.go"), "var version =") {
		t.Errorf("cmd/floe/main.go has no `var version`, which -X main.version sets")
	}
}

func TestDockerfileRuntimeImage(t *testing.T) {
	ins := dockerInstructions(t)
	var froms []string
	last := 0
	for i, x := range ins {
		if strings.HasPrefix(x, "FROM ") {
			froms = append(froms, x)
			last = i
		}
	}
	if len(froms) < 2 {
		t.Fatalf("want a multi-stage build, got FROM lines %q", froms)
	}
	if !strings.Contains(froms[0], "golang:1.26") {
		t.Errorf("builder %q, want golang:1.26 (go.mod's Go)", froms[0])
	}
	final := ins[last:]
	base := froms[len(froms)-1]
	if !strings.Contains(base, "distroless/static") && !strings.Contains(base, "scratch") {
		t.Errorf("runtime image %q, want distroless static or scratch: no shell", base)
	}
	has := func(prefix string) string {
		for _, x := range final {
			if strings.HasPrefix(x, prefix) {
				return x
			}
		}
		return ""
	}
	if u := has("USER "); u == "" || strings.Contains(u, "root") && !strings.Contains(u, "nonroot") || strings.HasPrefix(u, "USER 0") {
		t.Errorf("runtime stage USER = %q, want a non-root user", u)
	}
	if e := has("ENTRYPOINT "); e != `ENTRYPOINT ["/floe"]` {
		t.Errorf(`ENTRYPOINT = %q, want ["/floe"]`, e)
	}
	expose := words(strings.TrimPrefix(has("EXPOSE "), "EXPOSE "))
	for _, p := range []string{"9092", "9644"} {
		if !slices.Contains(expose, p) {
			t.Errorf("EXPOSE %v lacks %s", expose, p)
		}
	}
	if r := has("RUN "); r != "" {
		t.Errorf("runtime stage runs %q: it has no shell", r)
	}
}

// TestDockerignoreKeepsSources checks that the build context holds every
// package of the module that cmd/floe is built from.
func TestDockerignoreKeepsSources(t *testing.T) {
	var patterns []string
	for _, line := range strings.Split(readFile(t, ".dockerignore"), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "!") {
			t.Fatalf(".dockerignore: this test does not handle exceptions (%q)", line)
		}
		patterns = append(patterns, strings.TrimSuffix(strings.TrimPrefix(line, "/"), "/"))
	}
	// ignored returns the pattern that keeps rel out of the context: one
	// matching rel or a parent directory ("**/" matches at any depth).
	ignored := func(rel string) string {
		parts := strings.Split(rel, "/")
		for i := range parts {
			for _, p := range patterns {
				tail, anyDepth := strings.CutPrefix(p, "**/")
				for j := 0; j <= i; j++ {
					if j > 0 && !anyDepth {
						break
					}
					if ok, _ := filepath.Match(tail, strings.Join(parts[j:i+1], "/")); ok {
						return p
					}
				}
			}
		}
		return ""
	}
	for _, f := range []string{"go.mod", "go.sum"} {
		if p := ignored(f); p != "" {
			t.Errorf(".dockerignore pattern %q drops %s", p, f)
		}
	}
	if ignored("deploy/kubernetes/base/agent.yaml") == "" || ignored("segments/segments.test") == "" {
		t.Errorf("the pattern matcher misses what .dockerignore drops")
	}

	abs, err := filepath.Abs(root)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.Dir}}{{end}}", "./cmd/floe")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	n := 0
	for _, dir := range strings.Fields(string(out)) {
		rel, err := filepath.Rel(abs, dir)
		if err != nil || strings.HasPrefix(rel, "..") {
			continue // a dependency outside the module
		}
		n++
		files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
		for _, f := range files {
			relf, _ := filepath.Rel(abs, f)
			if strings.HasSuffix(relf, "_test.go") {
				continue
			}
			if p := ignored(filepath.ToSlash(relf)); p != "" {
				t.Errorf(".dockerignore pattern %q drops %s, which cmd/floe needs", p, relf)
			}
		}
	}
	if n == 0 {
		t.Fatal("go list found no packages of the module under cmd/floe")
	}
}
