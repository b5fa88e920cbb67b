package bench

import (
	"strings"
	"testing"
)

func TestParseMetrics(t *testing.T) {
	text := `# HELP floe_objstore_requests_total Object store requests.
# TYPE floe_objstore_requests_total counter
floe_objstore_requests_total{operation="get",outcome="ok"} 12
floe_objstore_requests_total{operation="get",outcome="error"} 1
floe_objstore_requests_total{operation="put",outcome="ok"} 7
floe_fetch_cache_misses_total 13
process_resident_memory_bytes 1.2345e+08
weird{a="x\"y",b="c\\d"} 2 1700000000
broken{a="x 3
`
	m, err := parseMetrics(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		match []string
		want  float64
	}{
		{"floe_objstore_requests_total", []string{"operation", "get"}, 13},
		{"floe_objstore_requests_total", []string{"operation", "put", "outcome", "ok"}, 7},
		{"floe_objstore_requests_total", nil, 20},
		{"floe_fetch_cache_misses_total", nil, 13},
		{"process_resident_memory_bytes", nil, 123450000},
		{"weird", []string{"a", `x"y`, "b", `c\d`}, 2},
		{"absent", nil, 0},
	} {
		if got := m.Sum(c.name, c.match...); got != c.want {
			t.Errorf("Sum(%s, %v) = %v, want %v", c.name, c.match, got, c.want)
		}
	}
	if m.Has("broken") || !m.Has("weird") {
		t.Error("Has is wrong")
	}
}
