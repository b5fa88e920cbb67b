// Package kafkaopt turns the names floe's commands give Kafka client
// settings into franz-go options.
package kafkaopt

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Compression returns the producer batch codec called name, as Kafka's
// compression.type names them; "" is none.
func Compression(name string) (kgo.CompressionCodec, error) {
	switch name {
	case "none", "":
		return kgo.NoCompression(), nil
	case "gzip":
		return kgo.GzipCompression(), nil
	case "snappy":
		return kgo.SnappyCompression(), nil
	case "lz4":
		return kgo.Lz4Compression(), nil
	case "zstd":
		return kgo.ZstdCompression(), nil
	}
	return kgo.NoCompression(), fmt.Errorf("compression %q: use none, gzip, snappy, lz4 or zstd", name)
}
