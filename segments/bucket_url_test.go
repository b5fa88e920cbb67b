package segments

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseBucketURL(t *testing.T) {
	cwd, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		url  string
		want bucketSpec
	}{
		{"/var/lib/floe", bucketSpec{scheme: "file", dir: "/var/lib/floe"}},
		{"/var/lib/floe/", bucketSpec{scheme: "file", dir: "/var/lib/floe"}},
		{"data/segs", bucketSpec{scheme: "file", dir: filepath.Join(cwd, "data/segs")}},
		{"./data:x", bucketSpec{scheme: "file", dir: filepath.Join(cwd, "data:x")}},
		{"file:///var/lib/floe", bucketSpec{scheme: "file", dir: "/var/lib/floe"}},
		{"file://localhost/var/lib/floe", bucketSpec{scheme: "file", dir: "/var/lib/floe"}},
		{"file:///var/lib/with%20space", bucketSpec{scheme: "file", dir: "/var/lib/with space"}},
		{"s3://my-bucket", bucketSpec{scheme: "s3", bucket: "my-bucket"}},
		{"s3://my-bucket/", bucketSpec{scheme: "s3", bucket: "my-bucket"}},
		{"s3://my-bucket/clusters/prod/", bucketSpec{scheme: "s3", bucket: "my-bucket", prefix: "clusters/prod"}},
		{"S3://my-bucket/p", bucketSpec{scheme: "s3", bucket: "my-bucket", prefix: "p"}},
		{
			"s3://b.example/p?region=eu-west-1&endpoint=http://127.0.0.1:9000&path-style=true",
			bucketSpec{scheme: "s3", bucket: "b.example", prefix: "p", region: "eu-west-1", endpoint: "http://127.0.0.1:9000", pathStyle: true},
		},
		{"s3://bkt?path-style=0", bucketSpec{scheme: "s3", bucket: "bkt"}},
		{"minio://127.0.0.1:9000/bkt", bucketSpec{scheme: "minio", host: "127.0.0.1:9000", bucket: "bkt", secure: true}},
		{
			"minio://minio.internal:9000/bkt/a/b?secure=false&region=us-west-2",
			bucketSpec{scheme: "minio", host: "minio.internal:9000", bucket: "bkt", prefix: "a/b", region: "us-west-2"},
		},
		{"minio://[::1]:9000/bkt/", bucketSpec{scheme: "minio", host: "[::1]:9000", bucket: "bkt", secure: true}},
	}
	for _, tc := range tests {
		t.Run(tc.url, func(t *testing.T) {
			got, err := parseBucketURL(tc.url)
			if err != nil {
				t.Fatalf("parseBucketURL: %v", err)
			}
			if got != tc.want {
				t.Fatalf("parseBucketURL = %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestParseBucketURLErrors(t *testing.T) {
	tests := []struct {
		url  string
		want string // substring of the error naming the bad part
	}{
		{"", "empty"},
		{"   ", "empty"},
		{"gs://bucket", `unknown scheme "gs"`},
		{"data:segments", `unknown scheme "data"`},
		{"file://relative/path", `host must be empty`},
		{"file:relative", "two slashes"},
		{"file:///x?mode=fast", `unknown query parameter "mode" (file URLs take none)`},
		{"s3://", "missing bucket name"},
		{"s3:///prefix", "missing bucket name"},
		{"s3://b", `bucket name "b" must be 3 to 63 characters`},
		{"s3://bad*name", `contains '*'`},
		{"s3://bucket:9000/p", `contains ':'`},
		{"s3://bucket/p?regoin=us-east-1", `unknown query parameter "regoin" (s3 URLs take region, endpoint, path-style)`},
		{"s3://bucket/p?zzz=1&aaa=2", `unknown query parameter "aaa"`},
		{"s3://bucket/p?path-style=yes", `path-style="yes" is not true or false`},
		{"s3://bucket/p?region=a&region=b", `"region" given 2 times`},
		{"s3://bucket/p?endpoint=127.0.0.1:9000", "endpoint: "},
		{"s3://bucket/p?endpoint=ftp://h", "endpoint: want http"},
		{"s3://bucket/p?endpoint=http://", "endpoint: missing host"},
		{"s3://bucket/p?endpoint=http://u:pw@h", "endpoint: credentials in the URL"},
		{"s3://bucket/a/../b", `".." segment`},
		{"s3://bucket/a//b", "empty path segment"},
		{"s3://bucket/p#frag", "fragment"},
		{"s3://AKIA:secret@bucket/p", "credentials in the URL"},
		{"s3://bucket/p?%zz", "query"},
		{"minio://", "missing host"},
		{"minio://:9000/bkt", "missing host"},
		{"minio://host:9000", "missing bucket name"},
		{"minio://host:9000/", "missing bucket name"},
		{"minio://host:9000/bkt?secure=maybe", `secure="maybe" is not true or false`},
		{"minio://host:9000/bkt?path-style=true", `unknown query parameter "path-style" (minio URLs take secure, region)`},
		{"minio://host:9000/bkt/x/./y", `"." segment`},
	}
	for _, tc := range tests {
		t.Run(tc.url, func(t *testing.T) {
			_, err := parseBucketURL(tc.url)
			if err == nil {
				t.Fatalf("parseBucketURL(%q) succeeded, want an error containing %q", tc.url, tc.want)
			}
			if !errors.Is(err, ErrInvalidBucketURL) {
				t.Errorf("error %v does not match ErrInvalidBucketURL", err)
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.want) {
				t.Errorf("error %q does not contain %q", msg, tc.want)
			}
			if strings.Contains(msg, "\n") {
				t.Errorf("error %q is more than one line", msg)
			}
			if strings.Contains(msg, "secret") || strings.Contains(msg, ":pw@") {
				t.Errorf("error %q leaks credentials", msg)
			}
		})
	}
}

func TestOpenBucketRejectsBeforeConnecting(t *testing.T) {
	ctx := context.Background()
	_, err := OpenBucket(ctx, "s3://bucket/p?unknown=1", BucketOptions{})
	if !errors.Is(err, ErrInvalidBucketURL) {
		t.Fatalf("error = %v, want ErrInvalidBucketURL", err)
	}
	_, err = OpenBucket(ctx, "s3://bucket/p", BucketOptions{AccessKey: "ak"})
	if err == nil || !strings.Contains(err.Error(), "both AccessKey and SecretKey") {
		t.Fatalf("error = %v, want one about setting both keys", err)
	}
}

func TestRedactURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"/var/lib/floe", "/var/lib/floe"},
		{"file:///var/lib/floe", "file:///var/lib/floe"},
		{"s3://bucket/prefix?region=us-east-1", "s3://bucket/prefix?region=us-east-1"},
		{"s3://AKIAXXX:s3cr3t@bucket/prefix", "s3://bucket/prefix"},
		{"minio://user@host:9000/b", "minio://host:9000/b"},
		{
			"s3://b/p?region=r&secret_key=s3cr3t&access-key=AKIA&token=t0k&X-Amz-Signature=sig&password=pw",
			"s3://b/p?region=r&secret_key=REDACTED&access-key=REDACTED&token=REDACTED&X-Amz-Signature=REDACTED&password=REDACTED",
		},
		{"s3://b/p?endpoint=http://u:pw@h:9000", "s3://b/p?endpoint=http%3A%2F%2Fh%3A9000"},
		{"s3://b/p?endpoint=http://h:9000&path-style=true", "s3://b/p?endpoint=http://h:9000&path-style=true"},
		{"s3://b/p#frag-s3cr3t", "s3://b/p"},
		{"s3://u:s3cr3t@b/p?%zz&key=s3cr3t", "s3://b/p?%zz&key=REDACTED"}, // malformed query
		{"s3://u:s3cr3t@b/p\x7f", "s3://b/p\x7f"},                         // unparseable URL
	}
	for _, tc := range tests {
		if got := RedactURL(tc.in); got != tc.want {
			t.Errorf("RedactURL(%q) = %q, want %q", tc.in, got, tc.want)
		}
		for _, secret := range []string{"s3cr3t", "AKIA", "t0k", ":pw"} {
			if strings.Contains(RedactURL(tc.in), secret) {
				t.Errorf("RedactURL(%q) = %q still contains %q", tc.in, RedactURL(tc.in), secret)
			}
		}
	}
}

func TestBucketOptionsDoNotPrintSecrets(t *testing.T) {
	o := BucketOptions{AccessKey: "AKIAEXAMPLE", SecretKey: "s3cr3t"}
	for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
		if got := fmt.Sprintf(format, o); strings.Contains(got, "s3cr3t") || strings.Contains(got, "AKIAEXAMPLE") {
			t.Errorf("Sprintf(%q, opts) = %q, leaks a key", format, got)
		}
		if got := fmt.Sprintf(format, &o); strings.Contains(got, "s3cr3t") {
			t.Errorf("Sprintf(%q, &opts) = %q, leaks a key", format, got)
		}
	}
}

func TestValidateKey(t *testing.T) {
	for _, key := range []string{
		"a", "a/b/c", "topic=x/partition=1/000.seg", "a-b_c.d", "..a/b..", ".hidden", "...",
		strings.Repeat("k", MaxKeyLen), "ünïcödé", "sp ace",
	} {
		if err := validateKey(key); err != nil {
			t.Errorf("validateKey(%q) = %v, want nil", key, err)
		}
	}
	for _, key := range []string{
		"", "/a", "a/", "a//b", ".", "..", "a/..", "../a", "a/./b", "a\\b", "a\x00b", "a\nb", "a\x7fb",
		"\xff", strings.Repeat("k", MaxKeyLen+1), ".floe-tmp-1", "a/.floe-tmp-x/b",
	} {
		if err := validateKey(key); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("validateKey(%q) = %v, want ErrInvalidKey", key, err)
		}
	}
	for _, prefix := range []string{"", "a", "a/", "s/3", "s/.", "s/..x", "s/.floe"} {
		if err := validatePrefix(prefix); err != nil {
			t.Errorf("validatePrefix(%q) = %v, want nil", prefix, err)
		}
	}
	for _, prefix := range []string{"/", "/a", "a//", "../", "a/../b", "a\\", "a\x00"} {
		if err := validatePrefix(prefix); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("validatePrefix(%q) = %v, want ErrInvalidKey", prefix, err)
		}
	}
}

func TestHTTPRange(t *testing.T) {
	tests := []struct {
		offset, length int64
		want           string
	}{
		{0, -1, ""},
		{5, -1, "bytes=5-"},
		{0, 1, "bytes=0-0"},
		{10, 5, "bytes=10-14"},
		{10, 1 << 62, "bytes=10-4611686018427387913"},
		{10, 1<<63 - 1, "bytes=10-"},
		{0, 1<<63 - 1, "bytes=0-9223372036854775806"},
	}
	for _, tc := range tests {
		if got := httpRange(tc.offset, tc.length); got != tc.want {
			t.Errorf("httpRange(%d, %d) = %q, want %q", tc.offset, tc.length, got, tc.want)
		}
	}
}

func TestMinIOEnvCredentials(t *testing.T) {
	vars := []string{"MINIO_ACCESS_KEY", "MINIO_SECRET_KEY", "MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
	set := func(t *testing.T, kv ...string) {
		for _, v := range vars {
			t.Setenv(v, "")
		}
		for i := 0; i < len(kv); i += 2 {
			t.Setenv(kv[i], kv[i+1])
		}
	}
	tests := []struct {
		name     string
		env      []string
		ak, sk   string
		errMatch string
	}{
		{"none", nil, "", "", "no credentials"},
		{"aws", []string{"AWS_ACCESS_KEY_ID", "a3", "AWS_SECRET_ACCESS_KEY", "s3"}, "a3", "s3", ""},
		{"root over aws", []string{"MINIO_ROOT_USER", "a2", "MINIO_ROOT_PASSWORD", "s2", "AWS_ACCESS_KEY_ID", "a3", "AWS_SECRET_ACCESS_KEY", "s3"}, "a2", "s2", ""},
		{"access over all", []string{"MINIO_ACCESS_KEY", "a1", "MINIO_SECRET_KEY", "s1", "MINIO_ROOT_USER", "a2", "MINIO_ROOT_PASSWORD", "s2"}, "a1", "s1", ""},
		{"half pair", []string{"MINIO_ACCESS_KEY", "a1", "MINIO_ROOT_USER", "a2", "MINIO_ROOT_PASSWORD", "s2"}, "", "", "MINIO_ACCESS_KEY and MINIO_SECRET_KEY must be set together"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			set(t, tc.env...)
			ak, sk, err := minioEnvCredentials()
			if tc.errMatch != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errMatch) {
					t.Fatalf("error = %v, want one containing %q", err, tc.errMatch)
				}
				return
			}
			if err != nil || ak != tc.ak || sk != tc.sk {
				t.Fatalf("got %q, %q, %v; want %q, %q", ak, sk, err, tc.ak, tc.sk)
			}
		})
	}
}

func TestShortCause(t *testing.T) {
	err := fmt.Errorf("operation error S3: HeadBucket, exceeded maximum number of attempts: %w", context.DeadlineExceeded)
	if got := shortCause(err); got != "context deadline exceeded" {
		t.Fatalf("shortCause = %q", got)
	}
	p := &bucketProblem{kind: ErrBucketNotFound, problem: "does not exist"}
	if p.Error() != "does not exist" || !errors.Is(p, ErrBucketNotFound) {
		t.Fatalf("bucketProblem = %q", p)
	}
}
