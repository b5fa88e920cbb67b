package instrumented_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/floe-io/floe/segments"
	"github.com/floe-io/floe/segments/buckettest"
	"github.com/floe-io/floe/segments/instrumented"
)

func openDir(t *testing.T, reg prometheus.Registerer) segments.Bucket {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := segments.OpenBucket(ctx, t.TempDir(), segments.BucketOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w := instrumented.Wrap(b, reg, instrumented.Options{})
	t.Cleanup(func() { w.Close() })
	return w
}

// A wrapped bucket is still a Bucket: it passes the conformance suite.
func TestConformance(t *testing.T) {
	buckettest.Run(t, func(t *testing.T) segments.Bucket { return openDir(t, nil) })
}

func TestCountsRequestsBytesAndCost(t *testing.T) {
	reg := prometheus.NewRegistry()
	b := openDir(t, reg)
	ctx := context.Background()
	for i := range 2500 {
		if err := b.Put(ctx, fmt.Sprintf("k/%04d", i), []byte("hello")); err != nil {
			t.Fatal(err)
		}
	}
	rc, err := b.GetRange(ctx, "k/0000", 1, 3)
	if err != nil {
		t.Fatal(err)
	}
	if data, _ := io.ReadAll(rc); string(data) != "ell" {
		t.Fatalf("read %q", data)
	}
	rc.Close()
	if _, err := b.GetRange(ctx, "missing", 0, -1); !errors.Is(err, segments.ErrNotFound) {
		t.Fatalf("missing key: %v", err)
	}
	n := 0
	if err := b.List(ctx, "k/", func(segments.ObjectInfo) error { n++; return nil }); err != nil || n != 2500 {
		t.Fatalf("listed %d: %v", n, err)
	}
	if err := b.Delete(ctx, []string{"k/0000"}); err != nil {
		t.Fatal(err)
	}

	count := func(op, outcome string) float64 {
		return value(t, reg, "floe_objstore_requests_total", map[string]string{"operation": op, "outcome": outcome})
	}
	if count("put", "ok") != 2500 || count("get", "ok") != 1 || count("get", "not_found") != 1 || count("list", "ok") != 1 || count("delete", "ok") != 1 {
		t.Fatalf("requests: put %v, get %v/%v, list %v, delete %v", count("put", "ok"), count("get", "ok"), count("get", "not_found"), count("list", "ok"), count("delete", "ok"))
	}
	cost := func(op string) float64 {
		return value(t, reg, "floe_objstore_request_cost_usd_total", map[string]string{"operation": op})
	}
	// 2500 PUTs at $0.005/1000, 2 GETs at $0.0004/1000, 3 LIST pages for
	// 2500 keys, DELETE free.
	for op, want := range map[string]float64{"put": 0.0125, "get": 0.0000008, "list": 0.000015, "delete": 0} {
		if got := cost(op); math.Abs(got-want) > 1e-12 {
			t.Errorf("cost of %s: %v, want %v", op, got, want)
		}
	}
	bytes := func(op string) float64 {
		return value(t, reg, "floe_objstore_bytes_total", map[string]string{"operation": op})
	}
	if bytes("put") != 2500*5 || bytes("get") != 3 {
		t.Fatalf("bytes: put %v, get %v", bytes("put"), bytes("get"))
	}
}

// value is the value of the counter name with these labels.
func value(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if labels[lp.GetName()] != lp.GetValue() {
					continue metrics
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	t.Fatalf("no %s%v", name, labels)
	return 0
}
