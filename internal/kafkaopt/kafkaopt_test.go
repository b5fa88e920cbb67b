package kafkaopt

import (
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestCompression(t *testing.T) {
	for name, want := range map[string]kgo.CompressionCodec{
		"": kgo.NoCompression(), "none": kgo.NoCompression(), "gzip": kgo.GzipCompression(),
		"snappy": kgo.SnappyCompression(), "lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression(),
	} {
		if got, err := Compression(name); err != nil || got != want {
			t.Errorf("Compression(%q) = %v, %v; want %v", name, got, err, want)
		}
	}
	if _, err := Compression("brotli"); err == nil || !strings.Contains(err.Error(), "use none, gzip") {
		t.Errorf("Compression(brotli): %v, want an error listing the codecs", err)
	}
}
