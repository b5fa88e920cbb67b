// Package buckettest is the conformance suite for segments.Bucket. Every
// backend (directory, S3, MinIO) runs the same Run, so behaviour callers
// rely on — ranges past the end, missing keys, list order, idempotent
// deletes, atomic puts — is the same on all of them.
//
// It imports segments and the standard library only, so backends outside
// segments can use it too.
package buckettest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	mathrand "math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/floe-io/floe/segments"
)

// Run runs the conformance suite. open is called once per subtest and must
// return a bucket whose namespace is empty (a fresh directory, or a unique
// random key prefix in a shared bucket) and remove what the subtest left
// behind when the test ends, if it needs to. Run closes every bucket it
// opens, so Close must be safe to call more than once if open also arranges
// to close it.
func Run(t *testing.T, open func(t *testing.T) segments.Bucket) {
	tests := []struct {
		name string
		fn   func(t *testing.T, b segments.Bucket)
	}{
		{"PutGet", testPutGet},
		{"Ranges", testRanges},
		{"ZeroLengthObject", testZeroLength},
		{"Overwrite", testOverwrite},
		{"Missing", testMissing},
		{"InvalidArguments", testInvalidArguments},
		{"Delete", testDelete},
		{"DeleteFullBatch", testDeleteFullBatch},
		{"ListOrderAndPrefixes", testList},
		{"ListObjectInfo", testListInfo},
		{"ListStopsOnError", testListStops},
		{"ListEmpty", testListEmpty},
		{"KeyCharacters", testKeyCharacters},
		{"Concurrent", testConcurrent},
		{"LargeObject", testLarge},
		{"ContextCanceled", testContextCanceled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := open(t)
			t.Cleanup(func() {
				if err := b.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			tc.fn(t, b)
		})
	}
}

// ctx returns a context for one subtest, with a deadline well inside any
// sane test timeout so a hung backend fails instead of hanging.
func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

func put(t *testing.T, b segments.Bucket, key string, data []byte) {
	t.Helper()
	if err := b.Put(ctx(t), key, data); err != nil {
		t.Fatalf("Put(%q, %d bytes): %v", key, len(data), err)
	}
}

// get reads key[offset:offset+length] and fails the test on any error.
func get(t *testing.T, b segments.Bucket, key string, offset, length int64) []byte {
	t.Helper()
	got, err := read(ctx(t), b, key, offset, length)
	if err != nil {
		t.Fatalf("GetRange(%q, %d, %d): %v", key, offset, length, err)
	}
	return got
}

func read(ctx context.Context, b segments.BucketReader, key string, offset, length int64) ([]byte, error) {
	rc, err := b.GetRange(ctx, key, offset, length)
	if err != nil {
		return nil, err
	}
	data, err := io.ReadAll(rc)
	if cerr := rc.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("closing reader: %w", cerr)
	}
	return data, err
}

// listKeys lists prefix and returns the keys in the order List gave them.
func listKeys(t *testing.T, b segments.Bucket, prefix string) []string {
	t.Helper()
	keys := []string{}
	err := b.List(ctx(t), prefix, func(o segments.ObjectInfo) error {
		keys = append(keys, o.Key)
		return nil
	})
	if err != nil {
		t.Fatalf("List(%q): %v", prefix, err)
	}
	return keys
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func testPutGet(t *testing.T, b segments.Bucket) {
	data := []byte("hello, floe")
	put(t, b, "a/b/obj", data)
	if got := get(t, b, "a/b/obj", 0, -1); !bytes.Equal(got, data) {
		t.Fatalf("GetRange whole = %q, want %q", got, data)
	}
	// Putting the same bytes again is not an error (idempotent Put).
	put(t, b, "a/b/obj", data)
	if got := get(t, b, "a/b/obj", 0, -1); !bytes.Equal(got, data) {
		t.Fatalf("after re-put, GetRange whole = %q, want %q", got, data)
	}
	// A top-level key.
	put(t, b, "top", []byte("x"))
	if got := get(t, b, "top", 0, -1); string(got) != "x" {
		t.Fatalf("GetRange(top) = %q, want %q", got, "x")
	}
}

func testRanges(t *testing.T, b segments.Bucket) {
	data := []byte("0123456789abcdefghij") // 20 bytes
	put(t, b, "r/obj", data)
	n := int64(len(data))
	tests := []struct {
		name           string
		offset, length int64
		want           string
	}{
		{"whole", 0, -1, string(data)},
		{"whole exact length", 0, n, string(data)},
		{"prefix", 0, 5, "01234"},
		{"middle", 7, 6, "789abc"},
		{"one byte", 10, 1, "a"},
		{"last byte", n - 1, 1, "j"},
		{"to end", 15, -1, "fghij"},
		{"last byte to end", n - 1, -1, "j"},
		{"zero length", 3, 0, ""},
		{"zero length at end", n, 0, ""},
		{"extends past end", 17, 10, "hij"},
		{"huge length", 2, 1 << 62, string(data[2:])},
		{"starts at end", n, 5, ""},
		{"starts at end to end", n, -1, ""},
		{"starts past end", n + 100, 5, ""},
		{"starts past end to end", n + 100, -1, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := get(t, b, "r/obj", tc.offset, tc.length); string(got) != tc.want {
				t.Errorf("GetRange(%d, %d) = %q, want %q", tc.offset, tc.length, got, tc.want)
			}
		})
	}
}

func testZeroLength(t *testing.T, b segments.Bucket) {
	put(t, b, "z/empty", nil)
	for _, r := range [][2]int64{{0, -1}, {0, 0}, {0, 10}, {5, -1}, {5, 1}} {
		if got := get(t, b, "z/empty", r[0], r[1]); len(got) != 0 {
			t.Errorf("GetRange(empty, %d, %d) = %q, want nothing", r[0], r[1], got)
		}
	}
	var infos []segments.ObjectInfo
	err := b.List(ctx(t), "z/", func(o segments.ObjectInfo) error {
		infos = append(infos, o)
		return nil
	})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if len(infos) != 1 || infos[0].Key != "z/empty" || infos[0].Size != 0 {
		t.Fatalf("List(z/) = %+v, want one object z/empty of size 0", infos)
	}
}

func testOverwrite(t *testing.T, b segments.Bucket) {
	long := bytes.Repeat([]byte("long"), 100)
	put(t, b, "o/obj", long)
	put(t, b, "o/obj", []byte("short"))
	if got := get(t, b, "o/obj", 0, -1); string(got) != "short" {
		t.Fatalf("after overwriting with a shorter object, got %q, want %q", got, "short")
	}
	put(t, b, "o/obj", long)
	if got := get(t, b, "o/obj", 0, -1); !bytes.Equal(got, long) {
		t.Fatalf("after overwriting with a longer object, got %d bytes, want %d", len(got), len(long))
	}
	if keys := listKeys(t, b, ""); !slices.Equal(keys, []string{"o/obj"}) {
		t.Fatalf("List after overwrites = %q, want [o/obj]", keys)
	}
}

func testMissing(t *testing.T, b segments.Bucket) {
	put(t, b, "m/dir/obj", []byte("data"))
	for _, key := range []string{
		"nothing",
		"m/dir/nothing",
		"m/dir",         // a "directory" of other keys is not an object
		"m",             // ditto
		"m/dir/obj/sub", // below an object
		"m/dir/ob",      // a prefix of an object's name
	} {
		for _, r := range [][2]int64{{0, -1}, {0, 10}, {3, -1}, {0, 0}, {100, 1}} {
			_, err := read(ctx(t), b, key, r[0], r[1])
			if !errors.Is(err, segments.ErrNotFound) {
				t.Errorf("GetRange(%q, %d, %d) error = %v, want one matching ErrNotFound", key, r[0], r[1], err)
			} else if !strings.Contains(err.Error(), key) {
				t.Errorf("GetRange(%q) error %q does not name the key", key, err)
			}
		}
	}
}

func testInvalidArguments(t *testing.T, b segments.Bucket) {
	c := ctx(t)
	put(t, b, "ok", []byte("data"))
	badKeys := []string{
		"",
		"/abs",
		"a/../b",
		"..",
		"../escape",
		"a/./b",
		"a//b",
		"trailing/",
		"back\\slash",
		"nul\x00byte",
		"ctl\nchar",
		"bad\xffutf8",
		strings.Repeat("k", segments.MaxKeyLen+1),
		".floe-tmp-123",
		"d/.floe-tmp-x",
	}
	for _, key := range badKeys {
		if err := b.Put(c, key, []byte("x")); !errors.Is(err, segments.ErrInvalidKey) {
			t.Errorf("Put(%q) error = %v, want one matching ErrInvalidKey", key, err)
		}
		if _, err := b.GetRange(c, key, 0, -1); !errors.Is(err, segments.ErrInvalidKey) {
			t.Errorf("GetRange(%q) error = %v, want one matching ErrInvalidKey", key, err)
		}
		if err := b.Delete(c, []string{"ok", key}); !errors.Is(err, segments.ErrInvalidKey) {
			t.Errorf("Delete(%q) error = %v, want one matching ErrInvalidKey", key, err)
		}
	}
	// A Delete with an invalid key deletes nothing.
	if got := get(t, b, "ok", 0, -1); string(got) != "data" {
		t.Fatalf("after rejected Deletes, ok = %q, want %q", got, "data")
	}
	for _, prefix := range []string{"/abs", "../x", "a/../", "a//", "back\\slash", "nul\x00"} {
		err := b.List(c, prefix, func(segments.ObjectInfo) error { return nil })
		if !errors.Is(err, segments.ErrInvalidKey) {
			t.Errorf("List(%q) error = %v, want one matching ErrInvalidKey", prefix, err)
		}
	}
	for _, r := range [][2]int64{{-1, 5}, {0, -2}, {-5, -1}} {
		if _, err := b.GetRange(c, "ok", r[0], r[1]); !errors.Is(err, segments.ErrInvalidRange) {
			t.Errorf("GetRange(ok, %d, %d) error = %v, want one matching ErrInvalidRange", r[0], r[1], err)
		}
	}
	// Nothing above created an object.
	if keys := listKeys(t, b, ""); !slices.Equal(keys, []string{"ok"}) {
		t.Fatalf("List after invalid calls = %q, want [ok]", keys)
	}
}

func testDelete(t *testing.T, b segments.Bucket) {
	c := ctx(t)
	for _, k := range []string{"d/1", "d/2", "d/3", "d/sub/4", "e/5"} {
		put(t, b, k, []byte(k))
	}
	if err := b.Delete(c, nil); err != nil {
		t.Fatalf("Delete(nil): %v", err)
	}
	if err := b.Delete(c, []string{}); err != nil {
		t.Fatalf("Delete(empty): %v", err)
	}
	// Missing keys, and a "directory", are not errors.
	if err := b.Delete(c, []string{"d/1", "d/missing", "d/sub", "d/sub/4", "nope/nope"}); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	for _, k := range []string{"d/1", "d/sub/4"} {
		if _, err := read(c, b, k, 0, -1); !errors.Is(err, segments.ErrNotFound) {
			t.Errorf("after Delete, GetRange(%q) error = %v, want ErrNotFound", k, err)
		}
	}
	if got := listKeys(t, b, ""); !slices.Equal(got, []string{"d/2", "d/3", "e/5"}) {
		t.Fatalf("List after Delete = %q, want [d/2 d/3 e/5]", got)
	}
	// Deleting again is not an error (idempotent Delete), nor is a key
	// repeated in one call.
	if err := b.Delete(c, []string{"d/1", "d/2", "d/2"}); err != nil {
		t.Fatalf("second Delete: %v", err)
	}
	if got := listKeys(t, b, ""); !slices.Equal(got, []string{"d/3", "e/5"}) {
		t.Fatalf("List after second Delete = %q, want [d/3 e/5]", got)
	}
	// A key can be written again after it was deleted.
	put(t, b, "d/1", []byte("again"))
	if got := get(t, b, "d/1", 0, -1); string(got) != "again" {
		t.Fatalf("GetRange(d/1) after re-put = %q, want %q", got, "again")
	}
}

// putMany writes data to every key, a few at a time.
func putMany(t *testing.T, b segments.Bucket, keys []string, data func(key string) []byte) {
	t.Helper()
	c := ctx(t)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	sem := make(chan struct{}, 16)
	for _, k := range keys {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := b.Put(c, k, data(k)); err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if first != nil {
		t.Fatalf("Put: %v", first)
	}
}

func testDeleteFullBatch(t *testing.T, b segments.Bucket) {
	keys := make([]string, segments.MaxDeleteBatch)
	for i := range keys {
		keys[i] = fmt.Sprintf("batch/%02d/%04d", i%10, i)
	}
	putMany(t, b, keys, func(k string) []byte { return []byte(k) })
	put(t, b, "batch-keep", []byte("keep"))
	if got := len(listKeys(t, b, "batch/")); got != len(keys) {
		t.Fatalf("List(batch/) found %d objects, want %d", got, len(keys))
	}
	if err := b.Delete(ctx(t), keys); err != nil {
		t.Fatalf("Delete(%d keys): %v", len(keys), err)
	}
	if got := listKeys(t, b, ""); !slices.Equal(got, []string{"batch-keep"}) {
		if len(got) > 5 {
			got = append(got[:5], "...")
		}
		t.Fatalf("after deleting %d keys List = %q, want [batch-keep]", len(keys), got)
	}
	// Idempotent for a full batch too.
	if err := b.Delete(ctx(t), keys); err != nil {
		t.Fatalf("second Delete(%d keys): %v", len(keys), err)
	}
}

func testList(t *testing.T, b segments.Bucket) {
	// Chosen so that a directory walk's order differs from key order:
	// '-' and '.' sort before '/', '0' and 'f' after.
	all := []string{
		"s-",
		"s.x",
		"s/1",
		"s/2/x",
		"s/3",
		"s/30",
		"s/3f/x",
		"s/3f/y/z",
		"s/3g",
		"s0",
		"t/1",
		"u",
	}
	shuffled := slices.Clone(all)
	mathrand.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	for _, k := range shuffled {
		put(t, b, k, []byte(k))
	}
	want := func(prefix string) []string {
		out := []string{}
		for _, k := range all {
			if strings.HasPrefix(k, prefix) {
				out = append(out, k)
			}
		}
		return out
	}
	for _, prefix := range []string{
		"",
		"s",
		"s/",
		"s/3",  // ends mid-segment: s/3, s/30, s/3f/..., s/3g
		"s/3f", // a "directory" named without its slash
		"s/3f/",
		"s/3f/y/",
		"s/2/x", // exactly one key
		"s/2/x/",
		"s/1/", // below an object
		"s/9",
		"t",
		"u",
		"nomatch",
		"nomatch/deeper/",
	} {
		got := listKeys(t, b, prefix)
		if w := want(prefix); !slices.Equal(got, w) {
			t.Errorf("List(%q) = %q, want %q", prefix, got, w)
		}
	}
}

func testListInfo(t *testing.T, b segments.Bucket) {
	// Stores keep modification times at one-second resolution, and the
	// store's clock may differ a little from ours.
	before := time.Now().Add(-5 * time.Minute)
	sizes := map[string]int{"i/a": 0, "i/b": 1, "i/c": 4096}
	for k, n := range sizes {
		put(t, b, k, bytes.Repeat([]byte{'x'}, n))
	}
	after := time.Now().Add(5 * time.Minute)
	seen := 0
	err := b.List(ctx(t), "i/", func(o segments.ObjectInfo) error {
		seen++
		want, ok := sizes[o.Key]
		if !ok {
			t.Errorf("List returned unexpected key %q", o.Key)
			return nil
		}
		if o.Size != int64(want) {
			t.Errorf("%s: Size = %d, want %d", o.Key, o.Size, want)
		}
		if o.LastModified.IsZero() || o.LastModified.Before(before) || o.LastModified.After(after) {
			t.Errorf("%s: LastModified = %v, want between %v and %v", o.Key, o.LastModified, before, after)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if seen != len(sizes) {
		t.Fatalf("List saw %d objects, want %d", seen, len(sizes))
	}
}

func testListStops(t *testing.T, b segments.Bucket) {
	for i := range 5 {
		put(t, b, fmt.Sprintf("stop/%d", i), []byte{byte(i)})
	}
	errStop := errors.New("stop here")
	var seen []string
	err := b.List(ctx(t), "stop/", func(o segments.ObjectInfo) error {
		seen = append(seen, o.Key)
		if len(seen) == 2 {
			return errStop
		}
		return nil
	})
	if !errors.Is(err, errStop) {
		t.Fatalf("List error = %v, want the callback's error", err)
	}
	if !slices.Equal(seen, []string{"stop/0", "stop/1"}) {
		t.Fatalf("List called fn for %q after it failed, want [stop/0 stop/1]", seen)
	}
}

func testListEmpty(t *testing.T, b segments.Bucket) {
	if got := listKeys(t, b, ""); len(got) != 0 {
		t.Fatalf("List on a new bucket = %q, want nothing", got)
	}
	if got := listKeys(t, b, "some/prefix/"); len(got) != 0 {
		t.Fatalf("List(some/prefix/) on a new bucket = %q, want nothing", got)
	}
	put(t, b, "a/b", []byte("x"))
	if err := b.Delete(ctx(t), []string{"a/b"}); err != nil {
		t.Fatal(err)
	}
	if got := listKeys(t, b, ""); len(got) != 0 {
		t.Fatalf("List after deleting the only object = %q, want nothing", got)
	}
}

func testKeyCharacters(t *testing.T, b segments.Bucket) {
	keys := []string{
		"topic=orders/partition=3/00000000000000000042.seg",
		"a-b_c.d",
		"x=1/y=2/z",
		"with space/and+plus",
		"tilde~/percent%20/amp&/q?/hash#",
		"colon:semi;comma,",
		"ünïcödé/日本",
		"..dots/x..y/...",
		".hidden/.obj",
	}
	for _, k := range keys {
		put(t, b, k, []byte("v:"+k))
	}
	for _, k := range keys {
		if got := get(t, b, k, 0, -1); string(got) != "v:"+k {
			t.Errorf("GetRange(%q) = %q, want %q", k, got, "v:"+k)
		}
	}
	want := slices.Clone(keys)
	slices.Sort(want)
	if got := listKeys(t, b, ""); !slices.Equal(got, want) {
		t.Errorf("List = %q, want %q", got, want)
	}
	if got := listKeys(t, b, "topic=orders/"); !slices.Equal(got, keys[:1]) {
		t.Errorf("List(topic=orders/) = %q, want %q", got, keys[:1])
	}
	if err := b.Delete(ctx(t), keys); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if got := listKeys(t, b, ""); len(got) != 0 {
		t.Errorf("List after Delete = %q, want nothing", got)
	}
}

// testConcurrent runs writers and readers at once. Every reader of the
// shared key must see one of the values written to it, whole: Put is
// atomic.
func testConcurrent(t *testing.T, b segments.Bucket) {
	const (
		workers = 8
		rounds  = 10
	)
	value := func(w, r int) []byte {
		// Different lengths, so a torn read cannot pass as a whole value.
		head := fmt.Sprintf("w%d-r%d:", w, r)
		return append([]byte(head), bytes.Repeat([]byte{byte('a' + w)}, 1000+w*517+r*31)...)
	}
	valid := map[string]bool{}
	for w := range workers {
		for r := range rounds {
			valid[string(value(w, r))] = true
		}
	}
	put(t, b, "conc/shared", value(0, 0))
	c := ctx(t)
	var wg sync.WaitGroup
	errs := make(chan error, workers*rounds*3)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds {
				own := fmt.Sprintf("conc/w%d/r%d", w, r)
				v := value(w, r)
				if err := b.Put(c, own, v); err != nil {
					errs <- err
					return
				}
				if err := b.Put(c, "conc/shared", v); err != nil {
					errs <- err
					return
				}
				got, err := read(c, b, own, 0, -1)
				if err != nil {
					errs <- err
					return
				}
				if !bytes.Equal(got, v) {
					errs <- fmt.Errorf("%s: read %d bytes back, want %d", own, len(got), len(v))
				}
				got, err = read(c, b, "conc/shared", 0, -1)
				if err != nil {
					errs <- err
					return
				}
				if !valid[string(got)] {
					errs <- fmt.Errorf("conc/shared: read a %d-byte value that no Put wrote (torn write?)", len(got))
				}
				if err := b.List(c, "conc/w", func(segments.ObjectInfo) error { return nil }); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := len(listKeys(t, b, "conc/w")); got != workers*rounds {
		t.Fatalf("List(conc/w) found %d objects, want %d", got, workers*rounds)
	}
}

func testLarge(t *testing.T, b segments.Bucket) {
	const size = 16 << 20
	data := randomBytes(t, size)
	put(t, b, "large/obj", data)
	got := get(t, b, "large/obj", 0, -1)
	if !bytes.Equal(got, data) {
		t.Fatalf("16 MiB round trip: got %d bytes, equal=%v", len(got), bytes.Equal(got, data))
	}
	off, n := int64(size/2-12345), int64(1<<20+7)
	if got := get(t, b, "large/obj", off, n); !bytes.Equal(got, data[off:off+n]) {
		t.Fatalf("range [%d, +%d) of 16 MiB object differs (got %d bytes)", off, n, len(got))
	}
	if got := get(t, b, "large/obj", size-10, -1); !bytes.Equal(got, data[size-10:]) {
		t.Fatalf("last 10 bytes of 16 MiB object differ")
	}
	var info segments.ObjectInfo
	err := b.List(ctx(t), "large/", func(o segments.ObjectInfo) error { info = o; return nil })
	if err != nil {
		t.Fatal(err)
	}
	if info.Size != size {
		t.Fatalf("List Size = %d, want %d", info.Size, size)
	}
}

func testContextCanceled(t *testing.T, b segments.Bucket) {
	put(t, b, "cc/obj", []byte("data"))
	c, cancel := context.WithCancel(context.Background())
	cancel()
	if err := b.Put(c, "cc/new", []byte("x")); !errors.Is(err, context.Canceled) {
		t.Errorf("Put with a canceled context: error = %v, want context.Canceled", err)
	}
	if _, err := read(c, b, "cc/obj", 0, -1); !errors.Is(err, context.Canceled) {
		t.Errorf("GetRange with a canceled context: error = %v, want context.Canceled", err)
	}
	err := b.List(c, "", func(segments.ObjectInfo) error { return nil })
	if !errors.Is(err, context.Canceled) {
		t.Errorf("List with a canceled context: error = %v, want context.Canceled", err)
	}
	if err := b.Delete(c, []string{"cc/obj"}); !errors.Is(err, context.Canceled) {
		t.Errorf("Delete with a canceled context: error = %v, want context.Canceled", err)
	}
	// Nothing was written or deleted.
	if got := listKeys(t, b, ""); !slices.Equal(got, []string{"cc/obj"}) {
		t.Errorf("List after canceled calls = %q, want [cc/obj]", got)
	}
}
