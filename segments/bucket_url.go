package segments

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// BucketOptions carries what OpenBucket cannot take from the URL. The zero
// value is right for production: credentials come from the environment.
type BucketOptions struct {
	// AccessKey and SecretKey, when set, are static credentials used instead
	// of the environment (the AWS credential chain for s3://, the MINIO_*
	// and AWS_* variables for minio://). Set both or neither. They are
	// ignored by file:// buckets.
	AccessKey string
	SecretKey string
}

// String keeps the secret out of logs that print the options with %v.
func (o BucketOptions) String() string {
	if o.AccessKey == "" && o.SecretKey == "" {
		return "{}"
	}
	return "{AccessKey:REDACTED SecretKey:REDACTED}"
}

// GoString keeps the secret out of logs that print the options with %#v.
func (o BucketOptions) GoString() string { return "segments.BucketOptions" + o.String() }

// OpenBucket opens the object store named by rawURL and checks that it is
// there, so a misconfigured agent fails at start with one clear line.
//
// Accepted URLs:
//
//	/abs/path, ./rel/path       a local directory (created if missing)
//	file:///abs/path            the same
//	s3://bucket[/prefix]?region=R&endpoint=URL&path-style=true
//	minio://host:port/bucket[/prefix]?secure=false&region=R
//
// For s3:// every query parameter is optional. Credentials come from the
// AWS SDK's default chain (environment, shared config and credentials
// files, web identity, ECS and EC2 instance roles); the region from
// ?region=, else the SDK's chain (AWS_REGION, shared config), else
// us-east-1. endpoint= points the client at an S3-compatible store and
// path-style=true addresses it as endpoint/bucket/key, as MinIO needs.
//
// For minio:// connections use TLS unless ?secure=false. Credentials come
// from MINIO_ACCESS_KEY/MINIO_SECRET_KEY, else MINIO_ROOT_USER/
// MINIO_ROOT_PASSWORD, else AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY.
//
// A prefix in the URL is prepended (with a "/") to every key, so several
// clusters can share one bucket; List strips it again.
//
// Static credentials in opts override the environment. Credentials in the
// URL itself (user:password@) are refused, since URLs end up in logs.
//
// Errors read "bucket <redacted URL>: does not exist" (matching
// ErrBucketNotFound), "bucket <URL>: unreachable: <cause>" or "... access
// denied: <cause>" (matching ErrBucketUnreachable), or, for a URL that does
// not parse, name the offending part (matching ErrInvalidBucketURL).
func OpenBucket(ctx context.Context, rawURL string, opts BucketOptions) (Bucket, error) {
	spec, err := parseBucketURL(rawURL)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("opening bucket %s: %w", RedactURL(rawURL), err)
	}
	if (opts.AccessKey == "") != (opts.SecretKey == "") {
		return nil, fmt.Errorf("opening bucket %s: BucketOptions must set both AccessKey and SecretKey, or neither", RedactURL(rawURL))
	}
	var (
		b     Bucket
		check func(context.Context) error
	)
	switch spec.scheme {
	case "file":
		db, err := openDirBucket(spec.dir)
		if err != nil {
			return nil, fmt.Errorf("bucket %s: %w", RedactURL(rawURL), err)
		}
		b, check = db, func(context.Context) error { return nil }
	case "s3":
		sb, err := newS3Bucket(ctx, s3Config{
			Bucket:    spec.bucket,
			Prefix:    spec.prefix,
			Region:    spec.region,
			Endpoint:  spec.endpoint,
			PathStyle: spec.pathStyle,
			AccessKey: opts.AccessKey,
			SecretKey: opts.SecretKey,
		})
		if err != nil {
			return nil, fmt.Errorf("bucket %s: %w", RedactURL(rawURL), err)
		}
		b, check = sb, sb.checkBucket
	case "minio":
		ak, sk := opts.AccessKey, opts.SecretKey
		if ak == "" {
			ak, sk, err = minioEnvCredentials()
			if err != nil {
				return nil, fmt.Errorf("bucket %s: %w", RedactURL(rawURL), err)
			}
		}
		mb, err := newMinIOBucket(minioConfig{
			Endpoint:  spec.host,
			Secure:    spec.secure,
			Region:    spec.region,
			Bucket:    spec.bucket,
			Prefix:    spec.prefix,
			AccessKey: ak,
			SecretKey: sk,
		})
		if err != nil {
			return nil, fmt.Errorf("bucket %s: %w", RedactURL(rawURL), err)
		}
		b, check = mb, mb.checkBucket
	default:
		// parseBucketURL only returns the schemes above.
		return nil, fmt.Errorf("%w %s: unsupported scheme %q", ErrInvalidBucketURL, RedactURL(rawURL), spec.scheme)
	}
	if err := check(ctx); err != nil {
		b.Close()
		return nil, fmt.Errorf("bucket %s: %w", RedactURL(rawURL), err)
	}
	return b, nil
}

// bucketProblem is what a backend's reachability check returns: a short
// description for people ("does not exist") and a sentinel for programs.
type bucketProblem struct {
	kind    error  // ErrBucketNotFound or ErrBucketUnreachable
	problem string // "does not exist", "unreachable", "access denied", ...
	cause   error  // may be nil
	detail  string // if set, shown instead of the cause's text
}

func (p *bucketProblem) Error() string {
	switch {
	case p.detail != "":
		return p.problem + ": " + p.detail
	case p.cause != nil:
		// One line, whatever the cause's text looks like.
		return p.problem + ": " + strings.Join(strings.Fields(shortCause(p.cause)), " ")
	}
	return p.problem
}

func (p *bucketProblem) Unwrap() []error {
	if p.cause == nil {
		return []error{p.kind}
	}
	return []error{p.kind, p.cause}
}

// shortCause renders err for a one-line message: SDK errors nest the
// network error that matters under several layers of request detail.
func shortCause(err error) string {
	var opErr *net.OpError
	if errors.As(err, &opErr) {
		return opErr.Error()
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return dnsErr.Error()
	}
	for _, ctxErr := range []error{context.DeadlineExceeded, context.Canceled} {
		if errors.Is(err, ctxErr) {
			return ctxErr.Error()
		}
	}
	return err.Error()
}

// bucketSpec is a parsed bucket URL.
type bucketSpec struct {
	scheme string // "file", "s3" or "minio"

	dir string // file: absolute directory

	bucket string // s3, minio
	prefix string // s3, minio: key prefix without leading or trailing "/"
	region string // s3, minio: may be empty

	endpoint  string // s3: custom endpoint URL, may be empty
	pathStyle bool   // s3

	host   string // minio: host:port
	secure bool   // minio
}

var schemeRE = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9+.-]*:`)

// parseBucketURL parses the URL forms OpenBucket accepts.
func parseBucketURL(raw string) (bucketSpec, error) {
	bad := func(format string, args ...any) (bucketSpec, error) {
		return bucketSpec{}, fmt.Errorf("%w %s: %s", ErrInvalidBucketURL, RedactURL(raw), fmt.Sprintf(format, args...))
	}
	if strings.TrimSpace(raw) == "" {
		return bucketSpec{}, fmt.Errorf("%w: empty (want file:///path, s3://bucket or minio://host:port/bucket)", ErrInvalidBucketURL)
	}
	if !schemeRE.MatchString(raw) {
		// A bare path, relative or absolute.
		if strings.ContainsRune(raw, 0) {
			return bad("path contains NUL")
		}
		abs, err := filepath.Abs(raw)
		if err != nil {
			return bad("resolving path: %v", err)
		}
		return bucketSpec{scheme: "file", dir: abs}, nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // url.Error repeats the whole URL, secrets included
		}
		return bad("%v", err)
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "file" && scheme != "s3" && scheme != "minio" {
		return bad("unknown scheme %q (want file, s3 or minio; start a relative path with ./)", u.Scheme)
	}
	if u.User != nil {
		return bad("credentials in the URL are not accepted; use environment variables")
	}
	if u.Fragment != "" || strings.HasSuffix(raw, "#") {
		return bad("unexpected fragment")
	}
	if u.Opaque != "" {
		return bad("want %s://... (with two slashes)", scheme)
	}
	query, err := parseBucketQuery(u.RawQuery)
	if err != nil {
		return bad("%v", err)
	}
	switch scheme {
	case "file":
		if u.Host != "" && u.Host != "localhost" {
			return bad("file URL host must be empty (file:///absolute/path), got %q", u.Host)
		}
		if u.Path == "" || !strings.HasPrefix(u.Path, "/") {
			return bad("file URL needs an absolute path (file:///absolute/path)")
		}
		if strings.ContainsRune(u.Path, 0) {
			return bad("path contains NUL")
		}
		if err := query.unknown("file", nil); err != nil {
			return bad("%v", err)
		}
		return bucketSpec{scheme: "file", dir: filepath.Clean(filepath.FromSlash(u.Path))}, nil

	case "s3":
		known := []string{"region", "endpoint", "path-style"}
		if err := query.unknown("s3", known); err != nil {
			return bad("%v", err)
		}
		spec := bucketSpec{scheme: "s3", bucket: u.Host, region: query["region"]}
		if spec.bucket == "" {
			return bad("missing bucket name (s3://bucket/optional/prefix)")
		}
		if err := checkBucketName(spec.bucket); err != nil {
			return bad("%v", err)
		}
		if spec.prefix, err = urlPrefix(u.Path); err != nil {
			return bad("%v", err)
		}
		if ep, ok := query["endpoint"]; ok {
			if err := checkEndpoint(ep); err != nil {
				return bad("endpoint: %v", err)
			}
			spec.endpoint = ep
		}
		if v, ok := query["path-style"]; ok {
			if spec.pathStyle, err = strconv.ParseBool(v); err != nil {
				return bad("path-style=%q is not true or false", v)
			}
		}
		return spec, nil

	case "minio":
		known := []string{"secure", "region"}
		if err := query.unknown("minio", known); err != nil {
			return bad("%v", err)
		}
		spec := bucketSpec{scheme: "minio", host: u.Host, region: query["region"], secure: true}
		if spec.host == "" || u.Hostname() == "" {
			return bad("missing host (minio://host:port/bucket/optional/prefix)")
		}
		path := strings.TrimPrefix(u.Path, "/")
		spec.bucket, path, _ = strings.Cut(path, "/")
		if spec.bucket == "" {
			return bad("missing bucket name (minio://host:port/bucket/optional/prefix)")
		}
		if err := checkBucketName(spec.bucket); err != nil {
			return bad("%v", err)
		}
		if spec.prefix, err = urlPrefix(path); err != nil {
			return bad("%v", err)
		}
		if v, ok := query["secure"]; ok {
			if spec.secure, err = strconv.ParseBool(v); err != nil {
				return bad("secure=%q is not true or false", v)
			}
		}
		return spec, nil

	default:
		return bad("unknown scheme %q", u.Scheme) // excluded above
	}
}

// bucketQuery holds a URL's query parameters, each given at most once.
type bucketQuery map[string]string

func parseBucketQuery(raw string) (bucketQuery, error) {
	vals, err := url.ParseQuery(raw)
	if err != nil {
		return nil, fmt.Errorf("query: %v", err)
	}
	q := make(bucketQuery, len(vals))
	for k, v := range vals {
		if len(v) != 1 {
			return nil, fmt.Errorf("query parameter %q given %d times", k, len(v))
		}
		q[k] = v[0]
	}
	return q, nil
}

// unknown reports the first query parameter (in sorted order) not in known.
func (q bucketQuery) unknown(scheme string, known []string) error {
	var bad []string
	for k := range q {
		if !slices.Contains(known, k) {
			bad = append(bad, k)
		}
	}
	if len(bad) == 0 {
		return nil
	}
	slices.Sort(bad)
	if len(known) == 0 {
		return fmt.Errorf("unknown query parameter %q (%s URLs take none)", bad[0], scheme)
	}
	return fmt.Errorf("unknown query parameter %q (%s URLs take %s)", bad[0], scheme, strings.Join(known, ", "))
}

// checkBucketName accepts the names S3 and MinIO allow (3 to 63 characters;
// letters, digits, dots, hyphens; underscores for legacy buckets).
func checkBucketName(name string) error {
	if len(name) < 3 || len(name) > 63 {
		return fmt.Errorf("bucket name %q must be 3 to 63 characters", name)
	}
	for _, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '_':
		default:
			return fmt.Errorf("bucket name %q contains %q", name, r)
		}
	}
	return nil
}

// urlPrefix turns a URL path into a key prefix without surrounding slashes.
func urlPrefix(path string) (string, error) {
	p := strings.Trim(path, "/")
	if p == "" {
		return "", nil
	}
	if err := validateKey(p); err != nil {
		return "", fmt.Errorf("key prefix %q: %w", p, err)
	}
	return p, nil
}

func checkEndpoint(ep string) error {
	u, err := url.Parse(ep)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("want http://host:port or https://host:port")
	}
	if u.Host == "" {
		return fmt.Errorf("missing host")
	}
	if u.User != nil {
		return fmt.Errorf("credentials in the URL are not accepted; use environment variables")
	}
	return nil
}

// minioEnvCredentials finds MinIO credentials in the environment, in the
// order documented on OpenBucket. A pair set by halves is an error rather
// than a silent fall-through to the next pair.
func minioEnvCredentials() (access, secret string, err error) {
	pairs := [][2]string{
		{"MINIO_ACCESS_KEY", "MINIO_SECRET_KEY"},
		{"MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD"},
		{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"},
	}
	for _, p := range pairs {
		a, s := os.Getenv(p[0]), os.Getenv(p[1])
		switch {
		case a != "" && s != "":
			return a, s, nil
		case a != "" || s != "":
			return "", "", fmt.Errorf("%s and %s must be set together", p[0], p[1])
		}
	}
	return "", "", errors.New("no credentials: set MINIO_ACCESS_KEY and MINIO_SECRET_KEY (or MINIO_ROOT_USER/MINIO_ROOT_PASSWORD, or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)")
}

// RedactURL returns rawURL fit for logs and error messages: userinfo is
// dropped, and the values of query parameters whose names look secret
// (key, secret, token, password, credential, signature, auth) or that carry
// userinfo themselves are replaced by REDACTED. Bare paths are returned
// unchanged.
func RedactURL(rawURL string) string {
	if !schemeRE.MatchString(rawURL) {
		return rawURL
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		// Do what can be done without a parse: drop the query and anything
		// that could be userinfo.
		s := rawURL
		if i := strings.IndexAny(s, "?#"); i >= 0 {
			s = s[:i]
		}
		if i := strings.Index(s, "://"); i >= 0 {
			rest := s[i+3:]
			if at := strings.LastIndex(rest, "@"); at >= 0 {
				rest = rest[at+1:]
			}
			s = s[:i+3] + rest
		}
		return s
	}
	u.User = nil
	u.Fragment, u.RawFragment = "", ""
	if u.RawQuery != "" {
		parts := strings.Split(u.RawQuery, "&")
		for i, part := range parts {
			k, v, hasValue := strings.Cut(part, "=")
			name, err := url.QueryUnescape(k)
			if err != nil {
				name = k
			}
			if !hasValue {
				continue
			}
			if secretParam(name) {
				parts[i] = k + "=REDACTED"
				continue
			}
			if val, err := url.QueryUnescape(v); err == nil && strings.Contains(val, "@") {
				if vu, err := url.Parse(val); err == nil && vu.User != nil {
					vu.User = nil
					parts[i] = k + "=" + url.QueryEscape(vu.String())
				} else if err != nil {
					parts[i] = k + "=REDACTED"
				}
			}
		}
		u.RawQuery = strings.Join(parts, "&")
	}
	return u.String()
}

func secretParam(name string) bool {
	n := strings.ToLower(name)
	for _, s := range []string{"key", "secret", "token", "password", "passwd", "credential", "signature", "sig", "auth"} {
		if strings.Contains(n, s) {
			return true
		}
	}
	return false
}

// MaxKeyLen is the longest object key, in bytes, any backend accepts (S3's
// limit; the prefix from the bucket URL counts against it on S3 and MinIO).
const MaxKeyLen = 1024

// dirTempPrefix starts the names of the directory backend's temporary
// files. Keys may not have a path segment starting with it.
const dirTempPrefix = ".floe-tmp-"

// validateKey enforces the key rules shared by every backend, so a key that
// works on one works on all: keys are non-empty UTF-8 of at most MaxKeyLen
// bytes, "/"-separated segments that are neither empty, "." nor "..", with
// no backslash, NUL or other control character, no leading or trailing "/",
// and no segment starting with the directory backend's temp-file prefix.
func validateKey(key string) error {
	if key == "" {
		return fmt.Errorf("%w: empty", ErrInvalidKey)
	}
	if err := checkKeyChars(key); err != nil {
		return err
	}
	if strings.HasPrefix(key, "/") {
		return fmt.Errorf("%w: absolute (starts with /)", ErrInvalidKey)
	}
	for _, seg := range strings.Split(key, "/") {
		if err := checkSegment(seg); err != nil {
			return err
		}
	}
	return nil
}

// validatePrefix checks a List prefix: like a key, except that it may be
// empty or end in "/", and its last segment may be any partial name.
func validatePrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	if err := checkKeyChars(prefix); err != nil {
		return err
	}
	if strings.HasPrefix(prefix, "/") {
		return fmt.Errorf("%w: absolute (starts with /)", ErrInvalidKey)
	}
	segs := strings.Split(prefix, "/")
	for _, seg := range segs[:len(segs)-1] {
		if err := checkSegment(seg); err != nil {
			return err
		}
	}
	return nil
}

func checkKeyChars(key string) error {
	if len(key) > MaxKeyLen {
		return fmt.Errorf("%w: %d bytes long, more than %d", ErrInvalidKey, len(key), MaxKeyLen)
	}
	if !utf8.ValidString(key) {
		return fmt.Errorf("%w: not valid UTF-8", ErrInvalidKey)
	}
	for _, r := range key {
		switch {
		case r == 0:
			return fmt.Errorf("%w: contains NUL", ErrInvalidKey)
		case r == '\\':
			return fmt.Errorf("%w: contains a backslash", ErrInvalidKey)
		case r < 0x20 || r == 0x7f:
			return fmt.Errorf("%w: contains control character %U", ErrInvalidKey, r)
		}
	}
	return nil
}

func checkSegment(seg string) error {
	switch {
	case seg == "":
		return fmt.Errorf("%w: empty path segment", ErrInvalidKey)
	case seg == "." || seg == "..":
		return fmt.Errorf("%w: contains a %q segment", ErrInvalidKey, seg)
	case strings.HasPrefix(seg, dirTempPrefix):
		return fmt.Errorf("%w: segments starting with %q are reserved", ErrInvalidKey, dirTempPrefix)
	}
	return nil
}

// checkRange validates GetRange's offset and length.
func checkRange(offset, length int64) error {
	if offset < 0 {
		return fmt.Errorf("%w: negative offset %d", ErrInvalidRange, offset)
	}
	if length < -1 {
		return fmt.Errorf("%w: length %d (want -1 for to-end, or >= 0)", ErrInvalidRange, length)
	}
	return nil
}
