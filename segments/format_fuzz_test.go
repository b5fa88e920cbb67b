package segments

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"slices"
	"strings"
	"testing"
)

// Fuzz targets for every decoder. Seeds are real encodings: the fixtures
// and small objects of every chunk codec. Run one with, for example,
//
//	go test -run='^$' -fuzz=FuzzDecodeExtent -fuzztime=20s ./segments/

// fuzzObjects returns small real objects for seeds.
func fuzzObjects(tb testing.TB) [][]byte {
	items := workload(tb, 11, 2, 2, 6)
	var objs [][]byte
	for _, codec := range []Codec{CodecZstd, CodecS2, CodecNone} {
		obj, _ := build(tb, NewBuilder(codec), items)
		objs = append(objs, obj)
	}
	return objs
}

func FuzzParseBatches(f *testing.F) {
	for _, it := range workload(f, 12, 1, 1, 8) {
		f.Add(it.raw)
	}
	two := append(rawBatch([]byte("a"), 0, 1, 1), rawBatch([]byte("bc"), int16(CompressionLZ4), 2, 2)...)
	f.Add(two)
	f.Add(two[:len(two)-1])
	f.Fuzz(func(t *testing.T, records []byte) {
		batches, err := ParseBatches(records)
		if err != nil {
			if !errors.Is(err, ErrCorruptBatch) && !errors.Is(err, ErrInvalidBatch) && !errors.Is(err, ErrUnsupportedMagic) {
				t.Fatalf("error without a sentinel: %v", err)
			}
			if batches != nil {
				t.Fatal("batches with an error")
			}
			return
		}
		n := 0
		for _, b := range batches {
			if &b.Raw[0] != &records[n] {
				t.Fatal("batch does not alias the input in order")
			}
			n += len(b.Raw)
			again, err := ParseBatch(b.Raw)
			if err != nil || again.CRC != b.CRC || b.NumRecords() != b.LastOffsetDelta+1 || b.NumRecords() <= 0 {
				t.Fatalf("accepted batch fails ParseBatch: %v", err)
			}
		}
		if n != len(records) {
			t.Fatalf("batches cover %d of %d bytes", n, len(records))
		}
	})
}

func FuzzDecodeExtent(f *testing.F) {
	for _, obj := range fuzzObjects(f) {
		_, extents, err := DecodeObject(obj)
		if err != nil {
			f.Fatal(err)
		}
		for _, e := range extents {
			f.Add(obj[e.Offset:e.End()], false)
			f.Add(obj[e.Offset:e.End()], true)
		}
	}
	// With fixCRCs the target recomputes the chunk CRCs of the mutated
	// input, to reach the checks behind them.
	f.Fuzz(func(t *testing.T, data []byte, fixCRCs bool) {
		if fixCRCs {
			data = bytes.Clone(data)
			fixChunkCRCs(data)
		}
		orig := bytes.Clone(data)
		var got [][]byte
		err := DecodeExtent(data, func(ordinal int, batch []byte) error {
			if ordinal != len(got) {
				t.Fatalf("ordinal %d after %d batches", ordinal, len(got))
			}
			if len(batch) < BatchHeaderSize || batch[offMagic] != BatchMagic ||
				int(binary.BigEndian.Uint32(batch[offBatchLength:]))+batchLengthOverhead != len(batch) {
				t.Fatalf("decoded a malformed batch of %d bytes", len(batch))
			}
			got = append(got, bytes.Clone(batch))
			return nil
		})
		if err != nil {
			if !isFormatError(err) {
				t.Fatalf("error without a sentinel: %v", err)
			}
			if len(got) != 0 && !fixCRCs {
				// Only content that passes its CRC (a faulty
				// writer's) can fail after batches were delivered.
				t.Fatalf("%d batches delivered before the error %v", len(got), err)
			}
			return
		}
		if len(got) == 0 {
			t.Fatal("an extent decoded to no batches")
		}
		if !bytes.Equal(data, orig) {
			t.Fatal("DecodeExtent modified its input")
		}
		all, err := DecodeExtentBatches(data)
		if err != nil || !slices.EqualFunc(all, got, bytes.Equal) {
			t.Fatalf("DecodeExtentBatches disagrees: %v", err)
		}
	})
}

func FuzzDecodeObject(f *testing.F) {
	for _, obj := range fuzzObjects(f) {
		f.Add(obj, false)
		f.Add(obj, true)
	}
	for _, path := range []string{"testdata/v1-zstd.seg", "testdata/v1-s2.seg"} {
		if obj, err := readTestdata(path); err == nil {
			f.Add(obj, false)
		}
	}
	empty, _, _ := NewBuilder(CodecZstd).Finish()
	f.Add(empty, false)
	// With fixCRCs the target recomputes the CRCs of the mutated input, to
	// reach the checks behind them.
	f.Fuzz(func(t *testing.T, obj []byte, fixCRCs bool) {
		if fixCRCs {
			obj = bytes.Clone(obj)
			fixObjectCRCs(obj)
		}
		h, extents, err := DecodeObject(obj)
		if err != nil {
			if !isFormatError(err) {
				t.Fatalf("error without a sentinel: %v", err)
			}
			return
		}
		if h.Version != FormatVersion {
			t.Fatalf("version %d", h.Version)
		}
		end := int64(HeaderSize)
		for _, e := range extents {
			if e.Offset != end || e.End() > int64(len(obj)) {
				t.Fatalf("extent %+v out of place", e)
			}
			end = e.End()
			if err := DecodeExtent(obj[e.Offset:e.End()], func(int, []byte) error { return nil }); err != nil && !isFormatError(err) {
				t.Fatalf("extent error without a sentinel: %v", err)
			}
		}
		// The footer and trailer decode the same on their own.
		off, n, err := DecodeTrailer(obj)
		if err != nil {
			t.Fatal(err)
		}
		again, err := DecodeFooter(obj[off : off+n])
		if err != nil || !slices.Equal(again, extents) {
			t.Fatalf("DecodeFooter disagrees: %v", err)
		}
	})
}

// FuzzDecompressChunk reaches what the CRC keeps the other targets from:
// the decompressors and batch splitting, fed arbitrary chunk contents with a
// declared codec and size.
func FuzzDecompressChunk(f *testing.F) {
	for _, obj := range fuzzObjects(f) {
		_, extents, _ := DecodeObject(obj)
		for _, e := range extents {
			data := obj[e.Offset:e.End()]
			h, stored, err := readChunk(data, true)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(uint8(h.codec), h.rawLen, h.batchCount, stored)
		}
	}
	f.Fuzz(func(t *testing.T, codec uint8, rawLen, count uint32, stored []byte) {
		if rawLen > 1<<20 || count > 1<<16 {
			return // keep each run small; the limits themselves are unit-tested
		}
		raw, err := decompressChunk(Codec(codec), int(rawLen), stored, nil)
		if err != nil {
			if !errors.Is(err, ErrCorruptSegment) {
				t.Fatalf("error without a sentinel: %v", err)
			}
			return
		}
		if len(raw) != int(rawLen) {
			t.Fatalf("decompressed %d bytes, declared %d", len(raw), rawLen)
		}
		if err := splitBatches(raw, int(count), func(int, []byte) error { return nil }); err != nil && !errors.Is(err, ErrCorruptSegment) {
			t.Fatalf("error without a sentinel: %v", err)
		}
	})
}

// FuzzBuilderRoundTrip builds objects from fuzzed batch sequences and checks
// they decode to the same batches.
func FuzzBuilderRoundTrip(f *testing.F) {
	f.Add([]byte{0, 10, 1, 200, 2, 3, 0, 255, 1, 1}, uint8(1))
	f.Add([]byte("the quick brown fox jumps over the lazy dog"), uint8(2))
	f.Fuzz(func(t *testing.T, script []byte, codec uint8) {
		c := Codec(codec % 3)
		b := NewBuilder(c)
		want := map[PartitionKey][][]byte{}
		for i := 0; i+2 < len(script); i += 3 {
			key := PartitionKey{TopicID: testTopic(script[i] & 3), Partition: int32(script[i] >> 2 & 7)}
			body := bytes.Repeat(script[i:i+3], int(script[i+1]))
			attrs := int16(script[i+2] % 5)
			raw := rawBatch(body, attrs, 1+int32(script[i+2]%7), int64(script[i+1]))
			batch, err := ParseBatch(raw)
			if err != nil {
				t.Fatal(err)
			}
			if got := b.Append(key, batch); got != len(want[key]) {
				t.Fatalf("ordinal %d, want %d", got, len(want[key]))
			}
			want[key] = append(want[key], raw)
		}
		obj, extents, err := b.Finish()
		if err != nil {
			t.Fatal(err)
		}
		_, decoded, err := DecodeObject(obj)
		if err != nil || !slices.Equal(decoded, extents) || len(extents) != len(want) {
			t.Fatalf("DecodeObject: %v", err)
		}
		for _, e := range extents {
			got, err := DecodeExtentBatches(obj[e.Offset:e.End()])
			if err != nil {
				t.Fatal(err)
			}
			if !slices.EqualFunc(got, want[e.Key], bytes.Equal) {
				t.Fatalf("%v: batches differ", e.Key)
			}
		}
	})
}

func FuzzParseObjectKey(f *testing.F) {
	f.Add("flush/3f/20260127T053314Z-3f0123456789abcd.seg")
	f.Add("merged/00/20260127T053314Z-00ffffffffffffff.seg")
	f.Fuzz(func(t *testing.T, key string) {
		created, kind, ok := ParseObjectKey(key)
		if !ok {
			return
		}
		if kind != KindFlush && kind != KindMerged {
			t.Fatalf("kind %q", kind)
		}
		if got := kind + "/" + key[len(kind)+1:len(kind)+3] + "/" + created.Format(keyTimeLayout); !strings.HasPrefix(key, got) {
			t.Fatalf("%q parsed to %v %q", key, created, kind)
		}
	})
}

// fixChunkCRCs recomputes the CRC of every chunk of data it can find.
func fixChunkCRCs(data []byte) {
	for pos := 0; len(data)-pos >= ChunkHeaderSize; {
		n := int(binary.LittleEndian.Uint32(data[pos+8:]))
		if n > len(data)-pos-ChunkHeaderSize {
			return
		}
		rewriteChunkCRC(data[pos:])
		pos += ChunkHeaderSize + n
	}
}

// fixObjectCRCs recomputes the CRCs of an object's header, trailer, footer
// and chunks, as far as its structure can be followed.
func fixObjectCRCs(obj []byte) {
	if len(obj) < HeaderSize+TrailerSize {
		return
	}
	binary.LittleEndian.PutUint32(obj[12:], crc32.Checksum(obj[:12], castagnoli))
	tr := obj[len(obj)-TrailerSize:]
	binary.LittleEndian.PutUint32(tr[16:], trailerCRC((*[TrailerSize]byte)(tr)))
	off, n := binary.LittleEndian.Uint64(tr), binary.LittleEndian.Uint64(tr[8:])
	if off > uint64(len(obj)) || n < 4 || n > uint64(len(obj))-off {
		return
	}
	footer := obj[off : off+n]
	binary.LittleEndian.PutUint32(footer[len(footer)-4:], crc32.Checksum(footer[:len(footer)-4], castagnoli))
	if off > HeaderSize {
		fixChunkCRCs(obj[HeaderSize:off])
	}
}
