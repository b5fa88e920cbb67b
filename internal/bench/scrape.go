package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Metrics is one scrape of a Prometheus text endpoint: every sample, by
// metric name.
type Metrics map[string][]sample

type sample struct {
	labels map[string]string
	value  float64
}

// Has reports whether the scrape holds the metric at all.
func (m Metrics) Has(name string) bool { return len(m[name]) > 0 }

// Sum adds the samples of name whose labels include every pair of match
// (name, value, name, value, ...).
func (m Metrics) Sum(name string, match ...string) float64 {
	var s float64
	for _, smp := range m[name] {
		ok := true
		for i := 0; i+1 < len(match); i += 2 {
			if smp.labels[match[i]] != match[i+1] {
				ok = false
				break
			}
		}
		if ok {
			s += smp.value
		}
	}
	return s
}

// sumWhere adds the samples of name whose labels keep accepts.
func (m Metrics) sumWhere(name string, keep func(labels map[string]string) bool) float64 {
	var s float64
	for _, smp := range m[name] {
		if keep(smp.labels) {
			s += smp.value
		}
	}
	return s
}

// add merges other into m (samples of several agents).
func (m Metrics) add(other Metrics) {
	for k, v := range other {
		m[k] = append(m[k], v...)
	}
}

// parseMetrics reads the Prometheus text exposition format. Comments and
// lines it cannot read are skipped: a scrape is evidence, not input to
// validate.
func parseMetrics(r io.Reader) (Metrics, error) {
	m := Metrics{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		name, labels, rest, ok := splitSample(line)
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			continue
		}
		m[name] = append(m[name], sample{labels: labels, value: v})
	}
	return m, sc.Err()
}

// splitSample splits `name{a="b",c="d"} rest` into its parts.
func splitSample(line string) (string, map[string]string, string, bool) {
	i := strings.IndexAny(line, "{ \t")
	if i <= 0 {
		return "", nil, "", false
	}
	name := line[:i]
	if line[i] != '{' {
		return name, nil, line[i:], true
	}
	labels := map[string]string{}
	s := line[i+1:]
	for {
		s = strings.TrimLeft(s, " ,")
		if strings.HasPrefix(s, "}") {
			return name, labels, s[1:], true
		}
		eq := strings.IndexByte(s, '=')
		if eq <= 0 || len(s) < eq+2 || s[eq+1] != '"' {
			return "", nil, "", false
		}
		key := strings.TrimSpace(s[:eq])
		s = s[eq+2:]
		var val strings.Builder
		j := 0
		for ; j < len(s) && s[j] != '"'; j++ {
			if s[j] == '\\' && j+1 < len(s) {
				j++
				switch s[j] {
				case 'n':
					val.WriteByte('\n')
				default:
					val.WriteByte(s[j])
				}
				continue
			}
			val.WriteByte(s[j])
		}
		if j == len(s) {
			return "", nil, "", false
		}
		labels[key] = val.String()
		s = s[j+1:]
	}
}

// scraper reads the agents' /metrics.
type scraper struct {
	urls   []string
	client *http.Client
	header http.Header
}

// scrape reads and merges every agent's metrics.
func (s *scraper) scrape(ctx context.Context) (Metrics, error) {
	all := Metrics{}
	for _, u := range s.urls {
		m, err := s.scrapeOne(ctx, u)
		if err != nil {
			return nil, err
		}
		all.add(m)
	}
	return all, nil
}

func (s *scraper) scrapeOne(ctx context.Context, url string) (Metrics, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("metrics URL %q: %w", url, err)
	}
	for k, v := range s.header {
		req.Header[k] = v
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scraping %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scraping %s: %s (pass credentials with --metrics-token, or open /metrics with the agent's --http-open-paths)", url, resp.Status)
	}
	return parseMetrics(resp.Body)
}
