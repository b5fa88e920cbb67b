package segments

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/klauspost/compress/zstd"
)

var update = flag.Bool("update", false, "rewrite the testdata/v1-* fixtures")

// item is one appended batch and what the test expects of it.
type item struct {
	key  PartitionKey
	spec batchSpec // zero for batches not made by makeBatch
	raw  []byte
}

func testTopic(n byte) [16]byte {
	var id [16]byte
	for i := range id {
		id[i] = n<<4 | byte(i)
	}
	return id
}

// workload returns n batches over topics×partitions in a deterministic,
// interleaved order, with every client compression, transactional batches
// and LogAppendTime batches.
func workload(tb testing.TB, seed uint64, topics, partitions, n int) []item {
	tb.Helper()
	rng := rand.New(rand.NewPCG(seed, 0))
	items := make([]item, 0, n)
	for i := range n {
		key := PartitionKey{TopicID: testTopic(byte(rng.IntN(topics))), Partition: int32(rng.IntN(partitions))}
		s := batchSpec{
			records:   1 + rng.IntN(12),
			valueSize: 1 + rng.IntN(300),
			baseTS:    1_700_000_000_000 + int64(rng.IntN(100_000)),
			seed:      seed<<32 | uint64(i),
		}
		if rng.IntN(2) == 0 {
			s.compression = BatchCompression(1 + rng.IntN(4))
		}
		if rng.IntN(6) == 0 {
			s.attrs |= attrTransactional
		}
		s.random = rng.IntN(10) == 0
		raw := makeBatch(tb, s)
		if rng.IntN(8) == 0 {
			SetLogAppendTime(raw, 1_800_000_000_000+int64(i))
		}
		items = append(items, item{key: key, spec: s, raw: raw})
	}
	return items
}

// build appends items to a Builder and checks the ordinals it returns.
func build(tb testing.TB, b *Builder, items []item) ([]byte, []Extent) {
	tb.Helper()
	counts := map[PartitionKey]int{}
	raw := 0
	for _, it := range items {
		batch, err := ParseBatch(it.raw)
		if err != nil {
			tb.Fatal(err)
		}
		if got, want := b.Append(it.key, batch), counts[it.key]; got != want {
			tb.Fatalf("Append to %v returned ordinal %d, want %d", it.key, got, want)
		}
		counts[it.key]++
		raw += len(it.raw)
	}
	if b.Len() != raw || b.Partitions() != len(counts) {
		tb.Fatalf("Len %d Partitions %d, want %d and %d", b.Len(), b.Partitions(), raw, len(counts))
	}
	obj, extents, err := b.Finish()
	if err != nil {
		tb.Fatal(err)
	}
	if b.Len() != 0 || b.Partitions() != 0 {
		tb.Fatalf("Finish did not reset the builder")
	}
	return obj, extents
}

// expectedExtents computes, independently of the Builder, what the extents
// of items must say (offsets and lengths excepted) and the batches of each.
func expectedExtents(tb testing.TB, items []item) ([]Extent, map[PartitionKey][]item) {
	tb.Helper()
	byKey := map[PartitionKey][]item{}
	for _, it := range items {
		byKey[it.key] = append(byKey[it.key], it)
	}
	var want []Extent
	for key, its := range byKey {
		e := Extent{Key: key, Batches: int32(len(its))}
		for i, it := range its {
			b, err := ParseBatch(it.raw)
			if err != nil {
				tb.Fatal(err)
			}
			lo, hi := b.BaseTimestamp, b.MaxTimestamp
			if b.LogAppendTime() {
				lo = hi
			}
			if i == 0 || lo < e.MinTimestamp {
				e.MinTimestamp = lo
			}
			if i == 0 || hi > e.MaxTimestamp {
				e.MaxTimestamp = hi
			}
			e.Records += int64(b.RecordCount)
			e.RawBytes += int64(len(it.raw))
		}
		want = append(want, e)
	}
	slices.SortFunc(want, func(a, b Extent) int { return a.Key.Compare(b.Key) })
	return want, byKey
}

// checkObject decodes obj every way there is and compares with items.
func checkObject(t *testing.T, obj []byte, extents []Extent, items []item) {
	t.Helper()
	h, decoded, err := DecodeObject(obj)
	if err != nil {
		t.Fatalf("DecodeObject: %v", err)
	}
	if h.Version != FormatVersion || h.Flags != 0 {
		t.Fatalf("header %+v", h)
	}
	if !reflect.DeepEqual(decoded, extents) {
		t.Fatalf("footer extents differ from Finish's:\n%+v\n%+v", decoded, extents)
	}
	want, byKey := expectedExtents(t, items)
	if len(extents) != len(want) {
		t.Fatalf("%d extents, want %d", len(extents), len(want))
	}
	for i, e := range extents {
		w := want[i]
		w.Offset, w.Length = e.Offset, e.Length
		if e != w {
			t.Errorf("extent %d:\n got %+v\nwant %+v", i, e, w)
		}
		data := obj[e.Offset:e.End()]
		var got [][]byte
		err := DecodeExtent(data, func(ordinal int, batch []byte) error {
			if ordinal != len(got) {
				t.Errorf("extent %v: ordinal %d, want %d", e.Key, ordinal, len(got))
			}
			got = append(got, bytes.Clone(batch))
			return nil
		})
		if err != nil {
			t.Fatalf("DecodeExtent %v: %v", e.Key, err)
		}
		its := byKey[e.Key]
		if len(got) != len(its) {
			t.Fatalf("extent %v: %d batches, want %d", e.Key, len(got), len(its))
		}
		for j := range got {
			if !bytes.Equal(got[j], its[j].raw) {
				t.Fatalf("extent %v batch %d differs", e.Key, j)
			}
		}
		all, err := DecodeExtentBatches(data)
		if err != nil || !reflect.DeepEqual(all, got) {
			t.Fatalf("DecodeExtentBatches %v: %v, batches equal %v", e.Key, err, reflect.DeepEqual(all, got))
		}
		// A consumer reads back every record value.
		base := int64(1000 * i)
		recs := consume(t, base, got)
		k := 0
		for _, it := range its {
			for r := range it.spec.records {
				if k >= len(recs) {
					t.Fatalf("extent %v: consumer got %d records, want %d", e.Key, len(recs), e.Records)
				}
				if recs[k].Offset != base+int64(k) || !bytes.Equal(recs[k].Value, it.spec.recordValue(r)) {
					t.Fatalf("extent %v record %d: offset %d, value differs", e.Key, k, recs[k].Offset)
				}
				k++
			}
		}
		if int64(len(recs)) != e.Records {
			t.Fatalf("extent %v: consumer got %d records, want %d", e.Key, len(recs), e.Records)
		}
	}
}

// chunkInfo is a chunk of an extent, with its decompressed batches.
type chunkInfo struct {
	h       chunkHeader
	batches [][]byte
}

func chunksOf(tb testing.TB, data []byte) []chunkInfo {
	tb.Helper()
	var chunks []chunkInfo
	for pos := 0; pos < len(data); {
		h, stored, err := readChunk(data[pos:], true)
		if err != nil {
			tb.Fatal(err)
		}
		raw, err := decompressChunk(h.codec, int(h.rawLen), stored, nil)
		if err != nil {
			tb.Fatal(err)
		}
		c := chunkInfo{h: h}
		if err := splitBatches(raw, int(h.batchCount), func(_ int, b []byte) error {
			c.batches = append(c.batches, b)
			return nil
		}); err != nil {
			tb.Fatal(err)
		}
		chunks = append(chunks, c)
		pos += ChunkHeaderSize + len(stored)
	}
	return chunks
}

func TestRoundTrip(t *testing.T) {
	items := workload(t, 1, 3, 7, 300)
	for _, codec := range []Codec{CodecZstd, CodecS2, CodecNone} {
		t.Run(codec.String(), func(t *testing.T) {
			obj, extents := build(t, NewBuilder(codec), items)
			checkObject(t, obj, extents, items)

			var compressedChunks int
			for _, e := range extents {
				for _, c := range chunksOf(t, obj[e.Offset:e.End()]) {
					for _, b := range c.batches {
						clientCompressed := b[offAttributes+1]&attrCompressionMask != 0
						if clientCompressed && c.h.codec != CodecNone {
							t.Fatalf("%v: a client-compressed batch was recompressed with %v", e.Key, c.h.codec)
						}
					}
					if c.h.codec != CodecNone {
						compressedChunks++
						if codec != c.h.codec {
							t.Fatalf("chunk codec %v in a %v object", c.h.codec, codec)
						}
					}
				}
			}
			// Client-compressed batches are in the object byte for byte.
			for _, it := range items {
				if it.spec.compression != CompressionNone && !bytes.Contains(obj, it.raw) {
					t.Fatalf("client-compressed batch not stored as is")
				}
			}
			if (codec == CodecNone) != (compressedChunks == 0) {
				t.Fatalf("%d compressed chunks with codec %v", compressedChunks, codec)
			}
			t.Logf("%d batches, %d raw bytes -> %d byte object, %d compressed chunks",
				len(items), totalRaw(items), len(obj), compressedChunks)
		})
	}
}

func totalRaw(items []item) int {
	n := 0
	for _, it := range items {
		n += len(it.raw)
	}
	return n
}

func TestDeterministic(t *testing.T) {
	items := workload(t, 2, 2, 3, 60)
	for _, codec := range []Codec{CodecZstd, CodecS2, CodecNone} {
		b := NewBuilder(codec)
		first, _ := build(t, b, items)
		// Reused builder, and appends in another interleaving with the
		// same per-partition order.
		reordered := slices.Clone(items)
		slices.SortStableFunc(reordered, func(x, y item) int { return y.key.Compare(x.key) })
		second, _ := build(t, b, reordered)
		if !bytes.Equal(first, second) {
			t.Fatalf("%v: same batches gave different objects", codec)
		}
	}
}

func TestChunking(t *testing.T) {
	key := PartitionKey{TopicID: testTopic(1), Partition: 3}
	rng := rand.New(rand.NewPCG(7, 7))
	text := func(n int) []byte { return testValue(rng, n, false) }
	noise := func(n int) []byte { return testValue(rng, n, true) }

	t.Run("size bound", func(t *testing.T) {
		var items []item
		for range 40 {
			items = append(items, item{key: key, raw: rawBatch(text(300<<10), 0, 10, 1)})
		}
		obj, extents := build(t, NewBuilder(CodecZstd), items)
		chunks := chunksOf(t, obj[extents[0].Offset:extents[0].End()])
		if len(chunks) < 3 {
			t.Fatalf("%d chunks for %d bytes", len(chunks), totalRaw(items))
		}
		n := 0
		for i, c := range chunks {
			if c.h.rawLen > ChunkTargetRawSize || c.h.codec != CodecZstd || int(c.h.firstOrdinal) != n {
				t.Errorf("chunk %d: %+v", i, c.h)
			}
			if last := i == len(chunks)-1; last != (c.h.flags&chunkFlagLast != 0) {
				t.Errorf("chunk %d: flags %#x", i, c.h.flags)
			}
			n += len(c.batches)
		}
	})

	t.Run("runs by need", func(t *testing.T) {
		gz := int16(CompressionGzip)
		items := []item{
			{key: key, raw: rawBatch(text(1000), 0, 1, 1)},
			{key: key, raw: rawBatch(text(1000), 0, 1, 1)},
			{key: key, raw: rawBatch(noise(500), gz, 1, 1)},
			{key: key, raw: rawBatch(noise(500), gz, 1, 1)},
			{key: key, raw: rawBatch(text(1000), 0, 1, 1)},
		}
		for _, codec := range []Codec{CodecZstd, CodecS2} {
			obj, extents := build(t, NewBuilder(codec), items)
			var got []string
			for _, c := range chunksOf(t, obj[extents[0].Offset:extents[0].End()]) {
				got = append(got, fmt.Sprintf("%v×%d", c.h.codec, len(c.batches)))
			}
			want := []string{codec.String() + "×2", "none×2", codec.String() + "×1"}
			if !slices.Equal(got, want) {
				t.Errorf("%v: chunks %v, want %v", codec, got, want)
			}
		}
	})

	t.Run("large batches", func(t *testing.T) {
		items := []item{
			{key: key, raw: rawBatch(text(100), 0, 1, 1)},
			{key: key, raw: rawBatch(text(ChunkTargetRawSize+1000), 0, 1, 1)},
			{key: key, raw: rawBatch(text(MaxChunkRawSize), 0, 1, 1)},
			{key: key, raw: rawBatch(text(100), 0, 1, 1)},
		}
		obj, extents := build(t, NewBuilder(CodecZstd), items)
		chunks := chunksOf(t, obj[extents[0].Offset:extents[0].End()])
		var got []string
		for _, c := range chunks {
			got = append(got, fmt.Sprintf("%v×%d", c.h.codec, len(c.batches)))
		}
		// Over MaxChunkRawSize a batch is stored as is, so that a reader
		// never needs more than MaxChunkRawSize to decode a chunk.
		want := []string{"zstd×1", "zstd×1", "none×1", "zstd×1"}
		if !slices.Equal(got, want) {
			t.Errorf("chunks %v, want %v", got, want)
		}
		checkBatches(t, obj, extents, items)
	})

	t.Run("incompressible", func(t *testing.T) {
		items := []item{{key: key, raw: rawBatch(noise(64<<10), 0, 1, 1)}}
		for _, codec := range []Codec{CodecZstd, CodecS2} {
			obj, extents := build(t, NewBuilder(codec), items)
			chunks := chunksOf(t, obj[extents[0].Offset:extents[0].End()])
			if len(chunks) != 1 || chunks[0].h.codec != CodecNone {
				t.Errorf("%v: incompressible batch stored as %+v, want codec none", codec, chunks[0].h)
			}
		}
	})
}

// checkBatches checks that each extent decodes to its items' batches.
func checkBatches(t *testing.T, obj []byte, extents []Extent, items []item) {
	t.Helper()
	_, byKey := expectedExtents(t, items)
	for _, e := range extents {
		got, err := DecodeExtentBatches(obj[e.Offset:e.End()])
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(byKey[e.Key]) {
			t.Fatalf("%v: %d batches, want %d", e.Key, len(got), len(byKey[e.Key]))
		}
		for i, it := range byKey[e.Key] {
			if !bytes.Equal(got[i], it.raw) {
				t.Fatalf("%v: batch %d differs", e.Key, i)
			}
		}
	}
}

// decodeAll decodes an object and all its extents, checking that a failing
// extent never reached its callback.
func decodeAll(obj []byte) error {
	_, extents, err := DecodeObject(obj)
	if err != nil {
		return err
	}
	for _, e := range extents {
		calls := 0
		err := DecodeExtent(obj[e.Offset:e.End()], func(int, []byte) error { calls++; return nil })
		if err != nil {
			if calls != 0 {
				return fmt.Errorf("extent %v failed after %d batches were delivered: %w", e.Key, calls, err)
			}
			return err
		}
	}
	return nil
}

func isFormatError(err error) bool {
	return errors.Is(err, ErrCorruptSegment) || errors.Is(err, ErrUnsupportedVersion)
}

func TestCorruptionDetected(t *testing.T) {
	items := workload(t, 3, 2, 3, 12)
	for _, codec := range []Codec{CodecZstd, CodecS2, CodecNone} {
		t.Run(codec.String(), func(t *testing.T) {
			obj, _ := build(t, NewBuilder(codec), items)
			if err := decodeAll(obj); err != nil {
				t.Fatal(err)
			}
			bad := make([]byte, len(obj))
			for i := range obj {
				for _, x := range []byte{0x01, 0x80, 0xff} {
					copy(bad, obj)
					bad[i] ^= x
					if err := decodeAll(bad); !isFormatError(err) {
						t.Fatalf("byte %d of %d xor %#x: got %v, want a corruption error", i, len(obj), x, err)
					}
				}
			}
			for n := range len(obj) {
				if err := decodeAll(obj[:n]); !isFormatError(err) {
					t.Fatalf("object truncated to %d bytes: got %v", n, err)
				}
			}
		})
	}
}

func TestExtentRangeChecked(t *testing.T) {
	key := PartitionKey{TopicID: testTopic(2)}
	gz := int16(CompressionGzip)
	rng := rand.New(rand.NewPCG(1, 2))
	var items []item
	for i := range 6 {
		items = append(items, item{key: key, raw: rawBatch(testValue(rng, 200, i%2 == 1), gz*int16(i%2), 1, 1)})
	}
	items = append(items, item{key: PartitionKey{TopicID: testTopic(3)}, raw: rawBatch([]byte("x"), 0, 1, 1)})
	obj, extents := build(t, NewBuilder(CodecZstd), items)
	data := obj[extents[0].Offset:extents[0].End()]
	chunks := chunksOf(t, data)
	if len(chunks) != 6 {
		t.Fatalf("%d chunks, want 6", len(chunks))
	}
	for n := range len(data) {
		if err := DecodeExtent(data[:n], func(int, []byte) error { return nil }); !errors.Is(err, ErrCorruptSegment) {
			t.Fatalf("extent cut to %d bytes: got %v", n, err)
		}
	}
	for pos := 0; pos < len(data); {
		h, stored, err := readChunk(data[pos:], true)
		if err != nil {
			t.Fatal(err)
		}
		if pos > 0 {
			if _, err := DecodeExtentBatches(data[pos:]); !errors.Is(err, ErrCorruptSegment) {
				t.Fatalf("extent read from chunk at %d: got %v", pos, err)
			}
		}
		_ = h
		pos += ChunkHeaderSize + len(stored)
	}
	if _, err := DecodeExtentBatches(obj[extents[0].Offset:extents[1].End()]); !errors.Is(err, ErrCorruptSegment) {
		t.Fatalf("two extents read as one: got %v", err)
	}
	if _, err := DecodeExtentBatches(append(bytes.Clone(data), 0)); !errors.Is(err, ErrCorruptSegment) {
		t.Fatalf("extent with a trailing byte: got %v", err)
	}

	// An error from the callback stops decoding and comes back as is.
	stop := errors.New("stop")
	calls := 0
	err := DecodeExtent(data, func(int, []byte) error { calls++; return stop })
	if err != stop || calls != 1 {
		t.Fatalf("callback error: got %v after %d calls", err, calls)
	}
}

// rewriteCRCs recomputes every CRC of an object after a test edited it, so
// that the edit itself is what a decoder sees.
func rewriteCRCs(obj []byte) {
	binary.LittleEndian.PutUint32(obj[12:], crc32.Checksum(obj[:12], castagnoli))
	tr := obj[len(obj)-TrailerSize:]
	binary.LittleEndian.PutUint32(tr[16:], trailerCRC((*[TrailerSize]byte)(tr)))
	off, n := binary.LittleEndian.Uint64(tr), binary.LittleEndian.Uint64(tr[8:])
	footer := obj[off : off+n]
	binary.LittleEndian.PutUint32(footer[len(footer)-4:], crc32.Checksum(footer[:len(footer)-4], castagnoli))
}

func rewriteChunkCRC(chunk []byte) {
	stored := chunk[ChunkHeaderSize:][:binary.LittleEndian.Uint32(chunk[8:])]
	crc := crc32.Update(0, castagnoli, chunk[4:ChunkHeaderSize])
	binary.LittleEndian.PutUint32(chunk, crc32.Update(crc, castagnoli, stored))
}

func TestVersions(t *testing.T) {
	items := workload(t, 4, 1, 2, 4)
	obj, extents := build(t, NewBuilder(CodecZstd), items)
	footerOff := extents[len(extents)-1].End()
	for _, v := range []uint16{0, 2, 0xffff} {
		for name, at := range map[string]int64{
			"header":  8,
			"footer":  footerOff,
			"trailer": int64(len(obj) - TrailerSize + 22),
		} {
			bad := bytes.Clone(obj)
			binary.LittleEndian.PutUint16(bad[at:], v)
			rewriteCRCs(bad)
			_, _, err := DecodeObject(bad)
			if !errors.Is(err, ErrUnsupportedVersion) {
				t.Fatalf("%s version %d: got %v", name, v, err)
			}
			if msg := err.Error(); !strings.Contains(msg, fmt.Sprintf("version %d, this reader accepts 1 to 1", v)) {
				t.Errorf("%s version %d: message %q does not give the versions", name, v, msg)
			}
		}
		bad := bytes.Clone(obj)
		chunk := bad[extents[0].Offset:extents[0].End()]
		binary.LittleEndian.PutUint16(chunk[4:], v)
		rewriteChunkCRC(chunk)
		if _, err := DecodeExtentBatches(chunk); !errors.Is(err, ErrUnsupportedVersion) {
			t.Fatalf("chunk version %d: got %v", v, err)
		}
	}
	// Parts written by different versions do not make one object, even
	// once this reader accepts both.
	bad := bytes.Clone(obj)
	if err := checkObjectVersions(1, bad[footerOff:], bad[len(bad)-TrailerSize:]); err != nil {
		t.Fatal(err)
	}
	if err := checkObjectVersions(2, bad[footerOff:], bad[len(bad)-TrailerSize:]); !errors.Is(err, ErrCorruptSegment) {
		t.Fatalf("mixed versions: got %v", err)
	}
}

func TestFooterChecks(t *testing.T) {
	k := func(topic byte, p int32) PartitionKey { return PartitionKey{TopicID: testTopic(topic), Partition: p} }
	ext := func(key PartitionKey, off, n int64) Extent {
		return Extent{Key: key, Offset: off, Length: n, Batches: 1, Records: 1, RawBytes: 100}
	}
	good := []Extent{ext(k(1, 0), HeaderSize, 100), ext(k(1, 1), HeaderSize+100, 50), ext(k(2, 0), HeaderSize+150, 70)}
	if got, err := DecodeFooter(appendFooter(nil, good)); err != nil || !reflect.DeepEqual(got, good) {
		t.Fatalf("good footer: %v %+v", err, got)
	}
	edit := func(f func(e []Extent)) []Extent { e := slices.Clone(good); f(e); return e }
	tests := map[string][]Extent{
		"unsorted":           edit(func(e []Extent) { e[0].Key, e[1].Key = e[1].Key, e[0].Key }),
		"duplicate key":      edit(func(e []Extent) { e[1].Key = e[0].Key }),
		"gap":                edit(func(e []Extent) { e[1].Offset++ }),
		"overlap":            edit(func(e []Extent) { e[0].Length++ }),
		"first offset":       edit(func(e []Extent) { e[0].Offset = 0 }),
		"zero batches":       edit(func(e []Extent) { e[2].Batches = 0 }),
		"negative batches":   edit(func(e []Extent) { e[2].Batches = -1 }),
		"too few records":    edit(func(e []Extent) { e[2].Batches, e[2].RawBytes = 2, 1000 }),
		"too few raw bytes":  edit(func(e []Extent) { e[2].RawBytes = 60 }),
		"negative length":    edit(func(e []Extent) { e[2].Length = -5 }),
		"huge length":        edit(func(e []Extent) { e[2].Length = 1 << 62 }),
		"negative partition": edit(func(e []Extent) { e[0].Key.Partition = -1; e[0].Key.TopicID = testTopic(0) }),
	}
	for name, extents := range tests {
		_, err := DecodeFooter(appendFooter(nil, extents))
		if name == "negative partition" {
			// Unusual but not corrupt: keys only need to be ordered.
			if err != nil {
				t.Errorf("%s: %v", name, err)
			}
			continue
		}
		if !errors.Is(err, ErrCorruptSegment) {
			t.Errorf("%s: got %v", name, err)
		}
	}
	f := appendFooter(nil, good)
	short := slices.Clone(f[:len(f)-FooterEntrySize])
	binary.LittleEndian.PutUint32(short[len(short)-4:], crc32.Checksum(short[:len(short)-4], castagnoli))
	if _, err := DecodeFooter(short); !errors.Is(err, ErrCorruptSegment) {
		t.Errorf("count disagreeing with length: got %v", err)
	}
	for n := range len(f) {
		if _, err := DecodeFooter(f[:n]); !errors.Is(err, ErrCorruptSegment) {
			t.Fatalf("footer cut to %d: got %v", n, err)
		}
	}
}

func TestDecodeTrailer(t *testing.T) {
	obj, extents := build(t, NewBuilder(CodecZstd), workload(t, 5, 1, 1, 2))
	off, n, err := DecodeTrailer(obj)
	if err != nil {
		t.Fatal(err)
	}
	if off != extents[0].End() || off+n+TrailerSize != int64(len(obj)) {
		t.Fatalf("footer at %d length %d in a %d-byte object", off, n, len(obj))
	}
	if _, _, err := DecodeTrailer(obj[len(obj)-TrailerSize+1:]); !errors.Is(err, ErrCorruptSegment) {
		t.Fatalf("short trailer: got %v", err)
	}
	for _, tc := range []struct{ off, n uint64 }{{0, 20}, {HeaderSize, 4}, {HeaderSize, MaxFooterSize + 1}, {1 << 62, 20}} {
		tr := bytes.Clone(obj[len(obj)-TrailerSize:])
		binary.LittleEndian.PutUint64(tr, tc.off)
		binary.LittleEndian.PutUint64(tr[8:], tc.n)
		binary.LittleEndian.PutUint32(tr[16:], trailerCRC((*[TrailerSize]byte)(tr)))
		if _, _, err := DecodeTrailer(tr); !errors.Is(err, ErrCorruptSegment) {
			t.Errorf("footer at %d length %d: got %v", tc.off, tc.n, err)
		}
	}
	if _, _, err := DecodeTrailer(make([]byte, TrailerSize)); !errors.Is(err, ErrCorruptSegment) {
		t.Errorf("zero trailer: got %v", err)
	}
}

// allocated returns the bytes allocated while running f.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

func TestDecodeMemoryBounded(t *testing.T) {
	enc, _, err := zstdCodecs()
	if err != nil {
		t.Fatal(err)
	}
	// A valid chunk whose content decompresses to far more than declared:
	// a zstd "bomb" must be stopped at the declared size.
	zeros := make([]byte, MaxChunkRawSize+1<<20)
	bomb := enc.EncodeAll(zeros, nil)
	full := enc.EncodeAll(zeros[:MaxChunkRawSize], nil)
	// The same without a content size in the frame header, as a streaming
	// encoder writes it.
	var streamed bytes.Buffer
	w, err := zstd.NewWriter(&streamed, zstd.WithEncoderLevel(zstd.SpeedFastest))
	if err != nil {
		t.Fatal(err)
	}
	for chunk := range slices.Chunk(zeros, 1<<20) {
		if _, err := w.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	zeros = nil
	chunk := func(codec Codec, rawLen uint32, stored []byte) []byte {
		c := make([]byte, ChunkHeaderSize, ChunkHeaderSize+len(stored))
		c = append(c, stored...)
		putChunkHeader(c, chunkHeader{codec: codec, flags: chunkFlagLast, storedLen: uint32(len(stored)), rawLen: rawLen, batchCount: 1}, c[ChunkHeaderSize:])
		return c
	}
	s2bomb := make([]byte, 0, 16)
	s2bomb = binary.AppendUvarint(s2bomb, 1<<31)
	s2bomb = append(s2bomb, 0, 0, 0, 0)
	tests := map[string][]byte{
		"zstd bomb":                  chunk(CodecZstd, 4096, bomb),
		"zstd bomb declared large":   chunk(CodecZstd, MaxChunkRawSize, bomb),
		"zstd stream bomb":           chunk(CodecZstd, 4096, streamed.Bytes()),
		"zstd stream declared large": chunk(CodecZstd, MaxChunkRawSize, streamed.Bytes()),
		"zstd two frames":            chunk(CodecZstd, 4096, append(enc.EncodeAll(make([]byte, 4096), nil), streamed.Bytes()...)),
		"zstd content size lies":     chunk(CodecZstd, 4096, enc.EncodeAll(make([]byte, 4095), nil)),
		"zstd truncated frame":       chunk(CodecZstd, 4096, enc.EncodeAll(make([]byte, 4096), nil)[:8]),
		"zstd truncated content":     chunk(CodecZstd, MaxChunkRawSize, full[:len(full)/2]),
		"zstd over the limit":        chunk(CodecZstd, MaxChunkRawSize+1, bomb),
		"s2 claims 2 GiB":            chunk(CodecS2, 4096, s2bomb),
		"s2 over the limit":          chunk(CodecS2, 1<<31, s2bomb),
		"uncompressed length lies":   chunk(CodecNone, 1<<31, make([]byte, 100)),
		"zstd garbage":               chunk(CodecZstd, 4096, bytes.Repeat([]byte{0x28, 0xb5, 0x2f, 0xfd}, 30)),
		"zero bytes for a batch":     chunk(CodecNone, 100, make([]byte, 100)),
	}
	for name, c := range tests {
		var err error
		n := allocated(func() { _, err = DecodeExtentBatches(c) })
		if !errors.Is(err, ErrCorruptSegment) {
			t.Errorf("%s: got %v", name, err)
		}
		// Only a chunk whose frame header agrees with its declared size
		// gets that size allocated.
		limit := uint64(1 << 20)
		if name == "zstd truncated content" {
			limit = MaxChunkRawSize + 2<<20
		}
		t.Logf("%s: %v, %d bytes allocated", name, err, n)
		if n > limit {
			t.Errorf("%s: allocated %d bytes decoding a %d-byte chunk", name, n, len(c))
		}
	}
}

// memBucket is a BucketReader over objects in memory that counts GETs.
type memBucket struct {
	mu      sync.Mutex
	objects map[string][]byte
	gets    int
	short   bool // return one byte less than asked
}

func (m *memBucket) GetRange(_ context.Context, key string, off, n int64) (io.ReadCloser, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.gets++
	obj, ok := m.objects[key]
	if !ok {
		return nil, fmt.Errorf("getting %s: %w", key, ErrNotFound)
	}
	if off > int64(len(obj)) {
		off = int64(len(obj))
	}
	end := off + n
	if n < 0 || end > int64(len(obj)) {
		end = int64(len(obj))
	}
	if m.short && end > off {
		end--
	}
	return io.NopCloser(bytes.NewReader(obj[off:end])), nil
}

func TestReadFooter(t *testing.T) {
	ctx := context.Background()
	small, smallExtents := build(t, NewBuilder(CodecZstd), workload(t, 6, 2, 2, 10))
	// Enough partitions for the footer to exceed the read-ahead.
	var many []item
	for p := range footerReadAhead/FooterEntrySize + 10 {
		many = append(many, item{key: PartitionKey{TopicID: testTopic(1), Partition: int32(p)}, raw: rawBatch([]byte("v"), 0, 1, int64(p))})
	}
	large, largeExtents := build(t, NewBuilder(CodecZstd), many)
	b := &memBucket{objects: map[string][]byte{"small": small, "large": large}}

	for _, tc := range []struct {
		key     string
		extents []Extent
		gets    int
	}{{"small", smallExtents, 1}, {"large", largeExtents, 2}} {
		b.gets = 0
		got, err := ReadFooter(ctx, b, tc.key, int64(len(b.objects[tc.key])))
		if err != nil {
			t.Fatalf("%s: %v", tc.key, err)
		}
		if !reflect.DeepEqual(got, tc.extents) {
			t.Fatalf("%s: extents differ", tc.key)
		}
		if b.gets != tc.gets {
			t.Errorf("%s: %d GETs, want %d", tc.key, b.gets, tc.gets)
		}
	}

	for _, size := range []int64{int64(len(small)) - 1, int64(len(small)) + 1, 10, 0, -1} {
		if _, err := ReadFooter(ctx, b, "small", size); !errors.Is(err, ErrCorruptSegment) {
			t.Errorf("wrong size %d: got %v", size, err)
		}
	}
	if _, err := ReadFooter(ctx, b, "missing", 1000); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing object: got %v", err)
	}
	b.short = true
	if _, err := ReadFooter(ctx, b, "small", int64(len(small))); !errors.Is(err, ErrCorruptSegment) || !strings.Contains(err.Error(), "small") {
		t.Errorf("short read: got %v", err)
	}
}

func TestEmptyObject(t *testing.T) {
	obj, extents, err := NewBuilder(CodecZstd).Finish()
	if err != nil || len(extents) != 0 {
		t.Fatalf("%v, %d extents", err, len(extents))
	}
	if len(obj) != HeaderSize+footerFixedSize+TrailerSize {
		t.Fatalf("empty object is %d bytes", len(obj))
	}
	if _, got, err := DecodeObject(obj); err != nil || len(got) != 0 {
		t.Fatalf("DecodeObject: %v, %d extents", err, len(got))
	}
	got, err := ReadFooter(context.Background(), &memBucket{objects: map[string][]byte{"k": obj}}, "k", int64(len(obj)))
	if err != nil || len(got) != 0 {
		t.Fatalf("ReadFooter: %v, %d extents", err, len(got))
	}
}

func TestBuilderRejectsBadBatches(t *testing.T) {
	good := rawBatch([]byte("hello"), 0, 1, 1)
	key := PartitionKey{Partition: 1}
	for name, raw := range map[string][]byte{
		"short":        good[:20],
		"length lies":  append(bytes.Clone(good), 0),
		"magic 1":      func() []byte { b := bytes.Clone(good); b[offMagic] = 1; return b }(),
		"zero records": func() []byte { b := bytes.Clone(good); binary.BigEndian.PutUint32(b[offRecordCount:], 0); return b }(),
		"nil":          nil,
	} {
		b := NewBuilder(CodecS2)
		b.Append(key, Batch{Raw: good})
		if ord := b.Append(key, Batch{Raw: raw}); ord != -1 {
			t.Errorf("%s: ordinal %d", name, ord)
		}
		if _, _, err := b.Finish(); err == nil {
			t.Errorf("%s: Finish succeeded", name)
		}
		// Finish reset the builder, error included.
		b.Append(key, Batch{Raw: good})
		if _, _, err := b.Finish(); err != nil {
			t.Errorf("%s: builder not reusable: %v", name, err)
		}
	}
}

func TestBuilderReset(t *testing.T) {
	items := workload(t, 8, 2, 2, 10)
	b := NewBuilder(CodecZstd)
	for _, it := range items {
		b.Append(it.key, Batch{Raw: it.raw})
	}
	b.Reset()
	if b.Len() != 0 || b.Partitions() != 0 {
		t.Fatal("Reset left data behind")
	}
	for _, p := range b.free {
		for _, r := range p.batches[:cap(p.batches)] {
			if r != nil {
				t.Fatal("Reset kept a reference to a batch")
			}
		}
	}
	obj, extents := build(t, b, items)
	checkObject(t, obj, extents, items)
}

func TestExtentTimestamps(t *testing.T) {
	key := PartitionKey{Partition: 9}
	a := rawBatch([]byte("a"), 0, 3, 500) // 500..502
	c := rawBatch([]byte("c"), 0, 1, 100) // 100..100
	l := rawBatch([]byte("l"), 0, 1, 50)  // 50, then LogAppendTime 9000
	SetLogAppendTime(l, 9000)
	b := NewBuilder(CodecNone)
	for _, raw := range [][]byte{a, c, l} {
		batch, err := ParseBatch(raw)
		if err != nil {
			t.Fatal(err)
		}
		b.Append(key, batch)
	}
	_, extents, err := b.Finish()
	if err != nil {
		t.Fatal(err)
	}
	e := extents[0]
	if e.MinTimestamp != 100 || e.MaxTimestamp != 9000 || e.Records != 5 || e.Batches != 3 || e.RawBytes != int64(len(a)+len(c)+len(l)) {
		t.Fatalf("extent %+v", e)
	}
}

func TestNewBuilderUnknownCodec(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic")
		}
	}()
	NewBuilder(3)
}

func TestCodecString(t *testing.T) {
	for c, want := range map[Codec]string{CodecNone: "none", CodecZstd: "zstd", CodecS2: "s2", 9: "Codec(9)"} {
		if got := c.String(); got != want {
			t.Errorf("%d: %q, want %q", c, got, want)
		}
	}
}

// --- fixtures -----------------------------------------------------------

// The fixtures freeze format version 1. v1-input.batches holds the input
// batches (each as a 16-byte topic ID, a big-endian int32 partition, then
// the batch), so that the input does not depend on the compression
// libraries franz-go uses; v1-<codec>.seg are the objects the Builder makes
// of them. The test decodes each fixture and re-encodes the input, which
// must give the fixture byte for byte.
//
// If an upgrade of github.com/klauspost/compress changes what zstd or s2
// produce, the byte comparison for those two fails while decoding still
// passes: check that, then regenerate with
//
//	go test ./segments/ -run TestFixtures -update
//
// A change to v1-none.seg, or a failure to decode any fixture, is a format
// change: it needs a new version, not -update.
const fixtureInput = "testdata/v1-input.batches"

func fixtureItems(t *testing.T) []item {
	if *update {
		items := workload(t, 42, 3, 4, 40)
		var buf []byte
		for _, it := range items {
			buf = append(buf, it.key.TopicID[:]...)
			buf = binary.BigEndian.AppendUint32(buf, uint32(it.key.Partition))
			buf = append(buf, it.raw...)
		}
		writeFixture(t, fixtureInput, buf)
	}
	buf, err := readTestdata(fixtureInput)
	if err != nil {
		t.Fatal(err)
	}
	var items []item
	for len(buf) > 0 {
		if len(buf) < 20 {
			t.Fatalf("%s: %d stray bytes", fixtureInput, len(buf))
		}
		var it item
		copy(it.key.TopicID[:], buf)
		it.key.Partition = int32(binary.BigEndian.Uint32(buf[16:]))
		n, err := batchSize(buf[20:])
		if err != nil {
			t.Fatalf("%s: %v", fixtureInput, err)
		}
		it.raw = buf[20 : 20+n]
		items = append(items, it)
		buf = buf[20+n:]
	}
	return items
}

func readTestdata(path string) ([]byte, error) { return os.ReadFile(path) }

func writeFixture(t *testing.T, path string, data []byte) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s (%d bytes)", path, len(data))
}

func TestFixtures(t *testing.T) {
	items := fixtureItems(t)
	if len(items) != 40 {
		t.Fatalf("%d fixture batches, want 40", len(items))
	}
	for _, codec := range []Codec{CodecNone, CodecZstd, CodecS2} {
		t.Run(codec.String(), func(t *testing.T) {
			path := fmt.Sprintf("testdata/v1-%s.seg", codec)
			obj, extents := build(t, NewBuilder(codec), items)
			if *update {
				writeFixture(t, path, obj)
			}
			fixture, err := readTestdata(path)
			if err != nil {
				t.Fatal(err)
			}
			// Decoding the committed bytes comes first: it must keep
			// working whatever the encoder does.
			_, decoded, err := DecodeObject(fixture)
			if err != nil {
				t.Fatalf("decoding %s: %v", path, err)
			}
			if decoded[0].Offset != HeaderSize || len(decoded) != len(extents) {
				t.Fatalf("%s: %d extents", path, len(decoded))
			}
			checkBatches(t, fixture, decoded, items)
			want, _ := expectedExtents(t, items)
			for i := range want {
				want[i].Offset, want[i].Length = decoded[i].Offset, decoded[i].Length
			}
			if !reflect.DeepEqual(decoded, want) {
				t.Fatalf("%s: extents %+v, want %+v", path, decoded, want)
			}
			if !bytes.Equal(obj, fixture) {
				i := 0
				for i < min(len(obj), len(fixture)) && obj[i] == fixture[i] {
					i++
				}
				t.Fatalf("encoding differs from %s (%d vs %d bytes, first difference at byte %d); see the comment on fixtureInput",
					path, len(obj), len(fixture), i)
			}
		})
	}
}

func TestConcurrentUse(t *testing.T) {
	items := workload(t, 13, 2, 3, 40)
	shared, extents := build(t, NewBuilder(CodecZstd), items)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			codec := []Codec{CodecZstd, CodecS2}[g%2]
			b := NewBuilder(codec)
			for range 5 {
				for _, it := range items {
					b.Append(it.key, Batch{Raw: it.raw})
				}
				obj, _, err := b.Finish()
				if err != nil {
					t.Error(err)
					return
				}
				if err := decodeAll(obj); err != nil {
					t.Error(err)
					return
				}
				if codec == CodecZstd && !bytes.Equal(obj, shared) {
					t.Error("concurrent builders made different objects of the same batches")
					return
				}
				for _, e := range extents {
					if err := DecodeExtent(shared[e.Offset:e.End()], func(int, []byte) error { return nil }); err != nil {
						t.Error(err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
}

// Codecs parse from the names they print, and a *Codec is a flag value.
func TestParseCodec(t *testing.T) {
	for _, c := range []Codec{CodecNone, CodecZstd, CodecS2} {
		var got Codec
		if err := got.Set(c.String()); err != nil || got != c {
			t.Errorf("Set(%q) = %v, %v; want %v", c.String(), got, err, c)
		}
	}
	if _, err := ParseCodec("lz4"); err == nil || !strings.Contains(err.Error(), "use zstd, s2 or none") {
		t.Fatalf("ParseCodec(lz4): %v, want an error naming the choices", err)
	}
}
