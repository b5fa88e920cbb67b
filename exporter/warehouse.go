package exporter

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/apache/iceberg-go"
	icebergio "github.com/apache/iceberg-go/io"

	"github.com/floe-io/floe/segments"
)

// warehousePrefix is where tables go under the cluster's bucket.
const warehousePrefix = "iceberg"

// WarehouseOf returns the warehouse location and table IO properties for
// tables kept in the cluster's own bucket (segments.OpenBucket's URL),
// under its prefix's iceberg/:
//
//	/dir, file:///dir                     file:///dir/iceberg
//	s3://bucket/prefix?endpoint=...       s3://bucket/prefix/iceberg
//	minio://host:port/bucket/prefix       s3://bucket/prefix/iceberg at http(s)://host:port
//
// Credentials: opts' static keys, else for minio:// the MINIO_* (or AWS_*)
// variables as segments reads them; for s3:// the AWS SDK's chain.
func WarehouseOf(bucketURL string, opts segments.BucketOptions) (string, iceberg.Properties, error) {
	props := iceberg.Properties{}
	u, err := url.Parse(bucketURL)
	if err != nil || u.Scheme == "" || u.Scheme == "file" {
		path := bucketURL
		if err == nil && u.Scheme == "file" {
			path = u.Path
		}
		abs, err := filepath.Abs(path)
		if err != nil {
			return "", nil, fmt.Errorf("warehouse for bucket %s: %w", bucketURL, err)
		}
		return "file://" + filepath.ToSlash(filepath.Join(abs, warehousePrefix)), props, nil
	}
	q := u.Query()
	var bucket, prefix string
	switch u.Scheme {
	case "s3":
		bucket, prefix = u.Host, strings.Trim(u.Path, "/")
		if ep := q.Get("endpoint"); ep != "" {
			props[icebergio.S3EndpointURL] = ep
		}
		if q.Get("path-style") == "true" {
			props[icebergio.S3ForceVirtualAddressing] = "false"
		}
		if r := q.Get("region"); r != "" {
			props[icebergio.S3Region] = r
		}
	case "minio":
		bucket, prefix, _ = strings.Cut(strings.Trim(u.Path, "/"), "/")
		scheme := "https"
		if q.Get("secure") == "false" {
			scheme = "http"
		}
		props[icebergio.S3EndpointURL] = scheme + "://" + u.Host
		props[icebergio.S3ForceVirtualAddressing] = "false"
		region := q.Get("region")
		if region == "" {
			region = "us-east-1"
		}
		props[icebergio.S3Region] = region
		if opts.AccessKey == "" {
			opts.AccessKey, opts.SecretKey = minioEnvCredentials()
		}
	default:
		return "", nil, fmt.Errorf("warehouse for bucket %s: unknown scheme %q", segments.RedactURL(bucketURL), u.Scheme)
	}
	if opts.AccessKey != "" {
		props[icebergio.S3AccessKeyID] = opts.AccessKey
		props[icebergio.S3SecretAccessKey] = opts.SecretKey
	}
	loc := "s3://" + bucket
	if prefix != "" {
		loc += "/" + prefix
	}
	return loc + "/" + warehousePrefix, props, nil
}

// minioEnvCredentials are the credentials segments uses for minio://
// buckets, from the environment.
func minioEnvCredentials() (string, string) {
	for _, pair := range [][2]string{{"MINIO_ACCESS_KEY", "MINIO_SECRET_KEY"}, {"MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD"}, {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}} {
		if a, s := os.Getenv(pair[0]), os.Getenv(pair[1]); a != "" && s != "" {
			return a, s
		}
	}
	return "", ""
}
