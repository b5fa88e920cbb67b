package segments_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/floe-io/floe/internal/testenv"
	"github.com/floe-io/floe/segments"
	"github.com/floe-io/floe/segments/buckettest"
)

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func openDir(t *testing.T, dir string) segments.Bucket {
	t.Helper()
	b, err := segments.OpenBucket(testCtx(t), dir, segments.BucketOptions{})
	if err != nil {
		t.Fatalf("OpenBucket(%s): %v", dir, err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func TestBucketDir(t *testing.T) {
	buckettest.Run(t, func(t *testing.T) segments.Bucket {
		return openDir(t, t.TempDir())
	})
}

func TestBucketDirFileURL(t *testing.T) {
	buckettest.Run(t, func(t *testing.T) segments.Bucket {
		// file:// with a directory that does not exist yet.
		dir := filepath.Join(t.TempDir(), "not", "yet")
		return openDir(t, "file://"+filepath.ToSlash(dir))
	})
}

// tempFiles returns the temporary files under dir.
func tempFiles(t *testing.T, dir string) []string {
	t.Helper()
	var found []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.HasPrefix(d.Name(), ".floe-tmp-") {
			found = append(found, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

func TestBucketDirLayout(t *testing.T) {
	ctx := testCtx(t)
	dir := t.TempDir()
	b := openDir(t, dir)

	if err := b.Put(ctx, "topic/0/seg", []byte("payload")); err != nil {
		t.Fatal(err)
	}
	// Keys are files under the root, "/" are directories.
	data, err := os.ReadFile(filepath.Join(dir, "topic", "0", "seg"))
	if err != nil || string(data) != "payload" {
		t.Fatalf("file for topic/0/seg = %q, %v; want %q", data, err, "payload")
	}
	if tmp := tempFiles(t, dir); len(tmp) != 0 {
		t.Fatalf("Put left temporary files behind: %q", tmp)
	}

	// Temporary files (a Put in progress, or left by a crash) never list.
	for _, p := range []string{
		filepath.Join(dir, ".floe-tmp-123"),
		filepath.Join(dir, "topic", "0", ".floe-tmp-456"),
	} {
		if err := os.WriteFile(p, []byte("partial"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var keys []string
	if err := b.List(ctx, "", func(o segments.ObjectInfo) error {
		keys = append(keys, o.Key)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(keys, []string{"topic/0/seg"}) {
		t.Fatalf("List = %q, want only [topic/0/seg]", keys)
	}
	os.Remove(filepath.Join(dir, "topic", "0", ".floe-tmp-456"))

	// Deleting the last object in a directory removes the emptied
	// directories, but never the root.
	if err := b.Delete(ctx, []string{"topic/0/seg"}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "topic")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("emptied directory topic/ still there (stat error %v)", err)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("root removed: %v", err)
	}
}

func TestBucketDirConflictingKeys(t *testing.T) {
	ctx := testCtx(t)
	b := openDir(t, t.TempDir())
	if err := b.Put(ctx, "a/b", []byte("x")); err != nil {
		t.Fatal(err)
	}
	// "a" is a directory of other keys; "a/b/c" needs the object "a/b" to
	// be a directory. A file system cannot do either; both fail clearly.
	for _, key := range []string{"a", "a/b/c"} {
		err := b.Put(ctx, key, []byte("y"))
		if !errors.Is(err, segments.ErrInvalidKey) || !strings.Contains(err.Error(), "directory") {
			t.Errorf("Put(%q) error = %v, want ErrInvalidKey explaining the directory conflict", key, err)
		}
	}
	if got, err := readAll(ctx, b, "a/b"); err != nil || got != "x" {
		t.Fatalf("a/b = %q, %v after conflicting Puts; want %q", got, err, "x")
	}
}

func readAll(ctx context.Context, b segments.BucketReader, key string) (string, error) {
	rc, err := b.GetRange(ctx, key, 0, -1)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	return string(data), err
}

func TestOpenBucketDirErrors(t *testing.T) {
	ctx := testCtx(t)
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := segments.OpenBucket(ctx, file, segments.BucketOptions{})
	if err == nil || !strings.Contains(err.Error(), "not a directory") || !strings.HasPrefix(err.Error(), "bucket "+file+": ") {
		t.Fatalf("OpenBucket(file) error = %v, want \"bucket %s: not a directory\"", err, file)
	}
	_, err = segments.OpenBucket(ctx, "file://"+filepath.Join(file, "below"), segments.BucketOptions{})
	if err == nil || !errors.Is(err, segments.ErrBucketUnreachable) {
		t.Fatalf("OpenBucket(below a file) error = %v, want ErrBucketUnreachable", err)
	}
}

// Remote buckets (S3 API and minio-go against a real MinIO).

// minioEnv returns the test MinIO (skipping without one) with its bucket
// created.
func minioEnv(t *testing.T) testenv.MinIOConfig {
	t.Helper()
	cfg := testenv.MinIO(t)
	ensureBucket(t, cfg)
	return cfg
}

// ensureBucket creates the test bucket if it is missing.
func ensureBucket(t *testing.T, cfg testenv.MinIOConfig) {
	t.Helper()
	client, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds: credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
	})
	if err != nil {
		t.Fatalf("minio client for %s: %v", cfg.Endpoint, err)
	}
	ctx := testCtx(t)
	err = client.MakeBucket(ctx, cfg.Bucket, minio.MakeBucketOptions{})
	switch minio.ToErrorResponse(err).Code {
	case "", "BucketAlreadyOwnedByYou", "BucketAlreadyExists":
		// Created, or already there.
	default:
		t.Fatalf("creating bucket %s on %s: %v", cfg.Bucket, cfg.Endpoint, err)
	}
}

// randomPrefix returns a key prefix no other test run uses.
func randomPrefix(t *testing.T) string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return "floe-test/" + time.Now().UTC().Format("20060102") + "-" + hex.EncodeToString(b[:])
}

func staticKeys(cfg testenv.MinIOConfig) segments.BucketOptions {
	return segments.BucketOptions{AccessKey: cfg.AccessKey, SecretKey: cfg.SecretKey}
}

func s3URL(cfg testenv.MinIOConfig, bucket, prefix string) string {
	q := url.Values{"endpoint": {"http://" + cfg.Endpoint}, "path-style": {"true"}, "region": {"us-east-1"}}
	return fmt.Sprintf("s3://%s/%s?%s", bucket, prefix, q.Encode())
}

func minioURL(cfg testenv.MinIOConfig, bucket, prefix string) string {
	return fmt.Sprintf("minio://%s/%s/%s?secure=false", cfg.Endpoint, bucket, prefix)
}

// openRemote opens rawURL and, when the test ends, deletes everything left
// under its prefix.
func openRemote(t *testing.T, rawURL string, opts segments.BucketOptions) segments.Bucket {
	t.Helper()
	b, err := segments.OpenBucket(testCtx(t), rawURL, opts)
	if err != nil {
		t.Fatalf("OpenBucket: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := segments.DeletePrefix(ctx, b, ""); err != nil {
			t.Errorf("cleaning up %s: %v", segments.RedactURL(rawURL), err)
		}
		b.Close()
	})
	return b
}

func TestBucketS3(t *testing.T) {
	cfg := minioEnv(t)
	buckettest.Run(t, func(t *testing.T) segments.Bucket {
		return openRemote(t, s3URL(cfg, cfg.Bucket, randomPrefix(t)), staticKeys(cfg))
	})
}

func TestBucketMinIO(t *testing.T) {
	cfg := minioEnv(t)
	buckettest.Run(t, func(t *testing.T) segments.Bucket {
		return openRemote(t, minioURL(cfg, cfg.Bucket, randomPrefix(t)), staticKeys(cfg))
	})
}

// TestBucketRemotePrefixIsolation checks that the URL's key prefix is
// applied and stripped: both clients see each other's objects under the
// same prefix, and nothing outside it.
func TestBucketRemotePrefixIsolation(t *testing.T) {
	cfg := minioEnv(t)
	ctx := testCtx(t)
	prefix := randomPrefix(t)
	s3b := openRemote(t, s3URL(cfg, cfg.Bucket, prefix), staticKeys(cfg))
	mb := openRemote(t, minioURL(cfg, cfg.Bucket, prefix), staticKeys(cfg))
	// The whole bucket, which other tests (and other packages' tests,
	// run at the same time) share: only read, and never emptied.
	outer, err := segments.OpenBucket(ctx, s3URL(cfg, cfg.Bucket, ""), staticKeys(cfg))
	if err != nil {
		t.Fatal(err)
	}
	defer outer.Close()

	if err := s3b.Put(ctx, "k/1", []byte("via s3")); err != nil {
		t.Fatal(err)
	}
	if got, err := readAll(ctx, mb, "k/1"); err != nil || got != "via s3" {
		t.Fatalf("minio read of k/1 = %q, %v; want %q", got, err, "via s3")
	}
	if got, err := readAll(ctx, outer, prefix+"/k/1"); err != nil || got != "via s3" {
		t.Fatalf("unprefixed read of %s/k/1 = %q, %v; want %q", prefix, got, err, "via s3")
	}
	var keys []string
	if err := mb.List(ctx, "", func(o segments.ObjectInfo) error {
		keys = append(keys, o.Key)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(keys, []string{"k/1"}) {
		t.Fatalf("List under prefix = %q, want [k/1]", keys)
	}
	if err := mb.Delete(ctx, []string{"k/1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := readAll(ctx, s3b, "k/1"); !errors.Is(err, segments.ErrNotFound) {
		t.Fatalf("after delete, read error = %v, want ErrNotFound", err)
	}
}

func TestOpenBucketRemoteErrors(t *testing.T) {
	cfg := minioEnv(t)
	ctx := testCtx(t)
	missing := "floe-missing-" + strings.TrimPrefix(randomPrefix(t), "floe-test/")
	for _, tc := range []struct {
		name, url string
	}{
		{"s3", s3URL(cfg, missing, "p")},
		{"minio", minioURL(cfg, missing, "p")},
	} {
		t.Run(tc.name+" missing bucket", func(t *testing.T) {
			_, err := segments.OpenBucket(ctx, tc.url, staticKeys(cfg))
			want := "bucket " + segments.RedactURL(tc.url) + ": does not exist"
			if !errors.Is(err, segments.ErrBucketNotFound) || err.Error() != want {
				t.Fatalf("error = %v, want %q matching ErrBucketNotFound", err, want)
			}
			t.Logf("%v", err)
		})
	}
	wrong := segments.BucketOptions{AccessKey: cfg.AccessKey, SecretKey: "wrong-secret-value"}
	for _, tc := range []struct {
		name, url string
	}{
		{"s3", s3URL(cfg, cfg.Bucket, "p")},
		{"minio", minioURL(cfg, cfg.Bucket, "p")},
	} {
		t.Run(tc.name+" wrong secret", func(t *testing.T) {
			_, err := segments.OpenBucket(ctx, tc.url, wrong)
			if !errors.Is(err, segments.ErrBucketUnreachable) || !strings.Contains(err.Error(), "access denied") {
				t.Fatalf("error = %v, want \"access denied\" matching ErrBucketUnreachable", err)
			}
			if strings.Contains(err.Error(), wrong.SecretKey) {
				t.Fatalf("error %q contains the secret key", err)
			}
			t.Logf("%v", err)
		})
	}
}

// TestOpenBucketMinIOEnvCredentials checks the environment fallbacks.
func TestOpenBucketMinIOEnvCredentials(t *testing.T) {
	cfg := minioEnv(t)
	for _, pair := range [][2]string{
		{"MINIO_ACCESS_KEY", "MINIO_SECRET_KEY"},
		{"MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD"},
		{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"},
	} {
		t.Run(pair[0], func(t *testing.T) {
			for _, v := range []string{"MINIO_ACCESS_KEY", "MINIO_SECRET_KEY", "MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} {
				t.Setenv(v, "")
			}
			t.Setenv(pair[0], cfg.AccessKey)
			t.Setenv(pair[1], cfg.SecretKey)
			b := openRemote(t, minioURL(cfg, cfg.Bucket, randomPrefix(t)), segments.BucketOptions{})
			if err := b.Put(testCtx(t), "x", []byte("y")); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestOpenBucketUnreachable needs no MinIO: nothing listens on port 1.
func TestOpenBucketUnreachable(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for client retries")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, raw := range []string{
		"s3://floe-x/p?endpoint=http://127.0.0.1:1&path-style=true&region=us-east-1",
		"minio://127.0.0.1:1/floe-x/p?secure=false&region=us-east-1",
	} {
		_, err := segments.OpenBucket(ctx, raw, segments.BucketOptions{AccessKey: "ak", SecretKey: "sk-secret"})
		if !errors.Is(err, segments.ErrBucketUnreachable) {
			t.Errorf("OpenBucket(%s) error = %v, want ErrBucketUnreachable", raw, err)
			continue
		}
		msg := err.Error()
		if !strings.HasPrefix(msg, "bucket "+raw+": unreachable: ") || strings.Contains(msg, "\n") || strings.Contains(msg, "sk-secret") {
			t.Errorf("OpenBucket(%s) error = %q, want one line \"bucket <url>: unreachable: <cause>\" without the secret", raw, msg)
		}
		t.Logf("%s", msg)
	}
}
