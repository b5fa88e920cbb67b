package segments

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// Object kinds: the first element of every segment object key.
const (
	// KindFlush is an object an agent flushed from produce requests.
	KindFlush = "flush"
	// KindMerged is an object the compactor wrote by merging others.
	KindMerged = "merged"
	// KindCleaned is an object the compactor wrote cleaning a partition
	// of a compacted topic (one extent).
	KindCleaned = "cleaned"
)

// knownKind reports whether kind is one of the object kinds.
func knownKind(kind string) bool {
	return kind == KindFlush || kind == KindMerged || kind == KindCleaned
}

// Key layout (see FORMAT.md):
//
//	<kind>/<xx>/<yyyymmddThhmmssZ>-<r>.seg
//
// r is a random 64-bit number in 16 lowercase hex digits and xx its first two
// digits. S3 scales request rates per key prefix, so spreading keys over 256
// prefixes spreads agents' PUTs and readers' GETs; within a prefix, keys sort
// by creation time.
const (
	keyTimeLayout = "20060102T150405Z"
	keySuffix     = ".seg"
	// len("20060102T150405Z-0123456789abcdef.seg")
	keyNameLen = len(keyTimeLayout) + 1 + 16 + len(keySuffix)
)

// NewObjectKey returns a new, unique key for a segment object of kind
// (KindFlush, KindMerged or KindCleaned) created at now. It panics on
// another kind, which is a programming error.
func NewObjectKey(now time.Time, kind string) string {
	if !knownKind(kind) {
		panic(fmt.Sprintf("segments: NewObjectKey with unknown kind %q", kind))
	}
	r := rand.Uint64()
	return fmt.Sprintf("%s/%02x/%s-%016x%s", kind, r>>56, now.UTC().Format(keyTimeLayout), r, keySuffix)
}

// ParseObjectKey parses a key made by NewObjectKey and returns the creation
// time (UTC, to the second) and kind. ok is false for any other key.
func ParseObjectKey(key string) (created time.Time, kind string, ok bool) {
	kind, rest, found := strings.Cut(key, "/")
	if !found || !knownKind(kind) {
		return time.Time{}, "", false
	}
	prefix, name, found := strings.Cut(rest, "/")
	if !found || len(prefix) != 2 || len(name) != keyNameLen || !strings.HasSuffix(name, keySuffix) {
		return time.Time{}, "", false
	}
	stamp, random := name[:len(keyTimeLayout)], name[len(keyTimeLayout)+1:len(name)-len(keySuffix)]
	if name[len(keyTimeLayout)] != '-' || !isLowerHex(random) || random[:2] != prefix {
		return time.Time{}, "", false
	}
	created, err := time.Parse(keyTimeLayout, stamp)
	if err != nil || created.Format(keyTimeLayout) != stamp {
		return time.Time{}, "", false
	}
	return created, kind, true
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
