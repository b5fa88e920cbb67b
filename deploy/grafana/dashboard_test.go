// Package grafana_test checks deploy/grafana/floe-dashboard.json: it is a
// well-formed Grafana dashboard, and every floe metric its queries use is
// one an agent, the compactor or the object-store wrapper registers, so a
// renamed metric breaks the build instead of a dashboard panel.
package grafana_test

import (
	"context"
	"encoding/json"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/floe-io/floe/agent"
	"github.com/floe-io/floe/compactor"
	"github.com/floe-io/floe/internal/testenv"
	"github.com/floe-io/floe/metadata"
	"github.com/floe-io/floe/segments"
	"github.com/floe-io/floe/segments/instrumented"
)

type dashboard struct {
	Title      string `json:"title"`
	UID        string `json:"uid"`
	Templating struct {
		List []struct {
			Name string `json:"name"`
			Type string `json:"type"`
		} `json:"list"`
	} `json:"templating"`
	Panels []panel `json:"panels"`
}

type panel struct {
	ID         int    `json:"id"`
	Type       string `json:"type"`
	Title      string `json:"title"`
	Datasource *struct {
		UID string `json:"uid"`
	} `json:"datasource"`
	GridPos struct {
		H, W, X, Y int
	} `json:"gridPos"`
	Targets []struct {
		Expr  string `json:"expr"`
		RefID string `json:"refId"`
	} `json:"targets"`
}

func load(t *testing.T) dashboard {
	t.Helper()
	data, err := os.ReadFile("floe-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	dec := json.NewDecoder(strings.NewReader(string(data)))
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("floe-dashboard.json is not valid JSON: %v", err)
	}
	if dec.More() {
		t.Fatal("floe-dashboard.json has data after the dashboard")
	}
	return d
}

func TestDashboardIsWellFormed(t *testing.T) {
	d := load(t)
	if d.Title == "" || d.UID == "" || len(d.Panels) == 0 {
		t.Fatalf("dashboard needs a title, a uid and panels: %q %q %d", d.Title, d.UID, len(d.Panels))
	}
	vars := map[string]bool{"__rate_interval": true, "__all": true}
	for _, v := range d.Templating.List {
		vars[v.Name] = true
	}
	if !vars["datasource"] {
		t.Fatal("no datasource variable")
	}
	ids := map[int]bool{}
	varRef := regexp.MustCompile(`\$\{?(\w+)`)
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d used twice", p.ID)
		}
		ids[p.ID] = true
		if p.Title == "" || p.GridPos.W < 1 || p.GridPos.X < 0 || p.GridPos.X+p.GridPos.W > 24 || p.GridPos.H < 1 {
			t.Errorf("panel %d %q: title or grid position %+v", p.ID, p.Title, p.GridPos)
		}
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q does not use the datasource variable", p.Title)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no queries", p.Title)
		}
		refs := map[string]bool{}
		for _, q := range p.Targets {
			if q.Expr == "" || q.RefID == "" || refs[q.RefID] {
				t.Errorf("panel %q: query %q with refId %q", p.Title, q.Expr, q.RefID)
			}
			refs[q.RefID] = true
			if !balanced(q.Expr) {
				t.Errorf("panel %q: unbalanced brackets or quotes in %q", p.Title, q.Expr)
			}
			for _, m := range varRef.FindAllStringSubmatch(q.Expr, -1) {
				if !vars[m[1]] {
					t.Errorf("panel %q: $%s is not a dashboard variable", p.Title, m[1])
				}
			}
		}
	}
}

// balanced checks brackets and double quotes nest, outside strings.
func balanced(expr string) bool {
	var stack []rune
	pairs := map[rune]rune{')': '(', '}': '{', ']': '['}
	inString := false
	for _, r := range expr {
		switch {
		case r == '"':
			inString = !inString
		case inString:
		case r == '(' || r == '{' || r == '[':
			stack = append(stack, r)
		case pairs[r] != 0:
			if len(stack) == 0 || stack[len(stack)-1] != pairs[r] {
				return false
			}
			stack = stack[:len(stack)-1]
		}
	}
	return len(stack) == 0 && !inString
}

// registered records the names of the metrics registered with it.
type registered map[string]bool

var fqName = regexp.MustCompile(`fqName: "([^"]+)"`)

func (r registered) Register(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc)
	go func() {
		c.Describe(ch)
		close(ch)
	}()
	for d := range ch {
		if m := fqName.FindStringSubmatch(d.String()); m != nil {
			r[m[1]] = true
		}
	}
	return nil
}

func (r registered) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		r.Register(c)
	}
}

func (r registered) Unregister(prometheus.Collector) bool { return true }

// floeMetrics starts an agent and creates a compactor and a wrapped
// bucket, and returns every metric name they register.
func floeMetrics(t *testing.T) registered {
	names := registered{}
	store, err := metadata.NewStore(testenv.Etcd(t), testenv.Cluster(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	bucket, err := segments.OpenBucket(ctx, t.TempDir(), segments.BucketOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bucket.Close() })
	bucket = instrumented.Wrap(bucket, names, instrumented.Options{})

	a, err := agent.New(agent.Config{KafkaAddr: "127.0.0.1:0"}, agent.Deps{Store: store, Bucket: bucket, Registry: names})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Shutdown(context.Background()) })
	if _, err := compactor.New(compactor.Config{ID: "dashboard-test"}, compactor.Deps{Store: store, Bucket: bucket, Registry: names}); err != nil {
		t.Fatal(err)
	}
	return names
}

func TestDashboardUsesExistingMetrics(t *testing.T) {
	d := load(t)
	names := floeMetrics(t)
	metric := regexp.MustCompile(`\bfloe_[a-z0-9_]+`)
	used := map[string]bool{}
	for _, p := range d.Panels {
		for _, q := range p.Targets {
			for _, m := range metric.FindAllString(q.Expr, -1) {
				used[m] = true
				name := m
				for _, suffix := range []string{"_bucket", "_sum", "_count"} {
					if base, ok := strings.CutSuffix(m, suffix); ok && names[base] {
						name = base
					}
				}
				if !names[name] {
					t.Errorf("panel %q uses %s, which nothing registers", p.Title, m)
				}
			}
		}
	}
	// The panels the dashboard promises are there.
	for _, want := range []string{
		"floe_agent_requests_total", "floe_agent_request_duration_seconds_bucket", "floe_produce_segment_bytes_bucket",
		"floe_objstore_request_duration_seconds_bucket", "floe_objstore_request_cost_usd_total",
		"floe_etcd_commit_txn_duration_seconds_bucket", "floe_etcd_commit_conflicts_total",
		"floe_fetch_cache_hits_total", "floe_produce_buffered_bytes", "floe_produce_buffer_limit_bytes",
		"floe_group_lag", "floe_group_total_lag", "floe_compactor_passes_total",
	} {
		if !used[want] {
			t.Errorf("no panel uses %s", want)
		}
	}
	if t.Failed() {
		t.Logf("registered: %v", slices.Sorted(maps.Keys(names)))
	}
}
