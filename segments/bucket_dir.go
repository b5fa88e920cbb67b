package segments

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
)

// dirBucket is a Bucket kept in a local directory: key "a/b/c" is the file
// root/a/b/c. It is meant for development, single-node deployments and
// tests.
//
// Put writes a temporary file (named dirTempPrefix+random) in the target's
// directory, fsyncs it, renames it over the target and fsyncs the
// directory, so readers and crashes see the old object or the new one,
// never part of one. Temporary files never appear in List; ones left by a
// crash are not cleaned up automatically and are safe to delete.
//
// Delete removes directories it empties. Deletes are not fsynced: after a
// crash a deleted object may reappear, which the Bucket contract allows for
// (deletes are idempotent and retried).
//
// A file system cannot hold both "a" and "a/b" as files, so, unlike S3,
// this backend refuses to Put a key that is a directory of other keys or
// that needs an existing object as its directory. floe's key layout never
// does either.
type dirBucket struct {
	root string // absolute, cleaned
}

// File modes for objects and the directories created for them (the umask
// applies to directories).
const (
	dirFileMode = 0o644
	dirDirMode  = 0o755
)

// openDirBucket opens (creating if missing) the directory bucket at root and
// checks that it is a writable directory.
func openDirBucket(root string) (*dirBucket, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, &bucketProblem{kind: ErrBucketUnreachable, problem: "resolving path", cause: err}
	}
	fi, err := os.Stat(abs)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(abs, dirDirMode); err != nil {
			return nil, &bucketProblem{kind: ErrBucketUnreachable, problem: "creating directory", cause: err}
		}
	case err != nil:
		return nil, &bucketProblem{kind: ErrBucketUnreachable, problem: "unreachable", cause: err}
	case !fi.IsDir():
		return nil, &bucketProblem{kind: ErrBucketUnreachable, problem: "not a directory"}
	}
	// Prove the directory is writable now rather than at the first upload.
	f, err := os.CreateTemp(abs, dirTempPrefix+"*")
	if err != nil {
		return nil, &bucketProblem{kind: ErrBucketUnreachable, problem: "not writable", cause: err}
	}
	name := f.Name()
	f.Close()
	os.Remove(name)
	return &dirBucket{root: filepath.Clean(abs)}, nil
}

// path maps a validated key to its file.
func (b *dirBucket) path(key string) string {
	return filepath.Join(b.root, filepath.FromSlash(key))
}

// Put implements Bucket.
func (b *dirBucket) Put(ctx context.Context, key string, data []byte) error {
	if err := validateKey(key); err != nil {
		return fmt.Errorf("putting %q: %w", key, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("putting %s: %w", key, err)
	}
	path := b.path(key)
	// A concurrent Delete may remove the directory between creating it and
	// creating the temporary file in it; try again a few times.
	var err error
	for range 5 {
		err = b.putOnce(path, data)
		if !errors.Is(err, errDirVanished) {
			break
		}
		if ctxErr := ctx.Err(); ctxErr != nil {
			return fmt.Errorf("putting %s: %w", key, ctxErr)
		}
	}
	if err != nil {
		return fmt.Errorf("putting %s: %w", key, err)
	}
	return nil
}

// errDirVanished means a directory was removed under a Put; Put retries.
var errDirVanished = errors.New("directory removed concurrently")

func (b *dirBucket) putOnce(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	if err := b.mkdirAllSynced(dir); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, dirTempPrefix+"*")
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return errDirVanished
		}
		return fmt.Errorf("creating temporary file: %w", err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("writing temporary file: %w", err)
	}
	if err := f.Chmod(dirFileMode); err != nil {
		return fmt.Errorf("setting mode of temporary file: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("syncing temporary file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("closing temporary file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		if fi, statErr := os.Lstat(path); statErr == nil && fi.IsDir() {
			return fmt.Errorf("key is a directory holding other keys (the directory backend cannot store both): %w", ErrInvalidKey)
		}
		return fmt.Errorf("renaming temporary file into place: %w", err)
	}
	if err := syncDir(dir); err != nil {
		return err
	}
	return nil
}

// mkdirAllSynced creates dir and any missing parents (up to the root) and
// fsyncs the parent of every directory it created, so the new directory
// entries survive a crash along with the file put into them.
func (b *dirBucket) mkdirAllSynced(dir string) error {
	// Find the deepest existing ancestor.
	var missing []string
	for d := dir; ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err == nil {
			if !fi.IsDir() {
				return fmt.Errorf("object %q exists where a directory is needed (the directory backend cannot store both): %w", b.keyOf(d), ErrInvalidKey)
			}
			break
		}
		if d == b.root || len(d) <= len(b.root) {
			// The root itself is gone or unusable.
			return fmt.Errorf("bucket directory %s: %w", b.root, err)
		}
		if errors.Is(err, syscall.ENOTDIR) {
			continue // an ancestor is a file; the loop reaches it and fails
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("checking directory: %w", err)
		}
		missing = append(missing, d)
	}
	if len(missing) == 0 {
		return nil
	}
	if err := os.MkdirAll(dir, dirDirMode); err != nil {
		if errors.Is(err, syscall.ENOTDIR) {
			return fmt.Errorf("an object exists where a directory is needed (the directory backend cannot store both): %w", ErrInvalidKey)
		}
		return fmt.Errorf("creating directory: %w", err)
	}
	// missing is deepest first; sync each created directory's parent.
	for _, d := range missing {
		if err := syncDir(filepath.Dir(d)); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return errDirVanished
			}
			return err
		}
	}
	return nil
}

func (b *dirBucket) keyOf(path string) string {
	rel, err := filepath.Rel(b.root, path)
	if err != nil {
		return path
	}
	return filepath.ToSlash(rel)
}

// syncDir fsyncs a directory so entries created or renamed in it are
// durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("opening directory to sync: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("syncing directory: %w", err)
	}
	return nil
}

// GetRange implements BucketReader.
func (b *dirBucket) GetRange(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	if err := validateKey(key); err != nil {
		return nil, fmt.Errorf("getting range of %q: %w", key, err)
	}
	if err := checkRange(offset, length); err != nil {
		return nil, fmt.Errorf("getting range of %s: %w", key, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("getting range of %s: %w", key, err)
	}
	f, err := os.Open(b.path(key))
	if err != nil {
		// ENOTDIR: a prefix of the key is an object, so the key is not one.
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return nil, fmt.Errorf("getting range of %s: %w", key, ErrNotFound)
		}
		return nil, fmt.Errorf("getting range of %s: %w", key, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("getting range of %s: %w", key, err)
	}
	if !fi.Mode().IsRegular() {
		// A directory holding other keys is not an object.
		f.Close()
		return nil, fmt.Errorf("getting range of %s: %w", key, ErrNotFound)
	}
	size := fi.Size()
	if offset >= size || length == 0 {
		f.Close()
		return io.NopCloser(bytes.NewReader(nil)), nil
	}
	n := size - offset
	if length >= 0 && length < n {
		n = length
	}
	return &dirReader{ctx: ctx, f: f, r: io.NewSectionReader(f, offset, n)}, nil
}

// dirReader reads a section of a file, failing once its context is done.
type dirReader struct {
	ctx context.Context
	f   *os.File
	r   io.Reader
}

func (r *dirReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}

func (r *dirReader) Close() error { return r.f.Close() }

// Delete implements Bucket.
func (b *dirBucket) Delete(ctx context.Context, keys []string) error {
	for _, key := range keys {
		if err := validateKey(key); err != nil {
			return fmt.Errorf("deleting %q: %w", key, err)
		}
	}
	for _, key := range keys {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("deleting %s: %w", key, err)
		}
		path := b.path(key)
		fi, err := os.Lstat(path)
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("deleting %s: %w", key, err)
		}
		if fi.IsDir() {
			continue // a directory of other keys, not an object
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("deleting %s: %w", key, err)
		}
		b.pruneEmptyDirs(filepath.Dir(path))
	}
	return nil
}

// pruneEmptyDirs removes dir and its parents, below the root, while they
// are empty. Failures (not empty, already gone) just stop it.
func (b *dirBucket) pruneEmptyDirs(dir string) {
	for dir != b.root && strings.HasPrefix(dir, b.root+string(filepath.Separator)) {
		if err := os.Remove(dir); err != nil {
			return
		}
		dir = filepath.Dir(dir)
	}
}

// List implements Bucket. It walks the directories the prefix can match,
// collects the objects and sorts them, since a walk's order ("a/b" before
// "a-c") is not key order.
func (b *dirBucket) List(ctx context.Context, prefix string, fn func(ObjectInfo) error) error {
	if err := validatePrefix(prefix); err != nil {
		return fmt.Errorf("listing %q: %w", prefix, err)
	}
	dirPart := prefix[:strings.LastIndex(prefix, "/")+1]
	start := filepath.Join(b.root, filepath.FromSlash(dirPart))
	var objs []ObjectInfo
	err := filepath.WalkDir(start, func(path string, d fs.DirEntry, err error) error {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return ctxErr
		}
		if err != nil {
			// Gone since its directory was read (a concurrent Delete), or the
			// prefix's directory does not exist: nothing to list there.
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
				return nil
			}
			return err
		}
		key := b.keyOf(path)
		if d.IsDir() {
			if path == start {
				return nil
			}
			dk := key + "/"
			if !strings.HasPrefix(dk, prefix) && !strings.HasPrefix(prefix, dk) {
				return fs.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() || strings.HasPrefix(d.Name(), dirTempPrefix) || !strings.HasPrefix(key, prefix) {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		objs = append(objs, ObjectInfo{Key: key, Size: fi.Size(), LastModified: fi.ModTime()})
		return nil
	})
	if err != nil {
		return fmt.Errorf("listing %s: %w", prefix, err)
	}
	slices.SortFunc(objs, func(a, b ObjectInfo) int { return strings.Compare(a.Key, b.Key) })
	for _, o := range objs {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("listing %s: %w", prefix, err)
		}
		if err := fn(o); err != nil {
			return err
		}
	}
	return nil
}

// Close implements Bucket. A directory bucket holds no resources.
func (b *dirBucket) Close() error { return nil }
