package segments

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// s3Config configures an s3Bucket; OpenBucket fills it from an s3:// URL.
type s3Config struct {
	Bucket    string
	Prefix    string // key prefix without surrounding "/"; may be empty
	Region    string // empty: the SDK's chain, then us-east-1
	Endpoint  string // empty: AWS
	PathStyle bool
	AccessKey string // empty: the SDK's default credential chain
	SecretKey string
}

// s3Bucket is a Bucket in Amazon S3 or an S3-compatible store, through
// aws-sdk-go-v2. S3 is strongly consistent for read-after-write and list
// since December 2020, and PutObject is atomic.
type s3Bucket struct {
	client *s3.Client
	bucket string
	prefix string // "" or ending in "/"
	region string
}

// defaultS3Region is used when neither the URL nor the SDK's configuration
// chain names a region.
const defaultS3Region = "us-east-1"

func newS3Bucket(ctx context.Context, cfg s3Config) (*s3Bucket, error) {
	var loadOpts []func(*config.LoadOptions) error
	if cfg.Region != "" {
		loadOpts = append(loadOpts, config.WithRegion(cfg.Region))
	}
	if cfg.AccessKey != "" {
		loadOpts = append(loadOpts, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(cfg.AccessKey, cfg.SecretKey, "")))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, loadOpts...)
	if err != nil {
		// Errors here name files and profiles, never secret values.
		return nil, &bucketProblem{kind: ErrBucketUnreachable, problem: "loading AWS configuration", cause: err}
	}
	if awsCfg.Region == "" {
		awsCfg.Region = defaultS3Region
	}
	client := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		o.UsePathStyle = cfg.PathStyle
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
			// S3-compatible stores vary in their support for the SDK's
			// default CRC checksums; send them only where S3 requires one
			// (DeleteObjects).
			o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
			o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
		}
	})
	prefix := cfg.Prefix
	if prefix != "" {
		prefix += "/"
	}
	return &s3Bucket{client: client, bucket: cfg.Bucket, prefix: prefix, region: awsCfg.Region}, nil
}

// checkBucket is OpenBucket's reachability check: one HeadBucket.
func (b *s3Bucket) checkBucket(ctx context.Context) error {
	_, err := b.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(b.bucket)})
	if err == nil {
		return nil
	}
	var respErr *smithyhttp.ResponseError
	status := 0
	if errors.As(err, &respErr) && respErr.Response != nil {
		status = respErr.HTTPStatusCode()
	}
	var apiErr smithy.APIError
	code := ""
	if errors.As(err, &apiErr) {
		code = apiErr.ErrorCode()
	}
	switch {
	case status == http.StatusNotFound || code == "NoSuchBucket":
		return &bucketProblem{kind: ErrBucketNotFound, problem: "does not exist"}
	case status == http.StatusMovedPermanently:
		where := "another region"
		if r := respErr.Response.Header.Get("X-Amz-Bucket-Region"); r != "" {
			where = fmt.Sprintf("region %s (add ?region=%s)", r, r)
		}
		return &bucketProblem{kind: ErrBucketUnreachable, problem: fmt.Sprintf("is in %s, not %s", where, b.region)}
	case status == http.StatusForbidden || status == http.StatusUnauthorized:
		// HeadBucket responses have no body; the SDK's text repeats
		// request IDs around the one word that matters.
		detail := fmt.Sprintf("HTTP %d", status)
		if code != "" {
			detail += " " + code
		}
		return &bucketProblem{kind: ErrBucketUnreachable, problem: "access denied", cause: err,
			detail: detail + " (check the credentials and the bucket policy)"}
	default:
		return &bucketProblem{kind: ErrBucketUnreachable, problem: "unreachable", cause: err}
	}
}

// s3NotFound reports whether err says the object does not exist. A missing
// bucket is not a missing object.
func s3NotFound(err error) bool {
	var nsk *types.NoSuchKey
	var nf *types.NotFound
	if errors.As(err, &nsk) || errors.As(err, &nf) {
		return true
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode() {
		case "NoSuchKey", "NotFound":
			return true
		case "NoSuchBucket":
			return false
		}
	}
	var respErr *smithyhttp.ResponseError
	return errors.As(err, &respErr) && respErr.Response != nil && respErr.HTTPStatusCode() == http.StatusNotFound
}

// s3InvalidRange reports whether err is S3's answer to a range starting at
// or past the end of the object.
func s3InvalidRange(err error) bool {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) && apiErr.ErrorCode() == "InvalidRange" {
		return true
	}
	var respErr *smithyhttp.ResponseError
	return errors.As(err, &respErr) && respErr.Response != nil &&
		respErr.HTTPStatusCode() == http.StatusRequestedRangeNotSatisfiable
}

// Put implements Bucket.
func (b *s3Bucket) Put(ctx context.Context, key string, data []byte) error {
	if err := validateKey(key); err != nil {
		return fmt.Errorf("putting %q: %w", key, err)
	}
	_, err := b.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket:        aws.String(b.bucket),
		Key:           aws.String(b.prefix + key),
		Body:          bytes.NewReader(data),
		ContentLength: aws.Int64(int64(len(data))),
		ContentType:   aws.String("application/octet-stream"),
	})
	if err != nil {
		return fmt.Errorf("putting %s: %w", key, err)
	}
	return nil
}

// GetRange implements BucketReader.
func (b *s3Bucket) GetRange(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	if err := validateKey(key); err != nil {
		return nil, fmt.Errorf("getting range of %q: %w", key, err)
	}
	if err := checkRange(offset, length); err != nil {
		return nil, fmt.Errorf("getting range of %s: %w", key, err)
	}
	if length == 0 {
		// HTTP cannot ask for zero bytes; still report a missing key.
		_, err := b.client.HeadObject(ctx, &s3.HeadObjectInput{
			Bucket: aws.String(b.bucket),
			Key:    aws.String(b.prefix + key),
		})
		if err != nil {
			if s3NotFound(err) {
				return nil, fmt.Errorf("getting range of %s: %w", key, ErrNotFound)
			}
			return nil, fmt.Errorf("getting range of %s: %w", key, err)
		}
		return io.NopCloser(bytes.NewReader(nil)), nil
	}
	in := &s3.GetObjectInput{
		Bucket: aws.String(b.bucket),
		Key:    aws.String(b.prefix + key),
	}
	if r := httpRange(offset, length); r != "" {
		in.Range = aws.String(r)
	}
	out, err := b.client.GetObject(ctx, in)
	if err != nil {
		switch {
		case s3NotFound(err):
			return nil, fmt.Errorf("getting range of %s: %w", key, ErrNotFound)
		case s3InvalidRange(err):
			// The object exists and the range starts at or past its end.
			return io.NopCloser(bytes.NewReader(nil)), nil
		}
		return nil, fmt.Errorf("getting range of %s: %w", key, err)
	}
	return out.Body, nil
}

// httpRange renders offset and length (-1: to the end) as an HTTP Range
// header value; "" means the whole object.
func httpRange(offset, length int64) string {
	switch {
	case length < 0 || length > math.MaxInt64-offset:
		if offset == 0 {
			return ""
		}
		return fmt.Sprintf("bytes=%d-", offset)
	default:
		return fmt.Sprintf("bytes=%d-%d", offset, offset+length-1)
	}
}

// Delete implements Bucket. Keys are sent MaxDeleteBatch at a time with
// DeleteObjects; per-key failures in the response are errors. Missing keys
// are not.
func (b *s3Bucket) Delete(ctx context.Context, keys []string) error {
	for _, key := range keys {
		if err := validateKey(key); err != nil {
			return fmt.Errorf("deleting %q: %w", key, err)
		}
	}
	for len(keys) > 0 {
		n := min(len(keys), MaxDeleteBatch)
		if err := b.deleteBatch(ctx, keys[:n]); err != nil {
			return err
		}
		keys = keys[n:]
	}
	return nil
}

func (b *s3Bucket) deleteBatch(ctx context.Context, keys []string) error {
	objs := make([]types.ObjectIdentifier, len(keys))
	for i, k := range keys {
		objs[i] = types.ObjectIdentifier{Key: aws.String(b.prefix + k)}
	}
	out, err := b.client.DeleteObjects(ctx, &s3.DeleteObjectsInput{
		Bucket: aws.String(b.bucket),
		Delete: &types.Delete{Objects: objs, Quiet: aws.Bool(true)},
	})
	if err != nil {
		return fmt.Errorf("deleting %d objects (first %s): %w", len(keys), keys[0], err)
	}
	var failed []types.Error
	for _, e := range out.Errors {
		if aws.ToString(e.Code) == "NoSuchKey" {
			continue
		}
		failed = append(failed, e)
	}
	if len(failed) > 0 {
		first := failed[0]
		return fmt.Errorf("deleting %d objects: %d failed, first %s: %s: %s",
			len(keys), len(failed), strings.TrimPrefix(aws.ToString(first.Key), b.prefix),
			aws.ToString(first.Code), aws.ToString(first.Message))
	}
	return nil
}

// List implements Bucket. ListObjectsV2 returns keys in UTF-8 binary order,
// which is Go's string order.
func (b *s3Bucket) List(ctx context.Context, prefix string, fn func(ObjectInfo) error) error {
	if err := validatePrefix(prefix); err != nil {
		return fmt.Errorf("listing %q: %w", prefix, err)
	}
	pager := s3.NewListObjectsV2Paginator(b.client, &s3.ListObjectsV2Input{
		Bucket: aws.String(b.bucket),
		Prefix: aws.String(b.prefix + prefix),
	})
	for pager.HasMorePages() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("listing %s: %w", prefix, err)
		}
		for _, obj := range page.Contents {
			key := strings.TrimPrefix(aws.ToString(obj.Key), b.prefix)
			err := fn(ObjectInfo{
				Key:          key,
				Size:         aws.ToInt64(obj.Size),
				LastModified: aws.ToTime(obj.LastModified),
			})
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// Close implements Bucket. The SDK client holds nothing that needs closing.
func (b *s3Bucket) Close() error { return nil }
