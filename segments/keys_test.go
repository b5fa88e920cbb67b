package segments

import (
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestObjectKeys(t *testing.T) {
	now := time.Date(2026, 1, 27, 5, 33, 14, 999_000_000, time.FixedZone("X", 3600))
	re := regexp.MustCompile(`^(flush|merged|cleaned)/([0-9a-f]{2})/20260127T043314Z-([0-9a-f]{16})\.seg$`)
	prefixes := map[string]bool{}
	seen := map[string]bool{}
	for i := range 2000 {
		kind := []string{KindFlush, KindMerged, KindCleaned}[i%3]
		key := NewObjectKey(now, kind)
		m := re.FindStringSubmatch(key)
		if m == nil || m[1] != kind || m[2] != m[3][:2] {
			t.Fatalf("key %q does not match the layout", key)
		}
		if seen[key] {
			t.Fatalf("key %q made twice", key)
		}
		seen[key] = true
		prefixes[m[2]] = true
		created, gotKind, ok := ParseObjectKey(key)
		if !ok || gotKind != kind || !created.Equal(now.Truncate(time.Second)) || created.Location() != time.UTC {
			t.Fatalf("ParseObjectKey(%q) = %v %q %v", key, created, gotKind, ok)
		}
	}
	// 2000 keys over 256 prefixes: all but a handful are used.
	if len(prefixes) < 240 {
		t.Errorf("keys use only %d prefixes", len(prefixes))
	}
}

func TestParseObjectKeyRejects(t *testing.T) {
	good := "flush/3f/20260127T053314Z-3f0123456789abcd.seg"
	if _, _, ok := ParseObjectKey(good); !ok {
		t.Fatalf("%q rejected", good)
	}
	for _, key := range []string{
		"",
		"flush",
		"other/3f/20260127T053314Z-3f0123456789abcd.seg",
		"flush/3e/20260127T053314Z-3f0123456789abcd.seg",   // prefix is not the hash's
		"flush/3F/20260127T053314Z-3F0123456789abcd.seg",   // upper case
		"flush/3f/20260127T053314Z-3f0123456789abcd.sst",   // suffix
		"flush/3f/20260127T053314Z_3f0123456789abcd.seg",   // separator
		"flush/3f/20261327T053314Z-3f0123456789abcd.seg",   // month 13
		"flush/3f/20260127T053314Z-3f0123456789abcg.seg",   // not hex
		"flush/3f/20260127T053314Z-3f0123456789abc.seg",    // short
		"flush/3f/x/20260127T053314Z-3f0123456789abcd.seg", // extra element
		"tenant/flush/3f/20260127T053314Z-3f0123456789abcd.seg",
		strings.Replace(good, "Z-", "+-", 1),
	} {
		if _, _, ok := ParseObjectKey(key); ok {
			t.Errorf("%q accepted", key)
		}
	}
}

func TestNewObjectKeyUnknownKind(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic")
		}
	}()
	NewObjectKey(time.Now(), "flush/x")
}
