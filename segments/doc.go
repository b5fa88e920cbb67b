// Package segments owns floe's segment objects and the object stores they
// live in.
//
// It defines the Bucket interface (put an object, read a byte range, delete
// many, list by prefix) with three backends: a local directory (file://),
// Amazon S3 and S3-compatible stores through aws-sdk-go-v2 (s3://), and MinIO
// through minio-go (minio://). OpenBucket picks one from a URL.
//
// It also owns the segment object format: how an agent packs RecordBatches
// from many partitions into one object, and how a reader gets one
// partition's batches back with a single ranged GET. FORMAT.md is the
// specification.
//
// It owns the Kafka RecordBatch v2 layout too (batch.go): nothing else
// reads or writes a batch's bytes. It parses and checks the batches
// clients produce, builds new ones (AppendBatch, AppendRecord), and reads
// a batch's records (Records and RecordTimes, records.go: offsets,
// timestamps, keys, values),
// decompressing records a client compressed with gzip, snappy, lz4 or
// zstd, one batch at a time and up to MaxRecordsSize bytes of them.
//
// segments is a leaf: it imports neither metadata nor agent.
package segments
