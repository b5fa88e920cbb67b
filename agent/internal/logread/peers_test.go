package logread

import (
	"context"
	"errors"
	"log/slog"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// linkedPeer is a zone of two readers in one process: every range is the
// owner's, asked through its ServeRange as the agent's peer listener
// does, unless fail says otherwise.
type linkedPeer struct {
	owner *Reader
	fail  error
}

func (l *linkedPeer) ReadRange(ctx context.Context, object string, start, end int64) ([]byte, bool, error) {
	if l.fail != nil {
		return nil, false, l.fail
	}
	data, err := l.owner.ServeRange(ctx, object, start, end)
	return data, false, err
}

// A reader that does not own a range gets it from its owner, which reads
// the bucket once for both; a failed owner means a read of the bucket,
// and an owner that found the object missing is believed.
func TestReadsSharedWithAPeer(t *testing.T) {
	ctx := context.Background()
	dir := dirBucket(t)
	bucket := &countingBucket{Bucket: dir}
	entries := putObject(t, bucket, "obj", 16)
	quiet := slog.New(slog.DiscardHandler)

	owner := New(ctx, nil, bucket, Config{CacheBytes: 64 << 20}, quiet, nil)
	link := &linkedPeer{owner: owner}
	reg := prometheus.NewRegistry()
	asker := New(ctx, nil, bucket, Config{CacheBytes: 64 << 20, Peers: link}, quiet, reg)

	for p, e := range entries {
		ext, err := asker.extent(ctx, e)
		if err != nil {
			t.Fatal(err)
		}
		if len(ext.bases) != 3 {
			t.Fatalf("partition %d: %d batches through the peer, want 3", p, len(ext.bases))
		}
	}
	if n := bucket.gets.Load(); n != 1 {
		t.Fatalf("%d GETs for an object read through its owner, want 1", n)
	}
	// The owner kept what it served: its own reads need no GET.
	for _, e := range entries {
		if _, err := owner.extent(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	if n := bucket.gets.Load(); n != 1 {
		t.Fatalf("%d GETs once the owner read what it served, want 1", n)
	}
	if got := counterValue(t, asker.metrics.peerReads.WithLabelValues("ok")); got != 1 {
		t.Errorf("peer reads ok: %v, want 1", got)
	}
	if got := counterValue(t, owner.metrics.peerServed); got != 1 {
		t.Errorf("ranges served: %v, want 1", got)
	}

	// An owner that cannot be asked: the bucket.
	entries2 := putObject(t, bucket, "obj2", 4)
	link.fail = errors.New("connection refused")
	if _, err := asker.extent(ctx, entries2[0]); err != nil {
		t.Fatalf("with the owner down: %v", err)
	}
	if n := bucket.gets.Load(); n != 2 {
		t.Fatalf("%d GETs in all with the owner down, want 2", n)
	}
	if got := counterValue(t, asker.metrics.peerReads.WithLabelValues("failed")); got != 1 {
		t.Errorf("peer reads failed: %v, want 1", got)
	}

	// An owner that found the object missing: so is it.
	link.fail = nil
	missing := entries2[1]
	missing.Object = "gone"
	if _, err := asker.extent(ctx, missing); !errors.Is(err, ErrMissingObject) {
		t.Fatalf("a missing object through the owner: %v, want ErrMissingObject", err)
	}
	if n := bucket.gets.Load(); n != 3 {
		t.Fatalf("%d GETs in all after the owner looked for a missing object, want 3 (its own)", n)
	}

	if _, err := owner.ServeRange(ctx, "obj", 10, 5); err == nil {
		t.Error("a range ending before its start was served")
	}
}
