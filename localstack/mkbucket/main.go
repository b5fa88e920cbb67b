// Command mkbucket creates a bucket in an S3-compatible store (the
// localstack MinIO) if it does not exist yet, then checks that the bucket
// takes a write, a read and a delete. localstack/start.sh runs it with
// `go run`, because there is no `mc` on the machines floe is tested on.
//
// It talks to MinIO over the S3 API with minio-go (Apache-2.0); it never
// imports MinIO's server.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

func main() {
	endpoint := flag.String("endpoint", "", "S3 endpoint, host:port")
	accessKey := flag.String("access-key", "", "access key")
	secretKey := flag.String("secret-key", "", "secret key")
	bucket := flag.String("bucket", "", "bucket to create")
	region := flag.String("region", "us-east-1", "bucket region")
	timeout := flag.Duration("timeout", 60*time.Second, "give up after this long")
	flag.Parse()
	if *endpoint == "" || *accessKey == "" || *secretKey == "" || *bucket == "" {
		fmt.Fprintln(os.Stderr, "mkbucket: -endpoint, -access-key, -secret-key and -bucket are required")
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	if err := run(ctx, *endpoint, *accessKey, *secretKey, *bucket, *region); err != nil {
		fmt.Fprintf(os.Stderr, "mkbucket: bucket %q at %s: %v\n", *bucket, *endpoint, err)
		os.Exit(1)
	}
}

func run(ctx context.Context, endpoint, accessKey, secretKey, bucket, region string) error {
	cli, err := minio.New(endpoint, &minio.Options{
		Creds:        credentials.NewStaticV4(accessKey, secretKey, ""),
		Region:       region,
		BucketLookup: minio.BucketLookupPath,
	})
	if err != nil {
		return err
	}
	// MinIO may answer its liveness check a moment before it takes
	// requests; retry until the deadline.
	var last error
	for {
		if last = ensure(ctx, cli, bucket, region); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return errors.Join(last, ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func ensure(ctx context.Context, cli *minio.Client, bucket, region string) error {
	exists, err := cli.BucketExists(ctx, bucket)
	if err != nil {
		return fmt.Errorf("checking bucket: %w", err)
	}
	if !exists {
		err := cli.MakeBucket(ctx, bucket, minio.MakeBucketOptions{Region: region})
		if err != nil {
			code := minio.ToErrorResponse(err).Code
			if code != "BucketAlreadyOwnedByYou" && code != "BucketAlreadyExists" {
				return fmt.Errorf("creating bucket: %w", err)
			}
		} else {
			fmt.Printf("mkbucket: created bucket %s\n", bucket)
		}
	}
	// Round-trip a small object so "ready" means ready for tests.
	const key = ".localstack-check"
	payload := []byte("floe localstack check " + time.Now().UTC().Format(time.RFC3339Nano))
	if _, err := cli.PutObject(ctx, bucket, key, bytes.NewReader(payload), int64(len(payload)), minio.PutObjectOptions{}); err != nil {
		return fmt.Errorf("writing %s: %w", key, err)
	}
	obj, err := cli.GetObject(ctx, bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return fmt.Errorf("reading %s: %w", key, err)
	}
	got, err := io.ReadAll(obj)
	obj.Close()
	if err != nil {
		return fmt.Errorf("reading %s: %w", key, err)
	}
	if !bytes.Equal(got, payload) {
		return fmt.Errorf("reading %s: got %q, wrote %q", key, got, payload)
	}
	if err := cli.RemoveObject(ctx, bucket, key, minio.RemoveObjectOptions{}); err != nil {
		return fmt.Errorf("deleting %s: %w", key, err)
	}
	return nil
}
